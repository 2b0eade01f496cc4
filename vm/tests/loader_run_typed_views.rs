//! Checks that the maps crate's typed views work on an object's maps found by name, so
//! a test reads: load → seed maps → run on CPUs → assert map contents.

use bpfvm::loader::Object;
use bpfvm::{Input, Vm};
use bpfvm_maps::{Array, MapFlags, PerCpuArray, PerCpuValues};

#[test]
fn load_seed_run_assert_with_typed_views() {
    const N: u32 = 4;
    let path = format!(
        "{}/tests/fixtures/percpu_counter.o",
        env!("CARGO_MANIFEST_DIR")
    );
    let obj = Object::from_file(path).unwrap();
    let maps = obj.create_maps(N).unwrap();
    let counts = PerCpuArray::<_, u64>::new(maps.get("counts").unwrap().clone()).unwrap();
    let total = Array::<_, u64>::new(maps.get("total").unwrap().clone()).unwrap();

    // Seed: CPU i starts at 100 * i; the shared total at 1000.
    counts
        .set(
            0,
            &PerCpuValues::new(N, vec![0, 100, 200, 300]).unwrap(),
            MapFlags::ANY,
        )
        .unwrap();
    total.set(0, 1000, MapFlags::ANY).unwrap();

    let vm = Vm::builder().cpus(N).build();
    let prog = vm
        .load(obj.vm_program("count_packets", &maps).unwrap())
        .unwrap();
    vm.run_on_all(&prog, 10, &Input::packet(vec![0u8; 64]))
        .unwrap();

    assert_eq!(counts.get(0).unwrap().into_vec(), [10, 110, 210, 310]);
    assert_eq!(counts.get_value(0, MapFlags::cpu(3)).unwrap(), 310);
    assert_eq!(total.get(0).unwrap(), 1000 + 40);
}
