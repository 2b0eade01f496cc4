//! Checks bpfvm's packet helpers against the kernel: the fixture `pkt_ops` calls one
//! helper per run, chosen and parameterised through a map, and each of a few thousand
//! calls (hand-picked edge cases and seeded random arguments: resizing, bytes, checksums,
//! redirects, tunnel keys, on XDP, tc, socket filter and cgroup_skb programs) runs in the
//! kernel and in bpfvm; the return value, the output packet and every map must be the same.
#![cfg(target_os = "linux")]

use bpfvm_conformance::kernel::diff::SplitMix64 as Rng;
use bpfvm_conformance::kernel::pair::Pair;
use bpfvm_conformance::kernel::{self};

const OBJECT: &str = concat!(
    env!("CARGO_MANIFEST_DIR"),
    "/../vm/tests/fixtures/pkt_ops.o"
);

/// `struct op` of the fixture.
#[derive(Debug, Clone, Copy, Default)]
struct Op {
    op: u32,
    delta: i32,
    off: u32,
    len: u32,
    flags: u64,
    from: u64,
    to: u64,
}

impl Op {
    fn bytes(&self) -> Vec<u8> {
        let mut b = Vec::with_capacity(40);
        b.extend(self.op.to_ne_bytes());
        b.extend(self.delta.to_ne_bytes());
        b.extend(self.off.to_ne_bytes());
        b.extend(self.len.to_ne_bytes());
        b.extend(self.flags.to_ne_bytes());
        b.extend(self.from.to_ne_bytes());
        b.extend(self.to.to_ne_bytes());
        b
    }
}

/// The one's-complement checksum of `b` (for building valid test packets).
fn checksum(b: &[u8]) -> u16 {
    let mut s: u32 = 0;
    for c in b.chunks(2) {
        s += u32::from(u16::from_be_bytes([c[0], *c.get(1).unwrap_or(&0)]));
    }
    while s >> 16 != 0 {
        s = (s & 0xffff) + (s >> 16);
    }
    !(s as u16)
}

fn eth(proto: u16) -> Vec<u8> {
    let mut f = vec![2, 0, 0, 0, 0, 2, 2, 0, 0, 0, 0, 1];
    f.extend(proto.to_be_bytes());
    f
}

/// Ethernet + IPv4 (TOS `tos`) + UDP (or TCP) with valid checksums and `payload` bytes.
fn ipv4(l4: u8, tos: u8, payload: usize) -> Vec<u8> {
    let l4len = if l4 == 6 { 20 } else { 8 };
    let total = 20 + l4len + payload;
    let mut ip = vec![0x45, tos];
    ip.extend((total as u16).to_be_bytes());
    ip.extend([
        0x12, 0x34, 0x40, 0, 64, l4, 0, 0, 10, 0, 0, 1, 192, 168, 1, 7,
    ]);
    let c = checksum(&ip);
    ip[10..12].copy_from_slice(&c.to_be_bytes());
    let mut l = vec![0u8; l4len];
    l[0..2].copy_from_slice(&12345u16.to_be_bytes());
    l[2..4].copy_from_slice(&80u16.to_be_bytes());
    if l4 == 17 {
        l[4..6].copy_from_slice(&((8 + payload) as u16).to_be_bytes());
    } else {
        l[12] = 0x50;
    }
    let body: Vec<u8> = (0..payload).map(|i| (i * 7 + 1) as u8).collect();
    let mut pseudo = ip[12..20].to_vec();
    pseudo.extend([0, l4]);
    pseudo.extend(((l4len + payload) as u16).to_be_bytes());
    pseudo.extend(&l);
    pseudo.extend(&body);
    let c = checksum(&pseudo);
    let at = if l4 == 17 { 6 } else { 16 };
    l[at..at + 2].copy_from_slice(&c.to_be_bytes());
    let mut f = eth(0x0800);
    f.extend(ip);
    f.extend(l);
    f.extend(body);
    f
}

/// Ethernet + IPv6 (traffic class `tc`) + UDP.
fn ipv6(tc: u8, payload: usize) -> Vec<u8> {
    let mut ip = vec![0x60 | (tc >> 4), tc << 4, 0, 0];
    ip.extend(((8 + payload) as u16).to_be_bytes());
    ip.extend([17, 64]);
    ip.extend([0x20, 1, 0xd, 0xb8, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 1]);
    ip.extend([0x20, 1, 0xd, 0xb8, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 2]);
    let mut f = eth(0x86dd);
    f.extend(ip);
    let mut udp = vec![0x30, 0x39, 0, 53];
    udp.extend(((8 + payload) as u16).to_be_bytes());
    udp.extend([0, 0]);
    f.extend(udp);
    f.extend((0..payload).map(|i| i as u8));
    f
}

