//! Conformance suites for bpfvm.
#![deny(unsafe_code)]

pub mod kernel;
