//! Group `interpreter`: the ALU loop, memory loop, helper loops and empty program on each
//! engine through bpfvm (`vm/<engine>`), on rbpf called directly (`direct/<engine>`), and as
//! native Rust (`native`). `helper_loop` calls helper 8, which the `interpreter` engine
//! inlines (as the kernel does); `helper_call_loop` calls helper 5, which every engine really
//! calls. Times are the thread's CPU time ([`ThreadCpuTime`]). One criterion iteration is one
//! whole run; the throughput is the number of BPF instructions executed, so the report
//! divides by it.

use bpfvm::{CpuId, EngineKind, Input, Program, ProgramType, TestRun, Vm};
use bpfvm_benches::cpu_time::ThreadCpuTime;
use bpfvm_benches::direct::Direct;
use bpfvm_benches::{criterion_with, native, programs, vm_config, LOOP_ITERS};
use criterion::{criterion_group, criterion_main, BenchmarkGroup, Criterion, Throughput};

type Group<'a> = BenchmarkGroup<'a, ThreadCpuTime>;

struct Case {
    name: &'static str,
    code: Vec<u8>,
    insns: u64,
    /// The native Rust loop, if the case has one.
    native: Option<fn(u64) -> u64>,
    /// rbpf's JIT calls helpers with a misaligned stack; bpfvm refuses that.
    calls_helpers: bool,
    /// Whether rbpf is also benchmarked directly (`src/direct.rs` registers helper 8 only).
    direct: bool,
    /// Whether every run returns the same value (not so when it reads the virtual clock,
    /// which advances from run to run).
    same_result: bool,
}

fn cases() -> Vec<Case> {
    let n = LOOP_ITERS;
    vec![
        Case {
            name: "alu_loop",
            code: programs::alu_loop(n),
            insns: programs::alu_loop_insns(n),
            native: Some(native::alu_loop),
            calls_helpers: false,
            direct: true,
            same_result: true,
        },
        Case {
            name: "memory_loop",
            code: programs::memory_loop(n),
            insns: programs::memory_loop_insns(n),
            native: Some(native::memory_loop),
            calls_helpers: false,
            direct: true,
            same_result: true,
        },
        Case {
            name: "helper_loop",
            code: programs::helper_loop(n),
            insns: programs::helper_loop_insns(n),
            native: Some(native::helper_loop),
            calls_helpers: true,
            direct: true,
            same_result: true,
        },
        // A helper that is really called on every engine (`interpreter` inlines helper 8).
        Case {
            name: "helper_call_loop",
            code: programs::helper_call_loop(n),
            insns: programs::helper_loop_insns(n),
            native: None,
            calls_helpers: true,
            direct: false,
            same_result: false,
        },
        Case {
            name: "helper_baseline_loop",
            code: programs::helper_baseline_loop(n),
            insns: programs::helper_loop_insns(n),
            native: None,
            calls_helpers: false,
            direct: true,
            same_result: true,
        },
    ]
}

fn engines(case: &Case) -> impl Iterator<Item = EngineKind> + '_ {
    EngineKind::available()
        .into_iter()
        .filter(move |e| !(case.calls_helpers && *e == EngineKind::RbpfJit))
}

fn bench_case(g: &mut Group<'_>, vm: &Vm, case: &Case) {
    g.throughput(Throughput::Elements(case.insns));
    for engine in engines(case) {
        let prog = vm
            .load(Program::new(case.code.clone(), ProgramType::Unspecified).with_engine(engine))
            .expect("bench programs load");
        let input = Input::empty();
        let expected = vm.run(&prog, CpuId(0), &input).unwrap().retval;
        g.bench_function(format!("{}/vm/{engine}", case.name), |b| {
            b.iter(|| {
                let r = vm.run(&prog, CpuId(0), &input).unwrap().retval;
                debug_assert!(!case.same_result || r == expected);
                r
            })
        });
    }
    for jit in [false, true] {
        if !case.direct || (jit && !cfg!(all(target_arch = "x86_64", not(windows)))) {
            continue;
        }
        let direct = Direct::new(&case.code, jit).expect("rbpf accepts bench programs");
        let engine = if jit { "rbpf-jit" } else { "rbpf-interpreter" };
        g.bench_function(format!("{}/direct/{engine}", case.name), |b| {
            b.iter(|| direct.run().unwrap())
        });
    }
    if let Some(f) = case.native {
        g.bench_function(format!("{}/native", case.name), |b| {
            b.iter(|| f(std::hint::black_box(LOOP_ITERS)))
        });
    }
}

