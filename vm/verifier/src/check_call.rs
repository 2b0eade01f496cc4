//! Calls and exits: helper calls checked against their prototypes (`check_helper_call`,
//! `check_func_arg`, helper memory and sizes), bpf-to-bpf calls and returns, the return
//! value at the main program's exit, `ld_imm64` and the legacy packet loads, and the
//! combined stack size of a call chain.

use crate::ctx::Access;
use crate::error::{Rule, VerifierError, E2BIG, EACCES, EFAULT, EINVAL, ENOTSUPP};
use crate::helpers::{self, Arg, Proto, Ret};
use crate::input::{map_type, ProgType, BPF_CGROUP_INET_EGRESS};
use crate::insn::{mode, Insn, PSEUDO_FUNC, PSEUDO_MAP_FD, PSEUDO_MAP_VALUE};
use crate::log::reg_type_str;
use crate::reg::{Reg, RegType, MAYBE_NULL, RDONLY, RINGBUF};
use crate::state::{FuncState, RefState, MAX_CALL_FRAMES};
use crate::verifier::Verifier;

type R<T> = Result<T, VerifierError>;

/// Largest helper memory size (`BPF_MAX_VAR_SIZ`).
const MAX_VAR_SIZ: u64 = 1 << 29;

/// What the arguments of one call established (`struct bpf_call_arg_meta`).
#[derive(Debug, Default)]
pub(crate) struct Meta {
    map: Option<usize>,
    /// The `map_uid` of the map argument (or of the timer's map value).
    map_uid: u32,
    raw: Option<(u8, i64)>,
    raw_mode: bool,
    pkt_access: bool,
    msize_max_value: u64,
    const_map_key: Option<u64>,
    mem_size: u64,
    ref_obj_id: u32,
    release_regno: u8,
    /// The callback's subprogram (`ARG_PTR_TO_FUNC`).
    subprogno: Option<usize>,
    /// The dynptr argument (`dynptr_id` and its `ref_obj_id`).
    dynptr: crate::dynptr::DynptrMeta,
}

