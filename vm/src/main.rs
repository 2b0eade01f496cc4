//! The `bpfvm` command: run a BPF object on N simulated CPUs and show per-CPU map state.
//!
//! Subcommands: `run` (with `--json`, `--explain`, `--report`), `maps`, `disasm`; see
//! `bpfvm --help` and the [`cli`] module.
#![deny(unsafe_code)]

mod cli;

fn main() -> std::process::ExitCode {
    cli::main()
}
