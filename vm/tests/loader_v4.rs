//! Checks that `-mcpu=v4` instructions (signed division and modulo, sign-extending
//! moves and loads, bswap) survive loading unchanged.

mod common;

fn op(insn: u64) -> u8 {
    insn as u8
}

fn off(insn: u64) -> i16 {
    (insn >> 16) as u16 as i16
}

fn imm(insn: u64) -> i32 {
    (insn >> 32) as u32 as i32
}

#[test]
fn v4_instructions_are_kept() {
    let obj = common::fixture("signed_v4");
    let prog = obj.program("signed_ops").unwrap();
    let has = |opcode: u8, offset: i16| {
        prog.insns
            .iter()
            .any(|&i| op(i) == opcode && off(i) == offset)
    };
    assert!(has(0x3f, 1), "sdiv64 (BPF_ALU64|BPF_DIV|BPF_X, off 1)");
    assert!(has(0x9f, 1), "smod64");
    assert!(has(0x3c, 1), "sdiv32");
    assert!(has(0x9c, 1), "smod32");
    assert!(has(0xbf, 8), "movsx from s8");
    assert!(has(0x91, 0x10), "ldsx s8 of input.c at offset 16");
    assert!(has(0x89, 0x12), "ldsx s16 of input.d at offset 18");
    assert!(has(0x81, 0x14), "ldsx s32 of input.e at offset 20");
    assert!(
        prog.insns.iter().any(|&i| op(i) == 0xd7 && imm(i) == 64),
        "bswap64 (BPF_ALU64|BPF_END)"
    );
    // The v4 instructions are byte-for-byte those in the object.
    let bytes = prog.bytecode();
    assert_eq!(bytes.len(), prog.insns.len() * 8);
    assert_eq!(&bytes[..8], &prog.insns[0].to_le_bytes());
}
