//! PERF_EVENT_ARRAY: an array of perf event buffers, usually one per CPU at the CPU's index,
//! written by `bpf_perf_event_output` (helper 25) and `bpf_xdp_output` (121), read by the host
//! per buffer as a user-space consumer (libbpf's `perf_buffer`) reads its mmap-ed rings.
//!
//! In the kernel, user space opens one `PERF_COUNT_SW_BPF_OUTPUT` event per CPU with
//! `perf_event_open`, maps its ring (2^n data pages) and stores the event's fd at the CPU's
//! index of the map. bpfvm has no file descriptors: [`Map::perf_event_open`] does all of that
//! for one index, [`Map::perf_open_all_cpus`] for every CPU (what `perf_buffer__new` does).
//!
//! ```
//! use bpfvm_maps::{CpuId, Map, MapSpec, MapType, PerfRecord};
//!
//! let events = Map::create(MapSpec::new(MapType::PerfEventArray, 4, 4, 2), 2)?;
//! events.perf_open_all_cpus(1)?; // one 4 KiB buffer per CPU
//! // What a program on CPU 1 does with bpf_perf_event_output(ctx, &events,
//! // BPF_F_CURRENT_CPU, &v, 3):
//! events.perf_output(CpuId(1), u64::from(u32::MAX), &[1, 2, 3])?;
//! // The consumer gets the raw sample padded as the kernel pads it: the u32 size and the
//! // data fill a multiple of 8 bytes.
//! assert_eq!(events.perf_read(1)?, [PerfRecord::Sample(vec![1, 2, 3, 0])]);
//! assert!(events.perf_read(0)?.is_empty());
//! # Ok::<(), bpfvm_maps::MapError>(())
//! ```
//!
//! Space is accounted exactly as the kernel's ring does: a sample takes
//! `8 + round_up(size + 4, 8)` bytes of the ring, a lost-samples record 24, and a write needs
//! `CIRC_SPACE(head, tail)` (the ring size minus the unread bytes minus one) to be at least
//! that; otherwise the sample is lost (`ENOSPC`, counted and reported to the consumer as a
//! [`PerfRecord::Lost`] before the next sample that fits).

use std::collections::BTreeMap;
use std::sync::{Arc, Mutex, MutexGuard, RwLock};

use crate::error::MapError;
use crate::flags::create;
use crate::map::{access_ok, Kind, Map};
use crate::spec::{CpuId, MapSpec};

/// `BPF_F_INDEX_MASK`: the low 32 bits of the helpers' `flags`, the array index.
pub const INDEX_MASK: u64 = 0xffff_ffff;
/// `BPF_F_CURRENT_CPU`: the index of the CPU the program runs on.
pub const CURRENT_CPU: u64 = INDEX_MASK;
/// Size of one ring page.
pub const PAGE_SIZE: u64 = 4096;
/// Most data pages of one buffer here (4 MiB of samples).
pub const MAX_PAGES: u32 = 1024;
/// Bytes of a `PERF_RECORD_LOST` record (header, id, count).
const LOST_RECORD: u64 = 24;

/// `fd_array_map_alloc_check` + `array_map_alloc_check` for PERF_EVENT_ARRAY.
pub(crate) fn check_create(spec: &MapSpec) -> Result<(), MapError> {
    let mask = create::NUMA_NODE
        | create::MMAPABLE
        | create::ACCESS_MASK
        | create::PRESERVE_ELEMS
        | create::INNER_MAP;
    let f = spec.map_flags;
    let reason = if spec.value_size != 4 {
        "a perf event array's value is a u32 (an event fd)"
    } else if f & (create::RDONLY_PROG | create::WRONLY_PROG) != 0 {
        "BPF_F_RDONLY_PROG / BPF_F_WRONLY_PROG are not supported on a perf event array"
    } else if spec.max_entries == 0 || spec.key_size != 4 || f & !mask != 0 || !access_ok(f) {
        "a perf event array needs key_size 4, max_entries > 0 and array flags"
    } else if f & (create::MMAPABLE | create::INNER_MAP) != 0 {
        "BPF_F_MMAPABLE / BPF_F_INNER_MAP need ARRAY"
    } else {
        return Ok(());
    };
    Err(MapError::InvalidSpec { reason })
}

