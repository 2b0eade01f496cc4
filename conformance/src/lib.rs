//! Conformance suites for bpfvm: the public BPF ISA vectors on every engine, the kernel's
//! per-CPU selftest scenarios, differential testing, and the Linux kernel as an oracle.
//!
//! ```
//! use bpfvm::EngineKind;
//! use bpfvm_conformance::runner::{run_vector, suite_vm, Outcome};
//! use bpfvm_conformance::vectors::{Expect, Vector};
//!
//! // mov r0, r2 (the memory length); exit
//! let code = vec![0xbf, 0x20, 0, 0, 0, 0, 0, 0, 0x95, 0, 0, 0, 0, 0, 0, 0];
//! let v = Vector { name: "len".into(), code, mem: vec![0; 5], expect: Expect::Result(5) };
//! assert_eq!(run_vector(&suite_vm(), EngineKind::Interpreter, &v), Outcome::Passed);
//! ```
#![deny(unsafe_code)]

pub mod corpus;
pub mod differential;
pub mod expectations;
pub mod kernel;
pub mod mutations;
pub mod reference;
pub mod rule_cases;
pub mod runner;
pub mod scoreboard;
pub mod vector_asm;
pub mod vectors;
pub mod verdicts;
