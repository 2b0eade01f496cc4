//! Callbacks (`bpf_loop`, `bpf_for_each_map_elem`) as the kernel's verifier checks them
//! (`push_callback_call`, `set_loop_callback_state`, `set_map_elem_callback_state`, the
//! callback branch of `prepare_func_exit`, `widen_imprecise_scalars`).
//!
//! A function's address (`ld_imm64` with `src_reg` 4) is a `PTR_TO_FUNC` naming a
//! subprogram. At a call of a callback-calling helper the walk queues a branch that enters
//! the callback in a new frame (`r1..=r5` as the helper passes them) and goes on after the
//! call in the caller. The callback's `exit` checks `r0` (a scalar in `[0, 1]`) and goes
//! back to the *call* in the caller, which is checked again and may queue the callback
//! once more: the walk follows the iterations until the state at the call is one already
//! seen there (the call is a checkpoint, compared with `RANGE_WITHIN`), or for `bpf_loop`
//! until as many iterations as `nr_loops` can be have been followed. Scalars that changed
//! between two visits of the call and decide nothing are widened to unknown values, so
//! counters converge.
//!
//! The kernel finds which scalars decide something by backtracking; bpfvm estimates it
//! statically and keeps a caller's scalar (a) where its static precision ([`crate::sinks`],
//! without the main program's `r0` when its range is unchecked) says it may decide
//! something after the call, or (b) where the callback loads it through its context
//! pointer into a register that decides something in the callback (a branch, an address,
//! a call's argument, the returned `r0`). Widening is always sound (a wider value); a
//! scalar the kernel keeps precise for a reason these estimates miss would be widened
//! here, which can only make bpfvm refuse a program the kernel accepts, never the reverse.

use crate::error::{Rule, VerifierError, E2BIG, EACCES, EINVAL, ENOTSUPP};
use crate::helpers;
use crate::input::map_type;
use crate::reg::{Reg, RegType};
use crate::state::{FuncState, MAX_CALL_FRAMES};
use crate::verifier::Verifier;

type R<T> = Result<T, VerifierError>;

/// Whether `bpf_for_each_map_elem` walks maps of `map_type` (the maps with
/// `map_for_each_callback`).
fn walkable(t: u32) -> bool {
    matches!(
        t,
        map_type::ARRAY
            | map_type::PERCPU_ARRAY
            | map_type::HASH
            | map_type::PERCPU_HASH
            | map_type::LRU_HASH
            | map_type::LRU_PERCPU_HASH
    )
}

