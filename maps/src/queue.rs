//! QUEUE and STACK (`kernel/bpf/queue_stack_maps.c`): a ring of `max_entries + 1` values
//! without keys. Programs push with helper 87 and take with 88 (pop) / 89 (peek); the host
//! pushes with `BPF_MAP_UPDATE_ELEM` (no key), peeks with `BPF_MAP_LOOKUP_ELEM` and pops with
//! `BPF_MAP_LOOKUP_AND_DELETE_ELEM`. A queue gives the oldest value, a stack the newest.
//!
//! ```
//! use bpfvm_maps::{Map, MapSpec, MapType};
//!
//! let q = Map::create(MapSpec::new(MapType::Queue, 0, 4, 2), 2)?;
//! q.update(&[], &1u32.to_ne_bytes(), 0)?;
//! q.update(&[], &2u32.to_ne_bytes(), 0)?;
//! // Full: E2BIG, unless BPF_EXIST makes room by dropping the oldest value.
//! assert_eq!(q.update(&[], &3u32.to_ne_bytes(), 0).unwrap_err().errno(), 7);
//! q.update(&[], &3u32.to_ne_bytes(), 2)?;
//! let mut v = [0u8; 4];
//! q.lookup_and_delete(&[], &mut v, 0)?;
//! assert_eq!(u32::from_ne_bytes(v), 2);
//! # Ok::<(), bpfvm_maps::MapError>(())
//! ```
//!
//! Values are copied in and out under the map's lock; programs never get a pointer into the
//! map (its value arena is empty), as in the kernel.

use std::sync::Mutex;

use crate::arena::Slab;
use crate::error::MapError;
use crate::flags::{create, BPF_EXIST, BPF_NOEXIST};
use crate::map::{access_ok, Map};
use crate::spec::{MapSpec, MapType};

/// `KMALLOC_MAX_SIZE` on x86_64 (4 MiB): the largest value the kernel accepts.
pub(crate) const KMALLOC_MAX_SIZE: u32 = 1 << 22;

/// `queue_stack_map_alloc_check`.
pub(crate) fn check_create(spec: &MapSpec) -> Result<(), MapError> {
    let mask = create::NUMA_NODE | create::ACCESS_MASK;
    if spec.max_entries == 0
        || spec.key_size != 0
        || spec.value_size == 0
        || spec.map_flags & !mask != 0
        || !access_ok(spec.map_flags)
    {
        return Err(MapError::InvalidSpec {
            reason: "queue/stack needs key_size 0, value_size and max_entries > 0, and only NUMA/access flags",
        });
    }
    if spec.value_size > KMALLOC_MAX_SIZE {
        return Err(MapError::SpecTooBig {
            reason: "queue/stack value over KMALLOC_MAX_SIZE (4 MiB)",
        });
    }
    Ok(())
}

/// Positions in the ring of `size = max_entries + 1` slots: empty when `head == tail`,
/// full when `head + 1 == tail` (mod `size`).
#[derive(Debug)]
struct Ring {
    head: u32,
    tail: u32,
    size: u32,
}

impl Ring {
    fn is_empty(&self) -> bool {
        self.head == self.tail
    }

    fn is_full(&self) -> bool {
        let mut head = self.head + 1;
        if head >= self.size {
            head = 0;
        }
        head == self.tail
    }

    fn len(&self) -> u32 {
        (self.head + self.size - self.tail) % self.size
    }
}

/// The state of a QUEUE or STACK map: the ring positions and the values.
#[derive(Debug)]
pub(crate) struct QueueState {
    stack: bool,
    ring: Mutex<Ring>,
    values: Slab,
}

impl QueueState {
    /// The bytes of its values (`max_entries + 1` slots), what a map memory account is
    /// charged.
    pub(crate) fn bytes(spec: &MapSpec) -> Result<u64, MapError> {
        let slots = spec.max_entries as usize + 1;
        Ok(Slab::bytes_for(slots, spec.value_size)? as u64)
    }

