//! `ProgramMap`: the program-side view of a map that helpers need.
//!
//! `bpfvm_maps::Map` implements it (see `docs/internals.md`); tests may use their own maps.

use std::fmt::Debug;
use std::ptr::NonNull;

/// Where a map's value bytes live: one allocation that never moves while the map lives.
#[derive(Debug, Clone, Copy)]
pub struct ArenaInfo {
    /// First byte of the arena.
    pub base: NonNull<u8>,
    /// Length of the arena in bytes.
    pub len: usize,
    /// Distance between consecutive values (`round_up(value_size, 8)`).
    pub stride: usize,
    /// Size of one value.
    pub value_size: usize,
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
