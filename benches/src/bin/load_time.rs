//! Measures how long `Vm::load` takes on a straight-line program (`programs::straight_line`)
//! of about n instructions, per engine: the `jit` engine's compile time is the difference
//! to the `interpreter`'s (which verifies and prepares the same way).
//!
//! `load_time <n> <reps> [--checked] [--jumps] [engine...]` prints, per engine, the median
//! thread CPU time (`CLOCK_THREAD_CPUTIME_ID`, so not the time spent descheduled on a
//! shared machine) of `reps` loads (default engines: `interpreter jit`). With `--checked`
//! the program is `programs::straight_line_checked` (the stack through a copy of `r10`, so
//! every access is checked at run time by the `jit` engine's code); with `--jumps` a
//! `ja +0` follows every 9 instructions (a stretch of 10, as branchy real programs have; n
//! counts them too).

use bpfvm::{EngineKind, Program, ProgramType, Vm};
use bpfvm_benches::cpu_time::thread_cpu_ns;
use bpfvm_benches::{programs, vm_config};

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let mut args = std::env::args().skip(1);
    let n: usize = args.next().map_or(Ok(1_000), |a| a.parse())?;
    let reps: usize = args.next().map_or(Ok(5), |a| a.parse())?;
    let mut engines: Vec<String> = args.collect();
    let checked = engines.iter().any(|a| a == "--checked");
    let jumps = engines.iter().any(|a| a == "--jumps");
    engines.retain(|a| !a.starts_with("--"));
    if engines.is_empty() {
        engines = vec!["interpreter".into(), "jit".into()];
    }
    // With `--jumps`, one instruction in 10 is a `ja +0`.
    let body = if jumps { n * 9 / 10 } else { n };
    let code = if checked {
        programs::straight_line_checked(body.saturating_sub(1))
    } else {
        programs::straight_line(body.saturating_sub(1))
    };
    let code = if jumps { with_jumps(&code) } else { code };
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

/// `code` with a `ja +0` after every 9 instructions (none before the last, the `exit`).
fn with_jumps(code: &[u8]) -> Vec<u8> {
    let count = code.len() / 8;
    let mut out = Vec::with_capacity(code.len() * 10 / 9 + 8);
    for (i, insn) in code.chunks(8).enumerate() {
        if i > 0 && i % 9 == 0 && i + 1 < count {
            out.extend([0x05, 0, 0, 0, 0, 0, 0, 0]); // ja +0
        }
        out.extend(insn);
    }
    out
}
