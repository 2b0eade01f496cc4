//! The path walk (`do_check`): follows every path from the first instruction, one
//! instruction at a time, forking at conditional jumps, pruning at checkpoints where an
//! equivalent state was already proven safe, until every path reaches `exit` or an error.
//! The instruction checks live in the `check_*` modules as further `impl Verifier` blocks.

use std::collections::HashMap;

use crate::error::{Rule, VerifierError, E2BIG, EACCES, EFAULT, EINVAL, EPERM};
use crate::input::{MapInfo, Options, Program};
use crate::insn::{class, jmp, Insn};
use crate::log;
use crate::reg::{Reg, RegType};
use crate::state::{HistEntry, VState, FP, NREGS};

/// Most instructions processed over all paths (`BPF_COMPLEXITY_LIMIT_INSNS`).
pub const COMPLEXITY_LIMIT_INSNS: u64 = 1_000_000;
/// Most pending branches (`BPF_COMPLEXITY_LIMIT_JMP_SEQ`).
pub const COMPLEXITY_LIMIT_JMP_SEQ: usize = 8192;

/// What the walk keeps per instruction (`struct bpf_insn_aux_data`).
#[derive(Clone, Debug, Default)]
pub(crate) struct Aux {
    /// States are compared here (jump targets, call returns, conditional jumps).
    pub prune_point: bool,
    /// Jump history is recorded when this instruction is reached (jump targets).
    pub jmp_point: bool,
    /// A checkpoint is always made here.
    pub force_checkpoint: bool,
    /// The pointer type this load/store used first (`save_aux_ptr_type`).
    pub ptr_type: Option<(RegType, u8)>,
    /// Registers read before written from here on, along some path (bit `i` = `ri`).
    pub live_regs_before: u16,
    /// Registers whose values may still decide a check from here on (bit `i` = `ri`):
    /// pruning compares only these scalars' ranges ([`crate::sinks`]).
    pub precise_regs_before: u16,
    /// Stack slots of the instruction's frame whose spilled scalars may still decide a
    /// check (bit `spi`, 0 = `fp-8`).
    pub precise_slots_before: u64,
    /// Reached by some path.
    pub seen: bool,
    /// Spectre v1 sanitation state of a pointer ALU instruction.
    pub alu_state: u32,
    /// Spectre v1 sanitation limit.
    pub alu_limit: u32,
    /// Map index of an `ld_imm64`.
    pub map_index: usize,
    /// A speculative path failed here: a barrier stops speculation (`nospec`).
    pub nospec: bool,
    /// A stack write that needs a barrier after it on speculative paths
    /// (`nospec_result`, Spectre v4).
    pub nospec_result: bool,
    /// Value offset of a `BPF_PSEUDO_MAP_VALUE` `ld_imm64`.
    pub map_off: u32,
    /// The registers and stack slots whose scalars a callback's return must not widen
    /// (`precise_*_before`, without the main program's `r0` when its range is unchecked).
    pub widen_guard: (u16, u64),
}

/// A subprogram (`struct bpf_subprog_info`).
#[derive(Clone, Debug, Default)]
pub(crate) struct Subprog {
    /// First instruction.
    pub start: usize,
    /// Deepest stack use seen (bytes).
    pub stack_depth: usize,
    /// Calls `bpf_tail_call`.
    pub has_tail_call: bool,
    /// Uses `ld_abs`/`ld_ind`.
    pub has_ld_abs: bool,
}

/// A checkpoint (`struct bpf_verifier_state_list`).
#[derive(Debug)]
pub(crate) struct Explored {
    /// The state.
    pub st: VState,
    /// Times a later state was found equivalent.
    pub hit: u32,
    /// Times it was not.
    pub miss: u32,
    /// No longer compared against (evicted by the kernel's heuristic).
    pub evicted: bool,
}

/// A branch still to explore.
#[derive(Debug)]
struct Pending {
    st: VState,
    insn: usize,
    prev: i64,
}