    pub(crate) fn new(spec: &MapSpec) -> Result<QueueState, MapError> {
        let size = spec
            .max_entries
            .checked_add(1)
            .ok_or(MapError::OutOfMemory {
                reason: "queue larger than 2^32 values",
            })?;
        Ok(QueueState {
            stack: spec.map_type == MapType::Stack,
            ring: Mutex::new(Ring {
                head: 0,
                tail: 0,
                size,
            }),
            values: Slab::new(size as usize, spec.value_size)?,
        })
    }

    fn ring(&self) -> std::sync::MutexGuard<'_, Ring> {
        // Every update of the ring is a plain assignment: a panic cannot leave it torn.
        self.ring.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// Values held now.
    pub(crate) fn count(&self) -> u32 {
        self.ring().len()
    }

    /// Every value in the order pops would return them.
    fn values(&self, vs: usize) -> Result<Vec<Vec<u8>>, MapError> {
        let r = self.ring();
        let n = r.len();
        let mut out = Vec::new();
        out.try_reserve_exact(n as usize)
            .map_err(|_| MapError::OutOfMemory {
                reason: "queue listing",
            })?;
        for i in 0..n {
            let slot = if self.stack {
                (r.head + r.size - 1 - i) % r.size
            } else {
                (r.tail + i) % r.size
            };
            let mut v = vec![0u8; vs];
            self.values.read(slot as usize, &mut v);
            out.push(v);
        }
        Ok(out)
    }

    /// `queue_stack_map_push_elem`: `BPF_EXIST` makes room in a full map by dropping the
    /// oldest value; without it a full map is `E2BIG`. Other flags: `EINVAL`.
    pub(crate) fn push(&self, value: &[u8], flags: u64) -> Result<(), MapError> {
        if flags & BPF_NOEXIST != 0 || flags > BPF_EXIST {
            return Err(MapError::flags(
                flags,
                "queue/stack push takes BPF_ANY or BPF_EXIST",
            ));
        }
        let mut r = self.ring();
        if r.is_full() {
            if flags & BPF_EXIST == 0 {
                return Err(MapError::Full {
                    max_entries: r.size - 1,
                });
            }
            r.tail += 1;
            if r.tail >= r.size {
                r.tail = 0;
            }
        }
        self.values.write(r.head as usize, value);
        r.head += 1;
        if r.head >= r.size {
            r.head = 0;
        }
        Ok(())
    }

    /// `__queue_map_get` / `__stack_map_get`: copy the oldest (queue) or newest (stack) value
    /// into `out` and remove it when `delete`. Empty: `out` zeroed and `ENOENT`.
    pub(crate) fn get(&self, out: &mut [u8], delete: bool) -> Result<(), MapError> {
        let mut r = self.ring();
        if r.is_empty() {
            out.fill(0);
            return Err(MapError::NotFound);
        }
        if self.stack {
            let index = if r.head == 0 { r.size - 1 } else { r.head - 1 };
            self.values.read(index as usize, out);
            if delete {
                r.head = index;
            }
        } else {
            self.values.read(r.tail as usize, out);
            if delete {
                r.tail += 1;
                if r.tail >= r.size {
                    r.tail = 0;
                }
            }
        }
        Ok(())
    }
}

impl Map {
    fn queue(&self) -> Option<&QueueState> {
        match &self.kind {
            crate::map::Kind::Queue(q) => Some(q),
            _ => None,
        }
    }

    /// Helper 87 `map_push_elem` on a QUEUE or STACK (`value` holds `VS` bytes). `EINVAL` on
    /// other map types and for flags other than `BPF_ANY` / `BPF_EXIST`, `E2BIG` when full
    /// without `BPF_EXIST`, `EPERM` on a `BPF_F_RDONLY_PROG` map.
    pub fn prog_push(&self, cpu: crate::CpuId, value: &[u8], flags: u64) -> Result<(), MapError> {
        self.check_prog(cpu)?;
        let q = self.queue().ok_or(MapError::InvalidOperation {
            op: "helper map_push_elem",
            map_type: self.spec.map_type,
        })?;
        q.push(
            Map::buf_in("value", value, self.spec.value_size as usize)?,
            flags,
        )
    }

