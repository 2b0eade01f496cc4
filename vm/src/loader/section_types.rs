//! Program types as libbpf derives them from section names: libbpf's `section_defs`
//! table (program type, expected attach type, sleepable, XDP frags) and its matching
//! rules, the kernel's program type and attach type names, and which of them bpfvm runs.
//!
//! ```
//! use bpfvm::loader::{section_type, KernelProgType};
//!
//! let t = section_type("fentry/do_unlinkat").unwrap();
//! assert_eq!(t.prog_type, KernelProgType::Tracing);
//! assert_eq!(t.attach_type_name(), Some("trace_fentry"));
//! assert!(section_type("xdp_pass").is_none(), "not a name libbpf knows");
//! assert_eq!(KernelProgType::from_name("xdp"), Some(KernelProgType::Xdp));
//! ```

use std::fmt;

use crate::ProgramType;

macro_rules! kernel_prog_types {
    ($($variant:ident = $num:literal, $name:literal, $doc:literal;)*) => {
        /// A kernel program type (`enum bpf_prog_type`), named as bpftool names it.
        #[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
        #[non_exhaustive]
        pub enum KernelProgType {
            $(
                #[doc = $doc]
                $variant = $num,
            )*
        }

        impl KernelProgType {
            /// Every kernel program type, in `BPF_PROG_TYPE_*` order.
            pub const ALL: &'static [KernelProgType] = &[$(KernelProgType::$variant),*];

            /// bpftool's name of the type (`sched_cls`, `xdp`, `lsm`).
            pub fn name(self) -> &'static str {
                match self {
                    $(KernelProgType::$variant => $name,)*
                }
            }
        }
    };
}

kernel_prog_types! {
    SocketFilter = 1, "socket_filter", "`BPF_PROG_TYPE_SOCKET_FILTER`.";
    Kprobe = 2, "kprobe", "`BPF_PROG_TYPE_KPROBE`.";
    SchedCls = 3, "sched_cls", "`BPF_PROG_TYPE_SCHED_CLS`.";
    SchedAct = 4, "sched_act", "`BPF_PROG_TYPE_SCHED_ACT`.";
    Tracepoint = 5, "tracepoint", "`BPF_PROG_TYPE_TRACEPOINT`.";
    Xdp = 6, "xdp", "`BPF_PROG_TYPE_XDP`.";
    PerfEvent = 7, "perf_event", "`BPF_PROG_TYPE_PERF_EVENT`.";
    CgroupSkb = 8, "cgroup_skb", "`BPF_PROG_TYPE_CGROUP_SKB`.";
    CgroupSock = 9, "cgroup_sock", "`BPF_PROG_TYPE_CGROUP_SOCK`.";
    LwtIn = 10, "lwt_in", "`BPF_PROG_TYPE_LWT_IN`.";
    LwtOut = 11, "lwt_out", "`BPF_PROG_TYPE_LWT_OUT`.";
    LwtXmit = 12, "lwt_xmit", "`BPF_PROG_TYPE_LWT_XMIT`.";
    SockOps = 13, "sock_ops", "`BPF_PROG_TYPE_SOCK_OPS`.";
    SkSkb = 14, "sk_skb", "`BPF_PROG_TYPE_SK_SKB`.";
    CgroupDevice = 15, "cgroup_device", "`BPF_PROG_TYPE_CGROUP_DEVICE`.";
    SkMsg = 16, "sk_msg", "`BPF_PROG_TYPE_SK_MSG`.";
    RawTracepoint = 17, "raw_tracepoint", "`BPF_PROG_TYPE_RAW_TRACEPOINT`.";
    CgroupSockAddr = 18, "cgroup_sock_addr", "`BPF_PROG_TYPE_CGROUP_SOCK_ADDR`.";
    LwtSeg6local = 19, "lwt_seg6local", "`BPF_PROG_TYPE_LWT_SEG6LOCAL`.";
    LircMode2 = 20, "lirc_mode2", "`BPF_PROG_TYPE_LIRC_MODE2`.";
    SkReuseport = 21, "sk_reuseport", "`BPF_PROG_TYPE_SK_REUSEPORT`.";
    FlowDissector = 22, "flow_dissector", "`BPF_PROG_TYPE_FLOW_DISSECTOR`.";
    CgroupSysctl = 23, "cgroup_sysctl", "`BPF_PROG_TYPE_CGROUP_SYSCTL`.";
    RawTracepointWritable = 24, "raw_tracepoint_writable", "`BPF_PROG_TYPE_RAW_TRACEPOINT_WRITABLE`.";
    CgroupSockopt = 25, "cgroup_sockopt", "`BPF_PROG_TYPE_CGROUP_SOCKOPT`.";
    Tracing = 26, "tracing", "`BPF_PROG_TYPE_TRACING` (`fentry`, `fexit`, `tp_btf`, `iter`).";
    StructOps = 27, "struct_ops", "`BPF_PROG_TYPE_STRUCT_OPS`.";
    Ext = 28, "ext", "`BPF_PROG_TYPE_EXT` (`freplace`).";
    Lsm = 29, "lsm", "`BPF_PROG_TYPE_LSM`.";
    SkLookup = 30, "sk_lookup", "`BPF_PROG_TYPE_SK_LOOKUP`.";
    Syscall = 31, "syscall", "`BPF_PROG_TYPE_SYSCALL`.";
    Netfilter = 32, "netfilter", "`BPF_PROG_TYPE_NETFILTER`.";
}

