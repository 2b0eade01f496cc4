//! The passes before the path walk, in the kernel's order: subprograms and their jumps
//! (`add_subprog_and_kfunc`, `check_subprogs`), `ld_imm64` and opcode validity
//! (`resolve_pseudo_ldimm64`), and the control-flow graph (`check_cfg`: every instruction
//! reachable, no jump into an `ld_imm64`, and the prune and jump-history points).

use crate::error::{Rule, VerifierError, EINVAL, ENOTSUPP};
use crate::input::map_type;
use crate::insn::{
    class, in_insntable, jmp, mode, Insn, PSEUDO_FUNC, PSEUDO_MAP_FD, PSEUDO_MAP_VALUE,
};
use crate::verifier::{Subprog, Verifier};

/// Most subprograms (`BPF_MAX_SUBPROGS`).
const MAX_SUBPROGS: usize = 256;
/// Largest offset into a value an `ld_imm64` may name (`BPF_MAX_VAR_OFF`).
const MAX_VAR_OFF: u32 = 1 << 29;

const DISCOVERED: u8 = 0x10;
const EXPLORED: u8 = 0x20;
const FALLTHROUGH: u8 = 1;
const BRANCH: u8 = 2;

/// Result of visiting an edge or instruction.
#[derive(Clone, Copy, PartialEq, Eq, Debug)]
enum Visit {
    /// A new instruction was pushed.
    Keep,
    /// Nothing new from here.
    Done,
}

fn cfg_err(rule: Rule, errno: i32, msg: String) -> VerifierError {
    VerifierError::new(rule, errno, msg)
}

/// The instructions that may follow `i` within its function (`bpf_insn_successors`):
/// calls continue at the next instruction, `exit` has none.
pub(crate) fn successors(insns: &[Insn], i: usize) -> ([usize; 2], usize) {
    let insn = &insns[i];
    let next = if insn.is_ldimm64() { i + 2 } else { i + 1 };
    if !insn.is_jmp_class() {
        return ([next, 0], 1);
    }
    let target = (i as i64 + insn.jmp_offset() + 1) as usize;
    match insn.op() {
        jmp::EXIT => ([0, 0], 0),
        jmp::CALL => ([next, 0], 1),
        jmp::JA => ([target, 0], 1),
        _ => {
            if target == next {
                ([next, 0], 1)
            } else {
                ([next, target], 2)
            }
        }
    }
}

