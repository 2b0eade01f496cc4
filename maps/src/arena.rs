//! The value arena: all value memory of a map in one 8-byte aligned allocation.
//!
//! This is the only module of the crate that uses `unsafe`. It owns the allocation and
//! exposes safe, bounds-checked copies; every access to arena bytes goes through relaxed
//! atomics (8 bytes at a time where a whole aligned word is covered, 1 byte otherwise), so
//! host copies racing with program accesses are not data races in Rust's sense. As in the
//! kernel, concurrent writers of the same bytes may interleave: a reader can see a value
//! half old, half new, but never a torn byte.
#![allow(unsafe_code)]

use std::alloc::{self, Layout};
use std::ptr::NonNull;
use std::sync::atomic::{AtomicU32, AtomicU64, AtomicU8, Ordering::Relaxed};

use crate::error::MapError;

/// Largest arena this simulator builds: guest addresses give each map a 32-bit region.
pub(crate) const MAX_ARENA_BYTES: usize = u32::MAX as usize;

/// Where a map's value memory lives, for engines that hand out pointers (spec: never moves
/// or frees while the map lives).
///
/// Layout: slot `k` starts at `base + k * stride`, `stride = round_up(value_size, 8)`, and
/// its first `value_size` bytes are the value (the rest is padding that reads back as 0 on
/// the host side).
/// - ARRAY, HASH, LRU_HASH, CGROUP_STORAGE: one slot per element (`k = element`).
/// - Per-CPU maps: one area per CPU, like the kernel's per-CPU areas. CPU `c`'s copy of
///   element `e` is slot `k = c * span + e`, where `span` is the number of elements plus
///   padding slots covering at least 128 bytes (none when `N = 1`), so two CPUs' copies never
///   share a cache line: simulated CPUs on different host threads do not slow each other
///   down. Padding slots are never handed out and never read by the host.
///
/// For HASH an element index is an internal node (there are `max_entries + N` of them,
/// like the kernel's per-CPU "extra" elements); for arrays it is the index.
#[derive(Debug, Clone, Copy)]
pub struct ValueArena {
    /// First byte of the allocation (dangling but aligned when `len == 0`).
    pub base: NonNull<u8>,
    /// Length of the allocation in bytes (a multiple of `stride`).
    pub len: usize,
    /// Distance between slots: `round_up(value_size, 8)`.
    pub stride: usize,
    /// Usable bytes at the start of each slot.
    pub value_size: usize,
}

// SAFETY: a ValueArena is only an address and sizes; dereferencing `base` is up to the user
// (who must use atomics, as this module does), so sharing the descriptor is harmless.
unsafe impl Send for ValueArena {}
// SAFETY: as above; the descriptor itself is immutable.
unsafe impl Sync for ValueArena {}

impl ValueArena {
    /// Number of slots.
    pub fn slots(&self) -> usize {
        self.len.checked_div(self.stride).unwrap_or(0)
    }

    /// True when `ptr` points at the start of a slot of this arena.
    pub fn contains_slot_start(&self, ptr: NonNull<u8>) -> bool {
        let (b, p) = (self.base.as_ptr() as usize, ptr.as_ptr() as usize);
        p >= b && p < b + self.len && (p - b) % self.stride == 0
    }
}

/// The owned allocation behind a [`ValueArena`].
pub(crate) struct Slab {
    words: Box<[AtomicU64]>,
    stride: usize,
    /// `words.len() * 8 / stride`, kept so that no access pays for a division.
    slots: usize,
    value_size: usize,
}

impl std::fmt::Debug for Slab {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Slab")
            .field("len", &(self.words.len() * 8))
            .field("stride", &self.stride)
            .finish()
    }
}

