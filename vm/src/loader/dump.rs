//! Listing a live map's entries decoded with the object's BTF, for the CLI and test
//! output: keys and values as numbers and structs, one value per CPU for per-CPU maps.

use super::btf::Btf;
use super::decode::BtfValue;
use super::error::LoadError;
use super::instance::ObjectMaps;
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

/// Decode with BTF when there is a type, else as a little-endian unsigned integer for
/// the usual integer sizes, else as raw bytes.
fn decode(btf: Option<&Btf>, type_id: Option<u32>, bytes: &[u8]) -> BtfValue {
    match (btf, type_id) {
        (Some(btf), Some(id)) => btf.decode(id, bytes),
        _ => match bytes.len() {
            1 | 2 | 4 | 8 => {
                let mut buf = [0u8; 8];
                buf[..bytes.len()].copy_from_slice(bytes);
                BtfValue::Unsigned(u64::from_le_bytes(buf))
            }
            _ => BtfValue::Bytes(bytes.to_vec()),
        },
    }
}

impl Object {
    /// Every entry of the live map `name` (from `maps`, made by
    /// [`Object::create_maps`]), in `BPF_MAP_GET_NEXT_KEY` order, decoded with the
    /// map's BTF key and value types.
    ///
    /// Fails with [`LoadError::NoSuchMap`] for an unknown name and
    /// [`LoadError::MapRead`] when the maps crate refuses a read (e.g. a write-only map).
    pub fn dump_map(&self, maps: &ObjectMaps, name: &str) -> Result<Vec<MapEntry>, LoadError> {
        let (def, map) = maps
            .iter()
            .find(|(d, _)| d.name == name)
            .or_else(|| maps.iter().find(|(d, _)| d.is_named(name)))
            .ok_or_else(|| LoadError::NoSuchMap {
                name: name.to_owned(),
            })?;
        let read_err = |source| LoadError::MapRead {
            map: def.name.clone(),
            source,
        };
        let key_size = def.key_size as usize;
        let value_size = def.value_size as usize;
        let total = map.host_value_size(0);
        let ncpus = if map.map_type().is_percpu() {
            map.ncpus() as usize
        } else {
            1
        };
        let stride = total / ncpus.max(1);
        let mut entries = Vec::new();
        let mut prev: Option<Vec<u8>> = None;
        loop {
            let mut key = vec![0u8; key_size];
            match map.get_next_key(prev.as_deref(), &mut key, 0) {
                Ok(()) => {}
                Err(e) if e.errno() == ENOENT => break,
                Err(e) => return Err(read_err(e)),
            }
            let mut value = vec![0u8; total];
            match map.lookup(&key, &mut value, 0) {
                Ok(()) => {
                    let values = value
                        .chunks(stride.max(1))
                        .map(|v| {
                            decode(self.btf(), def.value_type_id, &v[..value_size.min(v.len())])
                        })
                        .collect();
                    entries.push(MapEntry {
                        key: decode(self.btf(), def.key_type_id, &key),
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
        Ok(entries)
    }
}
