//! bpfvm's own interpreter: the whole ISA over pre-decoded instructions, every memory access
//! checked against the region table of `docs/internals.md`.
//!
//! Fast by design: instructions are decoded once by [`crate::verify`]; a run allocates nothing
//! (the lane's stack and buffers are reused); each instruction is 16 bytes whose opcode is a
//! `Code` enum, so the loop's `match` is exhaustive and dispatches through one jump table
//! with no range check; register numbers are `Reg`s, so the 11-entry register file is
//! indexed with no bounds check and no mask; a memory check is one table index and two
//! compares.
//!
//! Helper calls are resolved when the program is prepared, against the registry it is loaded
//! with: each `call imm` becomes [`op::CALL_HELPER`], indexing the program's own table of
//! plain helper functions (the built-ins: one indirect call, arguments passed as a reference
//! into the register file, result in registers), or [`op::CALL_HELPER_DYN`] for helper
//! objects (closures), so a call does no id lookup and no `Option` check; the built-in
//! `bpf_get_smp_processor_id` becomes [`op::GET_SMP_PROCESSOR_ID`], one load of the lane's CPU
//! number, as the kernel inlines it. After a helper call the work the helper charged (the
//! bytes it copied, `HelperContext::charge_bytes`) comes off the run's instruction budget.

use std::sync::atomic::{AtomicU64, Ordering};

use bpfvm_helpers::memory::{guest_addr, map_handle, map_regions, AtomicOp, REGION_STACK};
use std::sync::Arc;

use bpfvm_helpers::registry::{Callable, HelperFn, Inline};
use bpfvm_helpers::{Helper, HelperContext, HelperError, MapList, Registry};
use rbpf::ebpf;

use crate::cpu::{Frame, Lane, FRAME_SIZE, MAX_FRAMES, STACK_SIZE};
use crate::engine::callback;
use crate::engine::{Engine, EngineKind, RunEnv};
use crate::error::{PrepareError, RunError, SourceAt};
use crate::insn::{op, Insn, TAIL_CALL_HELPER};
use crate::program::Program;
use crate::verify;

static NEXT_ID: AtomicU64 = AtomicU64::new(1);

/// Declares [`Code`], one variant per opcode the loop executes (its discriminant is the
/// opcode), and [`Code::of`].
macro_rules! codes {
    ($($name:ident = $val:expr,)*) => {
        /// An executable opcode. A `match` on it is exhaustive with no fallback arm, so the
        /// dispatch is one jump-table load with no range check.
        #[allow(non_camel_case_types, clippy::upper_case_acronyms)]
        #[derive(Debug, Clone, Copy, PartialEq, Eq)]
        #[repr(u8)]
        enum Code {
            $($name = $val,)*
            /// An opcode with no executable form (never produced for a verified program).
            Invalid = 0,
            /// `exit` in a program without bpf-to-bpf calls: always from the main frame
            /// (never produced by [`Code::of`]; the value is no opcode).
            ExitMain = 0x01,
        }

        impl Code {
            /// The executable form of `opcode`.
            fn of(opcode: u8) -> Code {
                #[allow(non_upper_case_globals)]
                mod value {
                    use super::*;
                    $(pub(super) const $name: u8 = $val;)*
                }
                match opcode {
                    $(value::$name => Code::$name,)*
                    _ => Code::Invalid,
                }
            }
        }
    };
}

codes! {
    ADD64_IMM = ebpf::ADD64_IMM,
    ADD64_REG = ebpf::ADD64_REG,
    SUB64_IMM = ebpf::SUB64_IMM,
    SUB64_REG = ebpf::SUB64_REG,
    MUL64_IMM = ebpf::MUL64_IMM,
    MUL64_REG = ebpf::MUL64_REG,
    DIV64_IMM = ebpf::DIV64_IMM,
    DIV64_REG = ebpf::DIV64_REG,
    MOD64_IMM = ebpf::MOD64_IMM,
    MOD64_REG = ebpf::MOD64_REG,
    OR64_IMM = ebpf::OR64_IMM,
    OR64_REG = ebpf::OR64_REG,
    AND64_IMM = ebpf::AND64_IMM,
    AND64_REG = ebpf::AND64_REG,
    XOR64_IMM = ebpf::XOR64_IMM,
    XOR64_REG = ebpf::XOR64_REG,
    LSH64_IMM = ebpf::LSH64_IMM,
    LSH64_REG = ebpf::LSH64_REG,
    RSH64_IMM = ebpf::RSH64_IMM,
    RSH64_REG = ebpf::RSH64_REG,
    ARSH64_IMM = ebpf::ARSH64_IMM,
    ARSH64_REG = ebpf::ARSH64_REG,
    NEG64 = ebpf::NEG64,
    MOV64_IMM = ebpf::MOV64_IMM,
    MOV64_REG = ebpf::MOV64_REG,
    SDIV64_IMM = op::SDIV64_IMM,
    SDIV64_REG = op::SDIV64_REG,
    SMOD64_IMM = op::SMOD64_IMM,
    SMOD64_REG = op::SMOD64_REG,
    MOVSX64 = op::MOVSX64,
    ADD32_IMM = ebpf::ADD32_IMM,
    ADD32_REG = ebpf::ADD32_REG,
    SUB32_IMM = ebpf::SUB32_IMM,
    SUB32_REG = ebpf::SUB32_REG,
    MUL32_IMM = ebpf::MUL32_IMM,
    MUL32_REG = ebpf::MUL32_REG,
    DIV32_IMM = ebpf::DIV32_IMM,
    DIV32_REG = ebpf::DIV32_REG,
    MOD32_IMM = ebpf::MOD32_IMM,
    MOD32_REG = ebpf::MOD32_REG,
    OR32_IMM = ebpf::OR32_IMM,
    OR32_REG = ebpf::OR32_REG,
    AND32_IMM = ebpf::AND32_IMM,
    AND32_REG = ebpf::AND32_REG,
    XOR32_IMM = ebpf::XOR32_IMM,
    XOR32_REG = ebpf::XOR32_REG,
    LSH32_IMM = ebpf::LSH32_IMM,
    LSH32_REG = ebpf::LSH32_REG,
    RSH32_IMM = ebpf::RSH32_IMM,
    RSH32_REG = ebpf::RSH32_REG,
    ARSH32_IMM = ebpf::ARSH32_IMM,
    ARSH32_REG = ebpf::ARSH32_REG,
    NEG32 = ebpf::NEG32,
    MOV32_IMM = ebpf::MOV32_IMM,
    MOV32_REG = ebpf::MOV32_REG,
    SDIV32_IMM = op::SDIV32_IMM,
    SDIV32_REG = op::SDIV32_REG,
    SMOD32_IMM = op::SMOD32_IMM,
    SMOD32_REG = op::SMOD32_REG,
    MOVSX32 = op::MOVSX32,
    LE = ebpf::LE,
    BE = ebpf::BE,
    BSWAP = 0xd7,
    LD_DW_IMM = ebpf::LD_DW_IMM,
    LD_B_REG = ebpf::LD_B_REG,
    LD_H_REG = ebpf::LD_H_REG,
    LD_W_REG = ebpf::LD_W_REG,
    LD_DW_REG = ebpf::LD_DW_REG,
    LDSX_B = 0x91,
    LDSX_H = 0x89,
    LDSX_W = 0x81,
    PROBE_LD_B = 0x71 ^ crate::probe_mem::PROBE_FLIP,
    PROBE_LD_H = 0x69 ^ crate::probe_mem::PROBE_FLIP,
    PROBE_LD_W = 0x61 ^ crate::probe_mem::PROBE_FLIP,
    PROBE_LD_DW = 0x79 ^ crate::probe_mem::PROBE_FLIP,
    PROBE_LDSX_B = 0x91 ^ crate::probe_mem::PROBE_FLIP,
    PROBE_LDSX_H = 0x89 ^ crate::probe_mem::PROBE_FLIP,
    PROBE_LDSX_W = 0x81 ^ crate::probe_mem::PROBE_FLIP,
    ST_B_IMM = ebpf::ST_B_IMM,
    ST_H_IMM = ebpf::ST_H_IMM,
    ST_W_IMM = ebpf::ST_W_IMM,
    ST_DW_IMM = ebpf::ST_DW_IMM,
    ST_B_REG = ebpf::ST_B_REG,
    ST_H_REG = ebpf::ST_H_REG,
    ST_W_REG = ebpf::ST_W_REG,
    ST_DW_REG = ebpf::ST_DW_REG,
    ST_W_XADD = ebpf::ST_W_XADD,
    ST_DW_XADD = ebpf::ST_DW_XADD,
    JA = ebpf::JA,
    MAY_GOTO = crate::insn::MAY_GOTO,
    JEQ_IMM = ebpf::JEQ_IMM,
    JEQ_REG = ebpf::JEQ_REG,
    JGT_IMM = ebpf::JGT_IMM,
    JGT_REG = ebpf::JGT_REG,
    JGE_IMM = ebpf::JGE_IMM,
    JGE_REG = ebpf::JGE_REG,
    JLT_IMM = ebpf::JLT_IMM,
    JLT_REG = ebpf::JLT_REG,
    JLE_IMM = ebpf::JLE_IMM,
    JLE_REG = ebpf::JLE_REG,
    JSET_IMM = ebpf::JSET_IMM,
    JSET_REG = ebpf::JSET_REG,
    JNE_IMM = ebpf::JNE_IMM,
    JNE_REG = ebpf::JNE_REG,
    JSGT_IMM = ebpf::JSGT_IMM,
    JSGT_REG = ebpf::JSGT_REG,
    JSGE_IMM = ebpf::JSGE_IMM,
    JSGE_REG = ebpf::JSGE_REG,
    JSLT_IMM = ebpf::JSLT_IMM,
    JSLT_REG = ebpf::JSLT_REG,
    JSLE_IMM = ebpf::JSLE_IMM,
    JSLE_REG = ebpf::JSLE_REG,
    JEQ_IMM32 = ebpf::JEQ_IMM32,
    JEQ_REG32 = ebpf::JEQ_REG32,
    JGT_IMM32 = ebpf::JGT_IMM32,
    JGT_REG32 = ebpf::JGT_REG32,
    JGE_IMM32 = ebpf::JGE_IMM32,
    JGE_REG32 = ebpf::JGE_REG32,
    JLT_IMM32 = ebpf::JLT_IMM32,
    JLT_REG32 = ebpf::JLT_REG32,
    JLE_IMM32 = ebpf::JLE_IMM32,
    JLE_REG32 = ebpf::JLE_REG32,
    JSET_IMM32 = ebpf::JSET_IMM32,
    JSET_REG32 = ebpf::JSET_REG32,
    JNE_IMM32 = ebpf::JNE_IMM32,
    JNE_REG32 = ebpf::JNE_REG32,
    JSGT_IMM32 = ebpf::JSGT_IMM32,
    JSGT_REG32 = ebpf::JSGT_REG32,
    JSGE_IMM32 = ebpf::JSGE_IMM32,
    JSGE_REG32 = ebpf::JSGE_REG32,
    JSLT_IMM32 = ebpf::JSLT_IMM32,
    JSLT_REG32 = ebpf::JSLT_REG32,
    JSLE_IMM32 = ebpf::JSLE_IMM32,
    JSLE_REG32 = ebpf::JSLE_REG32,
    CALL_HELPER = op::CALL_HELPER,
    CALL_HELPER_DYN = op::CALL_HELPER_DYN,
    GET_SMP_PROCESSOR_ID = op::GET_SMP_PROCESSOR_ID,
    CORE_POISON = op::CORE_POISON,
    TAIL_CALL_HELPER = op::TAIL_CALL_HELPER,
    TAIL_CALL = ebpf::TAIL_CALL,
    CALL_LOCAL = op::CALL_LOCAL,
    CALL_CALLBACK = op::CALL_CALLBACK,
    EXIT = ebpf::EXIT,
}

