//! Guest memory: the region table of `docs/internals.md` and checked accessors.
//!
//! A guest address is `(region << 32) | offset`. [`Memory::translate`] checks *all* bytes of
//! an access in O(1): it indexes the table by `addr >> 32` and compares the offset range with
//! that one region. Every access to guest bytes goes through relaxed atomics of the access
//! width (per byte when unaligned), because map value arenas are shared with other simulated
//! CPUs and with the host. This module holds all of the crate's `unsafe` memory code.
//!
//! In [`AddressMode::Host`] (used by the rbpf engines, which hand host pointers to helpers),
//! addresses are raw host pointers and are **not** checked: those engines are not sandboxed.
#![allow(unsafe_code)]

use std::sync::atomic::{AtomicU16, AtomicU32, AtomicU64, AtomicU8, Ordering};

/// Region index of the packet (`data_meta .. data_end`).
pub const REGION_PACKET: u32 = 0;
/// Region index of the stack frames.
pub const REGION_STACK: u32 = 1;
/// Region index of the context (`r1` at entry).
pub const REGION_CTX: u32 = 2;
/// Region index of map handles (never dereferenceable; offset = map index).
pub const REGION_MAP_HANDLES: u32 = 3;
/// Region index of the value arena of map 0; map `i` is at `REGION_MAP_VALUES + i`.
pub const REGION_MAP_VALUES: u32 = 4;
/// Guest offset at which packet bytes start in region 0, so `data` fields are usable 32-bit
/// pointers and address 0 (NULL) faults.
pub const PACKET_OFFSET: u32 = 0x1000_0000;

/// Builds the guest address `(region << 32) | offset`.
pub const fn guest_addr(region: u32, offset: u32) -> u64 {
    ((region as u64) << 32) | offset as u64
}

/// What an access does with the bytes, for permission checks and fault messages.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Access {
    /// A load.
    Read,
    /// A store.
    Write,
    /// An atomic read-modify-write (needs read and write permission and natural alignment).
    Atomic,
}

impl std::fmt::Display for Access {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(match self {
            Access::Read => "read",
            Access::Write => "write",
            Access::Atomic => "atomic",
        })
    }
}

/// A refused guest memory access.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
#[error("invalid {access} of {size} bytes at {addr:#x}{}", if *.misaligned { " (misaligned atomic)" } else { "" })]
pub struct MemFault {
    /// The guest address of the access.
    pub addr: u64,
    /// The access width in bytes.
    pub size: u64,
    /// What the access did.
    pub access: Access,
    /// Whether an otherwise valid atomic access was refused for its alignment.
    pub misaligned: bool,
}

/// How addresses given to helpers are interpreted.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum AddressMode {
    /// Guest addresses checked against the region table (engine `interpreter`).
    #[default]
    Guest,
    /// Raw host pointers, unchecked (rbpf engines; not sandboxed).
    Host,
}

/// One guest region: `len` bytes at host `base`, seen at guest offsets `lo .. lo + len`.
#[derive(Debug, Clone, Copy)]
pub struct Region {
    base: *mut u8,
    lo: u64,
    len: u64,
    /// Non-zero for map arenas: an access must stay inside one value.
    stride: u64,
    value_size: u64,
    writable: bool,
}

impl Region {
    /// A region nothing can access (holes in the table, map handles).
    pub const EMPTY: Region = Region {
        base: std::ptr::null_mut(),
        lo: 0,
        len: 0,
        stride: 0,
        value_size: 0,
        writable: false,
    };

    /// Plain bytes: `len` bytes at `base`, seen from guest offset `lo`.
    ///
    /// # Safety
    /// `base .. base + len` must stay valid for reads (and writes if `writable`) through
    /// atomics for as long as the region is installed in a [`Memory`] that is used.
    pub unsafe fn new(base: *mut u8, lo: u32, len: usize, writable: bool) -> Region {
        Region {
            base,
            lo: lo as u64,
            len: len as u64,
            stride: 0,
            value_size: 0,
            writable,
        }
    }

    /// A map value arena: accesses must stay inside one value of `value_size` bytes at a
    /// multiple of `stride`.
    ///
    /// # Safety
    /// As for [`Region::new`].
    pub unsafe fn arena(
        base: *mut u8,
        len: usize,
        stride: usize,
        value_size: usize,
        writable: bool,
    ) -> Region {
        Region {
            base,
            lo: 0,
            len: len as u64,
            stride: stride.max(1) as u64,
            value_size: value_size as u64,
            writable,
        }
    }

