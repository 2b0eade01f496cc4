//! Running a loaded program R times on each chosen simulated CPU, CPUs in parallel, and
//! counting return values per CPU. What is kept per CPU does not grow with R: counts of at
//! most [`MAX_RETVALS`] distinct return values, the first and last, of at most
//! [`MAX_REDIRECTS`] distinct redirect targets, and the first [`TRACE_LINES`] trace lines.

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
pub const TRACE_LINES: usize = 8;
/// Distinct return values counted per CPU; runs returning any other value are counted
/// together ([`RetvalCounts::other`]).
pub const MAX_RETVALS: usize = 64;

/// Return values of a CPU's runs, in memory that does not grow with the number of runs: how
/// many runs returned each of the first [`MAX_RETVALS`] distinct values, how many returned
/// another one, and the first and last value.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct RetvalCounts {
    counts: BTreeMap<u64, u64>,
    other: u64,
    first: Option<u64>,
    last: Option<u64>,
}

impl RetvalCounts {
    /// Counts one run that returned `r0`.
    pub fn add(&mut self, r0: u64) {
        self.first.get_or_insert(r0);
        self.last = Some(r0);
        if let Some(n) = self.counts.get_mut(&r0) {
            *n += 1;
        } else if self.counts.len() < MAX_RETVALS {
            self.counts.insert(r0, 1);
        } else {
            self.other += 1;
        }
    }

    /// Value → runs that returned it, for the first [`MAX_RETVALS`] distinct values seen.
    pub fn counts(&self) -> &BTreeMap<u64, u64> {
        &self.counts
    }

    /// Runs that returned a value not in [`RetvalCounts::counts`].
    pub fn other(&self) -> u64 {
        self.other
    }

    /// The first run's return value.
    pub fn first(&self) -> Option<u64> {
        self.first
    }

    /// The last run's return value.
    pub fn last(&self) -> Option<u64> {
        self.last
    }
}

/// Distinct redirect targets counted per CPU; runs redirecting elsewhere are counted
/// together ([`RedirectCounts::other`]).
pub const MAX_REDIRECTS: usize = 64;

/// Redirect targets of a CPU's runs, in memory that does not grow with the number of runs:
/// how many runs sent their packet to each of the first [`MAX_REDIRECTS`] distinct targets
/// (in the order first seen), and how many sent it somewhere else.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct RedirectCounts {
    counts: Vec<(RedirectTarget, u64)>,
    other: u64,
}

impl RedirectCounts {
    /// Counts one run that redirected its packet to `target`.
    pub fn add(&mut self, target: RedirectTarget) {
        if let Some((_, n)) = self.counts.iter_mut().find(|(t, _)| *t == target) {
            *n += 1;
        } else if self.counts.len() < MAX_REDIRECTS {
            self.counts.push((target, 1));
        } else {
            self.other += 1;
        }
    }

    /// Target → runs that sent their packet there, for the first [`MAX_REDIRECTS`] distinct
    /// targets, in the order first seen.
    pub fn counts(&self) -> &[(RedirectTarget, u64)] {
        &self.counts
    }

    /// Runs that redirected to a target not in [`RedirectCounts::counts`].
    pub fn other(&self) -> u64 {
        self.other
    }

    /// Whether no run redirected its packet.
    pub fn is_empty(&self) -> bool {
        self.counts.is_empty() && self.other == 0
    }
}

/// Characters of a trace line kept (output without newlines is one long line).
pub const TRACE_LINE_CHARS: usize = 256;

/// `line`, or its first [`TRACE_LINE_CHARS`] characters and how long it was.
fn cut_line(line: &str) -> String {
    match line.char_indices().nth(TRACE_LINE_CHARS) {
        None => line.to_string(),
        Some((end, _)) => format!("{}… ({} bytes)", &line[..end], line.len()),
    }
}

