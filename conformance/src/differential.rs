//! Differential testing: a seeded generator of small, valid, terminating programs, and the
//! comparison of what each engine makes of them.
//!
//! Every generated program has the same frame:
//!
//! - **prologue**: `r0` and `r2..=r9` get random 64-bit values (`lddw`), and the 64 bytes
//!   below `r10` are filled from those registers;
//! - **body** (in a quarter of the programs run 2 to 4 times by a counted loop in `r9`):
//!   random ALU32/ALU64 instructions (incl. byte swaps, `neg`, division by a zero
//!   register), conditional jumps (JMP and JMP32, register and immediate forms) and `ja`,
//!   all forward only, loads and stores on the stack and on the context (`r1`), and, less
//!   often, atomics and ISA v4 instructions (`sdiv`/`smod`, `movsx`, `ldsx`, `bswap`,
//!   `gotol`);
//! - **epilogue**: the 64 stack bytes are copied to the context after the program's 64
//!   input bytes, so comparing `r0` and the context compares registers, stack and memory.
//!
//! `r1` (the context) and `r10` are never written, so every access is in bounds and every
//! program runs to `exit`: an engine that refuses, faults or differs is telling us something.

use bpfvm::{CpuId, EngineKind, Input, LoadedProgram, PrepareError, Program, ProgramType, Vm};

/// Bytes of context the body may read and write.
pub const CTX_INPUT: usize = 64;
/// Bytes of stack the body may read and write (below `r10`).
pub const STACK_BYTES: usize = 64;
/// Total context length: the input, then room for the stack copy.
pub const CTX_LEN: usize = CTX_INPUT + STACK_BYTES;

/// A tiny deterministic PRNG (SplitMix64), so a seed reproduces a program exactly.
#[derive(Debug, Clone)]
pub struct Rng(u64);

impl Rng {
    /// A generator seeded with `seed`.
    pub fn new(seed: u64) -> Rng {
        Rng(seed)
    }

    /// The next 64 random bits.
    pub fn next_u64(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9e37_79b9_7f4a_7c15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
        z ^ (z >> 31)
    }

    /// A number in `0..n` (`n > 0`).
    pub fn below(&mut self, n: u64) -> u64 {
        self.next_u64() % n
    }

    /// One element of `items`.
    pub fn pick<T: Copy>(&mut self, items: &[T]) -> T {
        items[self.below(items.len() as u64) as usize]
    }

    /// True with probability `percent`/100.
    pub fn chance(&mut self, percent: u64) -> bool {
        self.below(100) < percent
    }
}

/// One encoded instruction slot.
pub fn insn(opc: u8, dst: u8, src: u8, off: i16, imm: i32) -> [u8; 8] {
    let o = off.to_le_bytes();
    let i = imm.to_le_bytes();
    [opc, (src << 4) | dst, o[0], o[1], i[0], i[1], i[2], i[3]]
}

/// A generated program and its input context.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Case {
    /// Instruction slots.
    pub insns: Vec<[u8; 8]>,
    /// Index of the first body slot.
    pub body_start: usize,
    /// Index one past the last body slot (the epilogue starts here).
    pub body_end: usize,
    /// The context: [`CTX_INPUT`] random bytes, then [`STACK_BYTES`] zeros.
    pub ctx: Vec<u8>,
}

impl Case {
    /// The bytecode.
    pub fn code(&self) -> Vec<u8> {
        self.insns.iter().flatten().copied().collect()
    }
}

/// Working registers the body reads and writes (`r1` = context and `r10` are reserved).
const REGS: [u8; 9] = [0, 2, 3, 4, 5, 6, 7, 8, 9];
/// Registers the body may write in a program with a loop (`r9` counts the iterations).
const LOOP_WRITABLE: [u8; 8] = [0, 2, 3, 4, 5, 6, 7, 8];

fn imm(rng: &mut Rng) -> i32 {
    match rng.below(4) {
        0 => rng.pick(&[
            0,
            1,
            -1,
            2,
            7,
            31,
            32,
            63,
            64,
            i32::MIN,
            i32::MAX,
            0xff,
            0xffff,
        ]),
        1 => rng.below(256) as i32 - 128,
        _ => rng.next_u64() as i32,
    }
}

