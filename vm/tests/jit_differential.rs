//! Generated programs on the `jit` engine and the interpreter: the same `r0`, context and
//! stack bytes, or the same error (fault with its address and region, budget exhaustion at
//! the same instruction, helper failure, call depth), for every program.
//!
//! Programs mix every ALU64/ALU32 operation (signed division and modulo, movsx, byte swaps,
//! shifts by any amount), loads, sign-extending loads, stores and atomics through the
//! context, the stack and wild addresses, conditional jumps of every condition forwards and
//! backwards (endless loops end at small budgets), helper calls (clock, random numbers, the
//! CPU, a helper that fails on a bad map) and `callx`. `BPFVM_JIT_DIFF_PROGRAMS` sets the
//! count (default 3,000); `BPFVM_JIT_DIFF_SEED` the seed.
#![cfg(all(
    feature = "jit",
    any(target_arch = "x86_64", target_arch = "aarch64"),
    target_endian = "little",
    not(miri)
))]

use bpfvm::{CpuId, EngineKind, Input, Program, ProgramType, VerifierMode, Vm};

struct Rng(u64);

impl Rng {
    fn next(&mut self) -> u64 {
        // splitmix64
        self.0 = self.0.wrapping_add(0x9e37_79b9_7f4a_7c15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
        z ^ (z >> 31)
    }
    fn below(&mut self, n: u64) -> u64 {
        self.next() % n
    }
    fn pick<T: Copy>(&mut self, xs: &[T]) -> T {
        xs[self.below(xs.len() as u64) as usize]
    }
}

fn insn(op: u8, dst: u8, src: u8, off: i16, imm: i32) -> [u8; 8] {
    let o = off.to_le_bytes();
    let i = imm.to_le_bytes();
    [op, (src << 4) | dst, o[0], o[1], i[0], i[1], i[2], i[3]]
}

/// Registers a body instruction may write (`r1`, the context, only sometimes).
const WRITABLE: [u8; 9] = [0, 2, 3, 4, 5, 6, 7, 8, 9];

fn imm(rng: &mut Rng) -> i32 {
    match rng.below(6) {
        0 => 0,
        1 => -1,
        2 => rng.pick(&[1, 2, 7, 8, 15, 16, 31, 32, 33, 63, 64, i32::MIN, i32::MAX]),
        _ => rng.next() as i32,
    }
}

/// One body instruction at `pc` of a body `start..end` (`end` is the `exit`).
fn body_insn(rng: &mut Rng, pc: usize, start: usize, end: usize) -> [u8; 8] {
    let dst = if rng.below(40) == 0 {
        1
    } else {
        rng.pick(&WRITABLE)
    };
    let src = rng.below(11) as u8;
    match rng.below(100) {
        // ALU: every operation, immediate or register, 64 or 32 bits.
        0..=44 => {
            let class = rng.pick(&[0x07u8, 0x04]);
            let operation = rng.pick(&[
                0x00u8, 0x10, 0x20, 0x30, 0x40, 0x50, 0x60, 0x70, 0x80, 0x90, 0xa0, 0xb0, 0xc0,
            ]);
            let by_reg = rng.below(2) == 0;
            let op = class | operation | if by_reg { 0x08 } else { 0 };
            let off = match operation {
                // sdiv / smod (off 1), movsx (off 8, 16, and 32 for 64 bits)
                0x30 | 0x90 => rng.pick(&[0, 0, 1]),
                0xb0 if by_reg && class == 0x07 => rng.pick(&[0, 0, 8, 16, 32]),
                0xb0 if by_reg => rng.pick(&[0, 0, 8, 16]),
                _ => 0,
            };
            if operation == 0x80 {
                return insn(class | 0x80, dst, 0, 0, 0); // neg
            }
            // `r10` is a source of add64 and mov64 only.
            let src =
                if src == 10 && !(class == 0x07 && matches!(operation, 0x00 | 0xb0) && off == 0) {
                    rng.below(10) as u8
                } else {
                    src
                };
            let mut k = imm(rng);
            if k == 0 && matches!(operation, 0x30 | 0x90) {
                k = 3; // division by a zero immediate is refused at load
            }
            if by_reg {
                insn(op, dst, src, off, 0)
            } else {
                insn(op, dst, 0, off, k)
            }
        }
        // Byte order: le, be, bswap.
        45..=49 => {
            let op = rng.pick(&[0xd4u8, 0xdc, 0xd7]);
            insn(op, dst, 0, 0, rng.pick(&[16, 32, 64]))
        }
        // Loads (and sign-extending loads) through the context, the stack or anything.
        50..=64 => {
            let base = rng.pick(&[1u8, 1, 10, 10, 10, src]);
            let size = rng.pick(&[0x00u8, 0x08, 0x10, 0x18]); // w, h, b, dw
            let mode = if size != 0x18 && rng.below(4) == 0 {
                0x80
            } else {
                0x60
            };
            let off = if base == 10 {
                -(rng.below(80) as i16) + 4
            } else {
                rng.below(80) as i16 - 8
            };
            insn(0x01 | mode | size, dst, base, off, 0)
        }
        // Stores, immediate or register.
        65..=76 => {
            let base = rng.pick(&[1u8, 1, 10, 10, 10, dst]);
            let size = rng.pick(&[0x00u8, 0x08, 0x10, 0x18]);
            let class = rng.pick(&[0x02u8, 0x03]);
            let off = if base == 10 {
                -(rng.below(80) as i16) + 4
            } else {
                rng.below(80) as i16 - 8
            };
            if class == 0x02 {
                insn(0x02 | 0x60 | size, base, 0, off, imm(rng))
            } else {
                insn(0x03 | 0x60 | size, base, src, off, 0)
            }
        }
        // Atomics, aligned or not.
        77..=80 => {
            let base = rng.pick(&[1u8, 10, 10]);
            let size = rng.pick(&[0x00u8, 0x18]);
            let op = rng.pick(&[0x00, 0x01, 0x40, 0x41, 0x50, 0x51, 0xa0, 0xa1, 0xe1, 0xf1]);
            let off = if base == 10 {
                -8 * (1 + rng.below(8) as i16)
            } else {
                8 * rng.below(8) as i16
            } + rng.pick(&[0, 0, 0, 4, 2]);
            insn(0xc3 | size, base, rng.pick(&WRITABLE), off, op)
        }
        // Conditional jumps (64 or 32 bits), forwards or backwards inside the body.
        81..=93 => {
            let class = rng.pick(&[0x05u8, 0x06]);
            let cond = rng.pick(&[
                0x10u8, 0x20, 0x30, 0x40, 0x50, 0x60, 0x70, 0xa0, 0xb0, 0xc0, 0xd0,
            ]);
            let by_reg = rng.below(2) == 0;
            let target = start + rng.below((end - start + 1) as u64) as usize;
            let off = (target as i64 - pc as i64 - 1) as i16;
            if by_reg {
                insn(class | cond | 0x08, dst, src, off, 0)
            } else {
                insn(class | cond, dst, 0, off, imm(rng))
            }
        }
        // Helper calls: the clock, random numbers, the CPU, a failing one (a bad map).
        94..=98 => insn(0x85, 0, 0, 0, rng.pick(&[5, 7, 8, 1])),
        // callx through a register holding a helper id (or not).
        _ => insn(0x8d, rng.pick(&[0, 2, 3]), 0, 0, 0),
    }
}

/// A program: random registers, a filled stack, a body, `exit`.
fn generate(rng: &mut Rng) -> Vec<u8> {
    let mut code = Vec::new();
    for r in [0u8, 2, 3, 4, 5, 6, 7, 8, 9] {
        let v = match rng.below(4) {
            0 => rng.below(16),
            1 => 1 << 32 | rng.below(8), // a map handle-like or object-like value
            _ => rng.next(),
        };
        code.push(insn(0x18, r, 0, 0, v as u32 as i32));
        code.push(insn(0, 0, 0, 0, (v >> 32) as u32 as i32));
    }
    for k in 1..=8i16 {
        code.push(insn(0x7b, 10, rng.pick(&WRITABLE), -8 * k, 0));
    }
    let start = code.len();
    let len = 1 + rng.below(30) as usize;
    let end = start + len;
    let mut pc = start;
    while pc < end {
        let i = body_insn(rng, pc, start, end);
        code.push(i);
        pc += 1;
        if matches!(i[0], 0x85 | 0x8d) {
            // A call leaves r1..=r5 unreadable: set them again where there is room.
            for r in 1..=5u8 {
                if pc < end {
                    code.push(insn(0xb7, r, 0, 0, imm(rng)));
                    pc += 1;
                }
            }
        }
    }
    code.push(insn(0x95, 0, 0, 0, 0));
    code.concat()
}

/// The outcome of `code` on `engine` with `budget` and `ctx` (a fresh VM, so the clock and
/// random numbers start the same), as text.
fn outcome(engine: EngineKind, code: &[u8], budget: u64, ctx: &[u8]) -> String {
    let vm = Vm::builder()
        .cpus(1)
        .budget(budget)
        .verifier(VerifierMode::Structural)
        .build();
    let prog =
        match vm.load(Program::new(code.to_vec(), ProgramType::Unspecified).with_engine(engine)) {
            Ok(p) => p,
            Err(e) => return format!("refused: {e:?}"),
        };
    match vm.run(&prog, CpuId(0), &Input::context(ctx.to_vec())) {
        Ok(out) => format!("ran: r0 {:#x} ctx {:?}", out.retval, out.ctx),
        Err(e) => format!("failed: {e:?}"),
    }
}

/// A program's instructions as hex, one word of 16 digits per instruction (for failures).
fn hex_insns(code: &[u8]) -> String {
    code.chunks(8)
        .map(|c| c.iter().map(|b| format!("{b:02x}")).collect::<String>())
        .collect::<Vec<_>>()
        .join(" ")
}

/// The kind of an outcome for the tally: its first two words (`ran: r0`,
/// `failed: BudgetExhausted`, ...).
fn kind_of(outcome: &str) -> String {
    outcome
        .split([' ', '{', '('])
        .take(2)
        .collect::<Vec<_>>()
        .join(" ")
}

fn env_u64(name: &str, default: u64) -> u64 {
    std::env::var(name)
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(default)
}

#[test]
fn jit_and_interpreter_agree_on_generated_programs() {
    let count = env_u64("BPFVM_JIT_DIFF_PROGRAMS", 3_000);
    let mut rng = Rng(env_u64("BPFVM_JIT_DIFF_SEED", 0x006a_6974_6469_6666));
    let mut kinds = std::collections::BTreeMap::<String, u64>::new();
    for n in 0..count {
        let code = generate(&mut rng);
        let budget = rng.pick(&[5, 20, 60, 200, 1_000_000]);
        let ctx: Vec<u8> = (0..64).map(|_| rng.next() as u8).collect();
        let want = outcome(EngineKind::Interpreter, &code, budget, &ctx);
        let got = outcome(EngineKind::Jit, &code, budget, &ctx);
        assert_eq!(
            want,
            got,
            "program {n} (budget {budget}) differs:\n  {}",
            hex_insns(&code)
        );
        *kinds.entry(kind_of(&want)).or_default() += 1;
    }
    eprintln!("{count} programs agree: {kinds:?}");
    // The generator reaches results and each kind of error.
    for kind in [
        "ran: r0",
        "failed: Fault",
        "failed: BudgetExhausted",
        "failed: Helper",
    ] {
        assert!(kinds.contains_key(kind), "no {kind} among {kinds:?}");
    }
}

/// Appends the instructions that call back or tail-call at `pc` (`room` instructions
/// left): `bpf_tail_call(r1, map 0, index)` (slots 0 and 1 hold generated programs, slot 3
/// the caller itself, slot 2 is empty, 4 is past the end), `bpf_loop(n, callback, r10 -
/// 8, flags)` or `bpf_for_each_map_elem(map 1, callback, r10 - 8, 0)`. The callback's
/// `ld_imm64` is noted in `fixups` (its offset is set once the callback's place is known).
fn call_sequence(rng: &mut Rng, pc: usize, room: usize, fixups: &mut Vec<usize>) -> Vec<[u8; 8]> {
    let mut s = Vec::new();
    match rng.below(3) {
        0 if room >= 4 => {
            s.push(insn(0x18, 2, 1, 0, 0)); // r2 = map 0 (the PROG_ARRAY)
            s.push(insn(0, 0, 0, 0, 0));
            s.push(insn(0xb7, 3, 0, 0, rng.below(6) as i32));
            s.push(insn(0x85, 0, 0, 0, 12));
        }
        1 if room >= 7 => {
            s.push(insn(0xb7, 1, 0, 0, rng.pick(&[0, 1, 3, 9, 40, 1 << 24])));
            fixups.push(pc + 1);
            s.push(insn(0x18, 2, 4, 0, 0)); // r2 = the callback
            s.push(insn(0, 0, 0, 0, 0));
            s.push(insn(0xbf, 3, 10, 0, 0));
            s.push(insn(0x07, 3, 0, 0, -8));
            s.push(insn(0xb7, 4, 0, 0, rng.pick(&[0, 0, 0, 1])));
            s.push(insn(0x85, 0, 0, 0, 181));
        }
        2 if room >= 8 => {
            s.push(insn(0x18, 1, 1, 0, 1)); // r1 = map 1 (an array)
            s.push(insn(0, 0, 0, 0, 0));
            fixups.push(pc + 2);
            s.push(insn(0x18, 2, 4, 0, 0));
            s.push(insn(0, 0, 0, 0, 0));
            s.push(insn(0xbf, 3, 10, 0, 0));
            s.push(insn(0x07, 3, 0, 0, -8));
            s.push(insn(0xb7, 4, 0, 0, 0));
            s.push(insn(0x85, 0, 0, 0, 164));
        }
        _ => {}
    }
    s
}

/// A body of `len` instructions from `start` (jumps inside it), ending in `exit`; with
/// `calls`, some of it calls back or tail-calls.
fn body(rng: &mut Rng, code: &mut Vec<[u8; 8]>, len: usize, calls: bool, fixups: &mut Vec<usize>) {
    let start = code.len();
    let end = start + len;
    let mut pc = start;
    while pc < end {
        if calls && rng.below(8) == 0 {
            let mut seq = call_sequence(rng, pc, end - pc, fixups);
            if !seq.is_empty() {
                // The call leaves r1..=r5 unreadable: set them again where there is room.
                for r in 1..=5u8 {
                    if pc + seq.len() < end {
                        seq.push(insn(0xb7, r, 0, 0, imm(rng)));
                    }
                }
            }
            pc += seq.len();
            code.extend(seq);
            continue;
        }
        let i = body_insn(rng, pc, start, end);
        code.push(i);
        pc += 1;
        if matches!(i[0], 0x85 | 0x8d) {
            for r in 1..=5u8 {
                if pc < end {
                    code.push(insn(0xb7, r, 0, 0, imm(rng)));
                    pc += 1;
                }
            }
        }
    }
    code.push(insn(0x95, 0, 0, 0, 0));
    // A jump into the second half of an `ld_imm64` is refused at load: land on its first.
    let second: Vec<usize> = (start..end)
        .filter(|&i| code[i][0] == 0x18)
        .map(|i| i + 1)
        .collect();
    for (i, ins) in code.iter_mut().enumerate().take(end).skip(start) {
        let op = ins[0];
        let is_jump = matches!(op & 0x07, 0x05 | 0x06) && !matches!(op, 0x85 | 0x8d | 0x95);
        if !is_jump || second.contains(&i) {
            continue;
        }
        let off = i16::from_le_bytes([ins[2], ins[3]]);
        let target = (i as i64 + i64::from(off) + 1) as usize;
        if second.contains(&target) {
            ins[2..4].copy_from_slice(&(off - 1).to_le_bytes());
        }
    }
}

/// A program whose main body (and its callback's) tail-calls and calls back; `calls`
/// false: a plain program (a tail call target).
fn generate_with_calls(rng: &mut Rng, calls: bool) -> Vec<u8> {
    let mut code = Vec::new();
    for r in [0u8, 2, 3, 4, 5, 6, 7, 8, 9] {
        let v = match rng.below(4) {
            0 => rng.below(16),
            _ => rng.next(),
        };
        code.push(insn(0x18, r, 0, 0, v as u32 as i32));
        code.push(insn(0, 0, 0, 0, (v >> 32) as u32 as i32));
    }
    for k in 1..=4i16 {
        code.push(insn(0x7b, 10, rng.pick(&WRITABLE), -8 * k, 0));
    }
    let mut fixups = Vec::new();
    let len = 1 + rng.below(if calls { 40 } else { 15 }) as usize;
    body(rng, &mut code, len, calls, &mut fixups);
    if !fixups.is_empty() {
        // The callback: registers set, a body (which may call back again), `exit`.
        let entry = code.len();
        code.push(insn(0xb7, 0, 0, 0, rng.pick(&[0, 0, 0, 1])));
        for r in 3..=9u8 {
            code.push(insn(0xb7, r, 0, 0, imm(rng)));
        }
        let mut inner = Vec::new();
        let len = 1 + rng.below(12) as usize;
        let nested = rng.below(3) == 0;
        body(rng, &mut code, len, nested, &mut inner);
        for at in fixups.into_iter().chain(inner) {
            code[at] = insn(0x18, 2, 4, 0, (entry as i64 - at as i64 - 1) as i32);
        }
    }
    code.concat()
}

/// The outcome of `code` with the two `targets` (in PROG_ARRAY slots 0 and 1; the caller
/// in slot 3) on `engine` (the targets on `target_engine`), as text.
fn outcome_with_calls(
    engine: EngineKind,
    target_engine: EngineKind,
    code: &[u8],
    targets: &[Vec<u8>],
    budget: u64,
    ctx: &[u8],
) -> String {
    use bpfvm::maps::{MapSpec, MapType};
    let vm = Vm::builder()
        .cpus(1)
        .budget(budget)
        .verifier(VerifierMode::Structural)
        .build();
    let jmp = vm
        .create_map(MapSpec::new(MapType::ProgArray, 4, 4, 4))
        .unwrap();
    let arr = vm
        .create_map(MapSpec::new(MapType::Array, 4, 8, 3))
        .unwrap();
    for k in 0..3u32 {
        arr.update(&k.to_ne_bytes(), &u64::from(k * 7 + 1).to_ne_bytes(), 0)
            .unwrap();
    }
    let program = |code: &[u8], engine| {
        let mut p = Program::new(code.to_vec(), ProgramType::Unspecified).with_engine(engine);
        p.add_map(jmp.clone());
        p.add_map(arr.clone());
        vm.load(p)
    };
    let mut log = String::new();
    for (slot, t) in targets.iter().enumerate() {
        match program(t, target_engine) {
            Ok(p) => p.set_in_prog_array(&jmp, slot as u32).unwrap(),
            Err(e) => log.push_str(&format!("target {slot} refused: {e:?}; ")),
        }
    }
    let prog = match program(code, engine) {
        Ok(p) => p,
        Err(e) => return format!("{log}refused: {e:?}"),
    };
    prog.set_in_prog_array(&jmp, 3).unwrap();
    let r = match vm.run(&prog, CpuId(0), &Input::context(ctx.to_vec())) {
        Ok(out) => format!("ran: r0 {:#x} ctx {:?}", out.retval, out.ctx),
        // Program ids differ per load.
        Err(e) => {
            let text = format!("failed: {e:?}");
            let mut out = String::new();
            let mut rest = text.as_str();
            while let Some(i) = rest.find("program: ") {
                out.push_str(&rest[..i + 9]);
                rest = rest[i + 9..].trim_start_matches(|c: char| c.is_ascii_digit());
            }
            out + rest
        }
    };
    let mut values = Vec::new();
    for k in 0..3u32 {
        let mut v = [0u8; 8];
        arr.lookup(&k.to_ne_bytes(), &mut v, 0).unwrap();
        values.push(u64::from_ne_bytes(v));
    }
    // The programs hold the PROG_ARRAY and it holds them: empty it so they are freed (with
    // their executable memory), as the kernel empties a PROG_ARRAY its user closes.
    for k in 0..4u32 {
        let _ = jmp.delete(&k.to_ne_bytes(), 0);
    }
    format!("{log}{r} array {values:?}")
}

#[test]
fn jit_and_interpreter_agree_on_generated_programs_with_calls() {
    let count = env_u64("BPFVM_JIT_DIFF_CALL_PROGRAMS", 1_500);
    let mut rng = Rng(env_u64("BPFVM_JIT_DIFF_SEED", 0x0063_616c_6c73_0001));
    let mut kinds = std::collections::BTreeMap::<String, u64>::new();
    for n in 0..count {
        let code = generate_with_calls(&mut rng, true);
        let targets = [
            generate_with_calls(&mut rng, false),
            generate_with_calls(&mut rng, false),
        ];
        let budget = rng.pick(&[20, 60, 200, 2_000, 1_000_000]);
        let ctx: Vec<u8> = (0..64).map(|_| rng.next() as u8).collect();
        // The targets on the caller's engine, or (one in four) on the other.
        let mixed = rng.below(4) == 0;
        let i = EngineKind::Interpreter;
        let want = outcome_with_calls(i, i, &code, &targets, budget, &ctx);
        let target_engine = if mixed { i } else { EngineKind::Jit };
        let got = outcome_with_calls(
            EngineKind::Jit,
            target_engine,
            &code,
            &targets,
            budget,
            &ctx,
        );
        let mixed_back = if mixed {
            outcome_with_calls(i, EngineKind::Jit, &code, &targets, budget, &ctx)
        } else {
            want.clone()
        };
        for (label, got) in [("jit", &got), ("interpreter calling jit", &mixed_back)] {
            assert_eq!(
                &want,
                got,
                "program {n} (budget {budget}, {label}) differs:\n  {}",
                hex_insns(&code)
            );
        }
        *kinds.entry(kind_of(&want)).or_default() += 1;
    }
    eprintln!("{count} programs with calls agree: {kinds:?}");
    for kind in ["ran: r0", "failed: BudgetExhausted", "failed: InTailCall"] {
        assert!(kinds.contains_key(kind), "no {kind} among {kinds:?}");
    }
}