/// What the walk found about the program when it accepts it.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Verdict {
    /// Instructions processed over all paths (the kernel's "processed N insns").
    pub insns_processed: u64,
    /// Checkpoints made.
    pub total_states: u64,
    /// Most checkpoints alive at once.
    pub peak_states: u64,
    /// Stack bytes each subprogram uses.
    pub stack_depth: Vec<usize>,
    /// Per instruction, what the walk proved, when [`Options::collect_facts`] is set.
    pub facts: Vec<InsnFacts>,
    /// The end of the furthest context access (the kernel's `max_ctx_offset`): a
    /// raw_tracepoint or syscall test run refuses a shorter context (`EINVAL`).
    pub max_ctx_offset: u32,
}

/// What the walk proved about one instruction.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct InsnFacts {
    /// Reached on some path (else dead code the kernel would remove).
    pub reached: bool,
    /// For a load or store: the kind of memory every path accesses.
    pub access: Option<AccessKind>,
}

/// The memory a load or store accesses.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum AccessKind {
    /// The context.
    Ctx,
    /// A stack frame.
    Stack,
    /// A map value.
    MapValue,
    /// Packet data.
    Packet,
    /// Memory from a helper.
    Mem,
    /// Something else.
    Other,
}

/// How an instruction ends.
pub(crate) enum Step {
    /// Continue at `insn_idx`.
    Next,
    /// The path reached its end (`exit` of the main program).
    Exit,
}

/// The verifier environment (`struct bpf_verifier_env`).
pub(crate) struct Verifier<'a> {
    pub insns: &'a [Insn],
    pub prog: &'a Program<'a>,
    /// The program's maps, then the inner map templates of its map-in-maps (what a
    /// register's map index names).
    pub maps: std::borrow::Cow<'a, [MapInfo]>,
    /// For each of `maps`: the index in `maps` of its inner map template.
    pub inner_of: Vec<Option<usize>>,
    pub opts: Options,
    pub aux: Vec<Aux>,
    pub subprogs: Vec<Subprog>,
    pub cur: VState,
    pending: Vec<Pending>,
    pub explored: Vec<Explored>,
    pub explored_at: HashMap<usize, Vec<usize>>,
    pub id_gen: u32,
    pub insn_idx: usize,
    pub prev_insn_idx: i64,
    pub insn_processed: u64,
    pub jmps_processed: u64,
    pub prev_jmps_processed: u64,
    pub prev_insn_processed: u64,
    pub total_states: u64,
    pub peak_states: u64,
    /// The end of the furthest context access (`prog->aux->max_ctx_offset`).
    pub max_ctx_offset: i64,
    /// Checkpoints not evicted.
    pub live_states: u64,
    /// Index in `cur.jmp_history` of the entry for the current instruction.
    pub cur_hist_ent: Option<usize>,
    /// Unprivileged pointer arithmetic with a variable offset was seen: scalars are
    /// compared exactly when pruning (`explore_alu_limits`).
    pub explore_alu_limits: bool,
    /// What `may_goto` may widen, per instruction (see `may_goto.rs`), computed at the
    /// first `may_goto`.
    pub may_goto_keep: Vec<(u16, u64)>,
}

/// `maps` followed by the inner map templates of the map-in-maps among them, and for each
/// map the index of its template (the kernel's `map->inner_map_meta`).
fn with_inner_templates(maps: &[MapInfo]) -> (std::borrow::Cow<'_, [MapInfo]>, Vec<Option<usize>>) {
    let mut inner_of = vec![None; maps.len()];
    if maps.iter().all(|m| m.inner.is_none()) {
        return (std::borrow::Cow::Borrowed(maps), inner_of);
    }
    let mut all = maps.to_vec();
    for (i, m) in maps.iter().enumerate() {
        if let Some(t) = &m.inner {
            inner_of[i] = Some(all.len());
            // One level of map-in-map: a template's own template is never followed.
            all.push(MapInfo {
                inner: None,
                ..(**t).clone()
            });
        }
    }
    inner_of.resize(all.len(), None);
    (std::borrow::Cow::Owned(all), inner_of)
}

