//! Program types derived from section names, following libbpf's section table.

use crate::ProgramType;

/// The program type libbpf gives a program in section `name`.
///
/// Exact names (`xdp`, `tc`, `classifier`, `socket`, ...) and prefixes
/// (`kprobe/`, `tracepoint/`, `xdp/`, `tc/`, ...) as in libbpf's `section_defs`;
/// everything bpfvm does not model (e.g. `lsm/`, `fentry/`) is
/// [`ProgramType::Unspecified`].
pub fn program_type_for_section(name: &str) -> ProgramType {
    let base = name.split('/').next().unwrap_or(name);
    let has_suffix = name.len() > base.len();
    match base {
        "socket" => ProgramType::SocketFilter,
        "kprobe" | "kretprobe" | "uprobe" | "uretprobe" | "uprobe.s" | "uretprobe.s"
        | "ksyscall" | "kretsyscall" | "usdt" | "kprobe.multi" | "kretprobe.multi" => {
            ProgramType::Kprobe
        }
        "tc" | "tcx" | "classifier" | "netkit" => ProgramType::SchedCls,
        "action" => ProgramType::SchedAct,
        "tracepoint" | "tp" => ProgramType::Tracepoint,
        "xdp" | "xdp.frags" => ProgramType::Xdp,
        "cgroup_skb" => ProgramType::CgroupSkb,
        "cgroup" if has_suffix && name.starts_with("cgroup/skb") => ProgramType::CgroupSkb,
        _ => ProgramType::Unspecified,
    }
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
            ("tc", ProgramType::SchedCls),
            ("tc/ingress", ProgramType::SchedCls),
            ("classifier", ProgramType::SchedCls),
            ("action", ProgramType::SchedAct),
            ("socket", ProgramType::SocketFilter),
            ("kprobe/do_sys_open", ProgramType::Kprobe),
            ("kretprobe/do_sys_open", ProgramType::Kprobe),
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
        ];
        for (name, ty) in cases {
            assert_eq!(program_type_for_section(name), ty, "{name}");
        }
    }
}