impl KernelProgType {
    /// The `BPF_PROG_TYPE_*` number.
    pub fn number(self) -> u32 {
        self as u32
    }

    /// The type with bpftool's name `name` (`sched_cls`), or with the name of a section
    /// libbpf knows (`tc`, `socket`, `fentry`): what `bpfvm run --type` accepts.
    pub fn from_name(name: &str) -> Option<KernelProgType> {
        KernelProgType::ALL
            .iter()
            .copied()
            .find(|t| t.name() == name)
            .or_else(|| section_type(name).map(|s| s.prog_type))
    }

    /// The type bpfvm runs programs of this kernel type as, or `None` when bpfvm cannot
    /// run it yet (its context is not modelled).
    pub fn runnable(self) -> Option<ProgramType> {
        Some(match self {
            KernelProgType::SocketFilter => ProgramType::SocketFilter,
            KernelProgType::Kprobe => ProgramType::Kprobe,
            KernelProgType::SchedCls => ProgramType::SchedCls,
            KernelProgType::SchedAct => ProgramType::SchedAct,
            KernelProgType::Tracepoint => ProgramType::Tracepoint,
            KernelProgType::Xdp => ProgramType::Xdp,
            KernelProgType::CgroupSkb => ProgramType::CgroupSkb,
            KernelProgType::RawTracepoint => ProgramType::RawTracepoint,
            KernelProgType::Tracing => ProgramType::Tracing,
            KernelProgType::PerfEvent => ProgramType::PerfEvent,
            KernelProgType::Syscall => ProgramType::Syscall,
            _ => return None,
        })
    }

    /// Names `bpfvm run --type` accepts, for error messages.
    pub fn names() -> String {
        KernelProgType::ALL
            .iter()
            .map(|t| t.name())
            .collect::<Vec<_>>()
            .join(", ")
    }
}

