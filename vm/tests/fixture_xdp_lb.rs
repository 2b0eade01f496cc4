//! Checks the XDP load balancer fixture (`xdp_lb`) on four CPUs: flows to a virtual IP are
//! spread over its backends by flow hash, encapsulated in IPIP with a valid outer header,
//! given the next hop's MACs by `bpf_fib_lookup` and redirected through the DEVMAP entry of
//! the egress interface; the per-CPU counters count each CPU's packets; the front stage
//! `xdp_spread` hands each flow to the CPU its hash names through the CPUMAP.

mod common;

use std::collections::BTreeMap;
use std::net::Ipv4Addr;

use bpfvm::helpers::fib::{Interface, Route};
use bpfvm::maps::MapFlags;
use bpfvm::{CpuId, Input, RedirectTarget};
use common::*;

const VIP: [u8; 4] = [192, 0, 2, 1];
const BACKENDS: [[u8; 4]; 2] = [[10, 1, 0, 10], [10, 1, 0, 11]];
const LB_ADDR: [u8; 4] = [10, 1, 0, 1];
const IN_MAC: [u8; 6] = [2, 0, 0, 0, 0, 2];
const OUT_MAC: [u8; 6] = [2, 0, 0, 0, 0, 3];

fn backend_mac(i: usize) -> [u8; 6] {
    [2, 0, 0, 0, 1, 10 + i as u8]
}

/// The fixture's flow hash (what decides the backend and the CPU).
fn flow_hash(saddr: u32, daddr: u32, ports: u32, proto: u8) -> u32 {
    let mut h = saddr.wrapping_mul(0x9e37_79b1);
    h ^= daddr
        .wrapping_add(0x7f4a_7c15)
        .wrapping_add(h << 6)
        .wrapping_add(h >> 2);
    h ^= ports
        .wrapping_add(0x1656_67b1)
        .wrapping_add(h << 6)
        .wrapping_add(h >> 2);
    h ^= u32::from(proto);
    h ^= h >> 16;
    h = h.wrapping_mul(0x85eb_ca6b);
    h ^= h >> 13;
    h = h.wrapping_mul(0xc2b2_ae35);
    h ^ (h >> 16)
}

fn checksum(b: &[u8]) -> u16 {
    let mut s: u32 = b
        .chunks(2)
        .map(|c| u32::from(u16::from_be_bytes([c[0], *c.get(1).unwrap_or(&0)])))
        .sum();
    while s > 0xffff {
        s = (s & 0xffff) + (s >> 16);
    }
    !(s as u16)
}

/// A TCP SYN from `client:sport` to the VIP's port 80.
fn syn(client: [u8; 4], sport: u16) -> Vec<u8> {
    let mut f = [0xaa; 6].to_vec();
    f.extend([2, 0, 0, 0, 0, 0x99, 0x08, 0x00]);
    let mut ip = vec![0x45, 0, 0, 40, 0, 1, 0x40, 0, 63, 6, 0, 0];
    ip.extend(client);
    ip.extend(VIP);
    let c = checksum(&ip);
    ip[10..12].copy_from_slice(&c.to_be_bytes());
    f.extend(ip);
    let mut tcp = vec![0u8; 20];
    tcp[0..2].copy_from_slice(&sport.to_be_bytes());
    tcp[2..4].copy_from_slice(&80u16.to_be_bytes());
    tcp[12] = 0x50;
    tcp[13] = 0x02;
    f.extend(tcp);
    f
}

/// `struct xdp_md` with `ingress_ifindex` 2 for a frame of `len` bytes (as in the kernel's
/// test run, `data_end` gives the packet length: a shorter one asks for fragments).
fn ctx_in(len: usize) -> Vec<u8> {
    let mut c = vec![0u8; 24];
    c[4..8].copy_from_slice(&(len as u32).to_ne_bytes());
    c[12..16].copy_from_slice(&2u32.to_ne_bytes());
    c
}