impl Verifier<'_> {
    /// Runs the passes before the walk.
    pub(crate) fn prepare(&mut self) -> Result<(), VerifierError> {
        self.add_subprogs()?;
        self.check_subprogs()?;
        self.resolve_ldimm64()?;
        self.check_cfg()?;
        self.check_abnormal_return()?;
        self.compute_live_registers();
        self.compute_precise_registers();
        Ok(())
    }

    /// `check_btf_info` without `func_info` (`check_abnormal_return`): a subprogram may
    /// not use `ld_abs`/`ld_ind` or `bpf_tail_call`, whose exits the kernel can only type
    /// from BTF.
    fn check_abnormal_return(&self) -> Result<(), VerifierError> {
        if self.prog.func_info {
            return Ok(());
        }
        for sp in self.subprogs.iter().skip(1) {
            let what = if sp.has_ld_abs {
                "LD_ABS"
            } else if sp.has_tail_call {
                "tail_call"
            } else {
                continue;
            };
            return Err(cfg_err(
                Rule::Call,
                EINVAL,
                format!("{what} is not allowed in subprogs without BTF"),
            ));
        }
        Ok(())
    }

    fn add_subprog(&mut self, off: i64) -> Result<(), VerifierError> {
        if off < 0 || off as usize >= self.insns.len() {
            return Err(cfg_err(
                Rule::ControlFlow,
                EINVAL,
                "call to invalid destination".into(),
            ));
        }
        let off = off as usize;
        if self.subprogs.iter().any(|s| s.start == off) {
            return Ok(());
        }
        if self.subprogs.len() >= MAX_SUBPROGS {
            return Err(cfg_err(Rule::ControlFlow, 7, "too many subprograms".into()));
        }
        self.subprogs.push(Subprog {
            start: off,
            ..Subprog::default()
        });
        self.subprogs.sort_by_key(|s| s.start);
        Ok(())
    }

    /// Finds subprogram starts (`add_subprog_and_kfunc`).
    fn add_subprogs(&mut self) -> Result<(), VerifierError> {
        self.add_subprog(0)?;
        for i in 0..self.insns.len() {
            let insn = self.insns[i];
            let pseudo_func = insn.is_ldimm64() && insn.src == PSEUDO_FUNC;
            if insn.is_pseudo_call() || pseudo_func {
                self.add_subprog(i as i64 + i64::from(insn.imm) + 1)?;
            } else if insn.code == (class::JMP | jmp::CALL)
                && insn.src == crate::insn::PSEUDO_KFUNC_CALL
            {
                // add_kfunc_call: the license, then the function.
                if !self.prog.gpl_compatible {
                    return Err(cfg_err(
                        Rule::HelperNotAllowed,
                        EINVAL,
                        "cannot call kernel function from non-GPL compatible program".into(),
                    )
                    .at(i));
                }
                let known = usize::try_from(insn.imm).is_ok_and(|k| k < self.prog.kfuncs.len());
                if !known {
                    return Err(cfg_err(
                        Rule::HelperNotAllowed,
                        EINVAL,
                        format!("kernel btf_id {} is not a function", insn.imm),
                    )
                    .at(i));
                }
            }
        }
        Ok(())
    }

    /// The subprogram starting at `i`.
    pub(crate) fn find_subprog(&self, i: usize) -> Option<usize> {
        self.subprogs.binary_search_by_key(&i, |s| s.start).ok()
    }

    /// Jumps stay inside their subprogram, which ends with `exit` or a jump
    /// (`check_subprogs`).
    fn check_subprogs(&mut self) -> Result<(), VerifierError> {
        let n = self.insns.len();
        let mut cur = 0;
        let mut start = 0;
        let mut end = self.subprogs.get(1).map_or(n, |s| s.start);
        for i in 0..n {
            let insn = self.insns[i];
            let code = insn.code;
            if insn.is_helper_call() && insn.imm == crate::helpers::TAIL_CALL as i32 {
                self.subprogs[cur].has_tail_call = true;
            }
            if insn.class() == class::LD && matches!(insn.mode(), mode::ABS | mode::IND) {
                self.subprogs[cur].has_ld_abs = true;
            }
            let is_jump = insn.is_jmp_class() && !matches!(insn.op(), jmp::CALL | jmp::EXIT);
            if is_jump {
                let off = i as i64 + insn.jmp_offset() + 1;
                if off < start as i64 || off >= end as i64 {
                    return Err(cfg_err(
                        Rule::ControlFlow,
                        EINVAL,
                        format!("jump out of range from insn {i} to {off}"),
                    )
                    .at(i));
                }
            }
            if i == end - 1 {
                if code != (class::JMP | jmp::EXIT)
                    && code != (class::JMP32 | jmp::JA)
                    && code != (class::JMP | jmp::JA)
                {
                    return Err(cfg_err(
                        Rule::ControlFlow,
                        EINVAL,
                        "last insn is not an exit or jmp".into(),
                    )
                    .at(i));
                }
                start = end;
                cur += 1;
                if cur < self.subprogs.len() {
                    end = self.subprogs.get(cur + 1).map_or(n, |s| s.start);
                }
            }
        }
        Ok(())
    }

    /// Checks `ldx` fields, `ld_imm64` forms and their maps, and opcodes
    /// (`resolve_pseudo_ldimm64`).
    fn resolve_ldimm64(&mut self) -> Result<(), VerifierError> {
        let n = self.insns.len();
        let mut i = 0;
        while i < n {
            let insn = self.insns[i];
            if insn.class() == class::LDX
                && (!matches!(insn.mode(), mode::MEM | mode::MEMSX) || insn.imm != 0)
            {
                return Err(cfg_err(
                    Rule::Encoding,
                    EINVAL,
                    "BPF_LDX uses reserved fields".into(),
                )
                .at(i));
            }
            if insn.is_ldimm64() {
                let ok = i + 1 < n && {
                    let t = self.insns[i + 1];
                    t.code == 0 && t.dst == 0 && t.src == 0 && t.off == 0
                };
                if !ok {
                    return Err(cfg_err(
                        Rule::Encoding,
                        EINVAL,
                        "invalid bpf_ld_imm64 insn".into(),
                    )
                    .at(i));
                }
                let second = self.insns[i + 1];
                match insn.src {
                    0 | PSEUDO_FUNC => {}
                    PSEUDO_MAP_VALUE => self.resolve_map_ref(i, insn, Some(second.imm as u32))?,
                    PSEUDO_MAP_FD if second.imm == 0 => self.resolve_map_ref(i, insn, None)?,
                    _ => {
                        return Err(cfg_err(
                            Rule::Encoding,
                            EINVAL,
                            "unrecognized bpf_ld_imm64 insn".into(),
                        )
                        .at(i))
                    }
                }
                i += 2;
                continue;
            }
            if !in_insntable(insn.code) {
                return Err(cfg_err(
                    Rule::Encoding,
                    EINVAL,
                    format!("unknown opcode {:02x}", insn.code),
                )
                .at(i));
            }
            i += 1;
        }
        Ok(())
    }

    fn resolve_map_ref(
        &mut self,
        i: usize,
        insn: Insn,
        value_off: Option<u32>,
    ) -> Result<(), VerifierError> {
        let idx = insn.imm;
        let Some(map) = usize::try_from(idx)
            .ok()
            .and_then(|k| self.prog.maps.get(k))
        else {
            return Err(cfg_err(
                Rule::MapReference,
                9,
                format!("fd {idx} is not pointing to valid bpf_map"),
            )
            .at(i));
        };
        self.aux[i].map_index = idx as usize;
        if let Some(off) = value_off {
            if off >= MAX_VAR_OFF {
                return Err(cfg_err(
                    Rule::MapReference,
                    EINVAL,
                    format!("direct value offset of {off} is not allowed"),
                )
                .at(i));
            }
            if map.map_type != map_type::ARRAY {
                return Err(cfg_err(
                    Rule::MapReference,
                    EINVAL,
                    "no direct value access support for this map type".into(),
                )
                .at(i));
            }
            // array_map_direct_value_addr: only single-element arrays, inside the value.
            let errno = if map.max_entries != 1 {
                Some(ENOTSUPP)
            } else if off >= map.value_size {
                Some(EINVAL)
            } else {
                None
            };
            if let Some(errno) = errno {
                return Err(cfg_err(
                    Rule::MapReference,
                    errno,
                    format!(
                        "invalid access to map value pointer, value_size={} off={off}",
                        map.value_size
                    ),
                )
                .at(i));
            }
            self.aux[i].map_off = off;
        }
        if map.map_type == map_type::STRUCT_OPS {
            return Err(cfg_err(
                Rule::MapReference,
                EINVAL,
                "bpf_struct_ops map cannot be used in prog".into(),
            )
            .at(i));
        }
        if map.spin_lock().is_some() {
            let t = self.prog.prog_type;
            if t == crate::input::ProgType::SocketFilter {
                return Err(cfg_err(
                    Rule::MapReference,
                    EINVAL,
                    "socket filter progs cannot use bpf_spin_lock yet".into(),
                )
                .at(i));
            }
            if t.needs_perfmon() {
                return Err(cfg_err(
                    Rule::MapReference,
                    EINVAL,
                    "tracing progs cannot use bpf_spin_lock yet".into(),
                )
                .at(i));
            }
        }
        Ok(())
    }

    /// Depth-first walk of the control-flow graph (`check_cfg`).
    fn check_cfg(&mut self) -> Result<(), VerifierError> {
        let n = self.insns.len();
        let mut state = vec![0u8; n];
        let mut stack: Vec<usize> = vec![0];
        state[0] = DISCOVERED;
        while let Some(&t) = stack.last() {
            match self.visit_insn(t, &mut state, &mut stack)? {
                Visit::Keep => {}
                Visit::Done => {
                    state[t] = EXPLORED;
                    stack.pop();
                }
            }
        }
        let mut i = 0;
        while i < n {
            if state[i] != EXPLORED {
                return Err(
                    cfg_err(Rule::ControlFlow, EINVAL, format!("unreachable insn {i}")).at(i),
                );
            }
            if self.insns[i].is_ldimm64() {
                if i + 1 < n && state[i + 1] != 0 {
                    return Err(cfg_err(
                        Rule::ControlFlow,
                        EINVAL,
                        format!("jump into the middle of ldimm64 insn {i}"),
                    )
                    .at(i));
                }
                i += 1;
            }
            i += 1;
        }
        Ok(())
    }

    /// One edge of the walk (`push_insn`).
    fn push_insn(
        &mut self,
        t: usize,
        w: i64,
        e: u8,
        state: &mut [u8],
        stack: &mut Vec<usize>,
    ) -> Result<Visit, VerifierError> {
        if state[t] >= DISCOVERED | e {
            return Ok(Visit::Done);
        }
        if w < 0 || w as usize >= self.insns.len() {
            return Err(cfg_err(
                Rule::ControlFlow,
                EINVAL,
                format!("jump out of range from insn {t} to {w}"),
            )
            .at(t));
        }
        let w = w as usize;
        if e == BRANCH {
            self.mark_prune(w);
            self.aux[w].jmp_point = true;
        }
        if state[w] == 0 {
            state[t] = DISCOVERED | e;
            state[w] = DISCOVERED;
            stack.push(w);
            return Ok(Visit::Keep);
        }
        if state[w] & 0xf0 == DISCOVERED {
            // A back-edge: loops are allowed with CAP_BPF, which both privilege settings
            // have (otherwise "back-edge from insn %d to %d").
            return Ok(Visit::Done);
        }
        state[t] = DISCOVERED | e;
        Ok(Visit::Done)
    }

    /// The edges of instruction `t` (`visit_insn`).
    fn visit_insn(
        &mut self,
        t: usize,
        state: &mut [u8],
        stack: &mut Vec<usize>,
    ) -> Result<Visit, VerifierError> {
        let insn = self.insns[t];
        let size = if insn.is_ldimm64() { 2 } else { 1 };
        let call_edges =
            |v: &mut Self, state: &mut [u8], stack: &mut Vec<usize>, callee: Option<i64>| {
                let r = v.push_insn(t, (t + size) as i64, FALLTHROUGH, state, stack)?;
                if r == Visit::Keep {
                    return Ok(r);
                }
                v.mark_prune(t + size);
                if let Some(a) = v.aux.get_mut(t + size) {
                    a.jmp_point = true;
                }
                if let Some(w) = callee {
                    v.mark_prune(t);
                    return v.push_insn(t, w, BRANCH, state, stack);
                }
                Ok(r)
            };
        if insn.is_ldimm64() && insn.src == PSEUDO_FUNC {
            let w = t as i64 + i64::from(insn.imm) + 1;
            return call_edges(self, state, stack, Some(w));
        }
        if !insn.is_jmp_class() {
            return self.push_insn(t, (t + size) as i64, FALLTHROUGH, state, stack);
        }
        match insn.op() {
            jmp::EXIT => Ok(Visit::Done),
            jmp::CALL => {
                if insn.is_helper_call() && crate::helpers::calls_callback(insn.imm) {
                    self.mark_prune(t);
                    self.aux[t].force_checkpoint = true;
                    self.aux[t].jmp_point = true;
                }
                let callee = insn
                    .is_pseudo_call()
                    .then(|| t as i64 + i64::from(insn.imm) + 1);
                call_edges(self, state, stack, callee)
            }
            jmp::JA => {
                let w = t as i64 + insn.jmp_offset() + 1;
                let r = self.push_insn(t, w, FALLTHROUGH, state, stack)?;
                if r == Visit::Keep {
                    return Ok(r);
                }
                self.mark_prune(w as usize);
                self.aux[w as usize].jmp_point = true;
                Ok(r)
            }
            _ => {
                self.mark_prune(t);
                if insn.is_may_goto() {
                    self.aux[t].force_checkpoint = true;
                }
                let r = self.push_insn(t, (t + 1) as i64, FALLTHROUGH, state, stack)?;
                if r == Visit::Keep {
                    return Ok(r);
                }
                self.push_insn(t, t as i64 + i64::from(insn.off) + 1, BRANCH, state, stack)
            }
        }
    }

    fn mark_prune(&mut self, i: usize) {
        if let Some(a) = self.aux.get_mut(i) {
            a.prune_point = true;
        }
    }

    /// Static register liveness (`compute_live_registers`): the registers each
    /// instruction's successors may read before writing them.
    fn compute_live_registers(&mut self) {
        let n = self.insns.len();
        let mut uses = vec![0u16; n];
        let mut defs = vec![0u16; n];
        for i in 0..n {
            let (u, d) = crate::liveness::use_def(self.insns, i);
            uses[i] = u;
            defs[i] = d;
        }
        let order = self.postorder();
        let mut live_in = vec![0u16; n];
        let mut changed = true;
        while changed {
            changed = false;
            for &i in &order {
                let (succ, cnt) = successors(self.insns, i);
                let mut out = 0u16;
                for &s in &succ[..cnt] {
                    if s < n {
                        out |= live_in[s];
                    }
                }
                let inn = (out & !defs[i]) | uses[i];
                if inn != live_in[i] {
                    live_in[i] = inn;
                    changed = true;
                }
            }
        }
        for (a, live) in self.aux.iter_mut().zip(live_in) {
            a.live_regs_before = live;
        }
    }

    /// Static scalar precision ([`crate::sinks`]): the registers whose values may still
    /// decide a check along some path from each instruction.
    fn compute_precise_registers(&mut self) {
        let order = self.postorder();
        let entries: Vec<usize> = self.subprogs.iter().map(|s| s.start).collect();
        let key_sizes = crate::sinks::deciding_key_sizes(self.prog.maps);
        let before = crate::sinks::precise_before(self.insns, &order, &entries, &key_sizes, true);
        for (a, (regs, slots)) in self.aux.iter_mut().zip(before) {
            a.precise_regs_before = regs;
            a.precise_slots_before = slots;
            a.widen_guard = (regs, slots);
        }
        let callbacks = self
            .insns
            .iter()
            .any(|i| i.is_ldimm64() && i.src == PSEUDO_FUNC);
        if callbacks && !self.return_range_checked() {
            // Which scalars callbacks may widen: `r0` at the main program's exit decides
            // nothing for this program type (the kernel never marks it precise there).
            let widen =
                crate::sinks::precise_before(self.insns, &order, &entries, &key_sizes, false);
            for (a, guard) in self.aux.iter_mut().zip(widen) {
                a.widen_guard = guard;
            }
        }
    }

    /// Instructions of each subprogram in post-order of a depth-first walk.
    pub(crate) fn postorder(&self) -> Vec<usize> {
        let n = self.insns.len();
        let mut state = vec![0u8; n];
        let mut out = Vec::with_capacity(n);
        for sp in &self.subprogs {
            let mut stack = vec![sp.start];
            while let Some(&top) = stack.last() {
                state[top] |= 1;
                if state[top] & 2 != 0 {
                    out.push(top);
                    stack.pop();
                    continue;
                }
                let (succ, cnt) = successors(self.insns, top);
                for &s in &succ[..cnt] {
                    if s < n && state[s] == 0 {
                        stack.push(s);
                        state[s] |= 1;
                    }
                }
                state[top] |= 2;
            }
        }
        out
    }
}