impl fmt::Display for KernelProgType {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

/// libbpf's name of each `enum bpf_attach_type` value (`attach_type_name`), by number.
const ATTACH_TYPE_NAMES: [&str; 62] = [
    "cgroup_inet_ingress",            // 0 BPF_CGROUP_INET_INGRESS
    "cgroup_inet_egress",             // 1 BPF_CGROUP_INET_EGRESS
    "cgroup_inet_sock_create",        // 2 BPF_CGROUP_INET_SOCK_CREATE
    "cgroup_sock_ops",                // 3 BPF_CGROUP_SOCK_OPS
    "sk_skb_stream_parser",           // 4 BPF_SK_SKB_STREAM_PARSER
    "sk_skb_stream_verdict",          // 5 BPF_SK_SKB_STREAM_VERDICT
    "cgroup_device",                  // 6 BPF_CGROUP_DEVICE
    "sk_msg_verdict",                 // 7 BPF_SK_MSG_VERDICT
    "cgroup_inet4_bind",              // 8 BPF_CGROUP_INET4_BIND
    "cgroup_inet6_bind",              // 9 BPF_CGROUP_INET6_BIND
    "cgroup_inet4_connect",           // 10 BPF_CGROUP_INET4_CONNECT
    "cgroup_inet6_connect",           // 11 BPF_CGROUP_INET6_CONNECT
    "cgroup_inet4_post_bind",         // 12 BPF_CGROUP_INET4_POST_BIND
    "cgroup_inet6_post_bind",         // 13 BPF_CGROUP_INET6_POST_BIND
    "cgroup_udp4_sendmsg",            // 14 BPF_CGROUP_UDP4_SENDMSG
    "cgroup_udp6_sendmsg",            // 15 BPF_CGROUP_UDP6_SENDMSG
    "lirc_mode2",                     // 16 BPF_LIRC_MODE2
    "flow_dissector",                 // 17 BPF_FLOW_DISSECTOR
    "cgroup_sysctl",                  // 18 BPF_CGROUP_SYSCTL
    "cgroup_udp4_recvmsg",            // 19 BPF_CGROUP_UDP4_RECVMSG
    "cgroup_udp6_recvmsg",            // 20 BPF_CGROUP_UDP6_RECVMSG
    "cgroup_getsockopt",              // 21 BPF_CGROUP_GETSOCKOPT
    "cgroup_setsockopt",              // 22 BPF_CGROUP_SETSOCKOPT
    "trace_raw_tp",                   // 23 BPF_TRACE_RAW_TP
    "trace_fentry",                   // 24 BPF_TRACE_FENTRY
    "trace_fexit",                    // 25 BPF_TRACE_FEXIT
    "modify_return",                  // 26 BPF_MODIFY_RETURN
    "lsm_mac",                        // 27 BPF_LSM_MAC
    "trace_iter",                     // 28 BPF_TRACE_ITER
    "cgroup_inet4_getpeername",       // 29 BPF_CGROUP_INET4_GETPEERNAME
    "cgroup_inet6_getpeername",       // 30 BPF_CGROUP_INET6_GETPEERNAME
    "cgroup_inet4_getsockname",       // 31 BPF_CGROUP_INET4_GETSOCKNAME
    "cgroup_inet6_getsockname",       // 32 BPF_CGROUP_INET6_GETSOCKNAME
    "xdp_devmap",                     // 33 BPF_XDP_DEVMAP
    "cgroup_inet_sock_release",       // 34 BPF_CGROUP_INET_SOCK_RELEASE
    "xdp_cpumap",                     // 35 BPF_XDP_CPUMAP
    "sk_lookup",                      // 36 BPF_SK_LOOKUP
    "xdp",                            // 37 BPF_XDP
    "sk_skb_verdict",                 // 38 BPF_SK_SKB_VERDICT
    "sk_reuseport_select",            // 39 BPF_SK_REUSEPORT_SELECT
    "sk_reuseport_select_or_migrate", // 40 BPF_SK_REUSEPORT_SELECT_OR_MIGRATE
    "perf_event",                     // 41 BPF_PERF_EVENT
    "trace_kprobe_multi",             // 42 BPF_TRACE_KPROBE_MULTI
    "lsm_cgroup",                     // 43 BPF_LSM_CGROUP
    "struct_ops",                     // 44 BPF_STRUCT_OPS
    "netfilter",                      // 45 BPF_NETFILTER
    "tcx_ingress",                    // 46 BPF_TCX_INGRESS
    "tcx_egress",                     // 47 BPF_TCX_EGRESS
    "trace_uprobe_multi",             // 48 BPF_TRACE_UPROBE_MULTI
    "cgroup_unix_connect",            // 49 BPF_CGROUP_UNIX_CONNECT
    "cgroup_unix_sendmsg",            // 50 BPF_CGROUP_UNIX_SENDMSG
    "cgroup_unix_recvmsg",            // 51 BPF_CGROUP_UNIX_RECVMSG
    "cgroup_unix_getpeername",        // 52 BPF_CGROUP_UNIX_GETPEERNAME
    "cgroup_unix_getsockname",        // 53 BPF_CGROUP_UNIX_GETSOCKNAME
    "netkit_primary",                 // 54 BPF_NETKIT_PRIMARY
    "netkit_peer",                    // 55 BPF_NETKIT_PEER
    "trace_kprobe_session",           // 56 BPF_TRACE_KPROBE_SESSION
    "trace_uprobe_session",           // 57 BPF_TRACE_UPROBE_SESSION
    "trace_fsession",                 // 58 BPF_TRACE_FSESSION
    "trace_fentry_multi",             // 59 BPF_TRACE_FENTRY_MULTI
    "trace_fexit_multi",              // 60 BPF_TRACE_FEXIT_MULTI
    "trace_fsession_multi",           // 61 BPF_TRACE_FSESSION_MULTI
];

/// libbpf's name of attach type `n` (`trace_fentry`), if the kernel defines it.
pub fn attach_type_name(n: u32) -> Option<&'static str> {
    ATTACH_TYPE_NAMES.get(n as usize).copied()
}

