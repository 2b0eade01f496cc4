//! Cgroup storage maps (spec §9, §5): storages created by attaching, host-side lookup /
//! update / delete / GET_NEXT_KEY, and program access through helper 81.

mod common;
use std::sync::atomic::{AtomicU64, Ordering};

use bpfvm_maps::{CgroupStorageKey, CpuId, Map, MapFlags, MapSpec, MapType, STORAGE_CAPACITY};
use common::*;

fn cg(t: MapType, key_size: u32) -> Map {
    Map::create(MapSpec::new(t, key_size, 8, 0), 2).unwrap()
}

fn key16(id: u64, at: u32) -> Vec<u8> {
    CgroupStorageKey {
        cgroup_id: id,
        attach_type: at,
    }
    .to_bytes(16)
}

#[test]
fn unattached_map_holds_nothing() {
    let m = cg(MapType::PercpuCgroupStorage, 16);
    let mut next = [0u8; 16];
    assert_eq!(errno(m.get_next_key(None, &mut next, 0)), 2);
    assert_eq!(errno(m.get_next_key(Some(&key16(1, 1)), &mut next, 0)), 2);
    assert_eq!(errno(m.lookup(&key16(1, 1), &mut [0; 16], 0)), 2);
    assert_eq!(errno(m.update(&key16(1, 1), &[0; 16], 0)), 2);
    assert_eq!(errno(m.delete(&key16(1, 1), 0)), 22);
}

#[test]
fn attach_creates_zeroed_storage_and_host_reads_full_or_one_cpu() {
    let m = cg(MapType::PercpuCgroupStorage, 16);
    m.attach(5, 2).unwrap();
    let mut out = [0xffu8; 16];
    m.lookup(&key16(5, 2), &mut out, 0).unwrap();
    assert_eq!(out, [0; 16]);
    m.update(&key16(5, 2), &full(&[3, 4]), 0).unwrap();
    let mut one = [0u8; 8];
    m.lookup(&key16(5, 2), &mut one, MapFlags::cpu(1).bits())
        .unwrap();
    assert_eq!(u64::from_ne_bytes(one), 4);
    assert_eq!(
        errno(m.lookup(&key16(5, 3), &mut one, 0)),
        2,
        "other attach type: no storage"
    );
    assert_eq!(errno(m.delete(&key16(5, 2), 0)), 22);
}

#[test]
fn get_next_key_is_most_recent_first_and_ends_with_enoent() {
    let m = cg(MapType::PercpuCgroupStorage, 16);
    m.attach(1, 0).unwrap();
    m.attach(2, 0).unwrap();
    m.attach(3, 7).unwrap();
    assert_eq!(keys(&m), [key16(3, 7), key16(2, 0), key16(1, 0)]);
    let mut next = [0u8; 16];
    assert_eq!(
        errno(m.get_next_key(Some(&key16(9, 9)), &mut next, 0)),
        2,
        "key not found: ENOENT"
    );
    assert_eq!(
        errno(m.get_next_key(Some(&key16(1, 0)), &mut next, 0)),
        2,
        "last key: ENOENT"
    );
}

#[test]
fn u64_key_shares_one_storage_per_cgroup() {
    let m = cg(MapType::PercpuCgroupStorage, 8);
    let a = m.attach(9, 1).unwrap();
    let b = m.attach(9, 2).unwrap();
    assert_eq!(a, b);
    assert_eq!(m.element_count(), 1);
    m.update(&9u64.to_ne_bytes(), &v64(1), MapFlags::ALL_CPUS.bits())
        .unwrap();
    let p1 = m
        .prog_local_storage(
            CpuId(0),
            CgroupStorageKey {
                cgroup_id: 9,
                attach_type: 1,
            },
        )
        .unwrap();
    let p2 = m
        .prog_local_storage(
            CpuId(0),
            CgroupStorageKey {
                cgroup_id: 9,
                attach_type: 2,
            },
        )
        .unwrap();
    assert_eq!(p1, p2);
    assert_eq!(keys(&m), [9u64.to_ne_bytes().to_vec()]);
    m.detach(9, 1).unwrap();
    assert_eq!(m.element_count(), 1, "still used by the second attachment");
    m.detach(9, 2).unwrap();
    assert_eq!(m.element_count(), 0);
}

