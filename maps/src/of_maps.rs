//! Map-in-map: `ARRAY_OF_MAPS` and `HASH_OF_MAPS`, whose values are other maps.
//!
//! As in the kernel (`kernel/bpf/map_in_map.c`), an outer map is created from an *inner map
//! template*: the type, key and value size, flags, spin lock and (for arrays without
//! `BPF_F_INNER_MAP`) `max_entries` of a map given at creation ([`Map::create_of_maps_in`]).
//! A host update ([`Map::update_map`]) only accepts an inner map that matches the template
//! (`bpf_map_meta_equal`), else `EINVAL`; a map-in-map never holds another map-in-map.
//!
//! Storage: an outer map is an ARRAY or a hash table of 4-byte values, each the [`Map::id`]
//! of the inner map (0 in an empty array slot), so iteration order, `max_entries`, the
//! `BPF_NOEXIST`/`BPF_EXIST` rules and `get_next_key` are those of the plain types. A host
//! lookup copies out the inner map's id, as the kernel's `map_fd_sys_lookup_elem` does. The
//! outer map keeps every inner map alive (`Arc`) while it holds it.
//!
//! ```
//! use std::sync::Arc;
//! use bpfvm_maps::{Map, MapMemory, MapSpec, MapType};
//!
//! let memory = MapMemory::default();
//! let inner = Arc::new(Map::create(MapSpec::new(MapType::Array, 4, 8, 4), 1)?);
//! let outer = Map::create_of_maps_in(MapSpec::new(MapType::ArrayOfMaps, 4, 4, 2), 1, &inner, &memory)?;
//! outer.update_map(&0u32.to_ne_bytes(), &inner, 0)?;
//! let mut id = [0u8; 4];
//! outer.lookup(&0u32.to_ne_bytes(), &mut id, 0)?;
//! assert_eq!(u32::from_ne_bytes(id), inner.id());
//! // An array with another value size does not fit the template: EINVAL.
//! let other = Arc::new(Map::create(MapSpec::new(MapType::Array, 4, 16, 4), 1)?);
//! assert_eq!(outer.update_map(&1u32.to_ne_bytes(), &other, 0).unwrap_err().errno(), 22);
//! // An empty slot is ENOENT.
//! assert_eq!(outer.lookup(&1u32.to_ne_bytes(), &mut id, 0).unwrap_err().errno(), 2);
//! # Ok::<(), bpfvm_maps::MapError>(())
//! ```

use std::collections::HashMap;
use std::sync::atomic::{AtomicU32, Ordering};
use std::sync::{Arc, Mutex, MutexGuard};

use crate::error::MapError;
use crate::flags::{create, BPF_ANY};
use crate::map::{Kind, Map, Perm};
use crate::memory::MapMemory;
use crate::spec::{CpuId, MapSpec, MapType};

/// The next [`Map::id`] to hand out (ids start at 1, as the kernel's map ids).
static NEXT_MAP_ID: AtomicU32 = AtomicU32::new(1);

/// A new map id, unique in the process (it wraps after 2^32 - 1 maps, skipping 0).
pub(crate) fn next_id() -> u32 {
    loop {
        let id = NEXT_MAP_ID.fetch_add(1, Ordering::Relaxed);
        if id != 0 {
            return id;
        }
    }
}

/// What an outer map records of its inner map template (the kernel's `inner_map_meta`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct InnerTemplate {
    /// Map type.
    pub map_type: MapType,
    /// Key size in bytes.
    pub key_size: u32,
    /// Value size in bytes.
    pub value_size: u32,
    /// `max_entries` of the template.
    pub max_entries: u32,
    /// Creation flags of the template.
    pub map_flags: u32,
    /// Offset of the value's `bpf_spin_lock`, if it has one.
    pub spin_lock: Option<u32>,
    /// Offset of the value's `bpf_timer`, if it has one.
    pub timer: Option<u32>,
}

impl InnerTemplate {
    /// The template `map` stands for.
    pub fn of(map: &Map) -> InnerTemplate {
        InnerTemplate {
            map_type: map.map_type(),
            key_size: map.key_size(),
            value_size: map.value_size(),
            max_entries: map.max_entries(),
            map_flags: map.map_flags(),
            spin_lock: map.spin_lock_off(),
            timer: map.timer_off(),
        }
    }