impl Verifier<'_> {
    /// Whether helper `id` is one whose callbacks bpfvm's verifier follows.
    pub(crate) fn callbacks_modelled(id: u32) -> bool {
        matches!(id, helpers::LOOP | helpers::FOR_EACH_MAP_ELEM)
    }

    /// At a call of `bpf_loop` or `bpf_for_each_map_elem` (arguments checked, `r1..=r5`
    /// not yet cleared): queues the branch entering callback `subprog`, unless `bpf_loop`
    /// has followed as many iterations as `r1` may ask for.
    pub(crate) fn push_callback_call(&mut self, id: u32, subprog: usize) -> R<()> {
        if id == helpers::LOOP {
            let nr_max = self.reg(1).b.umax;
            let cf = self.cur.curframe();
            if u64::from(self.cur.frames[cf].callback_depth) >= nr_max {
                self.cur.frames[cf].callback_depth = 0;
                return Ok(());
            }
        }
        let cf = self.cur.curframe();
        if cf + 1 >= MAX_CALL_FRAMES {
            return Err(self.err(
                Rule::Call,
                E2BIG,
                format!("the call stack of {} frames is too deep", cf + 2),
            ));
        }
        let caller = self.cur.frames[cf].regs;
        let mut callee = FuncState::new(self.insn_idx as i64, (cf + 1) as u8, subprog);
        if id == helpers::LOOP {
            // callback_fn(u32 index, void *callback_ctx)
            callee.regs[1] = Reg::unknown(false);
            callee.regs[2] = caller[3];
        } else {
            // callback_fn(map, key, value, callback_ctx)
            let map = caller[1].map();
            if !walkable(self.prog.maps[map].map_type) {
                return Err(self.err(
                    Rule::HelperArgs,
                    ENOTSUPP,
                    "callback function not allowed for map",
                ));
            }
            callee.regs[1] = caller[1];
            let mut key = Reg::pointer(RegType::MapKey);
            key.aux = map as u32;
            let mut value = Reg::pointer(RegType::MapValue);
            value.aux = map as u32;
            callee.regs[2] = key;
            callee.regs[3] = value;
            callee.regs[4] = caller[3];
        }
        callee.in_callback = true;
        callee.callback_ret_range = (0, 1);
        let start = self.subprogs[subprog].start;
        let insn = self.insn_idx;
        let st = self.push_branch(start, insn as i64)?;
        st.frames.push(callee);
        st.callback_unroll_depth += 1;
        st.frames[cf].callback_depth += 1;
        self.cur.frames[cf].callback_depth = 0;
        Ok(())
    }

    /// `exit` of a callback: `r0` must be a scalar in the callback's range; the walk goes
    /// back to the call, with imprecise scalars widened against the last visit there.
    pub(crate) fn callback_exit(&mut self, r0: Reg) -> R<()> {
        if r0.ty != RegType::Scalar {
            return Err(self.err(Rule::ReturnValue, EACCES, "R0 not a scalar value"));
        }
        self.mark_chain_precision(0)?;
        let (lo, hi) = self.cur.cur().callback_ret_range;
        if !(i64::from(lo) <= r0.b.smin && r0.b.smax <= i64::from(hi)) {
            let msg = crate::check_call::r0_out_of_range(
                "callback return",
                r0.b.smin,
                r0.b.smax,
                i64::from(lo),
                i64::from(hi),
            );
            return Err(self.err(Rule::ReturnValue, EINVAL, msg));
        }
        let callee = self.cur.frames.pop().expect("a callback frame");
        self.insn_idx = callee.callsite as usize;
        self.cur.insn_idx = self.insn_idx;
        if let Some(k) = self.find_prev_entry(self.insn_idx) {
            let guard = self.ctx_guard(callee.subprogno);
            self.widen_imprecise_scalars(k, guard);
        }
        Ok(())
    }

    /// The stack slots a callback may read through its context pointer into a register
    /// that decides something there (the kernel marks those precise when the callback's
    /// checks backtrack into the caller's stack): `(frame, slot mask)` of the context the
    /// call at the current instruction passes, every slot of that frame when the pointer
    /// may escape the analysis. `None` when the context is no stack pointer.
    fn ctx_guard(&self, subprog: usize) -> Option<(usize, u64)> {
        let ctx = self.reg(3);
        if ctx.ty != RegType::Stack {
            return None;
        }
        let frame = usize::from(ctx.frameno);
        if !ctx.b.var_off.is_const() {
            return Some((frame, u64::MAX));
        }
        let base = i64::from(ctx.off) + ctx.b.var_off.value as i64;
        let id = self.insns[self.insn_idx].imm as u32;
        let ctx_reg = if id == helpers::LOOP { 2 } else { 4 };
        let Some(reads) = self.ctx_reads_deciding(subprog, ctx_reg) else {
            return Some((frame, u64::MAX));
        };
        let mut mask = 0u64;
        for (k, size) in reads {
            for byte in base + k..base + k + size {
                let spi = -byte - 1;
                if (0..512).contains(&spi) {
                    mask |= 1 << (spi / 8);
                }
            }
        }
        Some((frame, mask))
    }

    /// The ranges `(offset, size)` from the context pointer (`ctx_reg` at the callback's
    /// entry) that callback `subprog` may load into a register that may decide something;
    /// `None` when the pointer may go anywhere else (stored, passed to a call, compared,
    /// used in arithmetic other than adding a constant): a flow-insensitive estimate.
    fn ctx_reads_deciding(&self, subprog: usize, ctx_reg: u8) -> Option<Vec<(i64, i64)>> {
        use crate::insn::{alu, class, jmp, mode};
        use std::collections::BTreeSet;
        let start = self.subprogs[subprog].start;
        let end = self
            .subprogs
            .get(subprog + 1)
            .map_or(self.insns.len(), |s| s.start);
        let mut offs: [BTreeSet<i64>; 11] = Default::default();
        offs[usize::from(ctx_reg)].insert(0);
        let derived =
            |o: &[BTreeSet<i64>; 11], r: u8| o.get(usize::from(r)).is_some_and(|s| !s.is_empty());
        let mut reads = Vec::new();
        for _pass in 0..8 {
            let mut changed = false;
            reads.clear();
            let mut i = start;
            while i < end {
                let insn = self.insns[i];
                let (d, sr) = (insn.dst, insn.src);
                let reads_src = insn.src_is_reg() && derived(&offs, sr);
                match insn.class() {
                    class::ALU64 if insn.op() == alu::MOV && insn.src_is_reg() => {
                        if derived(&offs, sr) && insn.off == 0 {
                            let add: Vec<i64> = offs[usize::from(sr)].iter().copied().collect();
                            for k in add {
                                changed |= offs[usize::from(d & 0xf).min(10)].insert(k);
                            }
                        } else if derived(&offs, sr) {
                            return None;
                        }
                    }
                    class::ALU64
                        if matches!(insn.op(), alu::ADD | alu::SUB)
                            && !insn.src_is_reg()
                            && derived(&offs, d) =>
                    {
                        let delta = if insn.op() == alu::ADD {
                            i64::from(insn.imm)
                        } else {
                            -i64::from(insn.imm)
                        };
                        let add: Vec<i64> =
                            offs[usize::from(d)].iter().map(|k| k + delta).collect();
                        for k in add {
                            changed |= offs[usize::from(d)].insert(k);
                        }
                        if offs[usize::from(d)].len() > 32 {
                            return None;
                        }
                    }
                    class::ALU | class::ALU64
                        if reads_src || derived(&offs, d) && insn.op() != alu::MOV =>
                    {
                        return None;
                    }
                    class::LDX if derived(&offs, sr) => {
                        for &k in &offs[usize::from(sr)] {
                            reads.push((i, k + i64::from(insn.off), i64::from(insn.size())));
                        }
                    }
                    class::STX
                        if derived(&offs, sr) || insn.mode() != mode::MEM && derived(&offs, d) =>
                    {
                        return None;
                    }
                    class::JMP | class::JMP32 => {
                        let op = insn.op();
                        if op == jmp::CALL {
                            // The arguments the helper takes (all five for other calls).
                            let nargs = if insn.is_helper_call() {
                                helpers::proto(insn.imm).map_or(5, |p| {
                                    p.args.iter().filter(|a| **a != helpers::Arg::None).count()
                                })
                            } else {
                                5
                            };
                            if (1..=nargs as u8).any(|r| derived(&offs, r)) {
                                return None;
                            }
                        } else if op == jmp::EXIT {
                            if derived(&offs, 0) {
                                return None;
                            }
                        } else if op != jmp::JA && (derived(&offs, d) || reads_src) {
                            return None;
                        }
                    }
                    _ => {}
                }
                i += if insn.is_ldimm64() { 2 } else { 1 };
            }
            if !changed {
                let deciding = self.deciding_loads(start, end, &reads)?;
                return Some(
                    reads
                        .into_iter()
                        .filter(|(at, _, _)| deciding.contains(at))
                        .map(|(_, k, size)| (k, size))
                        .collect(),
                );
            }
        }
        None
    }

    /// Which of the loads at the instructions of `reads` give a value that may decide
    /// something in the callback `start..end` (a branch, an address, a call's argument,
    /// the returned `r0`; not a value only stored): a forward walk tracking, per register,
    /// the loads its value comes from. `None` with more than 64 loads.
    fn deciding_loads(
        &self,
        start: usize,
        end: usize,
        reads: &[(usize, i64, i64)],
    ) -> Option<std::collections::BTreeSet<usize>> {
        use crate::insn::{alu, class, jmp};
        let mut sites: Vec<usize> = reads.iter().map(|r| r.0).collect();
        sites.sort_unstable();
        sites.dedup();
        if sites.len() > 64 {
            return None;
        }
        let n = self.insns.len();
        let mut state: Vec<Option<[u64; 11]>> = vec![None; n];
        state[start] = Some([0; 11]);
        let mut work = vec![start];
        let mut decided = 0u64;
        while let Some(i) = work.pop() {
            let Some(mut r) = state[i] else { continue };
            let insn = self.insns[i];
            let d = usize::from(insn.dst & 0xf).min(10);
            let sr = usize::from(insn.src & 0xf).min(10);
            match insn.class() {
                class::LDX => {
                    decided |= r[sr];
                    r[d] = sites.binary_search(&i).map_or(0, |k| 1 << k);
                }
                class::ST => decided |= r[d],
                class::STX => {
                    decided |= r[d];
                    if insn.mode() != crate::insn::mode::MEM {
                        decided |= r[sr];
                    }
                }
                class::ALU | class::ALU64 => {
                    let src = if insn.src_is_reg() { r[sr] } else { 0 };
                    r[d] = if insn.op() == alu::MOV {
                        src
                    } else {
                        r[d] | src
                    };
                }
                class::JMP | class::JMP32 => match insn.op() {
                    jmp::CALL => {
                        decided |= r[1] | r[2] | r[3] | r[4] | r[5];
                        r[..6].fill(0);
                    }
                    jmp::EXIT => decided |= r[0],
                    jmp::JA => {}
                    _ => {
                        decided |= r[d];
                        if insn.src_is_reg() {
                            decided |= r[sr];
                        }
                    }
                },
                _ => {
                    if insn.is_ldimm64() {
                        r[d] = 0;
                    } else {
                        return None;
                    }
                }
            }
            let (succ, cnt) = crate::cfg::successors(self.insns, i);
            for &t in &succ[..cnt] {
                if t < start || t >= end {
                    continue;
                }
                let joined = match state[t] {
                    None => r,
                    Some(old) => {
                        let mut j = old;
                        for (a, b) in j.iter_mut().zip(r) {
                            *a |= b;
                        }
                        j
                    }
                };
                if state[t] != Some(joined) {
                    state[t] = Some(joined);
                    work.push(t);
                }
            }
        }
        Some(
            sites
                .iter()
                .enumerate()
                .filter(|(k, _)| decided & (1 << k) != 0)
                .map(|(_, &at)| at)
                .collect(),
        )
    }

    /// The checkpoint at `insn` on the current path (`find_prev_entry`): still being
    /// explored, with the same call sites, shallower in the checkpoint tree.
    fn find_prev_entry(&self, insn: usize) -> Option<usize> {
        let list = self.explored_at.get(&insn)?;
        list.iter().copied().find(|&k| {
            let st = &self.explored[k].st;
            st.insn_idx == insn
                && st.branches > 0
                && st.curframe() == self.cur.curframe()
                && st
                    .frames
                    .iter()
                    .zip(&self.cur.frames)
                    .all(|(a, b)| a.callsite == b.callsite)
                && st.dfs_depth < self.cur.dfs_depth
        })
    }

    /// `widen_imprecise_scalars`: each scalar (register or spilled slot) of the current
    /// state that differs from checkpoint `k`'s and may decide nothing where its frame goes
    /// on becomes unknown.
    fn widen_imprecise_scalars(&mut self, k: usize, guard: Option<(usize, u64)>) {
        for fr in 0..=self.cur.curframe() {
            // Where the frame goes on: after its call (the callback's call site for the
            // innermost frame, which is checked again, so its arguments count too).
            let at = self.cur.frame_insn_idx(fr);
            let (regs_here, _) = self.precise_at(at);
            let (regs_after, mut slots_after) = self.precise_at(at + 1);
            if let Some((_, mask)) = guard.filter(|g| g.0 == fr) {
                slots_after |= mask;
            }
            let precise_regs = regs_here | regs_after;
            let old = &self.explored[k].st.frames[fr];
            let mut widened: Vec<(Option<usize>, usize)> = Vec::new();
            for i in 0..old.regs.len() {
                if precise_regs & (1 << i) == 0
                    && differs(&old.regs[i], &self.cur.frames[fr].regs[i])
                {
                    widened.push((None, i));
                }
            }
            let cur = &self.cur.frames[fr];
            let slots = old.stack.len().min(cur.stack.len());
            for spi in 0..slots {
                let precise = spi < 64 && slots_after & (1 << spi) != 0;
                let (o, c) = (&old.stack[spi], &cur.stack[spi]);
                if !precise && o.is_spilled() && c.is_spilled() && differs(&o.spilled, &c.spilled) {
                    widened.push((Some(spi), 0));
                }
            }
            let f = &mut self.cur.frames[fr];
            for (slot, i) in widened {
                match slot {
                    None => f.regs[i] = Reg::unknown(false),
                    Some(spi) => f.stack[spi].spilled = Reg::unknown(false),
                }
            }
        }
    }

    /// The registers and stack slots that may decide something before instruction `i`.
    fn precise_at(&self, i: usize) -> (u16, u64) {
        self.aux
            .get(i)
            .map_or((u16::MAX, u64::MAX), |a| a.widen_guard)
    }

    /// Whether the main program's return value has a range the kernel checks.
    pub(crate) fn return_range_checked(&self) -> bool {
        self.prog.prog_type == crate::input::ProgType::CgroupSkb
    }
}

