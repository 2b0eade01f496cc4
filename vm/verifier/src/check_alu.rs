//! ALU instructions (`check_alu_op`): moves, scalar arithmetic with range tracking, and
//! the rules of pointer arithmetic (`adjust_ptr_min_max_vals`), including the Spectre v1
//! restrictions that apply without `CAP_PERFMON`.

use crate::error::{Rule, VerifierError, EACCES, EINVAL};
use crate::insn::{alu, class, Insn};
use crate::log::reg_type_str;
use crate::reg::{Reg, RegType, ADD_CONST, ADD_CONST32, ADD_CONST64};
use crate::scalar_alu;
use crate::stack::MAX_STACK;
use crate::verifier::Verifier;

type R<T> = Result<T, VerifierError>;

/// Largest pointer offset tracked (`BPF_MAX_VAR_OFF`).
const MAX_VAR_OFF: i64 = 1 << 29;

/// Spectre v1 sanitation reasons (`REASON_*`).
#[derive(Clone, Copy, PartialEq, Eq, Debug)]
enum Reason {
    Bounds,
    Type,
    Paths,
    Limit,
    Stack,
}

const ALU_NEG_VALUE: u32 = 1 << 0;
const ALU_SANITIZE_SRC: u32 = 1 << 1;
const ALU_SANITIZE_DST: u32 = 1 << 2;
const ALU_IMMEDIATE: u32 = 1 << 3;
const ALU_NON_POINTER: u32 = ALU_SANITIZE_SRC | ALU_SANITIZE_DST;

