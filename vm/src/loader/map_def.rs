//! Map definitions found in an object: BTF-defined (`.maps`), legacy (`maps`) and
//! global data (`.data`, `.rodata`, `.bss`, `.data.*`, `.rodata.*`) — self-contained
//! descriptions that the VM turns into real maps.

use std::collections::HashMap;

use super::btf::{Btf, BtfType};
use super::btf_parse::u32_at;
use super::elf::{ElfObject, SectionKind, SymbolKind};
use super::error::LoadError;
use super::strtab::SharedStr;

/// `BPF_F_RDONLY_PROG`: programs may only read the map (libbpf sets it on `.rodata`).
pub const BPF_F_RDONLY_PROG: u32 = 1 << 7;

/// `BPF_MAP_TYPE_PROG_ARRAY`: the map type whose `values` initialisers name programs.
pub const BPF_MAP_TYPE_PROG_ARRAY: u32 = 3;

/// `BPF_MAP_TYPE_ARRAY`, the type of every global data map.
pub const BPF_MAP_TYPE_ARRAY: u32 = 2;

/// Kernel map type names by `BPF_MAP_TYPE_*` number (`include/uapi/linux/bpf.h`).
pub(crate) const MAP_TYPE_NAMES: [&str; 34] = [
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

/// The kernel's name for a `BPF_MAP_TYPE_*` number (`percpu_array`), or `None` when the
/// kernel defines no such type (0, `BPF_MAP_TYPE_UNSPEC`, counts as unknown).
pub fn map_type_name(map_type: u32) -> Option<&'static str> {
    match map_type {
        0 => None,
        t => MAP_TYPE_NAMES.get(t as usize).copied(),
    }
}

/// Which global data section a map stands for.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum GlobalDataKind {
    /// `.data` and `.data.*`: initialised, writable.
    Data,
    /// `.rodata` and `.rodata.*`: initialised, read-only to programs, frozen.
    Rodata,
    /// `.bss`: zero-initialised, writable.
    Bss,
}

/// Where a map definition came from.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub enum MapKind {
    /// A BTF-defined map in the `.maps` section.
    Btf,
    /// A `struct bpf_map_def` in the legacy `maps` section.
    Legacy,
    /// A global data section, loaded as a single-entry ARRAY.
    GlobalData {
        /// The ELF section name (`.bss`, `.data.stats`, ...).
        section: SharedStr,
        /// Which kind of section.
        kind: GlobalDataKind,
    },
}

/// One map an object asks for, as parsed (no map exists yet).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct MapDefinition {
    /// The map's name: the variable name, or for global data libbpf's internal
    /// name (`<obj>.bss`, truncated to 15 characters).
    pub name: SharedStr,
    /// Other names that find this map (the plain section name for global data).
    pub aliases: Vec<SharedStr>,
    /// Raw `BPF_MAP_TYPE_*` number.
    pub map_type: u32,
    /// Key size in bytes.
    pub key_size: u32,
    /// Value size in bytes.
    pub value_size: u32,
    /// Maximum number of entries.
    pub max_entries: u32,
    /// `map_flags` as passed to `BPF_MAP_CREATE`.
    pub map_flags: u32,
    /// Where the definition came from.
    pub kind: MapKind,
    /// Bytes to write at key 0 after creation (global `.data`/`.rodata`).
    pub initial_data: Option<Vec<u8>>,
    /// Whether the map is frozen after the initial data is written (`.rodata`, as
    /// libbpf does with `BPF_MAP_FREEZE`): the host may no longer update it either.
    pub frozen: bool,
    /// BTF type id of the key, when the object has BTF for it.
    pub key_type_id: Option<u32>,
    /// BTF type id of the value (the section's `Datasec` for global data).
    pub value_type_id: Option<u32>,
    /// The fields past the first five of a legacy `struct bpf_map_def` (`None` for other
    /// definitions).
    pub legacy: Option<LegacyMapFields>,
    /// Offset of the `struct bpf_timer` in the value, when the object's BTF describes the
    /// value as a struct holding one (the kernel finds it in the map's BTF, `btf_find_timer`);
    /// the map is created with it ([`bpfvm_maps::Map::with_timer`]) and the verifier told.
    pub timer_offset: Option<u32>,
    /// For a map-in-map: its inner map template (`__array(values, struct inner)`), from
    /// which bpfvm makes the template map, as libbpf makes `<map>.inner`.
    pub inner: Option<Box<MapDefinition>>,
    /// For a map-in-map: the maps its `values` initialiser puts in it, as (index, name of
    /// the inner map), set once every map exists, as libbpf does.
    pub initial_slots: Vec<(u32, SharedStr)>,
    /// ELF section index of the definition (the global data section itself).
    pub(crate) section_index: usize,
    /// Offset of the definition inside that section (0 for global data).
    pub(crate) section_offset: u64,
}

