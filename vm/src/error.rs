//! Errors: `PrepareError` (a program refused before it runs), `RunError` (a run that failed)
//! and the root [`Error`].

use std::sync::Arc;

use bpfvm_helpers::{HelperError, MemFault};

use crate::engine::EngineKind;

/// A program refused when it is prepared for an engine. Every variant names the index of the
/// offending instruction where there is one.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum PrepareError {
    /// The bytecode is empty.
    #[error("the program has no instructions")]
    Empty,
    /// A map of the program was created for another number of CPUs than the VM has.
    #[error("map {map} was created for {map_cpus} cpus but the vm has {vm_cpus}: create the maps for the vm (Object::create_maps(vm.ncpus()), Vm::create_map or LoadedObject)")]
    CpuCountMismatch {
        /// The map's name.
        map: String,
        /// The CPU count it was created for.
        map_cpus: u32,
        /// The VM's CPU count.
        vm_cpus: u32,
    },
    /// The program uses a PROG_ARRAY that holds (or was first used by) programs of another
    /// type: the kernel's `bpf_prog_map_compatible` refuses the load (`EINVAL`).
    #[error("map {map}: a PROG_ARRAY holds programs of one type; its owner has type {owner}, this program type {prog_type} (EINVAL)")]
    ProgArrayOwner {
        /// The map's name.
        map: String,
        /// The owner's `BPF_PROG_TYPE_*` number.
        owner: u32,
        /// This program's `BPF_PROG_TYPE_*` number.
        prog_type: u32,
    },
    /// The bytecode length is not a multiple of 8.
    #[error("bytecode length {len} is not a multiple of 8")]
    BadLength {
        /// Length in bytes.
        len: usize,
    },
    /// The program is longer than the limit.
    #[error("the program has {len} instructions, more than the limit {max}")]
    TooLong {
        /// Number of instruction slots.
        len: usize,
        /// The limit.
        max: usize,
    },
    /// An opcode the ISA does not define (or bpfvm does not implement).
    #[error("instruction {pc}: unknown opcode {opcode:#04x}")]
    UnknownOpcode {
        /// Instruction index.
        pc: usize,
        /// The opcode byte.
        opcode: u8,
    },
    /// A field the ISA requires to be zero (or to hold one of a few values) does not.
    #[error("instruction {pc}: opcode {opcode:#04x} has reserved field {field} = {value}, which must be {expected}")]
    ReservedField {
        /// Instruction index.
        pc: usize,
        /// The opcode byte.
        opcode: u8,
        /// Which field (`src`, `dst`, `off`, `imm`).
        field: &'static str,
        /// Its value.
        value: i64,
        /// What it must be.
        expected: &'static str,
    },
    /// A register number above 10.
    #[error("instruction {pc}: invalid register r{reg}")]
    BadRegister {
        /// Instruction index.
        pc: usize,
        /// The register number.
        reg: u8,
    },
    /// A register read before it is initialised on some path (the kernel's `R%d !read_ok`).
    #[error("instruction {pc}: r{reg} is read before it is initialised")]
    UninitializedRegister {
        /// Instruction index.
        pc: usize,
        /// The register.
        reg: u8,
    },
    /// An instruction writes the read-only frame pointer `r10`.
    #[error("instruction {pc}: frame pointer r10 is read-only")]
    WriteToFramePointer {
        /// Instruction index.
        pc: usize,
    },
    /// `r10` used as an operand other than by copy, pointer add, store, compare or as a
    /// memory base (the kernel verifier forbids pointer arithmetic of other kinds).
    #[error("instruction {pc}: frame pointer r10 used in opcode {opcode:#04x}; it may only be copied, added to a scalar, stored, compared or used as a memory base")]
    FramePointerMisuse {
        /// Instruction index.
        pc: usize,
        /// The opcode byte.
        opcode: u8,
    },
    /// A jump or call whose target is outside the program or inside an `ld_imm64`.
    #[error(
        "instruction {pc}: jump target {target} is out of range (program has {len} instructions)"
    )]
    JumpOutOfRange {
        /// Instruction index.
        pc: usize,
        /// The computed target.
        target: i64,
        /// Number of instruction slots.
        len: usize,
    },
    /// A jump into the second slot of an `ld_imm64`.
    #[error("instruction {pc}: jump target {target} is the second half of an ld_imm64")]
    JumpIntoLdImm64 {
        /// Instruction index.
        pc: usize,
        /// The target.
        target: usize,
    },
    /// An `ld_imm64` without its second slot, or with a malformed one.
    #[error("instruction {pc}: ld_imm64 is truncated or its second slot is malformed")]
    BadLdImm64 {
        /// Instruction index.
        pc: usize,
    },
    /// Division or modulo by an immediate zero.
    #[error("instruction {pc}: division by immediate zero")]
    DivisionByZero {
        /// Instruction index.
        pc: usize,
    },
    /// The last instruction can fall through past the end of the program.
    #[error("instruction {pc}: the last instruction must be exit or an unconditional jump")]
    FallsOffEnd {
        /// Instruction index.
        pc: usize,
    },
    /// Every run reaches an `exit` whose `r0` is a constant outside the range the kernel's
    /// verifier allows for the program type (`check_return_code`).
    #[error("instruction {pc}: exit with r0 = {value}, outside [{min}, {max}] allowed for {prog_type:?} programs")]
    ReturnValueOutOfRange {
        /// Instruction index of the `exit`.
        pc: usize,
        /// The constant in `r0` (as a signed 64-bit value).
        value: i64,
        /// Smallest allowed return value.
        min: i64,
        /// Largest allowed return value.
        max: i64,
        /// The program type.
        prog_type: crate::program_type::ProgramType,
    },
    /// The program calls a kernel function (`extern ... __ksym`, not `__weak`) that no
    /// one registered ([`crate::VmBuilder::kfunc`]); libbpf: "extern (func ksym) 'f': not
    /// found in kernel or module BTFs".
    #[error("instruction {pc}: kfunc {name} is not registered (register it with VmBuilder::kfunc, or declare it __weak)")]
    UnresolvedKfunc {
        /// The kfunc.
        name: String,
        /// The first instruction that calls it or takes its address.
        pc: usize,
    },
    /// A helper id with no registered helper.
    #[error("instruction {pc}: call to unknown helper {id}")]
    UnknownHelper {
        /// Instruction index.
        pc: usize,
        /// The helper id.
        id: i64,
    },
    /// A pseudo `ld_imm64` naming a map index the program does not have.
    #[error("instruction {pc}: map index {index} out of range (program has {count} maps)")]
    BadMapIndex {
        /// Instruction index.
        pc: usize,
        /// The index.
        index: i64,
        /// Number of maps.
        count: usize,
    },
    /// Direct value access (`BPF_PSEUDO_MAP_VALUE`) outside the value, or on an `ARRAY` of
    /// more than one entry (the kernel's words; `ENOTSUPP` for the latter).
    #[error(
        "instruction {pc}: invalid access to map value pointer, value_size={value_size} \
         off={offset} (map {index}{})",
        if *single_entry { "" } else { ", an array of more than one entry" }
    )]
    BadMapValueOffset {
        /// Instruction index.
        pc: usize,
        /// The map index.
        index: usize,
        /// The offset.
        offset: i64,
        /// The map's value size.
        value_size: usize,
        /// Whether the map is a single-entry array (else the access is refused for that).
        single_entry: bool,
    },
    /// The program's maps hold more values than the interpreter's guest addresses can name
    /// (2^20 values per region, 4,092 regions).
    #[error("the program's {maps} maps have more values than guest addresses can name")]
    AddressSpace {
        /// Number of maps.
        maps: usize,
    },
    /// Direct value access (`BPF_PSEUDO_MAP_VALUE`) on a map type that has none, such as a
    /// per-CPU array: there is no one value to point at.
    #[error("instruction {pc}: no direct value access support for this map type (map {index})")]
    NoDirectValueAccess {
        /// Instruction index.
        pc: usize,
        /// The map index.
        index: usize,
    },
    /// The engine cannot run (or would run wrongly) this instruction.
    #[error("instruction {pc}: engine {engine} does not support {what}")]
    Unsupported {
        /// Instruction index.
        pc: usize,
        /// The engine.
        engine: EngineKind,
        /// What is unsupported.
        what: &'static str,
    },
    /// An engine that is not available on this platform.
    #[error("engine {engine} is not available on this platform")]
    EngineUnavailable {
        /// The engine.
        engine: EngineKind,
    },
    /// The `jit` engine's code generator failed on the program.
    #[error("engine jit could not compile the program: {message}")]
    Jit {
        /// The code generator's message.
        message: String,
    },
    /// rbpf refused the program.
    #[error("engine {engine} refused the program: {message}")]
    Rbpf {
        /// The engine.
        engine: EngineKind,
        /// rbpf's message.
        message: String,
    },
    /// The Linux kernel's verifier would refuse the program (see `docs/verifier.md`); the
    /// error names the instruction, the rule, the kernel's words and the register state.
    #[error("the kernel's verifier refuses the program: {}", verifier_display(error, line.as_deref()))]
    Verifier {
        /// The verifier's error.
        error: Box<bpfvm_verifier::VerifierError>,
        /// The C source line of the instruction (`file:line: code`), from `.BTF.ext`.
        line: Option<String>,
    },
}

