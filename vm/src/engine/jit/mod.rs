//! The `jit` engine: programs compiled to native code with cranelift, as sandboxed as the
//! interpreter.
//!
//! A program is first prepared for the interpreter ([`Interpreter::prepare`]: decoding,
//! verification, map and helper resolution), then its pre-decoded instructions are compiled
//! into one native function (`compile.rs`). The compiled code keeps the interpreter's
//! contract exactly:
//!
//! - **Memory.** Every load and store does the interpreter's check inline, on the same
//!   region table ([`bpfvm_helpers::memory::FastLayout`]): region from the high bits, object
//!   number and offset against the region's bounds and permission. The region entry's part
//!   of the check is worked out once per base register value and straight-line stretch,
//!   so each access is one add and one compare (`compile/mem.rs`). An access the inline
//!   check does not grant calls the same Rust function the interpreter uses
//!   (`Memory::load_guest` / `store_guest`), which grants it (regions with a field no access
//!   may touch) or reports the same fault. Atomics are inline too
//!   (cranelift's sequentially consistent `atomic_rmw` / `atomic_cas`) when the check grants
//!   both directions and the host address is aligned to their size; otherwise they call
//!   `Memory::atomic_rmw` / `atomic_cmpxchg` as the interpreter does. Loads and stores at
//!   constant offsets from `r10` inside the running frame have no check of their own: the
//!   whole frame's is done once wherever `r10` or the table may change (`compile/frame.rs`).
//!   Program registers only ever hold guest addresses; host addresses live in the compiled
//!   code's temporaries.
//! - **Budget.** Charged per straight-line stretch at every taken jump, call and return,
//!   with the interpreter's arithmetic: the same [`RunError::BudgetExhausted`](crate::RunError::BudgetExhausted) at the same
//!   instruction for the same budget. Helper work (`HelperContext::charge_bytes`) comes off
//!   the same budget after each helper call.
//! - **Helpers** are the same Rust functions the interpreter calls, through `extern "C"`
//!   trampolines (`rt.rs`); bpf-to-bpf calls keep the interpreter's frames, stack window and
//!   call-depth limit.
//! - **Tail calls and callbacks** run the interpreter's own implementation through
//!   trampolines (`reenter.rs`): `bpf_tail_call` is `interpreter::tail_call` (the 33-call
//!   limit, fall-through, the target's maps, the same errors), whose target runs in its own
//!   engine's form — a jitted program's compiled code ([`super::Engine::as_jit`]), from
//!   either engine; `bpf_loop` and `bpf_for_each_map_elem` are `callback::call_with`, each
//!   call of the callback entering the compiled function again at the callback's first
//!   instruction, in the frame below the caller's, with the run's budget and tail-call
//!   count. kfunc calls are helper calls (the loader resolves them), so they go through the
//!   helper trampolines.
//!
//! - **Probe loads** (every load of a tracing program, `crate::probe_mem`) take the same
//!   inline check; what it does not grant calls the interpreter's `probe_mem::load` (the
//!   kernel memory image, else 0), never a fault (`compile/probe.rs`).
//!
//! An instruction the compiler does not know (none today) would be refused at preparation
//! with [`PrepareError::Unsupported`] naming the instruction; it never runs wrongly.
//!
//! The engine exists where cranelift generates code for the host: x86_64 and aarch64
//! (little-endian), with the `jit` cargo feature (on by default). Elsewhere preparing for it
//! fails with [`PrepareError::EngineUnavailable`].

use crate::engine::interpreter::Interpreter;
use crate::error::PrepareError;
use crate::program::Program;
use bpfvm_helpers::Registry;

#[cfg(all(
    feature = "jit",
    any(target_arch = "x86_64", target_arch = "aarch64"),
    target_endian = "little",
    not(miri)
))]
mod code;
#[cfg(all(
    feature = "jit",
    any(target_arch = "x86_64", target_arch = "aarch64"),
    target_endian = "little",
    not(miri)
))]
mod compile;
#[cfg(all(
    feature = "jit",
    any(target_arch = "x86_64", target_arch = "aarch64"),
    target_endian = "little",
    not(miri)
))]
mod reenter;
#[cfg(all(
    feature = "jit",
    any(target_arch = "x86_64", target_arch = "aarch64"),
    target_endian = "little",
    not(miri)
))]
mod rt;
#[cfg(all(
    feature = "jit",
    any(target_arch = "x86_64", target_arch = "aarch64"),
    target_endian = "little",
    not(miri)
))]
mod run;

#[cfg(all(
    feature = "jit",
    any(target_arch = "x86_64", target_arch = "aarch64"),
    target_endian = "little",
    not(miri)
))]
pub use run::Jit;

/// A program compiled by the `jit` engine ([`super::Engine::as_jit`]); this build has no
/// jit engine, so there is none.
#[cfg(not(all(
    feature = "jit",
    any(target_arch = "x86_64", target_arch = "aarch64"),
    target_endian = "little",
    not(miri)
)))]
#[derive(Debug)]
pub enum Jit {}

/// Runs the compiled program `jit` as the target of a tail call from either engine (`start`
/// in the caller's frame; `nest` the budget left and the run's tail calls, in and out).
pub(super) fn run_tail_target(
    jit: &Jit,
    ctx: &mut bpfvm_helpers::HelperContext,
    registry: &Registry,
    budget: u64,
    start: super::interpreter::Start,
    nest: &mut super::interpreter::Nest,
    used: &mut usize,
) -> Result<u64, Box<crate::RunError>> {
    #[cfg(all(
        feature = "jit",
        any(target_arch = "x86_64", target_arch = "aarch64"),
        target_endian = "little",
        not(miri)
    ))]
    {
        jit.execute(ctx, registry, budget, start, nest, used)
            .map_err(reenter::Stop::resume)
    }
    #[cfg(not(all(
        feature = "jit",
        any(target_arch = "x86_64", target_arch = "aarch64"),
        target_endian = "little",
        not(miri)
    )))]
    {
        let _ = (ctx, registry, budget, start, nest, used);
        match *jit {}
    }
}

/// Whether this build has the `jit` engine.
pub const AVAILABLE: bool = cfg!(all(
    feature = "jit",
    any(target_arch = "x86_64", target_arch = "aarch64"),
    target_endian = "little",
    not(miri)
));

/// Prepares `program` for the `jit` engine.
pub(crate) fn prepare(
    program: &Program,
    registry: &Registry,
) -> Result<Box<dyn super::Engine>, PrepareError> {
    let interpreter = Interpreter::prepare(program, registry)?;
    #[cfg(all(
        feature = "jit",
        any(target_arch = "x86_64", target_arch = "aarch64"),
        target_endian = "little",
        not(miri)
    ))]
    {
        Ok(Box::new(run::Jit::prepare(program, interpreter)?))
    }
    #[cfg(not(all(
        feature = "jit",
        any(target_arch = "x86_64", target_arch = "aarch64"),
        target_endian = "little",
        not(miri)
    )))]
    {
        drop(interpreter);
        Err(PrepareError::EngineUnavailable {
            engine: super::EngineKind::Jit,
        })
    }
}
