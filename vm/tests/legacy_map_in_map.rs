//! A legacy `struct bpf_map_def` map-in-map (`legacy_map_in_map.o`): the template is the
//! map its `inner_map_idx` names, maps that fit it can be put in the outer map, and a
//! program reaches them through it.

mod common;

use bpfvm::Input;

#[test]
fn inner_map_idx_names_the_template() {
    let (obj, maps, vm) = common::fixture_vm("legacy_map_in_map", 1);
    let outer = obj
        .maps()
        .iter()
        .find(|m| m.name == "outer_legacy")
        .unwrap();
    let t = outer.inner.as_ref().expect("template from inner_map_idx");
    assert_eq!((t.map_type, t.value_size, t.max_entries), (2, 4, 2));
    let packet = Input::packet(vec![0u8; 64]);
    let empty = common::fixture_program(&vm, &obj, &maps, "read_slot0");
    assert_eq!(vm.run(&empty, 0, &packet).unwrap().retval, 77);
    maps.get("template")
        .unwrap()
        .update(&0u32.to_ne_bytes(), &5u32.to_ne_bytes(), 0)
        .unwrap();
    maps.set_map_slot("outer_legacy", &0u32.to_ne_bytes(), "template")
        .unwrap();
    let prog = common::fixture_program(&vm, &obj, &maps, "read_slot0");
    assert_eq!(prog.unverified(), None);
    assert_eq!(vm.run(&prog, 0, &packet).unwrap().retval, 5);
}
