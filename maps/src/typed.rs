//! Typed views over a [`Map`], in the style of aya: [`Array`], [`HashMap`], [`PerCpuArray`]
//! and [`PerCpuHashMap`].
//!
//! A view is built from `&Map` or `Arc<Map>` (anything that borrows a [`Map`]); the map type
//! and the key/value sizes are checked once, there (`EINVAL` on a mismatch). Calls then go
//! through the host-side API, so every kernel rule and errno applies. Like libbpf's
//! `validate_map_op` (spec §11), the single-value per-CPU calls require `BPF_F_CPU` or
//! `BPF_F_ALL_CPUS` in their flags, and reject both together.

use std::borrow::Borrow;
use std::marker::PhantomData;
use std::mem::size_of;

use crate::error::MapError;
use crate::flags::{MapFlags, BPF_F_ALL_CPUS, BPF_F_CPU};
use crate::map::Map;
use crate::pod::{as_bytes, from_bytes, Pod};
use crate::spec::MapType;
use crate::values::PerCpuValues;

fn check_view(map: &Map, types: &[MapType], key: usize, value: usize) -> Result<(), MapError> {
    if !types.contains(&map.map_type()) {
        return Err(MapError::InvalidOperation {
            op: "typed view",
            map_type: map.map_type(),
        });
    }
    if map.key_size() as usize != key {
        return Err(MapError::SizeMismatch {
            what: "key",
            expected: map.key_size() as usize,
            got: key,
        });
    }
    if map.value_size() as usize != value {
        return Err(MapError::SizeMismatch {
            what: "value",
            expected: map.value_size() as usize,
            got: value,
        });
    }
    Ok(())
}

/// libbpf's check for a single-value per-CPU call: exactly one of CPU / ALL_CPUS.
fn check_one_cpu_flags(flags: MapFlags) -> Result<(), MapError> {
    let f = flags.bits();
    if f & BPF_F_CPU != 0 && f & BPF_F_ALL_CPUS != 0 {
        return Err(MapError::InvalidFlags {
            flags: f,
            reason: "BPF_F_CPU and BPF_F_ALL_CPUS are mutually exclusive",
        });
    }
    if f & (BPF_F_CPU | BPF_F_ALL_CPUS) == 0 {
        return Err(MapError::InvalidFlags {
            flags: f,
            reason: "a single value needs BPF_F_CPU or BPF_F_ALL_CPUS",
        });
    }
    Ok(())
}

fn decode<T: Pod>(b: &[u8]) -> Result<T, MapError> {
    from_bytes(b).ok_or(MapError::BufferTooSmall {
        what: "value",
        needed: size_of::<T>(),
        got: b.len(),
    })
}

/// Iterator over keys in GET_NEXT_KEY order.
struct KeyIter<'a, K> {
    map: &'a Map,
    prev: Option<Vec<u8>>,
    done: bool,
    _k: PhantomData<K>,
}

impl<K: Pod> Iterator for KeyIter<'_, K> {
    type Item = Result<K, MapError>;
    fn next(&mut self) -> Option<Self::Item> {
        if self.done {
            return None;
        }
        let mut next = vec![0u8; self.map.key_size() as usize];
        match self.map.get_next_key(self.prev.as_deref(), &mut next, 0) {
            Ok(()) => {
                let k = decode::<K>(&next);
                self.prev = Some(next);
                Some(k)
            }
            Err(MapError::NotFound) => {
                self.done = true;
                None
            }
            Err(e) => {
                self.done = true;
                Some(Err(e))
            }
        }
    }
}

fn key_iter<K: Pod>(map: &Map) -> KeyIter<'_, K> {
    KeyIter {
        map,
        prev: None,
        done: false,
        _k: PhantomData,
    }
}

macro_rules! view_common {
    () => {
        /// The underlying map.
        pub fn map(&self) -> &Map {
            self.map.borrow()
        }

        /// Give the underlying handle back.
        pub fn into_inner(self) -> M {
            self.map
        }
    };
}

/// Typed view of an ARRAY.
#[derive(Debug)]
pub struct Array<M: Borrow<Map>, V: Pod> {
    map: M,
    _v: PhantomData<V>,
}

impl<M: Borrow<Map>, V: Pod> Array<M, V> {
    /// Check that `map` is an ARRAY of `V`.
    pub fn new(map: M) -> Result<Self, MapError> {
        check_view(map.borrow(), &[MapType::Array], 4, size_of::<V>())?;
        Ok(Array {
            map,
            _v: PhantomData,
        })
    }

    view_common!();

    /// `max_entries`.
    pub fn len(&self) -> u32 {
        self.map().max_entries()
    }

