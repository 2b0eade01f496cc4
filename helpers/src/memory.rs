//! Guest memory: the region table of `docs/internals.md` and checked accessors.
//!
//! A guest address is `region << 52 | object << 32 | offset`: the top 12 bits index the
//! region table, the next 20 bits name one object of the region, the low 32 bits are the
//! offset into that object. The packet, the stack and the context are regions of one object
//! (object 0); a map's value arena is a region whose objects are its values (each CPU's copy
//! of a per-CPU value is its own object), so a pointer reaches only the value it was derived
//! from: `v + 8` on an 8-byte value, or `v - 144`, names an offset outside that value and
//! faults, it never lands in the next element or another CPU's copy. A map with more than
//! 2^20 values spans consecutive regions.
//!
//! [`Memory::translate`] checks *all* bytes of an access in O(1): one table index, the object
//! number and the offset range compared with that region, and a permission test. Every access
//! to guest bytes goes through relaxed atomics of the access width (per byte when unaligned),
//! because map value arenas are shared with other simulated CPUs and with the host. This
//! module holds all of the crate's `unsafe` memory code.
//!
//! What the check cannot see: an address is a number, and a program that adds multiples of
//! 2^32 to a pointer forges the address of another value of one of *its own* maps (never of
//! host memory, another program's maps, or anything outside the regions). The kernel's
//! verifier refuses such arithmetic before a program runs.
//!
//! In [`AddressMode::Host`] (used by the rbpf engines, which hand host pointers to helpers),
//! addresses are raw host pointers and are **not** checked: those engines are not sandboxed.
#![allow(unsafe_code)]

use std::ptr::NonNull;
use std::sync::atomic::{AtomicU16, AtomicU32, AtomicU64, AtomicU8, Ordering};
use std::sync::Arc;

pub use crate::fault::{Access, FaultKind, FaultTarget, MapName, MemFault};
use crate::maps::ProgramMap;

/// Region index of the packet (`data_meta .. data_end`).
pub const REGION_PACKET: u32 = 0;
/// Region index of the stack frames.
pub const REGION_STACK: u32 = 1;
/// Region index of the context (`r1` at entry).
pub const REGION_CTX: u32 = 2;
/// Region index of map handles (never dereferenceable; offset = map index).
pub const REGION_MAP_HANDLES: u32 = 3;
/// First region of map value arenas: map 0's values start here, each further map's where
/// the previous one's end (see [`map_regions`]).
pub const REGION_MAP_VALUES: u32 = 4;
/// Regions at the top of the table for objects a helper hands to the program during a run
/// (ring buffer reservations): one object per region, removed when the program gives it
/// back ([`Memory::install_ringbuf_object`], [`Memory::remove_object`]).
pub const DYNAMIC_REGIONS: u32 = 64;
/// The first of the [`DYNAMIC_REGIONS`]; map values end below it.
pub const REGION_DYNAMIC: u32 = MAX_REGIONS - DYNAMIC_REGIONS;
/// Guest offset at which packet bytes start in region 0, so `data` fields are usable 32-bit
/// pointers and address 0 (NULL) faults.
pub const PACKET_OFFSET: u32 = 0x1000_0000;

/// The region index is `addr >> REGION_SHIFT`.
pub const REGION_SHIFT: u32 = 52;
/// Bits of the object number (`addr >> 32`, masked).
pub const OBJECT_BITS: u32 = 20;
/// Objects one region holds.
pub const OBJECTS_PER_REGION: u64 = 1 << OBJECT_BITS;
/// Number of regions an address can name.
pub const MAX_REGIONS: u32 = 1 << (64 - REGION_SHIFT);
const OBJECT_MASK: u64 = OBJECTS_PER_REGION - 1;

/// Builds the guest address of byte `offset` of region `region`'s object 0.
pub const fn guest_addr(region: u32, offset: u32) -> u64 {
    ((region as u64) << REGION_SHIFT) | offset as u64
}

/// Builds the guest address of byte `offset` of object `object` of region `region`
/// (`object < 2^20`).
pub const fn object_addr(region: u32, object: u64, offset: u32) -> u64 {
    ((region as u64) << REGION_SHIFT) | ((object & OBJECT_MASK) << 32) | offset as u64
}

/// The region, object and offset an address names.
pub const fn split_addr(addr: u64) -> (u32, u64, u32) {
    (
        (addr >> REGION_SHIFT) as u32,
        (addr >> 32) & OBJECT_MASK,
        addr as u32,
    )
}

/// Whether `handle` is the guest address of map handle `index` (what `ld_imm64` of a map
/// gives on every engine).
pub const fn map_handle(index: u32) -> u64 {
    guest_addr(REGION_MAP_HANDLES, index)
}

/// The map index a map handle names, if `handle` is one.
pub const fn map_handle_index(handle: u64) -> Option<u32> {
    if handle >> 32 == (REGION_MAP_HANDLES as u64) << (REGION_SHIFT - 32) {
        Some(handle as u32)
    } else {
        None
    }
}

/// The first region of each map's values when `maps` are installed in this order, or
/// `None` when they need more regions than an address can name.
pub fn map_regions(maps: &[Arc<dyn ProgramMap>]) -> Option<Vec<u32>> {
    let mut next = u64::from(REGION_MAP_VALUES);
    let mut first = Vec::with_capacity(maps.len());
    for m in maps {
        first.push(next as u32);
        next += regions_of(&m.arena());
    }
    (next <= u64::from(REGION_DYNAMIC)).then_some(first)
}

/// Regions a value arena spans (at least one, so every map has its own region).
fn regions_of(a: &crate::maps::ArenaInfo) -> u64 {
    (a.slots() as u64).div_ceil(OBJECTS_PER_REGION).max(1)
}

/// Permission bits of a region.
const PERM_READ: u8 = Access::Read as u8;
const PERM_WRITE: u8 = Access::Write as u8;

/// How addresses given to helpers are interpreted.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum AddressMode {
    /// Guest addresses checked against the region table (engine `interpreter`).
    #[default]
    Guest,
    /// Raw host pointers, unchecked (rbpf engines; not sandboxed).
    Host,
}