fn alu(rng: &mut Rng, dst: u8) -> [u8; 8] {
    let class = if rng.chance(50) { 0x07 } else { 0x04 };
    let width = if class == 0x07 { 64 } else { 32 };
    let code = rng.pick(&[
        0x00u8, 0x10, 0x20, 0x30, 0x40, 0x50, 0x60, 0x70, 0x80, 0x90, 0xa0, 0xb0, 0xc0,
    ]);
    if code == 0x80 {
        return insn(code | class, dst, 0, 0, 0); // neg
    }
    let reg_form = rng.chance(50);
    if reg_form {
        return insn(code | class | 0x08, dst, rng.pick(&REGS), 0, 0);
    }
    let mut k = imm(rng);
    match code {
        0x60 | 0x70 | 0xc0 => k = rng.below(width) as i32, // shifts in range
        0x30 | 0x90 if k == 0 => k = 3,                    // no division by immediate zero
        _ => {}
    }
    insn(code | class, dst, 0, 0, k)
}

fn byte_swap(rng: &mut Rng, dst: u8) -> [u8; 8] {
    let op = rng.pick(&[0xd4u8, 0xdc]); // le, be
    insn(op, dst, 0, 0, rng.pick(&[16, 32, 64]))
}

/// A load or store on the stack (base `r10`) or the context (base `r1`).
fn memory(rng: &mut Rng, dst: u8) -> [u8; 8] {
    let size_code = rng.pick(&[0x00u8, 0x08, 0x10, 0x18]); // w, h, b, dw
    let size = match size_code {
        0x00 => 4,
        0x08 => 2,
        0x10 => 1,
        _ => 8,
    };
    let (base, off) = if rng.chance(50) {
        let slots = STACK_BYTES / size;
        (
            10,
            -(((rng.below(slots as u64) as usize + 1) * size) as i16),
        )
    } else {
        let slots = CTX_INPUT / size;
        (1, (rng.below(slots as u64) as usize * size) as i16)
    };
    match rng.below(3) {
        0 => insn(0x61 | size_code, dst, base, off, 0), // ldx
        1 => insn(0x63 | size_code, base, rng.pick(&REGS), off, 0), // stx
        _ => insn(0x62 | size_code, base, 0, off, imm(rng)), // st
    }
}

/// A conditional (JMP or JMP32) or unconditional forward jump from `pc` to at most `end`.
fn jump(rng: &mut Rng, pc: usize, end: usize, dst: u8) -> [u8; 8] {
    let off = rng.below((end - pc) as u64) as i16; // target pc + 1 + off <= end
    if rng.chance(10) {
        return insn(0x05, 0, 0, off, 0);
    }
    let class = if rng.chance(50) { 0x05 } else { 0x06 };
    let code = rng.pick(&[
        0x10u8, 0x20, 0x30, 0x40, 0x50, 0x60, 0x70, 0xa0, 0xb0, 0xc0, 0xd0,
    ]);
    if rng.chance(50) {
        insn(code | class | 0x08, dst, rng.pick(&REGS), off, 0)
    } else {
        insn(code | class, dst, 0, off, imm(rng))
    }
}

/// An atomic read-modify-write on an aligned stack or context slot; a fetching one writes
/// its source register, taken from `writable`.
fn atomic(rng: &mut Rng, writable: &[u8]) -> [u8; 8] {
    let wide = rng.chance(50);
    let size = if wide { 8 } else { 4 };
    let (base, off) = if rng.chance(50) {
        (
            10,
            -(((rng.below((STACK_BYTES / size) as u64) + 1) as usize * size) as i16),
        )
    } else {
        (
            1,
            (rng.below((CTX_INPUT / size) as u64) as usize * size) as i16,
        )
    };
    let op = rng.pick(&[0x00, 0x01, 0x40, 0x41, 0x50, 0x51, 0xa0, 0xa1, 0xe1, 0xf1]);
    // cmpxchg (0xf1) compares with r0 and writes r0; the others may write src (fetch).
    let src = rng.pick(writable);
    insn(if wide { 0xdb } else { 0xc3 }, base, src, off, op)
}

