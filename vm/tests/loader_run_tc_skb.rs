//! Checks that the tc program of `tc_skb.o` reads `struct __sk_buff` fields, measures
//! the packet through data/data_end, writes `mark`, and returns TC_ACT_SHOT for packets
//! starting with 0xff; a packet shorter than an Ethernet header is refused.

mod common;

use bpfvm::ctx_layout::{sk_buff, SK_BUFF_SIZE};
use bpfvm::{CpuId, Input};

fn field(buf: &[u8], off: usize) -> u32 {
    u32::from_ne_bytes(buf[off..off + 4].try_into().unwrap())
}

#[test]
fn reads_sk_buff_fields_and_sets_mark() {
    let (obj, maps, vm) = common::fixture_vm("tc_skb", 1);
    let prog = common::fixture_program(&vm, &obj, &maps, "tc_inspect");
    // ifindex 3 must name a device (the kernel's test run: ENODEV otherwise).
    vm.net()
        .add_interface(bpfvm::helpers::fib::Interface::new(3, [2, 0, 0, 0, 0, 3]))
        .unwrap();
    let mut ctx = vec![0u8; SK_BUFF_SIZE];
    ctx[sk_buff::MARK..sk_buff::MARK + 4].copy_from_slice(&5u32.to_ne_bytes());
    ctx[sk_buff::IFINDEX..sk_buff::IFINDEX + 4].copy_from_slice(&3u32.to_ne_bytes());
    for (packet, verdict) in [
        (vec![0x01u8; 60], 0u64),
        (vec![0xffu8; 42], 2),
        (vec![0x01; 14], 0),
    ] {
        let input = Input {
            data: packet.clone(),
            ctx: ctx.clone(),
            ..Input::default()
        };
        let out = vm.run(&prog, CpuId(0), &input).unwrap();
        assert_eq!(out.retval, verdict, "len {}", packet.len());
        assert_eq!(field(&out.ctx, sk_buff::MARK), 0x1234, "mark written");
        let mut seen = [0u8; 32];
        maps.get("seen")
            .unwrap()
            .lookup(&0u32.to_ne_bytes(), &mut seen, 0)
            .unwrap();
        let len = packet.len() as u32;
        assert_eq!(field(&seen, 0), len, "skb->len");
        assert_eq!(field(&seen, 8), 5, "mark before the write");
        assert_eq!(field(&seen, 12), 3, "ifindex");
        assert_eq!(field(&seen, 24), len, "data_end - data");
        // protocol, ingress_ifindex, queue_mapping: what the context held.
        assert_eq!(field(&seen, 4), field(&out.ctx, sk_buff::PROTOCOL));
        assert_eq!(field(&seen, 16), field(&out.ctx, sk_buff::INGRESS_IFINDEX));
        assert_eq!(field(&seen, 20), field(&out.ctx, sk_buff::QUEUE_MAPPING));
    }
    // Like the kernel's test run (EINVAL): a frame must hold its Ethernet header.
    let short = Input {
        data: vec![0x01; 13],
        ..Input::default()
    };
    assert!(matches!(
        vm.run(&prog, CpuId(0), &short),
        Err(bpfvm::RunError::BadInput { .. })
    ));
}
