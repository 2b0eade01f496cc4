//! Measuring bpfvm on a corpus of real BPF objects against the running kernel: for every
//! program of every object, whether the kernel loads it (through libbpf, one program at a
//! time, as `bpf_program__set_autoload` makes it), whether bpfvm loads it (the public API,
//! default verifier, privileged as the kernel oracle), and for packet programs both load,
//! whether the frames of [`frames::frames`] give the same return values, output packets and map contents.
//!
//! [`report`] is the pure part (rows, causes, summaries, tables); [`libbpf`] and
//! [`measure`] talk to the kernel (Linux only). The `corpus` binary runs it all.

pub mod frames;
#[cfg(target_os = "linux")]
pub mod libbpf;
#[cfg(target_os = "linux")]
pub mod measure;
pub mod report;

pub use report::{ProgramRow, RunComparison, Summary};
