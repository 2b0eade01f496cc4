//! Checks `bpf_perf_event_output` (25) and `bpf_xdp_output` (121) from programs: the
//! kernel's answers for each flag and index case (`-EINVAL`, `-EFAULT`, `-E2BIG`, `-ENOENT`,
//! `-EOPNOTSUPP`, `-ENOSPC`), `BPF_F_CURRENT_CPU` choosing the running CPU's buffer, packet
//! bytes appended with `BPF_F_CTXLEN` for programs with a packet only, and a lost-samples
//! record before the first sample that fits again.

mod common;

use std::sync::Arc;

use bpfvm::maps::{Map, MapSpec, MapType, PerfRecord};
use bpfvm::{CpuId, Input, Program, ProgramType, Vm};
use common::*;

const CURRENT_CPU: u64 = 0xffff_ffff;

fn events(max: u32) -> Arc<Map> {
    Arc::new(Map::create(MapSpec::new(MapType::PerfEventArray, 4, 4, max), 2).unwrap())
}

/// `*(u64 *)(r10 - 8) = 0x0807060504030201; r0 = helper(ctx, map0, flags, r10 - 8, size)`.
fn output(helper: i32, flags: u64, size: i32) -> Vec<u8> {
    code(&[
        ins(0x18, 0, 0, 0, 0x0403_0201),
        ins(0, 0, 0, 0, 0x0807_0605),
        ins(0x7b, 10, 0, -8, 0), // *(u64 *)(r10 - 8) = r0
        ins(0x18, 2, 1, 0, 0),
        ins(0, 0, 0, 0, 0),
        ins(0x18, 3, 0, 0, flags as u32 as i32),
        ins(0, 0, 0, 0, (flags >> 32) as u32 as i32),
        ins(0xbf, 4, 10, 0, 0),
        ins(0x07, 4, 0, 0, -8),
        ins(0xb7, 5, 0, 0, size),
        ins(0x85, 0, 0, 0, helper),
        EXIT,
    ])
}

fn run(vm: &Vm, t: ProgramType, map: &Arc<Map>, code: Vec<u8>, cpu: u32, input: &Input) -> i64 {
    let p = vm
        .load(Program::new(code, t).with_map(map.clone()))
        .expect("the program loads");
    vm.run(&p, CpuId(cpu), input).unwrap().retval as i64
}

#[test]
fn index_event_and_cpu_errors_are_the_kernels() {
    let vm = Vm::builder().cpus(2).build();
    let m = events(3);
    let raw = |flags, cpu| {
        run(
            &vm,
            ProgramType::Unspecified,
            &m,
            output(25, flags, 8),
            cpu,
            &Input::empty(),
        )
    };
    assert_eq!(raw(CURRENT_CPU, 0), -2, "ENOENT: no event attached");
    m.perf_open_all_cpus(1).unwrap();
    assert_eq!(raw(3, 0), -7, "E2BIG: index past max_entries");
    assert_eq!(raw(2, 0), -2, "ENOENT: index 2 has no event (2 CPUs)");
    assert_eq!(raw(1, 0), -95, "EOPNOTSUPP: cpu 1's event from cpu 0");
    assert_eq!(
        raw(1 << 32, 0),
        -22,
        "EINVAL: BPF_F_CTXLEN without a packet"
    );
    assert_eq!(raw(1 << 52, 0), -22, "EINVAL: a bit above the masks");
    assert_eq!(raw(CURRENT_CPU, 1), 0);
    assert_eq!(raw(1, 1), 0);
    assert!(m.perf_read(0).unwrap().is_empty());
    let sample = PerfRecord::Sample(vec![1, 2, 3, 4, 5, 6, 7, 8, 0, 0, 0, 0]);
    assert_eq!(m.perf_read(1).unwrap(), [sample.clone(), sample]);
}

#[test]
fn xdp_programs_append_packet_bytes_and_cannot_ask_for_more_than_the_packet() {
    let vm = Vm::builder().cpus(2).build();
    let m = events(2);
    m.perf_open_all_cpus(1).unwrap();
    let packet: Vec<u8> = (100..130).collect();
    let input = Input::packet(packet.clone());
    for helper in [25, 121] {
        let ok = output(helper, CURRENT_CPU | (6 << 32), 3);
        assert_eq!(
            run(&vm, ProgramType::Xdp, &m, ok, 1, &input),
            0,
            "helper {helper}"
        );
        let mut want = vec![1, 2, 3];
        want.extend(&packet[..6]);
        want.resize(12, 0);
        assert_eq!(
            m.perf_read(1).unwrap(),
            [PerfRecord::Sample(want)],
            "helper {helper}"
        );
        let too_much = output(helper, CURRENT_CPU | (31 << 32), 3);
        assert_eq!(
            run(&vm, ProgramType::Xdp, &m, too_much, 1, &input),
            -14,
            "EFAULT"
        );
        let whole = output(helper, CURRENT_CPU | (30 << 32), 0);
        assert_eq!(run(&vm, ProgramType::Xdp, &m, whole, 0, &input), 0);
        let PerfRecord::Sample(raw) = &m.perf_read(0).unwrap()[0] else {
            panic!("a sample")
        };
        assert_eq!(&raw[..30], &packet[..]);
    }
}

#[test]
fn skb_programs_append_from_the_start_of_their_data() {
    let vm = Vm::builder().cpus(2).build();
    let m = events(2);
    m.perf_open_all_cpus(1).unwrap();
    let mut frame: Vec<u8> = (0..14).collect();
    frame[12..14].copy_from_slice(&[0x88, 0xb5]); // not IP
    frame.extend([0xee; 10]);
    let input = Input::packet(frame.clone());
    let prog = output(25, CURRENT_CPU | (14 << 32), 0);
    assert_eq!(run(&vm, ProgramType::SchedCls, &m, prog, 0, &input), 0);
    let PerfRecord::Sample(raw) = &m.perf_read(0).unwrap()[0] else {
        panic!("a sample")
    };
    assert_eq!(
        &raw[..14],
        &frame[..14],
        "tc programs see the Ethernet header"
    );
}

#[test]
fn a_full_buffer_loses_samples_and_reports_them() {
    let vm = Vm::builder().cpus(2).build();
    let m = events(2);
    m.perf_event_open(0, CpuId(0), 1).unwrap();
    let prog = output(25, 0, 8);
    // A sample of 8 bytes takes 8 + 16 = 24 bytes: 170 fit in 4095.
    let mut results = Vec::new();
    for _ in 0..175 {
        results.push(run(
            &vm,
            ProgramType::Unspecified,
            &m,
            prog.clone(),
            0,
            &Input::empty(),
        ));
    }
    assert_eq!(results.iter().filter(|&&r| r == 0).count(), 170);
    assert_eq!(results.iter().filter(|&&r| r == -28).count(), 5, "ENOSPC");
    assert_eq!(m.perf_read(0).unwrap().len(), 170);
    run(&vm, ProgramType::Unspecified, &m, prog, 0, &Input::empty());
    let after = m.perf_read(0).unwrap();
    assert_eq!(after[0], PerfRecord::Lost(5));
    assert!(matches!(after[1], PerfRecord::Sample(_)));
}
