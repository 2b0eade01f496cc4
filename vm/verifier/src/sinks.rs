//! Static scalar precision: which registers' values may still decide something — a branch,
//! a memory access's address, a helper's arguments, the return value — along some path from
//! an instruction. A scalar outside that set cannot change what the rest of the walk checks,
//! so pruning treats it as the kernel treats an imprecise scalar: any value is covered.
//!
//! The kernel finds precise scalars on demand by backtracking (`mark_chain_precision`);
//! this over-approximates that set statically (a register that flows into a comparison is
//! precise whether or not the comparison was decided), which is sound and prunes somewhat
//! less than the kernel, instead of comparing every scalar exactly.
//!
//! Stack slots get the same treatment where the program reaches them through `r10` with a
//! constant offset (spills and fills): a spilled scalar matters only if it may be filled
//! into a register that matters. Where a pointer into the stack escapes (copied from `r10`
//! and used as an address, passed to a bpf-to-bpf call or to a helper that takes a map
//! key), every slot matters from there back; helpers that only read or fill memory check
//! that it is initialised, not what it holds.

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

/// Every stack slot (512 bytes, 8 per slot).
const ALL_SLOTS: u64 = u64::MAX;

/// The stack slots (bit `spi`, `spi` 0 = `fp-8`) an access of `size` bytes at `fp + off`
/// touches, and whether it is exactly one whole aligned slot.
fn slots_of(off: i16, size: u32) -> (u64, Option<u32>) {
    let off = i32::from(off);
    let size = size as i32;
    if off >= 0 || off + size > 0 {
        // Outside the frame: the walk refuses it; nothing to track.
        return (0, None);
    }
    let lo = (-off - size) / 8; // slot of the highest byte index (-off - 1) ...
    let hi = (-off - 1) / 8; // ... and of the lowest address
    let mut mask = 0u64;
    for spi in lo.min(hi)..=lo.max(hi) {
        if (0..64).contains(&spi) {
            mask |= 1 << spi;
        }
    }
    let whole = (size == 8 && off % 8 == 0 && hi < 64).then_some(hi as u32);
    (mask, whole)
}

/// What a register may hold, for finding the stack slots an access reaches.
#[derive(Clone, Copy, PartialEq, Eq, Debug)]
enum Val {
    /// Not reached yet (or not written).
    Bottom,
    /// Not a pointer into this frame's stack, nor a map.
    NotStack,
    /// `fp + off` of this frame.
    Fp(i32),
    /// The map with this index (`ld_imm64` of a map).
    Map(u32),
    /// Anything, a pointer into some stack included.
    Any,
}

impl Val {
    fn join(self, other: Val) -> Val {
        match (self, other) {
            (Val::Bottom, v) | (v, Val::Bottom) => v,
            (a, b) if a == b => a,
            _ => Val::Any,
        }
    }

    fn may_be_stack(self) -> bool {
        matches!(self, Val::Fp(_) | Val::Any)
    }
}

type Regs = [Val; 11];

