//! Checks direct value access (`ld_imm64` with `BPF_PSEUDO_MAP_VALUE`) against the kernel:
//! for every map type and offset tried, bpfvm refuses exactly what the kernel's verifier
//! refuses, with the same errno and the kernel's words.
#![cfg(target_os = "linux")]

use std::sync::Arc;

use bpfvm::maps::{Map, MapSpec, MapType};
use bpfvm::{Program, ProgramType, Vm};
use bpfvm_conformance::kernel::asm::{self, insn};
use bpfvm_conformance::kernel::consts::ProgType;
use bpfvm_conformance::kernel::{self, substitute_map_fds, KernelMap, KernelProg, MapDef};

/// `r0 = &value + off; r0 = *(u8 *)r0; exit` — one byte read through a direct value pointer.
fn program(off: i32) -> Vec<u8> {
    asm::image(&[&[
        insn(0x18, 1, 2, 0, 0), // r1 = map 0's value + off
        insn(0, 0, 0, 0, off),
        insn(0x71, 0, 1, 0, 0), // r0 = *(u8 *)r1
        asm::exit(),
    ]])
}

#[test]
fn direct_value_access_is_refused_as_the_kernel_refuses_it() {
    if !kernel::oracle_or_skip() {
        return;
    }
    let vm = Vm::builder().cpus(1).build();
    let cases = [
        (MapType::Array, 1, 0),
        (MapType::Array, 1, 7),
        (MapType::Array, 1, 8),
        (MapType::Array, 2, 0),
        (MapType::PercpuArray, 1, 0),
        (MapType::Hash, 1, 0),
        (MapType::PercpuHash, 1, 0),
        (MapType::LruHash, 1, 0),
    ];
    for (map_type, max_entries, off) in cases {
        let case = format!("{map_type:?} of {max_entries} entries, offset {off}");
        let kmap = KernelMap::create(MapDef {
            map_type,
            key_size: 4,
            value_size: 8,
            max_entries,
            map_flags: 0,
        })
        .unwrap();
        let image = substitute_map_fds(&program(off), &[&kmap]).unwrap();
        let mut log = String::new();
        let k = KernelProg::load(ProgType::SocketFilter, 0, &image, "GPL", &mut log);
        let map = Arc::new(Map::create(MapSpec::new(map_type, 4, 8, max_entries), 1).unwrap());
        let b = vm.load(Program::new(program(off), ProgramType::SocketFilter).with_map(map));
        println!(
            "{case}: kernel {:?}, bpfvm {:?}",
            k.as_ref().map(|_| ()).map_err(|e| e.0),
            b.as_ref().map(|_| ()).map_err(|e| e.to_string())
        );
        match (&k, &b) {
            (Ok(_), Ok(_)) => {}
            (Err(errno), Err(e)) => {
                assert_eq!(errno.0, e.errno(), "{case}: kernel log {log}, bpfvm {e}");
                let kernel_words = log
                    .lines()
                    .find(|l| l.contains("direct value") || l.contains("map value pointer"))
                    .unwrap_or_else(|| panic!("{case}: no reason in the kernel log: {log}"));
                assert!(
                    e.to_string().contains(kernel_words.trim()),
                    "{case}: kernel says {kernel_words:?}, bpfvm {e}"
                );
            }
            _ => panic!(
                "{case}: kernel {:?} ({log}), bpfvm {:?}",
                k.as_ref().map(|_| ()),
                b.as_ref().map(|_| ())
            ),
        }
    }
}