    /// Always false: an array has at least one element.
    pub fn is_empty(&self) -> bool {
        false
    }

    /// The value at `index` (`ENOENT` out of range).
    pub fn get(&self, index: u32) -> Result<V, MapError> {
        let mut buf = vec![0u8; size_of::<V>()];
        self.map().lookup(&index.to_ne_bytes(), &mut buf, 0)?;
        decode(&buf)
    }

    /// Write `value` at `index` (`E2BIG` out of range, `EEXIST` with `NOEXIST`).
    pub fn set(&self, index: u32, value: V, flags: MapFlags) -> Result<(), MapError> {
        self.map()
            .update(&index.to_ne_bytes(), as_bytes(&value), flags.bits())
    }

    /// Every value in index order.
    pub fn iter(&self) -> impl Iterator<Item = Result<V, MapError>> + '_ {
        (0..self.len()).map(move |i| self.get(i))
    }
}

/// Typed view of a HASH or LRU_HASH.
#[derive(Debug)]
pub struct HashMap<M: Borrow<Map>, K: Pod, V: Pod> {
    map: M,
    _kv: PhantomData<(K, V)>,
}

impl<M: Borrow<Map>, K: Pod, V: Pod> HashMap<M, K, V> {
    /// Check that `map` is a HASH or LRU_HASH from `K` to `V`.
    pub fn new(map: M) -> Result<Self, MapError> {
        check_view(
            map.borrow(),
            &[MapType::Hash, MapType::LruHash],
            size_of::<K>(),
            size_of::<V>(),
        )?;
        Ok(HashMap {
            map,
            _kv: PhantomData,
        })
    }

    view_common!();

    /// The value of `key` (`ENOENT` when missing).
    pub fn get(&self, key: &K) -> Result<V, MapError> {
        let mut buf = vec![0u8; size_of::<V>()];
        self.map().lookup(as_bytes(key), &mut buf, 0)?;
        decode(&buf)
    }

    /// Create or replace (`flags`: `ANY`, `NOEXIST`, `EXIST`).
    pub fn insert(&self, key: &K, value: V, flags: MapFlags) -> Result<(), MapError> {
        self.map()
            .update(as_bytes(key), as_bytes(&value), flags.bits())
    }

    /// Delete `key` (`ENOENT` when missing).
    pub fn remove(&self, key: &K) -> Result<(), MapError> {
        self.map().delete(as_bytes(key), 0)
    }

    /// Keys in iteration order.
    pub fn keys(&self) -> impl Iterator<Item = Result<K, MapError>> + '_ {
        key_iter(self.map())
    }

    /// `(key, value)` pairs in iteration order; keys deleted meanwhile are skipped.
    pub fn iter(&self) -> impl Iterator<Item = Result<(K, V), MapError>> + '_ {
        self.keys().filter_map(move |k| match k {
            Ok(k) => match self.get(&k) {
                Ok(v) => Some(Ok((k, v))),
                Err(MapError::NotFound) => None,
                Err(e) => Some(Err(e)),
            },
            Err(e) => Some(Err(e)),
        })
    }
}

/// Typed view of a PERCPU_ARRAY.
#[derive(Debug)]
pub struct PerCpuArray<M: Borrow<Map>, V: Pod> {
    map: M,
    _v: PhantomData<V>,
}

fn full_buf(map: &Map) -> Vec<u8> {
    vec![0u8; map.host_value_size(0)]
}

fn check_values<V: Pod>(map: &Map, values: &PerCpuValues<V>) -> Result<(), MapError> {
    if values.len() != map.ncpus() as usize {
        return Err(MapError::SizeMismatch {
            what: "per-CPU values count",
            expected: map.ncpus() as usize,
            got: values.len(),
        });
    }
    Ok(())
}

impl<M: Borrow<Map>, V: Pod> PerCpuArray<M, V> {
    /// Check that `map` is a PERCPU_ARRAY of `V`.
    pub fn new(map: M) -> Result<Self, MapError> {
        check_view(map.borrow(), &[MapType::PercpuArray], 4, size_of::<V>())?;
        Ok(PerCpuArray {
            map,
            _v: PhantomData,
        })
    }

    view_common!();

    /// `max_entries`.
    pub fn len(&self) -> u32 {
        self.map().max_entries()
    }

    /// Always false.
    pub fn is_empty(&self) -> bool {
        false
    }

    /// Every CPU's value at `index`.
    pub fn get(&self, index: u32) -> Result<PerCpuValues<V>, MapError> {
        let m = self.map();
        let mut buf = full_buf(m);
        m.lookup(&index.to_ne_bytes(), &mut buf, 0)?;
        PerCpuValues::from_buffer(&buf, m.slot_size(), m.ncpus())
    }