    /// The values of a QUEUE or STACK in the order pops would return them, without taking
    /// them out: an inspection for listings and tests (the kernel has no such command).
    /// `EINVAL` on other map types, `EPERM` when the host may not read the map.
    pub fn queue_values(&self) -> Result<Vec<Vec<u8>>, MapError> {
        self.check_perm(crate::map::Perm::Read)?;
        let q = self.queue().ok_or(MapError::InvalidOperation {
            op: "queue_values",
            map_type: self.spec.map_type,
        })?;
        q.values(self.spec.value_size as usize)
    }

    /// Helpers 88 `map_pop_elem` (`delete`) and 89 `map_peek_elem`: copy the next value into
    /// `out` (`VS` bytes). Empty: `out` zeroed and `ENOENT`; `EINVAL` on other map types;
    /// `EPERM` for a pop from a `BPF_F_RDONLY_PROG` map (the verifier refuses it).
    pub fn prog_pop(
        &self,
        cpu: crate::CpuId,
        out: &mut [u8],
        delete: bool,
    ) -> Result<(), MapError> {
        if delete {
            self.check_prog(cpu)?;
        } else if cpu.0 >= self.ncpus {
            return Err(MapError::CpuOutOfRange {
                cpu: u64::from(cpu.0),
                ncpus: self.ncpus,
            });
        }
        let q = self.queue().ok_or(MapError::InvalidOperation {
            op: if delete {
                "helper map_pop_elem"
            } else {
                "helper map_peek_elem"
            },
            map_type: self.spec.map_type,
        })?;
        let vs = self.spec.value_size as usize;
        q.get(Map::buf_out("value", out, vs)?, delete)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn state(t: MapType, max: u32) -> QueueState {
        QueueState::new(&MapSpec::new(t, 0, 4, max)).unwrap()
    }

    fn get(q: &QueueState, delete: bool) -> Option<u32> {
        let mut v = [0u8; 4];
        q.get(&mut v, delete).ok().map(|()| u32::from_ne_bytes(v))
    }

    #[test]
    fn queue_is_fifo_and_stack_is_lifo_across_the_wrap() {
        for (t, expect) in [(MapType::Queue, [3, 4, 5]), (MapType::Stack, [5, 4, 3])] {
            let q = state(t, 3);
            // Fill, drain twice to move the ring positions past the end.
            for round in 0..2u32 {
                for i in 0..3 {
                    q.push(&(i + round).to_ne_bytes(), 0).unwrap();
                }
                while get(&q, true).is_some() {}
            }
            for i in 3..6u32 {
                q.push(&i.to_ne_bytes(), 0).unwrap();
            }
            assert_eq!(q.count(), 3);
            let listed: Vec<u32> = q
                .values(4)
                .unwrap()
                .iter()
                .map(|v| u32::from_ne_bytes(v[..].try_into().unwrap()))
                .collect();
            assert_eq!(listed, expect, "{t:?} listing");
            assert_eq!(get(&q, false), Some(expect[0]), "{t:?} peek");
            let got: Vec<u32> = std::iter::from_fn(|| get(&q, true)).collect();
            assert_eq!(got, expect, "{t:?}");
            let mut v = [7u8; 4];
            assert_eq!(q.get(&mut v, false).unwrap_err().errno(), 2);
            assert_eq!(v, [0; 4], "an empty get zeroes the value");
        }
    }

    #[test]
    fn full_push_needs_bpf_exist_which_drops_the_oldest() {
        for t in [MapType::Queue, MapType::Stack] {
            let q = state(t, 2);
            q.push(&1u32.to_ne_bytes(), 0).unwrap();
            q.push(&2u32.to_ne_bytes(), 2).unwrap();
            assert_eq!(q.push(&3u32.to_ne_bytes(), 0).unwrap_err().errno(), 7);
            q.push(&3u32.to_ne_bytes(), 2).unwrap();
            let got: Vec<u32> = std::iter::from_fn(|| get(&q, true)).collect();
            let expect = if t == MapType::Queue { [2, 3] } else { [3, 2] };
            assert_eq!(got, expect, "{t:?}: 1 was the oldest");
            assert_eq!(q.push(&0u32.to_ne_bytes(), 1).unwrap_err().errno(), 22);
            assert_eq!(q.push(&0u32.to_ne_bytes(), 3).unwrap_err().errno(), 22);
        }
    }
}
