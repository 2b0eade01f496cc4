//! The engines that are not sandboxed (`rbpf-interpreter`, `rbpf-jit`) say so in `--help`,
//! and `bpfvm run` refuses them, explaining why, unless `--unsafe-engine` is given; with it
//! the program runs (and a warning is printed).

use assert_cmd::Command;

#[path = "common/cli.rs"]
mod cli;
use cli::fixture;

fn bpfvm(args: &[&str]) -> (Option<i32>, String, String) {
    let out = Command::new(env!("CARGO_BIN_EXE_bpfvm"))
        .args(args)
        .output()
        .unwrap();
    (
        out.status.code(),
        String::from_utf8_lossy(&out.stdout).into_owned(),
        String::from_utf8_lossy(&out.stderr).into_owned(),
    )
}

#[test]
fn unsandboxed_engines_are_refused_with_the_reason() {
    for engine in ["rbpf-interpreter", "rbpf-jit"] {
        let (code, out, err) = bpfvm(&["run", &fixture("trusted.o"), "--engine", engine]);
        assert_eq!(code, Some(1), "{engine}: {err}");
        assert!(out.is_empty(), "{engine}: nothing ran: {out}");
        assert!(
            err.contains(&format!("engine {engine} is not sandboxed")),
            "{err}"
        );
        assert!(
            err.contains("host pointers") && err.contains("crash"),
            "{err}"
        );
        assert!(err.contains("--unsafe-engine"), "{err}");
    }
}

#[test]
fn unsafe_engine_lets_a_trusted_program_run() {
    let mut engines = vec!["rbpf-interpreter"];
    if cfg!(all(target_arch = "x86_64", not(windows))) {
        engines.push("rbpf-jit");
    }
    for engine in engines {
        let (code, out, err) = bpfvm(&[
            "run",
            &fixture("trusted.o"),
            "--engine",
            engine,
            "--unsafe-engine",
            "--repeat",
            "3",
            "--json",
            // A tracepoint program: the kernel loads it with CAP_PERFMON (as root).
            "--privileged",
            "root",
        ]);
        assert_eq!(code, Some(0), "{engine}: {err}");
        assert!(err.contains("not sandboxed"), "a warning: {err}");
        let doc: serde_json::Value = serde_json::from_str(&out).unwrap();
        assert_eq!(doc["engine"], engine);
        assert_eq!(doc["runs"][0]["retvals"], serde_json::json!({"7": 3}));
    }
    // The sandboxed default needs no flag and prints no warning.
    let (code, _, err) = bpfvm(&["run", &fixture("trusted.o"), "--privileged", "root"]);
    assert_eq!(code, Some(0), "{err}");
    assert!(!err.contains("not sandboxed"), "{err}");
}

#[test]
fn help_says_which_engines_are_not_sandboxed() {
    let (code, out, _) = bpfvm(&["run", "--help"]);
    assert_eq!(code, Some(0));
    for line in out.lines().filter(|l| l.contains("- rbpf-")) {
        assert!(line.contains("NOT sandboxed"), "{line}");
        assert!(line.contains("--unsafe-engine"), "{line}");
    }
    assert_eq!(out.lines().filter(|l| l.contains("- rbpf-")).count(), 2);
    assert!(out.contains("- interpreter:") && out.contains("sandboxed"));
    assert!(out.contains("--unsafe-engine"));
}
