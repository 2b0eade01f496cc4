//! Group `race`: the interleaving explorer (`bpfvm::race`). One criterion iteration is one
//! whole exhaustive exploration of a non-atomic shared counter (2 shared accesses per run,
//! `src/programs.rs::shared_counter_padded`) on 2, 3 and 4 CPUs, for programs of about 10
//! and 1,000 instructions, with partial-order reduction (sleep sets) and without; the
//! throughput is the number of schedules run (complete or cut short), so criterion reports
//! schedules per second. The schedule counts themselves are printed once per case.
//! Wall-clock time: every schedule runs its CPUs on threads of their own.

use std::sync::Arc;

use bpfvm::maps::{Map, MapSpec, MapType};
use bpfvm::race::{Explorer, RaceConfig};
use bpfvm::{Program, ProgramType, VerifierMode};
use bpfvm_benches::programs;
use criterion::{criterion_group, criterion_main, BenchmarkId, Criterion, Throughput};

fn explorer(cpus: u32, pad: u64, por: bool) -> Explorer {
    let map = Arc::new(Map::create(MapSpec::new(MapType::Array, 4, 8, 1), cpus).unwrap());
    let program = Program::new(
        programs::shared_counter_padded(pad),
        ProgramType::Unspecified,
    )
    .with_map(map);
    Explorer::new(
        program,
        RaceConfig {
            cpus,
            partial_order_reduction: por,
            verifier: VerifierMode::Structural,
            ..RaceConfig::default()
        },
    )
    .unwrap()
}

fn race(c: &mut Criterion) {
    let mut g = c.benchmark_group("race");
    g.sample_size(10);
    for cpus in [2u32, 3, 4] {
        for pad in [1u64, 330] {
            let insns = programs::shared_counter_padded_insns(pad);
            for por in [true, false] {
                let x = explorer(cpus, pad, por);
                let first = x.exhaustive().unwrap();
                assert!(first.complete && first.lost_update.is_some());
                let runs = first.schedules + first.pruned;
                let name = format!("exhaustive_{}", if por { "por" } else { "full" });
                let id = format!("{cpus}cpu_{insns}insn");
                eprintln!(
                    "race/{name}/{id}: {} complete schedules + {} cut short",
                    first.schedules, first.pruned
                );
                g.throughput(Throughput::Elements(runs));
                g.bench_function(BenchmarkId::new(name, id), |b| {
                    b.iter(|| x.exhaustive().unwrap())
                });
            }
        }
    }
    g.finish();
}

fn config() -> Criterion {
    let (warm, measure, _) = bpfvm_benches::criterion_settings();
    Criterion::default()
        .warm_up_time(warm)
        .measurement_time(measure)
        .sample_size(10)
}

criterion_group! {
    name = benches;
    config = config();
    targets = race
}
criterion_main!(benches);
