//! Checks the packet helpers' effects as a test sees them: resized packets in `data_out`,
//! the kernel's errno for bad arguments, redirect targets in the run result (per CPU for
//! CPUMAP), packet pointers invalidated by a resize, helpers refused outside their program
//! types, and `bpf_fib_lookup` against the VM's network.

mod common;

use std::net::Ipv4Addr;

use bpfvm::helpers::fib::{Interface, Route};
use bpfvm::helpers::{FaultTarget, HelperError};
use bpfvm::{CpuId, Input, Program, ProgramType, RedirectTarget, RunError, TestRun};
use common::*;

/// `struct op` of the `pkt_ops` fixture.
fn op(op: u32, delta: i32, off: u32, len: u32, flags: u64, from: u64, to: u64) -> Vec<u8> {
    let mut b = Vec::new();
    b.extend(op.to_ne_bytes());
    b.extend(delta.to_ne_bytes());
    b.extend(off.to_ne_bytes());
    b.extend(len.to_ne_bytes());
    b.extend(flags.to_ne_bytes());
    b.extend(from.to_ne_bytes());
    b.extend(to.to_ne_bytes());
    b
}

/// `struct res` of the fixture: (ret, data_len, meta_len, skb_len, first byte).
fn res(maps: &bpfvm::loader::ObjectMaps) -> (i64, u32, u32, u32, u32) {
    let mut v = [0u8; 32];
    maps.get("res")
        .unwrap()
        .lookup(&0u32.to_ne_bytes(), &mut v, 0)
        .unwrap();
    let u = |at: usize| u32::from_ne_bytes(v[at..at + 4].try_into().unwrap());
    (
        i64::from_ne_bytes(v[..8].try_into().unwrap()),
        u(8),
        u(12),
        u(16),
        u(24),
    )
}

fn set_op(maps: &bpfvm::loader::ObjectMaps, bytes: &[u8]) {
    maps.get("ops")
        .unwrap()
        .update(&0u32.to_ne_bytes(), bytes, 0)
        .unwrap();
}

fn ipv4_frame(len: usize) -> Vec<u8> {
    let mut f: Vec<u8> = (0..len).map(|i| i as u8).collect();
    f[12] = 0x08;
    f[13] = 0;
    f[14] = 0x45;
    f
}

#[test]
fn xdp_resizing_follows_the_test_runs_limits() {
    let (obj, maps, vm) = fixture_vm("pkt_ops", 2);
    let prog = fixture_program(&vm, &obj, &maps, "xdp_ops");
    let pkt = ipv4_frame(60);
    let run = |vm: &bpfvm::Vm, bytes: &[u8]| {
        set_op(&maps, bytes);
        vm.run(&prog, CpuId(0), &Input::packet(pkt.clone()))
            .unwrap()
    };
    // Grow the head by 14 bytes: the new bytes come first in data_out.
    let out = run(&vm, &op(1, -14, 0, 0, 0, 0, 0));
    assert_eq!(res(&maps).0, 0);
    assert_eq!(out.data.len(), 74);
    assert_eq!(&out.data[14..], &pkt[..]);
    // The head may reach the end of the xdp_frame (256 - 40 = 216 bytes), not further.
    run(&vm, &op(1, -216, 0, 0, 0, 0, 0));
    assert_eq!(res(&maps).0, 0);
    run(&vm, &op(1, -217, 0, 0, 0, 0, 0));
    assert_eq!(res(&maps).0, -22);
    // Shrinking must leave 14 bytes.
    run(&vm, &op(1, 46, 0, 0, 0, 0, 0));
    assert_eq!(res(&maps).1, 14);
    run(&vm, &op(1, 47, 0, 0, 0, 0, 0));
    assert_eq!(res(&maps).0, -22);
    // Metadata: a multiple of 4, at most 255 bytes.
    let out = run(&vm, &op(2, -8, 0, 0, 0, 0, 0));
    assert_eq!((res(&maps).0, res(&maps).2), (0, 8));
    assert_eq!(
        out.data.len(),
        68,
        "XDP data_out includes the metadata, as the kernel's"
    );
    run(&vm, &op(2, -6, 0, 0, 0, 0, 0));
    assert_eq!(res(&maps).0, -13);
    // The tail may grow to the page minus the skb_shared_info (4096 - 320 - 256 = 3520).
    let out = run(&vm, &op(3, 3460, 0, 0, 0, 0, 0));
    assert_eq!((res(&maps).0, out.data.len()), (0, 3520));
    assert!(
        out.data[60..].iter().all(|&b| b == 0),
        "grown bytes are zero"
    );
    run(&vm, &op(3, 3461, 0, 0, 0, 0, 0));
    assert_eq!(res(&maps).0, -22);
    // The XDP bytes helpers: offsets over 0xffff are EFAULT, past the packet EINVAL.
    run(&vm, &op(4, 0, 0x10000, 3, 0, 0, 0));
    assert_eq!(res(&maps).0, -14);
    run(&vm, &op(4, 0, 57, 3, 0, 0, 0));
    assert_eq!(res(&maps).0, -22);
    run(&vm, &op(4, 0, 56, 3, 0, 0, 0));
    assert_eq!(res(&maps).0, 0);
}

