//! STACK_TRACE: call stacks by id, filled by `bpf_get_stackid` (helper 27), as
//! kernel/bpf/stackmap.c keeps them.
//!
//! A stack id is a **bucket**: `jhash2` of the stack's addresses (seed 0) masked with
//! `n_buckets - 1`, where `n_buckets` is `max_entries` rounded up to a power of two. A bucket
//! holds one stack; another stack hashing to the same bucket is `EEXIST` unless the caller
//! asks `BPF_F_REUSE_STACKID` (then it replaces it). The map has `max_entries` bucket
//! *elements* (the kernel's preallocated freelist): a new stack when all are in use is
//! `ENOMEM`.
//!
//! | operation | kernel rule (and bpfvm's) |
//! |---|---|
//! | create | flags other than `BPF_F_NUMA_NODE`, `BPF_F_RDONLY`, `BPF_F_WRONLY`, `BPF_F_STACK_BUILD_ID` `EINVAL`; `max_entries` 0, `key_size` not 4, `value_size` not a multiple of 8 (of 32 with build ids) or over 127 frames `EINVAL`; `max_entries > 2^31` `E2BIG` |
//! | lookup (host) | the stack, zero-padded to `value_size`; id `>= n_buckets` or empty `ENOENT` |
//! | update (host) | always `EINVAL` |
//! | lookup and delete (host) | as lookup, then the bucket is emptied |
//! | delete | id `>= n_buckets` `E2BIG`; empty `ENOENT` |
//! | `get_next_key` | the filled buckets in id order; an unknown key restarts from the first |
//! | programs | only `bpf_get_stackid` (the verifier refuses lookups) |
//!
//! Value layout: `u64` addresses, innermost frame first. With `BPF_F_STACK_BUILD_ID`,
//! 32-byte `struct bpf_stack_build_id` records; bpfvm has no binaries to read build ids
//! from, so every frame is `BPF_STACK_BUILD_ID_IP` (status 2) with its address at byte 24,
//! what the kernel writes when it cannot find a build id.
//!
//! ```
//! use bpfvm_maps::{Map, MapSpec, MapType};
//!
//! let stacks = Map::create(MapSpec::new(MapType::StackTrace, 4, 8 * 4, 3), 1)?;
//! let id = stacks.stack_trace_insert(&[0xffff_ffff_8100_0010, 0xffff_ffff_8100_0200], 0)?;
//! assert!(id < 4); // n_buckets = 4
//! let mut value = [0u8; 32];
//! stacks.lookup(&id.to_ne_bytes(), &mut value, 0)?;
//! assert_eq!(u64::from_ne_bytes(value[8..16].try_into().unwrap()), 0xffff_ffff_8100_0200);
//! assert_eq!(&value[16..], &[0; 16]); // zero past the stack
//! // The same stack again: the same id.
//! assert_eq!(stacks.stack_trace_insert(&[0xffff_ffff_8100_0010, 0xffff_ffff_8100_0200], 0)?, id);
//! # Ok::<(), bpfvm_maps::MapError>(())
//! ```

use std::collections::BTreeMap;
use std::sync::Mutex;

use crate::error::MapError;
use crate::flags::create;
use crate::map::{Kind, Map};
use crate::spec::MapSpec;

/// `BPF_F_STACK_BUILD_ID`: values are `struct bpf_stack_build_id` records (map flag).
pub const BPF_F_STACK_BUILD_ID: u32 = 1 << 5;
/// `BPF_F_SKIP_FIELD_MASK`: the number of frames to skip, in the helpers' flags.
pub const BPF_F_SKIP_FIELD_MASK: u64 = 0xff;
/// `BPF_F_USER_STACK`: the user stack, not the kernel one.
pub const BPF_F_USER_STACK: u64 = 1 << 8;
/// `BPF_F_FAST_STACK_CMP`: `bpf_get_stackid` compares hashes only.
pub const BPF_F_FAST_STACK_CMP: u64 = 1 << 9;
/// `BPF_F_REUSE_STACKID`: `bpf_get_stackid` replaces another stack in the bucket.
pub const BPF_F_REUSE_STACKID: u64 = 1 << 10;
/// `BPF_F_USER_BUILD_ID`: `bpf_get_stack` writes build-id records of the user stack.
pub const BPF_F_USER_BUILD_ID: u64 = 1 << 11;
/// `sysctl_perf_event_max_stack`'s default: the most frames a stack holds.
pub const PERF_MAX_STACK: u32 = 127;
/// Bytes of a `struct bpf_stack_build_id`.
pub const BUILD_ID_RECORD: usize = 32;
/// `BPF_STACK_BUILD_ID_IP`: a build-id record holding an address, not a build id.
pub const BPF_STACK_BUILD_ID_IP: i32 = 2;

