//! Shared pieces of the bpfvm fuzz targets: a byte reader that never runs dry and an
//! independent model of the per-CPU map semantics (`../shared/spec/percpu-maps.md`).
//!
//! The model is written from the spec, not from `bpfvm-maps`: it keeps every element's
//! per-CPU copies in a `BTreeMap` and recomputes each host and program-side result (value
//! bytes and errno) on its own.

pub mod input;
pub mod model;
