//! Map creation checks: sizes, max_entries and creation flags as the kernel validates them
//! (spec §7.1, §9, U4, and the array/hash allocation checks).

mod common;
use bpfvm_maps::{flags::create as cf, Map, MapSpec, MapType};

fn mk(t: MapType, ks: u32, vs: u32, max: u32, flags: u32) -> Result<Map, bpfvm_maps::MapError> {
    Map::create(MapSpec::new(t, ks, vs, max).with_flags(flags), 2)
}

fn e(t: MapType, ks: u32, vs: u32, max: u32, flags: u32) -> i32 {
    mk(t, ks, vs, max, flags)
        .expect_err("creation should fail")
        .errno()
}

#[test]
fn array_sizes() {
    for t in [MapType::Array, MapType::PercpuArray] {
        assert_eq!(e(t, 4, 8, 0, 0), 22, "max_entries 0");
        assert_eq!(e(t, 8, 8, 4, 0), 22, "key_size != 4");
        assert_eq!(e(t, 4, 0, 4, 0), 22, "value_size 0");
        assert_eq!(e(t, 4, 8, 4, cf::NO_PREALLOC), 22);
        assert_eq!(e(t, 4, 8, 4, cf::ZERO_SEED), 22);
        assert_eq!(e(t, 4, 8, 4, cf::RDONLY_PROG | cf::WRONLY_PROG), 22);
        assert_eq!(e(t, 4, 8, 4, cf::RDONLY | cf::WRONLY), 22);
        assert!(mk(t, 4, 8, 4, cf::RDONLY_PROG).is_ok());
    }
    assert_eq!(
        e(MapType::PercpuArray, 4, 32769, 1, 0),
        7,
        "per-CPU value over PCPU_MIN_UNIT_SIZE"
    );
    assert!(mk(MapType::PercpuArray, 4, 32768, 1, 0).is_ok());
    assert_eq!(e(MapType::PercpuArray, 4, 8, 1, cf::NUMA_NODE), 22);
    assert!(mk(MapType::Array, 4, 8, 1, cf::NUMA_NODE | cf::MMAPABLE).is_ok());
    assert_eq!(e(MapType::PercpuArray, 4, 8, 1, cf::MMAPABLE), 22);
    // Too big to simulate: ENOMEM, not an abort.
    assert_eq!(e(MapType::Array, 4, 1 << 20, 1 << 20, 0), 12);
}

#[test]
fn hash_sizes() {
    for t in [
        MapType::Hash,
        MapType::PercpuHash,
        MapType::LruHash,
        MapType::LruPercpuHash,
    ] {
        assert_eq!(e(t, 4, 8, 0, 0), 22, "{t:?} max_entries 0");
        assert_eq!(e(t, 0, 8, 4, 0), 22, "{t:?} key_size 0");
        assert_eq!(e(t, 4, 0, 4, 0), 22, "{t:?} value_size 0");
        assert!(mk(t, 512, 8, 4, 0).is_ok());
        assert!(mk(t, 513, 8, 4, 0).is_ok(), "{t:?} key over MAX_BPF_STACK");
        assert_eq!(e(t, 4, 8, 4, 1 << 12), 22, "{t:?} unknown flag");
        assert_eq!(
            e(t, 4, 8, (1 << 31) + 1, 0),
            7,
            "{t:?} max_entries over 2^31"
        );
        assert!(mk(t, 4, 8, 4, cf::ZERO_SEED).is_ok());
    }
    assert_eq!(e(MapType::PercpuHash, 4, 32769, 4, 0), 7);
    assert_eq!(e(MapType::Hash, 4, 4 << 20, 4, 0), 7);
}

