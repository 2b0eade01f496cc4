//! Shared pieces of the bpfvm fuzz targets: a byte reader that never runs dry, an
//! independent model of the per-CPU map semantics (`../shared/spec/percpu-maps.md`), and
//! the vm tests' ELF/BTF writer and counting allocator (`elf_writer`, `alloc_meter`: files
//! shared with `vm/tests/common`), and the memory bound the loader targets check.
//!
//! The model is written from the spec, not from `bpfvm-maps`: it keeps every element's
//! per-CPU copies in a `BTreeMap` and recomputes each host and program-side result (value
//! bytes and errno) on its own.

#[path = "../../vm/tests/common/alloc_meter.rs"]
pub mod alloc_meter;
pub mod bytecode;
#[path = "../../vm/tests/common/elf_writer.rs"]
pub mod elf_writer;
pub mod input;
pub mod model;

/// The most memory parsing an object may take: `LOAD_BYTES_PER_INPUT_BYTE` per byte of
/// input, plus `LOAD_BYTES_PER_LINKED_INSN` per instruction and line of the linked
/// programs (linking copies called functions into each program, bounded by the loader's
/// `MAX_OBJECT_INSNS` rather than by the input), plus `LOAD_BYTES_BASE`.
pub fn load_memory_bound(input: usize, linked: usize) -> usize {
    LOAD_BYTES_PER_INPUT_BYTE * input + LOAD_BYTES_PER_LINKED_INSN * linked + LOAD_BYTES_BASE
}

/// Nodes of a decoded value: itself and every struct member and array element within.
pub fn value_nodes(v: &bpfvm::loader::BtfValue) -> usize {
    use bpfvm::loader::BtfValue as V;
    1 + match v {
        V::Struct(members) => members.iter().map(|(_, m)| value_nodes(m)).sum(),
        V::Array(items) => items.iter().map(value_nodes).sum(),
        _ => 0,
    }
}

/// See [`load_memory_bound`].
pub const LOAD_BYTES_PER_INPUT_BYTE: usize = 32;
/// See [`load_memory_bound`].
pub const LOAD_BYTES_PER_LINKED_INSN: usize = 64;
/// See [`load_memory_bound`].
pub const LOAD_BYTES_BASE: usize = 1 << 20;

/// Parse `bytes` as an object, panicking (a fuzz finding) when parsing took more memory at
/// once than [`load_memory_bound`] allows. Needs `alloc_meter::Counting` as the target's
/// global allocator.
pub fn parse_bounded(bytes: &[u8]) -> Result<bpfvm::loader::Object, bpfvm::loader::LoadError> {
    let (obj, peak) = alloc_meter::peak_of(|| bpfvm::loader::Object::parse(bytes));
    use bpfvm::loader::LoadError as E;
    let linked = match &obj {
        // A program refused while linking was linked in part (and dropped): at most the
        // object limit's worth, as for an object that failed while linking.
        Ok(o) if !o.refused_programs().is_empty() => 2 * bpfvm::loader::limits::MAX_OBJECT_INSNS,
        Ok(o) => o
            .programs()
            .iter()
            .map(|p| p.insns.len() + p.lines.len())
            .sum(),
        // Failed while linking: earlier programs were linked (and dropped), at most the
        // object limit's worth.
        Err(
            E::ProgramTooLarge { .. }
            | E::ObjectTooLarge { .. }
            | E::BadRelocation { .. }
            | E::BadInstruction { .. }
            | E::KfuncCall { .. }
            | E::UnresolvedExtern { .. }
            | E::Unsupported { .. },
        ) => 2 * bpfvm::loader::limits::MAX_OBJECT_INSNS,
        Err(_) => 0,
    };
    let bound = load_memory_bound(bytes.len(), linked);
    assert!(
        peak <= bound,
        "parsing {} bytes ({linked} linked instructions and lines) took {peak} bytes, over {bound}",
        bytes.len()
    );
    obj
}