/// A verifier error with its source line between the message and the register state.
pub(crate) fn verifier_display(e: &bpfvm_verifier::VerifierError, line: Option<&str>) -> String {
    let mut s = String::new();
    if let Some(i) = e.insn {
        s.push_str(&format!("instruction {i}: "));
    }
    s.push_str(&format!("{} ({})", e.message, e.rule));
    if let Some(l) = line {
        s.push_str(&format!("\n  source: {l}"));
    }
    if !e.state.is_empty() {
        s.push_str(&format!("\n  state:{}", e.state));
    }
    s
}

impl PrepareError {
    /// The kernel's errno for a refused program: the kernel verifier's errno for
    /// [`PrepareError::Verifier`], `ENOTSUPP` (524) for direct value access on an array of
    /// more than one entry, else `EINVAL`.
    pub fn errno(&self) -> i32 {
        match self {
            PrepareError::Verifier { error, .. } => error.errno,
            PrepareError::BadMapValueOffset {
                single_entry: false,
                ..
            } => 524,
            // bpf_object__load of libbpf: the ksym resolution fails with -EINVAL.
            PrepareError::UnresolvedKfunc { .. } => 22,
            _ => 22,
        }
    }
}

/// A run that did not complete.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum RunError {
    /// A memory access outside the regions the run may touch (or a write to read-only memory).
    #[error("instruction {pc}{at}: {fault}")]
    Fault {
        /// Instruction index.
        pc: usize,
        /// The C source line of the instruction, when the program carries line info.
        at: SourceAt,
        /// The refused access.
        #[source]
        fault: MemFault,
    },
    /// The instruction budget ran out (an endless or too long loop).
    #[error("instruction budget of {budget} exhausted at instruction {pc}{at}")]
    BudgetExhausted {
        /// Instruction index where the budget ran out.
        pc: usize,
        /// The C source line of the instruction, when the program carries line info.
        at: SourceAt,
        /// The budget.
        budget: u64,
    },
    /// The run failed in a program it tail-called (`bpf_tail_call`, helper 12); `source`
    /// is that program's error (its `pc` is in that program).
    #[error(
        "instruction {pc}{at}: in the program tail-called from {map}[{index}] (id {program}): {source}"
    )]
    InTailCall {
        /// Instruction index of the `bpf_tail_call` in the calling program.
        pc: usize,
        /// The C source line of the call, when the calling program carries line info.
        at: SourceAt,
        /// The PROG_ARRAY.
        map: String,
        /// The slot.
        index: u32,
        /// The called program's id ([`crate::LoadedProgram::id`]).
        program: u32,
        /// What went wrong there.
        #[source]
        source: Box<RunError>,
    },
    /// A bpf-to-bpf call beyond the kernel's limit of 8 frames.
    #[error("instruction {pc}{at}: call depth exceeds {max} frames")]
    CallDepth {
        /// Instruction index.
        pc: usize,
        /// The C source line of the instruction, when the program carries line info.
        at: SourceAt,
        /// The limit.
        max: usize,
    },
    /// A helper call failed.
    #[error("instruction {pc}{at}: {source}")]
    Helper {
        /// Instruction index of the call (rbpf engines cannot tell: `usize::MAX`).
        pc: usize,
        /// The C source line of the call, when the program carries line info.
        at: SourceAt,
        /// The helper's error.
        #[source]
        source: HelperError,
    },
    /// A helper failed during an rbpf run (rbpf cannot say at which instruction).
    #[error("{source} (during an rbpf run)")]
    HelperAfterRun {
        /// The helper's error.
        #[source]
        source: HelperError,
    },
    /// The run reached an instruction poisoned because its CO-RE relocation could not be
    /// resolved (libbpf's `call 0xbad2310`; the kernel's verifier refuses such a program
    /// with "invalid func unknown#195896080").
    #[error("instruction {pc}{at}: reached a poisoned instruction (call 0xbad2310): {relocation}")]
    CorePoison {
        /// Instruction index.
        pc: usize,
        /// The C source line of the instruction, when the program carries line info.
        at: SourceAt,
        /// The relocation (`Program::with_core_poisons`, set by the loader), e.g.
        /// `CO-RE relocation #0 <byte_off> [2] struct task_struct.tgid (0:1 @ offset 4)
        /// (section kprobe/x, instruction 1) could not be resolved: ...`.
        relocation: String,
    },
    /// The program exited (or failed) while it held a `bpf_spin_lock` or ring buffer
    /// reservations, which the kernel's verifier refuses; bpfvm released and discarded them.
    #[error("{source}")]
    HeldAtExit {
        /// What was held, as the helper context reports it.
        #[source]
        source: HelperError,
    },
    /// `bpf_loop` or `bpf_for_each_map_elem` given something other than the address of
    /// one of the program's callbacks (the kernel's verifier refuses such a program; in
    /// structural mode the run stops here).
    #[error("instruction {pc}{at}: {helper} was given {value:#x}, which is not the address of a callback of the program")]
    BadCallback {
        /// Instruction index of the helper call.
        pc: usize,
        /// The C source line of the call, when the program carries line info.
        at: SourceAt,
        /// The helper's name.
        helper: &'static str,
        /// The value passed as the callback.
        value: u64,
    },
    /// `callx` through a register holding no registered helper.
    #[error("instruction {pc}{at}: callx to unknown helper {target}")]
    BadCallx {
        /// Instruction index.
        pc: usize,
        /// The C source line of the instruction, when the program carries line info.
        at: SourceAt,
        /// The register value.
        target: u64,
    },
    /// The CPU is not one of the VM's simulated CPUs.
    #[error("cpu {cpu} does not exist (the vm has {ncpus} cpus)")]
    NoSuchCpu {
        /// The CPU asked for.
        cpu: u32,
        /// Number of simulated CPUs.
        ncpus: u32,
    },
    /// The input does not fit the program type (e.g. a context of the wrong size).
    #[error("bad input: {reason}")]
    BadInput {
        /// What is wrong.
        reason: String,
    },
    /// A test run's context (`ctx_in`) that the kernel's test run refuses for the program
    /// type: a field it may not set, a packet pointer that does not describe the packet, a
    /// device that does not exist (see [`crate::ctx_in`]).
    #[error("bad context: {reason}")]
    BadContext {
        /// The context field at fault (`data_end`, `ifindex`, ...).
        field: &'static str,
        /// What is wrong.
        reason: String,
        /// The kernel's errno (`EINVAL`, `E2BIG` or `ENODEV`).
        errno: i32,
    },
    /// An rbpf engine failed.
    #[error("engine {engine}: {message}")]
    Rbpf {
        /// The engine.
        engine: EngineKind,
        /// rbpf's message.
        message: String,
    },
    /// A packet or context larger than the program type's test run takes
    /// ([`crate::limits`]): `EINVAL`, or `ENOMEM` for an XDP packet, as the kernel.
    #[error(
        "bad input: {what} of {len} bytes is larger than the {max} bytes {whose} test run takes"
    )]
    InputTooLarge {
        /// `packet` or `context`.
        what: &'static str,
        /// Its length.
        len: usize,
        /// The limit.
        max: usize,
        /// Whose limit it is (`an XDP program's`).
        whose: &'static str,
        /// The kernel's errno.
        errno: i32,
    },
    /// `Vm::run_on_all` would collect more return values than
    /// [`crate::limits::MAX_COLLECTED_RESULTS`], or could not allocate room for them
    /// (`ENOMEM`); `Vm::run_on_all_with` streams them instead.
    #[error("{repeat} runs on each of {ncpus} cpus would collect more return values than the {max} run_on_all keeps; use run_on_all_with to stream them")]
    TooManyResults {
        /// Runs asked for on each CPU.
        repeat: u64,
        /// Number of simulated CPUs.
        ncpus: u32,
        /// The limit on results (all CPUs together).
        max: u64,
    },
}