/// Register contents after instruction `insn`, given them before it; `stored_stack`: some
/// store may have put a stack pointer into memory (so loads may return one).
fn forward(insn: &Insn, mut r: Regs, stored_stack: bool) -> Regs {
    let d = usize::from(insn.dst & 0xf).min(10);
    let s = usize::from(insn.src & 0xf).min(10);
    let loaded = if stored_stack {
        Val::Any
    } else {
        Val::NotStack
    };
    match insn.class() {
        class::LD => {
            if insn.mode() == mode::IMM {
                r[d] = if insn.src == crate::insn::PSEUDO_MAP_FD {
                    Val::Map(insn.imm as u32)
                } else {
                    Val::NotStack
                };
            } else {
                r[..6].fill(Val::NotStack);
            }
        }
        class::LDX => r[d] = loaded,
        class::STX if insn.mode() == mode::ATOMIC => match insn.imm {
            atomic::CMPXCHG => r[0] = loaded,
            atomic::LOAD_ACQ => r[d] = loaded,
            imm if imm & atomic::FETCH != 0 => r[s] = loaded,
            _ => {}
        },
        class::ALU64 => {
            r[d] = match (insn.op(), insn.src_is_reg()) {
                (alu::MOV, true) if insn.off == 0 => r[s],
                (alu::MOV, _) => Val::NotStack,
                (alu::ADD | alu::SUB, false) => match r[d] {
                    Val::Fp(o) => {
                        let k = if insn.op() == alu::ADD {
                            Some(insn.imm)
                        } else {
                            insn.imm.checked_neg()
                        };
                        match k.and_then(|k| o.checked_add(k)) {
                            Some(n) if n.abs() < 1 << 20 => Val::Fp(n),
                            _ => Val::Any,
                        }
                    }
                    Val::NotStack => Val::NotStack,
                    v => v.join(Val::Any),
                },
                (_, true) if r[d].may_be_stack() || r[s].may_be_stack() => Val::Any,
                (_, _) if r[d].may_be_stack() => Val::Any,
                _ => Val::NotStack,
            };
        }
        class::ALU => r[d] = Val::NotStack,
        class::JMP | class::JMP32 if insn.op() == jmp::CALL => r[..6].fill(Val::NotStack),
        _ => {}
    }
    r[10] = Val::Fp(0);
    r
}

/// What each register may hold before each instruction (forward, over `order` until
/// stable); `entries` are subprogram starts, whose `r1..=r5` may point into the caller's
/// stack.
fn register_contents(insns: &[Insn], order: &[usize], entries: &[usize]) -> Vec<Regs> {
    let n = insns.len();
    let mut stored_stack = false;
    loop {
        let mut inn = vec![[Val::Bottom; 11]; n];
        for &e in entries {
            if e < n {
                let mut r = [Val::NotStack; 11];
                if e != 0 {
                    r[1..6].fill(Val::Any);
                }
                r[10] = Val::Fp(0);
                inn[e] = r;
            }
        }
        let mut stores_stack = false;
        let mut changed = true;
        while changed {
            changed = false;
            for &i in order.iter().rev() {
                let insn = &insns[i];
                if insn.class() == class::STX
                    && inn[i][usize::from(insn.src & 0xf).min(10)].may_be_stack()
                {
                    stores_stack = true;
                }
                let out = forward(insn, inn[i], stored_stack);
                let (succ, cnt) = crate::cfg::successors(insns, i);
                for &t in &succ[..cnt] {
                    if t < n {
                        let mut joined = inn[t];
                        for (j, v) in joined.iter_mut().zip(out) {
                            *j = j.join(v);
                        }
                        if joined != inn[t] {
                            inn[t] = joined;
                            changed = true;
                        }
                    }
                }
            }
        }
        if stores_stack && !stored_stack {
            stored_stack = true;
            continue;
        }
        return inn;
    }
}

/// Per instruction, the registers and stack slots whose values may still decide a check
/// (backward over `order`, the instructions of each subprogram in post-order, until
/// stable). `entries` are the subprograms' first instructions, `key_sizes` the maps' key
/// sizes by index. `main_exit_decides`: whether `r0` at the main program's `exit` decides
/// something (its range is checked); `r0` at a subprogram's or callback's `exit` always
/// may.
pub(crate) fn precise_before(
    insns: &[Insn],
    order: &[usize],
    entries: &[usize],
    key_sizes: &[u32],
    main_exit_decides: bool,
) -> Vec<(u16, u64)> {
    let n = insns.len();
    let contents = register_contents(insns, order, entries);
    let mut flows: Vec<Flow> = (0..n).map(|i| flow(insns, i)).collect();
    if !main_exit_decides {
        let main_end = entries
            .iter()
            .copied()
            .filter(|&e| e > 0)
            .min()
            .unwrap_or(n);
        for (i, f) in flows.iter_mut().enumerate().take(main_end.min(n)) {
            if insns[i].is_jmp_class() && insns[i].op() == jmp::EXIT {
                f.sinks = 0;
            }
        }
    }
    fixpoint(insns, order, &contents, &flows, key_sizes)
}

