//! Errors exit non-zero with a clear message on stderr and nothing on stdout: a bad object,
//! an unknown or missing `--prog` (listing the choices), `--cpus 0`, `--repeat 0`, a `--cpu` out of range,
//! and a faulting program (instruction index and address).

use assert_cmd::Command;

#[path = "common/cli.rs"]
mod cli;
use cli::fixture;

fn fails(args: &[&str]) -> (i32, String, String) {
    let out = Command::new(env!("CARGO_BIN_EXE_bpfvm"))
        .args(args)
        .output()
        .unwrap();
    assert!(!out.status.success(), "{args:?} succeeded");
    (
        out.status.code().unwrap_or(-1),
        String::from_utf8_lossy(&out.stdout).into_owned(),
        String::from_utf8_lossy(&out.stderr).into_owned(),
    )
}

#[test]
fn a_file_that_is_not_an_object_is_a_load_error() {
    let manifest = format!("{}/Cargo.toml", env!("CARGO_MANIFEST_DIR"));
    let (code, out, err) = fails(&["run", &manifest, "--json"]);
    assert_eq!(code, 1);
    assert!(out.is_empty());
    assert!(
        err.contains("cannot load") && err.contains("not an ELF object"),
        "{err}"
    );
}

#[test]
fn a_missing_file_is_named() {
    let (code, _, err) = fails(&["maps", "/nonexistent/x.o"]);
    assert_eq!(code, 1);
    assert!(err.contains("/nonexistent/x.o"), "{err}");
}

#[test]
fn an_unknown_prog_lists_the_choices() {
    let (code, out, err) = fails(&["run", &fixture("globals.o"), "--prog", "nope"]);
    assert_eq!(code, 1);
    assert!(out.is_empty());
    assert!(err.contains("no program named \"nope\""), "{err}");
    assert!(err.contains("bump (section socket)"), "{err}");
    assert!(err.contains("write_rodata (section socket)"), "{err}");
}

#[test]
fn several_programs_and_no_prog_lists_the_choices() {
    let (code, _, err) = fails(&["run", &fixture("multi.o")]);
    assert_eq!(code, 1);
    assert!(
        err.contains("several programs") && err.contains("--prog"),
        "{err}"
    );
    assert!(
        err.contains("xdp_prog (section xdp)") && err.contains("custom_prog"),
        "{err}"
    );
}

#[test]
fn zero_cpus_is_refused() {
    let (code, out, err) = fails(&["run", &fixture("percpu_counter.o"), "--cpus", "0"]);
    assert_eq!(code, 2, "a usage error");
    assert!(out.is_empty());
    assert!(err.contains("--cpus") && err.contains("'0'"), "{err}");
}

#[test]
fn zero_repeats_are_a_usage_error() {
    let (code, out, err) = fails(&["run", &fixture("percpu_counter.o"), "--repeat", "0"]);
    assert_eq!(code, 2, "a usage error");
    assert!(out.is_empty());
    assert!(
        err.contains("--repeat") && err.contains("'0'") && err.contains("1.."),
        "{err}"
    );
}

#[test]
fn a_cpu_out_of_range_is_refused() {
    let (code, _, err) = fails(&[
        "run",
        &fixture("percpu_counter.o"),
        "--cpus",
        "2",
        "--cpu",
        "2",
    ]);
    assert_eq!(code, 1);
    assert!(
        err.contains("--cpu 2 does not exist") && err.contains("2 cpus"),
        "{err}"
    );
}

#[test]
fn a_faulting_program_names_the_instruction_and_the_address() {
    // write_rodata stores to .rodata, which is read-only to programs. The kernel's verifier
    // refuses it at load; with the structural checks only, the run faults.
    let (code, out, err) = fails(&[
        "run",
        &fixture("globals.o"),
        "--prog",
        "write_rodata",
        "--cpus",
        "1",
        "--json",
        "--verifier",
        "structural",
    ]);
    assert_eq!(code, 1);
    assert!(out.is_empty(), "no JSON for a failed run: {out}");
    assert!(err.contains("run 0 on cpu 0 failed"), "{err}");
    assert!(err.contains("instruction "), "{err}");
    assert!(err.contains("write") && err.contains(" at 0x"), "{err}");
    // The C line and what the address is.
    assert!(
        err.contains("globals.bpf.c:") && err.contains("factor = 99"),
        "{err}"
    );
    assert!(
        err.contains("map globals.rodata") && err.contains("read-only to programs"),
        "{err}"
    );
}

#[test]
fn an_unknown_engine_is_a_usage_error() {
    let (code, _, err) = fails(&["run", &fixture("percpu_counter.o"), "--engine", "fast"]);
    assert_eq!(code, 2);
    assert!(err.contains("rbpf-interpreter"), "{err}");
}
