//! `may_goto` at run time: each call frame has its own counter of `BPF_MAX_LOOPS`
//! (8,388,608) fall-throughs, set when the frame is entered, as the kernel's rewrite keeps
//! one in each function's stack frame; the instruction budget still applies; the rbpf
//! engines refuse the instruction. (The kernel comparison is
//! `conformance/tests/kernel_may_goto.rs`.)

use bpfvm::{CpuId, EngineKind, Input, PrepareError, Program, ProgramType, RunError, Vm, VmConfig};

const MAX_LOOPS: u64 = 8_388_608;

fn word(code: u8, dst: u8, src: u8, off: i16, imm: i32) -> u64 {
    u64::from(code)
        | u64::from(dst) << 8
        | u64::from(src) << 12
        | u64::from(off as u16) << 16
        | u64::from(imm as u32) << 32
}

const EXIT: u64 = 0x95;

/// `r0 = 0; for (;;) { may_goto out; r0++; } out: exit`.
fn count_loop() -> Vec<u64> {
    vec![
        word(0xb7, 0, 0, 0, 0),  // r0 = 0
        word(0xe5, 0, 0, 2, 0),  // may_goto +2
        word(0x07, 0, 0, 0, 1),  // r0 += 1
        word(0x05, 0, 0, -3, 0), // goto -3
        EXIT,
    ]
}

fn run(words: &[u64], budget: u64) -> Result<u64, RunError> {
    let vm = Vm::builder().budget(budget).build();
    let prog = vm
        .load(Program::from_words(words, ProgramType::Unspecified))
        .unwrap();
    vm.run(&prog, CpuId(0), &Input::empty()).map(|o| o.retval)
}

#[test]
fn the_counter_falls_through_max_loops_times() {
    assert_eq!(run(&count_loop(), 100_000_000).unwrap(), MAX_LOOPS);
}

#[test]
fn every_call_of_a_function_starts_a_counter_of_its_own() {
    // main: exhausts its own counter, then calls the loop twice and adds the counts.
    let mut words = vec![
        word(0xb7, 6, 0, 0, 0),  // r6 = 0
        word(0xe5, 0, 0, 2, 0),  // may_goto +2
        word(0x07, 6, 0, 0, 1),  // r6 += 1
        word(0x05, 0, 0, -3, 0), // goto -3
        word(0x85, 0, 1, 0, 5),  // call pc+5
        word(0x0f, 6, 0, 0, 0),  // r6 += r0
        word(0x85, 0, 1, 0, 3),  // call pc+3
        word(0x0f, 0, 6, 0, 0),  // r0 += r6
        EXIT,
        word(0x05, 0, 0, 0, 0), // goto +0 (padding so the callee starts at 10)
    ];
    words.extend(count_loop());
    assert_eq!(run(&words, 200_000_000).unwrap(), 3 * MAX_LOOPS);
}

#[test]
fn the_instruction_budget_still_ends_the_run() {
    let e = run(&count_loop(), 1_000_000).unwrap_err();
    assert!(matches!(e, RunError::BudgetExhausted { .. }), "{e}");
}

#[test]
fn rbpf_engines_refuse_may_goto() {
    let vm = Vm::new(VmConfig {
        rbpf_allow_loops: true,
        ..VmConfig::default()
    });
    for engine in [EngineKind::RbpfInterpreter, EngineKind::RbpfJit] {
        let e = vm
            .load(Program::from_words(&count_loop(), ProgramType::Unspecified).with_engine(engine))
            .unwrap_err();
        let shown = e.to_string();
        if matches!(e, PrepareError::EngineUnavailable { .. }) {
            continue;
        }
        assert!(
            matches!(e, PrepareError::Unsupported { pc: 1, .. }) && shown.contains("may_goto"),
            "{shown}"
        );
    }
}

#[test]
fn may_goto_with_reserved_fields_is_refused() {
    let mut words = count_loop();
    words[1] = word(0xe5, 0, 1, 2, 0); // src 1
    let vm = Vm::default();
    let e = vm
        .load(Program::from_words(&words, ProgramType::Unspecified))
        .unwrap_err();
    assert!(e.to_string().contains("src"), "{e}");
}
