//! Maps whose value holds a `bpf_spin_lock` (spec U6, §4, §5.2): which types accept one,
//! `BPF_F_LOCK` acceptance and masking, in-place locked updates, and the lock word itself.

mod common;
use std::sync::atomic::{AtomicU32, Ordering};
use std::sync::Arc;
use std::time::Duration;

use bpfvm_maps::{jhash, CpuId, Map, MapFlags, MapSpec, MapType};
use common::*;

/// A 16-byte value: u64 payload at 0, lock at 8, u32 payload at 12.
fn locked(t: MapType, max: u32) -> Map {
    Map::create_with_spin_lock(MapSpec::new(t, 4, 16, max), 2, 8).unwrap()
}

fn val(a: u64, b: u32) -> Vec<u8> {
    let mut v = a.to_ne_bytes().to_vec();
    v.extend_from_slice(&0xFFFF_FFFFu32.to_ne_bytes()); // lock bytes: ignored by the host
    v.extend_from_slice(&b.to_ne_bytes());
    v
}

fn read(m: &Map, key: u32, flags: u64) -> (u64, u32, u32) {
    let mut out = [0xAAu8; 16];
    m.lookup(&k(key), &mut out, flags).unwrap();
    let a = u64::from_ne_bytes(out[0..8].try_into().unwrap());
    let l = u32::from_ne_bytes(out[8..12].try_into().unwrap());
    let b = u32::from_ne_bytes(out[12..16].try_into().unwrap());
    (a, l, b)
}

#[test]
fn only_hash_array_and_cgroup_storage_take_a_spin_lock() {
    for t in [
        MapType::PercpuArray,
        MapType::PercpuHash,
        MapType::LruHash,
        MapType::LruPercpuHash,
    ] {
        let e = Map::create_with_spin_lock(MapSpec::new(t, 4, 16, 4), 2, 8).unwrap_err();
        assert_eq!(e.errno(), 95, "{t:?}");
    }
    let e = Map::create_with_spin_lock(MapSpec::new(MapType::PercpuCgroupStorage, 16, 16, 0), 2, 8)
        .unwrap_err();
    assert_eq!(e.errno(), 95);
    assert!(
        Map::create_with_spin_lock(MapSpec::new(MapType::CgroupStorage, 16, 16, 0), 2, 8).is_ok()
    );
    for t in [MapType::Hash, MapType::Array] {
        assert!(Map::create_with_spin_lock(MapSpec::new(t, 4, 16, 4), 2, 12).is_ok());
        for off in [2, 13, 16, u32::MAX - 1] {
            let e = Map::create_with_spin_lock(MapSpec::new(t, 4, 16, 4), 2, off).unwrap_err();
            assert_eq!(e.errno(), 22, "{t:?} off {off}");
        }
    }
}

#[test]
fn lock_is_accepted_and_the_lock_word_is_never_copied() {
    for t in [MapType::Hash, MapType::Array] {
        let m = locked(t, 4);
        m.update(&k(1), &val(5, 6), 4).unwrap();
        assert_eq!(read(&m, 1, 4), (5, 0, 6), "{t:?}");
        assert_eq!(read(&m, 1, 0), (5, 0, 6));
        m.update(&k(1), &val(7, 8), 0).unwrap();
        assert_eq!(read(&m, 1, 4), (7, 0, 8));
        // The lock word in the arena is unlocked after every copy.
        let p = m.prog_lookup(CpuId(0), &k(1)).unwrap();
        // SAFETY: `p` is the 8-aligned start of a 16-byte value in `m`'s arena; bytes 8..12
        // are the lock word, accessed atomically only.
        let word = unsafe { &*p.as_ptr().add(8).cast::<AtomicU32>() };
        assert_eq!(word.load(Ordering::Relaxed), 0);
        // LOCK with cpu flags: not a per-CPU map.
        assert_eq!(
            errno(m.update(
                &k(1),
                &val(0, 0),
                (MapFlags::LOCK | MapFlags::cpu(0)).bits()
            )),
            22
        );
    }
}

#[test]
fn hash_lock_bit_is_masked_for_exist_and_noexist() {
    let m = locked(MapType::Hash, 4);
    assert_eq!(
        errno(m.update(&k(1), &val(1, 1), 4 | 2)),
        2,
        "LOCK|EXIST on a missing key"
    );
    m.update(&k(1), &val(1, 1), 4 | 1).unwrap();
    assert_eq!(
        errno(m.update(&k(1), &val(1, 1), 4 | 1)),
        17,
        "LOCK|NOEXIST on an existing key"
    );
    assert_eq!(errno(m.update(&k(1), &val(1, 1), 4 | 3)), 22);
    m.update(&k(1), &val(2, 2), 4 | 2).unwrap();
    assert_eq!(read(&m, 1, 0), (2, 0, 2));
    // Program side: same rules.
    m.prog_update(CpuId(1), &k(1), &val(3, 3), 4).unwrap();
    assert_eq!(errno(m.prog_update(CpuId(1), &k(1), &val(3, 3), 5)), 17);
    assert_eq!(read(&m, 1, 4), (3, 0, 3));
}

#[test]
fn array_lock_rows() {
    let m = locked(MapType::Array, 4);
    assert_eq!(errno(m.update(&k(0), &val(1, 1), 4 | 3)), 22);
    assert_eq!(errno(m.update(&k(9), &val(1, 1), 4)), 7);
    assert_eq!(errno(m.update(&k(0), &val(1, 1), 4 | 1)), 17);
    m.update(&k(0), &val(1, 1), 4 | 2).unwrap();
    m.prog_update(CpuId(0), &k(1), &val(9, 9), 4).unwrap();
    assert_eq!(read(&m, 1, 4), (9, 0, 9));
}

