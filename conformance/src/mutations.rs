//! Mutants of verifier-clean programs for differential tests of the verifier: each mutant
//! is the program with one instruction changed the way a programmer's mistake would change
//! it (a bounds check dropped, a NULL test removed, an access widened, a loop lengthened),
//! so that the kernel's verifier and bpfvm's can be asked for their verdict on it.

use std::fmt;

/// What a mutation does.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum MutationClass {
    /// A conditional jump (not a NULL test) replaced by `ja +0`: the check never branches.
    DropCheck,
    /// A conditional jump (not a NULL test) replaced by `ja +off`: it always branches.
    InvertCheck,
    /// A comparison of a register with 0 (`if rX == 0`/`!= 0`) that never branches.
    DropNullTest,
    /// A comparison of a register with 0 that always branches.
    InvertNullTest,
    /// A load or store one size wider (`u8` → `u16` → `u32` → `u64`), or, for `u64`s,
    /// eight bytes further.
    WidenAccess,
    /// A backward conditional jump comparing with a constant (a loop's bound) whose
    /// constant is multiplied by 16 (a loop made longer).
    LengthenLoop,
    /// A forward conditional jump comparing with a non-zero constant whose constant is
    /// one larger (a bound off by one: `if (i < 16)` becomes `if (i < 17)`). Unlike the
    /// dropped and inverted checks, every instruction stays reachable.
    BoundOffByOne,
    /// An instruction that is not a jump, call, exit or `ld_imm64` replaced by `ja +0`
    /// (a statement forgotten: a store that initialised the stack, a mask that bounded an
    /// index, a copy).
    DropInsn,
    /// An unsigned comparison made signed or a signed one unsigned (`>` and `s>`, ...).
    SignedCompare,
    /// A 64-bit conditional jump made a 32-bit one (`if w1 < 16`).
    Compare32,
    /// A load or store one byte further (`+1`): misaligned, or past a checked range.
    ShiftOffset,
}

impl MutationClass {
    /// Every class.
    pub const ALL: [MutationClass; 7] = [
        MutationClass::DropCheck,
        MutationClass::InvertCheck,
        MutationClass::DropNullTest,
        MutationClass::InvertNullTest,
        MutationClass::WidenAccess,
        MutationClass::LengthenLoop,
        MutationClass::BoundOffByOne,
    ];

    /// Further classes, for wider searches (`verdict_probe --extended`).
    pub const EXTENDED: [MutationClass; 4] = [
        MutationClass::DropInsn,
        MutationClass::SignedCompare,
        MutationClass::Compare32,
        MutationClass::ShiftOffset,
    ];
}

impl fmt::Display for MutationClass {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            MutationClass::DropCheck => "drop-check",
            MutationClass::InvertCheck => "invert-check",
            MutationClass::DropNullTest => "drop-null-test",
            MutationClass::InvertNullTest => "invert-null-test",
            MutationClass::WidenAccess => "widen-access",
            MutationClass::LengthenLoop => "lengthen-loop",
            MutationClass::BoundOffByOne => "bound-off-by-one",
            MutationClass::DropInsn => "drop-insn",
            MutationClass::SignedCompare => "signed-compare",
            MutationClass::Compare32 => "compare-32",
            MutationClass::ShiftOffset => "shift-offset",
        })
    }
}

/// One mutant.
#[derive(Debug, Clone)]
pub struct Mutant {
    /// What was done.
    pub class: MutationClass,
    /// The changed instruction's index.
    pub insn: usize,
    /// The mutated program (little-endian instructions).
    pub insns: Vec<u8>,
}

const LD_IMM64: u8 = 0x18;
const CLASS_LDX: u8 = 0x01;
const CLASS_ST: u8 = 0x02;
const CLASS_STX: u8 = 0x03;
const CLASS_JMP: u8 = 0x05;
const CLASS_JMP32: u8 = 0x06;
const MODE_MEM: u8 = 0x60;
const SRC_K: u8 = 0x00;

fn slot(insns: &[u8], i: usize) -> &[u8] {
    &insns[i * 8..i * 8 + 8]
}

fn imm(s: &[u8]) -> i32 {
    i32::from_le_bytes([s[4], s[5], s[6], s[7]])
}

fn off(s: &[u8]) -> i16 {
    i16::from_le_bytes([s[2], s[3]])
}

/// Index of each instruction that starts one (the second half of an `ld_imm64` does not).
fn starts(insns: &[u8]) -> Vec<usize> {
    let n = insns.len() / 8;
    let mut out = Vec::with_capacity(n);
    let mut i = 0;
    while i < n {
        out.push(i);
        // BPF_LD | BPF_IMM | BPF_DW takes two slots.
        i += if insns[i * 8] == LD_IMM64 { 2 } else { 1 };
    }
    out
}

