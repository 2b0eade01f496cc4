//! The `jit` engine against the interpreter: results, faults, budgets, helpers, calls.
#![cfg(all(
    feature = "jit",
    any(target_arch = "x86_64", target_arch = "aarch64"),
    target_endian = "little",
    not(miri)
))]

use bpfvm::{CpuId, EngineKind, Input, Program, ProgramType, RunError, VerifierMode, Vm};

fn program(src: &str, engine: EngineKind) -> Program {
    let code = rbpf::assembler::assemble(src).expect("test programs assemble");
    Program::new(code, ProgramType::Unspecified).with_engine(engine)
}

/// Runs `src` on both engines with `budget` and `ctx`; asserts they agree and returns the
/// result.
fn both(src: &str, budget: u64, ctx: &[u8]) -> Result<u64, String> {
    let vm = one_cpu_vm(Some(budget));
    let mut out = Vec::new();
    for engine in [EngineKind::Interpreter, EngineKind::Jit] {
        let prog = vm.load(program(src, engine)).expect("loads");
        let r = vm
            .run(&prog, CpuId(0), &Input::context(ctx.to_vec()))
            .map(|o| o.retval)
            .map_err(|e| format!("{e:?}"));
        out.push(r);
    }
    assert_eq!(out[0], out[1], "interpreter vs jit on:\n{src}");
    out.pop().unwrap()
}

/// A one-CPU VM with bpfvm's structural checks only (the programs here test the engines,
/// not the kernel's verdict), with `budget` instructions per run when given.
fn one_cpu_vm(budget: Option<u64>) -> Vm {
    let builder = Vm::builder().cpus(1).verifier(VerifierMode::Structural);
    match budget {
        Some(n) => builder.budget(n).build(),
        None => builder.build(),
    }
}

#[test]
fn alu_and_jumps() {
    assert_eq!(both("mov64 r0, 7\nadd64 r0, 5\nexit", 100, &[]), Ok(12));
    let src = "mov64 r1, 10\nmov64 r0, 0\nadd64 r0, r1\nsub64 r1, 1\njne r1, 0, -3\nexit";
    assert_eq!(both(src, 1000, &[]), Ok(55));
    assert_eq!(
        both("mov64 r0, -1\nmov64 r1, 0\ndiv64 r0, r1\nexit", 10, &[]),
        Ok(0)
    );
    assert_eq!(
        both("mov32 r0, -1\nmov32 r1, 0\nmod32 r0, r1\nexit", 10, &[]),
        Ok(0xffff_ffff)
    );
    assert_eq!(
        both("lddw r0, 0x8000000000000000\nmov64 r1, -1\nexit", 10, &[]),
        Ok(1 << 63)
    );
    assert_eq!(both("mov64 r0, 0x1234\nbe16 r0\nexit", 10, &[]), Ok(0x3412));
}

#[test]
fn budget_errors_match() {
    let src = "mov64 r1, 3\nsub64 r1, 1\njne r1, 0, -2\nmov64 r0, 7\nexit";
    assert_eq!(both(src, 5, &[]), Ok(7));
    let e = both(src, 4, &[]).unwrap_err();
    assert!(e.contains("BudgetExhausted") && e.contains("pc: 2"), "{e}");
    // An endless loop ends.
    assert!(both("ja -1\nexit", 1000, &[])
        .unwrap_err()
        .contains("BudgetExhausted"));
}

#[test]
fn memory_faults_match() {
    // Context reads in bounds, then one byte past the end.
    assert_eq!(
        both("ldxw r0, [r1+0]\nexit", 10, &[1, 2, 3, 4]),
        Ok(0x0403_0201)
    );
    let e = both("ldxw r0, [r1+1]\nexit", 10, &[1, 2, 3, 4]).unwrap_err();
    assert!(e.contains("Fault") && e.contains("pc: 0"), "{e}");
    // The stack: a store and a load; below the frame faults.
    let src = "mov64 r1, 99\nstxdw [r10-8], r1\nldxdw r0, [r10-8]\nexit";
    assert_eq!(both(src, 10, &[]), Ok(99));
    assert!(both("mov64 r0, 0\nstdw [r10-520], 1\nexit", 10, &[])
        .unwrap_err()
        .contains("Fault"));
    // A wild address, a null pointer.
    assert!(both("lddw r1, 0x123456789abcdef0\nldxb r0, [r1]\nexit", 10, &[]).is_err());
    assert!(both("mov64 r0, 0\nmov64 r1, 0\nstxb [r1], r1\nexit", 10, &[]).is_err());
}

