//! The return-value range check of the kernel verifier (`check_return_code`), as far as
//! bpfvm can decide it without the kernel's value tracking.
//!
//! bpfvm refuses a program only when it is sure the kernel refuses it too: when **every**
//! run of the main program reaches an `exit` whose `r0` is a constant outside the program
//! type's range. Constants are propagated through registers and through bytes stored at
//! fixed offsets of the stack frame (clang spills the return value there); branches decided
//! by constants follow their one direction, every other branch must lead to such an exit
//! both ways. Since the kernel follows every path it cannot rule out and needs `r0` proven
//! inside the range, it refuses such a program whatever it knows more. Programs with
//! bpf-to-bpf calls or `callx` are not checked.

use std::collections::BTreeMap;

use rbpf::ebpf;

use crate::error::PrepareError;
use crate::insn::{op, Insn};
use crate::program_type::ProgramType;

/// Most instructions analysed; longer programs are not checked.
const MAX_CHECKED: usize = 4096;

/// Helpers that never write through their pointer arguments (so stack bytes survive them).
const NON_WRITING_HELPERS: [u64; 12] = [1, 2, 3, 5, 6, 7, 8, 81, 125, 153, 154, 195];

/// The return values the kernel allows for `t`, if it limits them.
///
/// CGROUP_SKB: `[0, 1]` for ingress, `[0, 3]` for egress; bpfvm's program type does not
/// say which, so the wider range is used (never refusing what the kernel accepts).
pub fn allowed_range(t: ProgramType) -> Option<(i64, i64)> {
    match t {
        ProgramType::CgroupSkb => Some((0, 3)),
        _ => None,
    }
}

/// What is known about a register.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Val {
    /// This constant.
    Const(u64),
    /// The frame pointer plus this offset.
    Fp(i64),
    /// Unknown, and not a pointer into the stack.
    NotStack,
    /// Unknown, possibly a pointer into the stack.
    Top,
}

impl Val {
    fn meet(self, o: Val) -> Val {
        use Val::*;
        match (self, o) {
            (a, b) if a == b => a,
            (Const(_) | NotStack, Const(_) | NotStack) => NotStack,
            _ => Top,
        }
    }

    fn maybe_stack(self) -> bool {
        matches!(self, Val::Fp(_) | Val::Top)
    }
}

/// Registers and known stack bytes (by offset from the frame pointer) before an instruction.
#[derive(Debug, Clone, PartialEq, Eq)]
struct State {
    regs: [Val; 11],
    stack: BTreeMap<i64, u8>,
}

impl State {
    fn meet(&self, o: &State) -> State {
        let mut regs = self.regs;
        for (r, b) in regs.iter_mut().zip(o.regs) {
            *r = r.meet(b);
        }
        let stack = self
            .stack
            .iter()
            .filter(|(k, v)| o.stack.get(k) == Some(v))
            .map(|(&k, &v)| (k, v))
            .collect();
        State { regs, stack }
    }

    fn load_stack(&self, off: i64, size: usize, signed: bool) -> Val {
        let mut v = 0u64;
        for i in (0..size).rev() {
            match self.stack.get(&(off + i as i64)) {
                Some(&b) => v = (v << 8) | u64::from(b),
                None => return Val::Top,
            }
        }
        if signed && size < 8 {
            let shift = 64 - 8 * size as u32;
            v = (((v << shift) as i64) >> shift) as u64;
        }
        Val::Const(v)
    }

    fn store_stack(&mut self, off: i64, size: usize, v: Option<u64>) {
        for i in 0..size {
            let k = off + i as i64;
            match v {
                Some(v) => self.stack.insert(k, (v >> (8 * i)) as u8),
                None => self.stack.remove(&k),
            };
        }
    }
}

fn mem_size(opc: u8) -> usize {
    match opc & 0x18 {
        0x10 => 1,
        0x08 => 2,
        0x00 => 4,
        _ => 8,
    }
}

