//! `bpf_trace_printk` output is capped: a run keeps at most `TRACE_CAPACITY` (64 KiB) of it
//! and counts the bytes it dropped, and the repetitions of one `test_run` share that cap
//! instead of concatenating their traces without limit.

mod common;

use bpfvm::limits::TRACE_CAPACITY;
use bpfvm::{CpuId, Input, Program, ProgramType, TestRun, Vm};
use common::{code, ins, EXIT};

/// Bytes one `bpf_trace_printk` call of [`printk_loop`] writes: "0123456789abcd\n".
const LINE: usize = 15;

/// Calls `bpf_trace_printk("0123456789abcd\n")` `loops` times; returns 0.
fn printk_loop(loops: i32) -> Vec<u8> {
    let lo = u64::from_le_bytes(*b"01234567");
    let hi = u64::from_le_bytes(*b"89abcd\n\0");
    code(&[
        ins(0x18, 1, 0, 0, lo as u32 as i32), // r1 = "01234567"
        ins(0, 0, 0, 0, (lo >> 32) as i32),
        ins(0x7b, 10, 1, -16, 0),             // *(u64 *)(r10 - 16) = r1
        ins(0x18, 1, 0, 0, hi as u32 as i32), // r1 = "89abcd\n\0"
        ins(0, 0, 0, 0, (hi >> 32) as i32),
        ins(0x7b, 10, 1, -8, 0),   // *(u64 *)(r10 - 8) = r1
        ins(0xb7, 6, 0, 0, loops), // r6 = loops
        ins(0xbf, 1, 10, 0, 0),    // loop: r1 = r10
        ins(0x07, 1, 0, 0, -16),   // r1 -= 16
        ins(0xb7, 2, 0, 0, 16),    // r2 = 16
        ins(0x85, 0, 0, 0, 6),     // call trace_printk
        ins(0x17, 6, 0, 0, 1),     // r6 -= 1
        ins(0x55, 6, 0, -6, 0),    // if r6 != 0 goto loop
        ins(0xb7, 0, 0, 0, 0),     // r0 = 0
        EXIT,
    ])
}

fn kept_and_dropped(total: usize) -> (usize, u64) {
    let kept = TRACE_CAPACITY / LINE * LINE;
    (kept, (total - kept) as u64)
}

#[test]
fn a_flood_of_one_run_keeps_64_kib_and_counts_the_rest() {
    assert_eq!(TRACE_CAPACITY, 64 << 10);
    let vm = Vm::builder().cpus(1).build();
    let prog = vm
        .load(Program::new(printk_loop(10_000), ProgramType::Unspecified))
        .unwrap();
    let out = vm.run(&prog, CpuId(0), &Input::empty()).unwrap();
    let (kept, dropped) = kept_and_dropped(10_000 * LINE);
    assert_eq!(out.trace.len(), kept, "whole lines up to the cap");
    assert!(out.trace.starts_with("0123456789abcd\n0123456789abcd\n"));
    assert_eq!(out.trace_dropped, dropped);
    // The next run starts with an empty trace and no dropped bytes.
    let small = vm
        .load(Program::new(printk_loop(2), ProgramType::Unspecified))
        .unwrap();
    let out = vm.run(&small, CpuId(0), &Input::empty()).unwrap();
    assert_eq!((out.trace.len(), out.trace_dropped), (2 * LINE, 0));
}

#[test]
fn test_run_repetitions_share_one_capped_trace() {
    let vm = Vm::builder().cpus(1).build();
    let prog = vm
        .load(Program::new(printk_loop(1000), ProgramType::Unspecified))
        .unwrap();
    let res = vm
        .test_run(
            &prog,
            &TestRun {
                input: Input::empty(),
                repeat: 100,
                cpu: CpuId(0),
            },
        )
        .unwrap();
    let (kept, dropped) = kept_and_dropped(100 * 1000 * LINE);
    assert_eq!(res.trace.len(), kept);
    assert_eq!(res.trace_dropped, dropped);
}
