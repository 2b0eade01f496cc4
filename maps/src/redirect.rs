//! The redirect maps of XDP's `bpf_redirect_map`: DEVMAP and DEVMAP_HASH (network devices),
//! CPUMAP (CPUs) and XSKMAP (AF_XDP sockets), with the kernel's creation checks, host-side
//! value formats and element rules (kernel/bpf/devmap.c, cpumap.c, net/xdp/xskmap.c).
//!
//! | type | key | value (host side) | an element exists when |
//! |---|---|---|---|
//! | DEVMAP | index `< max_entries` | `struct bpf_devmap_val`: `ifindex` (4 bytes) and optionally `bpf_prog.fd` (8 bytes; lookups give the program id) | an update with `ifindex` ≠ 0 put it there |
//! | DEVMAP_HASH | any u32 | as DEVMAP | an update put it there (`ifindex` 0 is `EINVAL`) |
//! | CPUMAP | CPU `< max_entries` | `struct bpf_cpumap_val`: `qsize` (4 bytes) and optionally `bpf_prog.fd` | an update with `qsize` ≠ 0 put it there (`qsize` 0 deletes) |
//! | XSKMAP | index `< max_entries` | 4 bytes: the AF_XDP socket (see below) | an update put it there |
//!
//! Differences from the kernel, where bpfvm has no counterpart of what the kernel checks:
//! a DEVMAP `ifindex` is not checked against a device list (any non-zero `ifindex` up to
//! `INT_MAX` is taken; the kernel gives `EINVAL` for one no device has); no program fd is
//! valid (a DEVMAP value naming one is `EINVAL`, a CPUMAP value `ENOMEM`, as the kernel
//! answers for an fd that is not an XDP program of the right attach type); an XSKMAP value is
//! not a socket fd but the socket itself, as the number programs read through
//! `bpf_map_lookup_elem` (the socket's `queue_id`). Host lookups on an XSKMAP are
//! `EOPNOTSUPP`, as in the kernel. A CPUMAP's CPUs are the map's simulated CPUs: a key
//! `>= N` is `ENODEV`.
//!
//! Programs read DEVMAP, DEVMAP_HASH and XSKMAP values (read-only: the kernel sets
//! `BPF_F_RDONLY_PROG` on device maps) and never CPUMAP ones; they write none of them.

use std::collections::BTreeMap;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::RwLock;

use crate::error::MapError;
use crate::flags::{create, BPF_EXIST, BPF_NOEXIST};
use crate::map::Map;
use crate::spec::{MapSpec, MapType};

/// `NR_CPUS` of the kernels bpfvm mirrors (x86_64 distribution kernels): the largest
/// CPUMAP `max_entries` (`E2BIG` above).
pub const NR_CPUS: u32 = 8192;
/// The largest CPUMAP `qsize` (`EOVERFLOW` above).
pub const CPUMAP_MAX_QSIZE: u32 = 16384;

/// What a redirect lookup found: the element's key and the value the host stored
/// (`ifindex` for device maps, `qsize` for CPUMAP, the socket for XSKMAP).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct RedirectEntry {
    /// The key (device map index or DEVMAP_HASH key, CPU, queue).
    pub key: u32,
    /// The first 4 bytes of the value.
    pub value: u32,
}

/// `dev_map_alloc_check`, `cpu_map_alloc`, `xsk_map_alloc`: the creation checks.
pub(crate) fn check_create(spec: &MapSpec) -> Result<(), MapError> {
    let invalid = |reason| Err(MapError::InvalidSpec { reason });
    let f = spec.map_flags;
    if spec.max_entries == 0 {
        return invalid("max_entries must not be 0");
    }
    if spec.key_size != 4 {
        return invalid("key_size must be 4");
    }
    match spec.map_type {
        MapType::Devmap | MapType::DevmapHash => {
            if spec.value_size != 4 && spec.value_size != 8 {
                return invalid("value_size must be 4 (ifindex) or 8 (struct bpf_devmap_val)");
            }
            if f & !(create::NUMA_NODE | create::RDONLY | create::WRONLY) != 0 {
                return invalid("map_flags not valid for a device map");
            }
            if spec.map_type == MapType::DevmapHash && spec.max_entries > 1 << 31 {
                return invalid("DEVMAP_HASH max_entries over 2^31");
            }
        }
        MapType::Cpumap => {
            if spec.value_size != 4 && spec.value_size != 8 {
                return invalid("value_size must be 4 (qsize) or 8 (struct bpf_cpumap_val)");
            }
            if f & !create::NUMA_NODE != 0 {
                return invalid("map_flags not valid for a CPUMAP");
            }
            if spec.max_entries > NR_CPUS {
                return Err(MapError::SpecTooBig {
                    reason: "CPUMAP max_entries over NR_CPUS",
                });
            }
        }
        _ => {
            if spec.value_size != 4 {
                return invalid("XSKMAP value_size must be 4");
            }
            if f & !(create::NUMA_NODE | create::RDONLY | create::WRONLY) != 0 {
                return invalid("map_flags not valid for an XSKMAP");
            }
        }
    }
    Ok(())
}

