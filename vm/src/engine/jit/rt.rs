//! What compiled code calls: the run's environment ([`Env`]) and the `extern "C"`
//! trampolines into the same Rust functions the interpreter uses (memory accesses the
//! inline check did not grant, atomics, helpers, the stack window of bpf-to-bpf calls) and
//! the error exits. Each trampoline of a memory access or helper call first notes its
//! instruction in the memory (`Memory::note_pc`), as the interpreter's watched loop does
//! for the race explorer's hook: accesses to the values it watches always leave the inline
//! check (their region table entries are closed), so they all come through here with
//! their instruction. A trampoline that fails records the run's error in [`Env::error`], sets
//! [`Env::status`] and returns 0; the compiled code then leaves at once. A panic inside a
//! trampoline (a user helper's) is caught, kept in [`Env::panic`] and resumed after the
//! compiled code returned, so it unwinds through Rust frames only.

use std::any::Any;
use std::panic::{catch_unwind, AssertUnwindSafe};
use std::sync::Arc;

use bpfvm_helpers::memory::{AtomicOp, REGION_STACK};
use bpfvm_helpers::registry::HelperFn;
use bpfvm_helpers::{Helper, HelperContext, HelperError, Registry};

use super::code::with_env;
use crate::cpu::{FRAME_SIZE, MAX_FRAMES, STACK_SIZE};
use crate::engine::interpreter::{core_poison, helper_failed};
use crate::error::{RunError, SourceAt};

/// The state compiled code shares with its trampolines during one run. `#[repr(C)]`: the
/// compiled code reads and writes the fields named in [`offsets`].
#[repr(C)]
pub(super) struct Env<'a> {
    /// 0 while the run goes on; 1 once a trampoline failed (see [`Env::error`]).
    pub(super) status: u64,
    /// The budget credit after a helper call charged the helper's work (see the
    /// interpreter's `credit`).
    pub(super) credit: u64,
    /// The region table ([`bpfvm_helpers::Memory::fast_table`]), read again after every
    /// trampoline that hands the context to other code.
    pub(super) fast: *const u8,
    /// Stack frames the run used (at least 1).
    pub(super) used: u64,
    pub(super) ctx: &'a mut HelperContext,
    pub(super) fns: &'a [HelperFn],
    pub(super) objects: &'a [Arc<dyn Helper>],
    pub(super) core_poisons: &'a [(usize, Arc<str>)],
    pub(super) registry: &'a Registry,
    /// The run's whole budget (for messages).
    pub(super) budget: u64,
    pub(super) error: Option<Box<RunError>>,
    pub(super) panic: Option<Box<dyn Any + Send>>,
    /// The program running (its callbacks run its compiled code again).
    pub(super) jit: &'a super::run::Jit,
    /// The tail calls the whole run made so far (`MAX_TAIL_CALL_CNT`).
    pub(super) tail_calls: u32,
    /// 1 when the last `bpf_tail_call` jumped (its target's `r0` is this frame's result),
    /// 0 when it fell through.
    pub(super) jumped: u64,
}

impl std::fmt::Debug for Env<'_> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Env")
            .field("status", &self.status)
            .field("credit", &self.credit)
            .field("used", &self.used)
            .field("tail_calls", &self.tail_calls)
            .field("error", &self.error)
            .finish()
    }
}

