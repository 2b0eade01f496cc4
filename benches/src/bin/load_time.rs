//! Measures how long `Vm::load` takes on a straight-line program (`programs::straight_line`)
//! of about n instructions, per engine: the `jit` engine's compile time is the difference
//! to the `interpreter`'s (which verifies and prepares the same way).
//!
//! `load_time <n> <reps> [engine...]` prints, per engine, the median thread CPU time
//! (`CLOCK_THREAD_CPUTIME_ID`, so not the time spent descheduled on a shared machine) of
//! `reps` loads (default engines: `interpreter jit`).

use bpfvm::{EngineKind, Program, ProgramType, Vm};
use bpfvm_benches::cpu_time::thread_cpu_ns;
use bpfvm_benches::{programs, vm_config};

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let mut args = std::env::args().skip(1);
    let n: usize = args.next().map_or(Ok(1_000), |a| a.parse())?;
    let reps: usize = args.next().map_or(Ok(5), |a| a.parse())?;
    let mut engines: Vec<String> = args.collect();
    if engines.is_empty() {
        engines = vec!["interpreter".into(), "jit".into()];
    }
    let code = programs::straight_line(n.saturating_sub(1));
    let insns = code.len() / 8;
    let vm = Vm::new(vm_config(1));
    for engine in engines {
        let program = Program::new(code.clone(), ProgramType::Unspecified)
            .with_engine(engine.parse::<EngineKind>()?);
        let mut times = Vec::with_capacity(reps.max(1));
        for _ in 0..reps.max(1) {
            let start = thread_cpu_ns();
            let prog = vm.load(program.clone())?;
            times.push(thread_cpu_ns() - start);
            drop(prog);
        }
        times.sort();
        let median = times[times.len() / 2];
        println!(
            "{engine}: {insns} instructions, median of {} loads: {:.3} ms ({:.3} ms per 1,000 instructions)",
            times.len(),
            median as f64 / 1e6,
            median as f64 / 1e3 / insns as f64
        );
    }
    Ok(())
}
