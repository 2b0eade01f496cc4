//! Checks that a pointer reaches only the object it came from: a map value pointer moved past
//! its value (into the next element, another CPU's copy, a deleted element) faults with an
//! error naming the map, the element and the offset, and nothing else is written; direct value
//! access is refused where the kernel refuses it and confined where it allows it; write-only
//! and spin-lock fields are enforced; and no stack data survives into another run.

mod common;

use std::sync::Arc;

use bpfvm::helpers::memory::{guest_addr, REGION_STACK};
use bpfvm::helpers::{Access, FaultKind, FaultTarget};
use bpfvm::maps::flags::create::WRONLY_PROG;
use bpfvm::maps::{Map, MapSpec, MapType};
use bpfvm::{CpuId, Input, PrepareError, Program, ProgramType, RunError, Vm};
use common::*;

/// `key = <key>; v = map_lookup_elem(map0, &key); if (!v) return 1; <body>; return 0;`.
fn lookup_then(key: i32, body: &[[u8; 8]]) -> Vec<u8> {
    let mut v = vec![
        ins(0x62, 10, 0, -4, key), // *(u32 *)(r10 - 4) = key
        ins(0x18, 1, 1, 0, 0),     // r1 = map 0
        ins(0, 0, 0, 0, 0),
        ins(0xbf, 2, 10, 0, 0), // r2 = r10
        ins(0x07, 2, 0, 0, -4), // r2 -= 4
        ins(0x85, 0, 0, 0, 1),  // call map_lookup_elem
        ins(0x55, 0, 0, 2, 0),  // if r0 != 0 goto body
        ins(0xb7, 0, 0, 0, 1),  // r0 = 1
        EXIT,
    ];
    v.extend_from_slice(body);
    v.push(ins(0xb7, 0, 0, 0, 0)); // r0 = 0
    v.push(EXIT);
    code(&v)
}

/// The first instruction of the body in [`lookup_then`].
const BODY: usize = 9;

fn run_with(vm: &Vm, map: &Arc<Map>, code: Vec<u8>, cpu: u32) -> Result<u64, RunError> {
    let prog = vm
        .load(Program::new(code, ProgramType::Unspecified).with_map(Arc::clone(map)))
        .unwrap();
    vm.run(&prog, CpuId(cpu), &Input::empty()).map(|o| o.retval)
}

fn all_values(map: &Map, key: u32) -> Vec<u64> {
    let mut all = vec![0u8; map.host_value_size(0)];
    map.lookup(&key.to_ne_bytes(), &mut all, 0).unwrap();
    all.chunks(8)
        .map(|c| u64::from_ne_bytes(c.try_into().unwrap()))
        .collect()
}

fn fault_of(r: Result<u64, RunError>) -> (usize, bpfvm::helpers::MemFault) {
    match r {
        Err(RunError::Fault { pc, fault, .. }) => (pc, fault),
        other => panic!("expected a fault, got {other:?}"),
    }
}

#[test]
fn a_percpu_value_pointer_reaches_neither_the_next_key_nor_another_cpus_copy() {
    let vm = Vm::builder().cpus(4).build();
    let spec = MapSpec::new(MapType::PercpuArray, 4, 8, 4).with_name("counts");
    let map = Arc::new(Map::create(spec, 4).unwrap());
    for (i, delta) in [8i16, 144, -144, 16, -8].into_iter().enumerate() {
        // *(u64 *)(v + delta) = 0x77
        let code = lookup_then(0, &[ins(0xb7, 1, 0, 0, 0x77), ins(0x7b, 0, 1, delta, 0)]);
        let (pc, fault) = fault_of(run_with(&vm, &map, code, 1));
        assert_eq!(pc, BODY + 1, "delta {delta}");
        assert_eq!(fault.access, Access::Write);
        assert_eq!(fault.kind, FaultKind::OutOfBounds, "delta {delta}");
        match fault.target {
            FaultTarget::MapValue {
                map: 0,
                name,
                element: 0,
                cpu: Some(1),
                offset,
                value_size: 8,
            } => {
                assert_eq!(name.as_str(), "counts");
                assert_eq!(offset, i32::from(delta), "{i}");
            }
            t => panic!("delta {delta}: {t:?}"),
        }
        let msg = fault.to_string();
        assert!(
            msg.contains("map counts")
                && msg.contains("element 0 on cpu 1")
                && msg.contains(&format!("offset {delta}")),
            "{msg}"
        );
    }
    // Nothing was written anywhere: every key, every CPU.
    for key in 0..4 {
        assert_eq!(all_values(&map, key), [0; 4], "key {key}");
    }
    // Inside the value is fine.
    let code = lookup_then(2, &[ins(0xb7, 1, 0, 0, 5), ins(0x7b, 0, 1, 0, 0)]);
    assert_eq!(run_with(&vm, &map, code, 3).unwrap(), 0);
    assert_eq!(all_values(&map, 2), [0, 0, 0, 5]);
}

