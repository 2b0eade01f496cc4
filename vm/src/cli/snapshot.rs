//! Reading every map back through the host ("syscall-side") API: raw keys and values, one
//! value per CPU for per-CPU maps, exactly `value_size` bytes each.
//!
//! Maps can be huge (up to the map memory limit), so nothing here holds a whole map:
//! [`walk`] hands the entries over one at a time, borrowed from one lookup buffer (the JSON
//! output streams them), and a [`MapSnapshot`] keeps only counts and the first [`KEPT`]
//! entries (and the first `KEPT` holding data), each value cut to [`KEPT_VALUE_BYTES`], which
//! is all the text, `--explain` and `--report` outputs show.

use bpfvm::loader::{MapDefinition, MapKind, ObjectMaps};
use bpfvm::maps::{errno, Map, MapType};

use super::CliError;

/// Entries a [`MapSnapshot`] keeps (the text output shows at most this many per map).
pub const KEPT: usize = 32;
/// Bytes of each value a [`MapSnapshot`] keeps (values are shown whole up to this size,
/// longer ones as the start of their hex).
pub const KEPT_VALUE_BYTES: usize = 4096;

/// One map's definition and a bounded summary of its entries at the time of the snapshot.
#[derive(Debug, Clone)]
pub struct MapSnapshot {
    /// The definition from the object.
    pub def: MapDefinition,
    /// Whether the map keeps one value per CPU.
    pub percpu: bool,
    /// Number of simulated CPUs of the map.
    pub ncpus: u32,
    /// Number of entries.
    pub count: u64,
    /// Number of entries with a non-zero byte in a value.
    pub count_with_data: u64,
    /// The first [`KEPT`] entries in `BPF_MAP_GET_NEXT_KEY` order.
    pub first: Vec<RawEntry>,
    /// The first [`KEPT`] entries holding data, in the same order.
    pub with_data: Vec<RawEntry>,
}

/// A raw key and its value(s), as a snapshot keeps them.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RawEntry {
    /// `key_size` bytes.
    pub key: Vec<u8>,
    /// One value, or one per CPU (CPU 0 first) for per-CPU maps: `value_size` bytes each, or
    /// the first [`KEPT_VALUE_BYTES`] of longer values.
    pub values: Vec<Vec<u8>>,
}

/// One entry as [`walk`] reads it: borrowed from the lookup buffer.
#[derive(Debug, Clone, Copy)]
pub struct EntryRef<'a> {
    /// `key_size` bytes.
    pub key: &'a [u8],
    buf: &'a [u8],
    stride: usize,
    value_size: usize,
}

impl<'a> EntryRef<'a> {
    /// The value, or one per CPU (CPU 0 first): `value_size` bytes each.
    pub fn values(&self) -> impl Iterator<Item = &'a [u8]> + 'a {
        let vs = self.value_size;
        self.buf
            .chunks(self.stride.max(1))
            .map(move |v| &v[..vs.min(v.len())])
    }

    /// True when some value has a non-zero byte.
    pub fn has_data(&self) -> bool {
        self.values().any(|v| v.iter().any(|&b| b != 0))
    }

    /// An owned copy, each value cut to [`KEPT_VALUE_BYTES`].
    pub fn to_kept(self) -> RawEntry {
        RawEntry {
            key: self.key.to_vec(),
            values: self
                .values()
                .map(|v| v[..v.len().min(KEPT_VALUE_BYTES)].to_vec())
                .collect(),
        }
    }
}

impl MapSnapshot {
    /// The section name for global data maps (`.bss`), else `None`.
    pub fn section(&self) -> Option<&str> {
        match &self.def.kind {
            MapKind::GlobalData { section, .. } => Some(section),
            _ => None,
        }
    }

    /// The entries to show when there is room for `max` (at most [`KEPT`]): all of them when
    /// the map has no more than `max`, else the first `max` holding data.
    pub fn shown(&self, max: usize) -> &[RawEntry] {
        if self.count <= max as u64 {
            &self.first
        } else {
            &self.with_data[..self.with_data.len().min(max)]
        }
    }

