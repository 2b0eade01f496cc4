//! The `jit` engine's `unsafe` code, all of it: owning the executable memory, calling the
//! compiled function, and handing the run's [`Env`] to the trampolines it calls.
#![allow(unsafe_code)]

use cranelift_jit::JITModule;

use super::rt::Env;
use crate::engine::interpreter::Start;

/// The signature of a compiled program: `(env, region table, r1, r2, r3, r4, r5, r10,
/// credit, first instruction, frame) -> r0` (meaningful when `env.status` is 0). The first
/// instruction is 0 or a callback's; the frame is where that instruction's function runs
/// (its `exit` there returns).
type Entry =
    extern "C" fn(*mut Env<'_>, *const u8, u64, u64, u64, u64, u64, u64, u64, u64, u64) -> u64;

/// A compiled program's executable memory and entry point.
pub(super) struct Code {
    /// Owns the memory `entry` points into; `None` only while being dropped.
    module: Option<JITModule>,
    entry: Entry,
}

impl std::fmt::Debug for Code {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Code")
            .field("entry", &(self.entry as *const u8))
            .finish()
    }
}

// SAFETY: after `Code::new` the module is never used again except to free its memory on
// drop (which takes `&mut self`); the code it holds is immutable and may run on any thread.
unsafe impl Send for Code {}
// SAFETY: as above: shared references only call the immutable code, whose state lives in
// the `Env` each call is given.
unsafe impl Sync for Code {}

impl Code {
    /// Takes `module`, whose definitions are finalized, with `entry` the address
    /// `get_finalized_function` gave for a function built by `compile::compile` (so of
    /// type [`Entry`]).
    ///
    /// # Safety
    /// `entry` must be such a function of `module`: one whose signature is [`Entry`]'s in
    /// the host's C calling convention, and whose only memory accesses are the ones
    /// `compile` generates (checked against the region table, or to the `Env` it is given).
    pub(super) unsafe fn new(module: JITModule, entry: *const u8) -> Code {
        // SAFETY: the caller guarantees `entry` is a finalized function of this signature.
        let entry = unsafe { std::mem::transmute::<*const u8, Entry>(entry) };
        Code {
            module: Some(module),
            entry,
        }
    }

    /// Runs the compiled program on `env` from `start` (the main program's first
    /// instruction or a callback's) with `credit`: returns `r0` (when `env.status` is 0
    /// after it; `env.credit` then holds the instructions left).
    pub(super) fn call(&self, env: &mut Env<'_>, start: &Start, credit: u64) -> u64 {
        let fast = env.fast;
        let [r1, r2, r3, r4, r5] = start.args;
        let (pc, depth) = (start.pc as u64, start.depth as u64);
        // SAFETY: `entry` is a finalized function of `self.module` of type `Entry` (see
        // `new`), alive while `self` is. It reads and writes `env` only through its fields
        // (and the trampolines, through `with_env`) while this exclusive borrow lasts, and
        // touches guest memory only after the region table's check.
        (self.entry)(env, fast, r1, r2, r3, r4, r5, start.fp, credit, pc, depth)
    }
}

impl Drop for Code {
    fn drop(&mut self) {
        if let Some(module) = self.module.take() {
            // SAFETY: no reference to the code outlives `self`: `entry` is only called
            // through `&self`.
            unsafe { module.free_memory() };
        }
    }
}

/// Runs `f` on the [`Env`] compiled code was called with (what a trampoline receives).
pub(super) fn with_env<R>(env: *mut Env<'_>, f: impl FnOnce(&mut Env<'_>) -> R) -> R {
    // SAFETY: compiled code passes on the `env` pointer `Code::call` gave it, which comes
    // from a `&mut Env` borrowed for the whole call; while a trampoline runs, the compiled
    // code (the only other user) is suspended, so this is the only reference.
    f(unsafe { &mut *env })
}
