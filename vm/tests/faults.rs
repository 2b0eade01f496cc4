//! Checks that faulting programs end with a clear error naming the instruction (and the
//! address for memory faults), never a crash: out-of-bounds reads, writes to read-only
//! memory, endless loops, unknown helpers, bad map pointers, runaway recursion.

mod common;

use bpfvm::helpers::memory::{guest_addr, REGION_CTX};
use bpfvm::helpers::{Access, HelperError};
use bpfvm::{
    CpuId, EngineKind, Input, PrepareError, Program, ProgramType, RunError, SourceAt, Vm, VmConfig,
};
use common::*;

fn vm() -> Vm {
    Vm::builder().cpus(2).budget(10_000).build()
}

fn run(vm: &Vm, code: &[u8], ctx: &[u8]) -> Result<u64, RunError> {
    let p = load(vm, code, EngineKind::Interpreter).unwrap();
    vm.run(&p, CpuId(0), &Input::context(ctx.to_vec()))
        .map(|o| o.retval)
}

#[test]
fn out_of_bounds_read_names_instruction_and_address() {
    let vm = vm();
    // An 8-byte context: reading 4 bytes at offset 6 crosses its end.
    let code = asm("mov64 r0, 0\nldxw r0, [r1+6]\nexit");
    let err = run(&vm, &code, &[0; 8]).unwrap_err();
    match &err {
        RunError::Fault { pc: 1, fault, .. } => {
            assert_eq!(fault.addr, guest_addr(REGION_CTX, 6));
            assert_eq!(fault.size, 4);
            assert_eq!(fault.access, Access::Read);
        }
        e => panic!("unexpected {e}"),
    }
    let msg = err.to_string();
    assert!(
        msg.contains("instruction 1")
            && msg.contains("0x20000000000006")
            && msg.contains("context offset 6 (the context has 8 bytes)"),
        "{msg}"
    );
    // NULL, stack below the frames, and unmapped regions fault too.
    assert!(matches!(
        run(&vm, &asm("mov64 r1, 0\nldxb r0, [r1]\nexit"), &[]),
        Err(RunError::Fault { pc: 1, .. })
    ));
    assert!(matches!(
        run(&vm, &asm("ldxdw r0, [r10+0]\nexit"), &[]),
        Err(RunError::Fault { pc: 0, .. })
    ));
    assert!(matches!(
        run(
            &vm,
            &asm("lddw r1, 0x7700000000\nstb [r1], 1\nmov64 r0, 0\nexit"),
            &[]
        ),
        Err(RunError::Fault { pc: 2, .. })
    ));
}

#[test]
fn endless_loop_ends_with_the_budget() {
    let vm = vm();
    let endless = code(&[
        ins(0xb7, 0, 0, 0, 0),
        ins(0x07, 0, 0, 0, 1),
        ins(0x05, 0, 0, -2, 0),
        EXIT,
    ]);
    let err = run(&vm, &endless, &[]).unwrap_err();
    assert!(
        matches!(err, RunError::BudgetExhausted { budget: 10_000, .. }),
        "{err}"
    );
    // The budget is configurable.
    let big = Vm::new(VmConfig {
        budget: 50,
        ..VmConfig::default()
    });
    let p = load(&big, &endless, EngineKind::Interpreter).unwrap();
    assert!(matches!(
        big.run(&p, CpuId(3), &Input::empty()),
        Err(RunError::BudgetExhausted { budget: 50, .. })
    ));
}

#[test]
fn unknown_helpers_are_refused_or_fail_cleanly() {
    let vm = vm();
    let err = load(&vm, &asm("call 9999\nexit"), EngineKind::Interpreter).unwrap_err();
    assert_eq!(err, PrepareError::UnknownHelper { pc: 0, id: 9999 });
    assert!(err.to_string().contains("unknown helper 9999"));
    // callx through a register holding an unknown id fails at run time.
    let callx = code(&[ins(0xb7, 2, 0, 0, 4242), ins(0x8d, 2, 0, 0, 0), EXIT]);
    let err = run(&vm, &callx, &[]).unwrap_err();
    assert_eq!(
        err,
        RunError::BadCallx {
            pc: 1,
            target: 4242,
            at: SourceAt::NONE,
        }
    );
}

#[test]
fn bad_map_and_key_pointers_are_helper_errors() {
    let vm = vm();
    // map_lookup_elem with r1 = 1234: not a map handle.
    let err = run(
        &vm,
        &asm("mov64 r1, 1234\nmov64 r2, r10\ncall 1\nexit"),
        &[],
    )
    .unwrap_err();
    match &err {
        RunError::Helper {
            pc: 2,
            source:
                HelperError::BadMap {
                    helper,
                    handle: 1234,
                },
            ..
        } => assert_eq!(helper, "bpf_map_lookup_elem"),
        e => panic!("unexpected {e}"),
    }
    assert!(err.to_string().contains("bpf_map_lookup_elem"), "{err}");
    // trace_printk with a format pointer outside memory.
    let err = run(&vm, &asm("mov64 r1, 64\nmov64 r2, 4\ncall 6\nexit"), &[]).unwrap_err();
    assert!(
        matches!(
            err,
            RunError::Helper {
                pc: 2,
                source: HelperError::Memory { .. },
                ..
            }
        ),
        "{err}"
    );
}