fn zeroed_words(n: usize) -> Result<Box<[AtomicU64]>, MapError> {
    if n == 0 {
        return Ok(Box::new([]));
    }
    let layout = Layout::array::<AtomicU64>(n).map_err(|_| MapError::OutOfMemory {
        reason: "value arena too large",
    })?;
    // SAFETY: `layout` has a non-zero size (n > 0).
    let ptr = unsafe { alloc::alloc_zeroed(layout) }.cast::<AtomicU64>();
    if ptr.is_null() {
        return Err(MapError::OutOfMemory {
            reason: "value arena allocation failed",
        });
    }
    // SAFETY: `ptr` was allocated by the global allocator with the layout of `[AtomicU64; n]`,
    // which is the layout `Box<[AtomicU64]>` frees with; all-zero bytes are a valid AtomicU64.
    Ok(unsafe { Box::from_raw(std::ptr::slice_from_raw_parts_mut(ptr, n)) })
}

impl Slab {
    /// Bytes of an arena of `slots` slots for values of `value_size` bytes; `ENOMEM` over
    /// [`MAX_ARENA_BYTES`].
    pub(crate) fn bytes_for(slots: usize, value_size: u32) -> Result<usize, MapError> {
        let stride = (value_size as usize).div_ceil(8) * 8;
        slots
            .checked_mul(stride)
            .filter(|&b| b <= MAX_ARENA_BYTES)
            .ok_or(MapError::OutOfMemory {
                reason: "value arena larger than 4 GiB",
            })
    }

    /// A zeroed arena of `slots` slots for values of `value_size` bytes.
    pub(crate) fn new(slots: usize, value_size: u32) -> Result<Slab, MapError> {
        let bytes = Slab::bytes_for(slots, value_size)?;
        let value_size = value_size as usize;
        let stride = value_size.div_ceil(8) * 8;
        Ok(Slab {
            words: zeroed_words(bytes / 8)?,
            stride,
            slots: if stride == 0 { 0 } else { slots },
            value_size,
        })
    }

    pub(crate) fn stride(&self) -> usize {
        self.stride
    }

    pub(crate) fn descriptor(&self) -> ValueArena {
        let base = NonNull::new(self.words.as_ptr().cast_mut().cast::<u8>())
            .unwrap_or(NonNull::dangling());
        ValueArena {
            base,
            len: self.words.len() * 8,
            stride: self.stride,
            value_size: self.value_size,
        }
    }

    #[inline]
    fn slots(&self) -> usize {
        self.slots
    }

    /// Pointer to the start of `slot`, or None when out of range.
    #[inline]
    pub(crate) fn ptr(&self, slot: usize) -> Option<NonNull<u8>> {
        if slot >= self.slots() {
            return None;
        }
        let word = slot * self.stride / 8;
        // SAFETY: `word < self.words.len()` because `slot < slots`, so the pointer stays
        // inside the allocation; the result is derived from a non-null slice pointer.
        let p = unsafe { self.words.as_ptr().add(word) };
        NonNull::new(p.cast_mut().cast::<u8>())
    }

    /// The byte at `off` as an atomic; `off` must be `< len` (checked by callers).
    #[inline]
    fn byte(&self, off: usize) -> &AtomicU8 {
        assert!(off < self.words.len() * 8, "arena byte offset out of range");
        // SAFETY: `off` is inside the allocation (asserted above); AtomicU8 has the size and
        // alignment of u8 and may alias the bytes of an AtomicU64 (both are atomic cells
        // over the same memory); the reference lives no longer than `self`.
        unsafe { &*self.words.as_ptr().cast::<AtomicU8>().add(off) }
    }

    #[inline]
    fn check(&self, slot: usize, n: usize) -> usize {
        assert!(
            slot < self.slots() && n <= self.value_size,
            "arena slot access out of range"
        );
        slot * self.stride
    }

    /// Copy the first `out.len()` (`<= value_size`) bytes of `slot` out.
    #[inline]
    pub(crate) fn read(&self, slot: usize, out: &mut [u8]) {
        let off = self.check(slot, out.len());
        let whole = out.len() / 8 * 8;
        let (head, tail) = out.split_at_mut(whole);
        let words = &self.words[off / 8..(off + whole) / 8];
        for (chunk, w) in head.chunks_exact_mut(8).zip(words) {
            chunk.copy_from_slice(&w.load(Relaxed).to_ne_bytes());
        }
        for (i, b) in tail.iter_mut().enumerate() {
            *b = self.byte(off + whole + i).load(Relaxed);
        }
    }

