//! Callbacks: the helpers that call back into the program, `bpf_loop` (181) and
//! `bpf_for_each_map_elem` (164), run by the interpreter and `jit` engines (one
//! implementation, each engine giving its re-entry: [`Reenter`]).
//!
//! `ld_imm64` of a function (`BPF_PSEUDO_FUNC`) gives the program a handle
//! ([`func_handle`]): an address of the never-dereferenceable map-handle region that names
//! the callback's first instruction. A call of either helper ([`op::CALL_CALLBACK`]) checks
//! that its argument is the handle of one of the program's callbacks, then runs the
//! callback to its `exit` once per iteration or element by re-entering the engine
//! ([`interpreter::execute_callback`], or the jit's compiled code at the callback's first
//! instruction), as the kernel calls it:
//!
//! - in its own stack frame, one below the caller's (the kernel counts a callback as a
//!   call frame: 8 frames at most, callbacks and bpf-to-bpf calls together), with `r10`
//!   its frame and the caller's frames still reachable through pointers;
//! - with the run's instruction budget: every instruction of every call of the callback
//!   comes off it, so nested loops (8M iterations each) stop when the budget runs out;
//! - `bpf_loop(nr, cb, ctx, flags)`: `cb(i, ctx)` for `i` in `0..nr` until it returns
//!   non-zero; the number of calls made. `flags` ≠ 0 gives `-EINVAL` and `nr > 1 << 23`
//!   `-E2BIG`. Like the kernel, which inlines the call when the verifier proved `flags` 0
//!   (then `nr` is compared as 64 bits and `-E2BIG` is a 32-bit move), and calls the helper
//!   otherwise (`nr` is a `u32`): the interpreter decides which when it prepares the
//!   program, from the instruction that set `r4` before the call ([`flags_known_zero`]);
//! - `bpf_for_each_map_elem(map, cb, ctx, flags)`: `cb(map, &key, &value, ctx)` per element
//!   (arrays by index, hashes in their iteration order, this CPU's copy on per-CPU maps)
//!   until it returns non-zero; the number of elements visited. The key is a read-only
//!   copy in its own dynamic region ([`bpfvm_helpers::Memory::install_key_object`]), given
//!   back when the callback returns; the value is the element's own value object.

use bpfvm_helpers::callback::{for_each_elem, E2BIG, EINVAL, MAX_LOOPS};
use bpfvm_helpers::memory::{map_handle_index, object_addr, split_addr, REGION_MAP_HANDLES};
use bpfvm_helpers::{HelperContext, HelperError, HelperId};
use rbpf::ebpf;

use crate::cpu::{Frame, FRAME_SIZE, MAX_FRAMES, STACK_SIZE};
use crate::engine::interpreter::{self, Machine, Nest, Start};
use crate::error::{RunError, SourceAt};
use crate::insn::{op, Insn};
use bpfvm_helpers::memory::REGION_STACK;

/// The value `ld_imm64` of the function at instruction `pc` gives: object 1 of the map
/// handle region (map handles are object 0), never dereferenceable.
pub(crate) const fn func_handle(pc: u32) -> u64 {
    object_addr(REGION_MAP_HANDLES, 1, pc)
}

/// Where a callback-calling helper is called.
#[derive(Debug, Clone, Copy)]
pub(super) struct Site {
    /// The call instruction.
    pub(super) pc: usize,
    /// The helper id (181 or 164).
    pub(super) id: u32,
    /// `bpf_loop` only: its `flags` are the constant 0 (the kernel inlines the call).
    pub(super) flags_known_zero: bool,
    /// The caller's frame.
    pub(super) depth: usize,
    /// The caller's `r10`.
    pub(super) fp: u64,
}