    /// The region of a map's value arena. Only [`Memory::set_map_region`] uses it, and it
    /// keeps the map (hence the arena, see [`ArenaInfo::new`](crate::ArenaInfo::new)) alive
    /// while the region is installed.
    fn from_arena(a: crate::maps::ArenaInfo, writable: bool) -> Region {
        // SAFETY: `ArenaInfo::new`'s contract makes the arena valid while its map lives.
        unsafe {
            Region::arena(
                a.base().as_ptr(),
                a.len(),
                a.stride(),
                a.value_size(),
                writable,
            )
        }
    }

    /// The host address of the region's first byte.
    pub fn base(&self) -> *mut u8 {
        self.base
    }
}

/// Words of padding after each owned buffer (128 bytes).
const OWNED_TAIL_PAD_WORDS: usize = 16;

/// An 8-byte aligned heap buffer owned by a [`Memory`] (stack, context, packet).
#[derive(Debug, Default)]
struct OwnedBuf {
    words: Vec<u64>,
    len: usize,
}

/// The memory a run may touch: a region table indexed by `addr >> 32`.
///
/// Regions either point at memory owned elsewhere (map arenas, installed with the `unsafe`
/// [`Region`] constructors) or at buffers the `Memory` owns itself
/// ([`Memory::set_owned_region`]), which are reused from run to run.
#[derive(Debug, Default)]
pub struct Memory {
    regions: Vec<Region>,
    owned: Vec<OwnedBuf>,
    /// Maps whose arenas are installed, kept alive by the table (index = region).
    keep: Vec<Option<std::sync::Arc<dyn crate::ProgramMap>>>,
    mode: AddressMode,
}

// SAFETY: the raw pointers in `regions` are only dereferenced through atomics by the thread
// that holds the `Memory` (one run at a time per simulated CPU); the constructors' safety
// contract makes the pointed-to memory outlive its installation.
unsafe impl Send for Memory {}
// SAFETY: shared references only read the region table; guest bytes are touched through
// atomics, which are safe to use from several threads.
unsafe impl Sync for Memory {}

impl Memory {
    /// An empty table in guest mode.
    pub fn new() -> Memory {
        Memory::default()
    }

    /// How addresses are interpreted.
    pub fn mode(&self) -> AddressMode {
        self.mode
    }

    /// Switches to host addresses (the rbpf engines): every address later given to this
    /// `Memory` is used as a raw host pointer, unchecked.
    ///
    /// # Safety
    /// Until [`Memory::set_guest_mode`], every address passed to this `Memory` (by helpers,
    /// from the program's registers) must be valid for the access made. That is the rbpf
    /// engines' model and why they are documented as not sandboxed.
    pub unsafe fn set_host_mode(&mut self) {
        self.mode = AddressMode::Host;
    }

    /// Switches back to checked guest addresses (the default).
    pub fn set_guest_mode(&mut self) {
        self.mode = AddressMode::Guest;
    }

    /// Installs `region` at `index`, growing the table with empty regions if needed.
    ///
    /// # Safety
    /// The memory `region` describes must stay valid (see [`Region::new`]) for as long as it
    /// is installed here and the `Memory` is used.
    pub unsafe fn set_region(&mut self, index: u32, region: Region) {
        self.put_region(index, region);
    }

    fn put_region(&mut self, index: u32, region: Region) {
        let i = index as usize;
        if self.regions.len() <= i {
            self.regions.resize(i + 1, Region::EMPTY);
        }
        self.regions[i] = region;
        if let Some(k) = self.keep.get_mut(i) {
            *k = None;
        }
    }

    /// Installs the value arena of `map` at `index` (read-only for the program when the map
    /// says so), keeping the map alive while the region is installed.
    pub fn set_map_region(&mut self, index: u32, map: &std::sync::Arc<dyn crate::ProgramMap>) {
        let region = Region::from_arena(map.arena(), !map.read_only_for_program());
        self.put_region(index, region);
        let i = index as usize;
        if self.keep.len() <= i {
            self.keep.resize(i + 1, None);
        }
        self.keep[i] = Some(std::sync::Arc::clone(map));
    }

