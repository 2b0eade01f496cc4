//! `ProgramMap`: the program-side view of a map that helpers need.
//!
//! `bpfvm_maps::Map` implements it (see `docs/internals.md`); tests may use their own maps.

use std::fmt::Debug;
use std::ptr::NonNull;

/// Where a map's value bytes live: one allocation that never moves while the map lives.
#[derive(Debug, Clone, Copy)]
pub struct ArenaInfo {
    base: NonNull<u8>,
    len: usize,
    stride: usize,
    value_size: usize,
}

impl ArenaInfo {
    /// Describes an arena of `len` bytes at `base` holding values of `value_size` bytes every
    /// `stride` bytes.
    ///
    /// # Safety
    /// `base .. base + len` must stay valid for reads and writes through atomics, without
    /// moving, for as long as the map that returns this value is alive; every pointer that
    /// map's `prog_lookup*` returns must be a slot `k < len / stride`, whose `value_size`
    /// bytes start at `base + k * stride`.
    #[allow(unsafe_code)]
    pub unsafe fn new(
        base: NonNull<u8>,
        len: usize,
        stride: usize,
        value_size: usize,
    ) -> ArenaInfo {
        ArenaInfo {
            base,
            len,
            stride,
            value_size,
        }
    }

    /// First byte of the arena.
    pub fn base(&self) -> NonNull<u8> {
        self.base
    }

    /// Length of the arena in bytes.
    pub fn len(&self) -> usize {
        self.len
    }

    /// Number of value slots (`len / stride`).
    pub fn slots(&self) -> usize {
        self.len.checked_div(self.stride).unwrap_or(0)
    }

    /// Whether the arena is empty.
    pub fn is_empty(&self) -> bool {
        self.len == 0
    }

    /// Distance between consecutive values (`round_up(value_size, 8)`).
    pub fn stride(&self) -> usize {
        self.stride
    }

    /// Size of one value.
    pub fn value_size(&self) -> usize {
        self.value_size
    }
}

/// A map as a running program sees it. `cpu` is the simulated CPU the program runs on.
///
/// Lookups return the arena *slot* of the value (see [`ArenaInfo`]), from which an engine
/// builds the address the program sees ([`crate::Memory::value_addr`]): a guest address that
/// names exactly that value, or a host pointer for the unsandboxed engines.
pub trait ProgramMap: Send + Sync + Debug {
    /// The map's name (as the kernel keeps it, at most 15 bytes), for messages.
    fn name(&self) -> &str {
        ""
    }
    /// The map's creation parameters, when it has them (`bpfvm_maps::Map` does; a test's
    /// own map may not).
    fn spec(&self) -> Option<&bpfvm_maps::MapSpec> {
        None
    }
    /// The number of simulated CPUs the map was created for, when it knows it
    /// (`bpfvm_maps::Map` does): a VM refuses programs whose maps were made for another
    /// count.
    fn ncpus(&self) -> Option<u32> {
        None
    }
    /// Key size in bytes.
    fn key_size(&self) -> usize;
    /// Value size in bytes.
    fn value_size(&self) -> usize;
    /// Slot of the value for `key` (this CPU's copy for per-CPU maps), or `None`.
    fn prog_lookup_slot(&self, cpu: u32, key: &[u8]) -> Option<usize>;
    /// The map's id ([`bpfvm_maps::Map::id`]), when it has one: how the inner maps of a
    /// map-in-map are found among a program's maps.
    fn map_id(&self) -> Option<u32> {
        None
    }
    /// Whether the map's values are maps (`ARRAY_OF_MAPS`, `HASH_OF_MAPS`): helper 1 then
    /// returns a map handle ([`ProgramMap::prog_lookup_inner`]), not a value address.
    fn is_map_of_maps(&self) -> bool {
        false
    }
    /// On a map-in-map: the [`ProgramMap::map_id`] of the inner map at `key`, or `None`.
    fn prog_lookup_inner(&self, _cpu: u32, _key: &[u8]) -> Option<u32> {
        None
    }
    /// Slot of `target_cpu`'s copy of the value for `key` (helper 195), or `None`.
    fn prog_lookup_percpu_slot(&self, cpu: u32, key: &[u8], target_cpu: u32) -> Option<usize>;
    /// Inserts or updates; on failure returns the kernel's (positive) errno.
    fn prog_update(&self, cpu: u32, key: &[u8], value: &[u8], flags: u64) -> Result<(), i32>;
    /// Deletes; on failure returns the kernel's (positive) errno.
    fn prog_delete(&self, cpu: u32, key: &[u8]) -> Result<(), i32>;
    /// The value arena.
    fn arena(&self) -> ArenaInfo;
    /// Whether programs may only read values (`BPF_F_RDONLY_PROG`, `.rodata`).
    fn read_only_for_program(&self) -> bool;
    /// Whether programs may only write values (`BPF_F_WRONLY_PROG`).
    fn write_only_for_program(&self) -> bool {
        false
    }
    /// The bytes `(offset, len)` of each value that programs may not access directly: the
    /// value's `bpf_spin_lock`.
    fn special_field(&self) -> Option<(u32, u32)> {
        None
    }
    /// The element a slot's value belongs to and, on per-CPU maps, whose CPU's copy it is
    /// (for messages).
    fn slot_owner(&self, slot: usize) -> (u32, Option<u32>) {
        (slot as u32, None)
    }
    /// The map as a `bpfvm_maps::Map`, for helpers that use map types beyond the common
    /// operations of this trait (queues, ring buffers, perf event arrays); `None` for a
    /// test's own maps.
    fn as_map(&self) -> Option<&bpfvm_maps::Map> {
        None
    }
    /// Helper 81: the slot of the cgroup storage attached at `(cgroup_id, attach_type)`
    /// (`cpu`'s copy for the per-CPU type), or `None` (also for maps that are not cgroup
    /// storage).
    fn prog_local_storage_slot(&self, cpu: u32, cgroup_id: u64, attach_type: u32) -> Option<usize> {
        let _ = (cpu, cgroup_id, attach_type);
        None
    }
    /// Helper 51 (`bpf_redirect_map`): the element of a DEVMAP, DEVMAP_HASH, CPUMAP or
    /// XSKMAP under `key`, or `None` (also for maps of other types).
    fn redirect_lookup(&self, key: u32) -> Option<bpfvm_maps::RedirectEntry> {
        let _ = key;
        None
    }
}

