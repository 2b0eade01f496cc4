//! Conditional jumps (`check_cond_jmp_op`): deciding a branch from what is known, or
//! forking the path and refining each side — scalar ranges (`reg_set_min_max`), NULL
//! checks of `_or_null` pointers and their copies (by id), packet ranges proven by
//! comparisons with `data_end` (`find_good_pkt_pointers`), and scalars linked by id.

use crate::error::{Rule, VerifierError, EACCES, EINVAL};
use crate::insn::{class, jmp, Insn};
use crate::reg::{Reg, RegType, ADD_CONST, ADD_CONST32, AT_PKT_END, BEYOND_PKT_END, MAYBE_NULL};
use crate::state::{hist, VState, FP};
use crate::tnum::Tnum;
use crate::verifier::Verifier;

type R<T> = Result<T, VerifierError>;

/// Largest packet offset (`MAX_PACKET_OFF`).
const MAX_PACKET_OFF: i64 = 0xffff;
/// Most registers linked in one jump (`LINKED_REGS_MAX`).
const LINKED_REGS_MAX: usize = 6;

/// Where a linked register lives.
#[derive(Clone, Copy, PartialEq, Eq, Debug)]
pub(crate) struct Linked {
    pub frameno: usize,
    pub index: usize,
    pub is_reg: bool,
}

/// `flip_opcode`: the comparison with operands swapped.
fn flip(op: u8) -> u8 {
    match op {
        jmp::JGE => jmp::JLE,
        jmp::JGT => jmp::JLT,
        jmp::JLE => jmp::JGE,
        jmp::JLT => jmp::JGT,
        jmp::JSGE => jmp::JSLE,
        jmp::JSGT => jmp::JSLT,
        jmp::JSLE => jmp::JSGE,
        jmp::JSLT => jmp::JSGT,
        o => o,
    }
}

/// The reverse JSET (`BPF_JSET | BPF_X` in the kernel's `rev_opcode`).
const JSET_REV: u8 = 0xf0;

/// `rev_opcode`: the negated comparison.
fn rev(op: u8) -> u8 {
    match op {
        jmp::JEQ => jmp::JNE,
        jmp::JNE => jmp::JEQ,
        jmp::JSET => JSET_REV,
        JSET_REV => jmp::JSET,
        jmp::JGE => jmp::JLT,
        jmp::JGT => jmp::JLE,
        jmp::JLE => jmp::JGT,
        jmp::JLT => jmp::JGE,
        jmp::JSGE => jmp::JSLT,
        jmp::JSGT => jmp::JSLE,
        jmp::JSLE => jmp::JSGT,
        jmp::JSLT => jmp::JSGE,
        _ => 0,
    }
}

