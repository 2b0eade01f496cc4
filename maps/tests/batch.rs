//! Batch commands (spec §6): generic array lookups, bucket-based hash lookups with their
//! exact count / in_batch / out_batch / ENOSPC / ENOENT semantics, generic update and delete.

mod common;
use bpfvm_maps::{jhash, Map, MapFlags, MapType};
use common::*;

fn bucket(key: u32, nb: u32) -> u32 {
    jhash::htab_map_hash(&k(key), 0) & (nb - 1)
}

fn u32_at(b: &[u8], i: usize) -> u32 {
    u32::from_ne_bytes(b[i * 4..i * 4 + 4].try_into().unwrap())
}

#[test]
fn generic_lookup_batch_walks_indices_and_sets_out_batch() {
    let m = map(MapType::PercpuArray, 8, 5, 2);
    for i in 0..5 {
        m.update(&k(i), &full(&[u64::from(i), 10 + u64::from(i)]), 0)
            .unwrap();
    }
    let (mut out, mut ks, mut vs) = ([0xEEu8; 4], [0u8; 5 * 4], [0u8; 5 * 16]);
    // count = 2 from the start: indices 0, 1, returns 0.
    let mut count = 2;
    m.lookup_batch(None, &mut out, &mut ks, &mut vs, &mut count, 0, 0xdead)
        .unwrap();
    assert_eq!(count, 2);
    assert_eq!(out, k(1));
    assert_eq!((u32_at(&ks, 0), u32_at(&ks, 1)), (0, 1));
    assert_eq!(u64s(&vs[..32]), [0, 10, 1, 11]);
    // Continue from out_batch with CPU=1 values: 2, 3, 4 then ENOENT with count 3.
    let mut count = 5;
    let inb = out;
    let r = m.lookup_batch(
        Some(&inb),
        &mut out,
        &mut ks,
        &mut vs,
        &mut count,
        MapFlags::cpu(1).bits(),
        0,
    );
    assert_eq!(errno(r), 2);
    assert_eq!(count, 3);
    assert_eq!(out, k(4));
    assert_eq!(u64s(&vs[..24]), [12, 13, 14]);
    // From the last key: nothing copied, ENOENT, out_batch untouched.
    let mut count = 5;
    out = [0xEE; 4];
    let r = m.lookup_batch(Some(&k(4)), &mut out, &mut ks, &mut vs, &mut count, 0, 0);
    assert_eq!(errno(r), 2);
    assert_eq!(count, 0);
    assert_eq!(out, [0xEE; 4]);
    // in_batch >= max_entries restarts at 0.
    let mut count = 1;
    m.lookup_batch(Some(&k(99)), &mut out, &mut ks, &mut vs, &mut count, 0, 0)
        .unwrap();
    assert_eq!((count, u32_at(&ks, 0)), (1, 0));
}

#[test]
fn generic_lookup_batch_with_count_max_entries_returns_everything() {
    for t in [MapType::Array, MapType::PercpuArray] {
        let m = map(t, 8, 4, 2);
        let vsz = m.host_value_size(0);
        let (mut out, mut ks, mut vs) = ([0u8; 4], vec![0u8; 16], vec![0u8; 4 * vsz]);
        let mut count = 4;
        m.lookup_batch(None, &mut out, &mut ks, &mut vs, &mut count, 0, 0)
            .unwrap();
        assert_eq!(count, 4);
        assert_eq!(out, k(3));
    }
}

#[test]
fn generic_batch_buffers_too_small_are_efault() {
    let m = map(MapType::Array, 8, 4, 2);
    let (mut out, mut ks, mut vs) = ([0u8; 4], vec![0u8; 15], vec![0u8; 32]);
    let mut count = 4;
    assert_eq!(
        errno(m.lookup_batch(None, &mut out, &mut ks, &mut vs, &mut count, 0, 0)),
        14
    );
}

/// Two keys sharing a bucket of a map with `nb` buckets, plus one key in another bucket.
fn same_bucket_keys(nb: u32) -> (u32, u32, u32) {
    let a = 1;
    let b = (2..10_000)
        .find(|&x| bucket(x, nb) == bucket(a, nb))
        .unwrap();
    let c = (2..10_000)
        .find(|&x| bucket(x, nb) != bucket(a, nb))
        .unwrap();
    (a, b, c)
}

#[test]
fn hash_batch_flags_and_bad_in_batch() {
    for t in HASH_TYPES {
        let m = map(t, 8, 4, 2);
        put(&m, 1, 1);
        let vsz = m.host_value_size(0);
        let (mut out, mut ks, mut vs) = ([0xEEu8; 4], vec![0u8; 16], vec![0u8; 4 * vsz]);
        let mut count = 4;
        assert_eq!(
            errno(m.lookup_batch(None, &mut out, &mut ks, &mut vs, &mut count, 0, 1)),
            22
        );
        assert_eq!(count, 4);
        // in_batch >= n_buckets: ENOENT, count 0, out_batch not written.
        let r = m.lookup_batch(
            Some(&4u32.to_ne_bytes()),
            &mut out,
            &mut ks,
            &mut vs,
            &mut count,
            0,
            0,
        );
        assert_eq!(errno(r), 2);
        assert_eq!(count, 0);
        assert_eq!(out, [0xEE; 4]);
        // count == 0 returns before in_batch is read.
        let mut count = 0;
        m.lookup_batch(
            Some(&99u32.to_ne_bytes()),
            &mut out,
            &mut ks,
            &mut vs,
            &mut count,
            0,
            0,
        )
        .unwrap();
    }
}

