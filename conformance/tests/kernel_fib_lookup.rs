//! Checks `bpf_fib_lookup` against the kernel: a fresh network namespace gets two veth
//! devices with addresses, neighbours and routes (gateways, reject routes, two metrics, a
//! locked MTU, another table) set up with `ip`, bpfvm's [`Net`] gets the same, and the
//! fixture `fib` looks up IPv4 and IPv6 destinations from XDP and tc with every flag in
//! both; the result code and every field of `struct bpf_fib_lookup` must be the same.
#![cfg(target_os = "linux")]

use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};
use std::process::Command;

use bpfvm::helpers::fib::{flags, Interface, Net, Route, RouteType};
use bpfvm_conformance::kernel::diff::SplitMix64;
use bpfvm_conformance::kernel::pair::Pair;
use bpfvm_conformance::kernel::{self};

const OBJECT: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/../vm/tests/fixtures/fib.o");

const MAC1: [u8; 6] = [2, 0, 0, 0, 0, 1];
const MAC2: [u8; 6] = [2, 0, 0, 0, 0, 2];
const GW_MAC: [u8; 6] = [2, 0, 0, 0, 2, 2];
const GW6_MAC: [u8; 6] = [2, 0, 0, 0, 6, 2];

/// The namespace's setup, as `ip` and `sysctl` commands.
const SETUP: &str = "
set -e
ip link set lo up
ip link add v1 address 02:00:00:00:00:01 type veth peer name v1p
ip link add v2 address 02:00:00:00:00:02 mtu 1400 type veth peer name v2p
for d in v1 v1p v2 v2p; do ip link set $d up; done
ip addr add 10.0.1.1/24 dev v1
ip addr add 10.0.2.1/24 dev v2
ip -6 addr add 2001:db8:1::1/64 dev v1 nodad
ip -6 addr add 2001:db8:2::1/64 dev v2 nodad
ip neigh add 10.0.2.2 lladdr 02:00:00:00:02:02 dev v2 nud permanent
ip -6 neigh add 2001:db8:2::2 lladdr 02:00:00:00:06:02 dev v2 nud permanent
ip route add 192.168.0.0/16 via 10.0.2.2
ip route add blackhole 192.168.99.0/24
ip route add unreachable 192.168.98.0/24
ip route add prohibit 192.168.97.0/24
ip route add 172.16.0.0/12 via 10.0.2.2 metric 50
ip route add 172.16.0.0/12 via 10.0.2.3 metric 10
ip route add 198.51.100.0/24 via 10.0.2.2 mtu lock 1300
ip route add 203.0.113.0/24 via 10.0.2.2 table 100
ip route add 100.64.0.0/10 via 10.0.2.2 src 10.0.1.1
ip -6 route add 2001:db8:100::/48 via 2001:db8:2::2
ip -6 route add blackhole 2001:db8:99::/48
ip -6 route add prohibit 2001:db8:97::/48
ip -6 route add 2001:db8:300::/48 via 2001:db8:2::2 mtu lock 1300
sysctl -qw net.ipv4.conf.v1.forwarding=1 net.ipv6.conf.v1.forwarding=1
";

fn ifindex(name: &str) -> u32 {
    let out = Command::new("ip")
        .args(["-o", "link", "show", name])
        .output()
        .expect("ip");
    let text = String::from_utf8_lossy(&out.stdout);
    text.split(':').next().unwrap().trim().parse().unwrap()
}

fn v4(s: &str) -> IpAddr {
    IpAddr::V4(s.parse::<Ipv4Addr>().unwrap())
}

fn v6(s: &str) -> IpAddr {
    IpAddr::V6(s.parse::<Ipv6Addr>().unwrap())
}

