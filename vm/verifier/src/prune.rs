//! State pruning (`is_state_visited`, `states_equal`): at a prune point the current state
//! is compared with the checkpoints already explored there; if one of them is at least as
//! general on every live register and stack slot, the current path is safe and ends. A
//! checkpoint still being explored that equals the current state exactly is a loop that
//! never ends ("infinite loop detected").

use crate::error::{Rule, VerifierError, EINVAL};
use crate::reg::{Reg, RegType, ADD_CONST};
use crate::stack::{SlotType, StackSlot, SLOT};
use crate::state::{FuncState, VState, NREGS};
use crate::verifier::{Explored, Verifier};

/// How strictly states are compared.
#[derive(Clone, Copy, PartialEq, Eq, Debug)]
pub(crate) enum Exact {
    /// Pruning: the old state covers the new one.
    Covers,
    /// Loop detection: identical.
    Identical,
    /// Covering, with unwritten registers only equal to unwritten ones and every scalar's
    /// range compared (`may_goto` loops; the call of a callback, visited once per iteration).
    RangeWithin,
}

/// Id correspondence between an old and a new state (`struct bpf_idmap`).
struct IdMap {
    pairs: Vec<(u32, u32)>,
    tmp_id_gen: u32,
}

impl IdMap {
    fn new(id_gen: u32) -> IdMap {
        IdMap {
            pairs: Vec::new(),
            tmp_id_gen: id_gen,
        }
    }

    /// `check_ids`: ids linked in the old state are linked the same way in the new one.
    fn check(&mut self, old: u32, cur: u32) -> bool {
        if (old != 0) != (cur != 0) {
            return false;
        }
        if old == 0 {
            return true;
        }
        for &(o, c) in &self.pairs {
            if o == old {
                return c == cur;
            }
            if c == cur {
                return false;
            }
        }
        self.pairs.push((old, cur));
        true
    }

    /// `check_scalar_ids`.
    fn check_scalar(&mut self, old: u32, cur: u32) -> bool {
        if old == 0 {
            return true;
        }
        let cur = if cur != 0 {
            cur
        } else {
            self.tmp_id_gen += 1;
            self.tmp_id_gen
        };
        if !self.check(old, cur) {
            return false;
        }
        if old & ADD_CONST != 0 {
            return self.check(old & !ADD_CONST, cur & !ADD_CONST);
        }
        true
    }
}

fn regs_exact(old: &Reg, cur: &Reg, idmap: &mut IdMap) -> bool {
    old.same_value(cur)
        && idmap.check(old.id, cur.id)
        && idmap.check(old.ref_obj_id, cur.ref_obj_id)
}