impl MapDefinition {
    /// Whether `name` is this map's name or one of its aliases.
    pub fn is_named(&self, name: &str) -> bool {
        self.name == name || self.aliases.iter().any(|a| a == name)
    }

    /// The kernel's name of the map type (`percpu_array`).
    pub fn map_type_name(&self) -> &'static str {
        map_type_name(self.map_type).unwrap_or("unknown")
    }

    fn check_type(&self) -> Result<(), LoadError> {
        match map_type_name(self.map_type) {
            Some(_) => Ok(()),
            None => Err(LoadError::UnknownMapType {
                map: self.name.to_string(),
                map_type: self.map_type,
            }),
        }
    }
}

/// The extra fields of a legacy `struct bpf_map_def` beyond `type`, `key_size`,
/// `value_size`, `max_entries` and `map_flags`, by the size of the definition:
/// 28 bytes is the `samples/bpf` / old libbpf layout (`inner_map_idx`, `numa_node`), 36
/// bytes iproute2's `struct bpf_elf_map` (`id`, `pinning`, `inner_id`, `inner_idx`); any
/// other size past 20 bytes must have zero extra bytes, as libbpf required.
///
/// bpfvm creates every map fresh, so `pinning` and `id` change nothing; `numa_node` is
/// ignored as on a single-node machine. `inner_map_idx` / `inner_idx` name a map-in-map's
/// inner map template.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct LegacyMapFields {
    /// Size of each definition in the section, in bytes.
    pub def_size: u32,
    /// iproute2 `id`: a number other maps' `inner_id` refers to.
    pub id: u32,
    /// iproute2 `pinning` (`PIN_NONE` 0, `PIN_OBJECT_NS` 1, `PIN_GLOBAL_NS` 2).
    pub pinning: u32,
    /// iproute2 `inner_id`: the `id` of the inner map template of a map-in-map.
    pub inner_id: u32,
    /// Index (in the `maps` section) of the inner map template of a map-in-map:
    /// `samples/bpf` `inner_map_idx` or iproute2 `inner_idx`.
    pub inner_map_idx: u32,
    /// `samples/bpf` `numa_node`.
    pub numa_node: u32,
}

impl LegacyMapFields {
    /// Read the extra fields of definition `def` (all of its bytes), or say what is wrong.
    fn parse(def: &[u8]) -> Result<Self, String> {
        let field = |i: usize| u32_at(def, i * 4).unwrap_or(0);
        let mut f = LegacyMapFields {
            def_size: def.len() as u32,
            ..Default::default()
        };
        match def.len() {
            28 => {
                f.inner_map_idx = field(5);
                f.numa_node = field(6);
            }
            36 => {
                f.id = field(5);
                f.pinning = field(6);
                f.inner_id = field(7);
                f.inner_map_idx = field(8);
            }
            n if def
                .get(20..)
                .is_some_and(|rest| rest.iter().any(|&b| b != 0)) =>
            {
                return Err(format!(
                    "bpf_map_def of {n} bytes has non-zero fields past the first five (known \
                     layouts: 28 bytes with inner_map_idx and numa_node, 36 bytes as \
                     iproute2's bpf_elf_map)"
                ))
            }
            _ => {}
        }
        Ok(f)
    }
}

/// A map the object defines that cannot be loaded: the programs that use it are refused
/// with its error ([`LoadError::MapUnavailable`]); the others load.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RefusedMap {
    /// The map's name.
    pub name: SharedStr,
    /// Why it cannot be loaded.
    pub error: LoadError,
    pub(crate) section_index: usize,
    pub(crate) section_offset: u64,
}