/// `is_scalar_branch_taken`: 1 taken, 0 not taken, -1 unknown.
fn scalar_branch_taken(r1: &Reg, r2: &Reg, op: u8, jmp32: bool) -> i32 {
    let (a, b) = (&r1.b, &r2.b);
    let pick = |x: &crate::bounds::Bounds| {
        if jmp32 {
            (
                x.var_off.subreg(),
                u64::from(x.u32_min),
                u64::from(x.u32_max),
                i64::from(x.s32_min),
                i64::from(x.s32_max),
            )
        } else {
            (x.var_off, x.umin, x.umax, x.smin, x.smax)
        }
    };
    let (t1, umin1, umax1, smin1, smax1) = pick(a);
    let (t2, umin2, umax2, smin2, smax2) = pick(b);
    let disjoint = || {
        !t1.overlaps(t2)
            || umin1 > umax2
            || umax1 < umin2
            || smin1 > smax2
            || smax1 < smin2
            || (!jmp32
                && (a.u32_min > b.u32_max
                    || a.u32_max < b.u32_min
                    || a.s32_min > b.s32_max
                    || a.s32_max < b.s32_min))
    };
    match op {
        jmp::JEQ => {
            if t1.is_const() && t2.is_const() {
                return i32::from(t1.value == t2.value);
            }
            if disjoint() {
                return 0;
            }
        }
        jmp::JNE => {
            if t1.is_const() && t2.is_const() {
                return i32::from(t1.value != t2.value);
            }
            if disjoint() {
                return 1;
            }
        }
        jmp::JSET => {
            let (t1, t2) = if !r2.is_const(jmp32) {
                (t2, t1)
            } else {
                (t1, t2)
            };
            let c2 = if !r2.is_const(jmp32) { r1 } else { r2 };
            if !c2.is_const(jmp32) {
                return -1;
            }
            if (!t1.mask & t1.value) & t2.value != 0 {
                return 1;
            }
            if (t1.mask | t1.value) & t2.value == 0 {
                return 0;
            }
        }
        jmp::JGT => {
            if umin1 > umax2 {
                return 1;
            } else if umax1 <= umin2 {
                return 0;
            }
        }
        jmp::JSGT => {
            if smin1 > smax2 {
                return 1;
            } else if smax1 <= smin2 {
                return 0;
            }
        }
        jmp::JLT => {
            if umax1 < umin2 {
                return 1;
            } else if umin1 >= umax2 {
                return 0;
            }
        }
        jmp::JSLT => {
            if smax1 < smin2 {
                return 1;
            } else if smin1 >= smax2 {
                return 0;
            }
        }
        jmp::JGE => {
            if umin1 >= umax2 {
                return 1;
            } else if umax1 < umin2 {
                return 0;
            }
        }
        jmp::JSGE => {
            if smin1 >= smax2 {
                return 1;
            } else if smax1 < smin2 {
                return 0;
            }
        }
        jmp::JLE => {
            if umax1 <= umin2 {
                return 1;
            } else if umin1 > umax2 {
                return 0;
            }
        }
        jmp::JSLE => {
            if smax1 <= smin2 {
                return 1;
            } else if smin1 > smax2 {
                return 0;
            }
        }
        _ => {}
    }
    -1
}

/// `is_pkt_ptr_branch_taken`: comparisons of a packet pointer known to be at or beyond
/// `data_end`.
fn pkt_ptr_branch_taken(dst: &Reg, src: &Reg, op: u8) -> i32 {
    let (pkt, op) = if src.ty == RegType::PacketEnd {
        (dst, op)
    } else if dst.ty == RegType::PacketEnd {
        (src, flip(op))
    } else {
        return -1;
    };
    if pkt.range() >= 0 {
        return -1;
    }
    match op {
        jmp::JLE | jmp::JGT if pkt.range() == BEYOND_PKT_END => i32::from(op == jmp::JGT),
        jmp::JLT | jmp::JGE if pkt.range() == BEYOND_PKT_END || pkt.range() == AT_PKT_END => {
            i32::from(op == jmp::JGE)
        }
        _ => -1,
    }
}

/// `is_branch_taken`.
fn branch_taken(r1: &Reg, r2: &Reg, op: u8, jmp32: bool) -> i32 {
    if r1.is_pkt_pointer_any() && r2.is_pkt_pointer_any() && !jmp32 {
        return pkt_ptr_branch_taken(r1, r2, op);
    }
    if r1.is_pointer_value(false) || r2.is_pointer_value(false) {
        // A 32-bit comparison of a pointer decides nothing, not even a non-NULL pointer's
        // with 0 (kernel 6.18: `if w0 == 0` on a `map_value` is "R0 pointer comparison
        // prohibited" without CAP_PERFMON, where `if r0 == 0` is a known branch).
        if jmp32 {
            return -1;
        }
        let (r1, r2, op) = if !r2.is_const(jmp32) {
            (r2, r1, flip(op))
        } else {
            (r1, r2, op)
        };
        if !r2.is_const(jmp32) || !r1.not_null() || r2.b.const_value(jmp32) != 0 {
            return -1;
        }
        return match op {
            jmp::JEQ => 0,
            jmp::JNE => 1,
            _ => -1,
        };
    }
    scalar_branch_taken(r1, r2, op, jmp32)
}

