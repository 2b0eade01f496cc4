//! Operation semantics per map type (spec §5): lookup, update, delete, GET_NEXT_KEY,
//! LOOKUP_AND_DELETE_ELEM and the hash iteration order.

mod common;
use bpfvm_maps::{flags::create as cf, jhash, CpuId, Map, MapFlags, MapSpec, MapType};
use common::*;

#[test]
fn array_lookup_out_of_range_is_enoent_and_elements_start_zero() {
    for t in [MapType::Array, MapType::PercpuArray] {
        let m = map(t, 8, 4, 2);
        let mut v = vec![0u8; m.host_value_size(0)];
        assert_eq!(errno(m.lookup(&k(4), &mut v, 0)), 2);
        v.fill(0xff);
        m.lookup(&k(3), &mut v, 0).unwrap();
        assert!(v.iter().all(|&b| b == 0));
    }
}

#[test]
fn percpu_array_lookup_with_cpu() {
    let m = map(MapType::PercpuArray, 8, 4, 3);
    m.update(&k(2), &full(&[1, 2, 3]), 0).unwrap();
    for c in 0..3 {
        let mut one = [0u8; 8];
        m.lookup(&k(2), &mut one, MapFlags::cpu(c).bits()).unwrap();
        assert_eq!(u64::from_ne_bytes(one), u64::from(c) + 1);
    }
    assert_eq!(
        errno(m.lookup(&k(9), &mut [0u8; 8], MapFlags::cpu(0).bits())),
        2
    );
}

#[test]
fn hash_lookup_missing_is_enoent_and_does_not_set_lru_reference() {
    for t in HASH_TYPES {
        let m = map(t, 8, 4, 2);
        let mut v = vbuf(&m);
        assert_eq!(errno(m.lookup(&k(1), &mut v, 0)), 2);
        put(&m, 1, 9);
        m.lookup(&k(1), &mut v, 0).unwrap();
        assert_eq!(u64s(&v)[0], 9);
    }
}

#[test]
fn array_update_any_and_exist_overwrite() {
    let m = map(MapType::Array, 8, 4, 2);
    m.update(&k(1), &v64(1), 0).unwrap();
    m.update(&k(1), &v64(2), 2).unwrap();
    let mut out = [0u8; 8];
    m.lookup(&k(1), &mut out, 0).unwrap();
    assert_eq!(u64::from_ne_bytes(out), 2);
}

#[test]
fn hash_full_is_e2big_with_and_without_prealloc_and_replace_still_works() {
    for t in [MapType::Hash, MapType::PercpuHash] {
        for flags in [0, cf::NO_PREALLOC] {
            let m = map_flags(t, 8, 3, flags, 2);
            for i in 0..3 {
                put(&m, i, u64::from(i));
            }
            let v = vbuf(&m);
            assert_eq!(errno(m.update(&k(3), &v, 0)), 7, "{t:?} {flags}");
            // Replacing an existing key never fails for lack of space.
            for round in 0..10 {
                put(&m, 1, 100 + round);
            }
            let mut out = vbuf(&m);
            m.lookup(&k(1), &mut out, 0).unwrap();
            assert_eq!(u64s(&out)[0], 109);
            // Delete frees a slot for a new key.
            m.delete(&k(0), 0).unwrap();
            put(&m, 3, 3);
            assert_eq!(m.element_count(), 3);
        }
    }
}

#[test]
fn lru_update_never_e2big() {
    for t in [MapType::LruHash, MapType::LruPercpuHash] {
        let m = map(t, 8, 8, 2);
        for i in 0..200 {
            put(&m, i, u64::from(i));
            assert!(m.element_count() <= 8);
        }
    }
}

