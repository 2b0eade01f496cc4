//! The interleaving explorer: finds lost updates and data races on maps shared between
//! simulated CPUs (see `docs/races.md`).
//!
//! Per-CPU maps exist because programs on different CPUs race on shared values: `v =
//! lookup(); *v += 1;` on a shared ARRAY loses an update when two CPUs both load the old
//! value before either stores. [`Explorer`] runs one program on K simulated CPUs, each on a
//! thread of its own, and stops every CPU before each *shared access* — a load, store or
//! atomic on a value of a map shared between CPUs (ARRAY, HASH, LRU_HASH, global data), or
//! a map helper call on one — until it grants that CPU the next step. Exactly one CPU runs
//! at a time, so a run is determined by the sequence of CPUs granted: its [`Schedule`],
//! printed as one digit per step (`0101`). Per-CPU values, the stack, the context and the
//! packet are private and are not interleaving points.
//!
//! [`Explorer::exhaustive`] enumerates the interleavings depth-first, replaying each
//! prefix, with sleep sets (partial-order reduction): an order that only swaps two
//! independent accesses (different bytes, or two reads) of one already explored is cut
//! short. [`Explorer::random`] draws schedules from a seed. Each final state of the maps is
//! compared with those of every serial order of the whole runs: a state no serial order
//! gives is a [`LostUpdate`], reported with the conflicting accesses. Two accesses of
//! different CPUs to the same bytes, at least one a plain write, are a [`DataRace`] even
//! when the final state is right.
//!
//! The hook costs normal runs nothing: only a `Memory` with an `AccessHook` closes the
//! fast path of watched regions, and the interpreter notes instructions for the hook only
//! in its copy of the loop chosen when a hook is set. The `jit` engine's trampolines (the
//! slow path of its accesses, which every watched access takes, and its helper calls)
//! note them always, so a program or tail-call target compiled by the jit is explored as
//! on the interpreter; the rbpf engines are refused.

mod explore;
pub mod report;
mod schedule;
mod scheduler;
pub mod state;

pub use explore::{
    Conflict, DataRace, Execution, Exploration, Explorer, LostUpdate, Mode, RaceConfig, MAX_CPUS,
    MAX_SERIAL_ORDERS, MAX_TOTAL_RUNS,
};
pub use schedule::{cpu_digit, Schedule};
pub use scheduler::{AccessKind, Location, Point, Step};
pub use state::{MapImage, MapsState};

use crate::{PrepareError, RunError};

/// Why an exploration could not be made.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum RaceError {
    /// The CPU count is outside `2 ..= max`.
    #[error("the race explorer needs 2 to {max} CPUs, not {cpus} (races need at least two)")]
    Cpus {
        /// The count asked for.
        cpus: u32,
        /// The most allowed.
        max: u32,
    },
    /// No runs, or too many runs in all.
    #[error(
        "{cpus} CPUs x {runs} runs: the race explorer needs 1 or more runs per CPU and at most \
         {max} runs in all"
    )]
    Runs {
        /// CPUs.
        cpus: u32,
        /// Runs per CPU.
        runs: u32,
        /// Most runs in all.
        max: u32,
    },
    /// More serial orders of the runs than are compared with.
    #[error(
        "{cpus} CPUs x {runs} runs have more than {max} serial orders to compare with; use \
         fewer CPUs or runs"
    )]
    TooManySerialOrders {
        /// CPUs.
        cpus: u32,
        /// Runs per CPU.
        runs: u32,
        /// The most compared with.
        max: u64,
    },
    /// Something the explorer cannot model.
    #[error("the race explorer does not support {what}")]
    Unsupported {
        /// What.
        what: String,
    },
    /// The program was refused.
    #[error("the program was refused: {0}")]
    Prepare(#[source] PrepareError),
    /// A run failed under a schedule.
    #[error(
        "CPU {cpu}'s run failed under schedule {schedule} (replay it with --schedule): {source}"
    )]
    Run {
        /// The schedule so far (as printed; empty for serial orders).
        schedule: Schedule,
        /// The CPU whose run failed.
        cpu: u32,
        /// The error.
        #[source]
        source: RunError,
    },
    /// A run failed when the runs ran one after another (the serial baseline).
    #[error(
        "CPU {cpu}'s run failed with the runs one after another (CPUs in the order {order}), \
         before any interleaving: {source}"
    )]
    SerialRun {
        /// The order of the whole runs (one CPU digit per run).
        order: Schedule,
        /// The CPU whose run failed.
        cpu: u32,
        /// The error.
        #[source]
        source: RunError,
    },
    /// A schedule made more shared accesses than allowed.
    #[error(
        "schedule {schedule} made more than {max} shared accesses (a loop over shared memory?); \
         raise the step limit or use fewer runs"
    )]
    StepLimit {
        /// The schedule.
        schedule: Schedule,
        /// The limit.
        max: usize,
    },
    /// A CPU neither reached a shared access nor finished.
    #[error(
        "under schedule {schedule} a CPU neither reached a shared access nor finished in time"
    )]
    Stalled {
        /// The schedule.
        schedule: Schedule,
    },
    /// Replaying a prefix gave other waiting CPUs than before.
    #[error("replaying schedule {schedule} did not repeat the earlier run (a nondeterministic program or map)")]
    Nondeterministic {
        /// The schedule.
        schedule: Schedule,
    },
    /// A schedule string that cannot be replayed.
    #[error("bad schedule: {reason}")]
    BadSchedule {
        /// Why.
        reason: String,
    },
    /// The maps could not be read or put back.
    #[error("{reason}")]
    Maps {
        /// Why.
        reason: String,
    },
}
