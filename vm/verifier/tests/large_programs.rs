//! Programs of 100,000 instructions are verified in bounded time: a straight line of ALU
//! instructions, and one with a branch on an unknown value every 25 instructions, whose
//! paths join again (state pruning keeps the walk linear instead of 2^4,000 paths; more
//! than 8,192 branches pending at once is the kernel's "sequence of jumps is too
//! complex"). The
//! time is printed; the bound asserted is a generous guard against a walk that explodes,
//! not a benchmark (a release build takes well under a second, see docs/verifier.md).

use std::time::{Duration, Instant};

use bpfvm_verifier::{verify, Insn, MapInfo, Options, ProgType, Program, Verdict};

const N: usize = 100_000;

fn word(code: u8, dst: u8, src: u8, off: i16, imm: i32) -> u64 {
    u64::from(code)
        | u64::from(dst) << 8
        | u64::from(src) << 12
        | u64::from(off as u16) << 16
        | u64::from(imm as u32) << 32
}

fn check(words: &[u64]) -> (Verdict, Duration) {
    let insns: Vec<Insn> = words.iter().map(|&w| Insn::from_word(w)).collect();
    let prog = Program {
        insns: &insns,
        prog_type: ProgType::Xdp,
        expected_attach_type: None,
        maps: &[] as &[MapInfo],
        gpl_compatible: true,
        func_info: false,
        kfuncs: &[],
        btf: None,
    };
    let start = Instant::now();
    let v = verify(&prog, &Options::default()).expect("the kernel accepts it");
    (v, start.elapsed())
}

#[test]
fn a_straight_line_of_100k_instructions() {
    let mut w = vec![word(0xb7, 0, 0, 0, 0)]; // r0 = 0
    w.extend(std::iter::repeat_n(word(0x07, 0, 0, 0, 1), N - 3)); // r0 += 1
    w.push(word(0xb7, 0, 0, 0, 2)); // r0 = XDP_PASS
    w.push(word(0x95, 0, 0, 0, 0)); // exit
    let (v, t) = check(&w);
    println!("straight line: {} processed in {t:?}", v.insns_processed);
    assert_eq!(v.insns_processed, N as u64);
    assert!(t < Duration::from_secs(30), "{t:?}");
}

#[test]
fn a_branch_every_25_instructions_over_100k() {
    let mut w = vec![
        word(0x85, 0, 0, 0, 7), // r0 = bpf_get_prandom_u32()
        word(0xbf, 6, 0, 0, 0), // r6 = r0
        word(0xb7, 7, 0, 0, 0), // r7 = 0
    ];
    let mut k = 0;
    while w.len() + 25 <= N - 2 {
        w.push(word(0x15, 6, 0, 1, k)); // if r6 == k goto +1
        w.push(word(0x07, 7, 0, 0, 1)); // r7 += 1
        w.push(word(0x07, 6, 0, 0, 3)); // r6 += 3
        w.extend(std::iter::repeat_n(word(0x07, 8, 0, 0, 1), 22)); // r8 += 1
        k += 1;
    }
    w.insert(3, word(0xb7, 8, 0, 0, 0)); // r8 = 0
    w.push(word(0xb7, 0, 0, 0, 2)); // r0 = XDP_PASS
    w.push(word(0x95, 0, 0, 0, 0)); // exit
    let (v, t) = check(&w);
    println!(
        "{} instructions with {k} branches: {} processed, {} states, in {t:?}",
        w.len(),
        v.insns_processed,
        v.total_states
    );
    assert!(v.insns_processed < 1_000_000);
    assert!(t < Duration::from_secs(30), "{t:?}");
}
