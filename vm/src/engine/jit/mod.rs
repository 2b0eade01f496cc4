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
//!   `Memory::atomic_rmw` / `atomic_cmpxchg` as the interpreter does. Program registers only ever hold guest
//!   addresses; host addresses live in the compiled code's temporaries.
//! - **Budget.** Charged per straight-line stretch at every taken jump, call and return,
//!   with the interpreter's arithmetic: the same [`RunError::BudgetExhausted`](crate::RunError::BudgetExhausted) at the same
//!   instruction for the same budget. Helper work (`HelperContext::charge_bytes`) comes off
//!   the same budget after each helper call.
//! - **Helpers** are the same Rust functions the interpreter calls, through `extern "C"`
//!   trampolines (`rt.rs`); bpf-to-bpf calls keep the interpreter's frames, stack window and
//!   call-depth limit.
//!
//! Not compiled yet: `bpf_tail_call`, callbacks (`bpf_loop`, `bpf_for_each_map_elem`,
//! `ld_imm64` of a function). A program using them is refused at preparation with
//! [`PrepareError::Unsupported`] naming the instruction; it never runs wrongly. A jitted
//! program can still be the *target* of another program's tail call: the caller runs it in
//! its interpreter form.
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
mod rt;
#[cfg(all(
    feature = "jit",
    any(target_arch = "x86_64", target_arch = "aarch64"),
    target_endian = "little",
    not(miri)
))]
mod run;

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
