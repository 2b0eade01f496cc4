//! One instruction line of the bpf_conformance dialect to its encoding (RFC 9669 opcodes),
//! leaving label targets for the caller to resolve.

use super::operand::{self, Target};
use super::{AsmErrorKind, Insn};

/// The field a jump target is written into.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum Field {
    /// The 16-bit `offset` (jumps).
    Offset,
    /// The 32-bit `imm` (`ja32`, `call local`).
    Imm,
}

/// One encoded line: one instruction (two for `lddw`) and possibly a target to fill in.
#[derive(Debug)]
pub(super) struct Encoded {
    pub insns: Vec<Insn>,
    pub target: Option<(Target, Field)>,
}

impl Encoded {
    fn one(insn: Insn) -> Self {
        Encoded {
            insns: vec![insn],
            target: None,
        }
    }
}

const CLS_LDX: u8 = 0x01;
const CLS_ST: u8 = 0x02;
const CLS_STX: u8 = 0x03;
const CLS_ALU: u8 = 0x04;
const CLS_JMP: u8 = 0x05;
const CLS_JMP32: u8 = 0x06;
const CLS_ALU64: u8 = 0x07;
const SRC_REG: u8 = 0x08;
const MODE_MEM: u8 = 0x60;
const MODE_MEMSX: u8 = 0x80;
const MODE_ATOMIC: u8 = 0xc0;

/// Size bits of a load/store by mnemonic suffix.
fn size(suffix: &str) -> Option<u8> {
    match suffix {
        "w" => Some(0x00),
        "h" => Some(0x08),
        "b" => Some(0x10),
        "dw" => Some(0x18),
        _ => None,
    }
}

/// ALU operation code (high nibble) and the offset that selects the signed variant.
fn alu_op(name: &str) -> Option<(u8, i16)> {
    Some(match name {
        "add" => (0x00, 0),
        "sub" => (0x10, 0),
        "mul" => (0x20, 0),
        "div" => (0x30, 0),
        "sdiv" => (0x30, 1),
        "or" => (0x40, 0),
        "and" => (0x50, 0),
        "lsh" => (0x60, 0),
        "rsh" => (0x70, 0),
        "mod" => (0x90, 0),
        "smod" => (0x90, 1),
        "xor" => (0xa0, 0),
        "mov" => (0xb0, 0),
        "arsh" => (0xc0, 0),
        _ => return None,
    })
}

/// Conditional jump operation code (high nibble).
fn jmp_op(name: &str) -> Option<u8> {
    Some(match name {
        "jeq" => 0x10,
        "jgt" => 0x20,
        "jge" => 0x30,
        "jset" => 0x40,
        "jne" => 0x50,
        "jsgt" => 0x60,
        "jsge" => 0x70,
        "jlt" => 0xa0,
        "jle" => 0xb0,
        "jslt" => 0xc0,
        "jsle" => 0xd0,
        _ => return None,
    })
}

/// Atomic operation `imm` (without the fetch flag) and whether it always fetches.
fn atomic_op(name: &str) -> Option<(i32, bool)> {
    Some(match name {
        "add" => (0x00, false),
        "or" => (0x40, false),
        "and" => (0x50, false),
        "xor" => (0xa0, false),
        "xchg" => (0xe1, true),
        "cmpxchg" => (0xf1, true),
        _ => return None,
    })
}

/// `name` without a trailing `32`, and whether it had one.
fn split32(name: &str) -> (&str, bool) {
    match name.strip_suffix("32") {
        Some(base) => (base, true),
        None => (name, false),
    }
}

fn want(mnemonic: &str, ops: &[&str], n: usize) -> Result<(), AsmErrorKind> {
    if ops.len() == n {
        Ok(())
    } else {
        Err(AsmErrorKind::OperandCount {
            mnemonic: mnemonic.to_owned(),
            expected: n,
            found: ops.len(),
        })
    }
}

