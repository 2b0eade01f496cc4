//! The `jit` engine's [`Engine`]: a compiled program and the run loop around it, the
//! interpreter's `runs` with the compiled function in place of its `execute`.

use bpfvm_helpers::memory::{guest_addr, REGION_STACK};

use super::code::Code;
use super::compile::compile;
use crate::cpu::{Lane, STACK_SIZE};
use crate::engine::interpreter::{Interpreter, Nest, Start};
use crate::engine::{Engine, EngineKind, RunEnv};
use crate::error::{PrepareError, RunError};
use crate::program::Program;

/// A program compiled by the `jit` engine, with its interpreter form (its tables): what
/// [`Engine::as_jit`] gives, and what a tail call into the program runs. Opaque.
#[derive(Debug)]
pub struct Jit {
    pub(super) interpreter: Interpreter,
    pub(super) code: Code,
    pub(super) core_poisons: Box<[(usize, std::sync::Arc<str>)]>,
}

impl Jit {
    /// Compiles `interpreter`'s form of `program`.
    pub(super) fn prepare(
        program: &Program,
        interpreter: Interpreter,
    ) -> Result<Jit, PrepareError> {
        let code = compile(interpreter.insns(), interpreter.callbacks())?;
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
        let too_many_maps = || RunError::BadInput {
            reason: "the program's maps have more values than guest addresses can name".into(),
        };
        if !lane.install_maps(p.id(), p.map_list()) {
            return Err(too_many_maps());
        }
        lane.set_stack_depth(usize::from(p.uses_stack()));
        let r1 = lane.ctx_addr();
        let r2 = lane.ctx_len as u64;
        let r10 = guest_addr(REGION_STACK, STACK_SIZE as u32);
        if begin {
            lane.begin_run();
        }
        let mut runs_left = repeat.max(1);
        loop {
            if p.has_tail_call() {
                // The last run may have ended in another program, with its maps installed.
                lane.forget_maps();
                if !lane.install_maps(p.id(), p.map_list()) {
                    return Err(too_many_maps());
                }
            }
            lane.prepare_stack();
            let start = Start {
                pc: 0,
                depth: 0,
                args: [r1, r2, 0, 0, 0],
                fp: r10,
            };
            let mut nest = Nest::main(env.budget);
            let mut used = 1;
            let result = self.execute(
                &mut lane.helper_ctx,
                env.registry,
                env.budget,
                start,
                &mut nest,
                &mut used,
            );
            if p.has_tail_call() {
                lane.forget_maps();
            }
            if p.uses_stack() {
                lane.dirty_frames = used;
            }
            if used > 1 {
                lane.reset_stack_depth(1);
            }
            let held = lane.helper_ctx.end_run();
            let r0 = result.map_err(|stop| *stop.resume())?;
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

    fn as_jit(&self) -> Option<&Jit> {
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
