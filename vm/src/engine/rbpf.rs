//! The rbpf 0.4.1 engines: `rbpf-interpreter` and (x86_64, not Windows) `rbpf-jit`.
//!
//! **These engines are not sandboxed like `interpreter`.** rbpf works on host addresses:
//! its interpreter checks only the *first* byte of an access against its allowed ranges
//! (context, stack, and the map value arenas and ring buffers registered here), its JIT checks
//! nothing, and helpers receive raw host pointers, which
//! [`AddressMode::Host`](bpfvm_helpers::AddressMode::Host) trusts. rbpf has no
//! instruction budget, so programs with backward jumps are refused unless
//! `VmConfig::rbpf_allow_loops` is set.
//!
//! A program is refused at prepare time, naming the instruction, when it uses anything rbpf
//! rejects or runs wrongly (checked against rbpf 0.4.1's source):
//! reading `r2` before writing it (rbpf leaves it 0 instead of the context length);
//! `mod32` by a register (a zero divisor leaves dst's upper half instead of clearing it);
//! atomics (rbpf's verifier rejects them); bswap, sign-extending loads, gotol and callx
//! (unknown opcodes to rbpf); sdiv/smod (run as unsigned div/mod: rbpf ignores `off`); movsx
//! (run as plain mov); on the interpreter, `neg64` (an overflowing `-` that panics on
//! `i64::MIN` in debug builds), jumps at or beyond instruction 32767 (targets computed in
//! `i16`), 64-bit `jeq/jne/jgt/jge/jlt/jle` with a negative
//! immediate (rbpf zero-extends the immediate); on the JIT, `mov32` register-to-register
//! (keeps the upper half) and `le16`/`le32` (compiled as no-ops); bpf-to-bpf calls (rbpf's
//! interpreter computes a backward target with an overflowing `usize` add and shares one
//! 512-byte stack between frames); on the JIT, every helper call (its prologue pushes a
//! return address after aligning the stack, so helpers run with `rsp` misaligned by 8 bytes,
//! which crashes Rust helpers that use aligned SSE stores); helper ids above 255 (no bridge trampoline). Only program
//! types with a raw context are supported (packet contexts hold 32-bit guest pointers, which
//! cannot address host memory).
#![allow(unsafe_code)]

use std::ops::Range;

use bpfvm_helpers::bridge::{trampoline, BridgeGuard, MAX_BRIDGED_ID};
use bpfvm_helpers::memory::map_handle;
use bpfvm_helpers::{MapList, Registry};
use rbpf::ebpf;

use crate::cpu::Lane;
use crate::engine::{Engine, EngineKind, RunEnv};
use crate::error::{PrepareError, RunError};
use crate::insn::{op, RawInsn};
use crate::program::Program;
use crate::verify;

/// A program prepared for an rbpf engine.
#[derive(Debug)]
pub struct Rbpf {
    kind: EngineKind,
    /// Leaked once per prepared program: rbpf VMs borrow their bytecode, and the per-thread
    /// VM cache below needs `'static` VMs.
    bytecode: &'static [u8],
    helpers: Vec<u32>,
    allowed: Vec<Range<u64>>,
    maps: MapList,
    id: u64,
}

