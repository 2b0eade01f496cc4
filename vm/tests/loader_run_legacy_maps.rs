//! Checks that maps declared the legacy way (`struct bpf_map_def` in SEC("maps")) are
//! created with their attributes and used by the program like any other map.

use bpfvm::loader::Object;
use bpfvm::{CpuId, Input, Vm};

#[test]
fn legacy_maps_work_end_to_end() {
    const N: u32 = 2;
    let path = format!(
        "{}/tests/fixtures/legacy_maps.o",
        env!("CARGO_MANIFEST_DIR")
    );
    let obj = Object::from_file(path).unwrap();
    let maps = obj.create_maps(N).unwrap();
    let hash = maps.get("legacy_hash").unwrap();
    assert_eq!(hash.max_entries(), 32);
    assert_eq!(hash.map_flags(), 1, "BPF_F_NO_PREALLOC");
    let vm = Vm::builder().cpus(N).build();
    let prog = vm
        .load(obj.vm_program("legacy_count", &maps).unwrap())
        .unwrap();
    let input = Input::packet(vec![0u8; 14]);
    assert_eq!(
        vm.run(&prog, CpuId(0), &input).unwrap().retval,
        1,
        "inserted"
    );
    assert_eq!(vm.run(&prog, CpuId(1), &input).unwrap().retval, 2);
    assert_eq!(vm.run(&prog, CpuId(1), &input).unwrap().retval, 3);
    let mut v = [0u8; 8];
    hash.lookup(&7u32.to_ne_bytes(), &mut v, 0).unwrap();
    assert_eq!(u64::from_ne_bytes(v), 3);
    let mut per_cpu = [0u8; 16];
    maps.get("legacy_percpu")
        .unwrap()
        .lookup(&0u32.to_ne_bytes(), &mut per_cpu, 0)
        .unwrap();
    // value_size 4, each CPU's copy in an 8-byte slot.
    assert_eq!(u32::from_ne_bytes(per_cpu[0..4].try_into().unwrap()), 1);
    assert_eq!(u32::from_ne_bytes(per_cpu[8..12].try_into().unwrap()), 2);
}