#[test]
fn percpu_update_writes_table() {
    for t in [
        MapType::PercpuHash,
        MapType::LruPercpuHash,
        MapType::PercpuArray,
    ] {
        let m = map(t, 8, 4, 3);
        let read = |key: u32| {
            let mut out = [0u8; 24];
            m.lookup(&k(key), &mut out, 0).unwrap();
            u64s(&out)
        };
        // Host, no cpu flag: every CPU from its slot.
        m.update(&k(0), &full(&[1, 2, 3]), 0).unwrap();
        assert_eq!(read(0), [1, 2, 3]);
        // Host, ALL_CPUS: same value everywhere.
        m.update(&k(0), &v64(7), MapFlags::ALL_CPUS.bits()).unwrap();
        assert_eq!(read(0), [7, 7, 7]);
        // Host, CPU=c on an existing element: only c.
        m.update(&k(0), &v64(8), MapFlags::cpu(1).bits()).unwrap();
        assert_eq!(read(0), [7, 8, 7]);
        // Program side on an existing element: only the current CPU.
        m.prog_update(CpuId(2), &k(0), &v64(9), 0).unwrap();
        assert_eq!(read(0), [7, 8, 9]);
        if t.is_hash() {
            // New element from the host with CPU=c: the other CPUs are zero (U3), even when
            // the node held stale bytes of a deleted element.
            m.delete(&k(0), 0).unwrap();
            m.update(&k(0), &v64(5), MapFlags::cpu(2).bits()).unwrap();
            assert_eq!(read(0), [0, 0, 5]);
            // New element from a program: current CPU gets the value, the others zero.
            m.update(&k(1), &full(&[4, 4, 4]), 0).unwrap();
            m.delete(&k(1), 0).unwrap();
            m.prog_update(CpuId(1), &k(1), &v64(6), 0).unwrap();
            assert_eq!(read(1), [0, 6, 0]);
        }
    }
}

#[test]
fn delete_table() {
    for t in [MapType::Array, MapType::PercpuArray] {
        let m = map(t, 8, 4, 2);
        assert_eq!(errno(m.delete(&k(0), 0)), 22);
        assert_eq!(errno(m.prog_delete(CpuId(0), &k(0))), 22);
    }
    for t in HASH_TYPES {
        let m = map(t, 8, 4, 2);
        assert_eq!(errno(m.delete(&k(0), 0)), 2);
        put(&m, 0, 1);
        m.delete(&k(0), 0).unwrap();
        assert_eq!(errno(m.lookup(&k(0), &mut vbuf(&m), 0)), 2);
        put(&m, 0, 1);
        m.prog_delete(CpuId(1), &k(0)).unwrap();
        assert_eq!(errno(m.prog_delete(CpuId(1), &k(0))), 2);
    }
}

#[test]
fn array_get_next_key_table() {
    let m = map(MapType::PercpuArray, 8, 3, 2);
    let mut next = [0u8; 4];
    m.get_next_key(None, &mut next, 0).unwrap();
    assert_eq!(next, k(0));
    m.get_next_key(Some(&k(77)), &mut next, 0).unwrap();
    assert_eq!(next, k(0), "index >= max_entries restarts at 0");
    m.get_next_key(Some(&k(0)), &mut next, 0).unwrap();
    assert_eq!(next, k(1));
    assert_eq!(errno(m.get_next_key(Some(&k(2)), &mut next, 0)), 2);
    assert_eq!(keys(&m), [k(0).to_vec(), k(1).to_vec(), k(2).to_vec()]);
}

/// The bucket order a ZERO_SEED kernel map would show: buckets ascending, newest first.
fn expected_order(inserted: &[u32], max_entries: u32) -> Vec<Vec<u8>> {
    let nb = max_entries.next_power_of_two();
    let mut out = Vec::new();
    for b in 0..nb {
        for &key in inserted.iter().rev() {
            if jhash::htab_map_hash(&k(key), 0) & (nb - 1) == b {
                out.push(k(key).to_vec());
            }
        }
    }
    out
}

#[test]
fn hash_iteration_is_bucket_order_head_first_with_jhash_seed_0() {
    for t in HASH_TYPES {
        let m = map(t, 8, 12, 2);
        let inserted: Vec<u32> = vec![5, 17, 3, 99, 1000, 42, 7, 8, 64, 12];
        for &i in &inserted {
            put(&m, i, u64::from(i));
        }
        assert_eq!(keys(&m), expected_order(&inserted, 12), "{t:?}");
    }
}

