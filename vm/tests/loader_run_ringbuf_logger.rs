//! Checks the `ringbuf_logger.o` fixture: flow events reserved, filled and submitted (or
//! discarded) in the ring buffer come out in order with the right fields, other frames are
//! logged with `bpf_ringbuf_output`, a full ring drops records (counted by the program),
//! four CPUs logging at once lose nothing, and the perf logger's samples land in each
//! CPU's own perf buffer with the Ethernet header appended.

mod common;

use bpfvm::maps::PerfRecord;
use bpfvm::{CpuId, Input};

const XDP_DROP: u64 = 1;
const XDP_PASS: u64 = 2;
const N: u32 = 4;
const FLOW_EVENT: usize = 40;

fn frame(proto: u8, sport: u16, dport: u16, extra: usize) -> Vec<u8> {
    let mut f: Vec<u8> = (1..=12).collect();
    f.extend_from_slice(&0x0800u16.to_be_bytes());
    let mut ip = vec![0u8; 20];
    ip[0] = 0x45;
    ip[9] = proto;
    ip[12..16].copy_from_slice(&[10, 0, 0, 1]);
    ip[16..20].copy_from_slice(&[10, 0, 0, 2]);
    f.extend(ip);
    f.extend_from_slice(&sport.to_be_bytes());
    f.extend_from_slice(&dport.to_be_bytes());
    f.extend(std::iter::repeat_n(0u8, 16 + extra));
    f
}

/// The fields of a `struct flow_event` the test checks.
#[derive(Debug, PartialEq, Eq)]
struct Flow {
    len: u32,
    cpu: u32,
    tgid: u32,
    saddr: [u8; 4],
    daddr: [u8; 4],
    sport: u16,
    dport: u16,
    proto: u8,
}

fn u32_at(b: &[u8], at: usize) -> u32 {
    u32::from_ne_bytes(b[at..at + 4].try_into().unwrap())
}

fn u16_at(b: &[u8], at: usize) -> u16 {
    u16::from_ne_bytes(b[at..at + 2].try_into().unwrap())
}

fn flow(b: &[u8]) -> Flow {
    assert_eq!(u32_at(b, 0), 1, "a flow event");
    Flow {
        len: u32_at(b, 4),
        cpu: u32_at(b, 16),
        tgid: u32_at(b, 20),
        saddr: b[24..28].try_into().unwrap(),
        daddr: b[28..32].try_into().unwrap(),
        sport: u16_at(b, 32),
        dport: u16_at(b, 34),
        proto: b[36],
    }
}

fn expected(cpu: u32, sport: u16, dport: u16, proto: u8, len: usize) -> Flow {
    Flow {
        len: len as u32,
        cpu,
        tgid: 1000 + cpu,
        saddr: [10, 0, 0, 1],
        daddr: [10, 0, 0, 2],
        sport,
        dport,
        proto,
    }
}

fn lost(maps: &bpfvm::loader::ObjectMaps) -> u64 {
    let mut all = vec![0u8; 8 * N as usize];
    maps.get("lost")
        .unwrap()
        .lookup(&0u32.to_ne_bytes(), &mut all, 0)
        .unwrap();
    all.chunks(8)
        .map(|c| u64::from_ne_bytes(c.try_into().unwrap()))
        .sum()
}

#[test]
fn events_come_out_in_order_with_their_fields_and_quiet_ports_are_discarded() {
    let (obj, maps, vm) = common::fixture_vm("ringbuf_logger", N);
    let quiet = maps.get("quiet_ports").unwrap();
    quiet.update(&53u16.to_ne_bytes(), &[1], 0).unwrap();
    let prog = common::fixture_program(&vm, &obj, &maps, "xdp_ringbuf_logger");
    let arp: Vec<u8> = [vec![0xff; 12], vec![0x08, 0x06], vec![0; 28]].concat();
    let runs: [(u32, Vec<u8>, u64); 5] = [
        (0, frame(17, 1234, 80, 0), XDP_PASS),
        (1, frame(6, 40000, 443, 3), XDP_PASS),
        (2, frame(17, 5353, 53, 0), XDP_PASS),
        (3, arp.clone(), XDP_PASS),
        (0, frame(17, 1, 2, 0)[..30].to_vec(), XDP_DROP),
    ];
    for (cpu, f, want) in &runs {
        let out = vm
            .run(&prog, CpuId(*cpu), &Input::packet(f.clone()))
            .unwrap();
        assert_eq!(out.retval, *want);
    }
    let events = maps.get("events").unwrap();
    let records = events.ringbuf_drain().unwrap();
    assert_eq!(records.len(), 4, "the port-53 flow was discarded");
    assert_eq!(records[0].len(), FLOW_EVENT);
    assert_eq!(
        flow(&records[0]),
        expected(0, 1234, 80, 17, runs[0].1.len())
    );
    assert_eq!(
        flow(&records[1]),
        expected(1, 40000, 443, 6, runs[1].1.len())
    );
    // Other frames: kind 2, the frame length and the EtherType (a 12-byte struct).
    let other = |b: &[u8]| (u32_at(b, 0), u32_at(b, 4), u16_at(b, 8), b.len());
    assert_eq!(other(&records[2]), (2, arp.len() as u32, 0x0806, 12));
    assert_eq!(other(&records[3]), (2, 30, 0x0800, 12));
    // Every run reserved a 48-byte flow record (three were discarded), and the two other
    // frames each added a 24-byte record (8-byte header + 12, rounded up to 8).
    assert_eq!(
        events.ringbuf_positions().unwrap(),
        (5 * 48 + 2 * 24, 5 * 48 + 2 * 24)
    );
    assert_eq!(lost(&maps), 0);
}

