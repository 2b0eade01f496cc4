//! Runs a loop of ALU instructions once (for `perf stat`: cycles per executed BPF
//! instruction). `cargo run --release -p bpfvm --example alu_loop -- 10000000`

use bpfvm::{CpuId, Input, Program, ProgramType, Vm, VmConfig};

fn main() {
    let iters: u32 = std::env::args()
        .nth(1)
        .map_or(10_000_000, |a| a.parse().unwrap());
    let vm = Vm::new(VmConfig {
        ncpus: 1,
        budget: u64::MAX,
        ..VmConfig::default()
    });
    // 9 instructions per iteration: 7 ALU, 1 sub, 1 conditional jump.
    let code = rbpf::assembler::assemble(&format!(
        "mov64 r0, 0
         mov64 r2, 0
         mov64 r1, {iters}
         add64 r0, 3
         xor64 r0, 5
         mul64 r0, 3
         rsh64 r0, 1
         add64 r2, r0
         or64 r2, 1
         and64 r2, 0xffff
         sub64 r1, 1
         jne r1, 0, -9
         exit"
    ))
    .unwrap();
    let prog = vm
        .load(Program::new(code, ProgramType::Unspecified))
        .unwrap();
    let t = std::time::Instant::now();
    let r = vm.run(&prog, CpuId(0), &Input::empty()).unwrap();
    let n = iters as f64 * 9.0;
    println!(
        "r0 = {}, {:.2} ns per instruction (wall clock)",
        r.retval,
        t.elapsed().as_nanos() as f64 / n
    );
}
