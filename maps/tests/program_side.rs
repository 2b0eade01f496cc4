//! Program-side entry points (spec §8): helper 1 pointers to the current CPU's copy,
//! helper 195, helper 2/3 behaviour, and pointer stability in the value arena.

mod common;
use std::sync::atomic::{AtomicU64, Ordering};

use bpfvm_maps::{CpuId, MapFlags, MapType};
use common::*;

fn cell(m: &bpfvm_maps::Map, p: std::ptr::NonNull<u8>) -> &AtomicU64 {
    assert!(m.arena().contains_slot_start(p));
    // SAFETY: `p` is the 8-byte aligned start of an 8-byte value in `m`'s arena, which lives
    // (unmoved) as long as `m`; arena bytes are only ever accessed atomically.
    unsafe { &*p.as_ptr().cast::<AtomicU64>() }
}

#[test]
fn helper_1_points_at_the_current_cpus_copy() {
    for t in PERCPU_TYPES {
        let m = map(t, 8, 4, 3);
        m.update(&k(2), &full(&[10, 11, 12]), 0).unwrap();
        let arena = m.arena();
        let mut offs = Vec::new();
        for c in 0..3u32 {
            let p = m.prog_lookup(CpuId(c), &k(2)).unwrap();
            assert_eq!(
                cell(&m, p).load(Ordering::Relaxed),
                10 + u64::from(c),
                "{t:?}"
            );
            let off = p.as_ptr() as usize - arena.base.as_ptr() as usize;
            offs.push(off);
            cell(&m, p).store(20 + u64::from(c), Ordering::Relaxed);
        }
        // Layout: one area per CPU, copies of one element a constant distance apart, with
        // at least 128 bytes between the areas (no shared cache line between CPUs).
        assert_eq!(
            offs[2] - offs[1],
            offs[1] - offs[0],
            "{t:?}: one span per CPU"
        );
        assert!(
            offs[1] - offs[0] >= 4 * arena.stride + 128,
            "{t:?}: {offs:?}"
        );
        let mut one = [0u8; 8];
        m.lookup(&k(2), &mut one, MapFlags::cpu(1).bits()).unwrap();
        assert_eq!(u64::from_ne_bytes(one), 21);
        assert!(m.prog_lookup(CpuId(3), &k(2)).is_none(), "cpu >= N");
        assert!(
            m.prog_lookup(CpuId(0), &k(9)).is_none(),
            "missing key / out of range"
        );
    }
}

#[test]
fn helper_1_on_shared_maps_returns_the_one_value() {
    for t in [MapType::Array, MapType::Hash, MapType::LruHash] {
        let m = map(t, 8, 4, 2);
        put(&m, 1, 77);
        let p0 = m.prog_lookup(CpuId(0), &k(1)).unwrap();
        let p1 = m.prog_lookup(CpuId(1), &k(1)).unwrap();
        assert_eq!(p0, p1);
        assert_eq!(cell(&m, p0).load(Ordering::Relaxed), 77);
    }
}

#[test]
fn helper_195_reads_another_cpu() {
    for t in PERCPU_TYPES {
        let m = map(t, 8, 4, 2);
        m.update(&k(0), &full(&[1, 2]), 0).unwrap();
        let p = m.prog_lookup_percpu(CpuId(0), &k(0), 1).unwrap();
        assert_eq!(cell(&m, p).load(Ordering::Relaxed), 2);
        assert!(
            m.prog_lookup_percpu(CpuId(0), &k(0), 2).is_none(),
            "cpu >= N: NULL"
        );
        assert!(m.prog_lookup_percpu(CpuId(0), &k(9), 0).is_none());
    }
    for t in [MapType::Array, MapType::Hash] {
        let m = map(t, 8, 4, 2);
        put(&m, 0, 1);
        assert!(
            m.prog_lookup_percpu(CpuId(0), &k(0), 0).is_none(),
            "verifier-restricted"
        );
    }
}

#[test]
fn prog_update_and_delete_basics() {
    let m = map(MapType::PercpuHash, 8, 4, 2);
    m.prog_update(CpuId(1), &k(3), &v64(5), 0).unwrap();
    let mut out = [0u8; 16];
    m.lookup(&k(3), &mut out, 0).unwrap();
    assert_eq!(u64s(&out), [0, 5]);
    assert_eq!(errno(m.prog_update(CpuId(2), &k(3), &v64(5), 0)), 34);
    assert_eq!(errno(m.prog_update(CpuId(0), &k(3), &[0u8; 7], 0)), 14);
    m.prog_delete(CpuId(0), &k(3)).unwrap();
    assert!(m.prog_lookup(CpuId(0), &k(3)).is_none());
}

#[test]
fn pointers_stay_valid_and_in_place_across_updates() {
    let m = map(MapType::PercpuHash, 8, 64, 2);
    put(&m, 1, 1);
    let p = m.prog_lookup(CpuId(0), &k(1)).unwrap();
    let base = m.arena().base;
    for i in 2..60 {
        put(&m, i, u64::from(i));
    }
    for round in 0..10 {
        put(&m, 1, round);
    }
    assert_eq!(m.arena().base, base);
    assert_eq!(
        m.prog_lookup(CpuId(0), &k(1)).unwrap(),
        p,
        "percpu hash updates in place"
    );
    assert_eq!(cell(&m, p).load(Ordering::Relaxed), 9);
}

#[test]
fn for_each_visits_in_order_with_the_current_cpus_copy_and_stops() {
    let m = map(MapType::PercpuArray, 8, 4, 2);
    for i in 0..4 {
        m.update(&k(i), &full(&[u64::from(i), 10 + u64::from(i)]), 0)
            .unwrap();
    }
    let mut seen = Vec::new();
    let n = m
        .prog_for_each(CpuId(1), &mut |key, p| {
            seen.push((
                u32::from_ne_bytes(key.try_into().unwrap()),
                cell(&m, p).load(Ordering::Relaxed),
            ));
            seen.len() == 3
        })
        .unwrap();
    assert_eq!(n, 3, "the stopping element counts");
    assert_eq!(seen, [(0, 10), (1, 11), (2, 12)]);
    // Hash: iteration order, and the callback may delete without deadlock.
    let h = map(MapType::LruPercpuHash, 8, 8, 2);
    for i in 0..5 {
        put(&h, i, u64::from(i));
    }
    let order = keys(&h);
    let mut seen = Vec::new();
    let n = h
        .prog_for_each(CpuId(0), &mut |key, _| {
            seen.push(key.to_vec());
            h.prog_delete(CpuId(0), key).unwrap();
            false
        })
        .unwrap();
    assert_eq!(n, 5);
    assert_eq!(seen, order);
    assert_eq!(h.element_count(), 0);
}