fn packets() -> Vec<Vec<u8>> {
    let mut arp = eth(0x0806);
    arp.extend([0u8; 28]);
    vec![
        ipv4(17, 0, 18),
        ipv4(6, 2, 40),
        ipv4(17, 3, 0),
        ipv4(17, 1, 1400),
        ipv6(1, 12),
        ipv6(0, 0),
        arp,
        vec![0x11; 14],
        vec![0u8; 60],
    ]
}

struct Checker {
    pair: Pair,
    differ: usize,
    runs: usize,
    /// Runs that failed on both sides with the same errno (bad input for the test run).
    both_failed: usize,
    /// Distinct (program, op, helper return value) seen, to show the cases reach the
    /// helpers' different outcomes.
    outcomes: std::collections::BTreeSet<(String, u32, i64)>,
}

impl Checker {
    /// Runs `prog` with `op` and the scratch bytes `input` on one packet (with XDP
    /// metadata `meta`), `repeat` times, and compares everything.
    fn check(
        &mut self,
        prog: &str,
        op: Op,
        input: &[u8; 64],
        meta: &[u8],
        packet: &[u8],
        repeat: u32,
    ) {
        let mut scratch = input.to_vec();
        scratch.extend([0u8; 64]);
        let k = 0u32.to_ne_bytes();
        self.pair.update("ops", &k, &op.bytes()).unwrap();
        self.pair.update("scratch", &k, &scratch).unwrap();
        let r = self.pair.run(prog, 0, meta, packet, repeat);
        self.runs += 1;
        let what = format!("{prog} {op:?} on a {}-byte packet", packet.len());
        let (k, s) = match (r.kernel, r.bpfvm) {
            (Ok(k), Ok(s)) => (k, s),
            (Err(k), Err(s)) if k.0 == s.errno() => {
                self.both_failed += 1;
                return;
            }
            (k, s) => {
                self.differ += 1;
                println!("DIFFERENCE {what}: kernel {k:?} bpfvm {s:?}");
                return;
            }
        };
        let mut report = |field: &str, kv: String, sv: String| {
            if kv != sv {
                self.differ += 1;
                println!("DIFFERENCE {what}: {field}: kernel {kv} bpfvm {sv}");
            }
        };
        report(
            "retval",
            k.retval.to_string(),
            (s.retval as u32).to_string(),
        );
        report(
            "data_out",
            format!("{:?}", k.data_out),
            format!("{:?}", s.data_out),
        );
        for map in ["res", "scratch"] {
            let (kd, sd) = self.pair.dumps(map);
            report(map, format!("{kd:?}"), format!("{sd:?}"));
        }
        if let Ok(res) = &self.pair.dumps("res").0 {
            let ret = i64::from_ne_bytes(res[0].1[..8].try_into().unwrap());
            self.outcomes.insert((prog.to_owned(), op.op, ret));
        }
    }
}

fn rand_bytes(rng: &mut Rng) -> [u8; 64] {
    let mut b = [0u8; 64];
    for x in &mut b {
        *x = rng.next_u64() as u8;
    }
    b
}

