//! Group `maps`: host-side lookup/update of a PERCPU_ARRAY with and without `BPF_F_CPU` /
//! `BPF_F_ALL_CPUS` at N = 1, 8, 64, 256 CPUs; program-side lookups of per-CPU vs shared
//! values; and map-value access from a program with 1 vs 1,000 maps loaded. Times are the
//! thread's CPU time ([`ThreadCpuTime`]).

use std::sync::Arc;

use bpfvm::maps::{Map, MapFlags, MapSpec, MapType};
use bpfvm::{CpuId, EngineKind, Input, Program, ProgramType, Vm};
use bpfvm_benches::cpu_time::ThreadCpuTime;
use bpfvm_benches::{criterion_with, programs, vm_config, LOOP_ITERS};
use criterion::{criterion_group, criterion_main, BenchmarkId, Criterion, Throughput};

const VALUE_SIZE: u32 = 8;

fn host(c: &mut Criterion<ThreadCpuTime>) {
    let mut g = c.benchmark_group("maps");
    g.throughput(Throughput::Elements(1));
    let key = 0u32.to_ne_bytes();
    for n in [1u32, 8, 64, 256] {
        let map = Map::create(MapSpec::new(MapType::PercpuArray, 4, VALUE_SIZE, 1), n).unwrap();
        let cpu = MapFlags::cpu(n - 1).bits();
        let all_cpus = MapFlags::ALL_CPUS.bits();
        let mut full = vec![0u8; map.host_value_size(0)];
        let mut one = vec![0u8; map.host_value_size(cpu)];
        let ops: [(&str, u64); 2] = [("lookup", 0), ("lookup_cpu", cpu)];
        for (name, flags) in ops {
            g.bench_with_input(BenchmarkId::new(format!("host/{name}"), n), &n, |b, _| {
                let buf = if flags == 0 { &mut full } else { &mut one };
                b.iter(|| map.lookup(&key, buf, flags).unwrap())
            });
        }
        let ops: [(&str, u64); 3] = [
            ("update", 0),
            ("update_cpu", cpu),
            ("update_all_cpus", all_cpus),
        ];
        for (name, flags) in ops {
            g.bench_with_input(BenchmarkId::new(format!("host/{name}"), n), &n, |b, _| {
                let buf = if flags == 0 { &full } else { &one };
                b.iter(|| map.update(&key, buf, flags).unwrap())
            });
        }
    }
    g.finish();
}

fn program_lookup(c: &mut Criterion<ThreadCpuTime>) {
    let vm = Vm::new(vm_config(4));
    let mut g = c.benchmark_group("maps");
    g.throughput(Throughput::Elements(LOOP_ITERS));
    for t in [
        MapType::Array,
        MapType::PercpuArray,
        MapType::Hash,
        MapType::PercpuHash,
    ] {
        let map = Arc::new(Map::create(MapSpec::new(t, 4, VALUE_SIZE, 16), 4).unwrap());
        let value = vec![1u8; map.host_value_size(0)];
        map.update(&0u32.to_ne_bytes(), &value, 0).unwrap();
        let prog = vm
            .load(
                Program::new(programs::lookup_loop(LOOP_ITERS), ProgramType::Unspecified)
                    .with_map(map),
            )
            .unwrap();
        let input = Input::empty();
        let name = format!("{t:?}").to_lowercase();
        g.bench_function(format!("prog_lookup/{name}"), |b| {
            b.iter(|| vm.run(&prog, CpuId(1), &input).unwrap().retval)
        });
    }
    g.finish();
}

const VALUE_ITERS: u64 = 1_000;

fn map_value(c: &mut Criterion<ThreadCpuTime>) {
    let vm = Vm::new(vm_config(1));
    let mut g = c.benchmark_group("maps");
    g.throughput(Throughput::Elements(VALUE_ITERS));
    for count in [1u32, 1000] {
        let maps: Vec<Arc<Map>> = (0..count)
            .map(|_| {
                Arc::new(Map::create(MapSpec::new(MapType::Array, 4, VALUE_SIZE, 1), 1).unwrap())
            })
            .collect();
        for engine in [EngineKind::Interpreter, EngineKind::RbpfInterpreter] {
            let code = programs::map_value_loop(VALUE_ITERS, count - 1);
            let prog = vm
                .load(
                    Program::new(code, ProgramType::Unspecified)
                        .with_maps(maps.iter().cloned())
                        .with_engine(engine),
                )
                .unwrap();
            let input = Input::empty();
            g.bench_function(format!("map_value/maps_{count}/{engine}"), |b| {
                b.iter(|| vm.run(&prog, CpuId(0), &input).unwrap().retval)
            });
        }
    }
    g.finish();
}

fn config() -> Criterion<ThreadCpuTime> {
    criterion_with(ThreadCpuTime)
}

criterion_group! {
    name = benches;
    config = config();
    targets = host, program_lookup, map_value
}
criterion_main!(benches);
