//! The benchmark programs as BPF bytecode, with the number of instructions each executes.
//!
//! Every loop counts down a register and ends with `jne rX, 0, <loop start>`.

fn asm(src: &str) -> Vec<u8> {
    rbpf::assembler::assemble(src).expect("benchmark programs assemble")
}

/// `mov64 r0, 0; exit`.
pub fn empty() -> Vec<u8> {
    asm("mov64 r0, 0\nexit")
}

/// Instructions [`empty`] executes.
pub const EMPTY_INSNS: u64 = 2;

/// `iters` iterations of 8 ALU instructions and a jump (a serial dependency chain, like
/// [`crate::native::alu_loop`]). Returns `r0 + r2`.
pub fn alu_loop(iters: u64) -> Vec<u8> {
    asm(&format!(
        "mov64 r0, 0
         mov64 r1, {iters}
         mov64 r2, 0
         add64 r0, 3
         xor64 r0, 5
         mul64 r0, 3
         rsh64 r0, 1
         add64 r2, r0
         or64 r2, 1
         and64 r2, 0xffff
         sub64 r1, 1
         jne r1, 0, -9
         add64 r0, r2
         exit"
    ))
}

/// Instructions [`alu_loop`] executes.
pub fn alu_loop_insns(iters: u64) -> u64 {
    9 * iters + 5
}

/// `iters` iterations of 10 instructions, 5 of them loads/stores through the stack
/// (`ldxdw`/`stxdw`, `ldxw`/`stxw`, `ldxb`), like [`crate::native::memory_loop`].
pub fn memory_loop(iters: u64) -> Vec<u8> {
    asm(&format!(
        "mov64 r0, 0
         mov64 r1, {iters}
         stdw [r10-8], 0
         stdw [r10-16], 0
         ldxdw r2, [r10-8]
         add64 r2, r1
         stxdw [r10-8], r2
         ldxw r3, [r10-16]
         add64 r3, 1
         stxw [r10-16], r3
         ldxb r4, [r10-8]
         add64 r0, r4
         sub64 r1, 1
         jne r1, 0, -10
         exit"
    ))
}

/// Instructions [`memory_loop`] executes.
pub fn memory_loop_insns(iters: u64) -> u64 {
    10 * iters + 5
}

/// Loads/stores per iteration of [`memory_loop`].
pub const MEMORY_LOOP_ACCESSES: u64 = 5;

/// `iters` iterations of `call 8` (`bpf_get_smp_processor_id`), an add and the loop
/// (4 instructions); returns the sum of the results. The `interpreter` engine inlines this
/// helper (as the kernel does on x86_64): see [`helper_call_loop`] for a real call.
pub fn helper_loop(iters: u64) -> Vec<u8> {
    helper_like_loop(iters, "call 8")
}

/// [`helper_loop`] with `call 5` (`bpf_ktime_get_ns`, which no engine inlines: the kernel
/// does not either) instead: the cost of a helper that is really called. Returns the sum of
/// the virtual clock readings, `iters × start + 1000 × iters × (iters − 1) / 2`, where
/// `start` is the run's virtual clock start (it differs from run to run).
pub fn helper_call_loop(iters: u64) -> Vec<u8> {
    helper_like_loop(iters, "call 5")
}

/// [`helper_loop`] with the call replaced by `mov64 r0, 0`: the difference between the two
/// is the marginal cost of a helper call.
pub fn helper_baseline_loop(iters: u64) -> Vec<u8> {
    helper_like_loop(iters, "mov64 r0, 0")
}

fn helper_like_loop(iters: u64, body: &str) -> Vec<u8> {
    asm(&format!(
        "mov64 r6, 0
         mov64 r7, {iters}
         {body}
         add64 r6, r0
         sub64 r7, 1
         jne r7, 0, -4
         mov64 r0, r6
         exit"
    ))
}

/// Instructions [`helper_loop`] (and [`helper_call_loop`], and their baseline) executes.
pub fn helper_loop_insns(iters: u64) -> u64 {
    4 * iters + 4
}

/// Turns the `lddw` at instruction `at` into `BPF_PSEUDO_MAP_FD` of map `index`.
pub fn patch_map_fd(code: &mut [u8], at: usize, index: u32) {
    patch_pseudo(code, at, 1, index, 0);
}

/// Turns the `lddw` at instruction `at` into `BPF_PSEUDO_MAP_VALUE` of map `index` + `offset`.
pub fn patch_map_value(code: &mut [u8], at: usize, index: u32, offset: u32) {
    patch_pseudo(code, at, 2, index, offset);
}

fn patch_pseudo(code: &mut [u8], at: usize, src: u8, imm: u32, second_imm: u32) {
    let i = at * 8;
    assert_eq!(code[i], 0x18, "instruction {at} is not an lddw");
    code[i + 1] = (code[i + 1] & 0x0f) | (src << 4);
    code[i + 4..i + 8].copy_from_slice(&imm.to_le_bytes());
    code[i + 12..i + 16].copy_from_slice(&second_imm.to_le_bytes());
}

