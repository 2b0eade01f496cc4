//! Test runs of the tracing program types, as the kernel's `BPF_PROG_TEST_RUN` runs them
//! where it has a runner:
//!
//! - `raw_tracepoint` (`bpf_prog_test_run_raw_tp`): the context is the tracepoint's
//!   arguments, at most `MAX_BPF_FUNC_ARGS` (12) `u64`s (`ctx_size_in` ≤ 96, else
//!   `EINVAL`), and not shorter than the furthest argument the program reads (the
//!   verifier's `max_ctx_offset`, else `EINVAL`). The CPU is [`crate::TestRun::cpu`] (the
//!   kernel's `BPF_F_TEST_RUN_ON_CPU` with `cpu`).
//! - `syscall` (`bpf_prog_test_run_syscall`): the context is a read-write buffer of
//!   `ctx_size_in` ≤ `U16_MAX` bytes, not shorter than the program's furthest context
//!   access (`EINVAL`); what the program wrote is the output context (the kernel copies it
//!   back into `ctx_in`).
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

/// Checks a test run's context for program type `t` as the kernel's runner does;
/// `max_ctx_offset` is the end of the program's furthest context access (the verifier's,
/// 0 when it did not run).
pub fn check_ctx(t: ProgramType, ctx: &[u8], max_ctx_offset: u32) -> Result<(), RunError> {
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
    let needed = max_ctx_offset as usize;
    if matches!(t, ProgramType::RawTracepoint | ProgramType::Syscall) && ctx.len() < needed {
        return Err(RunError::BadContext {
            field: "ctx",
            reason: format!(
                "the program reads {needed} bytes of its context (max_ctx_offset); the context has {}",
                ctx.len()
            ),
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
        assert!(check_ctx(ProgramType::RawTracepoint, &[0; 96], 96).is_ok());
        let e = check_ctx(ProgramType::RawTracepoint, &[0; 97], 0).unwrap_err();
        assert_eq!(e.errno(), 22);
        assert!(check_ctx(ProgramType::Syscall, &[0; 4096], 8).is_ok());
        assert!(check_ctx(ProgramType::Syscall, &[0; 65_536], 0).is_err());
        assert!(check_ctx(ProgramType::PerfEvent, &[0; 184], 184).is_ok());
    }

    #[test]
    fn a_context_shorter_than_the_programs_reads_is_refused() {
        let e = check_ctx(ProgramType::RawTracepoint, &[0; 8], 16).unwrap_err();
        assert_eq!(e.errno(), 22);
        assert!(e.to_string().contains("16 bytes"), "{e}");
        assert!(check_ctx(ProgramType::Syscall, &[0; 8], 12).is_err());
        // Tracing programs read missing arguments as 0 (probe loads), as kprobes fault.
        assert!(check_ctx(ProgramType::Tracing, &[0; 8], 16).is_ok());
    }
}