/// Byte offsets of the [`Env`] fields compiled code touches.
pub(super) mod offsets {
    use super::Env;
    pub(crate) const STATUS: i32 = std::mem::offset_of!(Env<'static>, status) as i32;
    pub(crate) const CREDIT: i32 = std::mem::offset_of!(Env<'static>, credit) as i32;
    pub(crate) const FAST: i32 = std::mem::offset_of!(Env<'static>, fast) as i32;
    pub(crate) const JUMPED: i32 = std::mem::offset_of!(Env<'static>, jumped) as i32;
}

impl Env<'_> {
    /// Ends the run with `error`.
    #[cold]
    pub(super) fn fail(&mut self, error: Box<RunError>) -> u64 {
        self.error = Some(error);
        self.status = 1;
        0
    }

    /// Runs `f`; a panic in it ends the run and is resumed after the compiled code returned.
    pub(super) fn guard(&mut self, f: impl FnOnce(&mut Self) -> u64) -> u64 {
        match catch_unwind(AssertUnwindSafe(|| f(self))) {
            Ok(v) => v,
            Err(payload) => {
                self.panic = Some(payload);
                self.status = 1;
                0
            }
        }
    }

    /// Charges the helper work pending after a helper call at `pc` (the interpreter's
    /// `charge_helper_work`) and leaves the new credit in [`Env::credit`].
    fn charge_work(&mut self, pc: u64, credit: u64) -> bool {
        self.credit = credit;
        if self.ctx.pending_work() != 0 {
            let work = self.ctx.take_work();
            if (pc + 1).saturating_add(work) > credit {
                self.fail(budget_error(pc, self.budget));
                return false;
            }
            self.credit = credit - work;
        }
        true
    }

    /// After a helper returned `result` at `pc`: `r0`, or the run's end.
    fn helper_done(&mut self, pc: u64, credit: u64, result: Result<u64, HelperError>) -> u64 {
        self.fast = self.ctx.memory.fast_table();
        match result {
            Ok(v) => {
                if self.charge_work(pc, credit) {
                    v
                } else {
                    0
                }
            }
            Err(source) => self.fail(helper_failed(pc as usize, source)),
        }
    }
}

pub(super) fn budget_error(pc: u64, budget: u64) -> Box<RunError> {
    Box::new(RunError::BudgetExhausted {
        pc: pc as usize,
        budget,
        at: SourceAt::NONE,
    })
}

fn fault(pc: u64, fault: bpfvm_helpers::MemFault) -> Box<RunError> {
    Box::new(RunError::Fault {
        pc: pc as usize,
        fault,
        at: SourceAt::NONE,
    })
}

/// The region table no longer grants the running stack frame (`compile/frame.rs`): a
/// helper rewrote the stack region under it.
pub(super) extern "C" fn frame_closed(env: *mut Env<'_>) {
    with_env(env, |env| {
        env.fail(Box::new(RunError::BadInput {
            reason: "a helper changed the stack region under the running frame".into(),
        }));
    })
}

/// A load the inline check did not grant: `Memory::load_guest`, as the interpreter.
pub(super) extern "C" fn load(env: *mut Env<'_>, addr: u64, size: u64, pc: u64) -> u64 {
    with_env(env, |env| {
        env.ctx.memory.note_pc(pc as usize);
        env.guard(|env| match env.ctx.memory.load_guest(addr, size) {
            Ok(v) => v,
            Err(f) => env.fail(fault(pc, f)),
        })
    })
}

/// A store the inline check did not grant: `Memory::store_guest`, as the interpreter.
pub(super) extern "C" fn store(env: *mut Env<'_>, addr: u64, size: u64, value: u64, pc: u64) {
    with_env(env, |env| {
        env.ctx.memory.note_pc(pc as usize);
        env.guard(|env| match env.ctx.memory.store_guest(addr, size, value) {
            Ok(()) => 0,
            Err(f) => env.fail(fault(pc, f)),
        });
    })
}

/// An atomic operation `op` (the instruction's `imm`) of `size` bytes at `addr`, operand
/// `src` (`r0` = `expected` for cmpxchg): the old value.
pub(super) extern "C" fn atomic(
    env: *mut Env<'_>,
    addr: u64,
    size: u64,
    op: u64,
    src: u64,
    r0: u64,
    pc: u64,
) -> u64 {
    with_env(env, |env| {
        env.ctx.memory.note_pc(pc as usize);
        env.guard(|env| {
            let mem = &env.ctx.memory;
            let o = match op as u32 {
                0x00 | 0x01 => AtomicOp::Add,
                0x40 | 0x41 => AtomicOp::Or,
                0x50 | 0x51 => AtomicOp::And,
                0xa0 | 0xa1 => AtomicOp::Xor,
                0xe1 => AtomicOp::Xchg,
                _ => {
                    let expected = if size == 4 { r0 as u32 as u64 } else { r0 };
                    return match mem.atomic_cmpxchg(addr, size, expected, src) {
                        Ok(v) => v,
                        Err(f) => env.fail(fault(pc, f)),
                    };
                }
            };
            match mem.atomic_rmw(addr, size, o, src) {
                Ok(v) => v,
                Err(f) => env.fail(fault(pc, f)),
            }
        })
    })
}

/// A call of the program's plain-function helper `slot` at `pc`, `credit` before it.
#[allow(clippy::too_many_arguments)] // the five BPF arguments are passed in registers
pub(super) extern "C" fn call_fn(
    env: *mut Env<'_>,
    slot: u64,
    pc: u64,
    credit: u64,
    a1: u64,
    a2: u64,
    a3: u64,
    a4: u64,
    a5: u64,
) -> u64 {
    with_env(env, |env| {
        env.ctx.memory.note_pc(pc as usize);
        env.guard(|env| {
            let f = env.fns[slot as usize];
            let r = f(env.ctx, &[a1, a2, a3, a4, a5]).map_err(|e| *e);
            env.helper_done(pc, credit, r)
        })
    })
}

/// A call of the program's helper object `slot` at `pc`.
#[allow(clippy::too_many_arguments)]
pub(super) extern "C" fn call_dyn(
    env: *mut Env<'_>,
    slot: u64,
    pc: u64,
    credit: u64,
    a1: u64,
    a2: u64,
    a3: u64,
    a4: u64,
    a5: u64,
) -> u64 {
    with_env(env, |env| {
        env.ctx.memory.note_pc(pc as usize);
        env.guard(|env| {
            let h = Arc::clone(&env.objects[slot as usize]);
            let r = h.call(env.ctx, [a1, a2, a3, a4, a5]);
            env.helper_done(pc, credit, r)
        })
    })
}

/// `callx` at `pc`: the register holds a helper id (the conformance suite's semantics).
#[allow(clippy::too_many_arguments)]
pub(super) extern "C" fn callx(
    env: *mut Env<'_>,
    target: u64,
    pc: u64,
    credit: u64,
    a1: u64,
    a2: u64,
    a3: u64,
    a4: u64,
    a5: u64,
) -> u64 {
    with_env(env, |env| {
        env.guard(|env| {
            let Some(entry) = u32::try_from(target)
                .ok()
                .and_then(|id| env.registry.get(id))
            else {
                return env.fail(Box::new(RunError::BadCallx {
                    pc: pc as usize,
                    target,
                    at: SourceAt::NONE,
                }));
            };
            env.ctx.memory.note_pc(pc as usize);
            let r = entry
                .helper
                .call_fast(env.ctx, &[a1, a2, a3, a4, a5])
                .map_err(|e| *e);
            env.helper_done(pc, credit, r)
        })
    })
}

/// `bpf_get_smp_processor_id`, inlined by the interpreter: the simulated CPU.
pub(super) extern "C" fn cpu(env: *mut Env<'_>) -> u64 {
    with_env(env, |env| u64::from(env.ctx.cpu()))
}

/// The run's budget ran out at `pc`.
pub(super) extern "C" fn budget_exhausted(env: *mut Env<'_>, pc: u64) {
    with_env(env, |env| {
        let e = budget_error(pc, env.budget);
        env.fail(e);
    })
}

/// Instruction `pc` has no compiled form (never for a verified program: a jump past the
/// end, or falling off it): the interpreter's error for an opcode without implementation.
pub(super) extern "C" fn invalid(env: *mut Env<'_>, pc: u64) {
    with_env(env, |env| {
        env.fail(Box::new(RunError::BadInput {
            reason: format!(
                "instruction {pc}: the program reached an instruction that passed the verifier but has no implementation"
            ),
        }));
    })
}

/// A poisoned CO-RE relocation reached at `pc`.
pub(super) extern "C" fn poisoned(env: *mut Env<'_>, pc: u64) {
    with_env(env, |env| {
        let e = core_poison(pc as usize, env.core_poisons);
        env.fail(e);
    })
}

/// A bpf-to-bpf call at `pc` from frame `depth` would go past the deepest frame.
pub(super) extern "C" fn call_depth(env: *mut Env<'_>, pc: u64) {
    with_env(env, |env| {
        env.fail(Box::new(RunError::CallDepth {
            pc: pc as usize,
            max: MAX_FRAMES,
            at: SourceAt::NONE,
        }));
    })
}

/// Frame `depth` is now the innermost (a call entered it or a return came back to it):
/// the stack window shows frames `0..=depth`, as in the interpreter.
pub(super) extern "C" fn enter_frame(env: *mut Env<'_>, depth: u64) {
    with_env(env, |env| {
        let depth = (depth as usize).min(MAX_FRAMES - 1);
        env.used = env.used.max(depth as u64 + 1);
        env.ctx
            .memory
            .set_owned_window(REGION_STACK, STACK_SIZE - (depth + 1) * FRAME_SIZE);
        env.fast = env.ctx.memory.fast_table();
    })
}