/// The C source line of the instruction a [`RunError`] names (`file.c:42: x = data[23];`),
/// from the object's line info (`.BTF.ext`); empty for programs without it. Its `Display`
/// is ` (file.c:42: ...)`, or nothing.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct SourceAt(Option<Arc<str>>);

impl SourceAt {
    /// No source line.
    pub const NONE: SourceAt = SourceAt(None);

    /// The line, as `file.c:42: source text`.
    pub fn line(&self) -> Option<&str> {
        self.0.as_deref()
    }
}

impl std::fmt::Display for SourceAt {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match &self.0 {
            Some(line) => write!(f, " ({line})"),
            None => Ok(()),
        }
    }
}

impl RunError {
    /// The instruction index and source line of the errors that name an instruction.
    fn instruction(&self) -> Option<(usize, &SourceAt)> {
        match self {
            RunError::Fault { pc, at, .. }
            | RunError::BudgetExhausted { pc, at, .. }
            | RunError::CallDepth { pc, at, .. }
            | RunError::Helper { pc, at, .. }
            | RunError::BadCallx { pc, at, .. }
            | RunError::BadCallback { pc, at, .. }
            | RunError::CorePoison { pc, at, .. }
            | RunError::InTailCall { pc, at, .. } => Some((*pc, at)),
            _ => None,
        }
    }