    /// Copy `src` (`<= value_size` bytes) to the start of `slot`.
    #[inline]
    pub(crate) fn write(&self, slot: usize, src: &[u8]) {
        let off = self.check(slot, src.len());
        let whole = src.len() / 8 * 8;
        let (head, tail) = src.split_at(whole);
        let words = &self.words[off / 8..(off + whole) / 8];
        for (chunk, w) in head.chunks_exact(8).zip(words) {
            let mut bytes = [0u8; 8];
            bytes.copy_from_slice(chunk);
            w.store(u64::from_ne_bytes(bytes), Relaxed);
        }
        for (i, b) in tail.iter().enumerate() {
            self.byte(off + whole + i).store(*b, Relaxed);
        }
    }

    /// Copy `src` (`<= value_size` bytes) to the start of `count` slots, `first`,
    /// `first + step`, ...: one value written to every CPU's copy of an element.
    pub(crate) fn write_strided(&self, first: usize, step: usize, count: usize, src: &[u8]) {
        if count == 0 {
            return;
        }
        self.check(first + (count - 1) * step, src.len());
        let whole = src.len() / 8;
        let mut head = [0u64; 8];
        if whole <= head.len() && src.len() % 8 == 0 {
            // The common case (values of up to 64 bytes, a multiple of 8): words prepared
            // once, then plain stores.
            for (w, chunk) in head.iter_mut().zip(src.chunks_exact(8)) {
                let mut bytes = [0u8; 8];
                bytes.copy_from_slice(chunk);
                *w = u64::from_ne_bytes(bytes);
            }
            let (step_words, first_word) = (step * self.stride / 8, first * self.stride / 8);
            for (j, w) in head[..whole].iter().enumerate() {
                let column = self.words[first_word + j..]
                    .iter()
                    .step_by(step_words.max(1));
                for dst in column.take(count) {
                    dst.store(*w, Relaxed);
                }
            }
        } else {
            for k in 0..count {
                self.write(first + k * step, src);
            }
        }
    }

    /// Copy `src` into `slot` starting at byte `at` (`at + src.len() <= value_size`).
    pub(crate) fn write_at(&self, slot: usize, at: usize, src: &[u8]) {
        assert!(
            at + src.len() <= self.value_size,
            "arena slot access out of range"
        );
        let off = self.check(slot, 0) + at;
        let mut i = 0;
        while i < src.len() {
            if (off + i) % 8 == 0 && i + 8 <= src.len() {
                let mut w = [0u8; 8];
                w.copy_from_slice(&src[i..i + 8]);
                self.words[(off + i) / 8].store(u64::from_ne_bytes(w), Relaxed);
                i += 8;
            } else {
                self.byte(off + i).store(src[i], Relaxed);
                i += 1;
            }
        }
    }

    /// Copy `out.len()` bytes of `slot` starting at byte `at` (`at + out.len() <=
    /// value_size`) with the access widths of [`Slab::write_at`]: 8-byte atomics only on whole
    /// aligned words inside the range, bytes otherwise, so bytes outside the range (such as a
    /// `bpf_spin_lock` word another thread is taking) are never touched, not even by a wider
    /// load.
    pub(crate) fn read_at(&self, slot: usize, at: usize, out: &mut [u8]) {
        assert!(
            at + out.len() <= self.value_size,
            "arena slot access out of range"
        );
        let off = self.check(slot, 0) + at;
        let mut i = 0;
        while i < out.len() {
            if (off + i) % 8 == 0 && i + 8 <= out.len() {
                let w = self.words[(off + i) / 8].load(Relaxed);
                out[i..i + 8].copy_from_slice(&w.to_ne_bytes());
                i += 8;
            } else {
                out[i] = self.byte(off + i).load(Relaxed);
                i += 1;
            }
        }
    }