fn alu(code: u8, is64: bool, a: u64, b: u64) -> Option<u64> {
    let r = if is64 {
        match code {
            ebpf::BPF_ADD => a.wrapping_add(b),
            ebpf::BPF_SUB => a.wrapping_sub(b),
            ebpf::BPF_MUL => a.wrapping_mul(b),
            ebpf::BPF_DIV => a.checked_div(b).unwrap_or(0),
            ebpf::BPF_MOD => a.checked_rem(b).unwrap_or(a),
            ebpf::BPF_OR => a | b,
            ebpf::BPF_AND => a & b,
            ebpf::BPF_XOR => a ^ b,
            ebpf::BPF_LSH => a.wrapping_shl(b as u32 & 63),
            ebpf::BPF_RSH => a.wrapping_shr(b as u32 & 63),
            ebpf::BPF_ARSH => ((a as i64) >> (b & 63)) as u64,
            ebpf::BPF_MOV => b,
            ebpf::BPF_NEG => a.wrapping_neg(),
            _ => return None,
        }
    } else {
        let (a, b) = (a as u32, b as u32);
        u64::from(match code {
            ebpf::BPF_ADD => a.wrapping_add(b),
            ebpf::BPF_SUB => a.wrapping_sub(b),
            ebpf::BPF_MUL => a.wrapping_mul(b),
            ebpf::BPF_DIV => a.checked_div(b).unwrap_or(0),
            ebpf::BPF_MOD => a.checked_rem(b).unwrap_or(a),
            ebpf::BPF_OR => a | b,
            ebpf::BPF_AND => a & b,
            ebpf::BPF_XOR => a ^ b,
            ebpf::BPF_LSH => a.wrapping_shl(b & 31),
            ebpf::BPF_RSH => a.wrapping_shr(b & 31),
            ebpf::BPF_ARSH => ((a as i32) >> (b & 31)) as u32,
            ebpf::BPF_MOV => b,
            ebpf::BPF_NEG => a.wrapping_neg(),
            _ => return None,
        })
    };
    Some(r)
}

/// Whether the conditional jump `d` is taken for constants `a` and `b`; None for an
/// unknown opcode.
fn taken(d: &Insn, a: u64, b: u64) -> Option<bool> {
    let is32 = d.op & 0x07 == ebpf::BPF_JMP32;
    let (ua, ub) = if is32 {
        (u64::from(a as u32), u64::from(b as u32))
    } else {
        (a, b)
    };
    let (sa, sb) = if is32 {
        (i64::from(a as i32), i64::from(b as i32))
    } else {
        (a as i64, b as i64)
    };
    Some(match d.op & 0xf0 {
        ebpf::BPF_JEQ => ua == ub,
        ebpf::BPF_JNE => ua != ub,
        ebpf::BPF_JGT => ua > ub,
        ebpf::BPF_JGE => ua >= ub,
        ebpf::BPF_JLT => ua < ub,
        ebpf::BPF_JLE => ua <= ub,
        ebpf::BPF_JSET => ua & ub != 0,
        ebpf::BPF_JSGT => sa > sb,
        ebpf::BPF_JSGE => sa >= sb,
        ebpf::BPF_JSLT => sa < sb,
        ebpf::BPF_JSLE => sa <= sb,
        _ => return None,
    })
}

fn is_cond_jump(d: &Insn) -> bool {
    matches!(d.op & 0x07, ebpf::BPF_JMP | ebpf::BPF_JMP32)
        && !matches!(d.op, ebpf::CALL | ebpf::EXIT | ebpf::TAIL_CALL | ebpf::JA)
        && d.op != op::CALL_LOCAL
}

fn next_pc(d: &Insn, pc: usize) -> usize {
    if crate::insn::is_ld_imm64(d.op) {
        pc + 2
    } else {
        pc + 1
    }
}

