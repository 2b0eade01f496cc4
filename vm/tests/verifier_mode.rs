//! Checks the load-time verifier modes: by default `Vm::load` gives the kernel's verdict
//! (with its words, errno and the C line), `Structural` keeps bpfvm's own checks only,
//! raw-context programs get the structural checks in either mode, and `bpfvm verify`
//! prints the verdict per program.

mod common;

use std::process::Command;

use bpfvm::ctx_layout::xdp_md;
use bpfvm::verifier::Rule;
use bpfvm::{PrepareError, Privilege, Program, ProgramType, VerifierMode, Vm};
use common::asm;

/// A packet read with no comparison against `data_end`.
fn unchecked_read() -> Vec<u8> {
    asm(&format!(
        "ldxw r2, [r1+{}]\nldxb r0, [r2+0]\nmov64 r0, 0\nexit",
        xdp_md::DATA
    ))
}

#[test]
fn the_default_is_the_kernels_verdict() {
    let vm = Vm::default();
    assert_eq!(vm.config().verifier, VerifierMode::Kernel);
    assert_eq!(vm.config().privilege, Privilege::CapBpfNetAdmin);
    let err = vm
        .load(Program::new(unchecked_read(), ProgramType::Xdp))
        .unwrap_err();
    let PrepareError::Verifier { error, line } = &err else {
        panic!("{err:?}");
    };
    assert_eq!(
        (error.insn, error.rule, error.errno),
        (Some(1), Rule::PacketAccess, 13)
    );
    assert_eq!(
        error.message,
        "invalid access to packet, off=0 size=1, R2(id=0,off=0,r=0)\nR2 offset is outside of the packet"
    );
    assert!(line.is_none(), "no line info was given");
    assert_eq!(err.errno(), 13);
    let shown = err.to_string();
    assert!(
        shown.contains("instruction 1: invalid access to packet"),
        "{shown}"
    );
    assert!(
        shown.contains("state: R1=ctx() R2=pkt(r=0) R10=fp0"),
        "{shown}"
    );
}

#[test]
fn a_verifier_refusal_is_a_bpfvm_error_with_the_kernels_errno() {
    fn load() -> Result<bpfvm::LoadedProgram, bpfvm::Error> {
        Ok(Vm::default().load(Program::new(unchecked_read(), ProgramType::Xdp))?)
    }
    let err = load().unwrap_err();
    let bpfvm::Error::Prepare(PrepareError::Verifier { error, .. }) = &err else {
        panic!("{err:?}");
    };
    assert_eq!(error.rule, Rule::PacketAccess);
    assert_eq!(err.errno(), 13, "EACCES, as BPF_PROG_LOAD");
    assert!(
        err.to_string()
            .contains("instruction 1: invalid access to packet"),
        "{err}"
    );
}

#[test]
fn structural_mode_keeps_only_bpfvms_checks() {
    let vm = Vm::builder().verifier(VerifierMode::Structural).build();
    vm.load(Program::new(unchecked_read(), ProgramType::Xdp))
        .expect("structurally valid");
    // Structural checks still refuse what is malformed.
    let err = vm
        .load(Program::new(asm("ldxb r0, [r3+0]\nexit"), ProgramType::Xdp))
        .unwrap_err();
    assert!(
        matches!(err, PrepareError::UninitializedRegister { pc: 0, reg: 3 }),
        "{err:?}"
    );
}

#[test]
fn raw_context_programs_get_the_structural_checks() {
    // No kernel program type has a raw context: reading r1 + 100 is left to run time.
    let code = asm("ldxb r0, [r1+100]\nexit");
    Vm::default()
        .load(Program::new(code, ProgramType::Unspecified))
        .expect("raw-context programs are not kernel-verified");
}

#[test]
fn source_lines_and_privilege_follow_the_program() {
    let (obj, maps, _) = common::fixture_vm("xdp_parser", 1);
    let cap_bpf = Vm::builder().cpus(1).build();
    let err = cap_bpf
        .load(obj.vm_program("xdp_udp_filter", &maps).unwrap())
        .unwrap_err();
    let PrepareError::Verifier { error, line } = &err else {
        panic!("{err:?}");
    };
    assert_eq!(error.rule, Rule::PointerArithmetic);
    assert!(
        error.message.ends_with("prohibited for !root"),
        "{}",
        error.message
    );
    assert_eq!(
        line.as_deref(),
        Some("./src/xdp_parser.bpf.c:63: udp = (void *)ip + ihl;")
    );
    let root = Vm::builder().cpus(1).privilege(Privilege::Root).build();
    root.load(obj.vm_program("xdp_udp_filter", &maps).unwrap())
        .expect("the kernel accepts it for root");
}

#[test]
fn the_verify_command_prints_each_verdict() {
    let run = |args: &[&str]| {
        let out = Command::new(env!("CARGO_BIN_EXE_bpfvm"))
            .arg("verify")
            .args(args)
            .output()
            .unwrap();
        (
            out.status.code(),
            String::from_utf8_lossy(&out.stdout).into_owned(),
            String::from_utf8_lossy(&out.stderr).into_owned(),
        )
    };
    let xdp = common::fixture_path("xdp_parser");
    let (code, out, err) = run(&[&xdp]);
    assert_eq!(code, Some(1), "{err}");
    assert!(
        out.starts_with("xdp_udp_filter (section xdp): refused for a cap_bpf loader (errno 13)"),
        "{out}"
    );
    assert!(
        out.contains("source: ./src/xdp_parser.bpf.c:63: udp = (void *)ip + ihl;"),
        "{out}"
    );
    assert!(err.contains("refuses 1 of 1 programs"), "{err}");
    let (code, out, _) = run(&[&xdp, "--privileged", "root"]);
    assert_eq!(code, Some(0));
    assert!(
        out.contains("xdp_udp_filter (section xdp): accepted for a root loader"),
        "{out}"
    );
    // A section libbpf does not know has no program type to verify as.
    let (code, out, _) = run(&[
        &common::fixture_path("multi"),
        "--privileged",
        "root",
        "--prog",
        "custom_prog",
    ]);
    assert_eq!(code, Some(1));
    assert!(
        out.contains("not verified") && out.contains("is not one libbpf knows"),
        "{out}"
    );
}