#[test]
fn a_full_ring_drops_records_until_the_consumer_reads() {
    let (obj, maps, vm) = common::fixture_vm("ringbuf_logger", N);
    let prog = common::fixture_program(&vm, &obj, &maps, "xdp_ringbuf_logger");
    let pkt = Input::packet(frame(17, 9, 99, 0));
    // 48-byte records: 85 fit in 4095 bytes.
    for _ in 0..100 {
        vm.run(&prog, CpuId(2), &pkt).unwrap();
    }
    let events = maps.get("events").unwrap();
    assert_eq!(lost(&maps), 15);
    assert_eq!(events.ringbuf_drain().unwrap().len(), 85);
    vm.run(&prog, CpuId(2), &pkt).unwrap();
    assert_eq!(
        events.ringbuf_drain().unwrap().len(),
        1,
        "room again after reading"
    );
    assert_eq!(lost(&maps), 15);
}

#[test]
fn four_cpus_logging_at_once_lose_nothing_and_keep_their_own_order() {
    let (obj, maps, vm) = common::fixture_vm("ringbuf_logger", N);
    let prog = common::fixture_program(&vm, &obj, &maps, "xdp_ringbuf_logger");
    const PER_CPU: u16 = 20; // 80 records of 48 bytes fit in the ring.
    let mut events = Vec::new();
    for i in 0..PER_CPU {
        for cpu in 0..N {
            events.push((
                CpuId(cpu),
                Input::packet(frame(17, i, 7000 + cpu as u16, 0)),
            ));
        }
    }
    for r in vm.run_events(&prog, &events) {
        assert_eq!(r.unwrap().retval, XDP_PASS);
    }
    let records = maps.get("events").unwrap().ringbuf_drain().unwrap();
    assert_eq!(records.len(), usize::from(PER_CPU) * N as usize);
    assert_eq!(lost(&maps), 0);
    for cpu in 0..N {
        let seq: Vec<u16> = records
            .iter()
            .map(|r| flow(r))
            .filter(|f| f.cpu == cpu)
            .map(|f| {
                assert_eq!(f.dport, 7000 + cpu as u16, "the packet of this cpu");
                f.sport
            })
            .collect();
        assert_eq!(
            seq,
            (0..PER_CPU).collect::<Vec<_>>(),
            "cpu {cpu}'s records in order"
        );
    }
}

#[test]
fn perf_samples_go_to_the_current_cpus_buffer_with_the_ethernet_header() {
    let (obj, maps, vm) = common::fixture_vm("ringbuf_logger", N);
    let perf = maps.get("perf_events").unwrap();
    assert_eq!(
        perf.max_entries(),
        N,
        "max_entries 0 becomes one entry per CPU"
    );
    perf.perf_open_all_cpus(1).unwrap();
    let prog = common::fixture_program(&vm, &obj, &maps, "xdp_perf_logger");
    let mut events = Vec::new();
    for i in 0..3u16 {
        for cpu in 0..N {
            events.push((CpuId(cpu), Input::packet(frame(6, i, 8000 + cpu as u16, 0))));
        }
    }
    for r in vm.run_events(&prog, &events) {
        assert_eq!(r.unwrap().retval, XDP_PASS);
    }
    for cpu in 0..N {
        let records = perf.perf_read(cpu).unwrap();
        assert_eq!(records.len(), 3, "cpu {cpu}");
        for (i, r) in records.iter().enumerate() {
            let PerfRecord::Sample(raw) = r else {
                panic!("cpu {cpu}: {r:?}")
            };
            // 40 event bytes + 14 header bytes, padded so that size + 4 is a multiple of 8.
            assert_eq!(raw.len(), 60);
            let f = flow(&raw[..FLOW_EVENT]);
            assert_eq!(
                (f.cpu, f.sport, f.dport),
                (cpu, i as u16, 8000 + cpu as u16)
            );
            assert_eq!(&raw[40..52], &(1..=12).collect::<Vec<u8>>()[..]);
            assert_eq!(&raw[52..54], &[0x08, 0x00]);
            assert_eq!(&raw[54..], &[0; 6]);
        }
    }
    // Without buffers, output fails (ENOENT) and the program counts the loss.
    perf.delete(&1u32.to_ne_bytes(), 0).unwrap();
    vm.run(&prog, CpuId(1), &Input::packet(frame(6, 1, 2, 0)))
        .unwrap();
    assert_eq!(lost(&maps), 1);
}
