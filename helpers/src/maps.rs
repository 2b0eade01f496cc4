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
    /// map's `prog_lookup*` returns must be `base + k * stride` with `value_size` bytes inside.
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
pub trait ProgramMap: Send + Sync + Debug {
    /// Key size in bytes.
    fn key_size(&self) -> usize;
    /// Value size in bytes.
    fn value_size(&self) -> usize;
    /// Pointer to the value for `key` (this CPU's copy for per-CPU maps), or `None`.
    fn prog_lookup(&self, cpu: u32, key: &[u8]) -> Option<NonNull<u8>>;
    /// Pointer to `target_cpu`'s copy of the value for `key` (helper 195), or `None`.
    fn prog_lookup_percpu(&self, cpu: u32, key: &[u8], target_cpu: u32) -> Option<NonNull<u8>>;
    /// Inserts or updates; on failure returns the kernel's (positive) errno.
    fn prog_update(&self, cpu: u32, key: &[u8], value: &[u8], flags: u64) -> Result<(), i32>;
    /// Deletes; on failure returns the kernel's (positive) errno.
    fn prog_delete(&self, cpu: u32, key: &[u8]) -> Result<(), i32>;
    /// The value arena.
    fn arena(&self) -> ArenaInfo;
    /// Whether programs may only read values (`BPF_F_RDONLY_PROG`, `.rodata`).
    fn read_only_for_program(&self) -> bool;
}
