//! The `jit` engine's unchecked accesses in the running stack frame (`compile/frame.rs`)
//! and its compile of large programs, against the interpreter.
#![cfg(all(
    feature = "jit",
    any(target_arch = "x86_64", target_arch = "aarch64"),
    target_endian = "little",
    not(miri)
))]

use bpfvm::{CpuId, EngineKind, Input, Program, ProgramType, RunError, VerifierMode, Vm};
use bpfvm_helpers::memory::REGION_STACK;
use bpfvm_helpers::{HelperContext, HelperError};

fn program(src: &str, engine: EngineKind) -> Program {
    let code = rbpf::assembler::assemble(src).expect("test programs assemble");
    Program::new(code, ProgramType::Unspecified).with_engine(engine)
}

/// Runs `src` on both engines of `vm`; asserts they agree and returns the result.
fn both_on(vm: &Vm, src: &str) -> Result<u64, String> {
    let mut out = Vec::new();
    for engine in [EngineKind::Interpreter, EngineKind::Jit] {
        let prog = vm.load(program(src, engine)).expect("loads");
        let r = vm
            .run(&prog, CpuId(0), &Input::empty())
            .map(|o| o.retval)
            .map_err(|e| format!("{e:?}"));
        out.push(r);
    }
    assert_eq!(out[0], out[1], "interpreter vs jit on:\n{src}");
    out.pop().unwrap()
}

fn vm() -> Vm {
    Vm::builder()
        .cpus(1)
        .budget(1_000_000)
        .verifier(VerifierMode::Structural)
        .build()
}

/// Every size at offsets at and around both ends of the frame: inside (unchecked), and
/// just outside (checked, faulting the same way).
#[test]
fn frame_accesses_at_its_ends_agree() {
    let vm = vm();
    for (size, st, ld) in [
        (1, "stxb", "ldxb"),
        (2, "stxh", "ldxh"),
        (4, "stxw", "ldxw"),
        (8, "stxdw", "ldxdw"),
    ] {
        for off in [-520i32, -513, -512, -511, -257, -9, -8, -7, -1, 0, 1] {
            let src = format!(
                "lddw r1, 0x1122334455667788\n{st} [r10{off:+}], r1\n{ld} r0, [r10{off:+}]\nexit"
            );
            let r = both_on(&vm, &src);
            if off >= -512 && off + size <= 0 {
                let mask = if size == 8 {
                    u64::MAX
                } else {
                    (1 << (8 * size)) - 1
                };
                assert_eq!(r, Ok(0x1122_3344_5566_7788 & mask), "{src}");
            } else {
                assert!(r.unwrap_err().contains("Fault"), "{src}");
            }
        }
    }
}

/// Frames of bpf-to-bpf calls: each function's `r10` accesses are its own frame's, a
/// pointer into the caller's frame reaches it (checked), and the caller's frame is intact
/// after the return; with a helper call (which may change the region table) between.
#[test]
fn frames_of_calls_are_each_their_own() {
    let src = "
        mov64 r6, 0
        stdw [r10-8], 100
        stdw [r10-512], 7
        mov64 r1, r10
        add64 r1, -8
        call 0
        ldxdw r2, [r10-8]
        add64 r0, r2
        ldxdw r2, [r10-512]
        add64 r0, r2
        exit
        stdw [r10-8], 20
        ldxdw r2, [r1]
        add64 r2, 1
        stxdw [r1], r2
        mov64 r7, r1
        call 0
        ldxdw r3, [r10-8]
        add64 r0, r3
        ldxdw r2, [r7]
        add64 r0, r2
        exit
        stdw [r10-8], 3
        call 5
        ldxdw r0, [r10-8]
        exit";
    let mut code = rbpf::assembler::assemble(src).expect("assembles");
    // The two `call 0` become local calls (src 1): main's (pc 5) to the middle function
    // (pc 11), the middle's (pc 16) to the innermost (pc 22).
    for (pc, target) in [(5usize, 11i32), (16, 22)] {
        let insn = &mut code[pc * 8..pc * 8 + 8];
        assert_eq!(insn[0], 0x85);
        insn[1] = 0x10;
        insn[4..8].copy_from_slice(&(target - pc as i32 - 1).to_le_bytes());
    }
    let vm = vm();
    let mut out = Vec::new();
    for engine in [EngineKind::Interpreter, EngineKind::Jit] {
        let prog = vm
            .load(Program::new(code.clone(), ProgramType::Unspecified).with_engine(engine))
            .expect("loads");
        out.push(vm.run(&prog, CpuId(0), &Input::empty()).map(|o| o.retval));
    }
    assert_eq!(out[0], out[1]);
    // Innermost: 3; middle: 3 + 20 + 101 = 124; main: 124 + 101 + 7 = 232.
    assert_eq!(out[1], Ok(232));
}