/// `regs_refine_cond_op`: what `r1 OP r2` holding tells about both.
fn refine(r1: &mut Reg, r2: &mut Reg, op: u8, jmp32: bool) {
    let (r1, r2, op) = match op {
        jmp::JGE | jmp::JGT | jmp::JSGE | jmp::JSGT => (r2, r1, flip(op)),
        _ => (r1, r2, op),
    };
    match op {
        jmp::JEQ => {
            if jmp32 {
                let (a, b) = (&mut r1.b, &mut r2.b);
                a.u32_min = a.u32_min.max(b.u32_min);
                a.u32_max = a.u32_max.min(b.u32_max);
                a.s32_min = a.s32_min.max(b.s32_min);
                a.s32_max = a.s32_max.min(b.s32_max);
                b.u32_min = a.u32_min;
                b.u32_max = a.u32_max;
                b.s32_min = a.s32_min;
                b.s32_max = a.s32_max;
                let t = a.var_off.subreg().intersect(b.var_off.subreg());
                a.var_off = a.var_off.with_subreg(t);
                b.var_off = b.var_off.with_subreg(t);
            } else {
                let (a, b) = (&mut r1.b, &mut r2.b);
                a.umin = a.umin.max(b.umin);
                a.umax = a.umax.min(b.umax);
                a.smin = a.smin.max(b.smin);
                a.smax = a.smax.min(b.smax);
                b.umin = a.umin;
                b.umax = a.umax;
                b.smin = a.smin;
                b.smax = a.smax;
                a.var_off = a.var_off.intersect(b.var_off);
                b.var_off = a.var_off;
            }
        }
        jmp::JNE => {
            let (r1, r2) = if !r2.is_const(jmp32) {
                (r2, r1)
            } else {
                (r1, r2)
            };
            if !r2.is_const(jmp32) {
                return;
            }
            let val = r2.b.const_value(jmp32);
            let a = &mut r1.b;
            if jmp32 {
                if a.u32_min == val as u32 {
                    a.u32_min = a.u32_min.wrapping_add(1);
                }
                if a.u32_max == val as u32 {
                    a.u32_max = a.u32_max.wrapping_sub(1);
                }
                if a.s32_min == val as i32 {
                    a.s32_min = a.s32_min.wrapping_add(1);
                }
                if a.s32_max == val as i32 {
                    a.s32_max = a.s32_max.wrapping_sub(1);
                }
            } else {
                if a.umin == val {
                    a.umin = a.umin.wrapping_add(1);
                }
                if a.umax == val {
                    a.umax = a.umax.wrapping_sub(1);
                }
                if a.smin == val as i64 {
                    a.smin = a.smin.wrapping_add(1);
                }
                if a.smax == val as i64 {
                    a.smax = a.smax.wrapping_sub(1);
                }
            }
        }
        jmp::JSET => {
            let (r1, r2) = if !r2.is_const(jmp32) {
                (r2, r1)
            } else {
                (r1, r2)
            };
            if !r2.is_const(jmp32) {
                return;
            }
            let val = r2.b.const_value(jmp32);
            if !val.is_power_of_two() {
                return;
            }
            if jmp32 {
                let t = r1.b.var_off.subreg().or(Tnum::constant(val));
                r1.b.var_off = r1.b.var_off.with_subreg(t);
            } else {
                r1.b.var_off = r1.b.var_off.or(Tnum::constant(val));
            }
        }
        JSET_REV => {
            let (r1, r2) = if !r2.is_const(jmp32) {
                (r2, r1)
            } else {
                (r1, r2)
            };
            if !r2.is_const(jmp32) {
                return;
            }
            let val = r2.b.const_value(jmp32);
            r1.b.set_unbounded();
            if jmp32 {
                let t = r1.b.var_off.subreg().and(Tnum::constant(!val));
                r1.b.var_off = r1.b.var_off.with_subreg(t);
            } else {
                r1.b.var_off = r1.b.var_off.and(Tnum::constant(!val));
            }
        }
        jmp::JLE => {
            if jmp32 {
                r1.b.u32_max = r1.b.u32_max.min(r2.b.u32_max);
                r2.b.u32_min = r1.b.u32_min.max(r2.b.u32_min);
            } else {
                r1.b.umax = r1.b.umax.min(r2.b.umax);
                r2.b.umin = r1.b.umin.max(r2.b.umin);
            }
        }
        jmp::JLT => {
            if jmp32 {
                r1.b.u32_max = r1.b.u32_max.min(r2.b.u32_max.wrapping_sub(1));
                r2.b.u32_min = r1.b.u32_min.wrapping_add(1).max(r2.b.u32_min);
            } else {
                r1.b.umax = r1.b.umax.min(r2.b.umax.wrapping_sub(1));
                r2.b.umin = r1.b.umin.wrapping_add(1).max(r2.b.umin);
            }
        }
        jmp::JSLE => {
            if jmp32 {
                r1.b.s32_max = r1.b.s32_max.min(r2.b.s32_max);
                r2.b.s32_min = r1.b.s32_min.max(r2.b.s32_min);
            } else {
                r1.b.smax = r1.b.smax.min(r2.b.smax);
                r2.b.smin = r1.b.smin.max(r2.b.smin);
            }
        }
        jmp::JSLT => {
            if jmp32 {
                r1.b.s32_max = r1.b.s32_max.min(r2.b.s32_max.wrapping_sub(1));
                r2.b.s32_min = r1.b.s32_min.wrapping_add(1).max(r2.b.s32_min);
            } else {
                r1.b.smax = r1.b.smax.min(r2.b.smax.wrapping_sub(1));
                r2.b.smin = r1.b.smin.wrapping_add(1).max(r2.b.smin);
            }
        }
        _ => {}
    }
}