#[test]
fn locked_update_keeps_the_position_plain_update_moves_to_head() {
    let nb = 4;
    let b0 = |key: u32| jhash::htab_map_hash(&k(key), 0) & (nb - 1);
    let a = 0u32;
    let b = (1..1000).find(|&x| b0(x) == b0(a)).unwrap();
    let m = locked(MapType::Hash, nb);
    m.update(&k(a), &val(1, 1), 0).unwrap();
    m.update(&k(b), &val(2, 2), 0).unwrap();
    assert_eq!(keys(&m), [k(b).to_vec(), k(a).to_vec()]);
    let p = m.prog_lookup(CpuId(0), &k(a)).unwrap();
    m.update(&k(a), &val(3, 3), 4).unwrap();
    assert_eq!(keys(&m), [k(b).to_vec(), k(a).to_vec()], "in place");
    assert_eq!(m.prog_lookup(CpuId(0), &k(a)).unwrap(), p);
    m.update(&k(a), &val(4, 4), 0).unwrap();
    assert_eq!(
        keys(&m),
        [k(a).to_vec(), k(b).to_vec()],
        "replaced at the head"
    );
}

#[test]
fn lock_on_lookup_and_delete_and_batches() {
    let m = locked(MapType::Hash, 8);
    for i in 0..4 {
        m.update(&k(i), &val(u64::from(i), i), 0).unwrap();
    }
    let mut out = [0u8; 16];
    m.lookup_and_delete(&k(0), &mut out, 4).unwrap();
    assert_eq!(u64::from_ne_bytes(out[..8].try_into().unwrap()), 0);
    let (mut ob, mut ks, mut vs) = ([0u8; 4], [0u8; 16], [0u8; 64]);
    let mut count = 4;
    assert_eq!(
        errno(m.lookup_batch(None, &mut ob, &mut ks, &mut vs, &mut count, 4, 0)),
        2
    );
    assert_eq!(count, 3);
    let mut count = 1;
    m.delete_batch(&k(1), &mut count, 4, 0).unwrap();
    assert_eq!(m.element_count(), 2);
    let mut count = 1;
    assert_eq!(errno(m.delete_batch(&k(2), &mut count, 5, 0)), 22);
    let mut count = 2;
    let mut ks = [0u8; 8];
    let mut vs = [0u8; 32];
    let r = m.lookup_and_delete_batch(None, &mut ob, &mut ks, &mut vs, &mut count, 4, 0);
    assert!(r.is_ok() || r.unwrap_err().errno() == 2);
    assert_eq!(m.element_count(), 0);
}

#[test]
fn a_held_lock_blocks_locked_copies_until_released() {
    let m = Arc::new(locked(MapType::Array, 1));
    let p = m.prog_lookup(CpuId(0), &k(0)).unwrap();
    // SAFETY: as above: the lock word of element 0, inside the arena of `m`, which outlives
    // every use here (the Arc is held until the end of the test).
    let word = unsafe { &*p.as_ptr().add(8).cast::<AtomicU32>() };
    word.store(1, Ordering::Release); // a "program" holds the lock
    let writer = {
        let m = m.clone();
        std::thread::spawn(move || m.update(&k(0), &val(42, 42), 4).unwrap())
    };
    std::thread::sleep(Duration::from_millis(50));
    assert_eq!(read(&m, 0, 0).0, 0, "the locked update waits");
    word.store(0, Ordering::Release);
    writer.join().unwrap();
    assert_eq!(read(&m, 0, 4), (42, 0, 42));
}

#[test]
fn cgroup_storage_with_a_spin_lock() {
    let m =
        Map::create_with_spin_lock(MapSpec::new(MapType::CgroupStorage, 8, 16, 0), 2, 8).unwrap();
    m.attach(3, 0).unwrap();
    let key = 3u64.to_ne_bytes();
    m.update(&key, &val(8, 9), 4 | 2).unwrap();
    let mut out = [0u8; 16];
    m.lookup(&key, &mut out, 4).unwrap();
    assert_eq!(u64::from_ne_bytes(out[..8].try_into().unwrap()), 8);
    assert_eq!(errno(m.update(&key, &val(8, 9), 4 | 1)), 22);
}

#[test]
#[cfg_attr(miri, ignore = "spins for a second of wall-clock time")]
fn a_lock_never_released_gives_ebusy_instead_of_waiting_for_ever() {
    let m = locked(MapType::Hash, 4);
    m.update(&k(1), &val(5, 6), 0).unwrap();
    let p = m.prog_lookup(CpuId(0), &k(1)).unwrap();
    // SAFETY: the lock word of key 1's value, inside the arena of `m`, which outlives `word`.
    let word = unsafe { &*p.as_ptr().add(8).cast::<AtomicU32>() };
    word.store(1, Ordering::Release); // held, and never released
    let mut out = [0u8; 16];
    let start = std::time::Instant::now();
    assert_eq!(errno(m.lookup(&k(1), &mut out, 4)), 16, "EBUSY");
    assert_eq!(errno(m.update(&k(1), &val(7, 8), 4)), 16, "EBUSY");
    assert!(start.elapsed() >= bpfvm_maps::SPIN_LOCK_WAIT);
    // Nothing was copied, and the unlocked paths still work.
    assert_eq!(read(&m, 1, 0), (5, 0, 6));
    word.store(0, Ordering::Release);
    m.update(&k(1), &val(7, 8), 4).unwrap();
    assert_eq!(read(&m, 1, 4), (7, 0, 8));
}