/// What a consumer reads from a perf buffer.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum PerfRecord {
    /// A `PERF_RECORD_SAMPLE` with `PERF_SAMPLE_RAW`: the bytes the program passed (then the
    /// packet bytes of `BPF_F_CTXLEN_MASK`) and padding up to `round_up(size + 4, 8) - 4`
    /// bytes, exactly what libbpf hands its sample callback. As in the kernel, the padding
    /// is not written: it holds whatever the ring held there (zero until the ring wraps).
    Sample(Vec<u8>),
    /// A `PERF_RECORD_LOST`: this many samples did not fit since the last record.
    Lost(u64),
}

#[derive(Debug)]
struct Ring {
    head: u64,
    tail: u64,
    lost: u64,
    /// The ring's bytes, as the kernel's data pages: records are written at `head`, and the
    /// padding of a sample is skipped, not written, so it shows whatever the ring held there
    /// before (zero at first), exactly as a consumer of the kernel's ring sees it.
    data: Vec<u8>,
}

impl Ring {
    /// Writes `bytes` at position `at`, wrapping at the end of the ring.
    fn put(&mut self, at: u64, bytes: &[u8]) {
        let n = self.data.len();
        let off = (at % n as u64) as usize;
        let first = bytes.len().min(n - off);
        self.data[off..off + first].copy_from_slice(&bytes[..first]);
        self.data[..bytes.len() - first].copy_from_slice(&bytes[first..]);
    }

    /// Copies the ring's bytes from position `at`, wrapping.
    fn get(&self, at: u64, out: &mut [u8]) {
        let n = self.data.len();
        let off = (at % n as u64) as usize;
        let first = out.len().min(n - off);
        out[..first].copy_from_slice(&self.data[off..off + first]);
        let rest = out.len() - first;
        out[first..].copy_from_slice(&self.data[..rest]);
    }
}

/// `PERF_RECORD_LOST` and `PERF_RECORD_SAMPLE`.
const RECORD_LOST: u32 = 2;
const RECORD_SAMPLE: u32 = 9;
/// `PERF_RECORD_MISC_KERNEL`: samples of BPF programs come from kernel context.
const MISC_KERNEL: u16 = 1;

fn header(kind: u32, misc: u16, size: u64) -> [u8; 8] {
    let mut h = [0u8; 8];
    h[..4].copy_from_slice(&kind.to_ne_bytes());
    h[4..6].copy_from_slice(&misc.to_ne_bytes());
    h[6..8].copy_from_slice(&(size as u16).to_ne_bytes());
    h
}

/// One perf event's ring buffer, bound to a CPU.
#[derive(Debug)]
struct PerfBuffer {
    cpu: u32,
    /// The event's id, written in lost-samples records.
    id: u64,
    data_size: u64,
    ring: Mutex<Ring>,
}

impl PerfBuffer {
    fn ring(&self) -> MutexGuard<'_, Ring> {
        // Updates of the ring are plain stores after fallible allocations.
        self.ring.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// `perf_event_output` of a raw sample of `parts` (data, then packet bytes).
    fn output(&self, parts: &[&[u8]]) -> Result<(), MapError> {
        let sum: usize = parts.iter().map(|p| p.len()).sum();
        let raw = (sum + 4).div_ceil(8) * 8 - 4;
        let mut r = self.ring();
        let sample_size = 8 + 4 + raw as u64;
        let mut size = sample_size;
        if r.lost > 0 {
            size += LOST_RECORD;
        }
        // The record size is a u16 in its header; CIRC_SPACE(head, tail, size) =
        // (tail - (head + 1)) & (size - 1).
        let space = r.tail.wrapping_sub(r.head + 1) & (self.data_size - 1);
        if space < size || sample_size > u64::from(u16::MAX) {
            r.lost += 1;
            return Err(MapError::NoSpaceLeft {
                what: "perf buffer full, sample lost",
            });
        }
        let mut at = r.head;
        if r.lost > 0 {
            let lost = std::mem::take(&mut r.lost);
            let mut rec = header(RECORD_LOST, 0, LOST_RECORD).to_vec();
            rec.extend(self.id.to_ne_bytes());
            rec.extend(lost.to_ne_bytes());
            r.put(at, &rec);
            at += LOST_RECORD;
        }
        r.put(at, &header(RECORD_SAMPLE, MISC_KERNEL, sample_size));
        r.put(at + 8, &(raw as u32).to_ne_bytes());
        let mut p = at + 12;
        for part in parts {
            r.put(p, part);
            p += part.len() as u64;
        }
        r.head += size;
        Ok(())
    }

