//! Helper 1 on a map-in-map (`ARRAY_OF_MAPS`, `HASH_OF_MAPS`): the result is the inner
//! map itself — a map handle the program passes to the map helpers, as the kernel's
//! `array_of_map_lookup_elem` returns the inner `struct bpf_map *` — or NULL.
//!
//! The inner map is found among the program's maps by its id ([`ProgramMap::map_id`]): the
//! VM adds the maps an outer map holds to a program's maps when it loads the program, after
//! the maps its instructions name.

use crate::builtin::with_key;
use crate::context::HelperContext;
use crate::error::HelperError;
use crate::maps::ProgramMap;
use crate::memory::map_handle;

/// `bpf_map_lookup_elem(outer, key)`: the handle of the inner map at `key`, or 0.
///
/// Fails (a run-time fault) when the inner map is not among the program's maps.
pub(crate) fn lookup_inner(
    ctx: &HelperContext,
    helper: &str,
    outer: &dyn ProgramMap,
    key_addr: u64,
) -> Result<u64, Box<HelperError>> {
    let found = with_key(ctx, helper, key_addr, outer.key_size(), |key| {
        outer.prog_lookup_inner(ctx.cpu(), key)
    })?;
    let Some(id) = found else {
        return Ok(0);
    };
    match index_of(ctx.maps(), id) {
        Some(i) => Ok(map_handle(i)),
        None => Err(Box::new(HelperError::InnerMapNotLoaded {
            helper: helper.to_string(),
            outer: outer.name().to_string(),
            id,
        })),
    }
}

/// The index of the map with id `id` among `maps`.
fn index_of(maps: &[std::sync::Arc<dyn ProgramMap>], id: u32) -> Option<u32> {
    let i = maps.iter().position(|m| m.map_id() == Some(id))?;
    u32::try_from(i).ok()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::memory::map_handle_index;
    use bpfvm_maps::{Map, MapMemory, MapSpec, MapType};
    use std::sync::Arc;

    #[test]
    fn inner_maps_are_found_by_id() {
        let inner = Arc::new(Map::create(MapSpec::new(MapType::Array, 4, 8, 1), 1).unwrap());
        let other = Arc::new(Map::create(MapSpec::new(MapType::Array, 4, 8, 1), 1).unwrap());
        let outer = Map::create_of_maps_in(
            MapSpec::new(MapType::ArrayOfMaps, 4, 4, 2),
            1,
            &inner,
            &MapMemory::default(),
        )
        .unwrap();
        outer.update_map(&0u32.to_ne_bytes(), &inner, 0).unwrap();
        let maps: Vec<Arc<dyn ProgramMap>> = vec![other, inner.clone()];
        let id = outer.prog_lookup_inner(bpfvm_maps::CpuId(0), &0u32.to_ne_bytes());
        let i = index_of(&maps, id.unwrap()).unwrap();
        assert_eq!(map_handle_index(map_handle(i)), Some(1));
        assert_eq!(index_of(&maps, outer.id()), None);
    }
}