/// A register number, `r0..=r10`: indexing the 11-entry register file with it needs no
/// bounds check and no mask.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[repr(u8)]
enum Reg {
    R0,
    R1,
    R2,
    R3,
    R4,
    R5,
    R6,
    R7,
    R8,
    R9,
    R10,
}

impl Reg {
    /// `r{n}`, if `n <= 10`.
    fn of(n: u8) -> Option<Reg> {
        const ALL: [Reg; 11] = [
            Reg::R0,
            Reg::R1,
            Reg::R2,
            Reg::R3,
            Reg::R4,
            Reg::R5,
            Reg::R6,
            Reg::R7,
            Reg::R8,
            Reg::R9,
            Reg::R10,
        ];
        ALL.get(n as usize).copied()
    }
}

/// An instruction as the loop runs it: [`Insn`] with its opcode as a [`Code`] and its
/// registers as [`Reg`]s (16 bytes).
#[derive(Debug, Clone, Copy)]
struct Exec {
    imm: u64,
    target: u32,
    code: Code,
    dst: Reg,
    src: Reg,
    /// The opcode, for error messages.
    op: u8,
}

impl Exec {
    /// Fills the code array up to a power of two; never reached.
    const PADDING: Exec = Exec {
        imm: 0,
        target: 0,
        code: Code::Invalid,
        dst: Reg::R0,
        src: Reg::R0,
        op: 0,
    };

    /// The executable form of `d` (at `pc`).
    fn of(pc: usize, d: &Insn) -> Result<Exec, PrepareError> {
        let reg = |r: u8| Reg::of(r).ok_or(PrepareError::BadRegister { pc, reg: r });
        Ok(Exec {
            imm: d.imm,
            target: d.target,
            code: Code::of(d.op),
            dst: reg(d.dst)?,
            src: reg(d.src)?,
            op: d.op,
        })
    }

    /// See [`Insn::off`].
    #[inline(always)]
    fn off(&self) -> i16 {
        self.target as i32 as i16
    }

    /// See [`Insn::mem_off`].
    #[inline(always)]
    fn mem_off(&self) -> u64 {
        self.target as i32 as i64 as u64
    }
}

/// A program prepared for the interpreter.
#[derive(Debug)]
pub struct Interpreter {
    insns: Box<[Insn]>,
    /// `insns` in the form the loop runs, padded to a power of two.
    code: Box<[Exec]>,
    /// The helpers the program calls, resolved at prepare time.
    helpers: Helpers,
    maps: MapList,
    id: u64,
    /// Whether any instruction names `r10` or calls a bpf-to-bpf function: if none does, the
    /// program runs with no stack frame accessible (as the kernel's verifier allows it no
    /// stack access), so it can neither read nor leave data there.
    uses_stack: bool,
    /// The first instructions of the program's callbacks (targets of `ld_imm64` of a
    /// function), sorted.
    callbacks: Box<[u32]>,
    /// Whether the program calls `bpf_tail_call`: its runs may install other programs' maps,
    /// so each run installs its own again.
    has_tail_call: bool,
}

impl Interpreter {
    /// Validates and pre-decodes `program`; resolves map pseudo loads to guest addresses and
    /// helper calls to `registry`'s entries (the ones a run calls, whatever registry it is
    /// given later; `callx` still looks its id up at run time).
    pub fn prepare(program: &Program, registry: &Registry) -> Result<Interpreter, PrepareError> {
        let raw = verify::raw_insns(program.bytecode())?;
        let shapes = verify::MapShape::all(program.maps());
        let mut insns = verify::decode(
            &raw,
            verify::Env {
                maps: &shapes,
                helper_known: &|id| id == TAIL_CALL_HELPER || registry.get(id).is_some(),
            },
        )?;
        let regions = map_regions(program.maps()).ok_or(PrepareError::AddressSpace {
            maps: program.maps().len(),
        })?;
        let mut helpers = HelperTable::default();
        let mut callbacks: Vec<u32> = Vec::new();
        let block_starts = callback::block_starts(&insns);
        for pc in 0..insns.len() {
            if insns[pc].op == ebpf::CALL {
                if insns[pc].imm == u64::from(TAIL_CALL_HELPER) {
                    insns[pc].op = op::TAIL_CALL_HELPER;
                    continue;
                }
                helpers.resolve(pc, &mut insns[pc], registry)?;
                if insns[pc].op == op::CALL_CALLBACK {
                    let zero = callback::flags_known_zero(&insns, &block_starts, pc);
                    insns[pc].target = u32::from(zero);
                }
                continue;
            }
            let d = &mut insns[pc];
            match d.op {
                op::LD_FUNC => {
                    callbacks.push(d.target);
                    d.imm = callback::func_handle(d.target);
                    d.op = ebpf::LD_DW_IMM;
                }
                op::LD_MAP_FD => {
                    d.imm = map_handle(d.imm as u32);
                    d.op = ebpf::LD_DW_IMM;
                }
                op::LD_MAP_VALUE => {
                    // The map's (single) value: object 0 of its first region.
                    d.imm = guest_addr(regions[d.imm as usize], d.target);
                    d.op = ebpf::LD_DW_IMM;
                }
                _ => {}
            }
        }
        if crate::probe_mem::enabled(program) {
            for d in insns.iter_mut() {
                d.op = crate::probe_mem::probe_op(d.op);
            }
        }
        // Only `r10` (and the frames of bpf-to-bpf calls) lead to the stack; a program without
        // them runs with the stack closed, so no address it computes can reach stack bytes.
        // A tail call's target runs in the caller's frame: a program with tail calls keeps
        // its frame open (and counted dirty) for the programs it jumps to.
        let has_tail_call = insns.iter().any(|d| d.op == op::TAIL_CALL_HELPER);
        let calls = !callbacks.is_empty() || insns.iter().any(|d| d.op == op::CALL_LOCAL);
        let uses_stack = calls || has_tail_call || insns.iter().any(|d| d.dst == 10 || d.src == 10);
        callbacks.sort_unstable();
        callbacks.dedup();
        let code = insns
            .iter()
            .enumerate()
            .map(|(pc, d)| Exec::of(pc, d))
            .chain(std::iter::repeat_n(
                Ok(Exec::PADDING),
                insns.len().next_power_of_two() - insns.len(),
            ))
            .collect::<Result<Box<[Exec]>, PrepareError>>()?;
        let mut code = code;
        if !calls {
            // Without calls every `exit` leaves the main frame: no depth test.
            for e in code.iter_mut().filter(|e| e.code == Code::EXIT) {
                e.code = Code::ExitMain;
            }
        }
        Ok(Interpreter {
            uses_stack,
            callbacks: callbacks.into_boxed_slice(),
            has_tail_call,
            code,
            insns: insns.into_boxed_slice(),
            helpers: Helpers {
                fns: helpers.fns.into_boxed_slice(),
                objects: helpers.objects.into_boxed_slice(),
                core_poisons: program.core_poisons().into(),
            },
            maps: program.map_list(),
            id: NEXT_ID.fetch_add(1, Ordering::Relaxed),
        })
    }

