//! The map-in-map fixture (`map_in_map.o`): an ARRAY_OF_MAPS filled by its `values`
//! initialiser and a HASH_OF_MAPS filled by the host, programs that find an inner map
//! through the outer map and use it, all verified by the kernel's rules; and the misuses
//! the kernel's verifier refuses, refused with its words.

mod common;

use bpfvm::{Input, PrepareError};

fn counter(maps: &bpfvm::loader::ObjectMaps, name: &str) -> u64 {
    let mut v = [0u8; 8];
    maps.get(name)
        .unwrap()
        .lookup(&0u32.to_ne_bytes(), &mut v, 0)
        .unwrap();
    u64::from_ne_bytes(v)
}

fn results(maps: &bpfvm::loader::ObjectMaps) -> Vec<u64> {
    (0u32..4)
        .map(|k| {
            let mut v = [0u8; 8];
            maps.get("result")
                .unwrap()
                .lookup(&k.to_ne_bytes(), &mut v, 0)
                .unwrap();
            u64::from_ne_bytes(v)
        })
        .collect()
}

#[test]
fn lookups_through_the_outer_maps_reach_the_inner_maps() {
    let (obj, maps, vm) = common::fixture_vm("map_in_map", 2);
    maps.set_map_slot("by_port", &80u32.to_ne_bytes(), "inner_b")
        .unwrap();
    let prog = common::fixture_program(&vm, &obj, &maps, "count_slots");
    assert_eq!(prog.unverified(), None, "verified by the kernel's rules");
    let input = Input::packet(vec![0u8; 64]);
    assert_eq!(vm.run(&prog, 0, &input).unwrap().retval, 2);
    // Slot 0 holds inner_a, slot 1 nothing, slot 2 inner_b; by_port[80] inner_b too.
    assert_eq!(results(&maps), [1, 100, 1, 2]);
    assert_eq!(vm.run(&prog, 0, &input).unwrap().retval, 2);
    assert_eq!(results(&maps), [2, 100, 3, 4]);
    assert_eq!(counter(&maps, "inner_a"), 2);
    assert_eq!(counter(&maps, "inner_b"), 4);
    assert_eq!(counter(&maps, "inner_c"), 0);
}

#[test]
fn an_inner_map_pointer_is_used_with_the_map_helpers() {
    let (obj, maps, vm) = common::fixture_vm("map_in_map", 1);
    let empty = common::fixture_program(&vm, &obj, &maps, "set_slot3");
    let input = Input::packet(vec![0u8; 64]);
    assert_eq!(
        vm.run(&empty, 0, &input).unwrap().retval,
        1,
        "XDP_DROP: slot 3 is empty"
    );
    maps.set_map_slot("outer", &3u32.to_ne_bytes(), "inner_c")
        .unwrap();
    let prog = common::fixture_program(&vm, &obj, &maps, "set_slot3");
    assert_eq!(vm.run(&prog, 0, &input).unwrap().retval, 2);
    assert_eq!(counter(&maps, "inner_c"), 42);
}

#[test]
fn an_inner_map_added_after_loading_is_a_clear_run_time_error() {
    let (obj, maps, vm) = common::fixture_vm("map_in_map", 1);
    let prog = common::fixture_program(&vm, &obj, &maps, "set_slot3");
    maps.set_map_slot("outer", &3u32.to_ne_bytes(), "inner_c")
        .unwrap();
    let e = vm.run(&prog, 0, &Input::packet(vec![0u8; 64])).unwrap_err();
    assert!(
        e.to_string().contains("not among the program's maps"),
        "{e}"
    );
}

#[test]
fn misuses_are_refused_with_the_kernels_words() {
    let (obj, maps, vm) = common::fixture_vm("map_in_map", 1);
    for (name, words) in [
        (
            "update_outer_bad",
            "cannot pass map_type 12 into func bpf_map_update_elem#2",
        ),
        (
            "no_null_check_bad",
            "R1 type=map_ptr_or_null expected=map_ptr",
        ),
        (
            "past_inner_value_bad",
            "invalid access to map value, value_size=8 off=8 size=8",
        ),
    ] {
        let program = obj.vm_program(name, &maps).unwrap();
        match vm.load(program) {
            Err(PrepareError::Verifier { error, .. }) => {
                assert!(error.message.contains(words), "{name}: {}", error.message)
            }
            other => panic!(
                "{name}: {:?}",
                other.map(|p| p.unverified().map(str::to_owned))
            ),
        }
    }
}
