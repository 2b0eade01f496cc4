//! Listing a live map's entries decoded with the object's BTF, for the CLI and test
//! output: keys and values as numbers and structs, one value per CPU for per-CPU maps.

use bpfvm_maps::MapType;

use super::btf::Btf;
use super::decode::{BtfValue, ListingBudget};
use super::error::LoadError;
use super::instance::ObjectMaps;
use super::limits::MAX_DECODE_UNITS;
use super::Object;

/// `ENOENT`, which ends a `BPF_MAP_GET_NEXT_KEY` walk.
const ENOENT: i32 = 2;
/// `EOPNOTSUPP`: elements the host cannot read (an XSKMAP's sockets).
const EOPNOTSUPP: i32 = 95;

/// One decoded entry of a map.
#[derive(Debug, Clone, PartialEq)]
pub struct MapEntry {
    /// The key.
    pub key: BtfValue,
    /// The value; for per-CPU maps one per CPU, CPU 0 first.
    pub values: Vec<BtfValue>,
}

/// Decode with BTF when there is a type (from the listing's budget), else as a
/// little-endian unsigned integer for the usual integer sizes, else as raw bytes.
fn decode(
    btf: Option<&Btf>,
    type_id: Option<u32>,
    bytes: &[u8],
    listing: &mut ListingBudget,
) -> BtfValue {
    match (btf, type_id) {
        (Some(btf), Some(id)) => btf.decode_listed(id, bytes, listing),
        _ => match bytes.len() {
            1 | 2 | 4 | 8 => {
                let mut buf = [0u8; 8];
                buf[..bytes.len()].copy_from_slice(bytes);
                BtfValue::Unsigned(u64::from_le_bytes(buf))
            }
            n if n > MAX_DECODE_UNITS => BtfValue::Truncated,
            _ => BtfValue::Bytes(bytes.to_vec()),
        },
    }
}

/// A zeroed buffer of `len` bytes, or [`LoadError::OutOfMemory`] naming `what`.
fn zeroed(len: usize, what: impl FnOnce() -> String) -> Result<Vec<u8>, LoadError> {
    let mut buf = Vec::new();
    buf.try_reserve_exact(len)
        .map_err(|_| LoadError::out_of_memory(what(), len))?;
    buf.resize(len, 0);
    Ok(buf)
}

impl Object {
    /// Every entry of the live map `name` (from `maps`, made by
    /// [`Object::create_maps`]), in `BPF_MAP_GET_NEXT_KEY` order, decoded with the
    /// map's BTF key and value types. A queue or stack lists its values in pop order
    /// (keys 0, 1, ...) without popping them; ring buffers and perf event arrays list
    /// nothing (their records are read by consuming them).
    ///
    /// Fails with [`LoadError::NoSuchMap`] for an unknown name,
    /// [`LoadError::MapRead`] when the maps crate refuses a read (e.g. a write-only map)
    /// and [`LoadError::OutOfMemory`] when a value buffer cannot be allocated. To list a
    /// large map without holding every entry, use [`Object::for_each_map_entry`].
    pub fn dump_map(&self, maps: &ObjectMaps, name: &str) -> Result<Vec<MapEntry>, LoadError> {
        let mut entries = Vec::new();
        self.for_each_map_entry(maps, name, |e| entries.push(e))?;
        Ok(entries)
    }

    /// Like [`Object::dump_map`], but hands each entry to `f` as it is read, so memory
    /// stays that of one entry (its key, its value on every CPU, and the decoded forms,
    /// each bounded as [`Btf::decode`] says).
    ///
    /// All the keys and values of one listing share one decoding budget of
    /// `DECODE_BASE_UNITS + DECODE_UNITS_PER_BYTE × bytes listed` (see
    /// [`limits`](super::limits)), so the whole listing costs time and text in proportion
    /// to the map's bytes: values that need more (a union that fans out) are
    /// [`BtfValue::Truncated`] once it is spent; entries that need no more than
    /// `DECODE_UNITS_PER_BYTE` units per byte on average (plain integers and structs) are
    /// never cut.
    ///
    /// Fails as [`Object::dump_map`] does; entries already passed to `f` stay passed.
    pub fn for_each_map_entry(
        &self,
        maps: &ObjectMaps,
        name: &str,
        mut f: impl FnMut(MapEntry),
    ) -> Result<(), LoadError> {
        let no_such = || LoadError::NoSuchMap {
            name: name.to_owned(),
        };
        // `maps` holds this object's maps in the order of `Object::maps`.
        let i = self.map_index(name).ok_or_else(no_such)?;
        let (def, map) = (
            self.maps().get(i).ok_or_else(no_such)?,
            maps.all().get(i).ok_or_else(no_such)?,
        );
        let read_err = |source| LoadError::MapRead {
            map: def.name.to_string(),
            source,
        };
        let key_size = def.key_size as usize;
        let value_size = def.value_size as usize;
        // One decoding budget for the whole listing (see above).
        let mut listing = ListingBudget::new();
        match map.map_type() {
            // Records are read by consuming them (`Map::ringbuf_consume`, `Map::perf_read`);
            // a listing must not take them away.
            MapType::Ringbuf | MapType::PerfEventArray => return Ok(()),
            // Values in pop order, numbered, without popping them.
            MapType::Queue | MapType::Stack => {
                for (i, v) in map
                    .queue_values()
                    .map_err(read_err)?
                    .into_iter()
                    .enumerate()
                {
                    f(MapEntry {
                        key: BtfValue::Unsigned(i as u64),
                        values: vec![decode(self.btf(), def.value_type_id, &v, &mut listing)],
                    });
                }
                return Ok(());
            }
            _ => {}
        }
        let total = map.host_value_size(0);
        let ncpus = if map.map_type().is_percpu() {
            map.ncpus() as usize
        } else {
            1
        };
        let stride = total / ncpus.max(1);
        let mut value = zeroed(total, || format!("a value of map {}", def.name))?;
        let mut prev: Option<Vec<u8>> = None;
        loop {
            let mut key = zeroed(key_size, || format!("a key of map {}", def.name))?;
            match map.get_next_key(prev.as_deref(), &mut key, 0) {
                Ok(()) => {}
                Err(e) if e.errno() == ENOENT => break,
                Err(e) => return Err(read_err(e)),
            }
            match map.lookup(&key, &mut value, 0) {
                Ok(()) => {
                    let key_value = decode(self.btf(), def.key_type_id, &key, &mut listing);
                    let values = value
                        .chunks(stride.max(1))
                        .map(|v| {
                            let v = &v[..value_size.min(v.len())];
                            decode(self.btf(), def.value_type_id, v, &mut listing)
                        })
                        .collect();
                    f(MapEntry {
                        key: key_value,
                        values,
                    });
                }
                // Deleted between the two calls, or not readable from the host (XSKMAP):
                // skip it, as bpftool does.
                Err(e) if e.errno() == ENOENT || e.errno() == EOPNOTSUPP => {}
                Err(e) => return Err(read_err(e)),
            }
            prev = Some(key);
        }
        Ok(())
    }
}