    /// The first entry holding data, else the first entry.
    pub fn example(&self) -> Option<&RawEntry> {
        self.with_data.first().or(self.first.first())
    }
}

/// Reads every map of `maps`, in the object's order.
pub fn snapshot_all(maps: &ObjectMaps) -> Result<Vec<MapSnapshot>, CliError> {
    maps.iter().map(|(def, map)| snapshot(def, map)).collect()
}

/// Reads every entry of `map` ([`walk`]), keeping counts and the first entries.
pub fn snapshot(def: &MapDefinition, map: &Map) -> Result<MapSnapshot, CliError> {
    let mut s = MapSnapshot {
        def: def.clone(),
        percpu: map.map_type().is_percpu(),
        ncpus: map.ncpus(),
        count: 0,
        count_with_data: 0,
        first: Vec::new(),
        with_data: Vec::new(),
    };
    walk(def, map, |e| {
        s.count += 1;
        if e.has_data() {
            s.count_with_data += 1;
            if s.with_data.len() < KEPT {
                s.with_data.push(e.to_kept());
            }
        }
        if s.first.len() < KEPT {
            s.first.push(e.to_kept());
        }
        Ok(())
    })?;
    Ok(s)
}

/// Calls `f` with every entry of `map`, one at a time: keys with `BPF_MAP_GET_NEXT_KEY`,
/// values with a flags-0 lookup (for per-CPU maps `N` slots of `round_up(value_size, 8)`
/// bytes, each cut back to `value_size`). Stops at the first error `f` returns.
pub fn walk(
    def: &MapDefinition,
    map: &Map,
    mut f: impl FnMut(EntryRef<'_>) -> Result<(), CliError>,
) -> Result<(), CliError> {
    let fail = |source| CliError::Map {
        map: def.name.to_string(),
        source,
    };
    match map.map_type() {
        // No entries: their records are read as events (`super::events`).
        MapType::Ringbuf | MapType::PerfEventArray => return Ok(()),
        // No keys: the values in the order pops would return them, left in the map.
        MapType::Queue | MapType::Stack => {
            for v in map.queue_values().map_err(fail)? {
                f(EntryRef {
                    key: &[],
                    buf: &v,
                    stride: v.len(),
                    value_size: v.len(),
                })?;
            }
            return Ok(());
        }
        _ => {}
    }
    let percpu = map.map_type().is_percpu();
    let ncpus = map.ncpus();
    let value_size = map.value_size() as usize;
    let total = map.host_value_size(0);
    let stride = if percpu {
        total / ncpus.max(1) as usize
    } else {
        total
    };
    let mut prev: Option<Vec<u8>> = None;
    let mut buf = vec![0u8; total];
    loop {
        let mut key = vec![0u8; map.key_size() as usize];
        match map.get_next_key(prev.as_deref(), &mut key, 0) {
            Ok(()) => {}
            Err(e) if e.errno() == errno::ENOENT => break,
            Err(e) => return Err(fail(e)),
        }
        match map.lookup(&key, &mut buf, 0) {
            Ok(()) => f(EntryRef {
                key: &key,
                buf: &buf,
                stride,
                value_size,
            })?,
            // Deleted between the two calls (cannot happen once runs are over), empty (device
            // maps, CPUMAP: every index is a key), or not readable from the host (XSKMAP,
            // EOPNOTSUPP as in the kernel).
            Err(e) if e.errno() == errno::ENOENT || e.errno() == errno::EOPNOTSUPP => {}
            Err(e) => return Err(fail(e)),
        }
        prev = Some(key);
    }
    Ok(())
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
    fn queues_show_their_values_in_pop_order_and_keep_them() {
        for (t, order) in [(MapType::Queue, [1u32, 2, 3]), (MapType::Stack, [3, 2, 1])] {
            let map = Map::create(MapSpec::new(t, 0, 4, 4), 2).unwrap();
            for v in 1u32..=3 {
                map.update(&[], &v.to_ne_bytes(), 0).unwrap();
            }
            let s = snapshot(&def_of(&map), &map).unwrap();
            let values: Vec<Vec<u8>> = s.first.iter().map(|e| e.values[0].clone()).collect();
            let want: Vec<Vec<u8>> = order.iter().map(|v| v.to_ne_bytes().to_vec()).collect();
            assert_eq!(values, want, "{t:?}");
            assert!(s.first.iter().all(|e| e.key.is_empty()));
            assert_eq!(map.queue_values().unwrap().len(), 3, "read, not popped");
        }
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
        assert_eq!((s.count, s.count_with_data), (1, 1));
        assert_eq!(s.first, s.with_data);
        assert_eq!(s.first[0].key, 7u32.to_ne_bytes());
        let v: Vec<_> = s.first[0].values.iter().map(|v| v.len()).collect();
        assert_eq!(v, [4, 4, 4], "value_size bytes, no padding");
        assert_eq!(s.first[0].values[1], 5u32.to_ne_bytes());
        assert_eq!(s.first[0].values[2], 9u32.to_ne_bytes());
    }

    #[test]
    fn plain_maps_have_one_value_per_entry() {
        let map = Map::create(MapSpec::new(MapType::Array, 4, 8, 2), 4).unwrap();
        let s = snapshot(&def_of(&map), &map).unwrap();
        assert!(!s.percpu);
        assert_eq!((s.count, s.count_with_data), (2, 0));
        assert!(s
            .first
            .iter()
            .all(|e| e.values.len() == 1 && e.values[0] == [0; 8]));
        assert!(s.with_data.is_empty());
        assert_eq!(s.example(), s.first.first());
    }

    #[test]
    fn long_values_are_kept_cut() {
        let map = Map::create(MapSpec::new(MapType::Array, 4, 10_000, 2), 1).unwrap();
        map.update(&1u32.to_ne_bytes(), &[9u8; 10_000], 0).unwrap();
        let s = snapshot(&def_of(&map), &map).unwrap();
        assert_eq!(s.first[1].values[0], vec![9u8; KEPT_VALUE_BYTES]);
        let mut whole = 0;
        walk(&def_of(&map), &map, |e| {
            whole += e.values().map(<[u8]>::len).sum::<usize>();
            Ok(())
        })
        .unwrap();
        assert_eq!(whole, 20_000, "walk gives whole values");
    }

    #[test]
    fn a_large_map_keeps_counts_and_the_first_entries_only() {
        let map = Map::create(MapSpec::new(MapType::Array, 4, 8, 100_000), 1).unwrap();
        for k in [5u32, 70_000, 99_999] {
            map.update(&k.to_ne_bytes(), &u64::from(k).to_ne_bytes(), 0)
                .unwrap();
        }
        let s = snapshot(&def_of(&map), &map).unwrap();
        assert_eq!((s.count, s.count_with_data), (100_000, 3));
        assert_eq!(s.first.len(), KEPT);
        let keys: Vec<_> = s.with_data.iter().map(|e| e.key.clone()).collect();
        assert_eq!(
            keys,
            [5u32, 70_000, 99_999].map(|k| k.to_ne_bytes().to_vec())
        );
        assert_eq!(s.shown(32).len(), 3, "over 32 entries: those with data");
        assert_eq!(s.example().unwrap().key, 5u32.to_ne_bytes());
        // walk stops at the first error its callback returns.
        let mut seen = 0;
        let r = walk(&def_of(&map), &map, |_| {
            seen += 1;
            if seen == 10 {
                Err(CliError::StdoutClosed)
            } else {
                Ok(())
            }
        });
        assert!(matches!(r, Err(CliError::StdoutClosed)));
        assert_eq!(seen, 10);
    }
}
