//! `may_goto` run by the kernel (`BPF_PROG_TEST_RUN`) and by bpfvm: the `may_goto_loops`
//! fixture's loops (libbpf's `cond_break`) load on both sides, and a packet checksum whose
//! loop ends at the packet's end gives the same return value and maps on every packet size.
//! A loop bounded only by the counter ends on both sides; bpfvm's count is exactly
//! `BPF_MAX_LOOPS` (8,388,608) falls-through, the counter semantics of the kernel's
//! interpreter and of JITs without the timed variant. The x86-64 JIT (this kernel) uses the
//! timed variant instead (a counter of 65,535 refreshed until about 250 ms have passed),
//! so the kernel's count is only checked to be positive and is printed.
#![cfg(target_os = "linux")]

use bpfvm::{Privilege, Vm};
use bpfvm_conformance::kernel::pair::Pair;
use bpfvm_conformance::kernel::{self};

const OBJECT: &str = concat!(
    env!("CARGO_MANIFEST_DIR"),
    "/../vm/tests/fixtures/may_goto_loops.o"
);

fn open() -> Pair {
    let n = kernel::possible_cpus().unwrap();
    let mut pair = Pair::open(OBJECT, n).unwrap();
    // The kernel has no instruction budget: give bpfvm one that the counter ends first.
    pair.vm = Vm::builder()
        .cpus(n)
        .privilege(Privilege::Root)
        .budget(100_000_000)
        .build();
    pair
}

fn result(pair: &Pair, key: u32) -> (u64, u64) {
    let (k, s) = pair.dumps("results");
    let (k, s) = (k.unwrap(), s.unwrap());
    let get = |c: &bpfvm_conformance::kernel::diff::Contents| {
        c.iter()
            .find(|(key_bytes, _)| key_bytes[..] == key.to_ne_bytes())
            .map(|(_, v)| u64::from_ne_bytes(v[..8].try_into().unwrap()))
            .unwrap()
    };
    (get(&k), get(&s))
}

#[test]
fn a_cond_break_loop_gives_the_kernels_results() {
    if !kernel::oracle_or_skip() {
        return;
    }
    let mut pair = open();
    pair.load("sum_bytes").unwrap();
    for len in [14usize, 15, 60, 63, 64, 65, 1000, 3000] {
        let data: Vec<u8> = (0..len).map(|i| (i * 7 + 3) as u8).collect();
        let runs = pair.run("sum_bytes", 0, &[], &data, 1);
        let (k, s) = (runs.kernel.unwrap(), runs.bpfvm.unwrap());
        assert_eq!(u64::from(k.retval), s.retval, "{len} bytes: return value");
        let (ks, ss) = result(&pair, 0);
        let (ki, si) = result(&pair, 1);
        assert_eq!((ks, ki), (ss, si), "{len} bytes: sum and iterations");
        assert_eq!(si, len.min(64) as u64);
        let (kd, sd) = pair.dumps("results");
        assert_eq!(kd.unwrap(), sd.unwrap(), "{len} bytes: maps");
    }
}

#[test]
fn a_loop_bounded_only_by_the_counter_ends_on_both_sides() {
    if !kernel::oracle_or_skip() {
        return;
    }
    let mut pair = open();
    pair.load("exhaust").unwrap();
    let runs = pair.run("exhaust", 0, &[], &[0u8; 64], 1);
    let (k, s) = (runs.kernel.unwrap(), runs.bpfvm.unwrap());
    assert_eq!(u64::from(k.retval), s.retval);
    let (kn, sn) = result(&pair, 2);
    println!(
        "fall-throughs: kernel {kn} (timed, {} ns), bpfvm {sn}",
        k.duration
    );
    assert_eq!(sn, 8_388_608, "BPF_MAX_LOOPS fall-throughs");
    assert!(kn > 0);
}

/// `may_goto +off` with the given `src`/`imm` (0 in a valid one), as 8 bytes.
fn may_goto(off: i16, src: u8, imm: i32) -> Vec<u8> {
    let mut b = vec![0xe5, src << 4];
    b.extend(off.to_le_bytes());
    b.extend(imm.to_le_bytes());
    b
}