/// How a callback runs: an engine's re-entry into the program at a callback's first
/// instruction (the interpreter's loop, or the `jit` engine's compiled code).
pub(super) trait Reenter {
    /// The first instructions of the program's callbacks, sorted.
    fn callbacks(&self) -> &[u32];
    /// The number of stack frames the run used so far.
    fn used(&mut self) -> &mut usize;
    /// Runs the callback `start` names to its `exit` (see the interpreter's `execute`):
    /// its `r0`; `nest` has the budget left and the run's tail calls, in and out.
    fn run(
        &mut self,
        ctx: &mut HelperContext,
        start: Start,
        nest: &mut Nest,
    ) -> Result<u64, Box<RunError>>;
}

/// The interpreter's re-entry.
struct Interpreted<'c, 'a> {
    code: &'c Machine<'a>,
    frames: &'c mut [Frame; MAX_FRAMES],
    used: &'c mut usize,
}

impl Reenter for Interpreted<'_, '_> {
    fn callbacks(&self) -> &[u32] {
        self.code.callbacks
    }

    fn used(&mut self) -> &mut usize {
        self.used
    }

    fn run(
        &mut self,
        ctx: &mut HelperContext,
        start: Start,
        nest: &mut Nest,
    ) -> Result<u64, Box<RunError>> {
        interpreter::execute_callback(self.code, ctx, self.frames, self.used, start, nest)
    }
}

/// Runs helper `site.id` with `args` (`r1..=r5`), re-entering the interpreter for each
/// call of the callback; returns `r0`. `nest` has the budget left, charged with every
/// instruction of the callbacks, and the run's tail calls.
pub(super) fn call(
    code: &Machine<'_>,
    ctx: &mut HelperContext,
    frames: &mut [Frame; MAX_FRAMES],
    used: &mut usize,
    site: Site,
    args: [u64; 5],
    nest: &mut Nest,
) -> Result<u64, Box<RunError>> {
    let mut engine = Interpreted { code, frames, used };
    call_with(&mut engine, ctx, site, args, nest)
}

/// [`call`] with any engine's re-entry: the one implementation of `bpf_loop` and
/// `bpf_for_each_map_elem` both engines run.
pub(super) fn call_with<R: Reenter>(
    engine: &mut R,
    ctx: &mut HelperContext,
    site: Site,
    args: [u64; 5],
    nest: &mut Nest,
) -> Result<u64, Box<RunError>> {
    let mut run = Runner { engine, nest, site };
    if site.id == HelperId::LOOP.0 {
        run.bpf_loop(ctx, args)
    } else {
        run.for_each_map_elem(ctx, args)
    }
}

/// One call of a callback-calling helper.
struct Runner<'c, R> {
    engine: &'c mut R,
    nest: &'c mut Nest,
    site: Site,
}

