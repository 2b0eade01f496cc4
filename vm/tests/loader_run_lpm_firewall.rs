//! Checks the `lpm_firewall.o` fixture: the longest matching source prefix of an LPM trie
//! decides each packet's fate on several CPUs, each matched rule's packet and byte totals are
//! kept exactly under the value's `bpf_spin_lock` even when 4 CPUs hit one rule at once, and
//! the queue keeps the last dropped sources, oldest forgotten first.

mod common;

use bpfvm::maps::{flags::BPF_F_LOCK, Map};
use bpfvm::{CpuId, Input};

const XDP_DROP: u64 = 1;
const XDP_PASS: u64 = 2;
const N: u32 = 4;

fn frame(src: [u8; 4], payload: usize) -> Vec<u8> {
    let mut f = vec![0xaa; 12];
    f.extend_from_slice(&0x0800u16.to_be_bytes());
    let mut ip = vec![0u8; 20];
    ip[0] = 0x45;
    ip[9] = 17;
    ip[12..16].copy_from_slice(&src);
    ip[16..20].copy_from_slice(&[192, 0, 2, 1]);
    f.extend(ip);
    f.extend(std::iter::repeat_n(0x5a, payload));
    f
}

fn prefix(len: u32, addr: [u8; 4]) -> Vec<u8> {
    [&len.to_ne_bytes()[..], &addr].concat()
}

fn rule(id: u32, pass: bool) -> Vec<u8> {
    [id.to_ne_bytes(), u32::from(pass).to_ne_bytes()].concat()
}

/// `(packets, bytes)` of rule `id`, read under the value's lock (`BPF_F_LOCK`).
fn stats(map: &Map, id: u32) -> Option<(u64, u64)> {
    let mut v = [0u8; 24];
    map.lookup(&id.to_ne_bytes(), &mut v, BPF_F_LOCK).ok()?;
    assert_eq!(&v[..4], &[0; 4], "the lock word reads as 0 from the host");
    let word = |at: usize| u64::from_ne_bytes(v[at..at + 8].try_into().unwrap());
    Some((word(8), word(16)))
}

fn seed(maps: &bpfvm::loader::ObjectMaps) {
    let rules = maps.get("rules").unwrap();
    for (len, addr, id, pass) in [
        (8, [10, 0, 0, 0], 1, true),
        (16, [10, 1, 0, 0], 2, false),
        (24, [10, 1, 2, 0], 3, true),
        (16, [192, 168, 0, 0], 4, false),
    ] {
        rules
            .update(&prefix(len, addr), &rule(id, pass), 0)
            .unwrap();
    }
}

#[test]
fn longest_prefix_decides_and_rules_count_what_they_matched() {
    let (obj, maps, vm) = common::fixture_vm("lpm_firewall", N);
    assert_eq!(
        maps.get("rule_stats").unwrap().spin_lock_off(),
        Some(0),
        "the loader finds the bpf_spin_lock in the value's BTF"
    );
    seed(&maps);
    let prog = common::fixture_program(&vm, &obj, &maps, "xdp_firewall");
    let cases: [(&str, Vec<u8>, u64); 7] = [
        ("10/8 passes", frame([10, 9, 9, 9], 10), XDP_PASS),
        ("10.1/16 drops", frame([10, 1, 9, 9], 10), XDP_DROP),
        ("10.1.2/24 passes", frame([10, 1, 2, 3], 10), XDP_PASS),
        ("192.168/16 drops", frame([192, 168, 5, 5], 10), XDP_DROP),
        ("no rule passes", frame([8, 8, 8, 8], 10), XDP_PASS),
        (
            "not IPv4 passes",
            vec![0; 14].into_iter().chain([0x86, 0xdd]).collect(),
            XDP_PASS,
        ),
        (
            "truncated drops",
            frame([10, 1, 9, 9], 0)[..20].to_vec(),
            XDP_DROP,
        ),
    ];
    let events: Vec<(CpuId, Input)> = cases
        .iter()
        .enumerate()
        .map(|(i, (_, f, _))| (CpuId(i as u32 % N), Input::packet(f.clone())))
        .collect();
    for ((what, _, want), got) in cases.iter().zip(vm.run_events(&prog, &events)) {
        assert_eq!(got.unwrap().retval, *want, "{what}");
    }
    let s = maps.get("rule_stats").unwrap();
    let len = frame([0; 4], 10).len() as u64;
    assert_eq!(stats(s, 1), Some((1, len)));
    assert_eq!(stats(s, 2), Some((1, len)));
    assert_eq!(stats(s, 3), Some((1, len)));
    assert_eq!(stats(s, 4), Some((1, len)));
    assert_eq!(stats(s, 5), None, "no rule 5");
    // The dropped sources. The events ran on several CPUs in parallel, so the queue's
    // order between them is the order the CPUs happened to run in: compare as a set.
    let log = maps.get("drop_log").unwrap();
    let mut v = [0u8; 4];
    let mut dropped = Vec::new();
    for _ in 0..2 {
        log.lookup_and_delete(&[], &mut v, 0).unwrap();
        dropped.push(v);
    }
    dropped.sort();
    assert_eq!(dropped, [[10, 1, 9, 9], [192, 168, 5, 5]]);
    assert_eq!(
        log.lookup_and_delete(&[], &mut v, 0).unwrap_err().errno(),
        2
    );
}

