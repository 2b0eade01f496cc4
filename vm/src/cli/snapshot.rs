//! Reading every map back through the host ("syscall-side") API: raw keys and values, one
//! value per CPU for per-CPU maps, exactly `value_size` bytes each.

use bpfvm::loader::{MapDefinition, MapKind, ObjectMaps};
use bpfvm::maps::{errno, Map};

use super::CliError;

/// One map's definition and its entries at the time of the snapshot.
#[derive(Debug, Clone)]
pub struct MapSnapshot {
    /// The definition from the object.
    pub def: MapDefinition,
    /// Whether the map keeps one value per CPU.
    pub percpu: bool,
    /// Number of simulated CPUs of the map.
    pub ncpus: u32,
    /// Entries in `BPF_MAP_GET_NEXT_KEY` order.
    pub entries: Vec<RawEntry>,
}

/// A raw key and its value(s).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RawEntry {
    /// `key_size` bytes.
    pub key: Vec<u8>,
    /// `value_size` bytes each: one value, or one per CPU (CPU 0 first) for per-CPU maps.
    pub values: Vec<Vec<u8>>,
}

impl MapSnapshot {
    /// The section name for global data maps (`.bss`), else `None`.
    pub fn section(&self) -> Option<&str> {
        match &self.def.kind {
            MapKind::GlobalData { section, .. } => Some(section),
            _ => None,
        }
    }
}

/// Reads every map of `maps`, in the object's order.
pub fn snapshot_all(maps: &ObjectMaps) -> Result<Vec<MapSnapshot>, CliError> {
    maps.iter().map(|(def, map)| snapshot(def, map)).collect()
}

/// Reads every entry of `map`: keys with `BPF_MAP_GET_NEXT_KEY`, values with a flags-0
/// lookup (for per-CPU maps `N` slots of `round_up(value_size, 8)` bytes, each cut back to
/// `value_size`).
pub fn snapshot(def: &MapDefinition, map: &Map) -> Result<MapSnapshot, CliError> {
    let fail = |source| CliError::Map {
        map: def.name.clone(),
        source,
    };
    let percpu = map.map_type().is_percpu();
    let ncpus = map.ncpus();
    let value_size = map.value_size() as usize;
    let total = map.host_value_size(0);
    let stride = if percpu {
        total / ncpus.max(1) as usize
    } else {
        total
    };
    let mut entries = Vec::new();
    let mut prev: Option<Vec<u8>> = None;
    loop {
        let mut key = vec![0u8; map.key_size() as usize];
        match map.get_next_key(prev.as_deref(), &mut key, 0) {
            Ok(()) => {}
            Err(e) if e.errno() == errno::ENOENT => break,
            Err(e) => return Err(fail(e)),
        }
        let mut buf = vec![0u8; total];
        match map.lookup(&key, &mut buf, 0) {
            Ok(()) => entries.push(RawEntry {
                values: buf
                    .chunks(stride.max(1))
                    .map(|v| v[..value_size.min(v.len())].to_vec())
                    .collect(),
                key: key.clone(),
            }),
            // Empty (device maps, CPUMAP: every index is a key), or not readable from the
            // host (XSKMAP, EOPNOTSUPP as in the kernel).
            Err(e) if e.errno() == errno::ENOENT || e.errno() == errno::EOPNOTSUPP => {}
            Err(e) => return Err(fail(e)),
        }
        prev = Some(key);
    }
    Ok(MapSnapshot {
        def: def.clone(),
        percpu,
        ncpus,
        entries,
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use bpfvm::loader::Object;
    use bpfvm::maps::{MapFlags, MapSpec, MapType};

    fn def_of(map: &Map) -> MapDefinition {
        let bytes = include_bytes!("../../tests/fixtures/percpu_counter.o");
        let obj = Object::parse(bytes).unwrap();
        let mut def = obj.maps()[0].clone();
        def.map_type = map.map_type() as u32;
        def.key_size = map.key_size();
        def.value_size = map.value_size();
        def
    }

    #[test]
    fn percpu_values_are_cut_to_value_size_cpu_0_first() {
        let map = Map::create(MapSpec::new(MapType::PercpuHash, 4, 4, 4), 3).unwrap();
        map.update(
            &7u32.to_ne_bytes(),
            &9u32.to_ne_bytes(),
            MapFlags::ALL_CPUS.bits(),
        )
        .unwrap();
        map.update(
            &7u32.to_ne_bytes(),
            &5u32.to_ne_bytes(),
            MapFlags::cpu(1).bits(),
        )
        .unwrap();
        let s = snapshot(&def_of(&map), &map).unwrap();
        assert!(s.percpu);
        assert_eq!(s.entries.len(), 1);
        assert_eq!(s.entries[0].key, 7u32.to_ne_bytes());
        let v: Vec<_> = s.entries[0].values.iter().map(|v| v.len()).collect();
        assert_eq!(v, [4, 4, 4], "value_size bytes, no padding");
        assert_eq!(s.entries[0].values[1], 5u32.to_ne_bytes());
        assert_eq!(s.entries[0].values[2], 9u32.to_ne_bytes());
    }

    #[test]
    fn plain_maps_have_one_value_per_entry() {
        let map = Map::create(MapSpec::new(MapType::Array, 4, 8, 2), 4).unwrap();
        let s = snapshot(&def_of(&map), &map).unwrap();
        assert!(!s.percpu);
        assert_eq!(s.entries.len(), 2);
        assert!(s
            .entries
            .iter()
            .all(|e| e.values.len() == 1 && e.values[0] == [0; 8]));
    }
}