#[test]
fn test_run_repetitions_resize_the_same_packet() {
    let (obj, maps, vm) = fixture_vm("pkt_ops", 1);
    let prog = fixture_program(&vm, &obj, &maps, "xdp_ops");
    set_op(&maps, &op(1, -10, 0, 0, 0, 0, 0));
    let r = vm
        .test_run(
            &prog,
            &TestRun {
                input: Input::packet(ipv4_frame(60)),
                repeat: 5,
                cpu: CpuId(0),
            },
        )
        .unwrap();
    assert_eq!(r.data_out.len(), 110, "five runs, ten bytes each");
}

#[test]
fn skb_resizing_moves_headers_and_zeroes_new_bytes() {
    let (obj, maps, vm) = fixture_vm("pkt_ops", 1);
    let prog = fixture_program(&vm, &obj, &maps, "tc_ops");
    let pkt = ipv4_frame(60);
    let run = |bytes: &[u8]| {
        set_op(&maps, bytes);
        vm.run(&prog, CpuId(0), &Input::packet(pkt.clone()))
            .unwrap()
    };
    // bpf_skb_change_proto IPv4 -> IPv6 inserts 20 zero bytes after the MAC header.
    let out = run(&op(5, 0, 0, 0, 0, 0xdd86, 0));
    assert_eq!(res(&maps).0, 0);
    assert_eq!(out.data.len(), 80);
    assert_eq!(&out.data[..14], &pkt[..14]);
    assert!(out.data[14..34].iter().all(|&b| b == 0));
    assert_eq!(&out.data[34..], &pkt[14..]);
    // An unknown protocol is ENOTSUPP, flags EINVAL.
    run(&op(5, 0, 0, 0, 0, 0x0608, 0));
    assert_eq!(res(&maps).0, -524);
    run(&op(5, 0, 0, 0, 1, 0xdd86, 0));
    assert_eq!(res(&maps).0, -22);
    // bpf_skb_change_tail: not below the network header, not over 16,064 bytes.
    run(&op(6, 0, 13, 0, 0, 0, 0));
    assert_eq!(res(&maps).0, -22);
    let out = run(&op(6, 0, 16064, 0, 0, 0, 0));
    assert_eq!((res(&maps).0, out.data.len()), (0, 16064));
    run(&op(6, 0, 16065, 0, 0, 0, 0));
    assert_eq!(res(&maps).0, -22);
    // bpf_skb_adjust_room: 8 bytes at the network layer, after the IPv4 header.
    let out = run(&op(8, 8, 0, 0, 0, 0, 0));
    assert_eq!(res(&maps).0, 0);
    assert_eq!(&out.data[..34], &pkt[..34]);
    assert_eq!(&out.data[34..42], &[0; 8]);
    assert_eq!(&out.data[42..], &pkt[34..]);
    // bpf_skb_store_bytes past the end is EFAULT, unknown flags EINVAL.
    run(&op(2, 0, 59, 2, 0, 0, 0));
    assert_eq!(res(&maps).0, -14);
    run(&op(2, 0, 0, 0, 4, 0, 0));
    assert_eq!(res(&maps).0, -22);
}

