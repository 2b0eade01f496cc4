//! Checks the loader's program size limit against the kernel: a program of exactly
//! 1,000,000 instructions after linking (`BPF_COMPLEXITY_LIMIT_INSNS`) loads in both, one
//! more is `E2BIG` in both — whether the instructions are the program's own or a `.text`
//! function linked into it.
#![cfg(target_os = "linux")]

#[path = "../../vm/tests/common/elf_writer.rs"]
mod elf_writer;

use bpfvm::loader::limits::MAX_PROGRAM_INSNS;
use bpfvm::loader::{LoadError, Object};
use bpfvm_conformance::kernel::consts::ProgType;
use bpfvm_conformance::kernel::{self, Errno, KernelProg};
use elf_writer::{self as w, Elf};

/// The kernel's answer to BPF_PROG_LOAD of `insns` as a socket filter.
fn kernel_load(insns: &[u64]) -> Result<(), Errno> {
    let bytes: Vec<u8> = insns.iter().flat_map(|i| i.to_le_bytes()).collect();
    KernelProg::load_without_log(ProgType::SocketFilter, 0, &bytes, "GPL").map(drop)
}

/// `len` instructions: `r0 = 0` ... `exit`.
fn straight(len: usize) -> Vec<u64> {
    let mut v = vec![w::MOV_R0_0; len - 1];
    v.push(w::EXIT);
    v
}

/// An object whose section `socket` is one program of `len` instructions.
fn own_code(len: usize) -> Vec<u8> {
    let mut elf = Elf::new();
    elf.code("socket", &straight(len));
    elf.build()
}

/// An object whose program (3 instructions, in `socket`) calls a `.text` function of
/// `len - 3` instructions: `len` after linking.
fn linked(len: usize) -> Vec<u8> {
    let mut elf = Elf::new();
    let t = elf.code(".text", &straight(len - 3));
    let f = elf.func("callee", t, 0, (len - 3) as u64);
    let s = elf.code("socket", &[w::call_local(-1), w::MOV_R0_0, w::EXIT]);
    elf.func("prog", s, 0, 3);
    elf.rel(s, 0, f, w::R_BPF_64_32);
    elf.build()
}

#[test]
fn the_limit_after_linking_is_the_kernels() {
    if !kernel::oracle_or_skip() {
        return;
    }
    for (what, object) in [
        ("own code", own_code as fn(usize) -> Vec<u8>),
        ("linked", linked),
    ] {
        // At the limit: both load, and the kernel takes bpfvm's linked image as is.
        let obj = Object::parse(&object(MAX_PROGRAM_INSNS))
            .unwrap_or_else(|e| panic!("{what}: bpfvm refuses {MAX_PROGRAM_INSNS}: {e}"));
        let prog = &obj.programs()[0];
        assert_eq!(prog.insns.len(), MAX_PROGRAM_INSNS, "{what}");
        kernel_load(&prog.insns)
            .unwrap_or_else(|e| panic!("{what}: the kernel refuses {MAX_PROGRAM_INSNS}: {e:?}"));

        // One more: E2BIG from both (bpfvm refuses that program, the object parses).
        let e = Object::parse(&object(MAX_PROGRAM_INSNS + 1))
            .and_then(Object::require_all)
            .unwrap_err();
        assert!(
            matches!(e, LoadError::ProgramTooLarge { .. }),
            "{what}: {e}"
        );
        let mut image = prog.insns.clone();
        image.insert(image.len() - 1, w::MOV_R0_0);
        assert_eq!(image.len(), MAX_PROGRAM_INSNS + 1);
        let k = kernel_load(&image).unwrap_err();
        assert_eq!(k, Errno::E2BIG, "{what}: the kernel's answer");
        assert_eq!(e.errno(), k.0, "{what}: bpfvm's errno");
    }
}