impl<R: Reenter> Runner<'_, R> {
    /// The first instruction of the callback `handle` names, checked.
    fn entry(&self, helper: &'static str, handle: u64) -> Result<usize, Box<RunError>> {
        let (region, object, pc) = split_addr(handle);
        let known = region == REGION_MAP_HANDLES
            && object == 1
            && self.engine.callbacks().binary_search(&pc).is_ok();
        if !known {
            return Err(Box::new(RunError::BadCallback {
                pc: self.site.pc,
                helper,
                value: handle,
                at: SourceAt::NONE,
            }));
        }
        Ok(pc as usize)
    }

    /// Opens the callbacks' frame, one below the caller's.
    fn enter(&mut self, ctx: &mut HelperContext) -> Result<(), Box<RunError>> {
        let depth = self.site.depth + 1;
        if depth >= MAX_FRAMES {
            return Err(Box::new(RunError::CallDepth {
                pc: self.site.pc,
                max: MAX_FRAMES,
                at: SourceAt::NONE,
            }));
        }
        let used = self.engine.used();
        *used = (*used).max(depth + 1);
        ctx.memory
            .set_owned_window(REGION_STACK, STACK_SIZE - (depth + 1) * FRAME_SIZE);
        Ok(())
    }

    /// Closes the callbacks' frame.
    fn leave(&mut self, ctx: &mut HelperContext) {
        ctx.memory.set_owned_window(
            REGION_STACK,
            STACK_SIZE - (self.site.depth + 1) * FRAME_SIZE,
        );
    }

    /// One call of the callback at `entry` with `args`: its `r0`.
    fn run(
        &mut self,
        ctx: &mut HelperContext,
        entry: usize,
        args: [u64; 5],
    ) -> Result<u64, Box<RunError>> {
        let start = Start {
            pc: entry,
            depth: self.site.depth + 1,
            args,
            fp: self.site.fp.wrapping_sub(FRAME_SIZE as u64),
        };
        self.engine.run(ctx, start, self.nest)
    }

    /// `bpf_loop(nr_loops, callback_fn, callback_ctx, flags)`.
    fn bpf_loop(&mut self, ctx: &mut HelperContext, args: [u64; 5]) -> Result<u64, Box<RunError>> {
        let entry = self.entry("bpf_loop", args[1])?;
        let n = if self.site.flags_known_zero {
            // Inlined by the kernel: `if (r1 > BPF_MAX_LOOPS) w0 = -E2BIG`.
            if args[0] > u64::from(MAX_LOOPS) {
                return Ok(E2BIG as u32 as u64);
            }
            args[0] as u32
        } else {
            // The helper: `u32 nr_loops`, flags checked first.
            if args[3] != 0 {
                return Ok(EINVAL);
            }
            let n = args[0] as u32;
            if n > MAX_LOOPS {
                return Ok(E2BIG);
            }
            n
        };
        if n == 0 {
            return Ok(0);
        }
        self.enter(ctx)?;
        let mut result = Ok(u64::from(n));
        for i in 0..n {
            match self.run(ctx, entry, [u64::from(i), args[2], 0, 0, 0]) {
                Ok(0) => {}
                Ok(_) => {
                    result = Ok(u64::from(i) + 1);
                    break;
                }
                Err(e) => {
                    result = Err(e);
                    break;
                }
            }
        }
        self.leave(ctx);
        result
    }

    /// `bpf_for_each_map_elem(map, callback_fn, callback_ctx, flags)`.
    fn for_each_map_elem(
        &mut self,
        ctx: &mut HelperContext,
        args: [u64; 5],
    ) -> Result<u64, Box<RunError>> {
        const NAME: &str = "bpf_for_each_map_elem";
        let pc = self.site.pc;
        let map =
            map_handle_index(args[0]).and_then(|i| Some((i, ctx.maps().get(i as usize)?.clone())));
        let Some((index, map)) = map else {
            return Err(Box::new(RunError::Helper {
                pc,
                source: HelperError::BadMap {
                    helper: NAME.into(),
                    handle: args[0],
                },
                at: SourceAt::NONE,
            }));
        };
        let entry = self.entry(NAME, args[1])?;
        if args[3] != 0 {
            return Ok(EINVAL);
        }
        self.enter(ctx)?;
        let mut failed: Option<Box<RunError>> = None;
        let cpu = ctx.cpu();
        let visited = for_each_elem(&map, cpu, &mut |key, slot| {
            let value = ctx.memory.value_addr(index, slot);
            let Some(key_addr) = ctx.memory.install_key_object(&map, key) else {
                failed = Some(Box::new(RunError::Helper {
                    pc,
                    source: HelperError::Failed {
                        helper: NAME.into(),
                        message: "no room to give the callback its key: every dynamic region holds a ring buffer record".into(),
                    },
                    at: SourceAt::NONE,
                }));
                return true;
            };
            let r = self.run(ctx, entry, [args[0], key_addr, value, args[2], 0]);
            ctx.memory.remove_object(key_addr);
            match r {
                Ok(r0) => r0 != 0,
                Err(e) => {
                    failed = Some(e);
                    true
                }
            }
        });
        self.leave(ctx);
        if let Some(e) = failed {
            return Err(e);
        }
        // A map the kernel has no `for_each` for: its verifier refuses the program.
        Ok(visited.map_or(EINVAL, u64::from))
    }
}