    /// The pre-decoded instructions.
    pub fn insns(&self) -> &[Insn] {
        &self.insns
    }

    /// The resolved helpers: the plain functions indexed by the `target` of
    /// [`op::CALL_HELPER`], the helper objects by that of [`op::CALL_HELPER_DYN`].
    pub fn helpers(&self) -> (&[HelperFn], &[Arc<dyn Helper>]) {
        (&self.helpers.fns, &self.helpers.objects)
    }
}

/// A prepared program's helper tables.
struct Helpers {
    fns: Box<[HelperFn]>,
    objects: Box<[Arc<dyn Helper>]>,
    /// The program's poisoned CO-RE relocations, named in the error of a run reaching one.
    core_poisons: Box<[(usize, Arc<str>)]>,
}

impl std::fmt::Debug for Helpers {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Helpers")
            .field("fns", &self.fns.len())
            .field("objects", &self.objects.len())
            .finish()
    }
}

/// The helpers of one program being prepared: one slot per distinct id.
#[derive(Default)]
struct HelperTable {
    fn_ids: Vec<u32>,
    fns: Vec<HelperFn>,
    object_ids: Vec<u32>,
    objects: Vec<Arc<dyn Helper>>,
}

/// The slot of `id` in `ids` (and its table), added with `make` if new.
fn slot<T>(ids: &mut Vec<u32>, table: &mut Vec<T>, id: u32, make: impl FnOnce() -> T) -> u32 {
    let i = ids.iter().position(|&x| x == id).unwrap_or_else(|| {
        ids.push(id);
        table.push(make());
        ids.len() - 1
    });
    i as u32
}

impl HelperTable {
    /// Rewrites the helper call `d` (at `pc`) into its inline form or a table call.
    fn resolve(
        &mut self,
        pc: usize,
        d: &mut Insn,
        registry: &Registry,
    ) -> Result<(), PrepareError> {
        let id = d.imm as u32;
        if id == crate::insn::CORE_POISON_HELPER as u32 {
            d.op = op::CORE_POISON;
            return Ok(());
        }
        let entry = registry
            .get(id)
            .ok_or(PrepareError::UnknownHelper { pc, id: id as i64 })?;
        match entry.inline {
            Some(Inline::SmpProcessorId) => {
                d.op = op::GET_SMP_PROCESSOR_ID;
                return Ok(());
            }
            Some(Inline::Loop | Inline::ForEachMapElem) => {
                d.op = op::CALL_CALLBACK;
                return Ok(());
            }
            _ => {}
        }
        (d.op, d.target) = match &entry.helper {
            Callable::Fn(f) => (
                op::CALL_HELPER,
                slot(&mut self.fn_ids, &mut self.fns, id, || *f),
            ),
            Callable::Dyn(h) => (
                op::CALL_HELPER_DYN,
                slot(&mut self.object_ids, &mut self.objects, id, || {
                    Arc::clone(h)
                }),
            ),
        };
        Ok(())
    }
}

/// What the jit engine reads of a prepared program (absent builds have no jit).
#[cfg_attr(
    not(all(
        feature = "jit",
        any(target_arch = "x86_64", target_arch = "aarch64"),
        target_endian = "little",
        not(miri)
    )),
    allow(dead_code)
)]
impl Interpreter {
    /// The id under which a lane installs the program's maps ([`Lane::install_maps`]).
    pub(crate) fn id(&self) -> u64 {
        self.id
    }

    /// The program's maps.
    pub(crate) fn map_list(&self) -> &MapList {
        &self.maps
    }

    /// Whether the program runs with its stack frame open (see the field).
    pub(crate) fn uses_stack(&self) -> bool {
        self.uses_stack
    }

    /// The first instructions of the program's callbacks, sorted.
    pub(crate) fn callbacks(&self) -> &[u32] {
        &self.callbacks
    }

    /// Whether the program calls `bpf_tail_call` (see the field).
    pub(crate) fn has_tail_call(&self) -> bool {
        self.has_tail_call
    }
}

impl Engine for Interpreter {
    fn kind(&self) -> EngineKind {
        EngineKind::Interpreter
    }

    fn as_interpreter(&self) -> Option<&Interpreter> {
        Some(self)
    }

    fn run(&self, _program: &Program, lane: &mut Lane, env: RunEnv<'_>) -> Result<u64, RunError> {
        self.runs(lane, env, 1, false)
    }

    fn run_repeated(
        &self,
        _program: &Program,
        lane: &mut Lane,
        env: RunEnv<'_>,
        repeat: u32,
    ) -> Result<u64, RunError> {
        self.runs(lane, env, repeat.max(1), true)
    }
}

impl Interpreter {
    /// `repeat` runs on `lane`, each begun here when `begin` (else the caller began the only
    /// one: `repeat` is 1). One loop around [`execute`], so the per-call work (map installation, the
    /// function's prologue and result copy) is paid once, not per run.
    fn runs(
        &self,
        lane: &mut Lane,
        env: RunEnv<'_>,
        repeat: u32,
        begin: bool,
    ) -> Result<u64, RunError> {
        let too_many_maps = || RunError::BadInput {
            reason: "the program's maps have more values than guest addresses can name".into(),
        };
        if !lane.install_maps(self.id, &self.maps) {
            return Err(too_many_maps());
        }
        lane.set_stack_depth(usize::from(self.uses_stack));
        let r1 = lane.ctx_addr();
        let r2 = lane.ctx_len as u64;
        // `code.len()` is a power of two (padded when prepared) and the verifier keeps every
        // pc below the unpadded length, so masking never changes a pc: it only shows the
        // optimiser that the loop's index is in bounds.
        let Some(mask) = self.code.len().checked_sub(1) else {
            return Err(RunError::BadInput {
                reason: "the program has no instructions".into(),
            });
        };
        if begin {
            lane.begin_run();
        }
        let mut runs_left = repeat.max(1);
        loop {
            if self.has_tail_call {
                // The last run may have ended in another program, with its maps installed.
                lane.forget_maps();
                if !lane.install_maps(self.id, &self.maps) {
                    return Err(too_many_maps());
                }
            }
            lane.prepare_stack();
            let mut used = 1;
            let code = Machine {
                insns: &self.code,
                mask,
                helpers: &self.helpers,
                callbacks: &self.callbacks,
                registry: env.registry,
                budget: env.budget,
            };
            let start = Start {
                pc: 0,
                depth: 0,
                args: [r1, r2, 0, 0, 0],
                fp: guest_addr(REGION_STACK, STACK_SIZE as u32),
            };
            let mut nest = Nest::main(env.budget);
            // The race explorer's hook wants each watched access's instruction: a second
            // copy of the loop notes it (`W`); normal runs take the copy that does not.
            let result = if lane.helper_ctx.memory.has_access_hook() {
                execute_watched(
                    &code,
                    &mut lane.helper_ctx,
                    &mut lane.frames,
                    &mut used,
                    start,
                    &mut nest,
                )
            } else {
                execute::<false>(
                    &code,
                    &mut lane.helper_ctx,
                    &mut lane.frames,
                    &mut used,
                    start,
                    &mut nest,
                )
            };
            if self.has_tail_call {
                lane.forget_maps();
            }
            if self.uses_stack {
                // (`prepare_stack` left 0 otherwise.)
                lane.dirty_frames = used;
            }
            if used > 1 {
                // Calls moved the stack window; between runs only frame 0 is accessible.
                lane.reset_stack_depth(1);
            }
            // A lock or reservation still held is released now, whatever the outcome.
            let held = lane.helper_ctx.end_run();
            let r0 = result.map_err(|e| *e)?;
            held.map_err(|source| RunError::HeldAtExit { source })?;
            runs_left -= 1;
            if runs_left == 0 {
                return Ok(r0);
            }
            // The next run begins here, so the loop has no `begin` test.
            lane.begin_run();
        }
    }
}

#[inline(always)]
fn fault(pc: usize) -> impl FnOnce(bpfvm_helpers::MemFault) -> RunError {
    move |fault| RunError::Fault {
        pc,
        fault,
        at: SourceAt::NONE,
    }
}

/// What a run executes: the program and its tables, the helpers and the budget.
pub(super) struct Machine<'a> {
    /// Pre-decoded instructions, padded to a power of two.
    insns: &'a [Exec],
    /// `insns.len() - 1`.
    mask: usize,
    helpers: &'a Helpers,
    /// First instructions of the program's callbacks, sorted.
    pub(super) callbacks: &'a [u32],
    registry: &'a Registry,
    /// The run's whole budget (for messages).
    pub(super) budget: u64,
}

