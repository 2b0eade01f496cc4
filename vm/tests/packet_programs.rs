//! Checks XDP and `__sk_buff` contexts: clang-style bounds checks against `data_end` work,
//! packet reads past the end fault, packet writes come back in the output, and the context
//! fields sit at their uapi offsets.

mod common;

use bpfvm::ctx_layout::{sk_buff, xdp_md};
use bpfvm::{CpuId, Input, Program, ProgramType, RunError, TestRun, Vm};
use common::*;

/// What clang emits for: if (data + 14 > data_end) return XDP_DROP(1);
/// return data[12] == 0x08 ? XDP_PASS(2) : XDP_TX(3);  and it also writes data[0] = 0xaa.
fn xdp_parse() -> Vec<u8> {
    asm(&format!(
        "ldxw r2, [r1+{end}]
         ldxw r1, [r1+{data}]
         mov64 r3, r1
         add64 r3, 14
         mov64 r0, 1
         jgt r3, r2, +6
         stb [r1+0], 0xaa
         ldxb r4, [r1+12]
         mov64 r0, 3
         jne r4, 8, +1
         mov64 r0, 2
         ja +0
         exit",
        end = xdp_md::DATA_END,
        data = xdp_md::DATA
    ))
}

#[test]
fn xdp_bounds_checks_work_like_in_the_kernel() {
    let vm = Vm::builder().cpus(2).build();
    let prog = vm
        .load(Program::new(xdp_parse(), ProgramType::Xdp))
        .unwrap();
    let mut pkt = vec![0u8; 60];
    pkt[12] = 0x08;
    let out = vm
        .run(&prog, CpuId(1), &Input::packet(pkt.clone()))
        .unwrap();
    assert_eq!(out.retval, 2);
    assert_eq!(out.data[0], 0xaa);
    assert_eq!(&out.data[1..], &pkt[1..]);
    pkt[12] = 0x86;
    assert_eq!(
        vm.run(&prog, CpuId(0), &Input::packet(pkt)).unwrap().retval,
        3
    );
    // The kernel's XDP test run refuses a packet shorter than an Ethernet header (EINVAL),
    // so the program's short-packet branch (which the verifier requires) is never reached.
    let short = vm.run(&prog, CpuId(0), &Input::packet(vec![0u8; 13]));
    assert_eq!(short.unwrap_err().errno(), 22);
}

#[test]
fn packet_reads_past_data_end_fault() {
    // No bounds check: reads data[20] of a 14-byte packet. The kernel's verifier refuses
    // it at load; with the structural checks only, the run-time check catches it.
    let code = asm(&format!(
        "ldxw r1, [r1+{}]\nldxb r0, [r1+20]\nexit",
        xdp_md::DATA
    ));
    let refused = Vm::builder()
        .cpus(1)
        .build()
        .load(Program::new(code.clone(), ProgramType::Xdp))
        .unwrap_err();
    assert!(
        refused
            .to_string()
            .contains("invalid access to packet, off=20 size=1, R1(id=0,off=20,r=0)"),
        "{refused}"
    );
    let vm = structural_vm(1);
    let prog = vm.load(Program::new(code, ProgramType::Xdp)).unwrap();
    let err = vm
        .run(&prog, CpuId(0), &Input::packet(vec![0u8; 14]))
        .unwrap_err();
    match err {
        RunError::Fault { pc: 1, fault, .. } => assert_eq!(fault.addr, 0x1000_0000 + 20),
        e => panic!("unexpected {e}"),
    }
    assert_eq!(
        vm.run(&prog, CpuId(0), &Input::packet(vec![7u8; 21]))
            .unwrap()
            .retval,
        7
    );
}

