//! Stack accesses: bounds and growth of a frame's stack, spills and fills of registers,
//! reads of uninitialised bytes, and variable-offset accesses
//! (`check_stack_{read,write}_{fixed,var}_off`, `check_stack_range_initialized`).

use crate::ctx::Access;
use crate::error::{Rule, VerifierError, EACCES, EINVAL};
use crate::insn::{class, mode};
use crate::reg::{Reg, RegType};
use crate::stack::{slot_of, SlotType, MAX_STACK, SLOT};
use crate::state::hist;
use crate::verifier::Verifier;

type R<T> = Result<T, VerifierError>;

/// Whether a register of this type may be spilled whole (`is_spillable_regtype`).
fn is_spillable(t: RegType) -> bool {
    !matches!(t, RegType::Scalar | RegType::NotInit)
}

impl Verifier<'_> {
    /// The frame a stack pointer points into.
    fn frame_of(&self, regno: u8) -> usize {
        self.reg(regno).frameno as usize
    }

    /// Grows the frame's tracked stack and its subprogram's stack depth
    /// (`grow_stack_state`).
    fn grow_stack(&mut self, frame: usize, size: i64) {
        let size = (size.max(0) as usize).div_ceil(SLOT) * SLOT;
        let f = &mut self.cur.frames[frame];
        if f.allocated_stack() >= size {
            return;
        }
        f.grow_stack(size);
        let sp = f.subprogno;
        if self.subprogs[sp].stack_depth < size {
            self.subprogs[sp].stack_depth = size;
        }
    }

    /// `check_stack_access_within_bounds`.
    pub(crate) fn check_stack_access_within_bounds(
        &mut self,
        regno: u8,
        off: i64,
        size: i64,
        t: Access,
    ) -> R<()> {
        let reg = *self.reg(regno);
        let frame = self.frame_of(regno);
        let what = if t == Access::Read {
            " read from"
        } else {
            " write to"
        };
        let (min_off, max_off) = if reg.b.var_off.is_const() {
            let m = reg.b.var_off.value as i64 + off;
            (m, m + size)
        } else {
            if reg.b.smax >= crate::check_mem::MAX_VAR_OFF
                || reg.b.smin <= -crate::check_mem::MAX_VAR_OFF
            {
                return Err(self.err(
                    Rule::StackAccess,
                    EACCES,
                    format!("invalid unbounded variable-offset{what} stack R{regno}"),
                ));
            }
            (reg.b.smin + off, reg.b.smax + off + size)
        };
        let min_valid = if t == Access::Write || self.opts.privilege.allow_uninit_stack() {
            -MAX_STACK
        } else {
            -(self.cur.frames[frame].allocated_stack() as i64)
        };
        let bad = min_off < min_valid || min_off > -1 || max_off > 0 || size < 0;
        if bad {
            let errno = if min_off < min_valid || min_off > -1 {
                EACCES
            } else {
                EINVAL
            };
            let msg = if reg.b.var_off.is_const() {
                format!("invalid{what} stack R{regno} off={off} size={size}")
            } else {
                format!(
                    "invalid variable-offset{what} stack R{regno} var_off={} off={off} size={size}",
                    reg.b.var_off
                )
            };
            return Err(self.err(Rule::StackAccess, errno, msg));
        }
        self.grow_stack(frame, -min_off);
        Ok(())
    }

    /// `check_stack_read`.
    pub(crate) fn check_stack_read(
        &mut self,
        regno: u8,
        off: i64,
        size: i64,
        dst: Option<u8>,
    ) -> R<()> {
        let reg = *self.reg(regno);
        let var = !reg.b.var_off.is_const();
        if dst.is_none() && var {
            return Err(self.err(
                Rule::StackAccess,
                EACCES,
                format!(
                    "variable offset stack pointer cannot be passed into helper function; var_off={} off={off} size={size}",
                    reg.b.var_off
                ),
            ));
        }
        if !var {
            let off = off + reg.b.var_off.value as i64;
            return self.check_stack_read_fixed_off(self.frame_of(regno), off, size, dst);
        }
        // A variable-offset read: every byte in range must be initialised.
        self.check_stack_range_initialized(regno, off, size, false, Access::Read, false)?;
        let min_off = reg.b.smin + off;
        let max_off = reg.b.smax + off;
        if let Some(d) = dst {
            self.mark_reg_stack_read(self.frame_of(regno), min_off, max_off + size, d);
        }
        Ok(())
    }

    /// Loads from `[min_off, max_off)`: a known zero if every byte is zero, else an
    /// unknown scalar (`mark_reg_stack_read`).
    fn mark_reg_stack_read(&mut self, frame: usize, min_off: i64, max_off: i64, dst: u8) {
        let f = &self.cur.frames[frame];
        let all_zero = (min_off..max_off).all(|i| {
            let (spi, b) = slot_of(i);
            f.stack
                .get(spi)
                .is_some_and(|s| s.types[b] == SlotType::Zero)
        });
        let r = if all_zero {
            Reg::known(0, false)
        } else {
            self.unknown_scalar()
        };
        *self.reg_mut(dst) = r;
    }

    fn check_stack_read_fixed_off(
        &mut self,
        frame: usize,
        off: i64,
        size: i64,
        dst: Option<u8>,
    ) -> R<()> {
        let (spi, _) = slot_of(off);
        let slot_idx = (-off - 1) as usize;
        let uninit_ok = self.opts.privilege.allow_uninit_stack();
        let st = self.cur.frames[frame].stack[spi];
        let mut flags = hist::stack_access(frame as u8, spi);
        if st.is_spilled() {
            let spill_size = 1 + st.types[..SLOT - 1]
                .iter()
                .rev()
                .take_while(|&&t| t == SlotType::Spill)
                .count() as i64;
            if size != SLOT as i64 || spill_size != SLOT as i64 {
                if st.spilled.ty != RegType::Scalar {
                    return Err(self.err(
                        Rule::StackAccess,
                        EACCES,
                        "invalid size of register fill",
                    ));
                }
                let Some(d) = dst else {
                    return Ok(());
                };
                if size <= spill_size && off % SLOT as i64 == 0 {
                    let mut r = st.spilled;
                    if 64 - r.b.umax.leading_zeros() > (size * 8) as u32 {
                        r.id = 0;
                    }
                    *self.reg_mut(d) = r;
                } else {
                    let mut spill = 0;
                    let mut zero = 0;
                    for i in 0..size {
                        let t = st.types[(slot_idx - i as usize) % SLOT];
                        match t {
                            SlotType::Spill => spill += 1,
                            SlotType::Misc => {}
                            SlotType::Zero => zero += 1,
                            SlotType::Invalid if uninit_ok => {}
                            SlotType::Invalid | SlotType::Dynptr => {
                                return Err(self.err(
                                    Rule::StackAccess,
                                    EACCES,
                                    format!("invalid read from stack off {off}+{i} size {size}"),
                                ))
                            }
                        }
                    }
                    let r = if spill == size && st.spilled.b.var_off.equals_const(0) {
                        Reg::known(0, false)
                    } else if zero == size {
                        flags = 0;
                        Reg::known(0, false)
                    } else {
                        flags = 0;
                        self.unknown_scalar()
                    };
                    *self.reg_mut(d) = r;
                }
            } else if let Some(d) = dst {
                *self.reg_mut(d) = st.spilled;
            } else if st.spilled.is_pointer_value(self.allow_ptr_leaks()) {
                return Err(self.err(
                    Rule::PointerLeak,
                    EACCES,
                    format!("leaking pointer from stack off {off}"),
                ));
            }
        } else {
            for i in 0..size {
                let t = st.types[(slot_idx - i as usize) % SLOT];
                let ok = matches!(t, SlotType::Misc | SlotType::Zero)
                    || (t == SlotType::Invalid && uninit_ok);
                if !ok {
                    return Err(self.err(
                        Rule::StackAccess,
                        EACCES,
                        format!("invalid read from stack off {off}+{i} size {size}"),
                    ));
                }
            }
            if let Some(d) = dst {
                self.mark_reg_stack_read(frame, off, off + size, d);
            }
            flags = 0;
        }
        if flags != 0 {
            self.push_jmp_history(flags, 0);
        }
        Ok(())
    }

    /// `check_stack_write`.
    pub(crate) fn check_stack_write(
        &mut self,
        regno: u8,
        off: i64,
        size: i64,
        value: Option<u8>,
    ) -> R<()> {
        let reg = *self.reg(regno);
        let frame = self.frame_of(regno);
        if reg.b.var_off.is_const() {
            self.check_stack_write_fixed_off(frame, off + reg.b.var_off.value as i64, size, value)
        } else {
            self.check_stack_write_var_off(frame, regno, off, size, value)
        }
    }

    fn check_stack_write_fixed_off(
        &mut self,
        frame: usize,
        off: i64,
        size: i64,
        value: Option<u8>,
    ) -> R<()> {
        let (spi, _) = slot_of(off);
        let slot_idx = (-off - 1) as usize;
        let insn = self.insns[self.insn_idx];
        let st = self.cur.frames[frame].stack[spi];
        if !self.allow_ptr_leaks()
            && st.is_spilled()
            && !st.is_spilled_scalar()
            && size != SLOT as i64
        {
            return Err(self.err(
                Rule::StackAccess,
                EACCES,
                "attempt to corrupt spilled pointer on stack",
            ));
        }
        let value_reg = value.map(|v| *self.reg(v));
        if !self.opts.privilege.bypass_spec_v4() {
            // Spectre v4: a spill of a pointer, or a store over bytes that are not plain
            // data, gets a barrier after it, so a speculative path ends there
            // (`nospec_result`). The kernel looks at the slot's first `size` byte types,
            // whichever bytes the store covers.
            let sanitize = value_reg.is_some_and(|r| is_spillable(r.ty))
                || st.types[..size as usize]
                    .iter()
                    .any(|&t| t != SlotType::Misc && t != SlotType::Zero);
            if sanitize {
                self.aux[self.insn_idx].nospec_result = true;
            }
        }
        self.destroy_if_dynptr_stack_slot(frame, spi)?;
        let aligned = off % SLOT as i64 == 0;
        let is_st_mem = insn.class() == class::ST && insn.mode() == mode::MEM;
        let mut flags = hist::stack_access(frame as u8, spi);
        let cur_frame = self.cur.curframe();
        match value_reg {
            Some(mut r) if aligned && r.ty == RegType::Scalar => {
                let fits = 64 - r.b.umax.leading_zeros() <= (8 * size) as u32;
                if fits {
                    self.assign_scalar_id_before_mov(&mut r);
                    if let Some(v) = value {
                        *self.reg_mut(v) = r;
                    }
                }
                let mut saved = r;
                if !fits {
                    saved.id = 0;
                }
                self.cur.frames[frame].stack[spi].save(&saved, size as usize);
            }
            None if aligned && is_st_mem => {
                let r = Reg::known(i64::from(insn.imm) as u64, false);
                self.cur.frames[frame].stack[spi].save(&r, size as usize);
            }
            Some(r) if is_spillable(r.ty) => {
                if size != SLOT as i64 {
                    return Err(self.err(
                        Rule::StackAccess,
                        EACCES,
                        "invalid size of register spill",
                    ));
                }
                if frame != cur_frame && r.ty == RegType::Stack {
                    return Err(self.err(
                        Rule::StackAccess,
                        EINVAL,
                        "cannot spill pointers to stack into stack frame of the caller",
                    ));
                }
                self.cur.frames[frame].stack[spi].save(&r, size as usize);
            }
            _ => {
                let zero = value_reg.is_some_and(|r| r.is_null())
                    || (value_reg.is_none() && is_st_mem && insn.imm == 0);
                if zero {
                    if let Some(v) = value {
                        self.mark_chain_precision(v)?;
                    }
                }
                let ty = if zero { SlotType::Zero } else { SlotType::Misc };
                let s = &mut self.cur.frames[frame].stack[spi];
                s.scrub();
                for i in 0..size as usize {
                    s.types[(slot_idx - i) % SLOT] = ty;
                }
                flags = 0;
            }
        }
        if flags != 0 {
            self.push_jmp_history(flags, 0);
        }
        Ok(())
    }

    fn check_stack_write_var_off(
        &mut self,
        frame: usize,
        regno: u8,
        off: i64,
        size: i64,
        value: Option<u8>,
    ) -> R<()> {
        let reg = *self.reg(regno);
        let insn = self.insns[self.insn_idx];
        let min_off = reg.b.smin + off;
        let max_off = reg.b.smax + off + size;
        let value_reg = value.map(|v| *self.reg(v));
        let is_st_mem = insn.class() == class::ST && insn.mode() == mode::MEM;
        let writing_zero = value_reg.is_some_and(|r| r.is_null())
            || (value_reg.is_none() && is_st_mem && insn.imm == 0);
        let mut zero_used = false;
        for i in min_off..max_off {
            self.destroy_if_dynptr_stack_slot(frame, slot_of(i).0)?;
        }
        for i in min_off..max_off {
            let (spi, b) = slot_of(i);
            let t = self.cur.frames[frame].stack[spi].types[b];
            if !self.allow_ptr_leaks() && t != SlotType::Misc && t != SlotType::Zero {
                return Err(self.err(
                    Rule::StackAccess,
                    EINVAL,
                    format!(
                        "spilled ptr in range of var-offset stack write; insn {}, ptr off: {i}",
                        self.insn_idx
                    ),
                ));
            }
            let s = &mut self.cur.frames[frame].stack[spi];
            if writing_zero
                && t == SlotType::Spill
                && s.is_spilled_scalar()
                && s.spilled.b.var_off.equals_const(0)
            {
                zero_used = true;
                continue;
            }
            s.spilled.ty = RegType::NotInit;
            let mut new_t = SlotType::Misc;
            if writing_zero && t == SlotType::Zero {
                new_t = SlotType::Zero;
                zero_used = true;
            }
            if t == SlotType::Invalid && !self.opts.privilege.allow_uninit_stack() {
                return Err(self.err(
                    Rule::StackAccess,
                    EINVAL,
                    format!(
                        "uninit stack in range of var-offset write prohibited for !root; insn {}, off: {i}",
                        self.insn_idx
                    ),
                ));
            }
            self.cur.frames[frame].stack[spi].types[b] = new_t;
        }
        if zero_used {
            if let Some(v) = value {
                self.mark_chain_precision(v)?;
            }
        }
        Ok(())
    }

    /// `check_stack_range_initialized`: a helper reads (or writes) `size` bytes of stack.
    pub(crate) fn check_stack_range_initialized(
        &mut self,
        regno: u8,
        off: i64,
        size: i64,
        zero_size_ok: bool,
        t: Access,
        raw_mode: bool,
    ) -> R<Option<(u8, i64)>> {
        if size == 0 && !zero_size_ok {
            return Err(self.err(Rule::HelperArgs, EACCES, "invalid zero-sized read"));
        }
        self.check_stack_access_within_bounds(regno, off, size, t)?;
        let reg = *self.reg(regno);
        let frame = self.frame_of(regno);
        let mut raw_mode = raw_mode;
        let (min_off, max_off) = if reg.b.var_off.is_const() {
            let m = reg.b.var_off.value as i64 + off;
            (m, m)
        } else {
            if !self.opts.privilege.bypass_spec_v1() {
                return Err(self.err(
                    Rule::StackAccess,
                    EACCES,
                    format!(
                        "R{regno} variable offset stack access prohibited for !root, var_off={}",
                        reg.b.var_off
                    ),
                ));
            }
            raw_mode = false;
            (reg.b.smin + off, reg.b.smax + off)
        };
        if raw_mode {
            self.check_no_dynptr_in(frame, min_off, max_off + size)?;
            // The helper fills the memory: checked byte by byte as writes after the call.
            return Ok(Some((regno, size)));
        }
        let uninit_ok = self.opts.privilege.allow_uninit_stack();
        let clobber = t == Access::Write;
        for i in min_off..max_off + size {
            let (spi, b) = slot_of(i);
            let f = &self.cur.frames[frame];
            if spi >= f.stack.len() {
                return Err(self.internal("allocated_stack too small"));
            }
            let s = f.stack[spi];
            let ty = s.types[b];
            if ty == SlotType::Misc {
                continue;
            }
            if ty == SlotType::Zero || (ty == SlotType::Invalid && uninit_ok) {
                if clobber {
                    self.cur.frames[frame].stack[spi].types[b] = SlotType::Misc;
                }
                continue;
            }
            // Only the bytes of the spill itself count as a spilled register: the bytes
            // above a 1..4-byte spill keep their own type (`STACK_INVALID` when never
            // written), so an 8-byte read over a 4-byte spill reads uninitialised stack.
            if ty == SlotType::Spill
                && s.is_spilled()
                && (s.spilled.ty == RegType::Scalar || self.allow_ptr_leaks())
            {
                if clobber {
                    let u = self.unknown_scalar();
                    let s = &mut self.cur.frames[frame].stack[spi];
                    s.spilled = u;
                    for t in s.types.iter_mut() {
                        if *t != SlotType::Invalid {
                            *t = SlotType::Misc;
                        }
                    }
                }
                continue;
            }
            let msg = if reg.b.var_off.is_const() {
                format!(
                    "invalid read from stack R{regno} off {min_off}+{} size {size}",
                    i - min_off
                )
            } else {
                format!(
                    "invalid read from stack R{regno} var_off {}+{} size {size}",
                    reg.b.var_off,
                    i - min_off
                )
            };
            return Err(self.err(Rule::StackAccess, EACCES, msg));
        }
        Ok(None)
    }

    /// Gives a scalar an id before it is copied, so the copies stay linked
    /// (`assign_scalar_id_before_mov`).
    pub(crate) fn assign_scalar_id_before_mov(&mut self, r: &mut Reg) {
        if r.ty != RegType::Scalar {
            return;
        }
        if r.id & crate::reg::ADD_CONST != 0 {
            r.id = 0;
            r.off = 0;
        }
        if r.id == 0 && !r.b.var_off.is_const() {
            r.id = self.new_id();
        }
    }
}