/// Where [`execute`] starts: the main program (`pc` 0, frame 0) or a callback.
#[derive(Debug, Clone, Copy)]
pub(super) struct Start {
    /// First instruction.
    pub(super) pc: usize,
    /// The frame it runs in; its `exit` there ends the execution.
    pub(super) depth: usize,
    /// `r1..=r5`.
    pub(super) args: [u64; 5],
    /// `r10`.
    pub(super) fp: u64,
}

/// [`execute`] noting each access's instruction for the race explorer's hook: a copy of
/// the loop of its own, never inlined, so the normal runs' copy is compiled as before.
#[inline(never)]
fn execute_watched(
    code: &Machine<'_>,
    ctx: &mut HelperContext,
    frames: &mut [Frame; MAX_FRAMES],
    used: &mut usize,
    start: Start,
    nest: &mut Nest,
) -> Result<u64, Box<RunError>> {
    execute::<true>(code, ctx, frames, used, start, nest)
}

/// Runs a callback to its `exit` (see [`execute`]): the engine's re-entry, used by
/// [`callback`] for each call of a callback.
#[inline(never)]
pub(super) fn execute_callback(
    code: &Machine<'_>,
    ctx: &mut HelperContext,
    frames: &mut [Frame; MAX_FRAMES],
    used: &mut usize,
    start: Start,
    nest: &mut Nest,
) -> Result<u64, Box<RunError>> {
    if ctx.memory.has_access_hook() {
        execute_watched(code, ctx, frames, used, start, nest)
    } else {
        execute::<false>(code, ctx, frames, used, start, nest)
    }
}

