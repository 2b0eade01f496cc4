//! The contents of a program's maps: read after each explored run, compared with the
//! serial results, and put back before the next run.

use std::sync::Arc;

use bpfvm_helpers::ProgramMap;
use bpfvm_maps::{Map, MapType};

use super::RaceError;

/// Most entries read from one map (each explored run reads every map).
pub const MAX_ENTRIES: usize = 1 << 16;
/// Most bytes (keys and values) read from all maps after one run.
pub const MAX_STATE_BYTES: usize = 16 << 20;

/// `(key, value)` pairs of a map.
pub type Entries = Vec<(Vec<u8>, Vec<u8>)>;

/// One map's entries, sorted by key (`None`: a map type the explorer does not compare).
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct MapImage {
    /// The map's name.
    pub name: String,
    /// `(key, value)` pairs as `bpf_map_lookup_elem` from user space gives them (a per-CPU
    /// map's value is every CPU's copy), sorted by key.
    pub entries: Option<Entries>,
    /// For a per-CPU map, the bytes of each CPU's copy in a value (value size rounded up
    /// to 8); 0 for a shared map.
    pub per_cpu: usize,
}

/// The contents of every map of the program, in the program's map order.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct MapsState(pub Vec<MapImage>);

fn compared(t: MapType) -> bool {
    matches!(
        t,
        MapType::Array
            | MapType::PercpuArray
            | MapType::Hash
            | MapType::PercpuHash
            | MapType::LruHash
            | MapType::LruPercpuHash
    )
}

fn map_err(name: &str, e: impl std::fmt::Display) -> RaceError {
    RaceError::Maps {
        reason: format!("map {name}: {e}"),
    }
}

/// Reads every compared map of `maps`.
pub(crate) fn read(maps: &[Arc<dyn ProgramMap>]) -> Result<MapsState, RaceError> {
    let mut total = 0usize;
    let mut images = Vec::with_capacity(maps.len());
    for m in maps {
        let name = m.name().to_string();
        let map = m.as_map().filter(|map| compared(map.map_type()));
        let entries = match map {
            None => None,
            Some(map) => Some(entries(map, &name, &mut total)?),
        };
        let per_cpu = map
            .filter(|map| map.map_type().is_percpu())
            .map_or(0, |map| (map.value_size() as usize).div_ceil(8) * 8);
        images.push(MapImage {
            name,
            entries,
            per_cpu,
        });
    }
    Ok(MapsState(images))
}

fn entries(map: &Map, name: &str, total: &mut usize) -> Result<Entries, RaceError> {
    let ks = map.key_size() as usize;
    let vs = map.host_value_size(0);
    let mut out = Vec::new();
    let mut key: Option<Vec<u8>> = None;
    loop {
        let mut next = vec![0u8; ks];
        match map.get_next_key(key.as_deref(), &mut next, 0) {
            Ok(()) => {}
            Err(e) if e.errno() == libc_enoent() => break,
            Err(e) => return Err(map_err(name, e)),
        }
        let mut value = vec![0u8; vs];
        match map.lookup(&next, &mut value, 0) {
            Ok(()) => {}
            // Deleted between the two calls (nothing runs now; kept for safety).
            Err(e) if e.errno() == libc_enoent() => {
                key = Some(next);
                continue;
            }
            Err(e) => return Err(map_err(name, e)),
        }
        *total += ks + vs;
        if out.len() >= MAX_ENTRIES || *total > MAX_STATE_BYTES {
            return Err(RaceError::Maps {
                reason: format!(
                    "map {name}: more than {MAX_ENTRIES} entries or {MAX_STATE_BYTES} bytes \
                     of map contents; the explorer reads every map after each schedule, so \
                     use smaller maps (max_entries) to explore"
                ),
            });
        }
        out.push((next.clone(), value));
        key = Some(next);
    }
    out.sort();
    Ok(out)
}

const fn libc_enoent() -> i32 {
    2
}

/// Puts `state` back into `maps`: arrays' values rewritten, hash maps emptied and
/// refilled.
pub(crate) fn restore(maps: &[Arc<dyn ProgramMap>], state: &MapsState) -> Result<(), RaceError> {
    for (m, image) in maps.iter().zip(&state.0) {
        let (Some(map), Some(entries)) = (m.as_map(), &image.entries) else {
            continue;
        };
        let name = &image.name;
        if !matches!(map.map_type(), MapType::Array | MapType::PercpuArray) {
            let mut keys = Vec::new();
            let mut key: Option<Vec<u8>> = None;
            loop {
                let mut next = vec![0u8; map.key_size() as usize];
                if map.get_next_key(key.as_deref(), &mut next, 0).is_err() {
                    break;
                }
                keys.push(next.clone());
                key = Some(next);
                if keys.len() > MAX_ENTRIES * 2 {
                    break;
                }
            }
            for k in keys {
                match map.delete(&k, 0) {
                    Ok(()) => {}
                    Err(e) if e.errno() == libc_enoent() => {}
                    Err(e) => return Err(map_err(name, e)),
                }
            }
        }
        for (k, v) in entries {
            map.update(k, v, 0).map_err(|e| map_err(name, e))?;
        }
    }
    Ok(())
}