/// bpfvm's network: the same as [`SETUP`].
fn configure(net: &Net, i1: u32, i2: u32) {
    net.add_interface(Interface::new(i1, MAC1)).unwrap();
    net.add_interface(Interface::new(i2, MAC2).mtu(1400).forwarding(false, false))
        .unwrap();
    net.add_address(i1, v4("10.0.1.1"), 24).unwrap();
    net.add_address(i2, v4("10.0.2.1"), 24).unwrap();
    net.add_address(i1, v6("2001:db8:1::1"), 64).unwrap();
    net.add_address(i2, v6("2001:db8:2::1"), 64).unwrap();
    net.add_neighbour(i2, v4("10.0.2.2"), GW_MAC).unwrap();
    net.add_neighbour(i2, v6("2001:db8:2::2"), GW6_MAC).unwrap();
    let gw = v4("10.0.2.2");
    for r in [
        Route::to(v4("192.168.0.0"), 16).via(gw),
        Route::of_type(RouteType::Blackhole, v4("192.168.99.0"), 24),
        Route::of_type(RouteType::Unreachable, v4("192.168.98.0"), 24),
        Route::of_type(RouteType::Prohibit, v4("192.168.97.0"), 24),
        Route::to(v4("172.16.0.0"), 12).via(gw).metric(50),
        Route::to(v4("172.16.0.0"), 12)
            .via(v4("10.0.2.3"))
            .metric(10),
        Route::to(v4("198.51.100.0"), 24).via(gw).mtu_lock(1300),
        Route::to(v4("203.0.113.0"), 24).via(gw).table(100),
        Route::to(v4("100.64.0.0"), 10).via(gw).src(v4("10.0.1.1")),
        Route::to(v6("2001:db8:100::"), 48).via(v6("2001:db8:2::2")),
        Route::of_type(RouteType::Blackhole, v6("2001:db8:99::"), 48),
        Route::of_type(RouteType::Prohibit, v6("2001:db8:97::"), 48),
        Route::to(v6("2001:db8:300::"), 48)
            .via(v6("2001:db8:2::2"))
            .mtu_lock(1300),
    ] {
        net.add_route(r).unwrap();
    }
}

/// `struct fib_in` of the fixture.
fn fib_in(
    family: u8,
    ifindex: u32,
    src: IpAddr,
    dst: IpAddr,
    tot_len: u16,
    tbid: u32,
    f: u32,
) -> Vec<u8> {
    let mut p = vec![0u8; 72];
    p[0] = family;
    p[1] = 17;
    p[2..4].copy_from_slice(&1234u16.to_be_bytes());
    p[4..6].copy_from_slice(&80u16.to_be_bytes());
    p[6..8].copy_from_slice(&tot_len.to_ne_bytes());
    p[8..12].copy_from_slice(&ifindex.to_ne_bytes());
    let put = |p: &mut Vec<u8>, at: usize, a: IpAddr| match a {
        IpAddr::V4(a) => p[at..at + 4].copy_from_slice(&a.octets()),
        IpAddr::V6(a) => p[at..at + 16].copy_from_slice(&a.octets()),
    };
    put(&mut p, 16, src);
    put(&mut p, 32, dst);
    p[48..52].copy_from_slice(&tbid.to_ne_bytes());
    p[64..68].copy_from_slice(&f.to_ne_bytes());
    p
}

fn frame(len: usize) -> Vec<u8> {
    let mut f = vec![0u8; len];
    f[12] = 0x08;
    f[14] = 0x45;
    f
}

#[test]
fn fib_lookups_agree_with_the_kernel() {
    if !kernel::oracle_or_skip() {
        return;
    }
    // The lookups see the network namespace of the thread that makes the test run (and of
    // the threads it spawns): a thread of our own, moved into a new namespace.
    std::thread::spawn(run_in_new_netns)
        .join()
        .expect("the test thread panicked");
}

