//! Checks that `btf_attrs.o` runs with its struct-keyed LRU hash and its numerically
//! sized hash: per-flow packet counts and per-map totals come out as the C source says.

use bpfvm::loader::Object;
use bpfvm::{CpuId, Input, Vm};

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
    let path = format!("{}/tests/fixtures/btf_attrs.o", env!("CARGO_MANIFEST_DIR"));
    let obj = Object::from_file(path).unwrap();
    let maps = obj.create_maps(2).unwrap();
    let vm = Vm::builder().cpus(2).build();
    let prog = vm
        .load(obj.vm_program("track_flow", &maps).unwrap())
        .unwrap();
    let run = |cpu: u32, p: Vec<u8>| vm.run(&prog, CpuId(cpu), &Input::packet(p)).unwrap().retval;
    assert_eq!(run(0, flow(1, 80)), 1);
    assert_eq!(run(1, flow(1, 80)), 2);
    assert_eq!(run(0, flow(2, 80)), 1);
    assert_eq!(run(1, flow(1, 443)), 1);
    assert_eq!(run(0, flow(1, 80)), 3);
    assert_eq!(run(0, vec![1, 2, 3]), 0, "too short for a flow");

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
