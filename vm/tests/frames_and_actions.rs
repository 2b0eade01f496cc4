//! Test frames from `bpfvm::frame::Frame` (checksummed by etherparse) through the
//! `xdp_parser` fixture, with verdicts compared as named actions (`bpfvm::XdpAction`):
//! a UDP datagram to the blocked port is dropped, others pass, TCP, ICMP, IPv6 and
//! VLAN-tagged frames take the paths the C source gives them, and the parsed frame is
//! counted in the per-CPU slot of the running CPU.

mod common;

use bpfvm::frame::Frame;
use bpfvm::{CpuId, Input, XdpAction};

const A: [u8; 4] = [10, 0, 0, 1];
const B: [u8; 4] = [10, 0, 0, 2];

#[test]
fn built_frames_take_the_paths_the_parser_gives_them() -> Result<(), Box<dyn std::error::Error>> {
    let (obj, maps, vm) = common::fixture_vm("xdp_parser", 2);
    let prog = common::fixture_program(&vm, &obj, &maps, "xdp_udp_filter");
    let cases = [
        // (frame, verdict, stats slot)
        (Frame::udp4(A, B, 4000, 7777), XdpAction::Drop, 3),
        (
            Frame::udp4(A, B, 4000, 53).payload(b"query"),
            XdpAction::Pass,
            2,
        ),
        (Frame::tcp4(A, B, 4000, 7777).syn(), XdpAction::Pass, 1),
        (Frame::icmp4_echo(A, B, 1, 1), XdpAction::Pass, 1),
        (
            Frame::udp6([1; 16], [2; 16], 4000, 7777),
            XdpAction::Pass,
            0,
        ),
        // The parser does not look inside 802.1Q tags: not IPv4 to it.
        (Frame::udp4(A, B, 4000, 7777).vlan(10), XdpAction::Pass, 0),
    ];
    let mut expected = [0u64; 5];
    for (i, (frame, verdict, slot)) in cases.iter().enumerate() {
        let bytes = frame.build()?;
        let out = vm.run(&prog, CpuId(1), &Input::packet(bytes.clone()))?;
        assert_eq!(out.retval, *verdict, "case {i}: {frame:?}");
        assert_eq!(out.data, bytes, "case {i}: the packet is unchanged");
        expected[*slot] += 1;
    }
    let stats = maps.get("stats").unwrap();
    for (slot, want) in expected.iter().enumerate() {
        let mut per_cpu = [0u8; 16];
        stats.lookup(&(slot as u32).to_ne_bytes(), &mut per_cpu, 0)?;
        let cpu0 = u64::from_ne_bytes(per_cpu[..8].try_into().unwrap());
        let cpu1 = u64::from_ne_bytes(per_cpu[8..].try_into().unwrap());
        assert_eq!((cpu0, cpu1), (0, *want), "slot {slot}");
    }
    Ok(())
}
