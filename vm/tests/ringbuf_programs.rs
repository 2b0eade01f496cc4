//! Checks the ring buffer helpers from programs: a reservation is an object of its own (a
//! store past its size faults, and so does any access after submit or discard), a run that
//! exits holding one fails and the record is discarded (the ring is not blocked), the
//! kernel's NULL / -EINVAL / -EAGAIN answers for bad flags, oversized and full records, and
//! `bpf_ringbuf_query`.

mod common;

use std::sync::Arc;

use bpfvm::helpers::FaultKind;
use bpfvm::maps::{Map, MapSpec, MapType};
use bpfvm::{CpuId, Input, Program, ProgramType, RunError, Vm};
use common::*;

fn ring() -> Arc<Map> {
    let spec = MapSpec::new(MapType::Ringbuf, 0, 0, 4096).with_name("rb");
    Arc::new(Map::create(spec, 2).unwrap())
}

fn ld_map(dst: u8) -> [[u8; 8]; 2] {
    [ins(0x18, dst, 1, 0, 0), ins(0, 0, 0, 0, 0)]
}

/// `r6 = bpf_ringbuf_reserve(map0, size, flags); if (!r6) return 0xdead;` then `body`.
fn reserve_then(size: i32, flags: i32, body: &[[u8; 8]]) -> Vec<u8> {
    let mut v = ld_map(1).to_vec();
    v.extend([
        ins(0xb7, 2, 0, 0, size),  // r2 = size
        ins(0xb7, 3, 0, 0, flags), // r3 = flags
        ins(0x85, 0, 0, 0, 131),   // call bpf_ringbuf_reserve
        ins(0xbf, 6, 0, 0, 0),     // r6 = r0
        ins(0x55, 6, 0, 2, 0),     // if r6 != 0 goto +2
        ins(0xb7, 0, 0, 0, 0xdead),
        EXIT,
    ]);
    v.extend_from_slice(body);
    code(&v)
}

/// `bpf_ringbuf_submit(r6, 0)` (or discard).
fn commit(discard: bool) -> [[u8; 8]; 3] {
    [
        ins(0xbf, 1, 6, 0, 0),
        ins(0xb7, 2, 0, 0, 0),
        ins(0x85, 0, 0, 0, if discard { 133 } else { 132 }),
    ]
}

fn run(map: &Arc<Map>, code: Vec<u8>) -> Result<u64, RunError> {
    let vm = Vm::builder().cpus(2).build();
    let p = vm
        .load(Program::new(code, ProgramType::Unspecified).with_map(map.clone()))
        .expect("the program loads");
    vm.run(&p, CpuId(1), &Input::empty()).map(|o| o.retval)
}

fn fault_kind(e: &RunError) -> Option<FaultKind> {
    match e {
        RunError::Fault { fault, .. } => Some(fault.kind),
        _ => None,
    }
}

#[test]
fn a_reservation_is_filled_in_place_and_submitted() {
    let m = ring();
    let mut body = vec![
        ins(0x7a, 6, 0, 0, 0x1122_3344), // *(u64 *)(r6 + 0) = 0x11223344
        ins(0x72, 6, 0, 11, 0x7f),       // *(u8 *)(r6 + 11) = 0x7f: the last byte
    ];
    body.extend(commit(false));
    body.extend([ins(0xb7, 0, 0, 0, 0), EXIT]);
    assert_eq!(run(&m, reserve_then(12, 0, &body)).unwrap(), 0);
    let mut want = 0x1122_3344u64.to_ne_bytes().to_vec();
    want.extend([0, 0, 0, 0x7f]);
    assert_eq!(m.ringbuf_consume().unwrap(), Some(want));
}

#[test]
fn stores_past_the_reservation_fault_and_the_record_is_discarded() {
    let m = ring();
    let body = [
        ins(0x72, 6, 0, 12, 1), // *(u8 *)(r6 + 12) = 1: one past the 12 bytes
        ins(0xb7, 0, 0, 0, 0),
        EXIT,
    ];
    let e = run(&m, reserve_then(12, 0, &body)).unwrap_err();
    assert_eq!(fault_kind(&e), Some(FaultKind::OutOfBounds), "{e}");
    assert!(
        e.to_string()
            .contains("ring buffer rb record, offset 12 (the record has 12 bytes)"),
        "{e}"
    );
    // The run failed holding the reservation: it was discarded, the ring moves on.
    assert_eq!(m.ringbuf_consume().unwrap(), None);
    assert_eq!(m.ringbuf_positions().unwrap(), (24, 24));
    let neighbour = [ins(0x72, 6, 0, -9, 1), ins(0xb7, 0, 0, 0, 0), EXIT];
    let e = run(&m, reserve_then(12, 0, &neighbour)).unwrap_err();
    assert_eq!(
        fault_kind(&e),
        Some(FaultKind::OutOfBounds),
        "the header is not reachable: {e}"
    );
}

