//! BPF program types, as libbpf derives them from section names.

/// The kind of program, which decides its context (`r1`) layout.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum ProgramType {
    /// `BPF_PROG_TYPE_SOCKET_FILTER`: context is `struct __sk_buff`.
    #[doc(alias = "BPF_PROG_TYPE_SOCKET_FILTER")]
    SocketFilter,
    /// `BPF_PROG_TYPE_KPROBE`: context is `struct pt_regs`.
    #[doc(alias = "BPF_PROG_TYPE_KPROBE")]
    Kprobe,
    /// `BPF_PROG_TYPE_SCHED_CLS` (`tc`, `classifier`): context is `struct __sk_buff`.
    #[doc(alias = "BPF_PROG_TYPE_SCHED_CLS")]
    SchedCls,
    /// `BPF_PROG_TYPE_SCHED_ACT`: context is `struct __sk_buff`.
    #[doc(alias = "BPF_PROG_TYPE_SCHED_ACT")]
    SchedAct,
    /// `BPF_PROG_TYPE_TRACEPOINT`: context is the tracepoint's raw record.
    #[doc(alias = "BPF_PROG_TYPE_TRACEPOINT")]
    Tracepoint,
    /// `BPF_PROG_TYPE_XDP`: context is `struct xdp_md`.
    #[doc(alias = "BPF_PROG_TYPE_XDP")]
    Xdp,
    /// `BPF_PROG_TYPE_CGROUP_SKB`: context is `struct __sk_buff`.
    #[doc(alias = "BPF_PROG_TYPE_CGROUP_SKB")]
    CgroupSkb,
    /// `BPF_PROG_TYPE_RAW_TRACEPOINT` (`raw_tp/`, `raw_tracepoint/`): context is the
    /// tracepoint's `u64 args[]` (at most 12).
    #[doc(alias = "BPF_PROG_TYPE_RAW_TRACEPOINT")]
    RawTracepoint,
    /// `BPF_PROG_TYPE_TRACING` (`fentry/`, `fexit/`, `fmod_ret/`, `tp_btf/`): context is
    /// the attach target's arguments as `u64`s, typed by its BTF prototype
    /// ([`crate::Program::with_tracing_ctx`]).
    #[doc(alias = "BPF_PROG_TYPE_TRACING")]
    Tracing,
    /// `BPF_PROG_TYPE_PERF_EVENT`: context is `struct bpf_perf_event_data`.
    #[doc(alias = "BPF_PROG_TYPE_PERF_EVENT")]
    PerfEvent,
    /// `BPF_PROG_TYPE_SYSCALL`: context is a read-write buffer of the caller's size.
    #[doc(alias = "BPF_PROG_TYPE_SYSCALL")]
    Syscall,
    /// Any other section: the context is an opaque byte buffer given by the caller.
    Unspecified,
}

impl ProgramType {
    /// Whether the context is `struct __sk_buff`.
    pub fn uses_sk_buff(self) -> bool {
        matches!(
            self,
            Self::SocketFilter | Self::SchedCls | Self::SchedAct | Self::CgroupSkb
        )
    }
}