impl Verifier<'_> {
    /// One ALU or ALU64 instruction.
    pub(crate) fn check_alu_op(&mut self, insn: &Insn) -> R<()> {
        let op = insn.op();
        let is64 = insn.class() == class::ALU64;
        if op == alu::END || op == alu::NEG {
            if op == alu::NEG {
                if insn.src_is_reg() || insn.src != 0 || insn.off != 0 || insn.imm != 0 {
                    return Err(self.err(Rule::Encoding, EINVAL, "BPF_NEG uses reserved fields"));
                }
            } else if insn.src != 0
                || insn.off != 0
                || !matches!(insn.imm, 16 | 32 | 64)
                || (is64 && insn.src_is_reg())
            {
                return Err(self.err(Rule::Encoding, EINVAL, "BPF_END uses reserved fields"));
            }
            self.check_reg_src(insn.dst)?;
            if self.is_pointer_value(insn.dst) {
                return Err(self.err(
                    Rule::PointerArithmetic,
                    EACCES,
                    format!("R{} pointer arithmetic prohibited", insn.dst),
                ));
            }
            if self.reg(insn.dst).ty == RegType::Scalar {
                self.check_reg_dst(insn.dst)?;
                let mut r = *self.reg(insn.dst);
                if op == alu::END {
                    if scalar_alu::byte_swap(&mut r.b, insn) {
                        r.id = 0;
                    }
                    r.b.sync();
                } else {
                    let src = r.b;
                    // As the kernel: the scalar id survives a negation.
                    scalar_alu::apply(alu::NEG, is64, &mut r.b, &src);
                }
                *self.reg_mut(insn.dst) = r;
            } else {
                self.check_reg_dst_mark(insn.dst)?;
            }
        } else if op == alu::MOV {
            self.check_mov(insn, is64)?;
        } else if op > alu::END {
            return Err(self.err(
                Rule::Encoding,
                EINVAL,
                format!("invalid BPF_ALU opcode {:x}", op),
            ));
        } else {
            let divmod = matches!(op, alu::DIV | alu::MOD);
            let bad_off = (insn.off != 0 && insn.off != 1) || (insn.off == 1 && !divmod);
            if insn.src_is_reg() {
                if insn.imm != 0 || bad_off {
                    return Err(self.err(Rule::Encoding, EINVAL, "BPF_ALU uses reserved fields"));
                }
                self.check_reg_src(insn.src)?;
            } else if insn.src != 0 || bad_off {
                return Err(self.err(Rule::Encoding, EINVAL, "BPF_ALU uses reserved fields"));
            }
            self.check_reg_src(insn.dst)?;
            if divmod && !insn.src_is_reg() && insn.imm == 0 {
                return Err(self.err(Rule::Encoding, EINVAL, "div by zero"));
            }
            if matches!(op, alu::LSH | alu::RSH | alu::ARSH) && !insn.src_is_reg() {
                let size = if is64 { 64 } else { 32 };
                if insn.imm < 0 || insn.imm >= size {
                    return Err(self.err(
                        Rule::Encoding,
                        EINVAL,
                        format!("invalid shift {}", insn.imm),
                    ));
                }
            }
            self.check_reg_dst(insn.dst)?;
            self.adjust_reg_min_max_vals(insn)?;
        }
        self.reg_mut(insn.dst).b.sanitize();
        Ok(())
    }

    fn check_mov(&mut self, insn: &Insn, is64: bool) -> R<()> {
        if insn.src_is_reg() {
            if !is64 {
                if !matches!(insn.off, 0 | 8 | 16) || insn.imm != 0 {
                    return Err(self.err(Rule::Encoding, EINVAL, "BPF_MOV uses reserved fields"));
                }
            } else if insn.off == 1 {
                return Err(self.err(
                    Rule::Unsupported,
                    EINVAL,
                    "addr_space_cast insn can only be used in a program that has an associated arena",
                ));
            } else if !matches!(insn.off, 0 | 8 | 16 | 32) || insn.imm != 0 {
                return Err(self.err(Rule::Encoding, EINVAL, "BPF_MOV uses reserved fields"));
            }
            self.check_reg_src(insn.src)?;
        } else if insn.src != 0 || insn.off != 0 {
            return Err(self.err(Rule::Encoding, EINVAL, "BPF_MOV uses reserved fields"));
        }
        self.check_reg_dst(insn.dst)?;
        if !insn.src_is_reg() {
            let v = if is64 {
                i64::from(insn.imm) as u64
            } else {
                u64::from(insn.imm as u32)
            };
            *self.reg_mut(insn.dst) = Reg::known(v, false);
            return Ok(());
        }
        let mut src = *self.reg(insn.src);
        if is64 {
            if insn.off == 0 {
                self.assign_scalar_id_before_mov(&mut src);
                *self.reg_mut(insn.src) = src;
                *self.reg_mut(insn.dst) = src;
            } else if self.is_pointer_value(insn.src) {
                return Err(self.err(
                    Rule::PointerLeak,
                    EACCES,
                    format!("R{} sign-extension part of pointer", insn.src),
                ));
            } else if src.ty == RegType::Scalar {
                let no_sext = src.b.umax < 1u64 << (insn.off - 1);
                if no_sext {
                    self.assign_scalar_id_before_mov(&mut src);
                    *self.reg_mut(insn.src) = src;
                }
                let mut d = src;
                if !no_sext {
                    d.id = 0;
                }
                d.b.coerce_to_size_sx(insn.off as u32 / 8);
                *self.reg_mut(insn.dst) = d;
            } else {
                *self.reg_mut(insn.dst) = self.unknown_scalar();
            }
        } else {
            if self.is_pointer_value(insn.src) {
                return Err(self.err(
                    Rule::PointerLeak,
                    EACCES,
                    format!("R{} partial copy of pointer", insn.src),
                ));
            }
            let mut d = if src.ty == RegType::Scalar {
                if insn.off == 0 {
                    let fits = 64 - src.b.umax.leading_zeros() <= 32;
                    if fits {
                        self.assign_scalar_id_before_mov(&mut src);
                        *self.reg_mut(insn.src) = src;
                    }
                    let mut d = src;
                    if !fits {
                        d.id = 0;
                    }
                    d
                } else {
                    let no_sext = src.b.umax < 1u64 << (insn.off - 1);
                    if no_sext {
                        self.assign_scalar_id_before_mov(&mut src);
                        *self.reg_mut(insn.src) = src;
                    }
                    let mut d = src;
                    if !no_sext {
                        d.id = 0;
                    }
                    d.b.coerce_subreg_to_size_sx(insn.off as u32 / 8);
                    d
                }
            } else {
                self.unknown_scalar()
            };
            d.b.zext_32_to_64();
            d.b.sync();
            *self.reg_mut(insn.dst) = d;
        }
        Ok(())
    }

    /// Scalar ALU and pointer arithmetic (`adjust_reg_min_max_vals`).
    fn adjust_reg_min_max_vals(&mut self, insn: &Insn) -> R<()> {
        let op = insn.op();
        let alu32 = insn.class() != class::ALU64;
        let dst = *self.reg(insn.dst);
        let src = if insn.src_is_reg() {
            *self.reg(insn.src)
        } else {
            Reg::known(i64::from(insn.imm) as u64, false)
        };
        if insn.src_is_reg() {
            if src.ty != RegType::Scalar {
                if dst.ty != RegType::Scalar {
                    if op == alu::SUB && self.allow_ptr_leaks() {
                        *self.reg_mut(insn.dst) = self.unknown_scalar();
                        return Ok(());
                    }
                    return Err(self.err(
                        Rule::PointerArithmetic,
                        EACCES,
                        format!("R{} pointer {} pointer prohibited", insn.dst, alu::name(op)),
                    ));
                }
                self.mark_chain_precision(insn.dst)?;
                return self.adjust_ptr_min_max_vals(insn, &src, &dst, false);
            } else if dst.ty != RegType::Scalar {
                self.mark_chain_precision(insn.src)?;
                return self.adjust_ptr_min_max_vals(insn, &dst, &src, true);
            } else if dst.precise {
                self.mark_chain_precision(insn.src)?;
            }
        } else if dst.ty != RegType::Scalar {
            return self.adjust_ptr_min_max_vals(insn, &dst, &src, true);
        }
        // Two scalars.
        let dst_umax = dst.b.umax;
        let mut d = dst;
        if !scalar_alu::is_trackable(op, !alu32, &src.b) {
            d = self.unknown_scalar();
        } else {
            if matches!(op, alu::ADD | alu::SUB) {
                self.sanitize_val_alu(insn)?;
            }
            if matches!(op, alu::AND | alu::OR) && src.b.var_off.is_const() {
                self.maybe_fork_scalars(insn, &mut d)?;
            }
            scalar_alu::apply(op, !alu32, &mut d.b, &src.b);
        }
        // Remember "r1 = r2 + const" so a later bound on r2 also bounds r1.
        let src_const = src.is_const(alu32);
        let same_reg = insn.src_is_reg() && insn.src == insn.dst;
        if matches!(op, alu::ADD | alu::SUB) && d.id != 0 && src_const && !same_reg {
            let val = src.b.const_value(alu32);
            let mut clear = false;
            if !alu32 && ((val as i64) < i64::from(i32::MIN) || (val as i64) > i64::from(i32::MAX))
            {
                clear = true;
            }
            if alu32 && dst_umax > u64::from(u32::MAX) {
                clear = true;
            }
            let mut off = val as i32;
            if !clear && op == alu::SUB {
                if off == i32::MIN {
                    clear = true;
                } else {
                    off = -off;
                }
            }
            if clear || d.id & ADD_CONST != 0 {
                d.off = 0;
                d.id = 0;
            } else {
                d.id |= if alu32 { ADD_CONST32 } else { ADD_CONST64 };
                d.off = off;
            }
        } else {
            d.id = 0;
        }
        *self.reg_mut(insn.dst) = d;
        Ok(())
    }

    /// `maybe_fork_scalars`: `x & K` / `x | K` where x is in `[-1, 0]` forks into the
    /// two values, so each is tracked exactly.
    fn maybe_fork_scalars(&mut self, insn: &Insn, d: &mut Reg) -> R<()> {
        let alu32 = if d.b.smin == -1 && d.b.smax == 0 {
            false
        } else if d.b.s32_min == -1 && d.b.s32_max == 0 {
            true
        } else {
            return Ok(());
        };
        let idx = self.insn_idx;
        let dst = insn.dst as usize;
        let branch = self.push_branch(idx, idx as i64)?;
        let r = &mut branch.cur_mut().regs[dst];
        if alu32 {
            r.b.set_known32(0);
            d.b.set_known32(u32::MAX);
        } else {
            r.set_known(0);
            d.set_known(u64::MAX);
        }
        Ok(())
    }

    /// `can_skip_alu_sanitation`.
    fn can_skip_alu_sanitation(&self, insn: &Insn) -> bool {
        self.opts.privilege.bypass_spec_v1() || !insn.src_is_reg() || self.aux[self.insn_idx].nospec
    }

    fn sanitize_val_alu(&mut self, insn: &Insn) -> R<()> {
        if self.can_skip_alu_sanitation(insn) {
            return Ok(());
        }
        self.update_alu_sanitation_state(ALU_NON_POINTER, 0)
            .map_err(|r| self.sanitize_err(insn, r))
    }

    fn update_alu_sanitation_state(&mut self, state: u32, limit: u32) -> Result<(), Reason> {
        let aux = &mut self.aux[self.insn_idx];
        if aux.alu_state != 0 && (aux.alu_state != state || aux.alu_limit != limit) {
            return Err(Reason::Paths);
        }
        aux.alu_state = state;
        aux.alu_limit = limit;
        Ok(())
    }

    /// `sanitize_err`. The kernel names the offset register as `src` and the pointer as
    /// `dst` whichever holds which: for `scalar += pointer` (`r4 = r5; r4 += r0`, r0 a
    /// packet pointer) its log says "R4 has pointer with unsupported alu operation" and,
    /// for a scalar of mixed signs in r4, "R0 has unknown scalar with mixed signed
    /// bounds" (kernel 6.18).
    fn sanitize_err(&self, insn: &Insn, reason: Reason) -> VerifierError {
        const TAIL: &str = "pointer arithmetic with it prohibited for !root";
        let op = if insn.op() == alu::ADD { "add" } else { "sub" };
        let (dst, src) = (insn.dst, insn.src);
        let msg = match reason {
            Reason::Bounds => {
                format!("R{src} has unknown scalar with mixed signed bounds, {TAIL}")
            }
            Reason::Type => format!("R{dst} has pointer with unsupported alu operation, {TAIL}"),
            Reason::Paths => {
                format!("R{dst} tried to {op} from different maps, paths or scalars, {TAIL}")
            }
            Reason::Limit => format!("R{dst} tried to {op} beyond pointer bounds, {TAIL}"),
            Reason::Stack => {
                format!("R{dst} could not be pushed for speculative verification, {TAIL}")
            }
        };
        self.err(Rule::PointerArithmetic, EACCES, msg)
    }

    /// `retrieve_ptr_limit`: how far the pointer may move for Spectre v1 masking.
    fn retrieve_ptr_limit(&self, ptr: &Reg, mask_to_left: bool) -> Result<u32, Reason> {
        let (max, limit) = match ptr.ty {
            RegType::Stack => (
                MAX_STACK as u32 + u32::from(mask_to_left),
                (-(ptr.b.var_off.value as i64 + i64::from(ptr.off))) as u32,
            ),
            RegType::MapValue => {
                let vs = self.maps[ptr.map()].value_size;
                let base = if mask_to_left {
                    ptr.b.smin as u64
                } else {
                    ptr.b.umax
                };
                (vs, (base as u32).wrapping_add(ptr.off as u32))
            }
            _ => return Err(Reason::Type),
        };
        if limit >= max {
            return Err(Reason::Limit);
        }
        Ok(limit)
    }

    /// `sanitize_ptr_alu` before (`commit`: after) the arithmetic.
    fn sanitize_ptr_alu(
        &mut self,
        insn: &Insn,
        ptr: &Reg,
        off: &Reg,
        ptr_is_dst: bool,
        info: &mut (u32, u32, bool),
        commit: bool,
    ) -> Result<(), Reason> {
        if self.can_skip_alu_sanitation(insn) {
            return Ok(());
        }
        let off_is_imm = off.b.var_off.is_const();
        if self.cur.speculative {
            return self.sanitize_sim(ptr, ptr_is_dst, commit || off_is_imm, insn);
        }
        let off_is_neg = off.b.smin < 0;
        let op = insn.op();
        if !commit {
            if !off_is_imm && (off.b.smin < 0) != (off.b.smax < 0) {
                return Err(Reason::Bounds);
            }
            info.2 = (op == alu::ADD && off_is_neg) || (op == alu::SUB && !off_is_neg);
        }
        let limit = self.retrieve_ptr_limit(ptr, info.2)?;
        if commit {
            let state = info.0;
            let limit = info.1.abs_diff(limit);
            self.update_alu_sanitation_state(state, limit)?;
        } else {
            let mut state = if off_is_neg { ALU_NEG_VALUE } else { 0 };
            if off_is_imm {
                state |= ALU_IMMEDIATE;
            }
            state |= if ptr_is_dst {
                ALU_SANITIZE_SRC
            } else {
                ALU_SANITIZE_DST
            };
            if !off_is_imm {
                self.explore_alu_limits = true;
            }
            // The kernel keeps this in a scratch aux until the commit.
            info.0 = state;
            info.1 = limit;
        }
        self.sanitize_sim(ptr, ptr_is_dst, commit || off_is_imm, insn)
    }

    /// The speculative path of a pointer ALU with a variable offset: the CPU may use the
    /// pointer before the masking, so it is explored with the unmodified pointer
    /// (`sanitize_ptr_alu`'s `do_sim`).
    fn sanitize_sim(
        &mut self,
        ptr: &Reg,
        ptr_is_dst: bool,
        skip: bool,
        insn: &Insn,
    ) -> Result<(), Reason> {
        if skip {
            return Ok(());
        }
        let idx = self.insn_idx;
        let dst = insn.dst as usize;
        let saved = self.cur.regs()[dst];
        if !ptr_is_dst {
            self.cur.regs_mut()[dst] = *ptr;
        }
        let pushed = self.push_branch_spec(idx + 1, idx as i64, true).is_ok();
        if !ptr_is_dst {
            self.cur.regs_mut()[dst] = saved;
        }
        if pushed {
            Ok(())
        } else {
            Err(Reason::Stack)
        }
    }

    fn check_reg_sane_offset(&self, reg: &Reg, ty: (RegType, u8)) -> R<()> {
        let name = reg_type_str(ty.0, ty.1);
        let known = reg.b.var_off.is_const();
        let val = reg.b.var_off.value as i64;
        let bad = |m: String| self.err(Rule::PointerArithmetic, EINVAL, m);
        if known && (val >= MAX_VAR_OFF || val <= -MAX_VAR_OFF) {
            return Err(bad(format!(
                "math between {name} pointer and {val} is not allowed"
            )));
        }
        if i64::from(reg.off) >= MAX_VAR_OFF || i64::from(reg.off) <= -MAX_VAR_OFF {
            return Err(bad(format!(
                "{name} pointer offset {} is not allowed",
                reg.off
            )));
        }
        if reg.b.smin == i64::MIN {
            return Err(bad(format!(
                "math between {name} pointer and register with unbounded min value is not allowed"
            )));
        }
        if reg.b.smin >= MAX_VAR_OFF || reg.b.smin <= -MAX_VAR_OFF {
            return Err(bad(format!(
                "value {} makes {name} pointer be out of bounds",
                reg.b.smin
            )));
        }
        Ok(())
    }

    /// Pointer arithmetic (`adjust_ptr_min_max_vals`): `ptr` is the pointer operand,
    /// `off` the scalar; `ptr_is_dst` when the pointer is the destination register.
    fn adjust_ptr_min_max_vals(
        &mut self,
        insn: &Insn,
        ptr: &Reg,
        off: &Reg,
        ptr_is_dst: bool,
    ) -> R<()> {
        let op = insn.op();
        let dstno = insn.dst;
        let known = off.b.var_off.is_const();
        let (smin_val, smax_val, umin_val, umax_val) =
            (off.b.smin, off.b.smax, off.b.umin, off.b.umax);
        if (known && (smin_val != smax_val || umin_val != umax_val))
            || smin_val > smax_val
            || umin_val > umax_val
        {
            *self.reg_mut(dstno) = self.unknown_scalar();
            return Ok(());
        }
        if insn.class() != class::ALU64 {
            if op == alu::SUB && self.allow_ptr_leaks() {
                *self.reg_mut(dstno) = self.unknown_scalar();
                return Ok(());
            }
            return Err(self.err(
                Rule::PointerArithmetic,
                EACCES,
                format!("R{dstno} 32-bit pointer arithmetic prohibited"),
            ));
        }
        let pname = reg_type_str(ptr.ty, ptr.flags);
        if ptr.maybe_null() {
            return Err(self.err(
                Rule::PointerArithmetic,
                EACCES,
                format!("R{dstno} pointer arithmetic on {pname} prohibited, null-check it first"),
            ));
        }
        let allowed = match ptr.ty {
            RegType::Ctx
            | RegType::MapValue
            | RegType::MapKey
            | RegType::Stack
            | RegType::PacketMeta
            | RegType::Packet
            | RegType::BtfId
            | RegType::Mem
            | RegType::Func => true,
            RegType::ConstPtrToMap => known && smin_val == 0 && op == alu::ADD,
            _ => false,
        };
        if !allowed {
            return Err(self.err(
                Rule::PointerArithmetic,
                EACCES,
                format!("R{dstno} pointer arithmetic on {pname} prohibited"),
            ));
        }
        let mut d = *self.reg(dstno);
        d.ty = ptr.ty;
        d.flags = ptr.flags;
        d.id = ptr.id;
        self.check_reg_sane_offset(off, (ptr.ty, ptr.flags))?;
        self.check_reg_sane_offset(ptr, (ptr.ty, ptr.flags))?;
        d.b.set_unbounded32();
        // The kernel edits the destination in place before the Spectre v1 checks, which
        // may queue a speculative path from this state.
        *self.reg_mut(dstno) = d;
        let sanitize = matches!(op, alu::ADD | alu::SUB);
        let mut info = (0u32, 0u32, false);
        if sanitize {
            self.sanitize_ptr_alu(insn, ptr, off, ptr_is_dst, &mut info, false)
                .map_err(|r| self.sanitize_err(insn, r))?;
        }
        let (smin_ptr, smax_ptr, umin_ptr, umax_ptr) =
            (ptr.b.smin, ptr.b.smax, ptr.b.umin, ptr.b.umax);
        match op {
            alu::ADD => {
                let fixed = i64::from(ptr.off) + smin_val;
                if known && fixed == i64::from(fixed as i32) {
                    d.b.smin = smin_ptr;
                    d.b.smax = smax_ptr;
                    d.b.umin = umin_ptr;
                    d.b.umax = umax_ptr;
                    d.b.var_off = ptr.b.var_off;
                    d.off = fixed as i32;
                    d.aux = ptr.aux;
                } else {
                    match (
                        smin_ptr.checked_add(smin_val),
                        smax_ptr.checked_add(smax_val),
                    ) {
                        (Some(a), Some(b)) => {
                            d.b.smin = a;
                            d.b.smax = b;
                        }
                        _ => {
                            d.b.smin = i64::MIN;
                            d.b.smax = i64::MAX;
                        }
                    }
                    match (
                        umin_ptr.checked_add(umin_val),
                        umax_ptr.checked_add(umax_val),
                    ) {
                        (Some(a), Some(b)) => {
                            d.b.umin = a;
                            d.b.umax = b;
                        }
                        _ => {
                            d.b.umin = 0;
                            d.b.umax = u64::MAX;
                        }
                    }
                    d.b.var_off = ptr.b.var_off + off.b.var_off;
                    d.off = ptr.off;
                    d.aux = ptr.aux;
                    if ptr.is_pkt_pointer() {
                        d.id = self.new_id();
                        d.aux = 0;
                    }
                }
            }
            alu::SUB => {
                if !ptr_is_dst {
                    return Err(self.err(
                        Rule::PointerArithmetic,
                        EACCES,
                        format!("R{dstno} tried to subtract pointer from scalar"),
                    ));
                }
                if ptr.ty == RegType::Stack {
                    return Err(self.err(
                        Rule::PointerArithmetic,
                        EACCES,
                        format!("R{dstno} subtraction from stack pointer prohibited"),
                    ));
                }
                let fixed = i64::from(ptr.off) - smin_val;
                if known && fixed == i64::from(fixed as i32) {
                    d.b.smin = smin_ptr;
                    d.b.smax = smax_ptr;
                    d.b.umin = umin_ptr;
                    d.b.umax = umax_ptr;
                    d.b.var_off = ptr.b.var_off;
                    d.id = ptr.id;
                    d.off = fixed as i32;
                    d.aux = ptr.aux;
                } else {
                    match (
                        smin_ptr.checked_sub(smax_val),
                        smax_ptr.checked_sub(smin_val),
                    ) {
                        (Some(a), Some(b)) => {
                            d.b.smin = a;
                            d.b.smax = b;
                        }
                        _ => {
                            d.b.smin = i64::MIN;
                            d.b.smax = i64::MAX;
                        }
                    }
                    if umin_ptr < umax_val {
                        d.b.umin = 0;
                        d.b.umax = u64::MAX;
                    } else {
                        d.b.umin = umin_ptr - umax_val;
                        d.b.umax = umax_ptr - umin_val;
                    }
                    d.b.var_off = ptr.b.var_off - off.b.var_off;
                    d.off = ptr.off;
                    d.aux = ptr.aux;
                    if ptr.is_pkt_pointer() {
                        d.id = self.new_id();
                        if smin_val < 0 {
                            d.aux = 0;
                        }
                    }
                }
            }
            alu::AND | alu::OR | alu::XOR => {
                return Err(self.err(
                    Rule::PointerArithmetic,
                    EACCES,
                    format!(
                        "R{dstno} bitwise operator {} on pointer prohibited",
                        alu::name(op)
                    ),
                ));
            }
            _ => {
                return Err(self.err(
                    Rule::PointerArithmetic,
                    EACCES,
                    format!(
                        "R{dstno} pointer arithmetic with {} operator prohibited",
                        alu::name(op)
                    ),
                ));
            }
        }
        // A packet pointer compared at or beyond `data_end` (`AT_PKT_END`,
        // `BEYOND_PKT_END`) is no longer known to be there once moved, by any amount:
        // its range becomes 0, so a later comparison with `data_end` is walked both ways
        // (kernel 6.18; keeping the mark would decide `if (p - 30 >= data_end)` wrongly).
        if ptr.is_pkt_pointer() && ptr.range() < 0 {
            d.set_range(0);
        }
        self.check_reg_sane_offset(&d, (ptr.ty, ptr.flags))?;
        d.b.sync();
        *self.reg_mut(dstno) = d;
        self.sanitize_check_bounds(insn, &d)?;
        if sanitize {
            self.sanitize_ptr_alu(insn, &d, off, true, &mut info, true)
                .map_err(|r| self.sanitize_err(insn, r))?;
        }
        Ok(())
    }

    /// `sanitize_check_bounds`: without `CAP_PERFMON`, a stack or map value pointer may
    /// not leave its object, even before it is dereferenced.
    fn sanitize_check_bounds(&mut self, insn: &Insn, d: &Reg) -> R<()> {
        if self.opts.privilege.bypass_spec_v1() {
            return Ok(());
        }
        let dst = insn.dst;
        match d.ty {
            RegType::Stack => {
                let off = i64::from(d.off) + d.b.var_off.value as i64;
                if !d.b.var_off.is_const() {
                    return Err(self.err(
                        Rule::PointerArithmetic,
                        EACCES,
                        format!(
                            "R{dst} variable stack access prohibited for !root, var_off={} off={off}",
                            d.b.var_off
                        ),
                    ));
                }
                if !(-MAX_STACK..0).contains(&off) {
                    return Err(self.err(
                        Rule::PointerArithmetic,
                        EACCES,
                        format!(
                            "R{dst} stack pointer arithmetic goes out of range, prohibited for !root; off={off}"
                        ),
                    ));
                }
            }
            RegType::MapValue => {
                if let Err(mut e) = self.check_map_access(dst, i64::from(d.off), 1, false) {
                    e.message.push_str(&format!(
                        "\nR{dst} pointer arithmetic of map value goes out of range, prohibited for !root"
                    ));
                    return Err(e);
                }
            }
            _ => {}
        }
        Ok(())
    }
}
