//! Running one conformance vector on one engine, with the suite's execution contract.
//!
//! The contract (from the suite's runner): the `-- mem` bytes are the context (`r1`), `r2`
//! holds their length, helper 5 returns its first argument, and `r0` at exit is compared
//! with `-- result`.

use std::panic::{catch_unwind, AssertUnwindSafe};

use bpfvm::helpers::HelperContext;
use bpfvm::{CpuId, EngineKind, Input, PrepareError, Program, ProgramType, Vm, VmConfig};

use crate::vectors::{Expect, Vector};

/// The helper id the suite's `call_unwind_fail` vector calls.
pub const IDENTITY_HELPER: u32 = 5;

/// What became of one vector on one engine.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Outcome {
    /// The expected result, or (for a vector that expects an error) a refusal at load time.
    Passed,
    /// The engine refused the program at load time although the vector expects a result.
    Refused {
        /// The engine's refusal message.
        reason: String,
    },
    /// Anything else: a wrong `r0`, a run-time error, a panic, or a program accepted that
    /// should have been refused.
    Wrong {
        /// What went wrong.
        detail: String,
    },
}

impl Outcome {
    /// The scoreboard column this outcome counts in.
    pub fn label(&self) -> &'static str {
        match self {
            Outcome::Passed => "passed",
            Outcome::Refused { .. } => "refused",
            Outcome::Wrong { .. } => "wrong",
        }
    }
}

/// A VM set up for the suite: one CPU per test thread is not needed (runs are short), helper
/// 5 returns its first argument, and the rbpf engines may run backward jumps (every vector
/// terminates; bpfvm's own interpreter still has its budget).
pub fn suite_vm() -> Vm {
    let config = VmConfig {
        ncpus: 2,
        rbpf_allow_loops: true,
        // The vectors are ISA tests, not verifier-clean programs.
        verifier: bpfvm::VerifierMode::Structural,
        ..VmConfig::default()
    };
    Vm::builder()
        .config(config)
        .helper(
            IDENTITY_HELPER,
            "conformance_identity",
            |_: &mut HelperContext, args: [u64; 5]| Ok(args[0]),
        )
        .expect("helper 5 is a valid helper id")
        .build()
}

/// Whether a refusal came from bpfvm's own checks (not from rbpf's verifier and not from an
/// engine limitation): the kind of refusal the `negative/unused-*` vectors need.
pub fn refused_by_bpfvm_checks(err: &PrepareError) -> bool {
    !matches!(
        err,
        PrepareError::Rbpf { .. }
            | PrepareError::Jit { .. }
            | PrepareError::Unsupported { .. }
            | PrepareError::EngineUnavailable { .. }
    )
}

/// Runs `vector` on `engine` (on CPU 0 of `vm`). Never panics: a panic inside bpfvm is
/// reported as [`Outcome::Wrong`].
pub fn run_vector(vm: &Vm, engine: EngineKind, vector: &Vector) -> Outcome {
    catch_unwind(AssertUnwindSafe(|| run_unguarded(vm, engine, vector))).unwrap_or_else(|p| {
        let msg = p
            .downcast_ref::<String>()
            .cloned()
            .or_else(|| p.downcast_ref::<&str>().map(|s| s.to_string()))
            .unwrap_or_default();
        Outcome::Wrong {
            detail: format!("panicked: {msg}"),
        }
    })
}

fn run_unguarded(vm: &Vm, engine: EngineKind, vector: &Vector) -> Outcome {
    let program = Program::new(vector.code.clone(), ProgramType::Unspecified).with_engine(engine);
    let loaded = vm.load(program);
    match (&vector.expect, loaded) {
        (Expect::Error(_), Err(e)) if refused_by_bpfvm_checks(&e) => Outcome::Passed,
        (Expect::Error(_), Err(e)) => Outcome::Wrong {
            detail: format!("refused, but not by bpfvm's own checks: {e}"),
        },
        (Expect::Error(_), Ok(_)) => Outcome::Wrong {
            detail: "accepted a program that must be refused at load time".to_string(),
        },
        (Expect::Result(_), Err(e)) => Outcome::Refused {
            reason: e.to_string(),
        },
        (Expect::Result(expected), Ok(prog)) => {
            match vm.run(&prog, CpuId(0), &Input::context(vector.mem.clone())) {
                Ok(out) if out.retval == *expected => Outcome::Passed,
                Ok(out) => Outcome::Wrong {
                    detail: format!("r0 = {:#x}, expected {expected:#x}", out.retval),
                },
                Err(e) => Outcome::Wrong {
                    detail: format!("run failed: {e}"),
                },
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn vector(code: &[u8], expect: Expect) -> Vector {
        Vector {
            name: "t".to_string(),
            code: code.to_vec(),
            mem: vec![1, 2, 3],
            expect,
        }
    }

    // r0 = r2 (the memory length); exit
    const MOV_R0_R2: [u8; 16] = [0xbf, 0x20, 0, 0, 0, 0, 0, 0, 0x95, 0, 0, 0, 0, 0, 0, 0];

    #[test]
    fn a_right_result_passes_and_a_wrong_one_is_wrong() {
        let vm = suite_vm();
        let ok = vector(&MOV_R0_R2, Expect::Result(3));
        assert_eq!(
            run_vector(&vm, EngineKind::Interpreter, &ok),
            Outcome::Passed
        );
        let bad = vector(&MOV_R0_R2, Expect::Result(4));
        assert!(matches!(
            run_vector(&vm, EngineKind::Interpreter, &bad),
            Outcome::Wrong { .. }
        ));
    }

    #[test]
    fn a_reserved_field_is_a_pass_for_an_error_vector_and_a_refusal_otherwise() {
        let vm = suite_vm();
        // add32 r0, 1 with src = 1 (reserved), exit
        let code = [0x04, 0x10, 0, 0, 1, 0, 0, 0, 0x95, 0, 0, 0, 0, 0, 0, 0];
        let neg = vector(&code, Expect::Error(String::new()));
        assert_eq!(
            run_vector(&vm, EngineKind::Interpreter, &neg),
            Outcome::Passed
        );
        let pos = vector(&code, Expect::Result(1));
        assert!(matches!(
            run_vector(&vm, EngineKind::Interpreter, &pos),
            Outcome::Refused { .. }
        ));
    }

    #[test]
    fn an_accepted_error_vector_is_wrong() {
        let vm = suite_vm();
        let v = vector(&MOV_R0_R2, Expect::Error(String::new()));
        assert!(matches!(
            run_vector(&vm, EngineKind::Interpreter, &v),
            Outcome::Wrong { .. }
        ));
    }
}