/// `maybe_widen_reg`'s test: both scalars, not the same value (ids are not compared:
/// bpfvm widens no more than the kernel, which also compares them).
fn differs(old: &Reg, cur: &Reg) -> bool {
    old.ty == RegType::Scalar && cur.ty == RegType::Scalar && !old.same_value(cur)
}

#[cfg(test)]
mod tests {
    use crate::input::{map_type, MapInfo, Options, Privilege, ProgType, Program};
    use crate::{verify, Insn, Rule, VerifierError};

    /// One instruction word.
    fn w(code: u8, dst: u8, src: u8, off: i16, imm: i32) -> Insn {
        Insn::from_word(
            u64::from(code)
                | u64::from(dst) << 8
                | u64::from(src) << 12
                | u64::from(off as u16) << 16
                | u64::from(imm as u32) << 32,
        )
    }
    const MOV_IMM: u8 = 0xb7;
    const MOV_REG: u8 = 0xbf;
    const ADD_IMM: u8 = 0x07;
    const LDX_DW: u8 = 0x79;
    const STX_DW: u8 = 0x7b;
    const ST_DW: u8 = 0x7a;
    const LD_IMM64: u8 = 0x18;
    const CALL: u8 = 0x85;
    const EXIT: u8 = 0x95;

    /// `r2 = &func(target)` at instruction `at`, as two slots.
    fn ld_func(at: usize, target: usize) -> [Insn; 2] {
        [
            w(LD_IMM64, 2, 4, 0, target as i32 - at as i32 - 1),
            w(0, 0, 0, 0, 0),
        ]
    }