/// Validates `program` with bpfvm's checks and rbpf's limits, and rewrites map pseudo loads
/// to what rbpf can run (a map handle constant, a host address of a map value).
pub fn prepare(
    program: &Program,
    registry: &Registry,
    kind: EngineKind,
    allow_loops: bool,
) -> Result<Box<dyn Engine>, PrepareError> {
    if kind == EngineKind::RbpfJit && !cfg!(all(target_arch = "x86_64", not(windows))) {
        return Err(PrepareError::EngineUnavailable { engine: kind });
    }
    let raw = verify::raw_insns(program.bytecode())?;
    let shapes = crate::verify::MapShape::all(program.maps());
    let decoded = verify::decode(
        &raw,
        verify::Env {
            maps: &shapes,
            helper_known: &|id| registry.get(id).is_some(),
        },
    )?;
    let unsupported = |pc: usize, what: &'static str| PrepareError::Unsupported {
        pc,
        engine: kind,
        what,
    };
    if crate::probe_mem::enabled(program) {
        // Loads through kernel pointers (PTR_TO_BTF_ID) are probe loads, which only the
        // interpreter runs (crate::probe_mem).
        if let Some(pc) = raw
            .iter()
            .position(|i| crate::probe_mem::probe_op(i.opc) != i.opc)
        {
            return Err(unsupported(pc, "loads of a tracing program (probe loads)"));
        }
    }
    if let Some(pc) = reads_r2_before_writing(&raw) {
        return Err(unsupported(
            pc,
            "reading r2 before writing it (rbpf does not pass the context length in r2)",
        ));
    }
    let mut bytecode = program.bytecode().to_vec();
    let mut helpers = Vec::new();
    for (pc, (r, d)) in raw.iter().zip(&decoded).enumerate() {
        if d.op == op::LD_IMM64_TAIL {
            continue;
        }
        match r.opc {
            ebpf::ST_W_XADD | ebpf::ST_DW_XADD => return Err(unsupported(pc, "atomic operations")),
            0xd7 => return Err(unsupported(pc, "bswap")),
            0x81 | 0x89 | 0x91 => return Err(unsupported(pc, "sign-extending loads (ldsx)")),
            0x06 => return Err(unsupported(pc, "gotol (ja with a 32-bit offset)")),
            crate::insn::MAY_GOTO => return Err(unsupported(pc, "may_goto (rbpf has no loop counter)")),
            ebpf::TAIL_CALL => return Err(unsupported(pc, "callx")),
            ebpf::JEQ_IMM | ebpf::JNE_IMM | ebpf::JGT_IMM | ebpf::JGE_IMM | ebpf::JLT_IMM | ebpf::JLE_IMM
                if kind == EngineKind::RbpfInterpreter && r.imm < 0 =>
            {
                return Err(unsupported(
                    pc,
                    "64-bit jeq/jne/jgt/jge/jlt/jle with a negative immediate (rbpf zero-extends it)",
                ))
            }
            ebpf::MOD32_REG => {
                return Err(unsupported(
                    pc,
                    "mod32 by a register (when the divisor is 0, rbpf keeps the upper half of dst \
                     instead of zero-extending it)",
                ))
            }
            ebpf::NEG64 if kind == EngineKind::RbpfInterpreter => {
                return Err(unsupported(
                    pc,
                    "neg64 (rbpf's interpreter negates with an overflowing `-`, a panic on i64::MIN)",
                ))
            }
            ebpf::MOV32_REG if kind == EngineKind::RbpfJit && r.off == 0 => {
                return Err(unsupported(pc, "mov32 register to register (the JIT keeps the upper half)"))
            }
            ebpf::LE if kind == EngineKind::RbpfJit && r.imm != 64 => {
                return Err(unsupported(pc, "le16/le32 (the JIT ignores them)"))
            }
            ebpf::CALL if r.src == 0 && r.imm == crate::insn::CORE_POISON_HELPER => {
                return Err(unsupported(
                    pc,
                    "a poisoned CO-RE relocation (call 0xbad2310; the interpreter faults only \
                     when a run reaches it)",
                ))
            }
            ebpf::CALL if r.src == 0 && kind == EngineKind::RbpfJit => {
                return Err(unsupported(
                    pc,
                    "helper calls (rbpf's JIT calls helpers with the stack misaligned by 8 bytes, \
                     breaking the x86-64 ABI; observed as crashes in helpers)",
                ))
            }
            ebpf::CALL if r.src == 0 => {
                let id = r.imm as u32;
                if id >= bpfvm_helpers::KFUNC_ID_BASE {
                    return Err(unsupported(pc, "kfunc calls"));
                }
                if id > MAX_BRIDGED_ID || trampoline(id).is_none() {
                    return Err(unsupported(pc, "helper ids above 255"));
                }
                helpers.push(id);
            }
            _ => {}
        }
        match d.op {
            op::SDIV32_IMM
            | op::SDIV32_REG
            | op::SDIV64_IMM
            | op::SDIV64_REG
            | op::SMOD32_IMM
            | op::SMOD32_REG
            | op::SMOD64_IMM
            | op::SMOD64_REG => return Err(unsupported(pc, "signed division (sdiv/smod)")),
            op::MOVSX32 | op::MOVSX64 => return Err(unsupported(pc, "movsx")),
            op::CALL_LOCAL => return Err(unsupported(pc, "bpf-to-bpf calls")),
            op::LD_FUNC => {
                return Err(unsupported(
                    pc,
                    "pointers to functions (callbacks of bpf_loop, bpf_for_each_map_elem)",
                ))
            }
            op::LD_MAP_FD | op::LD_MAP_VALUE => {
                let value = if d.op == op::LD_MAP_FD {
                    map_handle(d.imm as u32)
                } else {
                    let base =
                        program.maps()[d.imm as usize].arena().base().as_ptr() as usize as u64;
                    base + d.target as u64
                };
                let lo = RawInsn {
                    opc: ebpf::LD_DW_IMM,
                    dst: r.dst,
                    src: 0,
                    off: 0,
                    imm: value as u32 as i32,
                };
                let hi = RawInsn {
                    opc: 0,
                    dst: 0,
                    src: 0,
                    off: 0,
                    imm: (value >> 32) as u32 as i32,
                };
                bytecode[pc * 8..pc * 8 + 8].copy_from_slice(&lo.to_bytes());
                bytecode[pc * 8 + 8..pc * 8 + 16].copy_from_slice(&hi.to_bytes());
            }
            _ => {}
        }
        let is_jump = matches!(d.op & 0x07, ebpf::BPF_JMP | ebpf::BPF_JMP32)
            && !matches!(d.op, ebpf::CALL | ebpf::EXIT | ebpf::TAIL_CALL);
        if is_jump
            && kind == EngineKind::RbpfInterpreter
            && (pc + 1 > i16::MAX as usize || d.target as usize > i16::MAX as usize)
        {
            return Err(unsupported(
                pc,
                "jumps at or to instructions beyond 32767 (rbpf's interpreter computes targets in i16)",
            ));
        }
        if is_jump && !allow_loops && d.target as usize <= pc {
            return Err(unsupported(
                pc,
                "backward jumps (rbpf has no instruction budget; set VmConfig::rbpf_allow_loops)",
            ));
        }
    }
    helpers.sort_unstable();
    helpers.dedup();
    let allowed = program
        .maps()
        .iter()
        .flat_map(|m| {
            let a = m.arena();
            let base = a.base().as_ptr() as usize as u64;
            // A ring buffer's records, which bpf_ringbuf_reserve hands out as host pointers.
            let ring = m.as_map().and_then(|m| m.ringbuf_data()).map(|(p, len)| {
                let p = p.as_ptr() as usize as u64;
                p..p + len as u64
            });
            std::iter::once(base..base + a.len() as u64).chain(ring)
        })
        .collect();
    let engine = Rbpf {
        kind,
        bytecode: Box::leak(bytecode.into_boxed_slice()),
        helpers,
        allowed,
        maps: program.map_list(),
        id: next_id(),
    };
    // Let rbpf's own verifier (and JIT compiler) see the program once now.
    // Safety net as in `run`: a panic in rbpf's verifier or JIT compiler is a refusal.
    std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| engine.with_vm(|_| Ok(()))))
        .unwrap_or_else(|_| Err("rbpf panicked while preparing the program".to_string()))
        .map_err(|message| PrepareError::Rbpf {
            engine: kind,
            message,
        })?;
    Ok(Box::new(engine))
}

