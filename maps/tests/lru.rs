//! LRU maps (spec §7): the verified eviction numbers of Linux 6.18, the update path,
//! per-CPU LRU lists, reference bits, and the §7.7 invariants.

mod common;
use bpfvm_maps::{flags::create as cf, CpuId, Map, MapFlags, MapType};
use common::*;

const LRU_TYPES: [MapType; 2] = [MapType::LruHash, MapType::LruPercpuHash];

/// Insert a new key from the host on `cpu`; returns how many elements were evicted.
fn insert(m: &Map, cpu: u32, key: u32) -> u32 {
    m.set_host_cpu(CpuId(cpu)).unwrap();
    let before = m.element_count();
    put(m, key, u64::from(key));
    before + 1 - m.element_count()
}

fn present(m: &Map, key: u32) -> bool {
    m.lookup(&k(key), &mut vbuf(m), 0).is_ok()
}

#[test]
fn fifty_inserts_into_sixteen_leave_fourteen() {
    for t in LRU_TYPES {
        for cpu in [0, 1] {
            let m = map(t, 8, 16, 2);
            let mut evictions = Vec::new();
            for i in 1..=50 {
                let ev = insert(&m, cpu, i);
                if ev > 0 {
                    evictions.push((i, ev));
                }
            }
            assert_eq!(m.element_count(), 14, "{t:?} cpu {cpu}");
            let expect: Vec<(u32, u32)> = (17..=49).step_by(4).map(|i| (i, 4)).collect();
            assert_eq!(evictions, expect, "{t:?} cpu {cpu}");
        }
    }
}

#[test]
fn first_eviction_sizes_scale_with_target_free() {
    for t in LRU_TYPES {
        for (max, expect) in [
            (2u32, 1u32),
            (4, 1),
            (8, 2),
            (16, 4),
            (64, 16),
            (512, 128),
            (1024, 128),
        ] {
            let m = map(t, 8, max, 2);
            let mut first = None;
            for i in 0..=max {
                let ev = insert(&m, 0, i);
                if ev > 0 {
                    first = Some(ev);
                    break;
                }
            }
            assert_eq!(first, Some(expect), "{t:?} max_entries {max}");
        }
    }
}

#[test]
fn nodes_parked_on_another_cpu_are_not_reachable() {
    for t in LRU_TYPES {
        let m = map(t, 8, 16, 2);
        assert_eq!(insert(&m, 1, 1000), 0);
        let mut i = 0;
        loop {
            let before = m.element_count();
            if insert(&m, 0, i) > 0 {
                assert_eq!(before, 13, "{t:?}: eviction starts at 13 elements");
                break;
            }
            i += 1;
        }
    }
}

#[test]
fn all_referenced_then_one_insert_evicts_exactly_one() {
    let m = map(MapType::LruPercpuHash, 8, 16, 2);
    for i in 0..16 {
        insert(&m, 0, i);
    }
    for i in 0..16 {
        m.update(&k(i), &full(&[1, 1]), 2).unwrap();
    }
    assert_eq!(
        m.element_count(),
        16,
        "EXIST updates of a percpu LRU take no node"
    );
    assert_eq!(insert(&m, 0, 100), 1);
}

fn sixteen(t: MapType) -> Map {
    let m = map(t, 8, 16, 2);
    for i in 1..=16 {
        insert(&m, 0, i);
    }
    m
}

#[test]
fn noexist_on_existing_key_takes_and_returns_a_node() {
    for t in LRU_TYPES {
        let m = sixteen(t);
        assert_eq!(errno(m.update(&k(16), &vbuf(&m), 1)), 17);
        assert_eq!(
            m.element_count(),
            12,
            "{t:?}: four victims were evicted to get a node"
        );
        for i in 100..104 {
            assert_eq!(
                insert(&m, 0, i),
                0,
                "{t:?}: the node is back on the free list"
            );
        }
    }
}