/// An ISA v4 instruction: sdiv/smod, movsx, a sign-extending load, bswap, or a forward
/// `gotol` (JMP32 `ja` with a 32-bit offset) from `pc` to at most `end`.
fn v4(rng: &mut Rng, dst: u8, pc: usize, end: usize) -> [u8; 8] {
    let class = if rng.chance(50) { 0x07 } else { 0x04 };
    match rng.below(5) {
        4 => insn(0x06, 0, 0, 0, rng.below((end - pc) as u64) as i32),
        0 => {
            let code = rng.pick(&[0x30u8, 0x90]);
            if rng.chance(50) {
                insn(code | class | 0x08, dst, rng.pick(&REGS), 1, 0)
            } else {
                let k = imm(rng);
                insn(code | class, dst, 0, 1, if k == 0 { -3 } else { k })
            }
        }
        1 => {
            let off = if class == 0x07 {
                rng.pick(&[8i16, 16, 32])
            } else {
                rng.pick(&[8i16, 16])
            };
            insn(0xbc | class, dst, rng.pick(&REGS), off, 0)
        }
        2 => {
            let (code, size) = rng.pick(&[(0x91u8, 1usize), (0x89, 2), (0x81, 4)]);
            if rng.chance(50) {
                let slots = STACK_BYTES / size;
                let off = -(((rng.below(slots as u64) as usize + 1) * size) as i16);
                insn(code, dst, 10, off, 0)
            } else {
                let off = (rng.below((CTX_INPUT / size) as u64) as usize * size) as i16;
                insn(code, dst, 1, off, 0)
            }
        }
        _ => insn(0xd7, dst, 0, 0, rng.pick(&[16, 32, 64])),
    }
}

/// Generates one program. `rare` is the percentage of body instructions that are atomics or
/// v4 instructions (which the rbpf engines refuse, so programs with them run on fewer engines).
/// A quarter of the programs repeat their body 2 to 4 times: `r9` counts down and a backward
/// `jne` closes the loop (the body never writes `r9` then, so every loop ends).
pub fn generate(rng: &mut Rng, max_body: usize, rare: u64) -> Case {
    let mut insns = Vec::new();
    for &r in &REGS {
        let v = rng.next_u64();
        insns.push(insn(0x18, r, 0, 0, v as u32 as i32));
        insns.push(insn(0, 0, 0, 0, (v >> 32) as u32 as i32));
    }
    for k in 0..STACK_BYTES / 8 {
        let src = REGS[1 + k % 8];
        insns.push(insn(0x7b, 10, src, -(8 * (k as i16 + 1)), 0));
    }
    let looped = rng.chance(25);
    let writable: &[u8] = if looped { &LOOP_WRITABLE } else { &REGS };
    if looped {
        insns.push(insn(0xb4, 9, 0, 0, 2 + rng.below(3) as i32)); // mov32 r9, 2..=4
    }
    let body_start = insns.len();
    let len = 1 + rng.below(max_body as u64) as usize;
    let body_end = body_start + len;
    for pc in body_start..body_end {
        let dst = rng.pick(writable);
        let i = match rng.below(100) {
            x if x < rare => {
                if rng.chance(50) {
                    atomic(rng, writable)
                } else {
                    v4(rng, dst, pc, body_end)
                }
            }
            x if x < 45 => alu(rng, dst),
            x if x < 50 => byte_swap(rng, dst),
            x if x < 75 => memory(rng, dst),
            _ => jump(rng, pc, body_end, dst),
        };
        insns.push(i);
    }
    if looped {
        insns.push(insn(0x07, 9, 0, 0, -1)); // add r9, -1
        let back = body_start as i64 - (body_end as i64 + 2);
        insns.push(insn(0x55, 9, 0, back as i16, 0)); // jne r9, 0, body_start
    }
    for k in 0..STACK_BYTES / 8 {
        let off = 8 * (k as i16 + 1);
        insns.push(insn(0x79, 2, 10, -off, 0));
        insns.push(insn(0x7b, 1, 2, CTX_LEN as i16 - off, 0));
    }
    insns.push(insn(0x95, 0, 0, 0, 0));
    let mut ctx: Vec<u8> = (0..CTX_INPUT).map(|_| rng.next_u64() as u8).collect();
    ctx.resize(CTX_LEN, 0);
    Case {
        insns,
        body_start,
        body_end,
        ctx,
    }
}