/// The buckets and their hashes.
#[derive(Debug)]
pub(crate) struct StackTraceState {
    n_buckets: u32,
    build_id: bool,
    buckets: Mutex<BTreeMap<u32, Bucket>>,
}

#[derive(Debug)]
struct Bucket {
    hash: u32,
    nr: u32,
    /// `nr` frames in the value layout (8 or 32 bytes each).
    data: Box<[u8]>,
}

/// `stack_map_alloc`'s checks.
pub(crate) fn check_create(spec: &MapSpec) -> Result<(), MapError> {
    let mask = create::NUMA_NODE | create::RDONLY | create::WRONLY | BPF_F_STACK_BUILD_ID;
    if spec.map_flags & !mask != 0 {
        return Err(MapError::InvalidSpec {
            reason: "map_flags not valid for a STACK_TRACE map",
        });
    }
    let vs = spec.value_size;
    if spec.max_entries == 0 || spec.key_size != 4 || vs < 8 || vs % 8 != 0 {
        return Err(MapError::InvalidSpec {
            reason: "a STACK_TRACE map needs key_size 4, max_entries > 0 and value_size a \
                     non-zero multiple of 8",
        });
    }
    if spec.map_flags & BPF_F_STACK_BUILD_ID != 0 {
        if vs as usize % BUILD_ID_RECORD != 0 || vs / BUILD_ID_RECORD as u32 > PERF_MAX_STACK {
            return Err(MapError::InvalidSpec {
                reason: "with BPF_F_STACK_BUILD_ID, value_size must be a multiple of 32 \
                         bytes, at most 127 records",
            });
        }
    } else if vs / 8 > PERF_MAX_STACK {
        return Err(MapError::InvalidSpec {
            reason: "value_size holds more than 127 frames (sysctl_perf_event_max_stack)",
        });
    }
    if spec.max_entries > 1 << 31 {
        return Err(MapError::SpecTooBig {
            reason: "STACK_TRACE max_entries over 2^31",
        });
    }
    Ok(())
}

/// `n_buckets`: `max_entries` rounded up to a power of two (after [`check_create`]).
pub(crate) fn n_buckets(spec: &MapSpec) -> u32 {
    spec.max_entries.next_power_of_two()
}

/// What the kernel charges: the bucket pointers and `max_entries` preallocated elements.
pub(crate) fn bookkeeping_bytes(spec: &MapSpec) -> u64 {
    u64::from(n_buckets(spec)) * 8 + u64::from(spec.max_entries) * (u64::from(spec.value_size) + 16)
}