#[test]
fn exist_update_of_the_oldest_key() {
    let m = sixteen(MapType::LruHash);
    assert_eq!(
        errno(m.update(&k(1), &v64(5), 2)),
        2,
        "the key was among the victims"
    );
    let m = sixteen(MapType::LruPercpuHash);
    m.update(&k(1), &full(&[5, 5]), 2).unwrap();
    assert_eq!(m.element_count(), 16, "no node taken, nothing evicted");
}

#[test]
fn any_update_of_the_oldest_key_leaves_thirteen() {
    for t in LRU_TYPES {
        let m = sixteen(t);
        m.update(&k(1), &vbuf(&m), 0).unwrap();
        assert_eq!(m.element_count(), 13, "{t:?}");
        assert!(present(&m, 1));
    }
}

#[test]
fn no_common_lru_each_cpu_owns_its_nodes() {
    let m = map_flags(MapType::LruHash, 8, 16, cf::NO_COMMON_LRU, 2);
    for i in 0..8 {
        assert_eq!(insert(&m, 0, i), 0);
    }
    assert_eq!(insert(&m, 0, 8), 4, "the 9th insert evicts 4");
    assert_eq!(m.element_count(), 5);
    for i in 9..50 {
        insert(&m, 0, i);
    }
    assert_eq!(m.element_count(), 6, "50 inserts leave 6");
    let cpu0: Vec<u32> = (0..50).filter(|&i| present(&m, i)).collect();
    for i in 0..8 {
        assert_eq!(insert(&m, 1, 1000 + i), 0, "CPU 1 holds 8 more");
    }
    assert!(
        cpu0.iter().all(|&i| present(&m, i)),
        "nothing of CPU 0 evicted"
    );
    // A CPU-0 key deleted from CPU 1 frees a node that CPU 1 cannot use.
    m.set_host_cpu(CpuId(1)).unwrap();
    m.delete(&k(cpu0[0]), 0).unwrap();
    assert!(insert(&m, 1, 2000) > 0, "CPU 1 still has to evict");
}

#[test]
fn program_lookup_sets_the_reference_bit_host_lookup_does_not() {
    for t in LRU_TYPES {
        // Program-side lookup of the oldest key keeps it past the first eviction.
        let m = sixteen(t);
        assert!(m.prog_lookup(CpuId(0), &k(1)).is_some());
        assert_eq!(insert(&m, 0, 100), 4);
        assert!(present(&m, 1), "{t:?}: referenced element survives");
        assert!(!present(&m, 2));
        // Host-side lookups (single and batch) do not.
        let m = sixteen(t);
        m.lookup(&k(1), &mut vbuf(&m), 0).unwrap();
        let vsz = m.host_value_size(0);
        let (mut out, mut ks, mut vs) = ([0u8; 4], vec![0u8; 64], vec![0u8; 16 * vsz]);
        let mut count = 16;
        let _ = m.lookup_batch(None, &mut out, &mut ks, &mut vs, &mut count, 0, 0);
        assert_eq!(insert(&m, 0, 100), 4);
        assert!(!present(&m, 1), "{t:?}: host lookups leave it unreferenced");
        // Helper 195 sets it too.
        if t == MapType::LruPercpuHash {
            let m = sixteen(t);
            assert!(m.prog_lookup_percpu(CpuId(0), &k(1), 1).is_some());
            insert(&m, 0, 100);
            assert!(present(&m, 1));
        }
    }
}

/// Insert fresh keys until `a` or `b` is evicted; returns the one evicted first (None when
/// both went in the same eviction).
fn first_gone(m: &Map, a: u32, b: u32) -> Option<u32> {
    for i in 0..1000 {
        insert(m, 0, 10_000 + i);
        match (present(m, a), present(m, b)) {
            (true, true) => continue,
            (false, true) => return Some(a),
            (true, false) => return Some(b),
            (false, false) => return None,
        }
    }
    panic!("nothing evicted");
}

