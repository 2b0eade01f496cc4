//! `.BTF` and `.BTF.ext` sections alone through the real loading path: the fuzz bytes are
//! wrapped into a minimal BPF object (`elf_writer`) and parsed with `Object::parse`, then
//! every part of the object that reads BTF is exercised — type names, sizes and decoding of
//! the first types, the map key and value types, line info of the linked programs, and
//! `dump_map` of small maps. Nothing may panic, touch memory it should not
//! (AddressSanitizer), or cost memory or time out of proportion to the input (run with
//! `-rss_limit_mb`, `-malloc_limit_mb` and `-timeout`, see `fuzz/run.sh`).
//!
//! Input: `[setup][btf length: u32 LE][.BTF bytes][.BTF.ext bytes]`. `setup` bit 0 adds a
//! `.maps` section of 32-256 bytes (bits 4-6), bit 1 global data sections (`.data`,
//! `.rodata`, a 64-byte `.bss`), bit 2 a program in `xdp` calling a function in `.text`.
#![no_main]

use bpfvm_fuzz::alloc_meter::{peak_of, Counting};
use bpfvm_fuzz::elf_writer::{self as w, Elf};
use bpfvm_fuzz::{parse_bounded, value_nodes};
use libfuzzer_sys::fuzz_target;

#[global_allocator]
static ALLOC: Counting = Counting;

/// Types decoded per input (each decode is itself bounded by the loader's budget).
const DECODED_TYPES: usize = 64;
/// Largest value buffer handed to a decode.
const MAX_VALUE: usize = 4096;
/// Maps larger than this (all CPUs' values) are not created and listed: a listing may cost
/// `DECODE_UNITS_PER_BYTE` units per byte (16M units for 1 MiB, ~10 s under
/// AddressSanitizer here), linear work the listing check below bounds exactly, so the
/// time limit is kept for work out of proportion.
const MAX_MAP_BYTES: u64 = 64 << 10;

/// A decoded value (and its text) is bounded by the loader's decoding budget whatever the
/// type graph: check it in bytes, with room for each unit's node and its text.
fn check_decode(what: impl Fn() -> String, len: usize, peak: usize, text: usize) {
    let units = bpfvm::loader::limits::DECODE_BASE_UNITS
        + bpfvm::loader::limits::DECODE_UNITS_PER_BYTE * len;
    assert!(
        peak <= 128 * units,
        "{}: decoding took {peak} bytes",
        what()
    );
    assert!(text <= 16 * units, "{}: {text} bytes of text", what());
}

fn object(setup: u8, btf: &[u8], ext: &[u8]) -> Vec<u8> {
    let mut elf = Elf::new();
    if setup & 4 != 0 {
        let text = elf.code(".text", &[w::MOV_R0_0, w::EXIT]);
        let f = elf.func("helper", text, 0, 2);
        let x = elf.code("xdp", &[w::call_local(-1), w::MOV_R0_0, w::EXIT]);
        elf.func("prog", x, 0, 3);
        elf.rel(x, 0, f, w::R_BPF_64_32);
    }
    if setup & 1 != 0 {
        let size = 32 * (1 + usize::from((setup >> 4) & 7));
        elf.data(".maps", vec![0; size]);
    }
    if setup & 2 != 0 {
        elf.data(".data", (0u8..16).collect());
        elf.data(".rodata", b"rodata\0\0".to_vec());
        elf.nobits(".bss", 64);
    }
    elf.progbits(".BTF", btf.to_vec());
    if !ext.is_empty() {
        elf.progbits(".BTF.ext", ext.to_vec());
    }
    elf.progbits("license", b"GPL\0".to_vec());
    elf.build()
}

fuzz_target!(|data: &[u8]| {
    if data.len() < 5 {
        return;
    }
    let setup = data[0];
    let btf_len = u32::from_le_bytes([data[1], data[2], data[3], data[4]]) as usize;
    let rest = &data[5..];
    let (btf, ext) = rest.split_at(btf_len.min(rest.len()));
    let Ok(obj) = parse_bounded(&object(setup, btf, ext)) else {
        return;
    };
    let value: Vec<u8> = (0..MAX_VALUE).map(|i| (i * 37 + 11) as u8).collect();
    if let Some(btf) = obj.btf() {
        for id in 0..btf.types().len().min(DECODED_TYPES) as u32 {
            let _ = (btf.type_name(id), btf.resolve(id));
            let size = btf.size_of(id).map_or(16, |s| (s as usize).min(MAX_VALUE));
            let (text, peak) = peak_of(|| btf.decode(id, &value[..size]).to_string());
            check_decode(|| format!("type {id}"), size, peak, text.len());
        }
    }
    for def in obj.maps() {
        let _ = obj.decode_key(def, &value[..(def.key_size as usize).min(MAX_VALUE)]);
        let len = (def.value_size as usize).min(MAX_VALUE);
        let (text, peak) = peak_of(|| obj.decode_value(def, &value[..len]).map(|v| v.to_string()));
        check_decode(
            || format!("map {}", def.name),
            len,
            peak,
            text.map_or(0, |t| t.len()),
        );
    }
    for prog in obj.programs() {
        for i in 0..prog.insns.len() {
            let _ = prog.source_line(i).map(|l| (l.file.len(), l.source.len()));
        }
    }
    let small = obj.maps().iter().all(|m| {
        let slot = u64::from(m.value_size).div_ceil(8) * 8;
        slot * u64::from(m.max_entries.max(1)) * 2 <= MAX_MAP_BYTES
            && u64::from(m.key_size) * u64::from(m.max_entries) <= MAX_MAP_BYTES
    });
    if small {
        if let Ok(maps) = obj.create_maps(2) {
            let mut listed = std::collections::HashSet::new();
            for def in obj.maps() {
                // A listing finds its map by name: list each name once, with the sizes
                // of the map that name finds (two maps may share a name, even "").
                if !listed.insert(def.name.to_string()) {
                    continue;
                }
                let def = obj.map(&def.name).unwrap_or(def);
                // One listing shares one decoding budget over the bytes it lists.
                let (mut entries, mut nodes, mut text, mut bytes) = (0, 0, 0, 0);
                let _ = obj.for_each_map_entry(&maps, &def.name, |e| {
                    entries += 1;
                    nodes += value_nodes(&e.key) + e.values.iter().map(value_nodes).sum::<usize>();
                    text += e.values.iter().map(|v| v.to_string().len()).sum::<usize>();
                    bytes += def.key_size as usize + e.values.len() * def.value_size as usize;
                });
                let units = bpfvm::loader::limits::DECODE_BASE_UNITS
                    + bpfvm::loader::limits::DECODE_UNITS_PER_BYTE * bytes;
                // Every node is charged but `Truncated` markers: one per level of a key or value.
                assert!(
                    nodes <= units + 64 * entries,
                    "map {}: {entries} entries ({bytes} bytes) listed {nodes} nodes",
                    def.name
                );
                assert!(text <= 16 * units, "map {}: {text} bytes of text", def.name);
            }
        }
    }
});