    fn run(insns: &[Insn], maps: &[MapInfo]) -> Result<crate::Verdict, VerifierError> {
        let prog = Program {
            insns,
            prog_type: ProgType::Xdp,
            expected_attach_type: None,
            maps,
            gpl_compatible: true,
            kfuncs: &[],
            btf: None,
            func_info: true,
        };
        let opts = Options {
            privilege: Privilege::Root,
            ..Options::default()
        };
        verify(&prog, &opts)
    }

    /// `bpf_loop(10, cb, &fp[-8], 0)` counting into `fp[-8]`, the callback returning
    /// `ret` (an instruction setting r0).
    fn loop_program(ret: Insn) -> Vec<Insn> {
        let mut v = vec![
            w(ST_DW, 10, 0, -8, 0),  // 0: *(u64 *)(fp - 8) = 0
            w(MOV_IMM, 1, 0, 0, 10), // 1: r1 = 10
        ];
        v.extend(ld_func(2, 10)); // 2-3: r2 = cb (at 10)
        v.extend([
            w(MOV_REG, 3, 10, 0, 0), // 4: r3 = fp
            w(ADD_IMM, 3, 0, 0, -8), // 5: r3 -= 8
            w(MOV_IMM, 4, 0, 0, 0),  // 6: r4 = 0
            w(CALL, 0, 0, 0, 181),   // 7: bpf_loop
            w(LDX_DW, 0, 10, -8, 0), // 8: r0 = count
            w(EXIT, 0, 0, 0, 0),     // 9
            // cb(index, ctx): (*ctx)++
            w(LDX_DW, 3, 2, 0, 0),  // 10
            w(ADD_IMM, 3, 0, 0, 1), // 11
            w(STX_DW, 2, 3, 0, 0),  // 12
            ret,                    // 13
            w(EXIT, 0, 0, 0, 0),    // 14
        ]);
        v
    }