#[test]
fn packet_helpers_agree_with_the_kernel() {
    if !kernel::oracle_or_skip() {
        return;
    }
    let n = kernel::possible_cpus().unwrap();
    let mut pair = Pair::open(OBJECT, n).unwrap();
    for p in ["xdp_ops", "tc_ops", "sock_ops", "cg_ops"] {
        pair.load(p).unwrap();
    }
    // Redirect targets: device maps name the loopback device (ifindex 1), the only device
    // every machine has; the CPU map has CPU 0 (and 1 when there is one).
    let one = 1u32.to_ne_bytes();
    pair.update("tx_port", &0u32.to_ne_bytes(), &one).unwrap();
    pair.update("tx_port", &3u32.to_ne_bytes(), &one).unwrap();
    let devval = [1u32.to_ne_bytes(), 0u32.to_ne_bytes()].concat();
    pair.update("tx_hash", &5u32.to_ne_bytes(), &devval)
        .unwrap();
    pair.update("tx_hash", &100u32.to_ne_bytes(), &devval)
        .unwrap();
    pair.update("cpus", &0u32.to_ne_bytes(), &64u32.to_ne_bytes())
        .unwrap();
    add_xdp_socket(&pair, 1);
    let mut c = Checker {
        pair,
        differ: 0,
        runs: 0,
        both_failed: 0,
        outcomes: Default::default(),
    };
    let mut rng = Rng::new(0x005e_ed14);
    let pkts = packets();
    let zero = [0u8; 64];

    // XDP resizing: edge values around the kernel's limits, then random deltas.
    let mut deltas = vec![
        -300, -257, -256, -217, -216, -215, -200, -40, -14, -1, 0, 1, 13, 14, 15, 40, 1000,
    ];
    deltas.extend((0..40).map(|_| rng.below(600) as i32 - 300));
    for (i, &d) in deltas.iter().enumerate() {
        let p = &pkts[i % pkts.len()];
        for op in 1..=2 {
            c.check(
                "xdp_ops",
                Op {
                    op,
                    delta: d,
                    ..Op::default()
                },
                &zero,
                &[],
                p,
                1,
            );
        }
        c.check(
            "xdp_ops",
            Op {
                op: 2,
                delta: d,
                ..Op::default()
            },
            &zero,
            &[9; 8],
            p,
            1,
        );
        c.check(
            "xdp_ops",
            Op {
                op: 1,
                delta: d,
                ..Op::default()
            },
            &zero,
            &[7; 16],
            p,
            1,
        );
    }
    let mut tails = vec![-2000, -1447, -1446, -60, -47, -46, -45, -1, 0, 1, 100, 3000];
    tails.extend((0..30).map(|_| rng.below(8000) as i32 - 4000));
    for (i, &d) in tails.iter().enumerate() {
        let p = &pkts[i % pkts.len()];
        c.check(
            "xdp_ops",
            Op {
                op: 3,
                delta: d,
                ..Op::default()
            },
            &zero,
            &[],
            p,
            1,
        );
    }
    // Repetitions resize the same packet again and again, as the kernel's test run does.
    for (op, delta) in [(1, -14), (1, 20), (3, -10), (3, 30), (2, -4)] {
        for repeat in [2, 5] {
            c.check(
                "xdp_ops",
                Op {
                    op,
                    delta,
                    ..Op::default()
                },
                &zero,
                &[],
                &pkts[0],
                repeat,
            );
        }
    }
    // XDP bytes, lengths, checksum differences and redirects.
    let offs = [
        0u32,
        1,
        13,
        40,
        59,
        60,
        100,
        1430,
        0xffff,
        0x10000,
        u32::MAX,
    ];
    for i in 0..120 {
        let p = &pkts[i % pkts.len()];
        let input = rand_bytes(&mut rng);
        let off = if i % 3 == 0 {
            offs[i % offs.len()]
        } else {
            rng.below(p.len() as u64 + 8) as u32
        };
        let len = rng.next_u64() as u32;
        for op in [4, 5, 6, 7] {
            let from = rng.next_u64();
            c.check(
                "xdp_ops",
                Op {
                    op,
                    off,
                    len,
                    from,
                    ..Op::default()
                },
                &input,
                &[],
                p,
                1,
            );
        }
    }
    let flag_set = [0u64, 1, 2, 3, 4, 8, 9, 16, 24, 27, 32, 1 << 40];
    for key in [0u32, 1, 3, 5, 8, 100, u32::MAX] {
        for &flags in &flag_set {
            for op in 8..=12 {
                c.check(
                    "xdp_ops",
                    Op {
                        op,
                        off: key,
                        flags,
                        ..Op::default()
                    },
                    &zero,
                    &[],
                    &pkts[0],
                    1,
                );
            }
        }
    }

    // tc: bytes, resizing, protocol changes, checksums, redirects, tunnel keys.
    let tc_offs = [
        0u32,
        1,
        10,
        13,
        14,
        23,
        24,
        25,
        40,
        50,
        59,
        60,
        61,
        0xffff,
        0x10000,
        1 << 31,
    ];
    for i in 0..150 {
        let p = &pkts[i % 7]; // IP and ARP frames (the skb test run needs whole IP headers)
        let input = rand_bytes(&mut rng);
        let off = if i % 2 == 0 {
            tc_offs[i % tc_offs.len()]
        } else {
            rng.below(p.len() as u64 + 8) as u32
        };
        let len = rng.next_u64() as u32;
        let flags = *rng.pick(&[0u64, 1, 2, 3, 4]);
        for op in [1, 2, 3, 4] {
            let from = rng.below(3);
            c.check(
                "tc_ops",
                Op {
                    op,
                    off,
                    len,
                    flags,
                    from,
                    ..Op::default()
                },
                &input,
                &[],
                p,
                1,
            );
        }
    }
    for (i, p) in pkts.iter().take(7).enumerate() {
        for proto in [0x0008u64, 0xdd86, 0x0608, 0] {
            for flags in [0u64, 1] {
                c.check(
                    "tc_ops",
                    Op {
                        op: 5,
                        from: proto,
                        flags,
                        ..Op::default()
                    },
                    &zero,
                    &[],
                    p,
                    1,
                );
            }
        }
        for new_len in [
            0u32,
            13,
            14,
            15,
            33,
            34,
            35,
            60,
            100,
            16064,
            16065,
            u32::MAX,
        ] {
            for flags in [0u64, 1] {
                c.check(
                    "tc_ops",
                    Op {
                        op: 6,
                        off: new_len,
                        flags,
                        ..Op::default()
                    },
                    &zero,
                    &[],
                    p,
                    1,
                );
            }
        }
        for room in [0u32, 1, 14, 100, 16064, 0x7fff_ffff, 0x8000_0000] {
            c.check(
                "tc_ops",
                Op {
                    op: 7,
                    off: room,
                    ..Op::default()
                },
                &zero,
                &[],
                p,
                1,
            );
        }
        c.check(
            "tc_ops",
            Op {
                op: 9,
                ..Op::default()
            },
            &zero,
            &[],
            p,
            1,
        );
        c.check(
            "cg_ops",
            Op {
                op: 1,
                ..Op::default()
            },
            &zero,
            &[],
            p,
            1,
        );
        for _ in 0..25 {
            let delta = *rng.pick(&[-40, -20, -8, -1, 0, 4, 8, 20, 40, 0x1000, -0x1000]);
            let mode = *rng.pick(&[0u32, 1, 2]);
            let flags = *rng.pick(&[
                0u64,
                1,
                2,
                4,
                6,
                2 | 8,
                2 | 16,
                2 | 8 | 16,
                2 | 64 | (14 << 56),
                64 | (14 << 56),
                2 | 64 | (10 << 56),
                32,
                128,
                256,
                384,
                1 << 9,
            ]);
            c.check(
                "tc_ops",
                Op {
                    op: 8,
                    delta,
                    off: mode,
                    flags,
                    ..Op::default()
                },
                &zero,
                &[],
                p,
                1,
            );
        }
        // l3/l4 checksum replacement on the IPv4 header and the L4 checksum, with all kinds
        // of fields and flags, including a zero UDP checksum (ipv4(17, 3, 0) has none).
        let l4_sum = if p.get(23) == Some(&6) { 50 } else { 40 };
        for _ in 0..30 {
            let from = rng.next_u64();
            let to = rng.next_u64();
            let size = *rng.pick(&[0u64, 1, 2, 4, 8]);
            let extra = *rng.pick(&[0u64, 16, 32, 48, 64, 96, 128, 256]);
            let off = *rng.pick(&[24u32, l4_sum, 25, 0, 60, 0x10000]);
            let from = if size == 0 && rng.below(2) == 0 {
                0
            } else {
                from
            };
            c.check(
                "tc_ops",
                Op {
                    op: 10,
                    off,
                    from,
                    to,
                    flags: size,
                    ..Op::default()
                },
                &zero,
                &[],
                p,
                1,
            );
            c.check(
                "tc_ops",
                Op {
                    op: 11,
                    off,
                    from,
                    to,
                    flags: size | extra,
                    ..Op::default()
                },
                &zero,
                &[],
                p,
                1,
            );
        }
        if i == 2 {
            // A zero UDP checksum with BPF_F_MARK_MANGLED_0 stays zero unless enforced.
            for flags in [2u64 | 32, 2 | 32 | 64, 2] {
                c.check(
                    "tc_ops",
                    Op {
                        op: 11,
                        off: 40,
                        from: 0x1234,
                        to: 0x5678,
                        flags,
                        ..Op::default()
                    },
                    &zero,
                    &[],
                    p,
                    1,
                );
            }
        }
    }
    for i in 0..60 {
        let input = rand_bytes(&mut rng);
        let op = Op {
            op: 12,
            off: rng.next_u64() as u32,
            len: rng.next_u64() as u32,
            from: rng.next_u64(),
            ..Op::default()
        };
        c.check("tc_ops", op, &input, &[], &pkts[i % 7], 1);
        c.check("xdp_ops", Op { op: 7, ..op }, &input, &[], &pkts[i % 7], 1);
    }
    for ifindex in [0u32, 1, 7] {
        for flags in [0u64, 1, 2, 3, 1 << 31] {
            for op in [13, 15] {
                c.check(
                    "tc_ops",
                    Op {
                        op,
                        off: ifindex,
                        flags,
                        ..Op::default()
                    },
                    &zero,
                    &[],
                    &pkts[0],
                    1,
                );
            }
            for plen in [0u32, 8, 19, 20, 31] {
                let mut nh = [0u8; 64];
                nh[0] = 2;
                nh[4..8].copy_from_slice(&[10, 0, 0, 9]);
                c.check(
                    "tc_ops",
                    Op {
                        op: 14,
                        off: ifindex,
                        len: plen,
                        flags,
                        ..Op::default()
                    },
                    &nh,
                    &[],
                    &pkts[0],
                    1,
                );
            }
        }
    }
    for _ in 0..80 {
        let mut key = rand_bytes(&mut rng);
        if rng.below(2) == 0 {
            key[22] = 0;
            key[23] = 0;
        }
        if rng.below(2) == 0 {
            key[24..28].fill(0);
        }
        let len = *rng.pick(&[7u32, 21, 23, 27, 43, 42, 50]);
        let flags = *rng.pick(&[0u64, 1, 2, 4, 8, 16, 31, 32, 6]);
        let get = *rng.pick(&[0u64, 1, 16, 17, 2]);
        c.check(
            "tc_ops",
            Op {
                op: 16,
                len,
                flags,
                from: get,
                ..Op::default()
            },
            &key,
            &[],
            &pkts[0],
            1,
        );
    }
    c.check(
        "tc_ops",
        Op {
            op: 17,
            len: 43,
            ..Op::default()
        },
        &zero,
        &[],
        &pkts[0],
        1,
    );
    c.check(
        "tc_ops",
        Op {
            op: 18,
            from: 5,
            ..Op::default()
        },
        &zero,
        &[],
        &pkts[0],
        1,
    );
    c.check(
        "tc_ops",
        Op {
            op: 19,
            from: 0xabcd,
            ..Op::default()
        },
        &zero,
        &[],
        &pkts[0],
        1,
    );

    // Socket filters and cgroup_skb run without the L2 header.
    for i in 0..60 {
        let p = &pkts[i % 7];
        let off = rng.below(p.len() as u64 + 4) as u32;
        let len = rng.next_u64() as u32;
        let from = rng.below(3);
        c.check(
            "sock_ops",
            Op {
                op: 1 + (i % 2) as u32,
                off,
                len,
                from,
                ..Op::default()
            },
            &zero,
            &[],
            p,
            1,
        );
        c.check(
            "cg_ops",
            Op {
                op: 2,
                off,
                len,
                from,
                ..Op::default()
            },
            &zero,
            &[],
            p,
            1,
        );
    }
    println!(
        "{} runs compared with the kernel ({} refused by both test runs), {} differences",
        c.runs, c.both_failed, c.differ
    );
    let mut by_op: std::collections::BTreeMap<(String, u32), Vec<i64>> = Default::default();
    for (p, op, ret) in &c.outcomes {
        by_op.entry((p.clone(), *op)).or_default().push(*ret);
    }
    for ((p, op), rets) in &by_op {
        println!("  {p} op {op}: return values {rets:?}");
    }
    assert_eq!(
        c.differ, 0,
        "bpfvm's packet helpers differ from the kernel's"
    );
    assert!(
        c.both_failed * 10 < c.runs,
        "most runs must reach the program"
    );
}

/// Puts an AF_XDP socket at key `key` of `xsks`: a real socket in the kernel's map (it
/// takes only those), its number as bpfvm's socket.
fn add_xdp_socket(pair: &Pair, key: u32) {
    // SAFETY: plain socket(2); the fd stays open for the test's lifetime.
    let fd = unsafe { libc::socket(libc::AF_XDP, libc::SOCK_RAW, 0) };
    assert!(
        fd >= 0,
        "AF_XDP socket: {}",
        std::io::Error::last_os_error()
    );
    let i = pair.map("xsks");
    pair.kmaps[i]
        .update(&key.to_ne_bytes(), &fd.to_ne_bytes(), 0)
        .unwrap();
    bpfvm_conformance::kernel::diff::HostMap::update(
        &*pair.smaps[i],
        &key.to_ne_bytes(),
        &(fd as u32).to_ne_bytes(),
        0,
    )
    .unwrap();
}
