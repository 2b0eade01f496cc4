//! `bpf_tail_call` (helper 12) rules: the map must be a PROG_ARRAY (and a PROG_ARRAY serves
//! no other helper); from a subprogram only with BTF function info, and only while the
//! callers' frames take under 256 bytes of stack (`check_max_stack_depth`: 33 tail calls
//! then stay within 8 KiB). The refusals without BTF and of the map types are compared
//! with the kernel in `conformance/tests/kernel_verifier_rules.rs`; the 256-byte rule needs
//! BTF function info, which that harness does not load, and follows the kernel's source.

use bpfvm_verifier::{map_type, verify, Insn, MapInfo, Options, ProgType, Program, VerifierError};

fn word(code: u8, dst: u8, src: u8, off: i16, imm: i32) -> u64 {
    u64::from(code)
        | u64::from(dst) << 8
        | u64::from(src) << 12
        | u64::from(off as u16) << 16
        | u64::from(imm as u32) << 32
}

fn run(words: &[u64], map: u32, func_info: bool) -> Result<(), VerifierError> {
    let insns: Vec<Insn> = words.iter().map(|&w| Insn::from_word(w)).collect();
    let maps = [MapInfo::new(map, 4, 4, 4)];
    let prog = Program {
        insns: &insns,
        prog_type: ProgType::Xdp,
        expected_attach_type: None,
        maps: &maps,
        gpl_compatible: true,
        func_info,
        kfuncs: &[],
        btf: None,
    };
    verify(&prog, &Options::default()).map(|_| ())
}

/// `r2 = map 0; r3 = 1; call bpf_tail_call`.
fn tail() -> [u64; 4] {
    [
        word(0x18, 2, 1, 0, 0),
        0,
        word(0xb7, 3, 0, 0, 1),
        word(0x85, 0, 0, 0, 12),
    ]
}

/// A main program with `stack` bytes of stack calling a subprogram that tail-calls.
fn from_subprog(stack: i16) -> Vec<u64> {
    let mut w = vec![
        word(0x7a, 10, 0, -stack, 0), // *(u64 *)(r10 - stack) = 0
        word(0x85, 0, 1, 0, 2),       // call +2 (the subprogram)
        word(0xb7, 0, 0, 0, 2),       // r0 = 2
        word(0x95, 0, 0, 0, 0),       // exit
    ];
    w.extend(tail());
    w.push(word(0xb7, 0, 0, 0, 1));
    w.push(word(0x95, 0, 0, 0, 0));
    w
}

#[test]
fn the_main_program_tail_calls_through_a_prog_array_only() {
    let mut w = tail().to_vec();
    w.push(word(0xb7, 0, 0, 0, 2));
    w.push(word(0x95, 0, 0, 0, 0));
    assert!(run(&w, map_type::PROG_ARRAY, false).is_ok());
    let e = run(&w, map_type::ARRAY, false).unwrap_err();
    assert_eq!(e.message, "expected prog array map for tail call");
    assert_eq!(e.errno, 22);
}

#[test]
fn subprograms_tail_call_only_with_btf_function_info() {
    let e = run(&from_subprog(8), map_type::PROG_ARRAY, false).unwrap_err();
    assert_eq!(
        e.message,
        "tail_call is not allowed in subprogs without BTF"
    );
    assert_eq!(e.errno, 22);
    assert!(run(&from_subprog(8), map_type::PROG_ARRAY, true).is_ok());
}

#[test]
fn callers_of_a_tail_calling_subprogram_keep_under_256_bytes() {
    // Frames count rounded up to 16 bytes, as for the JIT.
    assert!(run(&from_subprog(240), map_type::PROG_ARRAY, true).is_ok());
    let e = run(&from_subprog(248), map_type::PROG_ARRAY, true).unwrap_err();
    assert_eq!(
        e.message,
        "tail_calls are not allowed when call stack of previous frames is 256 bytes. Too large"
    );
    assert_eq!(e.errno, 13);
}
