//! Static scalar precision: which registers' values may still decide something — a branch,
//! a memory access's address, a helper's arguments, the return value — along some path from
//! an instruction. A scalar outside that set cannot change what the rest of the walk checks,
//! so pruning treats it as the kernel treats an imprecise scalar: any value is covered.
//!
//! The kernel finds precise scalars on demand by backtracking (`mark_chain_precision`);
//! this over-approximates that set statically (a register that flows into a comparison is
//! precise whether or not the comparison was decided), which is sound and prunes somewhat
//! less than the kernel, instead of comparing every scalar exactly.

use crate::insn::{alu, atomic, class, jmp, mode, Insn};

/// Registers `r0..=r5`, which calls clobber.
const CALLER_SAVED: u16 = 0b11_1111;
/// Registers `r1..=r5`, a call's arguments.
const ARGS: u16 = 0b11_1110;

/// How instruction `i` moves precision: `before = (after & !def) | sinks | (flow if after
/// & def != 0)`.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) struct Flow {
    /// Registers the instruction writes.
    pub def: u16,
    /// Registers the written value is computed from.
    pub flow: u16,
    /// Registers whose values the instruction's own checks depend on.
    pub sinks: u16,
}

impl Flow {
    /// The registers that may matter before the instruction, given those after it.
    pub(crate) fn before(&self, after: u16) -> u16 {
        let flow = if after & self.def != 0 { self.flow } else { 0 };
        (after & !self.def) | self.sinks | flow
    }
}

/// The precision flow of instruction `i`. Unknown encodings make every register a sink
/// (the walk refuses them anyway).
pub(crate) fn flow(insns: &[Insn], i: usize) -> Flow {
    let insn = &insns[i];
    let src = 1u16 << (insn.src & 0xf);
    let dst = 1u16 << (insn.dst & 0xf);
    let r0 = 1u16;
    let reg_src = if insn.src_is_reg() { src } else { 0 };
    let all = Flow {
        def: 0,
        flow: 0,
        sinks: 0xffff,
    };
    let f = |def, flow, sinks| Flow { def, flow, sinks };
    match insn.class() {
        class::LD => match insn.mode() {
            mode::IMM if insn.size() == 8 => f(dst, 0, 0),
            // The context in r6, the offset of LD_IND.
            mode::ABS | mode::IND => f(CALLER_SAVED, 0, (1 << 6) | src),
            _ => all,
        },
        // A loaded value is compared where it is kept (a spilled stack slot, exactly).
        class::LDX => f(dst, 0, src),
        class::ST => f(0, 0, dst),
        class::STX => match insn.mode() {
            // The stored value: a spilled scalar may be filled and used later, and spilled
            // slots are compared exactly only from here on.
            mode::MEM => f(0, 0, dst | src),
            mode::ATOMIC => {
                let def = match insn.imm {
                    atomic::CMPXCHG => r0,
                    atomic::LOAD_ACQ => dst,
                    imm if imm & atomic::FETCH != 0 => src,
                    _ => 0,
                };
                f(def, 0, r0 | dst | src)
            }
            _ => all,
        },
        class::ALU | class::ALU64 => match insn.op() {
            alu::MOV => f(dst, reg_src, 0),
            alu::END | alu::NEG => f(dst, dst, 0),
            // Pointer arithmetic: a scalar added to a pointer sets the pointer's offset.
            alu::ADD | alu::SUB if insn.src_is_reg() => f(dst, 0, dst | src),
            _ => f(dst, dst | reg_src, 0),
        },
        class::JMP | class::JMP32 => match insn.op() {
            jmp::JA => f(0, 0, reg_src),
            jmp::EXIT => f(0, 0, r0),
            jmp::CALL => f(CALLER_SAVED, 0, ARGS),
            jmp::JCOND => f(0, 0, 0),
            _ => f(0, 0, dst | reg_src),
        },
        _ => all,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn one(word: u64) -> Flow {
        flow(&[Insn::from_word(word)], 0)
    }

    #[test]
    fn counters_flow_only_into_themselves() {
        // r7 += 1: r7 matters before only if it matters after.
        let add = one(0x0000_0001_0000_0707);
        assert_eq!(add.before(0), 0);
        assert_eq!(add.before(1 << 7), 1 << 7);
        // r7 = r6: r6 matters if r7 does.
        let mov = one(0x0000_0000_0000_67bf);
        assert_eq!(mov.before(1 << 7), 1 << 6);
        assert_eq!(mov.before(1 << 8), 1 << 8);
    }

    #[test]
    fn branches_addresses_calls_and_exit_are_sinks() {
        // if r6 == 3 goto +1
        assert_eq!(one(0x0000_0003_0001_0615).before(0), 1 << 6);
        // r0 = *(u8 *)(r2 + 0)
        assert_eq!(one(0x0000_0000_0000_2071).before(1), 1 << 2);
        // *(u64 *)(r10 - 8) = r7: the address and the spilled value.
        assert_eq!(one(0x0000_0000_fff8_7a7b).before(0), (1 << 10) | (1 << 7));
        // r2 += r3 (maybe a pointer and an offset)
        assert_eq!(one(0x0000_0000_0000_320f).before(0), (1 << 2) | (1 << 3));
        // call 1: r1..r5 matter, r0..r5 are clobbered.
        assert_eq!(
            one(0x0000_0001_0000_0085).before(1 | (1 << 6)),
            ARGS | (1 << 6)
        );
        // exit
        assert_eq!(one(0x95).before(0), 1);
    }
}
