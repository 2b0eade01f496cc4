//! Rough speed check: an empty program run and a loop of ALU instructions, per engine.
//! `cargo run --release -p bpfvm --example speed`

use std::time::Instant;

use bpfvm::{CpuId, EngineKind, Input, Program, ProgramType, Vm, VmConfig};

fn main() {
    let vm = Vm::new(VmConfig {
        ncpus: 1,
        budget: u64::MAX,
        rbpf_allow_loops: true,
        ..VmConfig::default()
    });
    let empty = rbpf::assembler::assemble("mov64 r0, 0\nexit").unwrap();
    // 1,000,000 iterations of 8 ALU instructions + 1 jump.
    let alu = rbpf::assembler::assemble(
        "mov64 r0, 0
         mov64 r1, 1000000
         add64 r0, 3
         xor64 r0, 5
         mul64 r0, 3
         rsh64 r0, 1
         add64 r2, r0
         or64 r2, 1
         and64 r2, 0xffff
         sub64 r1, 1
         jne r1, 0, -9
         exit",
    )
    .unwrap();
    let only: Option<EngineKind> = std::env::args().nth(1).map(|a| a.parse().unwrap());
    for engine in EngineKind::available() {
        if only.is_some_and(|o| o != engine) {
            continue;
        }
        let p = vm
            .load(Program::new(empty.clone(), ProgramType::Unspecified).with_engine(engine))
            .unwrap();
        let input = Input::empty();
        let n = if engine == EngineKind::Interpreter {
            2_000_000
        } else {
            2_000
        };
        let t = Instant::now();
        for _ in 0..n {
            vm.run(&p, CpuId(0), &input).unwrap();
        }
        let per_run = t.elapsed().as_nanos() as f64 / n as f64;
        let p = vm
            .load(Program::new(alu.clone(), ProgramType::Unspecified).with_engine(engine))
            .unwrap();
        let t = Instant::now();
        vm.run(&p, CpuId(0), &input).unwrap();
        let per_insn = t.elapsed().as_nanos() as f64 / 9_000_000.0;
        let mut per_test_run = f64::MAX;
        for _ in 0..20 {
            let req = bpfvm::TestRun {
                input: Input::empty(),
                repeat: 100_000,
                cpu: CpuId(0),
            };
            let pe = vm
                .load(Program::new(empty.clone(), ProgramType::Unspecified).with_engine(engine))
                .unwrap();
            let r = vm.test_run(&pe, &req).unwrap();
            per_test_run = per_test_run.min(r.duration.as_nanos() as f64);
        }
        println!("{engine}: test_run repeat: {per_test_run:.1} ns per run");
        println!("{engine}: empty run {per_run:.1} ns, {per_insn:.2} ns per executed instruction");
    }
}