/// The inline check's bound per access size (`compile/mem.rs`) at every offset around the
/// ends of the context and the stack: each size, read and write, in bounds, straddling the
/// end and past it, with several accesses sharing one base register in a stretch; and
/// atomics at every alignment. Both engines give the same value or the same fault.
#[test]
fn access_bounds_by_size_match() {
    let ctx: Vec<u8> = (1..=13).collect();
    for (size, ld, st) in [
        (1, "ldxb", "stxb"),
        (2, "ldxh", "stxh"),
        (4, "ldxw", "stxw"),
        (8, "ldxdw", "stxdw"),
    ] {
        for off in -2i32..=15 {
            // The context (13 bytes): a first in-bounds access through r1, then the probe.
            let src = format!(
                "{ld} r0, [r1+0]
{ld} r2, [r1{off:+}]
add64 r0, r2
exit"
            );
            let r = both(&src, 100, &ctx);
            assert_eq!(r.is_ok(), off >= 0 && off + size <= 13, "{src}: {r:?}");
            let src = format!(
                "mov64 r2, 77
{st} [r1{off:+}], r2
{ld} r0, [r1{off:+}]
exit"
            );
            both(&src, 100, &ctx).ok();
            // The stack's top end (r10) and its bottom (512 bytes below).
            for at in [-(off + 1) + 8 - size, off - 512 - 1] {
                let src = format!(
                    "mov64 r2, 5
stdw [r10-8], 1
{st} [r10{at:+}], r2
{ld} r0, [r10{at:+}]
exit"
                );
                let r = both(&src, 100, &[]);
                assert_eq!(r.is_ok(), at >= -512 && at + size <= 0, "{src}: {r:?}");
            }
        }
    }
    // Atomics (rbpf's assembler has none: a `stx` whose opcode and `imm` are patched): add,
    // fetch-add, xchg and cmpxchg of 4 and 8 bytes at every offset of the stack's top.
    let vm = one_cpu_vm(Some(100));
    for (size, st, opcode) in [(4i32, "stxw", 0xc3u8), (8, "stxdw", 0xdb)] {
        for imm in [0x00u32, 0x01, 0xe1, 0xf1] {
            for at in -16i32..=-1 {
                let src = format!(
                    "mov64 r0, 1\nmov64 r2, 3\nstdw [r10-16], 1\nstdw [r10-8], 1\n{st} [r10{at:+}], r2\nldxdw r3, [r10-16]\nadd64 r0, r3\nldxdw r3, [r10-8]\nadd64 r0, r3\nadd64 r0, r2\nexit"
                );
                let mut code = rbpf::assembler::assemble(&src).expect("assembles");
                code[4 * 8] = opcode;
                code[4 * 8 + 4..4 * 8 + 8].copy_from_slice(&imm.to_le_bytes());
                let mut out = Vec::new();
                for engine in [EngineKind::Interpreter, EngineKind::Jit] {
                    let p =
                        Program::new(code.clone(), ProgramType::Unspecified).with_engine(engine);
                    let prog = vm.load(p).expect("loads");
                    let r = vm
                        .run(&prog, CpuId(0), &Input::empty())
                        .map(|o| o.retval)
                        .map_err(|e| format!("{e:?}"));
                    out.push(r);
                }
                assert_eq!(out[0], out[1], "op {imm:#x} at r10{at:+}");
                let fits = at % size == 0 && at + size <= 0;
                assert_eq!(
                    out[1].is_ok(),
                    fits,
                    "op {imm:#x} at r10{at:+}: {:?}",
                    out[1]
                );
            }
        }
    }
}

