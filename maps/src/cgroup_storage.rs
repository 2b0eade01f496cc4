//! CGROUP_STORAGE and PERCPU_CGROUP_STORAGE (kernel/bpf/local_storage.c, spec §9).
//!
//! A storage exists for each (cgroup, attach type) a program using the map is attached to;
//! here [`Map::attach`] creates it (zeroed) and [`Map::detach`] drops it. With an 8-byte key
//! the storage is per cgroup, shared by every attach type (reference counted); with the
//! 16-byte `bpf_cgroup_storage_key` it is per (cgroup, attach type). The arena has a fixed
//! capacity of [`STORAGE_CAPACITY`] storages chosen at creation, so it never moves; one
//! attach too many gives `ENOMEM`. Storages are listed most recently linked first.

use std::ptr::NonNull;
use std::sync::{RwLock, RwLockReadGuard, RwLockWriteGuard};

use crate::error::MapError;
use crate::flags::{create, lo, BPF_EXIST, BPF_F_ALL_CPUS, BPF_F_CPU, BPF_F_LOCK};
use crate::map::{access_ok, Dst, Kind, Map, Src};
use crate::memory::{try_collect, try_with_capacity};
use crate::spec::{CpuId, MapSpec, MapType};

/// Storages one cgroup-storage map can hold at once.
pub const STORAGE_CAPACITY: usize = 64;

/// `BPF_LOCAL_STORAGE_MAX_VALUE_SIZE` on x86_64 (spec U4).
const LOCAL_STORAGE_MAX_VALUE_SIZE: u32 = 65407;

/// `struct bpf_cgroup_storage_key`: which storage a key names.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default)]
pub struct CgroupStorageKey {
    /// The cgroup's inode id.
    pub cgroup_id: u64,
    /// The attach type (ignored when the map's key is a plain u64).
    pub attach_type: u32,
}

impl CgroupStorageKey {
    /// The key's bytes for a map with `key_size` 8 (the id) or 16 (id, attach type, 4 zero
    /// padding bytes).
    pub fn to_bytes(&self, key_size: u32) -> Vec<u8> {
        let mut out = self.cgroup_id.to_ne_bytes().to_vec();
        if key_size == 16 {
            out.extend_from_slice(&self.attach_type.to_ne_bytes());
            out.extend_from_slice(&[0; 4]);
        }
        out
    }

    fn from_bytes(key: &[u8]) -> CgroupStorageKey {
        let mut id = [0u8; 8];
        id.copy_from_slice(&key[..8]);
        let attach_type = key
            .get(8..12)
            .map_or(0, |b| u32::from_ne_bytes([b[0], b[1], b[2], b[3]]));
        CgroupStorageKey {
            cgroup_id: u64::from_ne_bytes(id),
            attach_type,
        }
    }
}

/// `cgroup_storage_map_alloc` checks.
pub(crate) fn check_create(spec: &MapSpec) -> Result<(), MapError> {
    let max_value = if spec.map_type == MapType::PercpuCgroupStorage {
        LOCAL_STORAGE_MAX_VALUE_SIZE.min(crate::array::PCPU_MIN_UNIT_SIZE)
    } else {
        LOCAL_STORAGE_MAX_VALUE_SIZE
    };
    if spec.key_size != 16 && spec.key_size != 8 {
        return Err(MapError::InvalidSpec {
            reason: "cgroup storage key_size must be 8 or 16",
        });
    }
    if spec.value_size == 0 {
        return Err(MapError::InvalidSpec {
            reason: "value_size must not be 0",
        });
    }
    if spec.value_size > max_value {
        return Err(MapError::SpecTooBig {
            reason: "cgroup storage value_size",
        });
    }
    // Like the kernel (LOCAL_STORAGE_CREATE_FLAG_MASK), BPF_F_NUMA_NODE is accepted here even
    // for the per-CPU type.
    if spec.map_flags & !(create::NUMA_NODE | create::ACCESS_MASK) != 0
        || !access_ok(spec.map_flags)
    {
        return Err(MapError::InvalidSpec {
            reason: "map_flags not valid for cgroup storage",
        });
    }
    if spec.max_entries != 0 {
        return Err(MapError::InvalidSpec {
            reason: "cgroup storage max_entries must be 0",
        });
    }
    Ok(())
}

#[derive(Debug, Clone, Copy)]
struct Entry {
    key: CgroupStorageKey,
    slot: u32,
    users: u32,
}

#[derive(Debug)]
struct Inner {
    /// Most recently linked first.
    list: Vec<Entry>,
    free: Vec<u32>,
}

/// The storages of one map.
#[derive(Debug)]
pub(crate) struct Storages {
    inner: RwLock<Inner>,
}

/// Bookkeeping bytes per storage at most (a list entry and a free-list index), charged to
/// the map's memory account.
pub(crate) const BYTES_PER_STORAGE: u64 =
    (std::mem::size_of::<Entry>() + std::mem::size_of::<u32>()) as u64;

impl Storages {
    pub(crate) fn new(capacity: usize) -> Result<Storages, MapError> {
        let free = try_collect(capacity, (0..capacity as u32).rev())?;
        Ok(Storages {
            inner: RwLock::new(Inner {
                list: try_with_capacity(capacity)?,
                free,
            }),
        })
    }