/// Maps defined with BTF in the `.maps` section.
pub(crate) fn btf_maps(
    elf: &ElfObject<'_>,
    btf: Option<&Btf>,
    refused: &mut Vec<RefusedMap>,
) -> Result<Vec<MapDefinition>, LoadError> {
    let Some(section) = elf.section_by_name(".maps") else {
        return Ok(Vec::new());
    };
    let btf = btf.ok_or(LoadError::MissingBtf)?;
    let datasec = btf.datasec(".maps").ok_or_else(|| LoadError::BadBtf {
        section: ".BTF".into(),
        reason: "no DATASEC for section .maps".into(),
    })?;
    let Some(BtfType::Datasec { vars, .. }) = btf.get(datasec) else {
        return Err(LoadError::BadBtf {
            section: ".BTF".into(),
            reason: "DATASEC .maps is not a DATASEC".into(),
        });
    };
    let mut maps = Vec::with_capacity(vars.len());
    // Many variables may share one definition struct: read each struct's attributes once.
    let mut attrs_of: HashMap<u32, Attrs> = HashMap::new();
    for var in vars {
        let (name, target) = match btf.get(var.type_id) {
            Some(BtfType::Var { name, target }) => (name.clone(), *target),
            _ => {
                return Err(LoadError::BadBtf {
                    section: ".BTF".into(),
                    reason: format!(
                        "entry of DATASEC .maps at offset {} is not a VAR",
                        var.offset
                    ),
                })
            }
        };
        // clang leaves DATASEC offsets at 0; like libbpf, take them from the symbols.
        let sym = elf.symbol_in(section.index, &name);
        let offset = sym.map_or(u64::from(var.offset), |s| s.value);
        let size = btf.size_of(target).map_or(u64::from(var.size), u64::from);
        if offset.saturating_add(size) > section.size {
            return Err(LoadError::BadMapDefinition {
                map: name.into(),
                reason: format!(
                    "offset {offset} size {size} lies outside section .maps ({} bytes)",
                    section.size
                ),
            });
        }
        let attrs = match attrs_of.get(&target) {
            Some(a) => Ok(*a),
            None => map_attrs(btf, &name, target).inspect(|a| {
                attrs_of.insert(target, *a);
            }),
        };
        let map = attrs.and_then(|a| {
            let mut m = a.definition(name.clone(), section.index, offset);
            m.timer_offset = a
                .value_type_id
                .and_then(|id| super::instance::find_struct(btf, id, "bpf_timer", 0));
            // A map-in-map's inner template; its initial maps (`initial_slots`) come from
            // `loader::map_values` once every map is parsed.
            if let Some((values_type, _)) = a.values {
                if super::inner_map::is_map_in_map(a.map_type) {
                    m.inner = Some(super::inner_map::template(btf, &m, values_type)?);
                }
            }
            Ok(m)
        });
        match map.and_then(|m| m.check_type().map(|()| m)) {
            Ok(m) => maps.push(m),
            Err(error) => refused.push(RefusedMap {
                name,
                error,
                section_index: section.index,
                section_offset: offset,
            }),
        }
    }
    Ok(maps)
}

/// The value of `__uint(name, N)`: a pointer to an array of N elements.
fn uint_attr(btf: &Btf, map: &str, member: &str, type_id: u32) -> Result<u32, LoadError> {
    let bad = || LoadError::BadMapDefinition {
        map: map.into(),
        reason: format!("attribute {member} is not __uint(name, value)"),
    };
    let Some(BtfType::Ptr { target }) = btf.resolve(type_id).and_then(|t| btf.get(t)) else {
        return Err(bad());
    };
    match btf.resolve(*target).and_then(|t| btf.get(t)) {
        Some(BtfType::Array { nelems, .. }) => Ok(*nelems),
        _ => Err(bad()),
    }
}

/// The type of `__type(name, T)`: a pointer to T.
fn type_attr(btf: &Btf, map: &str, member: &str, type_id: u32) -> Result<(u32, u32), LoadError> {
    let bad = |why: &str| LoadError::BadMapDefinition {
        map: map.into(),
        reason: format!("attribute {member}: {why}"),
    };
    let Some(BtfType::Ptr { target }) = btf.resolve(type_id).and_then(|t| btf.get(t)) else {
        return Err(bad("not __type(name, type)"));
    };
    let size = btf
        .size_of(*target)
        .ok_or_else(|| bad("type has no size"))?;
    Ok((*target, size))
}

/// The attributes of one BTF map definition struct.
#[derive(Debug, Clone, Copy)]
pub(super) struct Attrs {
    map_type: u32,
    key_size: u32,
    value_size: u32,
    max_entries: u32,
    map_flags: u32,
    key_type_id: Option<u32>,
    value_type_id: Option<u32>,
    /// `__array(values, ...)`: its BTF type and byte offset in the definition.
    values: Option<(u32, u32)>,
}