/// Encodes `mnemonic` with its comma-separated operands (already trimmed). `lock` and
/// `call` take their space-separated words (`fetch`, the operation, `local`, `runtime`) as
/// part of `words`.
pub(super) fn encode(words: &[&str], ops: &[&str]) -> Result<Encoded, AsmErrorKind> {
    let mnemonic = words[0];
    if mnemonic == "lock" {
        return lock(&words[1..], ops);
    }
    if mnemonic == "call" {
        return call(&words[1..], ops);
    }
    if words.len() > 1 {
        return Err(AsmErrorKind::BadOperand(words[1].to_owned()));
    }
    let unknown = || AsmErrorKind::UnknownMnemonic(mnemonic.to_owned());
    let reg = operand::register;
    let mut insn = Insn::default();

    match mnemonic {
        "exit" => {
            want(mnemonic, ops, 0)?;
            insn.opcode = CLS_JMP | 0x90;
            return Ok(Encoded::one(insn));
        }
        "ja" | "ja32" | "gotol" => {
            want(mnemonic, ops, 1)?;
            let wide = mnemonic != "ja";
            insn.opcode = if wide { CLS_JMP32 } else { CLS_JMP };
            let field = if wide { Field::Imm } else { Field::Offset };
            return Ok(Encoded {
                insns: vec![insn],
                target: Some((operand::target(ops[0])?, field)),
            });
        }
        "lddw" => {
            want(mnemonic, ops, 2)?;
            let v = operand::imm64(ops[1])?;
            let first = Insn {
                opcode: 0x18,
                dst: reg(ops[0])?,
                imm: v as u32 as i32,
                ..Insn::default()
            };
            let second = Insn {
                imm: (v >> 32) as u32 as i32,
                ..Insn::default()
            };
            return Ok(Encoded {
                insns: vec![first, second],
                target: None,
            });
        }
        _ => {}
    }

    // Byte swaps: le/be (ALU class), bswap/swap (ALU64 class, v4).
    for (prefix, opcode) in [("le", 0xd4), ("be", 0xdc), ("bswap", 0xd7), ("swap", 0xd7)] {
        if let Some(width) = mnemonic.strip_prefix(prefix) {
            if matches!(width, "16" | "32" | "64") {
                want(mnemonic, ops, 1)?;
                insn.opcode = opcode;
                insn.dst = reg(ops[0])?;
                insn.imm = width.parse().unwrap_or_default();
                return Ok(Encoded::one(insn));
            }
        }
    }

    // Sign-extending moves: movsx<from><to>, e.g. movsx1664.
    if let Some(widths) = mnemonic.strip_prefix("movsx") {
        let (off, class) = match widths {
            "864" => (8, CLS_ALU64),
            "1664" => (16, CLS_ALU64),
            "3264" => (32, CLS_ALU64),
            "832" => (8, CLS_ALU),
            "1632" => (16, CLS_ALU),
            _ => return Err(unknown()),
        };
        want(mnemonic, ops, 2)?;
        insn.opcode = class | 0xb0 | SRC_REG;
        insn.dst = reg(ops[0])?;
        insn.src = reg(ops[1])?;
        insn.off = off;
        return Ok(Encoded::one(insn));
    }

    // Loads: ldx{b,h,w,dw} and sign-extending ldxs{b,h,w}.
    if let Some(rest) = mnemonic.strip_prefix("ldx") {
        let (mode, sz) = match rest.strip_prefix('s') {
            Some(s) if s != "dw" => (MODE_MEMSX, s),
            _ => (MODE_MEM, rest),
        };
        let sz = size(sz).ok_or_else(unknown)?;
        want(mnemonic, ops, 2)?;
        let (src, off) = operand::memory(ops[1])?;
        insn.opcode = mode | sz | CLS_LDX;
        insn.dst = reg(ops[0])?;
        insn.src = src;
        insn.off = off;
        return Ok(Encoded::one(insn));
    }

    // Stores: stx{b,h,w,dw} [dst+off], src and st{b,h,w,dw} [dst+off], imm.
    if let Some(rest) = mnemonic.strip_prefix("st") {
        let (class, sz) = match rest.strip_prefix('x') {
            Some(s) => (CLS_STX, s),
            None => (CLS_ST, rest),
        };
        let sz = size(sz).ok_or_else(unknown)?;
        want(mnemonic, ops, 2)?;
        let (dst, off) = operand::memory(ops[0])?;
        insn.opcode = MODE_MEM | sz | class;
        insn.dst = dst;
        insn.off = off;
        if class == CLS_STX {
            insn.src = reg(ops[1])?;
        } else {
            insn.imm = operand::imm32(ops[1])?;
        }
        return Ok(Encoded::one(insn));
    }

    let (base, is32) = split32(mnemonic);

    if base == "neg" {
        want(mnemonic, ops, 1)?;
        insn.opcode = if is32 { CLS_ALU } else { CLS_ALU64 } | 0x80;
        insn.dst = reg(ops[0])?;
        return Ok(Encoded::one(insn));
    }

    if let Some((op, off)) = alu_op(base) {
        want(mnemonic, ops, 2)?;
        insn.opcode = if is32 { CLS_ALU } else { CLS_ALU64 } | op;
        insn.off = off;
        insn.dst = reg(ops[0])?;
        source(&mut insn, ops[1])?;
        return Ok(Encoded::one(insn));
    }

    if let Some(op) = jmp_op(base) {
        want(mnemonic, ops, 3)?;
        insn.opcode = if is32 { CLS_JMP32 } else { CLS_JMP } | op;
        insn.dst = reg(ops[0])?;
        source(&mut insn, ops[1])?;
        return Ok(Encoded {
            insns: vec![insn],
            target: Some((operand::target(ops[2])?, Field::Offset)),
        });
    }

    Err(unknown())
}

