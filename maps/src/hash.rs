//! HASH, PERCPU_HASH, LRU_HASH and LRU_PERCPU_HASH (kernel/bpf/hashtab.c).
//!
//! Buckets: `n_buckets = roundup_pow_of_two(max_entries)`, bucket of a key =
//! `htab_map_hash(key, 0) & (n_buckets - 1)` (the kernel's `jhash`/`jhash2` with seed 0, i.e.
//! its order with `BPF_F_ZERO_SEED`). Each bucket is a singly linked list with the most
//! recently linked element first, so iteration order is "bucket order, head-first".
//!
//! Elements are preallocated nodes; node `n`'s value is arena element `n`. HASH has
//! `max_entries + N` nodes: like the kernel's per-CPU "extra" elements, a replacement takes
//! the updating CPU's extra node and the old node becomes that CPU's extra. Deleted nodes go
//! back to a LIFO free list (LRU maps: to the LRU free lists).

use std::sync::atomic::AtomicU8;
use std::sync::{RwLock, RwLockReadGuard, RwLockWriteGuard};

use crate::array::PCPU_MIN_UNIT_SIZE;
use crate::error::MapError;
use crate::flags::{create, lo, BPF_EXIST, BPF_F_ALL_CPUS, BPF_F_LOCK, BPF_NOEXIST};
use crate::jhash::htab_map_hash;
use crate::lru::{set_ref, Lru, NIL};
use crate::map::{access_ok, Dst, Map, Src};
use crate::memory::{try_collect, try_filled};
use crate::spec::{MapSpec, MapType};

/// `KMALLOC_MAX_SIZE` on x86_64 (4 MiB).
const KMALLOC_MAX_SIZE: u64 = 4 << 20;
/// `sizeof(struct htab_elem)` on x86_64.
const HTAB_ELEM_SIZE: u64 = 48;
/// `sizeof(struct bucket)` on x86_64 (a `hlist_nulls_head` and a 4-byte lock, padded).
const BUCKET_SIZE: u64 = 16;
/// Simulator limit on hash bookkeeping (keys and links), beyond which creation is `ENOMEM`.
const MAX_BOOKKEEPING_BYTES: u64 = 1 << 30;

/// `htab_map_alloc_check`, then the size checks of `htab_map_alloc` (on `max_entries` as
/// adjusted for `BPF_F_NO_COMMON_LRU`).
///
/// As in Linux 6.18, sizes are limited only by `key_size + value_size` (below
/// `KMALLOC_MAX_SIZE - sizeof(struct htab_elem)`) and, for per-CPU values,
/// `PCPU_MIN_UNIT_SIZE`; there is no separate key or value limit.
pub(crate) fn check_create(spec: &MapSpec, ncpus: u32) -> Result<(), MapError> {
    let t = spec.map_type;
    let percpu = t.is_percpu();
    let lru = t.is_lru();
    let f = spec.map_flags;
    let mask = create::NO_PREALLOC
        | create::NO_COMMON_LRU
        | create::NUMA_NODE
        | create::ACCESS_MASK
        | create::ZERO_SEED;
    if f & !mask != 0 || !access_ok(f) {
        return Err(MapError::InvalidSpec {
            reason: "map_flags not valid for a hash map",
        });
    }
    if !lru && f & create::NO_COMMON_LRU != 0 {
        return Err(MapError::InvalidSpec {
            reason: "BPF_F_NO_COMMON_LRU on a map that is not LRU",
        });
    }
    if lru && f & create::NO_PREALLOC != 0 {
        return Err(MapError::NotSupported {
            op: "BPF_F_NO_PREALLOC",
            map_type: t,
        });
    }
    if f & create::NUMA_NODE != 0 && (percpu || f & create::NO_COMMON_LRU != 0) {
        return Err(MapError::InvalidSpec {
            reason: "BPF_F_NUMA_NODE with a per-CPU map or BPF_F_NO_COMMON_LRU",
        });
    }
    if spec.max_entries == 0 || spec.key_size == 0 || spec.value_size == 0 {
        return Err(MapError::InvalidSpec {
            reason: "max_entries, key_size and value_size must not be 0",
        });
    }
    if u64::from(spec.key_size) + u64::from(spec.value_size) >= KMALLOC_MAX_SIZE - HTAB_ELEM_SIZE {
        return Err(MapError::SpecTooBig {
            reason: "key_size + value_size",
        });
    }
    if percpu && spec.value_size.div_ceil(8) * 8 > PCPU_MIN_UNIT_SIZE {
        return Err(MapError::SpecTooBig {
            reason: "per-CPU value over 32768 bytes",
        });
    }
    let max_entries = adjusted_max_entries(spec, ncpus);
    if max_entries > 1 << 31 {
        return Err(MapError::SpecTooBig {
            reason: "max_entries over 2^31",
        });
    }
    if u64::from(max_entries.next_power_of_two()) > u64::from(u32::MAX) / BUCKET_SIZE {
        return Err(MapError::SpecTooBig {
            reason: "max_entries over 2^27 (bucket array over 4 GiB)",
        });
    }
    Ok(())
}

