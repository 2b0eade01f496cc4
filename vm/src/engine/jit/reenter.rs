//! Entering compiled code again while a run goes on: the one entry every execution of a
//! compiled program goes through ([`Jit::execute`]: the main program, the target of a tail
//! call, each call of a callback), and the trampolines of `bpf_tail_call` ([`tail_call`])
//! and of the helpers that call back into the program ([`callback`]).
//!
//! Both trampolines call the interpreter's own implementation: a tail call is
//! `interpreter::tail_call` (the 33-call limit, fall-through, the target's maps, errors
//! wrapped in `RunError::InTailCall`), which runs a jitted target's compiled code and any
//! other target in its interpreter form; `bpf_loop` and `bpf_for_each_map_elem` are
//! `callback::call_with`, given the compiled code's re-entry ([`Compiled`]) in place of the
//! interpreter's loop. Budget, tail-call count and frames used carry through every nesting
//! exactly as in the interpreter's `Nest`.

use std::any::Any;

use bpfvm_helpers::{HelperContext, Registry};

use super::code::with_env;
use super::rt::{budget_error, Env};
use super::run::Jit;
use crate::cpu::{Frame, MAX_FRAMES};
use crate::engine::callback::{self, Reenter, Site};
use crate::engine::interpreter::{self, Nest, Start, TailJump};
use crate::error::{RunError, SourceAt};

/// Why an execution of compiled code ended without `r0`.
pub(super) enum Stop {
    /// The run's error.
    Error(Box<RunError>),
    /// A panic in a helper, caught in its trampoline: resumed once no compiled code is
    /// between it and the caller.
    Panic(Box<dyn Any + Send>),
}

impl Stop {
    /// The error; a panic is resumed here (the caller is Rust code only).
    pub(super) fn resume(self) -> Box<RunError> {
        match self {
            Stop::Error(e) => e,
            Stop::Panic(payload) => std::panic::resume_unwind(payload),
        }
    }
}

impl Jit {
    /// Runs the compiled program from `start` to the `exit` of `start`'s frame (the
    /// interpreter's `execute`): `nest.left` is the budget left in and out (a callback's
    /// last stretch is charged), `nest.tail_calls` the run's tail calls, `used` the stack
    /// frames the run used.
    pub(super) fn execute(
        &self,
        ctx: &mut HelperContext,
        registry: &Registry,
        budget: u64,
        start: Start,
        nest: &mut Nest,
        used: &mut usize,
    ) -> Result<u64, Stop> {
        if start.depth >= MAX_FRAMES {
            // The callers check the depth first; the compiled code indexes its frames by it.
            return Err(Stop::Error(Box::new(RunError::CallDepth {
                pc: start.pc,
                max: MAX_FRAMES,
                at: SourceAt::NONE,
            })));
        }
        let (fns, objects) = self.interpreter.helpers();
        let credit = nest.left + start.pc as u64;
        let mut env = Env {
            status: 0,
            credit,
            fast: std::ptr::null(),
            used: *used as u64,
            ctx,
            fns,
            objects,
            core_poisons: &self.core_poisons,
            registry,
            budget,
            error: None,
            panic: None,
            jit: self,
            tail_calls: nest.tail_calls,
            jumped: 0,
        };
        // Taken through the context the run holds (helpers may change the table).
        env.fast = env.ctx.memory.fast_table();
        let r0 = self.code.call(&mut env, &start, credit);
        *used = env.used as usize;
        if let Some(payload) = env.panic.take() {
            return Err(Stop::Panic(payload));
        }
        if env.status != 0 {
            return Err(Stop::Error(env.error.take().unwrap_or_else(|| {
                Box::new(RunError::BadInput {
                    reason: "the jit engine's code failed without an error".into(),
                })
            })));
        }
        nest.left = env.credit;
        nest.tail_calls = env.tail_calls;
        Ok(r0)
    }
}

/// The compiled code's re-entry for the callbacks of one helper call.
struct Compiled<'a> {
    jit: &'a Jit,
    registry: &'a Registry,
    budget: u64,
    used: usize,
}