    /// Whether the size of an inner array is part of the template: arrays (and
    /// PERF_EVENT_ARRAY) without `BPF_F_INNER_MAP` (`array_map_meta_equal`).
    pub fn checks_max_entries(&self) -> bool {
        matches!(
            self.map_type,
            MapType::Array | MapType::PercpuArray | MapType::PerfEventArray
        ) && self.map_flags & create::INNER_MAP == 0
    }

    /// `map_meta_equal`: why `map` does not fit this template, or `None` when it does.
    pub fn mismatch(&self, map: &Map) -> Option<String> {
        let m = InnerTemplate::of(map);
        let what = if m.map_type != self.map_type {
            format!(
                "type {:?}, the template's is {:?}",
                m.map_type, self.map_type
            )
        } else if m.key_size != self.key_size {
            format!(
                "key_size {}, the template's is {}",
                m.key_size, self.key_size
            )
        } else if m.value_size != self.value_size {
            format!(
                "value_size {}, the template's is {}",
                m.value_size, self.value_size
            )
        } else if m.map_flags != self.map_flags {
            format!(
                "map_flags {:#x}, the template's are {:#x}",
                m.map_flags, self.map_flags
            )
        } else if m.spin_lock != self.spin_lock {
            "another bpf_spin_lock layout than the template".to_string()
        } else if m.timer != self.timer {
            "another bpf_timer layout than the template".to_string()
        } else if self.checks_max_entries() && m.max_entries != self.max_entries {
            format!(
                "max_entries {}, the template's is {} (create the template with \
                 BPF_F_INNER_MAP to allow other sizes)",
                m.max_entries, self.max_entries
            )
        } else {
            return None;
        };
        Some(format!("inner map {:?} has {what}", map.spec().name))
    }
}

/// The state of an outer map: its template and the inner maps it holds, by key.
#[derive(Debug)]
pub(crate) struct OfMaps {
    template: InnerTemplate,
    held: Mutex<HashMap<Vec<u8>, Arc<Map>>>,
}

impl OfMaps {
    fn held(&self) -> MutexGuard<'_, HashMap<Vec<u8>, Arc<Map>>> {
        self.held.lock().unwrap_or_else(|e| e.into_inner())
    }
}

/// `map_alloc_check` of the two outer types: 4-byte values, no program access flags on
/// arrays (`fd_array_map_alloc_check`).
pub(crate) fn check_create(spec: &MapSpec) -> Result<(), MapError> {
    if spec.value_size != 4 {
        return Err(MapError::InvalidSpec {
            reason: "a map-in-map's value_size must be 4 (a map fd)",
        });
    }
    if spec.map_type == MapType::ArrayOfMaps
        && spec.map_flags & (create::RDONLY_PROG | create::WRONLY_PROG) != 0
    {
        return Err(MapError::InvalidSpec {
            reason: "BPF_F_RDONLY_PROG / BPF_F_WRONLY_PROG on ARRAY_OF_MAPS",
        });
    }
    if spec.map_type == MapType::ArrayOfMaps
        && spec.map_flags & (create::MMAPABLE | create::INNER_MAP) != 0
    {
        return Err(MapError::InvalidSpec {
            reason: "BPF_F_MMAPABLE / BPF_F_INNER_MAP need ARRAY",
        });
    }
    Ok(())
}

/// The plain type an outer map stores its ids in.
pub(crate) fn storage_type(t: MapType) -> MapType {
    match t {
        MapType::ArrayOfMaps => MapType::Array,
        _ => MapType::Hash,
    }
}