    /// The instruction index this error names, if any.
    pub fn pc(&self) -> Option<usize> {
        let (pc, _) = self.instruction()?;
        (pc != usize::MAX).then_some(pc)
    }

    /// The C source line of the instruction this error names, if the program has line info.
    pub fn source_line(&self) -> Option<&str> {
        self.instruction()?.1.line()
    }

    /// Names the C source line of the failing instruction (from `program`'s line info).
    pub(crate) fn at_source_of(mut self, program: &crate::Program) -> RunError {
        let Some(line) = self.pc().and_then(|pc| program.source_line(pc)) else {
            return self;
        };
        let line: Arc<str> = Arc::from(line);
        match &mut self {
            RunError::Fault { at, .. }
            | RunError::BudgetExhausted { at, .. }
            | RunError::CallDepth { at, .. }
            | RunError::Helper { at, .. }
            | RunError::BadCallx { at, .. }
            | RunError::BadCallback { at, .. }
            | RunError::CorePoison { at, .. }
            | RunError::InTailCall { at, .. } => *at = SourceAt(Some(line)),
            _ => {}
        }
        self
    }

    /// The kernel's errno for this failure, where one applies.
    pub fn errno(&self) -> i32 {
        match self {
            RunError::Fault { .. } => 14,
            RunError::NoSuchCpu { .. } => 6,
            RunError::Helper { source, .. }
            | RunError::HelperAfterRun { source }
            | RunError::HeldAtExit { source } => source.errno(),
            RunError::InputTooLarge { errno, .. } | RunError::BadContext { errno, .. } => *errno,
            RunError::InTailCall { source, .. } => source.errno(),
            RunError::TooManyResults { .. } => 12,
            _ => 22,
        }
    }
}

