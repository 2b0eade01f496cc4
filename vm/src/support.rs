//! What bpfvm supports, generated from the helper registry and the map types: every helper
//! and map type of Linux 6.18's uapi (`enum bpf_func_id`, `enum bpf_map_type`) with its
//! status in bpfvm. The README's support section is [`markdown`]'s output (checked by a
//! test, printed by `bpfvm support`).

use std::fmt::Write;

use bpfvm_helpers::net::program_types;
use bpfvm_helpers::{PacketProgram, Registry};
use bpfvm_maps::{Map, MapError, MapSpec, MapType};

/// Helper names by id (`BPF_FUNC_*` without the prefix), as Linux 6.18's uapi numbers them.
pub const KERNEL_HELPERS: [&str; 212] = [
    "unspec",
    "map_lookup_elem",
    "map_update_elem",
    "map_delete_elem",
    "probe_read",
    "ktime_get_ns",
    "trace_printk",
    "get_prandom_u32",
    "get_smp_processor_id",
    "skb_store_bytes",
    "l3_csum_replace",
    "l4_csum_replace",
    "tail_call",
    "clone_redirect",
    "get_current_pid_tgid",
    "get_current_uid_gid",
    "get_current_comm",
    "get_cgroup_classid",
    "skb_vlan_push",
    "skb_vlan_pop",
    "skb_get_tunnel_key",
    "skb_set_tunnel_key",
    "perf_event_read",
    "redirect",
    "get_route_realm",
    "perf_event_output",
    "skb_load_bytes",
    "get_stackid",
    "csum_diff",
    "skb_get_tunnel_opt",
    "skb_set_tunnel_opt",
    "skb_change_proto",
    "skb_change_type",
    "skb_under_cgroup",
    "get_hash_recalc",
    "get_current_task",
    "probe_write_user",
    "current_task_under_cgroup",
    "skb_change_tail",
    "skb_pull_data",
    "csum_update",
    "set_hash_invalid",
    "get_numa_node_id",
    "skb_change_head",
    "xdp_adjust_head",
    "probe_read_str",
    "get_socket_cookie",
    "get_socket_uid",
    "set_hash",
    "setsockopt",
    "skb_adjust_room",
    "redirect_map",
    "sk_redirect_map",
    "sock_map_update",
    "xdp_adjust_meta",
    "perf_event_read_value",
    "perf_prog_read_value",
    "getsockopt",
    "override_return",
    "sock_ops_cb_flags_set",
    "msg_redirect_map",
    "msg_apply_bytes",
    "msg_cork_bytes",
    "msg_pull_data",
    "bind",
    "xdp_adjust_tail",
    "skb_get_xfrm_state",
    "get_stack",
    "skb_load_bytes_relative",
    "fib_lookup",
    "sock_hash_update",
    "msg_redirect_hash",
    "sk_redirect_hash",
    "lwt_push_encap",
    "lwt_seg6_store_bytes",
    "lwt_seg6_adjust_srh",
    "lwt_seg6_action",
    "rc_repeat",
    "rc_keydown",
    "skb_cgroup_id",
    "get_current_cgroup_id",
    "get_local_storage",
    "sk_select_reuseport",
    "skb_ancestor_cgroup_id",
    "sk_lookup_tcp",
    "sk_lookup_udp",
    "sk_release",
    "map_push_elem",
    "map_pop_elem",
    "map_peek_elem",
    "msg_push_data",
    "msg_pop_data",
    "rc_pointer_rel",
    "spin_lock",
    "spin_unlock",
    "sk_fullsock",
    "tcp_sock",
    "skb_ecn_set_ce",
    "get_listener_sock",
    "skc_lookup_tcp",
    "tcp_check_syncookie",
    "sysctl_get_name",
    "sysctl_get_current_value",
    "sysctl_get_new_value",
    "sysctl_set_new_value",
    "strtol",
    "strtoul",
    "sk_storage_get",
    "sk_storage_delete",
    "send_signal",
    "tcp_gen_syncookie",
    "skb_output",
    "probe_read_user",
    "probe_read_kernel",
    "probe_read_user_str",
    "probe_read_kernel_str",
    "tcp_send_ack",
    "send_signal_thread",
    "jiffies64",
    "read_branch_records",
    "get_ns_current_pid_tgid",
    "xdp_output",
    "get_netns_cookie",
    "get_current_ancestor_cgroup_id",
    "sk_assign",
    "ktime_get_boot_ns",
    "seq_printf",
    "seq_write",
    "sk_cgroup_id",
    "sk_ancestor_cgroup_id",
    "ringbuf_output",
    "ringbuf_reserve",
    "ringbuf_submit",
    "ringbuf_discard",
    "ringbuf_query",
    "csum_level",
    "skc_to_tcp6_sock",
    "skc_to_tcp_sock",
    "skc_to_tcp_timewait_sock",
    "skc_to_tcp_request_sock",
    "skc_to_udp6_sock",
    "get_task_stack",
    "load_hdr_opt",
    "store_hdr_opt",
    "reserve_hdr_opt",
    "inode_storage_get",
    "inode_storage_delete",
    "d_path",
    "copy_from_user",
    "snprintf_btf",
    "seq_printf_btf",
    "skb_cgroup_classid",
    "redirect_neigh",
    "per_cpu_ptr",
    "this_cpu_ptr",
    "redirect_peer",
    "task_storage_get",
    "task_storage_delete",
    "get_current_task_btf",
    "bprm_opts_set",
    "ktime_get_coarse_ns",
    "ima_inode_hash",
    "sock_from_file",
    "check_mtu",
    "for_each_map_elem",
    "snprintf",
    "sys_bpf",
    "btf_find_by_name_kind",
    "sys_close",
    "timer_init",
    "timer_set_callback",
    "timer_start",
    "timer_cancel",
    "get_func_ip",
    "get_attach_cookie",
    "task_pt_regs",
    "get_branch_snapshot",
    "trace_vprintk",
    "skc_to_unix_sock",
    "kallsyms_lookup_name",
    "find_vma",
    "loop",
    "strncmp",
    "get_func_arg",
    "get_func_ret",
    "get_func_arg_cnt",
    "get_retval",
    "set_retval",
    "xdp_get_buff_len",
    "xdp_load_bytes",
    "xdp_store_bytes",
    "copy_from_user_task",
    "skb_set_tstamp",
    "ima_file_hash",
    "kptr_xchg",
    "map_lookup_percpu_elem",
    "skc_to_mptcp_sock",
    "dynptr_from_mem",
    "ringbuf_reserve_dynptr",
    "ringbuf_submit_dynptr",
    "ringbuf_discard_dynptr",
    "dynptr_read",
    "dynptr_write",
    "dynptr_data",
    "tcp_raw_gen_syncookie_ipv4",
    "tcp_raw_gen_syncookie_ipv6",
    "tcp_raw_check_syncookie_ipv4",
    "tcp_raw_check_syncookie_ipv6",
    "ktime_get_tai_ns",
    "user_ringbuf_drain",
    "cgrp_storage_get",
    "cgrp_storage_delete",
];

