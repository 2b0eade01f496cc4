//! Checks dynptr programs against the kernel: the `dynptr_logger.o` fixture (a local
//! dynptr over a map value, a ring buffer dynptr filled through `bpf_dynptr_write`, `read`
//! and a `bpf_dynptr_data` slice, and the helpers' answers out of range, with flags, for a
//! NULL dynptr and for a reservation that does not fit) runs with BPF_PROG_TEST_RUN and in
//! bpfvm for the same frames: the return values, the records a consumer reads, the ring
//! positions and the map value the local dynptr wrote must agree.
#![cfg(target_os = "linux")]

use bpfvm_conformance::kernel;
use bpfvm_conformance::kernel::events::KernelRingbuf;
use bpfvm_conformance::kernel::pair::Pair;

const FIXTURE: &str = concat!(
    env!("CARGO_MANIFEST_DIR"),
    "/../vm/tests/fixtures/dynptr_logger.o"
);
const PROGRAM: &str = "xdp_dynptr_logger";

/// Runs `frame` on `cpu` on both sides; the two return values.
fn run(pair: &Pair, cpu: u32, frame: &[u8]) -> (u32, u32) {
    let runs = pair.run(PROGRAM, cpu, &[], frame, 1);
    (
        runs.kernel.unwrap().retval,
        runs.bpfvm.unwrap().retval as u32,
    )
}

/// The `scratch` value on both sides.
fn scratch(pair: &Pair) -> (Vec<u8>, Vec<u8>) {
    let i = pair.map("scratch");
    let key = 0u32.to_ne_bytes();
    let mut sv = vec![0u8; pair.smaps[i].host_value_size(0)];
    pair.smaps[i].lookup(&key, &mut sv, 0).unwrap();
    (pair.kmaps[i].lookup(&key, 0).unwrap(), sv)
}

fn frame(len: usize, seed: u8) -> Vec<u8> {
    (0..len).map(|i| seed.wrapping_add(i as u8)).collect()
}

#[test]
fn dynptr_logger_agrees_with_the_kernel() {
    if !kernel::oracle_or_skip() {
        return;
    }
    let mut pair = Pair::open(FIXTURE, kernel::possible_cpus().unwrap()).unwrap();
    pair.load(PROGRAM).unwrap();
    let events = pair.map("events");
    let (kr, sr) = (&pair.kmaps[events], &pair.smaps[events]);
    let kring = KernelRingbuf::new(kr).unwrap();
    let frames = [
        frame(14, 1),
        frame(60, 7),
        frame(99, 0x40),
        frame(100, 0x80),
        frame(256, 0xf0),
    ];
    for (i, f) in frames.iter().enumerate() {
        let (k, s) = run(&pair, i as u32 % 2, f);
        assert_eq!(k, s, "frame {i}: return values");
        assert_eq!(k, 2, "frame {i}: XDP_PASS");
        let (kv, sv) = scratch(&pair);
        assert_eq!(kv, sv, "frame {i}: the map value the local dynptr wrote");
    }
    let krecords = kring.drain();
    let srecords = sr.ringbuf_drain().unwrap();
    // Frames under 100 bytes are submitted, the others discarded.
    assert_eq!(krecords.len(), 3);
    assert_eq!(krecords, srecords, "records");
    assert_eq!(
        kring.positions(),
        sr.ringbuf_positions().unwrap(),
        "positions"
    );
    // The record holds the failure answers: -E2BIG, -EINVAL, a NULL slice, ...
    let r = &krecords[1];
    let word = |i: usize| i32::from_ne_bytes(r[4 * i..4 * i + 4].try_into().unwrap());
    assert_eq!(word(0), 60, "len");
    assert_eq!(
        (
            word(1),
            word(2),
            word(3),
            word(4),
            word(5),
            word(6),
            word(7)
        ),
        (-7, -22, 1, -22, -22, -22, -7)
    );
    assert_eq!(
        &r[32..48],
        &frame(60, 7)[..16],
        "the head, through the local dynptr"
    );
}
