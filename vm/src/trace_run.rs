//! Test runs of the tracing program types, as the kernel's `BPF_PROG_TEST_RUN` runs them
//! where it has a runner:
//!
//! - `raw_tracepoint` (`bpf_prog_test_run_raw_tp`): the context is the tracepoint's
//!   arguments, at most `MAX_BPF_FUNC_ARGS` (12) `u64`s (`ctx_size_in` ≤ 96, else
//!   `EINVAL`). The kernel also refuses a context shorter than the furthest argument the
//!   program reads (`EINVAL`); bpfvm runs it and the read past the context faults.
//! - `syscall` (`bpf_prog_test_run_syscall`): the context is a read-write buffer of
//!   `ctx_size_in` ≤ `U16_MAX` bytes; what the program wrote is the output context (the
//!   kernel copies it back into `ctx_in`).
//! - `tracing` (`fentry`, `fexit`, `fmod_ret`, `tp_btf`): the kernel runs these only
//!   attached to its `bpf_fentry_test*` functions; bpfvm runs the program with the given
//!   arguments as its context (at most 12 `u64`s, as a raw tracepoint's).
//! - `perf_event`: the kernel has no test run; bpfvm runs the program with the given
//!   context (`struct bpf_perf_event_data`, 184 bytes on x86_64), as it runs kprobes.

use crate::error::RunError;
use crate::ProgramType;

/// `MAX_BPF_FUNC_ARGS * sizeof(u64)`.
pub const MAX_ARGS_CTX: usize = 96;
/// `U16_MAX`: the largest `syscall` context.
pub const MAX_SYSCALL_CTX: usize = 65_535;

/// Checks a test run's context for program type `t` as the kernel's runner does.
pub fn check_ctx(t: ProgramType, ctx: &[u8]) -> Result<(), RunError> {
    let (max, whose) = match t {
        ProgramType::RawTracepoint => (MAX_ARGS_CTX, "a raw tracepoint's (12 u64 arguments)"),
        ProgramType::Tracing => (MAX_ARGS_CTX, "a tracing program's (12 u64 arguments)"),
        ProgramType::Syscall => (MAX_SYSCALL_CTX, "a syscall program's"),
        _ => return Ok(()),
    };
    if ctx.len() > max {
        return Err(RunError::InputTooLarge {
            what: "context",
            len: ctx.len(),
            max,
            whose,
            errno: 22,
        });
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn argument_contexts_hold_twelve_u64s() {
        assert!(check_ctx(ProgramType::RawTracepoint, &[0; 96]).is_ok());
        let e = check_ctx(ProgramType::RawTracepoint, &[0; 97]).unwrap_err();
        assert_eq!(e.errno(), 22);
        assert!(check_ctx(ProgramType::Syscall, &[0; 4096]).is_ok());
        assert!(check_ctx(ProgramType::Syscall, &[0; 65_536]).is_err());
        assert!(check_ctx(ProgramType::PerfEvent, &[0; 184]).is_ok());
    }
}