#[test]
fn checksum_replacement_keeps_an_ipv4_header_valid() {
    let (obj, maps, vm) = fixture_vm("pkt_ops", 1);
    let prog = fixture_program(&vm, &obj, &maps, "tc_ops");
    // An IPv4 header with a valid checksum; replace the source address 10.0.0.1 by
    // 10.9.9.9 and its checksum incrementally.
    let mut pkt = ipv4_frame(60);
    let ip: [u8; 20] = [
        0x45, 0, 0, 46, 0, 0, 0x40, 0, 64, 17, 0, 0, 10, 0, 0, 1, 192, 168, 0, 1,
    ];
    pkt[14..34].copy_from_slice(&ip);
    let sum = |h: &[u8]| {
        let mut s: u32 = h
            .chunks(2)
            .map(|c| u32::from(u16::from_be_bytes([c[0], c[1]])))
            .sum();
        while s > 0xffff {
            s = (s & 0xffff) + (s >> 16);
        }
        !(s as u16)
    };
    let c = sum(&pkt[14..34]);
    pkt[24..26].copy_from_slice(&c.to_be_bytes());
    let from = u64::from(u32::from_ne_bytes([10, 0, 0, 1]));
    let to = u64::from(u32::from_ne_bytes([10, 9, 9, 9]));
    set_op(&maps, &op(10, 0, 24, 0, 4, from, to));
    let out = vm
        .run(&prog, CpuId(0), &Input::packet(pkt.clone()))
        .unwrap();
    assert_eq!(res(&maps).0, 0);
    let mut expect = pkt[14..34].to_vec();
    expect[12..16].copy_from_slice(&[10, 9, 9, 9]);
    // The program changed only the checksum; with the new address it sums to zero.
    assert_eq!(&out.data[26..30], &[10, 0, 0, 1]);
    expect[10..12].copy_from_slice(&out.data[24..26]);
    assert_eq!(sum(&expect), 0);
    // An odd offset is EFAULT; a size of 3 EINVAL.
    set_op(&maps, &op(10, 0, 25, 0, 4, from, to));
    vm.run(&prog, CpuId(0), &Input::packet(pkt.clone()))
        .unwrap();
    assert_eq!(res(&maps).0, -14);
    set_op(&maps, &op(10, 0, 24, 0, 3, from, to));
    vm.run(&prog, CpuId(0), &Input::packet(pkt)).unwrap();
    assert_eq!(res(&maps).0, -22);
}