    /// Parses every record from `tail` to `head`, as a consumer of the mmap-ed ring does,
    /// and moves `tail` to `head`.
    fn read(&self) -> Result<Vec<PerfRecord>, MapError> {
        let mut r = self.ring();
        let mut out = Vec::new();
        let mut pos = r.tail;
        while pos < r.head {
            let mut h = [0u8; 8];
            r.get(pos, &mut h);
            let kind = u32::from_ne_bytes([h[0], h[1], h[2], h[3]]);
            let size = u64::from(u16::from_ne_bytes([h[6], h[7]]));
            let mut body = Vec::new();
            body.try_reserve_exact(size as usize)
                .map_err(|_| MapError::OutOfMemory {
                    reason: "perf record copy",
                })?;
            body.resize(size as usize - 8, 0);
            r.get(pos + 8, &mut body);
            out.push(if kind == RECORD_LOST {
                PerfRecord::Lost(u64::from_ne_bytes(body[8..16].try_into().expect("8 bytes")))
            } else {
                PerfRecord::Sample(body[4..].to_vec())
            });
            pos += size;
        }
        r.tail = r.head;
        Ok(out)
    }
}

/// The state of a PERF_EVENT_ARRAY: the events attached at each index.
#[derive(Debug, Default)]
pub(crate) struct PerfEventArray {
    events: RwLock<BTreeMap<u32, Arc<PerfBuffer>>>,
}

impl PerfEventArray {
    pub(crate) fn count(&self) -> u32 {
        self.events.read().unwrap_or_else(|p| p.into_inner()).len() as u32
    }

    fn get(&self, index: u32) -> Option<Arc<PerfBuffer>> {
        let events = self.events.read().unwrap_or_else(|p| p.into_inner());
        events.get(&index).cloned()
    }

    fn set(&self, index: u32, event: Option<Arc<PerfBuffer>>) -> bool {
        let mut events = self.events.write().unwrap_or_else(|p| p.into_inner());
        match event {
            Some(e) => events.insert(index, e).is_some(),
            None => events.remove(&index).is_some(),
        }
    }

    /// `fd_array_map_delete_elem`.
    pub(crate) fn delete(&self, map: &Map, key: &[u8]) -> Result<(), MapError> {
        let index = u32::from_ne_bytes([key[0], key[1], key[2], key[3]]);
        if index >= map.spec.max_entries {
            return Err(MapError::IndexOutOfRange {
                index,
                max_entries: map.spec.max_entries,
            });
        }
        if self.set(index, None) {
            Ok(())
        } else {
            Err(MapError::NotFound)
        }
    }

    /// `bpf_fd_array_map_update_elem` from the host: the value would be a perf event fd.
    pub(crate) fn update_host(&self, map: &Map, key: &[u8], flags: u64) -> Result<(), MapError> {
        let index = u32::from_ne_bytes([key[0], key[1], key[2], key[3]]);
        if flags != 0 {
            return Err(MapError::flags(flags, "fd array updates take BPF_ANY"));
        }
        if index >= map.spec.max_entries {
            return Err(MapError::IndexOutOfRange {
                index,
                max_entries: map.spec.max_entries,
            });
        }
        Err(MapError::BadFd {
            reason: "bpfvm has no perf event fds: attach events with Map::perf_event_open",
        })
    }
}

impl Map {
    fn perf(&self) -> Result<&PerfEventArray, MapError> {
        match &self.kind {
            Kind::PerfEvents(p) => Ok(p),
            _ => Err(MapError::InvalidOperation {
                op: "perf event access",
                map_type: self.spec.map_type,
            }),
        }
    }

