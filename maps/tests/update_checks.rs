//! Per-map update validation (spec §4), host side and program side, row by row.

mod common;
use bpfvm_maps::{CpuId, Map, MapFlags, MapSpec, MapType};
use common::*;

const C1: u64 = 1 << 32;

#[test]
fn array_host_and_program_rows() {
    let m = map(MapType::Array, 8, 4, 2);
    for side_prog in [false, true] {
        let upd = |key: u32, f: u64| {
            if side_prog {
                m.prog_update(CpuId(0), &k(key), &v64(9), f)
            } else {
                m.update(&k(key), &v64(9), f)
            }
        };
        assert_eq!(errno(upd(0, 3)), 22);
        assert_eq!(errno(upd(9, 3)), 22, "flags before the index");
        assert_eq!(errno(upd(4, 0)), 7, "index >= max_entries: E2BIG");
        assert_eq!(errno(upd(0, 1)), 17, "NOEXIST: EEXIST");
        assert_eq!(errno(upd(4, 1)), 7, "index check before NOEXIST");
        assert_eq!(errno(upd(0, 4)), 22, "LOCK without a spin lock");
        upd(0, 0).unwrap();
        upd(0, 2).unwrap();
    }
    assert_eq!(errno(m.prog_update(CpuId(0), &k(0), &v64(1), 8)), 22);
}

#[test]
fn percpu_array_host_rows() {
    let m = map(MapType::PercpuArray, 8, 4, 2);
    assert_eq!(errno(m.update(&k(0), &v64(1), 17)), 22, "ALL_CPUS|NOEXIST");
    assert_eq!(errno(m.update(&k(0), &v64(1), 18)), 22, "ALL_CPUS|EXIST");
    assert_eq!(errno(m.update(&k(0), &v64(1), 12 | C1)), 22, "CPU|LOCK");
    assert_eq!(errno(m.update(&k(4), &v64(1), 16)), 7);
    assert_eq!(
        errno(m.update(&k(0), &full(&[1, 2]), 1)),
        17,
        "f == 1 exactly"
    );
    // With CPU, NOEXIST does not give EEXIST (f != 1).
    m.update(&k(0), &v64(5), 9 | C1).unwrap();
    // lo(f) = 3 is accepted and behaves as BPF_ANY.
    m.update(&k(0), &full(&[3, 3]), 3).unwrap();
    m.update(&k(0), &full(&[4, 6]), 2).unwrap();
    let mut out = [0u8; 16];
    m.lookup(&k(0), &mut out, 0).unwrap();
    assert_eq!(u64s(&out), [4, 6]);
}

#[test]
fn percpu_array_program_rows_write_only_the_current_cpu() {
    let m = map(MapType::PercpuArray, 8, 4, 2);
    m.update(&k(1), &full(&[10, 20]), 0).unwrap();
    assert_eq!(errno(m.prog_update(CpuId(1), &k(1), &v64(1), 3)), 22);
    assert_eq!(errno(m.prog_update(CpuId(1), &k(1), &v64(1), 4)), 22);
    assert_eq!(
        errno(m.prog_update(CpuId(1), &k(1), &v64(1), 8)),
        22,
        "cpu flags on helper 2"
    );
    assert_eq!(errno(m.prog_update(CpuId(1), &k(1), &v64(1), 16)), 22);
    assert_eq!(errno(m.prog_update(CpuId(1), &k(4), &v64(1), 0)), 7);
    assert_eq!(errno(m.prog_update(CpuId(1), &k(1), &v64(1), 1)), 17);
    m.prog_update(CpuId(1), &k(1), &v64(99), 2).unwrap();
    let mut out = [0u8; 16];
    m.lookup(&k(1), &mut out, 0).unwrap();
    assert_eq!(u64s(&out), [10, 99]);
}

#[test]
fn hash_rows_exist_noexist_honoured() {
    let m = map(MapType::Hash, 8, 4, 2);
    assert_eq!(errno(m.update(&k(0), &v64(1), 3)), 22);
    assert_eq!(
        errno(m.update(&k(0), &v64(1), 2)),
        2,
        "EXIST on a missing key"
    );
    m.update(&k(0), &v64(1), 1).unwrap();
    assert_eq!(errno(m.update(&k(0), &v64(1), 1)), 17);
    m.update(&k(0), &v64(2), 2).unwrap();
    // Program side: same rule.
    assert_eq!(errno(m.prog_update(CpuId(0), &k(0), &v64(1), 3)), 22);
    assert_eq!(errno(m.prog_update(CpuId(0), &k(0), &v64(1), 1)), 17);
    assert_eq!(errno(m.prog_update(CpuId(0), &k(1), &v64(1), 2)), 2);
    assert_eq!(errno(m.prog_update(CpuId(0), &k(0), &v64(1), 4)), 22);
}

