//! The `jit` engine's [`Engine`]: a compiled program and the run loop around it, the
//! interpreter's `runs` with the compiled function in place of its `execute`.

use bpfvm_helpers::memory::{guest_addr, REGION_STACK};

use super::code::Code;
use super::compile::compile;
use super::rt::Env;
use crate::cpu::{Lane, STACK_SIZE};
use crate::engine::interpreter::Interpreter;
use crate::engine::{Engine, EngineKind, RunEnv};
use crate::error::{PrepareError, RunError};
use crate::program::Program;
use crate::verify;

/// A program compiled for the `jit` engine, with its interpreter form (its tables, and what
/// another program's tail call into it runs).
#[derive(Debug)]
pub(crate) struct Jit {
    interpreter: Interpreter,
    code: Code,
    core_poisons: Box<[(usize, std::sync::Arc<str>)]>,
}

impl Jit {
    /// Compiles `interpreter`'s form of `program`.
    pub(crate) fn prepare(
        program: &Program,
        interpreter: Interpreter,
    ) -> Result<Jit, PrepareError> {
        let code = compile(interpreter.insns())?;
        Ok(Jit {
            code,
            core_poisons: program.core_poisons().into(),
            interpreter,
        })
    }

    /// `repeat` runs on `lane`, each begun here when `begin` (see the interpreter's `runs`).
    fn runs(
        &self,
        lane: &mut Lane,
        env: RunEnv<'_>,
        repeat: u32,
        begin: bool,
    ) -> Result<u64, RunError> {
        let p = &self.interpreter;
        if !lane.install_maps(p.id(), p.map_list()) {
            return Err(RunError::BadInput {
                reason: "the program's maps have more values than guest addresses can name".into(),
            });
        }
        lane.set_stack_depth(usize::from(p.uses_stack()));
        let r1 = lane.ctx_addr();
        let r2 = lane.ctx_len as u64;
        let r10 = guest_addr(REGION_STACK, STACK_SIZE as u32);
        let (fns, objects) = p.helpers();
        // The interpreter's cap: the budget plus a pc cannot overflow.
        let credit = env.budget.min(u64::MAX - verify::MAX_INSNS as u64);
        if begin {
            lane.begin_run();
        }
        let mut runs_left = repeat.max(1);
        loop {
            lane.prepare_stack();
            let mut e = Env {
                status: 0,
                credit,
                fast: std::ptr::null(),
                used: 1,
                ctx: &mut lane.helper_ctx,
                fns,
                objects,
                core_poisons: &self.core_poisons,
                registry: env.registry,
                budget: env.budget,
                error: None,
                panic: None,
            };
            // Taken through the context the run holds (helpers may change the table).
            e.fast = e.ctx.memory.fast_table();
            let r0 = self.code.call(&mut e, r1, r2, r10, credit);
            let used = e.used as usize;
            let status = e.status;
            let (error, panic) = (e.error.take(), e.panic.take());
            if p.uses_stack() {
                lane.dirty_frames = used;
            }
            if used > 1 {
                lane.reset_stack_depth(1);
            }
            let held = lane.helper_ctx.end_run();
            if let Some(payload) = panic {
                std::panic::resume_unwind(payload);
            }
            if status != 0 {
                return Err(match error {
                    Some(e) => *e,
                    None => RunError::BadInput {
                        reason: "the jit engine's code failed without an error".into(),
                    },
                });
            }
            held.map_err(|source| RunError::HeldAtExit { source })?;
            runs_left -= 1;
            if runs_left == 0 {
                return Ok(r0);
            }
            lane.begin_run();
        }
    }
}

impl Engine for Jit {
    fn kind(&self) -> EngineKind {
        EngineKind::Jit
    }

    fn as_interpreter(&self) -> Option<&Interpreter> {
        Some(&self.interpreter)
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
