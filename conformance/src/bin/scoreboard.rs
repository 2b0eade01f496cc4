//! Runs every conformance vector on every engine and prints the scoreboard.
//!
//! `--write` also rewrites the scoreboard in `conformance/README.md` (between its markers)
//! and the expectations files `conformance/expectations/<engine>.tsv`; `--check` exits with
//! status 1 when either differs from what is committed.

use std::path::Path;
use std::process::ExitCode;

use bpfvm::EngineKind;
use bpfvm_conformance::{expectations, runner, scoreboard, vectors};

fn main() -> ExitCode {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let write = args.iter().any(|a| a == "--write");
    let check = args.iter().any(|a| a == "--check");
    if let Some(bad) = args.iter().find(|a| *a != "--write" && *a != "--check") {
        eprintln!("unknown argument {bad:?}; usage: scoreboard [--write | --check]");
        return ExitCode::from(2);
    }
    let dir = vectors::default_dir();
    let all = match vectors::load_all(&dir) {
        Ok(v) => v,
        Err(e) => {
            eprintln!(
                "cannot read the conformance vectors ({e}); set {} to the folder",
                vectors::DIR_VAR
            );
            return ExitCode::from(2);
        }
    };
    let vm = runner::suite_vm();
    let engines = EngineKind::available();
    let scores: Vec<_> = engines
        .iter()
        .map(|&e| scoreboard::score(&vm, e, &all))
        .collect();
    let table = scoreboard::render(&scores, all.len());
    print!("{table}");

    let readme_path = Path::new(env!("CARGO_MANIFEST_DIR")).join("README.md");
    let mut files = Vec::new();
    match std::fs::read_to_string(&readme_path) {
        Ok(readme) => match scoreboard::splice(&readme, &table) {
            Ok(new) => files.push((readme_path, readme, new)),
            Err(e) => {
                eprintln!("{}: {e}", readme_path.display());
                return ExitCode::from(2);
            }
        },
        Err(e) => {
            eprintln!("{}: {e}", readme_path.display());
            return ExitCode::from(2);
        }
    }
    for (engine, s) in engines.iter().zip(&scores) {
        let p = expectations::path(*engine);
        let old = std::fs::read_to_string(&p).unwrap_or_default();
        files.push((p, old, expectations::render(*engine, &s.refused)));
    }
    let stale: Vec<_> = files.iter().filter(|(_, old, new)| old != new).collect();
    if write {
        for (p, _, new) in &stale {
            if let Err(e) = std::fs::write(p, new) {
                eprintln!("{}: {e}", p.display());
                return ExitCode::from(2);
            }
            eprintln!("wrote {}", p.display());
        }
    } else if check && !stale.is_empty() {
        for (p, _, _) in &stale {
            eprintln!("out of date: {}", p.display());
        }
        return ExitCode::from(1);
    }
    if scores.iter().any(|s| !s.wrong.is_empty()) {
        eprintln!("some vectors gave wrong results (see above)");
        return ExitCode::from(1);
    }
    ExitCode::SUCCESS
}