/// Every mutant of `insns` (little-endian instructions), in instruction order.
pub fn mutants(insns: &[u8]) -> Vec<Mutant> {
    let mut out = Vec::new();
    let mut push = |class, i: usize, new: [u8; 8]| {
        let mut m = insns.to_vec();
        m[i * 8..i * 8 + 8].copy_from_slice(&new);
        out.push(Mutant {
            class,
            insn: i,
            insns: m,
        });
    };
    for i in starts(insns) {
        let s = slot(insns, i);
        let code = s[0];
        let class = code & 7;
        match class {
            CLASS_JMP | CLASS_JMP32 => {
                let op = code & 0xf0;
                // ja, call, exit are not conditional.
                if matches!(op, 0x00 | 0x80 | 0x90) {
                    continue;
                }
                let k = code & 0x08 == SRC_K;
                let null_test = k && imm(s) == 0 && matches!(op, 0x10 | 0x50);
                let (drop, invert) = if null_test {
                    (MutationClass::DropNullTest, MutationClass::InvertNullTest)
                } else {
                    (MutationClass::DropCheck, MutationClass::InvertCheck)
                };
                push(drop, i, [0x05, 0, 0, 0, 0, 0, 0, 0]);
                let o = off(s).to_le_bytes();
                push(invert, i, [0x05, 0, o[0], o[1], 0, 0, 0, 0]);
                if k && off(s) < 0 && imm(s) != 0 {
                    let mut n: [u8; 8] = s.try_into().expect("8 bytes");
                    n[4..8].copy_from_slice(&imm(s).saturating_mul(16).to_le_bytes());
                    push(MutationClass::LengthenLoop, i, n);
                }
                if k && off(s) >= 0 && imm(s) != 0 && imm(s) != i32::MAX {
                    let mut n: [u8; 8] = s.try_into().expect("8 bytes");
                    n[4..8].copy_from_slice(&(imm(s) + 1).to_le_bytes());
                    push(MutationClass::BoundOffByOne, i, n);
                }
                // jgt 0x20 <-> jsgt 0x60, jge 0x30 <-> jsge 0x70, jlt 0xa0 <-> jslt 0xc0,
                // jle 0xb0 <-> jsle 0xd0.
                let signed = match op {
                    0x20 => Some(0x60),
                    0x60 => Some(0x20),
                    0x30 => Some(0x70),
                    0x70 => Some(0x30),
                    0xa0 => Some(0xc0),
                    0xc0 => Some(0xa0),
                    0xb0 => Some(0xd0),
                    0xd0 => Some(0xb0),
                    _ => None,
                };
                if let Some(o) = signed {
                    let mut n: [u8; 8] = s.try_into().expect("8 bytes");
                    n[0] = (code & 0x0f) | o;
                    push(MutationClass::SignedCompare, i, n);
                }
                if class == CLASS_JMP && op != 0xe0 {
                    let mut n: [u8; 8] = s.try_into().expect("8 bytes");
                    n[0] = (code & !7) | CLASS_JMP32;
                    push(MutationClass::Compare32, i, n);
                }
            }
            CLASS_LDX | CLASS_ST | CLASS_STX if code & 0xe0 == MODE_MEM => {
                let mut n: [u8; 8] = s.try_into().expect("8 bytes");
                // Sizes: W 0x00, H 0x08, B 0x10, DW 0x18.
                let wider = match code & 0x18 {
                    0x10 => Some(0x08),
                    0x08 => Some(0x00),
                    0x00 => Some(0x18),
                    _ => None,
                };
                match wider {
                    Some(sz) => n[0] = (code & !0x18) | sz,
                    None => n[2..4].copy_from_slice(&off(s).wrapping_add(8).to_le_bytes()),
                }
                push(MutationClass::WidenAccess, i, n);
                let mut n: [u8; 8] = s.try_into().expect("8 bytes");
                n[2..4].copy_from_slice(&off(s).wrapping_add(1).to_le_bytes());
                push(MutationClass::ShiftOffset, i, n);
            }
            _ => {}
        }
        if !matches!(class, CLASS_JMP | CLASS_JMP32) && code != LD_IMM64 {
            push(MutationClass::DropInsn, i, [0x05, 0, 0, 0, 0, 0, 0, 0]);
        }
    }
    out
}

/// At most `per_class` mutants of each class of [`MutationClass::ALL`], spread evenly
/// over the program.
pub fn sample(all: Vec<Mutant>, per_class: usize) -> Vec<Mutant> {
    sample_of(all, per_class, &MutationClass::ALL)
}

