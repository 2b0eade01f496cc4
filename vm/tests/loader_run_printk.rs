//! Checks that string constants in `.rodata` and `.rodata.str1.1` reach the trace
//! helper: `printk.o` prints "hello <first packet byte>" and "bye".

mod common;

use bpfvm::{CpuId, Input};

#[test]
fn format_strings_come_from_read_only_global_data() {
    let (obj, maps, vm) = common::fixture_vm("printk", 1);
    let prog = common::fixture_program(&vm, &obj, &maps, "hello");
    let out = vm
        .run(
            &prog,
            CpuId(0),
            &Input::packet([&[42u8, 1, 2][..], &[0; 11]].concat()),
        )
        .unwrap();
    assert_eq!(out.retval, 0);
    assert!(out.trace.contains("hello 42"), "{:?}", out.trace);
    assert!(out.trace.contains("bye"), "{:?}", out.trace);
    assert!(maps.get(".rodata.str1.1").unwrap().is_frozen());
}
