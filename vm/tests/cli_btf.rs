//! `--btf FILE`: the target BTF for CO-RE relocations on `run` and `disasm`. Without it a
//! program's relocations on kernel types are poisoned: `run` warns about each and the run
//! that reaches one fails naming it; with it the program runs.

#[path = "common/cli.rs"]
mod cli;
use cli::{bpfvm, fixture};

#[test]
fn run_with_a_target_btf_resolves_kernel_types() {
    let (ok, out, err) = bpfvm(&[
        "run",
        &fixture("core_kernel.o"),
        "--btf",
        &fixture("core_target.btf"),
        "--cpus",
        "1",
        "--json",
    ]);
    assert!(ok, "{err}");
    assert!(out.contains("\"first_retval\":7"), "{out}");
    // only the two relocations on paths never taken are poisoned
    assert_eq!(err.matches("could not be resolved").count(), 2, "{err}");
}

#[test]
fn run_without_one_warns_and_names_the_reached_relocation() {
    let (ok, out, err) = bpfvm(&["run", &fixture("core_kernel.o"), "--cpus", "1"]);
    assert!(!ok);
    assert!(out.is_empty(), "{out}");
    assert!(err.contains("bpfvm: warning: instruction"), "{err}");
    // refused by the kernel's verifier, naming the relocation
    assert!(
        err.contains("invalid func unknown#195896080: CO-RE relocation #0"),
        "{err}"
    );
    assert!(err.contains("struct task_struct.pid"), "{err}");
    assert!(err.contains("--btf"), "{err}");
    // with the structural checks only, the run that reaches it fails naming it
    let (ok, _, err) = bpfvm(&[
        "run",
        &fixture("core_kernel.o"),
        "--cpus",
        "1",
        "--verifier",
        "structural",
    ]);
    assert!(!ok);
    assert!(
        err.contains("reached a poisoned instruction (call 0xbad2310)"),
        "{err}"
    );
}

#[test]
fn a_bad_btf_file_is_a_load_error_naming_it() {
    let manifest = format!("{}/Cargo.toml", env!("CARGO_MANIFEST_DIR"));
    let (ok, _, err) = bpfvm(&[
        "run",
        &fixture("core_abi.o"),
        "--prog",
        "xdp_core",
        "--btf",
        &manifest,
    ]);
    assert!(!ok);
    assert!(err.contains("Cargo.toml") && err.contains("BTF"), "{err}");
}

#[test]
fn disasm_shows_the_relocated_offsets() {
    let (ok, out, err) = bpfvm(&[
        "disasm",
        &fixture("core_relo.o"),
        "--btf",
        &fixture("core_target.btf"),
    ]);
    assert!(ok, "{err}");
    assert!(out.contains("mov64 r1, 0x14"), "tgid at 20: {out}");
}

#[test]
fn disasm_marks_poisoned_instructions() {
    let (ok, out, err) = bpfvm(&["disasm", &fixture("core_relo.o")]);
    assert!(ok, "{err}");
    assert!(
        out.contains("call 0xbad2310 (poisoned CO-RE relocation"),
        "{out}"
    );
    assert!(
        out.contains("<byte_off> [2] struct task_struct.tgid"),
        "{out}"
    );
}