#[test]
fn lru_hash_rows() {
    let m = map(MapType::LruHash, 8, 4, 2);
    for f in [3u64, 4, 5, 6] {
        assert_eq!(errno(m.update(&k(0), &v64(1), f)), 22, "{f}");
        assert_eq!(errno(m.prog_update(CpuId(0), &k(0), &v64(1), f)), 22, "{f}");
    }
    m.update(&k(0), &v64(1), 1).unwrap();
    assert_eq!(errno(m.update(&k(0), &v64(1), 1)), 17);
}

#[test]
fn percpu_hash_rows_host_side() {
    for t in [MapType::PercpuHash, MapType::LruPercpuHash] {
        let m = map(t, 8, 4, 2);
        assert_eq!(
            errno(m.update(&k(0), &v64(1), 17)),
            22,
            "{t:?} ALL_CPUS|NOEXIST"
        );
        assert_eq!(
            errno(m.update(&k(0), &v64(1), 18)),
            22,
            "{t:?} ALL_CPUS|EXIST"
        );
        assert_eq!(
            errno(m.update(&k(0), &v64(1), 12 | C1)),
            22,
            "{t:?} CPU|LOCK"
        );
        // CPU|EXIST on a missing key: EXIST silently ignored, the key is created.
        m.update(&k(0), &v64(5), 10 | C1).unwrap();
        let mut out = [0u8; 16];
        m.lookup(&k(0), &mut out, 0).unwrap();
        assert_eq!(u64s(&out), [0, 5], "{t:?}: other CPUs zero-filled (U3)");
        // CPU|NOEXIST on an existing key: NOEXIST ignored, overwritten.
        m.update(&k(0), &v64(6), 9).unwrap();
        m.lookup(&k(0), &mut out, 0).unwrap();
        assert_eq!(u64s(&out), [6, 5]);
        // lo = 3 behaves as BPF_ANY, both on existing and missing keys.
        m.update(&k(0), &full(&[1, 1]), 3).unwrap();
        m.update(&k(1), &full(&[2, 2]), 3).unwrap();
        // 1 and 2 alone are honoured.
        assert_eq!(errno(m.update(&k(1), &full(&[2, 2]), 1)), 17);
        assert_eq!(errno(m.update(&k(2), &full(&[2, 2]), 2)), 2);
    }
}

#[test]
fn percpu_hash_rows_program_side() {
    for t in [MapType::PercpuHash, MapType::LruPercpuHash] {
        let m = map(t, 8, 4, 2);
        for f in [3u64, 4, 8, 16, 8 | C1] {
            assert_eq!(
                errno(m.prog_update(CpuId(0), &k(0), &v64(1), f)),
                22,
                "{t:?} {f:#x}"
            );
        }
        m.prog_update(CpuId(1), &k(0), &v64(4), 0).unwrap();
        assert_eq!(errno(m.prog_update(CpuId(1), &k(0), &v64(4), 1)), 17);
        assert_eq!(errno(m.prog_update(CpuId(1), &k(1), &v64(4), 2)), 2);
    }
}

#[test]
fn percpu_cgroup_storage_rows() {
    let m = Map::create(MapSpec::new(MapType::PercpuCgroupStorage, 16, 8, 0), 2).unwrap();
    let key = bpfvm_maps::CgroupStorageKey {
        cgroup_id: 7,
        attach_type: 1,
    }
    .to_bytes(16);
    // No storage for the key: ENOENT.
    assert_eq!(errno(m.update(&key, &full(&[1, 2]), 0)), 2);
    assert_eq!(
        errno(m.update(&key, &full(&[1, 2]), 1)),
        22,
        "NOEXIST is EINVAL"
    );
    m.attach(7, 1).unwrap();
    assert_eq!(errno(m.update(&key, &full(&[1, 2]), 1)), 22);
    assert_eq!(errno(m.update(&key, &v64(1), 17)), 22, "ALL_CPUS|NOEXIST");
    assert_eq!(errno(m.update(&key, &v64(1), 9 | C1)), 22, "CPU|NOEXIST");
    m.update(&key, &v64(3), 18).unwrap();
    m.update(&key, &v64(4), 10 | C1).unwrap();
    m.update(&key, &v64(4), MapFlags::cpu(0).bits()).unwrap();
    let mut out = [0u8; 16];
    m.lookup(&key, &mut out, 0).unwrap();
    assert_eq!(u64s(&out), [4, 4]);
    m.update(&key, &full(&[5, 6]), 2).unwrap();
    m.lookup(&key, &mut out, 0).unwrap();
    assert_eq!(u64s(&out), [5, 6]);
    // Not updatable through helper 2.
    assert_eq!(errno(m.prog_update(CpuId(0), &key, &v64(1), 0)), 22);
}

#[test]
fn per_map_checks_come_after_the_value_copy() {
    // A bad value buffer gives EFAULT before the per-map flag check (§2 order step 6).
    let m = map(MapType::Hash, 8, 4, 2);
    assert_eq!(errno(m.update(&k(0), &[0u8; 4], 3)), 14);
    let m = map(MapType::PercpuArray, 8, 4, 2);
    assert_eq!(errno(m.update(&k(9), &[0u8; 4], 18)), 14);
}
