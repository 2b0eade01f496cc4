//! Command-line arguments (clap derive). The flags of `run` are fixed by issue 5.

use std::path::PathBuf;

use bpfvm::EngineKind;
use clap::{Args, Parser, Subcommand};

/// Run BPF objects on simulated CPUs with kernel-exact per-CPU maps.
#[derive(Debug, Parser)]
#[command(name = "bpfvm", version, about)]
pub struct Cli {
    /// What to do.
    #[command(subcommand)]
    pub command: Command,
}

/// The subcommands.
#[derive(Debug, Subcommand)]
pub enum Command {
    /// Run a program of an object on every simulated CPU (or one) and show the maps.
    Run(RunArgs),
    /// List the maps an object defines.
    Maps(ObjectArgs),
    /// Print a program's instructions after relocation.
    Disasm(DisasmArgs),
    /// Print every kernel helper and map type with bpfvm's support for it (Markdown, as in
    /// the README).
    Support,
}

/// `bpfvm run`.
#[derive(Debug, Args)]
pub struct RunArgs {
    /// The BPF ELF object (clang -target bpf).
    pub object: PathBuf,
    /// Program to run: function or section name (default: the only program).
    #[arg(long, value_name = "NAME")]
    pub prog: Option<String>,
    /// Number of simulated CPUs.
    #[arg(long, value_name = "N", default_value_t = 4,
          value_parser = clap::value_parser!(u32).range(1..=1024))]
    pub cpus: u32,
    /// Runs on each CPU.
    #[arg(long, value_name = "R", default_value_t = 1)]
    pub repeat: u64,
    /// Run only on CPU K (0-based) instead of on every CPU.
    #[arg(long, value_name = "K")]
    pub cpu: Option<u32>,
    /// Packet bytes for every run (the raw context for non-packet program types).
    #[arg(long, value_name = "FILE")]
    pub data: Option<PathBuf>,
    /// Engine that runs the program.
    #[arg(long, value_name = "ENGINE", default_value = "interpreter",
          value_parser = ["interpreter", "rbpf-interpreter", "rbpf-jit"])]
    pub engine: String,
    /// Seed of the virtual clock and PRNG (and of the value `--explain` writes).
    #[arg(long, value_name = "S", default_value_t = 0)]
    pub seed: u64,
    /// Print exactly one JSON object on stdout instead of tables.
    #[arg(long, conflicts_with = "explain")]
    pub json: bool,
    /// Walk through what per-CPU means on this run, step by step (no timing; reproducible).
    #[arg(long)]
    pub explain: bool,
    /// Also write a self-contained SVG picture of per-CPU values and runs per CPU.
    #[arg(long, value_name = "FILE")]
    pub report: Option<PathBuf>,
}

impl RunArgs {
    /// The engine (the value parser only lets the three names through).
    pub fn engine_kind(&self) -> EngineKind {
        self.engine.parse().unwrap_or_default()
    }
}

/// Subcommands that take only an object.
#[derive(Debug, Args)]
pub struct ObjectArgs {
    /// The BPF ELF object.
    pub object: PathBuf,
}

/// `bpfvm disasm`.
#[derive(Debug, Args)]
pub struct DisasmArgs {
    /// The BPF ELF object.
    pub object: PathBuf,
    /// Program to print: function or section name (default: every program).
    #[arg(long, value_name = "NAME")]
    pub prog: Option<String>,
}

#[cfg(test)]
mod tests {
    use super::*;
    use clap::CommandFactory;

    #[test]
    fn the_argument_definitions_are_consistent() {
        Cli::command().debug_assert();
    }

    #[test]
    fn run_has_the_documented_defaults() {
        let cli = Cli::parse_from(["bpfvm", "run", "x.o"]);
        let Command::Run(a) = cli.command else {
            panic!("not run")
        };
        assert_eq!((a.cpus, a.repeat, a.cpu, a.seed), (4, 1, None, 0));
        assert_eq!(a.engine_kind(), EngineKind::Interpreter);
    }

    #[test]
    fn zero_cpus_is_refused() {
        assert!(Cli::try_parse_from(["bpfvm", "run", "x.o", "--cpus", "0"]).is_err());
    }
}