/// [`precise_before`], where `r0` at an `exit` of the main program (the first
/// subprogram) decides something only when `main_exit_r0` (a program type whose return
/// value the kernel checks).
pub(crate) fn precise_before_exits(
    insns: &[Insn],
    order: &[usize],
    entries: &[usize],
    key_sizes: &[u32],
    main_exit_r0: bool,
) -> Vec<(u16, u64)> {
    let n = insns.len();
    let contents = register_contents(insns, order, entries);
    let mut flows: Vec<Flow> = (0..n).map(|i| flow(insns, i)).collect();
    if !main_exit_r0 {
        return exits_by_callers(insns, order, &contents, &mut flows, entries, key_sizes);
    }
    fixpoint(insns, order, &contents, &flows, key_sizes)
}

/// The registers and slots that may decide something before each instruction, given each
/// instruction's flow.
fn fixpoint(
    insns: &[Insn],
    order: &[usize],
    contents: &[Regs],
    flows: &[Flow],
    key_sizes: &[u32],
) -> Vec<(u16, u64)> {
    let n = insns.len();
    let mut before = vec![(0u16, 0u64); n];
    let mut changed = true;
    while changed {
        changed = false;
        for &i in order {
            let (succ, cnt) = crate::cfg::successors(insns, i);
            let (mut regs, mut slots) = (0u16, 0u64);
            for &t in &succ[..cnt] {
                if t < n {
                    regs |= before[t].0;
                    slots |= before[t].1;
                }
            }
            let b = step(&insns[i], &flows[i], &contents[i], key_sizes, regs, slots);
            if b != before[i] {
                before[i] = b;
                changed = true;
            }
        }
    }
    before
}

/// [`precise_before_exits`] without the main program's `r0`: a subprogram's `r0` at its
/// `exit` decides something when it does after one of the calls of the subprogram (or
/// always, for a subprogram nothing calls directly: a callback). The least fixed point,
/// from no subprogram `r0` deciding anything.
fn exits_by_callers(
    insns: &[Insn],
    order: &[usize],
    contents: &[Regs],
    flows: &mut [Flow],
    entries: &[usize],
    key_sizes: &[u32],
) -> Vec<(u16, u64)> {
    use crate::insn::{class, jmp, PSEUDO_CALL};
    let n = insns.len();
    let mut starts: Vec<usize> = entries.to_vec();
    starts.sort_unstable();
    let subprog_of = |i: usize| starts.partition_point(|&s| s <= i).saturating_sub(1);
    let is_exit = |d: &Insn| d.class() == class::JMP && d.op() == jmp::EXIT;
    // Call sites of each subprogram.
    let mut callers: Vec<Vec<usize>> = vec![Vec::new(); starts.len()];
    for (c, d) in insns.iter().enumerate() {
        if d.class() == class::JMP && d.op() == jmp::CALL && d.src == PSEUDO_CALL {
            let t = c as i64 + i64::from(d.imm) + 1;
            if let Ok(t) = usize::try_from(t) {
                if let Ok(s) = starts.binary_search(&t) {
                    callers[s].push(c);
                }
            }
        }
    }
    let mut decides: Vec<bool> = callers
        .iter()
        .enumerate()
        .map(|(s, c)| s > 0 && c.is_empty())
        .collect();
    loop {
        for (i, (f, d)) in flows.iter_mut().zip(insns).enumerate() {
            if is_exit(d) {
                f.sinks = u16::from(decides[subprog_of(i)]);
            }
        }
        let before = fixpoint(insns, order, contents, flows, key_sizes);
        let mut changed = false;
        for (s, calls) in callers.iter().enumerate() {
            let now = decides[s] || calls.iter().any(|&c| c + 1 < n && before[c + 1].0 & 1 != 0);
            if now != decides[s] {
                decides[s] = now;
                changed = true;
            }
        }
        if !changed {
            return before;
        }
    }
}

/// Per map, the size of the key whose value may decide something: only a constant key of
/// an array or per-CPU array (it elides the NULL check of a lookup, `const_map_key`); 0
/// for other maps, whose keys a helper only reads.
pub(crate) fn deciding_key_sizes(maps: &[crate::input::MapInfo]) -> Vec<u32> {
    use crate::input::map_type::{ARRAY, PERCPU_ARRAY};
    maps.iter()
        .map(|m| {
            if matches!(m.map_type, ARRAY | PERCPU_ARRAY) {
                m.key_size
            } else {
                0
            }
        })
        .collect()
}