/// Runs pre-decoded `code.insns` (`code.mask` = `insns.len() - 1`, the length a power of
/// two) from `start` until `exit` from `start`'s frame. The error is boxed so the result
/// comes back in registers (an error is the end of the run, its allocation does not matter).
/// `used` receives the number of stack frames the run used (at least 1); the stack region
/// of `ctx.memory` is widened on each call and narrowed again on return. `nest.left` is the
/// budget left (capped so that it plus a pc cannot overflow) and, when `exit` leaves
/// `start`'s frame, what is left then: a callback's or a tail call target's execution puts
/// it back (a callback's last stretch is charged; the main program's is not).
/// `nest.tail_calls` counts the run's tail calls. With `W` (a race explorer watches the
/// memory, see `bpfvm_helpers::memory::AccessHook`) each memory access and helper call
/// first notes its instruction in `ctx.memory`.
#[inline(always)] // one caller in a run: the per-run prologue and the result stay in registers
fn execute<const W: bool>(
    code: &Machine<'_>,
    ctx: &mut HelperContext,
    frames: &mut [Frame; MAX_FRAMES],
    used: &mut usize,
    start: Start,
    nest: &mut Nest,
) -> Result<u64, Box<RunError>> {
    let Machine {
        insns,
        mask,
        helpers,
        registry,
        budget,
        ..
    } = *code;
    let mut reg = [0u64; 11];
    reg[1..6].copy_from_slice(&start.args);
    reg[10] = start.fp;
    let base = start.depth;
    let mut depth = base;
    // `may_goto`'s counter per frame, as the kernel keeps one in each function's stack
    // frame, set to `BPF_MAX_LOOPS` on entry.
    let mut loops = [crate::insn::MAX_LOOPS; MAX_FRAMES];
    // The budget is charged per straight-line stretch, at every taken jump, call and return:
    // `here + 1 - block_start` instructions ran since the last transfer. That is exact, costs
    // nothing on the other instructions, and notices an exhausted budget at the latest at the
    // end of the stretch (so an endless loop always stops). `credit` is the instructions left
    // plus `block_start`, so a transfer from `here` to `target` is one compare
    // (`here + 1 <= credit`) and one update (`credit - (here + 1) + target`). The budget is
    // capped so the sum cannot overflow (2^64 - 2^20 instructions never run out anyway).
    let mut credit = nest.left + start.pc as u64;
    let mut pc = start.pc;
    macro_rules! transfer {
        ($here:expr, $target:expr) => {{
            let target = $target;
            let end = $here as u64 + 1;
            if end > credit {
                return Err(RunError::BudgetExhausted {
                    pc: $here,
                    budget,
                    at: SourceAt::NONE,
                }
                .into());
            }
            credit = credit - end + target as u64;
            pc = target;
            continue;
        }};
    }
    // Helper work (bytes a helper copied, `HelperContext::charge_bytes`) comes off the same
    // budget after each helper call: one load when there is none.
    macro_rules! charge_helper_work {
        ($here:expr) => {
            if ctx.pending_work() != 0 {
                let work = ctx.take_work();
                if ($here as u64 + 1).saturating_add(work) > credit {
                    return Err(RunError::BudgetExhausted {
                        pc: $here,
                        budget,
                        at: SourceAt::NONE,
                    }
                    .into());
                }
                credit -= work;
            }
        };
    }
    macro_rules! jump_if {
        ($here:expr, $i:expr, $cond:expr) => {
            if $cond {
                transfer!($here, $i.target as usize)
            }
        };
    }
    loop {
        let i = insns[pc & mask];
        let dst = i.dst as usize;
        let src = i.src as usize;
        let imm = i.imm;
        let here = pc;
        match i.code {
            // ALU64
            Code::ADD64_IMM => reg[dst] = reg[dst].wrapping_add(imm),
            Code::ADD64_REG => reg[dst] = reg[dst].wrapping_add(reg[src]),
            Code::SUB64_IMM => reg[dst] = reg[dst].wrapping_sub(imm),
            Code::SUB64_REG => reg[dst] = reg[dst].wrapping_sub(reg[src]),
            Code::MUL64_IMM => reg[dst] = reg[dst].wrapping_mul(imm),
            Code::MUL64_REG => reg[dst] = reg[dst].wrapping_mul(reg[src]),
            Code::DIV64_IMM => reg[dst] /= imm,
            Code::DIV64_REG => reg[dst] = reg[dst].checked_div(reg[src]).unwrap_or(0),
            Code::MOD64_IMM => reg[dst] %= imm,
            Code::MOD64_REG => {
                if reg[src] != 0 {
                    reg[dst] %= reg[src]
                }
            }
            Code::OR64_IMM => reg[dst] |= imm,
            Code::OR64_REG => reg[dst] |= reg[src],
            Code::AND64_IMM => reg[dst] &= imm,
            Code::AND64_REG => reg[dst] &= reg[src],
            Code::XOR64_IMM => reg[dst] ^= imm,
            Code::XOR64_REG => reg[dst] ^= reg[src],
            Code::LSH64_IMM => reg[dst] = reg[dst].wrapping_shl(imm as u32),
            Code::LSH64_REG => reg[dst] = reg[dst].wrapping_shl(reg[src] as u32),
            Code::RSH64_IMM => reg[dst] = reg[dst].wrapping_shr(imm as u32),
            Code::RSH64_REG => reg[dst] = reg[dst].wrapping_shr(reg[src] as u32),
            Code::ARSH64_IMM => reg[dst] = (reg[dst] as i64).wrapping_shr(imm as u32) as u64,
            Code::ARSH64_REG => reg[dst] = (reg[dst] as i64).wrapping_shr(reg[src] as u32) as u64,
            Code::NEG64 => reg[dst] = (reg[dst] as i64).wrapping_neg() as u64,
            Code::MOV64_IMM => reg[dst] = imm,
            Code::MOV64_REG => reg[dst] = reg[src],
            Code::SDIV64_IMM => reg[dst] = (reg[dst] as i64).wrapping_div(imm as i64) as u64,
            Code::SDIV64_REG => {
                let d = reg[src] as i64;
                reg[dst] = if d == 0 {
                    0
                } else {
                    (reg[dst] as i64).wrapping_div(d) as u64
                }
            }
            Code::SMOD64_IMM => reg[dst] = (reg[dst] as i64).wrapping_rem(imm as i64) as u64,
            Code::SMOD64_REG => {
                let d = reg[src] as i64;
                if d != 0 {
                    reg[dst] = (reg[dst] as i64).wrapping_rem(d) as u64
                }
            }
            Code::MOVSX64 => {
                reg[dst] = match i.off() {
                    8 => reg[src] as i8 as i64 as u64,
                    16 => reg[src] as i16 as i64 as u64,
                    _ => reg[src] as i32 as i64 as u64,
                }
            }

            // ALU32: results are zero-extended to 64 bits.
            Code::ADD32_IMM => reg[dst] = (reg[dst] as u32).wrapping_add(imm as u32) as u64,
            Code::ADD32_REG => reg[dst] = (reg[dst] as u32).wrapping_add(reg[src] as u32) as u64,
            Code::SUB32_IMM => reg[dst] = (reg[dst] as u32).wrapping_sub(imm as u32) as u64,
            Code::SUB32_REG => reg[dst] = (reg[dst] as u32).wrapping_sub(reg[src] as u32) as u64,
            Code::MUL32_IMM => reg[dst] = (reg[dst] as u32).wrapping_mul(imm as u32) as u64,
            Code::MUL32_REG => reg[dst] = (reg[dst] as u32).wrapping_mul(reg[src] as u32) as u64,
            Code::DIV32_IMM => reg[dst] = (reg[dst] as u32 / imm as u32) as u64,
            Code::DIV32_REG => {
                reg[dst] = (reg[dst] as u32).checked_div(reg[src] as u32).unwrap_or(0) as u64
            }
            Code::MOD32_IMM => reg[dst] = (reg[dst] as u32 % imm as u32) as u64,
            Code::MOD32_REG => {
                let d = reg[src] as u32;
                reg[dst] = if d == 0 {
                    reg[dst] as u32
                } else {
                    reg[dst] as u32 % d
                } as u64
            }
            Code::OR32_IMM => reg[dst] = (reg[dst] as u32 | imm as u32) as u64,
            Code::OR32_REG => reg[dst] = (reg[dst] as u32 | reg[src] as u32) as u64,
            Code::AND32_IMM => reg[dst] = (reg[dst] as u32 & imm as u32) as u64,
            Code::AND32_REG => reg[dst] = (reg[dst] as u32 & reg[src] as u32) as u64,
            Code::XOR32_IMM => reg[dst] = (reg[dst] as u32 ^ imm as u32) as u64,
            Code::XOR32_REG => reg[dst] = (reg[dst] as u32 ^ reg[src] as u32) as u64,
            Code::LSH32_IMM => reg[dst] = (reg[dst] as u32).wrapping_shl(imm as u32) as u64,
            Code::LSH32_REG => reg[dst] = (reg[dst] as u32).wrapping_shl(reg[src] as u32) as u64,
            Code::RSH32_IMM => reg[dst] = (reg[dst] as u32).wrapping_shr(imm as u32) as u64,
            Code::RSH32_REG => reg[dst] = (reg[dst] as u32).wrapping_shr(reg[src] as u32) as u64,
            Code::ARSH32_IMM => reg[dst] = (reg[dst] as i32).wrapping_shr(imm as u32) as u32 as u64,
            Code::ARSH32_REG => {
                reg[dst] = (reg[dst] as i32).wrapping_shr(reg[src] as u32) as u32 as u64
            }
            Code::NEG32 => reg[dst] = (reg[dst] as i32).wrapping_neg() as u32 as u64,
            Code::MOV32_IMM => reg[dst] = imm as u32 as u64,
            Code::MOV32_REG => reg[dst] = reg[src] as u32 as u64,
            Code::SDIV32_IMM => reg[dst] = (reg[dst] as i32).wrapping_div(imm as i32) as u32 as u64,
            Code::SDIV32_REG => {
                let d = reg[src] as i32;
                reg[dst] = if d == 0 {
                    0
                } else {
                    (reg[dst] as i32).wrapping_div(d) as u32 as u64
                }
            }
            Code::SMOD32_IMM => reg[dst] = (reg[dst] as i32).wrapping_rem(imm as i32) as u32 as u64,
            Code::SMOD32_REG => {
                let d = reg[src] as i32;
                reg[dst] = if d == 0 {
                    reg[dst] as u32 as u64
                } else {
                    (reg[dst] as i32).wrapping_rem(d) as u32 as u64
                }
            }
            Code::MOVSX32 => {
                reg[dst] = match i.off() {
                    8 => reg[src] as i8 as i32 as u32 as u64,
                    _ => reg[src] as i16 as i32 as u32 as u64,
                }
            }

            // Byte order. The host is little-endian-agnostic: `to_le`/`to_be` do the right thing.
            Code::LE => {
                reg[dst] = match imm {
                    16 => (reg[dst] as u16).to_le() as u64,
                    32 => (reg[dst] as u32).to_le() as u64,
                    _ => reg[dst].to_le(),
                }
            }
            Code::BE => {
                reg[dst] = match imm {
                    16 => (reg[dst] as u16).to_be() as u64,
                    32 => (reg[dst] as u32).to_be() as u64,
                    _ => reg[dst].to_be(),
                }
            }
            Code::BSWAP => {
                // bswap (ALU64 | END): unconditional
                reg[dst] = match imm {
                    16 => (reg[dst] as u16).swap_bytes() as u64,
                    32 => (reg[dst] as u32).swap_bytes() as u64,
                    _ => reg[dst].swap_bytes(),
                }
            }

            // Loads and stores.
            Code::LD_DW_IMM => {
                reg[dst] = imm;
                pc += 1; // the second slot
            }
            Code::LD_B_REG => reg[dst] = load::<W>(ctx, reg[src], i.mem_off(), 1, here)?,
            Code::LD_H_REG => reg[dst] = load::<W>(ctx, reg[src], i.mem_off(), 2, here)?,
            Code::LD_W_REG => reg[dst] = load::<W>(ctx, reg[src], i.mem_off(), 4, here)?,
            Code::LD_DW_REG => reg[dst] = load::<W>(ctx, reg[src], i.mem_off(), 8, here)?,
            Code::LDSX_B => {
                reg[dst] = load::<W>(ctx, reg[src], i.mem_off(), 1, here)? as i8 as i64 as u64
            }
            Code::LDSX_H => {
                reg[dst] = load::<W>(ctx, reg[src], i.mem_off(), 2, here)? as i16 as i64 as u64
            }
            Code::LDSX_W => {
                reg[dst] = load::<W>(ctx, reg[src], i.mem_off(), 4, here)? as i32 as i64 as u64
            }
            Code::PROBE_LD_B => reg[dst] = probe::<W>(ctx, reg[src], i.mem_off(), 1, here),
            Code::PROBE_LD_H => reg[dst] = probe::<W>(ctx, reg[src], i.mem_off(), 2, here),
            Code::PROBE_LD_W => reg[dst] = probe::<W>(ctx, reg[src], i.mem_off(), 4, here),
            Code::PROBE_LD_DW => reg[dst] = probe::<W>(ctx, reg[src], i.mem_off(), 8, here),
            Code::PROBE_LDSX_B => {
                reg[dst] = probe::<W>(ctx, reg[src], i.mem_off(), 1, here) as i8 as i64 as u64
            }
            Code::PROBE_LDSX_H => {
                reg[dst] = probe::<W>(ctx, reg[src], i.mem_off(), 2, here) as i16 as i64 as u64
            }
            Code::PROBE_LDSX_W => {
                reg[dst] = probe::<W>(ctx, reg[src], i.mem_off(), 4, here) as i32 as i64 as u64
            }
            Code::ST_B_IMM => store::<W>(ctx, reg[dst], i.mem_off(), 1, imm, here)?,
            Code::ST_H_IMM => store::<W>(ctx, reg[dst], i.mem_off(), 2, imm, here)?,
            Code::ST_W_IMM => store::<W>(ctx, reg[dst], i.mem_off(), 4, imm, here)?,
            Code::ST_DW_IMM => store::<W>(ctx, reg[dst], i.mem_off(), 8, imm, here)?,
            Code::ST_B_REG => store::<W>(ctx, reg[dst], i.mem_off(), 1, reg[src], here)?,
            Code::ST_H_REG => store::<W>(ctx, reg[dst], i.mem_off(), 2, reg[src], here)?,
            Code::ST_W_REG => store::<W>(ctx, reg[dst], i.mem_off(), 4, reg[src], here)?,
            Code::ST_DW_REG => store::<W>(ctx, reg[dst], i.mem_off(), 8, reg[src], here)?,
            Code::ST_W_XADD => atomic::<W>(ctx, &mut reg, &i, 4, here)?,
            Code::ST_DW_XADD => atomic::<W>(ctx, &mut reg, &i, 8, here)?,

            // Jumps.
            Code::JA => transfer!(here, i.target as usize),
            Code::MAY_GOTO => match loops.get_mut(depth) {
                Some(n) if *n > 0 => *n -= 1,
                _ => transfer!(here, i.target as usize),
            },
            Code::JEQ_IMM => jump_if!(here, i, reg[dst] == imm),
            Code::JEQ_REG => jump_if!(here, i, reg[dst] == reg[src]),
            Code::JGT_IMM => jump_if!(here, i, reg[dst] > imm),
            Code::JGT_REG => jump_if!(here, i, reg[dst] > reg[src]),
            Code::JGE_IMM => jump_if!(here, i, reg[dst] >= imm),
            Code::JGE_REG => jump_if!(here, i, reg[dst] >= reg[src]),
            Code::JLT_IMM => jump_if!(here, i, reg[dst] < imm),
            Code::JLT_REG => jump_if!(here, i, reg[dst] < reg[src]),
            Code::JLE_IMM => jump_if!(here, i, reg[dst] <= imm),
            Code::JLE_REG => jump_if!(here, i, reg[dst] <= reg[src]),
            Code::JSET_IMM => jump_if!(here, i, reg[dst] & imm != 0),
            Code::JSET_REG => jump_if!(here, i, reg[dst] & reg[src] != 0),
            Code::JNE_IMM => jump_if!(here, i, reg[dst] != imm),
            Code::JNE_REG => jump_if!(here, i, reg[dst] != reg[src]),
            Code::JSGT_IMM => jump_if!(here, i, (reg[dst] as i64) > imm as i64),
            Code::JSGT_REG => jump_if!(here, i, (reg[dst] as i64) > reg[src] as i64),
            Code::JSGE_IMM => jump_if!(here, i, (reg[dst] as i64) >= imm as i64),
            Code::JSGE_REG => jump_if!(here, i, (reg[dst] as i64) >= reg[src] as i64),
            Code::JSLT_IMM => jump_if!(here, i, (reg[dst] as i64) < imm as i64),
            Code::JSLT_REG => jump_if!(here, i, (reg[dst] as i64) < reg[src] as i64),
            Code::JSLE_IMM => jump_if!(here, i, (reg[dst] as i64) <= imm as i64),
            Code::JSLE_REG => jump_if!(here, i, (reg[dst] as i64) <= reg[src] as i64),
            Code::JEQ_IMM32 => jump_if!(here, i, reg[dst] as u32 == imm as u32),
            Code::JEQ_REG32 => jump_if!(here, i, reg[dst] as u32 == reg[src] as u32),
            Code::JGT_IMM32 => jump_if!(here, i, reg[dst] as u32 > imm as u32),
            Code::JGT_REG32 => jump_if!(here, i, reg[dst] as u32 > reg[src] as u32),
            Code::JGE_IMM32 => jump_if!(here, i, reg[dst] as u32 >= imm as u32),
            Code::JGE_REG32 => jump_if!(here, i, reg[dst] as u32 >= reg[src] as u32),
            Code::JLT_IMM32 => jump_if!(here, i, (reg[dst] as u32) < imm as u32),
            Code::JLT_REG32 => jump_if!(here, i, (reg[dst] as u32) < reg[src] as u32),
            Code::JLE_IMM32 => jump_if!(here, i, reg[dst] as u32 <= imm as u32),
            Code::JLE_REG32 => jump_if!(here, i, reg[dst] as u32 <= reg[src] as u32),
            Code::JSET_IMM32 => jump_if!(here, i, reg[dst] as u32 & imm as u32 != 0),
            Code::JSET_REG32 => jump_if!(here, i, reg[dst] as u32 & reg[src] as u32 != 0),
            Code::JNE_IMM32 => jump_if!(here, i, reg[dst] as u32 != imm as u32),
            Code::JNE_REG32 => jump_if!(here, i, reg[dst] as u32 != reg[src] as u32),
            Code::JSGT_IMM32 => jump_if!(here, i, reg[dst] as i32 > imm as i32),
            Code::JSGT_REG32 => jump_if!(here, i, reg[dst] as i32 > reg[src] as i32),
            Code::JSGE_IMM32 => jump_if!(here, i, reg[dst] as i32 >= imm as i32),
            Code::JSGE_REG32 => jump_if!(here, i, reg[dst] as i32 >= reg[src] as i32),
            Code::JSLT_IMM32 => jump_if!(here, i, (reg[dst] as i32) < imm as i32),
            Code::JSLT_REG32 => jump_if!(here, i, (reg[dst] as i32) < reg[src] as i32),
            Code::JSLE_IMM32 => jump_if!(here, i, reg[dst] as i32 <= imm as i32),
            Code::JSLE_REG32 => jump_if!(here, i, reg[dst] as i32 <= reg[src] as i32),

            // Calls.
            Code::CALL_HELPER => {
                if W {
                    ctx.memory.note_pc(here);
                }
                // `r1..=r5` straight from the register file, no copy. The slice always has
                // 5 elements; the fallback only keeps this free of a panic path.
                let args = <&[u64; 5]>::try_from(&reg[1..6]).unwrap_or(&[0; 5]);
                reg[0] = match helpers.fns[i.target as usize](ctx, args) {
                    Ok(v) => v,
                    Err(source) => return Err(helper_failed(here, *source)),
                };
                charge_helper_work!(here);
            }
            Code::CALL_HELPER_DYN => {
                if W {
                    ctx.memory.note_pc(here);
                }
                let args = [reg[1], reg[2], reg[3], reg[4], reg[5]];
                reg[0] = match helpers.objects[i.target as usize].call(ctx, args) {
                    Ok(v) => v,
                    Err(source) => return Err(helper_failed(here, source)),
                };
                charge_helper_work!(here);
            }
            Code::GET_SMP_PROCESSOR_ID => reg[0] = ctx.cpu() as u64,
            Code::CORE_POISON => return Err(core_poison(here, &helpers.core_poisons)),
            Code::TAIL_CALL_HELPER => {
                // The instructions of this stretch are charged before the target runs.
                let end = here as u64 + 1;
                if end > credit {
                    return Err(RunError::BudgetExhausted {
                        pc: here,
                        at: SourceAt::NONE,
                        budget,
                    }
                    .into());
                }
                let jump = TailJump {
                    pc: here,
                    depth,
                    ctx_arg: reg[1],
                    prog_array: reg[2],
                    index: reg[3],
                    left: credit - end,
                };
                // A failed tail call falls through and leaves `r0` as it was (the kernel's
                // verifier makes `r0` unreadable after the call).
                if let Some((r0, left)) =
                    tail_call(jump, ctx, frames, used, registry, budget, nest)?
                {
                    // The target replaced this frame: its `r0` is this frame's result.
                    credit = left + end;
                    reg[0] = r0;
                    if depth == base {
                        nest.left = left;
                        return Ok(r0);
                    }
                    depth -= 1;
                    ctx.memory
                        .set_owned_window(REGION_STACK, STACK_SIZE - (depth + 1) * FRAME_SIZE);
                    let f = frames[depth];
                    reg[6..10].copy_from_slice(&f.saved);
                    reg[10] = f.fp;
                    transfer!(here, f.ret);
                }
            }
            Code::TAIL_CALL => {
                // callx: the register holds a helper id (the conformance suite's semantics).
                let target = reg[dst];
                let entry = u32::try_from(target)
                    .ok()
                    .and_then(|id| registry.get(id))
                    .ok_or(RunError::BadCallx {
                        pc: here,
                        target,
                        at: SourceAt::NONE,
                    })?;
                let args = <&[u64; 5]>::try_from(&reg[1..6]).unwrap_or(&[0; 5]);
                if W {
                    ctx.memory.note_pc(here);
                }
                reg[0] = match entry.helper.call_fast(ctx, args) {
                    Ok(v) => v,
                    Err(source) => return Err(helper_failed(here, *source)),
                };
                charge_helper_work!(here);
            }
            Code::CALL_LOCAL => {
                if depth + 1 >= MAX_FRAMES {
                    return Err(RunError::CallDepth {
                        pc: here,
                        max: MAX_FRAMES,
                        at: SourceAt::NONE,
                    }
                    .into());
                }
                frames[depth] = Frame {
                    ret: here + 1,
                    saved: [reg[6], reg[7], reg[8], reg[9]],
                    fp: reg[10],
                };
                depth += 1;
                if let Some(n) = loops.get_mut(depth) {
                    *n = crate::insn::MAX_LOOPS;
                }
                *used = (*used).max(depth + 1);
                ctx.memory
                    .set_owned_window(REGION_STACK, STACK_SIZE - (depth + 1) * FRAME_SIZE);
                reg[10] -= FRAME_SIZE as u64;
                transfer!(here, i.target as usize);
            }
            Code::EXIT => {
                if depth == base {
                    // A callback's last stretch is charged; a tail call target's caller
                    // takes what is left.
                    let end = here as u64 + 1;
                    if base != 0 && end > credit {
                        return Err(RunError::BudgetExhausted {
                            pc: here,
                            budget,
                            at: SourceAt::NONE,
                        }
                        .into());
                    }
                    nest.left = credit.saturating_sub(end);
                    return Ok(reg[0]);
                }
                depth -= 1;
                ctx.memory
                    .set_owned_window(REGION_STACK, STACK_SIZE - (depth + 1) * FRAME_SIZE);
                let f = frames[depth];
                reg[6..10].copy_from_slice(&f.saved);
                reg[10] = f.fp;
                transfer!(here, f.ret);
            }
            Code::CALL_CALLBACK => {
                // The stretch so far is charged; the callbacks' instructions come off what
                // is left; the next stretch starts after the call.
                let end = here as u64 + 1;
                if end > credit {
                    return Err(RunError::BudgetExhausted {
                        pc: here,
                        budget,
                        at: SourceAt::NONE,
                    }
                    .into());
                }
                let mut inner = Nest {
                    left: credit - end,
                    tail_calls: nest.tail_calls,
                };
                let site = callback::Site {
                    pc: here,
                    id: imm as u32,
                    flags_known_zero: i.target != 0,
                    depth,
                    fp: reg[10],
                };
                let args = [reg[1], reg[2], reg[3], reg[4], reg[5]];
                reg[0] = callback::call(code, ctx, frames, used, site, args, &mut inner)?;
                nest.tail_calls = inner.tail_calls;
                credit = inner.left + end;
            }
            Code::ExitMain => {
                nest.left = credit.saturating_sub(here as u64 + 1);
                return Ok(reg[0]);
            }
            Code::Invalid => unreachable_op(here, i.op)?,
        }
        pc += 1;
    }
}

