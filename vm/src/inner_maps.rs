//! Map-in-map at load time: the inner maps an outer map holds become maps of the program
//! (after the ones its instructions name), so that a lookup in the outer map can hand the
//! program a handle to one of them (see `bpfvm_helpers::inner_maps`).

use std::sync::Arc;

use crate::program::Program;

/// Appends to `program` every inner map its outer maps hold now (each once, and not when
/// already among its maps), outer maps found in the appended ones too being impossible (one
/// level of map-in-map only).
pub(crate) fn add_inner_maps(program: &mut Program) {
    let outers: Vec<Arc<bpfvm_maps::Map>> = program
        .kernel_maps()
        .iter()
        .flatten()
        .filter(|m| m.map_type().is_map_of_maps())
        .cloned()
        .collect();
    for outer in outers {
        for inner in outer.inner_maps() {
            let present = program
                .maps()
                .iter()
                .any(|m| m.map_id() == Some(inner.id()));
            if !present {
                program.add_map(inner);
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::ProgramType;
    use bpfvm_maps::{Map, MapMemory, MapSpec, MapType};

    #[test]
    fn held_maps_are_appended_once() {
        let a = Arc::new(Map::create(MapSpec::new(MapType::Array, 4, 8, 1), 1).unwrap());
        let b = Arc::new(Map::create(MapSpec::new(MapType::Array, 4, 8, 1), 1).unwrap());
        let outer = Map::create_of_maps_in(
            MapSpec::new(MapType::ArrayOfMaps, 4, 4, 3),
            1,
            &a,
            &MapMemory::default(),
        )
        .unwrap();
        for (k, m) in [(0u32, &a), (1, &b), (2, &a)] {
            outer.update_map(&k.to_ne_bytes(), m, 0).unwrap();
        }
        let mut p = Program::new(Vec::new(), ProgramType::Xdp)
            .with_map(Arc::new(outer))
            .with_map(b.clone());
        add_inner_maps(&mut p);
        let ids: Vec<_> = p.maps().iter().map(|m| m.map_id()).collect();
        assert_eq!(ids.len(), 3);
        assert_eq!(ids[1], Some(b.id()));
        assert_eq!(ids[2], Some(a.id()));
    }
}
