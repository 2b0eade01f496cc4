//! Kernel-exact BPF maps for bpfvm, with the syscall-side ("host") API and the program-side
//! entry points used by helpers.
//!
//! Per-CPU maps behave as in Linux bpf-next (January 2026), including the host-side flags
//! `BPF_F_CPU` (a CPU number in bits 32..63 of `flags`) and `BPF_F_ALL_CPUS` (one value
//! written to every CPU). The number of CPUs `N` is chosen when a map is created.
//!
//! ```
//! use bpfvm_maps::{Map, MapFlags, MapSpec, MapType};
//!
//! // A PERCPU_ARRAY with 4 entries of u64, on N = 4 simulated CPUs.
//! let map = Map::create(MapSpec::new(MapType::PercpuArray, 4, 8, 4), 4)?;
//! let key = 1u32.to_ne_bytes();
//!
//! // Seed every CPU's copy with one value (BPF_F_ALL_CPUS: a single VS-byte buffer).
//! map.update(&key, &42u64.to_ne_bytes(), MapFlags::ALL_CPUS.bits())?;
//! // Overwrite CPU 2 only (BPF_F_CPU with the CPU in the high 32 bits).
//! map.update(&key, &7u64.to_ne_bytes(), MapFlags::cpu(2).bits())?;
//!
//! // Read one CPU: VS bytes.
//! let mut one = [0u8; 8];
//! map.lookup(&key, &mut one, MapFlags::cpu(2).bits())?;
//! assert_eq!(u64::from_ne_bytes(one), 7);
//!
//! // Read all CPUs: round_up(VS, 8) * N bytes, CPU i at i * 8.
//! let mut all = [0u8; 32];
//! map.lookup(&key, &mut all, 0)?;
//! let per_cpu: Vec<u64> = all.chunks(8).map(|c| u64::from_ne_bytes(c.try_into().unwrap())).collect();
//! assert_eq!(per_cpu, [42, 42, 7, 42]);
//!
//! // CPU numbers >= N are ERANGE; BPF_F_ALL_CPUS on a lookup is EINVAL.
//! assert_eq!(map.lookup(&key, &mut one, MapFlags::cpu(4).bits()).unwrap_err().errno(), 34);
//! assert_eq!(map.lookup(&key, &mut one, MapFlags::ALL_CPUS.bits()).unwrap_err().errno(), 22);
//! # Ok::<(), bpfvm_maps::MapError>(())
//! ```
//!
//! Concurrency: maps are `Send + Sync` and shared as `Arc<Map>`. Value bytes live in one
//! arena per map ([`ValueArena`]) and are only accessed through relaxed atomics, so host
//! copies and program accesses on several threads never race in Rust's sense; like the
//! kernel, concurrent writers of the same value may interleave (no value-level atomicity).
//! Keys and bookkeeping are behind a lock.
//!
//! Simulator choices: there is no BTF, so a value holds a `bpf_spin_lock` only when the map
//! is made with [`Map::create_with_spin_lock`]; on other maps `BPF_F_LOCK` is `EINVAL`.
//! Likewise a `bpf_timer` only with [`Map::with_timer`] (its offset, for a verifier; no
//! timers run, and host copies include its bytes). The
//! hash seed is always 0 (the kernel's order with `BPF_F_ZERO_SEED`). Arenas are limited to
//! 4 GiB (one 32-bit guest region) and hash bookkeeping to 1 GiB; bigger maps give `ENOMEM`.
//! Cgroup storage maps hold at most [`STORAGE_CAPACITY`] storages.
//!
//! Memory: every map charges its footprint to a [`MapMemory`] account before allocating
//! anything, as the kernel charges map memory to a memory cgroup; a map that would take its
//! account over the limit is `ENOMEM`. [`Map::create`] gives each map an account of its own
//! with [`DEFAULT_MAP_MEMORY_LIMIT`] (1 GiB); [`Map::create_in`] shares one account between
//! the maps of a VM or an object. Every allocation sized by a spec is fallible.
//!
//! Modules: [`flags`] (element and creation flags), [`typed`] (aya-style views),
//! [`cgroup_storage`], [`arena`] (the value memory layout), [`jhash`] (bucket hash),
//! [`memory`] (the map memory limit), and the map types with state of their own: [`lpm`]
//! (LPM_TRIE), [`queue`] (QUEUE/STACK), [`ringbuf`] (RINGBUF), [`perf`] (PERF_EVENT_ARRAY), [`prog_array`] (PROG_ARRAY),
//! [`stack_trace`] (STACK_TRACE), [`cgroup_array`] (CGROUP_ARRAY).
#![deny(unsafe_code)]

pub mod arena;
mod array;
mod batch;
pub mod cgroup_array;
pub mod cgroup_storage;
mod error;
pub mod flags;
mod hash;
pub mod jhash;
pub mod lpm;
mod lru;
mod map;
pub mod memory;
pub mod of_maps;
pub mod perf;
mod pod;
pub mod prog_array;
pub mod queue;
pub mod redirect;
pub mod ringbuf;
mod spec;
pub mod stack_trace;
pub mod typed;
mod values;

pub use arena::ValueArena;
pub use bytemuck;
pub use cgroup_storage::{CgroupStorageKey, STORAGE_CAPACITY};
pub use error::{errno, MapError};
pub use flags::MapFlags;
pub use map::{Map, SPIN_LOCK_WAIT};
pub use of_maps::InnerTemplate;
pub use perf::PerfRecord;
pub use pod::Pod;
pub use prog_array::ProgEntry;
pub use redirect::RedirectEntry;
pub use ringbuf::Reservation;
pub use spec::{CpuId, MapSpec, MapType};
pub use typed::{Array, HashMap, PerCpuArray, PerCpuHashMap};
pub use values::{CpuSum, PerCpuValues};

pub use memory::{MapMemory, DEFAULT_MAP_MEMORY_LIMIT};

/// The top-level README's examples, compiled and run as doc tests.
#[cfg(doctest)]
#[doc = include_str!("../../README.md")]
pub struct ReadmeDoctests;