/// The flags the kernel adds at creation: device maps are read-only for programs.
pub(crate) fn implied_flags(map_type: MapType) -> u32 {
    match map_type {
        MapType::Devmap | MapType::DevmapHash => create::RDONLY_PROG,
        _ => 0,
    }
}

/// The elements of a redirect map: for the array types, which index holds one (its value
/// in arena slot = index); for DEVMAP_HASH, the buckets (`key & (n_buckets - 1)`, newest
/// first) with each element's arena slot.
#[derive(Debug)]
pub(crate) struct RedirectState {
    present: Box<[AtomicU64]>,
    hash: Option<RwLock<DevHash>>,
}

#[derive(Debug, Default)]
struct DevHash {
    n_buckets: u64,
    /// Bucket → `(key, slot)`, newest first; only non-empty buckets are kept.
    buckets: BTreeMap<u64, Vec<(u32, u32)>>,
    free: Vec<u32>,
    next_slot: u32,
    items: u32,
}

impl DevHash {
    fn bucket(&self, key: u32) -> u64 {
        u64::from(key) & (self.n_buckets - 1)
    }

    fn find(&self, key: u32) -> Option<u32> {
        let b = self.buckets.get(&self.bucket(key))?;
        b.iter().find(|(k, _)| *k == key).map(|&(_, s)| s)
    }
}

/// Bytes of a redirect map's bookkeeping beside its value arena, charged to its
/// [`MapMemory`](crate::MapMemory) at creation: the presence bitmap, or for DEVMAP_HASH the
/// most its buckets and free list can hold (an element's bucket entry and tree share, and a
/// free-list slot).
pub(crate) fn bookkeeping_bytes(spec: &MapSpec) -> u64 {
    let n = u64::from(spec.max_entries);
    if spec.map_type == MapType::DevmapHash {
        n * DEVMAP_HASH_BYTES_PER_ELEMENT
    } else {
        n.div_ceil(64) * 8
    }
}

/// What one DEVMAP_HASH element may cost in buckets (`(key, slot)`, a tree node's share when
/// alone in its bucket) and free list.
const DEVMAP_HASH_BYTES_PER_ELEMENT: u64 = 64;

impl RedirectState {
    pub(crate) fn new(spec: &MapSpec) -> Result<RedirectState, MapError> {
        if spec.map_type == MapType::DevmapHash {
            return Ok(RedirectState {
                present: Box::new([]),
                hash: Some(RwLock::new(DevHash {
                    n_buckets: u64::from(spec.max_entries).next_power_of_two(),
                    ..DevHash::default()
                })),
            });
        }
        let words = (spec.max_entries as usize).div_ceil(64);
        let mut present = Vec::new();
        present
            .try_reserve_exact(words)
            .map_err(|_| MapError::OutOfMemory {
                reason: "redirect map element bitmap",
            })?;
        present.resize_with(words, || AtomicU64::new(0));
        Ok(RedirectState {
            present: present.into_boxed_slice(),
            hash: None,
        })
    }

    fn is_set(&self, i: u32) -> bool {
        let w = &self.present[i as usize / 64];
        w.load(Ordering::Acquire) & (1 << (i % 64)) != 0
    }

    fn set(&self, i: u32, on: bool) {
        let w = &self.present[i as usize / 64];
        if on {
            w.fetch_or(1 << (i % 64), Ordering::Release);
        } else {
            w.fetch_and(!(1 << (i % 64)), Ordering::Release);
        }
    }