impl Reenter for Compiled<'_> {
    fn callbacks(&self) -> &[u32] {
        self.jit.interpreter.callbacks()
    }

    fn used(&mut self) -> &mut usize {
        &mut self.used
    }

    fn run(
        &mut self,
        ctx: &mut HelperContext,
        start: Start,
        nest: &mut Nest,
    ) -> Result<u64, Box<RunError>> {
        self.jit
            .execute(ctx, self.registry, self.budget, start, nest, &mut self.used)
            .map_err(Stop::resume)
    }
}

/// `bpf_tail_call(r1, r2, r3)` at `pc` in frame `depth` with `credit` (the interpreter's
/// `TAIL_CALL_HELPER`). When the call jumped, `env.jumped` is 1, `env.credit` the credit
/// after it and the result the target's `r0`; when it fell through, `env.jumped` is 0.
#[allow(clippy::too_many_arguments)]
pub(super) extern "C" fn tail_call(
    env: *mut Env<'_>,
    pc: u64,
    depth: u64,
    credit: u64,
    r1: u64,
    r2: u64,
    r3: u64,
) -> u64 {
    with_env(env, |env| {
        env.guard(|env| {
            env.jumped = 0;
            // The instructions of this stretch are charged before the target runs.
            let end = pc + 1;
            if end > credit {
                let e = budget_error(pc, env.budget);
                return env.fail(e);
            }
            let jump = TailJump {
                pc: pc as usize,
                depth: depth as usize,
                ctx_arg: r1,
                prog_array: r2,
                index: r3,
                left: credit - end,
            };
            let mut nest = Nest {
                left: credit - end,
                tail_calls: env.tail_calls,
            };
            // The frames an interpreted target's bpf-to-bpf calls save (its own from
            // `depth` on; the compiled caller keeps its frames in its native stack).
            let mut frames = [Frame::default(); MAX_FRAMES];
            let mut used = env.used as usize;
            let result = interpreter::tail_call(
                jump,
                env.ctx,
                &mut frames,
                &mut used,
                env.registry,
                env.budget,
                &mut nest,
            );
            env.used = used as u64;
            env.fast = env.ctx.memory.fast_table();
            match result {
                Ok(Some((r0, left))) => {
                    env.tail_calls = nest.tail_calls;
                    env.jumped = 1;
                    env.credit = left + end;
                    r0
                }
                Ok(None) => 0,
                Err(e) => env.fail(e),
            }
        })
    })
}

/// A call of `bpf_loop` or `bpf_for_each_map_elem` at `pc` in frame `depth` (whose `r10` is
/// `fp`) with `credit` (the interpreter's `CALL_CALLBACK`): `site` is the helper id, with
/// bit 32 set when `bpf_loop`'s flags are known to be 0. Returns `r0`; `env.credit` is the
/// credit after the callbacks ran.
#[allow(clippy::too_many_arguments)]
pub(super) extern "C" fn callback(
    env: *mut Env<'_>,
    site: u64,
    pc: u64,
    credit: u64,
    depth: u64,
    fp: u64,
    a1: u64,
    a2: u64,
    a3: u64,
    a4: u64,
    a5: u64,
) -> u64 {
    with_env(env, |env| {
        env.guard(|env| {
            // The stretch so far is charged; the callbacks' instructions come off what is
            // left; the next stretch starts after the call.
            let end = pc + 1;
            if end > credit {
                let e = budget_error(pc, env.budget);
                return env.fail(e);
            }
            let mut nest = Nest {
                left: credit - end,
                tail_calls: env.tail_calls,
            };
            let site = Site {
                pc: pc as usize,
                id: site as u32,
                flags_known_zero: site >> 32 != 0,
                depth: depth as usize,
                fp,
            };
            let mut compiled = Compiled {
                jit: env.jit,
                registry: env.registry,
                budget: env.budget,
                used: env.used as usize,
            };
            let result = callback::call_with(
                &mut compiled,
                env.ctx,
                site,
                [a1, a2, a3, a4, a5],
                &mut nest,
            );
            env.used = compiled.used as u64;
            env.fast = env.ctx.memory.fast_table();
            match result {
                Ok(r0) => {
                    env.tail_calls = nest.tail_calls;
                    env.credit = nest.left + end;
                    r0
                }
                Err(e) => env.fail(e),
            }
        })
    })
}
