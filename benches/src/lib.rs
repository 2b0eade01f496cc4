//! Criterion benchmarks for bpfvm (see `benches/`).
#![deny(unsafe_code)]
