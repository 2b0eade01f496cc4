//! Checks the dynptr helpers from programs, without a kernel: the `dynptr_logger.o`
//! fixture's records (the helpers' answers out of range, with flags and for NULL dynptrs;
//! data copied through a local and a ring buffer dynptr and a `bpf_dynptr_data` slice),
//! and, with the structural verifier only, what the kernel's verifier would refuse stays
//! confined at run time: a slice used after its record was submitted faults, a forged
//! dynptr pointing outside the sandbox is a helper memory error, a run that exits holding
//! a ring buffer dynptr fails and the record is discarded.

mod common;

use std::sync::Arc;

use bpfvm::helpers::FaultKind;
use bpfvm::maps::{Map, MapSpec, MapType};
use bpfvm::{CpuId, Input, Program, ProgramType, RunError, TestRun, Vm};
use common::*;

fn ring() -> Arc<Map> {
    let spec = MapSpec::new(MapType::Ringbuf, 0, 0, 4096).with_name("rb");
    Arc::new(Map::create(spec, 1).unwrap())
}

/// `r1 = map 0`.
fn ld_map1() -> [[u8; 8]; 2] {
    [ins(0x18, 1, 1, 0, 0), ins(0, 0, 0, 0, 0)]
}

/// `bpf_ringbuf_reserve_dynptr(map0, size, 0, fp-16)`.
fn reserve(size: i32) -> Vec<[u8; 8]> {
    let mut v = ld_map1().to_vec();
    v.extend([
        ins(0xb7, 2, 0, 0, size),
        ins(0xb7, 3, 0, 0, 0),
        ins(0xbf, 4, 10, 0, 0),
        ins(0x07, 4, 0, 0, -16),
        ins(0x85, 0, 0, 0, 198),
    ]);
    v
}

/// `bpf_ringbuf_submit_dynptr(fp-16, 0)`.
fn submit() -> [[u8; 8]; 4] {
    [
        ins(0xbf, 1, 10, 0, 0),
        ins(0x07, 1, 0, 0, -16),
        ins(0xb7, 2, 0, 0, 0),
        ins(0x85, 0, 0, 0, 199),
    ]
}

fn run_structural(map: &Arc<Map>, insns: &[[u8; 8]]) -> Result<u64, RunError> {
    let vm = structural_vm(1);
    let p = vm
        .load(Program::new(code(insns), ProgramType::Unspecified).with_map(map.clone()))
        .expect("the program loads");
    vm.run(&p, CpuId(0), &Input::empty()).map(|o| o.retval)
}

#[test]
fn the_logger_fills_and_commits_records() {
    let (obj, maps, _) = fixture_vm("dynptr_logger", 1);
    // The default loader (CAP_BPF + CAP_NET_ADMIN) accepts it, as the kernel does.
    let vm = Vm::builder().cpus(1).build();
    let p = fixture_program(&vm, &obj, &maps, "xdp_dynptr_logger");
    let events = maps.all()[obj.map_index("events").unwrap()].clone();
    let scratch = maps.all()[obj.map_index("scratch").unwrap()].clone();
    for len in [60usize, 120] {
        let frame: Vec<u8> = (0..len).map(|i| i as u8 ^ 0x33).collect();
        let out = vm
            .test_run(
                &p,
                &TestRun {
                    input: Input::packet(frame.clone()),
                    repeat: 1,
                    cpu: CpuId(0),
                },
            )
            .unwrap();
        assert_eq!(out.retval, 2, "XDP_PASS");
        // The local dynptr wrote the head and the length into the map value.
        let mut v = vec![0u8; 32];
        scratch.lookup(&0u32.to_ne_bytes(), &mut v, 0).unwrap();
        assert_eq!(&v[..16], &frame[..16]);
        assert_eq!(&v[16..20], &(len as u32).to_ne_bytes());
    }
    let records = events.ringbuf_drain().unwrap();
    assert_eq!(
        records.len(),
        1,
        "the 120-byte frame's record was discarded"
    );
    let r = &records[0];
    assert_eq!(r.len(), 64);
    let word = |i: usize| i32::from_ne_bytes(r[4 * i..4 * i + 4].try_into().unwrap());
    assert_eq!(
        (
            word(0),
            word(1),
            word(2),
            word(3),
            word(4),
            word(5),
            word(6),
            word(7)
        ),
        (60, -7, -22, 1, -22, -22, -22, -7)
    );
    let head: Vec<u8> = (0..16).map(|i| i as u8 ^ 0x33).collect();
    assert_eq!(&r[32..48], &head[..]);
    assert_eq!(&r[48..56], &(0x1122_3344_5566_7788u64 + 60).to_ne_bytes());
    assert_eq!(
        &r[56..64],
        &[0x5a; 8],
        "a failed read leaves the buffer alone"
    );
}