impl Attrs {
    pub(super) fn definition(
        self,
        name: SharedStr,
        section_index: usize,
        offset: u64,
    ) -> MapDefinition {
        MapDefinition {
            name,
            aliases: Vec::new(),
            map_type: self.map_type,
            key_size: self.key_size,
            value_size: self.value_size,
            max_entries: self.max_entries,
            map_flags: self.map_flags,
            kind: MapKind::Btf,
            initial_data: None,
            frozen: false,
            key_type_id: self.key_type_id,
            value_type_id: self.value_type_id,
            legacy: None,
            timer_offset: None,
            inner: None,
            initial_slots: Vec::new(),
            section_index,
            section_offset: offset,
        }
    }
}

/// Read the `__uint`/`__type` members of map `name`'s definition struct `type_id`.
pub(super) fn map_attrs(btf: &Btf, name: &str, type_id: u32) -> Result<Attrs, LoadError> {
    let members = match btf.resolve(type_id).and_then(|t| btf.get(t)) {
        Some(BtfType::Struct { members, .. }) => members,
        _ => {
            return Err(LoadError::BadMapDefinition {
                map: name.into(),
                reason: "definition is not a struct".into(),
            })
        }
    };
    let mut map_type = None;
    let (mut max_entries, mut map_flags) = (0, 0);
    let (mut key_size, mut value_size) = (None, None);
    let (mut key, mut value) = (None, None);
    let mut values = None;
    for m in members {
        match m.name.as_str() {
            "type" => map_type = Some(uint_attr(btf, name, &m.name, m.type_id)?),
            "max_entries" => max_entries = uint_attr(btf, name, &m.name, m.type_id)?,
            "map_flags" => map_flags = uint_attr(btf, name, &m.name, m.type_id)?,
            "key_size" => key_size = Some(uint_attr(btf, name, &m.name, m.type_id)?),
            "value_size" => value_size = Some(uint_attr(btf, name, &m.name, m.type_id)?),
            "key" => key = Some(type_attr(btf, name, &m.name, m.type_id)?),
            "value" => value = Some(type_attr(btf, name, &m.name, m.type_id)?),
            "numa_node" | "map_extra" | "pinning" => {
                uint_attr(btf, name, &m.name, m.type_id)?;
            }
            // A PROG_ARRAY's initial programs or a map-in-map's initial maps
            // (`loader::map_values`); a map-in-map's inner template.
            "values" => values = Some((m.type_id, m.bit_offset / 8)),
            "inner_map" => {
                return Err(LoadError::Unsupported {
                    section: ".maps".into(),
                    what: format!(
                        "map {name}: map-in-map and prog-array initialisers ({})",
                        m.name
                    ),
                })
            }
            other => {
                return Err(LoadError::BadMapDefinition {
                    map: name.into(),
                    reason: format!("unknown attribute {other}"),
                })
            }
        }
    }
    let map_type = map_type.ok_or_else(|| LoadError::BadMapDefinition {
        map: name.into(),
        reason: "missing __uint(type, ...)".into(),
    })?;
    let has_values = values.is_some();
    if has_values
        && !super::inner_map::is_map_in_map(map_type)
        && map_type != BPF_MAP_TYPE_PROG_ARRAY
    {
        return Err(LoadError::Unsupported {
            section: ".maps".into(),
            what: format!("map {name}: values initialisers on a map of type {map_type}"),
        });
    }
    let pick = |what: &str, size: Option<u32>, ty: Option<(u32, u32)>| match (size, ty) {
        (Some(s), Some((_, t))) if s != t => Err(LoadError::BadMapDefinition {
            map: name.into(),
            reason: format!("{what}_size {s} does not match sizeof({what}) {t}"),
        }),
        (Some(s), _) => Ok(s),
        (None, Some((_, t))) => Ok(t),
        (None, None) => Ok(0),
    };
    let mut value_size = pick("value", value_size, value)?;
    if has_values {
        // libbpf: `values` makes the value a 4-byte fd (program or map); a value size
        // (given, or from `__type(value, ...)`) other than 4 conflicts.
        if value_size != 0 && value_size != 4 {
            let desc = if map_type == BPF_MAP_TYPE_PROG_ARRAY {
                "prog-array value"
            } else {
                "map-in-map inner"
            };
            return Err(LoadError::BadMapDefinition {
                map: name.into(),
                reason: format!("conflicting value size {value_size} != 4 ({desc} fd)"),
            });
        }
        value_size = 4;
    }
    Ok(Attrs {
        map_type,
        key_size: pick("key", key_size, key)?,
        value_size,
        max_entries,
        map_flags,
        key_type_id: key.map(|(id, _)| id),
        value_type_id: value.map(|(id, _)| id),
        values,
    })
}