/// With `BPF_F_NO_COMMON_LRU`, `max_entries` rounds up to a multiple of N (down on overflow).
pub(crate) fn adjusted_max_entries(spec: &MapSpec, ncpus: u32) -> u32 {
    let m = spec.max_entries;
    if spec.map_flags & create::NO_COMMON_LRU == 0 {
        return m;
    }
    match m.div_ceil(ncpus).checked_mul(ncpus) {
        Some(up) => up,
        None => m / ncpus * ncpus,
    }
}

/// Bucket lists and keys; everything that needs the lock.
#[derive(Debug)]
pub(crate) struct Core {
    key_size: usize,
    mask: u32,
    heads: Vec<u32>,
    next: Vec<u32>,
    /// Bucket of a linked node, NIL when unlinked.
    bucket: Vec<u32>,
    keys: Vec<u8>,
    count: u32,
}

impl Core {
    fn key(&self, n: u32) -> &[u8] {
        let o = n as usize * self.key_size;
        &self.keys[o..o + self.key_size]
    }

    fn bucket_of(&self, key: &[u8]) -> u32 {
        htab_map_hash(key, 0) & self.mask
    }

    fn find(&self, key: &[u8]) -> Option<u32> {
        let mut n = self.heads[self.bucket_of(key) as usize];
        while n != NIL {
            if self.key(n) == key {
                return Some(n);
            }
            n = self.next[n as usize];
        }
        None
    }

    /// Link `n` with `key` at the head of its bucket.
    fn link(&mut self, n: u32, key: &[u8]) {
        let o = n as usize * self.key_size;
        self.keys[o..o + self.key_size].copy_from_slice(key);
        let b = self.bucket_of(key);
        self.next[n as usize] = self.heads[b as usize];
        self.heads[b as usize] = n;
        self.bucket[n as usize] = b;
        self.count += 1;
    }

    /// Unlink `n`; false when it was not linked.
    fn unlink(&mut self, n: u32) -> bool {
        let b = self.bucket[n as usize];
        if b == NIL {
            return false;
        }
        let mut cur = self.heads[b as usize];
        let mut prev = NIL;
        while cur != NIL && cur != n {
            prev = cur;
            cur = self.next[cur as usize];
        }
        if cur != n {
            return false;
        }
        let nx = self.next[n as usize];
        if prev == NIL {
            self.heads[b as usize] = nx;
        } else {
            self.next[prev as usize] = nx;
        }
        self.next[n as usize] = NIL;
        self.bucket[n as usize] = NIL;
        self.count -= 1;
        true
    }

    fn first_from(&self, mut b: usize) -> Option<u32> {
        while b < self.heads.len() {
            if self.heads[b] != NIL {
                return Some(self.heads[b]);
            }
            b += 1;
        }
        None
    }

    /// Elements of bucket `b`, head first.
    fn bucket_nodes(&self, b: usize, out: &mut Vec<u32>) {
        out.clear();
        let mut n = self.heads[b];
        while n != NIL {
            out.push(n);
            n = self.next[n as usize];
        }
    }
}