#[test]
fn an_array_value_pointer_does_not_reach_the_next_element() {
    let vm = Vm::builder().cpus(2).build();
    let map = Arc::new(Map::create(MapSpec::new(MapType::Array, 4, 8, 4), 2).unwrap());
    let code = lookup_then(0, &[ins(0x7a, 0, 0, 8, 99)]); // *(u64 *)(v + 8) = 99
    let (_, fault) = fault_of(run_with(&vm, &map, code, 0));
    assert_eq!(fault.kind, FaultKind::OutOfBounds);
    assert!(matches!(
        fault.target,
        FaultTarget::MapValue {
            element: 0,
            cpu: None,
            offset: 8,
            ..
        }
    ));
    assert_eq!(all_values(&map, 1), [0], "key 1 untouched");
    // Reading past the end (a value of 12 bytes in a 16-byte slot) faults too.
    let map = Arc::new(Map::create(MapSpec::new(MapType::Array, 4, 12, 4), 2).unwrap());
    let code = lookup_then(1, &[ins(0x61, 1, 0, 12, 0)]); // r1 = *(u32 *)(v + 12)
    assert!(matches!(
        fault_of(run_with(&vm, &map, code, 0)).1.target,
        FaultTarget::MapValue {
            element: 1,
            offset: 12,
            value_size: 12,
            ..
        }
    ));
}

#[test]
fn a_hash_value_pointer_does_not_read_a_deleted_elements_value() {
    let vm = Vm::builder().cpus(1).build();
    let map = Arc::new(Map::create(MapSpec::new(MapType::Hash, 4, 8, 4), 1).unwrap());
    for key in [1u32, 2] {
        map.update(
            &key.to_ne_bytes(),
            &(0x1000 + u64::from(key)).to_ne_bytes(),
            0,
        )
        .unwrap();
    }
    map.delete(&2u32.to_ne_bytes(), 0).unwrap();
    // return *(u64 *)(lookup(1) + 8) and *(u64 *)(lookup(1) - 8)
    for off in [8i16, -8, 16, -16] {
        let code = lookup_then(1, &[ins(0x79, 0, 0, off, 0), EXIT]);
        let (_, fault) = fault_of(run_with(&vm, &map, code, 0));
        assert_eq!(fault.kind, FaultKind::OutOfBounds, "offset {off}");
        assert_eq!(fault.access, Access::Read);
    }
    let code = lookup_then(1, &[ins(0x79, 0, 0, 0, 0), EXIT]);
    assert_eq!(run_with(&vm, &map, code, 0).unwrap(), 0x1001);
}

/// `r0 = &map0's value + off` by direct value access, then `*(u8 *)(r0 + at) = 1`.
fn direct_value_store(off: i32, at: i16) -> Vec<u8> {
    code(&[
        ins(0x18, 0, 2, 0, 0), // r0 = map 0 value + off
        ins(0, 0, 0, 0, off),
        ins(0x72, 0, 0, at, 1), // *(u8 *)(r0 + at) = 1
        ins(0xb7, 0, 0, 0, 0),
        EXIT,
    ])
}

#[test]
fn direct_value_access_is_refused_on_percpu_maps_and_confined_on_arrays() {
    let vm = Vm::builder().cpus(2).build();
    for t in [MapType::PercpuArray, MapType::Hash, MapType::PercpuHash] {
        let map = Arc::new(Map::create(MapSpec::new(t, 4, 8, 1), 2).unwrap());
        let e = vm
            .load(Program::new(direct_value_store(0, 0), ProgramType::Unspecified).with_map(map))
            .unwrap_err();
        assert_eq!(e, PrepareError::NoDirectValueAccess { pc: 0, index: 0 });
        assert!(
            e.to_string()
                .contains("no direct value access support for this map type"),
            "{e}"
        );
    }
    // An array of more than one entry: ENOTSUPP, as the kernel.
    let map = Arc::new(Map::create(MapSpec::new(MapType::Array, 4, 8, 2), 2).unwrap());
    let e = vm
        .load(Program::new(direct_value_store(0, 0), ProgramType::Unspecified).with_map(map))
        .unwrap_err();
    assert!(matches!(e, PrepareError::BadMapValueOffset { .. }), "{e}");
    assert_eq!(e.errno(), 524);
    // A single-entry array (global data): the value, and only the value.
    let map = Arc::new(Map::create(MapSpec::new(MapType::Array, 4, 16, 1), 2).unwrap());
    let store = |off, at| run_with(&vm, &map, direct_value_store(off, at), 1);
    assert_eq!(store(15, 0).unwrap(), 0);
    assert_eq!(all_values(&map, 0), [0, 1 << 56]);
    let (_, fault) = fault_of(store(15, 1));
    assert_eq!(fault.kind, FaultKind::OutOfBounds);
    assert!(matches!(
        fault.target,
        FaultTarget::MapValue { offset: 16, .. }
    ));
    assert_eq!(fault_of(store(0, -1)).1.kind, FaultKind::OutOfBounds);
}

