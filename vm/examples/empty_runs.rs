//! Runs an empty program many times through `test_run` (for `perf stat`: instructions and
//! cycles per run). `cargo run --release -p bpfvm --example empty_runs -- 1000000`

use bpfvm::{CpuId, Input, Program, ProgramType, TestRun, Vm};

fn main() {
    let n: u32 = std::env::args()
        .nth(1)
        .map_or(1_000_000, |a| a.parse().unwrap());
    let vm = Vm::builder().cpus(1).build();
    let code = rbpf::assembler::assemble("mov64 r0, 0\nexit").unwrap();
    let prog = vm
        .load(Program::new(code, ProgramType::Unspecified))
        .unwrap();
    let req = TestRun {
        input: Input::empty(),
        repeat: n,
        cpu: CpuId(0),
    };
    let r = vm.test_run(&prog, &req).unwrap();
    println!("{} runs, mean {:?} per run", n, r.duration);
}
