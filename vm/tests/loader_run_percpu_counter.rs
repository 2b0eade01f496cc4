//! Checks that the bundled example `percpu_counter.o`, loaded and run R times on each of
//! N CPUs, leaves R in every CPU's slot of `counts` and N * R in the shared `total`.

use bpfvm::loader::Object;
use bpfvm::{Input, Vm};

#[test]
fn every_cpu_counts_its_own_runs_and_the_atomic_total_sees_all() {
    const N: u32 = 4;
    const R: u64 = 2000;
    let path = format!(
        "{}/tests/fixtures/percpu_counter.o",
        env!("CARGO_MANIFEST_DIR")
    );
    let obj = Object::from_file(path).unwrap();
    let maps = obj.create_maps(N).unwrap();
    let vm = Vm::builder().cpus(N).build();
    let prog = vm
        .load(obj.vm_program("count_packets", &maps).unwrap())
        .unwrap();

    let rets = vm
        .run_on_all(&prog, R, &Input::packet(vec![0u8; 64]))
        .unwrap();
    assert_eq!(rets, vec![vec![2u64; R as usize]; N as usize], "XDP_PASS");

    let key = 0u32.to_ne_bytes();
    let mut per_cpu = vec![0u8; 8 * N as usize];
    maps.get("counts")
        .unwrap()
        .lookup(&key, &mut per_cpu, 0)
        .unwrap();
    let per_cpu: Vec<u64> = per_cpu
        .chunks(8)
        .map(|c| u64::from_ne_bytes(c.try_into().unwrap()))
        .collect();
    assert_eq!(per_cpu, vec![R; N as usize]);

    let mut total = [0u8; 8];
    maps.get("total")
        .unwrap()
        .lookup(&key, &mut total, 0)
        .unwrap();
    assert_eq!(u64::from_ne_bytes(total), u64::from(N) * R);
}