#[test]
fn four_cpus_on_one_rule_lose_no_update_and_the_log_keeps_the_last_eight() {
    let (obj, maps, vm) = common::fixture_vm("lpm_firewall", N);
    seed(&maps);
    let prog = common::fixture_program(&vm, &obj, &maps, "xdp_firewall");
    const PER_CPU: u32 = 3000;
    let mut events = Vec::new();
    for i in 0..PER_CPU {
        for cpu in 0..N {
            // Every packet matches rule 2 (10.1/16, drop); the last byte tells them apart.
            let src = [10, 1, (cpu * 10) as u8, (i % 250) as u8];
            events.push((CpuId(cpu), Input::packet(frame(src, cpu as usize))));
        }
    }
    for r in vm.run_events(&prog, &events) {
        assert_eq!(r.unwrap().retval, XDP_DROP);
    }
    let total = u64::from(PER_CPU * N);
    let bytes: u64 = (0..N)
        .map(|cpu| u64::from(PER_CPU) * frame([0; 4], cpu as usize).len() as u64)
        .sum();
    assert_eq!(
        stats(maps.get("rule_stats").unwrap(), 2),
        Some((total, bytes)),
        "every update made under the lock counts"
    );
    // The queue holds 8 sources: the last 8 pushed, whichever CPUs pushed them.
    let log = maps.get("drop_log").unwrap();
    assert_eq!(log.element_count(), 8);
    let mut v = [0u8; 4];
    while log.lookup_and_delete(&[], &mut v, 0).is_ok() {
        assert_eq!(&v[..2], &[10, 1]);
    }
}

#[test]
fn host_rule_changes_take_effect_on_the_next_packet() {
    let (obj, maps, vm) = common::fixture_vm("lpm_firewall", 2);
    seed(&maps);
    let prog = common::fixture_program(&vm, &obj, &maps, "xdp_firewall");
    let pkt = Input::packet(frame([10, 1, 2, 3], 0));
    assert_eq!(vm.run(&prog, CpuId(1), &pkt).unwrap().retval, XDP_PASS);
    let rules = maps.get("rules").unwrap();
    rules.delete(&prefix(24, [10, 1, 2, 0]), 0).unwrap();
    assert_eq!(
        vm.run(&prog, CpuId(1), &pkt).unwrap().retval,
        XDP_DROP,
        "now 10.1/16"
    );
    // The host walks the rules in the kernel's order: more specific prefixes first.
    let mut keys = Vec::new();
    let mut next = [0u8; 8];
    let mut prev: Option<Vec<u8>> = None;
    while rules.get_next_key(prev.as_deref(), &mut next, 0).is_ok() {
        keys.push((
            u32::from_ne_bytes(next[..4].try_into().unwrap()),
            next[4..].to_vec(),
        ));
        prev = Some(next.to_vec());
    }
    assert_eq!(
        keys,
        [
            (16, vec![10, 1, 0, 0]),
            (8, vec![10, 0, 0, 0]),
            (16, vec![192, 168, 0, 0]),
        ]
    );
}