/// `reg_set_min_max` for one side: refine both operands if both are scalars.
fn set_min_max(r1: &mut Reg, r2: &mut Reg, op: u8, jmp32: bool) {
    if r1.ty != RegType::Scalar || r2.ty != RegType::Scalar {
        return;
    }
    refine(r1, r2, op, jmp32);
    r1.b.sync();
    r2.b.sync();
    r1.b.sanitize();
    r2.b.sanitize();
}

/// `mark_ptr_not_null_reg`.
fn mark_not_null(r: &mut Reg) {
    r.flags &= !MAYBE_NULL;
}

/// `mark_ptr_or_null_regs`: every copy of the `_or_null` pointer with `id` becomes the
/// pointer (or a NULL scalar).
///
/// `maps[i]`: whether map `i` has a spin lock, and whether it has a timer (an inner map
/// template with one: a map pointer out of the outer map gets its lookup's id as
/// `map_uid`, which tells apart the inner maps of different lookups).
fn mark_ptr_or_null(st: &mut VState, id: u32, is_null: bool, maps: &[(bool, bool)]) {
    st.for_each_reg(|r| {
        if r.maybe_null() && r.id == id {
            if is_null {
                r.ty = RegType::Scalar;
                r.flags = 0;
                r.id = 0;
                r.ref_obj_id = 0;
                r.dynptr_id = 0;
                r.aux = 0;
                return;
            }
            mark_not_null(r);
            let (spin_lock, timer) = maps.get(r.map()).copied().unwrap_or_default();
            if r.ty == RegType::ConstPtrToMap && timer {
                r.map_uid = r.id;
            }
            let keeps_id = r.ty == RegType::MapValue && spin_lock;
            if !keeps_id {
                r.id = 0;
            }
        }
    });
    if is_null {
        st.refs.retain(|x| x.id != id);
    }
}

/// `find_good_pkt_pointers`: every packet pointer with the same id may be read up to
/// `dst.off` (+1 when the comparison was strict).
fn find_good_pkt_pointers(st: &mut VState, dst: &Reg, range_open: bool) {
    if dst.off < 0 || (dst.off == 0 && range_open) {
        return;
    }
    if dst.b.umax as i64 > MAX_PACKET_OFF || dst.b.umax as i64 + i64::from(dst.off) > MAX_PACKET_OFF
    {
        return;
    }
    let mut new_range = dst.off;
    if range_open {
        new_range += 1;
    }
    let (ty, id) = (dst.ty, dst.id);
    st.for_each_reg(|r| {
        if r.ty == ty && r.id == id {
            r.set_range(r.range().max(new_range));
        }
    });
}

/// `mark_pkt_end`: the packet pointer compared at or beyond the end.
fn mark_pkt_end(st: &mut VState, regno: usize, open: bool) {
    let r = &mut st.cur_mut().regs[regno];
    if r.ty != RegType::Packet {
        return;
    }
    r.set_range(if open { BEYOND_PKT_END } else { AT_PKT_END });
}

