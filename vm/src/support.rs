//! What bpfvm supports, generated from the code that implements it: every program type of
//! Linux 6.18's uapi (`enum bpf_prog_type`) with the section names libbpf gives it and
//! whether bpfvm runs it, the CO-RE relocation kinds the loader resolves, and every helper
//! and map type (`enum bpf_func_id`, `enum bpf_map_type`) with its status in bpfvm. The
//! README's support section is [`markdown`]'s output (checked by a test, printed by
//! `bpfvm support`).

use std::fmt::Write;

use bpfvm_helpers::net::program_types as helper_program_types;
use bpfvm_helpers::{PacketProgram, Registry};
use bpfvm_maps::{Map, MapError, MapSpec, MapType};

/// Helper names by id (`BPF_FUNC_*` without the prefix), as Linux 6.18's uapi numbers them:
/// the verifier's table.
pub use bpfvm_verifier::HELPER_NAMES as KERNEL_HELPERS;

/// Map type names by number (`BPF_MAP_TYPE_*` without the prefix), Linux 6.18: the
/// loader's table.
pub const KERNEL_MAP_TYPES: [&str; 34] = crate::loader::MAP_TYPE_NAMES;

/// One helper's support.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct HelperSupport {
    /// `BPF_FUNC_*` number.
    pub id: u32,
    /// `bpf_<name>`.
    pub name: String,
    /// Whether bpfvm's built-in registry has it (or, for `bpf_tail_call`, the interpreter
    /// engine implements it).
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

/// One kernel program type: the section names libbpf gives it and what bpfvm does with it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ProgramTypeSupport {
    /// `BPF_PROG_TYPE_*` number.
    pub id: u32,
    /// bpftool's name (`sched_cls`).
    pub name: &'static str,
    /// libbpf's section name patterns for it (`tc/ingress`, `xdp.frags`, `fentry+`).
    pub sections: Vec<&'static str>,
    /// The type bpfvm runs it as, if it runs it (others are parsed, linked and listed,
    /// and refused at load with `LoadError::CannotRunType`).
    pub runs_as: Option<crate::ProgramType>,
}

/// Every kernel program type, with its libbpf sections and whether bpfvm runs it.
pub fn program_types() -> Vec<ProgramTypeSupport> {
    use crate::loader::{KernelProgType, SECTION_DEFS};
    KernelProgType::ALL
        .iter()
        .map(|&t| ProgramTypeSupport {
            id: t as u32,
            name: t.name(),
            sections: SECTION_DEFS
                .iter()
                .filter(|d| d.prog_type == t)
                .map(|d| d.pattern)
                .collect(),
            runs_as: t.runnable(),
        })
        .collect()
}

/// Number of CO-RE relocation kinds of Linux 6.18 (`enum bpf_core_relo_kind`, 0..=12).
pub const KERNEL_CORE_RELO_KINDS: usize = 13;

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
            // `bpf_tail_call` is the interpreter engine's own (not a registry helper).
            supported: id as u32 == crate::insn::TAIL_CALL_HELPER
                || registry.get(id as u32).is_some(),
            programs: helper_program_types(id as u32),
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

/// The support tables in Markdown: program types (with their section names), CO-RE
/// relocation kinds, supported helpers (with the program types of packet helpers), the
/// others by name, and every map type.
pub fn markdown() -> String {
    let mut out = String::new();
    let ps = program_types();
    let runs = ps.iter().filter(|p| p.runs_as.is_some()).count();
    let _ = writeln!(
        out,
        "**Program types**: bpfvm runs {runs} of the kernel's {}; objects with programs of \
         the others load (each program gets its own error, `CannotRunType`, naming its type).\n",
        ps.len()
    );
    out.push_str("| id | program type | libbpf sections | bpfvm |\n|---:|---|---|---|\n");
    for p in &ps {
        let sections = if p.sections.is_empty() {
            "—".to_string()
        } else {
            p.sections
                .iter()
                .map(|s| format!("`{s}`"))
                .collect::<Vec<_>>()
                .join(" ")
        };
        let status = if p.name == "tracing" {
            "runs `tp_btf`, `fentry`, `fexit`, `fmod_ret` (with a target BTF); not `iter`, `.multi`"
        } else if p.runs_as.is_some() {
            "runs"
        } else {
            "not run"
        };
        let _ = writeln!(out, "| {} | `{}` | {sections} | {status} |", p.id, p.name);
    }
    let kinds = crate::loader::CoreRelocKind::ALL;
    let _ = writeln!(
        out,
        "\n**CO-RE relocations**: the loader resolves {} of the kernel's {KERNEL_CORE_RELO_KINDS} kinds \
         (libbpf's names): {}.\n",
        kinds.len(),
        kinds
            .iter()
            .map(|k| format!("`{}`", k.name()))
            .collect::<Vec<_>>()
            .join(", ")
    );
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
            None => crate::tracing_helpers::program_types(h.id)
                .unwrap_or("all")
                .to_string(),
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
    fn program_types_show_their_sections_and_status() {
        let ps = program_types();
        assert_eq!(ps.len(), 32, "BPF_PROG_TYPE_SOCKET_FILTER..=NETFILTER");
        let xdp = ps.iter().find(|p| p.name == "xdp").unwrap();
        assert_eq!(xdp.id, 6);
        assert!(xdp.sections.contains(&"xdp.frags") && xdp.runs_as.is_some());
        let tracing = ps.iter().find(|p| p.name == "tracing").unwrap();
        assert!(tracing.sections.contains(&"fentry+") && tracing.runs_as.is_some());
        let lsm = ps.iter().find(|p| p.name == "lsm").unwrap();
        assert!(lsm.runs_as.is_none());
        let md = markdown();
        assert!(md.contains("| 3 | `sched_cls` | `tc/ingress` "), "{md}");
        assert!(md.contains("`byte_off`, `byte_sz`"), "{md}");
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
