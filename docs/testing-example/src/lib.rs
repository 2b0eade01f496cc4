//! An XDP filter and its tests on bpfvm (see `docs/testing.md` in the bpfvm repository).
//! The program is `bpf/xdp_filter.bpf.c`; the tests are in `tests/`.

/// The compiled program, as the tests load it (rebuild it with `bpf/build.sh`).
pub const XDP_FILTER_OBJECT: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/bpf/xdp_filter.o");
