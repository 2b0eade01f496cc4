//! Engines: one [`Engine`] trait, four implementations.
//!
//! | engine | what | sandboxed |
//! |---|---|---|
//! | [`EngineKind::Interpreter`] (default) | bpfvm's own interpreter, whole ISA | yes: every access is checked against the region table |
//! | [`EngineKind::Jit`] | native code from cranelift (x86_64, aarch64; the `jit` feature) | yes: the interpreter's checks, compiled inline |
//! | [`EngineKind::RbpfInterpreter`] | rbpf 0.4.1's interpreter | **no**: host pointers; rbpf checks only the first byte of an access, helpers trust pointers |
//! | [`EngineKind::RbpfJit`] | rbpf 0.4.1's x86_64 JIT (not on Windows) | **no**: native code without memory checks |

use std::fmt;

use bpfvm_helpers::Registry;

use crate::cpu::Lane;
use crate::error::{PrepareError, RunError};
use crate::program::Program;
use crate::vm::VmConfig;

mod callback;
pub mod interpreter;
pub mod jit;
pub mod rbpf;

/// Which engine runs a program.
///
/// Only [`EngineKind::Interpreter`] is a sandbox ([`EngineKind::is_sandboxed`]). The rbpf
/// engines run programs on host pointers: a program that is wrong or hostile can read or
/// overwrite the host process's memory, or crash it (on `RbpfJit` a 5-instruction wild
/// store is a segmentation fault). Use them only for programs you trust; the `bpfvm`
/// command refuses them unless given `--unsafe-engine`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default)]
pub enum EngineKind {
    /// bpfvm's own checked interpreter (the default): sandboxed.
    #[default]
    Interpreter,
    /// bpfvm's JIT ([`jit`]): the interpreter's semantics and checks compiled to native
    /// code with cranelift: sandboxed. Only where [`jit::AVAILABLE`] (x86_64 and aarch64 with
    /// the `jit` feature); elsewhere preparing for it fails with
    /// [`PrepareError::EngineUnavailable`].
    Jit,
    /// rbpf's interpreter: **not sandboxed** (host pointers; rbpf checks only the first
    /// byte of an access, helpers trust pointers).
    RbpfInterpreter,
    /// rbpf's x86_64 JIT: **not sandboxed** (native code without memory checks); only on
    /// x86_64, not Windows.
    RbpfJit,
}

impl EngineKind {
    /// All engines available on this platform.
    pub fn available() -> Vec<EngineKind> {
        let mut v = vec![EngineKind::Interpreter];
        if jit::AVAILABLE {
            v.push(EngineKind::Jit);
        }
        v.push(EngineKind::RbpfInterpreter);
        if cfg!(all(target_arch = "x86_64", not(windows))) {
            v.push(EngineKind::RbpfJit);
        }
        v
    }

    /// True for the engine that confines programs to their memory (every access checked,
    /// loops bounded by the instruction budget): [`EngineKind::Interpreter`] and
    /// [`EngineKind::Jit`].
    pub fn is_sandboxed(self) -> bool {
        matches!(self, EngineKind::Interpreter | EngineKind::Jit)
    }

    /// The engine's name as used on the command line.
    pub fn name(self) -> &'static str {
        match self {
            EngineKind::Interpreter => "interpreter",
            EngineKind::Jit => "jit",
            EngineKind::RbpfInterpreter => "rbpf-interpreter",
            EngineKind::RbpfJit => "rbpf-jit",
        }
    }
}

impl fmt::Display for EngineKind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

impl std::str::FromStr for EngineKind {
    type Err = String;
    fn from_str(s: &str) -> Result<Self, String> {
        match s {
            "interpreter" => Ok(EngineKind::Interpreter),
            "jit" => Ok(EngineKind::Jit),
            "rbpf-interpreter" => Ok(EngineKind::RbpfInterpreter),
            "rbpf-jit" => Ok(EngineKind::RbpfJit),
            _ => Err(format!("unknown engine {s:?}")),
        }
    }
}

/// Everything a run needs besides the lane.
#[derive(Debug, Clone, Copy)]
pub struct RunEnv<'a> {
    /// The helper table.
    pub registry: &'a Registry,
    /// Instruction budget for this run.
    pub budget: u64,
}

/// A program prepared for one engine.
pub trait Engine: Send + Sync + fmt::Debug {
    /// Which engine this is.
    fn kind(&self) -> EngineKind;

    /// The interpreter's prepared program (the form a `bpf_tail_call` jumps to), if this
    /// is the interpreter engine.
    fn as_interpreter(&self) -> Option<&interpreter::Interpreter> {
        None
    }

    /// The program compiled by the `jit` engine (what a `bpf_tail_call` into it runs), if
    /// this is the jit engine.
    fn as_jit(&self) -> Option<&jit::Jit> {
        None
    }
    /// Runs the program once on `lane`, whose context and packet buffers are filled and
    /// whose run has begun ([`Lane::begin_run`]), and returns `r0`.
    fn run(&self, program: &Program, lane: &mut Lane, env: RunEnv<'_>) -> Result<u64, RunError>;

    /// Runs the program `repeat` times (at least once) on `lane`, as `BPF_PROG_TEST_RUN`'s
    /// loop: context and packet are not reset between runs, each run is begun with
    /// [`Lane::begin_run`] here, and the first failing run ends the loop with its error.
    /// Returns `r0` of the last run. Engines override it to keep per-run work out of the
    /// loop.
    fn run_repeated(
        &self,
        program: &Program,
        lane: &mut Lane,
        env: RunEnv<'_>,
        repeat: u32,
    ) -> Result<u64, RunError> {
        let mut r0 = 0;
        for _ in 0..repeat.max(1) {
            lane.begin_run();
            r0 = self.run(program, lane, env)?;
        }
        Ok(r0)
    }
}

/// Prepares `program` for `kind`.
pub fn prepare(
    program: &Program,
    registry: &Registry,
    kind: EngineKind,
    config: &VmConfig,
) -> Result<Box<dyn Engine>, PrepareError> {
    match kind {
        EngineKind::Interpreter => Ok(Box::new(interpreter::Interpreter::prepare(
            program, registry,
        )?)),
        EngineKind::Jit => jit::prepare(program, registry),
        EngineKind::RbpfInterpreter | EngineKind::RbpfJit => {
            rbpf::prepare(program, registry, kind, config.rbpf_allow_loops)
        }
    }
}