/// Linux 6.18 limits a hash map's sizes only by `key_size + value_size <
/// KMALLOC_MAX_SIZE - sizeof(struct htab_elem)` (4 MiB - 48) and per-CPU values by
/// `PCPU_MIN_UNIT_SIZE`: keys over 512 bytes and values up to that bound work (checked
/// against the kernel by `conformance/tests/kernel_create.rs`).
#[test]
fn hash_sizes_are_limited_by_key_plus_value_only() {
    const LIMIT: u32 = (4 << 20) - 48;
    for t in [MapType::Hash, MapType::LruHash] {
        assert_eq!(
            e(t, 4, LIMIT - 4, 1, 0),
            7,
            "{t:?} key + value at the limit"
        );
        assert_eq!(e(t, 4096, LIMIT - 4096, 1, 0), 7, "{t:?}");
        assert!(mk(t, 4, LIMIT - 5, 1, 0).is_ok(), "{t:?} just below");
        assert!(mk(t, 4, 4_194_204, 1, 0).is_ok(), "{t:?}");
    }
    for t in [MapType::PercpuHash, MapType::LruPercpuHash] {
        assert!(mk(t, 4, 32768, 1, 0).is_ok(), "{t:?}");
        assert_eq!(
            e(t, 4, 32769, 1, 0),
            7,
            "{t:?} value over PCPU_MIN_UNIT_SIZE"
        );
    }

    // A 513-byte key and a value of about 4 MiB are usable, not just accepted.
    let m = mk(MapType::Hash, 513, 8, 2, 0).unwrap();
    let key: Vec<u8> = (0..513).map(|i| i as u8).collect();
    m.update(&key, &7u64.to_ne_bytes(), 0).unwrap();
    let mut out = [0u8; 8];
    m.lookup(&key, &mut out, 0).unwrap();
    assert_eq!(u64::from_ne_bytes(out), 7);

    let big = mk(MapType::Hash, 4, 4_194_204, 1, 0).unwrap();
    let value: Vec<u8> = (0..4_194_204u32).map(|i| (i % 251) as u8).collect();
    big.update(&1u32.to_ne_bytes(), &value, 0).unwrap();
    let mut back = vec![0u8; value.len()];
    big.lookup(&1u32.to_ne_bytes(), &mut back, 0).unwrap();
    assert!(back == value);
}

/// `htab_map_alloc` refuses a bucket array over `U32_MAX` bytes (16-byte buckets, so
/// `max_entries` over 2^27) with E2BIG, after `BPF_F_NO_COMMON_LRU` rounded `max_entries`
/// up to a multiple of N.
#[test]
fn hash_bucket_array_limit() {
    for t in [
        MapType::Hash,
        MapType::PercpuHash,
        MapType::LruHash,
        MapType::LruPercpuHash,
    ] {
        assert_eq!(e(t, 4, 8, (1 << 27) + 1, 0), 7, "{t:?}");
        assert_eq!(e(t, 4, 8, 1 << 31, 0), 7, "{t:?}");
    }
    // 2^27 - 1 rounds up to 2^27 + 1 with N = 3 (2^27 is 2 mod 3).
    let spec = MapSpec::new(MapType::LruHash, 4, 8, (1 << 27) - 1).with_flags(cf::NO_COMMON_LRU);
    assert_eq!(Map::create(spec, 3).unwrap_err().errno(), 7);
}

#[test]
fn lru_creation_rules_7_1() {
    assert_eq!(e(MapType::LruHash, 4, 8, 4, cf::NO_PREALLOC), 524);
    assert_eq!(e(MapType::LruPercpuHash, 4, 8, 4, cf::NO_PREALLOC), 524);
    assert_eq!(e(MapType::Hash, 4, 8, 4, cf::NO_COMMON_LRU), 22);
    assert_eq!(e(MapType::PercpuHash, 4, 8, 4, cf::NO_COMMON_LRU), 22);
    assert_eq!(e(MapType::PercpuHash, 4, 8, 4, cf::NUMA_NODE), 22);
    assert_eq!(e(MapType::LruPercpuHash, 4, 8, 4, cf::NUMA_NODE), 22);
    assert_eq!(
        e(MapType::LruHash, 4, 8, 4, cf::NUMA_NODE | cf::NO_COMMON_LRU),
        22
    );
    assert!(mk(MapType::LruHash, 4, 8, 4, cf::NUMA_NODE).is_ok());
    assert!(mk(MapType::Hash, 4, 8, 4, cf::NO_PREALLOC).is_ok());
    // NO_COMMON_LRU rounds max_entries up to a multiple of N (N = 2): 1, 3, 5 -> 2, 4, 6.
    for (asked, got) in [(1, 2), (3, 4), (5, 6), (4, 4)] {
        let m = mk(MapType::LruHash, 4, 8, asked, cf::NO_COMMON_LRU).unwrap();
        assert_eq!(m.max_entries(), got);
    }
}

