//! Checks what skb programs (socket filter, tc, cgroup_skb) see in a test run against the
//! kernel: each readable `struct __sk_buff` field (and `data_end - data`) returned by a
//! one-load program, and the output packet, for frames with different EtherTypes and
//! destination addresses.
#![cfg(target_os = "linux")]

use bpfvm::{CpuId, Input, Program, ProgramType, TestRun as VmTestRun, Vm};
use bpfvm_conformance::kernel::asm::{self, insn};
use bpfvm_conformance::kernel::consts::ProgType;
use bpfvm_conformance::kernel::{self, KernelProg, TestRun};

/// `__u32` fields of `struct __sk_buff` (offset, name).
const FIELDS: &[(i16, &str)] = &[
    (0, "len"),
    (4, "pkt_type"),
    (8, "mark"),
    (12, "queue_mapping"),
    (16, "protocol"),
    (20, "vlan_present"),
    (24, "vlan_tci"),
    (28, "vlan_proto"),
    (32, "priority"),
    (36, "ingress_ifindex"),
    (40, "ifindex"),
    (44, "tc_index"),
    (48, "cb[0]"),
    (68, "hash"),
    (72, "tc_classid"),
    (84, "napi_id"),
    (160, "wire_len"),
    (164, "gso_segs"),
    (176, "gso_size"),
    (88, "family"),
    (92, "remote_ip4"),
    (96, "local_ip4"),
    (100, "remote_ip6[0]"),
    (116, "local_ip6[0]"),
    (132, "remote_port"),
    (136, "local_port"),
];

/// A frame: destination MAC, EtherType (or 802.3 length), then `payload` bytes.
fn frame(dst: [u8; 6], ethertype: u16, payload: usize) -> Vec<u8> {
    let mut f = dst.to_vec();
    f.extend([2, 0, 0, 0, 0, 1]);
    f.extend(ethertype.to_be_bytes());
    f.extend((0..payload).map(|i| (i as u8).wrapping_mul(7).wrapping_add(0x45)));
    f
}

fn frames() -> Vec<(&'static str, Vec<u8>)> {
    let host = [0; 6];
    let mut raw_8023 = frame(host, 40, 40);
    raw_8023[14] = 0xff;
    raw_8023[15] = 0xff;
    vec![
        ("ipv4 to the loopback address", frame(host, 0x0800, 40)),
        ("ipv6", frame(host, 0x86dd, 60)),
        ("arp broadcast", frame([0xff; 6], 0x0806, 28)),
        ("multicast", frame([0x01, 0, 0x5e, 0, 0, 1], 0x0800, 20)),
        ("other host", frame([2, 0, 0, 0, 0, 9], 0x0800, 20)),
        ("802.3 with LLC", frame(host, 46, 46)),
        ("raw 802.3", raw_8023),
        ("header only", frame(host, 0x0800, 0)),
        ("header and one byte", frame(host, 0x0800, 1)),
        (
            "shorter than the header",
            frame(host, 0x0800, 0)[..13].to_vec(),
        ),
    ]
}

fn kernel_type(t: ProgramType) -> ProgType {
    match t {
        ProgramType::SocketFilter => ProgType::SocketFilter,
        ProgramType::SchedCls => ProgType::SchedCls,
        _ => ProgType::CgroupSkb,
    }
}

/// Loads `image` into the kernel (None when the verifier refuses it) and into bpfvm.
fn load_both(vm: &Vm, t: ProgramType, image: &[u8]) -> Option<(KernelProg, bpfvm::LoadedProgram)> {
    let mut log = String::new();
    let k = KernelProg::load(kernel_type(t), 0, image, "GPL", &mut log).ok()?;
    let s = vm
        .load(Program::new(image.to_vec(), t))
        .unwrap_or_else(|e| panic!("bpfvm refuses a program the kernel accepts: {e}"));
    Some((k, s))
}

#[test]
fn skb_context_fields_and_output_packets_agree_with_the_kernel() {
    if !kernel::oracle_or_skip() {
        return;
    }
    // The kernel loads the programs as root: the same verdict here.
    let vm = Vm::builder()
        .cpus(kernel::possible_cpus().unwrap())
        .privilege(bpfvm::Privilege::Root)
        .build();
    let types = [
        ProgramType::SocketFilter,
        ProgramType::SchedCls,
        ProgramType::CgroupSkb,
    ];
    let mut programs = Vec::new();
    for t in types {
        for &(off, name) in FIELDS {
            let image = asm::image(&[&[asm::ldx_w(0, 1, off), asm::exit()]]);
            programs.push((t, name.to_string(), image));
        }
        // data_end - data.
        let image = asm::image(&[&[
            asm::ldx_w(2, 1, 76),
            asm::ldx_w(0, 1, 80),
            insn(0x1f, 0, 2, 0, 0), // r0 -= r2
            asm::exit(),
        ]]);
        programs.push((t, "data_end - data".to_string(), image));
    }
    let (mut compared, mut refused, mut differ) = (0, 0, 0);
    for (t, name, image) in &programs {
        let Some((k, s)) = load_both(&vm, *t, image) else {
            refused += 1;
            continue;
        };
        for (what, f) in frames() {
            let kr = k.test_run_on_cpu(
                0,
                &TestRun {
                    data_in: f.clone(),
                    data_out_size: f.len() + 64,
                    ..TestRun::default()
                },
            );
            let sr = vm.test_run(
                &s,
                &VmTestRun {
                    input: Input::packet(f.clone()),
                    repeat: 1,
                    cpu: CpuId(0),
                },
            );
            compared += 1;
            let same = match (&kr, &sr) {
                (Ok(k), Ok(s)) => u64::from(k.retval) == s.retval && k.data_out == s.data_out,
                (Err(_), Err(_)) => true,
                _ => false,
            };
            if !same {
                differ += 1;
                let k = kr.map(|o| (o.retval, o.data_out));
                let s = sr.map(|o| (o.retval, o.data_out));
                println!("DIFFERENCE {t:?} {name} ({what}): kernel {k:?} bpfvm {s:?}");
            }
        }
    }
    println!("{compared} runs compared, {refused} field loads refused by the kernel, {differ} differences");
    assert_eq!(differ, 0);
}
