//! `values` initialisers of BTF-defined maps, libbpf's `__array(values, ...)`:
//!
//! ```c
//! struct {
//!     __uint(type, BPF_MAP_TYPE_PROG_ARRAY);
//!     __uint(max_entries, 4);
//!     __type(key, __u32);
//!     __array(values, int (void *));
//! } jmp SEC(".maps") = { .values = { [1] = (void *)&xdp_second } };
//! ```
//!
//! clang leaves the slots' bytes zero and records each initialised slot as an
//! `R_BPF_64_ABS64` relocation in `.rel.maps`, at `map offset + offset of values + 8 × slot`,
//! naming a program (a function symbol in a code section: a PROG_ARRAY slot) or a map (a
//! variable of `.maps`: an ARRAY_OF_MAPS / HASH_OF_MAPS slot). This module's one job is
//! to turn those relocations into [`SlotInit`]s; what a slot means is its map type's
//! business (a loader fills PROG_ARRAY slots with the loaded programs).

use super::btf::{Btf, BtfType};
use super::elf::ElfObject;
use super::error::LoadError;
use super::map_def::{MapDefinition, MapKind};
use super::strtab::SharedStr;

/// What an initialised slot holds.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum SlotTarget {
    /// A program, by its function name.
    Program(SharedStr),
    /// A map, by its name.
    Map(SharedStr),
}

/// One `values` slot initialised in the object: `map[slot] = target`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SlotInit {
    /// The map whose slot is initialised.
    pub map: SharedStr,
    /// The slot (the key of an array map).
    pub slot: u32,
    /// What goes in it.
    pub target: SlotTarget,
}

/// The initialisers of `maps` found in `.rel.maps`, and the maps whose initialisers are
/// malformed (each with its error: the map is refused, not the object). A relocation
/// outside every map in `maps` (one of a map refused earlier) is skipped.
pub(crate) fn slot_inits(
    elf: &ElfObject<'_>,
    btf: Option<&Btf>,
    maps: &[MapDefinition],
) -> (Vec<SlotInit>, Vec<(SharedStr, LoadError)>) {
    let (mut inits, mut bad) = (Vec::new(), Vec::<(SharedStr, LoadError)>::new());
    let Some(section) = elf.section_by_name(".maps") else {
        return (inits, bad);
    };
    let mut btf_maps: Vec<&MapDefinition> = maps
        .iter()
        .filter(|m| m.kind == MapKind::Btf && m.section_index == section.index)
        .collect();
    btf_maps.sort_by_key(|m| m.section_offset);
    for r in &section.relocations {
        // The map whose definition holds the relocated bytes: the last one starting at or
        // before it (definitions do not overlap).
        let Some(map) = btf_maps.iter().rev().find(|m| m.section_offset <= r.offset) else {
            continue;
        };
        if bad.iter().any(|(n, _)| *n == map.name) {
            continue;
        }
        match slot_init(elf, btf, map, r.offset, r.symbol) {
            Ok(Some(init)) => inits.push(init),
            Ok(None) => {}
            Err(e) => bad.push((map.name.clone(), e)),
        }
    }
    inits.retain(|i| !bad.iter().any(|(n, _)| *n == i.map));
    (inits, bad)
}

/// The initialiser a relocation at `offset` of `.maps` (naming symbol `symbol`) makes in
/// `map`; `None` when it lies past the map's definition (another map's, refused earlier).
fn slot_init(
    elf: &ElfObject<'_>,
    btf: Option<&Btf>,
    map: &MapDefinition,
    offset: u64,
    symbol: usize,
) -> Result<Option<SlotInit>, LoadError> {
    let bad = |reason: String| LoadError::BadMapDefinition {
        map: map.name.to_string(),
        reason,
    };
    let btf = btf.ok_or(LoadError::MissingBtf)?;
    let values_at = values_member(btf, &map.name)
        .ok_or_else(|| bad("a relocation in .maps, but the definition has no `values`".into()))?;
    // The variable's bytes: the definition and the initialised `values` after it (a
    // flexible array, outside the struct's size).
    let extent = elf
        .symbol_in(map.section_index, &map.name)
        .map_or(u64::MAX, |s| s.size);
    let rel = offset - map.section_offset;
    if rel >= extent {
        return Ok(None);
    }
    let at = rel
        .checked_sub(values_at)
        .filter(|at| at % 8 == 0)
        .ok_or_else(|| {
            bad(format!(
                "a relocation at byte {rel} of the definition, outside `values`"
            ))
        })?;
    let slot = u32::try_from(at / 8).unwrap_or(u32::MAX);
    if slot >= map.max_entries {
        return Err(bad(format!(
            "values[{slot}] is past max_entries {}",
            map.max_entries
        )));
    }
    let sym = elf.symbols.get(symbol).ok_or_else(|| {
        bad(format!(
            "values[{slot}] names symbol {symbol}, which does not exist"
        ))
    })?;
    let target = match sym.section.and_then(|s| elf.sections.get(s)) {
        Some(s) if s.is_code() => SlotTarget::Program(sym.name.clone()),
        Some(s) if s.name.as_str() == ".maps" => SlotTarget::Map(sym.name.clone()),
        _ => {
            return Err(bad(format!(
                "values[{slot}] = {} is neither a program nor a map",
                sym.name.as_str()
            )))
        }
    };
    Ok(Some(SlotInit {
        map: map.name.clone(),
        slot,
        target,
    }))
}

/// The byte offset of the `values` member of map `name`'s definition struct.
fn values_member(btf: &Btf, name: &str) -> Option<u64> {
    let Some(BtfType::Datasec { vars, .. }) = btf.get(btf.datasec(".maps")?) else {
        return None;
    };
    let target = vars.iter().find_map(|v| match btf.get(v.type_id) {
        Some(BtfType::Var { name: n, target }) if n.as_str() == name => Some(*target),
        _ => None,
    })?;
    let id = btf.resolve(target)?;
    let Some(BtfType::Struct { members, .. }) = btf.get(id) else {
        return None;
    };
    let values = members.iter().find(|m| m.name.as_str() == "values")?;
    Some(u64::from(values.bit_offset / 8))
}