#[test]
fn cgroup_storage_rules_9_and_u4() {
    for t in [MapType::CgroupStorage, MapType::PercpuCgroupStorage] {
        assert!(mk(t, 16, 8, 0, 0).is_ok());
        assert!(mk(t, 8, 8, 0, 0).is_ok());
        assert_eq!(e(t, 4, 8, 0, 0), 22, "key_size 4");
        assert_eq!(e(t, 16, 8, 1, 0), 22, "max_entries 1");
        assert_eq!(e(t, 16, 0, 0, 0), 22);
        assert_eq!(e(t, 16, 8, 0, cf::NO_PREALLOC), 22);
    }
    assert!(mk(MapType::CgroupStorage, 16, 65407, 0, 0).is_ok());
    assert_eq!(e(MapType::CgroupStorage, 16, 65408, 0, 0), 7);
    assert!(mk(MapType::PercpuCgroupStorage, 16, 32768, 0, 0).is_ok());
    assert_eq!(e(MapType::PercpuCgroupStorage, 16, 32769, 0, 0), 7);
}

#[test]
fn map_types_by_number() {
    assert_eq!(MapType::try_from(6).unwrap(), MapType::PercpuArray);
    assert_eq!(MapType::try_from(21).unwrap(), MapType::PercpuCgroupStorage);
    assert_eq!(u32::from(MapType::LruPercpuHash), 10);
    assert_eq!(MapType::try_from(3).unwrap(), MapType::ProgArray);
    assert_eq!(MapType::try_from(7).unwrap(), MapType::StackTrace);
    assert_eq!(MapType::try_from(8).unwrap(), MapType::CgroupArray);
    assert_eq!(MapType::try_from(15).unwrap_err().errno(), 22);
    assert_eq!(MapType::try_from(11).unwrap(), MapType::LpmTrie);
    assert_eq!(MapType::try_from(27).unwrap(), MapType::Ringbuf);
    assert_eq!(MapType::try_from(4).unwrap(), MapType::PerfEventArray);
    assert_eq!(
        Map::create(MapSpec::new(MapType::Array, 4, 8, 4), 0)
            .unwrap_err()
            .errno(),
        22
    );
}

#[test]
fn freeze_and_access_flags() {
    let m = mk(MapType::PercpuArray, 4, 8, 4, 0).unwrap();
    m.update(&0u32.to_ne_bytes(), &[0u8; 16], 0).unwrap();
    m.freeze().unwrap();
    assert!(m.is_frozen());
    assert_eq!(
        m.update(&0u32.to_ne_bytes(), &[0u8; 16], 0)
            .unwrap_err()
            .errno(),
        1
    );
    let mut out = [0u8; 16];
    m.lookup(&0u32.to_ne_bytes(), &mut out, 0).unwrap();
    assert_eq!(m.freeze().unwrap_err().errno(), 1);
    // Programs still write a frozen map.
    m.prog_update(
        bpfvm_maps::CpuId(1),
        &0u32.to_ne_bytes(),
        &5u64.to_ne_bytes(),
        0,
    )
    .unwrap();

    let ro = mk(MapType::Hash, 4, 8, 4, cf::RDONLY).unwrap();
    assert_eq!(ro.update(&[0; 4], &[0; 8], 0).unwrap_err().errno(), 1);
    assert_eq!(ro.delete(&[0; 4], 0).unwrap_err().errno(), 1);
    assert_eq!(ro.freeze().unwrap_err().errno(), 1);
    assert_eq!(ro.lookup(&[0; 4], &mut [0; 8], 0).unwrap_err().errno(), 2);
    let wo = mk(MapType::Hash, 4, 8, 4, cf::WRONLY).unwrap();
    wo.update(&[0; 4], &[0; 8], 0).unwrap();
    assert_eq!(wo.lookup(&[0; 4], &mut [0; 8], 0).unwrap_err().errno(), 1);
    assert_eq!(
        wo.lookup_and_delete(&[0; 4], &mut [0; 8], 0)
            .unwrap_err()
            .errno(),
        1
    );

    let rp = mk(MapType::Hash, 4, 8, 4, cf::RDONLY_PROG).unwrap();
    assert!(rp.rdonly_prog());
    assert_eq!(
        rp.prog_update(bpfvm_maps::CpuId(0), &[0; 4], &[0; 8], 0)
            .unwrap_err()
            .errno(),
        1
    );
    rp.update(&[0; 4], &[0; 8], 0).unwrap();
    assert!(rp.prog_lookup(bpfvm_maps::CpuId(0), &[0; 4]).is_some());
}

#[test]
fn host_cpu_is_settable_and_checked() {
    let m = mk(MapType::LruHash, 4, 8, 4, 0).unwrap();
    assert_eq!(m.host_cpu().0, 0);
    m.set_host_cpu(bpfvm_maps::CpuId(1)).unwrap();
    assert_eq!(m.host_cpu().0, 1);
    assert_eq!(
        m.set_host_cpu(bpfvm_maps::CpuId(2)).unwrap_err().errno(),
        34
    );
}