/// What a run has left as [`execute`] goes: the instructions left (in: its budget,
/// capped so that it plus a pc cannot overflow; out: what it left when `exit` left its
/// frame), and the tail calls the whole run made so far (callbacks and tail call targets
/// carry both on).
#[derive(Debug, Clone, Copy)]
pub(super) struct Nest {
    pub(super) left: u64,
    pub(super) tail_calls: u32,
}

impl Nest {
    /// What a run of `budget` instructions starts with.
    pub(super) fn main(budget: u64) -> Nest {
        Nest {
            left: budget.min(u64::MAX - verify::MAX_INSNS as u64),
            tail_calls: 0,
        }
    }
}

/// `MAX_TAIL_CALL_CNT`: the most tail calls one run makes; the next one falls through.
pub const MAX_TAIL_CALL_CNT: u32 = 33;

/// A `bpf_tail_call` as the program made it.
#[derive(Debug, Clone, Copy)]
pub(super) struct TailJump {
    /// The call instruction.
    pub(super) pc: usize,
    /// The caller's frame (the target runs in it).
    pub(super) depth: usize,
    /// `r1`, `r2`, `r3`.
    pub(super) ctx_arg: u64,
    pub(super) prog_array: u64,
    pub(super) index: u64,
    /// The instructions left, the caller's stretch charged.
    pub(super) left: u64,
}

