//! `values` initialisers of a BTF-defined map in `.maps` (`= { .values = { [i] = &x } }`):
//! the relocations of `.maps` inside the map's `values` array say which map each slot
//! holds. One job: slot index -> referenced map.

use std::ops::Range;

use super::elf::{ElfObject, Section};
use super::error::LoadError;
use super::strtab::SharedStr;

/// Bytes of one `values` slot (a pointer).
const SLOT: u64 = 8;

/// The (slot, name of the referenced symbol) pairs of the map `map` whose definition spans
/// `def` in `section` (`.maps`) and whose `values` array starts at byte `values`, in slot
/// order. A relocation inside `values` that is not slot-aligned or names no symbol is
/// refused.
pub(crate) fn initial_slots(
    elf: &ElfObject<'_>,
    section: &Section<'_>,
    map: &SharedStr,
    def: Range<u64>,
    values: u64,
) -> Result<Vec<(u32, SharedStr)>, LoadError> {
    let bad = |reason: String| LoadError::BadMapDefinition {
        map: map.to_string(),
        reason,
    };
    let mut out = Vec::new();
    for r in &section.relocations {
        if !def.contains(&r.offset) {
            continue;
        }
        let Some(at) = r.offset.checked_sub(values) else {
            return Err(bad(format!(
                "relocation at offset {} of .maps is not in its values",
                r.offset
            )));
        };
        if at % SLOT != 0 {
            return Err(bad(format!(
                "values relocation at byte {at} is not slot-aligned"
            )));
        }
        let slot = u32::try_from(at / SLOT).map_err(|_| bad("values slot too large".into()))?;
        let sym = elf
            .symbols
            .get(r.symbol)
            .filter(|s| !s.name.is_empty())
            .ok_or_else(|| bad(format!("values slot {slot} names no symbol")))?;
        out.push((slot, sym.name.clone()));
    }
    out.sort_by_key(|(slot, _)| *slot);
    Ok(out)
}

#[cfg(test)]
mod tests {
    use crate::loader::Object;

    #[test]
    fn slots_name_the_maps_of_the_initialiser() {
        let bytes = include_bytes!("../../tests/fixtures/map_in_map.o");
        let obj = Object::parse_named("map_in_map", bytes).unwrap();
        let outer = obj.maps().iter().find(|m| m.name == "outer").unwrap();
        let slots: Vec<(u32, &str)> = outer
            .initial_slots
            .iter()
            .map(|(i, n)| (*i, n.as_ref()))
            .collect();
        assert_eq!(slots, [(0, "inner_a"), (2, "inner_b")]);
    }
}
