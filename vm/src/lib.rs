//! bpfvm: a sandboxed BPF virtual machine with simulated CPUs.
//!
//! A [`Vm`] has N simulated CPUs. A [`Program`] (bytecode, maps, [`ProgramType`], engine) is
//! loaded once ([`Vm::load`] validates and pre-decodes it) and then run on a CPU, on every
//! CPU, or over a stream of events; [`Vm::test_run`] mirrors `BPF_PROG_TEST_RUN`.
//!
//! ```
//! use bpfvm::{CpuId, Input, Program, ProgramType, Vm};
//!
//! // r0 = smp_processor_id() * 10 + 7
//! let code = rbpf::assembler::assemble(
//!     "call 8
//!      mul64 r0, 10
//!      add64 r0, 7
//!      exit",
//! )
//! .unwrap();
//! let vm = Vm::builder().cpus(2).build();
//! let prog = vm.load(Program::new(code, ProgramType::Unspecified)).unwrap();
//! assert_eq!(vm.run(&prog, CpuId(1), &Input::empty()).unwrap().retval, 17);
//! let all = vm.run_on_all(&prog, 3, &Input::empty()).unwrap();
//! assert_eq!(all, vec![vec![7, 7, 7], vec![17, 17, 17]]);
//! ```
#![deny(unsafe_code)]

pub mod cpu;
pub mod ctx_layout;
pub mod engine;
pub mod error;
pub mod insn;
pub mod program;
pub mod program_type;
pub mod run;
pub mod verify;
pub mod vm;

pub use cpu::CpuId;
pub use engine::EngineKind;
pub use error::{Error, PrepareError, RunError};
pub use program::Program;
pub use program_type::ProgramType;
pub use run::{Input, RunOutput, TestRun, TestRunResult};
pub use vm::{LoadedProgram, Vm, VmBuilder, VmConfig};

pub use bpfvm_helpers as helpers;
