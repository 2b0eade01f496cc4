//! The kernel's event buffers as a user-space consumer sees them: a RINGBUF map's mmap-ed
//! consumer and producer pages (`libbpf`'s `ring_buffer`), and `PERF_COUNT_SW_BPF_OUTPUT`
//! perf events with their mmap-ed rings (`libbpf`'s `perf_buffer`).
//!
//! Soundness: every mapping is made here with the length used for every access, unmapped
//! once in `Drop`, and the kernel's concurrent writes are only read after an acquire load of
//! the position that publishes them (the kernel's own protocol for these buffers).

use std::os::fd::{AsRawFd, FromRawFd, OwnedFd, RawFd};
use std::ptr::NonNull;
use std::sync::atomic::{AtomicU32, AtomicU64, Ordering};

use super::{last_errno, MapFd};
use crate::kernel::errno::Errno;
use crate::kernel::events::RawPerfRecord;

/// `PERF_FLAG_FD_CLOEXEC`.
const PERF_FLAG_FD_CLOEXEC: libc::c_ulong = 8;

fn page_size() -> Result<usize, Errno> {
    // SAFETY: sysconf has no preconditions.
    let page = unsafe { libc::sysconf(libc::_SC_PAGESIZE) };
    usize::try_from(page).map_err(|_| Errno::EINVAL)
}

/// `mmap(NULL, len, prot, MAP_SHARED, fd, off)`.
fn map_shared(fd: RawFd, len: usize, prot: i32, off: usize) -> Result<NonNull<u8>, Errno> {
    let off = libc::off_t::try_from(off).map_err(|_| Errno::EINVAL)?;
    // SAFETY: a new shared mapping at an address of the kernel's choosing touches no
    // existing memory; the kernel checks `fd`, `len` and `off`.
    let p = unsafe { libc::mmap(std::ptr::null_mut(), len, prot, libc::MAP_SHARED, fd, off) };
    if p == libc::MAP_FAILED {
        return Err(last_errno());
    }
    NonNull::new(p.cast::<u8>()).ok_or(Errno::EINVAL)
}

/// A mapping made by [`map_shared`], unmapped on drop.
#[derive(Debug)]
struct Mapping {
    base: NonNull<u8>,
    len: usize,
}

impl Mapping {
    /// The atomic u64 at byte `off` (8-aligned, `off + 8 <= len`).
    fn u64_at(&self, off: usize) -> &AtomicU64 {
        assert!(
            off % 8 == 0 && off + 8 <= self.len,
            "mapping access out of range"
        );
        // SAFETY: in bounds and aligned (checked; mappings are page-aligned); the kernel
        // accesses these words atomically too; the reference lives no longer than `self`.
        unsafe { AtomicU64::from_ptr(self.base.as_ptr().add(off).cast()) }
    }

    /// The atomic u32 at byte `off` (4-aligned, `off + 4 <= len`).
    fn u32_at(&self, off: usize) -> &AtomicU32 {
        assert!(
            off % 4 == 0 && off + 4 <= self.len,
            "mapping access out of range"
        );
        // SAFETY: as in `u64_at`.
        unsafe { AtomicU32::from_ptr(self.base.as_ptr().add(off).cast()) }
    }

    /// Copies `out.len()` bytes at byte `off`.
    fn read(&self, off: usize, out: &mut [u8]) {
        assert!(off + out.len() <= self.len, "mapping access out of range");
        // SAFETY: in bounds (checked); the bytes were published by the kernel before the
        // caller's acquire load of the position that covers them and are not written again
        // until the consumer moves its position past them.
        unsafe {
            std::ptr::copy_nonoverlapping(self.base.as_ptr().add(off), out.as_mut_ptr(), out.len())
        };
    }
}

impl Drop for Mapping {
    fn drop(&mut self) {
        // SAFETY: exactly the mapping `map_shared` made, unmapped once.
        unsafe {
            libc::munmap(self.base.as_ptr().cast(), self.len);
        }
    }
}

// SAFETY: the mapping is plain shared memory accessed through atomics and bounded copies.
unsafe impl Send for Mapping {}

/// A RINGBUF map mapped as libbpf maps it: the consumer page read-write, the producer page
/// and (twice) the data pages read-only.
#[derive(Debug)]
pub(crate) struct RingbufMmap {
    consumer: Mapping,
    producer: Mapping,
    page: usize,
    size: usize,
}

impl RingbufMmap {
    /// Maps ring buffer `map` (of `max_entries` data bytes).
    pub(crate) fn new(map: &MapFd) -> Result<RingbufMmap, Errno> {
        let page = page_size()?;
        let size = map.shape().max_entries as usize;
        let fd = map.raw();
        let consumer = Mapping {
            base: map_shared(fd, page, libc::PROT_READ | libc::PROT_WRITE, 0)?,
            len: page,
        };
        let len = page + 2 * size;
        let producer = Mapping {
            base: map_shared(fd, len, libc::PROT_READ, page)?,
            len,
        };
        Ok(RingbufMmap {
            consumer,
            producer,
            page,
            size,
        })
    }

    /// `(consumer position, producer position)`.
    pub(crate) fn positions(&self) -> (u64, u64) {
        (
            self.consumer.u64_at(0).load(Ordering::Acquire),
            self.producer.u64_at(0).load(Ordering::Acquire),
        )
    }