/// The state after `d` (not a jump or exit) given `s` before it.
fn step(d: &Insn, s: &State) -> State {
    let mut s = s.clone();
    let dst = d.dst as usize;
    let src = d.src as usize;
    match d.op {
        ebpf::LD_DW_IMM => s.regs[dst] = Val::Const(d.imm),
        op::LD_MAP_FD | op::LD_MAP_VALUE | op::LD_FUNC => s.regs[dst] = Val::NotStack,
        op::LD_IMM64_TAIL => {}
        ebpf::CALL => {
            if !NON_WRITING_HELPERS.contains(&d.imm)
                && s.regs[1..=5].iter().any(|r| r.maybe_stack())
            {
                s.stack.clear();
            }
            s.regs[0] = Val::NotStack;
            for r in &mut s.regs[1..=5] {
                *r = Val::Top;
            }
        }
        op::MOVSX32 | op::MOVSX64 => {
            s.regs[dst] = match s.regs[src] {
                Val::Const(v) => {
                    let bits = match d.off() {
                        8 => 8,
                        16 => 16,
                        _ => 32,
                    };
                    let shift = 64 - bits;
                    let x = (((v << shift) as i64) >> shift) as u64;
                    Val::Const(if d.op == op::MOVSX32 {
                        u64::from(x as u32)
                    } else {
                        x
                    })
                }
                v if v.maybe_stack() => Val::Top,
                _ => Val::NotStack,
            }
        }
        _ => match d.op & 0x07 {
            ebpf::BPF_ALU | ebpf::BPF_ALU64 => {
                let is64 = d.op & 0x07 == ebpf::BPF_ALU64;
                let code = d.op & 0xf0;
                let reg_form = d.op & ebpf::BPF_X != 0 && code != ebpf::BPF_END;
                let a = s.regs[dst];
                let b = if reg_form {
                    s.regs[src]
                } else {
                    Val::Const(d.imm)
                };
                s.regs[dst] = match (code, a, b) {
                    (ebpf::BPF_MOV, _, Val::Const(y)) => {
                        Val::Const(alu(code, is64, 0, y).unwrap_or(y))
                    }
                    (ebpf::BPF_MOV, _, b) if is64 => b,
                    (ebpf::BPF_MOV, _, b) if b.maybe_stack() => Val::Top,
                    (ebpf::BPF_MOV, _, _) => Val::NotStack,
                    (ebpf::BPF_END, _, _) => {
                        if a.maybe_stack() {
                            Val::Top
                        } else {
                            Val::NotStack
                        }
                    }
                    (ebpf::BPF_ADD, Val::Fp(o), Val::Const(c)) if is64 => {
                        Val::Fp(o.wrapping_add(c as i64))
                    }
                    (ebpf::BPF_SUB, Val::Fp(o), Val::Const(c)) if is64 => {
                        Val::Fp(o.wrapping_sub(c as i64))
                    }
                    (_, Val::Const(x), Val::Const(y)) => match alu(code, is64, x, y) {
                        Some(v) => Val::Const(v),
                        None => Val::NotStack,
                    },
                    (ebpf::BPF_NEG, Val::Const(x), _) => match alu(code, is64, x, 0) {
                        Some(v) => Val::Const(v),
                        None => Val::NotStack,
                    },
                    (_, a, b) if a.maybe_stack() || b.maybe_stack() => Val::Top,
                    _ => Val::NotStack,
                };
            }
            // Internal signed div/mod codes live in the LD class.
            ebpf::BPF_LD => {
                let reg_form = matches!(
                    d.op,
                    op::SDIV32_REG | op::SDIV64_REG | op::SMOD32_REG | op::SMOD64_REG
                );
                let b = if reg_form { s.regs[src] } else { Val::NotStack };
                s.regs[dst] = if s.regs[dst].maybe_stack() || b.maybe_stack() {
                    Val::Top
                } else {
                    Val::NotStack
                };
            }
            ebpf::BPF_LDX => {
                let signed = matches!(d.op, 0x81 | 0x89 | 0x91);
                let size = if signed {
                    match d.op {
                        0x91 => 1,
                        0x89 => 2,
                        _ => 4,
                    }
                } else {
                    mem_size(d.op)
                };
                s.regs[dst] = match s.regs[src] {
                    Val::Fp(o) => s.load_stack(o + i64::from(d.off()), size, signed),
                    Val::Top => Val::Top,
                    _ => Val::NotStack,
                };
            }
            ebpf::BPF_ST | ebpf::BPF_STX => {
                let size = mem_size(d.op);
                let atomic = matches!(d.op, ebpf::ST_W_XADD | ebpf::ST_DW_XADD);
                let value = match (d.op & 0x07, s.regs[src]) {
                    (ebpf::BPF_ST, _) => Some(d.imm),
                    (_, Val::Const(v)) if !atomic => Some(v),
                    _ => None,
                };
                let base = s.regs[dst];
                match base {
                    Val::Fp(o) => s.store_stack(o + i64::from(d.off()), size, value),
                    Val::Top => s.stack.clear(),
                    _ => {}
                }
                if atomic {
                    let fetched = if base.maybe_stack() {
                        Val::Top
                    } else {
                        Val::NotStack
                    };
                    if d.imm as u32 == 0xf1 {
                        s.regs[0] = fetched;
                    } else if d.imm & 1 != 0 {
                        s.regs[src] = fetched;
                    }
                }
            }
            _ => {}
        },
    }
    s
}