    /// Installs region `index` over a buffer this `Memory` owns, of `len` bytes seen from guest
    /// offset `lo`, and returns the bytes for the caller to fill. The buffer is reused (and
    /// only grows) from call to call; its contents are unspecified until filled.
    pub fn set_owned_region(
        &mut self,
        index: u32,
        lo: u32,
        len: usize,
        writable: bool,
    ) -> &mut [u8] {
        let i = index as usize;
        if self.installed_as(index, lo as u64, len as u64, writable, 0) {
            return self.owned_bytes_mut(index).expect("installed");
        }
        if self.owned.len() <= i {
            self.owned.resize_with(i + 1, OwnedBuf::default);
        }
        let buf = &mut self.owned[i];
        let words = len.div_ceil(8).max(1);
        if buf.words.len() < words {
            // 128 spare bytes at the end: the hot end of a buffer (the stack's frame 0) never
            // shares a cache line with whatever the allocator puts next, such as another
            // simulated CPU's buffers used by another host thread.
            buf.words = vec![0; words + OWNED_TAIL_PAD_WORDS];
        }
        buf.len = len;
        let base = buf.words.as_mut_ptr().cast::<u8>();
        // SAFETY: the buffer lives in `self.owned` as long as the region is installed; it is
        // only replaced by this function, which re-installs the region at the same time.
        let region = unsafe { Region::new(base, lo, len, writable) };
        self.put_region(index, region);
        self.owned_bytes_mut(index).expect("just installed")
    }

    /// Narrows owned region `index` to its bytes `start..` (guest offsets keep their meaning;
    /// offsets below `start` fault). Used for the stack: only the frames in use are
    /// accessible. Does nothing if the region is not owned or `start` is past its end.
    pub fn set_owned_window(&mut self, index: u32, start: usize) {
        let Some(buf) = self.owned.get_mut(index as usize) else {
            return;
        };
        if buf.words.is_empty() || start > buf.len {
            return;
        }
        let len = buf.len - start;
        if self.installed_as(index, start as u64, len as u64, true, start) {
            return;
        }
        let buf = &mut self.owned[index as usize];
        let base = buf.words.as_mut_ptr().cast::<u8>().wrapping_add(start);
        // SAFETY: `base .. base + len` is the tail of the owned buffer, which lives in
        // `self.owned` as long as the region is installed (see `set_owned_region`).
        let region = unsafe { Region::new(base, start as u32, len, true) };
        self.put_region(index, region);
    }

    /// Whether region `index` already shows owned buffer bytes `skip..` at guest offset `lo`
    /// with this length and permission (so re-installing it can be skipped).
    #[inline]
    fn installed_as(&self, index: u32, lo: u64, len: u64, writable: bool, skip: usize) -> bool {
        let (Some(buf), Some(r)) = (
            self.owned.get(index as usize),
            self.regions.get(index as usize),
        ) else {
            return false;
        };
        buf.len as u64 >= len + skip as u64
            && buf.len == len as usize + skip
            && r.lo == lo
            && r.len == len
            && r.writable == writable
            && r.stride == 0
            && !buf.words.is_empty()
            && std::ptr::eq(r.base, buf.words.as_ptr().cast::<u8>().wrapping_add(skip))
    }

    /// The bytes of owned region `index`, if it has one. `&mut self` guarantees no access
    /// through the region table happens meanwhile.
    pub fn owned_bytes_mut(&mut self, index: u32) -> Option<&mut [u8]> {
        let buf = self.owned.get_mut(index as usize)?;
        if buf.words.is_empty() {
            return None;
        }
        let len = buf.len;
        // SAFETY: `words` holds at least `len` bytes (`len.div_ceil(8)` words), any byte
        // pattern is a valid `u8`, and the exclusive borrow of `self` covers the buffer.
        Some(unsafe { std::slice::from_raw_parts_mut(buf.words.as_mut_ptr().cast::<u8>(), len) })
    }

    /// Shortens the table to `count` regions (keeps the allocation).
    pub fn truncate(&mut self, count: usize) {
        self.regions.truncate(count);
        self.keep.truncate(count);
    }

    /// Number of entries in the region table.
    pub fn region_count(&self) -> usize {
        self.regions.len()
    }