/// What one simulated CPU did.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct CpuRuns {
    /// The CPU.
    pub cpu: u32,
    /// Number of runs.
    pub count: u64,
    /// The runs' return values (`r0`).
    pub retvals: RetvalCounts,
    /// Where the runs that redirected their packet sent it.
    pub redirects: RedirectCounts,
    /// The first lines of `bpf_trace_printk` output.
    pub trace: Vec<String>,
    /// Bytes of trace output the runs dropped (each run keeps at most
    /// [`bpfvm::limits::TRACE_CAPACITY`]).
    pub trace_dropped: u64,
    /// Time spent in this CPU's runs.
    pub busy: Duration,
    /// The packet after the first run (`None` when it equals the last run's or the CPU
    /// ran once).
    pub first_data_out: Option<Vec<u8>>,
    /// The packet after the last run (`data_out` of `BPF_PROG_TEST_RUN`).
    pub data_out: Vec<u8>,
    /// The context after the last run as the kernel's test run reports it (`ctx_out`), for
    /// XDP and `__sk_buff` programs; empty for other types.
    pub ctx_out: Vec<u8>,
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
    let t = prog.program().prog_type();
    let mut last_ctx = Vec::new();
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
            CliError::Run { cpu, run, source }
        })?;
        runs.retvals.add(out.retval);
        if let Some(target) = out.redirect {
            runs.redirects.add(target);
        }
        if run == 0 && repeat > 1 {
            runs.first_data_out = Some(out.data.clone());
        }
        runs.data_out = out.data;
        last_ctx = out.ctx;
        runs.count += 1;
        runs.trace_dropped += out.trace_dropped;
        if runs.trace.len() < TRACE_LINES && !out.trace.is_empty() {
            let room = TRACE_LINES - runs.trace.len();
            runs.trace
                .extend(out.trace.lines().take(room).map(cut_line));
        }
    }
    runs.busy = start.elapsed();
    if runs.first_data_out.as_ref() == Some(&runs.data_out) {
        runs.first_data_out = None;
    }
    if t == bpfvm::ProgramType::Xdp || t.uses_sk_buff() {
        runs.ctx_out = bpfvm::ctx_layout::test_run_ctx_out(t, &last_ctx, &input.ctx);
    }
    Ok(runs)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn retval_counts_stay_bounded_and_keep_first_and_last() {
        let mut r = RetvalCounts::default();
        assert_eq!((r.first(), r.last()), (None, None));
        for v in 0..1_000_000u64 {
            r.add(v % 100_000);
        }
        assert_eq!(r.counts().len(), MAX_RETVALS);
        assert!(r.counts().values().all(|&n| n == 10));
        assert_eq!(r.other(), 1_000_000 - 10 * MAX_RETVALS as u64);
        assert_eq!((r.first(), r.last()), (Some(0), Some(99_999)));
        // A value already counted keeps counting.
        r.add(5);
        assert_eq!(r.counts()[&5], 11);
    }

    #[test]
    fn redirect_counts_stay_bounded() {
        let mut r = RedirectCounts::default();
        assert!(r.is_empty());
        for i in 0..10_000u32 {
            r.add(RedirectTarget::Peer { ifindex: i % 1000 });
        }
        assert_eq!(r.counts().len(), MAX_REDIRECTS);
        assert_eq!(r.counts()[0], (RedirectTarget::Peer { ifindex: 0 }, 10));
        assert!(r.counts().iter().all(|&(_, n)| n == 10));
        assert_eq!(r.other(), 10_000 - 10 * MAX_REDIRECTS as u64);
        assert!(!r.is_empty());
    }

    #[test]
    fn long_trace_lines_are_cut() {
        assert_eq!(cut_line("short"), "short");
        let long = "é".repeat(300);
        let cut = cut_line(&long);
        assert!(cut.starts_with(&"é".repeat(TRACE_LINE_CHARS)));
        assert!(cut.ends_with("… (600 bytes)"), "{cut}");
    }
}
