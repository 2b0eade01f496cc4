//! BPF helper functions and the per-run helper context for bpfvm.
#![deny(unsafe_code)]
