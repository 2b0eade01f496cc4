//! Checks that `Vm::test_run` with `repeat` > 1 behaves as the kernel's `bpf_test_run`: the
//! packet and context are set up once and every repetition runs on them, so a program sees
//! its own earlier changes, and `data_out` / `ctx_out` / `retval` come from the last one.

mod common;

use bpfvm::ctx_layout::{sk_buff, xdp_md};
use bpfvm::{CpuId, EngineKind, Input, Program, ProgramType, TestRun, Vm};
use common::asm;

fn test_run(
    vm: &Vm,
    prog: &bpfvm::LoadedProgram,
    input: Input,
    repeat: u32,
) -> bpfvm::TestRunResult {
    vm.test_run(
        prog,
        &TestRun {
            input,
            repeat,
            cpu: CpuId(0),
        },
    )
    .unwrap()
}

/// `r0 = ++data[0]` (or 0 for an empty packet), on a context whose `data`/`data_end` are
/// 32-bit fields at offsets `data`/`end`.
fn bump_first_byte(data: usize, end: usize) -> Vec<u8> {
    asm(&format!(
        "ldxw r2, [r1+{data}]
         ldxw r3, [r1+{end}]
         mov64 r0, 0
         mov64 r4, r2
         add64 r4, 1
         jgt r4, r3, +4
         ldxb r0, [r2+0]
         add64 r0, 1
         and64 r0, 255
         stxb [r2+0], r0
         exit"
    ))
}

#[test]
fn xdp_repetitions_see_the_packet_changes_of_earlier_ones() {
    let vm = Vm::builder().cpus(1).build();
    let prog = vm
        .load(Program::new(
            bump_first_byte(xdp_md::DATA, xdp_md::DATA_END),
            ProgramType::Xdp,
        ))
        .unwrap();
    let mut packet = vec![10u8, 20, 30, 40];
    packet.resize(14, 0); // an Ethernet header: the least an XDP test run takes
    for repeat in [0, 1, 2, 7, 300] {
        let res = test_run(&vm, &prog, Input::packet(packet.clone()), repeat);
        let n = repeat.max(1);
        let first = (10 + n) as u8;
        assert_eq!(res.retval, first as u64, "repeat {repeat}");
        assert_eq!(res.data_out[..4], [first, 20, 30, 40], "repeat {repeat}");
    }
    // Every call starts again from the caller's packet.
    let res = test_run(&vm, &prog, Input::packet(packet.clone()), 3);
    assert_eq!(res.data_out[..4], [13, 20, 30, 40]);
    // `Vm::run` is one run: the input packet each time.
    for _ in 0..3 {
        let out = vm
            .run(&prog, CpuId(0), &Input::packet(packet.clone()))
            .unwrap();
        assert_eq!(out.data[..4], [11, 20, 30, 40]);
    }
}

#[test]
fn tc_repetitions_see_packet_and_context_changes_of_earlier_ones() {
    let vm = Vm::builder().cpus(1).build();
    // data[0] += 1; mark += 1; cb[0] += 2; r0 = mark
    let code = asm(&format!(
        "ldxw r2, [r1+{data}]
         ldxw r3, [r1+{end}]
         mov64 r4, r2
         add64 r4, 1
         jgt r4, r3, +3
         ldxb r5, [r2+0]
         add64 r5, 1
         stxb [r2+0], r5
         ldxw r0, [r1+{mark}]
         add64 r0, 1
         stxw [r1+{mark}], r0
         ldxw r5, [r1+{cb}]
         add64 r5, 2
         stxw [r1+{cb}], r5
         exit",
        data = sk_buff::DATA,
        end = sk_buff::DATA_END,
        mark = sk_buff::MARK,
        cb = sk_buff::CB,
    ));
    let prog = vm.load(Program::new(code, ProgramType::SchedCls)).unwrap();
    let mut frame = vec![0u8; 14 + 20];
    frame[12] = 0x08; // IPv4
    frame[14] = 0x45;
    let mut ctx = vec![0u8; sk_buff::CB + 4];
    ctx[sk_buff::MARK] = 9;
    let input = Input {
        data: frame.clone(),
        ctx,
        ..Input::default()
    };
    let res = test_run(&vm, &prog, input, 5);
    assert_eq!(res.retval, 9 + 5);
    assert_eq!(res.data_out[0], 5);
    assert_eq!(res.data_out[1..], frame[1..]);
    let field = |o: usize| u32::from_le_bytes(res.ctx_out[o..o + 4].try_into().unwrap());
    assert_eq!(field(sk_buff::MARK), 9 + 5);
    assert_eq!(field(sk_buff::CB), 2 * 5);
}

#[test]
fn raw_context_changes_carry_over_on_every_engine() {
    // ctx[0] += 1 (8 bytes); r0 = ctx[0]
    let code = asm("ldxdw r0, [r1+0]\nadd64 r0, 1\nstxdw [r1+0], r0\nexit");
    for engine in EngineKind::available() {
        let vm = Vm::builder().cpus(1).build();
        let prog = vm
            .load(Program::new(code.clone(), ProgramType::Unspecified).with_engine(engine))
            .unwrap();
        let res = test_run(&vm, &prog, Input::context(100u64.to_le_bytes()), 4);
        assert_eq!(res.retval, 104, "{engine}");
        assert_eq!(res.ctx_out, 104u64.to_le_bytes(), "{engine}");
    }
}

#[test]
fn each_repetition_is_still_a_run_of_its_own() {
    // The virtual clock (helper 5) moves on between repetitions; the stack starts zeroed.
    let vm = Vm::builder().cpus(1).build();
    let code = asm("ldxdw r6, [r10-8]
         call 5
         add64 r0, r6
         mov64 r1, 7
         stxdw [r10-8], r1
         exit");
    let prog = vm
        .load(Program::new(code, ProgramType::Unspecified))
        .unwrap();
    let a = test_run(&vm, &prog, Input::empty(), 1).retval;
    let b = test_run(&vm, &prog, Input::empty(), 3).retval;
    // Runs 0 and 3 of this CPU: 3 runs later, 30 ms of virtual time later, stack still 0.
    assert_eq!(b - a, 3 * 10_000_000);
}
