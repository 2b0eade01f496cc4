use super::*;

/// One instruction, as `[opcode, regs, off lo, off hi, imm…]`.
fn one(src: &str) -> [u8; 8] {
    let code = assemble(src).unwrap_or_else(|e| panic!("{src}: {e}"));
    assert_eq!(code.len(), 8, "{src}");
    code.try_into().unwrap()
}

fn kind(src: &str) -> AsmErrorKind {
    assemble(src).unwrap_err().kind
}

#[test]
fn alu_encodings() {
    // RFC 9669: code | source | class; regs = src << 4 | dst.
    assert_eq!(one("add %r1, %r2"), [0x0f, 0x21, 0, 0, 0, 0, 0, 0]);
    assert_eq!(
        one("add32 %r1, -3"),
        [0x04, 0x01, 0, 0, 0xfd, 0xff, 0xff, 0xff]
    );
    assert_eq!(
        one("mov %r0, 0xffffffff"),
        [0xb7, 0, 0, 0, 0xff, 0xff, 0xff, 0xff]
    );
    assert_eq!(one("mov32 %r9, %r10"), [0xbc, 0xa9, 0, 0, 0, 0, 0, 0]);
    assert_eq!(one("sdiv %r0, 3"), [0x37, 0, 1, 0, 3, 0, 0, 0]);
    assert_eq!(one("sdiv32 %r0, %r1"), [0x3c, 0x10, 1, 0, 0, 0, 0, 0]);
    assert_eq!(one("smod %r0, %r1"), [0x9f, 0x10, 1, 0, 0, 0, 0, 0]);
    assert_eq!(one("smod32 %r0, 7"), [0x94, 0, 1, 0, 7, 0, 0, 0]);
    assert_eq!(one("neg %r3"), [0x87, 3, 0, 0, 0, 0, 0, 0]);
    assert_eq!(one("neg32 %r3"), [0x84, 3, 0, 0, 0, 0, 0, 0]);
    assert_eq!(one("arsh32 %r0, 4"), [0xc4, 0, 0, 0, 4, 0, 0, 0]);
    assert_eq!(one("movsx864 %r0, %r1"), [0xbf, 0x10, 8, 0, 0, 0, 0, 0]);
    assert_eq!(one("movsx1664 %r0, %r1"), [0xbf, 0x10, 16, 0, 0, 0, 0, 0]);
    assert_eq!(one("movsx3264 %r0, %r1"), [0xbf, 0x10, 32, 0, 0, 0, 0, 0]);
    assert_eq!(one("movsx832 %r0, %r1"), [0xbc, 0x10, 8, 0, 0, 0, 0, 0]);
    assert_eq!(one("movsx1632 %r0, %r1"), [0xbc, 0x10, 16, 0, 0, 0, 0, 0]);
}

#[test]
fn byte_swap_encodings() {
    assert_eq!(one("le16 %r0"), [0xd4, 0, 0, 0, 16, 0, 0, 0]);
    assert_eq!(one("be64 %r2"), [0xdc, 2, 0, 0, 64, 0, 0, 0]);
    assert_eq!(one("bswap32 %r1"), [0xd7, 1, 0, 0, 32, 0, 0, 0]);
    assert_eq!(one("swap16 %r1"), one("bswap16 %r1"));
    assert!(matches!(kind("be8 %r0"), AsmErrorKind::UnknownMnemonic(_)));
}

#[test]
fn memory_encodings() {
    assert_eq!(one("ldxw %r0, [%r1+4]"), [0x61, 0x10, 4, 0, 0, 0, 0, 0]);
    assert_eq!(one("ldxh %r0, [%r1]"), [0x69, 0x10, 0, 0, 0, 0, 0, 0]);
    assert_eq!(
        one("ldxb %r0, [%r1-1]"),
        [0x71, 0x10, 0xff, 0xff, 0, 0, 0, 0]
    );
    assert_eq!(
        one("ldxdw %r0, [%r10-8]"),
        [0x79, 0xa0, 0xf8, 0xff, 0, 0, 0, 0]
    );
    assert_eq!(one("ldxsw %r0, [%r1+2]"), [0x81, 0x10, 2, 0, 0, 0, 0, 0]);
    assert_eq!(one("ldxsh %r0, [%r1+2]"), [0x89, 0x10, 2, 0, 0, 0, 0, 0]);
    assert_eq!(one("ldxsb %r0, [%r1+2]"), [0x91, 0x10, 2, 0, 0, 0, 0, 0]);
    assert!(matches!(
        kind("ldxsdw %r0, [%r1]"),
        AsmErrorKind::UnknownMnemonic(_)
    ));
    assert_eq!(one("stw [%r1+2], 5"), [0x62, 0x01, 2, 0, 5, 0, 0, 0]);
    assert_eq!(
        one("sth [%r1], -1"),
        [0x6a, 0x01, 0, 0, 0xff, 0xff, 0xff, 0xff]
    );
    assert_eq!(one("stb [%r1+0x10], 1"), [0x72, 0x01, 16, 0, 1, 0, 0, 0]);
    assert_eq!(
        one("stdw [%r10-16], 7"),
        [0x7a, 0x0a, 0xf0, 0xff, 7, 0, 0, 0]
    );
    assert_eq!(one("stxw [%r1+2], %r3"), [0x63, 0x31, 2, 0, 0, 0, 0, 0]);
    assert_eq!(one("stxh [%r1+2], %r3"), [0x6b, 0x31, 2, 0, 0, 0, 0, 0]);
    assert_eq!(one("stxb [%r1+2], %r3"), [0x73, 0x31, 2, 0, 0, 0, 0, 0]);
    assert_eq!(one("stxdw [%r1+2], %r3"), [0x7b, 0x31, 2, 0, 0, 0, 0, 0]);
}

