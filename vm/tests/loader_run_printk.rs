//! Checks that string constants in `.rodata` and `.rodata.str1.1` reach the trace
//! helper: `printk.o` prints "hello <first packet byte>" and "bye".

use bpfvm::loader::Object;
use bpfvm::{CpuId, Input, Vm};

#[test]
fn format_strings_come_from_read_only_global_data() {
    let path = format!("{}/tests/fixtures/printk.o", env!("CARGO_MANIFEST_DIR"));
    let obj = Object::from_file(path).unwrap();
    let maps = obj.create_maps(1).unwrap();
    let vm = Vm::builder().cpus(1).build();
    let prog = vm.load(obj.vm_program("hello", &maps).unwrap()).unwrap();
    let out = vm
        .run(&prog, CpuId(0), &Input::packet(vec![42u8, 1, 2]))
        .unwrap();
    assert_eq!(out.retval, 0);
    assert!(out.trace.contains("hello 42"), "{:?}", out.trace);
    assert!(out.trace.contains("bye"), "{:?}", out.trace);
    assert!(maps.get(".rodata.str1.1").unwrap().is_frozen());
}