    /// One CPU's value: `flags` is `MapFlags::cpu(n)` (`ERANGE` when `n >= N`).
    pub fn get_value(&self, index: u32, flags: MapFlags) -> Result<V, MapError> {
        let mut buf = vec![0u8; size_of::<V>()];
        self.map()
            .lookup(&index.to_ne_bytes(), &mut buf, flags.bits())?;
        decode(&buf)
    }

    /// Write every CPU's value (`values.len()` must be N).
    pub fn set(
        &self,
        index: u32,
        values: &PerCpuValues<V>,
        flags: MapFlags,
    ) -> Result<(), MapError> {
        let m = self.map();
        check_values(m, values)?;
        m.update(
            &index.to_ne_bytes(),
            &values.to_buffer(m.slot_size()),
            flags.bits(),
        )
    }

    /// Write one value to one CPU (`MapFlags::cpu(n)`) or to every CPU
    /// (`MapFlags::ALL_CPUS`), optionally with `EXIST`.
    pub fn set_value(&self, index: u32, value: V, flags: MapFlags) -> Result<(), MapError> {
        check_one_cpu_flags(flags)?;
        self.map()
            .update(&index.to_ne_bytes(), as_bytes(&value), flags.bits())
    }

    /// Every index's values, in index order.
    pub fn iter(&self) -> impl Iterator<Item = Result<PerCpuValues<V>, MapError>> + '_ {
        (0..self.len()).map(move |i| self.get(i))
    }
}

/// Typed view of a PERCPU_HASH or LRU_PERCPU_HASH.
#[derive(Debug)]
pub struct PerCpuHashMap<M: Borrow<Map>, K: Pod, V: Pod> {
    map: M,
    _kv: PhantomData<(K, V)>,
}

impl<M: Borrow<Map>, K: Pod, V: Pod> PerCpuHashMap<M, K, V> {
    /// Check that `map` is a PERCPU_HASH or LRU_PERCPU_HASH from `K` to `V`.
    pub fn new(map: M) -> Result<Self, MapError> {
        check_view(
            map.borrow(),
            &[MapType::PercpuHash, MapType::LruPercpuHash],
            size_of::<K>(),
            size_of::<V>(),
        )?;
        Ok(PerCpuHashMap {
            map,
            _kv: PhantomData,
        })
    }

    view_common!();

    /// Every CPU's value of `key`.
    pub fn get(&self, key: &K) -> Result<PerCpuValues<V>, MapError> {
        let m = self.map();
        let mut buf = full_buf(m);
        m.lookup(as_bytes(key), &mut buf, 0)?;
        PerCpuValues::from_buffer(&buf, m.slot_size(), m.ncpus())
    }

    /// One CPU's value of `key` (`flags` = `MapFlags::cpu(n)`).
    pub fn get_value(&self, key: &K, flags: MapFlags) -> Result<V, MapError> {
        let mut buf = vec![0u8; size_of::<V>()];
        self.map().lookup(as_bytes(key), &mut buf, flags.bits())?;
        decode(&buf)
    }

    /// Create or update with every CPU's value.
    pub fn insert(
        &self,
        key: &K,
        values: &PerCpuValues<V>,
        flags: MapFlags,
    ) -> Result<(), MapError> {
        let m = self.map();
        check_values(m, values)?;
        m.update(
            as_bytes(key),
            &values.to_buffer(m.slot_size()),
            flags.bits(),
        )
    }

    /// Create or update one CPU (`MapFlags::cpu(n)`; a new element gets the other CPUs
    /// zeroed) or every CPU (`MapFlags::ALL_CPUS`) with one value.
    pub fn insert_value(&self, key: &K, value: V, flags: MapFlags) -> Result<(), MapError> {
        check_one_cpu_flags(flags)?;
        self.map()
            .update(as_bytes(key), as_bytes(&value), flags.bits())
    }

    /// Delete `key`.
    pub fn remove(&self, key: &K) -> Result<(), MapError> {
        self.map().delete(as_bytes(key), 0)
    }

    /// Keys in iteration order.
    pub fn keys(&self) -> impl Iterator<Item = Result<K, MapError>> + '_ {
        key_iter(self.map())
    }

    /// `(key, values)` pairs in iteration order.
    pub fn iter(&self) -> impl Iterator<Item = Result<(K, PerCpuValues<V>), MapError>> + '_ {
        self.keys().filter_map(move |k| match k {
            Ok(k) => match self.get(&k) {
                Ok(v) => Some(Ok((k, v))),
                Err(MapError::NotFound) => None,
                Err(e) => Some(Err(e)),
            },
            Err(e) => Some(Err(e)),
        })
    }
}