    pub(crate) fn count(&self) -> u32 {
        match &self.hash {
            Some(h) => h.read().unwrap_or_else(|p| p.into_inner()).items,
            None => self
                .present
                .iter()
                .map(|w| w.load(Ordering::Relaxed).count_ones())
                .sum(),
        }
    }

    fn hash(&self) -> std::sync::RwLockReadGuard<'_, DevHash> {
        self.hash
            .as_ref()
            .expect("DEVMAP_HASH")
            .read()
            .unwrap_or_else(|p| p.into_inner())
    }

    fn hash_mut(&self) -> std::sync::RwLockWriteGuard<'_, DevHash> {
        self.hash
            .as_ref()
            .expect("DEVMAP_HASH")
            .write()
            .unwrap_or_else(|p| p.into_inner())
    }
}

fn u32_at(b: &[u8], at: usize) -> u32 {
    b.get(at..at + 4)
        .map_or(0, |x| u32::from_ne_bytes([x[0], x[1], x[2], x[3]]))
}

impl Map {
    fn redirect_state(&self) -> &RedirectState {
        match &self.kind {
            crate::map::Kind::Redirect(r) => r,
            _ => unreachable!("only redirect maps call this"),
        }
    }

    /// The arena slot of the element with `key`, if it exists.
    fn redirect_slot(&self, key: u32) -> Option<u32> {
        let r = self.redirect_state();
        if r.hash.is_some() {
            return r.hash().find(key);
        }
        (key < self.spec.max_entries && r.is_set(key)).then_some(key)
    }

    /// The value the host stores for a valid update of `value`, or the kernel's error
    /// (`__dev_map_alloc_node`, `cpu_map_update_elem`, `xsk_map_update_elem`).
    fn redirect_value(&self, key: u32, value: &[u8]) -> Result<Option<[u8; 8]>, MapError> {
        let mut out = [0u8; 8];
        let first = u32_at(value, 0);
        let fd = u32_at(value, 4) as i32;
        match self.spec.map_type {
            MapType::Devmap | MapType::DevmapHash => {
                if first == 0 && self.spec.map_type == MapType::Devmap {
                    if fd > 0 {
                        return Err(MapError::InvalidSpec {
                            reason: "a DEVMAP value with ifindex 0 may not name a program",
                        });
                    }
                    return Ok(None);
                }
                if first == 0 || first > i32::MAX as u32 {
                    return Err(MapError::InvalidSpec {
                        reason: "no device has this ifindex",
                    });
                }
                if fd > 0 {
                    return Err(MapError::InvalidSpec {
                        reason: "bpfvm has no XDP programs for device map entries (BPF_XDP_DEVMAP)",
                    });
                }
            }
            MapType::Cpumap => {
                if first > CPUMAP_MAX_QSIZE {
                    return Err(MapError::ValueOutOfRange {
                        reason: "CPUMAP qsize over 16384",
                    });
                }
                if key >= self.ncpus {
                    return Err(MapError::NoSuchDevice {
                        reason: "CPUMAP key is not a simulated CPU",
                    });
                }
                if first == 0 {
                    return Ok(None);
                }
                if fd > 0 {
                    return Err(MapError::OutOfMemory {
                        reason: "bpfvm has no XDP programs for CPUMAP entries (BPF_XDP_CPUMAP)",
                    });
                }
            }
            _ => {}
        }
        // Program fds are reported as program ids; bpfvm has none.
        out[..4].copy_from_slice(&first.to_ne_bytes());
        Ok(Some(out))
    }

