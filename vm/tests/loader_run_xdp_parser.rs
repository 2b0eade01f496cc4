//! Checks that `xdp_parser.o` parses ethernet/IPv4/UDP with bounds checks: UDP to port
//! 7777 is dropped, other frames pass, truncated headers are dropped as malformed, and
//! each verdict is counted in the right per-CPU slot.

mod common;

use bpfvm::{CpuId, Input};

const XDP_DROP: u64 = 1;
const XDP_PASS: u64 = 2;
const N: u32 = 2;

fn ether(proto: u16, payload: &[u8]) -> Vec<u8> {
    let mut f = vec![0xaa; 6];
    f.extend_from_slice(&[0xbb; 6]);
    f.extend_from_slice(&proto.to_be_bytes());
    f.extend_from_slice(payload);
    f
}

fn ipv4(ihl: u8, protocol: u8, payload: &[u8]) -> Vec<u8> {
    let mut h = vec![0u8; usize::from(ihl) * 4];
    h[0] = 0x40 | ihl;
    h[9] = protocol;
    h.extend_from_slice(payload);
    h
}

/// The same IPv4 packet claiming another header length.
fn with_ihl(mut packet: Vec<u8>, ihl: u8) -> Vec<u8> {
    packet[0] = 0x40 | ihl;
    packet
}

fn udp(dport: u16) -> Vec<u8> {
    let mut u = 1234u16.to_be_bytes().to_vec();
    u.extend_from_slice(&dport.to_be_bytes());
    u.extend_from_slice(&[0, 8, 0, 0]);
    u
}

#[test]
fn verdicts_and_counters_follow_the_rule() {
    let (obj, maps, vm) = common::fixture_vm("xdp_parser", N);
    let prog = common::fixture_program(&vm, &obj, &maps, "xdp_udp_filter");
    let cases: Vec<(&str, Vec<u8>, u64, u32)> = vec![
        ("arp", ether(0x0806, &[0; 28]), XDP_PASS, 0),
        ("tcp", ether(0x0800, &ipv4(5, 6, &[0; 20])), XDP_PASS, 1),
        ("udp 53", ether(0x0800, &ipv4(5, 17, &udp(53))), XDP_PASS, 2),
        (
            "udp 7777",
            ether(0x0800, &ipv4(5, 17, &udp(7777))),
            XDP_DROP,
            3,
        ),
        (
            "udp 7777 after options",
            ether(0x0800, &ipv4(7, 17, &udp(7777))),
            XDP_DROP,
            3,
        ),
        (
            "udp 7777 byte-swapped",
            ether(0x0800, &ipv4(5, 17, &udp(0x611e))),
            XDP_PASS,
            2,
        ),
        ("short ipv4", ether(0x0800, &[0x45; 10]), XDP_DROP, 4),
        (
            "short udp",
            ether(0x0800, &ipv4(5, 17, &[0; 4])),
            XDP_DROP,
            4,
        ),
        (
            "options past the end",
            ether(0x0800, &with_ihl(ipv4(5, 17, &udp(53)), 15)),
            XDP_DROP,
            4,
        ),
        (
            "ihl below 5",
            ether(0x0800, &with_ihl(ipv4(5, 17, &udp(7777)), 4)),
            XDP_DROP,
            4,
        ),
    ];
    let mut expected = [[0u64; N as usize]; 5];
    for (i, (name, frame, verdict, slot)) in cases.iter().enumerate() {
        let cpu = i as u32 % N;
        let out = vm
            .run(&prog, CpuId(cpu), &Input::packet(frame.clone()))
            .unwrap();
        assert_eq!(out.retval, *verdict, "{name}");
        assert_eq!(&out.data, frame, "{name}: packet unchanged");
        expected[*slot as usize][cpu as usize] += 1;
    }
    let stats = maps.get("stats").unwrap();
    for (slot, want) in expected.iter().enumerate() {
        let mut buf = vec![0u8; 8 * N as usize];
        stats
            .lookup(&(slot as u32).to_ne_bytes(), &mut buf, 0)
            .unwrap();
        let got: Vec<u64> = buf
            .chunks(8)
            .map(|c| u64::from_ne_bytes(c.try_into().unwrap()))
            .collect();
        assert_eq!(got, want, "slot {slot}");
    }
}