/// One guest region: `objects` objects of `len` bytes, `stride` bytes apart from host `base`,
/// each seen at guest offsets `lo .. lo + len`.
#[derive(Debug, Clone, Copy)]
pub struct Region {
    base: *mut u8,
    lo: u64,
    len: u64,
    objects: u64,
    stride: u64,
    /// The length the fast path allows reads and writes in: `len` when the region permits
    /// them, else 0 (so the fast path fails and the slow path names the reason); 0 for both
    /// when every access must take the slow path (a field no access may touch).
    read_len: u64,
    write_len: u64,
    /// Permissions of the region.
    perm: u8,
    /// Bytes `hole.0 .. hole.0 + hole.1` of each object are off limits (`bpf_spin_lock`).
    hole: (u32, u32),
    /// For map arenas: the map's index in the program plus one (0: not a map), and the
    /// number of the region's object 0 among the map's values.
    map: u32,
    first_object: u64,
    /// Accesses go through the slow path and are reported to the [`AccessHook`] (values of
    /// maps shared between CPUs, while a race explorer watches them).
    watched: bool,
}

impl Region {
    /// A region nothing can access (holes in the table, map handles).
    pub const EMPTY: Region = Region {
        base: std::ptr::null_mut(),
        lo: 0,
        len: 0,
        objects: 0,
        stride: 0,
        read_len: 0,
        write_len: 0,
        perm: 0,
        hole: (0, 0),
        map: 0,
        first_object: 0,
        watched: false,
    };

    /// Plain bytes: `len` bytes at `base`, seen from guest offset `lo` (one object).
    ///
    /// # Safety
    /// `base .. base + len` must stay valid for reads (and writes if `writable`) through
    /// atomics for as long as the region is installed in a [`Memory`] that is used.
    pub unsafe fn new(base: *mut u8, lo: u32, len: usize, writable: bool) -> Region {
        let perm = PERM_READ | if writable { PERM_WRITE } else { 0 };
        Region {
            base,
            lo: lo as u64,
            len: len as u64,
            objects: 1,
            stride: 0,
            perm,
            ..Region::EMPTY
        }
        .with_fast_lens()
    }

    /// A map value arena: `len` bytes at `base` holding values of `value_size` bytes every
    /// `stride` bytes; each value is one object and an access must stay inside it.
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
        let stride = stride.max(1);
        let perm = PERM_READ | if writable { PERM_WRITE } else { 0 };
        Region {
            base,
            lo: 0,
            len: value_size as u64,
            objects: (len / stride) as u64,
            stride: stride as u64,
            perm,
            ..Region::EMPTY
        }
        .with_fast_lens()
    }

    /// Sets the lengths the fast path checks from `len`, `perm` and `hole`.
    fn with_fast_lens(mut self) -> Region {
        let open = self.hole.1 == 0;
        self.read_len = if open && self.perm & PERM_READ != 0 {
            self.len
        } else {
            0
        };
        self.write_len = if open && self.perm & PERM_WRITE != 0 {
            self.len
        } else {
            0
        };
        self
    }

    /// The host address of the region's first byte.
    pub fn base(&self) -> *mut u8 {
        self.base
    }

    /// Whether `access` of `size` bytes at `object`, `off` (from `lo`) is allowed, ignoring
    /// the fast-path shortcut: `Err` says why not.
    fn check(&self, object: u64, off: u64, size: u64, access: Access) -> Result<(), FaultKind> {
        if object >= self.objects || off > self.len || size > self.len - off {
            return Err(if self.objects == 0 && self.perm == 0 {
                FaultKind::Unmapped
            } else {
                FaultKind::OutOfBounds
            });
        }
        let a = access as u8;
        if a & PERM_WRITE != 0 && self.perm & PERM_WRITE == 0 {
            return Err(FaultKind::ReadOnly);
        }
        if a & PERM_READ != 0 && self.perm & PERM_READ == 0 {
            return Err(FaultKind::WriteOnly);
        }
        let (h, hl) = (u64::from(self.hole.0), u64::from(self.hole.1));
        if hl != 0 && off < h + hl && h < off + size {
            return Err(FaultKind::SpecialField);
        }
        Ok(())
    }
}

/// What the fast path of [`Memory::translate_guest`] reads of a region: 32 bytes, in a
/// table of [`MAX_REGIONS`] entries indexed by `addr >> 52` with no bounds check.
#[derive(Debug, Clone, Copy)]
struct Fast {
    /// `base - (region << 20) * stride`: the host address `addr >> 32` (region and object
    /// bits together) times `stride` away from the object's first byte.
    biased_base: *mut u8,
    /// `(region << 20) + objects`: `addr >> 32` must stay below it.
    object_end: u64,
    stride: u32,
    lo: u32,
    read_len: u32,
    write_len: u32,
}

impl Fast {
    /// Nothing passes: every access takes the slow path (which reports the fault).
    const CLOSED: Fast = Fast {
        biased_base: std::ptr::null_mut(),
        object_end: 0,
        stride: 0,
        lo: 0,
        read_len: 0,
        write_len: 0,
    };

    /// The fast form of `r`, installed at `index`. Regions whose lengths do not fit in 32
    /// bits stay closed (the slow path handles them).
    fn of(index: u32, r: &Region) -> Fast {
        let (Ok(stride), Ok(lo), Ok(read_len), Ok(write_len)) = (
            u32::try_from(r.stride),
            u32::try_from(r.lo),
            u32::try_from(r.read_len),
            u32::try_from(r.write_len),
        ) else {
            return Fast::CLOSED;
        };
        let first = u64::from(index) << OBJECT_BITS;
        Fast {
            biased_base: r.base.wrapping_sub((first.wrapping_mul(r.stride)) as usize),
            object_end: first + r.objects,
            stride,
            lo,
            read_len,
            write_len,
        }
    }

    /// The length the fast path allows `access` in.
    #[inline(always)]
    fn len(&self, access: Access) -> u32 {
        match access {
            Access::Read => self.read_len,
            Access::Write => self.write_len,
            Access::Atomic => self.read_len.min(self.write_len),
        }
    }
}