    /// Host-side update of a redirect map.
    pub(crate) fn redirect_update(&self, key: &[u8], value: &[u8], f: u64) -> Result<(), MapError> {
        let k = u32_at(key, 0);
        let vs = self.spec.value_size as usize;
        let r = self.redirect_state();
        if f > BPF_EXIST {
            return Err(MapError::flags(f, "redirect map update flags"));
        }
        if self.spec.map_type == MapType::DevmapHash {
            if u32_at(value, 0) == 0 {
                return Err(MapError::InvalidSpec {
                    reason: "DEVMAP_HASH value with ifindex 0",
                });
            }
            let mut h = r.hash_mut();
            let old = h.find(k);
            if old.is_some() && f == BPF_NOEXIST {
                return Err(MapError::Exists);
            }
            let v = self.redirect_value(k, value)?.expect("ifindex is not 0");
            let b = h.bucket(k);
            let slot = match old {
                Some(s) => {
                    let list = h.buckets.get_mut(&b).expect("found in it");
                    list.retain(|(kk, _)| *kk != k);
                    s
                }
                None => {
                    if h.items >= self.spec.max_entries {
                        return Err(MapError::Full {
                            max_entries: self.spec.max_entries,
                        });
                    }
                    h.items += 1;
                    match h.free.pop() {
                        Some(s) => s,
                        None => {
                            h.next_slot += 1;
                            h.next_slot - 1
                        }
                    }
                }
            };
            self.slab.write(slot as usize, &v[..vs]);
            h.buckets.entry(b).or_default().insert(0, (k, slot));
            return Ok(());
        }
        if k >= self.spec.max_entries {
            return Err(MapError::IndexOutOfRange {
                index: k,
                max_entries: self.spec.max_entries,
            });
        }
        if self.spec.map_type == MapType::Xskmap {
            let there = r.is_set(k);
            let mut old = [0u8; 4];
            self.slab.read_at(k as usize, 0, &mut old);
            if there && old == value[..4] {
                // The same socket again: nothing to do, whatever the flags.
                return Ok(());
            }
            if there && f == BPF_NOEXIST {
                return Err(MapError::Exists);
            }
            if !there && f == BPF_EXIST {
                return Err(MapError::NotFound);
            }
        } else if f == BPF_NOEXIST {
            return Err(MapError::Exists);
        }
        match self.redirect_value(k, value)? {
            Some(v) => {
                self.slab.write(k as usize, &v[..vs]);
                r.set(k, true);
            }
            None => r.set(k, false),
        }
        Ok(())
    }

    /// Host-side lookup: the stored value (`EOPNOTSUPP` on an XSKMAP).
    pub(crate) fn redirect_lookup(&self, key: &[u8], out: &mut [u8]) -> Result<(), MapError> {
        if self.spec.map_type == MapType::Xskmap {
            return Err(MapError::OperationNotSupported {
                op: "lookup from the host",
                map_type: MapType::Xskmap,
            });
        }
        let slot = self
            .redirect_slot(u32_at(key, 0))
            .ok_or(MapError::NotFound)?;
        let vs = self.spec.value_size as usize;
        let out = Map::buf_out("value", out, vs)?;
        self.slab.read(slot as usize, out);
        Ok(())
    }

    /// Host-side delete: the array types answer 0 for an empty index and `EINVAL` past
    /// `max_entries`; DEVMAP_HASH `ENOENT` for a missing key.
    pub(crate) fn redirect_delete(&self, key: &[u8]) -> Result<(), MapError> {
        let k = u32_at(key, 0);
        let r = self.redirect_state();
        if r.hash.is_some() {
            let mut h = r.hash_mut();
            let b = h.bucket(k);
            let slot = h.find(k).ok_or(MapError::NotFound)?;
            let list = h.buckets.get_mut(&b).expect("found in it");
            list.retain(|(kk, _)| *kk != k);
            if list.is_empty() {
                h.buckets.remove(&b);
            }
            h.free.push(slot);
            h.items -= 1;
            return Ok(());
        }
        if k >= self.spec.max_entries {
            return Err(MapError::InvalidOperation {
                op: "delete past max_entries",
                map_type: self.spec.map_type,
            });
        }
        r.set(k, false);
        Ok(())
    }

    /// `get_next_key`: every index for the array types (as arrays), bucket order for
    /// DEVMAP_HASH.
    pub(crate) fn redirect_next_key(
        &self,
        key: Option<&[u8]>,
        out: &mut [u8],
    ) -> Result<(), MapError> {
        let r = self.redirect_state();
        if r.hash.is_none() {
            return self.array_next_key(key, out);
        }
        let h = r.hash();
        let mut from_bucket = 0;
        if let Some(k) = key.map(|k| u32_at(k, 0)) {
            if h.find(k).is_some() {
                let b = h.bucket(k);
                let list = &h.buckets[&b];
                let at = list.iter().position(|(kk, _)| *kk == k).expect("found");
                if let Some(&(next, _)) = list.get(at + 1) {
                    out[..4].copy_from_slice(&next.to_ne_bytes());
                    return Ok(());
                }
                from_bucket = b + 1;
            }
        }
        match h.buckets.range(from_bucket..).next() {
            Some((_, list)) => {
                out[..4].copy_from_slice(&list[0].0.to_ne_bytes());
                Ok(())
            }
            None => Err(MapError::NotFound),
        }
    }

