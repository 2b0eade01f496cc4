//! Group `scaling`: a per-CPU counter and a shared atomic counter, the same total work
//! (2 simulated CPUs × `RUNS` runs × `COUNTER_ITERS` increments) on rayon pools of 1 and 2
//! worker threads through `Vm::run_on_all`. Per-CPU maps should scale; a contended atomic
//! should not. `native` does the same increments in Rust on two cache-line-apart counters:
//! what the host itself gives on 2 threads, the ceiling for the others.

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;

use bpfvm::maps::{Map, MapSpec, MapType};
use bpfvm::{EngineKind, Input, Program, ProgramType, Vm};
use bpfvm_benches::{criterion_settings, programs, vm_config};
use criterion::{criterion_group, criterion_main, Criterion, Throughput};

const CPUS: u32 = 2;
const RUNS: u64 = 10;
const COUNTER_ITERS: u64 = 10_000;

fn scaling(c: &mut Criterion) {
    let vm = Vm::new(vm_config(CPUS));
    let mut g = c.benchmark_group("scaling");
    g.throughput(Throughput::Elements(CPUS as u64 * RUNS * COUNTER_ITERS));
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
    for (name, map_type, engine) in cases {
        let map = Arc::new(Map::create(MapSpec::new(map_type, 4, 8, 1), CPUS).unwrap());
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
            .unwrap();
        let input = Input::empty();
        for threads in [1, 2] {
            let pool = pool(threads);
            g.bench_function(format!("{name}/threads_{threads}"), |b| {
                b.iter(|| pool.install(|| vm.run_on_all(&prog, RUNS, &input).unwrap()))
            });
        }
    }
    let counters = [Padded::default(), Padded::default()];
    for threads in [1, 2] {
        let pool = pool(threads);
        g.bench_function(format!("native/threads_{threads}"), |b| {
            b.iter(|| pool.install(|| native_counters(&counters)))
        });
    }
    g.finish();
}

/// A rayon pool of `threads` worker threads.
fn pool(threads: usize) -> rayon::ThreadPool {
    rayon::ThreadPoolBuilder::new()
        .num_threads(threads)
        .build()
        .unwrap()
}

/// A counter alone on its cache lines (128 bytes: a line and its prefetch neighbour).
#[derive(Default)]
#[repr(align(128))]
struct Padded(AtomicU64);

/// Each of the `CPUS` counters incremented `RUNS * COUNTER_ITERS` times in parallel; loads
/// and stores stay relaxed-atomic memory accesses, as the VM's are.
fn native_counters(counters: &[Padded; CPUS as usize]) -> u64 {
    use rayon::prelude::*;
    counters
        .par_iter()
        .map(|c| {
            let c = std::hint::black_box(&c.0);
            for _ in 0..RUNS * COUNTER_ITERS {
                c.store(c.load(Ordering::Relaxed).wrapping_add(1), Ordering::Relaxed);
            }
            c.load(Ordering::Relaxed)
        })
        .sum()
}

fn config() -> Criterion {
    let (warm, measure, samples) = criterion_settings();
    Criterion::default()
        .warm_up_time(warm)
        .measurement_time(measure)
        .sample_size(samples)
}

criterion_group! {
    name = benches;
    config = config();
    targets = scaling
}
criterion_main!(benches);
