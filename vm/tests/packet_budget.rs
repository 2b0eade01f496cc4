//! Packet helpers are charged to the instruction budget by the bytes they copy or sum (one
//! instruction per 64 bytes), as the map helpers are: a loop of 512-byte
//! `bpf_skb_load_bytes`, `bpf_skb_store_bytes` or `bpf_csum_diff` calls runs out of a budget
//! that the same loop over 32 bytes fits in.

mod common;

use bpfvm::limits::HELPER_BYTES_PER_INSN;
use bpfvm::{CpuId, Input, Program, ProgramType, RunError, SourceAt, Vm};
use common::{code, ins, EXIT};

const LOOPS: i32 = 1000;
/// The helper call's pc in [`helper_loop`].
const CALL_PC: usize = 8;

/// `repeat LOOPS times { helper(..., len) }; return 0`, with the arguments of `helper`:
/// 26 `bpf_skb_load_bytes(ctx, 0, r10 - 512, len)`, 9 `bpf_skb_store_bytes(ctx, 0,
/// r10 - 512, len, 0)` or 28 `bpf_csum_diff(r10 - 512, len, r10 - 512, len, 0)`. Each
/// iteration is 9 instructions.
fn helper_loop(helper: i32, len: i32) -> Vec<u8> {
    let (r1, r2): ([u8; 8], [u8; 8]) = if helper == 28 {
        (ins(0xbf, 1, 10, 0, 0), ins(0xb7, 2, 0, 0, len)) // r1 = r10; r2 = len
    } else {
        (ins(0xbf, 1, 6, 0, 0), ins(0xb7, 2, 0, 0, 0)) // r1 = ctx; r2 = 0
    };
    let fix_r1 = if helper == 28 {
        ins(0x07, 1, 0, 0, -512) // r1 -= 512
    } else {
        ins(0xb7, 5, 0, 0, 0) // r5 = 0
    };
    code(&[
        ins(0xbf, 6, 1, 0, 0),      // 0: r6 = r1
        ins(0xb7, 7, 0, 0, LOOPS),  // 1: r7 = LOOPS
        r1,                         // 2
        fix_r1,                     // 3
        r2,                         // 4
        ins(0xbf, 3, 10, 0, 0),     // 5: r3 = r10
        ins(0x07, 3, 0, 0, -512),   // 6: r3 -= 512
        ins(0xb7, 4, 0, 0, len),    // 7: r4 = len
        ins(0x85, 0, 0, 0, helper), // 8: call helper
        ins(0x17, 7, 0, 0, 1),      // 9: r7 -= 1
        ins(0x55, 7, 0, -9, 0),     // 10: if r7 != 0 goto 2
        ins(0xb7, 0, 0, 0, 0),      // 11: r0 = 0
        EXIT,
    ])
}

/// An IPv4 frame of 600 bytes.
fn frame() -> Vec<u8> {
    let mut f = vec![0u8; 600];
    f[12] = 0x08;
    f[14] = 0x45;
    f
}

fn run(helper: i32, len: i32, budget: u64) -> Result<u64, RunError> {
    // The 1,000-iteration loops are beyond the kernel verifier's 1M-instruction walk; the
    // run-time budget is what is measured here.
    let vm = Vm::builder()
        .cpus(1)
        .budget(budget)
        .verifier(bpfvm::VerifierMode::Structural)
        .build();
    let prog = vm
        .load(Program::new(
            helper_loop(helper, len),
            ProgramType::SchedCls,
        ))
        .unwrap();
    vm.run(&prog, CpuId(0), &Input::packet(frame()))
        .map(|o| o.retval)
}

/// The smallest budget the loop of `helper` over `len` bytes completes in.
fn min_budget(helper: i32, len: i32) -> u64 {
    let (mut lo, mut hi) = (1u64, 100_000u64);
    assert_eq!(run(helper, len, hi), Ok(0));
    while lo < hi {
        let mid = (lo + hi) / 2;
        match run(helper, len, mid) {
            Ok(0) => hi = mid,
            Err(RunError::BudgetExhausted { .. }) => lo = mid + 1,
            other => panic!("helper {helper}: {other:?}"),
        }
    }
    lo
}

#[test]
fn packet_copies_and_sums_come_off_the_budget() {
    assert_eq!(HELPER_BYTES_PER_INSN, 64);
    // 512-byte copies add 8 instructions per call (csum_diff: 16, it sums both buffers);
    // 32-byte ones nothing.
    for (helper, work) in [(26, 8), (9, 8), (28, 16)] {
        let small = min_budget(helper, 32);
        assert_eq!(small, min_budget(helper, 0), "helper {helper}");
        // The budget is checked per straight-line block, so the last call may need a few
        // instructions' slack.
        let extra = min_budget(helper, 512) - small;
        let want = work * LOOPS as u64;
        assert!(
            (want..want + 16).contains(&extra),
            "helper {helper}: {extra} more instructions, expected {want}"
        );
        // Past the budget, the run ends at the call when the helper's work goes over.
        let budget = small + 10;
        assert_eq!(
            run(helper, 512, budget),
            Err(RunError::BudgetExhausted {
                pc: CALL_PC,
                budget,
                at: SourceAt::NONE,
            }),
            "helper {helper}"
        );
    }
}
