//! Raw bytecode on the `jit` engine against the `interpreter`, under AddressSanitizer: each
//! input is loaded and run on both engines (each with its own VM and maps), and both must
//! refuse it alike or give the same result or error on each run, and leave the same map
//! contents. Nothing may panic; the compiled code touches memory only through the region
//! table's checks, so ASan sees no access outside what the interpreter touches.
//!
//! Input: the `bytecode` target's `[setup][len lo][len hi][len bytes: packet or context]
//! [code...]`, where `setup` picks the program type (bits 0-1), the number of CPUs (bits
//! 2-3), whether maps are attached (bit 4: four maps, then a PROG_ARRAY as map 4 whose
//! slot 0 holds the program itself, so `bpf_tail_call` through it jumps) and the budget
//! (bit 5: 300 instructions instead of 20,000).
#![no_main]

use std::sync::Arc;

use bpfvm::helpers::ProgramMap;
use bpfvm::maps::{Map, MapSpec, MapType};
use bpfvm::{CpuId, EngineKind, Program, Vm};
use bpfvm_fuzz::bytecode::BytecodeInput;
use libfuzzer_sys::fuzz_target;

fn maps(vm: &Vm) -> Vec<Arc<Map>> {
    [
        MapSpec::new(MapType::PercpuArray, 4, 8, 4),
        MapSpec::new(MapType::Hash, 4, 12, 4),
        MapSpec::new(MapType::Array, 4, 16, 2),
        MapSpec::new(MapType::PercpuHash, 4, 8, 4),
        MapSpec::new(MapType::ProgArray, 4, 4, 2),
    ]
    .into_iter()
    .map(|s| vm.create_map(s).expect("valid map"))
    .collect()
}

/// A map's contents in iteration order (PROG_ARRAYs hold program ids, which differ).
fn dump(m: &Map) -> Vec<Vec<u8>> {
    if m.map_type() == MapType::ProgArray {
        return Vec::new();
    }
    let mut out = Vec::new();
    let mut buf = vec![0u8; m.slot_size() * m.ncpus() as usize];
    let mut key = [0u8; 4];
    let mut prev: Option<[u8; 4]> = None;
    while m
        .get_next_key(prev.as_ref().map(|k| &k[..]), &mut key, 0)
        .is_ok()
    {
        m.lookup(&key, &mut buf, 0).expect("iterated key exists");
        out.push([&key[..], &buf].concat());
        prev = Some(key);
        assert!(
            out.len() <= m.max_entries() as usize,
            "iteration does not end"
        );
    }
    out
}

/// `text` without the numbers after `program: ` (program ids differ per load).
fn without_ids(text: String) -> String {
    let mut out = String::new();
    let mut rest = text.as_str();
    while let Some(i) = rest.find("program: ") {
        out.push_str(&rest[..i + 9]);
        rest = rest[i + 9..].trim_start_matches(|c: char| c.is_ascii_digit());
    }
    out + rest
}

/// What `engine` makes of the input: the load's outcome, both runs', the maps.
fn outcome(engine: EngineKind, data: &BytecodeInput) -> Vec<String> {
    let (setup, code) = (data.setup, data.code);
    let (prog_type, ncpus, input) = (data.program_type(), data.ncpus(), data.run_input());
    let budget = if setup & 0x20 != 0 { 300 } else { 20_000 };
    let vm = Vm::builder().cpus(ncpus).budget(budget).build();
    let maps = if setup & 0x10 != 0 {
        maps(&vm)
    } else {
        Vec::new()
    };
    let dyn_maps: Vec<Arc<dyn ProgramMap>> = maps
        .iter()
        .map(|m| Arc::clone(m) as Arc<dyn ProgramMap>)
        .collect();
    let program = Program::new(code.to_vec(), prog_type)
        .with_dyn_maps(dyn_maps)
        .with_engine(engine);
    let prog = match vm.load(program) {
        Ok(p) => p,
        // The jit refuses what it does not compile (named); the interpreter then must
        // have loaded it, so compare only the interpreter's other refusals.
        Err(e) => return vec![format!("refused: {e:?}")],
    };
    let mut log = Vec::new();
    if let Some(jmp) = maps.get(4) {
        let _ = prog.set_in_prog_array(jmp, 0);
    }
    for cpu in [0, ncpus - 1] {
        let r = vm.run(&prog, CpuId(cpu), &input);
        log.push(without_ids(match r {
            Ok(out) => format!("{:#x} {:?} {:?}", out.retval, out.data, out.ctx),
            Err(e) => format!("{e:?} / {e}"),
        }));
    }
    for m in &maps {
        log.push(format!("{:?}", dump(m)));
    }
    // The program holds the PROG_ARRAY and the PROG_ARRAY holds it: empty it so both are
    // freed (the kernel empties a PROG_ARRAY when its last user closes it).
    if let Some(jmp) = maps.get(4) {
        let _ = jmp.delete(&0u32.to_ne_bytes(), 0);
    }
    log
}

fuzz_target!(|data: &[u8]| {
    if !bpfvm::engine::jit::AVAILABLE {
        return;
    }
    let Some(data) = BytecodeInput::parse(data) else {
        return;
    };
    let want = outcome(EngineKind::Interpreter, &data);
    let got = outcome(EngineKind::Jit, &data);
    if got.len() == 1 && want.len() > 1 {
        // Refused by the jit only: an instruction it does not compile (probe loads).
        return;
    }
    assert_eq!(want, got, "the jit differs from the interpreter");
});
