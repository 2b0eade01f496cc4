//! Checks that `percpu_hash.o` inserts with BPF_NOEXIST as the kernel does: the first
//! run of a key inserts, later runs (on any CPU) get -EEXIST and bump their own CPU's
//! copy, and a full map refuses new keys.

mod common;

use bpfvm::{CpuId, Input};

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
    let (obj, maps, vm) = common::fixture_vm("percpu_hash", N);
    let prog = common::fixture_program(&vm, &obj, &maps, "insert_noexist");
    let pkt = |key: u32| {
        // The key, padded to an Ethernet header (the least an XDP test run takes).
        let mut p = key.to_le_bytes().to_vec();
        p.resize(14, 0);
        Input::packet(p)
    };
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

    // Packets shorter than an Ethernet header are refused by the test run (EINVAL).
    let short = vm.run(&prog, CpuId(0), &Input::packet(vec![1, 2]));
    assert_eq!(short.unwrap_err().errno(), 22);

    // max_entries is 16: 14 more keys fit, the 17th key fails with E2BIG (ret 3).
    for k in 100..114 {
        assert_eq!(run(k % N, k), 1, "key {k}");
    }
    assert_eq!(run(0, 500), 3, "full map");
}
