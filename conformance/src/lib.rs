//! Conformance suites for bpfvm.
#![deny(unsafe_code)]