#[derive(Debug)]
pub(crate) struct Table {
    core: Core,
    /// Free nodes (non-LRU), LIFO.
    free: Vec<u32>,
    /// Per-CPU spare node used by HASH replacements.
    extra: Vec<u32>,
    lru: Option<Lru>,
}

/// State of a hash-family map.
#[derive(Debug)]
pub(crate) struct HashState {
    table: RwLock<Table>,
    refs: Box<[AtomicU8]>,
    n_buckets: u32,
    percpu: bool,
    lru: bool,
    prealloc: bool,
    max_entries: u32,
}

/// How big a hash map's bookkeeping is, from its spec.
#[derive(Debug, Clone, Copy)]
pub(crate) struct HashSize {
    /// Preallocated nodes (elements plus HASH's per-CPU extras).
    pub(crate) nodes: u32,
    /// Bytes of keys, links, free lists and LRU lists, at most (what [`HashState::new`]
    /// allocates).
    pub(crate) bookkeeping_bytes: u64,
}

/// The EXIST/NOEXIST rule of spec §5.2 (`check_flags` in hashtab.c).
fn check_exist_flags(old: Option<u32>, f: u64) -> Result<(), MapError> {
    let g = f & !BPF_F_LOCK;
    match old {
        Some(_) if g == BPF_NOEXIST => Err(MapError::Exists),
        None if g == BPF_EXIST => Err(MapError::NotFound),
        _ => Ok(()),
    }
}

impl HashState {
    /// Nodes and bookkeeping bytes of a map made from `spec` (after [`check_create`]); `ENOMEM`
    /// over the simulator's limits (1 GiB of bookkeeping, `2^32 - 1024` nodes).
    pub(crate) fn size(spec: &MapSpec, ncpus: u32) -> Result<HashSize, MapError> {
        let t = spec.map_type;
        let max = spec.max_entries;
        let nodes64 = if t.is_lru() || t.is_percpu() {
            u64::from(max)
        } else {
            u64::from(max) + u64::from(ncpus)
        };
        let n_buckets = u64::from(max.next_power_of_two());
        // Per node: key, link, bucket, free-list entry, LRU links, type, CPU and reference
        // bit (26 bytes) rounded up; per CPU: an extra node and LRU list heads.
        let bytes =
            nodes64 * (u64::from(spec.key_size) + 32) + n_buckets * 4 + u64::from(ncpus) * 64;
        if bytes > MAX_BOOKKEEPING_BYTES || nodes64 > u64::from(u32::MAX - 1024) {
            return Err(MapError::OutOfMemory {
                reason: "hash map larger than the simulator allows",
            });
        }
        Ok(HashSize {
            nodes: nodes64 as u32,
            bookkeeping_bytes: bytes,
        })
    }

    /// The state of a new, empty map; every allocation is fallible (`ENOMEM`).
    pub(crate) fn new(spec: &MapSpec, ncpus: u32) -> Result<HashState, MapError> {
        let t = spec.map_type;
        let lru = t.is_lru();
        let percpu = t.is_percpu();
        let max = spec.max_entries;
        let nodes = HashState::size(spec, ncpus)?.nodes;
        let n_buckets = max.next_power_of_two();
        let core = Core {
            key_size: spec.key_size as usize,
            mask: n_buckets - 1,
            heads: try_filled(n_buckets as usize, NIL)?,
            next: try_filled(nodes as usize, NIL)?,
            bucket: try_filled(nodes as usize, NIL)?,
            keys: try_filled(nodes as usize * spec.key_size as usize, 0u8)?,
            count: 0,
        };
        let (free, extra, lru_state) = if lru {
            let percpu_lru = spec.map_flags & create::NO_COMMON_LRU != 0;
            (
                Vec::new(),
                Vec::new(),
                Some(Lru::new(nodes, ncpus, percpu_lru)?),
            )
        } else if percpu || spec.map_flags & create::NO_PREALLOC != 0 {
            (
                try_collect(nodes as usize, (0..nodes).rev())?,
                Vec::new(),
                None,
            )
        } else {
            // The last N nodes start as the per-CPU extras.
            (
                try_collect(max as usize, (0..max).rev())?,
                try_collect((nodes - max) as usize, max..nodes)?,
                None,
            )
        };
        let nrefs = if lru { nodes as usize } else { 0 };
        let refs =
            try_collect(nrefs, std::iter::repeat_with(|| AtomicU8::new(0)))?.into_boxed_slice();
        Ok(HashState {
            table: RwLock::new(Table {
                core,
                free,
                extra,
                lru: lru_state,
            }),
            refs,
            n_buckets,
            percpu,
            lru,
            prealloc: spec.map_flags & create::NO_PREALLOC == 0,
            max_entries: max,
        })
    }

