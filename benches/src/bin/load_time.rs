//! Measures how long `Vm::load` takes on a straight-line program (`programs::straight_line`)
//! of about n instructions, per engine: the `jit` engine's compile time is the difference
//! to the `interpreter`'s (which verifies and prepares the same way).
//!
//! `load_time <n> <reps> [--checked] [engine...]` prints, per engine, the median thread CPU
//! time (`CLOCK_THREAD_CPUTIME_ID`, so not the time spent descheduled on a shared machine)
//! of `reps` loads (default engines: `interpreter jit`). With `--checked` the program is
//! `programs::straight_line_checked` (the stack through a copy of `r10`, so every access is
//! checked at run time by the `jit` engine's code).

use bpfvm::{EngineKind, Program, ProgramType, Vm};
use bpfvm_benches::cpu_time::thread_cpu_ns;
use bpfvm_benches::{programs, vm_config};

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let mut args = std::env::args().skip(1);
    let n: usize = args.next().map_or(Ok(1_000), |a| a.parse())?;
    let reps: usize = args.next().map_or(Ok(5), |a| a.parse())?;
    let mut engines: Vec<String> = args.collect();
    let checked = engines.first().is_some_and(|a| a == "--checked");
    if checked {
        engines.remove(0);
    }
    if engines.is_empty() {
        engines = vec!["interpreter".into(), "jit".into()];
    }
    let code = if checked {
        programs::straight_line_checked(n.saturating_sub(1))
    } else {
        programs::straight_line(n.saturating_sub(1))
    };
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
