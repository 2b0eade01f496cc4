//! The command line: argument parsing ([`args`]) and one module per job: opening an object
//! and choosing its program ([`object`]), running it ([`execute`]), reading maps back
//! ([`snapshot`]) and the events of ring buffers and perf buffers ([`events`]), explaining failures ([`fault`]), and the outputs ([`text`], [`json`], [`explain`], [`report`], [`list`],
//! [`programs`], [`disasm`]). Input files are read with a size limit ([`input`]).

pub mod args;
pub mod disasm;
pub mod error;
pub mod events;
pub mod execute;
pub mod explain;
pub mod hex;
pub mod input;
pub mod json;
pub mod list;
pub mod object;
pub mod programs;
pub mod progress;
pub mod race;
pub mod report;
pub mod run;
pub mod seed;
pub mod size;
pub mod snapshot;
pub mod table;
pub mod text;
pub mod verify;

use std::io::Write;
use std::process::ExitCode;

use clap::Parser;

use args::{Cli, Command};
pub use error::CliError;

/// Parses the command line, runs the subcommand, prints errors on stderr.
///
/// Exit codes: 0 success, 1 a load, run or output error, 2 bad usage (from clap).
pub fn main() -> ExitCode {
    let cli = Cli::parse();
    let mut out = std::io::stdout().lock();
    let result = match &cli.command {
        Command::Run(a) => run::run(a, &mut out),
        Command::List(a) => programs::list_programs(a, &mut out),
        Command::Maps(a) => list::list_maps(&a.object, &mut out),
        Command::Disasm(a) => {
            disasm::disasm(&a.object, a.prog.as_deref(), a.btf.as_deref(), &mut out)
        }
        Command::Support => out
            .write_all(bpfvm::support::markdown().as_bytes())
            .map_err(CliError::stdout),
        Command::Verify(a) => verify::verify(a, &mut out),
        Command::Race(a) => race::race(a, &mut out),
    };
    let result = result.and_then(|()| out.flush().map_err(CliError::stdout));
    match result {
        // Like other Unix tools, stop quietly when the reader of stdout went away.
        Ok(()) | Err(CliError::StdoutClosed) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("bpfvm: error: {e}");
            ExitCode::FAILURE
        }
    }
}