/// Where a code generator finds the fields of an entry of the region table that
/// [`Memory::translate_guest`]'s fast path reads ([`Memory::fast_table`]), so compiled code
/// can do the same check inline (the `jit` engine). Offsets are in bytes from the entry's
/// start; entry `i` (of [`MAX_REGIONS`]) is `entry_size * i` bytes from the table's start.
///
/// An access of `size` bytes at guest address `addr` passes when, with `e` the entry of
/// `addr >> 52`, `object = addr >> 32` and `off = (addr as u32).wrapping_sub(e.lo)` (zero
/// extended): `object < e.object_end` and `off + size <= e.read_len` (loads) or
/// `e.write_len` (stores). Its first byte is then at host address
/// `e.biased_base + object * e.stride + off`. Any other access must go to
/// [`Memory::load_guest`] / [`Memory::store_guest`], which grant it or report its fault.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct FastLayout {
    /// Bytes per entry.
    pub entry_size: u32,
    /// Offset of the biased host base (pointer).
    pub biased_base: u32,
    /// Offset of `object_end` (u64).
    pub object_end: u32,
    /// Offset of `stride` (u32).
    pub stride: u32,
    /// Offset of `lo` (u32).
    pub lo: u32,
    /// Offset of `read_len` (u32).
    pub read_len: u32,
    /// Offset of `write_len` (u32).
    pub write_len: u32,
}

/// The layout of the region table's entries (see [`FastLayout`]).
pub const FAST_LAYOUT: FastLayout = FastLayout {
    entry_size: std::mem::size_of::<Fast>() as u32,
    biased_base: std::mem::offset_of!(Fast, biased_base) as u32,
    object_end: std::mem::offset_of!(Fast, object_end) as u32,
    stride: std::mem::offset_of!(Fast, stride) as u32,
    lo: std::mem::offset_of!(Fast, lo) as u32,
    read_len: std::mem::offset_of!(Fast, read_len) as u32,
    write_len: std::mem::offset_of!(Fast, write_len) as u32,
};

/// Words of padding after each owned buffer (128 bytes).
const OWNED_TAIL_PAD_WORDS: usize = 16;

/// An 8-byte aligned heap buffer owned by a [`Memory`] (stack, context, packet).
#[derive(Debug, Default)]
struct OwnedBuf {
    words: Vec<u64>,
    len: usize,
}

/// The memory a run may touch: a region table indexed by `addr >> 52`.
///
/// Regions either point at memory owned elsewhere (map arenas, installed with
/// [`Memory::install_maps`] or the `unsafe` [`Region`] constructors) or at buffers the
/// `Memory` owns itself ([`Memory::set_owned_region`]), which are reused from run to run.
#[derive(Debug)]
pub struct Memory {
    /// The fast form of every region (closed where there is none).
    fast: Box<[Fast; MAX_REGIONS as usize]>,
    regions: Vec<Region>,
    owned: Vec<OwnedBuf>,
    /// The installed maps (index = map index), which keeps their arenas alive.
    maps: Vec<Arc<dyn ProgramMap>>,
    /// First region of each installed map's values.
    map_first: Vec<u32>,
    mode: AddressMode,
    /// The objects installed in the dynamic regions.
    objects: DynamicObjects,
    /// Where the packet's current and earlier views lie (for fault messages).
    packet_windows: PacketWindows,
    /// Told of every access to a watched map value (the race explorer; `None` normally).
    hook: Option<Arc<dyn AccessHook>>,
    /// The instruction making the current access, noted by an engine while a hook is set
    /// ([`Memory::note_pc`]).
    pc: AtomicU64,
}

/// Watches the accesses a run makes to map values shared between simulated CPUs: the hook
/// of bpfvm's race explorer (`bpfvm::race`).
///
/// Values of the maps [`AccessHook::watches`] are left out of the fast path of
/// [`Memory::translate_guest`] (their fast-table entry is closed), so every access to them
/// takes the slow path, which calls [`AccessHook::before_access`] on the thread making the
/// access, before the access. Nothing changes for a [`Memory`] without a hook: the fast path
/// is the same code, and the slow path only tests a flag of the region it already read.
pub trait AccessHook: Send + Sync + std::fmt::Debug {
    /// Whether accesses to the values of `map` are reported (a map shared between CPUs).
    fn watches(&self, map: &dyn ProgramMap) -> bool;
    /// Called before `access` is made; it may block (the explorer lets one CPU run at a
    /// time). `memory` may be read with [`Memory::peek_bytes`] (which calls no hook).
    fn before_access(&self, memory: &Memory, access: &WatchedAccess);
}

/// An access to a watched map value (see [`AccessHook`]).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct WatchedAccess {
    /// The guest address.
    pub addr: u64,
    /// Bytes accessed.
    pub size: u64,
    /// Read, write or atomic read-modify-write.
    pub access: Access,
    /// The map's index in the program.
    pub map: u32,
    /// The value's slot in the map's arena.
    pub slot: u64,
    /// The offset in the value.
    pub offset: u32,
    /// The instruction making the access, as the engine noted it ([`Memory::note_pc`]).
    pub pc: usize,
}

/// Where the packet region's views have been, so that a fault can tell a pointer from an
/// earlier view ("invalidated by a helper that changed the packet") from one just outside
/// the current packet.
///
/// The packet buffer is seen through a window of guest offsets that moves each time a
/// helper changes the packet (see `docs/internals.md`, "Packet pointers"): window `k` shows
/// buffer byte 0 at guest offset `first + k * stride`. Windows `0 ..= current` have been
/// used since the packet was set up (`wrapped`: the windows came round to 0 again, so every
/// window may have been used).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct PacketWindows {
    /// Guest offset of buffer byte 0 in window 0.
    pub first: u32,
    /// Distance between consecutive windows (0: a packet that never moves).
    pub stride: u32,
    /// Bytes of the packet buffer (every window spans this many).
    pub cap: u32,
    /// The window in use.
    pub current: u32,
    /// Whether the windows have wrapped round since the packet was set up.
    pub wrapped: bool,
    /// Changes of the packet since it was set up (invalidations), for messages.
    pub changes: u64,
}

impl PacketWindows {
    /// Guest offset of buffer byte 0 in window `k`.
    pub fn origin(&self, k: u32) -> u64 {
        u64::from(self.first) + u64::from(k) * u64::from(self.stride)
    }

    /// How many windows there are before they wrap round: those whose `cap` bytes end
    /// below 2^31.
    fn count(&self) -> u64 {
        let room = (1u64 << 31).saturating_sub(u64::from(self.first) + u64::from(self.cap));
        match self.stride {
            0 => 1,
            s => room / u64::from(s) + 1,
        }
    }

    /// How many packet changes ago the window holding guest `offset` was current, if it
    /// was one of the windows used (0 for the current one).
    pub fn changes_ago(&self, offset: u64) -> Option<u64> {
        if self.stride == 0 || offset < u64::from(self.first) {
            return None;
        }
        let k = (offset - u64::from(self.first)) / u64::from(self.stride);
        if k >= self.count() || offset - self.origin(k as u32) >= u64::from(self.cap) {
            return None;
        }
        let cur = u64::from(self.current);
        if k <= cur {
            Some(cur - k)
        } else if self.wrapped {
            Some(cur + self.count() - k)
        } else {
            None
        }
    }
}