    /// The 4-byte word at byte `at` of `slot` (`at` a multiple of 4, `at + 4 <= value_size`).
    pub(crate) fn word32(&self, slot: usize, at: usize) -> &AtomicU32 {
        assert!(
            at % 4 == 0 && at + 4 <= self.value_size,
            "arena word access out of range"
        );
        let off = self.check(slot, 0) + at;
        // SAFETY: `off` is inside the allocation (checked above) and 4-byte aligned (slots
        // start 8-aligned, `at` is a multiple of 4); AtomicU32 may alias the bytes of the
        // AtomicU64 cell it lies in; the reference lives no longer than `self`.
        unsafe {
            &*self
                .words
                .as_ptr()
                .cast::<u8>()
                .add(off)
                .cast::<AtomicU32>()
        }
    }

    /// Zero the `value_size` bytes of `slot`.
    pub(crate) fn zero(&self, slot: usize) {
        let off = self.check(slot, self.value_size);
        let mut i = 0;
        while i + 8 <= self.value_size {
            self.words[(off + i) / 8].store(0, Relaxed);
            i += 8;
        }
        while i < self.value_size {
            self.byte(off + i).store(0, Relaxed);
            i += 1;
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn write_strided_writes_every_step_th_slot_and_nothing_else() {
        // Value sizes on the fast path (8, 64), past it (72) and with a byte tail (13).
        for value_size in [8u32, 13, 64, 72] {
            let s = Slab::new(20, value_size).unwrap();
            let src: Vec<u8> = (1..=value_size as u8).collect();
            s.write_strided(1, 6, 3, &src);
            for slot in 0..20 {
                let mut out = vec![0xeeu8; value_size as usize];
                s.read(slot, &mut out);
                let expected = if [1, 7, 13].contains(&slot) {
                    src.clone()
                } else {
                    vec![0; value_size as usize]
                };
                assert_eq!(out, expected, "value_size {value_size}, slot {slot}");
            }
            // Zero copies: nothing written, even at a slot that exists.
            s.write_strided(0, 1, 0, &src);
            let mut out = vec![0xeeu8; value_size as usize];
            s.read(0, &mut out);
            assert_eq!(out, vec![0; value_size as usize], "count 0 wrote slot 0");
        }
    }

    #[test]
    #[should_panic(expected = "out of range")]
    fn write_strided_past_the_end_is_refused_before_writing() {
        let s = Slab::new(10, 8).unwrap();
        s.write_strided(0, 4, 4, &[1; 8]);
    }

    #[test]
    fn slots_are_stride_apart_and_start_zeroed() {
        let s = Slab::new(4, 12).unwrap();
        assert_eq!(s.stride(), 16);
        let d = s.descriptor();
        assert_eq!(d.len, 64);
        assert_eq!(d.slots(), 4);
        let p0 = s.ptr(0).unwrap().as_ptr() as usize;
        let p3 = s.ptr(3).unwrap().as_ptr() as usize;
        assert_eq!(p3 - p0, 48);
        assert_eq!(p0 % 8, 0);
        assert!(s.ptr(4).is_none());
        let mut out = [1u8; 12];
        s.read(2, &mut out);
        assert_eq!(out, [0; 12]);
    }

    #[test]
    fn write_read_round_trip_and_padding_untouched() {
        let s = Slab::new(2, 11).unwrap();
        let v: Vec<u8> = (1..=11).collect();
        s.write(1, &v);
        let mut out = [0u8; 11];
        s.read(1, &mut out);
        assert_eq!(&out[..], &v[..]);
        s.zero(1);
        s.read(1, &mut out);
        assert_eq!(out, [0; 11]);
    }

    #[test]
    fn read_at_copies_a_sub_range() {
        let s = Slab::new(2, 16).unwrap();
        let v: Vec<u8> = (1..=16).collect();
        s.write(1, &v);
        let mut out = [0u8; 4];
        s.read_at(1, 12, &mut out);
        assert_eq!(out, [13, 14, 15, 16]);
        let mut out = [0u8; 8];
        s.read_at(1, 0, &mut out);
        assert_eq!(out, [1, 2, 3, 4, 5, 6, 7, 8]);
    }

    #[test]
    fn huge_arenas_are_enomem_not_aborts() {
        let e = Slab::new(usize::MAX / 2, 64).unwrap_err();
        assert_eq!(e.errno(), 12);
    }
}