/// Which instructions start a straight-line stretch: jump targets and the instruction
/// after each jump (index = instruction).
pub(super) fn block_starts(insns: &[Insn]) -> Vec<bool> {
    let mut starts = vec![false; insns.len() + 1];
    for (pc, d) in insns.iter().enumerate() {
        let class = d.op & 0x07;
        let is_jump = matches!(class, ebpf::BPF_JMP | ebpf::BPF_JMP32)
            && !matches!(d.op, ebpf::CALL | ebpf::TAIL_CALL)
            || d.op == op::CALL_LOCAL;
        if is_jump {
            if let Some(t) = starts.get_mut(d.target as usize) {
                *t = true;
            }
            starts[pc + 1] = true;
        }
    }
    starts
}

/// Whether `r4` is the constant 0 at the call at `pc` on every path: the instruction that
/// last wrote it in the call's straight-line stretch is `r4 = 0` (how compilers pass
/// `flags`). The kernel inlines `bpf_loop` exactly when its verifier proved that.
pub(super) fn flags_known_zero(insns: &[Insn], starts: &[bool], pc: usize) -> bool {
    let mut i = pc;
    while i > 0 && !starts[i] {
        i -= 1;
        let d = &insns[i];
        if d.op == op::LD_IMM64_TAIL {
            continue;
        }
        let writes_r4 = d.dst == 4
            && !matches!(
                d.op & 0x07,
                ebpf::BPF_JMP | ebpf::BPF_JMP32 | ebpf::BPF_ST | ebpf::BPF_STX
            );
        let clobbers = matches!(
            d.op,
            ebpf::CALL
                | op::CALL_LOCAL
                | op::CALL_HELPER
                | op::CALL_HELPER_DYN
                | op::CALL_CALLBACK
                | op::GET_SMP_PROCESSOR_ID
        );
        if clobbers {
            return false;
        }
        if d.op & 0x07 == ebpf::BPF_STX && d.src == 4 && d.imm & 1 != 0 {
            // An atomic fetch into r4.
            return false;
        }
        if writes_r4 {
            return matches!(d.op, ebpf::MOV64_IMM | ebpf::MOV32_IMM | ebpf::LD_DW_IMM)
                && d.imm == 0;
        }
    }
    false
}

#[cfg(test)]
mod tests {
    use super::*;

    fn decode(src: &str) -> Vec<Insn> {
        let code = rbpf::assembler::assemble(src).unwrap();
        let raw = crate::verify::raw_insns(&code).unwrap();
        crate::verify::decode(
            &raw,
            crate::verify::Env {
                maps: &[],
                helper_known: &|_| true,
            },
        )
        .unwrap()
    }

    #[test]
    fn flags_are_known_zero_only_from_a_move_of_zero_in_the_same_stretch() {
        let zero = decode("mov64 r1, 3\nmov64 r4, 0\nmov64 r3, 0\ncall 181\nexit");
        assert!(flags_known_zero(&zero, &block_starts(&zero), 3));
        let one = decode("mov64 r4, 1\ncall 181\nexit");
        assert!(!flags_known_zero(&one, &block_starts(&one), 1));
        let loaded = decode("ldxdw r4, [r1]\ncall 181\nexit");
        assert!(!flags_known_zero(&loaded, &block_starts(&loaded), 1));
        // A jump lands between the move and the call: another path may set r4.
        let joined = decode("mov64 r4, 0\njeq r1, 0, +1\nmov64 r4, 2\ncall 181\nexit");
        assert!(!flags_known_zero(&joined, &block_starts(&joined), 3));
        let unset = decode("call 181\nexit");
        assert!(!flags_known_zero(&unset, &block_starts(&unset), 0));
    }

    #[test]
    fn handles_name_instructions_and_no_map() {
        assert_eq!(split_addr(func_handle(7)), (REGION_MAP_HANDLES, 1, 7));
        assert_eq!(map_handle_index(func_handle(7)), None);
    }
}