#[test]
fn a_slice_after_submit_faults() {
    let m = ring();
    let mut p = reserve(8);
    p.extend([
        ins(0xbf, 1, 10, 0, 0),
        ins(0x07, 1, 0, 0, -16),
        ins(0xb7, 2, 0, 0, 0),
        ins(0xb7, 3, 0, 0, 8),
        ins(0x85, 0, 0, 0, 203), // r6 = bpf_dynptr_data(fp-16, 0, 8)
        ins(0xbf, 6, 0, 0, 0),
    ]);
    p.extend(submit());
    p.extend([ins(0x79, 0, 6, 0, 0), EXIT]); // r0 = *(u64 *)(r6 + 0)
    let e = run_structural(&m, &p).unwrap_err();
    assert!(
        matches!(&e, RunError::Fault { fault, .. } if fault.kind == FaultKind::Unmapped),
        "{e}"
    );
    assert_eq!(m.ringbuf_consume().unwrap(), Some(vec![0; 8]));
}

#[test]
fn a_forged_dynptr_is_a_memory_error() {
    let m = ring();
    let p = [
        // A local dynptr of 8 bytes at address 0x1000.
        ins(0x7a, 10, 0, -16, 0x1000),
        ins(0x62, 10, 0, -8, 8 | (1 << 28)),
        ins(0x62, 10, 0, -4, 0),
        ins(0xbf, 1, 10, 0, 0),
        ins(0x07, 1, 0, 0, -24),
        ins(0xb7, 2, 0, 0, 8),
        ins(0xbf, 3, 10, 0, 0),
        ins(0x07, 3, 0, 0, -16),
        ins(0xb7, 4, 0, 0, 0),
        ins(0xb7, 5, 0, 0, 0),
        ins(0x85, 0, 0, 0, 201), // bpf_dynptr_read(fp-24, 8, fp-16, 0, 0)
        EXIT,
    ];
    let e = run_structural(&m, &p).unwrap_err();
    assert!(
        matches!(&e, RunError::Helper { .. }) && e.to_string().contains("bpf_dynptr_read"),
        "{e}"
    );
}

#[test]
fn a_failed_reservation_is_a_null_dynptr_and_a_held_one_is_discarded_at_exit() {
    let m = ring();
    // Too large for the ring: -EINVAL and a NULL dynptr (all zero), discarded as a no-op.
    let mut p = reserve(8192);
    p.extend([
        ins(0xbf, 6, 0, 0, 0),
        ins(0x79, 7, 10, -16, 0),
        ins(0x79, 8, 10, -8, 0),
        ins(0x4f, 7, 8, 0, 0), // r7 |= r8
        ins(0xbf, 1, 10, 0, 0),
        ins(0x07, 1, 0, 0, -16),
        ins(0xb7, 2, 0, 0, 0),
        ins(0x85, 0, 0, 0, 200),
        ins(0x55, 7, 0, 1, 0), // if r7 != 0 goto +1 (keep r0 = 1)
        ins(0xbf, 0, 6, 0, 0),
        EXIT,
    ]);
    assert_eq!(run_structural(&m, &p).unwrap(), (-22i64) as u64);
    // Exiting with a reservation held fails the run; the record is discarded.
    let mut held = reserve(16);
    held.extend([ins(0xb7, 0, 0, 0, 0), EXIT]);
    assert!(run_structural(&m, &held).is_err());
    assert_eq!(m.ringbuf_consume().unwrap(), None);
    let mut ok = reserve(16);
    ok.extend(submit());
    ok.extend([ins(0xb7, 0, 0, 0, 0), EXIT]);
    assert_eq!(run_structural(&m, &ok).unwrap(), 0);
    assert_eq!(m.ringbuf_consume().unwrap(), Some(vec![0; 16]));
}

#[test]
fn dynptr_kfuncs_size_test_and_adjust() {
    let (obj, maps, vm) = fixture_vm("dynptr_kfuncs", 1);
    let p = fixture_program(&vm, &obj, &maps, "adjust_and_read");
    let frame: Vec<u8> = (0..64).collect();
    let out = vm
        .test_run(
            &p,
            &TestRun {
                input: Input::packet(frame),
                repeat: 1,
                cpu: CpuId(0),
            },
        )
        .unwrap();
    assert_eq!(out.retval, 3, "XDP_TX");
    let d = out.data_out;
    let word = |i: usize| u32::from_ne_bytes(d[4 * i..4 * i + 4].try_into().unwrap());
    assert_eq!(
        (
            word(0),
            word(1),
            word(2) as i32,
            word(3) as i32,
            word(4) as i32
        ),
        (32, 8, 0, -34, -22),
        "size, size after adjust(4, 12), adjust, adjust past the size, start > end"
    );
    assert_eq!((word(5) as i32, word(6) as i32), (-22, -22), "NULL dynptr");
    assert_eq!(&d[28..31], &[0, 1, 0], "is_null, NULL is_null, is_rdonly");
    assert_eq!(&d[32..40], &[4, 5, 6, 7, 8, 9, 10, 11], "read after adjust");
    for name in ["size_uninit", "size_not_stack"] {
        let program = obj.vm_program(name, &maps).unwrap();
        assert!(vm.load(program).is_err(), "{name} is refused");
    }
}