    #[test]
    fn a_loop_callback_that_counts_is_accepted() {
        let v = run(&loop_program(w(MOV_IMM, 0, 0, 0, 0)), &[]).unwrap();
        assert_eq!(v.stack_depth.len(), 2, "the callback is a subprogram");
    }

    #[test]
    fn a_callback_returns_0_or_1_in_the_kernels_words() {
        let e = run(&loop_program(w(MOV_IMM, 0, 0, 0, 2)), &[]).unwrap_err();
        assert_eq!(e.insn, Some(14));
        assert_eq!(e.errno, 22);
        assert_eq!(e.rule, Rule::ReturnValue);
        assert_eq!(
            e.message,
            "At callback return the register R0 has smin=2 smax=2 should have been in [0, 1]"
        );
        // The index: any u32.
        let e = run(&loop_program(w(MOV_REG, 0, 1, 0, 0)), &[]).unwrap_err();
        assert_eq!(
            e.message,
            "At callback return the register R0 has unknown scalar value should have been in [0, 1]"
        );
        // The count: 1 on the first iteration, 2 on the second, which the walk follows.
        let e = run(&loop_program(w(LDX_DW, 0, 2, 0, 0)), &[]).unwrap_err();
        assert_eq!(
            e.message,
            "At callback return the register R0 has smin=2 smax=2 should have been in [0, 1]"
        );
        // The stack pointer the callback was given.
        let e = run(&loop_program(w(MOV_REG, 0, 2, 0, 0)), &[]).unwrap_err();
        assert_eq!(e.message, "cannot return stack pointer to the caller");
        // A map value pointer.
        let hash = MapInfo::new(map_type::HASH, 4, 8, 16);
        let mut p = for_each_program(w(MOV_IMM, 5, 0, 0, 0));
        p[11] = w(MOV_REG, 0, 3, 0, 0);
        let e = run(&p, &[hash]).unwrap_err();
        assert_eq!((e.message.as_str(), e.errno), ("R0 not a scalar value", 13));
    }

