//! Checks that `percpu_sum.o` sums every CPU's slot with bpf_map_lookup_percpu_elem and
//! stops at the first CPU past the last one.

use bpfvm::loader::Object;
use bpfvm::{CpuId, Input, Vm};

#[test]
fn sum_all_sees_every_cpus_slot() {
    const N: u32 = 4;
    const R: u64 = 5;
    let path = format!("{}/tests/fixtures/percpu_sum.o", env!("CARGO_MANIFEST_DIR"));
    let obj = Object::from_file(path).unwrap();
    let maps = obj.create_maps(N).unwrap();
    let vm = Vm::builder().cpus(N).build();
    let add = vm.load(obj.vm_program("add_cpu", &maps).unwrap()).unwrap();
    let sum = vm.load(obj.vm_program("sum_all", &maps).unwrap()).unwrap();
    vm.run_on_all(&add, R, &Input::packet(vec![0u8; 14]))
        .unwrap();
    // CPU c added c + 1 per run: R * (1 + 2 + 3 + 4).
    let expected = R * 10;
    let out = vm
        .run(&sum, CpuId(2), &Input::packet(vec![0u8; 14]))
        .unwrap();
    assert_eq!(out.retval, expected);
    let result = maps.get("result").unwrap();
    let read = |k: u32| {
        let mut v = [0u8; 8];
        result.lookup(&k.to_ne_bytes(), &mut v, 0).unwrap();
        u64::from_ne_bytes(v)
    };
    assert_eq!(read(0), expected);
    assert_eq!(read(1), u64::from(N), "the walk stops after the last CPU");
}