#[test]
fn atomics_helpers_and_calls() {
    // `lock *(u64 *)(r10 - 8) += r2` (opcode 0xdb; rbpf's assembler has no atomics), and
    // its fetching form, which returns the old value in r2.
    let mut code = rbpf::assembler::assemble(
        "mov64 r1, 5\nstxdw [r10-8], r1\nmov64 r2, 3\nstxdw [r10-8], r2\nldxdw r0, [r10-8]\nadd64 r0, r2\nexit",
    )
    .unwrap();
    code[3 * 8] = 0xdb;
    let vm = one_cpu_vm(None);
    for (imm, want) in [(0x00u8, 11), (0x01, 13)] {
        code[3 * 8 + 4] = imm;
        for engine in [EngineKind::Interpreter, EngineKind::Jit] {
            let p = Program::new(code.clone(), ProgramType::Unspecified).with_engine(engine);
            let prog = vm.load(p).unwrap();
            let out = vm.run(&prog, CpuId(0), &Input::empty()).unwrap();
            assert_eq!(out.retval, want, "{engine} imm {imm:#x}");
        }
    }
    // bpf_get_smp_processor_id and bpf_ktime_get_ns (helper 5).
    both("call 8\nexit", 100, &[]).unwrap();
    both("call 5\nmov64 r6, r0\ncall 5\nsub64 r0, r6\nexit", 100, &[]).unwrap();
    // A helper's error names its instruction.
    let e = both("mov64 r1, 5\nmov64 r2, r10\ncall 1\nexit", 100, &[]).unwrap_err();
    assert!(e.contains("Helper") && e.contains("pc: 2"), "{e}");
}

#[test]
fn bpf_to_bpf_calls() {
    let mut code =
        rbpf::assembler::assemble("mov64 r1, 2\ncall 2\nadd64 r0, 1\nexit\nmov64 r0, r1\nexit")
            .unwrap();
    code[8 + 1] = 0x10; // src = 1: a bpf-to-bpf call
    let vm = one_cpu_vm(None);
    for engine in [EngineKind::Interpreter, EngineKind::Jit] {
        let p = Program::new(code.clone(), ProgramType::Unspecified).with_engine(engine);
        let prog = vm.load(p).unwrap();
        assert_eq!(vm.run(&prog, CpuId(0), &Input::empty()).unwrap().retval, 3);
    }
    // Recursion past the deepest frame.
    let mut code = rbpf::assembler::assemble("call -1\nexit").unwrap();
    code[1] = 0x10;
    let mut errs = Vec::new();
    for engine in [EngineKind::Interpreter, EngineKind::Jit] {
        let p = Program::new(code.clone(), ProgramType::Unspecified).with_engine(engine);
        let prog = vm.load(p).unwrap();
        errs.push(format!(
            "{:?}",
            vm.run(&prog, CpuId(0), &Input::empty()).unwrap_err()
        ));
    }
    assert_eq!(errs[0], errs[1]);
    assert!(errs[0].contains("CallDepth"), "{}", errs[0]);
    let _ = RunError::BadInput {
        reason: String::new(),
    };
}

fn raw(op: u8, dst: u8, src: u8, off: i16, imm: i32) -> [u8; 8] {
    let o = off.to_le_bytes();
    let i = imm.to_le_bytes();
    [op, (src << 4) | dst, o[0], o[1], i[0], i[1], i[2], i[3]]
}

/// `key = 1; v = map_lookup_elem(map0, &key); if (!v) return 1; <body>; return *(u64 *)v`.
fn lookup_then(body: &[[u8; 8]]) -> Vec<u8> {
    let mut v = vec![
        raw(0x62, 10, 0, -4, 1), // *(u32 *)(r10 - 4) = 1
        raw(0x18, 1, 1, 0, 0),   // r1 = map 0
        raw(0, 0, 0, 0, 0),
        raw(0xbf, 2, 10, 0, 0), // r2 = r10
        raw(0x07, 2, 0, 0, -4), // r2 -= 4
        raw(0x85, 0, 0, 0, 1),  // call map_lookup_elem
        raw(0x55, 0, 0, 2, 0),  // if r0 != 0 goto body
        raw(0xb7, 0, 0, 0, 1),  // r0 = 1
        raw(0x95, 0, 0, 0, 0),
        raw(0xbf, 6, 0, 0, 0), // r6 = v
    ];
    v.extend_from_slice(body);
    v.push(raw(0x79, 0, 6, 0, 0)); // r0 = *(u64 *)v
    v.push(raw(0x95, 0, 0, 0, 0));
    v.concat()
}