#[test]
fn recursion_stops_at_eight_frames() {
    let vm = vm();
    // f: call f
    let recurse = code(&[ins(0x85, 0, 1, 0, -1), EXIT]);
    let err = run(&vm, &recurse, &[]).unwrap_err();
    assert_eq!(
        err,
        RunError::CallDepth {
            pc: 0,
            max: 8,
            at: SourceAt::NONE
        }
    );
    // Seven nested calls (eight frames) are fine.
    let mut insns = Vec::new();
    for _ in 0..7 {
        insns.push(ins(0x85, 0, 1, 0, 1)); // call next+1
        insns.push(EXIT);
    }
    insns.push(ins(0xb7, 0, 0, 0, 42));
    insns.push(EXIT);
    assert_eq!(run(&vm, &code(&insns), &[]), Ok(42));
}

#[test]
fn bad_cpu_and_bad_input_are_errors() {
    let vm = vm();
    let p = load(&vm, &asm("mov64 r0, 0\nexit"), EngineKind::Interpreter).unwrap();
    assert_eq!(
        vm.run(&p, CpuId(2), &Input::empty()),
        Err(RunError::NoSuchCpu { cpu: 2, ncpus: 2 })
    );
    assert!(matches!(
        vm.run(&p, CpuId(0), &Input::packet(vec![1, 2, 3])),
        Err(RunError::BadInput { .. })
    ));
    let xdp = vm
        .load(Program::new(asm("mov64 r0, 2\nexit"), ProgramType::Xdp))
        .unwrap();
    assert!(matches!(
        vm.run(
            &xdp,
            CpuId(0),
            &Input {
                ctx: vec![0; 25],
                ..Input::default()
            }
        ),
        Err(RunError::BadInput { .. })
    ));
}

#[test]
fn malformed_bytecode_is_refused() {
    let vm = vm();
    assert_eq!(
        load(&vm, &[], EngineKind::Interpreter).unwrap_err(),
        PrepareError::Empty
    );
    assert_eq!(
        load(&vm, &[0x95, 0, 0], EngineKind::Interpreter).unwrap_err(),
        PrepareError::BadLength { len: 3 }
    );
    for engine in EngineKind::available() {
        assert!(load(&vm, &[0xff, 0, 0, 0, 0, 0, 0, 0], engine).is_err());
        assert!(load(&vm, &code(&[ins(0xbf, 11, 0, 0, 0), EXIT]), engine).is_err());
    }
}

#[test]
fn each_frame_sees_only_512_bytes_below_its_frame_pointer() {
    let vm = vm();
    assert_eq!(
        run(
            &vm,
            &asm("stdw [r10-512], 3\nldxdw r0, [r10-512]\nexit"),
            &[]
        ),
        Ok(3)
    );
    assert!(matches!(
        run(&vm, &asm("ldxdw r0, [r10-520]\nexit"), &[]),
        Err(RunError::Fault { pc: 0, .. })
    ));
    // A callee may use a pointer into its caller's frame; after the return the callee's
    // frame is out of reach again.
    let prog = code(&[
        ins(0x7a, 10, 0, -8, 5),  // caller: [r10-8] = 5
        ins(0xbf, 1, 10, 0, 0),   // r1 = r10
        ins(0x07, 1, 0, 0, -8),   // r1 = &caller[-8]
        ins(0x85, 0, 1, 0, 3),    // call +3 (insn 7)
        ins(0xbf, 1, 10, 0, 0),   // r1 = r10
        ins(0x79, 0, 1, -520, 0), // read the callee's (now gone) frame: fault
        EXIT,
        ins(0x79, 0, 1, 0, 0),     // callee: r0 = *r1 (caller's frame)
        ins(0x7a, 10, 0, -512, 1), // its own frame bottom
        EXIT,
    ]);
    assert!(matches!(
        run(&vm, &prog, &[]),
        Err(RunError::Fault { pc: 5, .. })
    ));
}

/// A fault of a program loaded from an object names, in the error's own `Display` (what a
/// failing `#[test]` prints), the C source line of the failing instruction and what the
/// address was: here a write to `.rodata`, which the kernel refuses at load (so the
/// structural verifier lets it reach the run-time check).
#[test]
fn a_fault_names_its_c_source_line_and_the_region() {
    use bpfvm::loader::Object;
    use bpfvm::VerifierMode;
    let obj = Object::parse_named("globals", include_bytes!("fixtures/globals.o")).unwrap();
    let vm = Vm::builder()
        .cpus(1)
        .verifier(VerifierMode::Structural)
        .build();
    let maps = obj.create_maps(1).unwrap();
    let prog = vm
        .load(obj.vm_program("write_rodata", &maps).unwrap())
        .unwrap();
    let e = vm
        .run(&prog, CpuId(0), &Input::packet(vec![0u8; 64]))
        .unwrap_err();
    let line = e.source_line().expect("the object has line info");
    assert!(
        line.contains("globals.bpf.c:") && line.contains("factor = 99"),
        "{line}"
    );
    let msg = e.to_string();
    assert!(msg.contains(line), "{msg}");
    assert!(
        msg.contains("map globals.rodata") && msg.contains("read-only to programs"),
        "{msg}"
    );
    // Through the one error type too (what `?` in a test gives).
    let e: bpfvm::Error = e.into();
    assert!(e.to_string().contains("factor = 99"), "{e}");
    // A program without line info (assembled) has no source line.
    let err = run(
        &vm,
        &asm("mov64 r1, 1234\nmov64 r2, r10\ncall 1\nexit"),
        &[],
    )
    .unwrap_err();
    assert_eq!(err.source_line(), None);
    // "instruction N: ..." with nothing between the number and the colon.
    let pc = err.pc().expect("a helper fault names its instruction");
    assert!(
        err.to_string().starts_with(&format!("instruction {pc}: ")),
        "{err}"
    );
}