#[test]
fn flows_are_balanced_encapsulated_and_redirected_on_every_cpu() {
    let (obj, maps, vm) = fixture_vm("xdp_lb", 4);
    let net = vm.net();
    net.add_interface(Interface::new(2, IN_MAC)).unwrap();
    net.add_interface(Interface::new(3, OUT_MAC)).unwrap();
    net.add_address(2, Ipv4Addr::new(10, 0, 0, 1), 24).unwrap();
    net.add_address(3, Ipv4Addr::from(LB_ADDR), 24).unwrap();
    for (i, b) in BACKENDS.iter().enumerate() {
        net.add_neighbour(3, Ipv4Addr::from(*b), backend_mac(i))
            .unwrap();
    }
    net.add_route(Route::to(Ipv4Addr::UNSPECIFIED, 0).via(Ipv4Addr::new(10, 0, 0, 254)))
        .unwrap();
    // Service VIP:80/TCP with backends 0 and 1; egress port 3.
    let mut key = VIP.to_vec();
    key.extend(80u16.to_be_bytes());
    key.extend([6, 0]);
    let mut vip = 0u32.to_ne_bytes().to_vec();
    vip.extend(2u32.to_ne_bytes());
    vip.extend(LB_ADDR);
    vip.extend(0u32.to_ne_bytes());
    maps.get("vips").unwrap().update(&key, &vip, 0).unwrap();
    for (i, b) in BACKENDS.iter().enumerate() {
        maps.get("backends")
            .unwrap()
            .update(&(i as u32).to_ne_bytes(), b, 0)
            .unwrap();
    }
    maps.get("tx_ports")
        .unwrap()
        .update(&3u32.to_ne_bytes(), &3u32.to_ne_bytes(), 0)
        .unwrap();
    let prog = fixture_program(&vm, &obj, &maps, "xdp_lb");

    let mut events = Vec::new();
    for i in 0..32u16 {
        let client = [198, 51, 100, (i % 7) as u8 + 1];
        let data = syn(client, 40000 + i * 13);
        let input = Input {
            ctx: ctx_in(data.len()),
            data,
            ..Input::default()
        };
        events.push((CpuId(u32::from(i % 4)), input));
    }
    let mut per_backend = BTreeMap::new();
    for ((cpu, input), out) in events.iter().zip(vm.run_events(&prog, &events)) {
        let out = out.unwrap_or_else(|e| panic!("run on {cpu}: {e}"));
        let pkt = &input.data;
        assert_eq!(out.retval, 4, "XDP_REDIRECT");
        match out.redirect {
            Some(RedirectTarget::Device {
                key: 3,
                ifindex: 3,
                name,
                ..
            }) => {
                assert_eq!(name.as_str(), "tx_ports")
            }
            other => panic!("redirect {other:?}"),
        }
        let d = &out.data;
        assert_eq!(d.len(), pkt.len() + 20);
        let saddr = u32::from_ne_bytes(pkt[26..30].try_into().unwrap());
        let daddr = u32::from_ne_bytes(pkt[30..34].try_into().unwrap());
        let ports = u32::from_ne_bytes(pkt[34..38].try_into().unwrap());
        let b = (flow_hash(saddr, daddr, ports, 6) % 2) as usize;
        *per_backend.entry(b).or_insert(0) += 1;
        // Ethernet from the FIB's next hop; the outer IPv4 header; the inner packet intact.
        assert_eq!(&d[..6], &backend_mac(b));
        assert_eq!(&d[6..12], &OUT_MAC);
        assert_eq!(&d[12..14], &[0x08, 0x00]);
        let outer = &d[14..34];
        assert_eq!((outer[0], outer[8], outer[9]), (0x45, 64, 4));
        assert_eq!(
            u16::from_be_bytes([outer[2], outer[3]]) as usize,
            pkt.len() - 14 + 20
        );
        assert_eq!(&outer[12..16], &LB_ADDR);
        assert_eq!(&outer[16..20], &BACKENDS[b]);
        assert_eq!(checksum(outer), 0, "valid outer checksum");
        assert_eq!(&d[34..], &pkt[14..]);
    }
    assert_eq!(
        per_backend.len(),
        2,
        "both backends get flows: {per_backend:?}"
    );

    // Per-CPU counters: eight packets on each CPU, all ST_TX (2).
    let mut all = [0u8; 32];
    maps.get("stats")
        .unwrap()
        .lookup(&2u32.to_ne_bytes(), &mut all, 0)
        .unwrap();
    let per_cpu: Vec<u64> = all
        .chunks(8)
        .map(|c| u64::from_ne_bytes(c.try_into().unwrap()))
        .collect();
    assert_eq!(per_cpu, [8, 8, 8, 8]);
    let mut one = [0u8; 8];
    maps.get("stats")
        .unwrap()
        .lookup(&2u32.to_ne_bytes(), &mut one, MapFlags::cpu(3).bits())
        .unwrap();
    assert_eq!(u64::from_ne_bytes(one), 8);
}

