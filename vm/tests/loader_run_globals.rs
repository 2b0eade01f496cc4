//! Checks that global data works end to end: `.bss`, `.data`, `.data.stats` and
//! `.rodata` start with their initial values, programs and host see the same bytes, and
//! `.rodata` is frozen for the host and read-only for programs (a write faults).

mod common;

use bpfvm::{CpuId, Input, RunError};

fn read_u64(map: &bpfvm_maps::Map, offset: usize) -> u64 {
    let mut v = vec![0u8; map.value_size() as usize];
    map.lookup(&0u32.to_ne_bytes(), &mut v, 0).unwrap();
    u64::from_ne_bytes(v[offset..offset + 8].try_into().unwrap())
}

#[test]
fn programs_and_host_share_global_variables() {
    let (obj, maps, vm) = common::fixture_vm("globals", 2);
    let bump = common::fixture_program(&vm, &obj, &maps, "bump");
    let input = Input::packet(vec![0u8; 20]);
    for r in 1..=4u64 {
        // counter += step (3) * factor (5); the return adds greeting[0] - 'b' = 0.
        assert_eq!(vm.run(&bump, CpuId(0), &input).unwrap().retval, 15 * r);
    }
    assert_eq!(read_u64(maps.get(".bss").unwrap(), 0), 60);
    assert_eq!(read_u64(maps.get("globals.bss").unwrap(), 0), 60);
    assert_eq!(read_u64(maps.get(".data.stats").unwrap(), 0), 4, "runs");

    // The host changes `step` in .data; the next run uses it.
    maps.get(".data")
        .unwrap()
        .update(&0u32.to_ne_bytes(), &10u64.to_ne_bytes(), 0)
        .unwrap();
    assert_eq!(vm.run(&bump, CpuId(1), &input).unwrap().retval, 60 + 50);

    // .rodata: initial values, frozen for the host.
    let rodata = maps.get(".rodata").unwrap();
    assert_eq!(read_u64(rodata, 0), 5);
    assert!(rodata.is_frozen());
    let err = rodata
        .update(&0u32.to_ne_bytes(), &[0u8; 16], 0)
        .unwrap_err();
    assert_eq!(err.errno(), 1, "EPERM");
}

#[test]
fn writing_rodata_from_a_program_faults() {
    let (obj, maps, vm) = common::fixture_vm("globals", 1);
    // The kernel's verifier refuses the write at load, naming the C line.
    let refused = vm.load(obj.vm_program("write_rodata", &maps).unwrap());
    let Err(bpfvm::PrepareError::Verifier { error, line }) = &refused else {
        panic!("{refused:?}");
    };
    assert!(
        error.message.starts_with("write into map forbidden"),
        "{}",
        error.message
    );
    assert!(line
        .as_deref()
        .unwrap_or("")
        .contains("*(volatile __u64 *)&factor = 99;"));
    // With the structural checks only, the run-time check stops it.
    let vm = common::structural_vm(1);
    let write = common::fixture_program(&vm, &obj, &maps, "write_rodata");
    let err = vm
        .run(&write, CpuId(0), &Input::packet(vec![0u8; 20]))
        .unwrap_err();
    let RunError::Fault { pc, .. } = err else {
        panic!("expected a fault, got {err:?}");
    };
    // The faulting instruction maps back to the C line doing the write.
    let line = obj
        .program("write_rodata")
        .unwrap()
        .source_line(pc)
        .unwrap();
    assert_eq!(line.source.trim(), "*(volatile __u64 *)&factor = 99;");
    assert_eq!(
        read_u64(maps.get(".rodata").unwrap(), 0),
        5,
        "value untouched"
    );
}
