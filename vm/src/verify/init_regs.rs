//! Reads of registers that are not initialised on every path (the kernel's `R%d !read_ok`),
//! found by a forward data-flow pass over the decoded program.
//!
//! At the main program's entry `r1` (context), `r2` (its length) and `r10` are initialised;
//! at a bpf-to-bpf callee's entry `r1..=r5` and `r10`. After a helper call `r0` is set and
//! `r1..=r5` are not readable. The main program's `exit` and a callback's read `r0`; a
//! static subprogram's `exit` does not (a `void` function may leave `r0` unset, as the
//! kernel allows): the caller finds `r0` initialised after the call only when every `exit`
//! of the callee has it, so the kernel's refusal comes where the caller reads it.

use rbpf::ebpf;

use crate::error::PrepareError;
use crate::insn::{op, Insn};

const R0: u16 = 1;
/// `r1..=r5`.
const ARGS: u16 = 0b11_1110;
const R10: u16 = 1 << 10;

/// Registers an instruction reads and writes, as bit masks (bit `i` = `ri`). A call's
/// effect on `r0` is decided by [`check_initialized`].
fn reads_writes(d: &Insn) -> (u16, u16) {
    let dst = 1u16 << d.dst;
    let src = 1u16 << d.src;
    match d.op {
        op::LD_IMM64_TAIL => (0, 0),
        ebpf::LD_DW_IMM | op::LD_MAP_FD | op::LD_MAP_VALUE | op::LD_FUNC => (0, dst),
        ebpf::MOV64_IMM | ebpf::MOV32_IMM => (0, dst),
        ebpf::MOV64_REG | ebpf::MOV32_REG | op::MOVSX32 | op::MOVSX64 => (src, dst),
        ebpf::EXIT => (R0, 0),
        ebpf::CALL => (0, R0 | ARGS), // r1-r5 become unreadable: handled by the caller
        op::CALL_LOCAL => (0, R0 | ARGS),
        ebpf::TAIL_CALL => (dst, R0 | ARGS), // callx
        ebpf::JA | crate::insn::MAY_GOTO => (0, 0),
        ebpf::ST_W_XADD | ebpf::ST_DW_XADD => {
            let fetch = d.imm & 1 != 0;
            let cmpxchg = d.imm as u32 == 0xf1;
            let reads = dst | src | if cmpxchg { R0 } else { 0 };
            let writes = if cmpxchg {
                R0
            } else if fetch {
                src
            } else {
                0
            };
            (reads, writes)
        }
        _ => match d.op & 0x07 {
            ebpf::BPF_ALU | ebpf::BPF_ALU64 => {
                let reg_form = d.op & ebpf::BPF_X != 0 && d.op & 0xf0 != ebpf::BPF_END;
                (dst | if reg_form { src } else { 0 }, dst)
            }
            // internal sdiv/smod codes live in the LD class
            ebpf::BPF_LD => {
                let reg_form = matches!(
                    d.op,
                    op::SDIV32_REG | op::SDIV64_REG | op::SMOD32_REG | op::SMOD64_REG
                );
                (dst | if reg_form { src } else { 0 }, dst)
            }
            ebpf::BPF_LDX => (src, dst),
            ebpf::BPF_ST => (dst, 0),
            ebpf::BPF_STX => (dst | src, 0),
            _ => {
                // conditional jumps
                let reg_form = d.op & ebpf::BPF_X != 0;
                (dst | if reg_form { src } else { 0 }, 0)
            }
        },
    }
}

fn is_cond_jump(d: &Insn) -> bool {
    matches!(d.op & 0x07, ebpf::BPF_JMP | ebpf::BPF_JMP32)
        && !matches!(d.op, ebpf::CALL | ebpf::EXIT | ebpf::TAIL_CALL | ebpf::JA)
}

/// The program's functions: their first instructions (the main program's 0, the targets
/// of bpf-to-bpf calls and of function addresses), sorted; a function runs to the next
/// one's start.
struct Functions {
    starts: Vec<usize>,
    /// Per function: whether its `exit` reads `r0` (the main program, callbacks).
    exit_reads_r0: Vec<bool>,
}

