//! Types whose layout is part of the kernel's ABI, so a program's own BTF describes the
//! kernel's layout exactly: the contexts of `uapi/linux/bpf.h`, `pt_regs` of x86_64 (the
//! only architecture bpfvm's kprobe contexts model) and the protocol headers of
//! `uapi/linux/{if_ether,ip,ipv6,tcp,udp,icmp,icmpv6}.h`. Without a target BTF, CO-RE
//! relocations on these resolve against the program's own definitions.

/// The ABI type names (flavor-less).
pub const ABI_TYPES: &[&str] = &[
    // uapi/linux/bpf.h contexts and the structs they point to
    "__sk_buff",
    "xdp_md",
    "bpf_sock_ops",
    "bpf_sock",
    "bpf_sock_addr",
    "bpf_tcp_sock",
    "bpf_xdp_sock",
    "bpf_flow_keys",
    "bpf_sk_lookup",
    "sk_msg_md",
    "sk_reuseport_md",
    "bpf_sysctl",
    "bpf_sockopt",
    "bpf_cgroup_dev_ctx",
    "bpf_raw_tracepoint_args",
    "bpf_perf_event_data",
    "bpf_tunnel_key",
    "bpf_xfrm_state",
    "bpf_fib_lookup",
    "bpf_spin_lock",
    // uapi/linux/bpf.h enums used as return codes and flags
    "xdp_action",
    "sk_action",
    "bpf_ret_code",
    "bpf_adj_room_mode",
    "bpf_hdr_start_off",
    // x86_64 registers (kprobes)
    "pt_regs",
    // protocol headers
    "ethhdr",
    "vlan_hdr",
    "iphdr",
    "ipv6hdr",
    "in_addr",
    "in6_addr",
    "tcphdr",
    "udphdr",
    "icmphdr",
    "icmp6hdr",
    "arphdr",
];

/// Whether `name` (flavor-less) is an ABI type.
///
/// ```
/// assert!(bpfvm::loader::is_abi_type("__sk_buff"));
/// assert!(!bpfvm::loader::is_abi_type("task_struct"));
/// ```
pub fn is_abi_type(name: &str) -> bool {
    ABI_TYPES.contains(&name)
}
