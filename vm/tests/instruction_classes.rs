//! Checks every instruction class on every engine: what rbpf can run gives the same result
//! everywhere; what rbpf cannot run is refused there, naming the instruction, and passes on
//! `interpreter`.

mod common;

use bpfvm::{EngineKind, PrepareError, Vm};
use common::*;

/// Programs every engine must run, with the expected `r0`. The context is
/// `[1, 2, 3, 4, 5, 6, 7, 8, 0xf0, 0xde, 0xbc, 0x9a, 0x78, 0x56, 0x34, 0x12]`.
fn common_programs() -> Vec<(&'static str, Vec<u8>, u64)> {
    vec![
        (
            "alu64 imm and reg",
            asm("mov64 r0, 7
                 mov64 r1, 3
                 add64 r0, r1
                 sub64 r0, 1
                 mul64 r0, 6
                 div64 r0, 4
                 mod64 r0, 5
                 lsh64 r0, 40
                 rsh64 r0, 8
                 or64 r0, 0x11
                 and64 r0, 0xff
                 xor64 r0, r1
                 mov64 r2, -16
                 arsh64 r2, 2
                 add64 r0, r2
                 exit"),
            // ((7+3-1)*6/4)%5 = 3; 3<<40>>8 = 3<<32; |0x11 -> low byte 0x11 after &0xff; ^3 = 0x12; + (-4)
            0x12 - 4,
        ),
        (
            "alu32 zero-extends",
            asm("lddw r0, 0xffffffff00000005
                 add32 r0, 1
                 mov64 r1, -1
                 mul32 r1, 2
                 add64 r0, r1
                 exit"),
            6 + 0xffff_fffe,
        ),
        (
            "div and mod by a zero register",
            asm("mov64 r0, 9
                 mov64 r1, 0
                 div64 r0, r1
                 mov64 r2, 9
                 mod64 r2, r1
                 add64 r0, r2
                 exit"),
            9,
        ),
        (
            "neg32, arsh32, shifts",
            asm("mov32 r0, 5
                 neg32 r0
                 arsh32 r0, 1
                 lsh32 r0, 4
                 rsh32 r0, 28
                 exit"),
            0xf,
        ),
        (
            "byte order be16/be32/be64 and le64",
            asm("lddw r0, 0x0102030405060708
                 be64 r0
                 mov64 r1, 0x0102
                 be16 r1
                 add64 r0, r1
                 mov64 r2, 0x01020304
                 be32 r2
                 add64 r0, r2
                 le64 r0
                 exit"),
            0x0807060504030201u64 + 0x0201 + 0x04030201,
        ),
        (
            "loads from the context, all widths",
            asm("ldxb r0, [r1+0]
                 ldxh r2, [r1+2]
                 add64 r0, r2
                 ldxw r2, [r1+4]
                 add64 r0, r2
                 ldxdw r2, [r1+8]
                 add64 r0, r2
                 exit"),
            1 + 0x0403 + 0x0807_0605 + 0x1234_5678_9abc_def0,
        ),
        (
            "stores to the stack, all widths",
            asm("stdw [r10-8], 0
                 stb [r10-8], 0x11
                 sth [r10-6], 0x2233
                 stw [r10-4], 0x44556677
                 ldxdw r0, [r10-8]
                 mov64 r1, 0x99
                 stxb [r10-16], r1
                 ldxb r1, [r10-16]
                 add64 r0, r1
                 exit"),
            0x4455_6677_2233_0011 + 0x99,
        ),
        (
            "stx to the context",
            asm("mov64 r2, 0x55
                 stxh [r1+0], r2
                 ldxh r0, [r1+0]
                 exit"),
            0x55,
        ),
        (
            "jmp conditions (forward)",
            asm("mov64 r0, 0
                 mov64 r1, 5
                 jeq r1, 5, +1
                 add64 r0, 100
                 jne r1, 4, +1
                 add64 r0, 100
                 jgt r1, 4, +1
                 add64 r0, 100
                 jge r1, 5, +1
                 add64 r0, 100
                 jlt r1, 6, +1
                 add64 r0, 100
                 jle r1, 5, +1
                 add64 r0, 100
                 jset r1, 4, +1
                 add64 r0, 100
                 mov64 r2, -3
                 jsgt r1, r2, +1
                 add64 r0, 100
                 jsge r2, -3, +1
                 add64 r0, 100
                 jslt r2, r1, +1
                 add64 r0, 100
                 jsle r2, -3, +1
                 add64 r0, 100
                 ja +1
                 add64 r0, 100
                 add64 r0, 1
                 exit"),
            1,
        ),
        (
            "jmp32 conditions",
            asm("mov64 r0, 0
                 lddw r1, 0x100000005
                 jeq32 r1, 5, +1
                 add64 r0, 100
                 jgt32 r1, 4, +1
                 add64 r0, 100
                 mov64 r2, -1
                 jslt32 r2, 0, +1
                 add64 r0, 100
                 jset32 r1, r1, +1
                 add64 r0, 100
                 add64 r0, 1
                 exit"),
            1,
        ),
        (
            "helper call",
            asm("call 8
                 add64 r0, 40
                 exit"),
            40,
        ),
        (
            "lddw",
            asm("lddw r0, 0x123456789abcdef0\nexit"),
            0x1234_5678_9abc_def0,
        ),
    ]
}

fn ctx() -> Vec<u8> {
    vec![
        1, 2, 3, 4, 5, 6, 7, 8, 0xf0, 0xde, 0xbc, 0x9a, 0x78, 0x56, 0x34, 0x12,
    ]
}

#[test]
fn every_engine_runs_the_common_instruction_classes() {
    let vm = Vm::builder().cpus(1).build();
    for engine in EngineKind::available() {
        for (name, code, expected) in common_programs() {
            if name == "helper call" && engine == EngineKind::RbpfJit {
                // rbpf's JIT calls helpers with a misaligned stack: refused.
                let err = load(&vm, &code, engine).unwrap_err();
                assert!(
                    matches!(err, PrepareError::Unsupported { pc: 0, .. }),
                    "{err}"
                );
                continue;
            }
            let got = run_on(&vm, &code, &ctx(), engine);
            assert_eq!(got, Ok(expected), "{name} on {engine}");
        }
    }
}

/// Programs only `interpreter` runs, with the index of the instruction rbpf cannot run.
fn interpreter_only() -> Vec<(&'static str, Vec<u8>, u64, usize)> {
    vec![
        (
            "atomic add, fetch add, xchg, cmpxchg (64-bit)",
            code(&[
                ins(0x7a, 10, 0, -8, 10),   // stdw [r10-8], 10
                ins(0xb7, 1, 0, 0, 5),      // mov r1, 5
                ins(0xdb, 10, 1, -8, 0x00), // lock add [r10-8], r1      -> 15
                ins(0xdb, 10, 1, -8, 0x01), // lock fetch add: r1 = 15   -> 20
                ins(0xb7, 2, 0, 0, 7),      // mov r2, 7
                ins(0xdb, 10, 2, -8, 0xe1), // xchg: r2 = 20, mem = 7
                ins(0xb7, 0, 0, 0, 7),      // r0 = 7 (expected)
                ins(0xb7, 3, 0, 0, 100),    // r3 = 100
                ins(0xdb, 10, 3, -8, 0xf1), // cmpxchg: r0 = 7, mem = 100
                ins(0x79, 4, 10, -8, 0),    // r4 = mem = 100
                ins(0x0f, 0, 1, 0, 0),      // r0 += r1 (15)
                ins(0x0f, 0, 2, 0, 0),      // r0 += r2 (20)
                ins(0x0f, 0, 4, 0, 0),      // r0 += r4 (100)
                EXIT,
            ]),
            7 + 15 + 20 + 100,
            2,
        ),
        (
            "atomic or/and/xor with fetch (32-bit)",
            code(&[
                ins(0x62, 10, 0, -4, 0b1100), // stw [r10-4], 12
                ins(0xb7, 1, 0, 0, 0b0011),
                ins(0xc3, 10, 1, -4, 0x41), // fetch or: r1 = 12, mem = 15
                ins(0xb7, 2, 0, 0, 0b0110),
                ins(0xc3, 10, 2, -4, 0x51), // fetch and: r2 = 15, mem = 6
                ins(0xb7, 3, 0, 0, 0b0101),
                ins(0xc3, 10, 3, -4, 0xa1), // fetch xor: r3 = 6, mem = 3
                ins(0x61, 0, 10, -4, 0),    // r0 = 3
                ins(0x0f, 0, 1, 0, 0),
                ins(0x0f, 0, 2, 0, 0),
                ins(0x0f, 0, 3, 0, 0),
                EXIT,
            ]),
            3 + 12 + 15 + 6,
            2,
        ),
        (
            "sdiv and smod",
            code(&[
                ins(0xb7, 0, 0, 0, -7),
                ins(0x37, 0, 0, 1, 2), // sdiv r0, 2 -> -3
                ins(0xb7, 1, 0, 0, -7),
                ins(0x97, 1, 0, 1, 2), // smod r1, 2 -> -1
                ins(0x0f, 0, 1, 0, 0), // -4
                EXIT,
            ]),
            (-4i64) as u64,
            1,
        ),
        (
            "movsx",
            code(&[ins(0xb7, 1, 0, 0, 0xff), ins(0xbf, 0, 1, 8, 0), EXIT]),
            u64::MAX,
            1,
        ),
        (
            "ldsx",
            code(&[ins(0x72, 10, 0, -1, 0x80), ins(0x91, 0, 10, -1, 0), EXIT]),
            (-128i64) as u64,
            1,
        ),
        (
            "bswap",
            code(&[ins(0xb7, 0, 0, 0, 0x0102), ins(0xd7, 0, 0, 0, 16), EXIT]),
            0x0201,
            1,
        ),
        (
            "gotol",
            code(&[
                ins(0xb7, 0, 0, 0, 1),
                ins(0x06, 0, 0, 0, 1),
                ins(0xb7, 0, 0, 0, 2),
                EXIT,
            ]),
            1,
            1,
        ),
        (
            "callx (register holds a helper id)",
            code(&[
                ins(0xb7, 2, 0, 0, 8),
                ins(0x8d, 2, 0, 0, 0),
                ins(0x07, 0, 0, 0, 3),
                EXIT,
            ]),
            3,
            1,
        ),
        (
            "bpf-to-bpf call keeps r6-r9 and has its own frame",
            code(&[
                ins(0xb7, 6, 0, 0, 10),  // r6 = 10
                ins(0x7a, 10, 0, -8, 1), // [r10-8] = 1
                ins(0xb7, 1, 0, 0, 5),   // r1 = 5
                ins(0x85, 0, 1, 0, 4),   // call +4 (insn 8)
                ins(0x0f, 0, 6, 0, 0),   // r0 += r6 (10)
                ins(0x79, 2, 10, -8, 0), // r2 = [r10-8] (1)
                ins(0x0f, 0, 2, 0, 0),
                EXIT,
                ins(0xb7, 6, 0, 0, 99),   // callee: r6 = 99
                ins(0x7a, 10, 0, -8, 77), // callee's own frame
                ins(0xbf, 0, 1, 0, 0),    // r0 = r1
                ins(0x27, 0, 0, 0, 2),    // r0 *= 2
                EXIT,
            ]),
            10 + 10 + 1,
            3,
        ),
    ]
}

#[test]
fn rbpf_engines_refuse_what_they_cannot_run_and_interpreter_runs_it() {
    let vm = Vm::builder().cpus(1).build();
    for (name, code, expected, pc) in interpreter_only() {
        assert_eq!(
            run_on(&vm, &code, &[], EngineKind::Interpreter),
            Ok(expected),
            "{name}"
        );
        for engine in EngineKind::available() {
            if engine.is_sandboxed() {
                // bpfvm's own engines (interpreter, jit) run it.
                assert_eq!(
                    run_on(&vm, &code, &[], engine),
                    Ok(expected),
                    "{name} on {engine}"
                );
                continue;
            }
            let err = load(&vm, &code, engine).expect_err(name);
            assert!(
                matches!(err, PrepareError::Unsupported { pc: p, engine: e, .. } if p == pc && e == engine),
                "{name} on {engine}: {err}"
            );
            assert!(
                err.to_string().contains(&format!("instruction {pc}")),
                "{err}"
            );
        }
    }
}

#[test]
fn rbpf_specific_pitfalls_are_refused() {
    let vm = Vm::builder().cpus(1).build();
    // 64-bit jeq with a negative immediate: rbpf's interpreter zero-extends it.
    let jeq_neg = asm("mov64 r0, -1\njeq r0, -1, +1\nmov64 r0, 0\nexit");
    assert_eq!(
        run_on(&vm, &jeq_neg, &[], EngineKind::Interpreter),
        Ok(u64::MAX)
    );
    assert!(matches!(
        load(&vm, &jeq_neg, EngineKind::RbpfInterpreter),
        Err(PrepareError::Unsupported { pc: 1, .. })
    ));
    // mov32 reg-to-reg and le16 on the JIT.
    let mov32 = asm("lddw r1, 0x100000002\nmov32 r0, r1\nexit");
    let le16 = asm("lddw r0, 0x12345678\nle16 r0\nexit");
    assert_eq!(run_on(&vm, &mov32, &[], EngineKind::Interpreter), Ok(2));
    assert_eq!(run_on(&vm, &le16, &[], EngineKind::Interpreter), Ok(0x5678));
    assert_eq!(run_on(&vm, &mov32, &[], EngineKind::RbpfInterpreter), Ok(2));
    assert_eq!(
        run_on(&vm, &le16, &[], EngineKind::RbpfInterpreter),
        Ok(0x5678)
    );
    if EngineKind::available().contains(&EngineKind::RbpfJit) {
        assert!(matches!(
            load(&vm, &mov32, EngineKind::RbpfJit),
            Err(PrepareError::Unsupported { pc: 2, .. })
        ));
        assert!(matches!(
            load(&vm, &le16, EngineKind::RbpfJit),
            Err(PrepareError::Unsupported { pc: 2, .. })
        ));
    }
    // Loops: rbpf has no budget, so backward jumps are refused by default.
    let looped = asm("mov64 r0, 3\nsub64 r0, 1\njne r0, 0, -2\nexit");
    assert_eq!(run_on(&vm, &looped, &[], EngineKind::Interpreter), Ok(0));
    assert!(matches!(
        load(&vm, &looped, EngineKind::RbpfInterpreter),
        Err(PrepareError::Unsupported { pc: 2, .. })
    ));
}
