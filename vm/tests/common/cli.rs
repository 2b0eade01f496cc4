//! Running the `bpfvm` binary in the command-line scenario tests (`cli_*.rs`), which take
//! this file in with `#[path = "common/cli.rs"] mod cli;`.
#![allow(dead_code)]

use std::process::Command;

/// The path of the compiled fixture `name` (`tests/fixtures/<name>`).
pub fn fixture(name: &str) -> String {
    format!("{}/tests/fixtures/{name}", env!("CARGO_MANIFEST_DIR"))
}

/// Runs `bpfvm args...`: whether it exited with success, its stdout and its stderr.
pub fn bpfvm(args: &[&str]) -> (bool, String, String) {
    let out = Command::new(env!("CARGO_BIN_EXE_bpfvm"))
        .args(args)
        .output()
        .expect("the bpfvm binary runs");
    (
        out.status.success(),
        String::from_utf8_lossy(&out.stdout).into_owned(),
        String::from_utf8_lossy(&out.stderr).into_owned(),
    )
}