#[test]
fn helper_81_gives_the_current_cpus_buffer() {
    let m = cg(MapType::PercpuCgroupStorage, 16);
    let key = m.attach(4, 1).unwrap();
    for cpu in 0..2u32 {
        let p = m.prog_local_storage(CpuId(cpu), key).unwrap();
        assert!(m.arena().contains_slot_start(p));
        // SAFETY: `p` is 8-byte aligned, points at this CPU's 8-byte value inside the
        // map's arena, which lives as long as `m`; arena bytes are only accessed atomically.
        let cell = unsafe { &*p.as_ptr().cast::<AtomicU64>() };
        cell.store(100 + u64::from(cpu), Ordering::Relaxed);
    }
    let mut out = [0u8; 16];
    m.lookup(&key16(4, 1), &mut out, 0).unwrap();
    assert_eq!(u64s(&out), [100, 101]);
    assert!(m.prog_local_storage(CpuId(2), key).is_none());
    assert!(m
        .prog_local_storage(
            CpuId(0),
            CgroupStorageKey {
                cgroup_id: 4,
                attach_type: 2
            }
        )
        .is_none());
    // Helper 1 is not the way to reach cgroup storage.
    assert!(m.prog_lookup(CpuId(0), &key16(4, 1)).is_none());
}

#[test]
fn capacity_is_fixed_and_detach_frees() {
    let m = cg(MapType::PercpuCgroupStorage, 16);
    let base = m.arena();
    for i in 0..STORAGE_CAPACITY as u64 {
        m.attach(i, 0).unwrap();
    }
    assert_eq!(m.attach(1000, 0).unwrap_err().errno(), 12);
    m.detach(3, 0).unwrap();
    m.attach(1000, 0).unwrap();
    assert_eq!(m.arena().base, base.base, "the arena never moves");
    assert_eq!(m.detach(3, 0).unwrap_err().errno(), 2);
    // Re-attached storage starts zeroed.
    m.update(&key16(1000, 0), &v64(5), MapFlags::ALL_CPUS.bits())
        .unwrap();
    m.detach(1000, 0).unwrap();
    m.attach(1000, 0).unwrap();
    let mut out = [0xffu8; 16];
    m.lookup(&key16(1000, 0), &mut out, 0).unwrap();
    assert_eq!(out, [0; 16]);
}

#[test]
fn shared_cgroup_storage_type_19() {
    let m = cg(MapType::CgroupStorage, 16);
    m.attach(1, 1).unwrap();
    let key = key16(1, 1);
    m.update(&key, &v64(8), 0).unwrap();
    m.update(&key, &v64(9), 2).unwrap();
    assert_eq!(errno(m.update(&key, &v64(9), 1)), 22);
    assert_eq!(errno(m.update(&key, &v64(9), MapFlags::cpu(0).bits())), 22);
    let mut out = [0u8; 8];
    m.lookup(&key, &mut out, 0).unwrap();
    assert_eq!(u64::from_ne_bytes(out), 9);
    assert_eq!(errno(m.lookup(&key, &mut out, MapFlags::cpu(0).bits())), 22);
    let p = m
        .prog_local_storage(
            CpuId(1),
            CgroupStorageKey {
                cgroup_id: 1,
                attach_type: 1,
            },
        )
        .unwrap();
    assert_eq!(
        p,
        m.prog_local_storage(
            CpuId(0),
            CgroupStorageKey {
                cgroup_id: 1,
                attach_type: 1
            }
        )
        .unwrap()
    );
}

#[test]
fn attach_on_other_map_types_is_einval() {
    let m = map(MapType::Hash, 8, 4, 2);
    assert_eq!(m.attach(1, 1).unwrap_err().errno(), 22);
    assert!(m
        .prog_local_storage(CpuId(0), CgroupStorageKey::default())
        .is_none());
}