fn next_id() -> u64 {
    use std::sync::atomic::{AtomicU64, Ordering};
    static NEXT: AtomicU64 = AtomicU64::new(1 << 62);
    NEXT.fetch_add(1, Ordering::Relaxed)
}

#[cfg(all(target_arch = "x86_64", not(windows)))]
fn compile(vm: &mut rbpf::EbpfVmRaw<'_>) -> Result<(), String> {
    vm.jit_compile().map_err(|e| e.to_string())
}

#[cfg(not(all(target_arch = "x86_64", not(windows))))]
fn compile(_: &mut rbpf::EbpfVmRaw<'_>) -> Result<(), String> {
    Err("the rbpf JIT is only available on x86_64, not on Windows".to_string())
}

type CachedVm = (u64, Box<rbpf::EbpfVmRaw<'static>>);

/// rbpf VMs kept per thread, most recently used last.
const CACHE_SIZE: usize = 8;

thread_local! {
    // rbpf's VMs are neither `Send` nor `Sync`, so each worker thread keeps its own
    // (verified and, for the JIT, compiled) VMs for the programs it ran last.
    static VM_CACHE: std::cell::RefCell<Vec<CachedVm>> =
        const { std::cell::RefCell::new(Vec::new()) };
}

impl Rbpf {
    fn build_vm(&self) -> Result<Box<rbpf::EbpfVmRaw<'static>>, String> {
        let mut vm =
            Box::new(rbpf::EbpfVmRaw::new(Some(self.bytecode)).map_err(|e| e.to_string())?);
        for &id in &self.helpers {
            let f = trampoline(id).ok_or_else(|| format!("no trampoline for helper {id}"))?;
            vm.register_helper(id, f).map_err(|e| e.to_string())?;
        }
        for r in &self.allowed {
            vm.register_allowed_memory(r.clone());
        }
        if self.kind == EngineKind::RbpfJit {
            compile(&mut vm)?;
        }
        Ok(vm)
    }

    /// Hands this thread's rbpf VM for the program (built on first use) to `f`. The VM is
    /// taken out of the cache while `f` runs, so a helper that runs BPF code is harmless.
    fn with_vm<T>(
        &self,
        f: impl FnOnce(&mut rbpf::EbpfVmRaw<'static>) -> Result<T, String>,
    ) -> Result<T, String> {
        let cached = VM_CACHE.with(|c| {
            let mut c = c.borrow_mut();
            let i = c.iter().position(|(id, _)| *id == self.id)?;
            Some(c.remove(i).1)
        });
        let mut vm = match cached {
            Some(vm) => vm,
            None => self.build_vm()?,
        };
        let result = f(&mut vm);
        VM_CACHE.with(|c| {
            let mut c = c.borrow_mut();
            if c.len() >= CACHE_SIZE {
                c.remove(0);
            }
            c.push((self.id, vm));
        });
        result
    }
}

impl Engine for Rbpf {
    fn kind(&self) -> EngineKind {
        self.kind
    }

    fn run(&self, _program: &Program, lane: &mut Lane, env: RunEnv<'_>) -> Result<u64, RunError> {
        if lane.has_packet {
            return Err(RunError::BadInput {
                reason: format!(
                    "engine {} supports only program types with a raw context",
                    self.kind
                ),
            });
        }
        if !lane.install_maps(self.id, &self.maps) {
            return Err(RunError::BadInput {
                reason: "the program's maps have more values than the map table can hold".into(),
            });
        }
        let mut mem = lane.ctx_out();
        let kind = self.kind;
        let ctx = lane.helper_ctx();
        // SAFETY: this engine is documented as not sandboxed: helpers dereference the host
        // pointers the program passes, as rbpf's own helpers do; bpfvm's verifier and the
        // refusal list above are all the protection there is.
        unsafe { ctx.memory.set_host_mode() };
        let result = {
            let _guard = BridgeGuard::install(ctx, env.registry);
            // Safety net: rbpf is third-party code; a panic in it becomes a run error.
            std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| {
                self.with_vm(|vm| {
                    if kind == EngineKind::RbpfJit {
                        run_jit(vm, &mut mem)
                    } else {
                        vm.execute_program(&mut mem).map_err(|e| e.to_string())
                    }
                })
            }))
            .unwrap_or_else(|_| Err("rbpf panicked".to_string()))
        };
        let ctx = lane.helper_ctx();
        let held = ctx.end_run();
        ctx.memory.set_guest_mode();
        if let Some(source) = ctx.take_error() {
            return Err(RunError::HelperAfterRun { source });
        }
        held.map_err(|source| RunError::HeldAtExit { source })?;
        let r0 = result.map_err(|message| RunError::Rbpf {
            engine: kind,
            message,
        })?;
        lane.set_ctx(mem.len(), |b| b.copy_from_slice(&mem));
        Ok(r0)
    }
}