#[test]
fn updating_an_existing_key_sets_the_reference_bit() {
    for t in LRU_TYPES {
        let m = map(t, 8, 16, 2);
        for i in 1..=12 {
            insert(&m, 0, i);
        }
        m.update(&k(5), &vbuf(&m), 0).unwrap();
        insert(&m, 0, 13);
        assert_eq!(
            first_gone(&m, 5, 13),
            Some(13),
            "{t:?}: the updated key outlives the next insert"
        );
        // A delete and re-insert does not set it.
        let m = map(t, 8, 16, 2);
        for i in 1..=12 {
            insert(&m, 0, i);
        }
        m.delete(&k(5), 0).unwrap();
        insert(&m, 0, 5);
        insert(&m, 0, 13);
        assert_ne!(
            first_gone(&m, 5, 13),
            Some(13),
            "{t:?}: the re-inserted key does not outlive it"
        );
    }
}

#[test]
fn invariants_hold_under_random_operations() {
    for t in LRU_TYPES {
        for flags in [0, cf::NO_COMMON_LRU] {
            for max in [2u32, 7, 16, 33] {
                let m = map_flags(t, 8, max, flags, 3);
                let mut seed = 0x1234_5678u64 ^ u64::from(max);
                let mut rnd = |n: u64| {
                    seed = seed
                        .wrapping_mul(6364136223846793005)
                        .wrapping_add(1442695040888963407);
                    (seed >> 33) % n
                };
                for _ in 0..3000 {
                    let key = rnd(3 * u64::from(max)) as u32;
                    let cpu = rnd(3) as u32;
                    m.set_host_cpu(CpuId(cpu)).unwrap();
                    let v = vbuf(&m);
                    match rnd(10) {
                        0..=5 => {
                            let f = [0u64, 1, 2, MapFlags::cpu(cpu).bits()][rnd(4) as usize];
                            let f = if t == MapType::LruHash && f > 2 { 0 } else { f };
                            let vv = if f > 2 { &v[..8] } else { &v[..] };
                            let vv = if t == MapType::LruHash { &vv[..8] } else { vv };
                            if let Err(e) = m.update(&k(key), vv, f) {
                                assert!(matches!(e.errno(), 17 | 2), "{t:?}: {e}");
                            }
                        }
                        6 => {
                            let _ = m.delete(&k(key), 0);
                        }
                        7 => {
                            let _ = m.prog_lookup(CpuId(cpu), &k(key));
                        }
                        8 => {
                            let _ = m.prog_update(CpuId(cpu), &k(key), &v[..8], rnd(3));
                        }
                        _ => {
                            let _ = m.lookup(&k(key), &mut vbuf(&m), 0);
                        }
                    }
                    assert!(m.element_count() <= m.max_entries(), "{t:?}");
                }
                assert_eq!(keys(&m).len() as u32, m.element_count());
            }
        }
    }
}

#[test]
fn a_cpu_with_nothing_reachable_steals_a_pending_element() {
    // N = 4, max_entries 3: target_free = 1. CPUs 0..2 each hold one pending element and the
    // global lists are empty, so CPU 3 steals round-robin starting at itself: CPU 0's element.
    for t in LRU_TYPES {
        let m = map(t, 8, 3, 4);
        for cpu in 0..3 {
            assert_eq!(insert(&m, cpu, 100 + cpu), 0);
        }
        assert_eq!(insert(&m, 3, 200), 1, "{t:?}");
        assert!(!present(&m, 100));
        assert!(present(&m, 101) && present(&m, 102) && present(&m, 200));
        // Next time CPU 3's own pending element is flushed to the global inactive list and
        // is the first victim reachable without stealing.
        assert_eq!(insert(&m, 3, 201), 1);
        assert!(!present(&m, 200), "{t:?}");
        assert!(present(&m, 101) && present(&m, 102));
    }
}