/// Runs `body` after a lookup in a fresh 16-byte-value map (a `bpf_spin_lock` at 8 when
/// `lock`) on each sandboxed engine, twice on each of 2 CPUs; asserts the outcomes and the
/// map's bytes agree and returns the first outcome.
fn on_fresh_map(map_type: bpfvm::maps::MapType, lock: bool, body: &[[u8; 8]]) -> String {
    use bpfvm::maps::{Map, MapSpec};
    use std::sync::Arc;
    let mut seen = Vec::new();
    for engine in [EngineKind::Interpreter, EngineKind::Jit] {
        let spec = MapSpec::new(map_type, 4, 16, 4);
        let map = Arc::new(if lock {
            Map::create_with_spin_lock(spec, 2, 8).unwrap()
        } else {
            Map::create(spec, 2).unwrap()
        });
        map.update(&1u32.to_ne_bytes(), &vec![7u8; map.host_value_size(0)], 0)
            .unwrap();
        let vm = Vm::builder().cpus(2).build();
        let p = Program::new(lookup_then(body), ProgramType::Unspecified)
            .with_map(Arc::clone(&map))
            .with_engine(engine);
        let prog = vm.load(p).expect("loads");
        let mut out = Vec::new();
        for cpu in [0, 1, 0, 1] {
            out.push(format!(
                "{:?}",
                vm.run(&prog, CpuId(cpu), &Input::empty()).map(|o| o.retval)
            ));
        }
        let mut bytes = vec![0u8; map.host_value_size(0)];
        map.lookup(&1u32.to_ne_bytes(), &mut bytes, 0).unwrap();
        seen.push((out, bytes));
    }
    assert_eq!(seen[0], seen[1], "interpreter vs jit");
    seen[0].0[0].clone()
}

#[test]
fn map_values_are_confined_the_same_way() {
    use bpfvm::maps::MapType;
    // In bounds: read, write, read-modify-write on every CPU's copy.
    let rmw = [
        raw(0x79, 1, 6, 8, 0),
        raw(0x07, 1, 0, 0, 3),
        raw(0x7b, 6, 1, 8, 0),
    ];
    for t in [
        MapType::Array,
        MapType::PercpuArray,
        MapType::Hash,
        MapType::PercpuHash,
    ] {
        assert!(on_fresh_map(t, false, &rmw).starts_with("Ok"), "{t:?}");
        // Past the value (into the next element or another CPU's copy), and below it.
        for off in [16i16, 24, -8, -16] {
            let r = on_fresh_map(t, false, &[raw(0x7a, 6, 0, off, 1)]);
            assert!(
                r.contains("Fault") && r.contains("OutOfBounds"),
                "{t:?} {off}: {r}"
            );
            let r = on_fresh_map(t, false, &[raw(0x79, 1, 6, off, 0)]);
            assert!(r.contains("Fault"), "{t:?} {off}: {r}");
        }
        // An access straddling the value's end.
        let r = on_fresh_map(t, false, &[raw(0x79, 1, 6, 12, 0)]);
        assert!(r.contains("Fault"), "{t:?}: {r}");
    }
    // The spin lock word: off limits (the inline check sends such regions to the slow path),
    // the fields around it ordinary.
    for body in [
        raw(0x62, 6, 0, 8, 1),
        raw(0x61, 1, 6, 8, 0),
        raw(0x7a, 6, 0, 4, -1),
    ] {
        let r = on_fresh_map(MapType::Hash, true, &[body]);
        assert!(r.contains("SpecialField"), "{r}");
    }
    let fields = [
        raw(0x7a, 6, 0, 0, 5),
        raw(0x62, 6, 0, 12, 6),
        raw(0x61, 1, 6, 12, 0),
    ];
    assert_eq!(on_fresh_map(MapType::Hash, true, &fields), "Ok(5)");
}