/// Bookkeeping of the [`DYNAMIC_REGIONS`].
#[derive(Debug, Default)]
struct DynamicObjects {
    /// The map whose memory each dynamic region shows (keeps it alive), if any.
    owners: Vec<Option<Arc<dyn ProgramMap>>>,
    /// The guest offset the next object of each region starts at: objects of one region
    /// move up its 31-bit offset space, so a stale pointer to an earlier object of the
    /// region falls outside the new one (until the offsets wrap after 2 GiB).
    next_lo: Vec<u32>,
    /// Where the search for a free region starts (round robin, so a region is reused as
    /// late as possible).
    cursor: u32,
    /// The last object of each region, for fault messages (kept after it is removed).
    last: Vec<Option<ObjectInfo>>,
}

/// What a dynamic region's last object was.
#[derive(Debug, Clone, Copy)]
struct ObjectInfo {
    name: MapName,
    lo: u32,
    len: u32,
    /// A key handed to a `bpf_for_each_map_elem` callback (else a ring buffer record).
    key: bool,
}

/// Guest offset of the first object of each dynamic region: small negative offsets from an
/// object stay in its region (and fault as outside the object).
const DYNAMIC_LO: u32 = 0x1000;

// SAFETY: the raw pointers in `regions` are only dereferenced through atomics by the thread
// that holds the `Memory` (one run at a time per simulated CPU); the constructors' safety
// contract makes the pointed-to memory outlive its installation.
unsafe impl Send for Memory {}
// SAFETY: shared references only read the region table; guest bytes are touched through
// atomics, which are safe to use from several threads.
unsafe impl Sync for Memory {}

