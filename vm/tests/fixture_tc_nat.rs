//! Checks the tc NAT fixture (`tc_nat`) on several CPUs: `tc_dnat` rewrites the destination
//! address and port of TCP and UDP packets of a forwarded port, `tc_snat` the source of the
//! replies, with `bpf_l3/l4_csum_replace`, so both checksums stay valid (a zero UDP checksum
//! stays zero); redirected packets name their egress device; per-CPU counters count.

mod common;

use bpfvm::loader::ObjectMaps;
use bpfvm::{CpuId, Input, RedirectTarget};
use common::*;

const PUBLIC: [u8; 4] = [192, 0, 2, 1];
const PRIVATE: [u8; 4] = [10, 0, 0, 5];
const CLIENT: [u8; 4] = [198, 51, 100, 7];

fn sum16(b: &[u8]) -> u32 {
    b.chunks(2)
        .map(|c| u32::from(u16::from_be_bytes([c[0], *c.get(1).unwrap_or(&0)])))
        .sum()
}

fn fold(mut s: u32) -> u16 {
    while s > 0xffff {
        s = (s & 0xffff) + (s >> 16);
    }
    !(s as u16)
}

/// The L4 checksum of the IPv4 packet `ip` (header + segment) over its pseudo header.
fn l4_checksum(ip: &[u8]) -> u16 {
    let seg = &ip[20..];
    let mut pseudo = ip[12..20].to_vec();
    pseudo.extend([0, ip[9]]);
    pseudo.extend((seg.len() as u16).to_be_bytes());
    fold(sum16(&pseudo) + sum16(seg))
}

/// Ethernet + IPv4 + TCP (`proto` 6) or UDP (17) with valid checksums (`zero_udp`: UDP
/// without one).
fn packet(
    proto: u8,
    src: [u8; 4],
    sport: u16,
    dst: [u8; 4],
    dport: u16,
    zero_udp: bool,
) -> Vec<u8> {
    let l4len = if proto == 6 { 20 } else { 8 };
    let payload = b"hello, nat";
    let mut ip = vec![0x45, 0];
    ip.extend(((20 + l4len + payload.len()) as u16).to_be_bytes());
    ip.extend([0, 7, 0x40, 0, 64, proto, 0, 0]);
    ip.extend(src);
    ip.extend(dst);
    let c = fold(sum16(&ip));
    ip[10..12].copy_from_slice(&c.to_be_bytes());
    let mut l4 = vec![0u8; l4len];
    l4[0..2].copy_from_slice(&sport.to_be_bytes());
    l4[2..4].copy_from_slice(&dport.to_be_bytes());
    if proto == 6 {
        l4[12] = 0x50;
    } else {
        l4[4..6].copy_from_slice(&((8 + payload.len()) as u16).to_be_bytes());
    }
    ip.extend(l4);
    ip.extend(payload);
    if !(proto == 17 && zero_udp) {
        let at = if proto == 6 { 36 } else { 26 };
        let c = l4_checksum(&ip);
        ip[at..at + 2].copy_from_slice(&c.to_be_bytes());
    }
    let mut f = vec![2, 0, 0, 0, 0, 1, 2, 0, 0, 0, 0, 2, 0x08, 0x00];
    f.extend(ip);
    f
}

fn rule(maps: &ObjectMaps, table: &str, proto: u8, from: ([u8; 4], u16), to: ([u8; 4], u16)) {
    let mut k = from.0.to_vec();
    k.extend(from.1.to_be_bytes());
    k.extend([proto, 0]);
    let mut v = to.0.to_vec();
    v.extend(to.1.to_be_bytes());
    v.extend([0, 0]);
    maps.get(table).unwrap().update(&k, &v, 0).unwrap();
}

#[test]
fn ports_are_forwarded_and_replies_translated_back_with_valid_checksums() {
    let (obj, maps, vm) = fixture_vm("tc_nat", 4);
    for proto in [6, 17] {
        rule(&maps, "dnat", proto, (PUBLIC, 8080), (PRIVATE, 80));
        rule(&maps, "snat", proto, (PRIVATE, 80), (PUBLIC, 8080));
    }
    let dnat = fixture_program(&vm, &obj, &maps, "tc_dnat");
    let snat = fixture_program(&vm, &obj, &maps, "tc_snat");
    let mut cpu = 0;
    for (proto, zero_udp) in [(6u8, false), (17, false), (17, true)] {
        for sport in [1024u16, 40000, 65535] {
            // The client's request to the public port reaches the private server.
            let req = packet(proto, CLIENT, sport, PUBLIC, 8080, zero_udp);
            let out = vm
                .run(&dnat, CpuId(cpu % 4), &Input::packet(req.clone()))
                .unwrap();
            cpu += 1;
            assert_eq!(out.retval, 0, "TC_ACT_OK");
            let want = packet(proto, CLIENT, sport, PRIVATE, 80, zero_udp);
            assert_eq!(
                out.data, want,
                "proto {proto} sport {sport} zero_udp {zero_udp}"
            );
            assert_eq!(fold(sum16(&out.data[14..34])), 0, "IPv4 checksum");
            // The server's reply leaves from the public address and port.
            let reply = packet(proto, PRIVATE, 80, CLIENT, sport, zero_udp);
            let out = vm
                .run(&snat, CpuId(cpu % 4), &Input::packet(reply))
                .unwrap();
            cpu += 1;
            assert_eq!(
                out.data,
                packet(proto, PUBLIC, 8080, CLIENT, sport, zero_udp)
            );
        }
    }
    // Other ports pass untouched; counters are per CPU.
    let other = packet(6, CLIENT, 5555, PUBLIC, 443, false);
    let out = vm
        .run(&dnat, CpuId(2), &Input::packet(other.clone()))
        .unwrap();
    assert_eq!(out.data, other);
    let mut all = [0u8; 32];
    maps.get("counters")
        .unwrap()
        .lookup(&0u32.to_ne_bytes(), &mut all, 0)
        .unwrap();
    let translated: Vec<u64> = all
        .chunks(8)
        .map(|c| u64::from_ne_bytes(c.try_into().unwrap()))
        .collect();
    assert_eq!(translated.iter().sum::<u64>(), 18);
    assert!(translated.iter().all(|&n| n > 0), "{translated:?}");
    maps.get("counters")
        .unwrap()
        .lookup(&1u32.to_ne_bytes(), &mut all, 0)
        .unwrap();
    assert_eq!(
        u64::from_ne_bytes(all[16..24].try_into().unwrap()),
        1,
        "passed on CPU 2"
    );
}

#[test]
fn translated_packets_are_redirected_to_the_configured_egress() {
    let (obj, maps, vm) = fixture_vm("tc_nat", 2);
    rule(&maps, "dnat", 6, (PUBLIC, 8080), (PRIVATE, 80));
    maps.get("config")
        .unwrap()
        .update(&0u32.to_ne_bytes(), &5u32.to_ne_bytes(), 0)
        .unwrap();
    let dnat = fixture_program(&vm, &obj, &maps, "tc_dnat");
    let out = vm
        .run(
            &dnat,
            CpuId(1),
            &Input::packet(packet(6, CLIENT, 999, PUBLIC, 8080, false)),
        )
        .unwrap();
    assert_eq!(out.retval, 7, "TC_ACT_REDIRECT");
    assert_eq!(
        out.redirect,
        Some(RedirectTarget::Ifindex {
            ifindex: 5,
            ingress: false
        })
    );
}
