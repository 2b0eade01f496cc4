//! RINGBUF (`kernel/bpf/ringbuf.c`): one buffer of `max_entries` bytes (a power of two and a
//! multiple of the 4 KiB page) shared by all CPUs, written by programs (helpers 130–134) and
//! read by the host in order, as a user-space consumer (libbpf's `ring_buffer__consume`)
//! reads it.
//!
//! Each record is an 8-byte header (`len` with the BUSY bit 31 and DISCARD bit 30, then the
//! page offset) and the data, rounded up to 8 bytes. A reservation fails when the producer
//! position would get `max_entries` or more bytes ahead of the consumer position; the kernel's
//! positions, sizes and `bpf_ringbuf_query` values are reproduced exactly.
//!
//! ```
//! use bpfvm_maps::{Map, MapSpec, MapType};
//!
//! let rb = Map::create(MapSpec::new(MapType::Ringbuf, 0, 0, 4096), 2)?;
//! let r = rb.ringbuf_reserve(5).unwrap(); // what bpf_ringbuf_reserve(&rb, 5, 0) does
//! rb.ringbuf_write(&r, 0, b"hello");
//! rb.ringbuf_commit(&r, false); // bpf_ringbuf_submit
//! assert_eq!(rb.ringbuf_consume()?, Some(b"hello".to_vec()));
//! assert_eq!(rb.ringbuf_consume()?, None);
//! assert_eq!(rb.ringbuf_positions()?, (16, 16)); // 8-byte header + 5 bytes, rounded to 8
//! # Ok::<(), bpfvm_maps::MapError>(())
//! ```
//!
//! Memory: the data area is allocated twice as long as the ring, so a record that wraps
//! around the end is contiguous for the program that fills it (the kernel maps the data pages
//! twice for the same reason); its wrapped tail is copied to the start of the ring when it
//! is committed, before the BUSY bit is cleared.

use std::ptr::NonNull;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Mutex, MutexGuard};

use crate::arena::Slab;
use crate::error::MapError;
use crate::flags::create;
use crate::map::{Kind, Map};
use crate::spec::MapSpec;

/// `BPF_RINGBUF_BUSY_BIT`: the record is reserved and not yet committed.
pub const BUSY_BIT: u32 = 1 << 31;
/// `BPF_RINGBUF_DISCARD_BIT`: the record was discarded; consumers skip it.
pub const DISCARD_BIT: u32 = 1 << 30;
/// `BPF_RINGBUF_HDR_SZ`.
pub const HDR_SZ: u64 = 8;
/// `RINGBUF_MAX_RECORD_SZ` (`UINT_MAX / 4`).
pub const MAX_RECORD_SZ: u64 = (u32::MAX / 4) as u64;
/// Page size of the ring's geometry.
const PAGE_SIZE: u32 = 4096;
/// Pages of `struct bpf_ringbuf` in front of the data (the kernel's `RINGBUF_PGOFF` plus the
/// consumer and producer pages), for the page offset in each record header.
const META_PAGES: u64 = 3;
/// The largest ring this simulator builds (its doubled data area must fit one arena).
pub const MAX_RING_SIZE: u32 = 1 << 30;

/// `BPF_RB_AVAIL_DATA`, `BPF_RB_RING_SIZE`, `BPF_RB_CONS_POS`, `BPF_RB_PROD_POS`: what
/// `bpf_ringbuf_query` (helper 134) reports.
pub mod query {
    /// Bytes produced and not yet consumed.
    pub const AVAIL_DATA: u64 = 0;
    /// The ring's size in bytes.
    pub const RING_SIZE: u64 = 1;
    /// The consumer position.
    pub const CONS_POS: u64 = 2;
    /// The producer position.
    pub const PROD_POS: u64 = 3;
}

/// `ringbuf_map_alloc`'s checks: only `BPF_F_NUMA_NODE`, key and value size 0, `max_entries`
/// a power of two and a multiple of 4096 (`EINVAL`); over [`MAX_RING_SIZE`] is `ENOMEM` here
/// (the kernel allows 64 GiB).
pub(crate) fn check_create(spec: &MapSpec) -> Result<(), MapError> {
    if spec.map_flags & !create::NUMA_NODE != 0 {
        return Err(MapError::InvalidSpec {
            reason: "a ring buffer takes only BPF_F_NUMA_NODE",
        });
    }
    if spec.key_size != 0
        || spec.value_size != 0
        || !spec.max_entries.is_power_of_two()
        || spec.max_entries % PAGE_SIZE != 0
    {
        return Err(MapError::InvalidSpec {
            reason: "a ring buffer needs key and value size 0 and max_entries a power of 2 and a multiple of 4096",
        });
    }
    if spec.max_entries > MAX_RING_SIZE {
        return Err(MapError::OutOfMemory {
            reason: "ring buffers are limited to 1 GiB",
        });
    }
    Ok(())
}