impl Default for Memory {
    fn default() -> Memory {
        let fast: Box<[Fast]> = vec![Fast::CLOSED; MAX_REGIONS as usize].into_boxed_slice();
        Memory {
            fast: fast.try_into().expect("MAX_REGIONS entries"),
            regions: Vec::new(),
            owned: Vec::new(),
            maps: Vec::new(),
            map_first: Vec::new(),
            mode: AddressMode::Guest,
            objects: DynamicObjects::default(),
            packet_windows: PacketWindows::default(),
            hook: None,
            pc: AtomicU64::new(0),
        }
    }
}

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
        let Some(fast) = self.fast.get_mut(i) else {
            return; // no address names it
        };
        *fast = if region.watched {
            Fast::CLOSED
        } else {
            Fast::of(index, &region)
        };
        if self.regions.len() <= i {
            self.regions.resize(i + 1, Region::EMPTY);
        }
        self.regions[i] = region;
    }

    /// Removes regions `index..`.
    fn remove_regions_from(&mut self, index: usize) {
        for f in self.fast.iter_mut().take(self.regions.len()).skip(index) {
            *f = Fast::CLOSED;
        }
        self.regions.truncate(index.min(self.regions.len()));
    }

    /// Installs the value arenas of `maps` (map `i` at `map_regions(maps)[i]`), replacing
    /// any maps installed before, and keeps the maps alive while they are installed. Each
    /// value (each CPU's copy of a per-CPU value) is its own object; values are read-only
    /// when the map says so, unreadable when it is write-only for programs, and their
    /// `bpf_spin_lock` is off limits. `None` (and nothing installed) when the maps need more
    /// regions than an address can name.
    pub fn install_maps(&mut self, maps: &[Arc<dyn ProgramMap>]) -> Option<()> {
        let first = map_regions(maps)?;
        self.remove_regions_from(REGION_MAP_VALUES as usize);
        for (i, (m, &at)) in maps.iter().zip(&first).enumerate() {
            let a = m.arena();
            let writable = !m.read_only_for_program();
            let readable = !m.write_only_for_program();
            let perm = if readable { PERM_READ } else { 0 } | if writable { PERM_WRITE } else { 0 };
            let hole = m.special_field().unwrap_or((0, 0));
            let total = a.slots() as u64;
            for r in 0..regions_of(&a) {
                let first_object = r * OBJECTS_PER_REGION;
                // SAFETY: `ArenaInfo::new`'s contract makes the arena valid while its map
                // lives; `self.maps` keeps the map alive while the region is installed. The
                // region's objects are the arena's slots `first_object ..`, which lie inside
                // the arena.
                let mut region = unsafe {
                    Region::arena(
                        a.base()
                            .as_ptr()
                            .wrapping_add(first_object as usize * a.stride()),
                        (total - first_object).min(OBJECTS_PER_REGION) as usize * a.stride(),
                        a.stride(),
                        a.value_size(),
                        writable,
                    )
                };
                region.perm = perm;
                region.hole = hole;
                region.map = i as u32 + 1;
                region.first_object = first_object;
                region.watched = self.hook.as_ref().is_some_and(|h| h.watches(m.as_ref()));
                self.put_region(at + r as u32, region.with_fast_lens());
            }
        }
        self.maps = maps.to_vec();
        self.map_first = first;
        Some(())
    }

    /// The guest address of the value in arena slot `slot` of installed map `index` (what
    /// `bpf_map_lookup_elem` returns), or the host address in [`AddressMode::Host`].
    #[inline]
    pub fn value_addr(&self, index: u32, slot: usize) -> u64 {
        let i = index as usize;
        if self.mode == AddressMode::Host {
            let a = self.maps[i].arena();
            return a.base().as_ptr().wrapping_add(slot * a.stride()) as usize as u64;
        }
        let slot = slot as u64;
        object_addr(
            self.map_first[i] + (slot >> OBJECT_BITS) as u32,
            slot & OBJECT_MASK,
            0,
        )
    }

    /// Installs bytes `offset .. offset + len` of ring buffer `map`'s data area
    /// (`bpfvm_maps::Map::ringbuf_data`) as a new object the program may read and write — a
    /// `bpf_ringbuf_reserve` record — and returns its address: a guest address naming only
    /// that object (its own dynamic region), or the host address in [`AddressMode::Host`].
    /// `None` when `map` is not a ring buffer, the bytes are outside its data area, or all
    /// [`DYNAMIC_REGIONS`] hold objects.
    pub fn install_ringbuf_object(
        &mut self,
        map: &Arc<dyn ProgramMap>,
        offset: usize,
        len: usize,
    ) -> Option<u64> {
        let (base, total) = map.as_map()?.ringbuf_data()?;
        if offset.checked_add(len)? > total || len > (1 << 30) {
            return None;
        }
        let p = base.as_ptr().wrapping_add(offset);
        if self.mode == AddressMode::Host {
            return Some(p as usize as u64);
        }
        let (slot, lo) = self.free_dynamic_slot(len)?;
        // SAFETY: bpfvm-maps guarantees that a ring buffer's data area never moves or frees
        // while the map lives and is only accessed through atomics; `owners` keeps the map
        // alive while the region is installed; `p .. p + len` lies inside the area (checked
        // above).
        let region = unsafe { Region::new(p, lo, len, true) };
        let index = REGION_DYNAMIC + slot as u32;
        self.put_region(index, region);
        self.objects.owners[slot] = Some(Arc::clone(map));
        self.objects.last[slot] = Some(ObjectInfo {
            name: MapName::new(map.name()),
            lo,
            len: len as u32,
            key: false,
        });
        Some(guest_addr(index, lo))
    }

    /// A free dynamic region for an object of `len` bytes, and the guest offset the object
    /// starts at in it.
    fn free_dynamic_slot(&mut self, len: usize) -> Option<(usize, u32)> {
        let n = DYNAMIC_REGIONS as usize;
        if self.objects.owners.len() < n {
            self.objects.owners.resize(n, None);
            self.objects.next_lo.resize(n, DYNAMIC_LO);
            self.objects.last.resize(n, None);
        }
        let start = self.objects.cursor as usize;
        let slot = (0..n)
            .map(|i| (start + i) % n)
            .find(|&i| self.objects.owners[i].is_none())?;
        self.objects.cursor = ((slot + 1) % n) as u32;
        let span = (len as u64).div_ceil(8) * 8 + 8;
        let mut lo = self.objects.next_lo[slot];
        if u64::from(lo) + span > 1 << 31 {
            lo = DYNAMIC_LO;
        }
        self.objects.next_lo[slot] = lo + span as u32;
        Some((slot, lo))
    }

    /// Installs a copy of `key`, a key of `map`, as a new read-only object — the key
    /// `bpf_for_each_map_elem` hands its callback — and returns its guest address (its own
    /// dynamic region, so the program can read exactly those bytes and write none). Give
    /// it back with [`Memory::remove_object`] when the callback returns. `None` in
    /// [`AddressMode::Host`], for keys over 1 KiB, or when all [`DYNAMIC_REGIONS`] hold
    /// objects.
    pub fn install_key_object(&mut self, map: &Arc<dyn ProgramMap>, key: &[u8]) -> Option<u64> {
        if self.mode == AddressMode::Host || key.len() > 1024 {
            return None;
        }
        let len = key.len();
        let (slot, lo) = self.free_dynamic_slot(len)?;
        let index = REGION_DYNAMIC + slot as u32;
        self.set_owned_region(index, lo, len, false)
            .copy_from_slice(key);
        self.objects.owners[slot] = Some(Arc::clone(map));
        self.objects.last[slot] = Some(ObjectInfo {
            name: MapName::new(map.name()),
            lo,
            len: len as u32,
            key: true,
        });
        Some(guest_addr(index, lo))
    }

    /// Removes the object [`Memory::install_ringbuf_object`] returned at `addr` (its first
    /// byte): later accesses through any pointer to it fault. `false` (and nothing removed)
    /// when `addr` is not such an object's first byte; always `true` in host mode.
    pub fn remove_object(&mut self, addr: u64) -> bool {
        if self.mode == AddressMode::Host {
            return true;
        }
        let (region, object, off) = split_addr(addr);
        let Some(slot) = region.checked_sub(REGION_DYNAMIC) else {
            return false;
        };
        let installed = self
            .objects
            .owners
            .get(slot as usize)
            .is_some_and(Option::is_some);
        let here = self
            .regions
            .get(region as usize)
            .is_some_and(|r| r.lo == u64::from(off));
        if object != 0 || !installed || !here {
            return false;
        }
        self.put_region(region, Region::EMPTY);
        self.objects.owners[slot as usize] = None;
        true
    }

    /// The `bpf_spin_lock` at `addr`, which must be exactly the lock field of a value of one
    /// of the installed maps (what helpers 93 and 94 take); `None` otherwise.
    pub fn spin_lock_word(&self, addr: u64) -> Option<LockWord> {
        let (index, slot) = if self.mode == AddressMode::Host {
            self.host_value_of(addr)?
        } else {
            let (region, object, off) = split_addr(addr);
            let r = self.regions.get(region as usize)?;
            if r.map == 0 || object >= r.objects || off != r.hole.0 || r.hole.1 != 4 {
                return None;
            }
            (r.map - 1, (r.first_object + object) as usize)
        };
        let map = self.maps.get(index as usize)?;
        let (lock_off, 4) = map.special_field()? else {
            return None;
        };
        let a = map.arena();
        if slot >= a.slots() || lock_off as usize + 4 > a.value_size() {
            return None;
        }
        let want = a
            .base()
            .as_ptr()
            .wrapping_add(slot * a.stride() + lock_off as usize);
        if self.mode == AddressMode::Host && want as usize as u64 != addr {
            return None;
        }
        if self.mode == AddressMode::Guest && split_addr(addr).2 != lock_off {
            return None;
        }
        Some(LockWord {
            word: NonNull::new(want.cast::<AtomicU32>())?,
            map: Arc::clone(map),
            map_index: index,
            slot,
        })
    }

    /// Host mode: the installed map and arena slot whose value holds host address `addr`.
    fn host_value_of(&self, addr: u64) -> Option<(u32, usize)> {
        self.maps.iter().enumerate().find_map(|(i, m)| {
            let a = m.arena();
            let base = a.base().as_ptr() as usize as u64;
            let off = addr.checked_sub(base)?;
            (off < a.len() as u64 && a.stride() > 0)
                .then(|| (i as u32, (off / a.stride() as u64) as usize))
        })
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
    /// accessible (`start` = the buffer's length: none). Does nothing if the region is not
    /// owned or `start` is past its end.
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
            && (r.perm & PERM_WRITE != 0) == writable
            && r.objects == 1
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

    /// Makes the owned buffer of region `index` hold at least `len` bytes, keeping its bytes
    /// (bytes it did not hold before are zero), and returns all of them. When the buffer has
    /// to move, region `index` is closed until [`Memory::set_owned_view`] installs it again.
    pub fn reserve_owned(&mut self, index: u32, len: usize) -> &mut [u8] {
        let i = index as usize;
        if self.owned.len() <= i {
            self.owned.resize_with(i + 1, OwnedBuf::default);
        }
        let words = len.div_ceil(8).max(1);
        if self.owned[i].words.len() < words {
            let mut grown = vec![0u64; words + OWNED_TAIL_PAD_WORDS];
            let old = &self.owned[i].words;
            grown[..old.len()].copy_from_slice(old);
            self.owned[i].words = grown;
            // The region pointed into the old buffer.
            self.put_region(index, Region::EMPTY);
        }
        let buf = &mut self.owned[i];
        buf.len = buf.len.max(len);
        self.owned_bytes_mut(index).expect("reserved")
    }

    /// Installs region `index` (writable) over bytes `start .. start + len` of its owned
    /// buffer, seen at guest offsets `lo .. lo + len`. Does nothing if the buffer is shorter
    /// than `start + len` (see [`Memory::reserve_owned`]).
    pub fn set_owned_view(&mut self, index: u32, start: usize, len: usize, lo: u32) {
        let Some(buf) = self.owned.get_mut(index as usize) else {
            return;
        };
        if buf.words.is_empty() || start.checked_add(len).is_none_or(|e| e > buf.len) {
            return;
        }
        let base = buf.words.as_mut_ptr().cast::<u8>().wrapping_add(start);
        // SAFETY: `base .. base + len` lies in the owned buffer (checked above), which lives
        // in `self.owned` as long as the region is installed: it is only replaced by
        // `set_owned_region` and `reserve_owned`, which re-install or close the region.
        let region = unsafe { Region::new(base, lo, len, true) };
        self.put_region(index, region);
    }

    /// Records where the packet's views have been ([`PacketWindows`]), for fault messages.
    pub fn set_packet_windows(&mut self, windows: PacketWindows) {
        self.packet_windows = windows;
    }

    /// Where the packet's views have been.
    pub fn packet_windows(&self) -> PacketWindows {
        self.packet_windows
    }

    /// The start of the region table the fast path of [`Memory::translate_guest`] reads
    /// ([`MAX_REGIONS`] entries laid out as [`FAST_LAYOUT`] says), for compiled code that
    /// checks accesses inline. The table stays at this address for the life of the
    /// `Memory`; its entries change whenever regions are installed or removed, so code
    /// reading it must read it at each access (and not across a `Memory` being replaced).
    pub fn fast_table(&self) -> *const u8 {
        self.fast.as_ptr().cast()
    }

    /// Number of entries in the region table.
    pub fn region_count(&self) -> usize {
        self.regions.len()
    }

    /// Checks an access of `size` bytes at `addr` and returns the host pointer to its first
    /// byte. All `size` bytes must lie in the one object the address names, in a region that
    /// permits `access`.
    #[inline(always)]
    pub fn translate(&self, addr: u64, size: u64, access: Access) -> Result<*mut u8, MemFault> {
        if self.mode == AddressMode::Host {
            if addr == 0 {
                return Err(self.fault(addr, size, access, FaultKind::Unmapped));
            }
            return Ok(addr as usize as *mut u8);
        }
        self.translate_guest(addr, size, access)
    }

    /// [`Memory::translate`] for a guest address, whatever the mode: what an engine that
    /// always runs in guest mode (the `interpreter`) uses for its own loads and stores.
    #[inline(always)]
    pub fn translate_guest(
        &self,
        addr: u64,
        size: u64,
        access: Access,
    ) -> Result<*mut u8, MemFault> {
        // `addr >> 52` is below MAX_REGIONS: no bounds check.
        let f = &self.fast[(addr >> REGION_SHIFT) as usize];
        // Region and object bits together: at least `region << 20` by construction.
        let object = addr >> 32;
        // In 32 bits, an offset below `lo` wraps to 2^32 - d, past any object (objects are
        // shorter than 2^31 bytes), and `off + size` cannot overflow.
        let off = u64::from((addr as u32).wrapping_sub(f.lo));
        if object >= f.object_end || off + size > u64::from(f.len(access)) {
            return self.translate_slow(addr, size, access);
        }
        // The object and offset are inside the region's allocation (`biased_base` plus
        // `object * stride` is the object's first byte), so this stays in bounds.
        Ok(f.biased_base
            .wrapping_add((object.wrapping_mul(u64::from(f.stride)) + off) as usize))
    }

    /// The full check, for accesses the fast path did not grant: regions with a field no
    /// access may touch, and every fault.
    #[cold]
    #[inline(never)]
    fn translate_slow(&self, addr: u64, size: u64, access: Access) -> Result<*mut u8, MemFault> {
        let (p, r, object, off) = self.locate(addr, size, access)?;
        if r.watched {
            if let Some(hook) = &self.hook {
                hook.before_access(
                    self,
                    &WatchedAccess {
                        addr,
                        size,
                        access,
                        map: r.map - 1,
                        slot: r.first_object + object,
                        offset: off as u32,
                        pc: self.noted_pc(),
                    },
                );
            }
        }
        Ok(p)
    }

    /// The full check of an access: its host pointer, region, object and offset.
    fn locate(
        &self,
        addr: u64,
        size: u64,
        access: Access,
    ) -> Result<(*mut u8, &Region, u64, u64), MemFault> {
        let Some(r) = self.regions.get((addr >> REGION_SHIFT) as usize) else {
            return Err(self.fault(addr, size, access, FaultKind::Unmapped));
        };
        let object = (addr >> 32) & OBJECT_MASK;
        let off = (addr & 0xffff_ffff).wrapping_sub(r.lo);
        match r.check(object, off, size, access) {
            Ok(()) => Ok((
                r.base.wrapping_add((object * r.stride + off) as usize),
                r,
                object,
                off,
            )),
            Err(kind) => Err(self.fault(addr, size, access, kind)),
        }
    }

    /// Sets (or with `None` removes) the hook told of accesses to watched map values (see
    /// [`AccessHook`]), and re-marks the installed maps' values as watched or not.
    pub fn set_access_hook(&mut self, hook: Option<Arc<dyn AccessHook>>) {
        self.hook = hook;
        for i in REGION_MAP_VALUES as usize..self.regions.len().min(REGION_DYNAMIC as usize) {
            let mut r = self.regions[i];
            if r.map == 0 {
                continue;
            }
            r.watched = match (&self.hook, self.maps.get(r.map as usize - 1)) {
                (Some(h), Some(m)) => h.watches(m.as_ref()),
                _ => false,
            };
            self.put_region(i as u32, r);
        }
    }

    /// Notes that instruction `pc` makes the next access (engines do while a hook is set;
    /// [`WatchedAccess::pc`] reports it).
    #[inline(always)]
    pub fn note_pc(&self, pc: usize) {
        self.pc.store(pc as u64, Ordering::Relaxed);
    }

    /// The instruction last noted with [`Memory::note_pc`].
    pub fn noted_pc(&self) -> usize {
        self.pc.load(Ordering::Relaxed) as usize
    }

    /// Whether an [`AccessHook`] is set.
    pub fn has_access_hook(&self) -> bool {
        self.hook.is_some()
    }

    /// Copies `out.len()` guest bytes at `addr` (all in one object) into `out` without
    /// telling the [`AccessHook`]: what the hook itself uses to see values.
    pub fn peek_bytes(&self, addr: u64, out: &mut [u8]) -> Result<(), MemFault> {
        if self.mode == AddressMode::Host {
            return Err(self.fault(addr, out.len() as u64, Access::Read, FaultKind::Unmapped));
        }
        let (p, ..) = self.locate(addr, out.len() as u64, Access::Read)?;
        for (i, b) in out.iter_mut().enumerate() {
            // SAFETY: `locate` checked that `out.len()` bytes at `p` lie in an installed
            // region, which its constructor's contract keeps valid.
            *b = unsafe { load_raw(p.wrapping_add(i), 1) } as u8;
        }
        Ok(())
    }

    #[cold]
    fn fault(&self, addr: u64, size: u64, access: Access, kind: FaultKind) -> MemFault {
        let target = self.target(addr);
        // A pointer moved below its object borrowed from the object bits: the address
        // names the object before (or another region), but the access is still just
        // outside the object it came from.
        let kind = match (kind, target) {
            (FaultKind::Unmapped, FaultTarget::Reservation { released: true, .. }) => {
                FaultKind::Unmapped
            }
            (FaultKind::Unmapped, t) if t != FaultTarget::Nothing => FaultKind::OutOfBounds,
            (k, _) => k,
        };
        MemFault {
            addr,
            size,
            access,
            kind,
            target,
        }
    }

    /// What `addr` names, for fault messages. No object has offsets of 2^31 or more, so an
    /// address whose low 32 bits are that large is read as a negative offset from the
    /// object after it (where a pointer moved below its object came from).
    #[cold]
    pub fn target(&self, addr: u64) -> FaultTarget {
        if addr == 0 {
            return FaultTarget::Nothing;
        }
        let (addr, below) = if (addr as u32 as i32) < 0 {
            (addr.wrapping_add(1 << 32), 1i64 << 32)
        } else {
            (addr, 0)
        };
        let (region, object, offset) = split_addr(addr);
        let Some(r) = self.regions.get(region as usize) else {
            return FaultTarget::Nothing;
        };
        // In -2^31 .. 2^31 (see above).
        let offset = i64::from(offset) - below;
        let owned_len = |i: u32| self.owned.get(i as usize).map_or(0, |b| b.len as i64);
        match region {
            REGION_PACKET => {
                let w = self.packet_windows;
                let here = u64::from(r.lo as u32);
                match (offset >= 0)
                    .then(|| w.changes_ago(offset as u64))
                    .flatten()
                {
                    Some(ago) if ago > 0 => FaultTarget::StalePacket { changes_ago: ago },
                    _ => FaultTarget::Packet {
                        offset: offset - here as i64,
                        len: r.len as u32,
                    },
                }
            }
            REGION_STACK => FaultTarget::Stack {
                offset: (offset - owned_len(region)) as i32,
            },
            REGION_CTX => FaultTarget::Context {
                offset: offset as i32,
                len: r.len as u32,
            },
            REGION_MAP_HANDLES => FaultTarget::MapHandle,
            _ if region >= REGION_DYNAMIC => {
                let slot = (region - REGION_DYNAMIC) as usize;
                match self.objects.last.get(slot).copied().flatten() {
                    Some(info) if info.key => FaultTarget::CallbackKey {
                        name: info.name,
                        offset: offset - i64::from(info.lo),
                        len: info.len,
                    },
                    Some(info) => FaultTarget::Reservation {
                        name: info.name,
                        offset: offset - i64::from(info.lo),
                        len: info.len,
                        released: self.objects.owners[slot].is_none(),
                    },
                    None => FaultTarget::Nothing,
                }
            }
            _ if r.map != 0 => {
                let index = r.map - 1;
                let map = &self.maps[index as usize];
                let slot = r.first_object + object;
                let (element, cpu) = map.slot_owner(slot as usize);
                FaultTarget::MapValue {
                    map: index,
                    name: MapName::new(map.name()),
                    element,
                    cpu,
                    offset: offset as i32,
                    value_size: r.len as u32,
                }
            }
            _ => FaultTarget::Nothing,
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

    /// [`Memory::load`] of a guest address whatever the mode (see
    /// [`Memory::translate_guest`]).
    #[inline(always)]
    pub fn load_guest(&self, addr: u64, size: u64) -> Result<u64, MemFault> {
        let p = self.translate_guest(addr, size, Access::Read)?;
        // SAFETY: as in `load`.
        Ok(unsafe { load_raw(p, size) })
    }

    /// [`Memory::store`] to a guest address whatever the mode (see
    /// [`Memory::translate_guest`]).
    #[inline(always)]
    pub fn store_guest(&self, addr: u64, size: u64, value: u64) -> Result<(), MemFault> {
        let p = self.translate_guest(addr, size, Access::Write)?;
        // SAFETY: as in `store`.
        unsafe { store_raw(p, size, value) };
        Ok(())
    }

    fn atomic_ptr(&self, addr: u64, size: u64) -> Result<*mut u8, MemFault> {
        let p = self.translate(addr, size, Access::Atomic)?;
        if (p as usize) % size as usize != 0 {
            return Err(self.fault(addr, size, Access::Atomic, FaultKind::Misaligned));
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

/// A value's `bpf_spin_lock`, as helpers 93 and 94 use it: the u32 the maps crate's
/// `BPF_F_LOCK` copies take with `compare_exchange(0, 1, Acquire)` and release with
/// `store(0, Release)`, so programs on all simulated CPUs and the host exclude each other.
/// It keeps its map (and so the word) alive.
pub struct LockWord {
    word: NonNull<AtomicU32>,
    map: Arc<dyn ProgramMap>,
    map_index: u32,
    slot: usize,
}

// SAFETY: the pointer is only used through `AtomicU32` operations, which may be shared
// between threads; `map` (Send + Sync) keeps the memory alive.
unsafe impl Send for LockWord {}
// SAFETY: as above.
unsafe impl Sync for LockWord {}

impl std::fmt::Debug for LockWord {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("LockWord")
            .field("map", &self.map.name())
            .field("map_index", &self.map_index)
            .field("slot", &self.slot)
            .finish()
    }
}

impl LockWord {
    fn atomic(&self) -> &AtomicU32 {
        // SAFETY: `word` points at the 4-aligned lock field of a value in `map`'s arena
        // (checked by `Memory::spin_lock_word`), which stays valid while `map` lives and is
        // only accessed through atomics.
        unsafe { self.word.as_ref() }
    }

    /// Takes the lock if it is free.
    pub fn try_lock(&self) -> bool {
        self.atomic()
            .compare_exchange_weak(0, 1, Ordering::Acquire, Ordering::Relaxed)
            .is_ok()
    }

    /// Releases the lock.
    pub fn unlock(&self) {
        self.atomic().store(0, Ordering::Release);
    }

    /// Whether `other` is the same lock.
    pub fn is(&self, other: &LockWord) -> bool {
        self.word == other.word
    }

    /// The map's name, element and CPU of the value holding the lock, for messages.
    pub fn describe(&self) -> String {
        let (element, _) = self.map.slot_owner(self.slot);
        format!("map {:?} element {element}", self.map.name())
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
        let v0 = object_addr(REGION_MAP_VALUES, 0, 0);
        let v1 = object_addr(REGION_MAP_VALUES, 1, 0);
        m.store(v0 + 8, 4, 1).unwrap();
        let e = m.store(v0 + 8, 8, 1).unwrap_err(); // crosses into padding
        assert_eq!(e.kind, FaultKind::OutOfBounds);
        m.store(v1, 8, 7).unwrap();
        assert_eq!(buf[2], 7, "object 1 is the second value");
        // Past the value is not the next value: offsets name bytes of this value only.
        assert_eq!(m.load(v0 + 16, 8).unwrap_err().kind, FaultKind::OutOfBounds);
        assert_eq!(m.load(v1 - 16, 8).unwrap_err().kind, FaultKind::OutOfBounds);
        assert!(m.load(v1 + 12, 4).is_err());
        // There are two values.
        assert!(m.load(object_addr(REGION_MAP_VALUES, 2, 0), 1).is_err());
    }

    /// Records the accesses it is told of; watches maps whose name starts with `shared`.
    #[derive(Debug, Default)]
    struct Recorder(std::sync::Mutex<Vec<WatchedAccess>>);

    impl AccessHook for Recorder {
        fn watches(&self, map: &dyn ProgramMap) -> bool {
            map.name().starts_with("shared")
        }
        fn before_access(&self, memory: &Memory, access: &WatchedAccess) {
            // The hook may read guest memory without being called again.
            let mut b = vec![0u8; access.size as usize];
            memory.peek_bytes(access.addr, &mut b).unwrap();
            self.0.lock().unwrap().push(*access);
        }
    }

    #[test]
    fn only_watched_maps_values_reach_the_access_hook() {
        use bpfvm_maps::{Map, MapSpec, MapType};
        let shared: Arc<dyn ProgramMap> = Arc::new(
            Map::create(MapSpec::new(MapType::Array, 4, 8, 2).with_name("shared"), 1).unwrap(),
        );
        let private: Arc<dyn ProgramMap> = Arc::new(
            Map::create(
                MapSpec::new(MapType::Array, 4, 8, 2).with_name("private"),
                1,
            )
            .unwrap(),
        );
        let mut m = Memory::new();
        m.install_maps(&[Arc::clone(&shared), Arc::clone(&private)])
            .unwrap();
        let hook = Arc::new(Recorder::default());
        m.set_access_hook(Some(hook.clone()));
        let (s1, p0) = (m.value_addr(0, 1), m.value_addr(1, 0));
        m.note_pc(7);
        m.store(s1 + 4, 4, 9).unwrap();
        m.note_pc(8);
        assert_eq!(m.load(s1, 8).unwrap(), 9 << 32);
        m.atomic_rmw(s1, 8, AtomicOp::Add, 1).unwrap();
        m.store(p0, 8, 1).unwrap();
        // Faults are still faults, and are not reported.
        assert!(m.load(s1 + 8, 1).is_err());
        let seen = hook.0.lock().unwrap().clone();
        let brief: Vec<_> = seen
            .iter()
            .map(|a| (a.access, a.map, a.slot, a.offset, a.size, a.pc))
            .collect();
        assert_eq!(
            brief,
            [
                (Access::Write, 0, 1, 4, 4, 7),
                (Access::Read, 0, 1, 0, 8, 8),
                (Access::Atomic, 0, 1, 0, 8, 8),
            ]
        );
        // Without the hook the value is on the fast path again; maps installed after the
        // hook is set are watched too.
        m.set_access_hook(None);
        m.load(s1, 8).unwrap();
        m.set_access_hook(Some(hook.clone()));
        m.install_maps(&[private, shared]).unwrap();
        m.load(m.value_addr(1, 0), 8).unwrap();
        m.load(m.value_addr(0, 0), 8).unwrap();
        assert_eq!(hook.0.lock().unwrap().len(), 4);
    }

    #[test]
    fn addresses_split_into_region_object_and_offset() {
        let a = object_addr(7, 0x12345, 0x89ab_cdef);
        assert_eq!(split_addr(a), (7, 0x12345, 0x89ab_cdef));
        assert_eq!(split_addr(guest_addr(REGION_STACK, 0x1000)), (1, 0, 0x1000));
        assert_eq!(map_handle_index(map_handle(5)), Some(5));
        assert_eq!(map_handle_index(guest_addr(REGION_STACK, 5)), None);
        assert_eq!(
            map_handle_index(object_addr(REGION_MAP_HANDLES, 1, 5)),
            None
        );
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
        assert!(m
            .atomic_rmw(a + 1, 4, AtomicOp::Add, 1)
            .unwrap_err()
            .misaligned());
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