impl Map {
    /// `BPF_MAP_CREATE` of an `ARRAY_OF_MAPS` or `HASH_OF_MAPS` (`spec.map_type`) with
    /// `inner` as the inner map template (`inner_map_fd`), charged to `memory`.
    ///
    /// Errors as the kernel: `EINVAL` when the value size is not 4, for flags the plain
    /// array or hash refuses (and program access flags on an array of maps), or when
    /// `inner` is itself a map-in-map (one level only), `ENOTSUPP` when `inner` is cgroup
    /// storage (no template check exists for it); the errors of [`Map::create_in`]
    /// otherwise. Any other `spec.map_type` is `EINVAL`.
    pub fn create_of_maps_in(
        spec: MapSpec,
        ncpus: u32,
        inner: &Map,
        memory: &MapMemory,
    ) -> Result<Map, MapError> {
        if !spec.map_type.is_map_of_maps() {
            return Err(MapError::InvalidSpec {
                reason: "create_of_maps_in needs ARRAY_OF_MAPS or HASH_OF_MAPS",
            });
        }
        check_create(&spec)?;
        let outer_type = spec.map_type;
        let mut map = Map::create_in(
            MapSpec {
                map_type: storage_type(outer_type),
                ..spec
            },
            ncpus,
            memory,
        )?;
        if inner.of_maps.is_some() {
            return Err(MapError::InvalidSpec {
                reason: "the inner map is itself a map-in-map (one level only)",
            });
        }
        if inner.map_type().is_cgroup_storage() {
            // No `map_meta_equal` for cgroup storage in the kernel.
            return Err(MapError::NotSupported {
                op: "inner map of a map-in-map",
                map_type: inner.map_type(),
            });
        }
        map.spec.map_type = outer_type;
        map.of_maps = Some(Box::new(OfMaps {
            template: InnerTemplate::of(inner),
            held: Mutex::new(HashMap::new()),
        }));
        Ok(map)
    }

    /// The inner map template of a map-in-map, `None` for other maps.
    pub fn inner_template(&self) -> Option<&InnerTemplate> {
        self.of_maps.as_ref().map(|o| &o.template)
    }

    /// `BPF_MAP_UPDATE_ELEM` on a map-in-map: store `inner` at `key` (the kernel takes the
    /// inner map's fd as the value).
    ///
    /// Errors as the kernel's, in its order: `EPERM` without write access, `EINVAL` on a map
    /// that is not a map-in-map; on an array of maps `EINVAL` for flags other than
    /// `BPF_ANY`, `E2BIG` for an index past `max_entries`, then `EINVAL` when `inner` does
    /// not match the template; on a hash of maps the template check first, then the hash
    /// rules (`EINVAL` flags, `EEXIST`, `ENOENT`, `E2BIG` when full).
    pub fn update_map(&self, key: &[u8], inner: &Arc<Map>, flags: u64) -> Result<(), MapError> {
        self.check_perm(Perm::Write)?;
        let Some(of) = self.of_maps.as_ref() else {
            return Err(MapError::InvalidOperation {
                op: "update with a map",
                map_type: self.spec.map_type,
            });
        };
        self.check_flags(flags, !0)?;
        let key = self.key_in(key)?;
        let mut held = of.held();
        if let Kind::Array = self.kind {
            if flags != BPF_ANY {
                return Err(MapError::flags(flags, "array of maps updates take BPF_ANY"));
            }
            let index = u32::from_ne_bytes(key.try_into().unwrap_or([0xff; 4]));
            if index >= self.spec.max_entries {
                return Err(MapError::IndexOutOfRange {
                    index,
                    max_entries: self.spec.max_entries,
                });
            }
        }
        if let Some(reason) = of.template.mismatch(inner) {
            return Err(MapError::IncompatibleInnerMap { reason });
        }
        let id = inner.id().to_ne_bytes();
        match &self.kind {
            Kind::Array => self.array_update_host(key, &id, BPF_ANY)?,
            Kind::Hash(h) => h.update_host(self, self.host_cpu().0, key, &id, flags)?,
            _ => unreachable_kind(),
        }
        held.insert(key.to_vec(), Arc::clone(inner));
        Ok(())
    }

    /// `BPF_MAP_UPDATE_ELEM` of a map-in-map with bytes for a value: bpfvm has no file
    /// descriptors, so no bytes name a map (`EBADF`), after the checks the kernel makes
    /// before it reads the fd (array of maps: flags, then the index).
    pub(crate) fn of_maps_update_bytes(&self, key: &[u8], flags: u64) -> Result<(), MapError> {
        if let Kind::Array = self.kind {
            if flags != BPF_ANY {
                return Err(MapError::flags(flags, "array of maps updates take BPF_ANY"));
            }
            let index = u32::from_ne_bytes(key.try_into().unwrap_or([0xff; 4]));
            if index >= self.spec.max_entries {
                return Err(MapError::IndexOutOfRange {
                    index,
                    max_entries: self.spec.max_entries,
                });
            }
        }
        Err(MapError::BadFd {
            reason: "a map-in-map's values are maps: use Map::update_map",
        })
    }

