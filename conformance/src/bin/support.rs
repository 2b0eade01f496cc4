//! Prints the support table of the top-level `README.md` (helpers built in, map types);
//! `--write` rewrites it there between its markers, `--check` exits with status 1 when the
//! committed one differs.

use std::path::Path;
use std::process::ExitCode;

use bpfvm_conformance::support;

fn main() -> ExitCode {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let write = args.iter().any(|a| a == "--write");
    let check = args.iter().any(|a| a == "--check");
    if let Some(bad) = args.iter().find(|a| *a != "--write" && *a != "--check") {
        eprintln!("unknown argument {bad:?}; usage: support [--write | --check]");
        return ExitCode::from(2);
    }
    let table = support::render();
    print!("{table}");
    let path = Path::new(env!("CARGO_MANIFEST_DIR")).join("../README.md");
    let readme = match std::fs::read_to_string(&path) {
        Ok(r) => r,
        Err(e) => {
            eprintln!("{}: {e}", path.display());
            return ExitCode::from(2);
        }
    };
    let new = match support::splice(&readme, &table) {
        Ok(n) => n,
        Err(e) => {
            eprintln!("{}: {e}", path.display());
            return ExitCode::from(2);
        }
    };
    if write && new != readme {
        if let Err(e) = std::fs::write(&path, &new) {
            eprintln!("{}: {e}", path.display());
            return ExitCode::from(2);
        }
        eprintln!("wrote {}", path.display());
    }
    if check && new != readme {
        eprintln!("{} is stale: run with --write", path.display());
        return ExitCode::from(1);
    }
    ExitCode::SUCCESS
}
