//! The kernel selftest scenarios for BPF_F_CPU / BPF_F_ALL_CPUS on every per-CPU map type:
//! ALL_CPUS update then per-CPU reads, per-CPU updates, cpu = N, ALL_CPUS on lookups, cpu
//! flags on other maps, and batch operations with count = max_entries.

mod common;
use bpfvm_maps::{CgroupStorageKey, Map, MapFlags, MapSpec, MapType};
use common::*;

const N: u32 = 4;
const MAX: u32 = 8;

fn percpu_maps() -> Vec<(Map, Vec<Vec<u8>>)> {
    let mut out = Vec::new();
    for t in PERCPU_TYPES {
        let m = map(t, 8, MAX, N);
        let keys = (0..MAX).map(|i| k(i).to_vec()).collect();
        out.push((m, keys));
    }
    let cg = Map::create(MapSpec::new(MapType::PercpuCgroupStorage, 16, 8, 0), N).unwrap();
    let key = cg.attach(42, 3).unwrap();
    out.push((cg, vec![CgroupStorageKey::to_bytes(&key, 16)]));
    out
}

#[test]
fn all_cpus_update_then_read_each_cpu() {
    for (m, keys) in percpu_maps() {
        for (i, key) in keys.iter().enumerate() {
            m.update(key, &v64(0xabc + i as u64), MapFlags::ALL_CPUS.bits())
                .unwrap();
            for c in 0..N {
                let mut one = [0u8; 8];
                m.lookup(key, &mut one, MapFlags::cpu(c).bits()).unwrap();
                assert_eq!(
                    u64::from_ne_bytes(one),
                    0xabc + i as u64,
                    "{:?} cpu {c}",
                    m.map_type()
                );
            }
        }
    }
}

#[test]
fn cpu_updates_then_full_read() {
    for (m, keys) in percpu_maps() {
        let key = &keys[0];
        for c in 0..N {
            m.update(key, &v64(u64::from(c) * 3), MapFlags::cpu(c).bits())
                .unwrap();
        }
        let mut all = vec![0u8; 8 * N as usize];
        m.lookup(key, &mut all, 0).unwrap();
        assert_eq!(u64s(&all), [0, 3, 6, 9]);
    }
}

#[test]
fn cpu_n_is_erange_and_all_cpus_lookup_is_einval() {
    for (m, keys) in percpu_maps() {
        let key = &keys[0];
        let mut one = [0u8; 8];
        assert_eq!(errno(m.update(key, &v64(1), MapFlags::cpu(N).bits())), 34);
        assert_eq!(errno(m.lookup(key, &mut one, MapFlags::cpu(N).bits())), 34);
        assert_eq!(
            errno(m.lookup(key, &mut one, MapFlags::cpu(u32::MAX).bits())),
            34
        );
        assert_eq!(
            errno(m.lookup(key, &mut one, MapFlags::ALL_CPUS.bits())),
            22
        );
        assert_eq!(
            errno(m.update(key, &v64(1), (MapFlags::cpu(0) | MapFlags::ALL_CPUS).bits())),
            22
        );
        assert_eq!(
            errno(m.update(key, &v64(1), (MapFlags::cpu(0) | MapFlags::LOCK).bits())),
            22
        );
    }
}

#[test]
fn cpu_flags_on_non_percpu_maps_are_einval() {
    for t in [MapType::Array, MapType::Hash, MapType::LruHash] {
        let m = map(t, 8, MAX, N);
        put(&m, 0, 1);
        let mut one = [0u8; 8];
        assert_eq!(errno(m.update(&k(0), &v64(1), MapFlags::cpu(0).bits())), 22);
        assert_eq!(
            errno(m.update(&k(0), &v64(1), MapFlags::ALL_CPUS.bits())),
            22
        );
        assert_eq!(
            errno(m.lookup(&k(0), &mut one, MapFlags::cpu(0).bits())),
            22
        );
        let mut count = 1;
        assert_eq!(
            errno(m.update_batch(&k(0), &v64(1), &mut count, MapFlags::ALL_CPUS.bits(), 0)),
            22
        );
    }
    let cg = Map::create(MapSpec::new(MapType::CgroupStorage, 16, 8, 0), N).unwrap();
    let key = cg.attach(1, 1).unwrap().to_bytes(16);
    assert_eq!(errno(cg.update(&key, &v64(1), MapFlags::cpu(0).bits())), 22);
}

#[test]
fn batch_update_all_cpus_and_batch_lookup_each_cpu_with_count_max_entries() {
    for t in PERCPU_TYPES {
        let m = map(t, 8, MAX, N);
        let keys: Vec<u8> = (0..MAX).flat_map(|i| i.to_ne_bytes()).collect();
        let vals: Vec<u8> = (0..MAX)
            .flat_map(|i| (1000 + u64::from(i)).to_ne_bytes())
            .collect();
        let mut count = MAX;
        m.update_batch(&keys, &vals, &mut count, MapFlags::ALL_CPUS.bits(), 0)
            .unwrap();
        assert_eq!(count, MAX);
        for c in 0..N {
            let (mut out, mut ks, mut vs) = (
                [0u8; 4],
                vec![0u8; 4 * MAX as usize],
                vec![0u8; 8 * MAX as usize],
            );
            let mut count = MAX;
            let r = m.lookup_batch(
                None,
                &mut out,
                &mut ks,
                &mut vs,
                &mut count,
                MapFlags::cpu(c).bits(),
                0,
            );
            // Arrays end exactly at count (0); hash maps report the end (ENOENT).
            match t {
                MapType::PercpuArray => r.unwrap(),
                _ => assert_eq!(errno(r), 2),
            }
            assert_eq!(count, MAX, "{t:?}");
            for i in 0..MAX as usize {
                let key = u32::from_ne_bytes(ks[i * 4..i * 4 + 4].try_into().unwrap());
                assert_eq!(u64s(&vs[i * 8..i * 8 + 8])[0], 1000 + u64::from(key));
            }
        }
        // Per-CPU batch update with CPU=c touches only that CPU.
        let vals: Vec<u8> = (0..MAX).flat_map(|_| 5u64.to_ne_bytes()).collect();
        let mut count = MAX;
        m.update_batch(&keys, &vals, &mut count, MapFlags::cpu(2).bits(), 0)
            .unwrap();
        let mut all = vec![0u8; 8 * N as usize];
        m.lookup(&k(3), &mut all, 0).unwrap();
        if t.is_lru() {
            // A full LRU map takes a node even for an in-place update (spec §7.2), which can
            // evict the key itself; it is then re-created with the other CPUs zeroed (U3).
            let v = u64s(&all);
            assert!(v == [1003, 1003, 5, 1003] || v == [0, 0, 5, 0], "{v:?}");
        } else {
            assert_eq!(u64s(&all), [1003, 1003, 5, 1003]);
        }
        // Full-buffer batch lookup with count = max_entries.
        let (mut out, mut ks, mut vs) = (
            [0u8; 4],
            vec![0u8; 4 * MAX as usize],
            vec![0u8; 32 * MAX as usize],
        );
        let mut count = MAX;
        let _ = m.lookup_batch(None, &mut out, &mut ks, &mut vs, &mut count, 0, 0);
        assert_eq!(count, m.element_count());
        // ERANGE on batches too.
        let mut count = MAX;
        let r = m.lookup_batch(
            None,
            &mut out,
            &mut ks,
            &mut vs,
            &mut count,
            MapFlags::cpu(N).bits(),
            0,
        );
        assert_eq!(errno(r), 34);
        assert_eq!(count, MAX);
    }
}