#[test]
fn hash_batch_enospc_partial_stop_and_end() {
    let nb = 4;
    let (a, b, c) = same_bucket_keys(nb);
    for t in HASH_TYPES {
        let m = map(t, 8, nb, 2);
        put(&m, a, 1);
        put(&m, b, 2);
        let vsz = m.host_value_size(0);
        let (mut out, mut ks, mut vs) = ([0xEEu8; 4], vec![0u8; 16], vec![0u8; 4 * vsz]);
        // First bucket with 2 elements, count 1: ENOSPC, count 0, out_batch = that bucket.
        let mut count = 1;
        let r = m.lookup_batch(None, &mut out, &mut ks, &mut vs, &mut count, 0, 0);
        assert_eq!(errno(r), 28, "{t:?}");
        assert_eq!(count, 0);
        assert_eq!(u32::from_ne_bytes(out), bucket(a, nb));
        // Room for exactly both: whole bucket, head first (b was linked last).
        put(&m, c, 3);
        let mut count = 3;
        let r = m.lookup_batch(None, &mut out, &mut ks, &mut vs, &mut count, 0, 0);
        assert_eq!(
            errno(r),
            2,
            "count = number of elements returns every element with ENOENT"
        );
        assert_eq!(count, 3);
        assert_eq!(
            u32::from_ne_bytes(out),
            nb,
            "out_batch = n_buckets at the end"
        );
        let got: Vec<u32> = (0..3).map(|i| u32_at(&ks, i)).collect();
        let pos = |x: u32| got.iter().position(|&g| g == x).unwrap();
        assert_eq!(pos(b) + 1, pos(a), "{t:?}: head first within a bucket");
        for i in 0..3 {
            let key = u32_at(&ks, i);
            let expect = [(a, 1u64), (b, 2), (c, 3)]
                .iter()
                .find(|p| p.0 == key)
                .unwrap()
                .1;
            assert_eq!(u64s(&vs[i * vsz..i * vsz + 8])[0], expect);
        }
        // Partial: count 2 and the buckets in order [.., {b,a}, ..] or [{c}, {b,a}].
        let mut count = 2;
        let r = m.lookup_batch(None, &mut out, &mut ks, &mut vs, &mut count, 0, 0);
        if bucket(c, nb) < bucket(a, nb) {
            // c's bucket fits, the next does not: stop with 0, out_batch = a's bucket.
            r.unwrap();
            assert_eq!(count, 1);
            assert_eq!(u32::from_ne_bytes(out), bucket(a, nb));
        } else {
            // {b, a} fits exactly, then {c} does not fit: stop with 0 at c's bucket.
            r.unwrap();
            assert_eq!(count, 2);
            assert_eq!(u32::from_ne_bytes(out), bucket(c, nb));
        }
    }
}

#[test]
fn hash_batch_walk_in_chunks_sees_every_element_once() {
    for t in HASH_TYPES {
        let m = map(t, 8, 64, 2);
        for i in 0..40 {
            put(&m, i, u64::from(i));
        }
        let vsz = m.host_value_size(0);
        let mut seen = Vec::new();
        let mut inb: Option<[u8; 4]> = None;
        loop {
            let (mut out, mut ks, mut vs) = ([0u8; 4], vec![0u8; 8 * 4], vec![0u8; 8 * vsz]);
            let mut count = 8;
            let r = m.lookup_batch(
                inb.as_ref().map(|b| &b[..]),
                &mut out,
                &mut ks,
                &mut vs,
                &mut count,
                0,
                0,
            );
            for i in 0..count as usize {
                seen.push(u32_at(&ks, i));
            }
            match r {
                Ok(()) => inb = Some(out),
                Err(e) => {
                    assert_eq!(e.errno(), 2, "{t:?}");
                    break;
                }
            }
        }
        assert_eq!(
            seen.iter().map(|&x| k(x).to_vec()).collect::<Vec<_>>(),
            keys(&m)
        );
        seen.sort();
        assert_eq!(seen, (0..40).collect::<Vec<_>>());
    }
}

#[test]
fn percpu_hash_batch_with_cpu_flag() {
    for t in [MapType::PercpuHash, MapType::LruPercpuHash] {
        let m = map(t, 8, 8, 2);
        for i in 0..4 {
            m.update(&k(i), &full(&[u64::from(i), 100 + u64::from(i)]), 0)
                .unwrap();
        }
        let (mut out, mut ks, mut vs) = ([0u8; 4], vec![0u8; 16], vec![0u8; 32]);
        let mut count = 4;
        let r = m.lookup_batch(
            None,
            &mut out,
            &mut ks,
            &mut vs,
            &mut count,
            MapFlags::cpu(1).bits(),
            0,
        );
        assert_eq!(errno(r), 2);
        assert_eq!(count, 4);
        for i in 0..4 {
            assert_eq!(
                u64s(&vs[i * 8..i * 8 + 8])[0],
                100 + u64::from(u32_at(&ks, i))
            );
        }
    }
}