    pub(crate) fn count(&self) -> u32 {
        self.read().core.count
    }

    fn read(&self) -> RwLockReadGuard<'_, Table> {
        self.table.read().unwrap_or_else(|e| e.into_inner())
    }

    fn write(&self) -> RwLockWriteGuard<'_, Table> {
        self.table.write().unwrap_or_else(|e| e.into_inner())
    }

    pub(crate) fn lookup(
        &self,
        map: &Map,
        key: &[u8],
        value: &mut [u8],
        size: usize,
        dst: Dst,
    ) -> Result<(), MapError> {
        let t = self.read();
        let n = t.core.find(key).ok_or(MapError::NotFound)?;
        let out = Map::buf_out("value", value, size)?;
        map.read_elem(n, dst, out)?;
        Ok(())
    }

    #[inline]
    pub(crate) fn prog_lookup(&self, map: &Map, cpu: u32, key: &[u8]) -> Option<usize> {
        let t = self.read();
        let n = t.core.find(key)?;
        if self.lru {
            set_ref(&self.refs, n);
        }
        Some(map.slot(n, cpu))
    }

    /// Host-side update: the per-map flag check of spec §4, then the update.
    pub(crate) fn update_host(
        &self,
        map: &Map,
        cpu: u32,
        key: &[u8],
        value: &[u8],
        f: u64,
    ) -> Result<(), MapError> {
        match map.map_type() {
            MapType::Hash if f & !BPF_F_LOCK > BPF_EXIST => {
                return Err(MapError::flags(f, "hash update flags"))
            }
            MapType::LruHash if f > BPF_EXIST => {
                return Err(MapError::flags(f, "LRU hash update flags"))
            }
            MapType::PercpuHash | MapType::LruPercpuHash
                if f & BPF_F_LOCK != 0 || u64::from(lo(f)) > BPF_F_ALL_CPUS =>
            {
                return Err(MapError::flags(f, "per-CPU hash update flags"));
            }
            _ => {}
        }
        if f & BPF_F_LOCK != 0 && !map.has_spin_lock() {
            return Err(MapError::flags(
                f,
                "BPF_F_LOCK on a map without a spin lock",
            ));
        }
        self.update(map, cpu, key, Src::from_host(f, value), f)
    }

    /// Program-side update (helper 2).
    pub(crate) fn update_prog(
        &self,
        map: &Map,
        cpu: u32,
        key: &[u8],
        value: &[u8],
        f: u64,
    ) -> Result<(), MapError> {
        let bad = match map.map_type() {
            MapType::Hash => {
                f & !BPF_F_LOCK > BPF_EXIST || (f & BPF_F_LOCK != 0 && !map.has_spin_lock())
            }
            _ => f > BPF_EXIST,
        };
        if bad {
            return Err(MapError::flags(f, "program-side update flags"));
        }
        let src = if f & BPF_F_LOCK != 0 {
            Src::Locked(value)
        } else {
            Src::Cpu(cpu, value)
        };
        self.update(map, cpu, key, src, f)
    }

    fn update(
        &self,
        map: &Map,
        cpu: u32,
        key: &[u8],
        src: Src<'_>,
        f: u64,
    ) -> Result<(), MapError> {
        let mut guard = self.write();
        let t = &mut *guard;
        if self.lru {
            return self.update_lru(map, t, cpu, key, src, f);
        }
        let old = t.core.find(key);
        check_exist_flags(old, f)?;
        if self.percpu {
            if let Some(o) = old {
                map.write_elem(o, src, false)?;
                return Ok(());
            }
            if !self.prealloc && t.core.count >= self.max_entries {
                return Err(MapError::Full {
                    max_entries: self.max_entries,
                });
            }
            let n = t.free.pop().ok_or(MapError::Full {
                max_entries: self.max_entries,
            })?;
            map.write_elem(n, src, true)?;
            t.core.link(n, key);
            return Ok(());
        }
        if let (Src::Locked(_), Some(o)) = (src, old) {
            // BPF_F_LOCK on a spin-lock HASH: copy in place, keep the position.
            map.write_elem(o, src, false)?;
            return Ok(());
        }
        let n = match old {
            Some(o) if self.prealloc => std::mem::replace(&mut t.extra[cpu as usize], o),
            None if !self.prealloc && t.core.count >= self.max_entries => {
                return Err(MapError::Full {
                    max_entries: self.max_entries,
                });
            }
            _ => t.free.pop().ok_or(MapError::Full {
                max_entries: self.max_entries,
            })?,
        };
        map.write_elem(n, src, true)?;
        t.core.link(n, key);
        if let Some(o) = old {
            t.core.unlink(o);
            if !self.prealloc {
                t.free.push(o);
            }
        }
        Ok(())
    }

    /// `htab_lru_map_update_elem` / `__htab_lru_percpu_map_update_elem` (spec §7.2).
    fn update_lru(
        &self,
        map: &Map,
        t: &mut Table,
        cpu: u32,
        key: &[u8],
        src: Src<'_>,
        f: u64,
    ) -> Result<(), MapError> {
        let refs = &self.refs;
        let Table { core, lru, .. } = t;
        let Some(lru) = lru.as_mut() else {
            return Err(MapError::OutOfMemory {
                reason: "LRU state missing",
            });
        };
        let obtain = !self.percpu || f != BPF_EXIST;
        let new = if obtain {
            let n = lru.pop_free(refs, cpu, &mut |v| core.unlink(v));
            Some(n.ok_or(MapError::OutOfMemory {
                reason: "no LRU node obtainable",
            })?)
        } else {
            None
        };
        let old = core.find(key);
        if let Err(e) = check_exist_flags(old, f) {
            if let Some(n) = new {
                lru.push_free(refs, n);
            }
            return Err(e);
        }
        if self.percpu {
            if let Some(o) = old {
                set_ref(refs, o);
                map.write_elem(o, src, false)?;
                if let Some(n) = new {
                    lru.push_free(refs, n);
                }
            } else if let Some(n) = new {
                map.write_elem(n, src, true)?;
                core.link(n, key);
            }
            return Ok(());
        }
        let Some(n) = new else { return Ok(()) };
        map.write_elem(n, src, true)?;
        core.link(n, key);
        if let Some(o) = old {
            set_ref(refs, n);
            core.unlink(o);
            lru.push_free(refs, o);
        }
        Ok(())
    }

    /// Delete `key`; with `out`, copy the full value first (lookup-and-delete).
    pub(crate) fn delete(
        &self,
        map: &Map,
        key: &[u8],
        out: Option<(&mut [u8], Dst)>,
    ) -> Result<(), MapError> {
        let mut guard = self.write();
        let t = &mut *guard;
        let n = t.core.find(key).ok_or(MapError::NotFound)?;
        if let Some((out, dst)) = out {
            map.read_elem(n, dst, out)?;
        }
        self.free_node(t, n);
        Ok(())
    }

    fn free_node(&self, t: &mut Table, n: u32) {
        t.core.unlink(n);
        match t.lru.as_mut() {
            Some(lru) => lru.push_free(&self.refs, n),
            None => t.free.push(n),
        }
    }

    /// Snapshot of `(key, node)` in iteration order (for `for_each_map_elem`).
    pub(crate) fn snapshot(&self) -> Vec<(Vec<u8>, u32)> {
        let t = self.read();
        let c = &t.core;
        let mut out = Vec::with_capacity(c.count as usize);
        for b in 0..c.heads.len() {
            let mut n = c.heads[b];
            while n != NIL {
                out.push((c.key(n).to_vec(), n));
                n = c.next[n as usize];
            }
        }
        out
    }

    /// `htab_map_get_next_key`.
    pub(crate) fn next_key(&self, key: Option<&[u8]>, out: &mut [u8]) -> Result<(), MapError> {
        let t = self.read();
        let c = &t.core;
        let mut from = 0;
        if let Some(k) = key {
            if let Some(n) = c.find(k) {
                let nx = c.next[n as usize];
                if nx != NIL {
                    out.copy_from_slice(c.key(nx));
                    return Ok(());
                }
                from = c.bucket_of(k) as usize + 1;
            }
        }
        let n = c.first_from(from).ok_or(MapError::NotFound)?;
        out.copy_from_slice(c.key(n));
        Ok(())
    }

    /// `__htab_map_lookup_and_delete_batch` after the flag and `count == 0` checks
    /// (spec §6.2). `count` is in/out. Buffers were checked for `count` elements.
    #[allow(clippy::too_many_arguments)]
    pub(crate) fn lookup_batch(
        &self,
        map: &Map,
        in_batch: u32,
        out_batch: &mut [u8],
        keys: &mut [u8],
        values: &mut [u8],
        count: &mut u32,
        vsize: usize,
        dst: Dst,
        delete: bool,
    ) -> Result<(), MapError> {
        let max_count = *count;
        *count = 0;
        if in_batch >= self.n_buckets {
            return Err(MapError::NotFound);
        }
        let ks = map.key_size() as usize;
        let mut guard = self.write_or_read(delete);
        let mut bucket = in_batch as usize;
        let mut total: u32 = 0;
        let mut nodes = Vec::new();
        let result = loop {
            let t = guard.table();
            t.core.bucket_nodes(bucket, &mut nodes);
            let cnt = nodes.len() as u32;
            if cnt > max_count - total {
                break if total == 0 {
                    Err(MapError::NoSpace {
                        needed: cnt,
                        room: max_count,
                    })
                } else {
                    Ok(())
                };
            }
            for (i, &n) in nodes.iter().enumerate() {
                let at = (total as usize + i) * ks;
                keys[at..at + ks].copy_from_slice(t.core.key(n));
                let vat = (total as usize + i) * vsize;
                map.read_elem(n, dst, &mut values[vat..vat + vsize])?;
            }
            if delete {
                if let Some(t) = guard.table_mut() {
                    for &n in nodes.iter() {
                        t.core.unlink(n);
                    }
                    // The kernel frees LRU nodes in reverse (a LIFO chain), others in order.
                    if t.lru.is_some() {
                        for &n in nodes.iter().rev() {
                            if let Some(l) = t.lru.as_mut() {
                                l.push_free(&self.refs, n);
                            }
                        }
                    } else {
                        t.free.extend(nodes.iter().copied());
                    }
                }
            }
            total += cnt;
            bucket += 1;
            if bucket >= self.n_buckets as usize {
                break Err(MapError::NotFound);
            }
        };
        *count = total;
        out_batch[..4].copy_from_slice(&(bucket as u32).to_ne_bytes());
        result
    }

    fn write_or_read(&self, write: bool) -> Guard<'_> {
        if write {
            Guard::Write(self.write())
        } else {
            Guard::Read(self.read())
        }
    }

    /// Number of buckets.
    pub(crate) fn n_buckets(&self) -> u32 {
        self.n_buckets
    }
}

enum Guard<'a> {
    Read(RwLockReadGuard<'a, Table>),
    Write(RwLockWriteGuard<'a, Table>),
}

impl Guard<'_> {
    fn table(&self) -> &Table {
        match self {
            Guard::Read(g) => g,
            Guard::Write(g) => g,
        }
    }
    fn table_mut(&mut self) -> Option<&mut Table> {
        match self {
            Guard::Read(_) => None,
            Guard::Write(g) => Some(g),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn no_common_lru_rounds_max_entries() {
        let spec = |m| MapSpec::new(MapType::LruHash, 4, 4, m).with_flags(create::NO_COMMON_LRU);
        assert_eq!(adjusted_max_entries(&spec(1), 2), 2);
        assert_eq!(adjusted_max_entries(&spec(3), 2), 4);
        assert_eq!(adjusted_max_entries(&spec(5), 2), 6);
        assert_eq!(adjusted_max_entries(&spec(u32::MAX), 2), u32::MAX - 1);
    }
}