    /// Attaches a new `PERF_COUNT_SW_BPF_OUTPUT` event of `cpu` with a ring of `pages` data
    /// pages (a power of two, at most [`MAX_PAGES`]) at `index`, replacing any event there
    /// (`perf_event_open` on `cpu` + `mmap` + `BPF_MAP_UPDATE_ELEM(index, fd)`). `E2BIG` for an
    /// index past `max_entries`, `ERANGE` for a CPU `>= N`, `EINVAL` for a bad page count or a
    /// map that is not a perf event array.
    pub fn perf_event_open(&self, index: u32, cpu: CpuId, pages: u32) -> Result<(), MapError> {
        let p = self.perf()?;
        if index >= self.spec.max_entries {
            return Err(MapError::IndexOutOfRange {
                index,
                max_entries: self.spec.max_entries,
            });
        }
        if cpu.0 >= self.ncpus {
            return Err(MapError::CpuOutOfRange {
                cpu: u64::from(cpu.0),
                ncpus: self.ncpus,
            });
        }
        if !pages.is_power_of_two() || pages > MAX_PAGES {
            return Err(MapError::InvalidKey {
                reason: "a perf buffer has a power-of-two number of pages, at most 1024",
            });
        }
        let data_size = u64::from(pages) * PAGE_SIZE;
        let mut data = Vec::new();
        data.try_reserve_exact(data_size as usize)
            .map_err(|_| MapError::OutOfMemory {
                reason: "perf buffer",
            })?;
        data.resize(data_size as usize, 0);
        p.set(
            index,
            Some(Arc::new(PerfBuffer {
                cpu: cpu.0,
                id: u64::from(index) + 1,
                data_size,
                ring: Mutex::new(Ring {
                    head: 0,
                    tail: 0,
                    lost: 0,
                    data,
                }),
            })),
        );
        Ok(())
    }

    /// [`Map::perf_event_open`] for each CPU `i < min(N, max_entries)` at index `i`, as
    /// libbpf's `perf_buffer__new` does.
    pub fn perf_open_all_cpus(&self, pages: u32) -> Result<(), MapError> {
        self.perf()?;
        for cpu in 0..self.ncpus.min(self.spec.max_entries) {
            self.perf_event_open(cpu, CpuId(cpu), pages)?;
        }
        Ok(())
    }

    /// Reads and removes every record of the event at `index`, oldest first (the consumer
    /// moves `data_tail` to `data_head`). `ENOENT` when no event is attached there.
    pub fn perf_read(&self, index: u32) -> Result<Vec<PerfRecord>, MapError> {
        let e = self.perf()?.get(index).ok_or(MapError::NotFound)?;
        e.read()
    }

    /// Samples the event at `index` lost since its last lost-samples record: the kernel's
    /// `rb->lost`, written into the ring only before the next sample that fits (a consumer
    /// of the ring cannot see it until then). `ENOENT` when no event is attached there.
    pub fn perf_pending_lost(&self, index: u32) -> Result<u64, MapError> {
        let e = self.perf()?.get(index).ok_or(MapError::NotFound)?;
        let lost = e.ring().lost;
        Ok(lost)
    }

    /// The CPU of the event at `index`, if one is attached.
    pub fn perf_event_cpu(&self, index: u32) -> Option<CpuId> {
        Some(CpuId(self.perf().ok()?.get(index)?.cpu))
    }

    /// The program side of helpers 25 and 121 (`__bpf_perf_event_output`), after their own
    /// flag checks: `flags & BPF_F_INDEX_MASK` is the index (`BPF_F_CURRENT_CPU`: `cpu`);
    /// the sample is `parts` concatenated. `E2BIG` for an index past `max_entries`, `ENOENT`
    /// when no event is attached there, `EOPNOTSUPP` when the event belongs to another CPU,
    /// `ENOSPC` when its ring is full (the sample is lost and counted).
    pub fn perf_output_parts(
        &self,
        cpu: CpuId,
        flags: u64,
        parts: &[&[u8]],
    ) -> Result<(), MapError> {
        let p = self.perf()?;
        let mut index = flags & INDEX_MASK;
        if index == CURRENT_CPU {
            index = u64::from(cpu.0);
        }
        if index >= u64::from(self.spec.max_entries) {
            return Err(MapError::IndexOutOfRange {
                index: index as u32,
                max_entries: self.spec.max_entries,
            });
        }
        let e = p.get(index as u32).ok_or(MapError::NotFound)?;
        if e.cpu != cpu.0 {
            return Err(MapError::EventOnOtherCpu {
                index: index as u32,
                event_cpu: e.cpu,
                cpu: cpu.0,
            });
        }
        e.output(parts)
    }