impl StackTraceState {
    pub(crate) fn new(spec: &MapSpec) -> StackTraceState {
        StackTraceState {
            n_buckets: n_buckets(spec),
            build_id: spec.map_flags & BPF_F_STACK_BUILD_ID != 0,
            buckets: Mutex::new(BTreeMap::new()),
        }
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, BTreeMap<u32, Bucket>> {
        self.buckets.lock().unwrap_or_else(|p| p.into_inner())
    }
}

/// Frames as `struct bpf_stack_build_id` records: status `BPF_STACK_BUILD_ID_IP`, no build
/// id, the address at byte 24 (what the kernel writes when it finds no build id).
pub fn build_id_records(ips: &[u64]) -> Vec<u8> {
    let mut out = vec![0u8; ips.len() * BUILD_ID_RECORD];
    for (rec, ip) in out.chunks_exact_mut(BUILD_ID_RECORD).zip(ips) {
        rec[..4].copy_from_slice(&BPF_STACK_BUILD_ID_IP.to_ne_bytes());
        rec[24..].copy_from_slice(&ip.to_ne_bytes());
    }
    out
}

fn id_of(key: &[u8]) -> u32 {
    u32::from_ne_bytes([key[0], key[1], key[2], key[3]])
}

impl Map {
    fn stack_state(&self) -> Result<&StackTraceState, MapError> {
        match &self.kind {
            Kind::StackTrace(s) => Ok(s),
            _ => Err(MapError::InvalidOperation {
                op: "a STACK_TRACE operation",
                map_type: self.spec.map_type,
            }),
        }
    }

    /// The most frames one stack of this map holds: `value_size / 8` (`/ 32` with
    /// `BPF_F_STACK_BUILD_ID`).
    pub fn stack_trace_depth(&self) -> Result<u32, MapError> {
        let s = self.stack_state()?;
        let elem = if s.build_id { BUILD_ID_RECORD } else { 8 } as u32;
        Ok(self.spec.value_size / elem)
    }

    /// The bucket count (`max_entries` rounded up to a power of two).
    pub fn stack_trace_buckets(&self) -> Result<u32, MapError> {
        Ok(self.stack_state()?.n_buckets)
    }

    /// The core of `bpf_get_stackid` (`__bpf_get_stackid`): stores stack `ips` (innermost
    /// frame first, already skipped and cut to [`Map::stack_trace_depth`] frames, at least
    /// one) and returns its id. `flags`: `BPF_F_FAST_STACK_CMP` (a bucket with the same
    /// hash is taken as the same stack) and `BPF_F_REUSE_STACKID` (another stack in the
    /// bucket is replaced; without it, `EEXIST` ([`MapError::Exists`])). `ENOMEM` when all
    /// `max_entries` elements hold stacks and a new one is needed.
    pub fn stack_trace_insert(&self, ips: &[u64], flags: u64) -> Result<u32, MapError> {
        let s = self.stack_state()?;
        let depth = self.stack_trace_depth()? as usize;
        if ips.is_empty() || ips.len() > depth {
            return Err(MapError::InvalidKey {
                reason: "a stack holds 1 ..= value_size / frame size frames",
            });
        }
        let raw: Vec<u8> = ips.iter().flat_map(|ip| ip.to_ne_bytes()).collect();
        let hash = crate::jhash::jhash2(&raw, 0);
        let id = hash & (s.n_buckets - 1);
        let data = if s.build_id {
            build_id_records(ips)
        } else {
            raw
        };
        let nr = ips.len() as u32;
        let mut buckets = s.lock();
        let bucket = buckets.get(&id);
        let hash_matches = bucket.is_some_and(|b| b.hash == hash);
        if hash_matches && flags & BPF_F_FAST_STACK_CMP != 0 {
            return Ok(id);
        }
        let in_use = buckets.len() as u32;
        // With build ids the kernel takes a free element before it compares.
        if s.build_id && in_use >= self.spec.max_entries {
            return Err(MapError::OutOfMemory {
                reason: "every STACK_TRACE element holds a stack",
            });
        }
        if let Some(b) = bucket {
            if hash_matches && b.nr == nr && *b.data == *data {
                return Ok(id);
            }
            if flags & BPF_F_REUSE_STACKID == 0 {
                return Err(MapError::Exists);
            }
        }
        if in_use >= self.spec.max_entries {
            return Err(MapError::OutOfMemory {
                reason: "every STACK_TRACE element holds a stack",
            });
        }
        buckets.insert(
            id,
            Bucket {
                hash,
                nr,
                data: data.into_boxed_slice(),
            },
        );
        Ok(id)
    }