    /// The next committed record (skipping discarded ones), advancing the consumer
    /// position; `None` when the ring is empty or the next record is still busy.
    pub(crate) fn consume(&self) -> Option<Vec<u8>> {
        const BUSY: u32 = 1 << 31;
        const DISCARD: u32 = 1 << 30;
        let mask = self.size as u64 - 1;
        loop {
            let (cons, prod) = self.positions();
            if cons >= prod {
                return None;
            }
            let off = self.page + (cons & mask) as usize;
            let hdr = self.producer.u32_at(off).load(Ordering::Acquire);
            if hdr & BUSY != 0 {
                return None;
            }
            let len = (hdr & !(BUSY | DISCARD)) as usize;
            let record = (hdr & DISCARD == 0).then(|| {
                let mut out = vec![0u8; len];
                self.producer.read(off + 8, &mut out);
                out
            });
            let total = (len as u64 + 8).div_ceil(8) * 8;
            self.consumer
                .u64_at(0)
                .store(cons + total, Ordering::Release);
            if record.is_some() {
                return record;
            }
        }
    }
}

/// A `PERF_TYPE_SOFTWARE` / `PERF_COUNT_SW_BPF_OUTPUT` event on one CPU (all tasks) with
/// `PERF_SAMPLE_RAW`, mapped with `pages` data pages, as libbpf's `perf_buffer` opens it.
#[derive(Debug)]
pub(crate) struct PerfEventBuffer {
    fd: OwnedFd,
    ring: Mapping,
}

/// Bytes of `struct perf_event_attr` passed (`PERF_ATTR_SIZE_VER7`).
const ATTR_SIZE: usize = 128;

impl PerfEventBuffer {
    /// `perf_event_open` on `cpu` and `mmap` of `1 + pages` pages (`pages` a power of two).
    pub(crate) fn open(cpu: u32, pages: usize) -> Result<PerfEventBuffer, Errno> {
        let mut attr = [0u8; ATTR_SIZE];
        let mut put =
            |off: usize, bytes: &[u8]| attr[off..off + bytes.len()].copy_from_slice(bytes);
        put(0, &1u32.to_ne_bytes()); // type: PERF_TYPE_SOFTWARE
        put(4, &(ATTR_SIZE as u32).to_ne_bytes());
        put(8, &10u64.to_ne_bytes()); // config: PERF_COUNT_SW_BPF_OUTPUT
        put(16, &1u64.to_ne_bytes()); // sample_period
        put(24, &(1u64 << 10).to_ne_bytes()); // sample_type: PERF_SAMPLE_RAW
        put(48, &1u32.to_ne_bytes()); // wakeup_events
        let cpu = libc::c_int::try_from(cpu).map_err(|_| Errno::EINVAL)?;
        // SAFETY: `attr` is a live, zero-padded perf_event_attr of the size it declares; the
        // other arguments are plain integers (pid -1: every task, group -1: none).
        let ret = unsafe {
            libc::syscall(
                libc::SYS_perf_event_open,
                attr.as_ptr(),
                -1 as libc::pid_t,
                cpu,
                -1 as libc::c_int,
                PERF_FLAG_FD_CLOEXEC,
            )
        };
        if ret < 0 {
            return Err(last_errno());
        }
        let raw = RawFd::try_from(ret).map_err(|_| Errno::EBADF)?;
        // SAFETY: `raw` was just returned by perf_event_open; nothing else owns it.
        let fd = unsafe { OwnedFd::from_raw_fd(raw) };
        let len = (1 + pages) * page_size()?;
        let ring = Mapping {
            base: map_shared(fd.as_raw_fd(), len, libc::PROT_READ | libc::PROT_WRITE, 0)?,
            len,
        };
        Ok(PerfEventBuffer { fd, ring })
    }

    /// The event's fd (what a PERF_EVENT_ARRAY map stores).
    pub(crate) fn fd(&self) -> RawFd {
        self.fd.as_raw_fd()
    }

    /// Every record since the last read, oldest first; moves `data_tail` to `data_head`.
    pub(crate) fn read(&self) -> Vec<RawPerfRecord> {
        // struct perf_event_mmap_page: data_head, data_tail, data_offset, data_size.
        let head = self.ring.u64_at(1024).load(Ordering::Acquire);
        let tail = self.ring.u64_at(1032).load(Ordering::Relaxed);
        let data_offset = self.ring.u64_at(1040).load(Ordering::Relaxed) as usize;
        let data_size = self.ring.u64_at(1048).load(Ordering::Relaxed);
        let mut out = Vec::new();
        let mut pos = tail;
        let read = |at: u64, buf: &mut [u8]| {
            for (i, b) in buf.iter_mut().enumerate() {
                let off = (at + i as u64) % data_size;
                let mut one = [0u8; 1];
                self.ring.read(data_offset + off as usize, &mut one);
                *b = one[0];
            }
        };
        while pos < head {
            let mut hdr = [0u8; 8];
            read(pos, &mut hdr);
            let kind = u32::from_ne_bytes(hdr[..4].try_into().expect("4 bytes"));
            let size = u64::from(u16::from_ne_bytes(hdr[6..8].try_into().expect("2 bytes")));
            if size < 8 {
                break;
            }
            let mut body = vec![0u8; size as usize - 8];
            read(pos + 8, &mut body);
            out.push(match kind {
                9 if body.len() >= 4 => {
                    let n = u32::from_ne_bytes(body[..4].try_into().expect("4 bytes")) as usize;
                    RawPerfRecord::Sample(body[4..4 + n.min(body.len() - 4)].to_vec())
                }
                2 if body.len() >= 16 => RawPerfRecord::Lost(u64::from_ne_bytes(
                    body[8..16].try_into().expect("8 bytes"),
                )),
                other => RawPerfRecord::Other(other),
            });
            pos += size;
        }
        self.ring.u64_at(1032).store(head, Ordering::Release);
        out
    }
}