/// Assembled `may_goto` programs judged by both verifiers, for both loaders: same verdict
/// and errno, and bpfvm's message a line of the kernel's log.
#[test]
fn assembled_may_goto_programs_get_the_kernels_verdict() {
    use bpfvm_conformance::verdicts::{asm, compare, Case};
    use bpfvm_verifier::{Privilege, ProgType};
    if !kernel::oracle_or_skip() {
        return;
    }
    let cat = |parts: &[Vec<u8>]| parts.concat();
    let cases: Vec<(&str, Vec<u8>, bool)> = vec![
        // for (i = 0; i < 100; i++) may_goto: the counter decides the branch, walked.
        (
            "bounded_counter_ok",
            cat(&[
                asm("mov64 r0, 0"),
                may_goto(2, 0, 0),
                asm("add64 r0, 1\njlt r0, 100, -3\nmov64 r0, 2\nexit"),
            ]),
            true,
        ),
        // A loop of a million iterations whose counter decides its exit: too large.
        (
            "long_counted_loop_bad",
            cat(&[
                asm("mov64 r0, 0"),
                may_goto(2, 0, 0),
                asm("add64 r0, 1\njlt r0, 1000000, -3\nmov64 r0, 2\nexit"),
            ]),
            false,
        ),
        // Nested: an inner and an outer may_goto loop.
        (
            "nested_ok",
            cat(&[
                asm("mov64 r1, 0\nmov64 r2, 0"),
                may_goto(5, 0, 0),
                asm("add64 r1, 1"),
                may_goto(2, 0, 0),
                asm("add64 r2, 1\nja -3"),
                asm("ja -6"),
                asm("mov64 r0, 2\nexit"),
            ]),
            true,
        ),
        // In a bpf-to-bpf callee.
        (
            "in_subprogram_ok",
            cat(&[
                vec![0x85, 0x10, 0, 0, 2, 0, 0, 0], // call pc+2
                asm("mov64 r0, 2\nexit"),
                asm("mov64 r0, 0"),
                may_goto(2, 0, 0),
                asm("add64 r0, 1\nja -3\nexit"),
            ]),
            true,
        ),
        ("src_set_bad", cat(&[may_goto(0, 1, 0), asm("mov64 r0, 2\nexit")]), false),
        ("imm_set_bad", cat(&[may_goto(0, 0, 1), asm("mov64 r0, 2\nexit")]), false),
        (
            "jmp32_form_bad",
            cat(&[vec![0xe6, 0, 0, 0, 0, 0, 0, 0], asm("mov64 r0, 2\nexit")]),
            false,
        ),
        // Widened across iterations, the loop variable proves no stack access.
        (
            "widened_index_bad",
            cat(&[
                asm("mov64 r1, 0\nstdw [r10-8], 0"),
                may_goto(6, 0, 0),
                asm("mov64 r2, r10\nadd64 r2, -8\nadd64 r2, r1\nldxb r3, [r2+0]\nadd64 r1, 1\nja -7"),
                asm("mov64 r0, 2\nexit"),
            ]),
            false,
        ),
    ];
    let mut failures = Vec::new();
    for (name, insns, ok) in cases {
        let case = Case::new(name, ProgType::Xdp, insns);
        for p in [Privilege::CapBpfNetAdmin, Privilege::Root] {
            let cmp = compare(&case, p).unwrap_or_else(|e| panic!("{name}: {e}"));
            println!("[{p:?}] {}", cmp.describe());
            if cmp.kernel_errno.is_none() != ok && p == Privilege::Root {
                failures.push(format!(
                    "[{p:?}] not the expected kernel verdict: {}",
                    cmp.describe()
                ));
            }
            if let Some(d) = cmp.disagreement() {
                failures.push(format!("[{p:?}] {d}"));
            }
        }
    }
    assert!(failures.is_empty(), "{}", failures.join("\n"));
}