/// `bpf_loop(n, cb, &sum, 0)` with `cb(i, sum) { *sum += i + 1; return 0 }`, then a
/// `bpf_tail_call` into slot 0 of the program's PROG_ARRAY (empty: it falls through), then
/// `return sum`.
fn loop_and_tail_call(n: i32) -> Vec<u8> {
    [
        raw(0xbf, 6, 1, 0, 0),   // 0: r6 = ctx
        raw(0x7a, 10, 0, -8, 0), // 1: *(u64 *)(r10 - 8) = 0
        raw(0xb7, 1, 0, 0, n),   // 2: r1 = n
        raw(0x18, 2, 4, 0, 12),  // 3: r2 = the function at 3 + 12 + 1 = 16
        raw(0, 0, 0, 0, 0),      // 4
        raw(0xbf, 3, 10, 0, 0),  // 5: r3 = r10 - 8
        raw(0x07, 3, 0, 0, -8),  // 6
        raw(0xb7, 4, 0, 0, 0),   // 7: r4 = 0
        raw(0x85, 0, 0, 0, 181), // 8: bpf_loop
        raw(0xbf, 1, 6, 0, 0),   // 9: r1 = ctx
        raw(0x18, 2, 1, 0, 0),   // 10: r2 = map 0
        raw(0, 0, 0, 0, 0),      // 11
        raw(0xb7, 3, 0, 0, 0),   // 12: r3 = 0
        raw(0x85, 0, 0, 0, 12),  // 13: bpf_tail_call
        raw(0x79, 0, 10, -8, 0), // 14: r0 = sum
        raw(0x95, 0, 0, 0, 0),   // 15: exit
        raw(0x07, 1, 0, 0, 1),   // 16: the callback: r1 += 1
        raw(0x79, 3, 2, 0, 0),   // 17: *r2 += r1
        raw(0x0f, 3, 1, 0, 0),   // 18
        raw(0x7b, 2, 3, 0, 0),   // 19
        raw(0xb7, 0, 0, 0, 0),   // 20: return 0
        raw(0x95, 0, 0, 0, 0),   // 21
    ]
    .concat()
}

#[test]
fn callbacks_and_tail_calls_run_compiled() {
    use bpfvm::maps::{MapSpec, MapType};
    let mut results = Vec::new();
    for budget in [1_000_000u64, 200, 60] {
        for n in [0, 1, 5, 40] {
            let mut outs = Vec::new();
            for engine in [EngineKind::Interpreter, EngineKind::Jit] {
                let vm = one_cpu_vm(Some(budget));
                let jmp = vm
                    .create_map(MapSpec::new(MapType::ProgArray, 4, 4, 4))
                    .unwrap();
                let mut p =
                    Program::new(loop_and_tail_call(n), ProgramType::Xdp).with_engine(engine);
                p.add_map(jmp);
                let prog = vm.load(p).unwrap();
                outs.push(format!(
                    "{:?}",
                    vm.run(&prog, CpuId(0), &Input::packet(vec![0; 16]))
                        .map(|o| o.retval)
                ));
            }
            assert_eq!(outs[0], outs[1], "n {n} budget {budget}");
            results.push(outs.pop().unwrap());
        }
    }
    // sum of 1..=n, and the budget running out inside the callbacks.
    assert_eq!(results[3], "Ok(820)", "{results:?}");
    assert!(
        results.iter().any(|r| r.contains("BudgetExhausted")),
        "{results:?}"
    );
}