/// Any bpfvm error: every step (load an object, create its maps, prepare a program, run it,
/// use a map from the host) converts into it, so `?` works in one test function.
///
/// ```
/// fn check() -> Result<(), bpfvm::Error> {
///     let map = bpfvm::maps::Map::create(
///         bpfvm::maps::MapSpec::new(bpfvm::maps::MapType::Array, 4, 8, 1),
///         1,
///     )?; // a MapError
///     let mut v = [0u8; 8];
///     map.lookup(&7u32.to_ne_bytes(), &mut v, 0)?; // ENOENT: no such index
///     Ok(())
/// }
/// assert_eq!(check().unwrap_err().errno(), 2);
/// ```
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum Error {
    /// Reading an object file failed.
    #[error(transparent)]
    Load(#[from] crate::loader::LoadError),
    /// A map operation (creation, a host command) failed.
    #[error(transparent)]
    Map(#[from] bpfvm_maps::MapError),
    /// Preparing a program failed.
    #[error(transparent)]
    Prepare(#[from] PrepareError),
    /// A run failed.
    #[error(transparent)]
    Run(#[from] RunError),
    /// A helper failed outside a run.
    #[error(transparent)]
    Helper(#[from] HelperError),
    /// A name not found in a loaded object, or a program of it that did not load.
    #[error(transparent)]
    Object(#[from] crate::loaded::ObjectError),
    /// A test frame could not be built.
    #[error(transparent)]
    Frame(#[from] crate::frame::FrameError),
}

impl Error {
    /// The kernel's errno for this error (`MapError::errno` for map errors, and so on).
    pub fn errno(&self) -> i32 {
        match self {
            Error::Load(e) => e.errno(),
            Error::Map(e) => e.errno(),
            Error::Prepare(e) => e.errno(),
            Error::Run(e) => e.errno(),
            Error::Helper(e) => e.errno(),
            Error::Object(e) => e.errno(),
            Error::Frame(_) => 22,
        }
    }
}
