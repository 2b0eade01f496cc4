//! Checks the realistic packet fixtures against the kernel: the XDP load balancer
//! (`xdp_lb`: IPIP encapsulation, `bpf_fib_lookup`, DEVMAP redirect, per-CPU counters), its
//! CPUMAP front stage (`xdp_spread`) and the tc NAT (`tc_nat`: checksum replacement,
//! redirect) run in a fresh network namespace set up with `ip` (and in bpfvm with the same
//! network), on every CPU, with the same maps seeded on both sides; return values, output
//! packets and every map (per-CPU counters included) must be the same.
#![cfg(target_os = "linux")]

use std::net::{IpAddr, Ipv4Addr};
use std::process::Command;

use bpfvm::helpers::fib::{Interface, Route};
use bpfvm_conformance::kernel::pair::Pair;
use bpfvm_conformance::kernel::{self};

const FIXTURES: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/../vm/tests/fixtures");

const SETUP: &str = "
set -e
ip link set lo up
ip link add vin address 02:00:00:00:00:02 type veth peer name vinp
ip link add vout address 02:00:00:00:00:03 type veth peer name voutp
for d in vin vinp vout voutp; do ip link set $d up; done
ip addr add 10.0.0.1/24 dev vin
ip addr add 10.1.0.1/24 dev vout
ip neigh add 10.1.0.10 lladdr 02:00:00:00:01:0a dev vout nud permanent
ip neigh add 10.1.0.11 lladdr 02:00:00:00:01:0b dev vout nud permanent
ip route add default via 10.0.0.254
sysctl -qw net.ipv4.conf.vin.forwarding=1
";