    /// The inner map stored at `key` of a map-in-map (host side), `None` when there is none
    /// or this is not a map-in-map.
    pub fn inner_map(&self, key: &[u8]) -> Option<Arc<Map>> {
        let key = key.get(..self.spec.key_size as usize)?;
        self.of_maps.as_ref()?.held().get(key).cloned()
    }

    /// Every inner map a map-in-map holds now (each once), empty for other maps.
    pub fn inner_maps(&self) -> Vec<Arc<Map>> {
        let Some(of) = self.of_maps.as_ref() else {
            return Vec::new();
        };
        let mut out: Vec<Arc<Map>> = Vec::new();
        for m in of.held().values() {
            if !out.iter().any(|o| Arc::ptr_eq(o, m)) {
                out.push(Arc::clone(m));
            }
        }
        out.sort_by_key(|m| m.id());
        out
    }

    /// Helper 1 on a map-in-map: the [`Map::id`] of the inner map at `key`, or `None`
    /// (missing key, empty slot, `cpu >= N`, or not a map-in-map).
    pub fn prog_lookup_inner(&self, cpu: CpuId, key: &[u8]) -> Option<u32> {
        self.of_maps.as_ref()?;
        if cpu.0 >= self.ncpus {
            return None;
        }
        let key = key.get(..self.spec.key_size as usize)?;
        let slot = match &self.kind {
            Kind::Array => self.array_prog_lookup(cpu.0, key)?,
            Kind::Hash(h) => h.prog_lookup(self, cpu.0, key)?,
            _ => return None,
        };
        let id = self.slab.word32(slot, 0).load(Ordering::Relaxed);
        (id != 0).then_some(id)
    }

    /// `BPF_MAP_DELETE_ELEM` on a map-in-map (after the common checks): an array slot is
    /// emptied (`E2BIG` past `max_entries`, `ENOENT` when empty), a hash element removed.
    pub(crate) fn of_maps_delete(&self, of: &OfMaps, key: &[u8]) -> Result<(), MapError> {
        let mut held = of.held();
        match &self.kind {
            Kind::Array => {
                let index = u32::from_ne_bytes(key.try_into().unwrap_or([0xff; 4]));
                if index >= self.spec.max_entries {
                    return Err(MapError::IndexOutOfRange {
                        index,
                        max_entries: self.spec.max_entries,
                    });
                }
                if held.remove(key).is_none() {
                    return Err(MapError::NotFound);
                }
                self.array_update_host(key, &0u32.to_ne_bytes(), BPF_ANY)
            }
            Kind::Hash(h) => {
                h.delete(self, key, None)?;
                held.remove(key);
                Ok(())
            }
            _ => unreachable_kind(),
        }
    }

    /// Whether an array-of-maps slot is empty (a host lookup of it is `ENOENT`).
    pub(crate) fn of_maps_empty_slot(&self, key: &[u8]) -> bool {
        self.of_maps
            .as_ref()
            .is_some_and(|of| matches!(self.kind, Kind::Array) && !of.held().contains_key(key))
    }

    pub(crate) fn of_maps_state(&self) -> Option<&OfMaps> {
        self.of_maps.as_deref()
    }
}

/// Outer maps are made only as arrays or hashes ([`storage_type`]).
fn unreachable_kind() -> ! {
    unreachable!("a map-in-map is stored as an array or a hash table")
}

#[cfg(test)]
mod tests {
    use super::*;

    fn array(vs: u32, n: u32, flags: u32) -> Arc<Map> {
        Arc::new(Map::create(MapSpec::new(MapType::Array, 4, vs, n).with_flags(flags), 1).unwrap())
    }

    fn outer(t: MapType, inner: &Map) -> Result<Map, MapError> {
        Map::create_of_maps_in(MapSpec::new(t, 4, 4, 4), 1, inner, &MapMemory::default())
    }