/// Map type names by number (`BPF_MAP_TYPE_*` without the prefix), Linux 6.18.
pub const KERNEL_MAP_TYPES: [&str; 34] = [
    "unspec",
    "hash",
    "array",
    "prog_array",
    "perf_event_array",
    "percpu_hash",
    "percpu_array",
    "stack_trace",
    "cgroup_array",
    "lru_hash",
    "lru_percpu_hash",
    "lpm_trie",
    "array_of_maps",
    "hash_of_maps",
    "devmap",
    "sockmap",
    "cpumap",
    "xskmap",
    "sockhash",
    "cgroup_storage",
    "reuseport_sockarray",
    "percpu_cgroup_storage",
    "queue",
    "stack",
    "sk_storage",
    "devmap_hash",
    "struct_ops",
    "ringbuf",
    "inode_storage",
    "task_storage",
    "bloom_filter",
    "user_ringbuf",
    "cgrp_storage",
    "arena",
];

/// One helper's support.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct HelperSupport {
    /// `BPF_FUNC_*` number.
    pub id: u32,
    /// `bpf_<name>`.
    pub name: String,
    /// Whether bpfvm's built-in registry has it.
    pub supported: bool,
    /// The program types that may call it, for the packet helpers (others: every type).
    pub programs: Option<&'static [PacketProgram]>,
}

/// One map type's support.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct MapTypeSupport {
    /// `BPF_MAP_TYPE_*` number.
    pub id: u32,
    /// The type's name in lower case (`percpu_array`).
    pub name: &'static str,
    /// Whether bpfvm creates and runs maps of this type.
    pub supported: bool,
    /// Whether bpfvm knows the type without implementing it (creation: `EOPNOTSUPP`).
    pub known: bool,
}