#[test]
fn xdp_metadata_and_context_fields() {
    // data - data_meta subtracts two pointers: the kernel allows it with CAP_PERFMON.
    let vm = root_vm(1);
    // r0 = (data - data_meta) * 1000 + ingress_ifindex * 10 + rx_queue_index
    let code = asm(&format!(
        "ldxw r2, [r1+{data}]
         ldxw r3, [r1+{meta}]
         mov64 r0, r2
         sub64 r0, r3
         mul64 r0, 1000
         ldxw r4, [r1+{ifindex}]
         mul64 r4, 10
         add64 r0, r4
         ldxw r4, [r1+{rxq}]
         add64 r0, r4
         exit",
        data = xdp_md::DATA,
        meta = xdp_md::DATA_META,
        ifindex = xdp_md::INGRESS_IFINDEX,
        rxq = xdp_md::RX_QUEUE_INDEX
    ));
    let prog = vm.load(Program::new(code, ProgramType::Xdp)).unwrap();
    // As the kernel's test run: `data` is the metadata length, `data_end` the packet's
    // (metadata included), the ingress device exists and has the receive queue.
    vm.net()
        .add_interface(bpfvm::helpers::fib::Interface::new(3, [2, 0, 0, 0, 0, 3]))
        .unwrap();
    let mut ctx = vec![0u8; 24];
    ctx[0] = 8; // data: 8 bytes of metadata
    ctx[4] = 40; // data_end
    ctx[12] = 3; // ingress_ifindex
    let input = Input {
        data: vec![0; 32],
        data_meta: vec![0; 8],
        ctx: ctx.clone(),
        cgroup: None,
    };
    assert_eq!(
        vm.run(&prog, CpuId(0), &input).unwrap().retval,
        8 * 1000 + 30
    );
    // The same packet with the metadata given by the context alone.
    let input = Input {
        data: vec![0; 40],
        ctx: ctx.clone(),
        ..Input::default()
    };
    assert_eq!(
        vm.run(&prog, CpuId(0), &input).unwrap().retval,
        8 * 1000 + 30
    );
    // Queue 1 does not exist (one receive queue per device).
    ctx[16] = 1;
    let input = Input {
        data: vec![0; 40],
        ctx,
        ..Input::default()
    };
    let e = vm.run(&prog, CpuId(0), &input).unwrap_err();
    assert_eq!(e.errno(), 22, "{e}");
}

#[test]
fn sk_buff_fields_have_uapi_offsets() {
    // One program for three types reads fields some of them may not read (socket filters
    // have no data pointers): a layout test, with the structural checks.
    let vm = structural_vm(1);
    // r0 = len + mark * 1000 + (data_end - data) * 1_000_000; cb[0] = 5
    let code = asm(&format!(
        "ldxw r0, [r1+{len}]
         ldxw r2, [r1+{mark}]
         mul64 r2, 1000
         add64 r0, r2
         ldxw r2, [r1+{data}]
         ldxw r3, [r1+{end}]
         sub64 r3, r2
         mul64 r3, 1000000
         add64 r0, r3
         stw [r1+{cb}], 5
         exit",
        len = sk_buff::LEN,
        mark = sk_buff::MARK,
        data = sk_buff::DATA,
        end = sk_buff::DATA_END,
        cb = sk_buff::CB
    ));
    for t in [
        ProgramType::SocketFilter,
        ProgramType::SchedCls,
        ProgramType::CgroupSkb,
    ] {
        let prog = vm.load(Program::new(code.clone(), t)).unwrap();
        let mut ctx = vec![0u8; 12];
        ctx[8] = 9; // mark
        let res = vm
            .test_run(
                &prog,
                &TestRun {
                    input: Input {
                        data: vec![0; 40],
                        ctx,
                        ..Input::default()
                    },
                    repeat: 3,
                    cpu: CpuId(0),
                },
            )
            .unwrap();
        // Only tc programs see the 14-byte L2 header (as in the kernel's test run).
        let seen = if t == ProgramType::SchedCls { 40 } else { 26 };
        assert_eq!(res.retval, seen + 9000 + seen * 1_000_000, "{t:?}");
        assert_eq!(res.ctx_out.len(), 192);
        assert_eq!(res.ctx_out[sk_buff::CB], 5);
        assert_eq!(res.data_out.len(), 40);
    }
}