/// Refuses `insns` (decoded, already validated) of type `t` when every run of it ends in
/// an `exit` with a constant `r0` outside the type's allowed range.
pub fn check(insns: &[Insn], t: ProgramType) -> Result<(), PrepareError> {
    let Some((min, max)) = allowed_range(t) else {
        return Ok(());
    };
    let n = insns.len();
    if n == 0
        || n > MAX_CHECKED
        || insns
            .iter()
            .any(|d| matches!(d.op, op::CALL_LOCAL | op::LD_FUNC | ebpf::TAIL_CALL))
    {
        return Ok(());
    }
    // Forward: constants before each instruction.
    let mut states: Vec<Option<State>> = vec![None; n];
    let mut entry = State {
        regs: [Val::Top; 11],
        stack: BTreeMap::new(),
    };
    entry.regs[1] = Val::NotStack;
    entry.regs[2] = Val::NotStack;
    entry.regs[10] = Val::Fp(0);
    states[0] = Some(entry);
    let mut work = vec![0usize];
    let mut steps = 0usize;
    while let Some(pc) = work.pop() {
        steps += 1;
        if steps > 64 * MAX_CHECKED {
            return Ok(());
        }
        let Some(s) = states[pc].clone() else {
            continue;
        };
        let succ = successors(&insns[pc], pc, &s);
        let after = if is_cond_jump(&insns[pc]) || matches!(insns[pc].op, ebpf::JA | ebpf::EXIT) {
            s
        } else {
            step(&insns[pc], &s)
        };
        for t in succ.into_iter().flatten() {
            if t >= n {
                continue;
            }
            let merged = match &states[t] {
                None => after.clone(),
                Some(old) => old.meet(&after),
            };
            if states[t].as_ref() != Some(&merged) {
                states[t] = Some(merged);
                work.push(t);
            }
        }
    }
    // Backward: instructions from which every run reaches a bad exit.
    let bad_exit = |pc: usize| -> Option<i64> {
        let s = states[pc].as_ref()?;
        match (insns[pc].op, s.regs[0]) {
            (ebpf::EXIT, Val::Const(v)) if (v as i64) < min || (v as i64) > max => Some(v as i64),
            _ => None,
        }
    };
    let mut bad = vec![false; n];
    let mut changed = true;
    while changed {
        changed = false;
        for pc in (0..n).rev() {
            if bad[pc] {
                continue;
            }
            let Some(s) = &states[pc] else { continue };
            let now = if insns[pc].op == ebpf::EXIT {
                bad_exit(pc).is_some()
            } else {
                let succ: Vec<usize> = successors(&insns[pc], pc, s)
                    .into_iter()
                    .flatten()
                    .collect();
                !succ.is_empty() && succ.iter().all(|&t| t < n && bad[t])
            };
            if now {
                bad[pc] = true;
                changed = true;
            }
        }
    }
    if !bad[0] {
        return Ok(());
    }
    // Name one bad exit: follow bad instructions from the entry.
    let mut pc = 0;
    for _ in 0..=n {
        if let Some(value) = bad_exit(pc) {
            return Err(PrepareError::ReturnValueOutOfRange {
                pc,
                value,
                min,
                max,
                prog_type: t,
            });
        }
        let s = states[pc].as_ref().expect("bad instructions are reached");
        match successors(&insns[pc], pc, s)
            .into_iter()
            .flatten()
            .find(|&t| t < n && bad[t])
        {
            Some(t) => pc = t,
            None => break,
        }
    }
    Ok(())
}