/// Every kernel helper with bpfvm's support for it.
pub fn helpers() -> Vec<HelperSupport> {
    let registry = Registry::with_builtins();
    KERNEL_HELPERS
        .iter()
        .enumerate()
        .skip(1)
        .map(|(id, name)| HelperSupport {
            id: id as u32,
            name: format!("bpf_{name}"),
            supported: registry.get(id as u32).is_some(),
            programs: program_types(id as u32),
        })
        .collect()
}

/// Every kernel map type with bpfvm's support for it: known types are supported unless
/// creating one answers `EOPNOTSUPP` ("known, not implemented").
pub fn map_types() -> Vec<MapTypeSupport> {
    KERNEL_MAP_TYPES
        .iter()
        .enumerate()
        .skip(1)
        .map(|(id, name)| {
            let (known, supported) = match MapType::try_from(id as u32) {
                Ok(t) => {
                    let r = Map::create(MapSpec::new(t, 4, 8, 1), 1);
                    (true, !matches!(r, Err(MapError::UnsupportedMapType { .. })))
                }
                Err(_) => (false, false),
            };
            MapTypeSupport {
                id: id as u32,
                name,
                supported,
                known,
            }
        })
        .collect()
}

/// The support tables in Markdown: supported helpers (with the program types of packet
/// helpers), the others by name, and every map type.
pub fn markdown() -> String {
    let mut out = String::new();
    let hs = helpers();
    let (yes, no): (Vec<_>, Vec<_>) = hs.iter().partition(|h| h.supported);
    let _ = writeln!(
        out,
        "**Helpers**: {} of the kernel's {} are supported.\n",
        yes.len(),
        hs.len()
    );
    out.push_str("| id | helper | program types |\n|---:|---|---|\n");
    for h in &yes {
        let programs = match h.programs {
            Some(p) => p.iter().map(|p| p.name()).collect::<Vec<_>>().join(", "),
            None => "all".to_string(),
        };
        let _ = writeln!(out, "| {} | `{}` | {programs} |", h.id, h.name);
    }
    let _ = writeln!(out, "\nNot supported ({}): {}.\n", no.len(), {
        let names: Vec<String> = no
            .iter()
            .map(|h| format!("`{}` ({})", h.name, h.id))
            .collect();
        names.join(", ")
    });
    let ms = map_types();
    let supported = ms.iter().filter(|m| m.supported).count();
    let _ = writeln!(
        out,
        "**Map types**: {supported} of the kernel's {} are supported.\n",
        ms.len()
    );
    out.push_str("| id | map type | status |\n|---:|---|---|\n");
    for m in &ms {
        let status = match (m.supported, m.known) {
            (true, _) => "supported",
            (false, true) => "known, not implemented (`EOPNOTSUPP`)",
            (false, false) => "not supported (`EINVAL`)",
        };
        let _ = writeln!(out, "| {} | `{}` | {status} |", m.id, m.name);
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_tables_follow_the_kernels_numbering() {
        assert_eq!(KERNEL_HELPERS[23], "redirect");
        assert_eq!(KERNEL_HELPERS[69], "fib_lookup");
        assert_eq!(KERNEL_HELPERS[155], "redirect_peer");
        assert_eq!(KERNEL_HELPERS[211], "cgrp_storage_delete");
        assert_eq!(KERNEL_MAP_TYPES[25], "devmap_hash");
        // Every map type bpfvm knows has its kernel number.
        for (id, name) in KERNEL_MAP_TYPES.iter().enumerate() {
            if let Ok(t) = MapType::try_from(id as u32) {
                assert_eq!(u32::from(t), id as u32, "{name}");
            }
        }
        // Every registered built-in helper is a kernel helper of that number.
        let r = Registry::with_builtins();
        for id in r.ids() {
            let name = KERNEL_HELPERS[id as usize];
            assert_eq!(
                r.get(id).unwrap().name,
                format!("bpf_{name}"),
                "helper {id}"
            );
        }
    }

    #[test]
    fn packet_helpers_show_their_program_types() {
        let md = markdown();
        assert!(md.contains("| 44 | `bpf_xdp_adjust_head` | xdp |"), "{md}");
        assert!(md.contains("| 1 | `bpf_map_lookup_elem` | all |"));
        assert!(md.contains("| 16 | `cpumap` | supported |"));
        assert!(md.contains("| 22 | `queue` | supported |"));
        assert!(md.contains("| 15 | `sockmap` | not supported (`EINVAL`) |"));
    }
}