#[test]
fn write_only_maps_cannot_be_read_by_programs() {
    let vm = Vm::builder().cpus(1).build();
    let spec = MapSpec::new(MapType::Array, 4, 8, 1).with_flags(WRONLY_PROG);
    let map = Arc::new(Map::create(spec, 1).unwrap());
    map.update(&0u32.to_ne_bytes(), &7u64.to_ne_bytes(), 0)
        .unwrap();
    let read = lookup_then(0, &[ins(0x79, 0, 0, 0, 0), EXIT]);
    let (_, fault) = fault_of(run_with(&vm, &map, read, 0));
    assert_eq!(fault.kind, FaultKind::WriteOnly);
    assert!(fault.to_string().contains("write-only"), "{fault}");
    // An atomic add reads too.
    let add = lookup_then(0, &[ins(0xb7, 1, 0, 0, 1), ins(0xdb, 0, 1, 0, 0)]);
    assert_eq!(
        fault_of(run_with(&vm, &map, add, 0)).1.kind,
        FaultKind::WriteOnly
    );
    // Writing is allowed.
    let write = lookup_then(0, &[ins(0x7a, 0, 0, 0, 9)]);
    assert_eq!(run_with(&vm, &map, write, 0).unwrap(), 0);
    assert_eq!(all_values(&map, 0), [9]);
}

#[test]
fn the_spin_lock_word_is_off_limits_to_loads_and_stores() {
    let vm = Vm::builder().cpus(1).build();
    // A 16-byte value: u64 at 0, bpf_spin_lock at 8, u32 at 12.
    let map =
        Arc::new(Map::create_with_spin_lock(MapSpec::new(MapType::Hash, 4, 16, 2), 1, 8).unwrap());
    map.update(&1u32.to_ne_bytes(), &[0; 16], 0).unwrap();
    for (what, body) in [
        ("store", ins(0x62, 0, 0, 8, 1)), // *(u32 *)(v + 8) = 1
        ("load", ins(0x61, 1, 0, 8, 0)),  // r1 = *(u32 *)(v + 8)
        ("wide", ins(0x7a, 0, 0, 4, -1)), // *(u64 *)(v + 4) = -1: overlaps the lock
        ("byte", ins(0x72, 0, 0, 11, 1)), // *(u8 *)(v + 11) = 1
    ] {
        let (_, fault) = fault_of(run_with(&vm, &map, lookup_then(1, &[body]), 0));
        assert_eq!(fault.kind, FaultKind::SpecialField, "{what}");
    }
    // The fields around it are ordinary.
    let ok = lookup_then(
        1,
        &[
            ins(0x7a, 0, 0, 0, 5),
            ins(0x62, 0, 0, 12, 6),
            ins(0x61, 1, 0, 12, 0),
        ],
    );
    assert_eq!(run_with(&vm, &map, ok, 0).unwrap(), 0);
    // The lock is still free: a host lookup with BPF_F_LOCK returns at once.
    let mut out = [0u8; 16];
    map.lookup(&1u32.to_ne_bytes(), &mut out, 4).unwrap();
    assert_eq!(out[..8], 5u64.to_ne_bytes());
    assert_eq!(out[12..], 6u32.to_ne_bytes());
}

#[test]
fn a_program_without_r10_cannot_reach_the_stack() {
    let vm = Vm::builder().cpus(1).build();
    // A program that names r10 leaves data in frame 0 ...
    let writer = code(&[ins(0x7a, 10, 0, -8, 0x5ec7e7), ins(0xb7, 0, 0, 0, 0), EXIT]);
    let writer = vm
        .load(Program::new(writer, ProgramType::Unspecified))
        .unwrap();
    assert_eq!(
        vm.run(&writer, CpuId(0), &Input::empty()).unwrap().retval,
        0
    );
    // ... and one that computes the same address without naming r10 cannot read it, or
    // write there for a later run.
    let top = guest_addr(REGION_STACK, 0x1000);
    let forged = |op: [u8; 8]| {
        code(&[
            ins(0x18, 1, 0, 0, top as u32 as i32),
            ins(0, 0, 0, 0, (top >> 32) as i32),
            ins(0xb7, 0, 0, 0, 0),
            op,
            EXIT,
        ])
    };
    for op in [ins(0x79, 0, 1, -8, 0), ins(0x7a, 1, 0, -16, 0x1eaf)] {
        let p = vm
            .load(Program::new(forged(op), ProgramType::Unspecified))
            .unwrap();
        let (_, fault) = fault_of(vm.run(&p, CpuId(0), &Input::empty()).map(|o| o.retval));
        assert_eq!(fault.kind, FaultKind::OutOfBounds);
        assert!(matches!(fault.target, FaultTarget::Stack { .. }), "{fault}");
    }
    // The next program that does use the stack finds it zeroed.
    let reader = code(&[
        ins(0x79, 0, 10, -8, 0),
        ins(0x79, 1, 10, -16, 0),
        ins(0x4f, 0, 1, 0, 0), // r0 |= r1
        EXIT,
    ]);
    let reader = vm
        .load(Program::new(reader, ProgramType::Unspecified))
        .unwrap();
    assert_eq!(
        vm.run(&reader, CpuId(0), &Input::empty()).unwrap().retval,
        0
    );
}