#[test]
fn redirects_are_recorded_in_the_run_result() {
    let (obj, maps, vm) = fixture_vm("pkt_ops", 4);
    let prog = fixture_program(&vm, &obj, &maps, "xdp_ops");
    let pkt = Input::packet(ipv4_frame(60));
    // bpf_redirect: XDP_REDIRECT (4) to the ifindex; any flag is XDP_ABORTED (0).
    set_op(&maps, &op(8, 0, 7, 0, 0, 0, 0));
    let out = vm.run(&prog, CpuId(1), &pkt).unwrap();
    assert_eq!(out.retval, 4);
    assert_eq!(
        out.redirect,
        Some(RedirectTarget::Ifindex {
            ifindex: 7,
            ingress: false
        })
    );
    set_op(&maps, &op(8, 0, 7, 0, 1, 0, 0));
    let out = vm.run(&prog, CpuId(1), &pkt).unwrap();
    assert_eq!((out.retval, out.redirect), (0, None));
    // A CPUMAP spreads packets over CPUs: each run goes to the CPU its key names.
    let cpus = maps.get("cpus").unwrap();
    for cpu in 0..4u32 {
        cpus.update(&cpu.to_ne_bytes(), &128u32.to_ne_bytes(), 0)
            .unwrap();
    }
    for (run_on, to) in [(0u32, 3u32), (1, 2), (2, 0), (3, 1)] {
        set_op(&maps, &op(11, 0, to, 0, 0, 0, 0));
        let out = vm.run(&prog, CpuId(run_on), &pkt).unwrap();
        assert_eq!(out.retval, 4);
        match out.redirect {
            Some(RedirectTarget::Cpu { cpu, name, .. }) => {
                assert_eq!((cpu, name.as_str()), (to, "cpus"));
            }
            other => panic!("{other:?}"),
        }
    }
    // A missing key returns the fallback action in the low bits of flags, and no target.
    set_op(&maps, &op(11, 0, 9, 0, 2, 0, 0));
    let out = vm.run(&prog, CpuId(0), &pkt).unwrap();
    assert_eq!((out.retval, out.redirect), (2, None));
    // DEVMAP: the element's device.
    maps.get("tx_port")
        .unwrap()
        .update(&3u32.to_ne_bytes(), &12u32.to_ne_bytes(), 0)
        .unwrap();
    set_op(&maps, &op(9, 0, 3, 0, 0, 0, 0));
    let out = vm.run(&prog, CpuId(0), &pkt).unwrap();
    assert!(
        matches!(
            out.redirect,
            Some(RedirectTarget::Device {
                key: 3,
                ifindex: 12,
                ..
            })
        ),
        "{:?}",
        out.redirect
    );
    assert_eq!(
        out.redirect.unwrap().to_string(),
        "devmap tx_port[3] -> ifindex 12"
    );
    // BPF_F_BROADCAST redirects even without the key.
    set_op(&maps, &op(9, 0, 6, 0, 8 | 16, 0, 0));
    let out = vm.run(&prog, CpuId(0), &pkt).unwrap();
    assert!(matches!(
        out.redirect,
        Some(RedirectTarget::Broadcast {
            exclude_ingress: true,
            ..
        })
    ));
}