#[test]
fn atomic_encodings() {
    assert_eq!(
        one("lock add [%r10-8], %r1"),
        [0xdb, 0x1a, 0xf8, 0xff, 0x00, 0, 0, 0]
    );
    assert_eq!(
        one("lock add32 [%r1], %r2"),
        [0xc3, 0x21, 0, 0, 0x00, 0, 0, 0]
    );
    assert_eq!(one("lock fetch add [%r1], %r2")[4], 0x01);
    assert_eq!(one("lock or [%r1], %r2")[4], 0x40);
    assert_eq!(one("lock fetch and32 [%r1], %r2")[4], 0x51);
    assert_eq!(one("lock xor [%r1], %r2")[4], 0xa0);
    assert_eq!(one("lock xchg [%r1], %r2")[4], 0xe1);
    assert_eq!(
        one("lock cmpxchg32 [%r1+4], %r2"),
        [0xc3, 0x21, 4, 0, 0xf1, 0, 0, 0]
    );
    assert!(matches!(
        kind("lock sub [%r1], %r2"),
        AsmErrorKind::UnknownMnemonic(_)
    ));
    assert!(matches!(
        kind("lock add %r1, %r2"),
        AsmErrorKind::OperandCount { .. }
    ));
    assert!(matches!(
        kind("lock add %r1"),
        AsmErrorKind::OperandCount { .. }
    ));
}

#[test]
fn lddw_takes_two_slots() {
    let code = assemble("lddw %r3, 0x1122334455667788").unwrap();
    assert_eq!(
        code,
        [0x18, 3, 0, 0, 0x88, 0x77, 0x66, 0x55, 0, 0, 0, 0, 0x44, 0x33, 0x22, 0x11]
    );
    let code = assemble("lddw %r0, 2147483648").unwrap();
    assert_eq!(&code[4..8], &[0, 0, 0, 0x80]);
    assert_eq!(&code[12..16], &[0, 0, 0, 0]);
    // Jumps over it count both slots.
    let code = assemble("ja end\nlddw %r0, 1\nend:\nexit").unwrap();
    assert_eq!(&code[2..4], &[2, 0]);
}

#[test]
fn jumps_labels_and_calls() {
    let src = "\
top:
  mov %r0, 0        # slot 0
  jeq %r0, 0, +1    # slot 1
  jne32 %r0, %r1, top
  ja -4
  ja32 fin
  call local top
  call 5
  call %r2
  call runtime 7
fin:
  exit
";
    let code = assemble(src).unwrap();
    let slot = |i: usize| -> [u8; 8] { code[i * 8..i * 8 + 8].try_into().unwrap() };
    assert_eq!(slot(1), [0x15, 0x00, 1, 0, 0, 0, 0, 0]);
    assert_eq!(slot(2), [0x5e, 0x10, 0xfd, 0xff, 0, 0, 0, 0]); // to 0 from 3: -3
    assert_eq!(slot(3), [0x05, 0, 0xfc, 0xff, 0, 0, 0, 0]);
    assert_eq!(slot(4), [0x06, 0, 0, 0, 4, 0, 0, 0]); // to 9 from 5: imm 4
    assert_eq!(slot(5), [0x85, 0x10, 0, 0, 0xfa, 0xff, 0xff, 0xff]); // to 0 from 6: -6
    assert_eq!(slot(6), [0x85, 0, 0, 0, 5, 0, 0, 0]);
    assert_eq!(slot(7), [0x8d, 0x02, 0, 0, 0, 0, 0, 0]);
    assert_eq!(slot(8), [0x85, 0x20, 0, 0, 7, 0, 0, 0]);
    assert_eq!(slot(9), [0x95, 0, 0, 0, 0, 0, 0, 0]);
}

#[test]
fn exit_is_an_implicit_label_unless_defined() {
    let code = assemble("ja exit\nmov %r0, 1\nexit\nexit").unwrap();
    assert_eq!(code[2], 1);
    let code = assemble("ja exit\nexit\nexit:\nexit").unwrap();
    assert_eq!(code[2], 1, "an explicit `exit:` wins");
}

