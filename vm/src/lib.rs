//! bpfvm: a sandboxed BPF virtual machine with simulated CPUs.
#![deny(unsafe_code)]

pub mod loader;
pub mod program_type;

pub use program_type::ProgramType;