    #[test]
    fn array_of_maps_host_commands_follow_the_kernel() {
        let a = array(8, 4, 0);
        let o = outer(MapType::ArrayOfMaps, &a).unwrap();
        assert_eq!(o.map_type(), MapType::ArrayOfMaps);
        let k0 = 0u32.to_ne_bytes();
        let mut v = [0u8; 4];
        assert_eq!(o.lookup(&k0, &mut v, 0).unwrap_err().errno(), 2);
        assert_eq!(o.prog_lookup_inner(CpuId(0), &k0), None);
        o.update_map(&k0, &a, 0).unwrap();
        o.lookup(&k0, &mut v, 0).unwrap();
        assert_eq!(u32::from_ne_bytes(v), a.id());
        assert_eq!(o.prog_lookup_inner(CpuId(0), &k0), Some(a.id()));
        assert!(Arc::ptr_eq(&o.inner_map(&k0).unwrap(), &a));
        // Flags other than BPF_ANY, index past the end.
        assert_eq!(o.update_map(&k0, &a, 1).unwrap_err().errno(), 22);
        assert_eq!(
            o.update_map(&9u32.to_ne_bytes(), &a, 0)
                .unwrap_err()
                .errno(),
            7
        );
        // Byte values are not maps.
        assert_eq!(o.update(&k0, &v, 0).unwrap_err().errno(), 9);
        // Delete: E2BIG past the end, ENOENT when empty.
        assert_eq!(o.delete(&9u32.to_ne_bytes(), 0).unwrap_err().errno(), 7);
        o.delete(&k0, 0).unwrap();
        assert_eq!(o.delete(&k0, 0).unwrap_err().errno(), 2);
        assert_eq!(o.prog_lookup_inner(CpuId(0), &k0), None);
        assert!(o.inner_maps().is_empty());
    }

    #[test]
    fn the_template_decides_which_maps_fit() {
        let a = array(8, 4, 0);
        let o = outer(MapType::ArrayOfMaps, &a).unwrap();
        let k = 1u32.to_ne_bytes();
        for bad in [array(16, 4, 0), array(8, 5, 0)] {
            let e = o.update_map(&k, &bad, 0).unwrap_err();
            assert_eq!(e.errno(), 22, "{e}");
        }
        let h = Arc::new(Map::create(MapSpec::new(MapType::Hash, 4, 8, 4), 1).unwrap());
        assert!(o
            .update_map(&k, &h, 0)
            .unwrap_err()
            .to_string()
            .contains("type"));
        // BPF_F_INNER_MAP: any max_entries.
        let t = array(8, 4, create::INNER_MAP);
        let o = outer(MapType::ArrayOfMaps, &t).unwrap();
        o.update_map(&k, &array(8, 100, create::INNER_MAP), 0)
            .unwrap();
        // Hash inner maps: max_entries is not part of the template.
        let o = outer(MapType::HashOfMaps, &h).unwrap();
        let big = Arc::new(Map::create(MapSpec::new(MapType::Hash, 4, 8, 64), 1).unwrap());
        o.update_map(&k, &big, 0).unwrap();
    }

    #[test]
    fn hash_of_maps_uses_the_hash_rules() {
        let a = array(8, 4, 0);
        let o = outer(MapType::HashOfMaps, &a).unwrap();
        let k = 7u32.to_ne_bytes();
        assert_eq!(o.update_map(&k, &a, 2).unwrap_err().errno(), 2);
        o.update_map(&k, &a, 1).unwrap();
        assert_eq!(o.update_map(&k, &a, 1).unwrap_err().errno(), 17);
        let mut next = [0u8; 4];
        o.get_next_key(None, &mut next, 0).unwrap();
        assert_eq!(next, k);
        o.delete(&k, 0).unwrap();
        assert_eq!(o.delete(&k, 0).unwrap_err().errno(), 2);
        assert_eq!(Arc::strong_count(&a), 1);
    }

    #[test]
    fn creation_checks() {
        let a = array(8, 4, 0);
        let mem = MapMemory::default();
        let bad_vs = MapSpec::new(MapType::ArrayOfMaps, 4, 8, 4);
        assert_eq!(
            Map::create_of_maps_in(bad_vs, 1, &a, &mem)
                .unwrap_err()
                .errno(),
            22
        );
        let rdonly = MapSpec::new(MapType::ArrayOfMaps, 4, 4, 4).with_flags(create::RDONLY_PROG);
        assert_eq!(
            Map::create_of_maps_in(rdonly, 1, &a, &mem)
                .unwrap_err()
                .errno(),
            22
        );
        let o = outer(MapType::ArrayOfMaps, &a).unwrap();
        // No map-in-map of map-in-map.
        assert_eq!(outer(MapType::HashOfMaps, &o).unwrap_err().errno(), 22);
        // Without a template.
        let plain = Map::create(MapSpec::new(MapType::HashOfMaps, 4, 4, 4), 1);
        assert_eq!(plain.unwrap_err().errno(), 9);
        // Ids are unique.
        assert_ne!(a.id(), o.id());
    }
}
