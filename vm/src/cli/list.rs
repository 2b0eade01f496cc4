//! `bpfvm maps`: the maps an object defines (name, type, sizes, max_entries, flags, origin).

use std::io::Write;
use std::path::Path;

use bpfvm::loader::{GlobalDataKind, MapDefinition, MapKind};
use bpfvm::maps::flags::create;

use super::table::Layout;
use super::{object, CliError};

/// `map_flags` bits and their kernel names.
const FLAG_NAMES: [(u32, &str); 11] = [
    (create::NO_PREALLOC, "BPF_F_NO_PREALLOC"),
    (create::NO_COMMON_LRU, "BPF_F_NO_COMMON_LRU"),
    (create::NUMA_NODE, "BPF_F_NUMA_NODE"),
    (create::RDONLY, "BPF_F_RDONLY"),
    (create::WRONLY, "BPF_F_WRONLY"),
    (create::ZERO_SEED, "BPF_F_ZERO_SEED"),
    (create::RDONLY_PROG, "BPF_F_RDONLY_PROG"),
    (create::WRONLY_PROG, "BPF_F_WRONLY_PROG"),
    (create::MMAPABLE, "BPF_F_MMAPABLE"),
    (create::PRESERVE_ELEMS, "BPF_F_PRESERVE_ELEMS"),
    (create::INNER_MAP, "BPF_F_INNER_MAP"),
];

/// `0` or `0x80 (BPF_F_RDONLY_PROG)`; unknown bits stay in the hex number only.
pub fn flags_label(flags: u32) -> String {
    if flags == 0 {
        return "0".to_string();
    }
    let names: Vec<&str> = FLAG_NAMES
        .iter()
        .filter(|(bit, _)| flags & bit != 0)
        .map(|(_, name)| *name)
        .collect();
    if names.is_empty() {
        format!("{flags:#x}")
    } else {
        format!("{flags:#x} ({})", names.join("|"))
    }
}

/// Where a definition comes from: `.maps`, `maps` (legacy) or the global data section.
pub fn origin(def: &MapDefinition) -> String {
    match &def.kind {
        MapKind::Btf => ".maps (BTF)".to_string(),
        MapKind::Legacy => "maps (legacy)".to_string(),
        MapKind::GlobalData { section, kind } => {
            let what = match kind {
                GlobalDataKind::Data => "global data",
                GlobalDataKind::Rodata => "read-only global data, frozen",
                GlobalDataKind::Bss => "zeroed global data",
            };
            format!("{section} ({what})")
        }
    }
}

/// The cells of one row of the `bpfvm maps` table.
fn row(d: &MapDefinition) -> Vec<String> {
    vec![
        d.name.to_string(),
        d.map_type_name().to_string(),
        d.key_size.to_string(),
        d.value_size.to_string(),
        d.max_entries.to_string(),
        flags_label(d.map_flags),
        origin(d),
    ]
}

/// Prints the table of `path`'s maps, one row at a time (the columns are measured in a first
/// pass over the definitions, so no table text is kept).
pub fn list_maps(path: &Path, out: &mut dyn Write) -> Result<(), CliError> {
    let obj = object::open(path, None)?;
    let mut put = |s: &str| out.write_all(s.as_bytes()).map_err(CliError::stdout);
    if obj.maps().is_empty() && obj.refused_maps().is_empty() {
        return put(&format!("{} defines no maps\n", path.display()));
    }
    let header: Vec<String> = [
        "name",
        "type",
        "key_size",
        "value_size",
        "max_entries",
        "flags",
        "from",
    ]
    .map(String::from)
    .to_vec();
    let mut layout = Layout::new(&header);
    for d in obj.maps() {
        layout.add(&row(d));
    }
    put(&layout.line("", &header))?;
    for d in obj.maps() {
        put(&layout.line("", &row(d)))?;
    }
    for m in obj.refused_maps() {
        put(&format!("map {} cannot be loaded: {}\n", m.name, m.error))?;
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn flags_are_named() {
        assert_eq!(flags_label(0), "0");
        assert_eq!(flags_label(0x80), "0x80 (BPF_F_RDONLY_PROG)");
        assert_eq!(
            flags_label(0x81),
            "0x81 (BPF_F_NO_PREALLOC|BPF_F_RDONLY_PROG)"
        );
        assert_eq!(flags_label(1 << 20), "0x100000");
    }
}