/// `bpf_tail_call(ctx, prog_array, index)` with the checks of the kernel's x86_64 JIT
/// (what the kernel runs, checked by the kernel oracle): `index` (32 bits) `>=
/// max_entries` falls through; so do an empty slot and the 34th tail call of a run. Only
/// a call that jumps counts (the kernel's interpreter, without the JIT, counts calls to
/// empty slots too).
/// Otherwise the slot's program runs in the caller's frame (`r1` = the context, `r10` = the
/// frame's top), with its own maps installed, in its own engine's form (its compiled code
/// for a program prepared for the `jit` engine, else its interpreter form), and
/// `Some((r0, instructions left))` is its result. The caller's maps are installed again
/// afterwards. Both engines' tail calls come here.
#[inline(never)]
pub(super) fn tail_call(
    jump: TailJump,
    ctx: &mut HelperContext,
    frames: &mut [Frame; MAX_FRAMES],
    used: &mut usize,
    registry: &Registry,
    budget: u64,
    nest: &mut Nest,
) -> Result<Option<(u64, u64)>, Box<RunError>> {
    let bad_map = || {
        helper_failed(
            jump.pc,
            HelperError::BadMap {
                helper: "bpf_tail_call".into(),
                handle: jump.prog_array,
            },
        )
    };
    let maps = ctx.maps().clone();
    let map = bpfvm_helpers::memory::map_handle_index(jump.prog_array)
        .and_then(|i| maps.get(i as usize))
        .and_then(|m| m.as_map())
        .filter(|m| m.map_type() == bpfvm_maps::MapType::ProgArray)
        .ok_or_else(bad_map)?;
    let index = jump.index as u32;
    if index >= map.max_entries() || nest.tail_calls >= MAX_TAIL_CALL_CNT {
        return Ok(None);
    }
    let Some(entry) = map.prog_array_get(index) else {
        return Ok(None);
    };
    nest.tail_calls += 1;
    let Some((target_program, target, compiled)) = crate::tail_call::tail_call_target(&entry)
    else {
        return Err(helper_failed(
            jump.pc,
            HelperError::Failed {
                helper: "bpf_tail_call".into(),
                message: format!(
                    "the program in slot {index} is not prepared for the interpreter engine"
                ),
            },
        ));
    };
    let target_maps = &target.maps;
    if ctx.memory.install_maps(target_maps).is_none() {
        return Err(Box::new(RunError::BadInput {
            reason: "the tail call target's maps have more values than guest addresses can name"
                .into(),
        }));
    }
    ctx.set_maps(target_maps.clone());
    let Some(mask) = target.code.len().checked_sub(1) else {
        return Err(Box::new(RunError::BadInput {
            reason: "the tail call target has no instructions".into(),
        }));
    };
    let machine = Machine {
        insns: &target.code,
        mask,
        helpers: &target.helpers,
        callbacks: &target.callbacks,
        registry,
        budget,
    };
    let start = Start {
        pc: 0,
        depth: jump.depth,
        args: [jump.ctx_arg, 0, 0, 0, 0],
        fp: guest_addr(REGION_STACK, (STACK_SIZE - jump.depth * FRAME_SIZE) as u32),
    };
    let mut inner = Nest {
        left: jump.left,
        tail_calls: nest.tail_calls,
    };
    let r0 = if let Some(compiled) = compiled {
        crate::engine::jit::run_tail_target(
            compiled, ctx, registry, budget, start, &mut inner, used,
        )
    } else if ctx.memory.has_access_hook() {
        execute_watched(&machine, ctx, frames, used, start, &mut inner)
    } else {
        execute::<false>(&machine, ctx, frames, used, start, &mut inner)
    };
    let r0 = r0.map_err(|source| {
        Box::new(RunError::InTailCall {
            pc: jump.pc,
            at: SourceAt::NONE,
            map: map.spec().name.clone(),
            index,
            program: entry.id,
            source: Box::new(source.at_source_of(target_program)),
        })
    })?;
    nest.tail_calls = inner.tail_calls;
    // The caller continues (a tail call from a subprogram) or returns: its maps again.
    if ctx.memory.install_maps(&maps).is_none() {
        return Err(bad_map());
    }
    ctx.set_maps(maps);
    Ok(Some((r0, inner.left)))
}

#[cold]
pub(super) fn helper_failed(pc: usize, source: HelperError) -> Box<RunError> {
    Box::new(RunError::Helper {
        pc,
        source,
        at: SourceAt::NONE,
    })
}

#[cold]
pub(super) fn core_poison(pc: usize, poisons: &[(usize, Arc<str>)]) -> Box<RunError> {
    let relocation = poisons
        .binary_search_by_key(&pc, |(at, _)| *at)
        .map_or_else(
            |_| "a CO-RE relocation that could not be resolved".into(),
            |i| poisons[i].1.to_string(),
        );
    Box::new(RunError::CorePoison {
        pc,
        relocation,
        at: SourceAt::NONE,
    })
}

#[cold]
fn unreachable_op(pc: usize, opcode: u8) -> Result<(), RunError> {
    // The verifier admits only the opcodes handled above; keep a clear error instead of a
    // panic should the two ever disagree.
    Err(RunError::BadInput {
        reason: format!(
            "instruction {pc}: opcode {opcode:#04x} passed the verifier but has no implementation"
        ),
    })
}

/// An atomic operation of `size` bytes (`i.imm` names it) at `dst + off`.
#[inline(always)]
fn atomic<const W: bool>(
    ctx: &HelperContext,
    reg: &mut [u64; 11],
    i: &Exec,
    size: u64,
    here: usize,
) -> Result<(), RunError> {
    if W {
        ctx.memory.note_pc(here);
    }
    let (dst, src) = (i.dst as usize, i.src as usize);
    let addr = reg[dst].wrapping_add(i.mem_off());
    let mem = &ctx.memory;
    let rmw = |o: AtomicOp, v: u64| mem.atomic_rmw(addr, size, o, v).map_err(fault(here));
    match i.imm as u32 {
        0x00 => drop(rmw(AtomicOp::Add, reg[src])?),
        0x40 => drop(rmw(AtomicOp::Or, reg[src])?),
        0x50 => drop(rmw(AtomicOp::And, reg[src])?),
        0xa0 => drop(rmw(AtomicOp::Xor, reg[src])?),
        0x01 => reg[src] = rmw(AtomicOp::Add, reg[src])?,
        0x41 => reg[src] = rmw(AtomicOp::Or, reg[src])?,
        0x51 => reg[src] = rmw(AtomicOp::And, reg[src])?,
        0xa1 => reg[src] = rmw(AtomicOp::Xor, reg[src])?,
        0xe1 => reg[src] = rmw(AtomicOp::Xchg, reg[src])?,
        _ => {
            // cmpxchg (0xf1): compare with r0, old value into r0
            let expected = if size == 4 {
                reg[0] as u32 as u64
            } else {
                reg[0]
            };
            reg[0] = mem
                .atomic_cmpxchg(addr, size, expected, reg[src])
                .map_err(fault(here))?;
        }
    }
    Ok(())
}

#[inline(always)]
fn load<const W: bool>(
    ctx: &HelperContext,
    base: u64,
    off: u64,
    size: u64,
    pc: usize,
) -> Result<u64, RunError> {
    if W {
        ctx.memory.note_pc(pc);
    }
    ctx.memory
        .load_guest(base.wrapping_add(off), size)
        .map_err(fault(pc))
}

/// A probe load (see [`crate::probe_mem`]): never a fault.
#[inline(always)]
fn probe<const W: bool>(ctx: &HelperContext, base: u64, off: u64, size: u64, pc: usize) -> u64 {
    if W {
        ctx.memory.note_pc(pc);
    }
    crate::probe_mem::load(ctx, base.wrapping_add(off), size)
}