impl Verifier<'_> {
    /// Whether scalars' exact ranges matter for pruning: until precision tracking marks
    /// the ones that do, every scalar is treated as precise.
    fn scalar_precise(&self, r: &Reg) -> bool {
        r.precise || !crate::precision::ENABLED
    }

    /// `regsafe`: the old register covers the new one. `may_decide` is false for a
    /// register whose value no later check depends on ([`crate::sinks`]): as a scalar it
    /// is compared as the kernel compares an imprecise one.
    fn regsafe(
        &self,
        old: &Reg,
        cur: &Reg,
        idmap: &mut IdMap,
        exact: Exact,
        may_decide: bool,
    ) -> bool {
        if exact == Exact::Identical {
            return regs_exact(old, cur, idmap);
        }
        if old.ty == RegType::NotInit && (exact == Exact::Covers || cur.ty == RegType::NotInit) {
            return true;
        }
        if old.ty != cur.ty || old.flags != cur.flags {
            return false;
        }
        match old.ty {
            RegType::Scalar => {
                if self.explore_alu_limits {
                    return old.same_value(cur) && idmap.check_scalar(old.id, cur.id);
                }
                if (!may_decide || !self.scalar_precise(old)) && exact == Exact::Covers {
                    return true;
                }
                if old.id != 0 && (old.id & ADD_CONST) != (cur.id & ADD_CONST) {
                    return false;
                }
                if old.id & ADD_CONST != 0 && old.off != cur.off {
                    return false;
                }
                if !idmap.check_scalar(old.id, cur.id) {
                    return false;
                }
                old.b.range_within(&cur.b) && old.b.var_off.contains(cur.b.var_off)
            }
            RegType::MapKey | RegType::MapValue | RegType::Mem => {
                old.off == cur.off
                    && old.aux == cur.aux
                    && old.dynptr_id == cur.dynptr_id
                    && old.map_uid == cur.map_uid
                    && old.b.range_within(&cur.b)
                    && old.b.var_off.contains(cur.b.var_off)
                    && idmap.check(old.id, cur.id)
                    && idmap.check(old.ref_obj_id, cur.ref_obj_id)
            }
            RegType::Packet | RegType::PacketMeta => {
                let (or, cr) = (old.range(), cur.range());
                if or < 0 || cr < 0 {
                    if or != cr {
                        return false;
                    }
                } else if or > cr {
                    return false;
                }
                if old.off != cur.off {
                    return false;
                }
                if !idmap.check(old.id, cur.id) {
                    return false;
                }
                old.b.range_within(&cur.b) && old.b.var_off.contains(cur.b.var_off)
            }
            RegType::Stack => regs_exact(old, cur, idmap) && old.frameno == cur.frameno,
            _ => regs_exact(old, cur, idmap),
        }
    }

    /// The stack slot as a scalar register for comparison (`scalar_reg_for_stack`).
    fn scalar_of_slot(&self, s: &StackSlot) -> Option<Reg> {
        if s.is_spilled_scalar64() {
            return Some(s.spilled);
        }
        if s.is_all_misc(self.opts.privilege.allow_uninit_stack()) {
            return Some(Reg::unknown(false));
        }
        None
    }

    /// `stacksafe`. A spilled scalar in a slot outside `precise_slots` is compared as an
    /// imprecise one ([`crate::sinks`]).
    fn stacksafe(
        &self,
        old: &FuncState,
        cur: &FuncState,
        idmap: &mut IdMap,
        exact: Exact,
        precise_slots: u64,
    ) -> bool {
        let uninit_ok = self.opts.privilege.allow_uninit_stack();
        let old_len = old.allocated_stack();
        let cur_len = cur.allocated_stack();
        let mut i = 0;
        while i < old_len {
            let spi = i / SLOT;
            let b = i % SLOT;
            let ot = old.stack[spi].types[b];
            if exact == Exact::Identical && (i >= cur_len || ot != cur.stack[spi].types[b]) {
                return false;
            }
            if ot == SlotType::Invalid || (uninit_ok && ot == SlotType::Misc) {
                i += 1;
                continue;
            }
            if i >= cur_len {
                return false;
            }
            let ct = cur.stack[spi].types[b];
            if let (Some(o), Some(c)) = (
                self.scalar_of_slot(&old.stack[spi]),
                self.scalar_of_slot(&cur.stack[spi]),
            ) {
                let may_decide = spi >= 64 || precise_slots & (1 << spi) != 0;
                if !self.regsafe(&o, &c, idmap, exact, may_decide) {
                    return false;
                }
                i += SLOT - b;
                continue;
            }
            if ot == SlotType::Misc && ct == SlotType::Zero {
                i += 1;
                continue;
            }
            if ot != ct {
                return false;
            }
            if b != SLOT - 1 {
                i += 1;
                continue;
            }
            if old.stack[spi].types[SLOT - 1] == SlotType::Dynptr {
                let (o, c) = (&old.stack[spi], &cur.stack[spi]);
                if crate::dynptr::slot_dynptr(o) != crate::dynptr::slot_dynptr(c)
                    || !idmap.check(o.spilled.ref_obj_id, c.spilled.ref_obj_id)
                {
                    return false;
                }
            }
            if old.stack[spi].types[SLOT - 1] == SlotType::Spill
                && !self.regsafe(
                    &old.stack[spi].spilled,
                    &cur.stack[spi].spilled,
                    idmap,
                    exact,
                    true,
                )
            {
                return false;
            }
            i += 1;
        }
        true
    }

    fn func_states_equal(
        &self,
        old: &FuncState,
        cur: &FuncState,
        insn_idx: usize,
        idmap: &mut IdMap,
        exact: Exact,
    ) -> bool {
        if old.callback_depth > cur.callback_depth {
            return false;
        }
        let live = self.aux[insn_idx].live_regs_before;
        let precise = self.aux[insn_idx].precise_regs_before;
        for i in 0..NREGS {
            if live & (1 << i) != 0
                && !self.regsafe(
                    &old.regs[i],
                    &cur.regs[i],
                    idmap,
                    exact,
                    precise & (1 << i) != 0,
                )
            {
                return false;
            }
        }
        self.stacksafe(
            old,
            cur,
            idmap,
            exact,
            self.aux[insn_idx].precise_slots_before,
        )
    }

    /// `states_equal`.
    pub(crate) fn states_equal(&self, old: &VState, cur: &VState, exact: Exact) -> bool {
        if old.curframe() != cur.curframe() {
            return false;
        }
        let mut idmap = IdMap::new(self.id_gen);
        if old.speculative && !cur.speculative {
            return false;
        }
        if old.active_rcu_lock != cur.active_rcu_lock {
            return false;
        }
        if old.refs.len() != cur.refs.len() {
            return false;
        }
        if !crate::spin_lock::locks_equal(old, cur, |o, c| idmap.check(o, c)) {
            return false;
        }
        for (o, c) in old.refs.iter().zip(&cur.refs) {
            if !idmap.check(o.id, c.id) {
                return false;
            }
        }
        for i in 0..=old.curframe() {
            if old.frames[i].callsite != cur.frames[i].callsite {
                return false;
            }
            let at = old.frame_insn_idx(i);
            if !self.func_states_equal(&old.frames[i], &cur.frames[i], at, &mut idmap, exact) {
                return false;
            }
        }
        true
    }

    /// `states_maybe_looping`: the current frames' registers are byte-identical.
    fn states_maybe_looping(old: &VState, cur: &VState) -> bool {
        if old.curframe() != cur.curframe() {
            return false;
        }
        let (fo, fc) = (old.cur(), cur.cur());
        fo.regs
            .iter()
            .zip(fc.regs.iter())
            .all(|(a, b)| a.same_value(b) && a.id == b.id && a.ref_obj_id == b.ref_obj_id)
    }

    /// Removes evicted checkpoints from the list at `insn`.
    fn drop_evicted(&mut self, insn: usize) {
        let explored = &self.explored;
        if let Some(l) = self.explored_at.get_mut(&insn) {
            l.retain(|&k| !explored[k].evicted);
        }
    }

    /// Clears the dead registers of finished checkpoints here (`clean_live_states`).
    fn clean_live_states(&mut self, insn: usize) {
        let count = self.explored_at.get(&insn).map_or(0, Vec::len);
        for pos in 0..count {
            let k = self.explored_at[&insn][pos];
            let same_callsites = {
                let st = &self.explored[k].st;
                st.curframe() == self.cur.curframe()
                    && st
                        .frames
                        .iter()
                        .zip(&self.cur.frames)
                        .all(|(a, b)| a.callsite == b.callsite)
            };
            let st = &self.explored[k].st;
            if st.branches != 0 || st.insn_idx != insn || !same_callsites || st.cleaned {
                continue;
            }
            let lives: Vec<u16> = (0..=st.curframe())
                .map(|i| self.aux[st.frame_insn_idx(i)].live_regs_before)
                .collect();
            let st = &mut self.explored[k].st;
            st.cleaned = true;
            for (f, live) in st.frames.iter_mut().zip(lives) {
                for (i, r) in f.regs.iter_mut().enumerate().take(crate::state::FP) {
                    if live & (1 << i) == 0 {
                        *r = Reg::not_init();
                    }
                }
            }
        }
    }

    /// `is_state_visited`: `Ok(true)` when the current path is proven safe by a
    /// checkpoint here.
    pub(crate) fn is_state_visited(&mut self, insn: usize) -> Result<bool, VerifierError> {
        let force_new = self.aux[insn].force_checkpoint || self.cur.jmp_history.len() > 40;
        let calls_callback = {
            let i = &self.insns[insn];
            i.is_helper_call() && crate::helpers::calls_callback(i.imm)
        };
        let mut add_new = force_new
            || (self.jmps_processed - self.prev_jmps_processed >= 2
                && self.insn_processed - self.prev_insn_processed >= 8);
        self.clean_live_states(insn);
        let count = self.explored_at.get(&insn).map_or(0, Vec::len);
        let mut evicted = false;
        for pos in 0..count {
            let k = self.explored_at[&insn][pos];
            let in_progress = self.explored[k].st.branches > 0;
            let mut hit = false;
            if in_progress && self.may_goto_covered(k, insn) {
                hit = true;
            } else if in_progress && calls_callback {
                // Another iteration of a callback: done if this state is within one seen.
                if self.states_equal(&self.explored[k].st, &self.cur, Exact::RangeWithin) {
                    hit = true;
                } else if !force_new
                    && self.jmps_processed - self.prev_jmps_processed < 20
                    && self.insn_processed - self.prev_insn_processed < 100
                {
                    add_new = false;
                }
            } else if in_progress {
                let old = &self.explored[k].st;
                if Self::states_maybe_looping(old, &self.cur)
                    && self.states_equal(old, &self.cur, Exact::Identical)
                    && old.may_goto_depth == self.cur.may_goto_depth
                    && old.callback_unroll_depth == self.cur.callback_unroll_depth
                {
                    return Err(self.err(
                        Rule::InfiniteLoop,
                        EINVAL,
                        format!("infinite loop detected at insn {insn}"),
                    ));
                }
                if !force_new
                    && self.jmps_processed - self.prev_jmps_processed < 20
                    && self.insn_processed - self.prev_insn_processed < 100
                {
                    add_new = false;
                }
            } else if self.states_equal(&self.explored[k].st, &self.cur, Exact::Covers) {
                hit = true;
            }
            if hit {
                self.explored[k].hit += 1;
                if evicted {
                    self.drop_evicted(insn);
                }
                if self.aux[insn].jmp_point {
                    self.push_jmp_history(0, 0);
                }
                self.propagate_precision(k)?;
                return Ok(true);
            }
            // miss
            if add_new {
                self.explored[k].miss += 1;
            }
            let e = &self.explored[k];
            let n = if self.aux[insn].force_checkpoint && e.st.branches > 0 {
                64
            } else {
                3
            };
            if e.miss > e.hit * n + n {
                self.explored[k].evicted = true;
                self.live_states -= 1;
                evicted = true;
            }
        }
        if evicted {
            self.drop_evicted(insn);
        }
        if !add_new {
            return Ok(false);
        }
        self.total_states += 1;
        self.prev_jmps_processed = self.jmps_processed;
        self.prev_insn_processed = self.insn_processed;
        self.mark_all_scalars_imprecise();
        let mut new = self.cur.clone();
        new.insn_idx = insn;
        new.jmp_history = std::mem::take(&mut self.cur.jmp_history);
        let k = self.explored.len();
        self.explored.push(Explored {
            st: new,
            hit: 0,
            miss: 0,
            evicted: false,
        });
        self.explored_at.entry(insn).or_default().insert(0, k);
        self.cur.parent = Some(k);
        self.cur.first_insn_idx = insn;
        self.cur.dfs_depth = self.explored[k].st.dfs_depth + 1;
        self.cur_hist_ent = None;
        self.live_states += 1;
        self.peak_states = self.peak_states.max(self.live_states);
        Ok(false)
    }
}