#[test]
fn packets_for_no_service_pass_and_a_missing_route_drops() {
    let (obj, maps, vm) = fixture_vm("xdp_lb", 2);
    let prog = fixture_program(&vm, &obj, &maps, "xdp_lb");
    // The ingress device must exist (the kernel's test run: ENODEV otherwise).
    vm.net().add_interface(Interface::new(2, IN_MAC)).unwrap();
    let data = syn([198, 51, 100, 1], 1234);
    let input = Input {
        ctx: ctx_in(data.len()),
        data,
        ..Input::default()
    };
    let out = vm.run(&prog, CpuId(0), &input).unwrap();
    assert_eq!((out.retval, out.redirect), (2, None), "XDP_PASS");
    assert_eq!(out.data, input.data);
    // With the service but no interfaces, bpf_fib_lookup fails: XDP_DROP, counted.
    let mut key = VIP.to_vec();
    key.extend(80u16.to_be_bytes());
    key.extend([6, 0]);
    let vip = [
        0u32.to_ne_bytes(),
        1u32.to_ne_bytes(),
        [10, 1, 0, 1],
        [0; 4],
    ]
    .concat();
    maps.get("vips").unwrap().update(&key, &vip, 0).unwrap();
    maps.get("backends")
        .unwrap()
        .update(&0u32.to_ne_bytes(), &BACKENDS[0], 0)
        .unwrap();
    let out = vm.run(&prog, CpuId(1), &input).unwrap();
    assert_eq!(out.retval, 1, "XDP_DROP");
    let mut v = [0u8; 8];
    maps.get("stats")
        .unwrap()
        .lookup(&3u32.to_ne_bytes(), &mut v, MapFlags::cpu(1).bits())
        .unwrap();
    assert_eq!(u64::from_ne_bytes(v), 1, "ST_NO_ROUTE on CPU 1");
}

#[test]
fn the_front_stage_spreads_flows_over_cpus_through_the_cpumap() {
    let (obj, maps, vm) = fixture_vm("xdp_lb", 4);
    maps.get("nr_cpus")
        .unwrap()
        .update(&0u32.to_ne_bytes(), &4u32.to_ne_bytes(), 0)
        .unwrap();
    for cpu in 0..4u32 {
        maps.get("cpu_map")
            .unwrap()
            .update(&cpu.to_ne_bytes(), &256u32.to_ne_bytes(), 0)
            .unwrap();
    }
    let prog = fixture_program(&vm, &obj, &maps, "xdp_spread");
    let mut to_cpu = [0u32; 4];
    for i in 0..64u16 {
        let pkt = syn([203, 0, 113, (i % 11) as u8], 1000 + i * 7);
        let saddr = u32::from_ne_bytes(pkt[26..30].try_into().unwrap());
        let daddr = u32::from_ne_bytes(pkt[30..34].try_into().unwrap());
        let ports = u32::from_ne_bytes(pkt[34..38].try_into().unwrap());
        let want = flow_hash(saddr, daddr, ports, 6) % 4;
        let out = vm
            .run(&prog, CpuId(u32::from(i % 4)), &Input::packet(pkt))
            .unwrap();
        match out.redirect {
            Some(RedirectTarget::Cpu { cpu, .. }) => assert_eq!(cpu, want),
            other => panic!("{other:?}"),
        }
        to_cpu[want as usize] += 1;
    }
    assert!(
        to_cpu.iter().all(|&n| n > 0),
        "every CPU gets flows: {to_cpu:?}"
    );
    // A CPU without a CPUMAP entry: the fallback action, XDP_PASS.
    maps.get("cpu_map")
        .unwrap()
        .delete(&2u32.to_ne_bytes(), 0)
        .unwrap();
    let mut found = false;
    for i in 0..64u16 {
        let pkt = syn([203, 0, 113, (i % 11) as u8], 1000 + i * 7);
        let out = vm.run(&prog, CpuId(0), &Input::packet(pkt)).unwrap();
        if out.redirect.is_none() {
            assert_eq!(out.retval, 2);
            found = true;
        }
    }
    assert!(found);
}