fn ifindex(name: &str) -> u32 {
    let out = Command::new("ip")
        .args(["-o", "link", "show", name])
        .output()
        .expect("ip");
    String::from_utf8_lossy(&out.stdout)
        .split(':')
        .next()
        .unwrap()
        .trim()
        .parse()
        .unwrap()
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

/// Ethernet + IPv4 + TCP/UDP from `src:sport` to `dst:dport`, valid checksums.
fn packet(proto: u8, src: [u8; 4], sport: u16, dst: [u8; 4], dport: u16) -> Vec<u8> {
    let l4len = if proto == 6 { 20 } else { 8 };
    let mut ip = vec![0x45, 0];
    ip.extend(((20 + l4len + 6) as u16).to_be_bytes());
    ip.extend([0, 7, 0x40, 0, 64, proto, 0, 0]);
    ip.extend(src);
    ip.extend(dst);
    let c = checksum(&ip);
    ip[10..12].copy_from_slice(&c.to_be_bytes());
    let mut l4 = vec![0u8; l4len];
    l4[0..2].copy_from_slice(&sport.to_be_bytes());
    l4[2..4].copy_from_slice(&dport.to_be_bytes());
    if proto == 6 {
        l4[12] = 0x50;
    } else {
        l4[4..6].copy_from_slice(&14u16.to_be_bytes());
    }
    l4.extend(b"abcdef");
    let mut pseudo = ip[12..20].to_vec();
    pseudo.extend([0, proto, 0, (l4len + 6) as u8]);
    pseudo.extend(&l4);
    let c = checksum(&pseudo);
    let at = if proto == 6 { 16 } else { 6 };
    l4[at..at + 2].copy_from_slice(&c.to_be_bytes());
    let mut f = vec![2, 0, 0, 0, 0, 2, 2, 0, 0, 0, 0, 0x99, 0x08, 0x00];
    f.extend(ip);
    f.extend(l4);
    f
}

struct Compare {
    differ: usize,
    runs: usize,
    /// (program, return value) of the kernel's runs.
    seen: std::collections::BTreeSet<(String, u32)>,
}

impl Compare {
    /// Runs `prog` on `cpu` on both sides (XDP with `ingress_ifindex` when given).
    fn run(&mut self, pair: &Pair, prog: &str, cpu: u32, pkt: &[u8], ingress: Option<u32>) {
        let r = match ingress {
            Some(ifx) => pair.run_xdp_from(prog, cpu, pkt, ifx),
            None => pair.run(prog, cpu, &[], pkt, 1),
        };
        self.runs += 1;
        match (r.kernel, r.bpfvm) {
            (Ok(k), Ok(s)) => {
                self.seen.insert((prog.to_owned(), k.retval));
                if u64::from(k.retval) != s.retval || k.data_out != s.data_out {
                    self.differ += 1;
                    println!(
                        "DIFFERENCE {prog} on cpu {cpu}: kernel {} {:?}\n  bpfvm {} {:?}",
                        k.retval, k.data_out, s.retval, s.data_out
                    );
                }
            }
            (k, s) => {
                self.differ += 1;
                println!("DIFFERENCE {prog} on cpu {cpu}: kernel {k:?} bpfvm {s:?}");
            }
        }
    }

    fn maps(&mut self, pair: &Pair, names: &[&str]) {
        for m in names {
            let (k, s) = pair.dumps(m);
            if k != s {
                self.differ += 1;
                println!("DIFFERENCE map {m}:\n  kernel {k:?}\n  bpfvm  {s:?}");
            }
        }
    }
}

#[test]
fn packet_fixtures_agree_with_the_kernel() {
    if !kernel::oracle_or_skip() {
        return;
    }
    std::thread::spawn(in_new_netns)
        .join()
        .expect("the test thread panicked");
}

fn in_new_netns() {
    // SAFETY: unshare(2) of the network namespace affects only this thread.
    let rc = unsafe { libc::unshare(libc::CLONE_NEWNET) };
    assert_eq!(rc, 0, "unshare: {}", std::io::Error::last_os_error());
    let st = Command::new("sh").arg("-c").arg(SETUP).status();
    assert!(
        matches!(st, Ok(s) if s.success()),
        "namespace setup: {st:?}"
    );
    let (vin, vout) = (ifindex("vin"), ifindex("vout"));
    let n = kernel::possible_cpus().unwrap();
    let mut c = Compare {
        differ: 0,
        runs: 0,
        seen: Default::default(),
    };

    // The load balancer and its front stage.
    let mut lb = Pair::open(&format!("{FIXTURES}/xdp_lb.o"), n).unwrap();
    lb.load("xdp_lb").unwrap();
    lb.load("xdp_spread").unwrap();
    let net = lb.vm.net();
    net.add_interface(Interface::new(vin, [2, 0, 0, 0, 0, 2]))
        .unwrap();
    net.add_interface(Interface::new(vout, [2, 0, 0, 0, 0, 3]).forwarding(false, false))
        .unwrap();
    net.add_address(vin, Ipv4Addr::new(10, 0, 0, 1), 24)
        .unwrap();
    net.add_address(vout, Ipv4Addr::new(10, 1, 0, 1), 24)
        .unwrap();
    net.add_neighbour(vout, Ipv4Addr::new(10, 1, 0, 10), [2, 0, 0, 0, 1, 10])
        .unwrap();
    net.add_neighbour(vout, Ipv4Addr::new(10, 1, 0, 11), [2, 0, 0, 0, 1, 11])
        .unwrap();
    net.add_route(
        Route::to(IpAddr::V4(Ipv4Addr::UNSPECIFIED), 0).via(Ipv4Addr::new(10, 0, 0, 254)),
    )
    .unwrap();
    let vip_key = |port: u16, proto: u8| {
        let mut k = vec![192, 0, 2, 1];
        k.extend(port.to_be_bytes());
        k.extend([proto, 0]);
        k
    };
    let vip = [
        0u32.to_ne_bytes(),
        2u32.to_ne_bytes(),
        [10, 1, 0, 1],
        [0; 4],
    ]
    .concat();
    lb.update("vips", &vip_key(80, 6), &vip).unwrap();
    lb.update("vips", &vip_key(53, 17), &vip).unwrap();
    // A service whose backend has no neighbour entry, one no route reaches.
    let lonely = [
        2u32.to_ne_bytes(),
        2u32.to_ne_bytes(),
        [10, 1, 0, 1],
        [0; 4],
    ]
    .concat();
    lb.update("vips", &vip_key(81, 6), &lonely).unwrap();
    for (i, b) in [
        [10, 1, 0, 10],
        [10, 1, 0, 11],
        [10, 1, 0, 99],
        [127, 0, 0, 1],
    ]
    .iter()
    .enumerate()
    {
        lb.update("backends", &(i as u32).to_ne_bytes(), b).unwrap();
    }
    lb.update("tx_ports", &vout.to_ne_bytes(), &vout.to_ne_bytes())
        .unwrap();
    lb.update("nr_cpus", &0u32.to_ne_bytes(), &n.to_ne_bytes())
        .unwrap();
    for cpu in 0..n.min(2) {
        lb.update("cpu_map", &cpu.to_ne_bytes(), &256u32.to_ne_bytes())
            .unwrap();
    }
    for i in 0..40u16 {
        let cpu = u32::from(i) % n;
        let client = [198, 51, 100, (i % 9) as u8 + 1];
        let (proto, port) = [(6, 80), (17, 53), (6, 81), (6, 443), (1, 80)][usize::from(i % 5)];
        let pkt = packet(
            if proto == 1 { 6 } else { proto },
            client,
            30000 + i,
            [192, 0, 2, 1],
            port,
        );
        let pkt = if proto == 1 {
            [&pkt[..12], &[0x86, 0xdd], &pkt[14..]].concat()
        } else {
            pkt
        };
        c.run(&lb, "xdp_lb", cpu, &pkt, Some(vin));
        c.run(&lb, "xdp_lb", cpu, &pkt, Some(vout));
        c.run(&lb, "xdp_spread", cpu, &pkt, None);
    }
    c.maps(&lb, &["stats", "vips", "backends", "tx_ports", "cpu_map"]);

    // The NAT.
    let mut nat = Pair::open(&format!("{FIXTURES}/tc_nat.o"), n).unwrap();
    nat.load("tc_dnat").unwrap();
    nat.load("tc_snat").unwrap();
    for proto in [6u8, 17] {
        let mut k = vec![192, 0, 2, 1];
        k.extend(8080u16.to_be_bytes());
        k.extend([proto, 0]);
        let mut v = vec![10, 0, 0, 5];
        v.extend(80u16.to_be_bytes());
        v.extend([0, 0]);
        nat.update("dnat", &k, &v).unwrap();
        nat.update(
            "snat",
            &[&v[..6], &[proto, 0]].concat(),
            &[&k[..6], &[0, 0]].concat(),
        )
        .unwrap();
    }
    for i in 0..24u16 {
        let cpu = u32::from(i) % n;
        let proto = if i % 2 == 0 { 6 } else { 17 };
        let sport = 1000 + i * 2311;
        let req = packet(proto, [198, 51, 100, 7], sport, [192, 0, 2, 1], 8080);
        let mut zero = req.clone();
        if proto == 17 {
            zero[40] = 0;
            zero[41] = 0;
        }
        let reply = packet(proto, [10, 0, 0, 5], 80, [198, 51, 100, 7], sport);
        c.run(&nat, "tc_dnat", cpu, &req, None);
        c.run(&nat, "tc_dnat", cpu, &zero, None);
        c.run(&nat, "tc_snat", cpu, &reply, None);
        if i == 12 {
            nat.update("config", &0u32.to_ne_bytes(), &vout.to_ne_bytes())
                .unwrap();
        }
    }
    c.maps(&nat, &["counters", "dnat", "snat", "config"]);
    println!(
        "{} runs compared, {} differences; outcomes {:?}",
        c.runs, c.differ, c.seen
    );
    assert_eq!(c.differ, 0, "the packet fixtures differ from the kernel");
    // Every path was taken: redirect, drop (no neighbour, no route) and pass; CPUMAP
    // redirects and fallbacks; NAT with and without the egress redirect.
    for (p, r) in [
        ("xdp_lb", 4),
        ("xdp_lb", 1),
        ("xdp_lb", 2),
        ("xdp_spread", 4),
        ("tc_dnat", 0),
        ("tc_dnat", 7),
        ("tc_snat", 7),
    ] {
        assert!(
            c.seen.contains(&(p.to_owned(), r)),
            "{p} never returned {r}"
        );
    }
}