/// A tracing program's loads are probe loads (`probe_mem`), compiled: every size and
/// sign at an address in the kernel memory image, one whose bytes run past the image's
/// end, one in no segment, a user address and the program's own stack, each in a
/// straight-line stretch and through the slow path, on both engines with the same
/// results: a faulting probe load gives 0, never a fault.
#[test]
fn probe_loads_compile_and_read_as_the_interpreter() {
    use bpfvm::task::MemoryImage;
    let base = 0xffff_8880_0001_0000u64;
    let bytes: Vec<u8> = (0..32u8).map(|i| 0x80 | i.wrapping_mul(37)).collect();
    let loads = [
        ("ldxb", 0x71u8),
        ("ldxh", 0x69),
        ("ldxw", 0x61),
        ("ldxdw", 0x79),
        ("ldxsb", 0x91),
        ("ldxsh", 0x89),
        ("ldxsw", 0x81),
    ];
    let mut outs = Vec::new();
    for engine in [EngineKind::Interpreter, EngineKind::Jit] {
        let vm = one_cpu_vm(None);
        vm.set_kernel_memory(MemoryImage::new().with(base, bytes.clone()));
        let mut out = Vec::new();
        for (name, op) in loads {
            for (addr, off) in [
                (base, 0i16),
                (base, 5),
                (base, 29),                 // runs past the image for 4 and 8 bytes
                (base + 0x1000, 0),         // no segment
                (0x10, 0),                  // a user address
                (0xffff_ffff_ffff_fff8, 4), // wraps
            ] {
                // r2 = the address (the context's first u64): r0 = *(addr + off); then
                // r0 += the same load of r0's copy on the stack (a region: the inline
                // check), r0 ^= one at the copy's second byte (for 8 bytes, past the
                // stack's top: the slow path, 0).
                let code = [
                    raw(0x79, 2, 1, 0, 0),
                    raw(op, 0, 2, off, 0),
                    raw(0x7b, 10, 0, -8, 0),
                    raw(op, 3, 10, -8, 0),
                    raw(0x0f, 0, 3, 0, 0),
                    raw(op, 3, 10, -7, 0),
                    raw(0xaf, 0, 3, 0, 0),
                    raw(0x95, 0, 0, 0, 0),
                ]
                .concat();
                let p = Program::new(code, ProgramType::Tracing).with_engine(engine);
                let p = vm.load(p).expect("probe loads load on every engine");
                let r = vm
                    .run(&p, CpuId(0), &Input::context(addr.to_ne_bytes().to_vec()))
                    .map(|o| o.retval)
                    .map_err(|e| format!("{e:?}"));
                out.push(format!("{name} {addr:#x}{off:+}: {r:x?}"));
            }
        }
        outs.push(out);
    }
    assert_eq!(outs[0], outs[1]);
    let text = outs[1].join("\n");
    // Never an error; 0 wherever the image has no bytes.
    assert!(!text.contains("Err"), "{text}");
    let zero =
        |l: &&String| l.contains(&format!("{:#x}+0:", base + 0x1000)) || l.contains(" 0x10+0:");
    assert!(
        outs[1].iter().filter(zero).all(|l| l.ends_with("Ok(0)")),
        "{text}"
    );
    // The image's byte 5, twice (its copy's second byte is 0).
    let b5 = u64::from(bytes[5]) * 2;
    assert!(
        outs[1].contains(&format!("ldxb {base:#x}+5: Ok({b5:x})")),
        "{text}"
    );
}