#[test]
fn hash_get_next_key_missing_key_restarts_and_end_is_enoent() {
    for t in HASH_TYPES {
        let m = map(t, 8, 8, 2);
        let mut next = [0u8; 4];
        assert_eq!(errno(m.get_next_key(None, &mut next, 0)), 2, "empty map");
        assert_eq!(errno(m.get_next_key(Some(&k(1)), &mut next, 0)), 2);
        for i in 0..5 {
            put(&m, i, 0);
        }
        let order = keys(&m);
        m.get_next_key(Some(&k(12345)), &mut next, 0).unwrap();
        assert_eq!(next.to_vec(), order[0], "key not found: the first element");
        let last = order.last().unwrap();
        assert_eq!(errno(m.get_next_key(Some(last), &mut next, 0)), 2);
    }
}

#[test]
fn replacing_a_hash_key_moves_it_to_the_head_percpu_keeps_its_place() {
    // Find two keys in the same bucket.
    let nb = 4u32;
    let b0 = |key: u32| jhash::htab_map_hash(&k(key), 0) & (nb - 1);
    let a = 0u32;
    let b = (1..1000).find(|&x| b0(x) == b0(a)).unwrap();
    for t in HASH_TYPES {
        let m = map(t, 8, nb, 2);
        put(&m, a, 1);
        put(&m, b, 2);
        assert_eq!(keys(&m), [k(b).to_vec(), k(a).to_vec()]);
        put(&m, a, 3);
        let expect = if t.is_percpu() {
            [k(b).to_vec(), k(a).to_vec()]
        } else {
            [k(a).to_vec(), k(b).to_vec()]
        };
        assert_eq!(keys(&m), expect, "{t:?}");
    }
}

#[test]
fn lookup_and_delete_table() {
    for t in [MapType::Hash, MapType::LruHash] {
        let m = map(t, 8, 4, 2);
        assert_eq!(errno(m.lookup_and_delete(&k(1), &mut [0; 8], 0)), 2);
        put(&m, 1, 11);
        let mut out = [0u8; 8];
        m.lookup_and_delete(&k(1), &mut out, 0).unwrap();
        assert_eq!(u64::from_ne_bytes(out), 11);
        assert_eq!(m.element_count(), 0);
    }
    for t in [MapType::Array, MapType::PercpuArray] {
        let m = map(t, 8, 4, 2);
        assert_eq!(errno(m.lookup_and_delete(&k(1), &mut [0; 16], 0)), 524);
    }
    let m = Map::create(MapSpec::new(MapType::PercpuCgroupStorage, 8, 8, 0), 2).unwrap();
    assert_eq!(errno(m.lookup_and_delete(&[0; 8], &mut [0; 16], 0)), 524);
}

#[test]
fn deleted_elements_are_reused() {
    let m = map(MapType::PercpuHash, 8, 2, 2);
    put(&m, 1, 1);
    let p1 = m.prog_lookup(CpuId(0), &k(1)).unwrap();
    m.delete(&k(1), 0).unwrap();
    put(&m, 2, 2);
    let p2 = m.prog_lookup(CpuId(0), &k(2)).unwrap();
    assert_eq!(
        p1, p2,
        "the freed node is reused first (LIFO, like the kernel's freelist)"
    );
    assert!(m.arena().contains_slot_start(p2));
}

#[test]
fn short_keys_are_efault_and_long_buffers_use_the_prefix() {
    for t in ALL_TYPES {
        let m = map(t, 8, 4, 2);
        let v = vbuf(&m);
        assert_eq!(errno(m.update(&[0u8; 3], &v, 0)), 14);
        let mut long_key = k(1).to_vec();
        long_key.extend_from_slice(&[9, 9]);
        let mut long_val = v.clone();
        long_val.extend_from_slice(&[1; 5]);
        m.update(&long_key, &long_val, 0).unwrap();
        let mut out = vec![0u8; v.len() + 3];
        m.lookup(&k(1), &mut out, 0).unwrap();
    }
}