/// An unmodified packet pointer loaded from the context (`reg_is_init_pkt_pointer`).
fn is_init_pkt_pointer(r: &Reg, ty: RegType) -> bool {
    r.ty == ty && r.id == 0 && r.b.var_off.equals_const(0)
}

/// `sync_linked_regs`: registers linked to `known` take its new range.
fn sync_linked(st: &mut VState, known: &Reg, linked: &[Linked]) {
    for e in linked {
        let r = if e.is_reg {
            &mut st.frames[e.frameno].regs[e.index]
        } else {
            &mut st.frames[e.frameno].stack[e.index].spilled
        };
        if r.ty != RegType::Scalar || r == known {
            continue;
        }
        if (r.id & !ADD_CONST) != (known.id & !ADD_CONST) {
            continue;
        }
        if (r.id ^ known.id) & ADD_CONST == ADD_CONST {
            continue;
        }
        if (r.id & ADD_CONST == 0 && known.id & ADD_CONST == 0) || r.off == known.off {
            *r = *known;
        } else {
            let (off, id) = (r.off, r.id);
            let delta = i64::from(off) - i64::from(known.off);
            let fake = crate::bounds::Bounds::known(delta as u64);
            *r = *known;
            r.off = off;
            r.id = id;
            crate::scalar_alu::add_unsynced(&mut r.b, &fake);
            if (id | known.id) & ADD_CONST32 != 0 {
                r.b.zext_32_to_64();
            }
            r.b.sync();
        }
    }
}