/// At most `per_class` mutants of each of `classes`, spread evenly over the program.
pub fn sample_of(all: Vec<Mutant>, per_class: usize, classes: &[MutationClass]) -> Vec<Mutant> {
    let mut out = Vec::new();
    for &class in classes {
        let of: Vec<&Mutant> = all.iter().filter(|m| m.class == class).collect();
        if of.len() <= per_class {
            out.extend(of.into_iter().cloned());
        } else {
            out.extend((0..per_class).map(|k| of[k * of.len() / per_class].clone()));
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    fn insn(code: u8, regs: u8, off: i16, imm: i32) -> Vec<u8> {
        let mut v = vec![code, regs];
        v.extend(off.to_le_bytes());
        v.extend(imm.to_le_bytes());
        v
    }

    #[test]
    fn each_class_is_found() {
        let prog: Vec<u8> = [
            insn(0xb7, 0x00, 0, 0),   // mov r0, 0
            insn(0x18, 0x01, 0, 7),   // ld_imm64 r1, 7 (two slots)
            insn(0x00, 0x00, 0, 0),   //
            insn(0x15, 0x01, 1, 0),   // if r1 == 0 goto +1
            insn(0x71, 0x21, 3, 0),   // r2 = *(u8 *)(r1 + 3)
            insn(0x07, 0x00, 0, 1),   // r0 += 1
            insn(0xa5, 0x00, -2, 10), // if r0 < 10 goto -2
            insn(0x7b, 0x1a, -8, 0),  // *(u64 *)(r10 - 8) = r1
            insn(0x25, 0x01, 0, 16),  // if r1 > 16 goto +0
            insn(0x95, 0x00, 0, 0),   // exit
        ]
        .concat();
        let m: Vec<Mutant> = mutants(&prog)
            .into_iter()
            .filter(|m| MutationClass::ALL.contains(&m.class))
            .collect();
        let classes: Vec<_> = m.iter().map(|m| (m.class, m.insn)).collect();
        assert_eq!(
            classes,
            [
                (MutationClass::DropNullTest, 3),
                (MutationClass::InvertNullTest, 3),
                (MutationClass::WidenAccess, 4),
                (MutationClass::DropCheck, 6),
                (MutationClass::InvertCheck, 6),
                (MutationClass::LengthenLoop, 6),
                (MutationClass::WidenAccess, 7),
                (MutationClass::DropCheck, 8),
                (MutationClass::InvertCheck, 8),
                (MutationClass::BoundOffByOne, 8),
            ]
        );
        // u8 load → u16 load; the u64 store moves 8 bytes up; the loop bound is 160.
        assert_eq!(m[2].insns[4 * 8], 0x69);
        assert_eq!(i16::from_le_bytes([m[6].insns[58], m[6].insns[59]]), 0);
        assert_eq!(imm(slot(&m[5].insns, 6)), 160);
        assert_eq!(slot(&m[4].insns, 6), [0x05, 0, 0xfe, 0xff, 0, 0, 0, 0]);
        assert_eq!(imm(slot(&m[9].insns, 8)), 17);
    }

    #[test]
    fn extended_classes_are_found() {
        let prog: Vec<u8> = [
            insn(0xb7, 0x00, 0, 0),  // mov r0, 0
            insn(0x71, 0x21, 3, 0),  // r2 = *(u8 *)(r1 + 3)
            insn(0xa5, 0x02, 1, 10), // if r2 < 10 goto +1
            insn(0x6d, 0x12, 0, 0),  // if r2 s> r1 goto +0
            insn(0x95, 0x00, 0, 0),  // exit
        ]
        .concat();
        let m: Vec<Mutant> = mutants(&prog)
            .into_iter()
            .filter(|m| MutationClass::EXTENDED.contains(&m.class))
            .collect();
        let classes: Vec<_> = m.iter().map(|m| (m.class, m.insn)).collect();
        assert_eq!(
            classes,
            [
                (MutationClass::DropInsn, 0),
                (MutationClass::ShiftOffset, 1),
                (MutationClass::DropInsn, 1),
                (MutationClass::SignedCompare, 2),
                (MutationClass::Compare32, 2),
                (MutationClass::SignedCompare, 3),
                (MutationClass::Compare32, 3),
            ]
        );
        assert_eq!(m[1].insns[8 + 2], 4, "offset 3 + 1");
        assert_eq!(m[3].insns[16], 0xc5, "jlt -> jslt");
        assert_eq!(m[4].insns[16], 0xa6, "jmp32 jlt");
        assert_eq!(m[5].insns[24], 0x2d, "jsgt -> jgt");
        assert_eq!(slot(&m[0].insns, 0), [0x05, 0, 0, 0, 0, 0, 0, 0]);
    }

    #[test]
    fn sampling_spreads_and_caps() {
        let all: Vec<Mutant> = (0..10)
            .map(|i| Mutant {
                class: MutationClass::WidenAccess,
                insn: i,
                insns: Vec::new(),
            })
            .collect();
        let s = sample(all, 3);
        assert_eq!(s.iter().map(|m| m.insn).collect::<Vec<_>>(), [0, 3, 6]);
    }
}