#[cfg(all(target_arch = "x86_64", not(windows)))]
fn run_jit(vm: &rbpf::EbpfVmRaw<'_>, mem: &mut [u8]) -> Result<u64, String> {
    // SAFETY: the program was compiled by rbpf's JIT from bytecode that passed bpfvm's and
    // rbpf's verifiers and the refusal list above. rbpf's JIT does not check memory accesses:
    // this engine is documented as not sandboxed, and that is the caller's choice.
    unsafe { vm.execute_program_jit(mem) }.map_err(|e| e.to_string())
}

#[cfg(not(all(target_arch = "x86_64", not(windows))))]
fn run_jit(_: &rbpf::EbpfVmRaw<'_>, _: &mut [u8]) -> Result<u64, String> {
    Err("the rbpf JIT is only available on x86_64, not on Windows".to_string())
}

/// The first instruction that may read `r2` before the program wrote it, if any. rbpf starts
/// programs with `r2 = 0`, not the context length bpfvm promises, so such a read would give
/// a wrong value. A forward dataflow pass: `r2` is written when every path to an instruction
/// wrote it. Helper calls are not counted as reads, and `r2` counts as written after one
/// (the calling convention clobbers `r1..=r5`; bpfvm's verifier refuses reading them after).
fn reads_r2_before_writing(raw: &[RawInsn]) -> Option<usize> {
    const R2: u8 = 2;
    let reads = |i: &RawInsn| -> bool {
        let reg_form = i.opc & ebpf::BPF_X != 0;
        match i.opc & 0x07 {
            ebpf::BPF_ALU | ebpf::BPF_ALU64 => {
                let is_mov = i.opc & 0xf0 == ebpf::BPF_MOV;
                (reg_form && i.src == R2 && i.opc & 0xf0 != ebpf::BPF_END)
                    || (i.dst == R2 && !is_mov)
            }
            ebpf::BPF_LDX => i.src == R2,
            ebpf::BPF_ST => i.dst == R2,
            ebpf::BPF_STX => i.dst == R2 || i.src == R2,
            ebpf::BPF_JMP | ebpf::BPF_JMP32 => {
                !matches!(
                    i.opc,
                    ebpf::CALL | ebpf::EXIT | ebpf::JA | 0x06 | ebpf::TAIL_CALL
                ) && (i.dst == R2 || (reg_form && i.src == R2))
            }
            _ => false,
        }
    };
    let writes = |i: &RawInsn| -> bool {
        match i.opc & 0x07 {
            ebpf::BPF_ALU | ebpf::BPF_ALU64 => i.dst == R2 && i.opc & 0xf0 == ebpf::BPF_MOV,
            ebpf::BPF_LDX => i.dst == R2,
            ebpf::BPF_LD => i.opc == ebpf::LD_DW_IMM && i.dst == R2,
            _ => false,
        }
    };
    let n = raw.len();
    // None = not reached yet; Some(w) = r2 written on every path seen so far.
    let mut written: Vec<Option<bool>> = vec![None; n];
    let mut work = vec![0usize];
    if n > 0 {
        written[0] = Some(false);
    }
    while let Some(pc) = work.pop() {
        let (i, w) = (&raw[pc], written[pc].unwrap_or(false));
        let after = w || writes(i) || i.opc == ebpf::CALL;
        let len = if i.opc == ebpf::LD_DW_IMM { 2 } else { 1 };
        let mut succ = Vec::with_capacity(2);
        match i.opc {
            ebpf::EXIT => {}
            ebpf::JA => succ.push(pc as i64 + 1 + i.off as i64),
            ebpf::CALL | ebpf::TAIL_CALL => succ.push(pc as i64 + 1),
            _ if matches!(i.opc & 0x07, ebpf::BPF_JMP | ebpf::BPF_JMP32) => {
                succ.push(pc as i64 + 1 + i.off as i64);
                succ.push(pc as i64 + 1);
            }
            _ => succ.push((pc + len) as i64),
        }
        for t in succ {
            let Ok(t) = usize::try_from(t) else { continue };
            if t >= n {
                continue;
            }
            let merged = written[t].map_or(after, |old| old && after);
            if written[t] != Some(merged) {
                written[t] = Some(merged);
                work.push(t);
            }
        }
    }
    (0..n).find(|&pc| written[pc] == Some(false) && reads(&raw[pc]))
}