/// A record reserved by [`Map::ringbuf_reserve`]: `size` bytes the producer fills, then
/// commits (submit or discard) exactly once.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Reservation {
    /// Producer position of the record's header.
    pub pos: u64,
    /// Bytes of data (what was asked for).
    pub size: u32,
    /// Offset of the first data byte in the data area ([`Map::ringbuf_data`]); the `size`
    /// bytes from there are contiguous.
    pub offset: usize,
}

/// The state of a RINGBUF map.
#[derive(Debug)]
pub(crate) struct RingBuf {
    mask: u64,
    /// `2 * size` bytes (slot 0 of a one-slot slab): the ring and the room a wrapping record
    /// overflows into until it is committed.
    data: Slab,
    /// `rb->spinlock`: serialises producers.
    producer: Mutex<()>,
    /// Serialises host consumers.
    consumer: Mutex<()>,
    consumer_pos: AtomicU64,
    producer_pos: AtomicU64,
}

fn lock(m: &Mutex<()>) -> MutexGuard<'_, ()> {
    m.lock().unwrap_or_else(|p| p.into_inner())
}

impl RingBuf {
    /// The bytes of its data (twice the ring: the room a wrapping record overflows into),
    /// what a map memory account is charged.
    pub(crate) fn bytes(spec: &MapSpec) -> u64 {
        2 * u64::from(spec.max_entries)
    }

    pub(crate) fn new(spec: &MapSpec) -> Result<RingBuf, MapError> {
        let size = spec.max_entries;
        let bytes = size.checked_mul(2).ok_or(MapError::OutOfMemory {
            reason: "ring buffers are limited to 1 GiB",
        })?;
        Ok(RingBuf {
            mask: u64::from(size) - 1,
            data: Slab::new(1, bytes)?,
            producer: Mutex::new(()),
            consumer: Mutex::new(()),
            consumer_pos: AtomicU64::new(0),
            producer_pos: AtomicU64::new(0),
        })
    }

    fn total(&self) -> u64 {
        self.mask + 1
    }

    /// `__bpf_ringbuf_reserve`.
    pub(crate) fn reserve(&self, size: u64) -> Option<Reservation> {
        if size > MAX_RECORD_SZ {
            return None;
        }
        let len = (size + HDR_SZ).div_ceil(8) * 8;
        if len > self.total() {
            return None;
        }
        let cons = self.consumer_pos.load(Ordering::Acquire);
        let _guard = lock(&self.producer);
        let prod = self.producer_pos.load(Ordering::Relaxed);
        let new_prod = prod + len;
        if new_prod - cons > self.mask {
            return None;
        }
        let off = (prod & self.mask) as usize;
        self.data
            .word32(0, off)
            .store(size as u32 | BUSY_BIT, Ordering::Relaxed);
        let pg_off = META_PAGES + (off as u64 >> 12);
        self.data
            .word32(0, off + 4)
            .store(pg_off as u32, Ordering::Relaxed);
        self.producer_pos.store(new_prod, Ordering::Release);
        Some(Reservation {
            pos: prod,
            size: size as u32,
            offset: off + HDR_SZ as usize,
        })
    }

    /// `bpf_ringbuf_commit`: the wrapped tail copied to the ring's start, then the header's
    /// BUSY bit cleared (and DISCARD set) with release ordering.
    pub(crate) fn commit(&self, r: &Reservation, discard: bool) {
        let total = self.total() as usize;
        let end = r.offset + r.size as usize;
        if end > total {
            let from = r.offset.max(total);
            let mut tail = vec![0u8; end - from];
            self.data.read_at(0, from, &mut tail);
            self.data.write_at(0, from - total, &tail);
        }
        let hdr = r.offset - HDR_SZ as usize;
        let new_len = r.size | if discard { DISCARD_BIT } else { 0 };
        self.data.word32(0, hdr).swap(new_len, Ordering::AcqRel);
    }