/// A program that writes `r10` is refused at load by both engines (so `r10` is always the
/// frame pointer; `compile/frame.rs` checks it again on its own).
#[test]
fn a_program_moving_r10_is_refused_by_both() {
    let vm = vm();
    let src = "stdw [r10-8], 5\nadd64 r10, -8\nldxdw r0, [r10+0]\nexit";
    let interpreted = vm.load(program(src, EngineKind::Interpreter)).unwrap_err();
    let jitted = vm.load(program(src, EngineKind::Jit)).unwrap_err();
    assert_eq!(interpreted.to_string(), jitted.to_string());
    assert!(interpreted.to_string().contains("r10"), "{interpreted}");
}

/// A helper that closes the stack window under the running frame: the interpreter faults
/// at the frame's next access, the jit ends the run at once with `BadInput` (the one
/// difference, see `compile/frame.rs`); neither touches memory outside the region.
#[test]
fn a_helper_closing_the_frame_ends_the_jitted_run() {
    // One VM per engine: the helper leaves the window closed for the CPU's next run.
    let vm = || {
        Vm::builder()
            .cpus(1)
            .verifier(VerifierMode::Structural)
            .helper(
                200,
                "close_stack",
                |ctx: &mut HelperContext, _: [u64; 5]| -> Result<u64, HelperError> {
                    ctx.memory.set_owned_window(REGION_STACK, 4096);
                    Ok(0)
                },
            )
            .unwrap()
            .build()
    };
    let src = "stdw [r10-8], 1\ncall 200\nldxdw r0, [r10-8]\nexit";
    let run = |engine| {
        let vm = vm();
        let prog = vm.load(program(src, engine)).expect("loads");
        vm.run(&prog, CpuId(0), &Input::empty()).map(|o| o.retval)
    };
    assert!(matches!(
        run(EngineKind::Interpreter),
        Err(RunError::Fault { pc: 2, .. })
    ));
    assert!(matches!(
        run(EngineKind::Jit),
        Err(RunError::BadInput { .. })
    ));
}

/// A program longer than the jit's large-program size (compiled without cranelift's
/// optimizer): stack and checked accesses, a helper call and a loop, same result.
#[test]
fn a_large_program_agrees() {
    let mut src = String::from("mov64 r0, 0\nmov64 r6, r10\n");
    for i in 0..3_400 {
        if i % 100 == 0 {
            src.push_str("stxdw [r6-16], r0\nldxdw r0, [r6-16]\n");
        }
        src.push_str("add64 r0, 3\nstxdw [r10-8], r0\nldxdw r1, [r10-8]\n");
    }
    src.push_str(
        "mov64 r8, r1\ncall 5\nmov64 r0, r8\nmov64 r7, 3\nadd64 r0, 1\nsub64 r7, 1\njne r7, 0, -3\nexit",
    );
    let insns = src.lines().count();
    assert!(insns > 10_000, "{insns}");
    assert_eq!(both_on(&vm(), &src), Ok(3 * 3_400 + 3));
}