#[test]
fn classic_instructions_match_rbpf() {
    // rbpf's assembler writes the same instructions without `%`; compare encodings.
    let lines = [
        "add %r1, %r2",
        "sub32 %r3, 7",
        "mul %r0, -2",
        "div32 %r4, %r5",
        "or %r6, 0x7fffffff",
        "and32 %r7, %r8",
        "lsh %r9, 3",
        "rsh32 %r1, %r2",
        "neg %r3",
        "neg32 %r3",
        "mod %r0, 10",
        "xor32 %r1, %r1",
        "mov %r10, %r0",
        "arsh %r1, 63",
        "le16 %r1",
        "be32 %r2",
        "be64 %r3",
        "ldxw %r0, [%r1+4]",
        "ldxdw %r2, [%r10-8]",
        "ldxb %r0, [%r1]",
        "stw [%r1+2], 5",
        "stdw [%r10-16], -1",
        "stxh [%r1+6], %r2",
        "stxdw [%r10-8], %r9",
        "jeq %r1, 2, +3",
        "jsgt %r1, %r2, -1",
        "jset %r3, 0x10, +0",
        "ja +5",
        "call 6",
        "exit",
        "lddw %r1, 0x123456789abcdef0",
    ];
    for line in lines {
        let ours = assemble(line).unwrap();
        let theirs: Vec<u8> = rbpf::assembler::assemble(&line.replace('%', ""))
            .unwrap_or_else(|e| panic!("rbpf: {line}: {e}"));
        assert_eq!(ours, theirs, "{line}");
    }
}

#[test]
fn the_upstream_assembler_error_cases_are_refused() {
    // The shapes of upstream's negative/invalid_*.data files.
    assert!(matches!(
        kind("mov32 %r0, 2147483648"),
        AsmErrorKind::OutOfRange { bits: 32, .. }
    ));
    assert!(matches!(
        kind("mov32 %r0, 0x100000000"),
        AsmErrorKind::OutOfRange { bits: 32, .. }
    ));
    assert_eq!(
        kind("ja NOT_A_LABEL\nexit"),
        AsmErrorKind::UnknownLabel("NOT_A_LABEL".into())
    );
    assert!(matches!(
        kind("lock or [%r10-8]"),
        AsmErrorKind::OperandCount { .. }
    ));
    assert!(matches!(kind("lock"), AsmErrorKind::OperandCount { .. }));
    assert!(matches!(
        kind("ldxq %r0, %r1"),
        AsmErrorKind::UnknownMnemonic(_)
    ));
    assert!(matches!(
        kind("ldxb %r0, %r1"),
        AsmErrorKind::BadMemoryOperand(_)
    ));
    assert!(matches!(
        kind("ldxb %r0, [%r1+0x10000]"),
        AsmErrorKind::OutOfRange { bits: 16, .. }
    ));
    assert!(matches!(
        kind("lddw %r0"),
        AsmErrorKind::OperandCount { .. }
    ));
    assert_eq!(
        kind("or %r0, %r50"),
        AsmErrorKind::BadRegister("%r50".into())
    );
}

#[test]
fn other_errors_name_the_line() {
    let e = assemble("mov %r0, 1\n\nadd %r0 1\n").unwrap_err();
    assert_eq!(e.line, 3);
    assert!(matches!(e.kind, AsmErrorKind::BadOperand(_)));
    assert_eq!(
        kind("a:\na:\nexit"),
        AsmErrorKind::DuplicateLabel("a".into())
    );
    assert!(matches!(kind("1a:\nexit"), AsmErrorKind::BadTarget(_)));
    assert!(matches!(kind("ja 3"), AsmErrorKind::BadTarget(_)));
    assert!(matches!(
        kind("exit %r0"),
        AsmErrorKind::OperandCount { .. }
    ));
    assert!(matches!(
        kind("call 1, 2"),
        AsmErrorKind::OperandCount { .. }
    ));
    assert!(matches!(
        kind("call local"),
        AsmErrorKind::BadTarget(_) | AsmErrorKind::BadNumber(_) | AsmErrorKind::OperandCount { .. }
    ));
    assert!(matches!(kind("mov %r0,"), AsmErrorKind::BadNumber(_)));
    assert!(matches!(
        kind("jeq %r0, 1"),
        AsmErrorKind::OperandCount { .. }
    ));
    assert!(matches!(
        kind("movsx6464 %r0, %r1"),
        AsmErrorKind::UnknownMnemonic(_)
    ));
    assert!(matches!(
        kind("movsx864 %r0, 1"),
        AsmErrorKind::BadRegister(_)
    ));
    assert!(matches!(
        kind("ja +32768"),
        AsmErrorKind::JumpTooFar { bits: 16, .. }
    ));
    assert!(matches!(kind("# only a comment\n"), AsmErrorKind::Empty));
    assert_eq!(assemble("").unwrap_err().kind, AsmErrorKind::Empty);
}

#[test]
fn a_long_forward_jump_overflows_only_the_16_bit_field() {
    let mut src = String::from("ja far\nja32 far\n");
    for _ in 0..40_000 {
        src.push_str("mov %r0, 0\n");
    }
    src.push_str("far:\nexit\n");
    let e = assemble(&src).unwrap_err();
    assert_eq!(e.line, 1);
    assert!(matches!(e.kind, AsmErrorKind::JumpTooFar { bits: 16, .. }));
    let code = assemble(&src[7..]).unwrap();
    assert_eq!(&code[4..8], &40_000i32.to_le_bytes());
}