    #[test]
    fn a_flag_the_callback_returns_is_not_widened() {
        // cb: r0 = *ctx; *ctx = 1; return r0 — 0, then 1 forever: the kernel keeps the
        // slot precise (r0 decides at the callback's exit), so must bpfvm.
        let mut v = loop_program(w(MOV_IMM, 0, 0, 0, 0));
        v[10] = w(LDX_DW, 0, 2, 0, 0);
        v[11] = w(MOV_IMM, 3, 0, 0, 1);
        v[12] = w(STX_DW, 2, 3, 0, 0);
        v[13] = w(MOV_IMM, 5, 0, 0, 0);
        run(&v, &[]).unwrap();
        // A counter only stored back converges by widening (an unbounded for_each walk
        // would otherwise never end).
        run(&loop_program(w(MOV_IMM, 0, 0, 0, 1)), &[]).unwrap();
    }

    /// `bpf_for_each_map_elem(map 0, cb, NULL, 0)` whose callback reads the key and the
    /// value, then does `extra`.
    fn for_each_program(extra: Insn) -> Vec<Insn> {
        let mut v = vec![w(LD_IMM64, 1, 1, 0, 0), w(0, 0, 0, 0, 0)]; // 0-1: r1 = map 0
        v.extend(ld_func(2, 8)); // 2-3: r2 = cb (at 8)
        v.extend([
            w(MOV_IMM, 3, 0, 0, 0), // 4
            w(MOV_IMM, 4, 0, 0, 0), // 5
            w(CALL, 0, 0, 0, 164),  // 6
            w(EXIT, 0, 0, 0, 0),    // 7
            w(0x61, 5, 2, 0, 0),    // 8: r5 = *(u32 *)key
            w(LDX_DW, 5, 3, 0, 0),  // 9: r5 = *(u64 *)value
            extra,                  // 10
            w(MOV_IMM, 0, 0, 0, 0), // 11
            w(EXIT, 0, 0, 0, 0),    // 12
        ]);
        v
    }

    #[test]
    fn for_each_callbacks_get_the_key_and_the_value() {
        let hash = MapInfo::new(map_type::HASH, 4, 8, 16);
        let nop = w(MOV_IMM, 5, 0, 0, 0);
        run(&for_each_program(nop), std::slice::from_ref(&hash)).unwrap();
        // The key is read-only.
        let e = run(
            &for_each_program(w(0x62, 2, 0, 0, 1)),
            std::slice::from_ref(&hash),
        )
        .unwrap_err();
        assert_eq!(e.message, "write to change key R2 not allowed");
        // The value has value_size bytes.
        let e = run(&for_each_program(w(LDX_DW, 5, 3, 8, 0)), &[hash]).unwrap_err();
        assert!(e.message.starts_with("invalid access to map value"), "{e}");
        // An LPM trie has no for_each.
        let lpm = MapInfo::new(map_type::LPM_TRIE, 8, 8, 16);
        let e = run(&for_each_program(nop), &[lpm]).unwrap_err();
        assert_eq!(e.message, "callback function not allowed for map");
        assert_eq!((e.insn, e.errno), (Some(6), 524));
    }
}