impl Verifier<'_> {
    /// `collect_linked_regs`: live registers and spilled scalars sharing `id`.
    fn collect_linked_regs(&self, id: u32, out: &mut Vec<Linked>, dropped: &mut Vec<Linked>) {
        let id = id & !ADD_CONST;
        let st = &self.cur;
        for fi in (0..=st.curframe()).rev() {
            let live = self.aux[st.frame_insn_idx(fi)].live_regs_before;
            let f = &st.frames[fi];
            let mut push = |r: &Reg, l: Linked| {
                if r.ty != RegType::Scalar || (r.id & !ADD_CONST) != id {
                    return;
                }
                if out.contains(&l) {
                    return;
                }
                if out.len() < LINKED_REGS_MAX {
                    out.push(l);
                } else {
                    dropped.push(l);
                }
            };
            for (j, r) in f.regs.iter().enumerate().take(FP) {
                if live & (1 << j) == 0 {
                    continue;
                }
                push(
                    r,
                    Linked {
                        frameno: fi,
                        index: j,
                        is_reg: true,
                    },
                );
            }
            for (j, s) in f.stack.iter().enumerate() {
                if s.is_spilled() {
                    push(
                        &s.spilled,
                        Linked {
                            frameno: fi,
                            index: j,
                            is_reg: false,
                        },
                    );
                }
            }
        }
    }

    /// A conditional jump.
    pub(crate) fn check_cond_jmp_op(&mut self, insn: &Insn) -> R<()> {
        let op = insn.op();
        if op == jmp::JA || op > jmp::JCOND {
            return Err(self.err(
                Rule::Encoding,
                EINVAL,
                format!("invalid BPF_JMP/JMP32 opcode {op:x}"),
            ));
        }
        if op == jmp::JCOND {
            if insn.code != (class::JMP | jmp::JCOND)
                || insn.src != 0
                || insn.dst != 0
                || insn.imm != 0
            {
                return Err(self.err(
                    Rule::Encoding,
                    EINVAL,
                    format!("invalid may_goto imm {}", insn.imm),
                ));
            }
            return self.check_may_goto(insn);
        }
        self.check_reg_src(insn.dst)?;
        let jmp32 = insn.class() == class::JMP32;
        let mut hist_flags = 0;
        let src = if insn.src_is_reg() {
            if insn.imm != 0 {
                return Err(self.err(Rule::Encoding, EINVAL, "BPF_JMP/JMP32 uses reserved fields"));
            }
            self.check_reg_src(insn.src)?;
            let s = *self.reg(insn.src);
            let d = self.reg(insn.dst);
            if !(d.is_pkt_pointer_any() && s.is_pkt_pointer_any())
                && self.is_pointer_value(insn.src)
            {
                return Err(self.err(
                    Rule::PointerLeak,
                    EACCES,
                    format!("R{} pointer comparison prohibited", insn.src),
                ));
            }
            if s.ty == RegType::Stack {
                hist_flags |= hist::SRC_REG_STACK;
            }
            s
        } else {
            if insn.src != 0 {
                return Err(self.err(Rule::Encoding, EINVAL, "BPF_JMP/JMP32 uses reserved fields"));
            }
            Reg::known(i64::from(insn.imm) as u64, false)
        };
        let dst = *self.reg(insn.dst);
        if dst.ty == RegType::Stack {
            hist_flags |= hist::DST_REG_STACK;
        }
        if hist_flags != 0 {
            self.push_jmp_history(hist_flags, 0);
        }
        let pred = branch_taken(&dst, &src, op, jmp32);
        if pred >= 0 {
            if !dst.is_pointer_value(false) {
                self.mark_chain_precision(insn.dst)?;
            }
            if insn.src_is_reg() && !src.is_pointer_value(false) {
                self.mark_chain_precision(insn.src)?;
            }
        }
        let target = (self.insn_idx as i64 + i64::from(insn.off) + 1) as usize;
        if pred >= 0 {
            // Without CAP_PERFMON the branch the CPU may still mispredict is explored
            // speculatively, with the compared registers unknown
            // (`sanitize_speculative_path`).
            if !self.opts.privilege.bypass_spec_v1() {
                let other = if pred == 1 { self.insn_idx + 1 } else { target };
                let idx = self.insn_idx as i64;
                let (dno, sno, x) = (insn.dst as usize, insn.src as usize, insn.src_is_reg());
                let u = self.unknown_scalar();
                let st = self.push_branch_spec(other, idx, true)?;
                st.cur_mut().regs[dno] = u;
                if x {
                    st.cur_mut().regs[sno] = u;
                }
            }
            if pred == 1 {
                self.insn_idx = target - 1;
            }
            return Ok(());
        }
        let mut linked = Vec::new();
        let mut dropped = Vec::new();
        if insn.src_is_reg() && src.ty == RegType::Scalar && src.id != 0 {
            self.collect_linked_regs(src.id, &mut linked, &mut dropped);
        }
        if dst.ty == RegType::Scalar && dst.id != 0 {
            self.collect_linked_regs(dst.id, &mut linked, &mut dropped);
        }
        // Registers beyond the kernel's limit lose their link.
        for l in &dropped {
            let r = if l.is_reg {
                &mut self.cur.frames[l.frameno].regs[l.index]
            } else {
                &mut self.cur.frames[l.frameno].stack[l.index].spilled
            };
            r.id = 0;
        }
        if linked.len() > 1 {
            let packed = crate::precision::pack_linked(&linked);
            self.push_jmp_history(0, packed);
        }
        let idx = self.insn_idx as i64;
        let spin_lock_maps: Vec<(bool, bool)> = self
            .maps
            .iter()
            .map(|m| (m.spin_lock().is_some(), crate::timer::has_timer(m)))
            .collect();
        let (dno, sno) = (insn.dst as usize, insn.src as usize);
        let src_is_reg = insn.src_is_reg();
        // The taken branch is queued; this path continues with the fall-through.
        let other = self.push_branch(target, idx)?;
        {
            let o = &mut other.cur_mut().regs;
            let mut t1 = o[dno];
            let mut t2 = if src_is_reg { o[sno] } else { src };
            set_min_max(&mut t1, &mut t2, op, jmp32);
            o[dno] = t1;
            if src_is_reg {
                o[sno] = t2;
            }
        }
        let mut f1 = dst;
        let mut f2 = src;
        set_min_max(&mut f1, &mut f2, rev(op), jmp32);
        {
            let regs = self.cur.regs_mut();
            regs[dno] = f1;
            if src_is_reg {
                regs[sno] = f2;
            }
        }
        let other_regs = self.pending_top().cur().regs;
        if src_is_reg && src.ty == RegType::Scalar && src.id != 0 {
            let known_this = self.cur.regs()[sno];
            sync_linked(&mut self.cur, &known_this, &linked);
            let known_other = other_regs[sno];
            sync_linked(self.pending_top(), &known_other, &linked);
        }
        if dst.ty == RegType::Scalar && dst.id != 0 {
            let known_this = self.cur.regs()[dno];
            sync_linked(&mut self.cur, &known_this, &linked);
            let known_other = self.pending_top().cur().regs[dno];
            sync_linked(self.pending_top(), &known_other, &linked);
        }
        // Comparing a pointer with an _or_null copy of the same kind proves it non-NULL
        // on the equal side.
        if !jmp32
            && src_is_reg
            && src.is_pointer_value(false)
            && dst.is_pointer_value(false)
            && src.maybe_null() != dst.maybe_null()
            && src.ty != RegType::BtfId
            && dst.ty != RegType::BtfId
        {
            let which = if src.maybe_null() { sno } else { dno };
            match op {
                jmp::JEQ => mark_not_null(&mut self.pending_top().cur_mut().regs[which]),
                jmp::JNE => mark_not_null(&mut self.cur.regs_mut()[which]),
                _ => {}
            }
        }
        if !jmp32
            && !src_is_reg
            && insn.imm == 0
            && matches!(op, jmp::JEQ | jmp::JNE)
            && dst.maybe_null()
        {
            let id = dst.id;
            mark_ptr_or_null(&mut self.cur, id, op == jmp::JNE, &spin_lock_maps);
            mark_ptr_or_null(self.pending_top(), id, op == jmp::JEQ, &spin_lock_maps);
        } else if !self.try_match_pkt_pointers(insn, &dst) && self.is_pointer_value(insn.dst) {
            return Err(self.err(
                Rule::PointerLeak,
                EACCES,
                format!("R{} pointer comparison prohibited", insn.dst),
            ));
        }
        Ok(())
    }

    /// `try_match_pkt_pointers`: `pkt OP pkt_end` (or `pkt_meta OP pkt`) grants range on
    /// the side where the access is proven in bounds.
    fn try_match_pkt_pointers(&mut self, insn: &Insn, dst: &Reg) -> bool {
        if !insn.src_is_reg() || insn.class() == class::JMP32 {
            return false;
        }
        let src = self.cur.regs()[insn.src as usize];
        let (dno, sno) = (insn.dst as usize, insn.src as usize);
        let dst_left = (dst.ty == RegType::Packet && src.ty == RegType::PacketEnd)
            || (dst.ty == RegType::PacketMeta && is_init_pkt_pointer(&src, RegType::Packet));
        let dst_right = (dst.ty == RegType::PacketEnd && src.ty == RegType::Packet)
            || (is_init_pkt_pointer(dst, RegType::Packet) && src.ty == RegType::PacketMeta);
        // (pointer to grant range by, in this branch?, range_open, pkt_end mark: (regno, this?, open))
        let plan = match insn.op() {
            jmp::JGT if dst_left => (*dst, true, false, (dno, false, true)),
            jmp::JGT if dst_right => (src, false, true, (sno, true, false)),
            jmp::JLT if dst_left => (*dst, false, true, (dno, true, false)),
            jmp::JLT if dst_right => (src, true, false, (sno, false, true)),
            jmp::JGE if dst_left => (*dst, true, true, (dno, false, false)),
            jmp::JGE if dst_right => (src, false, false, (sno, true, true)),
            jmp::JLE if dst_left => (*dst, false, false, (dno, true, true)),
            jmp::JLE if dst_right => (src, true, true, (sno, false, false)),
            _ => return false,
        };
        let (ptr, in_this, open, (mreg, mark_this, mark_open)) = plan;
        if in_this {
            find_good_pkt_pointers(&mut self.cur, &ptr, open);
        } else {
            find_good_pkt_pointers(self.pending_top(), &ptr, open);
        }
        if mark_this {
            mark_pkt_end(&mut self.cur, mreg, mark_open);
        } else {
            mark_pkt_end(self.pending_top(), mreg, mark_open);
        }
        true
    }
}