/// Maps defined as `struct bpf_map_def` in the legacy `maps` section.
pub(crate) fn legacy_maps(
    elf: &ElfObject<'_>,
    refused: &mut Vec<RefusedMap>,
) -> Result<Vec<MapDefinition>, LoadError> {
    let Some(section) = elf.section_by_name("maps") else {
        return Ok(Vec::new());
    };
    let mut syms: Vec<_> = elf
        .symbols_in(section.index)
        .filter(|s| matches!(s.kind, SymbolKind::Object | SymbolKind::NoType) && !s.name.is_empty())
        .collect();
    syms.sort_by_key(|s| s.value);
    let bad = |reason: String| LoadError::Unsupported {
        section: "maps".into(),
        what: reason,
    };
    if syms.is_empty() || section.data.is_empty() {
        return Err(bad("legacy maps section without map symbols".into()));
    }
    let data = section.data;
    if data.len() % syms.len() != 0 {
        return Err(bad(format!(
            "section size {} is not a multiple of the {} map definitions",
            data.len(),
            syms.len()
        )));
    }
    let def_size = data.len() / syms.len();
    if def_size < 16 {
        return Err(bad(format!("bpf_map_def of {def_size} bytes is too small")));
    }
    let mut maps = Vec::with_capacity(syms.len());
    for sym in syms {
        let off = usize::try_from(sym.value).unwrap_or(usize::MAX);
        let def = off
            .checked_add(def_size)
            .and_then(|end| data.get(off..end))
            .ok_or_else(|| LoadError::BadMapDefinition {
                map: sym.name.to_string(),
                reason: format!("definition at offset {off} lies outside section maps"),
            })?;
        let field = |i: usize| u32_at(def, i * 4).unwrap_or(0);
        let refuse = |error| RefusedMap {
            name: sym.name.clone(),
            error,
            section_index: section.index,
            section_offset: sym.value,
        };
        let legacy = match LegacyMapFields::parse(def) {
            Ok(f) => f,
            Err(reason) => {
                refused.push(refuse(LoadError::BadMapDefinition {
                    map: sym.name.to_string(),
                    reason,
                }));
                continue;
            }
        };
        let map = MapDefinition {
            name: sym.name.clone(),
            aliases: Vec::new(),
            map_type: field(0),
            key_size: field(1),
            value_size: field(2),
            max_entries: field(3),
            map_flags: field(4),
            kind: MapKind::Legacy,
            initial_data: None,
            frozen: false,
            key_type_id: None,
            value_type_id: None,
            legacy: Some(legacy),
            timer_offset: None,
            inner: None,
            initial_slots: Vec::new(),
            section_index: section.index,
            section_offset: sym.value,
        };
        match map.check_type() {
            Ok(()) => maps.push(map),
            Err(e) => refused.push(refuse(e)),
        }
    }
    Ok(maps)
}

/// libbpf's name for the map of a global data section: as much of the object name
/// as fits before the section name in 15 characters for the standard sections, the
/// section name alone for custom `.data.*`/`.rodata.*` ones; characters the kernel
/// does not allow in map names become `_`.
pub fn internal_map_name(obj_name: &str, section: &str) -> String {
    const BPF_OBJ_NAME_LEN: usize = 16;
    // Only the first 15 characters can end up in the name: never walk more of a
    // (possibly huge) section name. A dot past them means a name of 17 bytes or more,
    // which leaves no room for a prefix anyway.
    let head: String = section.chars().take(BPF_OBJ_NAME_LEN).collect();
    let sfx_len = section.len().max(7);
    let pfx_len = if head.get(1..).is_some_and(|rest| rest.contains('.')) {
        0
    } else {
        (BPF_OBJ_NAME_LEN.saturating_sub(sfx_len + 1)).min(obj_name.len())
    };
    let prefix: String = obj_name.chars().take(pfx_len).collect();
    let name: String = format!("{prefix}{head}")
        .chars()
        .take(BPF_OBJ_NAME_LEN - 1)
        .collect();
    name.chars()
        .map(|c| {
            if c.is_ascii_alphanumeric() || c == '_' || c == '.' {
                c
            } else {
                '_'
            }
        })
        .collect()
}

