//! bpfvm: a sandboxed BPF virtual machine with simulated CPUs.
#![deny(unsafe_code)]
