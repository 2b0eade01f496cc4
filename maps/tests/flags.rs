//! Host-side flag validation (spec §2): check order, allowed masks per command, and errno.

mod common;
use bpfvm_maps::{flags::create, Map, MapFlags, MapSpec, MapType};
use common::*;

const HIGH: u64 = 1 << 32;

#[test]
fn unknown_low_bits_on_lookup_are_einval() {
    for t in ALL_TYPES {
        let m = map(t, 8, 4, 2);
        put(&m, 1, 5);
        let mut v = vbuf(&m);
        for f in [1u64, 2, 32, 1 << 31] {
            assert_eq!(errno(m.lookup(&k(1), &mut v, f)), 22, "{t:?} flags {f}");
        }
    }
}

#[test]
fn all_cpus_on_lookup_is_einval() {
    for t in PERCPU_TYPES {
        let m = map(t, 8, 4, 2);
        put(&m, 0, 5);
        let mut v = vbuf(&m);
        assert_eq!(
            errno(m.lookup(&k(0), &mut v, MapFlags::ALL_CPUS.bits())),
            22
        );
    }
}

#[test]
fn lock_is_einval_on_every_map_and_with_cpu_flags() {
    for t in ALL_TYPES {
        let m = map(t, 8, 4, 2);
        put(&m, 1, 5);
        let mut v = vbuf(&m);
        assert_eq!(errno(m.lookup(&k(1), &mut v, 4)), 22, "{t:?}");
        assert_eq!(errno(m.update(&k(1), &v.clone(), 4)), 22, "{t:?}");
        if t.is_percpu() {
            assert_eq!(
                errno(m.lookup(&k(1), &mut v, 4 | MapFlags::cpu(0).bits())),
                22
            );
            assert_eq!(
                errno(m.update(&k(1), &v.clone(), 4 | MapFlags::ALL_CPUS.bits())),
                22
            );
        }
    }
}

#[test]
fn high_bits_without_cpu_flag_are_einval_on_every_type_and_command() {
    for t in ALL_TYPES {
        let m = map(t, 8, 4, 2);
        put(&m, 1, 5);
        let mut v = vbuf(&m);
        let f = 3 * HIGH;
        assert_eq!(errno(m.lookup(&k(1), &mut v, f)), 22, "{t:?} lookup");
        assert_eq!(errno(m.update(&k(1), &v.clone(), f)), 22, "{t:?} update");
        assert_eq!(errno(m.delete(&k(1), f)), 22, "{t:?} delete");
        assert_eq!(
            errno(m.get_next_key(None, &mut [0; 4], f)),
            22,
            "{t:?} next"
        );
        assert_eq!(
            errno(m.lookup_and_delete(&k(1), &mut v, f)),
            22,
            "{t:?} lookup_and_delete"
        );
        let (mut out, mut ks, mut vs) = ([0u8; 4], vec![0u8; 64], vec![0u8; 256]);
        let mut count = 2;
        assert_eq!(
            errno(m.lookup_batch(None, &mut out, &mut ks, &mut vs, &mut count, f, 0)),
            22,
            "{t:?}"
        );
        assert_eq!(count, 2, "count untouched on a flag error");
        assert_eq!(
            errno(m.update_batch(&ks, &vs, &mut count, f, 0)),
            22,
            "{t:?}"
        );
        assert_eq!(count, 2);
        if t.is_hash() {
            assert_eq!(errno(m.delete_batch(&ks, &mut count, f, 0)), 22);
            assert_eq!(
                errno(
                    m.lookup_and_delete_batch(None, &mut out, &mut ks, &mut vs, &mut count, f, 0)
                ),
                22
            );
            assert_eq!(count, 2);
        }
    }
}

#[test]
fn cpu_flags_on_maps_that_are_not_percpu_are_einval() {
    for t in [MapType::Array, MapType::Hash, MapType::LruHash] {
        let m = map(t, 8, 4, 2);
        put(&m, 1, 5);
        let mut v = vbuf(&m);
        for f in [
            MapFlags::cpu(0),
            MapFlags::cpu(1),
            MapFlags::cpu(7),
            MapFlags::ALL_CPUS,
        ] {
            assert_eq!(
                errno(m.update(&k(1), &v.clone(), f.bits())),
                22,
                "{t:?} {f:?}"
            );
        }
        // cpu = N would be ERANGE on a percpu map; the type check comes first.
        assert_eq!(
            errno(m.lookup(&k(1), &mut v, MapFlags::cpu(2).bits())),
            22,
            "{t:?}"
        );
        assert_eq!(
            errno(m.lookup(&k(1), &mut v, MapFlags::cpu(0).bits())),
            22,
            "{t:?}"
        );
    }
}

