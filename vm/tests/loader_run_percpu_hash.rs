//! Checks that `percpu_hash.o` inserts with BPF_NOEXIST as the kernel does: the first
//! run of a key inserts, later runs (on any CPU) get -EEXIST and bump their own CPU's
//! copy, and a full map refuses new keys.

use bpfvm::loader::Object;
use bpfvm::{CpuId, Input, Vm};

const N: u32 = 3;

fn per_cpu(map: &bpfvm_maps::Map, key: u32) -> Vec<u64> {
    let mut buf = vec![0u8; 8 * N as usize];
    map.lookup(&key.to_ne_bytes(), &mut buf, 0).unwrap();
    buf.chunks(8)
        .map(|c| u64::from_ne_bytes(c.try_into().unwrap()))
        .collect()
}

#[test]
fn noexist_inserts_once_then_each_cpu_counts_in_its_slot() {
    let path = format!(
        "{}/tests/fixtures/percpu_hash.o",
        env!("CARGO_MANIFEST_DIR")
    );
    let obj = Object::from_file(path).unwrap();
    let maps = obj.create_maps(N).unwrap();
    let vm = Vm::builder().cpus(N).build();
    let prog = vm
        .load(obj.vm_program("insert_noexist", &maps).unwrap())
        .unwrap();
    let pkt = |key: u32| Input::packet(key.to_le_bytes().to_vec());
    let run = |cpu: u32, key: u32| vm.run(&prog, CpuId(cpu), &pkt(key)).unwrap().retval;

    assert_eq!(run(0, 7), 1, "first insert succeeds");
    assert_eq!(run(0, 7), 2, "second insert: EEXIST");
    assert_eq!(run(1, 7), 2, "the key exists for every CPU");
    assert_eq!(run(1, 7), 2);
    assert_eq!(run(2, 9), 1, "another key");
    // The inserting CPU holds 1 (+1), the others start at 0 as in the kernel.
    let seen = maps.get("seen").unwrap();
    assert_eq!(per_cpu(seen, 7), [2, 2, 0]);
    assert_eq!(per_cpu(seen, 9), [0, 0, 1]);
    let mut eexist = [0u8; 8];
    maps.get("eexist")
        .unwrap()
        .lookup(&0u32.to_ne_bytes(), &mut eexist, 0)
        .unwrap();
    assert_eq!(u64::from_ne_bytes(eexist), 3);

    // Short packets are rejected by the bounds check.
    assert_eq!(
        vm.run(&prog, CpuId(0), &Input::packet(vec![1, 2]))
            .unwrap()
            .retval,
        0
    );

    // max_entries is 16: 14 more keys fit, the 17th key fails with E2BIG (ret 3).
    for k in 100..114 {
        assert_eq!(run(k % N, k), 1, "key {k}");
    }
    assert_eq!(run(0, 500), 3, "full map");
}
