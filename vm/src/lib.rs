//! bpfvm: a sandboxed BPF virtual machine with simulated CPUs.
//!
//! A [`Vm`] has N simulated CPUs. A [`Program`] (bytecode, maps, [`ProgramType`], engine) is
//! loaded once ([`Vm::load`] validates and pre-decodes it) and then run on a CPU, on every
//! CPU, or over a stream of events; [`Vm::test_run`] mirrors `BPF_PROG_TEST_RUN`.
//!
//! The usual way in is an object file compiled by clang: [`ObjectLoader`] loads it into a
//! VM (maps created for the VM's CPUs, `.rodata` settings applied), and [`LoadedObject`]
//! finds its programs and maps by name. `docs/testing.md` walks through a whole test crate.
//!
//! ```
//! use bpfvm::frame::Frame;
//! use bpfvm::loader::Object;
//! use bpfvm::{CpuId, Input, ObjectLoader, Vm, XdpAction};
//!
//! // percpu_counter.bpf.c: every run adds 1 to its CPU's copy of `counts` (PERCPU_ARRAY)
//! // and, atomically, to the shared `total` (ARRAY); it returns XDP_PASS.
//! let object = Object::parse_named(
//!     "percpu_counter",
//!     include_bytes!("../tests/fixtures/percpu_counter.o"),
//! )?;
//! let vm = Vm::builder().cpus(2).build();
//! let bpf = ObjectLoader::new(object).load(&vm)?;
//! let prog = bpf.program("count_packets")?;
//!
//! let frame = Input::packet(Frame::udp4([10, 0, 0, 1], [10, 0, 0, 2], 1000, 53).build()?);
//! vm.run_on_all(prog, 10, &frame)?; // 10 runs on each CPU, CPUs in parallel
//! let out = vm.run(prog, CpuId(1), &frame)?; // one more on CPU 1
//! assert_eq!(out.retval, XdpAction::Pass);
//!
//! // Read every CPU's copy from the host, as the bpf() syscall returns them.
//! let counts = bpf.percpu_array::<u64>("counts")?.get(0)?;
//! assert_eq!(counts.to_vec(), [10, 11]);
//! assert_eq!(bpf.array::<u64>("total")?.get(0)?, 21);
//! # Ok::<(), bpfvm::Error>(())
//! ```
//!
//! Programs can also be built from bytecode: [`Program::new`] with maps from
//! [`Vm::create_map`], then [`Vm::load`].
#![deny(unsafe_code)]

pub mod action;
pub mod cpu;
pub mod ctx_in;
pub mod ctx_layout;
pub mod engine;
pub mod error;
pub mod eth;
pub mod frame;
mod inner_maps;
pub mod insn;
pub mod kernel_verify;
pub mod kfunc;
pub mod limits;
pub mod loaded;
pub mod loader;
mod map_poison_run;
pub mod probe_mem;
pub mod program;
pub mod program_type;
pub mod race;
pub mod retval;
pub mod run;
pub mod sim_kernel;
pub mod support;
pub mod tail_call;
pub mod task;
pub mod trace_run;
mod tracing_helpers;
pub mod verify;
pub mod vm;

pub use action::{TcAction, XdpAction};
pub use cpu::CpuId;
pub use engine::EngineKind;
pub use error::{Error, PrepareError, RunError, SourceAt};
pub use kernel_verify::{Privilege, VerifierMode};
pub use loaded::{LoadedObject, ObjectError, ObjectLoader};
pub use program::Program;
pub use program_type::ProgramType;
pub use run::{Input, Nexthop, RedirectTarget, RunOutput, TestRun, TestRunResult};
pub use vm::{LoadedProgram, Vm, VmBuilder, VmConfig};

pub use bpfvm_helpers as helpers;
pub use bpfvm_maps as maps;
pub use bpfvm_verifier as verifier;
