//! Kernel event buffers read as a user-space consumer reads them: a RINGBUF map's records in
//! order ([`KernelRingbuf`]) and a perf event's ring ([`KernelPerfBuffer`]), to compare with
//! `bpfvm_maps::Map::ringbuf_consume` and `Map::perf_read`.

use super::errno::Errno;
use super::map::KernelMap;
use super::sys::{PerfEventBuffer, RingbufMmap};

/// A record read from a perf event's ring.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum RawPerfRecord {
    /// `PERF_RECORD_SAMPLE` with `PERF_SAMPLE_RAW`: the raw bytes (`size` of them).
    Sample(Vec<u8>),
    /// `PERF_RECORD_LOST`: the number of samples lost.
    Lost(u64),
    /// Any other record type.
    Other(u32),
}

/// A RINGBUF map mapped for reading (consumer page writable, data read-only).
#[derive(Debug)]
pub struct KernelRingbuf {
    mmap: RingbufMmap,
}

impl KernelRingbuf {
    /// Maps `map`, which must be a ring buffer (else the kernel's mmap errno).
    pub fn new(map: &KernelMap) -> Result<KernelRingbuf, Errno> {
        Ok(KernelRingbuf {
            mmap: RingbufMmap::new(map.map_fd())?,
        })
    }

    /// The next committed record, skipping discarded ones; `None` when there is none yet.
    pub fn consume(&self) -> Option<Vec<u8>> {
        self.mmap.consume()
    }

    /// Every record readable now, in order.
    pub fn drain(&self) -> Vec<Vec<u8>> {
        std::iter::from_fn(|| self.consume()).collect()
    }

    /// `(consumer position, producer position)`.
    pub fn positions(&self) -> (u64, u64) {
        self.mmap.positions()
    }
}

/// A `PERF_COUNT_SW_BPF_OUTPUT` event on one CPU with its mapped ring, as libbpf's
/// `perf_buffer` opens one per CPU; store [`KernelPerfBuffer::fd`] in a PERF_EVENT_ARRAY.
#[derive(Debug)]
pub struct KernelPerfBuffer {
    buffer: PerfEventBuffer,
}

impl KernelPerfBuffer {
    /// Opens the event on `cpu` with `pages` data pages (a power of two).
    pub fn open(cpu: u32, pages: usize) -> Result<KernelPerfBuffer, Errno> {
        Ok(KernelPerfBuffer {
            buffer: PerfEventBuffer::open(cpu, pages)?,
        })
    }

    /// The event's fd, as a map value.
    pub fn fd(&self) -> u32 {
        self.buffer.fd() as u32
    }

    /// Every record written since the last read, oldest first.
    pub fn read(&self) -> Vec<RawPerfRecord> {
        self.buffer.read()
    }
}