fn run_in_new_netns() {
    // SAFETY: unshare(2) of the network namespace affects only this thread.
    let rc = unsafe { libc::unshare(libc::CLONE_NEWNET) };
    assert_eq!(
        rc,
        0,
        "unshare(CLONE_NEWNET): {}",
        std::io::Error::last_os_error()
    );
    let st = Command::new("sh").arg("-c").arg(SETUP).status();
    match st {
        Ok(s) if s.success() => {}
        other => panic!("setting up the namespace with ip and sysctl failed: {other:?}"),
    }
    let (i1, i2) = (ifindex("v1"), ifindex("v2"));
    let n = kernel::possible_cpus().unwrap();
    let mut pair = Pair::open(OBJECT, n).unwrap();
    pair.load("xdp_fib").unwrap();
    pair.load("tc_fib").unwrap();
    configure(pair.vm.net(), i1, i2);

    let dst4 = [
        "10.0.2.2",
        "10.0.2.7",
        "10.0.1.1",
        "10.0.2.1",
        "10.0.1.9",
        "192.168.5.5",
        "192.168.99.1",
        "192.168.98.1",
        "192.168.97.1",
        "172.16.1.1",
        "198.51.100.1",
        "203.0.113.5",
        "100.64.1.1",
        "8.8.8.8",
        "127.0.0.1",
    ];
    let dst6 = [
        "2001:db8:2::2",
        "2001:db8:2::7",
        "2001:db8:1::1",
        "2001:db8:100::5",
        "2001:db8:99::1",
        "2001:db8:97::1",
        "2001:db8:300::1",
        "fe80::1",
        "ff02::1",
        "::1",
        "2001:db8:abcd::1",
    ];
    let flag_sets = [
        0,
        flags::SKIP_NEIGH,
        flags::SRC,
        flags::SRC | flags::SKIP_NEIGH,
        flags::OUTPUT,
        flags::DIRECT,
        flags::DIRECT | flags::TBID,
        flags::DIRECT | flags::OUTPUT,
        flags::MARK,
        1 << 6,
    ];
    let mut rng = SplitMix64::new(69);
    let (mut runs, mut differ) = (0, 0);
    let mut codes = std::collections::BTreeSet::new();
    for prog in ["xdp_fib", "tc_fib"] {
        for (family, dsts, src) in [
            (2u8, &dst4[..], v4("10.0.1.9")),
            (10, &dst6[..], v6("2001:db8:1::9")),
        ] {
            for d in dsts {
                let dst = if family == 2 { v4(d) } else { v6(d) };
                for ifx in [i1, i2, 1, 999] {
                    for &f in &flag_sets {
                        let tot_len = *rng.pick(&[0u16, 0, 100, 1300, 1301, 1400, 1401, 1500]);
                        let tbid = *rng.pick(&[100u32, 254, 200, 255]);
                        let family = if rng.below(40) == 0 { 7 } else { family };
                        let input = fib_in(family, ifx, src, dst, tot_len, tbid, f);
                        pair.update("fib_in", &0u32.to_ne_bytes(), &input).unwrap();
                        let len = *rng.pick(&[60usize, 1418, 1419, 1500]);
                        let r = pair.run(prog, 0, &[], &frame(len), 1);
                        runs += 1;
                        let what = format!("{prog} family {family} ifindex {ifx} dst {d} flags {f:#x} tot_len {tot_len} tbid {tbid} packet {len}");
                        if r.kernel.is_err() || r.bpfvm.is_err() {
                            differ += 1;
                            println!(
                                "DIFFERENCE {what}: kernel {:?} bpfvm {:?}",
                                r.kernel.err(),
                                r.bpfvm.err()
                            );
                            continue;
                        }
                        let (k, s) = pair.dumps("fib_out");
                        if k != s {
                            differ += 1;
                            println!("DIFFERENCE {what}:\n  kernel {k:?}\n  bpfvm  {s:?}");
                        } else if let Ok(out) = &k {
                            codes.insert(i64::from_ne_bytes(out[0].1[64..72].try_into().unwrap()));
                        }
                    }
                }
            }
        }
    }
    println!("{runs} lookups compared, {differ} differences, result codes seen: {codes:?}");
    assert_eq!(differ, 0, "bpf_fib_lookup differs from the kernel");
    // Every BPF_FIB_LKUP_RET_* the setup can produce, and -ENODEV, -EINVAL, -EAFNOSUPPORT.
    for c in [0, 1, 2, 3, 4, 5, 7, 8, -19, -22, -97] {
        assert!(codes.contains(&c), "no lookup gave {c}");
    }
}