#[inline(always)]
fn store<const W: bool>(
    ctx: &HelperContext,
    base: u64,
    off: u64,
    size: u64,
    v: u64,
    pc: usize,
) -> Result<(), RunError> {
    if W {
        ctx.memory.note_pc(pc);
    }
    ctx.memory
        .store_guest(base.wrapping_add(off), size, v)
        .map_err(fault(pc))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::{CpuId, Input, PrepareError, ProgramType, Vm};
    use bpfvm_helpers::HelperId;

    fn program(src: &str) -> Program {
        let code = rbpf::assembler::assemble(src).expect("test programs assemble");
        Program::new(code, ProgramType::Unspecified)
    }

    fn ops(p: &Interpreter) -> Vec<u8> {
        p.insns().iter().map(|d| d.op).collect()
    }

    #[test]
    fn executable_codes_are_their_opcodes() {
        let mut valid = 0;
        for opcode in 0..=255u8 {
            match Code::of(opcode) {
                Code::Invalid => {}
                c => {
                    assert_eq!(c as u8, opcode);
                    valid += 1;
                }
            }
        }
        assert_eq!(
            valid, 143,
            "the ISA's opcodes (may_goto among them) and the internal ones, CORE_POISON, CALL_CALLBACK, TAIL_CALL_HELPER and the 7 probe loads among them"
        );
        assert_eq!(Code::of(op::TAIL_CALL_HELPER), Code::TAIL_CALL_HELPER);
        assert_eq!(Code::of(op::LD_IMM64_TAIL), Code::Invalid);
        assert_eq!(std::mem::size_of::<Exec>(), 16);
        assert_eq!(Reg::of(10), Some(Reg::R10));
        assert_eq!(Reg::of(11), None);
        // Every instruction of a prepared program has its executable form.
        let p = program("mov64 r0, 1\nlddw r1, 0x100000002\nstxdw [r10-8], r1\ncall 8\nexit");
        let prepared = Interpreter::prepare(&p, &Registry::with_builtins()).unwrap();
        for (d, e) in prepared.insns().iter().zip(prepared.code.iter()) {
            match d.op {
                op::LD_IMM64_TAIL => {}
                // No bpf-to-bpf calls: every exit leaves the main frame.
                ebpf::EXIT => assert_eq!(e.code, Code::ExitMain),
                _ => assert_eq!(e.code as u8, d.op),
            }
        }
        // With calls, `exit` keeps its depth test (and the callee returns to its caller).
        let mut code =
            rbpf::assembler::assemble("mov64 r1, 2\ncall 2\nadd64 r0, 1\nexit\nmov64 r0, r1\nexit")
                .unwrap();
        code[8 + 1] = 0x10; // src = 1: a bpf-to-bpf call of instruction 1 + 1 + 2
        let p = Program::new(code, ProgramType::Unspecified);
        let prepared = Interpreter::prepare(&p, &Registry::with_builtins()).unwrap();
        assert_eq!(prepared.code[3].code, Code::EXIT);
        assert_eq!(prepared.code[5].code, Code::EXIT);
        let vm = Vm::builder().cpus(1).build();
        let prog = vm.load(p).unwrap();
        assert_eq!(vm.run(&prog, CpuId(0), &Input::empty()).unwrap().retval, 3);
    }

    #[test]
    fn the_budget_is_exact_and_may_be_unlimited() {
        // Stretches charged at taken jumps: 0..=2 (3), 1..=2 (2); the last stretch ends in
        // the main `exit`, which charges nothing.
        let src = "mov64 r1, 3\nsub64 r1, 1\njne r1, 0, -2\nmov64 r0, 7\nexit";
        for (budget, ok) in [
            (5, true),
            (4, false),
            (u64::MAX, true),
            (u64::MAX - 1, true),
        ] {
            let vm = Vm::builder().cpus(1).budget(budget).build();
            let prog = vm.load(program(src)).unwrap();
            let out = vm.run(&prog, CpuId(0), &Input::empty());
            if ok {
                assert_eq!(out.unwrap().retval, 7, "budget {budget}");
            } else {
                assert!(
                    matches!(
                        out,
                        Err(RunError::BudgetExhausted {
                            pc: 2,
                            budget: 4,
                            ..
                        })
                    ),
                    "{out:?}"
                );
            }
        }
    }

    #[test]
    fn unknown_helper_ids_are_refused_at_load() {
        let p = program("mov64 r0, 0\ncall 4000\nexit");
        let e = Interpreter::prepare(&p, &Registry::with_builtins()).unwrap_err();
        assert_eq!(e, PrepareError::UnknownHelper { pc: 1, id: 4000 });
        // A built-in id is unknown too when the registry does not have it.
        let p = program("call 5\nexit");
        let e = Interpreter::prepare(&p, &Registry::new()).unwrap_err();
        assert_eq!(e, PrepareError::UnknownHelper { pc: 0, id: 5 });
        let vm = Vm::builder().cpus(1).build();
        assert!(matches!(
            vm.load(program("call 4000\nexit")),
            Err(PrepareError::UnknownHelper { pc: 0, id: 4000 })
        ));
    }

    #[test]
    fn calls_are_resolved_into_one_slot_per_helper() {
        let p = program("call 5\ncall 7\ncall 5\ncall 8\nexit");
        let prepared = Interpreter::prepare(&p, &Registry::with_builtins()).unwrap();
        assert_eq!(
            ops(&prepared),
            [
                op::CALL_HELPER,
                op::CALL_HELPER,
                op::CALL_HELPER,
                op::GET_SMP_PROCESSOR_ID,
                ebpf::EXIT
            ]
        );
        let slots: Vec<u32> = prepared.insns()[..3].iter().map(|d| d.target).collect();
        assert_eq!(slots, [0, 1, 0]);
        assert_eq!(prepared.helpers().0.len(), 2);
        assert!(prepared.helpers().1.is_empty());
    }

    #[test]
    fn inlined_smp_processor_id_is_each_lanes_cpu() {
        let vm = Vm::builder().cpus(4).build();
        let prog = vm
            .load(program("call 8\nmov64 r6, r0\ncall 8\nadd64 r0, r6\nexit"))
            .unwrap();
        for cpu in 0..4 {
            let out = vm.run(&prog, CpuId(cpu), &Input::empty()).unwrap();
            assert_eq!(out.retval, 2 * cpu as u64, "cpu {cpu}");
        }
        let all = vm.run_on_all(&prog, 3, &Input::empty()).unwrap();
        assert_eq!(all, (0..4).map(|c| vec![2 * c; 3]).collect::<Vec<_>>());
    }

    #[test]
    fn a_user_helper_under_a_builtin_id_is_called_not_inlined() {
        let mut registry = Registry::with_builtins();
        registry
            .register(
                HelperId::GET_SMP_PROCESSOR_ID,
                "fake_cpu",
                |ctx: &mut HelperContext, a: [u64; 5]| Ok(100 + ctx.cpu() as u64 + a[0]),
            )
            .unwrap();
        let p = program("mov64 r1, 20\ncall 8\nexit");
        let prepared = Interpreter::prepare(&p, &registry).unwrap();
        assert_eq!(prepared.insns()[1].op, op::CALL_HELPER_DYN);
        assert_eq!(prepared.helpers().1.len(), 1);

        let vm = Vm::builder()
            .cpus(2)
            .helper(8, "fake_cpu", |ctx: &mut HelperContext, a: [u64; 5]| {
                Ok(100 + ctx.cpu() as u64 + a[0])
            })
            .unwrap()
            .build();
        let prog = vm.load(p).unwrap();
        assert_eq!(
            vm.run(&prog, CpuId(1), &Input::empty()).unwrap().retval,
            121
        );
        // Overriding another built-in (5) works the same way.
        let vm = Vm::builder()
            .helper(5, "fixed_clock", |_: &mut HelperContext, _: [u64; 5]| Ok(7))
            .unwrap()
            .build();
        let prog = vm.load(program("call 5\nexit")).unwrap();
        assert_eq!(vm.run(&prog, CpuId(0), &Input::empty()).unwrap().retval, 7);
    }

    #[test]
    fn plain_function_helpers_are_called_directly() {
        fn triple(_: &mut HelperContext, a: &[u64; 5]) -> Result<u64, Box<HelperError>> {
            Ok(a[0] * 3 + a[4])
        }
        let mut registry = Registry::with_builtins();
        registry
            .register_fn(HelperId(1000), "triple", triple)
            .unwrap();
        let vm = Vm::with_registry(crate::VmConfig::default(), registry);
        let prog = vm
            .load(program("mov64 r1, 14\nmov64 r5, 1\ncall 1000\nexit"))
            .unwrap();
        assert_eq!(vm.run(&prog, CpuId(0), &Input::empty()).unwrap().retval, 43);
    }

    #[test]
    fn a_failing_helper_reports_its_instruction() {
        let vm = Vm::builder()
            .helper(1000, "fails", |_: &mut HelperContext, a: [u64; 5]| {
                if a[0] == 0 {
                    Ok(1)
                } else {
                    Err(HelperError::Failed {
                        helper: "fails".into(),
                        message: format!("refused {}", a[0]),
                    })
                }
            })
            .unwrap()
            .build();
        let prog = vm
            .load(program(
                "mov64 r1, 0\ncall 1000\nmov64 r1, 9\ncall 8\ncall 1000\nexit",
            ))
            .unwrap();
        let e = vm.run(&prog, CpuId(0), &Input::empty()).unwrap_err();
        match e {
            RunError::Helper { pc, ref source, .. } => {
                assert_eq!(pc, 4);
                assert!(source.to_string().contains("refused 9"), "{source}");
            }
            other => panic!("unexpected {other:?}"),
        }
        // A built-in's error (a bad map pointer) names its instruction too.
        let prog = vm
            .load(program("mov64 r1, 5\nmov64 r2, r10\ncall 1\nexit"))
            .unwrap();
        assert!(matches!(
            vm.run(&prog, CpuId(0), &Input::empty()),
            Err(RunError::Helper {
                pc: 2,
                source: HelperError::BadMap { .. },
                ..
            })
        ));
    }
}
