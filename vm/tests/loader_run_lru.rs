//! Checks that `lru_percpu_hash.o` keeps at most 4 entries: once full, inserting a new
//! key evicts old ones (the kernel's LRU may evict several at once), and the new key is
//! then found.

mod common;

use bpfvm::{CpuId, Input};

#[test]
fn a_full_lru_map_evicts_to_make_room() {
    let (obj, maps, vm) = common::fixture_vm("lru_percpu_hash", 1);
    let prog = common::fixture_program(&vm, &obj, &maps, "lru_touch");
    let run = |key: u32| {
        // The key, padded to an Ethernet header (the least an XDP test run takes).
        let mut packet = key.to_le_bytes().to_vec();
        packet.resize(14, 0);
        vm.run(&prog, CpuId(0), &Input::packet(packet))
            .unwrap()
            .retval
    };
    let recent = maps.get("recent").unwrap();
    let present = |key: u32| {
        let mut v = [0u8; 8];
        recent
            .lookup(&key.to_ne_bytes(), &mut v, 0)
            .ok()
            .map(|_| u64::from_ne_bytes(v))
    };
    for k in 1..=4 {
        assert_eq!(run(k), 2, "insert {k}");
    }
    for k in 1..=4 {
        assert_eq!(run(k), 1, "hit {k}");
        assert_eq!(present(k), Some(u64::from(k) * 10));
    }
    for k in 5..=12 {
        assert_eq!(run(k), 2, "insert {k} into a full map");
        assert_eq!(
            present(k),
            Some(u64::from(k) * 10),
            "{k} is there after insert"
        );
        // Like the kernel's LRU, eviction may free more than one node at a time.
        let count = recent.element_count();
        assert!(
            (1..=4).contains(&count),
            "{count} entries: never more than max_entries"
        );
    }
    let survivors = (1..=12).filter(|&k| present(k).is_some()).count();
    assert_eq!(survivors as u32, recent.element_count());
    assert!(survivors <= 4);
    assert!(
        (1..=4).any(|k| present(k).is_none()),
        "old keys were evicted"
    );
}
