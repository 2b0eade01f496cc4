//! Checks that `subprog.o`'s programs, with their `.text` subprograms appended by the
//! loader, compute a*a + b*b and a*a + b*b + a + 1 on the VM.

use bpfvm::loader::Object;
use bpfvm::{CpuId, Input, Vm};

#[test]
fn bpf_to_bpf_calls_run() {
    let path = format!("{}/tests/fixtures/subprog.o", env!("CARGO_MANIFEST_DIR"));
    let obj = Object::from_file(path).unwrap();
    let maps = obj.create_maps(1).unwrap();
    let vm = Vm::builder().cpus(1).build();
    let args = maps.get("args").unwrap();
    let set = |k: u32, v: u32| args.update(&k.to_ne_bytes(), &v.to_ne_bytes(), 0).unwrap();
    let get = |k: u32| {
        let mut v = [0u8; 4];
        args.lookup(&k.to_ne_bytes(), &mut v, 0).unwrap();
        u32::from_ne_bytes(v)
    };
    let input = Input::packet(vec![0u8; 14]);
    let squares = vm
        .load(obj.vm_program("calc_squares", &maps).unwrap())
        .unwrap();
    let more = vm
        .load(obj.vm_program("calc_more", &maps).unwrap())
        .unwrap();
    for (a, b) in [(3u32, 4u32), (0, 0), (12, 5), (1000, 1)] {
        set(0, a);
        set(1, b);
        let sq = a * a + b * b;
        assert_eq!(
            vm.run(&squares, CpuId(0), &input).unwrap().retval as u32,
            sq
        );
        assert_eq!(get(2), sq);
        assert_eq!(
            vm.run(&more, CpuId(0), &input).unwrap().retval as u32,
            sq + a + 1
        );
        assert_eq!(get(2), sq + a + 1);
    }
}
