//! Map-in-map slots of an object's live maps: the legacy templates (`inner_map_idx`,
//! iproute2 `inner_id`), the `values` initialisers filled once every map exists (as libbpf's
//! `init_map_in_map_slots`), and [`ObjectMaps::set_map_slot`] to put one loaded map in a
//! map-in-map by name.

use std::sync::Arc;

use super::error::LoadError;
use super::inner_map::is_map_in_map;
use super::instance::ObjectMaps;
use super::map_def::{MapDefinition, MapKind};

/// `defs` with the inner template of each legacy map-in-map filled in from the map its
/// `inner_map_idx` (index in the `maps` section) or iproute2 `inner_id` names.
pub(crate) fn with_legacy_templates(defs: &[MapDefinition]) -> Vec<MapDefinition> {
    let legacy: Vec<&MapDefinition> = defs.iter().filter(|d| d.kind == MapKind::Legacy).collect();
    defs.iter()
        .map(|d| {
            let mut d = d.clone();
            if let (true, None, Some(l)) = (is_map_in_map(d.map_type), &d.inner, &d.legacy) {
                let by_id = (l.inner_id != 0)
                    .then(|| {
                        legacy
                            .iter()
                            .find(|m| m.legacy.is_some_and(|x| x.id == l.inner_id))
                    })
                    .flatten();
                let template = by_id.or_else(|| legacy.get(l.inner_map_idx as usize));
                if let Some(t) = template.filter(|t| !is_map_in_map(t.map_type)) {
                    d.inner = Some(Box::new((*t).clone()));
                }
            }
            d
        })
        .collect()
}

/// Puts in each map-in-map the maps its `values` initialiser names.
pub(crate) fn fill_initial_slots(maps: &ObjectMaps) -> Result<(), LoadError> {
    for (def, _) in maps.iter() {
        for (slot, inner) in &def.initial_slots {
            maps.set_map_slot(&def.name, &slot.to_ne_bytes(), inner)?;
        }
    }
    Ok(())
}

impl ObjectMaps {
    /// Puts the object's map `inner` in map-in-map `outer` at `key` (a 4-byte index for an
    /// `ARRAY_OF_MAPS`), as a host `BPF_MAP_UPDATE_ELEM` with `inner`'s fd would.
    ///
    /// Fails with [`LoadError::NoSuchMap`] when a name is not a map of the object, and with
    /// [`LoadError::MapCreate`] carrying the map's error (`EINVAL` when `inner` does not
    /// match `outer`'s inner map template or `outer` is not a map-in-map, `E2BIG` for an
    /// index past its end).
    ///
    /// Do it before loading the programs that look the map up: a program's maps are fixed
    /// when it is loaded (`Vm::load` adds the inner maps its outer maps hold then).
    ///
    /// ```
    /// use bpfvm::loader::Object;
    ///
    /// let obj = Object::parse_named("map_in_map", include_bytes!("../../tests/fixtures/map_in_map.o"))?;
    /// let maps = obj.create_maps(1)?;
    /// maps.set_map_slot("outer", &1u32.to_ne_bytes(), "inner_c")?;
    /// let inner = maps.get("outer").unwrap().inner_map(&1u32.to_ne_bytes()).unwrap();
    /// assert_eq!(inner.id(), maps.get("inner_c").unwrap().id());
    /// # Ok::<(), bpfvm::loader::LoadError>(())
    /// ```
    pub fn set_map_slot(&self, outer: &str, key: &[u8], inner: &str) -> Result<(), LoadError> {
        let missing = |name: &str| LoadError::NoSuchMap {
            name: name.to_string(),
        };
        let o = self.get(outer).ok_or_else(|| missing(outer))?;
        let i: &Arc<_> = self.get(inner).ok_or_else(|| missing(inner))?;
        o.update_map(key, i, 0)
            .map_err(|source| LoadError::MapCreate {
                map: outer.to_string(),
                source,
            })
    }
}

#[cfg(test)]
mod tests {
    use crate::loader::Object;

    fn maps() -> super::ObjectMaps {
        let bytes = include_bytes!("../../tests/fixtures/map_in_map.o");
        let obj = Object::parse_named("map_in_map", bytes).unwrap();
        obj.create_maps(2).unwrap()
    }

    #[test]
    fn initialisers_fill_the_slots() {
        let maps = maps();
        let outer = maps.get("outer").unwrap();
        let id = |n: &str| maps.get(n).unwrap().id();
        let at = |k: u32| outer.inner_map(&k.to_ne_bytes()).map(|m| m.id());
        assert_eq!(at(0), Some(id("inner_a")));
        assert_eq!(at(1), None);
        assert_eq!(at(2), Some(id("inner_b")));
        assert!(maps.get("by_port").unwrap().inner_maps().is_empty());
    }

    #[test]
    fn slots_are_set_by_name_with_the_kernels_checks() {
        let maps = maps();
        maps.set_map_slot("by_port", &80u32.to_ne_bytes(), "inner_c")
            .unwrap();
        let e = maps
            .set_map_slot("outer", &1u32.to_ne_bytes(), "result")
            .unwrap_err();
        assert_eq!(e.errno(), 22, "{e}");
        let e = maps
            .set_map_slot("outer", &9u32.to_ne_bytes(), "inner_a")
            .unwrap_err();
        assert_eq!(e.errno(), 7, "{e}");
        let e = maps.set_map_slot("nope", &[0; 4], "inner_a").unwrap_err();
        assert!(e.to_string().contains("nope"), "{e}");
        let e = maps
            .set_map_slot("result", &0u32.to_ne_bytes(), "inner_a")
            .unwrap_err();
        assert_eq!(e.errno(), 22, "{e}");
    }
}
