//! An assembler for the `-- asm` sections of the bpf_conformance vectors, and a reader for
//! their `-- raw` sections, so the suite runs from upstream's `.data` files alone.
//!
//! The dialect (upstream's `bpf_assembler`): registers `%r0`..`%r10`; operands separated by
//! commas; memory operands `[%rN]`, `[%rN+off]`, `[%rN-off]`; numbers decimal or `0x` hex
//! (a decimal immediate must fit in 32 signed bits, a hex one may be any 32-bit pattern);
//! `#` starts a comment; `name:` on its own line is a label.
//!
//! | instructions | encoding |
//! |---|---|
//! | `add sub mul div sdiv or and lsh rsh mod smod xor mov arsh`, with a `32` suffix for the ALU class | `dst, src` or `dst, imm`; `sdiv`/`smod` are div/mod with offset 1 |
//! | `neg`, `neg32` | `dst` |
//! | `movsx864 movsx1664 movsx3264 movsx832 movsx1632` | `mov` (register) with the source width in the offset |
//! | `le16/32/64`, `be16/32/64`; `bswap16/32/64` (alias `swap…`) | the END opcodes 0xd4, 0xdc; 0xd7 |
//! | `lddw dst, imm64` | two slots |
//! | `ldxb ldxh ldxw ldxdw`, `ldxsb ldxsh ldxsw` | `dst, [src+off]` |
//! | `stb sth stw stdw`, `stxb stxh stxw stxdw` | `[dst+off], imm` / `[dst+off], src` |
//! | `lock [fetch] add/or/and/xor/xchg/cmpxchg` (suffix `32`: 32-bit) | `[dst+off], src` |
//! | `ja T`, `ja32 T` (alias `gotol`) | `T` is `+N`, `-N` (slots after the next instruction) or a label |
//! | `jeq jgt jge jset jne jsgt jsge jlt jle jslt jsle`, suffix `32` for JMP32 | `dst, src-or-imm, T` |
//! | `call N`, `call %rN` (callx, register in `dst`), `call local LABEL`, `call runtime N` | |
//! | `exit` | the first `exit` is also the implicit label `exit` |
//!
//! ```
//! use bpfvm_conformance::vector_asm::assemble;
//!
//! let code = assemble("mov %r0, 1\njne %r0, 2, exit\nmov %r0, 3\nexit\n").unwrap();
//! assert_eq!(&code[..8], &[0xb7, 0x00, 0, 0, 1, 0, 0, 0]);
//! assert_eq!(&code[8..16], &[0x55, 0x00, 1, 0, 2, 0, 0, 0]); // to `exit`: one slot ahead
//! assert!(assemble("ldxb %r0, %r1").unwrap_err().to_string().contains("line 1"));
//! ```

mod encode;
mod operand;
mod raw;

use std::collections::HashMap;

pub use raw::decode_raw;

use encode::Field;
use operand::Target;

/// One instruction slot.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
struct Insn {
    opcode: u8,
    dst: u8,
    src: u8,
    off: i16,
    imm: i32,
}

impl Insn {
    fn bytes(&self) -> [u8; 8] {
        let off = self.off.to_le_bytes();
        let imm = self.imm.to_le_bytes();
        [
            self.opcode,
            (self.src << 4) | self.dst,
            off[0],
            off[1],
            imm[0],
            imm[1],
            imm[2],
            imm[3],
        ]
    }
}

/// A line the assembler (or the raw reader) could not take.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("line {line}: {kind}")]
pub struct AsmError {
    /// The line number given with the line (1-based in [`assemble`]).
    pub line: usize,
    /// What is wrong.
    pub kind: AsmErrorKind,
}

/// What is wrong with a line.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum AsmErrorKind {
    /// No such instruction.
    #[error("unknown mnemonic {0:?}")]
    UnknownMnemonic(String),
    /// The instruction takes another number of operands.
    #[error("{mnemonic} takes {expected} operand(s), found {found}")]
    OperandCount {
        /// The instruction.
        mnemonic: String,
        /// Operands it takes.
        expected: usize,
        /// Operands given.
        found: usize,
    },
    /// Not `%r0`..`%r10`.
    #[error("invalid register {0:?} (expected %r0 to %r10)")]
    BadRegister(String),
    /// Not a decimal or `0x` hex number.
    #[error("invalid number {0:?}")]
    BadNumber(String),
    /// A number that does not fit its field.
    #[error("{operand:?} does not fit in {bits} bits")]
    OutOfRange {
        /// The operand as written.
        operand: String,
        /// The field's width.
        bits: u32,
    },
    /// Not `[%rN]`, `[%rN+off]` or `[%rN-off]`.
    #[error("invalid memory operand {0:?} (expected [%rN+offset])")]
    BadMemoryOperand(String),
    /// An operand where none belongs, or operands not separated by commas.
    #[error("unexpected operand {0:?}")]
    BadOperand(String),
    /// Not `+N`, `-N` or a label name.
    #[error("invalid jump target {0:?}")]
    BadTarget(String),
    /// A jump to a label that is not defined.
    #[error("undefined label {0:?}")]
    UnknownLabel(String),
    /// A label defined twice.
    #[error("label {0:?} defined twice")]
    DuplicateLabel(String),
    /// A jump whose distance does not fit its field.
    #[error("jump to {target} is {distance} slots away, more than the {bits}-bit field holds")]
    JumpTooFar {
        /// The target as written.
        target: String,
        /// The distance in slots.
        distance: i64,
        /// The field's width.
        bits: u32,
    },
    /// A `-- raw` line that is neither eight hex bytes nor 64-bit words.
    #[error("invalid raw instruction line {0:?}")]
    BadRaw(String),
    /// Nothing to assemble.
    #[error("no instructions")]
    Empty,
}

