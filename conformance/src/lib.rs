//! Conformance suites for bpfvm: the public BPF ISA vectors on every engine, the kernel's
//! per-CPU selftest scenarios, differential testing, and the Linux kernel as an oracle.
#![deny(unsafe_code)]

pub mod kernel;
pub mod vectors;
