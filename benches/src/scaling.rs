//! The `scaling` workloads, shared by the criterion group (`benches/scaling.rs`) and the
//! interleaved speedup measurement (`src/bin/scaling_ratio.rs`): the same total work (2
//! simulated CPUs × [`RUNS`] runs × [`COUNTER_ITERS`] increments) on a rayon pool of 1 or 2
//! worker threads.

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;

use bpfvm::maps::{Map, MapSpec, MapType};
use bpfvm::{EngineKind, Input, LoadedProgram, Program, ProgramType, Vm};
use rayon::prelude::*;

use crate::{programs, vm_config};

/// Simulated CPUs (one per worker thread at most).
pub const CPUS: u32 = 2;
/// Runs per CPU per measurement.
pub const RUNS: u64 = 10;
/// Counter increments per run.
pub const COUNTER_ITERS: u64 = 10_000;

/// A rayon pool of `threads` worker threads.
pub fn pool(threads: usize) -> rayon::ThreadPool {
    rayon::ThreadPoolBuilder::new()
        .num_threads(threads)
        .build()
        .expect("a rayon pool")
}

/// One workload: a program run on every CPU through `Vm::run_on_all`, or native Rust.
#[derive(Debug)]
pub enum Workload {
    /// bpfvm running a counter program.
    Vm {
        /// The VM (CPUS CPUs).
        vm: Vm,
        /// The loaded counter program.
        prog: LoadedProgram,
    },
    /// Increments in Rust ([`NATIVE_FACTOR`] times as many) on two counters on separate
    /// cache lines.
    Native([Padded; CPUS as usize]),
}

/// A counter alone on its cache lines (128 bytes: a line and its prefetch neighbour).
#[derive(Debug, Default)]
#[repr(align(128))]
pub struct Padded(AtomicU64);

/// The native workload does this many times the VM's increments: at 1x it lasts ~0.1 ms,
/// and rayon's fork-join latency, not the host's cores, would decide its speedup.
pub const NATIVE_FACTOR: u64 = 100;

/// The group's workloads by name: `percpu_counter` (plain load/add/store on the CPU's own
/// PERCPU_ARRAY copy), `atomic_counter` (`lock xadd` on one shared ARRAY value),
/// `percpu_counter_rbpf` (the first on rbpf's interpreter) and `native`
/// ([`NATIVE_FACTOR`] times the increments).
pub fn workloads() -> Vec<(&'static str, Workload)> {
    let cases = [
        (
            "percpu_counter",
            MapType::PercpuArray,
            EngineKind::Interpreter,
        ),
        ("atomic_counter", MapType::Array, EngineKind::Interpreter),
        (
            "percpu_counter_rbpf",
            MapType::PercpuArray,
            EngineKind::RbpfInterpreter,
        ),
    ];
    let mut out: Vec<(&'static str, Workload)> = cases
        .into_iter()
        .map(|(name, map_type, engine)| {
            let vm = Vm::new(vm_config(CPUS));
            let map = Arc::new(Map::create(MapSpec::new(map_type, 4, 8, 1), CPUS).expect("map"));
            let code = if map_type == MapType::Array {
                programs::atomic_counter(COUNTER_ITERS)
            } else {
                programs::percpu_counter(COUNTER_ITERS)
            };
            let prog = vm
                .load(
                    Program::new(code, ProgramType::Unspecified)
                        .with_map(map)
                        .with_engine(engine),
                )
                .expect("load");
            (name, Workload::Vm { vm, prog })
        })
        .collect();
    out.push(("native", Workload::Native(Default::default())));
    out
}

impl Workload {
    /// Does the workload once on the current rayon pool; returns a value to keep it alive.
    pub fn run(&self) -> u64 {
        match self {
            Workload::Vm { vm, prog } => vm
                .run_on_all(prog, RUNS, &Input::empty())
                .expect("counter runs")
                .iter()
                .map(|v| v.len() as u64)
                .sum(),
            Workload::Native(counters) => counters
                .par_iter()
                .map(|c| {
                    let c = std::hint::black_box(&c.0);
                    for _ in 0..RUNS * COUNTER_ITERS * NATIVE_FACTOR {
                        c.store(c.load(Ordering::Relaxed).wrapping_add(1), Ordering::Relaxed);
                    }
                    c.load(Ordering::Relaxed)
                })
                .sum(),
        }
    }
}