/// `iters` iterations of `bpf_map_lookup_elem(map 0, &key0)` and a read of the value
/// (9 instructions per iteration); returns the sum of the values read.
pub fn lookup_loop(iters: u64) -> Vec<u8> {
    let mut code = asm(&format!(
        "mov64 r6, 0
         mov64 r7, {iters}
         stw [r10-4], 0
         lddw r1, 0
         mov64 r2, r10
         add64 r2, -4
         call 1
         jeq r0, 0, +2
         ldxdw r1, [r0]
         add64 r6, r1
         sub64 r7, 1
         jne r7, 0, -10
         mov64 r0, r6
         exit"
    ));
    patch_map_fd(&mut code, 3, 0);
    code
}

/// `iters` iterations reading, incrementing and writing back the value of map `index`
/// (addressed directly with `BPF_PSEUDO_MAP_VALUE`), 6 instructions per iteration.
pub fn map_value_loop(iters: u64, index: u32) -> Vec<u8> {
    let mut code = asm(&format!(
        "lddw r6, 0
         mov64 r7, {iters}
         mov64 r0, 0
         ldxdw r1, [r6]
         add64 r1, 1
         stxdw [r6], r1
         add64 r0, r1
         sub64 r7, 1
         jne r7, 0, -6
         exit"
    ));
    patch_map_value(&mut code, 0, index, 0);
    code
}

/// `iters` non-atomic increments of the calling CPU's copy of a PERCPU_ARRAY value (map 0,
/// key 0), found once with `bpf_map_lookup_elem`.
pub fn percpu_counter(iters: u64) -> Vec<u8> {
    counter(iters, "ldxdw r1, [r6]\nadd64 r1, 1\nstxdw [r6], r1")
}

/// `iters` atomic increments (`lock xadd`) of one shared ARRAY value (map 0, key 0).
pub fn atomic_counter(iters: u64) -> Vec<u8> {
    // `stxdw [r6], r8` is patched into `BPF_ATOMIC | BPF_DW` with imm `BPF_ADD` below, and
    // the two padding movs keep the loop at the same length as the per-CPU counter.
    let mut code = counter(iters, "stxdw [r6], r8\nmov64 r1, 0\nmov64 r1, 0");
    let at = 12 * 8;
    assert_eq!(code[at], 0x7b);
    code[at] = 0xdb; // BPF_STX | BPF_ATOMIC | BPF_DW, imm 0 = BPF_ADD
    code
}

fn counter(iters: u64, body: &str) -> Vec<u8> {
    let mut code = asm(&format!(
        "stw [r10-4], 0
         lddw r1, 0
         mov64 r2, r10
         add64 r2, -4
         call 1
         jne r0, 0, +2
         mov64 r0, 1
         exit
         mov64 r6, r0
         mov64 r7, {iters}
         mov64 r8, 1
         {body}
         sub64 r7, 1
         jne r7, 0, -5
         mov64 r0, 0
         exit"
    ));
    patch_map_fd(&mut code, 1, 0);
    code
}

/// One non-atomic increment of a shared ARRAY value (map 0, addressed with
/// `BPF_PSEUDO_MAP_VALUE`) with `pad` iterations of private ALU work (3 instructions each)
/// between the load and the store: `3 * pad + 7` instructions, 2 shared accesses (the race
/// explorer's bench program).
pub fn shared_counter_padded(pad: u64) -> Vec<u8> {
    let pad = pad.max(1);
    let mut code = asm(&format!(
        "lddw r6, 0
         ldxdw r1, [r6]
         mov64 r2, {pad}
         add64 r1, 0
         sub64 r2, 1
         jne r2, 0, -3
         add64 r1, 1
         stxdw [r6], r1
         mov64 r0, 0
         exit"
    ));
    patch_map_value(&mut code, 0, 0, 0);
    code
}

/// Instructions [`shared_counter_padded`] executes.
pub fn shared_counter_padded_insns(pad: u64) -> u64 {
    3 * pad.max(1) + 8
}

/// A straight-line program of `n` instructions (`n` a multiple of 3, plus 2): stores,
/// loads and ALU on the stack, then `exit`.
pub fn straight_line(n: usize) -> Vec<u8> {
    straight_line_through(n, 10)
}

/// [`straight_line`] with the stack reached through `r6` (a copy of `r10`) rather than
/// `r10`: every access is one the `jit` engine checks at run time (`n` a multiple of 3,
/// plus 3).
pub fn straight_line_checked(n: usize) -> Vec<u8> {
    let mut code = vec![0xbf, 0xa6, 0, 0, 0, 0, 0, 0]; // mov64 r6, r10
    code.extend(straight_line_through(n.saturating_sub(1), 6));
    code
}

/// [`straight_line`] with the stack reached through `base`.
fn straight_line_through(n: usize, base: u8) -> Vec<u8> {
    let insn = |op: u8, regs: u8, off: i16, imm: i32| {
        let mut b = vec![op, regs];
        b.extend(off.to_le_bytes());
        b.extend(imm.to_le_bytes());
        b
    };
    let mut code = insn(0xb7, 0x00, 0, 0); // mov64 r0, 0
    for _ in 0..n / 3 {
        code.extend(insn(0x07, 0x00, 0, 3)); // add64 r0, 3
        code.extend(insn(0x7b, base, -8, 0)); // stxdw [base-8], r0
        code.extend(insn(0x79, (base << 4) | 1, -8, 0)); // ldxdw r1, [base-8]
    }
    code.extend(insn(0x95, 0, 0, 0)); // exit
    code
}