    /// The next committed, not discarded record, advancing the consumer position past it
    /// (and past discarded ones); `None` when the next record is busy or there is none.
    pub(crate) fn consume(&self) -> Result<Option<Vec<u8>>, MapError> {
        let _guard = lock(&self.consumer);
        let mut cons = self.consumer_pos.load(Ordering::Relaxed);
        loop {
            let prod = self.producer_pos.load(Ordering::Acquire);
            if cons >= prod {
                return Ok(None);
            }
            let off = (cons & self.mask) as usize;
            let hdr = self.data.word32(0, off).load(Ordering::Acquire);
            if hdr & BUSY_BIT != 0 {
                return Ok(None);
            }
            let size = u64::from(hdr & !(BUSY_BIT | DISCARD_BIT));
            let len = (size + HDR_SZ).div_ceil(8) * 8;
            let record = if hdr & DISCARD_BIT == 0 {
                let mut out = Vec::new();
                out.try_reserve_exact(size as usize)
                    .map_err(|_| MapError::OutOfMemory {
                        reason: "ring buffer record copy",
                    })?;
                out.resize(size as usize, 0);
                self.read_wrapped(cons + HDR_SZ, &mut out);
                Some(out)
            } else {
                None
            };
            cons += len;
            self.consumer_pos.store(cons, Ordering::Release);
            if record.is_some() {
                return Ok(record);
            }
        }
    }

    /// Copies ring bytes from position `pos` on, wrapping at the end of the ring.
    fn read_wrapped(&self, pos: u64, out: &mut [u8]) {
        let total = self.total() as usize;
        let off = (pos & self.mask) as usize;
        let first = out.len().min(total - off);
        let (a, b) = out.split_at_mut(first);
        self.data.read_at(0, off, a);
        self.data.read_at(0, 0, b);
    }

    /// `bpf_ringbuf_query`.
    pub(crate) fn query(&self, flags: u64) -> u64 {
        let cons = self.consumer_pos.load(Ordering::Acquire);
        let prod = self.producer_pos.load(Ordering::Acquire);
        match flags {
            query::AVAIL_DATA => prod - cons,
            query::RING_SIZE => self.total(),
            query::CONS_POS => cons,
            query::PROD_POS => prod,
            _ => 0,
        }
    }
}

impl Map {
    fn ringbuf(&self) -> Result<&RingBuf, MapError> {
        match &self.kind {
            Kind::Ringbuf(r) => Ok(r),
            _ => Err(MapError::InvalidOperation {
                op: "ring buffer access",
                map_type: self.spec.map_type,
            }),
        }
    }

    /// Helper 131 `bpf_ringbuf_reserve(map, size, 0)`: reserves a record of `size` data bytes,
    /// or `None` when it does not fit (the ring is full, or `size` is over the ring or
    /// [`MAX_RECORD_SZ`]) or the map is not a ring buffer. The record must be committed
    /// with [`Map::ringbuf_commit`] exactly once.
    pub fn ringbuf_reserve(&self, size: u64) -> Option<Reservation> {
        self.ringbuf().ok()?.reserve(size)
    }

    /// Helpers 132 `bpf_ringbuf_submit` (`discard` false) and 133 `bpf_ringbuf_discard`:
    /// commits a record from [`Map::ringbuf_reserve`] of this map.
    pub fn ringbuf_commit(&self, r: &Reservation, discard: bool) {
        if let Ok(rb) = self.ringbuf() {
            rb.commit(r, discard);
        }
    }

    /// Copies `bytes` into reserved record `r` at byte `at` (`at + bytes.len() <= r.size`, or
    /// nothing is written): how the host side (and `bpf_ringbuf_output`) fills a record.
    pub fn ringbuf_write(&self, r: &Reservation, at: usize, bytes: &[u8]) {
        let Ok(rb) = self.ringbuf() else {
            return;
        };
        if at + bytes.len() <= r.size as usize {
            rb.data.write_at(0, r.offset + at, bytes);
        }
    }

    /// The data area of a ring buffer: `(first byte, length)` (twice the ring size; see the
    /// module docs). It never moves or frees while the map lives and is only accessed
    /// through atomics. `None` for other map types.
    pub fn ringbuf_data(&self) -> Option<(NonNull<u8>, usize)> {
        let rb = self.ringbuf().ok()?;
        let d = rb.data.descriptor();
        Some((d.base, d.len))
    }

    /// Helper 134 `bpf_ringbuf_query(map, flags)` (0 for unknown flags and other map types).
    pub fn ringbuf_query(&self, flags: u64) -> u64 {
        self.ringbuf().map_or(0, |rb| rb.query(flags))
    }

