//! Bytes through the ELF loader (seeded from `vm/tests/fixtures/*.o`): parsing either fails
//! with a `LoadError` or yields an object whose programs and maps can be used; small maps are
//! created and dumped, and each program is loaded and run once on the `interpreter` engine.
//! Nothing may panic or touch memory it should not (AddressSanitizer), and parsing may not
//! take more memory than `bpfvm_fuzz::load_memory_bound` allows for the input (a counting
//! allocator measures it), so an amplification is a finding even on a small input.
#![no_main]

use std::sync::Arc;

use bpfvm::helpers::ProgramMap;
use bpfvm::{CpuId, EngineKind, Input, Program, Vm};
use bpfvm_fuzz::alloc_meter::Counting;
use bpfvm_fuzz::parse_bounded;
use libfuzzer_sys::fuzz_target;

#[global_allocator]
static ALLOC: Counting = Counting;

/// Maps bigger than this (all CPUs' values) are not created: a fuzzed `max_entries` could ask
/// for gigabytes, which the maps crate allows up to 4 GiB per arena.
const MAX_MAP_BYTES: u64 = 1 << 20;
/// Maps listed with `dump_map`: at most this many bytes (all CPUs' values).
const MAX_LISTED_BYTES: u64 = 64 << 10;
const NCPUS: u32 = 2;

fuzz_target!(|data: &[u8]| {
    let Ok(obj) = parse_bounded(data) else {
        return;
    };
    let _ = (obj.name(), obj.license(), obj.btf().is_some());
    let small = obj.maps().iter().all(|m| {
        let slot = u64::from(m.value_size).div_ceil(8) * 8;
        slot * u64::from(m.max_entries.max(1)) * u64::from(NCPUS) <= MAX_MAP_BYTES
            && u64::from(m.key_size) * u64::from(m.max_entries) <= MAX_MAP_BYTES
    });
    let maps = if small {
        obj.create_maps(NCPUS).ok()
    } else {
        None
    };
    if let Some(maps) = &maps {
        // Listing costs up to `DECODE_UNITS_PER_BYTE` units per byte: linear, but ~10 s
        // under AddressSanitizer for 1 MiB, so only smaller maps are listed (the btf target
        // checks the listing bound itself).
        for def in obj.maps() {
            let slot = u64::from(def.value_size).div_ceil(8) * 8;
            if slot * u64::from(def.max_entries.max(1)) * u64::from(NCPUS) <= MAX_LISTED_BYTES {
                let _ = obj.dump_map(maps, &def.name);
            }
        }
    }
    let vm = Vm::builder().cpus(NCPUS).budget(10_000).build();
    for def in obj.programs() {
        let _ = def.source_line(0);
        let Some(maps) = &maps else {
            continue;
        };
        let prog_maps: Option<Vec<Arc<dyn ProgramMap>>> = def
            .maps
            .iter()
            .map(|&i| {
                maps.all()
                    .get(i)
                    .map(|m| Arc::clone(m) as Arc<dyn ProgramMap>)
            })
            .collect();
        let Some(prog_maps) = prog_maps else {
            continue;
        };
        let program = Program::new(def.bytecode(), def.program_type)
            .with_dyn_maps(prog_maps)
            .with_engine(EngineKind::Interpreter);
        let Ok(prog) = vm.load(program) else {
            continue;
        };
        let input =
            if def.program_type == bpfvm::ProgramType::Xdp || def.program_type.uses_sk_buff() {
                Input::packet(vec![0u8; 64])
            } else {
                Input::context(vec![0u8; 64])
            };
        if let Err(e) = vm.run(&prog, CpuId(0), &input) {
            let _ = e.to_string();
        }
    }
});