    /// Checks an access of `size` bytes at `addr` and returns the host pointer to its first
    /// byte. All `size` bytes must lie in one region that permits `access`.
    #[inline(always)]
    pub fn translate(&self, addr: u64, size: u64, access: Access) -> Result<*mut u8, MemFault> {
        if self.mode == AddressMode::Host {
            if addr == 0 {
                return Err(self.fault(addr, size, access, false));
            }
            return Ok(addr as usize as *mut u8);
        }
        let Some(r) = self.regions.get((addr >> 32) as usize) else {
            return Err(self.fault(addr, size, access, false));
        };
        let off = (addr & 0xffff_ffff).wrapping_sub(r.lo);
        if off > r.len || size > r.len - off {
            return Err(self.fault(addr, size, access, false));
        }
        if access != Access::Read && !r.writable {
            return Err(self.fault(addr, size, access, false));
        }
        if r.stride != 0 && off % r.stride + size > r.value_size {
            return Err(self.fault(addr, size, access, false));
        }
        // The offset is inside the allocation, so this stays in bounds.
        Ok(r.base.wrapping_add(off as usize))
    }

    #[cold]
    fn fault(&self, addr: u64, size: u64, access: Access, misaligned: bool) -> MemFault {
        MemFault {
            addr,
            size,
            access,
            misaligned,
        }
    }

    /// Loads `size` (1, 2, 4 or 8) bytes, little-endian, zero-extended.
    #[inline(always)]
    pub fn load(&self, addr: u64, size: u64) -> Result<u64, MemFault> {
        let p = self.translate(addr, size, Access::Read)?;
        // SAFETY: `translate` checked that `size` bytes at `p` lie in an installed region,
        // which its constructor's contract keeps valid.
        Ok(unsafe { load_raw(p, size) })
    }

    /// Stores the low `size` (1, 2, 4 or 8) bytes of `value`, little-endian.
    #[inline(always)]
    pub fn store(&self, addr: u64, size: u64, value: u64) -> Result<(), MemFault> {
        let p = self.translate(addr, size, Access::Write)?;
        // SAFETY: as in `load`, and the region is writable.
        unsafe { store_raw(p, size, value) };
        Ok(())
    }

    fn atomic_ptr(&self, addr: u64, size: u64) -> Result<*mut u8, MemFault> {
        let p = self.translate(addr, size, Access::Atomic)?;
        if (p as usize) % size as usize != 0 {
            return Err(self.fault(addr, size, Access::Atomic, true));
        }
        Ok(p)
    }

    /// Atomically applies `op` to the `size`-byte (4 or 8) value at `addr` and returns the old
    /// value (zero-extended). Truly atomic across threads.
    pub fn atomic_rmw(
        &self,
        addr: u64,
        size: u64,
        op: AtomicOp,
        operand: u64,
    ) -> Result<u64, MemFault> {
        let p = self.atomic_ptr(addr, size)?;
        let o = Ordering::SeqCst;
        if size == 8 {
            // SAFETY: `p` is checked, in bounds for 8 bytes and 8-aligned.
            let a = unsafe { AtomicU64::from_ptr(p.cast()) };
            Ok(match op {
                AtomicOp::Add => a.fetch_add(operand, o),
                AtomicOp::And => a.fetch_and(operand, o),
                AtomicOp::Or => a.fetch_or(operand, o),
                AtomicOp::Xor => a.fetch_xor(operand, o),
                AtomicOp::Xchg => a.swap(operand, o),
            })
        } else {
            // SAFETY: `p` is checked, in bounds for 4 bytes and 4-aligned.
            let a = unsafe { AtomicU32::from_ptr(p.cast()) };
            let v = operand as u32;
            Ok(match op {
                AtomicOp::Add => a.fetch_add(v, o),
                AtomicOp::And => a.fetch_and(v, o),
                AtomicOp::Or => a.fetch_or(v, o),
                AtomicOp::Xor => a.fetch_xor(v, o),
                AtomicOp::Xchg => a.swap(v, o),
            } as u64)
        }
    }