impl Functions {
    fn of(insns: &[Insn]) -> Functions {
        let mut starts = vec![0];
        starts.extend(
            insns
                .iter()
                .filter(|d| d.op == op::CALL_LOCAL || d.op == op::LD_FUNC)
                .map(|d| d.target as usize),
        );
        starts.sort_unstable();
        starts.dedup();
        let mut exit_reads_r0 = vec![false; starts.len()];
        exit_reads_r0[0] = true;
        let mut f = Functions {
            starts,
            exit_reads_r0,
        };
        for d in insns.iter().filter(|d| d.op == op::LD_FUNC) {
            let i = f.index(d.target as usize);
            f.exit_reads_r0[i] = true;
        }
        f
    }

    /// The function instruction `pc` belongs to.
    fn index(&self, pc: usize) -> usize {
        self.starts.partition_point(|&s| s <= pc) - 1
    }
}

/// Refuses reads of registers that are not initialised on every path, as the kernel
/// verifier does (`R%d !read_ok`); see the module's documentation for the rules.
pub(super) fn check_initialized(insns: &[Insn]) -> Result<(), PrepareError> {
    const UNKNOWN: u16 = u16::MAX; // not reached yet: the meet identity
    let n = insns.len();
    let funcs = Functions::of(insns);
    // Per function: whether `r0` is initialised at every `exit` reached so far
    // (optimistic until an `exit` without it is reached; only ever goes false).
    let mut returns_r0 = vec![true; funcs.starts.len()];
    let mut state = vec![UNKNOWN; n];
    let mut work = vec![0usize];
    state[0] = (1 << 1) | (1 << 2) | R10;
    // Callees and callbacks start with their arguments `r1..=r5` (a callback gets fewer
    // from some helpers; the kernel mode's verifier checks those).
    for &t in &funcs.starts[1..] {
        let entry = ARGS | R10;
        if state[t] & entry != state[t] {
            state[t] &= entry;
            work.push(t);
        }
    }
    while let Some(pc) = work.pop() {
        let d = &insns[pc];
        let init = state[pc];
        let (mut reads, writes) = reads_writes(d);
        let func = funcs.index(pc);
        if d.op == ebpf::EXIT && !funcs.exit_reads_r0[func] {
            reads &= !R0;
            if init & R0 == 0 && returns_r0[func] {
                // Callers that read r0 after calling this function are checked again.
                returns_r0[func] = false;
                work.extend(
                    insns
                        .iter()
                        .enumerate()
                        .filter(|(_, c)| {
                            c.op == op::CALL_LOCAL && funcs.index(c.target as usize) == func
                        })
                        .filter(|&(c, _)| state[c] != UNKNOWN)
                        .map(|(c, _)| c),
                );
            }
        }
        if reads & !init != 0 {
            let reg = (reads & !init).trailing_zeros() as u8;
            return Err(PrepareError::UninitializedRegister { pc, reg });
        }
        let after = match d.op {
            op::CALL_LOCAL => {
                let callee = funcs.index(d.target as usize);
                (init & !(ARGS | R0)) | if returns_r0[callee] { R0 } else { 0 }
            }
            ebpf::CALL | ebpf::TAIL_CALL => (init & !ARGS) | R0,
            _ => init | writes,
        };
        let mut flow = |t: usize| {
            if t < n && state[t] & after != state[t] {
                state[t] &= after;
                work.push(t);
            }
        };
        let next = if crate::insn::is_ld_imm64(d.op) {
            pc + 2
        } else {
            pc + 1
        };
        match d.op {
            ebpf::EXIT => {}
            // A poisoned CO-RE relocation ends every run that reaches it.
            ebpf::CALL if d.imm == crate::insn::CORE_POISON_HELPER as u64 => {}
            ebpf::JA => flow(d.target as usize),
            _ if is_cond_jump(d) => {
                flow(d.target as usize);
                flow(next);
            }
            _ => flow(next),
        }
    }
    Ok(())
}