#[cfg(test)]
mod r2_tests {
    use super::*;

    fn insns(code: &[(u8, u8, u8)]) -> Vec<RawInsn> {
        code.iter()
            .map(|&(opc, dst, src)| RawInsn {
                opc,
                dst,
                src,
                off: 0,
                imm: 0,
            })
            .collect()
    }

    #[test]
    fn r2_read_before_any_write_is_found() {
        // mov r0, r2; exit
        assert_eq!(
            reads_r2_before_writing(&insns(&[(0xbf, 0, 2), (0x95, 0, 0)])),
            Some(0)
        );
        // mov r2, 1; mov r0, r2; exit
        let ok = insns(&[(0xb7, 2, 0), (0xbf, 0, 2), (0x95, 0, 0)]);
        assert_eq!(reads_r2_before_writing(&ok), None);
        // jeq r3, 0, +1; mov r2, 1; mov r0, r2; exit: the write may be skipped
        let mut skipped = insns(&[(0x15, 3, 0), (0xb7, 2, 0), (0xbf, 0, 2), (0x95, 0, 0)]);
        skipped[0].off = 1;
        assert_eq!(reads_r2_before_writing(&skipped), Some(2));
        // jeq r3, 0, +0; mov r2, 1; mov r0, r2; exit: written on both paths
        skipped[0].off = 0;
        assert_eq!(reads_r2_before_writing(&skipped), None);
        // add r2, 1 reads r2
        assert_eq!(
            reads_r2_before_writing(&insns(&[(0x07, 2, 0), (0x95, 0, 0)])),
            Some(0)
        );
    }
}