    /// Atomic compare-and-exchange of the `size`-byte (4 or 8) value at `addr`: stores `new`
    /// if the value equals `expected`; returns the old value (zero-extended) either way.
    pub fn atomic_cmpxchg(
        &self,
        addr: u64,
        size: u64,
        expected: u64,
        new: u64,
    ) -> Result<u64, MemFault> {
        let p = self.atomic_ptr(addr, size)?;
        let o = Ordering::SeqCst;
        if size == 8 {
            // SAFETY: `p` is checked, in bounds for 8 bytes and 8-aligned.
            let a = unsafe { AtomicU64::from_ptr(p.cast()) };
            Ok(a.compare_exchange(expected, new, o, o)
                .unwrap_or_else(|old| old))
        } else {
            // SAFETY: `p` is checked, in bounds for 4 bytes and 4-aligned.
            let a = unsafe { AtomicU32::from_ptr(p.cast()) };
            Ok(a.compare_exchange(expected as u32, new as u32, o, o)
                .unwrap_or_else(|old| old) as u64)
        }
    }

    /// Copies `out.len()` guest bytes at `addr` into `out`.
    pub fn read_bytes(&self, addr: u64, out: &mut [u8]) -> Result<(), MemFault> {
        if out.is_empty() {
            return Ok(());
        }
        let p = self.translate(addr, out.len() as u64, Access::Read)?;
        for (i, b) in out.iter_mut().enumerate() {
            // SAFETY: `translate` checked all `out.len()` bytes at `p`.
            *b = unsafe { AtomicU8::from_ptr(p.add(i)) }.load(Ordering::Relaxed);
        }
        Ok(())
    }

    /// Copies `bytes` into guest memory at `addr`.
    pub fn write_bytes(&self, addr: u64, bytes: &[u8]) -> Result<(), MemFault> {
        if bytes.is_empty() {
            return Ok(());
        }
        let p = self.translate(addr, bytes.len() as u64, Access::Write)?;
        for (i, b) in bytes.iter().enumerate() {
            // SAFETY: `translate` checked all `bytes.len()` bytes at `p` for writing.
            unsafe { AtomicU8::from_ptr(p.add(i)) }.store(*b, Ordering::Relaxed);
        }
        Ok(())
    }

    /// Reads a NUL-terminated string of at most `max` bytes (without the NUL) at `addr`,
    /// byte by byte, stopping at the first byte that is not readable.
    pub fn read_c_string(&self, addr: u64, max: usize, out: &mut Vec<u8>) -> Result<(), MemFault> {
        for i in 0..max as u64 {
            let b = self.load(addr.wrapping_add(i), 1)? as u8;
            if b == 0 {
                return Ok(());
            }
            out.push(b);
        }
        Ok(())
    }
}

/// The read-modify-write operations of BPF atomics (besides cmpxchg).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum AtomicOp {
    /// `BPF_ADD`.
    Add,
    /// `BPF_AND`.
    And,
    /// `BPF_OR`.
    Or,
    /// `BPF_XOR`.
    Xor,
    /// `BPF_XCHG`.
    Xchg,
}

/// Loads `size` bytes at `p` with relaxed atomics (per byte when unaligned).
///
/// # Safety
/// `p .. p + size` must be valid for reads.
#[inline(always)]
unsafe fn load_raw(p: *mut u8, size: u64) -> u64 {
    let aligned = (p as usize) & (size as usize - 1) == 0;
    let r = Ordering::Relaxed;
    if aligned {
        // SAFETY: valid per the caller and aligned for the width.
        unsafe {
            match size {
                1 => AtomicU8::from_ptr(p).load(r) as u64,
                2 => AtomicU16::from_ptr(p.cast()).load(r) as u64,
                4 => AtomicU32::from_ptr(p.cast()).load(r) as u64,
                _ => AtomicU64::from_ptr(p.cast()).load(r),
            }
        }
    } else {
        let mut v = 0u64;
        for i in 0..size as usize {
            // SAFETY: byte `i < size` is valid per the caller.
            let b = unsafe { AtomicU8::from_ptr(p.add(i)) }.load(r);
            v |= (b as u64) << (8 * i);
        }
        v
    }
}