/// The stack slots whose values a helper call may decide on: the map keys it is given
/// (a constant key of an array elides the NULL check); every slot when a stack pointer
/// it is given is not a key of a known size, or the helper is not known. Helpers that
/// only read or fill memory check that it is initialised, not what it holds.
fn helper_stack_use(id: i32, r: &Regs, key_sizes: &[u32]) -> u64 {
    use crate::helpers::Arg;
    let Some(p) = crate::helpers::proto(id) else {
        return if r[1..6].iter().any(|v| v.may_be_stack()) {
            ALL_SLOTS
        } else {
            0
        };
    };
    let map = p
        .args
        .iter()
        .position(|a| matches!(a, Arg::ConstMapPtr))
        .map(|k| r[k + 1]);
    let mut out = 0;
    for (k, a) in p.args.iter().enumerate() {
        let v = r[k + 1];
        if !v.may_be_stack() {
            continue;
        }
        match a {
            Arg::MapKey => {
                let key_size = match map {
                    Some(Val::Map(m)) => key_sizes.get(m as usize).copied(),
                    _ => None,
                };
                out |= match (v, key_size) {
                    (Val::Fp(o), Some(size)) => match i16::try_from(o) {
                        Ok(o) => slots_of_range(o, size),
                        Err(_) => ALL_SLOTS,
                    },
                    _ => ALL_SLOTS,
                };
            }
            Arg::StackOrNull | Arg::Func | Arg::Unmodelled => out = ALL_SLOTS,
            _ => {}
        }
    }
    out
}

/// Slots touched by `size` bytes at `fp + off` (any size).
fn slots_of_range(off: i16, size: u32) -> u64 {
    let off = i32::from(off);
    let size = size.min(512) as i32;
    if off >= 0 || size == 0 {
        return 0;
    }
    let mut mask = 0u64;
    for byte in off..(off + size).min(0) {
        let spi = (-byte - 1) / 8;
        if (0..64).contains(&spi) {
            mask |= 1 << spi;
        }
    }
    mask
}