/// What libbpf derives from a section name: one entry of its `section_defs` table.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct SectionType {
    /// The table entry's pattern (`fentry+`, `xdp`, `sk_skb/stream_parser`).
    pub pattern: &'static str,
    /// The kernel program type.
    pub prog_type: KernelProgType,
    /// `expected_attach_type` libbpf passes to `BPF_PROG_LOAD`, when the entry names
    /// one (`None` means libbpf passes 0).
    pub expected_attach_type: Option<u32>,
    /// `BPF_F_SLEEPABLE` (`fentry.s/`, `lsm.s/`, `syscall`, ...).
    pub sleepable: bool,
    /// `BPF_F_XDP_HAS_FRAGS` (`xdp.frags`).
    pub xdp_frags: bool,
}

impl SectionType {
    /// libbpf's name of the expected attach type, when the entry names one.
    pub fn attach_type_name(&self) -> Option<&'static str> {
        self.expected_attach_type.and_then(attach_type_name)
    }

    /// The type bpfvm runs the program as ([`KernelProgType::runnable`]).
    pub fn runnable(&self) -> Option<ProgramType> {
        // Of the tracing attach types bpfvm runs tp_btf, fentry, fexit and fmod_ret
        // (23..=26); iterators and the multi-function forms have other contexts.
        if self.prog_type == KernelProgType::Tracing
            && !self
                .expected_attach_type
                .is_some_and(|a| (23..=26).contains(&a))
        {
            return None;
        }
        self.prog_type.runnable()
    }
}

const fn def(
    pattern: &'static str,
    prog_type: KernelProgType,
    expected_attach_type: Option<u32>,
    sleepable: bool,
    xdp_frags: bool,
) -> SectionType {
    SectionType {
        pattern,
        prog_type,
        expected_attach_type,
        sleepable,
        xdp_frags,
    }
}

use KernelProgType::*;

