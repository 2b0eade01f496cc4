//! Checks that every benchmark program computes the same result on every engine, on rbpf
//! called directly, and natively, so the benches compare the same computation.

use std::sync::Arc;

use bpfvm::maps::{Map, MapSpec, MapType};
use bpfvm::{CpuId, EngineKind, Input, Program, ProgramType, Vm};
use bpfvm_benches::direct::Direct;
use bpfvm_benches::{native, programs, vm_config};

fn run(code: &[u8], engine: EngineKind) -> u64 {
    let vm = Vm::new(vm_config(1));
    let prog = vm
        .load(Program::new(code.to_vec(), ProgramType::Unspecified).with_engine(engine))
        .unwrap();
    vm.run(&prog, CpuId(0), &Input::empty()).unwrap().retval
}

/// A program, its native version, and whether it calls helpers.
type Case = (Vec<u8>, fn(u64) -> u64, bool);

fn jit_available() -> bool {
    cfg!(all(target_arch = "x86_64", not(windows)))
}

#[test]
fn loops_agree_everywhere() {
    let n = 1000;
    let cases: [Case; 3] = [
        (programs::alu_loop(n), native::alu_loop, false),
        (programs::memory_loop(n), native::memory_loop, false),
        (programs::helper_loop(n), native::helper_loop, true),
    ];
    for (code, f, calls) in cases {
        let want = f(n);
        assert_ne!(want, 1, "a trivial result would prove nothing");
        for engine in EngineKind::available() {
            if calls && engine == EngineKind::RbpfJit {
                continue;
            }
            assert_eq!(run(&code, engine), want, "{engine}");
        }
        assert_eq!(Direct::new(&code, false).unwrap().run().unwrap(), want);
        if jit_available() {
            assert_eq!(Direct::new(&code, true).unwrap().run().unwrap(), want);
        }
    }
    assert_eq!(
        run(&programs::helper_baseline_loop(n), EngineKind::Interpreter),
        0
    );
    // helper_loop's helper 8 is inlined by `interpreter`: it must still return each CPU.
    let vm = Vm::new(vm_config(3));
    let prog = vm
        .load(Program::new(
            programs::helper_loop(n),
            ProgramType::Unspecified,
        ))
        .unwrap();
    for cpu in 0..3 {
        let r = vm.run(&prog, CpuId(cpu), &Input::empty()).unwrap().retval;
        assert_eq!(r, n * cpu as u64, "cpu {cpu}");
    }
}

/// `helper_call_loop` sums `bpf_ktime_get_ns` readings: `n × start + 1000 × n(n − 1)/2`,
/// where `start` is the first run's virtual clock (the same on every engine: same seed).
#[test]
fn helper_call_loop_agrees_on_every_engine_that_calls_helpers() {
    let (n, one) = (1000, programs::helper_call_loop(1));
    let code = programs::helper_call_loop(n);
    let mut seen = Vec::new();
    for engine in EngineKind::available() {
        if engine == EngineKind::RbpfJit {
            continue;
        }
        // One iteration reads the clock once: the run's start time (same seed, first run).
        let start = run(&one, engine);
        assert_ne!(start, 0, "{engine}: the virtual clock starts from the seed");
        let want = n.wrapping_mul(start).wrapping_add(1000 * n * (n - 1) / 2);
        let got = run(&code, engine);
        assert_eq!(got, want, "{engine}");
        seen.push(got);
    }
    assert!(seen.len() >= 2 && seen.windows(2).all(|w| w[0] == w[1]));
    assert_eq!(
        run(&programs::empty(), EngineKind::Interpreter),
        native::empty()
    );
}

#[test]
fn map_programs_read_and_count() {
    let vm = Vm::new(vm_config(2));
    // lookup_loop sums the value of key 0 once per iteration.
    let map = Arc::new(Map::create(MapSpec::new(MapType::Array, 4, 8, 1), 2).unwrap());
    map.update(&0u32.to_ne_bytes(), &3u64.to_ne_bytes(), 0)
        .unwrap();
    let prog = vm
        .load(Program::new(programs::lookup_loop(10), ProgramType::Unspecified).with_map(map))
        .unwrap();
    assert_eq!(vm.run(&prog, CpuId(0), &Input::empty()).unwrap().retval, 30);

    // map_value_loop increments the value of the last of 5 maps only.
    let maps: Vec<Arc<Map>> = (0..5)
        .map(|_| Arc::new(Map::create(MapSpec::new(MapType::Array, 4, 8, 1), 2).unwrap()))
        .collect();
    for engine in [EngineKind::Interpreter, EngineKind::RbpfInterpreter] {
        let prog = vm
            .load(
                Program::new(programs::map_value_loop(7, 4), ProgramType::Unspecified)
                    .with_maps(maps.iter().cloned())
                    .with_engine(engine),
            )
            .unwrap();
        vm.run(&prog, CpuId(0), &Input::empty()).unwrap();
    }
    let mut v = [0u8; 8];
    maps[4].lookup(&0u32.to_ne_bytes(), &mut v, 0).unwrap();
    assert_eq!(u64::from_ne_bytes(v), 14);
    maps[0].lookup(&0u32.to_ne_bytes(), &mut v, 0).unwrap();
    assert_eq!(u64::from_ne_bytes(v), 0);

    // Counters: per-CPU copies count separately, the shared atomic counts everything.
    let percpu = Arc::new(Map::create(MapSpec::new(MapType::PercpuArray, 4, 8, 1), 2).unwrap());
    let prog = vm
        .load(
            Program::new(programs::percpu_counter(100), ProgramType::Unspecified)
                .with_map(percpu.clone()),
        )
        .unwrap();
    vm.run_on_all(&prog, 3, &Input::empty()).unwrap();
    let mut all = [0u8; 16];
    percpu.lookup(&0u32.to_ne_bytes(), &mut all, 0).unwrap();
    assert_eq!(u64::from_ne_bytes(all[..8].try_into().unwrap()), 300);
    assert_eq!(u64::from_ne_bytes(all[8..].try_into().unwrap()), 300);

    let shared = Arc::new(Map::create(MapSpec::new(MapType::Array, 4, 8, 1), 2).unwrap());
    let prog = vm
        .load(
            Program::new(programs::atomic_counter(100), ProgramType::Unspecified)
                .with_map(shared.clone()),
        )
        .unwrap();
    vm.run_on_all(&prog, 3, &Input::empty()).unwrap();
    shared.lookup(&0u32.to_ne_bytes(), &mut v, 0).unwrap();
    assert_eq!(u64::from_ne_bytes(v), 600);
}