/// The second operand of ALU and jump instructions: a register (`src`, `BPF_X`) or an
/// immediate (`imm`, `BPF_K`).
fn source(insn: &mut Insn, op: &str) -> Result<(), AsmErrorKind> {
    if operand::is_register(op) {
        insn.opcode |= SRC_REG;
        insn.src = operand::register(op)?;
    } else {
        insn.imm = operand::imm32(op)?;
    }
    Ok(())
}

/// `lock [fetch] OP[32] [%dst+off], %src`.
fn lock(words: &[&str], ops: &[&str]) -> Result<Encoded, AsmErrorKind> {
    let (fetch, rest) = match words.first() {
        Some(&"fetch") => (true, &words[1..]),
        _ => (false, words),
    };
    let [op_name] = rest else {
        return Err(AsmErrorKind::OperandCount {
            mnemonic: "lock".into(),
            expected: 2,
            found: ops.len(),
        });
    };
    want("lock", ops, 2)?;
    let (base, is32) = split32(op_name);
    let (imm, always_fetches) =
        atomic_op(base).ok_or_else(|| AsmErrorKind::UnknownMnemonic(format!("lock {op_name}")))?;
    let (dst, off) = operand::memory(ops[0])?;
    let size = if is32 { 0x00 } else { 0x18 };
    Ok(Encoded::one(Insn {
        opcode: MODE_ATOMIC | size | CLS_STX,
        dst,
        src: operand::register(ops[1])?,
        off,
        imm: imm | i32::from(fetch || always_fetches),
    }))
}

/// `call N` (helper), `call %rN` (callx), `call local LABEL`, `call runtime N`.
fn call(words: &[&str], ops: &[&str]) -> Result<Encoded, AsmErrorKind> {
    // The words after `call` are the operand (no commas): one, or a mode and one.
    if !ops.is_empty() {
        return Err(AsmErrorKind::OperandCount {
            mnemonic: "call".into(),
            expected: 1,
            found: words.len() + ops.len(),
        });
    }
    let mut insn = Insn {
        opcode: CLS_JMP | 0x80,
        ..Insn::default()
    };
    match words {
        [target] if operand::is_register(target) => {
            insn.opcode = CLS_JMP | 0x80 | SRC_REG;
            insn.dst = operand::register(target)?;
        }
        [helper] | ["helper", helper] => insn.imm = operand::imm32(helper)?,
        ["runtime", func] => {
            insn.src = 2;
            insn.imm = operand::imm32(func)?;
        }
        ["local", label] => {
            insn.src = 1;
            return Ok(Encoded {
                insns: vec![insn],
                target: Some((operand::target(label)?, Field::Imm)),
            });
        }
        _ => {
            return Err(AsmErrorKind::OperandCount {
                mnemonic: "call".into(),
                expected: 1,
                found: words.len(),
            })
        }
    }
    Ok(Encoded::one(insn))
}
