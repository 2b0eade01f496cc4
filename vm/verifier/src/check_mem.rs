//! Loads and stores (`check_mem_access` and its per-memory checks): alignment, the
//! bounds of map values, packets, context fields and helper memory, and the pointer-type
//! consistency of each load/store instruction across paths.

use crate::ctx::{self, Access};
use crate::error::{Rule, VerifierError, EACCES, EINVAL, ENOTSUPP, EPERM};
use crate::insn::{atomic, mode, Insn};
use crate::log::reg_type_str;
use crate::reg::{Reg, RegType, MAYBE_NULL, PTR_UNTRUSTED};
use crate::verifier::Verifier;

/// Largest variable offset or size tracked (`BPF_MAX_VAR_OFF`).
pub const MAX_VAR_OFF: i64 = 1 << 29;

type R<T> = Result<T, VerifierError>;

impl Verifier<'_> {
    /// `check_ptr_alignment`: stack accesses must be aligned; others only with strict
    /// alignment (x86_64 has efficient unaligned access) or for atomics.
    fn check_ptr_alignment(&self, reg: &Reg, off: i64, size: i64, strict_once: bool) -> R<()> {
        if size == 1 {
            return Ok(());
        }
        let (desc, strict) = match reg.ty {
            RegType::Packet | RegType::PacketMeta => {
                if !strict_once {
                    return Ok(());
                }
                let v = reg.b.var_off.plus(crate::tnum::Tnum::constant(
                    (2 + i64::from(reg.off) + off) as u64,
                ));
                if !v.is_aligned(size as u64) {
                    return Err(self.err(
                        Rule::PacketAccess,
                        EACCES,
                        format!(
                            "misaligned packet access off 2+{}+{}+{} size {size}",
                            reg.b.var_off, reg.off, off
                        ),
                    ));
                }
                return Ok(());
            }
            RegType::MapKey => ("key ", strict_once),
            RegType::MapValue => ("value ", strict_once),
            RegType::Ctx => ("context ", strict_once),
            RegType::Stack => ("stack ", true),
            RegType::SockCommon => ("sock_common ", strict_once),
            RegType::Socket => ("sock ", strict_once),
            RegType::TcpSock => ("tcp_sock ", strict_once),
            RegType::XdpSock => ("xdp_sock ", strict_once),
            _ => ("", strict_once),
        };
        if !strict {
            return Ok(());
        }
        let v = reg.b.var_off.plus(crate::tnum::Tnum::constant(
            (i64::from(reg.off) + off) as u64,
        ));
        if !v.is_aligned(size as u64) {
            let rule = if reg.ty == RegType::Stack {
                Rule::StackAccess
            } else {
                Rule::InvalidDeref
            };
            return Err(self.err(
                rule,
                EACCES,
                format!(
                    "misaligned {desc}access off {}+{}+{off} size {size}",
                    reg.b.var_off, reg.off
                ),
            ));
        }
        Ok(())
    }

    /// `__check_mem_access`: `[off, off + size)` inside `mem_size`.
    pub(crate) fn check_mem_bounds(
        &self,
        regno: u8,
        off: i64,
        size: i64,
        mem_size: u32,
        zero_size_ok: bool,
    ) -> R<()> {
        let size_ok = size > 0 || (size == 0 && zero_size_ok);
        if off >= 0 && size_ok && off + size <= i64::from(mem_size) {
            return Ok(());
        }
        let reg = self.reg(regno);
        let (rule, msg) = match reg.ty {
            RegType::MapKey => (
                Rule::MapAccess,
                format!("invalid access to map key, key_size={mem_size} off={off} size={size}"),
            ),
            RegType::MapValue => (
                Rule::MapAccess,
                format!("invalid access to map value, value_size={mem_size} off={off} size={size}"),
            ),
            RegType::Packet | RegType::PacketMeta | RegType::PacketEnd => (
                Rule::PacketAccess,
                format!(
                    "invalid access to packet, off={off} size={size}, R{regno}(id={},off={off},r={})",
                    reg.id,
                    reg.range()
                ),
            ),
            _ => (
                Rule::MemAccess,
                format!("invalid access to memory, mem_size={mem_size} off={off} size={size}"),
            ),
        };
        Err(self.err(rule, EACCES, msg))
    }

    /// `check_mem_region_access`: the access at every offset the register may hold.
    pub(crate) fn check_mem_region_access(
        &self,
        regno: u8,
        off: i64,
        size: i64,
        mem_size: u32,
        zero_size_ok: bool,
    ) -> R<()> {
        let reg = *self.reg(regno);
        let rule = match reg.ty {
            RegType::MapValue | RegType::MapKey => Rule::MapAccess,
            _ => Rule::MemAccess,
        };
        let smin = reg.b.smin;
        if smin < 0
            && (smin == i64::MIN
                || off
                    .checked_add(smin)
                    .is_none_or(|s| s != i64::from(s as i32))
                || smin + off < 0)
        {
            return Err(self.err(
                rule,
                EACCES,
                format!(
                    "R{regno} min value is negative, either use unsigned index or do a if (index >=0) check."
                ),
            ));
        }
        if let Err(mut e) =
            self.check_mem_bounds(regno, smin.wrapping_add(off), size, mem_size, zero_size_ok)
        {
            e.message.push_str(&format!(
                "\nR{regno} min value is outside of the allowed memory range"
            ));
            return Err(e);
        }
        if reg.b.umax >= MAX_VAR_OFF as u64 {
            return Err(self.err(
                rule,
                EACCES,
                format!(
                    "R{regno} unbounded memory access, make sure to bounds check any such access"
                ),
            ));
        }
        if let Err(mut e) =
            self.check_mem_bounds(regno, reg.b.umax as i64 + off, size, mem_size, zero_size_ok)
        {
            e.message.push_str(&format!(
                "\nR{regno} max value is outside of the allowed memory range"
            ));
            return Err(e);
        }
        Ok(())
    }

    /// `check_map_access_type`: `BPF_F_RDONLY_PROG` / `BPF_F_WRONLY_PROG`.
    pub(crate) fn check_map_access_type(&self, regno: u8, off: i64, size: i64, t: Access) -> R<()> {
        let reg = self.reg(regno);
        let map = &self.maps[reg.map()];
        let at = reg.b.smin.wrapping_add(off);
        if t == Access::Write && !map.prog_can_write() {
            return Err(self.err(
                Rule::MapAccess,
                EACCES,
                format!(
                    "write into map forbidden, value_size={} off={at} size={size}",
                    map.value_size
                ),
            ));
        }
        if t == Access::Read && !map.prog_can_read() {
            return Err(self.err(
                Rule::MapAccess,
                EACCES,
                format!(
                    "read from map forbidden, value_size={} off={at} size={size}",
                    map.value_size
                ),
            ));
        }
        Ok(())
    }

    /// `check_map_access`: bounds, then no overlap with spin locks and timers.
    pub(crate) fn check_map_access(
        &self,
        regno: u8,
        off: i64,
        size: i64,
        zero_size_ok: bool,
    ) -> R<()> {
        let reg = *self.reg(regno);
        let map = &self.maps[reg.map()];
        self.check_mem_region_access(regno, off, size, map.value_size, zero_size_ok)?;
        for f in &map.fields {
            let p = i64::from(f.offset);
            if reg.b.smin + off < p + i64::from(f.size) && p < reg.b.umax as i64 + off + size {
                return Err(self.err(
                    Rule::MapAccess,
                    EACCES,
                    format!(
                        "{} cannot be accessed directly by load/store",
                        f.kind.name()
                    ),
                ));
            }
        }
        Ok(())
    }

    /// `may_access_direct_pkt_data` (helper accesses pass `pkt_access`).
    pub(crate) fn may_access_direct_pkt_data(
        &self,
        t: Access,
        helper_pkt_access: Option<bool>,
    ) -> bool {
        use crate::input::ProgType::*;
        match self.prog.prog_type {
            CgroupSkb if t == Access::Write => false,
            CgroupSkb | SchedCls | SchedAct | Xdp => helper_pkt_access.unwrap_or(true),
            _ => false,
        }
    }

    /// `check_packet_access`: inside the range proven by `data_end` comparisons.
    pub(crate) fn check_packet_access(
        &self,
        regno: u8,
        off: i64,
        size: i64,
        zero_size_ok: bool,
    ) -> R<()> {
        let reg = *self.reg(regno);
        if reg.b.smin < 0 {
            return Err(self.err(
                Rule::PacketAccess,
                EACCES,
                format!(
                    "R{regno} min value is negative, either use unsigned index or do a if (index >=0) check."
                ),
            ));
        }
        let res = if reg.range() < 0 {
            Err(self.err(Rule::PacketAccess, EINVAL, String::new()))
        } else {
            self.check_mem_bounds(regno, off, size, reg.range() as u32, zero_size_ok)
        };
        if let Err(mut e) = res {
            if !e.message.is_empty() {
                e.message.push('\n');
            }
            e.message
                .push_str(&format!("R{regno} offset is outside of the packet"));
            return Err(e);
        }
        Ok(())
    }

    /// `__check_ptr_off_reg`: a pointer that must be used unmodified (or at a fixed,
    /// non-negative offset when `fixed_off_ok`).
    pub(crate) fn check_ptr_off_reg(&self, regno: u8, fixed_off_ok: bool) -> R<()> {
        let reg = self.reg(regno);
        let name = reg_type_str(reg.ty, reg.flags);
        if reg.off < 0 {
            return Err(self.err(
                Rule::PointerArithmetic,
                EACCES,
                format!(
                    "negative offset {name} ptr R{regno} off={} disallowed",
                    reg.off
                ),
            ));
        }
        if !fixed_off_ok && reg.off != 0 {
            return Err(self.err(
                Rule::PointerArithmetic,
                EACCES,
                format!(
                    "dereference of modified {name} ptr R{regno} off={} disallowed",
                    reg.off
                ),
            ));
        }
        if !reg.b.var_off.is_const() || reg.b.var_off.value != 0 {
            return Err(self.err(
                Rule::PointerArithmetic,
                EACCES,
                format!(
                    "variable {name} access var_off={} disallowed",
                    reg.b.var_off
                ),
            ));
        }
        Ok(())
    }

    /// `check_mem_access`.
    #[allow(clippy::too_many_arguments)]
    pub(crate) fn check_mem_access(
        &mut self,
        regno: u8,
        off: i64,
        size: i64,
        t: Access,
        value_regno: Option<u8>,
        strict_once: bool,
        ldsx: bool,
    ) -> R<()> {
        let reg = *self.reg(regno);
        self.check_ptr_alignment(&reg, off, size, strict_once)?;
        let off = off + i64::from(reg.off);
        let leaks = |v: &Self, what: &str| -> R<()> {
            if t == Access::Write {
                if let Some(vr) = value_regno {
                    if v.is_pointer_value(vr) {
                        return Err(v.err(
                            Rule::PointerLeak,
                            EACCES,
                            format!("R{vr} leaks addr into {what}"),
                        ));
                    }
                }
            }
            Ok(())
        };
        let plain = reg.flags & MAYBE_NULL == 0;
        match reg.ty {
            RegType::MapKey if plain => {
                if t == Access::Write {
                    return Err(self.err(
                        Rule::MapAccess,
                        EACCES,
                        format!("write to change key R{regno} not allowed"),
                    ));
                }
                let ks = self.maps[reg.map()].key_size;
                self.check_mem_region_access(regno, off, size, ks, false)?;
                if let Some(vr) = value_regno {
                    *self.reg_mut(vr) = self.unknown_scalar();
                }
            }
            RegType::MapValue if plain => {
                leaks(self, "map")?;
                self.check_map_access_type(regno, off, size, t)?;
                self.check_map_access(regno, off, size, false)?;
                if t == Access::Read {
                    if let Some(vr) = value_regno {
                        let known = self.map_direct_read(&reg, off, size, ldsx);
                        *self.reg_mut(vr) = match known {
                            Some(v) => Reg::known(v, false),
                            None => self.unknown_scalar(),
                        };
                    }
                }
            }
            RegType::Mem => {
                if !plain {
                    return Err(self.err(
                        Rule::InvalidDeref,
                        EACCES,
                        format!(
                            "R{regno} invalid mem access '{}'",
                            reg_type_str(reg.ty, reg.flags)
                        ),
                    ));
                }
                if t == Access::Write && reg.rdonly() {
                    return Err(self.err(
                        Rule::MemAccess,
                        EACCES,
                        format!(
                            "R{regno} cannot write into {}",
                            reg_type_str(reg.ty, reg.flags)
                        ),
                    ));
                }
                leaks(self, "mem")?;
                // Read-only untrusted memory (a kernel struct's pointer to a non-struct) is
                // read with probe loads: no bounds.
                let rdonly_untrusted = reg.rdonly() && reg.flags & PTR_UNTRUSTED != 0;
                if !rdonly_untrusted {
                    self.check_mem_region_access(regno, off, size, reg.mem_size(), false)?;
                }
                if let Some(vr) = value_regno {
                    if t == Access::Read || reg.rdonly() {
                        *self.reg_mut(vr) = self.unknown_scalar();
                    }
                }
            }
            RegType::Ctx if plain => {
                leaks(self, "ctx")?;
                self.check_ptr_off_reg(regno, false)?;
                if let crate::input::ProgType::Tracing(c) = self.prog.prog_type {
                    if !c.known {
                        return Err(self.err(
                            Rule::Unsupported,
                            ENOTSUPP,
                            "a tracing program's arguments are typed by its attach target's BTF prototype, which was not given",
                        ));
                    }
                }
                let field = ctx::check(
                    self.prog.prog_type,
                    self.prog.expected_attach_type,
                    off,
                    size,
                    t,
                    ldsx,
                );
                let Some(field) = field else {
                    return Err(self.err(
                        Rule::CtxAccess,
                        EACCES,
                        format!("invalid bpf_context access off={off} size={size}"),
                    ));
                };
                self.max_ctx_offset = self.max_ctx_offset.max(off + size);
                if t == Access::Read {
                    if let Some(vr) = value_regno {
                        let r = if field.ty == RegType::Scalar {
                            self.unknown_scalar()
                        } else if field.ty == RegType::BtfId {
                            self.ctx_btf_ptr(off)
                        } else {
                            let mut p = Reg::pointer(field.ty);
                            p.flags = field.flags;
                            if field.flags & MAYBE_NULL != 0 {
                                p.id = self.new_id();
                            }
                            p
                        };
                        *self.reg_mut(vr) = r;
                    }
                }
            }
            RegType::Stack => {
                self.check_stack_access_within_bounds(regno, off, size, t)?;
                if t == Access::Read {
                    self.check_stack_read(regno, off, size, value_regno)?;
                } else {
                    self.check_stack_write(regno, off, size, value_regno)?;
                }
            }
            RegType::Packet | RegType::PacketMeta if plain => {
                if t == Access::Write && !self.may_access_direct_pkt_data(t, None) {
                    return Err(self.err(Rule::PacketAccess, EACCES, "cannot write into packet"));
                }
                leaks(self, "packet")?;
                self.check_packet_access(regno, off, size, false)?;
                if t == Access::Read {
                    if let Some(vr) = value_regno {
                        *self.reg_mut(vr) = self.unknown_scalar();
                    }
                }
            }
            _ if plain && reg.is_sk_pointer() => {
                self.check_sock_access(regno, off, size, t, value_regno)?;
            }
            RegType::ConstPtrToMap => {
                let map_type = self.maps[reg.aux as usize].map_type;
                let Some(tname) = crate::input::map_struct_name(map_type) else {
                    return Err(self.err(
                        Rule::MapAccess,
                        ENOTSUPP,
                        format!("map_ptr access not supported for map type {map_type}"),
                    ));
                };
                if !self.allow_ptr_leaks() {
                    return Err(self.err(
                        Rule::Privilege,
                        EPERM,
                        format!(
                            "'struct {tname}' access is allowed only to CAP_PERFMON and CAP_SYS_ADMIN"
                        ),
                    ));
                }
                if off < 0 {
                    return Err(self.err(
                        Rule::MapAccess,
                        EACCES,
                        format!("R{regno} is {tname} invalid negative access: off={off}"),
                    ));
                }
                if t != Access::Read {
                    return Err(self.err(
                        Rule::MapAccess,
                        EACCES,
                        format!("only read from {tname} is supported"),
                    ));
                }
                // Which fields may be read is the kernel's BTF of `struct {tname}`.
                return Err(self.err(
                    Rule::Unsupported,
                    ENOTSUPP,
                    format!("reading struct {tname} fields is not modelled by bpfvm's verifier"),
                ));
            }
            RegType::BtfId if plain => {
                // Placed in the kernel struct by its BTF (`btf_access.rs`); bpfvm runs such
                // loads as probe loads.
                self.check_ptr_to_btf_access(regno, off, size, t == Access::Write, value_regno)?;
            }
            _ => {
                return Err(self.err(
                    Rule::InvalidDeref,
                    EACCES,
                    format!(
                        "R{regno} invalid mem access '{}'",
                        reg_type_str(reg.ty, reg.flags)
                    ),
                ));
            }
        }
        if size < 8 && t == Access::Read {
            if let Some(vr) = value_regno {
                let r = self.reg_mut(vr);
                if r.ty == RegType::Scalar {
                    if ldsx {
                        r.b.coerce_to_size_sx(size as u32);
                    } else {
                        r.b.coerce_to_size(size as u32);
                    }
                }
            }
        }
        Ok(())
    }

    /// A load from a frozen read-only array is a constant (`bpf_map_direct_read`).
    fn map_direct_read(&self, reg: &Reg, off: i64, size: i64, ldsx: bool) -> Option<u64> {
        if !reg.b.var_off.is_const() {
            return None;
        }
        let map = &self.maps[reg.map()];
        if map.map_type != crate::input::map_type::ARRAY || map.max_entries != 1 {
            return None;
        }
        let bytes = map.frozen_value.as_ref()?;
        if map.prog_can_write() {
            return None;
        }
        let at = usize::try_from(off + reg.b.var_off.value as i64).ok()?;
        let b = bytes.get(at..at + size as usize)?;
        let mut v = [0u8; 8];
        v[..b.len()].copy_from_slice(b);
        let raw = u64::from_le_bytes(v);
        Some(match (size, ldsx) {
            (1, true) => raw as u8 as i8 as i64 as u64,
            (2, true) => raw as u16 as i16 as i64 as u64,
            (4, true) => raw as u32 as i32 as i64 as u64,
            _ => raw,
        })
    }

    /// `save_aux_ptr_type`: one load/store instruction must access the same kind of
    /// memory on every path (contexts and sockets are rewritten per type).
    pub(crate) fn save_aux_ptr_type(&mut self, ty: (RegType, u8)) -> R<()> {
        let mismatch_ok = |t: RegType| {
            !matches!(
                t,
                RegType::Ctx
                    | RegType::SockCommon
                    | RegType::Socket
                    | RegType::TcpSock
                    | RegType::XdpSock
                    | RegType::BtfId
            )
        };
        let aux = &mut self.aux[self.insn_idx];
        match aux.ptr_type {
            None => aux.ptr_type = Some(ty),
            Some(prev) => {
                // One path's trusted BTF pointer and another's untrusted one share a load
                // (stores through BTF pointers never get here): it becomes a probe load
                // for both.
                let btf_trust = prev.0 == RegType::BtfId && ty.0 == RegType::BtfId;
                if btf_trust && prev != ty {
                    aux.ptr_type = Some((RegType::BtfId, PTR_UNTRUSTED));
                } else if prev != ty && (!mismatch_ok(ty.0) || !mismatch_ok(prev.0)) {
                    return Err(self.err(
                        Rule::InvalidDeref,
                        EINVAL,
                        "same insn cannot be used with different pointers",
                    ));
                }
            }
        }
        Ok(())
    }

    /// `ldx` (`check_load_mem`).
    pub(crate) fn check_ldx(&mut self, insn: &Insn) -> R<()> {
        self.check_reg_src(insn.src)?;
        self.check_reg_dst(insn.dst)?;
        let src = *self.reg(insn.src);
        let ldsx = insn.mode() == mode::MEMSX;
        self.check_mem_access(
            insn.src,
            i64::from(insn.off),
            i64::from(insn.size()),
            Access::Read,
            Some(insn.dst),
            false,
            ldsx,
        )?;
        self.save_aux_ptr_type((src.ty, src.flags))?;
        self.reg_mut(insn.dst).b.sanitize();
        Ok(())
    }

    /// `stx` (`check_store_reg`).
    pub(crate) fn check_store_reg(&mut self, insn: &Insn) -> R<()> {
        self.check_reg_src(insn.src)?;
        self.check_reg_src(insn.dst)?;
        let dst = *self.reg(insn.dst);
        self.check_mem_access(
            insn.dst,
            i64::from(insn.off),
            i64::from(insn.size()),
            Access::Write,
            Some(insn.src),
            false,
            false,
        )?;
        self.save_aux_ptr_type((dst.ty, dst.flags))
    }

    /// `st` (store of an immediate).
    pub(crate) fn check_st(&mut self, insn: &Insn) -> R<()> {
        self.check_reg_src(insn.dst)?;
        let dst = *self.reg(insn.dst);
        self.check_mem_access(
            insn.dst,
            i64::from(insn.off),
            i64::from(insn.size()),
            Access::Write,
            None,
            false,
            false,
        )?;
        self.save_aux_ptr_type((dst.ty, dst.flags))
    }

    /// Atomic read-modify-write instructions (`check_atomic`).
    pub(crate) fn check_atomic(&mut self, insn: &Insn) -> R<()> {
        let imm = insn.imm;
        let rmw = matches!(imm, 0x00 | 0x01 | 0x50 | 0x51 | 0x40 | 0x41 | 0xa0 | 0xa1)
            || imm == atomic::XCHG
            || imm == atomic::CMPXCHG;
        if imm == atomic::LOAD_ACQ || imm == atomic::STORE_REL {
            return self.check_atomic_load_store(insn);
        }
        if !rmw {
            return Err(self.err(
                Rule::Encoding,
                EINVAL,
                format!("BPF_ATOMIC uses invalid atomic opcode {imm:02x}"),
            ));
        }
        if insn.size() != 4 && insn.size() != 8 {
            return Err(self.err(Rule::Encoding, EINVAL, "invalid atomic operand size"));
        }
        self.check_reg_src(insn.src)?;
        self.check_reg_src(insn.dst)?;
        if imm == atomic::CMPXCHG {
            self.check_reg_src(0)?;
            if self.is_pointer_value(0) {
                return Err(self.err(Rule::PointerLeak, EACCES, "R0 leaks addr into mem"));
            }
        }
        if self.is_pointer_value(insn.src) {
            return Err(self.err(
                Rule::PointerLeak,
                EACCES,
                format!("R{} leaks addr into mem", insn.src),
            ));
        }
        let dst = *self.reg(insn.dst);
        if matches!(
            dst.ty,
            RegType::Ctx
                | RegType::Packet
                | RegType::PacketMeta
                | RegType::SockCommon
                | RegType::Socket
                | RegType::TcpSock
                | RegType::XdpSock
        ) {
            return Err(self.err(
                Rule::InvalidDeref,
                EACCES,
                format!(
                    "BPF_ATOMIC stores into R{} {} is not allowed",
                    insn.dst,
                    reg_type_str(dst.ty, dst.flags)
                ),
            ));
        }
        let load_reg = if imm & atomic::FETCH != 0 {
            let r = if imm == atomic::CMPXCHG { 0 } else { insn.src };
            self.check_reg_dst_mark(r)?;
            Some(r)
        } else {
            None
        };
        let off = i64::from(insn.off);
        let size = i64::from(insn.size());
        self.check_mem_access(insn.dst, off, size, Access::Read, None, true, false)?;
        if load_reg.is_some() {
            self.check_mem_access(insn.dst, off, size, Access::Read, load_reg, true, false)?;
        }
        self.check_mem_access(insn.dst, off, size, Access::Write, None, true, false)
    }

    fn check_atomic_load_store(&mut self, insn: &Insn) -> R<()> {
        let is_load = insn.imm == atomic::LOAD_ACQ;
        if is_load {
            self.check_reg_src(insn.src)?;
            self.check_reg_dst(insn.dst)?;
            let src = *self.reg(insn.src);
            self.check_mem_access(
                insn.src,
                i64::from(insn.off),
                i64::from(insn.size()),
                Access::Read,
                Some(insn.dst),
                true,
                false,
            )?;
            self.save_aux_ptr_type((src.ty, src.flags))?;
            if matches!(src.ty, RegType::Ctx | RegType::Packet | RegType::PacketMeta) {
                return Err(self.err(
                    Rule::InvalidDeref,
                    EACCES,
                    format!(
                        "BPF_ATOMIC loads from R{} {} is not allowed",
                        insn.src,
                        reg_type_str(src.ty, src.flags)
                    ),
                ));
            }
        } else {
            self.check_reg_src(insn.src)?;
            self.check_reg_src(insn.dst)?;
            let dst = *self.reg(insn.dst);
            self.check_mem_access(
                insn.dst,
                i64::from(insn.off),
                i64::from(insn.size()),
                Access::Write,
                Some(insn.src),
                true,
                false,
            )?;
            self.save_aux_ptr_type((dst.ty, dst.flags))?;
            if matches!(dst.ty, RegType::Ctx | RegType::Packet | RegType::PacketMeta) {
                return Err(self.err(
                    Rule::InvalidDeref,
                    EACCES,
                    format!(
                        "BPF_ATOMIC stores into R{} {} is not allowed",
                        insn.dst,
                        reg_type_str(dst.ty, dst.flags)
                    ),
                ));
            }
        }
        Ok(())
    }
}
