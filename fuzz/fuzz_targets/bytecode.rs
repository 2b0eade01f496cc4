//! Raw bytecode through `Vm::load` and runs on the `interpreter` engine, under
//! AddressSanitizer: loading either refuses the program or prepares it, and every run ends
//! with a result or a clear error, never a panic or a memory error. The maps given to the
//! program keep their invariants, and a second run on another CPU behaves the same way.
//!
//! Input: `[setup][len lo][len hi][len bytes: packet or context][code...]`. `setup` picks the
//! program type (bits 0-1), the number of CPUs (bits 2-3) and whether maps are attached
//! (bit 4).
#![no_main]

use std::sync::Arc;

use bpfvm::helpers::ProgramMap;
use bpfvm::maps::{Map, MapSpec, MapType};
use bpfvm::{CpuId, EngineKind, Program, Vm};
use bpfvm_fuzz::bytecode::BytecodeInput;
use libfuzzer_sys::fuzz_target;

fn maps(ncpus: u32) -> Vec<Arc<Map>> {
    [
        MapSpec::new(MapType::PercpuArray, 4, 8, 4),
        MapSpec::new(MapType::Hash, 4, 12, 4),
        MapSpec::new(MapType::Array, 4, 16, 2),
        MapSpec::new(MapType::PercpuHash, 4, 8, 4),
    ]
    .into_iter()
    .map(|s| Arc::new(Map::create(s, ncpus).expect("valid map")))
    .collect()
}

fuzz_target!(|data: &[u8]| {
    let Some(data) = BytecodeInput::parse(data) else {
        return;
    };
    let (setup, code) = (data.setup, data.code);
    let (prog_type, ncpus, input) = (data.program_type(), data.ncpus(), data.run_input());
    let vm = Vm::builder().cpus(ncpus).budget(20_000).build();
    let maps = if setup & 0x10 != 0 {
        maps(ncpus)
    } else {
        Vec::new()
    };
    let dyn_maps: Vec<Arc<dyn ProgramMap>> = maps
        .iter()
        .map(|m| Arc::clone(m) as Arc<dyn ProgramMap>)
        .collect();
    let program = Program::new(code.to_vec(), prog_type)
        .with_dyn_maps(dyn_maps)
        .with_engine(EngineKind::Interpreter);
    let Ok(prog) = vm.load(program) else {
        return;
    };
    let first = vm.run(&prog, CpuId(0), &input);
    let again = vm.run(&prog, CpuId(ncpus - 1), &input);
    // Errors must render (they name the instruction); results are plain values.
    if let Err(e) = &first {
        let _ = e.to_string();
    }
    if let Err(e) = &again {
        let _ = e.to_string();
    }
    for m in &maps {
        assert!(m.element_count() <= m.max_entries(), "map overfilled");
        let mut buf = vec![0u8; m.slot_size() * m.ncpus() as usize];
        let mut key = [0u8; 4];
        let mut prev: Option<[u8; 4]> = None;
        let mut seen = 0;
        while m
            .get_next_key(prev.as_ref().map(|k| &k[..]), &mut key, 0)
            .is_ok()
        {
            m.lookup(&key, &mut buf, 0).expect("iterated key exists");
            prev = Some(key);
            seen += 1;
            assert!(seen <= m.max_entries(), "iteration does not end");
        }
    }
});