#[test]
fn a_submitted_or_discarded_record_is_out_of_reach() {
    for discard in [false, true] {
        let m = ring();
        let mut body = commit(discard).to_vec();
        body.extend([ins(0x61, 0, 6, 0, 0), EXIT]); // r0 = *(u32 *)(r6 + 0)
        let e = run(&m, reserve_then(8, 0, &body)).unwrap_err();
        assert_eq!(
            fault_kind(&e),
            Some(FaultKind::Unmapped),
            "discard {discard}: {e}"
        );
        assert!(
            e.to_string().contains("already submitted or discarded"),
            "{e}"
        );
        let expect = if discard { None } else { Some(vec![0; 8]) };
        assert_eq!(m.ringbuf_consume().unwrap(), expect);
        // Submitting twice is what the verifier refuses: a helper error here.
        let mut twice = commit(discard).to_vec();
        twice.extend(commit(discard));
        twice.extend([ins(0xb7, 0, 0, 0, 0), EXIT]);
        let e = run(&m, reserve_then(8, 0, &twice)).unwrap_err();
        assert!(
            matches!(&e, RunError::Helper { .. })
                && e.to_string().contains("not a ring buffer reservation"),
            "{e}"
        );
    }
}

#[test]
fn exiting_with_a_reservation_is_an_error_and_does_not_block_the_ring() {
    let m = ring();
    let body = [ins(0xb7, 0, 0, 0, 0), EXIT];
    let e = run(&m, reserve_then(100, 0, &body)).unwrap_err();
    assert!(matches!(e, RunError::HeldAtExit { .. }), "{e}");
    assert!(e.to_string().contains("reservation"), "{e}");
    let mut ok = commit(false).to_vec();
    ok.extend([ins(0xb7, 0, 0, 0, 0), EXIT]);
    assert_eq!(run(&m, reserve_then(4, 0, &ok)).unwrap(), 0);
    assert_eq!(
        m.ringbuf_consume().unwrap(),
        Some(vec![0; 4]),
        "the next record is readable"
    );
}

#[test]
fn flags_and_sizes_are_checked_as_the_kernel_does() {
    let m = ring();
    let nothing = [ins(0xb7, 0, 0, 0, 0), EXIT];
    // reserve: flags must be 0; a record must fit the ring (4080 data bytes at most).
    assert_eq!(run(&m, reserve_then(8, 1, &nothing)).unwrap(), 0xdead);
    assert_eq!(run(&m, reserve_then(4081, 0, &nothing)).unwrap(), 0xdead);
    // output: r0 = bpf_ringbuf_output(map0, r10 - 8, size, flags).
    let output = |size: i32, flags: i32| {
        let mut v = vec![ins(0x7a, 10, 0, -8, 7)];
        v.extend(ld_map(1));
        v.extend([
            ins(0xbf, 2, 10, 0, 0),
            ins(0x07, 2, 0, 0, -8),
            ins(0xb7, 3, 0, 0, size),
            ins(0xb7, 4, 0, 0, flags),
            ins(0x85, 0, 0, 0, 130),
            EXIT,
        ]);
        code(&v)
    };
    assert_eq!(run(&m, output(8, 4)).unwrap() as i64, -22, "unknown flag");
    assert_eq!(
        run(&m, output(8, 3)).unwrap(),
        0,
        "both wakeup flags are accepted"
    );
    assert_eq!(
        m.ringbuf_consume().unwrap(),
        Some(7u64.to_ne_bytes().to_vec())
    );
    for _ in 0..255 {
        assert_eq!(run(&m, output(8, 0)).unwrap(), 0);
    }
    assert_eq!(run(&m, output(8, 0)).unwrap() as i64, -11, "full: EAGAIN");
    // query: r0 = bpf_ringbuf_query(map0, flags).
    let query = |flags: i32| {
        let mut v = ld_map(1).to_vec();
        v.extend([ins(0xb7, 2, 0, 0, flags), ins(0x85, 0, 0, 0, 134), EXIT]);
        code(&v)
    };
    assert_eq!(run(&m, query(0)).unwrap(), 255 * 16, "available bytes");
    assert_eq!(run(&m, query(1)).unwrap(), 4096);
    assert_eq!(run(&m, query(2)).unwrap(), 16);
    assert_eq!(run(&m, query(3)).unwrap(), 256 * 16);
    assert_eq!(run(&m, query(4)).unwrap(), 0);
}

#[test]
fn ring_helpers_refuse_other_maps() {
    let array = Arc::new(Map::create(MapSpec::new(MapType::Array, 4, 8, 1), 2).unwrap());
    let vm = Vm::builder().cpus(2).build();
    let code = reserve_then(8, 0, &[ins(0xb7, 0, 0, 0, 0), EXIT]);
    let p = vm
        .load(Program::new(code, ProgramType::Unspecified).with_map(array))
        .unwrap();
    let e = vm.run(&p, CpuId(0), &Input::empty()).unwrap_err();
    assert!(e.to_string().contains("not a ring buffer"), "{e}");
}
