//! Kernel-exact BPF maps for bpfvm, with the syscall-side ("host") API.
#![deny(unsafe_code)]