/// libbpf's `section_defs` (libbpf.c), in its order: the first entry that matches wins.
/// A pattern ending in `+` matches the name itself or the name followed by `/...`; one
/// ending in `/` matches any name starting with it; any other pattern only itself.
pub const SECTION_DEFS: &[SectionType] = &[
    def("socket", SocketFilter, None, false, false),
    def("sk_reuseport/migrate", SkReuseport, Some(40), false, false),
    def("sk_reuseport", SkReuseport, Some(39), false, false),
    def("kprobe+", Kprobe, None, false, false),
    def("uprobe+", Kprobe, None, false, false),
    def("uprobe.s+", Kprobe, None, true, false),
    def("kretprobe+", Kprobe, None, false, false),
    def("uretprobe+", Kprobe, None, false, false),
    def("uretprobe.s+", Kprobe, None, true, false),
    def("kprobe.multi+", Kprobe, Some(42), false, false),
    def("kretprobe.multi+", Kprobe, Some(42), false, false),
    def("kprobe.session+", Kprobe, Some(56), false, false),
    def("uprobe.multi+", Kprobe, Some(48), false, false),
    def("uretprobe.multi+", Kprobe, Some(48), false, false),
    def("uprobe.session+", Kprobe, Some(57), false, false),
    def("uprobe.multi.s+", Kprobe, Some(48), true, false),
    def("uretprobe.multi.s+", Kprobe, Some(48), true, false),
    def("uprobe.session.s+", Kprobe, Some(57), true, false),
    def("ksyscall+", Kprobe, None, false, false),
    def("kretsyscall+", Kprobe, None, false, false),
    def("usdt+", Kprobe, None, false, false),
    def("usdt.s+", Kprobe, None, true, false),
    def("tc/ingress", SchedCls, Some(46), false, false),
    def("tc/egress", SchedCls, Some(47), false, false),
    def("tcx/ingress", SchedCls, Some(46), false, false),
    def("tcx/egress", SchedCls, Some(47), false, false),
    def("tc", SchedCls, None, false, false),
    def("classifier", SchedCls, None, false, false),
    def("action", SchedAct, None, false, false),
    def("netkit/primary", SchedCls, Some(54), false, false),
    def("netkit/peer", SchedCls, Some(55), false, false),
    def("tracepoint+", Tracepoint, None, false, false),
    def("tp+", Tracepoint, None, false, false),
    def("tracepoint.s+", Tracepoint, None, true, false),
    def("tp.s+", Tracepoint, None, true, false),
    def("raw_tracepoint+", RawTracepoint, None, false, false),
    def("raw_tp+", RawTracepoint, None, false, false),
    def("raw_tracepoint.s+", RawTracepoint, None, true, false),
    def("raw_tp.s+", RawTracepoint, None, true, false),
    def(
        "raw_tracepoint.w+",
        RawTracepointWritable,
        None,
        false,
        false,
    ),
    def("raw_tp.w+", RawTracepointWritable, None, false, false),
    def("tp_btf+", Tracing, Some(23), false, false),
    def("tp_btf.s+", Tracing, Some(23), true, false),
    def("fentry+", Tracing, Some(24), false, false),
    def("fmod_ret+", Tracing, Some(26), false, false),
    def("fexit+", Tracing, Some(25), false, false),
    def("fentry.s+", Tracing, Some(24), true, false),
    def("fmod_ret.s+", Tracing, Some(26), true, false),
    def("fexit.s+", Tracing, Some(25), true, false),
    def("fsession+", Tracing, Some(58), false, false),
    def("fsession.s+", Tracing, Some(58), true, false),
    def("fsession.multi+", Tracing, Some(61), false, false),
    def("fsession.multi.s+", Tracing, Some(61), true, false),
    def("fentry.multi+", Tracing, Some(59), false, false),
    def("fexit.multi+", Tracing, Some(60), false, false),
    def("fentry.multi.s+", Tracing, Some(59), true, false),
    def("fexit.multi.s+", Tracing, Some(60), true, false),
    def("freplace+", Ext, None, false, false),
    def("lsm+", Lsm, Some(27), false, false),
    def("lsm.s+", Lsm, Some(27), true, false),
    def("lsm_cgroup+", Lsm, Some(43), false, false),
    def("iter+", Tracing, Some(28), false, false),
    def("iter.s+", Tracing, Some(28), true, false),
    def("syscall", Syscall, None, true, false),
    def("xdp.frags/devmap", Xdp, Some(33), false, true),
    def("xdp/devmap", Xdp, Some(33), false, false),
    def("xdp.frags/cpumap", Xdp, Some(35), false, true),
    def("xdp/cpumap", Xdp, Some(35), false, false),
    def("xdp.frags", Xdp, Some(37), false, true),
    def("xdp", Xdp, Some(37), false, false),
    def("perf_event", PerfEvent, None, false, false),
    def("lwt_in", LwtIn, None, false, false),
    def("lwt_out", LwtOut, None, false, false),
    def("lwt_xmit", LwtXmit, None, false, false),
    def("lwt_seg6local", LwtSeg6local, None, false, false),
    def("sockops", SockOps, Some(3), false, false),
    def("sk_skb/stream_parser", SkSkb, Some(4), false, false),
    def("sk_skb/stream_verdict", SkSkb, Some(5), false, false),
    def("sk_skb/verdict", SkSkb, Some(38), false, false),
    def("sk_skb", SkSkb, None, false, false),
    def("sk_msg", SkMsg, Some(7), false, false),
    def("lirc_mode2", LircMode2, Some(16), false, false),
    def("flow_dissector", FlowDissector, Some(17), false, false),
    def("cgroup_skb/ingress", CgroupSkb, Some(0), false, false),
    def("cgroup_skb/egress", CgroupSkb, Some(1), false, false),
    def("cgroup/skb", CgroupSkb, None, false, false),
    def("cgroup/sock_create", CgroupSock, Some(2), false, false),
    def("cgroup/sock_release", CgroupSock, Some(34), false, false),
    def("cgroup/sock", CgroupSock, Some(2), false, false),
    def("cgroup/post_bind4", CgroupSock, Some(12), false, false),
    def("cgroup/post_bind6", CgroupSock, Some(13), false, false),
    def("cgroup/bind4", CgroupSockAddr, Some(8), false, false),
    def("cgroup/bind6", CgroupSockAddr, Some(9), false, false),
    def("cgroup/connect4", CgroupSockAddr, Some(10), false, false),
    def("cgroup/connect6", CgroupSockAddr, Some(11), false, false),
    def(
        "cgroup/connect_unix",
        CgroupSockAddr,
        Some(49),
        false,
        false,
    ),
    def("cgroup/sendmsg4", CgroupSockAddr, Some(14), false, false),
    def("cgroup/sendmsg6", CgroupSockAddr, Some(15), false, false),
    def(
        "cgroup/sendmsg_unix",
        CgroupSockAddr,
        Some(50),
        false,
        false,
    ),
    def("cgroup/recvmsg4", CgroupSockAddr, Some(19), false, false),
    def("cgroup/recvmsg6", CgroupSockAddr, Some(20), false, false),
    def(
        "cgroup/recvmsg_unix",
        CgroupSockAddr,
        Some(51),
        false,
        false,
    ),
    def(
        "cgroup/getpeername4",
        CgroupSockAddr,
        Some(29),
        false,
        false,
    ),
    def(
        "cgroup/getpeername6",
        CgroupSockAddr,
        Some(30),
        false,
        false,
    ),
    def(
        "cgroup/getpeername_unix",
        CgroupSockAddr,
        Some(52),
        false,
        false,
    ),
    def(
        "cgroup/getsockname4",
        CgroupSockAddr,
        Some(31),
        false,
        false,
    ),
    def(
        "cgroup/getsockname6",
        CgroupSockAddr,
        Some(32),
        false,
        false,
    ),
    def(
        "cgroup/getsockname_unix",
        CgroupSockAddr,
        Some(53),
        false,
        false,
    ),
    def("cgroup/sysctl", CgroupSysctl, Some(18), false, false),
    def("cgroup/getsockopt", CgroupSockopt, Some(21), false, false),
    def("cgroup/setsockopt", CgroupSockopt, Some(22), false, false),
    def("cgroup/dev", CgroupDevice, Some(6), false, false),
    def("struct_ops+", StructOps, None, false, false),
    def("struct_ops.s+", StructOps, None, true, false),
    def("sk_lookup", SkLookup, Some(36), false, false),
    def("netfilter", Netfilter, Some(45), false, false),
];

