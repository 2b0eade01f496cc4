//! bpfvm: a sandboxed BPF virtual machine with simulated CPUs.
//!
//! A [`Vm`] has N simulated CPUs. A [`Program`] (bytecode, maps, [`ProgramType`], engine) is
//! loaded once ([`Vm::load`] validates and pre-decodes it) and then run on a CPU, on every
//! CPU, or over a stream of events; [`Vm::test_run`] mirrors `BPF_PROG_TEST_RUN`.
//!
//! ```
//! use std::sync::Arc;
//! use bpfvm::maps::{Map, MapSpec, MapType};
//! use bpfvm::{CpuId, Input, Program, ProgramType, Vm};
//!
//! // A PERCPU_ARRAY with one u64 per CPU, on a VM with 2 simulated CPUs.
//! let vm = Vm::builder().cpus(2).build();
//! let counts = Arc::new(Map::create(MapSpec::new(MapType::PercpuArray, 4, 8, 1), 2)?);
//!
//! // key = 0; v = bpf_map_lookup_elem(&counts, &key); if (v) *v += smp_processor_id() + 1;
//! let mut code = rbpf::assembler::assemble("stw [r10-4], 0").unwrap();
//! code.extend([0x18, 0x11, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0]); // r1 = map 0
//! code.extend(
//!     rbpf::assembler::assemble(
//!         "mov64 r2, r10
//!          add64 r2, -4
//!          call 1
//!          jeq r0, 0, +6
//!          mov64 r6, r0
//!          call 8
//!          add64 r0, 1
//!          ldxdw r1, [r6]
//!          add64 r1, r0
//!          stxdw [r6], r1
//!          mov64 r0, 0
//!          exit",
//!     )
//!     .unwrap(),
//! );
//! let prog = vm.load(Program::new(code, ProgramType::Unspecified).with_map(counts.clone()))?;
//!
//! vm.run_on_all(&prog, 10, &Input::empty())?; // 10 runs on each CPU, CPUs in parallel
//! vm.run(&prog, CpuId(1), &Input::empty())?;  // one more on CPU 1
//!
//! // Read every CPU's copy from the host: CPU 0 added 1 ten times, CPU 1 added 2 eleven times.
//! let mut all = [0u8; 16];
//! counts.lookup(&0u32.to_ne_bytes(), &mut all, 0)?;
//! assert_eq!(u64::from_ne_bytes(all[..8].try_into().unwrap()), 10);
//! assert_eq!(u64::from_ne_bytes(all[8..].try_into().unwrap()), 22);
//! # Ok::<(), Box<dyn std::error::Error>>(())
//! ```
#![deny(unsafe_code)]

pub mod action;
pub mod cpu;
pub mod ctx_layout;
pub mod engine;
pub mod error;
pub mod eth;
pub mod frame;
pub mod insn;
pub mod limits;
pub mod loader;
pub mod program;
pub mod program_type;
pub mod retval;
pub mod run;
pub mod verify;
pub mod vm;

pub use action::{TcAction, XdpAction};
pub use cpu::CpuId;
pub use engine::EngineKind;
pub use error::{Error, PrepareError, RunError};
pub use program::Program;
pub use program_type::ProgramType;
pub use run::{Input, RunOutput, TestRun, TestRunResult};
pub use vm::{LoadedProgram, Vm, VmBuilder, VmConfig};

pub use bpfvm_helpers as helpers;
pub use bpfvm_maps as maps;
