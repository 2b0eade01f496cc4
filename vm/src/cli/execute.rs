//! Running a loaded program R times on each chosen simulated CPU, CPUs in parallel, and
//! counting return values per CPU.

use std::collections::BTreeMap;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};

use bpfvm::{CpuId, Input, LoadedProgram, RedirectTarget, Vm};
use rayon::prelude::*;

use super::progress::Progress;
use super::CliError;

/// Runs between two updates of the progress counter.
const PROGRESS_STEP: u64 = 1024;
/// Trace lines (`bpf_trace_printk`) kept per CPU.
const TRACE_LINES: usize = 8;

/// What one simulated CPU did.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct CpuRuns {
    /// The CPU.
    pub cpu: u32,
    /// Number of runs.
    pub count: u64,
    /// Return value (`r0`) → how many runs returned it.
    pub retvals: BTreeMap<u64, u64>,
    /// Where the runs that redirected their packet sent it, with how many runs did, in
    /// the order first seen.
    pub redirects: Vec<(RedirectTarget, u64)>,
    /// The first lines of `bpf_trace_printk` output.
    pub trace: Vec<String>,
    /// Time spent in this CPU's runs.
    pub busy: Duration,
}

/// What all CPUs did.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct RunSummary {
    /// One entry per simulated CPU, index = CPU (count 0 for CPUs that did not run).
    pub cpus: Vec<CpuRuns>,
    /// Wall-clock time of the whole parallel run.
    pub wall: Duration,
}

impl RunSummary {
    /// Runs on all CPUs together.
    pub fn total_runs(&self) -> u64 {
        self.cpus.iter().map(|c| c.count).sum()
    }

    /// Mean time of one run on one CPU (each CPU's busy time over its runs).
    pub fn time_per_run(&self) -> Option<Duration> {
        let runs = self.total_runs();
        let busy: Duration = self.cpus.iter().map(|c| c.busy).sum();
        (runs > 0).then(|| busy / u32::try_from(runs).unwrap_or(u32::MAX).max(1))
    }
}

/// How the CPUs' runs are scheduled.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Schedule {
    /// All CPUs at once, on rayon's threads (each CPU's runs in order).
    Parallel,
    /// CPU after CPU, so that even programs racing on shared maps give the same results
    /// every time (used by `--explain`).
    OneCpuAfterAnother,
}

/// Runs `prog` `repeat` times on each CPU of `cpus` with `input`, scheduled as `schedule`.
/// Stops at the first failed run and reports its CPU and index.
pub fn execute(
    vm: &Vm,
    prog: &LoadedProgram,
    cpus: &[u32],
    repeat: u64,
    input: &Input,
    schedule: Schedule,
) -> Result<RunSummary, CliError> {
    let progress = Progress::start(repeat.saturating_mul(cpus.len() as u64));
    let failed = AtomicBool::new(false);
    let start = Instant::now();
    let one = |&cpu: &u32| run_cpu(vm, prog, cpu, repeat, input, &progress, &failed);
    let results: Vec<Result<CpuRuns, CliError>> = match schedule {
        Schedule::Parallel => cpus.par_iter().map(one).collect(),
        Schedule::OneCpuAfterAnother => cpus.iter().map(one).collect(),
    };
    let wall = start.elapsed();
    progress.finish();
    let mut summary = RunSummary {
        cpus: (0..vm.ncpus())
            .map(|cpu| CpuRuns {
                cpu,
                ..CpuRuns::default()
            })
            .collect(),
        wall,
    };
    for r in results {
        let runs = r?;
        let i = runs.cpu as usize;
        summary.cpus[i] = runs;
    }
    Ok(summary)
}

fn run_cpu(
    vm: &Vm,
    prog: &LoadedProgram,
    cpu: u32,
    repeat: u64,
    input: &Input,
    progress: &Progress,
    failed: &AtomicBool,
) -> Result<CpuRuns, CliError> {
    let mut runs = CpuRuns {
        cpu,
        ..CpuRuns::default()
    };
    let start = Instant::now();
    for run in 0..repeat {
        if run % PROGRESS_STEP == 0 {
            if failed.load(Ordering::Relaxed) {
                break;
            }
            if run > 0 {
                progress.add(PROGRESS_STEP);
            }
        }
        let out = vm.run(prog, CpuId(cpu), input).map_err(|source| {
            failed.store(true, Ordering::Relaxed);
            CliError::Run {
                cpu,
                run,
                source,
                detail: String::new(),
            }
        })?;
        *runs.retvals.entry(out.retval).or_default() += 1;
        if let Some(target) = out.redirect {
            match runs.redirects.iter_mut().find(|(t, _)| *t == target) {
                Some((_, n)) => *n += 1,
                None => runs.redirects.push((target, 1)),
            }
        }
        runs.count += 1;
        if runs.trace.len() < TRACE_LINES && !out.trace.is_empty() {
            let room = TRACE_LINES - runs.trace.len();
            runs.trace
                .extend(out.trace.lines().take(room).map(str::to_string));
        }
    }
    runs.busy = start.elapsed();
    Ok(runs)
}