#[test]
fn cpu_and_all_cpus_together_are_einval() {
    for t in PERCPU_TYPES {
        let m = map(t, 8, 4, 2);
        let f = MapFlags::cpu(0) | MapFlags::ALL_CPUS;
        assert_eq!(errno(m.update(&k(0), &v64(1), f.bits())), 22);
        // Both set and cpu out of range: 4b wins over 4c.
        let f = MapFlags::cpu(9) | MapFlags::ALL_CPUS;
        assert_eq!(errno(m.update(&k(0), &v64(1), f.bits())), 22);
    }
}

#[test]
fn cpu_out_of_range_is_erange_for_lookup_update_and_batches() {
    for t in PERCPU_TYPES {
        let m = map(t, 8, 4, 2);
        put(&m, 0, 1);
        let mut v = [0u8; 8];
        for cpu in [2u32, 3, 0xFFFF_FFFF] {
            let f = MapFlags::cpu(cpu).bits();
            assert_eq!(errno(m.lookup(&k(0), &mut v, f)), 34, "{t:?} cpu {cpu}");
            assert_eq!(errno(m.update(&k(0), &v, f)), 34, "{t:?} cpu {cpu}");
            let mut count = 1;
            let (mut out, mut ks, mut vs) = ([0u8; 4], [0u8; 4], [0u8; 8]);
            assert_eq!(
                errno(m.lookup_batch(None, &mut out, &mut ks, &mut vs, &mut count, f, 0)),
                34
            );
            assert_eq!(errno(m.update_batch(&ks, &vs, &mut count, f, 0)), 34);
            assert_eq!(count, 1);
        }
        // cpu = N - 1 is fine.
        m.lookup(&k(0), &mut v, MapFlags::cpu(1).bits()).unwrap();
    }
}

#[test]
fn lookup_batch_masks_differ_between_hash_and_percpu_hash() {
    let (mut out, mut ks, mut vs) = ([0u8; 4], [0u8; 16], [0u8; 64]);
    for t in [MapType::Hash, MapType::LruHash] {
        let m = map(t, 8, 4, 2);
        put(&m, 1, 1);
        let mut count = 4;
        assert_eq!(
            errno(m.lookup_batch(
                None,
                &mut out,
                &mut ks,
                &mut vs,
                &mut count,
                MapFlags::cpu(0).bits(),
                0
            )),
            22
        );
    }
    for t in [
        MapType::PercpuHash,
        MapType::LruPercpuHash,
        MapType::PercpuArray,
    ] {
        let m = map(t, 8, 4, 2);
        put(&m, 1, 1);
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
        assert!(
            r.is_ok() || r.as_ref().unwrap_err().errno() == 2,
            "{t:?}: {r:?}"
        );
        assert!(count >= 1);
        // ALL_CPUS is not allowed on lookups.
        let mut count = 4;
        let r = m.lookup_batch(
            None,
            &mut out,
            &mut ks,
            &mut vs,
            &mut count,
            MapFlags::ALL_CPUS.bits(),
            0,
        );
        assert_eq!(errno(r), 22);
    }
}

#[test]
fn lookup_and_delete_batch_rejects_cpu() {
    for t in [MapType::PercpuHash, MapType::LruPercpuHash] {
        let m = map(t, 8, 4, 2);
        put(&m, 1, 1);
        let (mut out, mut ks, mut vs) = ([0u8; 4], [0u8; 16], [0u8; 64]);
        let mut count = 4;
        let r = m.lookup_and_delete_batch(
            None,
            &mut out,
            &mut ks,
            &mut vs,
            &mut count,
            MapFlags::cpu(0).bits(),
            0,
        );
        assert_eq!(errno(r), 22);
        assert_eq!(count, 4);
        assert_eq!(m.element_count(), 1);
    }
}

#[test]
fn update_batch_rejects_exist_and_noexist() {
    for t in ALL_TYPES {
        let m = map(t, 8, 4, 2);
        let ks = k(0);
        let vs = vbuf(&m);
        for f in [1u64, 2, 3] {
            let mut count = 1;
            assert_eq!(
                errno(m.update_batch(&ks, &vs, &mut count, f, 0)),
                22,
                "{t:?} {f}"
            );
            assert_eq!(count, 1);
        }
    }
}