impl<'a> Verifier<'a> {
    pub(crate) fn new(prog: &'a Program<'a>, opts: Options) -> Verifier<'a> {
        let (maps, inner_of) = with_inner_templates(prog.maps);
        Verifier {
            insns: prog.insns,
            prog,
            maps,
            inner_of,
            opts,
            aux: vec![Aux::default(); prog.insns.len()],
            subprogs: Vec::new(),
            cur: VState::entry(),
            pending: Vec::new(),
            explored: Vec::new(),
            explored_at: HashMap::new(),
            id_gen: 0,
            insn_idx: 0,
            prev_insn_idx: -1,
            insn_processed: 0,
            jmps_processed: 0,
            prev_jmps_processed: 0,
            prev_insn_processed: 0,
            total_states: 0,
            peak_states: 0,
            max_ctx_offset: 0,
            live_states: 0,
            cur_hist_ent: None,
            explore_alu_limits: false,
            may_goto_keep: Vec::new(),
        }
    }

    /// `env->allow_ptr_leaks`.
    pub fn allow_ptr_leaks(&self) -> bool {
        self.opts.privilege.allow_ptr_leaks()
    }

    /// An error at the current instruction, with the current frame's state.
    pub fn err(&self, rule: Rule, errno: i32, msg: impl Into<String>) -> VerifierError {
        VerifierError {
            insn: Some(self.insn_idx),
            rule,
            errno,
            message: msg.into(),
            state: log::frame_str(self.cur.cur(), &self.maps),
        }
    }

    /// The kernel's "verifier bug" (an invariant broken): reported as `EFAULT`.
    pub fn internal(&self, msg: impl Into<String>) -> VerifierError {
        self.err(
            Rule::Unsupported,
            EFAULT,
            format!("verifier bug: {}", msg.into()),
        )
    }

    /// A new id (`++env->id_gen`).
    pub fn new_id(&mut self) -> u32 {
        self.id_gen += 1;
        self.id_gen
    }

    /// The current frame's register `r`.
    pub fn reg(&self, r: u8) -> &Reg {
        &self.cur.regs()[r as usize]
    }

    /// The current frame's register `r`, mutably.
    pub fn reg_mut(&mut self, r: u8) -> &mut Reg {
        &mut self.cur.regs_mut()[r as usize]
    }

    /// Whether register `r` holds a pointer that must not leak (`is_pointer_value`).
    pub fn is_pointer_value(&self, r: u8) -> bool {
        self.reg(r).is_pointer_value(self.allow_ptr_leaks())
    }

    /// An unknown scalar as the kernel initialises it (precise unless `CAP_BPF`, which
    /// both privilege settings have).
    pub fn unknown_scalar(&self) -> Reg {
        Reg::unknown(false)
    }

    /// Reads register `r` as a source (`check_reg_arg(SRC_OP)`).
    pub fn check_reg_src(&self, r: u8) -> Result<(), VerifierError> {
        if r as usize >= NREGS {
            return Err(self.err(Rule::Encoding, EINVAL, format!("R{r} is invalid")));
        }
        if self.reg(r).ty == RegType::NotInit {
            return Err(self.err(Rule::UninitRegister, EACCES, format!("R{r} !read_ok")));
        }
        Ok(())
    }

    /// Checks that register `r` may be written (`check_reg_arg(DST_OP_NO_MARK)`).
    pub fn check_reg_dst(&self, r: u8) -> Result<(), VerifierError> {
        if r as usize >= NREGS {
            return Err(self.err(Rule::Encoding, EINVAL, format!("R{r} is invalid")));
        }
        if r as usize == FP {
            return Err(self.err(Rule::FramePointer, EACCES, "frame pointer is read only"));
        }
        Ok(())
    }

    /// `check_reg_arg(DST_OP)`: checks and marks `r` an unknown scalar.
    pub fn check_reg_dst_mark(&mut self, r: u8) -> Result<(), VerifierError> {
        self.check_reg_dst(r)?;
        let u = self.unknown_scalar();
        *self.reg_mut(r) = u;
        Ok(())
    }

    /// Records the current instruction in the path's jump history (`push_jmp_history`);
    /// a second record for the same instruction merges into the first.
    pub fn push_jmp_history(&mut self, flags: u32, linked: u64) {
        if let Some(i) = self.cur_hist_ent {
            let e = &mut self.cur.jmp_history[i];
            e.flags |= flags;
            e.linked = linked;
            return;
        }
        self.cur.jmp_history.push(HistEntry {
            idx: self.insn_idx as u32,
            prev_idx: self.prev_insn_idx as u32,
            flags,
            linked,
        });
        self.cur_hist_ent = Some(self.cur.jmp_history.len() - 1);
    }

    /// Queues the current state, continuing at `insn` (`push_stack`).
    pub fn push_branch(&mut self, insn: usize, prev: i64) -> Result<&mut VState, VerifierError> {
        self.push_branch_spec(insn, prev, false)
    }

    /// [`Verifier::push_branch`], marking the queued path speculative when `speculative`.
    pub fn push_branch_spec(
        &mut self,
        insn: usize,
        prev: i64,
        speculative: bool,
    ) -> Result<&mut VState, VerifierError> {
        if self.pending.len() + 1 > COMPLEXITY_LIMIT_JMP_SEQ {
            return Err(self.err(
                Rule::Complexity,
                E2BIG,
                format!(
                    "The sequence of {} jumps is too complex.",
                    self.pending.len() + 1
                ),
            ));
        }
        let mut st = self.cur.clone();
        st.speculative |= speculative;
        if let Some(p) = st.parent {
            self.explored[p].st.branches += 1;
        }
        self.pending.push(Pending { st, insn, prev });
        Ok(&mut self.pending.last_mut().expect("just pushed").st)
    }

    /// Queues `st`, a path of its own (no parent checkpoint), to start at `insn`.
    pub(crate) fn push_state(
        &mut self,
        st: VState,
        insn: usize,
        prev: i64,
    ) -> Result<(), VerifierError> {
        if self.pending.len() + 1 > COMPLEXITY_LIMIT_JMP_SEQ {
            return Err(self.err(
                Rule::Complexity,
                E2BIG,
                format!(
                    "The sequence of {} jumps is too complex.",
                    self.pending.len() + 1
                ),
            ));
        }
        self.pending.push(Pending { st, insn, prev });
        Ok(())
    }

    /// The state most recently queued by [`Verifier::push_branch`].
    pub fn pending_top(&mut self) -> &mut VState {
        &mut self.pending.last_mut().expect("a branch was queued").st
    }

    /// Walks every path of the program (`do_check_main`).
    pub(crate) fn do_check(&mut self) -> Result<(), VerifierError> {
        self.cur = VState::entry();
        self.insn_idx = 0;
        let mut prev_insn_idx: i64 = -1;
        loop {
            self.cur_hist_ent = None;
            self.prev_insn_idx = prev_insn_idx;
            if self.insn_idx >= self.insns.len() {
                return Err(self.internal(format!(
                    "invalid insn idx {} insn_cnt {}",
                    self.insn_idx,
                    self.insns.len()
                )));
            }
            self.insn_processed += 1;
            if self.insn_processed > COMPLEXITY_LIMIT_INSNS {
                return Err(self.err(
                    Rule::Complexity,
                    E2BIG,
                    format!(
                        "BPF program is too large. Processed {} insn",
                        self.insn_processed
                    ),
                ));
            }
            self.cur.last_insn_idx = self.prev_insn_idx;
            self.cur.insn_idx = self.insn_idx;
            let mut exit = false;
            if self.aux[self.insn_idx].prune_point && self.is_state_visited(self.insn_idx)? {
                exit = true;
            }
            if !exit {
                if self.aux[self.insn_idx].jmp_point {
                    self.push_jmp_history(0, 0);
                }
                let idx = self.insn_idx;
                if !self.cur.speculative {
                    self.aux[idx].seen = true;
                }
                prev_insn_idx = idx as i64;
                if self.cur.speculative && self.aux[idx].nospec {
                    exit = true;
                } else {
                    match self.do_check_insn() {
                        Ok(Step::Next) => {
                            if self.cur.speculative && self.aux[idx].nospec_result {
                                exit = true;
                            } else {
                                continue;
                            }
                        }
                        Ok(Step::Exit) => exit = true,
                        Err(e)
                            if self.cur.speculative
                                && matches!(e.errno, EACCES | EINVAL | EPERM) =>
                        {
                            // A speculative path that would fail gets a barrier instead.
                            self.aux[idx].nospec = true;
                            self.aux[idx].alu_state = 0;
                            exit = true;
                        }
                        Err(e) => return Err(e),
                    }
                }
            }
            if exit {
                self.update_branch_counts(self.cur.parent);
                match self.pending.pop() {
                    None => return Ok(()),
                    Some(p) => {
                        self.cur = p.st;
                        self.insn_idx = p.insn;
                        prev_insn_idx = p.prev;
                    }
                }
            }
        }
    }

    /// A path ended: the checkpoints it descends from have one branch less
    /// (`update_branch_counts`); the path's own state counts as one.
    fn update_branch_counts(&mut self, mut parent: Option<usize>) {
        while let Some(p) = parent {
            let st = &mut self.explored[p].st;
            st.branches = st.branches.saturating_sub(1);
            if st.branches > 0 {
                break;
            }
            parent = st.parent;
        }
    }

    /// One instruction (`do_check_insn`).
    fn do_check_insn(&mut self) -> Result<Step, VerifierError> {
        let insn = self.insns[self.insn_idx];
        match insn.class() {
            class::ALU | class::ALU64 => self.check_alu_op(&insn)?,
            class::LDX => self.check_ldx(&insn)?,
            class::STX => {
                if insn.mode() == crate::insn::mode::ATOMIC {
                    self.check_atomic(&insn)?;
                    self.insn_idx += 1;
                    return Ok(Step::Next);
                }
                if insn.mode() != crate::insn::mode::MEM || insn.imm != 0 {
                    return Err(self.err(Rule::Encoding, EINVAL, "BPF_STX uses reserved fields"));
                }
                self.check_store_reg(&insn)?;
            }
            class::ST => {
                if insn.mode() != crate::insn::mode::MEM || insn.src != 0 {
                    return Err(self.err(Rule::Encoding, EINVAL, "BPF_ST uses reserved fields"));
                }
                self.check_st(&insn)?;
            }
            class::JMP | class::JMP32 => {
                self.jmps_processed += 1;
                let op = insn.op();
                if op == jmp::CALL {
                    let bad = insn.src_is_reg()
                        || (insn.src != crate::insn::PSEUDO_KFUNC_CALL && insn.off != 0)
                        || !matches!(
                            insn.src,
                            0 | crate::insn::PSEUDO_CALL | crate::insn::PSEUDO_KFUNC_CALL
                        )
                        || insn.dst != 0
                        || insn.class() == class::JMP32;
                    if bad {
                        return Err(self.err(
                            Rule::Encoding,
                            EINVAL,
                            "BPF_CALL uses reserved fields",
                        ));
                    }
                    self.check_call_under_lock(&insn)?;
                    if insn.src == crate::insn::PSEUDO_CALL {
                        self.check_func_call(&insn)?;
                    } else if insn.src == crate::insn::PSEUDO_KFUNC_CALL {
                        self.check_kfunc_call(insn.imm)?;
                    } else {
                        self.check_helper_call(&insn)?;
                    }
                } else if op == jmp::JA {
                    let bad = insn.src_is_reg()
                        || insn.src != 0
                        || insn.dst != 0
                        || (insn.class() == class::JMP && insn.imm != 0)
                        || (insn.class() == class::JMP32 && insn.off != 0);
                    if bad {
                        return Err(self.err(
                            Rule::Encoding,
                            EINVAL,
                            "BPF_JA uses reserved fields",
                        ));
                    }
                    self.insn_idx = (self.insn_idx as i64 + insn.jmp_offset() + 1) as usize;
                    return Ok(Step::Next);
                } else if op == jmp::EXIT {
                    if insn.src_is_reg()
                        || insn.imm != 0
                        || insn.src != 0
                        || insn.dst != 0
                        || insn.class() == class::JMP32
                    {
                        return Err(self.err(
                            Rule::Encoding,
                            EINVAL,
                            "BPF_EXIT uses reserved fields",
                        ));
                    }
                    return self.process_exit();
                } else {
                    self.check_cond_jmp_op(&insn)?;
                }
            }
            _ => {
                let mode = insn.mode();
                if mode == crate::insn::mode::ABS || mode == crate::insn::mode::IND {
                    self.check_ld_abs(&insn)?;
                } else if mode == crate::insn::mode::IMM {
                    self.check_ld_imm(&insn)?;
                    self.insn_idx += 1;
                } else {
                    return Err(self.err(Rule::Encoding, EINVAL, "invalid BPF_LD mode"));
                }
            }
        }
        self.insn_idx += 1;
        Ok(Step::Next)
    }

    /// `exit`: returns from a subprogram, or ends the path at the main program's exit
    /// after checking references and the return value.
    fn process_exit(&mut self) -> Result<Step, VerifierError> {
        self.check_resource_leak(
            "BPF_EXIT instruction in main prog",
            self.cur.curframe() == 0,
        )?;
        // After the reference leak, as the kernel's check_resource_leak.
        if self.cur.active_rcu_lock && self.cur.curframe() == 0 {
            return Err(self.err(
                Rule::References,
                EINVAL,
                "BPF_EXIT instruction in main prog cannot be used inside bpf_rcu_read_lock-ed region",
            ));
        }
        if self.cur.curframe() > 0 {
            self.prepare_func_exit()?;
            return Ok(Step::Next);
        }
        self.check_return_code()?;
        Ok(Step::Exit)
    }

    /// Refuses acquired references still held (`check_resource_leak`).
    pub fn check_resource_leak(&self, what: &str, check_all: bool) -> Result<(), VerifierError> {
        if check_all {
            self.check_lock_released(what)?;
            if let Some(r) = self.cur.refs.first() {
                return Err(self.err(
                    Rule::References,
                    EINVAL,
                    format!("Unreleased reference id={} alloc_insn={}", r.id, r.insn_idx),
                ));
            }
        }
        Ok(())
    }

    /// The verdict after a successful walk.
    pub(crate) fn verdict(&self) -> Verdict {
        let facts = if self.opts.collect_facts {
            self.aux
                .iter()
                .map(|a| InsnFacts {
                    reached: a.seen,
                    access: a.ptr_type.map(|(t, _)| match t {
                        RegType::Ctx => AccessKind::Ctx,
                        RegType::Stack => AccessKind::Stack,
                        RegType::MapValue => AccessKind::MapValue,
                        RegType::Packet | RegType::PacketMeta => AccessKind::Packet,
                        RegType::Mem => AccessKind::Mem,
                        _ => AccessKind::Other,
                    }),
                })
                .collect()
        } else {
            Vec::new()
        };
        Verdict {
            insns_processed: self.insn_processed,
            total_states: self.total_states,
            peak_states: self.peak_states,
            stack_depth: self.subprogs.iter().map(|s| s.stack_depth).collect(),
            facts,
            max_ctx_offset: u32::try_from(self.max_ctx_offset).unwrap_or(0),
        }
    }
}
