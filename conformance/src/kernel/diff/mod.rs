//! Differential testing of host-side map operations: the same [`Op`]s applied to a kernel
//! map and to a simulated one ([`HostMap`]), every outcome compared.
//!
//! Linux 6.18 answers EINVAL to BPF_F_CPU and BPF_F_ALL_CPUS. For per-CPU maps, ops that
//! carry them (and the EXIST|NOEXIST update the series made legal, spec §4) are
//! emulated (module `emulate`): the outcome the spec (§2–§4) prescribes is derived from 6.18
//! operations on the kernel map, which also keeps the kernel map in the state the new
//! kernel would have. The report counts directly compared, emulated and skipped ops.

mod emulate;
mod gen;
mod host;
mod op;
mod rng;
mod runner;
mod scenarios;
mod sim;

pub use emulate::{cpu_flag_stage, needs_emulation};
pub use gen::{interesting_flags, OpGen};
pub use host::{Emulated, HostMap};
pub use op::{apply, Op, Outcome};
pub use rng::SplitMix64;
pub use runner::{differs, dump, minimize, run, Contents, Mismatch, OpSource, Report};
pub use scenarios::{default_def, lru_scenarios, scenarios, Scenario};
pub use sim::sim_map;
