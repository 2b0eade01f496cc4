//! Group `scaling`: a per-CPU counter and a shared atomic counter, the same total work
//! (2 simulated CPUs × `RUNS` runs × `COUNTER_ITERS` increments) on rayon pools of 1 and 2
//! worker threads through `Vm::run_on_all` (`src/scaling.rs`). Per-CPU maps should scale; a
//! contended atomic should not. `native` does increments in Rust (100 times as many) on two
//! cache-line-apart counters: what the host itself gives on 2 threads.
//!
//! Wall-clock time of two separate measurements is at the mercy of the machine's load
//! between them; `src/bin/scaling_ratio.rs` measures the speedup from interleaved pairs.

use bpfvm_benches::criterion_with;
use bpfvm_benches::scaling::{pool, workloads, Workload, COUNTER_ITERS, CPUS, NATIVE_FACTOR, RUNS};
use criterion::{criterion_group, criterion_main, Criterion, Throughput};

fn scaling(c: &mut Criterion) {
    let mut g = c.benchmark_group("scaling");
    for (name, work) in workloads() {
        let factor = match work {
            Workload::Native(_) => NATIVE_FACTOR,
            Workload::Vm { .. } => 1,
        };
        g.throughput(Throughput::Elements(
            CPUS as u64 * RUNS * COUNTER_ITERS * factor,
        ));
        for threads in [1, 2] {
            let pool = pool(threads);
            g.bench_function(format!("{name}/threads_{threads}"), |b| {
                b.iter(|| pool.install(|| work.run()))
            });
        }
    }
    g.finish();
}

fn config() -> Criterion {
    criterion_with(criterion::measurement::WallTime)
}

criterion_group! {
    name = benches;
    config = config();
    targets = scaling
}
criterion_main!(benches);