fn global_kind(name: &str) -> Option<GlobalDataKind> {
    if name == ".data" || name.starts_with(".data.") {
        Some(GlobalDataKind::Data)
    } else if name == ".rodata" || name.starts_with(".rodata.") {
        Some(GlobalDataKind::Rodata)
    } else if name == ".bss" {
        Some(GlobalDataKind::Bss)
    } else {
        None
    }
}

/// One single-entry ARRAY per non-empty global data section.
pub(crate) fn global_data_maps(
    elf: &ElfObject<'_>,
    obj_name: &str,
    btf: Option<&Btf>,
) -> Result<Vec<MapDefinition>, LoadError> {
    let mut maps = Vec::new();
    for section in &elf.sections {
        let Some(kind) = global_kind(&section.name) else {
            continue;
        };
        if section.size == 0 || section.kind == SectionKind::Other {
            continue;
        }
        let value_size = u32::try_from(section.size).map_err(|_| LoadError::BadMapDefinition {
            map: section.name.to_string(),
            reason: format!("section of {} bytes is too large", section.size),
        })?;
        let initial_data = match section.kind {
            SectionKind::Progbits => Some(section.data.to_vec()),
            _ => None,
        };
        let rodata = kind == GlobalDataKind::Rodata;
        maps.push(MapDefinition {
            name: internal_map_name(obj_name, &section.name).into(),
            aliases: vec![section.name.clone()],
            map_type: BPF_MAP_TYPE_ARRAY,
            key_size: 4,
            value_size,
            max_entries: 1,
            map_flags: if rodata { BPF_F_RDONLY_PROG } else { 0 },
            kind: MapKind::GlobalData {
                section: section.name.clone(),
                kind,
            },
            initial_data,
            frozen: rodata,
            key_type_id: None,
            value_type_id: btf.and_then(|b| b.datasec(&section.name)),
            legacy: None,
            timer_offset: None,
            inner: None,
            initial_slots: Vec::new(),
            section_index: section.index,
            section_offset: 0,
        });
    }
    Ok(maps)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn internal_names_follow_libbpf() {
        assert_eq!(internal_map_name("globals", ".bss"), "globals.bss");
        assert_eq!(
            internal_map_name("percpu_counter", ".rodata"),
            "percpu_c.rodata"
        );
        assert_eq!(internal_map_name("percpu_counter", ".bss"), "percpu_c.bss");
        assert_eq!(internal_map_name("globals", ".data.stats"), ".data.stats");
        assert_eq!(internal_map_name("x", ".rodata.str1.1"), ".rodata.str1.1");
        assert_eq!(internal_map_name("my-obj", ".data"), "my_obj.data");
        assert_eq!(
            internal_map_name("x", ".data.a_very_long_name"),
            ".data.a_very_lo"
        );
    }

    #[test]
    fn legacy_extra_fields_by_definition_size() {
        let words = |w: &[u32]| w.iter().flat_map(|v| v.to_le_bytes()).collect::<Vec<u8>>();
        // samples/bpf: inner_map_idx, numa_node.
        let f = LegacyMapFields::parse(&words(&[12, 4, 4, 2, 0, 3, 1])).unwrap();
        assert_eq!((f.def_size, f.inner_map_idx, f.numa_node), (28, 3, 1));
        // iproute2 bpf_elf_map: id, pinning, inner_id, inner_idx.
        let f = LegacyMapFields::parse(&words(&[12, 4, 4, 2, 0, 7, 2, 5, 1])).unwrap();
        assert_eq!((f.id, f.pinning, f.inner_id, f.inner_map_idx), (7, 2, 5, 1));
        // Other sizes: extra bytes must be zero.
        assert!(LegacyMapFields::parse(&words(&[1, 4, 4, 2, 0, 0, 0, 0])).is_ok());
        let e = LegacyMapFields::parse(&words(&[1, 4, 4, 2, 0, 0, 9, 0])).unwrap_err();
        assert!(e.contains("32 bytes has non-zero fields"), "{e}");
        assert_eq!(
            LegacyMapFields::parse(&words(&[1, 4, 4, 2, 0]))
                .unwrap()
                .def_size,
            20
        );
    }

    #[test]
    fn map_type_names() {
        assert_eq!(map_type_name(6), Some("percpu_array"));
        assert_eq!(map_type_name(10), Some("lru_percpu_hash"));
        assert_eq!(map_type_name(0), None);
        assert_eq!(map_type_name(999), None);
    }
}