#[test]
fn a_packet_pointer_kept_across_a_resize_faults() {
    // Run-time behaviour of a program the kernel's verifier refuses: structural checks.
    let vm = bpfvm::Vm::builder()
        .cpus(1)
        .verifier(bpfvm::VerifierMode::Structural)
        .build();
    // r6 = data; bpf_xdp_adjust_head(ctx, 0); r0 = *(u8 *)r6  -- the kernel's verifier
    // refuses this ("invalid mem access 'scalar'"): r6 is stale after the call.
    let code = asm("ldxw r6, [r1+0]
         ldxw r7, [r1+4]
         mov64 r2, r6
         add64 r2, 1
         jgt r2, r7, +4
         mov64 r2, 0
         call 44
         ldxb r0, [r6+0]
         exit
         mov64 r0, 0
         exit");
    let prog = vm.load(Program::new(code, ProgramType::Xdp)).unwrap();
    let err = vm
        .run(&prog, CpuId(0), &Input::packet(vec![1u8; 60]))
        .unwrap_err();
    match err {
        RunError::Fault { pc: 7, fault, .. } => {
            assert_eq!(fault.target, FaultTarget::StalePacket { changes_ago: 1 });
            assert!(fault.to_string().contains("re-read ctx->data"), "{fault}");
        }
        e => panic!("unexpected {e}"),
    }
    // Re-reading ctx->data after the call works.
    let code = asm("mov64 r6, r1
         mov64 r2, -4
         call 44
         ldxw r2, [r6+0]
         ldxw r3, [r6+4]
         mov64 r4, r2
         add64 r4, 1
         jgt r4, r3, +2
         ldxb r0, [r2+0]
         exit
         mov64 r0, 99
         exit");
    let prog = vm.load(Program::new(code, ProgramType::Xdp)).unwrap();
    let out = vm
        .run(&prog, CpuId(0), &Input::packet(vec![1u8; 60]))
        .unwrap();
    assert_eq!(out.retval, 0, "the four new bytes of headroom are zero");
}

#[test]
fn helpers_are_refused_outside_their_program_types() {
    // Run-time behaviour of a program the kernel's verifier refuses: structural checks.
    let vm = bpfvm::Vm::builder()
        .cpus(1)
        .verifier(bpfvm::VerifierMode::Structural)
        .build();
    // A tc program calling bpf_xdp_adjust_head (44): the kernel's verifier refuses it.
    let code = asm("mov64 r2, 0
         call 44
         exit");
    // With the kernel's verifier (the default) the program is refused at load, as by Linux.
    let kernel = bpfvm::Vm::builder().cpus(1).build();
    let refused = kernel
        .load(Program::new(code.clone(), ProgramType::SchedCls))
        .unwrap_err();
    assert_eq!(refused.errno(), 22);
    assert!(
        refused
            .to_string()
            .contains("cannot use helper bpf_xdp_adjust_head#44"),
        "{refused}"
    );
    let prog = vm.load(Program::new(code, ProgramType::SchedCls)).unwrap();
    let err = vm
        .run(&prog, CpuId(0), &Input::packet(ipv4_frame(60)))
        .unwrap_err();
    match err {
        RunError::Helper {
            source: HelperError::Failed { helper, message },
            ..
        } => {
            assert_eq!(helper, "bpf_xdp_adjust_head");
            assert!(
                message.contains("not available to tc programs"),
                "{message}"
            );
        }
        e => panic!("unexpected {e}"),
    }
}

#[test]
fn fib_lookup_uses_the_vms_network() {
    let (obj, maps, vm) = fixture_vm("fib", 2);
    let net = vm.net();
    net.add_interface(Interface::new(2, [2, 0, 0, 0, 0, 2]))
        .unwrap();
    net.add_interface(Interface::new(3, [2, 0, 0, 0, 0, 3]))
        .unwrap();
    net.add_address(2, Ipv4Addr::new(10, 0, 0, 1), 24).unwrap();
    net.add_address(3, Ipv4Addr::new(10, 1, 0, 1), 24).unwrap();
    net.add_neighbour(3, Ipv4Addr::new(10, 1, 0, 254), [2, 0, 0, 0, 0, 0xfe])
        .unwrap();
    net.add_route(Route::to(Ipv4Addr::UNSPECIFIED, 0).via(Ipv4Addr::new(10, 1, 0, 254)))
        .unwrap();
    let prog = fixture_program(&vm, &obj, &maps, "xdp_fib");
    let mut input = vec![0u8; 72];
    input[0] = 2; // AF_INET
    input[8..12].copy_from_slice(&2u32.to_ne_bytes());
    input[32..36].copy_from_slice(&[8, 8, 8, 8]);
    maps.get("fib_in")
        .unwrap()
        .update(&0u32.to_ne_bytes(), &input, 0)
        .unwrap();
    vm.run(&prog, CpuId(1), &Input::packet(ipv4_frame(60)))
        .unwrap();
    let mut out = [0u8; 72];
    maps.get("fib_out")
        .unwrap()
        .lookup(&0u32.to_ne_bytes(), &mut out, 0)
        .unwrap();
    assert_eq!(i64::from_ne_bytes(out[64..72].try_into().unwrap()), 0);
    assert_eq!(u32::from_ne_bytes(out[8..12].try_into().unwrap()), 3);
    assert_eq!(
        &out[32..36],
        &[10, 1, 0, 254],
        "the gateway replaces the destination"
    );
    assert_eq!(&out[52..58], &[2, 0, 0, 0, 0, 3], "smac");
    assert_eq!(&out[58..64], &[2, 0, 0, 0, 0, 0xfe], "dmac");
    assert_eq!(u16::from_ne_bytes([out[6], out[7]]), 1500, "mtu_result");
}

#[test]
fn xdp_metadata_must_fit_the_headroom() {
    let vm = bpfvm::Vm::builder().cpus(1).build();
    let prog = vm
        .load(Program::new(asm("mov64 r0, 2\nexit"), ProgramType::Xdp))
        .unwrap();
    for (meta, ok) in [(0, true), (4, true), (216, true), (6, false), (220, false)] {
        let input = Input {
            data: vec![0; 60],
            data_meta: vec![0; meta],
            ..Input::default()
        };
        assert_eq!(vm.run(&prog, CpuId(0), &input).is_ok(), ok, "{meta} bytes");
    }
}