/// Whether `name` matches libbpf section pattern `pattern` (`sec_def_matches`).
fn matches(pattern: &str, name: &str) -> bool {
    if pattern.ends_with('/') {
        return name.starts_with(pattern);
    }
    if let Some(base) = pattern.strip_suffix('+') {
        return match name.strip_prefix(base) {
            Some(rest) => rest.is_empty() || rest.starts_with('/'),
            None => false,
        };
    }
    pattern == name
}

/// What libbpf derives from section `name`, or `None` when libbpf does not know the
/// name (a legacy name such as `xdp_pass` or `prog`: the program type must be given).
pub fn section_type(name: &str) -> Option<SectionType> {
    SECTION_DEFS
        .iter()
        .copied()
        .find(|d| matches(d.pattern, name))
}

/// The program type bpfvm runs a program of section `name` as: libbpf's type when bpfvm
/// runs it, else [`ProgramType::Unspecified`] (an unknown section, or a type bpfvm
/// cannot run; [`section_type`] tells which).
pub fn program_type_for_section(name: &str) -> ProgramType {
    section_type(name)
        .and_then(|s| s.runnable())
        .unwrap_or(ProgramType::Unspecified)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn libbpf_section_names() {
        let cases = [
            ("xdp", ProgramType::Xdp),
            ("xdp.frags", ProgramType::Xdp),
            ("xdp/devmap", ProgramType::Xdp),
            ("xdp.frags/cpumap", ProgramType::Xdp),
            ("tc", ProgramType::SchedCls),
            ("tc/ingress", ProgramType::SchedCls),
            ("tcx/egress", ProgramType::SchedCls),
            ("netkit/peer", ProgramType::SchedCls),
            ("classifier", ProgramType::SchedCls),
            ("action", ProgramType::SchedAct),
            ("socket", ProgramType::SocketFilter),
            ("kprobe/do_sys_open", ProgramType::Kprobe),
            ("kretprobe/do_sys_open", ProgramType::Kprobe),
            ("uprobe.s/bin:fn", ProgramType::Kprobe),
            ("usdt", ProgramType::Kprobe),
            (
                "tracepoint/syscalls/sys_enter_openat",
                ProgramType::Tracepoint,
            ),
            ("tp/sched/sched_switch", ProgramType::Tracepoint),
            ("cgroup_skb/ingress", ProgramType::CgroupSkb),
            ("cgroup/skb", ProgramType::CgroupSkb),
            ("lsm/file_open", ProgramType::Unspecified),
            ("bpfvm/custom", ProgramType::Unspecified),
            ("xdpfoo", ProgramType::Unspecified),
            ("xdp/foo", ProgramType::Unspecified),
            ("tc/foo", ProgramType::Unspecified),
        ];
        for (name, ty) in cases {
            assert_eq!(program_type_for_section(name), ty, "{name}");
        }
    }

    #[test]
    fn kernel_types_and_attach_types() {
        let cases = [
            ("tp_btf/sched_switch", Tracing, Some("trace_raw_tp"), false),
            ("fentry/do_unlinkat", Tracing, Some("trace_fentry"), false),
            ("fexit.s/x", Tracing, Some("trace_fexit"), true),
            ("lsm/file_open", Lsm, Some("lsm_mac"), false),
            ("lsm.s/bprm", Lsm, Some("lsm_mac"), true),
            ("iter/task", Tracing, Some("trace_iter"), false),
            ("sk_skb", SkSkb, None, false),
            (
                "sk_skb/stream_parser",
                SkSkb,
                Some("sk_skb_stream_parser"),
                false,
            ),
            ("sk_msg", SkMsg, Some("sk_msg_verdict"), false),
            (
                "cgroup/connect4",
                CgroupSockAddr,
                Some("cgroup_inet4_connect"),
                false,
            ),
            (
                "cgroup/sock",
                CgroupSock,
                Some("cgroup_inet_sock_create"),
                false,
            ),
            ("cgroup/dev", CgroupDevice, Some("cgroup_device"), false),
            ("struct_ops/tcp_ca", StructOps, None, false),
            ("struct_ops.s", StructOps, None, true),
            ("tc/ingress", SchedCls, Some("tcx_ingress"), false),
            ("netkit/primary", SchedCls, Some("netkit_primary"), false),
            ("xdp", Xdp, Some("xdp"), false),
            ("xdp/devmap", Xdp, Some("xdp_devmap"), false),
            ("syscall", Syscall, None, true),
            ("raw_tp.w/x", RawTracepointWritable, None, false),
            (
                "sk_reuseport/migrate",
                SkReuseport,
                Some("sk_reuseport_select_or_migrate"),
                false,
            ),
            ("netfilter", Netfilter, Some("netfilter"), false),
            ("perf_event", PerfEvent, None, false),
            (
                "flow_dissector",
                FlowDissector,
                Some("flow_dissector"),
                false,
            ),
        ];
        for (name, ty, attach, sleepable) in cases {
            let s = section_type(name).unwrap_or_else(|| panic!("{name} unknown"));
            assert_eq!(s.prog_type, ty, "{name}");
            assert_eq!(s.attach_type_name(), attach, "{name}");
            assert_eq!(s.sleepable, sleepable, "{name}");
        }
        assert!(section_type("xdp.frags").unwrap().xdp_frags);
        assert_eq!(section_type("xdp").unwrap().expected_attach_type, Some(37));
        for unknown in ["xdp_pass", "prog", "sk_skbx", "fentry_x", "kprobex/y", ""] {
            assert!(section_type(unknown).is_none(), "{unknown}");
        }
    }

    #[test]
    fn names_round_trip() {
        for &t in KernelProgType::ALL {
            assert_eq!(KernelProgType::from_name(t.name()), Some(t));
        }
        assert_eq!(KernelProgType::ALL.len(), 32);
        assert_eq!(KernelProgType::Netfilter.number(), 32);
        assert_eq!(KernelProgType::from_name("tc"), Some(SchedCls));
        assert_eq!(KernelProgType::from_name("socket"), Some(SocketFilter));
        assert_eq!(KernelProgType::from_name("nonsense"), None);
        assert_eq!(attach_type_name(37), Some("xdp"));
        assert_eq!(attach_type_name(999), None);
    }
}
