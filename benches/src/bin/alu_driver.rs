//! Runs the ALU loop once on one engine, for `valgrind --tool=callgrind` (which counts x86
//! instructions, so the figure is stable on a noisy machine).
//!
//! `alu_driver <interpreter|rbpf-interpreter|direct-rbpf-interpreter> <iterations>`; run it
//! at two iteration counts and divide the difference in instructions by the difference in
//! BPF instructions executed ([`bpfvm_benches::programs::alu_loop_insns`]) to cancel setup.

use bpfvm::{CpuId, EngineKind, Input, Program, ProgramType, Vm};
use bpfvm_benches::direct::Direct;
use bpfvm_benches::{programs, vm_config};

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let mut args = std::env::args().skip(1);
    let engine = args.next().unwrap_or_else(|| "interpreter".to_string());
    let iters: u64 = args.next().map_or(Ok(100_000), |a| a.parse())?;
    let code = programs::alu_loop(iters);
    let r0 = if engine == "direct-rbpf-interpreter" {
        Direct::new(&code, false)?.run()?
    } else {
        let kind: EngineKind = engine.parse()?;
        let vm = Vm::new(vm_config(1));
        let prog = vm.load(Program::new(code, ProgramType::Unspecified).with_engine(kind))?;
        vm.run(&prog, CpuId(0), &Input::empty())?.retval
    };
    println!("{engine} {iters} {r0}");
    Ok(())
}
