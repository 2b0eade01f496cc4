//! `may_goto` (`BPF_JMP | BPF_JCOND`, `src = 0`), as the kernel's verifier has it: the
//! instruction may jump or fall through, so both are walked — the jump at once, the
//! fall-through queued one `may_goto_depth` deeper, with the scalars that decide nothing
//! widened to unknown (`widen_imprecise_scalars`) against the same instruction's previous
//! visit on this path. When the walk comes back to a `may_goto` at another depth and the
//! state there is within the one it left (`states_equal(RANGE_WITHIN)`), the path ends:
//! the loop is bounded by the run-time counter, not by its own condition. Infinite-loop
//! detection only compares states of the same depth.

use crate::error::VerifierError;
use crate::insn::Insn;
use crate::prune::Exact;
use crate::reg::{Reg, RegType};
use crate::state::{FuncState, VState, NREGS};
use crate::verifier::Verifier;

type R<T> = Result<T, VerifierError>;

/// A register or spilled slot of frame `frame` to widen.
#[derive(Clone, Copy, Debug)]
enum Place {
    Reg(usize, usize),
    Slot(usize, usize),
}

/// `maybe_widen_reg`'s test: both scalars, neither may decide anything (the kernel: neither
/// is precise), and not the same value.
fn widens(old: &Reg, cur: &Reg, may_decide: bool) -> bool {
    old.ty == RegType::Scalar
        && cur.ty == RegType::Scalar
        && !may_decide
        && !old.precise
        && !cur.precise
        && (!old.same_value(cur) || (old.id == 0) != (cur.id == 0))
}

impl Verifier<'_> {
    /// `may_goto +off` at the current instruction: queues the fall-through, continues at
    /// the target.
    pub(crate) fn check_may_goto(&mut self, insn: &Insn) -> R<()> {
        let idx = self.insn_idx;
        self.compute_may_goto_keep();
        let widen = match self.may_goto_prev_entry(idx) {
            Some(k) => self.places_to_widen(&self.explored[k].st, &self.cur, idx + 1),
            None => Vec::new(),
        };
        let q = self.push_branch(idx + 1, idx as i64)?;
        q.may_goto_depth += 1;
        for p in widen {
            match p {
                Place::Reg(f, i) => q.frames[f].regs[i] = Reg::unknown(false),
                Place::Slot(f, s) => q.frames[f].stack[s].spilled = Reg::unknown(false),
            }
        }
        // `do_check_insn` adds the 1.
        self.insn_idx = (idx as i64 + i64::from(insn.off)) as usize;
        Ok(())
    }

    /// `find_prev_entry`: the latest checkpoint at `idx` still on the current path (a loop
    /// back to it), older than the current path's parent.
    fn may_goto_prev_entry(&self, idx: usize) -> Option<usize> {
        let parent_depth = self.explored[self.cur.parent?].st.dfs_depth;
        self.explored_at.get(&idx)?.iter().copied().find(|&k| {
            let st = &self.explored[k].st;
            st.insn_idx == idx
                && st.branches > 0
                && st.dfs_depth < parent_depth
                && st.curframe() == self.cur.curframe()
                && st
                    .frames
                    .iter()
                    .zip(&self.cur.frames)
                    .all(|(a, b)| a.callsite == b.callsite)
        })
    }

    /// Per instruction, the registers and slots (as [`crate::sinks`] finds them) whose
    /// values may decide a check later, except the main program's return value where the
    /// program type does not check it — the kernel marks no such scalar precise.
    fn compute_may_goto_keep(&mut self) {
        if !self.may_goto_keep.is_empty() {
            return;
        }
        let order = self.postorder();
        let entries: Vec<usize> = self.subprogs.iter().map(|s| s.start).collect();
        let key_sizes = crate::sinks::deciding_key_sizes(self.prog.maps);
        let checks_r0 = self.prog.prog_type == crate::input::ProgType::CgroupSkb;
        self.may_goto_keep =
            crate::sinks::precise_before_exits(self.insns, &order, &entries, &key_sizes, checks_r0);
    }

    /// `widen_imprecise_scalars`: what to forget in the state continuing at `at`.
    fn places_to_widen(&self, old: &VState, cur: &VState, at: usize) -> Vec<Place> {
        let mut out = Vec::new();
        for f in 0..=old.curframe().min(cur.curframe()) {
            let insn = if f == cur.curframe() {
                at
            } else {
                cur.frames[f + 1].callsite as usize
            };
            let Some(&(keep_regs, keep_slots)) = self.may_goto_keep.get(insn) else {
                continue;
            };
            let (fo, fc): (&FuncState, &FuncState) = (&old.frames[f], &cur.frames[f]);
            for i in 0..NREGS {
                let decides = keep_regs & (1 << i) != 0;
                if widens(&fo.regs[i], &fc.regs[i], decides) {
                    out.push(Place::Reg(f, i));
                }
            }
            for (s, (so, sc)) in fo.stack.iter().zip(&fc.stack).enumerate() {
                if !so.is_spilled() || !sc.is_spilled() {
                    continue;
                }
                let decides = s >= 64 || keep_slots & (1 << s) != 0;
                if widens(&so.spilled, &sc.spilled, decides) {
                    out.push(Place::Slot(f, s));
                }
            }
        }
        out
    }

    /// The `may_goto` rule of `is_state_visited`: at a `may_goto`, checkpoint `k` (still
    /// on the current path) at another depth covers the current state within its ranges.
    pub(crate) fn may_goto_covered(&self, k: usize, idx: usize) -> bool {
        let old = &self.explored[k].st;
        self.insns.get(idx).is_some_and(Insn::is_may_goto)
            && old.may_goto_depth != self.cur.may_goto_depth
            && self.states_equal(old, &self.cur, Exact::RangeWithin)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_differing_scalars_that_decide_nothing_widen() {
        let a = Reg::known(1, false);
        let b = Reg::known(2, false);
        assert!(widens(&a, &b, false));
        assert!(!widens(&a, &b, true));
        assert!(!widens(&a, &a, false));
        assert!(!widens(&Reg::pointer(RegType::Stack), &b, false));
    }
}