/// Stores the low `size` bytes of `v` at `p` with relaxed atomics (per byte when unaligned).
///
/// # Safety
/// `p .. p + size` must be valid for writes.
#[inline(always)]
unsafe fn store_raw(p: *mut u8, size: u64, v: u64) {
    let aligned = (p as usize) & (size as usize - 1) == 0;
    let r = Ordering::Relaxed;
    if aligned {
        // SAFETY: valid per the caller and aligned for the width.
        unsafe {
            match size {
                1 => AtomicU8::from_ptr(p).store(v as u8, r),
                2 => AtomicU16::from_ptr(p.cast()).store(v as u16, r),
                4 => AtomicU32::from_ptr(p.cast()).store(v as u32, r),
                _ => AtomicU64::from_ptr(p.cast()).store(v, r),
            }
        }
    } else {
        for i in 0..size as usize {
            // SAFETY: byte `i < size` is valid per the caller.
            unsafe { AtomicU8::from_ptr(p.add(i)) }.store((v >> (8 * i)) as u8, r);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn mem_with(buf: &mut [u64], region: u32, writable: bool) -> Memory {
        let mut m = Memory::new();
        // SAFETY: `buf` outlives `m` in every test.
        let r = unsafe { Region::new(buf.as_mut_ptr().cast(), 0, buf.len() * 8, writable) };
        // SAFETY: `buf` outlives `m` in every test.
        unsafe { m.set_region(region, r) };
        m
    }

    #[test]
    fn checks_every_byte_of_an_access() {
        let mut buf = [0u64; 2];
        let m = mem_with(&mut buf, REGION_STACK, true);
        let a = guest_addr(REGION_STACK, 0);
        m.store(a + 8, 8, 0x1122_3344_5566_7788).unwrap();
        assert_eq!(m.load(a + 8, 8).unwrap(), 0x1122_3344_5566_7788);
        assert_eq!(m.load(a + 9, 4).unwrap(), 0x4455_6677); // unaligned
        assert!(m.load(a + 9, 8).is_err()); // last byte out of range
        assert!(m.load(a + 16, 1).is_err());
        assert!(m.load(guest_addr(9, 0), 1).is_err());
        assert!(m.load(a.wrapping_sub(1), 1).is_err());
    }

    #[test]
    fn read_only_regions_refuse_writes_and_atomics() {
        let mut buf = [7u64; 1];
        let m = mem_with(&mut buf, REGION_CTX, false);
        let a = guest_addr(REGION_CTX, 0);
        assert_eq!(m.load(a, 8).unwrap(), 7);
        let e = m.store(a, 8, 1).unwrap_err();
        assert_eq!(e.access, Access::Write);
        assert!(m.atomic_rmw(a, 8, AtomicOp::Add, 1).is_err());
        assert_eq!(m.load(a, 8).unwrap(), 7);
    }

    #[test]
    fn arena_accesses_stay_inside_one_value() {
        let mut buf = [0u64; 4];
        let mut m = Memory::new();
        // SAFETY: `buf` outlives `m`.
        let r = unsafe { Region::arena(buf.as_mut_ptr().cast(), 32, 16, 12, true) };
        // SAFETY: `buf` outlives `m`.
        unsafe { m.set_region(REGION_MAP_VALUES, r) };
        let a = guest_addr(REGION_MAP_VALUES, 0);
        m.store(a + 8, 4, 1).unwrap();
        assert!(m.store(a + 8, 8, 1).is_err()); // crosses into padding
        m.store(a + 16, 8, 1).unwrap();
        assert!(m.load(a + 28, 4).is_err());
    }

    #[test]
    fn atomics_return_the_old_value() {
        let mut buf = [5u64; 1];
        let m = mem_with(&mut buf, REGION_STACK, true);
        let a = guest_addr(REGION_STACK, 0);
        assert_eq!(m.atomic_rmw(a, 8, AtomicOp::Add, 3).unwrap(), 5);
        assert_eq!(m.atomic_cmpxchg(a, 8, 8, 1).unwrap(), 8);
        assert_eq!(m.load(a, 8).unwrap(), 1);
        assert_eq!(m.atomic_rmw(a, 4, AtomicOp::Xchg, 9).unwrap(), 1);
        assert!(
            m.atomic_rmw(a + 1, 4, AtomicOp::Add, 1)
                .unwrap_err()
                .misaligned
        );
    }

    #[test]
    fn packet_region_starts_at_its_offset() {
        let mut buf = [0u64; 1];
        let mut m = Memory::new();
        // SAFETY: `buf` outlives `m`.
        let r = unsafe { Region::new(buf.as_mut_ptr().cast(), PACKET_OFFSET, 8, true) };
        // SAFETY: `buf` outlives `m`.
        unsafe { m.set_region(REGION_PACKET, r) };
        assert!(m.load(0, 1).is_err());
        m.store(PACKET_OFFSET as u64 + 7, 1, 0xaa).unwrap();
        assert!(m.load(PACKET_OFFSET as u64 + 8, 1).is_err());
    }
}