/// One instruction backwards: what matters before it, given what matters after it
/// (`regs`, `slots`) and what the registers may hold before it.
fn step(insn: &Insn, f: &Flow, r: &Regs, key_sizes: &[u32], regs: u16, slots: u64) -> (u16, u64) {
    let src = 1u16 << (insn.src & 0xf);
    let dst = 1u16 << (insn.dst & 0xf);
    let base = |reg: u8| r[usize::from(reg & 0xf).min(10)];
    let mut regs_before = f.before(regs);
    let mut slots_before = slots;
    let mut escape = false;
    match insn.class() {
        class::LDX => match base(insn.src) {
            Val::Fp(o) => {
                let off = o + i32::from(insn.off);
                match i16::try_from(off) {
                    Ok(off) => match slots_of(off, insn.size()) {
                        // A fill: the slot matters if the register it fills does.
                        (_, Some(spi)) if insn.mode() == mode::MEM => {
                            if regs & dst != 0 {
                                slots_before |= 1 << spi;
                            }
                        }
                        (mask, _) => slots_before |= mask,
                    },
                    Err(_) => escape = true,
                }
            }
            v => escape = v.may_be_stack(),
        },
        class::ST | class::STX if insn.mode() == mode::MEM => match base(insn.dst) {
            Val::Fp(o) => {
                let off = o + i32::from(insn.off);
                match i16::try_from(off) {
                    Ok(off) => match slots_of(off, insn.size()) {
                        // A spill (or a constant stored): the slot is written whole.
                        (_, Some(spi)) => {
                            slots_before &= !(1u64 << spi);
                            if insn.class() == class::STX {
                                regs_before &= !src;
                                if slots & (1 << spi) != 0 || regs & src != 0 {
                                    regs_before |= src;
                                }
                                regs_before |= dst;
                            }
                        }
                        // A narrower store: the slot's spilled register is gone after it
                        // (`scrub_special_slot`: its other bytes are `STACK_MISC`, which
                        // a read gives back as an unknown scalar), so what the slot held
                        // before cannot matter from here on; the stored register may be
                        // filled back when the store is a narrow spill.
                        (mask, None) => {
                            slots_before &= !mask;
                            if insn.class() == class::STX {
                                regs_before &= !src;
                                if slots & mask != 0 || regs & src != 0 {
                                    regs_before |= src;
                                }
                                regs_before |= dst;
                            }
                        }
                    },
                    Err(_) => escape = true,
                }
            }
            v => escape = v.may_be_stack(),
        },
        class::STX => escape = base(insn.dst).may_be_stack(),
        class::JMP | class::JMP32 if insn.op() == jmp::CALL => {
            if insn.is_helper_call() {
                slots_before |= helper_stack_use(insn.imm, r, key_sizes);
            } else {
                escape = r[1..6].iter().any(|v| v.may_be_stack());
            }
        }
        _ => {}
    }
    if escape {
        slots_before = ALL_SLOTS;
    }
    (regs_before, slots_before)
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

    fn words(w: &[u64]) -> Vec<Insn> {
        w.iter().map(|&w| Insn::from_word(w)).collect()
    }

    fn analyze(w: &[u64]) -> Vec<(u16, u64)> {
        let insns = words(w);
        let order: Vec<usize> = (0..insns.len()).rev().collect();
        precise_before(&insns, &order, &[0], &[4], true)
    }

    #[test]
    fn extreme_offsets_and_constants_do_not_overflow() {
        // r1 = r10; r1 -= i32::MIN; *(u64 *)(r10 - 1024) = r1; r0 = *(u64 *)(r1 - 32768);
        // r0 = *(u64 *)(r10 - 1024)
        analyze(&[
            0x0000_0000_0000_a1bf,
            0x8000_0000_0000_0117,
            0x0000_0000_fc00_1a7b,
            0x0000_0000_8000_1079,
            0x0000_0000_fc00_a079,
            0x95,
        ]);
        assert_eq!(slots_of(-1024, 8), (0, None));
        assert_eq!(slots_of(-512, 8), (1 << 63, Some(63)));
    }

    #[test]
    fn slots_of_accesses() {
        assert_eq!(slots_of(-8, 8), (1, Some(0)));
        assert_eq!(slots_of(-16, 8), (2, Some(1)));
        assert_eq!(slots_of(-4, 4), (1, None));
        assert_eq!(slots_of(-12, 8), (3, None));
        assert_eq!(slots_of(0, 8), (0, None));
    }

    #[test]
    fn a_spilled_counter_matters_only_if_filled_into_a_check() {
        let spill = 0x0000_0000_fff8_7a7b; // *(u64 *)(r10 - 8) = r7
        let fill = 0x0000_0000_fff8_a079; // r0 = *(u64 *)(r10 - 8)
        let ret = 0x0000_0002_0000_00b7; // r0 = 2
        let exit = 0x95;
        // Filled, then overwritten: neither the slot nor r7 matters.
        let p = analyze(&[spill, fill, ret, exit]);
        assert_eq!(p[0], (1 << 10, 0));
        assert_eq!(p[1].1, 0);
        // Filled into the return value: the slot matters before the fill, r7 before the
        // spill.
        let p = analyze(&[spill, fill, exit]);
        assert_eq!(p[1].1, 1);
        assert_ne!(p[0].0 & (1 << 7), 0);
        assert_eq!(p[0].1, 0, "the spill writes the whole slot");
    }

    #[test]
    fn a_narrower_store_ends_what_the_slot_held() {
        let spill = 0x0000_0000_fff8_7a7b; // *(u64 *)(r10 - 8) = r7
        let narrow = 0x0000_0000_fffc_6a63; // *(u32 *)(r10 - 4) = r6
        let fill = 0x0000_0000_fff8_a079; // r0 = *(u64 *)(r10 - 8)
        let exit = 0x95;
        // The fill reads the slot after the narrow store scrubbed r7's spill: r7 and the
        // slot before the store do not matter; r6 may (a narrow spill can be filled).
        let p = analyze(&[spill, narrow, fill, exit]);
        assert_eq!(p[2].1, 1, "the fill's slot matters");
        assert_eq!(p[1].1, 0, "not before the narrower store");
        assert_ne!(p[1].0 & (1 << 6), 0);
        assert_eq!(p[0].0 & (1 << 7), 0, "the spilled r7 decides nothing");
        // A map key of 4 bytes at fp-4 written after the spill (may_goto_loops' widened
        // store): the key's slot matters only from the key's store on.
        let p = analyze(&[
            spill,
            0x0000_0002_fffc_0a62, // *(u32 *)(r10 - 4) = 2
            0x0000_0000_0000_a2bf, // r2 = r10
            0xffff_fffc_0000_0207, // r2 += -4
            0x0000_0000_0000_1118, // r1 = map 0 (key_size 4)
            0,
            0x0000_0001_0000_0085, // call bpf_map_lookup_elem
            0x0000_0000_0000_00b7, // r0 = 0
            exit,
        ]);
        assert_eq!(p[1].1, 0);
        assert_eq!(p[0].0 & (1 << 7), 0);
        assert_eq!(p[2].1, 1);
    }

    #[test]
    fn a_map_key_on_the_stack_makes_its_slots_matter() {
        let p = analyze(&[
            0x0000_0000_0000_a2bf, // r2 = r10
            0xffff_fff0_0000_0207, // r2 += -16
            0x0000_0000_0000_1118, // r1 = map 0 (key_size 4)
            0,
            0x0000_0001_0000_0085, // call bpf_map_lookup_elem
            0x0000_0000_0000_00b7, // r0 = 0
            0x95,
        ]);
        assert_eq!(p[4].1, 1 << 1, "the key at fp-16: slot 1 only");
        assert_eq!(p[5].1, 0);
        // A key whose map is not known: every slot.
        let p = analyze(&[
            0x0000_0000_0000_a2bf, // r2 = r10
            0x0000_0001_0000_0085, // call bpf_map_lookup_elem
            0x0000_0000_0000_00b7, // r0 = 0
            0x95,
        ]);
        assert_eq!(p[1].1, ALL_SLOTS);
        // A fill through a copy of r10 at a known offset is a fill.
        let p = analyze(&[
            0x0000_0000_0000_a1bf, // r1 = r10
            0x0000_0000_fff8_1079, // r0 = *(u64 *)(r1 - 8)
            0x95,
        ]);
        assert_eq!(p[1].1, 1);
        // bpf_probe_read_kernel(r1 = stack buffer, ...) only fills it.
        let p = analyze(&[
            0x0000_0000_0000_a1bf, // r1 = r10
            0x0000_0071_0000_0085, // call 113
            0x0000_0000_0000_00b7,
            0x95,
        ]);
        assert_eq!(p[1].1, 0);
        // A bpf-to-bpf call may fill from it.
        let mut call = Insn::from_word(0x0000_0001_0000_1085); // call pc+1
        assert!(call.is_pseudo_call());
        call.imm = 1;
        let insns = vec![
            Insn::from_word(0x0000_0000_0000_a1bf),
            call,
            Insn::from_word(0x95),
        ];
        let p = precise_before(&insns, &[2, 1, 0], &[0], &[], true);
        assert_eq!(p[1].1, ALL_SLOTS);
    }

    #[test]
    fn the_main_programs_r0_decides_only_where_its_range_is_checked() {
        // r0 = r6; exit / subprogram: r0 = r7; exit
        let insns = words(&[0x0000_0000_0000_60bf, 0x95, 0x0000_0000_0000_70bf, 0x95]);
        let order = [1, 0, 3, 2];
        let checked = precise_before(&insns, &order, &[0, 2], &[], true);
        assert_eq!((checked[0].0, checked[2].0), (1 << 6, 1 << 7));
        let unchecked = precise_before(&insns, &order, &[0, 2], &[], false);
        assert_eq!(
            (unchecked[0].0, unchecked[2].0),
            (0, 1 << 7),
            "a subprogram's r0 still decides"
        );
    }
}
