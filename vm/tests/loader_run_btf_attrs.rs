//! Checks that `btf_attrs.o` runs with its struct-keyed LRU hash and its numerically
//! sized hash: per-flow packet counts and per-map totals come out as the C source says.

mod common;

use bpfvm::{CpuId, Input};

fn flow(saddr: u32, dport: u16) -> Vec<u8> {
    let mut p = Vec::new();
    p.extend_from_slice(&saddr.to_le_bytes());
    p.extend_from_slice(&0x0a00_0002u32.to_le_bytes());
    p.extend_from_slice(&53u16.to_le_bytes());
    p.extend_from_slice(&dport.to_le_bytes());
    p.push(17);
    p.extend_from_slice(&[0xee; 7]); // payload, not part of the key
    p
}

#[test]
fn flows_are_counted_by_struct_key() {
    let (obj, maps, vm) = common::fixture_vm("btf_attrs", 2);
    let prog = common::fixture_program(&vm, &obj, &maps, "track_flow");
    let run = |cpu: u32, p: Vec<u8>| vm.run(&prog, CpuId(cpu), &Input::packet(p)).unwrap().retval;
    assert_eq!(run(0, flow(1, 80)), 1);
    assert_eq!(run(1, flow(1, 80)), 2);
    assert_eq!(run(0, flow(2, 80)), 1);
    assert_eq!(run(1, flow(1, 443)), 1);
    assert_eq!(run(0, flow(1, 80)), 3);
    // Shorter than an Ethernet header: the kernel's XDP test run refuses it (EINVAL).
    let short = vm.run(&prog, CpuId(0), &Input::packet(vec![1, 2, 3]));
    assert_eq!(short.unwrap_err().errno(), 22, "too short for a test run");

    let mut lines: Vec<String> = obj
        .dump_map(&maps, "flows")
        .unwrap()
        .iter()
        .map(|e| format!("{} => {}", e.key, e.values[0]))
        .collect();
    lines.sort();
    assert_eq!(
        lines,
        [
            "{ saddr: 1, daddr: 167772162, sport: 53, dport: 443, proto: 17 } => 1",
            "{ saddr: 1, daddr: 167772162, sport: 53, dport: 80, proto: 17 } => 3",
            "{ saddr: 2, daddr: 167772162, sport: 53, dport: 80, proto: 17 } => 1",
        ]
    );
    let mut totals = [0u8; 16];
    maps.get("sized")
        .unwrap()
        .lookup(&1u32.to_ne_bytes(), &mut totals, 0)
        .unwrap();
    assert_eq!(
        u64::from_ne_bytes(totals[..8].try_into().unwrap()),
        5,
        "packets"
    );
    assert_eq!(
        u64::from_ne_bytes(totals[8..].try_into().unwrap()),
        5 * 20,
        "bytes"
    );
}