#[test]
fn delete_batch_allows_only_lock_and_lock_is_einval() {
    for t in HASH_TYPES {
        let m = map(t, 8, 4, 2);
        put(&m, 0, 1);
        for f in [1u64, 2, 4, 8, 16, HIGH, MapFlags::cpu(0).bits()] {
            let mut count = 1;
            assert_eq!(
                errno(m.delete_batch(&k(0), &mut count, f, 0)),
                22,
                "{t:?} {f:#x}"
            );
            assert_eq!(count, 1);
        }
        assert_eq!(m.element_count(), 1);
    }
}

#[test]
fn lookup_and_delete_elem_allows_only_lock_checked_before_permissions() {
    let m = Map::create(
        MapSpec::new(MapType::Hash, 4, 8, 4).with_flags(create::RDONLY),
        2,
    )
    .unwrap();
    let mut v = [0u8; 8];
    // flags & ~LOCK: EINVAL even though the map is read-only for the host.
    assert_eq!(errno(m.lookup_and_delete(&k(0), &mut v, 1)), 22);
    assert_eq!(
        errno(m.lookup_and_delete(&k(0), &mut v, MapFlags::cpu(0).bits())),
        22
    );
    assert_eq!(errno(m.lookup_and_delete(&k(0), &mut v, 16)), 22);
    // LOCK comes after the permission check.
    assert_eq!(errno(m.lookup_and_delete(&k(0), &mut v, 4)), 1);
    let m = map(MapType::Hash, 8, 4, 2);
    put(&m, 0, 1);
    assert_eq!(errno(m.lookup_and_delete(&k(0), &mut v, 4)), 22);
}

#[test]
fn delete_and_get_next_key_need_zero_flags() {
    for t in ALL_TYPES {
        let m = map(t, 8, 4, 2);
        put(&m, 0, 1);
        assert_eq!(errno(m.delete(&k(0), 1)), 22, "{t:?}");
        assert_eq!(errno(m.get_next_key(None, &mut [0; 4], 1)), 22, "{t:?}");
        m.get_next_key(None, &mut [0; 4], 0).unwrap();
    }
}

#[test]
fn permission_errors_come_before_flag_errors() {
    let ro = Map::create(
        MapSpec::new(MapType::PercpuArray, 4, 8, 4).with_flags(create::RDONLY),
        2,
    )
    .unwrap();
    assert_eq!(errno(ro.update(&k(0), &v64(1), HIGH)), 1);
    let wo = Map::create(
        MapSpec::new(MapType::PercpuArray, 4, 8, 4).with_flags(create::WRONLY),
        2,
    )
    .unwrap();
    assert_eq!(
        errno(wo.lookup(&k(0), &mut [0; 16], MapFlags::cpu(9).bits())),
        1
    );
    assert_eq!(errno(wo.get_next_key(None, &mut [0; 4], 0)), 1);
}

#[test]
fn flag_check_comes_before_key_copy() {
    let m = map(MapType::PercpuArray, 8, 4, 2);
    // Short key (EFAULT) but bad flags first.
    assert_eq!(
        errno(m.lookup(&[0u8; 2], &mut [0; 16], MapFlags::cpu(2).bits())),
        34
    );
    assert_eq!(errno(m.lookup(&[0u8; 2], &mut [0; 16], 0)), 14);
    // Short value after a good flag check.
    assert_eq!(errno(m.update(&k(0), &[0u8; 15], 0)), 14);
}

#[test]
fn unsupported_batch_comes_before_flags_and_count() {
    let m = map(MapType::Array, 8, 4, 2);
    let mut count = 0;
    let (mut out, mut ks, mut vs) = ([0u8; 4], [0u8; 4], [0u8; 8]);
    let r = m.lookup_and_delete_batch(None, &mut out, &mut ks, &mut vs, &mut count, HIGH, 7);
    assert_eq!(errno(r), 524);
    let mut count = 3;
    assert_eq!(errno(m.delete_batch(&ks, &mut count, 99, 0)), 524);
    assert_eq!(count, 3);
}

#[test]
fn count_zero_returns_at_once_after_the_flag_check() {
    for t in ALL_TYPES {
        let m = map(t, 8, 4, 2);
        let mut count = 0;
        let (mut out, mut ks, mut vs) = ([0u8; 4], [0u8; 0], [0u8; 0]);
        m.lookup_batch(
            Some(&[0xff; 4]),
            &mut out,
            &mut ks,
            &mut vs,
            &mut count,
            0,
            0,
        )
        .unwrap();
        m.update_batch(&ks, &vs, &mut count, 0, 0).unwrap();
        assert_eq!(count, 0);
        assert_eq!(errno(m.update_batch(&ks, &vs, &mut count, 1, 0)), 22);
    }
}