impl ProgramMap for bpfvm_maps::Map {
    fn name(&self) -> &str {
        &bpfvm_maps::Map::spec(self).name
    }

    fn spec(&self) -> Option<&bpfvm_maps::MapSpec> {
        Some(bpfvm_maps::Map::spec(self))
    }

    fn ncpus(&self) -> Option<u32> {
        Some(bpfvm_maps::Map::ncpus(self))
    }

    fn key_size(&self) -> usize {
        bpfvm_maps::Map::key_size(self) as usize
    }

    fn value_size(&self) -> usize {
        bpfvm_maps::Map::value_size(self) as usize
    }

    fn prog_lookup_slot(&self, cpu: u32, key: &[u8]) -> Option<usize> {
        bpfvm_maps::Map::prog_lookup_slot(self, bpfvm_maps::CpuId(cpu), key)
    }

    fn map_id(&self) -> Option<u32> {
        Some(self.id())
    }

    fn is_map_of_maps(&self) -> bool {
        self.map_type().is_map_of_maps()
    }

    fn prog_lookup_inner(&self, cpu: u32, key: &[u8]) -> Option<u32> {
        bpfvm_maps::Map::prog_lookup_inner(self, bpfvm_maps::CpuId(cpu), key)
    }

    fn prog_lookup_percpu_slot(&self, cpu: u32, key: &[u8], target_cpu: u32) -> Option<usize> {
        bpfvm_maps::Map::prog_lookup_percpu_slot(self, bpfvm_maps::CpuId(cpu), key, target_cpu)
    }

    fn prog_update(&self, cpu: u32, key: &[u8], value: &[u8], flags: u64) -> Result<(), i32> {
        bpfvm_maps::Map::prog_update(self, bpfvm_maps::CpuId(cpu), key, value, flags)
            .map_err(|e| e.errno())
    }

    fn prog_delete(&self, cpu: u32, key: &[u8]) -> Result<(), i32> {
        bpfvm_maps::Map::prog_delete(self, bpfvm_maps::CpuId(cpu), key).map_err(|e| e.errno())
    }

    #[allow(unsafe_code)]
    fn arena(&self) -> ArenaInfo {
        let a = bpfvm_maps::Map::arena(self);
        // SAFETY: bpfvm-maps guarantees (docs/internals.md, `ValueArena`) that the arena is
        // one allocation that never moves or frees while the map lives, accessed only through
        // atomics, and that every `prog_lookup*_slot` is a slot of it.
        unsafe { ArenaInfo::new(a.base, a.len, a.stride, a.value_size) }
    }

    fn read_only_for_program(&self) -> bool {
        self.rdonly_prog()
    }

    fn write_only_for_program(&self) -> bool {
        self.wronly_prog()
    }

    fn special_field(&self) -> Option<(u32, u32)> {
        self.spin_lock_off().map(|off| (off, 4))
    }

    fn slot_owner(&self, slot: usize) -> (u32, Option<u32>) {
        bpfvm_maps::Map::slot_owner(self, slot)
    }

    fn as_map(&self) -> Option<&bpfvm_maps::Map> {
        Some(self)
    }

    fn prog_local_storage_slot(&self, cpu: u32, cgroup_id: u64, attach_type: u32) -> Option<usize> {
        let key = bpfvm_maps::CgroupStorageKey {
            cgroup_id,
            attach_type,
        };
        bpfvm_maps::Map::prog_local_storage_slot(self, bpfvm_maps::CpuId(cpu), key)
    }

    fn redirect_lookup(&self, key: u32) -> Option<bpfvm_maps::RedirectEntry> {
        bpfvm_maps::Map::prog_redirect_lookup(self, key)
    }
}