fn bench_empty(g: &mut Group<'_>, vm: &Vm) {
    g.throughput(Throughput::Elements(1));
    let code = programs::empty();
    for engine in EngineKind::available() {
        let prog = vm
            .load(Program::new(code.clone(), ProgramType::Unspecified).with_engine(engine))
            .unwrap();
        let input = Input::empty();
        g.bench_function(format!("empty/vm/{engine}"), |b| {
            b.iter(|| vm.run(&prog, CpuId(0), &input).unwrap().retval)
        });
        let req = TestRun {
            input: Input::empty(),
            repeat: 1,
            cpu: CpuId(0),
        };
        g.bench_function(format!("empty_test_run/vm/{engine}"), |b| {
            b.iter(|| vm.test_run(&prog, &req).unwrap().retval)
        });
        // One `test_run` of 1,000 repetitions: the per-run cost inside the loop (what the
        // kernel's `duration` reports), without the per-call lock, clock reads and result.
        let req_1000 = TestRun {
            repeat: 1000,
            ..req.clone()
        };
        g.throughput(Throughput::Elements(1000));
        g.bench_function(format!("empty_test_run_x1000/vm/{engine}"), |b| {
            b.iter(|| vm.test_run(&prog, &req_1000).unwrap().retval)
        });
        g.throughput(Throughput::Elements(1));
    }
    for jit in [false, true] {
        if jit && !cfg!(all(target_arch = "x86_64", not(windows))) {
            continue;
        }
        let direct = Direct::new(&code, jit).unwrap();
        let engine = if jit { "rbpf-jit" } else { "rbpf-interpreter" };
        g.bench_function(format!("empty/direct/{engine}"), |b| {
            b.iter(|| direct.run().unwrap())
        });
    }
    g.bench_function("empty/native", |b| b.iter(native::empty));
    // What `test_run`'s two clock reads cost on this machine (like the kernel's
    // `bpf_test_timer`, it reads a monotonic clock before and after the repetitions).
    g.bench_function("clock/now_elapsed", |b| {
        b.iter(|| std::hint::black_box(std::time::Instant::now()).elapsed())
    });
}

/// What loading (verifying, preparing, compiling) a 1,000-instruction program costs on
/// each sandboxed engine: the `jit` engine's compile time per 1,000 instructions.
fn bench_load(g: &mut Group<'_>, vm: &Vm) {
    let code = programs::straight_line(999);
    for engine in EngineKind::available()
        .into_iter()
        .filter(|e| e.is_sandboxed())
    {
        let program = Program::new(code.clone(), ProgramType::Unspecified).with_engine(engine);
        let prog = vm.load(program.clone()).expect("loads");
        assert_eq!(
            vm.run(&prog, CpuId(0), &Input::empty()).unwrap().retval,
            999
        );
        g.bench_function(format!("load_1000_insns/{engine}"), |b| {
            b.iter(|| vm.load(program.clone()).expect("loads"))
        });
    }
}

fn interpreter(c: &mut Criterion<ThreadCpuTime>) {
    let vm = Vm::new(vm_config(1));
    let mut g = c.benchmark_group("interpreter");
    for case in cases() {
        bench_case(&mut g, &vm, &case);
    }
    bench_empty(&mut g, &vm);
    bench_load(&mut g, &vm);
    g.finish();
}

fn config() -> Criterion<ThreadCpuTime> {
    criterion_with(ThreadCpuTime)
}

criterion_group! {
    name = benches;
    config = config();
    targets = interpreter
}
criterion_main!(benches);
