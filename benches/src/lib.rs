//! The programs, native equivalents and settings shared by bpfvm's criterion benches, the
//! callgrind driver and the report generator.
//!
//! ```
//! use bpfvm::{CpuId, Input, Program, ProgramType, Vm};
//! use bpfvm_benches::programs;
//!
//! // The ALU loop computes the same value on the VM and natively.
//! let vm = Vm::new(bpfvm_benches::vm_config(1));
//! let prog = vm.load(Program::new(programs::alu_loop(100), ProgramType::Unspecified))?;
//! let out = vm.run(&prog, CpuId(0), &Input::empty())?;
//! assert_eq!(out.retval, bpfvm_benches::native::alu_loop(100));
//! # Ok::<(), Box<dyn std::error::Error>>(())
//! ```
#![deny(unsafe_code)]

pub mod cpu_time;
pub mod direct;
pub mod native;
pub mod programs;
pub mod scaling;

use std::time::Duration;

use bpfvm::VmConfig;

/// Loop iterations of the `interpreter` group's loops (one criterion iteration = one run).
pub const LOOP_ITERS: u64 = 10_000;

/// A VM configuration for benchmarks: `ncpus` CPUs, no instruction budget to speak of, and
/// loops allowed on the rbpf engines (every bench program ends).
pub fn vm_config(ncpus: u32) -> VmConfig {
    VmConfig {
        ncpus,
        budget: u64::MAX,
        rbpf_allow_loops: true,
        ..VmConfig::default()
    }
}

/// Short criterion settings (the build machine is shared and has 2 cores): 1 s warm-up,
/// 3 s measurement, 20 samples. Command-line flags still override them.
pub fn criterion_settings() -> (Duration, Duration, usize) {
    (Duration::from_secs(1), Duration::from_secs(3), 20)
}

/// A criterion configured with [`criterion_settings`] that measures with `measurement`
/// (wall-clock `WallTime` or the thread's CPU time, [`cpu_time::ThreadCpuTime`]).
pub fn criterion_with<M: criterion::measurement::Measurement>(
    measurement: M,
) -> criterion::Criterion<M> {
    let (warm, measure, samples) = criterion_settings();
    criterion::Criterion::default()
        .with_measurement(measurement)
        .warm_up_time(warm)
        .measurement_time(measure)
        .sample_size(samples)
}
