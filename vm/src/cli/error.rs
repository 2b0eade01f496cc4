//! `CliError`: everything the command reports on stderr before exiting with status 1.

use bpfvm::loader::LoadError;
use bpfvm::maps::MapError;
use bpfvm::{PrepareError, RunError};

/// A failure of a `bpfvm` subcommand.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum CliError {
    /// The object could not be read or parsed, or its maps could not be created.
    #[error("cannot load {path}: {source}")]
    Load {
        /// The object's path.
        path: String,
        /// The loader's error.
        #[source]
        source: LoadError,
    },
    /// The object's maps do not fit the map memory limit.
    #[error("cannot load {path}: {source} (--map-memory-limit raises the limit)")]
    MapMemory {
        /// The object's path.
        path: String,
        /// The loader's error (a map creation failing with `ENOMEM`).
        #[source]
        source: LoadError,
    },
    /// The object has no programs.
    /// `--map-set` or `--maps` could not seed a map.
    #[error("cannot seed map {map} ({what}): {reason}")]
    Seed {
        /// The map (or the file, for a malformed `--maps` file).
        map: String,
        /// Which option, and the entry.
        what: String,
        /// What was wrong.
        reason: String,
    },
    /// `bpfvm race` could not explore the program.
    #[error("race explorer on {program}: {source}")]
    Race {
        /// The program.
        program: String,
        /// Why.
        #[source]
        source: Box<bpfvm::race::RaceError>,
    },
    #[error("{path} has no programs")]
    NoPrograms {
        /// The object's path.
        path: String,
    },
    /// `--prog` names no program of the object.
    #[error("{path} has no program named {name:?}; choose one of: {choices}")]
    UnknownProgram {
        /// The object's path.
        path: String,
        /// The name asked for.
        name: String,
        /// The programs, as `name (section)`.
        choices: String,
    },
    /// The object has several programs and `--prog` was not given.
    #[error("{path} has several programs; choose one with --prog: {choices}")]
    AmbiguousProgram {
        /// The object's path.
        path: String,
        /// The programs, as `name (section)`.
        choices: String,
    },
    /// The VM refused the program.
    #[error("program {program} refused: {source}")]
    Prepare {
        /// The program's name.
        program: String,
        /// Why.
        #[source]
        source: PrepareError,
    },
    /// `bpfvm verify`: the kernel's verifier refuses some programs (each was printed).
    #[error("the kernel's verifier refuses {refused} of {total} programs")]
    Refused {
        /// Programs refused.
        refused: usize,
        /// Programs verified.
        total: usize,
    },
    /// A run failed (a fault names the instruction index, its C source line and the address).
    #[error("run {run} on cpu {cpu} failed: {source}")]
    Run {
        /// The simulated CPU.
        cpu: u32,
        /// Which run on that CPU (0-based).
        run: u64,
        /// The run error.
        #[source]
        source: RunError,
    },
    /// `--cpu` is not one of the simulated CPUs.
    #[error("--cpu {cpu} does not exist: the vm has {ncpus} cpus (0..={last})", last = ncpus - 1)]
    NoSuchCpu {
        /// The CPU asked for.
        cpu: u32,
        /// Number of simulated CPUs.
        ncpus: u32,
    },
    /// A map could not be read back (or copied for `--explain`).
    #[error("map {map}: {source}")]
    Map {
        /// The map's name.
        map: String,
        /// The maps crate's error.
        #[source]
        source: MapError,
    },
    /// An input file is larger than the command takes.
    #[error("{path}: the {what} is larger than {max} ({why})")]
    FileTooLarge {
        /// The file.
        path: String,
        /// What it is for (`object`, `--data`).
        what: &'static str,
        /// The limit, as text (`64 MiB`).
        max: String,
        /// Where the limit comes from.
        why: &'static str,
    },
    /// An engine that is not sandboxed was chosen without `--unsafe-engine`.
    #[error("engine {engine} is not sandboxed: it runs the program on host pointers without memory checks, so a wrong or hostile program can read or overwrite bpfvm's own memory or crash it (a 5-instruction wild store is enough); use --engine interpreter, or pass --unsafe-engine to run it anyway on a program you trust")]
    UnsafeEngine {
        /// The engine chosen.
        engine: bpfvm::EngineKind,
    },
    /// The chosen program was refused at load (its own error; the object's other programs
    /// load).
    #[error("program {program}: {source}")]
    ProgramRefused {
        /// The program.
        program: String,
        /// Why (its own load error).
        source: bpfvm::loader::LoadError,
    },
    /// `--type` names no program type.
    #[error("--type {name}: not a program type; use one of: {types}")]
    UnknownType {
        /// The name given.
        name: String,
        /// The names accepted.
        types: String,
    },
    /// `--kconfig` could not be read or parsed.
    #[error("--kconfig {path}: {reason}")]
    Kconfig {
        /// The file.
        path: String,
        /// What is wrong.
        reason: String,
    },
    /// Standard output was closed by the reader (`bpfvm run ... | head`): not reported.
    #[error("stdout closed")]
    StdoutClosed,
    /// Reading an input file or writing an output failed.
    #[error("{path}: {reason}")]
    Io {
        /// The file (or `stdout`).
        path: String,
        /// The system's message.
        reason: String,
    },
}

impl CliError {
    /// An I/O error on `path`.
    pub fn io(path: &std::path::Path, e: std::io::Error) -> CliError {
        CliError::Io {
            path: path.display().to_string(),
            reason: e.to_string(),
        }
    }

    /// An error writing standard output.
    pub fn stdout(e: std::io::Error) -> CliError {
        if e.kind() == std::io::ErrorKind::BrokenPipe {
            return CliError::StdoutClosed;
        }
        CliError::Io {
            path: "stdout".to_string(),
            reason: e.to_string(),
        }
    }
}
