//! [`MapMemory`]: the memory limit that the maps of one VM (or one loaded object) share, as
//! the kernel's memory-cgroup accounting limits the maps of one cgroup.
//!
//! Every map charges its whole footprint (value arena and bookkeeping, computed from the spec)
//! when it is created, *before* anything is allocated, and gives it back when it is dropped.
//! A map that would take the total over the limit is refused with `ENOMEM`
//! ([`MapError::MemoryLimit`]), as `BPF_MAP_CREATE` fails when the memory cgroup cannot be
//! charged; nothing is allocated for it.
//!
//! ```
//! use bpfvm_maps::{Map, MapMemory, MapSpec, MapType};
//!
//! // 1 MiB shared by the maps of one VM.
//! let memory = MapMemory::new(1 << 20);
//! let a = Map::create_in(MapSpec::new(MapType::Array, 4, 1024, 512), 4, &memory)?;
//! assert!(memory.used() >= 512 * 1024);
//! // A second 512 KiB array does not fit any more.
//! let b = Map::create_in(MapSpec::new(MapType::Array, 4, 1024, 512), 4, &memory);
//! assert_eq!(b.unwrap_err().errno(), 12);
//! drop(a); // released on drop
//! assert_eq!(memory.used(), 0);
//! # Ok::<(), bpfvm_maps::MapError>(())
//! ```

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;

use crate::error::MapError;

/// The default map memory limit: 1 GiB (of value arenas and bookkeeping together).
pub const DEFAULT_MAP_MEMORY_LIMIT: u64 = 1 << 30;

/// A map memory limit and what is charged against it, shared (cheap to clone: all clones
/// are the same account) by the maps of one VM or object. `Send + Sync`.
#[derive(Clone)]
pub struct MapMemory {
    inner: Arc<Account>,
}

#[derive(Debug)]
struct Account {
    limit: u64,
    used: AtomicU64,
}

impl std::fmt::Debug for MapMemory {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("MapMemory")
            .field("limit", &self.limit())
            .field("used", &self.used())
            .finish()
    }
}

impl Default for MapMemory {
    /// A new account with [`DEFAULT_MAP_MEMORY_LIMIT`].
    fn default() -> MapMemory {
        MapMemory::new(DEFAULT_MAP_MEMORY_LIMIT)
    }
}

impl MapMemory {
    /// A new, empty account that lets its maps hold at most `limit` bytes together.
    pub fn new(limit: u64) -> MapMemory {
        MapMemory {
            inner: Arc::new(Account {
                limit,
                used: AtomicU64::new(0),
            }),
        }
    }

    /// An account without a limit (allocation failures are still `ENOMEM`, never an abort).
    pub fn unlimited() -> MapMemory {
        MapMemory::new(u64::MAX)
    }

    /// The limit in bytes.
    pub fn limit(&self) -> u64 {
        self.inner.limit
    }

    /// Bytes charged by the maps alive now.
    pub fn used(&self) -> u64 {
        self.inner.used.load(Ordering::Relaxed)
    }

    /// True when `self` and `other` are the same account.
    pub fn same_account(&self, other: &MapMemory) -> bool {
        Arc::ptr_eq(&self.inner, &other.inner)
    }

    /// Charges `bytes`, or fails with [`MapError::MemoryLimit`] (`ENOMEM`) when the total would
    /// exceed the limit. The charge is returned when the [`Charge`] is dropped.
    pub(crate) fn charge(&self, bytes: u64) -> Result<Charge, MapError> {
        let limit = self.inner.limit;
        self.inner
            .used
            .fetch_update(Ordering::Relaxed, Ordering::Relaxed, |used| {
                used.checked_add(bytes).filter(|&total| total <= limit)
            })
            .map_err(|used| MapError::MemoryLimit {
                needed: bytes,
                used,
                limit,
            })?;
        Ok(Charge {
            memory: self.clone(),
            bytes,
        })
    }
}

/// Bytes charged to a [`MapMemory`], given back on drop.
pub(crate) struct Charge {
    memory: MapMemory,
    bytes: u64,
}

impl Charge {
    /// The account charged.
    pub(crate) fn memory(&self) -> &MapMemory {
        &self.memory
    }

    /// Bytes charged.
    pub(crate) fn bytes(&self) -> u64 {
        self.bytes
    }
}

impl std::fmt::Debug for Charge {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Charge")
            .field("bytes", &self.bytes)
            .finish()
    }
}

impl Drop for Charge {
    fn drop(&mut self) {
        self.memory
            .inner
            .used
            .fetch_sub(self.bytes, Ordering::Relaxed);
    }
}

/// `n` copies of `v` in a vector allocated fallibly (`ENOMEM` instead of an abort).
pub(crate) fn try_filled<T: Clone>(n: usize, v: T) -> Result<Vec<T>, MapError> {
    let mut out = try_with_capacity(n)?;
    out.resize(n, v);
    Ok(out)
}

/// The first `n` items of `items` in a vector allocated fallibly.
pub(crate) fn try_collect<T>(n: usize, items: impl Iterator<Item = T>) -> Result<Vec<T>, MapError> {
    let mut out = try_with_capacity(n)?;
    out.extend(items.take(n));
    Ok(out)
}

/// An empty vector with room for `n` items, allocated fallibly.
pub(crate) fn try_with_capacity<T>(n: usize) -> Result<Vec<T>, MapError> {
    let mut out = Vec::new();
    out.try_reserve_exact(n)
        .map_err(|_| MapError::OutOfMemory {
            reason: "map bookkeeping allocation failed",
        })?;
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn charges_add_up_to_the_limit_and_are_returned_on_drop() {
        let m = MapMemory::new(100);
        let a = m.charge(60).unwrap();
        let b = m.charge(40).unwrap();
        assert_eq!(m.used(), 100);
        let e = m.charge(1).unwrap_err();
        assert_eq!(e.errno(), crate::errno::ENOMEM);
        assert_eq!(
            e,
            MapError::MemoryLimit {
                needed: 1,
                used: 100,
                limit: 100
            }
        );
        drop(a);
        assert_eq!(m.used(), 40);
        assert_eq!(b.bytes(), 40);
        assert!(b.memory().same_account(&m));
        drop(b);
        assert_eq!(m.used(), 0);
    }

    #[test]
    fn a_charge_that_would_overflow_is_refused() {
        let m = MapMemory::unlimited();
        let _a = m.charge(u64::MAX - 1).unwrap();
        assert!(m.charge(2).is_err());
        assert!(!m.same_account(&MapMemory::unlimited()));
    }
}