    /// Program-side lookup (`bpf_map_lookup_elem`): the element's slot on DEVMAP,
    /// DEVMAP_HASH and XSKMAP; never on a CPUMAP (the verifier refuses it).
    pub(crate) fn redirect_prog_lookup(&self, key: &[u8]) -> Option<usize> {
        if self.spec.map_type == MapType::Cpumap {
            return None;
        }
        self.redirect_slot(u32_at(key, 0)).map(|s| s as usize)
    }

    /// The target `bpf_redirect_map` finds under `key`, if an element is there (the
    /// kernel's `__dev_map_lookup_elem`, `__cpu_map_lookup_elem`, `__xsk_map_lookup_elem`
    /// with the key cut to 32 bits). `None` for maps that are not redirect maps.
    pub fn prog_redirect_lookup(&self, key: u32) -> Option<RedirectEntry> {
        if !self.spec.map_type.is_redirect() {
            return None;
        }
        let slot = self.redirect_slot(key)?;
        let mut v = [0u8; 4];
        self.slab.read_at(slot as usize, 0, &mut v);
        Some(RedirectEntry {
            key,
            value: u32::from_ne_bytes(v),
        })
    }

    /// Every element's key and first value word, in `get_next_key` order (the targets of a
    /// `BPF_F_BROADCAST` redirect).
    pub fn redirect_entries(&self) -> Vec<RedirectEntry> {
        if !self.spec.map_type.is_redirect() {
            return Vec::new();
        }
        let r = self.redirect_state();
        let keys: Vec<u32> = match &r.hash {
            Some(_) => {
                let h = r.hash();
                h.buckets.values().flatten().map(|&(k, _)| k).collect()
            }
            None => (0..self.spec.max_entries)
                .filter(|&i| r.is_set(i))
                .collect(),
        };
        keys.into_iter()
            .filter_map(|k| self.prog_redirect_lookup(k))
            .collect()
    }