    /// Host lookup (`bpf_stackmap_copy`): the stack, zero-padded to `value_size`.
    pub(crate) fn stack_trace_lookup(&self, key: &[u8], out: &mut [u8]) -> Result<(), MapError> {
        let s = self.stack_state()?;
        let out = Map::buf_out("value", out, self.spec.value_size as usize)?;
        let id = id_of(key);
        let buckets = s.lock();
        let b = buckets.get(&id).ok_or(MapError::NotFound)?;
        out.fill(0);
        out[..b.data.len()].copy_from_slice(&b.data);
        Ok(())
    }

    /// Host lookup-and-delete (`bpf_stackmap_extract` with `delete`): the stack as
    /// [`Map::lookup`] gives it, and its bucket emptied; `ENOENT` when there is none.
    pub(crate) fn stack_trace_lookup_and_delete(
        &self,
        key: &[u8],
        out: &mut [u8],
    ) -> Result<(), MapError> {
        let s = self.stack_state()?;
        let out = Map::buf_out("value", out, self.spec.value_size as usize)?;
        let b = s.lock().remove(&id_of(key)).ok_or(MapError::NotFound)?;
        out.fill(0);
        out[..b.data.len()].copy_from_slice(&b.data);
        Ok(())
    }

    /// Host delete: `E2BIG` for an id past the buckets, `ENOENT` for an empty one.
    pub(crate) fn stack_trace_delete(&self, key: &[u8]) -> Result<(), MapError> {
        let s = self.stack_state()?;
        let id = id_of(key);
        if id >= s.n_buckets {
            return Err(MapError::IndexOutOfRange {
                index: id,
                max_entries: s.n_buckets,
            });
        }
        s.lock().remove(&id).map(|_| ()).ok_or(MapError::NotFound)
    }

    /// `stack_map_get_next_key`: the next filled bucket after `key`; a missing or unknown
    /// key starts from the first.
    pub(crate) fn stack_trace_next_key(
        &self,
        key: Option<&[u8]>,
        out: &mut [u8],
    ) -> Result<(), MapError> {
        let s = self.stack_state()?;
        let buckets = s.lock();
        let start = match key.map(id_of) {
            Some(id) if id < s.n_buckets && buckets.contains_key(&id) => id + 1,
            _ => 0,
        };
        let (&next, _) = buckets.range(start..).next().ok_or(MapError::NotFound)?;
        out[..4].copy_from_slice(&next.to_ne_bytes());
        Ok(())
    }