    /// Reads the next record as a user-space consumer does: the data of the oldest committed
    /// record, skipping discarded ones and advancing the consumer position; `None` when the
    /// ring is empty or its oldest record is still reserved (records come out strictly in
    /// reservation order). `EINVAL` for other map types.
    pub fn ringbuf_consume(&self) -> Result<Option<Vec<u8>>, MapError> {
        self.ringbuf()?.consume()
    }

    /// Every record [`Map::ringbuf_consume`] can read now, in order.
    pub fn ringbuf_drain(&self) -> Result<Vec<Vec<u8>>, MapError> {
        let rb = self.ringbuf()?;
        let mut out = Vec::new();
        while let Some(r) = rb.consume()? {
            out.push(r);
        }
        Ok(out)
    }

    /// `(consumer position, producer position)` of a ring buffer.
    pub fn ringbuf_positions(&self) -> Result<(u64, u64), MapError> {
        let rb = self.ringbuf()?;
        Ok((rb.query(query::CONS_POS), rb.query(query::PROD_POS)))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::{MapSpec, MapType};

    fn ring(size: u32) -> Map {
        Map::create(MapSpec::new(MapType::Ringbuf, 0, 0, size), 1).unwrap()
    }

    fn output(m: &Map, data: &[u8]) -> bool {
        let Some(r) = m.ringbuf_reserve(data.len() as u64) else {
            return false;
        };
        m.ringbuf_write(&r, 0, data);
        m.ringbuf_commit(&r, false);
        true
    }

    #[test]
    fn creation_follows_the_kernel_rules() {
        let e = |k, v, max, f| {
            Map::create(MapSpec::new(MapType::Ringbuf, k, v, max).with_flags(f), 1)
                .map(drop)
                .map_err(|e| e.errno())
        };
        assert_eq!(e(0, 0, 4096, 0), Ok(()));
        assert_eq!(e(0, 0, 4096, create::NUMA_NODE), Ok(()));
        assert_eq!(e(4, 0, 4096, 0), Err(22));
        assert_eq!(e(0, 0, 8192 + 4096, 0), Err(22));
        assert_eq!(e(0, 0, 2048, 0), Err(22));
        assert_eq!(e(0, 0, 4096, create::NO_PREALLOC), Err(22));
        assert_eq!(e(0, 0, 0, 0), Err(22));
    }

    #[test]
    fn full_ring_drops_and_records_keep_their_order_across_the_wrap() {
        let m = ring(4096);
        // 1000 data bytes take 1008: four fit (4032 <= 4095), the fifth does not.
        let rec = |i: u8| vec![i; 1000];
        for i in 0..4 {
            assert!(output(&m, &rec(i)));
        }
        assert!(!output(&m, &rec(4)), "a full ring drops the record");
        assert_eq!(m.ringbuf_query(query::AVAIL_DATA), 4032);
        assert_eq!(m.ringbuf_consume().unwrap(), Some(rec(0)));
        // The next record starts at 4032 and wraps around the end of the ring.
        assert!(output(&m, &rec(5)));
        let got = m.ringbuf_drain().unwrap();
        assert_eq!(got, [rec(1), rec(2), rec(3), rec(5)]);
        assert_eq!(m.ringbuf_positions().unwrap(), (5040, 5040));
        assert_eq!(m.ringbuf_query(query::RING_SIZE), 4096);
        assert_eq!(m.ringbuf_query(99), 0);
    }

    #[test]
    fn busy_records_block_the_consumer_and_discarded_ones_are_skipped() {
        let m = ring(4096);
        let a = m.ringbuf_reserve(3).unwrap();
        let b = m.ringbuf_reserve(9).unwrap();
        assert_eq!((a.pos, b.pos), (0, 16));
        m.ringbuf_write(&b, 0, &[7; 9]);
        m.ringbuf_commit(&b, false);
        assert_eq!(m.ringbuf_consume().unwrap(), None, "a is still reserved");
        m.ringbuf_commit(&a, true);
        assert_eq!(m.ringbuf_consume().unwrap(), Some(vec![7; 9]));
        assert_eq!(m.ringbuf_positions().unwrap(), (40, 40));
        // Sizes: header + data, rounded to 8, must stay below the ring size.
        assert!(m.ringbuf_reserve(4081).is_none());
        let big = m.ringbuf_reserve(4080).unwrap();
        m.ringbuf_commit(&big, false);
        assert_eq!(m.ringbuf_consume().unwrap().map(|r| r.len()), Some(4080));
    }
}