/// Where control may go after `d` at `pc` in state `s` (a branch decided by constants
/// goes one way).
fn successors(d: &Insn, pc: usize, s: &State) -> [Option<usize>; 2] {
    match d.op {
        ebpf::EXIT => [None, None],
        ebpf::JA => [Some(d.target as usize), None],
        _ if is_cond_jump(d) => {
            let a = s.regs[d.dst as usize];
            let b = if d.op & ebpf::BPF_X != 0 {
                s.regs[d.src as usize]
            } else {
                Val::Const(d.imm)
            };
            let decided = match (a, b) {
                (Val::Const(x), Val::Const(y)) => taken(d, x, y),
                _ => None,
            };
            match decided {
                Some(true) => [Some(d.target as usize), None],
                Some(false) => [Some(pc + 1), None],
                None => [Some(d.target as usize), Some(pc + 1)],
            }
        }
        _ => [Some(next_pc(d, pc)), None],
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::verify;

    fn decode(words: &[[u8; 8]]) -> Vec<Insn> {
        let bytes: Vec<u8> = words.iter().flatten().copied().collect();
        let raw = verify::raw_insns(&bytes).unwrap();
        verify::decode(
            &raw,
            verify::Env {
                maps: &[verify::MapShape::array(8)],
                helper_known: &|_| true,
            },
        )
        .unwrap()
    }

    const EXIT: [u8; 8] = [0x95, 0, 0, 0, 0, 0, 0, 0];

    #[test]
    fn constant_before_exit_is_checked() {
        let p = decode(&[[0xb7, 0, 0, 0, 5, 0, 0, 0], EXIT]); // r0 = 5
        let e = check(&p, ProgramType::CgroupSkb).unwrap_err();
        assert!(matches!(
            e,
            PrepareError::ReturnValueOutOfRange {
                pc: 1,
                value: 5,
                ..
            }
        ));
        assert!(check(&p, ProgramType::SocketFilter).is_ok());
        let ok = decode(&[[0xb7, 0, 0, 0, 1, 0, 0, 0], EXIT]);
        assert!(check(&ok, ProgramType::CgroupSkb).is_ok());
    }

    #[test]
    fn constants_survive_a_stack_spill_and_a_lookup() {
        // w1 = 5; *(u32 *)(r10 - 4) = r1; r2 = r10; r2 += -4; r1 = map 0; call 1;
        // if r0 == 0 goto +2; r1 = 1; lock *(u64 *)(r0 + 0) += r1; r0 = *(u32 *)(r10 - 4)
        let p = decode(&[
            [0xb4, 0x01, 0, 0, 5, 0, 0, 0],
            [0x63, 0x1a, 0xfc, 0xff, 0, 0, 0, 0],
            [0xbf, 0xa2, 0, 0, 0, 0, 0, 0],
            [0x07, 0x02, 0, 0, 0xfc, 0xff, 0xff, 0xff],
            [0x18, 0x11, 0, 0, 0, 0, 0, 0],
            [0, 0, 0, 0, 0, 0, 0, 0],
            [0x85, 0, 0, 0, 1, 0, 0, 0],
            [0x15, 0, 2, 0, 0, 0, 0, 0],
            [0xb7, 0x01, 0, 0, 1, 0, 0, 0],
            [0xdb, 0x10, 0, 0, 0, 0, 0, 0],
            [0x61, 0xa0, 0xfc, 0xff, 0, 0, 0, 0],
            EXIT,
        ]);
        let e = check(&p, ProgramType::CgroupSkb).unwrap_err();
        assert!(matches!(
            e,
            PrepareError::ReturnValueOutOfRange {
                pc: 11,
                value: 5,
                ..
            }
        ));
    }

    #[test]
    fn a_path_with_an_allowed_value_or_an_unknown_is_never_refused() {
        // if r2 == 0 goto +2; r0 = 5; exit; r0 = 1; exit  (r2 unknown: one path is fine)
        let p = decode(&[
            [0x15, 0x02, 2, 0, 0, 0, 0, 0],
            [0xb7, 0, 0, 0, 5, 0, 0, 0],
            EXIT,
            [0xb7, 0, 0, 0, 1, 0, 0, 0],
            EXIT,
        ]);
        assert!(check(&p, ProgramType::CgroupSkb).is_ok());
        // r0 = *(u32 *)(r1 + 0): unknown.
        let p = decode(&[[0x61, 0x10, 0, 0, 0, 0, 0, 0], EXIT]);
        assert!(check(&p, ProgramType::CgroupSkb).is_ok());
        // A branch decided by constants skips the bad exit (dead code for the kernel too).
        let p = decode(&[
            [0xb7, 0x03, 0, 0, 0, 0, 0, 0], // r3 = 0
            [0x15, 0x03, 2, 0, 0, 0, 0, 0], // if r3 == 0 goto +2
            [0xb7, 0, 0, 0, 5, 0, 0, 0],
            EXIT,
            [0xb7, 0, 0, 0, 0, 0, 0, 0],
            EXIT,
        ]);
        assert!(check(&p, ProgramType::CgroupSkb).is_ok());
    }

    #[test]
    fn a_store_through_an_unknown_stack_pointer_forgets_the_stack() {
        // *(u32 *)(r10 - 4) = 5; r3 = r10; r3 += r2 (unknown offset); *(u32 *)(r3 + 0) = 0;
        // r0 = *(u32 *)(r10 - 4)
        let p = decode(&[
            [0x62, 0x0a, 0xfc, 0xff, 5, 0, 0, 0],
            [0xbf, 0xa3, 0, 0, 0, 0, 0, 0],
            [0x0f, 0x23, 0, 0, 0, 0, 0, 0],
            [0x62, 0x03, 0, 0, 0, 0, 0, 0],
            [0x61, 0xa0, 0xfc, 0xff, 0, 0, 0, 0],
            EXIT,
        ]);
        assert!(check(&p, ProgramType::CgroupSkb).is_ok());
    }
}