/// Assembles `source` (lines numbered from 1) into bytecode, 8 bytes per slot.
pub fn assemble(source: &str) -> Result<Vec<u8>, AsmError> {
    assemble_lines(source.lines().enumerate().map(|(i, l)| (i + 1, l)))
}

/// An instruction waiting for its target.
struct Pending {
    line: usize,
    slot: usize,
    target: Target,
    field: Field,
}

/// Assembles numbered lines (for example a file's `-- asm` section with the file's line
/// numbers, which then appear in errors).
pub fn assemble_lines<'a>(
    lines: impl IntoIterator<Item = (usize, &'a str)>,
) -> Result<Vec<u8>, AsmError> {
    let mut insns: Vec<Insn> = Vec::new();
    let mut labels: HashMap<String, usize> = HashMap::new();
    let mut first_exit = None;
    let mut pending = Vec::new();
    let mut last_line = 0;
    for (line, text) in lines {
        last_line = line;
        let at = |kind| AsmError { line, kind };
        let text = text.split('#').next().unwrap_or("").trim();
        if text.is_empty() {
            continue;
        }
        if let Some(name) = text.strip_suffix(':') {
            let name = name.trim();
            if !operand::is_label(name) {
                return Err(at(AsmErrorKind::BadTarget(name.to_owned())));
            }
            if labels.insert(name.to_owned(), insns.len()).is_some() {
                return Err(at(AsmErrorKind::DuplicateLabel(name.to_owned())));
            }
            continue;
        }
        let (words, ops) = split_line(text).map_err(at)?;
        let encoded = encode::encode(&words, &ops).map_err(at)?;
        if words[0] == "exit" && first_exit.is_none() {
            first_exit = Some(insns.len());
        }
        if let Some((target, field)) = encoded.target {
            pending.push(Pending {
                line,
                slot: insns.len(),
                target,
                field,
            });
        }
        insns.extend(encoded.insns);
    }
    if insns.is_empty() {
        return Err(AsmError {
            line: last_line,
            kind: AsmErrorKind::Empty,
        });
    }
    if let Some(slot) = first_exit {
        labels.entry("exit".to_owned()).or_insert(slot);
    }
    for p in pending {
        let at = |kind| AsmError { line: p.line, kind };
        let (distance, written) = match &p.target {
            Target::Relative(n) => (*n, format!("{n:+}")),
            Target::Label(name) => {
                let to = *labels
                    .get(name)
                    .ok_or_else(|| at(AsmErrorKind::UnknownLabel(name.clone())))?;
                (to as i64 - (p.slot as i64 + 1), name.clone())
            }
        };
        let too_far = |bits| {
            at(AsmErrorKind::JumpTooFar {
                target: written.clone(),
                distance,
                bits,
            })
        };
        match p.field {
            Field::Offset => {
                insns[p.slot].off = i16::try_from(distance).map_err(|_| too_far(16))?
            }
            Field::Imm => insns[p.slot].imm = i32::try_from(distance).map_err(|_| too_far(32))?,
        }
    }
    Ok(insns.iter().flat_map(Insn::bytes).collect())
}

/// Splits a line into its mnemonic words (`lock fetch add`, `call local f`, or just the
/// mnemonic) and its comma-separated operands.
fn split_line(text: &str) -> Result<(Vec<&str>, Vec<&str>), AsmErrorKind> {
    let mut pieces = text.split(',').map(str::trim);
    let first = pieces.next().unwrap_or("");
    let (head, bracket) = match first.find('[') {
        Some(i) => (&first[..i], Some(first[i..].trim())),
        None => (first, None),
    };
    let mut words: Vec<&str> = head.split_whitespace().collect();
    let keep = match words.first() {
        Some(&"lock") | Some(&"call") => words.len(),
        Some(_) => 1,
        None => return Err(AsmErrorKind::BadOperand(first.to_owned())),
    };
    let mut ops = words.split_off(keep);
    if ops.len() > 1 {
        return Err(AsmErrorKind::BadOperand(ops.join(" ")));
    }
    ops.extend(bracket);
    ops.extend(pieces);
    Ok((words, ops))
}

#[cfg(test)]
mod tests;