    /// Stacks held.
    pub(crate) fn stack_trace_count(&self) -> u32 {
        self.stack_state().map_or(0, |s| s.lock().len() as u32)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::spec::MapType;

    fn map(vs: u32, max: u32, flags: u32) -> Map {
        Map::create(
            MapSpec::new(MapType::StackTrace, 4, vs, max).with_flags(flags),
            1,
        )
        .unwrap()
    }

    #[test]
    fn creation_follows_stack_map_alloc() {
        let bad = |ks, vs, max, flags| {
            Map::create(
                MapSpec::new(MapType::StackTrace, ks, vs, max).with_flags(flags),
                1,
            )
            .unwrap_err()
            .errno()
        };
        assert_eq!(bad(4, 8, 0, 0), 22);
        assert_eq!(bad(8, 8, 4, 0), 22);
        assert_eq!(bad(4, 4, 4, 0), 22);
        assert_eq!(bad(4, 12, 4, 0), 22);
        assert_eq!(bad(4, 128 * 8, 4, 0), 22);
        assert_eq!(bad(4, 8, 4, create::NO_PREALLOC), 22);
        assert_eq!(bad(4, 40, 4, BPF_F_STACK_BUILD_ID), 22);
        assert_eq!(bad(4, 8, (1 << 31) + 1, 0), 7);
        assert!(Map::create(MapSpec::new(MapType::StackTrace, 4, 127 * 8, 1), 1).is_ok());
        assert_eq!(map(64, 5, 0).stack_trace_buckets(), Ok(8));
        assert_eq!(map(64, 5, BPF_F_STACK_BUILD_ID).stack_trace_depth(), Ok(2));
    }

    #[test]
    fn ids_are_jhash2_buckets_and_collisions_follow_the_flags() {
        let m = map(32, 1, 0);
        let a = [1u64, 2, 3];
        let b = [4u64, 5];
        assert_eq!(m.stack_trace_insert(&a, 0), Ok(0));
        assert_eq!(m.stack_trace_insert(&a, 0), Ok(0));
        assert_eq!(m.stack_trace_insert(&b, 0), Err(MapError::Exists));
        // One element, in use: a replacement needs a free one first.
        assert_eq!(
            m.stack_trace_insert(&b, BPF_F_REUSE_STACKID)
                .unwrap_err()
                .errno(),
            12
        );
        let m = map(32, 2, 0);
        let id = m.stack_trace_insert(&a, 0).unwrap();
        let raw: Vec<u8> = a.iter().flat_map(|x| x.to_ne_bytes()).collect();
        assert_eq!(id, crate::jhash::jhash2(&raw, 0) & 1);
        // Fill the other bucket (or collide), then replace with REUSE.
        let mut v = [0u8; 32];
        for x in 10u64..40 {
            let s = [x];
            match m.stack_trace_insert(&s, 0) {
                Ok(i) if i != id => break,
                _ => {}
            }
        }
        assert_eq!(m.element_count(), 2);
        m.delete(&id.to_ne_bytes(), 0).unwrap();
        assert_eq!(
            m.lookup(&id.to_ne_bytes(), &mut v, 0),
            Err(MapError::NotFound)
        );
        // Two of two elements were in use; one was freed: b gets its own bucket.
        let braw: Vec<u8> = b.iter().flat_map(|x| x.to_ne_bytes()).collect();
        assert_eq!(
            m.stack_trace_insert(&b, BPF_F_REUSE_STACKID | BPF_F_FAST_STACK_CMP),
            Ok(crate::jhash::jhash2(&braw, 0) & 1)
        );
    }

    #[test]
    fn host_commands_answer_as_the_kernel() {
        let m = map(24, 3, 0);
        let mut v = [0u8; 24];
        let mut k = [0u8; 4];
        assert_eq!(m.get_next_key(None, &mut k, 0).unwrap_err().errno(), 2);
        assert_eq!(
            m.lookup(&9u32.to_ne_bytes(), &mut v, 0)
                .unwrap_err()
                .errno(),
            2
        );
        assert_eq!(m.delete(&4u32.to_ne_bytes(), 0).unwrap_err().errno(), 7);
        assert_eq!(m.delete(&3u32.to_ne_bytes(), 0).unwrap_err().errno(), 2);
        assert_eq!(
            m.update(&0u32.to_ne_bytes(), &v, 0).unwrap_err().errno(),
            22
        );
        let id = m.stack_trace_insert(&[7, 8], 0).unwrap();
        m.lookup(&id.to_ne_bytes(), &mut v, 0).unwrap();
        assert_eq!(&v[..8], &7u64.to_ne_bytes());
        assert_eq!(&v[16..], &[0; 8]);
        m.get_next_key(None, &mut k, 0).unwrap();
        assert_eq!(u32::from_ne_bytes(k), id);
        m.get_next_key(Some(&99u32.to_ne_bytes()), &mut k, 0)
            .unwrap();
        assert_eq!(u32::from_ne_bytes(k), id);
        assert_eq!(
            m.get_next_key(Some(&id.to_ne_bytes()), &mut k, 0)
                .unwrap_err()
                .errno(),
            2
        );
        assert!(m
            .prog_lookup_slot(crate::CpuId(0), &id.to_ne_bytes())
            .is_none());
    }

    #[test]
    fn build_id_values_hold_ip_records() {
        let m = map(64, 2, BPF_F_STACK_BUILD_ID);
        let id = m.stack_trace_insert(&[0x1234], 0).unwrap();
        let mut v = [0u8; 64];
        m.lookup(&id.to_ne_bytes(), &mut v, 0).unwrap();
        assert_eq!(&v[..4], &2i32.to_ne_bytes());
        assert_eq!(&v[24..32], &0x1234u64.to_ne_bytes());
        assert_eq!(&v[32..], &[0; 32]);
    }
}
