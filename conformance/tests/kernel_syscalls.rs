//! Checks the raw `bpf(2)` interface of the kernel oracle against spec rows that were
//! verified on Linux 6.18, so the oracle itself is known to speak the ABI correctly.
#![cfg(target_os = "linux")]

use bpfvm_conformance::kernel::consts::{create, elem, MapType};
use bpfvm_conformance::kernel::{self, Errno, KernelMap, MapDef};

fn def(map_type: MapType, key_size: u32, value_size: u32, max_entries: u32) -> MapDef {
    MapDef {
        map_type,
        key_size,
        value_size,
        max_entries,
        map_flags: 0,
    }
}

fn k(i: u32) -> [u8; 4] {
    i.to_ne_bytes()
}

#[test]
fn array_update_lookup_and_errnos() {
    if !kernel::oracle_or_skip() {
        return;
    }
    let m = KernelMap::create(def(MapType::Array, 4, 8, 4)).unwrap();
    m.update(&k(3), &9u64.to_ne_bytes(), elem::EXIST).unwrap();
    assert_eq!(m.lookup(&k(3), 0).unwrap(), 9u64.to_ne_bytes());
    assert_eq!(m.lookup(&k(4), 0), Err(Errno::ENOENT));
    assert_eq!(m.update(&k(4), &[0; 8], 0), Err(Errno::E2BIG));
    assert_eq!(m.update(&k(0), &[0; 8], elem::NOEXIST), Err(Errno::EEXIST));
    assert_eq!(m.update(&k(0), &[0; 8], 3), Err(Errno::EINVAL));
    assert_eq!(m.update(&k(0), &[0; 8], 1 << 32), Err(Errno::EINVAL));
    assert_eq!(m.delete(&k(0)), Err(Errno::EINVAL));
    assert_eq!(m.lookup_and_delete(&k(0), 0), Err(Errno::ENOTSUPP));
    // GET_NEXT_KEY: NULL and out-of-range give 0, the last index gives ENOENT.
    assert_eq!(m.get_next_key(None).unwrap(), k(0));
    assert_eq!(m.get_next_key(Some(&k(77))).unwrap(), k(0));
    assert_eq!(m.get_next_key(Some(&k(1))).unwrap(), k(2));
    assert_eq!(m.get_next_key(Some(&k(3))), Err(Errno::ENOENT));
    // A short value makes the kernel fault (it sits right before an unmapped page); a
    // longer key is read up to key_size.
    assert_eq!(m.update(&k(0), &[0; 4], 0), Err(Errno::EFAULT));
    assert_eq!(m.lookup(&[0; 2], 0), Err(Errno::EFAULT));
    assert_eq!(
        m.lookup(&[3, 0, 0, 0, 0xFF, 0xFF], 0).unwrap(),
        9u64.to_ne_bytes()
    );
}

#[test]
fn linux_6_18_rejects_the_cpu_flags() {
    if !kernel::oracle_or_skip() {
        return;
    }
    let m = KernelMap::create(def(MapType::PercpuArray, 4, 4, 2)).unwrap();
    assert_eq!(m.lookup(&k(0), elem::cpu(0)), Err(Errno::EINVAL));
    assert_eq!(m.update(&k(0), &[1; 4], elem::ALL_CPUS), Err(Errno::EINVAL));
}

#[test]
fn percpu_full_buffers_have_one_slot_per_cpu() {
    if !kernel::oracle_or_skip() {
        return;
    }
    let n = kernel::possible_cpus().unwrap() as usize;
    let m = KernelMap::create(def(MapType::PercpuHash, 4, 4, 4)).unwrap();
    assert_eq!(m.value_size_for(0), 8 * n);
    let mut full = vec![0u8; 8 * n];
    for cpu in 0..n {
        full[cpu * 8..cpu * 8 + 4].copy_from_slice(&(cpu as u32 + 10).to_ne_bytes());
        full[cpu * 8 + 4..cpu * 8 + 8].copy_from_slice(&[0xEE; 4]);
    }
    m.update(&k(1), &full, 0).unwrap();
    // Linux 6.18 copies the padding written by the host too (spec §3).
    assert_eq!(m.lookup(&k(1), 0).unwrap(), full);
    assert_eq!(m.lookup_and_delete(&k(1), 0).unwrap(), full);
    assert_eq!(m.lookup(&k(1), 0), Err(Errno::ENOENT));
}

#[test]
fn hash_batches_report_count_and_bucket() {
    if !kernel::oracle_or_skip() {
        return;
    }
    let m = KernelMap::create(MapDef {
        map_flags: create::ZERO_SEED,
        ..def(MapType::Hash, 4, 4, 8)
    })
    .unwrap();
    let keys: Vec<u8> = (0..5u32).flat_map(k).collect();
    let vals: Vec<u8> = (100..105u32).flat_map(k).collect();
    let w = m.update_batch(&keys, &vals, 5, 0, 0);
    assert_eq!((w.result, w.count), (Ok(()), 5));
    // count 0 returns at once, untouched.
    let r = m.lookup_batch(None, 0, 0, 0);
    assert_eq!((r.result, r.count, r.out_batch), (Ok(()), 0, None));
    // Everything at once: ENOENT with count = 5 and out_batch = n_buckets.
    let r = m.lookup_batch(None, 8, 0, 0);
    assert_eq!((r.result, r.count), (Err(Errno::ENOENT), 5));
    assert_eq!(r.out_batch, Some(8u32.to_ne_bytes().to_vec()));
    let mut got: Vec<(u32, u32)> = (0..5)
        .map(|i| {
            let kk = u32::from_ne_bytes(r.keys[i * 4..i * 4 + 4].try_into().unwrap());
            let vv = u32::from_ne_bytes(r.values[i * 4..i * 4 + 4].try_into().unwrap());
            (kk, vv)
        })
        .collect();
    got.sort();
    assert_eq!(got, (0..5).map(|i| (i, i + 100)).collect::<Vec<_>>());
    // in_batch past the last bucket: ENOENT, count 0.
    let r = m.lookup_batch(Some(&9u32.to_ne_bytes()), 8, 0, 0);
    assert_eq!(
        (r.result, r.count, r.out_batch),
        (Err(Errno::ENOENT), 0, None)
    );
    // EXIST is not allowed in update batch elem_flags.
    let w = m.update_batch(&keys, &vals, 5, elem::EXIST, 0);
    assert_eq!(w.result, Err(Errno::EINVAL));
    let w = m.delete_batch(&keys, 5, 0, 0);
    assert_eq!((w.result, w.count), (Ok(()), 5));
    let w = m.delete_batch(&keys, 5, 0, 0);
    assert_eq!((w.result, w.count), (Err(Errno::ENOENT), 0));
}

#[test]
fn frozen_maps_refuse_host_writes() {
    if !kernel::oracle_or_skip() {
        return;
    }
    let m = KernelMap::create(def(MapType::Hash, 4, 4, 4)).unwrap();
    m.update(&k(1), &k(2), 0).unwrap();
    m.freeze().unwrap();
    assert_eq!(m.update(&k(1), &k(3), 0), Err(Errno::EPERM));
    assert_eq!(m.delete(&k(1)), Err(Errno::EPERM));
    assert_eq!(m.lookup(&k(1), 0).unwrap(), k(2));
}
