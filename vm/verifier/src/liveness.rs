//! Which registers an instruction reads and writes, for the static register liveness the
//! kernel computes before the walk (`compute_insn_live_regs`): states are only compared on
//! registers that some path may still read.

use crate::insn::{alu, atomic, class, jmp, mode, Insn};

/// Registers `r0..=r5`, which calls clobber.
const CALLER_SAVED: u16 = 0b11_1111;

/// `(use, def)` bit masks of instruction `i` (bit `k` = `rk`).
pub(crate) fn use_def(insns: &[Insn], i: usize) -> (u16, u16) {
    let insn = &insns[i];
    let src = 1u16 << (insn.src & 0xf);
    let dst = 1u16 << (insn.dst & 0xf);
    let r0 = 1u16;
    let mut def = 0u16;
    let mut used = 0xffffu16;
    match insn.class() {
        class::LD => {
            if insn.mode() == mode::IMM && insn.size() == 8 {
                def = dst;
                used = 0;
            }
        }
        class::LDX => {
            if matches!(insn.mode(), mode::MEM | mode::MEMSX) {
                def = dst;
                used = src;
            }
        }
        class::ST => {
            if insn.mode() == mode::MEM {
                used = dst;
            }
        }
        class::STX => match insn.mode() {
            mode::MEM => used = dst | src,
            mode::ATOMIC => match insn.imm {
                atomic::CMPXCHG => {
                    used = r0 | dst | src;
                    def = r0;
                }
                atomic::LOAD_ACQ => {
                    def = dst;
                    used = src;
                }
                atomic::STORE_REL => used = dst | src,
                imm => {
                    used = dst | src;
                    if imm & atomic::FETCH != 0 {
                        def = src;
                    }
                }
            },
            _ => {}
        },
        class::ALU | class::ALU64 => match insn.op() {
            alu::END => {
                used = dst;
                def = dst;
            }
            alu::MOV => {
                def = dst;
                used = if insn.src_is_reg() { src } else { 0 };
            }
            _ => {
                def = dst;
                used = if insn.src_is_reg() { dst | src } else { dst };
            }
        },
        _ => match insn.op() {
            jmp::JA => {
                used = if insn.src_is_reg() { dst } else { 0 };
            }
            jmp::JCOND => used = 0,
            jmp::EXIT => used = r0,
            jmp::CALL => {
                def = CALLER_SAVED;
                used = def & !r0;
                if insn.is_helper_call() {
                    if let Some(p) = crate::helpers::proto(insn.imm) {
                        let n = p.num_params();
                        // GENMASK(n, 1): r1..=rn.
                        used = ((1u16 << (n + 1)) - 1) & !1;
                    }
                }
            }
            _ => {
                used = if insn.src_is_reg() { dst | src } else { dst };
            }
        },
    }
    (used, def)
}