    /// Elements in a redirect map.
    pub(crate) fn redirect_count(&self) -> u32 {
        self.redirect_state().count()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn devmap(t: MapType, value_size: u32, max: u32) -> Map {
        Map::create(MapSpec::new(t, 4, value_size, max), 2).unwrap()
    }

    #[test]
    fn devmap_hash_iterates_by_bucket_newest_first() {
        let m = devmap(MapType::DevmapHash, 4, 4);
        for k in [1u32, 5, 2, 9] {
            m.update(&k.to_ne_bytes(), &7u32.to_ne_bytes(), 0).unwrap();
        }
        // 4 buckets: 1, 5, 9 share bucket 1 (newest first), 2 is in bucket 2.
        let mut keys = Vec::new();
        let mut cur: Option<[u8; 4]> = None;
        let mut next = [0u8; 4];
        while m
            .get_next_key(cur.as_ref().map(|k| &k[..]), &mut next, 0)
            .is_ok()
        {
            keys.push(u32::from_ne_bytes(next));
            cur = Some(next);
        }
        assert_eq!(keys, [9, 5, 1, 2]);
        assert_eq!(
            m.update(&3u32.to_ne_bytes(), &7u32.to_ne_bytes(), 0)
                .unwrap_err()
                .errno(),
            7
        );
        assert_eq!(
            m.update(&5u32.to_ne_bytes(), &7u32.to_ne_bytes(), 1)
                .unwrap_err()
                .errno(),
            17
        );
        m.delete(&5u32.to_ne_bytes(), 0).unwrap();
        assert_eq!(m.delete(&5u32.to_ne_bytes(), 0).unwrap_err().errno(), 2);
        m.update(&3u32.to_ne_bytes(), &8u32.to_ne_bytes(), 0)
            .unwrap();
        assert_eq!(m.prog_redirect_lookup(3).unwrap().value, 8);
        assert_eq!(m.element_count(), 4);
    }

    #[test]
    fn array_types_follow_their_kernel_rules() {
        let m = devmap(MapType::Devmap, 8, 4);
        assert_eq!(m.map_flags() & create::RDONLY_PROG, create::RDONLY_PROG);
        let v = |ifindex: u32, fd: i32| [ifindex.to_ne_bytes(), fd.to_ne_bytes()].concat();
        m.update(&1u32.to_ne_bytes(), &v(3, -1), 0).unwrap();
        let mut out = [0u8; 8];
        m.lookup(&1u32.to_ne_bytes(), &mut out, 0).unwrap();
        assert_eq!(out, &v(3, 0)[..]);
        assert_eq!(
            m.update(&1u32.to_ne_bytes(), &v(3, 0), 1)
                .unwrap_err()
                .errno(),
            17
        );
        assert_eq!(
            m.update(&4u32.to_ne_bytes(), &v(3, 0), 0)
                .unwrap_err()
                .errno(),
            7
        );
        assert_eq!(
            m.update(&1u32.to_ne_bytes(), &v(0, 5), 0)
                .unwrap_err()
                .errno(),
            22
        );
        m.update(&1u32.to_ne_bytes(), &v(0, 0), 0).unwrap();
        assert_eq!(
            m.lookup(&1u32.to_ne_bytes(), &mut out, 0)
                .unwrap_err()
                .errno(),
            2
        );
        m.delete(&2u32.to_ne_bytes(), 0).unwrap();
        assert_eq!(m.delete(&4u32.to_ne_bytes(), 0).unwrap_err().errno(), 22);

        let c = devmap(MapType::Cpumap, 4, 4);
        assert_eq!(
            c.update(&2u32.to_ne_bytes(), &64u32.to_ne_bytes(), 0)
                .unwrap_err()
                .errno(),
            19
        );
        assert_eq!(
            c.update(&1u32.to_ne_bytes(), &16385u32.to_ne_bytes(), 0)
                .unwrap_err()
                .errno(),
            75
        );
        c.update(&1u32.to_ne_bytes(), &64u32.to_ne_bytes(), 0)
            .unwrap();
        assert_eq!(c.prog_redirect_lookup(1).unwrap().value, 64);
        assert_eq!(
            c.prog_lookup_slot(crate::CpuId(0), &1u32.to_ne_bytes()),
            None
        );

        let x = devmap(MapType::Xskmap, 4, 4);
        assert_eq!(
            x.update(&0u32.to_ne_bytes(), &5u32.to_ne_bytes(), 2)
                .unwrap_err()
                .errno(),
            2
        );
        x.update(&0u32.to_ne_bytes(), &5u32.to_ne_bytes(), 0)
            .unwrap();
        assert_eq!(
            x.update(&0u32.to_ne_bytes(), &6u32.to_ne_bytes(), 1)
                .unwrap_err()
                .errno(),
            17
        );
        // The same socket again is no change, whatever the flags (`old_xs == xs`).
        x.update(&0u32.to_ne_bytes(), &5u32.to_ne_bytes(), 1)
            .unwrap();
        let mut four = [0u8; 4];
        assert_eq!(
            x.lookup(&0u32.to_ne_bytes(), &mut four, 0)
                .unwrap_err()
                .errno(),
            95
        );
        assert_eq!(
            x.prog_lookup_slot(crate::CpuId(1), &0u32.to_ne_bytes()),
            Some(0)
        );
    }

    #[test]
    fn creation_checks_follow_the_kernel() {
        let bad = |t, ks, vs, max, flags| {
            Map::create(MapSpec::new(t, ks, vs, max).with_flags(flags), 2)
                .unwrap_err()
                .errno()
        };
        assert_eq!(bad(MapType::Devmap, 4, 12, 1, 0), 22);
        assert_eq!(bad(MapType::Devmap, 8, 4, 1, 0), 22);
        assert_eq!(bad(MapType::Devmap, 4, 4, 0, 0), 22);
        assert_eq!(bad(MapType::Devmap, 4, 4, 1, create::RDONLY_PROG), 22);
        assert_eq!(bad(MapType::Cpumap, 4, 4, NR_CPUS + 1, 0), 7);
        assert_eq!(bad(MapType::Cpumap, 4, 4, 1, create::RDONLY), 22);
        assert_eq!(bad(MapType::Xskmap, 4, 8, 1, 0), 22);
    }
}
