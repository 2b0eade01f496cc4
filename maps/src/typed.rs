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

/// One value of `key` (the whole value, or one CPU's with `BPF_F_CPU` in `flags`).
fn read_one<V: Pod>(map: &Map, key: &[u8], flags: u64) -> Result<V, MapError> {
    let mut buf = vec![0u8; size_of::<V>()];
    map.lookup(key, &mut buf, flags)?;
    decode(&buf)
}

/// One CPU's value of `key` in a per-CPU map: `flags` must name the CPU (`EINVAL` without
/// `BPF_F_CPU`: the kernel would copy every CPU's value, not one `V`).
fn read_cpu<V: Pod>(map: &Map, key: &[u8], flags: u64) -> Result<V, MapError> {
    if flags & BPF_F_CPU == 0 {
        return Err(MapError::InvalidFlags {
            flags,
            reason: "reading one CPU's value needs MapFlags::cpu(n)",
        });
    }
    read_one(map, key, flags)
}

/// Every CPU's value of `key` in a per-CPU map.
fn read_all<V: Pod>(map: &Map, key: &[u8]) -> Result<PerCpuValues<V>, MapError> {
    let mut buf = vec![0u8; map.host_value_size(0)];
    map.lookup(key, &mut buf, 0)?;
    PerCpuValues::from_buffer(&buf, map.slot_size(), map.ncpus())
}

/// Write every CPU's value of `key` in a per-CPU map (`values.len()` must be N).
fn write_all<V: Pod>(
    map: &Map,
    key: &[u8],
    values: &PerCpuValues<V>,
    flags: MapFlags,
) -> Result<(), MapError> {
    if values.len() != map.ncpus() as usize {
        return Err(MapError::SizeMismatch {
            what: "per-CPU values count",
            expected: map.ncpus() as usize,
            got: values.len(),
        });
    }
    map.update(key, &values.to_buffer(map.slot_size()), flags.bits())
}

/// Write one value of `key` to one CPU or to every CPU of a per-CPU map.
fn write_one_cpu<V: Pod>(map: &Map, key: &[u8], value: V, flags: MapFlags) -> Result<(), MapError> {
    check_one_cpu_flags(flags)?;
    map.update(key, as_bytes(&value), flags.bits())
}

/// `(key, value)` pairs from a key iterator and a lookup; keys deleted between the two
/// are skipped.
fn pairs<'a, K: Pod, T>(
    keys: impl Iterator<Item = Result<K, MapError>> + 'a,
    get: impl Fn(&K) -> Result<T, MapError> + 'a,
) -> impl Iterator<Item = Result<(K, T), MapError>> + 'a {
    keys.filter_map(move |k| match k {
        Ok(k) => match get(&k) {
            Ok(v) => Some(Ok((k, v))),
            Err(MapError::NotFound) => None,
            Err(e) => Some(Err(e)),
        },
        Err(e) => Some(Err(e)),
    })
}

/// What every view has: `new` (checks the map type, `$key` bytes of key and `V` values),
/// `map` and `into_inner`.
macro_rules! view_common {
    ($doc:literal, [$($ty:ident),+], $key:expr) => {
        #[doc = $doc]
        pub fn new(map: M) -> Result<Self, MapError> {
            check_view(map.borrow(), &[$(MapType::$ty),+], $key, size_of::<V>())?;
            Ok(Self {
                map,
                _types: PhantomData,
            })
        }

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
    _types: PhantomData<V>,
}

impl<M: Borrow<Map>, V: Pod> Array<M, V> {
    view_common!("Check that `map` is an ARRAY of `V`.", [Array], 4);

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
        read_one(self.map(), &index.to_ne_bytes(), 0)
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
    _types: PhantomData<(K, V)>,
}

impl<M: Borrow<Map>, K: Pod, V: Pod> HashMap<M, K, V> {
    view_common!(
        "Check that `map` is a HASH or LRU_HASH from `K` to `V`.",
        [Hash, LruHash],
        size_of::<K>()
    );

    /// The value of `key` (`ENOENT` when missing).
    pub fn get(&self, key: &K) -> Result<V, MapError> {
        read_one(self.map(), as_bytes(key), 0)
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
        pairs(self.keys(), move |k| self.get(k))
    }
}

/// Typed view of a PERCPU_ARRAY.
#[derive(Debug)]
pub struct PerCpuArray<M: Borrow<Map>, V: Pod> {
    map: M,
    _types: PhantomData<V>,
}

impl<M: Borrow<Map>, V: Pod> PerCpuArray<M, V> {
    view_common!(
        "Check that `map` is a PERCPU_ARRAY of `V`.",
        [PercpuArray],
        4
    );

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
        read_all(self.map(), &index.to_ne_bytes())
    }

    /// One CPU's value: `flags` is `MapFlags::cpu(n)` (`ERANGE` when `n >= N`, `EINVAL`
    /// without a CPU).
    pub fn get_value(&self, index: u32, flags: MapFlags) -> Result<V, MapError> {
        read_cpu(self.map(), &index.to_ne_bytes(), flags.bits())
    }

    /// Write every CPU's value (`values.len()` must be N).
    pub fn set(
        &self,
        index: u32,
        values: &PerCpuValues<V>,
        flags: MapFlags,
    ) -> Result<(), MapError> {
        write_all(self.map(), &index.to_ne_bytes(), values, flags)
    }

    /// Write one value to one CPU (`MapFlags::cpu(n)`) or to every CPU
    /// (`MapFlags::ALL_CPUS`), optionally with `EXIST`.
    pub fn set_value(&self, index: u32, value: V, flags: MapFlags) -> Result<(), MapError> {
        write_one_cpu(self.map(), &index.to_ne_bytes(), value, flags)
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
    _types: PhantomData<(K, V)>,
}

impl<M: Borrow<Map>, K: Pod, V: Pod> PerCpuHashMap<M, K, V> {
    view_common!(
        "Check that `map` is a PERCPU_HASH or LRU_PERCPU_HASH from `K` to `V`.",
        [PercpuHash, LruPercpuHash],
        size_of::<K>()
    );

    /// Every CPU's value of `key`.
    pub fn get(&self, key: &K) -> Result<PerCpuValues<V>, MapError> {
        read_all(self.map(), as_bytes(key))
    }

    /// One CPU's value of `key` (`flags` = `MapFlags::cpu(n)`; `EINVAL` without a CPU).
    pub fn get_value(&self, key: &K, flags: MapFlags) -> Result<V, MapError> {
        read_cpu(self.map(), as_bytes(key), flags.bits())
    }

    /// Create or update with every CPU's value.
    pub fn insert(
        &self,
        key: &K,
        values: &PerCpuValues<V>,
        flags: MapFlags,
    ) -> Result<(), MapError> {
        write_all(self.map(), as_bytes(key), values, flags)
    }

    /// Create or update one CPU (`MapFlags::cpu(n)`; a new element gets the other CPUs
    /// zeroed) or every CPU (`MapFlags::ALL_CPUS`) with one value.
    pub fn insert_value(&self, key: &K, value: V, flags: MapFlags) -> Result<(), MapError> {
        write_one_cpu(self.map(), as_bytes(key), value, flags)
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
        pairs(self.keys(), move |k| self.get(k))
    }
}