/// What one engine made of a program.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Observation {
    /// Refused at load time.
    Refused(String),
    /// Ran: `r0` and the context afterwards (which holds the stack copy).
    Ran {
        /// `r0` at exit.
        r0: u64,
        /// The context after the run.
        ctx: Vec<u8>,
    },
    /// Loaded but the run failed (a fault, a panic, an rbpf error).
    Failed(String),
}

fn load(vm: &Vm, code: &[u8], engine: EngineKind) -> Result<LoadedProgram, PrepareError> {
    vm.load(Program::new(code.to_vec(), ProgramType::Unspecified).with_engine(engine))
}

/// Loads and runs `code` with `ctx` on `engine` (CPU `cpu` of `vm`).
pub fn observe(vm: &Vm, cpu: u32, engine: EngineKind, code: &[u8], ctx: &[u8]) -> Observation {
    let run = || match load(vm, code, engine) {
        Err(e) => Observation::Refused(e.to_string()),
        Ok(p) => match vm.run(&p, CpuId(cpu), &Input::context(ctx.to_vec())) {
            Ok(out) => Observation::Ran {
                r0: out.retval,
                ctx: out.ctx,
            },
            Err(e) => Observation::Failed(e.to_string()),
        },
    };
    std::panic::catch_unwind(std::panic::AssertUnwindSafe(run))
        .unwrap_or_else(|_| Observation::Failed("panicked".to_string()))
}

/// Whether `other` disagrees with the reference `reference` (a refusal never disagrees).
pub fn disagrees(reference: &Observation, other: &Observation) -> bool {
    !matches!(other, Observation::Refused(_)) && reference != other
}

/// Shrinks a disagreeing case: body instructions are replaced by `ja +0` (a no-op that keeps
/// every jump offset valid) one at a time, keeping each replacement under which
/// `still_disagrees` holds, until no more can go.
pub fn minimize(case: &Case, still_disagrees: impl Fn(&Case) -> bool) -> Case {
    let nop = insn(0x05, 0, 0, 0, 0);
    let mut best = case.clone();
    loop {
        let mut progressed = false;
        for pc in best.body_start..best.body_end {
            if best.insns[pc] == nop {
                continue;
            }
            let mut trial = best.clone();
            trial.insns[pc] = nop;
            if still_disagrees(&trial) {
                best = trial;
                progressed = true;
            }
        }
        if !progressed {
            return best;
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_same_seed_gives_the_same_program() {
        let a = generate(&mut Rng::new(7), 20, 10);
        let b = generate(&mut Rng::new(7), 20, 10);
        assert_eq!(a, b);
        assert_ne!(a, generate(&mut Rng::new(8), 20, 10));
    }

    #[test]
    fn generated_programs_load_and_run_on_the_interpreter() {
        let vm = Vm::builder().cpus(1).build();
        let mut rng = Rng::new(1);
        for _ in 0..200 {
            let case = generate(&mut rng, 24, 10);
            match observe(&vm, 0, EngineKind::Interpreter, &case.code(), &case.ctx) {
                Observation::Ran { ctx, .. } => assert_eq!(ctx.len(), CTX_LEN),
                other => panic!("{other:?}"),
            }
        }
    }

    #[test]
    fn about_a_quarter_of_programs_loop_and_loops_end() {
        let mut rng = Rng::new(5);
        let looped = (0..1000)
            .filter(|_| {
                let c = generate(&mut rng, 24, 10);
                let backward = c.insns.iter().any(|i| i[0] == 0x55 && i[2..4] != [0, 0]);
                let r = crate::reference::run(&c.insns, &c.ctx);
                assert!(r.is_some(), "{c:?}");
                backward
            })
            .count();
        assert!((150..350).contains(&looped), "{looped}");
    }

    #[test]
    fn minimize_keeps_only_what_matters() {
        let case = generate(&mut Rng::new(3), 16, 0);
        // Pretend the disagreement is "the first body instruction is present".
        let first = case.insns[case.body_start];
        let small = minimize(&case, |c| c.insns[case.body_start] == first);
        let nop = insn(0x05, 0, 0, 0, 0);
        assert!(small.insns[small.body_start + 1..small.body_end]
            .iter()
            .all(|i| *i == nop));
    }
}