    /// [`Map::perf_output_parts`] of one buffer.
    pub fn perf_output(&self, cpu: CpuId, flags: u64, data: &[u8]) -> Result<(), MapError> {
        self.perf_output_parts(cpu, flags, &[data])
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::MapType;

    fn events(max: u32, ncpus: u32) -> Map {
        Map::create(MapSpec::new(MapType::PerfEventArray, 4, 4, max), ncpus).unwrap()
    }

    #[test]
    fn output_checks_index_event_and_cpu() {
        let m = events(3, 2);
        assert_eq!(m.perf_output(CpuId(0), 0, b"x").unwrap_err().errno(), 2);
        m.perf_open_all_cpus(1).unwrap();
        assert_eq!(m.perf_output(CpuId(0), 3, b"x").unwrap_err().errno(), 7);
        assert_eq!(m.perf_output(CpuId(0), 2, b"x").unwrap_err().errno(), 2);
        assert_eq!(m.perf_output(CpuId(0), 1, b"x").unwrap_err().errno(), 95);
        m.perf_output(CpuId(1), CURRENT_CPU, b"abcde").unwrap();
        m.perf_output(CpuId(1), 1, &[]).unwrap();
        m.perf_output(CpuId(1), 1, b"abcd").unwrap();
        assert_eq!(
            m.perf_read(1).unwrap(),
            [
                PerfRecord::Sample(b"abcde\0\0\0\0\0\0\0".to_vec()),
                PerfRecord::Sample(vec![0; 4]),
                PerfRecord::Sample(b"abcd".to_vec()),
            ]
        );
        assert_eq!(m.perf_read(2).unwrap_err().errno(), 2);
        assert_eq!(m.perf_event_cpu(0), Some(CpuId(0)));
    }

    #[test]
    fn a_full_ring_loses_samples_and_says_how_many() {
        let m = events(1, 1);
        m.perf_event_open(0, CpuId(0), 1).unwrap();
        // 1000-byte samples take 8 + 1008 = 1016 bytes: 4 fit in 4095.
        for i in 0..4u8 {
            m.perf_output(CpuId(0), 0, &[i; 1000]).unwrap();
        }
        for _ in 0..3 {
            assert_eq!(
                m.perf_output(CpuId(0), 0, &[9; 1000]).unwrap_err().errno(),
                28
            );
        }
        assert_eq!(m.perf_read(0).unwrap().len(), 4);
        assert_eq!(m.perf_pending_lost(0).unwrap(), 3, "not in the ring yet");
        m.perf_output(CpuId(0), 0, &[5; 4]).unwrap();
        assert_eq!(m.perf_pending_lost(0).unwrap(), 0);
        assert_eq!(m.perf_pending_lost(1).unwrap_err().errno(), 2);
        assert_eq!(
            m.perf_read(0).unwrap(),
            [PerfRecord::Lost(3), PerfRecord::Sample(vec![5, 5, 5, 5])]
        );
    }

    #[test]
    fn host_updates_and_lookups_are_the_kernels_errors() {
        let m = events(2, 1);
        let k = 1u32.to_ne_bytes();
        assert_eq!(m.update(&k, &5u32.to_ne_bytes(), 0).unwrap_err().errno(), 9);
        assert_eq!(
            m.update(&k, &5u32.to_ne_bytes(), 1).unwrap_err().errno(),
            22
        );
        assert_eq!(
            m.update(&2u32.to_ne_bytes(), &[0; 4], 0)
                .unwrap_err()
                .errno(),
            7
        );
        let mut v = [0u8; 4];
        assert_eq!(m.lookup(&k, &mut v, 0).unwrap_err().errno(), 524);
        assert_eq!(m.delete(&k, 0).unwrap_err().errno(), 2);
        m.perf_event_open(1, CpuId(0), 2).unwrap();
        m.delete(&k, 0).unwrap();
        assert_eq!(m.delete(&2u32.to_ne_bytes(), 0).unwrap_err().errno(), 7);
        let mut next = [0u8; 4];
        m.get_next_key(None, &mut next, 0).unwrap();
        assert_eq!(next, 0u32.to_ne_bytes());
    }
}