#[test]
fn lookup_and_delete_batch_removes_what_it_returns() {
    for t in HASH_TYPES {
        let m = map(t, 8, 16, 2);
        for i in 0..10 {
            put(&m, i, u64::from(i) * 3);
        }
        let vsz = m.host_value_size(0);
        let (mut out, mut ks, mut vs) = ([0u8; 4], vec![0u8; 40], vec![0u8; 10 * vsz]);
        let mut count = 10;
        let r = m.lookup_and_delete_batch(None, &mut out, &mut ks, &mut vs, &mut count, 0, 0);
        assert_eq!(errno(r), 2);
        assert_eq!(count, 10);
        assert_eq!(m.element_count(), 0, "{t:?}");
        for i in 0..10 {
            let key = u32_at(&ks, i);
            let vals = u64s(&vs[i * vsz..(i + 1) * vsz]);
            assert!(
                vals.iter().all(|&v| v == u64::from(key) * 3),
                "{t:?}: {vals:?}"
            );
        }
        // The freed elements are usable again.
        for i in 0..10 {
            put(&m, 100 + i, 1);
        }
        assert_eq!(m.element_count(), 10);
    }
}

#[test]
fn lookup_and_delete_batch_short_buffer_loses_nothing() {
    let m = map(MapType::Hash, 8, 8, 2);
    put(&m, 1, 1);
    put(&m, 2, 2);
    let (mut out, mut ks, mut vs) = ([0u8; 4], vec![0u8; 8], vec![0u8; 8]);
    let mut count = 2;
    assert_eq!(
        errno(m.lookup_and_delete_batch(None, &mut out, &mut ks, &mut vs, &mut count, 0, 0)),
        14
    );
    assert_eq!(m.element_count(), 2);
}

#[test]
fn update_batch_stops_at_the_first_error() {
    let m = map(MapType::Hash, 8, 2, 2);
    let ks: Vec<u8> = [1u32, 2, 3].iter().flat_map(|x| x.to_ne_bytes()).collect();
    let vs: Vec<u8> = [1u64, 2, 3].iter().flat_map(|x| x.to_ne_bytes()).collect();
    let mut count = 3;
    assert_eq!(errno(m.update_batch(&ks, &vs, &mut count, 0, 0xffff)), 7);
    assert_eq!(count, 2);
    let m = map(MapType::PercpuArray, 8, 2, 2);
    let ks: Vec<u8> = [0u32, 5, 1].iter().flat_map(|x| x.to_ne_bytes()).collect();
    let vs = [0u8; 3 * 16];
    let mut count = 3;
    assert_eq!(errno(m.update_batch(&ks, &vs, &mut count, 0, 0)), 7);
    assert_eq!(count, 1);
    // A short values buffer faults at the element that does not fit.
    let mut count = 3;
    assert_eq!(
        errno(m.update_batch(&[0u8; 12], &[0u8; 20], &mut count, 0, 0)),
        14
    );
    assert_eq!(count, 1);
}

#[test]
fn delete_batch_stops_at_the_first_missing_key() {
    for t in HASH_TYPES {
        let m = map(t, 8, 8, 2);
        for i in 0..3 {
            put(&m, i, 0);
        }
        let ks: Vec<u8> = [0u32, 1, 7, 2]
            .iter()
            .flat_map(|x| x.to_ne_bytes())
            .collect();
        let mut count = 4;
        assert_eq!(errno(m.delete_batch(&ks, &mut count, 0, 0)), 2);
        assert_eq!(count, 2);
        assert_eq!(m.element_count(), 1);
    }
}

#[test]
fn batch_support_table() {
    let arr = map(MapType::Array, 8, 2, 2);
    let (mut out, mut ks, mut vs) = ([0u8; 4], [0u8; 8], [0u8; 16]);
    let mut count = 1;
    assert_eq!(
        errno(arr.lookup_and_delete_batch(None, &mut out, &mut ks, &mut vs, &mut count, 0, 0)),
        524
    );
    assert_eq!(errno(arr.delete_batch(&ks, &mut count, 0, 0)), 524);
    let cg = Map::create(
        bpfvm_maps::MapSpec::new(MapType::PercpuCgroupStorage, 8, 8, 0),
        2,
    )
    .unwrap();
    let mut count = 0;
    assert_eq!(
        errno(cg.lookup_batch(None, &mut out, &mut ks, &mut vs, &mut count, 0, 0)),
        524
    );
    assert_eq!(
        errno(cg.lookup_and_delete_batch(None, &mut out, &mut ks, &mut vs, &mut count, 0, 0)),
        524
    );
    assert_eq!(errno(cg.update_batch(&ks, &vs, &mut count, 0, 0)), 524);
    assert_eq!(errno(cg.delete_batch(&ks, &mut count, 0, 0)), 524);
    assert_eq!(count, 0);
}