impl Verifier<'_> {
    /// `clear_all_pkt_pointers`: after a helper that may move the packet.
    fn clear_all_pkt_pointers(&mut self) {
        let leaks = self.allow_ptr_leaks();
        self.cur.for_each_reg(|r| {
            if r.is_pkt_pointer_any() {
                *r = if leaks {
                    Reg::unknown(false)
                } else {
                    Reg::not_init()
                };
            }
        });
    }

    /// A helper call.
    pub(crate) fn check_helper_call(&mut self, insn: &Insn) -> R<()> {
        let id = insn.imm;
        let name = helpers::name(id);
        if id < 0 || id as u32 >= helpers::FUNC_MAX_ID {
            return Err(self.err(
                Rule::HelperNotAllowed,
                EINVAL,
                format!("invalid func {name}#{id}"),
            ));
        }
        let pt = self.prog.prog_type;
        if !helpers::allowed(id as u32, pt, self.opts.privilege) {
            return Err(self.err(
                Rule::HelperNotAllowed,
                EINVAL,
                format!("program of this type cannot use helper {name}#{id}"),
            ));
        }
        let Some(proto) = crate::btf_args::proto(id, pt) else {
            return Err(self.err(
                Rule::Unsupported,
                EINVAL,
                format!("helper {name}#{id} is not modelled by bpfvm's verifier"),
            ));
        };
        if !self.prog.gpl_compatible && proto.gpl_only {
            return Err(self.err(
                Rule::HelperNotAllowed,
                EINVAL,
                "cannot call GPL-restricted function from non-GPL compatible program",
            ));
        }
        if crate::spin_lock::is_lock_helper(id) {
            return self.check_spin_lock_call(id as u32);
        }
        if proto.args.contains(&Arg::Unmodelled) || proto.ret == Ret::Unmodelled {
            return Err(self.err(
                Rule::Unsupported,
                EINVAL,
                format!(
                    "helper {name}#{id} takes or returns objects bpfvm's verifier does not model"
                ),
            ));
        }
        if matches!(proto.args[1], Arg::Func)
            && !Self::callbacks_modelled(id as u32)
            && id as u32 != crate::timer::TIMER_SET_CALLBACK
        {
            return Err(self.err(
                Rule::Unsupported,
                EINVAL,
                format!("helper {name}#{id} calls back into the program, which bpfvm's verifier does not model"),
            ));
        }
        let mut meta = Meta {
            pkt_access: proto.pkt_access,
            ..Meta::default()
        };
        for i in 0..5 {
            self.check_func_arg(i, &mut meta, proto)?;
        }
        // record_func_map
        let id_u = id as u32;
        if matches!(id_u, 12 | 1 | 2 | 3 | 87 | 88 | 89 | 164 | 51 | 195) {
            let Some(m) = meta.map else {
                return Err(self.internal("expected map for helper call"));
            };
            let map = &self.maps[m];
            if !map.prog_can_write() && matches!(id_u, 3 | 2 | 87 | 88) {
                return Err(self.err(Rule::MapAccess, EACCES, "write into map forbidden"));
            }
        }
        if id_u == helpers::TAIL_CALL {
            let is_prog_array = meta
                .map
                .is_some_and(|m| self.maps[m].map_type == map_type::PROG_ARRAY);
            if !is_prog_array {
                return Err(self.err(
                    Rule::HelperArgs,
                    EINVAL,
                    "expected prog array map for tail call",
                ));
            }
        }
        if let Some((regno, size)) = meta.raw {
            for i in 0..size {
                self.check_mem_access(regno, i, 1, Access::Write, None, false, false)?;
            }
        }
        if meta.release_regno != 0 {
            let reg = *self.reg(meta.release_regno);
            let releases_dynptr = matches!(
                proto.args[usize::from(meta.release_regno) - 1],
                Arg::Dynptr(_)
            );
            let ok = if releases_dynptr {
                self.unmark_stack_slots_dynptr(meta.release_regno)?;
                true
            } else if meta.ref_obj_id != 0 {
                self.release_reference(meta.ref_obj_id)
            } else {
                reg.is_null()
            };
            if !ok {
                return Err(self.err(
                    Rule::References,
                    EINVAL,
                    format!("func {name}#{id} reference has not been acquired before"),
                ));
            }
        }
        if id_u == 173 {
            self.check_get_func_ip()?;
        }
        self.check_dynptr_call(id_u)?;
        match id_u {
            helpers::TAIL_CALL => self.check_resource_leak("tail_call", true)?,
            helpers::GET_LOCAL_STORAGE if !self.reg(2).is_null() => {
                return Err(self.err(
                    Rule::HelperArgs,
                    EINVAL,
                    "get_local_storage() doesn't support non-zero flags",
                ));
            }
            _ => {}
        }
        if id_u == crate::timer::TIMER_SET_CALLBACK {
            let (Some(sp), Some(m)) = (meta.subprogno, meta.map) else {
                return Err(self.internal("timer callback without a subprogram or map"));
            };
            self.push_timer_callback(sp, m)?;
        }
        if Self::callbacks_modelled(id_u) {
            let Some(sp) = meta.subprogno else {
                return Err(self.internal("callback without a subprogram"));
            };
            self.push_callback_call(id_u, sp)?;
        }
        for r in 0..=5 {
            *self.reg_mut(r) = Reg::not_init();
        }
        let map = meta.map;
        let r0 = match proto.ret {
            Ret::Integer => Reg::unknown(false),
            Ret::Void => Reg::not_init(),
            Ret::MapValueOrNull | Ret::MapValue
                if map.is_some_and(|m| self.inner_of[m].is_some()) =>
            {
                // A map-in-map lookup: the inner map itself, typed by the outer map's
                // template (`inner_map_meta`), or NULL.
                let mut r = Reg::pointer(RegType::ConstPtrToMap);
                r.aux = map.and_then(|m| self.inner_of[m]).unwrap_or(0) as u32;
                r.flags = MAYBE_NULL;
                r
            }
            Ret::MapValueOrNull | Ret::MapValue => {
                let Some(m) = map else {
                    return Err(self.internal("unexpected null map_ptr"));
                };
                let mut r = Reg::pointer(RegType::MapValue);
                r.aux = m as u32;
                r.map_uid = meta.map_uid;
                let info = &self.maps[m];
                let elide = id_u == helpers::MAP_LOOKUP_ELEM
                    && matches!(info.map_type, map_type::ARRAY | map_type::PERCPU_ARRAY)
                    && meta
                        .const_map_key
                        .is_some_and(|k| k < u64::from(info.max_entries));
                if proto.ret == Ret::MapValueOrNull && !elide {
                    r.flags = MAYBE_NULL;
                }
                if r.flags & MAYBE_NULL == 0 && info.spin_lock().is_some() {
                    r.id = self.new_id();
                }
                r
            }
            Ret::BtfId => self.btf_ret(id_u),
            Ret::BtfIdOrNull => self.skc_ret(id_u),
            Ret::SocketOrNull | Ret::SockCommonOrNull | Ret::TcpSockOrNull => {
                crate::sock::ret_reg(proto.ret).unwrap_or_default()
            }
            Ret::RingbufMemOrNull => {
                let mut r = Reg::pointer(RegType::Mem);
                r.flags = MAYBE_NULL | RINGBUF;
                r.aux = meta.mem_size as u32;
                r
            }
            Ret::DynptrMemOrNull => Self::dynptr_data_ret(meta.mem_size, meta.dynptr),
            Ret::MemOrBtfId | Ret::MemOrBtfIdOrNull | Ret::Unmodelled => {
                return Err(self.internal("unmodelled return type"));
            }
        };
        *self.reg_mut(0) = r0;
        if self.reg(0).maybe_null() {
            let nid = self.new_id();
            self.reg_mut(0).id = nid;
        }
        self.sock_ret_refs(id_u, meta.ref_obj_id, map);
        if id_u == 131 {
            // ringbuf_reserve acquires a reference.
            let rid = self.new_id();
            self.cur.refs.push(RefState {
                id: rid,
                insn_idx: self.insn_idx,
            });
            let r0 = self.reg_mut(0);
            r0.id = rid;
            r0.ref_obj_id = rid;
        }
        if id_u == helpers::GET_SMP_PROCESSOR_ID {
            let max = u64::from(self.opts.nr_cpus.max(1) - 1);
            let b = &mut self.reg_mut(0).b;
            b.umax = max;
            b.u32_max = max as u32;
            b.smax = max as i64;
            b.s32_max = max as i32;
            b.umin = 0;
            b.u32_min = 0;
            b.smin = 0;
            b.s32_min = 0;
            b.sync();
            b.sanitize();
        }
        if let Some(m) = map {
            self.check_map_func_compatibility(m, id_u)?;
        }
        let mut changes = helpers::changes_pkt_data(id_u);
        if id_u == helpers::TAIL_CALL {
            // Also from subprograms: the x86_64 JIT supports them (the caller frames' stack
            // is bounded by `check_max_stack_depth`).
            changes = false;
        }
        if changes {
            self.clear_all_pkt_pointers();
        }
        Ok(())
    }

    pub(crate) fn release_reference(&mut self, id: u32) -> bool {
        let Some(pos) = self.cur.refs.iter().position(|r| r.id == id) else {
            return false;
        };
        self.cur.refs.remove(pos);
        let leaks = self.allow_ptr_leaks();
        self.cur.for_each_reg(|r| {
            if r.ref_obj_id == id {
                *r = if leaks {
                    Reg::unknown(false)
                } else {
                    Reg::not_init()
                };
            }
        });
        true
    }

    /// The register types an argument accepts, for `check_reg_type`.
    fn compatible(arg: Arg) -> &'static [(RegType, u8)] {
        const MEM: &[(RegType, u8)] = &[
            (RegType::Stack, 0),
            (RegType::Packet, 0),
            (RegType::PacketMeta, 0),
            (RegType::MapKey, 0),
            (RegType::MapValue, 0),
            (RegType::Mem, 0),
            (RegType::Mem, RINGBUF),
        ];
        match arg {
            Arg::MapKey | Arg::MapValue { .. } | Arg::Mem { .. } => MEM,
            Arg::ConstSize | Arg::ConstSizeOrZero | Arg::ConstAllocSizeOrZero => {
                &[(RegType::Scalar, 0)]
            }
            Arg::ConstMapPtr => &[(RegType::ConstPtrToMap, 0)],
            Arg::Ctx { .. } => &[(RegType::Ctx, 0)],
            Arg::Func => &[(RegType::Func, 0)],
            Arg::StackOrNull => &[(RegType::Stack, 0)],
            Arg::RingbufMemRelease => &[(RegType::Mem, RINGBUF)],
            Arg::ConstStr | Arg::Timer => &[(RegType::MapValue, 0)],
            Arg::SockCommon | Arg::BtfIdSockCommon { .. } => crate::sock::arg_types(arg),
            Arg::BtfId => crate::btf_args::BTF_PTR_TYPES,
            Arg::PercpuBtfId | Arg::Anything | Arg::None | Arg::Unmodelled | Arg::Dynptr(_) => &[],
        }
    }

    fn check_reg_type(&self, regno: u8, arg: Arg) -> R<()> {
        let reg = self.reg(regno);
        if arg == Arg::PercpuBtfId {
            return Err(self.err(
                Rule::HelperArgs,
                EACCES,
                format!(
                    "R{regno} type={} expected=percpu_ptr_, percpu_rcu_ptr_, percpu_trusted_ptr_",
                    reg_type_str(reg.ty, reg.flags)
                ),
            ));
        }
        let mut flags = reg.flags;
        if matches!(arg, Arg::Mem { rdonly: true, .. }) {
            flags &= !RDONLY;
        }
        let arg_maybe_null = matches!(
            arg,
            Arg::Mem {
                maybe_null: true,
                ..
            } | Arg::Ctx { maybe_null: true }
                | Arg::StackOrNull
                | Arg::BtfIdSockCommon {
                    maybe_null: true,
                    ..
                }
        );
        if arg_maybe_null {
            flags &= !MAYBE_NULL;
        }
        let ok = Self::compatible(arg).contains(&(reg.ty, flags));
        if ok {
            return self.check_btf_arg(regno, arg);
        }
        let mut expected: Vec<String> = Self::compatible(arg)
            .iter()
            .map(|&(t, f)| reg_type_str(t, f))
            .collect();
        if matches!(arg, Arg::MapKey | Arg::MapValue { .. } | Arg::Mem { .. }) {
            // The kernel's `mem_types` end with two types no program bpfvm models can
            // hold (`PTR_TO_BUF`, `PTR_TO_BTF_ID | PTR_TRUSTED`); its message lists them.
            expected.extend(["buf".to_string(), "trusted_ptr_".to_string()]);
        }
        Err(self.err(
            Rule::HelperArgs,
            EACCES,
            format!(
                "R{regno} type={} expected={}",
                reg_type_str(reg.ty, reg.flags),
                expected.join(", ")
            ),
        ))
    }

    /// `check_func_arg_reg_off`.
    fn check_func_arg_reg_off(&self, regno: u8, arg: Arg) -> R<()> {
        let reg = self.reg(regno);
        if arg.releases() {
            if reg.off != 0 {
                return Err(self.err(
                    Rule::HelperArgs,
                    EINVAL,
                    format!(
                        "R{regno} must have zero offset when passed to release func or trusted arg to kfunc"
                    ),
                ));
            }
            return self.check_ptr_off_reg(regno, false);
        }
        match reg.ty {
            RegType::Stack
            | RegType::Packet
            | RegType::PacketMeta
            | RegType::MapKey
            | RegType::MapValue
            | RegType::Mem
            | RegType::Scalar => Ok(()),
            RegType::BtfId => self.check_ptr_off_reg(regno, true),
            _ => self.check_ptr_off_reg(regno, false),
        }
    }

    /// `check_func_arg`.
    fn check_func_arg(&mut self, i: usize, meta: &mut Meta, proto: &Proto) -> R<()> {
        let arg = proto.args[i];
        let regno = (i + 1) as u8;
        if arg == Arg::None {
            return Ok(());
        }
        self.check_reg_src(regno)?;
        if arg == Arg::Anything {
            if self.is_pointer_value(regno) {
                return Err(self.err(
                    Rule::PointerLeak,
                    EACCES,
                    format!("R{regno} leaks addr into helper function"),
                ));
            }
            return Ok(());
        }
        if let Arg::Dynptr(d) = arg {
            return self.check_dynptr_arg(regno, d, &mut meta.dynptr, &mut meta.release_regno);
        }
        let reg = *self.reg(regno);
        if reg.is_pkt_pointer()
            && !self.may_access_direct_pkt_data(Access::Read, Some(meta.pkt_access))
        {
            return Err(self.err(
                Rule::HelperArgs,
                EACCES,
                "helper access to the packet is not allowed",
            ));
        }
        let arg_maybe_null = matches!(
            arg,
            Arg::Mem {
                maybe_null: true,
                ..
            } | Arg::Ctx { maybe_null: true }
                | Arg::StackOrNull
                | Arg::BtfIdSockCommon {
                    maybe_null: true,
                    ..
                }
        );
        if !(reg.is_null() && arg_maybe_null) {
            self.check_reg_type(regno, arg)?;
            self.check_func_arg_reg_off(regno, arg)?;
        }
        if arg.releases() {
            if reg.ref_obj_id == 0 && !reg.is_null() {
                return Err(self.err(
                    Rule::References,
                    EINVAL,
                    format!("R{regno} must be referenced when passed to release function"),
                ));
            }
            meta.release_regno = regno;
        }
        if reg.ref_obj_id != 0 {
            if meta.ref_obj_id != 0 {
                return Err(self.err(
                    Rule::References,
                    EACCES,
                    format!(
                        "more than one arg with ref_obj_id R{regno} {} {}",
                        reg.ref_obj_id, meta.ref_obj_id
                    ),
                ));
            }
            meta.ref_obj_id = reg.ref_obj_id;
        }
        match arg {
            Arg::ConstMapPtr => {
                if let Some(timer_map) = meta.map {
                    self.check_timer_map_match(timer_map, meta.map_uid, regno)?;
                }
                meta.map = Some(reg.map());
                meta.map_uid = reg.map_uid;
            }
            Arg::Timer => {
                meta.map = Some(self.process_timer_func(regno)?);
                meta.map_uid = reg.map_uid;
            }
            Arg::MapKey => {
                let Some(m) = meta.map else {
                    return Err(self.internal("invalid map_ptr to access map->key"));
                };
                let ks = self.maps[m].key_size;
                self.check_helper_mem_access(regno, i64::from(ks), Access::Read, false, None)?;
                if matches!(
                    self.maps[m].map_type,
                    map_type::ARRAY | map_type::PERCPU_ARRAY
                ) {
                    meta.const_map_key = self.constant_map_key(regno, ks);
                }
            }
            Arg::MapValue { uninit } => {
                let Some(m) = meta.map else {
                    return Err(self.internal("invalid map_ptr to access map->value"));
                };
                meta.raw_mode = uninit;
                let vs = self.maps[m].value_size;
                let t = if uninit { Access::Write } else { Access::Read };
                let raw = meta.raw_mode;
                meta.raw =
                    self.check_helper_mem_access(regno, i64::from(vs), t, false, Some(raw))?;
            }
            Arg::Mem {
                uninit,
                write,
                fixed,
                aligned,
                ..
            } => {
                meta.raw_mode = uninit;
                if fixed != 0 {
                    let t = if write { Access::Write } else { Access::Read };
                    let raw = meta.raw_mode;
                    meta.raw =
                        self.check_helper_mem_access(regno, i64::from(fixed), t, false, Some(raw))?;
                    if aligned {
                        let r = *self.reg(regno);
                        let v =
                            r.b.var_off
                                .plus(crate::tnum::Tnum::constant(i64::from(r.off) as u64));
                        if !v.is_aligned(u64::from(fixed)) {
                            return Err(self.err(
                                Rule::HelperArgs,
                                EACCES,
                                format!(
                                    "misaligned access off {}+{}+0 size {fixed}",
                                    r.b.var_off, r.off
                                ),
                            ));
                        }
                    }
                }
            }
            Arg::ConstSize | Arg::ConstSizeOrZero => {
                let writes = proto.args[i - 1].writes();
                let t = if writes { Access::Write } else { Access::Read };
                self.check_mem_size_reg(regno, t, arg == Arg::ConstSizeOrZero, meta)?;
            }
            Arg::ConstAllocSizeOrZero => {
                if !reg.b.var_off.is_const() {
                    return Err(self.err(
                        Rule::HelperArgs,
                        EACCES,
                        format!("R{regno} is not a known constant'"),
                    ));
                }
                meta.mem_size = reg.b.var_off.value;
                self.mark_chain_precision(regno)?;
            }
            Arg::ConstStr => self.check_reg_const_str(regno)?,
            Arg::Func => meta.subprogno = Some(reg.aux as usize),
            _ => {}
        }
        Ok(())
    }

    /// `check_reg_const_str`: a NUL-terminated string in a frozen read-only map.
    fn check_reg_const_str(&self, regno: u8) -> R<()> {
        let reg = *self.reg(regno);
        if reg.ty != RegType::MapValue {
            return Err(self.err(Rule::HelperArgs, EINVAL, String::new()));
        }
        let map = &self.maps[reg.map()];
        let frozen = map.frozen_value.as_ref().filter(|_| !map.prog_can_write());
        let Some(bytes) = frozen else {
            return Err(self.err(
                Rule::HelperArgs,
                EACCES,
                format!("R{regno} does not point to a readonly map'"),
            ));
        };
        if !reg.b.var_off.is_const() {
            return Err(self.err(
                Rule::HelperArgs,
                EACCES,
                format!("R{regno} is not a constant address'"),
            ));
        }
        if map.map_type != map_type::ARRAY {
            return Err(self.err(
                Rule::HelperArgs,
                EACCES,
                "no direct value access support for this map type",
            ));
        }
        self.check_map_access(
            regno,
            i64::from(reg.off),
            i64::from(map.value_size) - i64::from(reg.off),
            false,
        )?;
        let at = (i64::from(reg.off) + reg.b.var_off.value as i64) as usize;
        if !bytes.get(at..).is_some_and(|s| s.contains(&0)) {
            return Err(self.err(Rule::HelperArgs, EINVAL, "string is not zero-terminated"));
        }
        Ok(())
    }

    /// The key of an array lookup when it is a known constant on the stack
    /// (`get_constant_map_key`).
    fn constant_map_key(&mut self, regno: u8, key_size: u32) -> Option<u64> {
        let reg = *self.reg(regno);
        if reg.ty != RegType::Stack || !reg.b.var_off.is_const() {
            return None;
        }
        let stack_off = i64::from(reg.off) + reg.b.var_off.value as i64;
        let (spi, b) = crate::stack::slot_of(stack_off);
        let f = &self.cur.frames[reg.frameno as usize];
        let slot = f.stack.get(spi)?;
        let zeros = slot.types[..=b]
            .iter()
            .rev()
            .take_while(|&&t| t == crate::stack::SlotType::Zero)
            .count();
        if zeros as u32 >= key_size {
            return Some(0);
        }
        if !slot.is_spilled_scalar() {
            return None;
        }
        let spills = slot.types[..=b]
            .iter()
            .rev()
            .take_while(|&&t| t == crate::stack::SlotType::Spill)
            .count();
        if spills as u32 != key_size || !slot.spilled.b.var_off.is_const() {
            return None;
        }
        Some(slot.spilled.b.var_off.value)
    }

    /// `check_helper_mem_access`; `raw`: `Some(raw_mode)` when the call's metadata is
    /// passed (a `raw_mode` stack buffer is returned for the byte-by-byte write check).
    pub(crate) fn check_helper_mem_access(
        &mut self,
        regno: u8,
        size: i64,
        t: Access,
        zero_ok: bool,
        raw: Option<bool>,
    ) -> R<Option<(u8, i64)>> {
        let reg = *self.reg(regno);
        match reg.ty {
            RegType::Packet | RegType::PacketMeta => {
                self.check_packet_access(regno, i64::from(reg.off), size, zero_ok)?;
            }
            RegType::MapKey => {
                if t == Access::Write {
                    return Err(self.err(
                        Rule::HelperArgs,
                        EACCES,
                        format!(
                            "R{regno} cannot write into {}",
                            reg_type_str(reg.ty, reg.flags)
                        ),
                    ));
                }
                let ks = self.maps[reg.map()].key_size;
                self.check_mem_region_access(regno, i64::from(reg.off), size, ks, false)?;
            }
            RegType::MapValue => {
                self.check_map_access_type(regno, i64::from(reg.off), size, t)?;
                self.check_map_access(regno, i64::from(reg.off), size, zero_ok)?;
            }
            RegType::Mem => {
                if reg.rdonly() && t == Access::Write {
                    return Err(self.err(
                        Rule::HelperArgs,
                        EACCES,
                        format!(
                            "R{regno} cannot write into {}",
                            reg_type_str(reg.ty, reg.flags)
                        ),
                    ));
                }
                self.check_mem_region_access(
                    regno,
                    i64::from(reg.off),
                    size,
                    reg.mem_size(),
                    zero_ok,
                )?;
            }
            RegType::Stack => {
                return self.check_stack_range_initialized(
                    regno,
                    i64::from(reg.off),
                    size,
                    zero_ok,
                    t,
                    raw.unwrap_or(false),
                );
            }
            RegType::Ctx
                if matches!(self.prog.prog_type, ProgType::Kprobe | ProgType::Tracepoint) =>
            {
                if size == 0 {
                    if zero_ok {
                        return Ok(None);
                    }
                    return Err(self.err(Rule::HelperArgs, EACCES, String::new()));
                }
                self.check_mem_access(regno, size - 1, 1, t, None, false, false)?;
            }
            _ => {
                if zero_ok && size == 0 && reg.is_null() {
                    return Ok(None);
                }
                return Err(self.err(
                    Rule::HelperArgs,
                    EACCES,
                    format!(
                        "R{regno} type={} expected=fp",
                        reg_type_str(reg.ty, reg.flags)
                    ),
                ));
            }
        }
        Ok(None)
    }

    /// `check_mem_size_reg`: the size argument bounds the memory argument before it.
    pub(crate) fn check_mem_size_reg(
        &mut self,
        regno: u8,
        t: Access,
        zero_ok: bool,
        meta: &mut Meta,
    ) -> R<()> {
        let reg = *self.reg(regno);
        meta.msize_max_value = reg.b.umax;
        let pass_meta = reg.b.var_off.is_const();
        if reg.b.smin < 0 {
            return Err(self.err(
                Rule::HelperArgs,
                EACCES,
                format!("R{regno} min value is negative, either use unsigned or 'var &= const'"),
            ));
        }
        if reg.b.umin == 0 && !zero_ok {
            return Err(self.err(
                Rule::HelperArgs,
                EACCES,
                format!(
                    "R{regno} invalid zero-sized read: u64=[{},{}]",
                    reg.b.umin as i64, reg.b.umax as i64
                ),
            ));
        }
        if reg.b.umax >= MAX_VAR_SIZ {
            return Err(self.err(
                Rule::HelperArgs,
                EACCES,
                format!(
                    "R{regno} unbounded memory access, use 'var &= const' or 'if (var < const)'"
                ),
            ));
        }
        let raw = pass_meta.then_some(meta.raw_mode);
        let r = self.check_helper_mem_access(regno - 1, reg.b.umax as i64, t, zero_ok, raw)?;
        if pass_meta {
            if let Some(x) = r {
                meta.raw = Some(x);
            }
        }
        self.mark_chain_precision(regno)
    }

    /// `check_map_func_compatibility`: map types and helpers that go together.
    fn check_map_func_compatibility(&self, m: usize, id: u32) -> R<()> {
        use map_type::*;
        let t = self.maps[m].map_type;
        let by_map = match t {
            PROG_ARRAY => id == 12,
            PERF_EVENT_ARRAY => matches!(id, 22 | 25 | 111 | 55 | 121),
            RINGBUF => matches!(id, 130 | 131 | 134 | 198 | 199 | 200),
            USER_RINGBUF => id == 209,
            STACK_TRACE => id == 27,
            CGROUP_ARRAY => matches!(id, 33 | 37),
            CGROUP_STORAGE | PERCPU_CGROUP_STORAGE => id == 81,
            DEVMAP | DEVMAP_HASH => matches!(id, 51 | 1),
            CPUMAP => id == 51,
            XSKMAP => matches!(id, 51 | 1),
            ARRAY_OF_MAPS | HASH_OF_MAPS => id == 1,
            QUEUE | STACK => matches!(id, 87..=89),
            SK_STORAGE => matches!(id, 107 | 108 | 194),
            INODE_STORAGE => matches!(id, 145 | 146 | 194),
            TASK_STORAGE => matches!(id, 156 | 157 | 194),
            CGRP_STORAGE => matches!(id, 210 | 211 | 194),
            BLOOM_FILTER => matches!(id, 89 | 87),
            _ => true,
        };
        let by_func = match id {
            12 => t == PROG_ARRAY,
            22 | 25 | 55 | 111 | 121 => t == PERF_EVENT_ARRAY,
            130 | 131 | 134 | 198 | 199 | 200 => t == RINGBUF,
            209 => t == USER_RINGBUF,
            27 => t == STACK_TRACE,
            37 | 33 => t == CGROUP_ARRAY,
            51 => matches!(t, DEVMAP | DEVMAP_HASH | CPUMAP | XSKMAP),
            81 => matches!(t, CGROUP_STORAGE | PERCPU_CGROUP_STORAGE),
            88 => matches!(t, QUEUE | STACK),
            89 | 87 => matches!(t, QUEUE | STACK | BLOOM_FILTER),
            195 => matches!(t, PERCPU_ARRAY | PERCPU_HASH | LRU_PERCPU_HASH),
            107 | 108 => t == SK_STORAGE,
            _ => true,
        };
        if by_map && by_func {
            if id == 12 && self.subprogs.len() > 1 {
                // The x86_64 JIT supports tail calls from subprograms.
                return Ok(());
            }
            return Ok(());
        }
        Err(self.err(
            Rule::HelperArgs,
            EINVAL,
            format!(
                "cannot pass map_type {t} into func {}#{id}",
                helpers::name(id as i32)
            ),
        ))
    }

    /// A bpf-to-bpf call (`check_func_call`).
    pub(crate) fn check_func_call(&mut self, insn: &Insn) -> R<()> {
        let target = (self.insn_idx as i64 + i64::from(insn.imm) + 1) as usize;
        let Some(sp) = self.find_subprog(target) else {
            return Err(self.internal(format!(
                "target of func call at insn {target} is not a program"
            )));
        };
        let cf = self.cur.curframe();
        if cf + 1 >= MAX_CALL_FRAMES {
            return Err(self.err(
                Rule::Call,
                E2BIG,
                format!("the call stack of {} frames is too deep", cf + 2),
            ));
        }
        let mut callee = FuncState::new(self.insn_idx as i64, (cf + 1) as u8, sp);
        callee.regs[1..=5].copy_from_slice(&self.cur.regs()[1..=5]);
        for r in 0..=5 {
            *self.reg_mut(r) = Reg::not_init();
        }
        self.cur.frames.push(callee);
        self.insn_idx = self.subprogs[sp].start - 1;
        Ok(())
    }

    /// `exit` of a subprogram (`prepare_func_exit`).
    pub(crate) fn prepare_func_exit(&mut self) -> R<()> {
        let r0 = self.cur.regs()[0];
        if r0.ty == RegType::Stack {
            return Err(self.err(
                Rule::Call,
                EINVAL,
                "cannot return stack pointer to the caller",
            ));
        }
        if self.cur.cur().in_callback {
            return self.callback_exit(r0);
        }
        let callee = self.cur.frames.pop().expect("a subprogram frame");
        self.cur.regs_mut()[0] = r0;
        self.insn_idx = callee.callsite as usize + 1;
        Ok(())
    }

    /// `check_get_func_ip`: `bpf_get_func_ip` needs a trampoline (fentry, fexit,
    /// fmod_ret) or a kprobe.
    fn check_get_func_ip(&self) -> R<()> {
        let ok = match self.prog.prog_type {
            ProgType::Tracing(_) => {
                if !matches!(self.prog.expected_attach_type, Some(24..=26)) {
                    return Err(self.err(
                        Rule::HelperArgs,
                        ENOTSUPP,
                        "func bpf_get_func_ip#173 supported only for fentry/fexit/fmod_ret programs",
                    ));
                }
                true
            }
            ProgType::Kprobe => true,
            _ => false,
        };
        if ok {
            return Ok(());
        }
        Err(self.err(
            Rule::HelperArgs,
            ENOTSUPP,
            format!(
                "func bpf_get_func_ip#173 not supported for program type {}",
                self.prog.prog_type.number()
            ),
        ))
    }

    /// The return value at the main program's `exit` (`check_return_code`).
    pub(crate) fn check_return_code(&mut self) -> R<()> {
        self.check_reg_src(0)?;
        if self.is_pointer_value(0) {
            return Err(self.err(Rule::PointerLeak, EACCES, "R0 leaks addr as return value"));
        }
        let (at, range) = if self.in_async_callback() {
            ("async callback return", (0i64, 0i64))
        } else {
            let Some(range) = self.prog_ret_range() else {
                return Ok(());
            };
            ("program exit", range)
        };
        let r0 = *self.reg(0);
        if r0.ty != RegType::Scalar {
            return Err(self.err(
                Rule::ReturnValue,
                EINVAL,
                format!(
                    "At {at} the register R0 is not a known value ({})",
                    reg_type_str(r0.ty, r0.flags)
                ),
            ));
        }
        self.mark_chain_precision(0)?;
        if range.0 <= r0.b.smin && r0.b.smax <= range.1 {
            return Ok(());
        }
        let msg = r0_out_of_range(at, r0.b.smin, r0.b.smax, range.0, range.1);
        Err(self.err(Rule::ReturnValue, EINVAL, msg))
    }

    /// The return values the program type allows at the main program's exit, `None`
    /// when it does not check them (`check_return_code`).
    fn prog_ret_range(&self) -> Option<(i64, i64)> {
        match self.prog.prog_type {
            ProgType::CgroupSkb => match self.prog.expected_attach_type {
                Some(a) if a != BPF_CGROUP_INET_EGRESS => Some((0, 1)),
                _ => Some((0, 3)),
            },
            // fentry and fexit return 0 (`BPF_TRACE_FENTRY`, `BPF_TRACE_FEXIT`).
            ProgType::Tracing(_) if matches!(self.prog.expected_attach_type, Some(24 | 25)) => {
                Some((0, 0))
            }
            _ => None,
        }
    }

    /// `ld_imm64` (`check_ld_imm`).
    pub(crate) fn check_ld_imm(&mut self, insn: &Insn) -> R<()> {
        if insn.size() != 8 {
            return Err(self.err(Rule::Encoding, EINVAL, "invalid BPF_LD_IMM insn"));
        }
        if insn.off != 0 {
            return Err(self.err(Rule::Encoding, EINVAL, "BPF_LD_IMM64 uses reserved fields"));
        }
        self.check_reg_dst(insn.dst)?;
        let idx = self.insn_idx;
        let r = match insn.src {
            0 => {
                let hi = self.insns[idx + 1].imm as u32;
                Reg::known((u64::from(hi) << 32) | u64::from(insn.imm as u32), false)
            }
            PSEUDO_MAP_FD => {
                let mut r = Reg::pointer(RegType::ConstPtrToMap);
                r.aux = self.aux[idx].map_index as u32;
                r
            }
            PSEUDO_MAP_VALUE => {
                let mut r = Reg::pointer(RegType::MapValue);
                r.aux = self.aux[idx].map_index as u32;
                r.off = self.aux[idx].map_off as i32;
                r
            }
            PSEUDO_FUNC => {
                let target = (idx as i64 + i64::from(insn.imm) + 1) as usize;
                let Some(sp) = self.find_subprog(target) else {
                    return Err(self.internal("function address is no subprogram"));
                };
                let mut r = Reg::pointer(RegType::Func);
                r.aux = sp as u32;
                r
            }
            _ => return Err(self.internal("unexpected src reg value for ldimm64")),
        };
        *self.reg_mut(insn.dst) = r;
        Ok(())
    }

    /// Legacy packet loads (`check_ld_abs`).
    pub(crate) fn check_ld_abs(&mut self, insn: &Insn) -> R<()> {
        if !matches!(
            self.prog.prog_type,
            ProgType::SocketFilter | ProgType::SchedCls | ProgType::SchedAct
        ) {
            return Err(self.err(
                Rule::Encoding,
                EINVAL,
                "BPF_LD_[ABS|IND] instructions not allowed for this program type",
            ));
        }
        let md = insn.mode();
        if insn.dst != 0 || insn.off != 0 || insn.size() == 8 || (md == mode::ABS && insn.src != 0)
        {
            return Err(self.err(
                Rule::Encoding,
                EINVAL,
                "BPF_LD_[ABS|IND] uses reserved fields",
            ));
        }
        self.check_reg_src(6)?;
        self.check_resource_leak("BPF_LD_[ABS|IND]", true)?;
        if self.reg(6).ty != RegType::Ctx {
            return Err(self.err(
                Rule::CtxAccess,
                EINVAL,
                "at the time of BPF_LD_ABS|IND R6 != pointer to skb",
            ));
        }
        if md == mode::IND {
            self.check_reg_src(insn.src)?;
        }
        self.check_ptr_off_reg(6, false)?;
        for r in 0..=5 {
            *self.reg_mut(r) = Reg::not_init();
        }
        *self.reg_mut(0) = Reg::unknown(false);
        Ok(())
    }

    /// The combined stack of every call chain fits (`check_max_stack_depth`).
    pub(crate) fn check_max_stack_depth(&self) -> R<()> {
        let priv_stack = matches!(self.prog.prog_type, ProgType::Kprobe | ProgType::Tracepoint)
            && !self.subprogs.iter().any(|s| s.has_tail_call);
        let round = |d: usize| d.div_ceil(16) * 16;
        // Depth-first over static calls from the main program, as the kernel walks them.
        let mut frames: Vec<(usize, usize, usize)> = Vec::new(); // (subprog, resume insn, depth before)
        let mut idx = 0usize;
        let mut i = self.subprogs[0].start;
        let mut depth = 0usize;
        let adaptive = |sp: usize, d: usize| priv_stack && sp != 0 && d >= 64;
        let enter = |sp: usize, depth: &mut usize, frame: usize| -> R<()> {
            // A tail call unwinds its subprogram's frame but not its callers': their stack
            // is limited so 33 tail calls stay within 8 KiB.
            if sp != 0 && self.subprogs[sp].has_tail_call && *depth >= 256 {
                return Err(VerifierError::new(
                    Rule::Call,
                    EACCES,
                    format!(
                        "tail_calls are not allowed when call stack of previous frames is {} bytes. Too large",
                        *depth
                    ),
                ));
            }
            let d = round(self.subprogs[sp].stack_depth);
            if adaptive(sp, d) {
                if d > 512 {
                    return Err(VerifierError::new(
                        Rule::Call,
                        EACCES,
                        format!("stack size of subprog {sp} is {d}. Too large"),
                    ));
                }
            } else {
                *depth += d;
                if *depth > 512 {
                    return Err(VerifierError::new(
                        Rule::Call,
                        EACCES,
                        format!(
                            "combined stack size of {} calls is {}. Too large",
                            frame + 1,
                            *depth
                        ),
                    ));
                }
            }
            Ok(())
        };
        enter(0, &mut depth, 0)?;
        loop {
            let end = self
                .subprogs
                .get(idx + 1)
                .map_or(self.insns.len(), |s| s.start);
            let mut called = None;
            while i < end {
                let insn = &self.insns[i];
                if insn.is_pseudo_call() || (insn.is_ldimm64() && insn.src == PSEUDO_FUNC) {
                    let next = (i as i64 + i64::from(insn.imm) + 1) as usize;
                    let Some(sidx) = self.find_subprog(next) else {
                        return Err(VerifierError::new(
                            Rule::Call,
                            EFAULT,
                            "callee not found".to_string(),
                        ));
                    };
                    called = Some((i + 1, sidx, next));
                    break;
                }
                i += 1;
            }
            if let Some((ret, sidx, next)) = called {
                frames.push((idx, ret, depth));
                if frames.len() >= MAX_CALL_FRAMES {
                    return Err(VerifierError::new(
                        Rule::Call,
                        E2BIG,
                        format!("the call stack of {} frames is too deep !", frames.len()),
                    ));
                }
                idx = sidx;
                i = next;
                enter(idx, &mut depth, frames.len())?;
                continue;
            }
            let Some((pidx, ret, d)) = frames.pop() else {
                return Ok(());
            };
            idx = pidx;
            i = ret;
            depth = d;
        }
    }
}

/// The kernel's words for an `r0` outside `[lo, hi]` at `at` (`program exit`, `callback
/// return`): "At program exit the register R0 has smin=.. smax=.. should have been in
/// [lo, hi]" (a bound at its type's limit is left out; neither: "unknown scalar value").
pub(crate) fn r0_out_of_range(at: &str, smin: i64, smax: i64, lo: i64, hi: i64) -> String {
    let mut msg = format!("At {at} the register R0 has");
    if smin > i64::MIN {
        msg.push_str(&format!(" smin={smin}"));
    }
    if smax < i64::MAX {
        msg.push_str(&format!(" smax={smax}"));
    }
    if smin == i64::MIN && smax == i64::MAX {
        msg.push_str(" unknown scalar value");
    }
    msg.push_str(&format!(" should have been in [{lo}, {hi}]"));
    msg
}