    fn read(&self) -> RwLockReadGuard<'_, Inner> {
        self.inner.read().unwrap_or_else(|e| e.into_inner())
    }

    fn write(&self) -> RwLockWriteGuard<'_, Inner> {
        self.inner.write().unwrap_or_else(|e| e.into_inner())
    }

    pub(crate) fn count(&self) -> u32 {
        self.read().list.len() as u32
    }

    fn position(inner: &Inner, isolated: bool, k: CgroupStorageKey) -> Option<usize> {
        inner.list.iter().position(|e| {
            e.key.cgroup_id == k.cgroup_id && (!isolated || e.key.attach_type == k.attach_type)
        })
    }

    pub(crate) fn lookup(
        &self,
        map: &Map,
        key: &[u8],
        value: &mut [u8],
        size: usize,
        dst: Dst,
    ) -> Result<(), MapError> {
        let inner = self.read();
        let i = Self::position(
            &inner,
            map.key_size() == 16,
            CgroupStorageKey::from_bytes(key),
        )
        .ok_or(MapError::NotFound)?;
        let out = Map::buf_out("value", value, size)?;
        map.read_elem(inner.list[i].slot, dst, out)?;
        Ok(())
    }

    pub(crate) fn update_host(
        &self,
        map: &Map,
        key: &[u8],
        value: &[u8],
        f: u64,
    ) -> Result<(), MapError> {
        if map.map_type() == MapType::PercpuCgroupStorage {
            if u64::from(lo(f)) & !(BPF_EXIST | BPF_F_CPU | BPF_F_ALL_CPUS) != 0 {
                return Err(MapError::flags(f, "per-CPU cgroup storage update flags"));
            }
        } else if f & !(BPF_F_LOCK | BPF_EXIST) != 0 {
            return Err(MapError::flags(f, "cgroup storage update flags"));
        }
        let inner = self.read();
        let i = Self::position(
            &inner,
            map.key_size() == 16,
            CgroupStorageKey::from_bytes(key),
        )
        .ok_or(MapError::NotFound)?;
        map.write_elem(inner.list[i].slot, Src::from_host(f, value), false)?;
        Ok(())
    }

    pub(crate) fn next_key(
        &self,
        map: &Map,
        key: Option<&[u8]>,
        out: &mut [u8],
    ) -> Result<(), MapError> {
        let inner = self.read();
        let next = match key {
            None => inner.list.first(),
            Some(k) => {
                let i = Self::position(
                    &inner,
                    map.key_size() == 16,
                    CgroupStorageKey::from_bytes(k),
                )
                .ok_or(MapError::NotFound)?;
                inner.list.get(i + 1)
            }
        };
        let e = next.ok_or(MapError::NotFound)?;
        out.copy_from_slice(&e.key.to_bytes(map.key_size()));
        Ok(())
    }
}

impl Map {
    fn storages(&self, op: &'static str) -> Result<&Storages, MapError> {
        match &self.kind {
            Kind::Cgroup(s) => Ok(s),
            _ => Err(MapError::InvalidOperation {
                op,
                map_type: self.spec.map_type,
            }),
        }
    }

    fn isolated(&self) -> bool {
        self.spec.key_size == 16
    }

    /// Attach a program using this map to `(cgroup_id, attach_type)`: creates the zeroed
    /// storage for that key, or shares the existing one. `EINVAL` on other map types,
    /// `ENOMEM` when [`STORAGE_CAPACITY`] storages already exist.
    pub fn attach(&self, cgroup_id: u64, attach_type: u32) -> Result<CgroupStorageKey, MapError> {
        let s = self.storages("attach")?;
        let key = CgroupStorageKey {
            cgroup_id,
            attach_type: if self.isolated() { attach_type } else { 0 },
        };
        let mut inner = s.write();
        if let Some(i) = Storages::position(&inner, self.isolated(), key) {
            inner.list[i].users += 1;
            return Ok(inner.list[i].key);
        }
        let slot = inner.free.pop().ok_or(MapError::OutOfMemory {
            reason: "cgroup storage capacity reached",
        })?;
        for c in 0..self.ncpus {
            self.slab.zero(self.slot(slot, c));
        }
        inner.list.insert(
            0,
            Entry {
                key,
                slot,
                users: 1,
            },
        );
        Ok(key)
    }

    /// Undo one [`Map::attach`]; the storage is freed when its last user detaches.
    /// `ENOENT` when nothing is attached there.
    pub fn detach(&self, cgroup_id: u64, attach_type: u32) -> Result<(), MapError> {
        let s = self.storages("detach")?;
        let key = CgroupStorageKey {
            cgroup_id,
            attach_type,
        };
        let mut inner = s.write();
        let i = Storages::position(&inner, self.isolated(), key).ok_or(MapError::NotFound)?;
        inner.list[i].users -= 1;
        if inner.list[i].users == 0 {
            let e = inner.list.remove(i);
            inner.free.push(e.slot);
        }
        Ok(())
    }

    /// Helper 81 `get_local_storage`: the storage attached at `key`, `cpu`'s copy for the
    /// per-CPU type. None when nothing is attached there, `cpu >= N` or the map is not a
    /// cgroup storage.
    pub fn prog_local_storage(&self, cpu: CpuId, key: CgroupStorageKey) -> Option<NonNull<u8>> {
        self.slab.ptr(self.prog_local_storage_slot(cpu, key)?)
    }

    /// [`Map::prog_local_storage`] as an arena slot: the storage's value starts at
    /// `arena().base + slot * arena().stride`.
    pub fn prog_local_storage_slot(&self, cpu: CpuId, key: CgroupStorageKey) -> Option<usize> {
        if cpu.0 >= self.ncpus {
            return None;
        }
        let s = self.storages("get_local_storage").ok()?;
        let inner = s.read();
        let i = Storages::position(&inner, self.isolated(), key)?;
        Some(self.slot(inner.list[i].slot, cpu.0))
    }
}