/// A tail call from a subprogram (frame 1) into a target with or without calls of its own,
/// at every budget from 1 to 40: both engines agree on the result or on where the budget
/// ran out (the target's last stretch is charged only in a program with calls, as the
/// interpreter's `ExitMain` leaves it uncharged).
#[test]
fn tail_calls_from_subprograms_agree_at_every_budget() {
    use bpfvm::maps::{MapSpec, MapType};
    let caller = [
        raw(0xb7, 0, 0, 0, 0),  // 0: r0 = 0
        raw(0x85, 0, 1, 0, 2),  // 1: call the subprogram at 4 (r1, the context, passed on)
        raw(0x07, 0, 0, 0, 1),  // 2: r0 += 1
        raw(0x95, 0, 0, 0, 0),  // 3: exit
        raw(0xb7, 0, 0, 0, 0),  // 4: r0 = 0
        raw(0x18, 2, 1, 0, 0),  // 5: r2 = map 0
        raw(0, 0, 0, 0, 0),     // 6
        raw(0xb7, 3, 0, 0, 0),  // 7: r3 = 0
        raw(0x85, 0, 0, 0, 12), // 8: bpf_tail_call
        raw(0xb7, 0, 0, 0, 40), // 9: r0 = 40
        raw(0x95, 0, 0, 0, 0),  // 10: exit
    ]
    .concat();
    let plain = [
        raw(0xb7, 0, 0, 0, 5),
        raw(0x07, 0, 0, 0, 2),
        raw(0x95, 0, 0, 0, 0),
    ]
    .concat();
    let with_call = [
        raw(0xb7, 0, 0, 0, 5), // 0
        raw(0x85, 0, 1, 0, 1), // 1: call 3
        raw(0x95, 0, 0, 0, 0), // 2
        raw(0xb7, 0, 0, 0, 6), // 3
        raw(0x95, 0, 0, 0, 0), // 4
    ]
    .concat();
    for target in [&plain, &with_call] {
        let mut seen = std::collections::BTreeSet::new();
        for budget in 1..=40 {
            let mut outs = Vec::new();
            for engine in [EngineKind::Interpreter, EngineKind::Jit] {
                let vm = one_cpu_vm(Some(budget));
                let jmp = vm
                    .create_map(MapSpec::new(MapType::ProgArray, 4, 4, 1))
                    .unwrap();
                let mut t =
                    Program::new(target.clone(), ProgramType::Unspecified).with_engine(engine);
                t.add_map(jmp.clone());
                let t = vm.load(t).unwrap();
                t.set_in_prog_array(&jmp, 0).unwrap();
                let mut p = Program::new(caller.clone(), ProgramType::Unspecified)
                    .with_engine(engine)
                    .with_btf_func_info(true);
                p.add_map(jmp.clone());
                let p = vm.load(p).unwrap();
                let r = vm.run(&p, CpuId(0), &Input::empty()).map(|o| o.retval);
                let text = format!("{r:?}");
                // Program ids differ per load.
                outs.push(match text.find("program: ") {
                    Some(i) => text[..i].to_string(),
                    None => text,
                });
                let _ = jmp.delete(&0u32.to_ne_bytes(), 0);
            }
            assert_eq!(outs[0], outs[1], "budget {budget}");
            seen.insert(outs.pop().unwrap());
        }
        // Results and budget errors both seen.
        assert!(seen.iter().any(|s| s.starts_with("Ok(")), "{seen:?}");
        assert!(
            seen.iter().any(|s| s.contains("BudgetExhausted")),
            "{seen:?}"
        );
    }
}

/// Loading and dropping thousands of programs gives their executable memory back (the
/// process's mappings do not grow with the count).
#[cfg(target_os = "linux")]
#[test]
fn dropped_programs_free_their_code() {
    let mappings = || {
        std::fs::read_to_string("/proc/self/maps")
            .unwrap()
            .lines()
            .count()
    };
    let vm = Vm::builder().cpus(1).build();
    let p = program("mov64 r0, 1\nexit", EngineKind::Jit);
    // Warm up (allocator arenas, cranelift's first use).
    drop(vm.load(p.clone()).unwrap());
    let before = mappings();
    for _ in 0..3_000 {
        let prog = vm.load(p.clone()).unwrap();
        assert_eq!(vm.run(&prog, CpuId(0), &Input::empty()).unwrap().retval, 1);
    }
    let after = mappings();
    // Other tests of this binary run at the same time: allow them some mappings.
    assert!(
        after < before + 1_000,
        "{before} mappings before, {after} after"
    );
}

/// Compile time of a 999-instruction straight-line program (stores, loads, ALU): printed,
/// and bounded loosely so a pathological slowdown fails.
#[test]
fn compile_time_per_thousand_instructions() {
    let mut src = String::from("mov64 r0, 0\n");
    for _ in 0..333 {
        src.push_str("add64 r0, 3\nstxdw [r10-8], r0\nldxdw r1, [r10-8]\n");
    }
    src.push_str("exit");
    let vm = Vm::builder().cpus(1).build();
    let p = program(&src, EngineKind::Jit);
    let start = std::time::Instant::now();
    let n = 5;
    for _ in 0..n {
        vm.load(p.clone()).unwrap();
    }
    let each = start.elapsed() / n;
    eprintln!("jit: loading 1,000 instructions takes {each:?}");
    let prog = vm.load(p).unwrap();
    assert_eq!(
        vm.run(&prog, CpuId(0), &Input::empty()).unwrap().retval,
        999
    );
    assert!(each < std::time::Duration::from_secs(5), "{each:?}");
}
