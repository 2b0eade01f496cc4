//! Compiles pre-decoded instructions (the interpreter's [`Insn`]s) into one cranelift
//! function with the interpreter's semantics (see the engine's module documentation).
//!
//! Registers `r0..=r10`, the budget credit, the call depth and the region table's address
//! are cranelift variables. Every straight-line stretch is one block; a taken jump goes
//! through the interpreter's budget test. Loads and stores check the region table inline
//! and call [`rt::load`] / [`rt::store`] for what the inline test does not grant. Frames of
//! bpf-to-bpf calls (saved `r6..=r10` and the return site) live in a stack slot of the
//! compiled function; `exit` from a callee returns through a jump table of return sites.

use cranelift_codegen::ir::condcodes::IntCC;
use cranelift_codegen::ir::types::{I16, I32, I64, I8};
use cranelift_codegen::ir::{
    AbiParam, Block, BlockCall, InstBuilder, JumpTableData, MemFlags, SigRef, Signature, StackSlot,
    StackSlotData, StackSlotKind, Type, Value,
};
use cranelift_codegen::isa::CallConv;
use cranelift_codegen::settings::{self, Configurable};
use cranelift_frontend::{FunctionBuilder, FunctionBuilderContext, Variable};
use cranelift_jit::{JITBuilder, JITModule};
use cranelift_module::{default_libcall_names, Linkage, Module};
use rbpf::ebpf;

use super::code::Code;
use super::rt::{self, offsets};
use crate::cpu::{FRAME_SIZE, MAX_FRAMES};
use crate::engine::EngineKind;
use crate::error::PrepareError;
use crate::insn::{op, Insn, MAX_LOOPS, MAY_GOTO};

mod calls;
mod frame;
mod mem;
mod probe;

/// An ALU operation.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Alu {
    Add,
    Sub,
    Mul,
    Div,
    Mod,
    Or,
    And,
    Xor,
    Lsh,
    Rsh,
    Arsh,
    SDiv,
    SMod,
    Mov,
}

/// `(operation, 32-bit, source is a register)` of an ALU opcode with two operands.
fn alu_of(opcode: u8) -> Option<(Alu, bool, bool)> {
    use Alu::*;
    Some(match opcode {
        ebpf::ADD64_IMM => (Add, false, false),
        ebpf::ADD64_REG => (Add, false, true),
        ebpf::SUB64_IMM => (Sub, false, false),
        ebpf::SUB64_REG => (Sub, false, true),
        ebpf::MUL64_IMM => (Mul, false, false),
        ebpf::MUL64_REG => (Mul, false, true),
        ebpf::DIV64_IMM => (Div, false, false),
        ebpf::DIV64_REG => (Div, false, true),
        ebpf::MOD64_IMM => (Mod, false, false),
        ebpf::MOD64_REG => (Mod, false, true),
        ebpf::OR64_IMM => (Or, false, false),
        ebpf::OR64_REG => (Or, false, true),
        ebpf::AND64_IMM => (And, false, false),
        ebpf::AND64_REG => (And, false, true),
        ebpf::XOR64_IMM => (Xor, false, false),
        ebpf::XOR64_REG => (Xor, false, true),
        ebpf::LSH64_IMM => (Lsh, false, false),
        ebpf::LSH64_REG => (Lsh, false, true),
        ebpf::RSH64_IMM => (Rsh, false, false),
        ebpf::RSH64_REG => (Rsh, false, true),
        ebpf::ARSH64_IMM => (Arsh, false, false),
        ebpf::ARSH64_REG => (Arsh, false, true),
        ebpf::MOV64_IMM => (Mov, false, false),
        ebpf::MOV64_REG => (Mov, false, true),
        op::SDIV64_IMM => (SDiv, false, false),
        op::SDIV64_REG => (SDiv, false, true),
        op::SMOD64_IMM => (SMod, false, false),
        op::SMOD64_REG => (SMod, false, true),
        ebpf::ADD32_IMM => (Add, true, false),
        ebpf::ADD32_REG => (Add, true, true),
        ebpf::SUB32_IMM => (Sub, true, false),
        ebpf::SUB32_REG => (Sub, true, true),
        ebpf::MUL32_IMM => (Mul, true, false),
        ebpf::MUL32_REG => (Mul, true, true),
        ebpf::DIV32_IMM => (Div, true, false),
        ebpf::DIV32_REG => (Div, true, true),
        ebpf::MOD32_IMM => (Mod, true, false),
        ebpf::MOD32_REG => (Mod, true, true),
        ebpf::OR32_IMM => (Or, true, false),
        ebpf::OR32_REG => (Or, true, true),
        ebpf::AND32_IMM => (And, true, false),
        ebpf::AND32_REG => (And, true, true),
        ebpf::XOR32_IMM => (Xor, true, false),
        ebpf::XOR32_REG => (Xor, true, true),
        ebpf::LSH32_IMM => (Lsh, true, false),
        ebpf::LSH32_REG => (Lsh, true, true),
        ebpf::RSH32_IMM => (Rsh, true, false),
        ebpf::RSH32_REG => (Rsh, true, true),
        ebpf::ARSH32_IMM => (Arsh, true, false),
        ebpf::ARSH32_REG => (Arsh, true, true),
        ebpf::MOV32_IMM => (Mov, true, false),
        ebpf::MOV32_REG => (Mov, true, true),
        op::SDIV32_IMM => (SDiv, true, false),
        op::SDIV32_REG => (SDiv, true, true),
        op::SMOD32_IMM => (SMod, true, false),
        op::SMOD32_REG => (SMod, true, true),
        _ => return None,
    })
}

/// A jump condition.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Cond {
    Cmp(IntCC),
    Set,
}

/// `(condition, 32-bit, source is a register)` of a conditional jump.
fn jump_of(opcode: u8) -> Option<(Cond, bool, bool)> {
    use Cond::*;
    use IntCC::*;
    Some(match opcode {
        ebpf::JEQ_IMM => (Cmp(Equal), false, false),
        ebpf::JEQ_REG => (Cmp(Equal), false, true),
        ebpf::JGT_IMM => (Cmp(UnsignedGreaterThan), false, false),
        ebpf::JGT_REG => (Cmp(UnsignedGreaterThan), false, true),
        ebpf::JGE_IMM => (Cmp(UnsignedGreaterThanOrEqual), false, false),
        ebpf::JGE_REG => (Cmp(UnsignedGreaterThanOrEqual), false, true),
        ebpf::JLT_IMM => (Cmp(UnsignedLessThan), false, false),
        ebpf::JLT_REG => (Cmp(UnsignedLessThan), false, true),
        ebpf::JLE_IMM => (Cmp(UnsignedLessThanOrEqual), false, false),
        ebpf::JLE_REG => (Cmp(UnsignedLessThanOrEqual), false, true),
        ebpf::JSET_IMM => (Set, false, false),
        ebpf::JSET_REG => (Set, false, true),
        ebpf::JNE_IMM => (Cmp(NotEqual), false, false),
        ebpf::JNE_REG => (Cmp(NotEqual), false, true),
        ebpf::JSGT_IMM => (Cmp(SignedGreaterThan), false, false),
        ebpf::JSGT_REG => (Cmp(SignedGreaterThan), false, true),
        ebpf::JSGE_IMM => (Cmp(SignedGreaterThanOrEqual), false, false),
        ebpf::JSGE_REG => (Cmp(SignedGreaterThanOrEqual), false, true),
        ebpf::JSLT_IMM => (Cmp(SignedLessThan), false, false),
        ebpf::JSLT_REG => (Cmp(SignedLessThan), false, true),
        ebpf::JSLE_IMM => (Cmp(SignedLessThanOrEqual), false, false),
        ebpf::JSLE_REG => (Cmp(SignedLessThanOrEqual), false, true),
        ebpf::JEQ_IMM32 => (Cmp(Equal), true, false),
        ebpf::JEQ_REG32 => (Cmp(Equal), true, true),
        ebpf::JGT_IMM32 => (Cmp(UnsignedGreaterThan), true, false),
        ebpf::JGT_REG32 => (Cmp(UnsignedGreaterThan), true, true),
        ebpf::JGE_IMM32 => (Cmp(UnsignedGreaterThanOrEqual), true, false),
        ebpf::JGE_REG32 => (Cmp(UnsignedGreaterThanOrEqual), true, true),
        ebpf::JLT_IMM32 => (Cmp(UnsignedLessThan), true, false),
        ebpf::JLT_REG32 => (Cmp(UnsignedLessThan), true, true),
        ebpf::JLE_IMM32 => (Cmp(UnsignedLessThanOrEqual), true, false),
        ebpf::JLE_REG32 => (Cmp(UnsignedLessThanOrEqual), true, true),
        ebpf::JSET_IMM32 => (Set, true, false),
        ebpf::JSET_REG32 => (Set, true, true),
        ebpf::JNE_IMM32 => (Cmp(NotEqual), true, false),
        ebpf::JNE_REG32 => (Cmp(NotEqual), true, true),
        ebpf::JSGT_IMM32 => (Cmp(SignedGreaterThan), true, false),
        ebpf::JSGT_REG32 => (Cmp(SignedGreaterThan), true, true),
        ebpf::JSGE_IMM32 => (Cmp(SignedGreaterThanOrEqual), true, false),
        ebpf::JSGE_REG32 => (Cmp(SignedGreaterThanOrEqual), true, true),
        ebpf::JSLT_IMM32 => (Cmp(SignedLessThan), true, false),
        ebpf::JSLT_REG32 => (Cmp(SignedLessThan), true, true),
        ebpf::JSLE_IMM32 => (Cmp(SignedLessThanOrEqual), true, false),
        ebpf::JSLE_REG32 => (Cmp(SignedLessThanOrEqual), true, true),
        _ => return None,
    })
}

/// `(bytes, sign-extended)` of a load.
fn load_of(opcode: u8) -> Option<(u8, bool)> {
    Some(match opcode {
        ebpf::LD_B_REG => (1, false),
        ebpf::LD_H_REG => (2, false),
        ebpf::LD_W_REG => (4, false),
        ebpf::LD_DW_REG => (8, false),
        0x91 => (1, true),
        0x89 => (2, true),
        0x81 => (4, true),
        _ => return None,
    })
}

/// `(bytes, value is a register)` of a store.
fn store_of(opcode: u8) -> Option<(u8, bool)> {
    Some(match opcode {
        ebpf::ST_B_IMM => (1, false),
        ebpf::ST_H_IMM => (2, false),
        ebpf::ST_W_IMM => (4, false),
        ebpf::ST_DW_IMM => (8, false),
        ebpf::ST_B_REG => (1, true),
        ebpf::ST_H_REG => (2, true),
        ebpf::ST_W_REG => (4, true),
        ebpf::ST_DW_REG => (8, true),
        _ => return None,
    })
}

/// Whether `d` is an instruction the compiler knows.
fn known(d: &Insn) -> bool {
    alu_of(d.op).is_some()
        || jump_of(d.op).is_some()
        || load_of(d.op).is_some()
        || store_of(d.op).is_some()
        || probe::probe_load_of(d.op).is_some()
        || matches!(
            d.op,
            ebpf::NEG64
                | ebpf::NEG32
                | op::MOVSX64
                | op::MOVSX32
                | ebpf::LE
                | ebpf::BE
                | 0xd7
                | ebpf::LD_DW_IMM
                | op::LD_IMM64_TAIL
                | ebpf::ST_W_XADD
                | ebpf::ST_DW_XADD
                | ebpf::JA
                | MAY_GOTO
                | op::CALL_HELPER
                | op::CALL_HELPER_DYN
                | op::GET_SMP_PROCESSOR_ID
                | op::CORE_POISON
                | ebpf::TAIL_CALL
                | op::CALL_LOCAL
                | op::TAIL_CALL_HELPER
                | op::CALL_CALLBACK
                | ebpf::EXIT
        )
}

/// The budget credit (the interpreter's `credit`).
fn credit_var() -> Variable {
    Variable::from_u32(11)
}

/// The call depth (0: the main frame).
fn depth_var() -> Variable {
    Variable::from_u32(12)
}

/// The region table's address.
fn fast_var() -> Variable {
    Variable::from_u32(13)
}

/// The frame the execution started in (0, or a callback's or a tail call target's): its
/// `exit` returns from the compiled function.
fn base_var() -> Variable {
    Variable::from_u32(14)
}

/// The host address of the running frame's pointer `r10` (`frame.rs`).
fn frame_var() -> Variable {
    Variable::from_u32(15)
}

fn reg(r: u8) -> Variable {
    Variable::from_u32(u32::from(r))
}

/// Bytes of a saved frame: `r6..=r10`, the return pc and its return site's index.
const FRAME_BYTES: u32 = 7 * 8;

fn compile_error(message: impl std::fmt::Display) -> PrepareError {
    PrepareError::Jit {
        message: message.to_string(),
    }
}

/// Compiles `insns` (a program prepared for the interpreter) whose callbacks start at
/// `callbacks` into native code, entered at instruction 0 or any of `callbacks`.
pub(super) fn compile(insns: &[Insn], callbacks: &[u32]) -> Result<Code, PrepareError> {
    for (pc, d) in insns.iter().enumerate() {
        if !known(d) {
            return Err(PrepareError::Unsupported {
                pc,
                engine: EngineKind::Jit,
                what: "this opcode",
            });
        }
    }
    let mut flags = settings::builder();
    for (k, v) in [
        ("opt_level", opt_level(insns.len())),
        ("is_pic", "false"),
        // Cranelift's IR verifier costs as much as the rest of the compile; debug builds
        // (the tests) keep it, on every program they compile.
        (
            "enable_verifier",
            if cfg!(debug_assertions) {
                "true"
            } else {
                "false"
            },
        ),
    ] {
        flags.set(k, v).map_err(compile_error)?;
    }
    let isa = cranelift_native::builder()
        .map_err(compile_error)?
        .finish(settings::Flags::new(flags))
        .map_err(compile_error)?;
    let call_conv = isa.default_call_conv();
    let mut module = JITModule::new(JITBuilder::with_isa(isa, default_libcall_names()));
    let mut ctx = module.make_context();
    ctx.func.signature = signature(call_conv, 11, true);
    let id = module
        .declare_function("bpf_program", Linkage::Local, &ctx.func.signature)
        .map_err(compile_error)?;
    let mut fctx = FunctionBuilderContext::new();
    {
        let b = FunctionBuilder::new(&mut ctx.func, &mut fctx);
        Gen::new(b, insns, callbacks, call_conv).program();
    }
    module
        .define_function(id, &mut ctx)
        .map_err(compile_error)?;
    module.clear_context(&mut ctx);
    module.finalize_definitions().map_err(compile_error)?;
    let entry = module.get_finalized_function(id);
    // SAFETY: `entry` is the finalized function `Gen::program` built, with the signature of
    // `code::Entry` (`signature(call_conv, 11, true)`, the host's C convention).
    Ok(unsafe_new(module, entry))
}

/// Programs longer than this compile at cranelift's `opt_level = none`.
pub(super) const LARGE_PROGRAM: usize = 10_000;

/// Cranelift's optimization level for a program of `len` instructions: `speed`, but
/// `none` for a large program, where the optimizer's time (a third of the compile) matters
/// more than the speed it gains.
fn opt_level(len: usize) -> &'static str {
    if len > LARGE_PROGRAM {
        "none"
    } else {
        "speed"
    }
}

#[allow(unsafe_code)]
fn unsafe_new(module: JITModule, entry: *const u8) -> Code {
    // SAFETY: see the caller: the function `compile` built and finalized in `module`.
    unsafe { Code::new(module, entry) }
}

/// A signature of `params` 64-bit parameters (and a 64-bit result if `ret`).
fn signature(call_conv: CallConv, params: usize, ret: bool) -> Signature {
    let mut s = Signature::new(call_conv);
    s.params.extend((0..params).map(|_| AbiParam::new(I64)));
    if ret {
        s.returns.push(AbiParam::new(I64));
    }
    s
}

/// The code generator of one program.
struct Gen<'a> {
    b: FunctionBuilder<'a>,
    insns: &'a [Insn],
    /// The first instructions of the callbacks (entries besides instruction 0).
    callbacks: &'a [u32],
    /// The instruction the execution starts at (a parameter).
    start: Value,
    call_conv: CallConv,
    /// The block of each instruction that starts a stretch.
    blocks: Vec<Option<Block>>,
    env: Value,
    /// The block every failure ends in (returns; `env.status` says why).
    fail: Block,
    frames: Option<StackSlot>,
    loops: Option<StackSlot>,
    /// Return sites of bpf-to-bpf calls (the instruction after each call).
    returns: Vec<usize>,
    /// Whether the program has bpf-to-bpf calls.
    calls: bool,
    /// Whether accesses in the running frame go unchecked (`frame.rs`).
    frame: bool,
    /// The trampoline signatures imported so far, by (parameters, result).
    sigs: Vec<((usize, bool), SigRef)>,
    /// The memory checks' values the current stretch can reuse (`mem.rs`).
    mem: mem::Cache,
}

impl<'a> Gen<'a> {
    fn new(
        mut b: FunctionBuilder<'a>,
        insns: &'a [Insn],
        callbacks: &'a [u32],
        call_conv: CallConv,
    ) -> Gen<'a> {
        let mut leaders = vec![false; insns.len() + 1];
        leaders[0] = true;
        let mut returns = Vec::new();
        for (pc, d) in insns.iter().enumerate() {
            let is_jump = jump_of(d.op).is_some() || d.op == MAY_GOTO;
            if is_jump || d.op == ebpf::JA || d.op == op::CALL_LOCAL {
                if let Some(l) = leaders.get_mut(d.target as usize) {
                    *l = true;
                }
            }
            if is_jump || d.op == op::CALL_LOCAL || d.op == ebpf::JA || d.op == ebpf::EXIT {
                leaders[pc + 1] = true;
            }
            if d.op == op::CALL_LOCAL {
                returns.push(pc + 1);
            }
        }
        for &entry in callbacks {
            if let Some(l) = leaders.get_mut(entry as usize) {
                *l = true;
            }
        }
        leaders.truncate(insns.len());
        let blocks = leaders
            .iter()
            .map(|&l| l.then(|| b.create_block()))
            .collect();
        let calls = !returns.is_empty();
        let frames = calls.then(|| {
            b.create_sized_stack_slot(StackSlotData::new(
                StackSlotKind::ExplicitSlot,
                FRAME_BYTES * MAX_FRAMES as u32,
                3,
            ))
        });
        let loops = insns.iter().any(|d| d.op == MAY_GOTO).then(|| {
            b.create_sized_stack_slot(StackSlotData::new(
                StackSlotKind::ExplicitSlot,
                4 * MAX_FRAMES as u32,
                2,
            ))
        });
        let entry = b.create_block();
        b.append_block_params_for_function_params(entry);
        b.switch_to_block(entry);
        b.seal_block(entry);
        let params = b.block_params(entry).to_vec();
        for v in 0..16 {
            b.declare_var(Variable::from_u32(v), I64);
        }
        let zero = b.ins().iconst(I64, 0);
        for r in 0..=10u8 {
            b.def_var(reg(r), zero);
        }
        // (env, region table, r1..=r5, r10, credit, first instruction, frame)
        b.def_var(fast_var(), params[1]);
        for r in 1..=5u8 {
            b.def_var(reg(r), params[1 + usize::from(r)]);
        }
        b.def_var(reg(10), params[7]);
        b.def_var(credit_var(), params[8]);
        b.def_var(depth_var(), params[10]);
        b.def_var(base_var(), params[10]);
        if let Some(slot) = loops {
            let n = b.ins().iconst(I32, i64::from(MAX_LOOPS));
            for f in 0..MAX_FRAMES as i32 {
                b.ins().stack_store(n, slot, 4 * f);
            }
        }
        let fail = b.create_block();
        b.set_cold_block(fail);
        Gen {
            b,
            insns,
            callbacks,
            start: params[9],
            call_conv,
            blocks,
            env: params[0],
            fail,
            frames,
            loops,
            returns,
            calls,
            frame: frame::frame_fixed(insns) && frame::frame_accesses(insns),
            sigs: Vec::new(),
            mem: mem::Cache::default(),
        }
    }

    /// Generates the whole function.
    fn program(mut self) {
        self.locate_frame();
        self.enter();
        // Whether the current block has ended (with a jump or return).
        let mut ended = true;
        let mut pc = 0;
        while pc < self.insns.len() {
            if let Some(block) = self.blocks[pc] {
                if !ended {
                    self.b.ins().jump(block, &[]);
                }
                self.b.switch_to_block(block);
            } else if ended {
                // Unreachable: no stretch starts here.
                pc += 1;
                continue;
            }
            let d = self.insns[pc];
            ended = self.insn(pc, &d);
            pc += if d.op == ebpf::LD_DW_IMM { 2 } else { 1 };
        }
        if !ended {
            // Falling off the end (the verifier refuses it).
            self.invalid(self.insns.len());
        }
        self.b.switch_to_block(self.fail);
        let zero = self.b.ins().iconst(I64, 0);
        self.b.ins().return_(&[zero]);
        self.b.seal_all_blocks();
        self.b.finalize();
    }

    fn get(&mut self, r: u8) -> Value {
        self.b.use_var(reg(r))
    }

    fn set(&mut self, r: u8, v: Value) {
        self.b.def_var(reg(r), v);
    }

    fn iconst(&mut self, v: u64) -> Value {
        self.b.ins().iconst(I64, v as i64)
    }

    /// Calls trampoline `f` with `args`; its result if `ret`.
    fn call(&mut self, f: *const (), args: &[Value], ret: bool) -> Option<Value> {
        let key = (args.len(), ret);
        let sig = match self.sigs.iter().find(|(k, _)| *k == key) {
            Some(&(_, sig)) => sig,
            None => {
                let sig = self
                    .b
                    .import_signature(signature(self.call_conv, args.len(), ret));
                self.sigs.push((key, sig));
                sig
            }
        };
        let callee = self.b.ins().iconst(I64, f as usize as i64);
        let inst = self.b.ins().call_indirect(sig, callee, args);
        self.b.inst_results(inst).first().copied()
    }

    /// Ends the run at `pc` with the error of an instruction without implementation.
    fn invalid(&mut self, pc: usize) {
        let env = self.env;
        let pc_v = self.iconst(pc as u64);
        self.call(rt::invalid as *const (), &[env, pc_v], false);
        self.b.ins().jump(self.fail, &[]);
    }

    /// If `cond` is true, calls the error trampoline `report` with the instruction `pc` (in
    /// a cold block) and leaves for [`Gen::fail`]; otherwise goes on.
    fn fail_if(&mut self, cond: Value, report: *const (), pc: usize) {
        let out = self.b.create_block();
        self.b.set_cold_block(out);
        let ok = self.b.create_block();
        self.b.ins().brif(cond, out, &[], ok, &[]);
        self.b.seal_block(out);
        self.b.seal_block(ok);
        self.b.switch_to_block(out);
        let env = self.env;
        let pc_v = self.iconst(pc as u64);
        self.call(report, &[env, pc_v], false);
        self.b.ins().jump(self.fail, &[]);
        self.b.switch_to_block(ok);
    }

    /// Leaves for [`Gen::fail`] if a trampoline failed.
    fn check_status(&mut self) {
        let status = self
            .b
            .ins()
            .load(I64, MemFlags::trusted(), self.env, offsets::STATUS);
        let cont = self.b.create_block();
        self.b.ins().brif(status, self.fail, &[], cont, &[]);
        self.b.seal_block(cont);
        self.b.switch_to_block(cont);
    }

    /// Reads the region table's address again (after code that may have replaced it).
    fn reload_fast(&mut self) {
        let fast = self
            .b
            .ins()
            .load(I64, MemFlags::trusted(), self.env, offsets::FAST);
        self.b.def_var(fast_var(), fast);
        self.mem.clear();
    }

    /// [`Gen::reload_fast`], then [`Gen::locate_frame`] (after code that may have changed
    /// the table with `r10` unchanged).
    fn reload_tables(&mut self) {
        self.reload_fast();
        self.locate_frame();
    }

    /// The interpreter's `transfer!(here, target)`: charges the stretch ending at `here`
    /// (or ends the run), sets the credit for a stretch starting at `target` (`target_pc`)
    /// and jumps to `dest`.
    fn transfer(&mut self, here: usize, target_pc: Value, dest: Option<Block>) {
        let end = here as i64 + 1;
        let credit = self.b.use_var(credit_var());
        let short = self.b.ins().icmp_imm(IntCC::UnsignedLessThan, credit, end);
        self.fail_if(short, rt::budget_exhausted as *const (), here);
        let left = self.b.ins().iadd_imm(credit, -end);
        let credit = self.b.ins().iadd(left, target_pc);
        self.b.def_var(credit_var(), credit);
        if let Some(dest) = dest {
            self.b.ins().jump(dest, &[]);
        }
    }

    /// [`Gen::transfer`] to instruction `target`.
    fn transfer_to(&mut self, here: usize, target: usize) {
        let t = self.iconst(target as u64);
        let dest = self.blocks.get(target).copied().flatten();
        match dest {
            Some(dest) => self.transfer(here, t, Some(dest)),
            None => {
                // Only for a target the verifier refuses (past the end): the run fails
                // there, after the budget test, as the interpreter's would.
                self.transfer(here, t, None);
                self.invalid(target);
            }
        }
    }

    /// The result of ALU operation `o` on `a` and `b` (both of the operation's width).
    fn alu(&mut self, o: Alu, a: Value, b: Value, ty: Type) -> Value {
        let i = self.b.ins();
        match o {
            Alu::Add => i.iadd(a, b),
            Alu::Sub => i.isub(a, b),
            Alu::Mul => i.imul(a, b),
            Alu::Or => i.bor(a, b),
            Alu::And => i.band(a, b),
            Alu::Xor => i.bxor(a, b),
            Alu::Lsh => i.ishl(a, b),
            Alu::Rsh => i.ushr(a, b),
            Alu::Arsh => i.sshr(a, b),
            Alu::Mov => b,
            Alu::Div | Alu::Mod | Alu::SDiv | Alu::SMod => {
                let zero = self.b.ins().iconst(ty, 0);
                let one = self.b.ins().iconst(ty, 1);
                let is_zero = self.b.ins().icmp_imm(IntCC::Equal, b, 0);
                match o {
                    Alu::Div => {
                        let d = self.b.ins().select(is_zero, one, b);
                        let q = self.b.ins().udiv(a, d);
                        self.b.ins().select(is_zero, zero, q)
                    }
                    Alu::Mod => {
                        let d = self.b.ins().select(is_zero, one, b);
                        let r = self.b.ins().urem(a, d);
                        self.b.ins().select(is_zero, a, r)
                    }
                    _ => {
                        let is_m1 = self.b.ins().icmp_imm(IntCC::Equal, b, -1);
                        let bad = self.b.ins().bor(is_zero, is_m1);
                        let d = self.b.ins().select(bad, one, b);
                        if o == Alu::SDiv {
                            let q = self.b.ins().sdiv(a, d);
                            let neg = self.b.ins().ineg(a);
                            let q = self.b.ins().select(is_m1, neg, q);
                            self.b.ins().select(is_zero, zero, q)
                        } else {
                            let r = self.b.ins().srem(a, d);
                            let r = self.b.ins().select(is_m1, zero, r);
                            self.b.ins().select(is_zero, a, r)
                        }
                    }
                }
            }
        }
    }

    /// Calls a helper trampoline `f(env, first, pc, credit, r1..=r5)`; `r0` = its result.
    fn helper(&mut self, f: *const (), first: Value, pc: usize) {
        let env = self.env;
        let pc_v = self.iconst(pc as u64);
        let credit = self.b.use_var(credit_var());
        let mut args = vec![env, first, pc_v, credit];
        for r in 1..=5 {
            args.push(self.get(r));
        }
        let r0 = self.call(f, &args, true).expect("helpers return r0");
        self.check_status();
        self.set(0, r0);
        let credit = self
            .b
            .ins()
            .load(I64, MemFlags::trusted(), self.env, offsets::CREDIT);
        self.b.def_var(credit_var(), credit);
        self.reload_tables();
    }

    /// Makes frame `depth` the innermost (the stack window; see [`rt::enter_frame`]).
    fn enter_frame(&mut self, depth: Value) {
        let env = self.env;
        self.call(rt::enter_frame as *const (), &[env, depth], false);
        self.reload_fast();
    }

    /// The address of saved frame `depth` in the frames slot.
    fn frame_addr(&mut self, depth: Value) -> Value {
        let slot = self.frames.expect("a program with calls has frames");
        let base = self.b.ins().stack_addr(I64, slot, 0);
        let off = self.b.ins().imul_imm(depth, i64::from(FRAME_BYTES));
        self.b.ins().iadd(base, off)
    }

    /// Generates instruction `d` at `pc`; true if it ended the block.
    fn insn(&mut self, pc: usize, d: &Insn) -> bool {
        let imm = d.imm;
        if let Some((o, w32, by_reg)) = alu_of(d.op) {
            let a = self.get(d.dst);
            let b = if by_reg {
                self.get(d.src)
            } else {
                self.iconst(imm)
            };
            let v = if w32 {
                let a = self.b.ins().ireduce(I32, a);
                let b = self.b.ins().ireduce(I32, b);
                let v = self.alu(o, a, b, I32);
                self.b.ins().uextend(I64, v)
            } else {
                self.alu(o, a, b, I64)
            };
            self.set(d.dst, v);
            return false;
        }
        if let Some((cond, w32, by_reg)) = jump_of(d.op) {
            let mut a = self.get(d.dst);
            let mut b = if by_reg {
                self.get(d.src)
            } else {
                self.iconst(imm)
            };
            if w32 {
                a = self.b.ins().ireduce(I32, a);
                b = self.b.ins().ireduce(I32, b);
            }
            let c = match cond {
                Cond::Cmp(cc) => self.b.ins().icmp(cc, a, b),
                Cond::Set => {
                    let m = self.b.ins().band(a, b);
                    self.b.ins().icmp_imm(IntCC::NotEqual, m, 0)
                }
            };
            let taken = self.b.create_block();
            let next = self.blocks[pc + 1].expect("a jump is followed by a stretch");
            self.b.ins().brif(c, taken, &[], next, &[]);
            self.b.seal_block(taken);
            self.b.switch_to_block(taken);
            self.transfer_to(pc, d.target as usize);
            return true;
        }
        if let Some((size, signed)) = load_of(d.op) {
            let off = d.mem_off() as i32;
            let v = if self.on_frame(d.src, off, size) {
                self.frame_load(off, size, signed)
            } else {
                let base = self.get(d.src);
                self.load(pc, base, off, size, signed)
            };
            self.set(d.dst, v);
            return false;
        }
        if let Some((size, signed)) = probe::probe_load_of(d.op) {
            let base = self.get(d.src);
            let v = self.probe_load(pc, base, d.mem_off() as i32, size, signed);
            self.set(d.dst, v);
            return false;
        }
        if let Some((size, by_reg)) = store_of(d.op) {
            let v = if by_reg {
                self.get(d.src)
            } else {
                self.iconst(imm)
            };
            let off = d.mem_off() as i32;
            if self.on_frame(d.dst, off, size) {
                self.frame_store(off, size, v);
            } else {
                let base = self.get(d.dst);
                self.store(pc, base, off, size, v);
            }
            return false;
        }
        match d.op {
            ebpf::NEG64 => {
                let a = self.get(d.dst);
                let v = self.b.ins().ineg(a);
                self.set(d.dst, v);
            }
            ebpf::NEG32 => {
                let a = self.get(d.dst);
                let a = self.b.ins().ireduce(I32, a);
                let v = self.b.ins().ineg(a);
                let v = self.b.ins().uextend(I64, v);
                self.set(d.dst, v);
            }
            op::MOVSX64 => {
                let a = self.get(d.src);
                let ty = match d.off() {
                    8 => I8,
                    16 => I16,
                    _ => I32,
                };
                let n = self.b.ins().ireduce(ty, a);
                let v = self.b.ins().sextend(I64, n);
                self.set(d.dst, v);
            }
            op::MOVSX32 => {
                let a = self.get(d.src);
                let ty = if d.off() == 8 { I8 } else { I16 };
                let n = self.b.ins().ireduce(ty, a);
                let v = self.b.ins().sextend(I32, n);
                let v = self.b.ins().uextend(I64, v);
                self.set(d.dst, v);
            }
            ebpf::LE => {
                let a = self.get(d.dst);
                let v = match imm {
                    16 => self.b.ins().band_imm(a, 0xffff),
                    32 => {
                        let n = self.b.ins().ireduce(I32, a);
                        self.b.ins().uextend(I64, n)
                    }
                    _ => a,
                };
                self.set(d.dst, v);
            }
            ebpf::BE | 0xd7 => {
                let a = self.get(d.dst);
                let v = match imm {
                    16 | 32 => {
                        let n = self.b.ins().ireduce(int_type(imm as u8 / 8), a);
                        let s = self.b.ins().bswap(n);
                        self.b.ins().uextend(I64, s)
                    }
                    _ => self.b.ins().bswap(a),
                };
                self.set(d.dst, v);
            }
            ebpf::LD_DW_IMM => {
                let v = self.iconst(imm);
                self.set(d.dst, v);
            }
            op::LD_IMM64_TAIL => {}
            ebpf::ST_W_XADD | ebpf::ST_DW_XADD => {
                let size = if d.op == ebpf::ST_W_XADD { 4 } else { 8 };
                let old = self.atomic(pc, d, size);
                match imm as u32 {
                    0x00 | 0x40 | 0x50 | 0xa0 => {}
                    0x01 | 0x41 | 0x51 | 0xa1 | 0xe1 => self.set(d.src, old),
                    _ => self.set(0, old),
                }
            }
            ebpf::JA => {
                self.transfer_to(pc, d.target as usize);
                return true;
            }
            MAY_GOTO => {
                let slot = self.loops.expect("a program with may_goto has counters");
                let base = self.b.ins().stack_addr(I64, slot, 0);
                let depth = self.b.use_var(depth_var());
                let off = self.b.ins().imul_imm(depth, 4);
                let at = self.b.ins().iadd(base, off);
                let n = self.b.ins().load(I32, MemFlags::trusted(), at, 0);
                let dec = self.b.create_block();
                let taken = self.b.create_block();
                self.b.ins().brif(n, dec, &[], taken, &[]);
                self.b.seal_block(dec);
                self.b.seal_block(taken);
                self.b.switch_to_block(dec);
                let n1 = self.b.ins().iadd_imm(n, -1);
                self.b.ins().store(MemFlags::trusted(), n1, at, 0);
                let next = self.blocks[pc + 1].expect("may_goto is followed by a stretch");
                self.b.ins().jump(next, &[]);
                self.b.switch_to_block(taken);
                self.transfer_to(pc, d.target as usize);
                return true;
            }
            op::CALL_HELPER => {
                let slot = self.iconst(u64::from(d.target));
                self.helper(rt::call_fn as *const (), slot, pc);
            }
            op::CALL_HELPER_DYN => {
                let slot = self.iconst(u64::from(d.target));
                self.helper(rt::call_dyn as *const (), slot, pc);
            }
            ebpf::TAIL_CALL => {
                let target = self.get(d.dst);
                self.helper(rt::callx as *const (), target, pc);
            }
            op::GET_SMP_PROCESSOR_ID => {
                let env = self.env;
                let v = self
                    .call(rt::cpu as *const (), &[env], true)
                    .expect("a cpu");
                self.set(0, v);
            }
            op::CORE_POISON => {
                let env = self.env;
                let pc_v = self.iconst(pc as u64);
                self.call(rt::poisoned as *const (), &[env, pc_v], false);
                self.b.ins().jump(self.fail, &[]);
                return true;
            }
            op::CALL_LOCAL => {
                self.call_local(pc, d.target as usize);
                return true;
            }
            ebpf::EXIT => {
                self.exit(pc);
                return true;
            }
            op::TAIL_CALL_HELPER => self.tail_call(pc),
            op::CALL_CALLBACK => self.callback(pc, d),
            _ => {
                // `known` admitted only the opcodes above; `compile` refused the rest.
                self.invalid(pc);
                return true;
            }
        }
        false
    }

    /// A bpf-to-bpf call at `pc` of the function at `target` (the interpreter's
    /// `CALL_LOCAL`).
    fn call_local(&mut self, pc: usize, target: usize) {
        let depth = self.b.use_var(depth_var());
        let full = self.b.ins().icmp_imm(
            IntCC::UnsignedGreaterThanOrEqual,
            depth,
            MAX_FRAMES as i64 - 1,
        );
        self.fail_if(full, rt::call_depth as *const (), pc);
        let frame = self.frame_addr(depth);
        let t = MemFlags::trusted();
        for (k, r) in (6..=10u8).enumerate() {
            let v = self.get(r);
            self.b.ins().store(t, v, frame, 8 * k as i32);
        }
        let site = self
            .returns
            .iter()
            .position(|&r| r == pc + 1)
            .expect("every call's return site is listed");
        let ret = self.iconst(pc as u64 + 1);
        self.b.ins().store(t, ret, frame, 40);
        let site = self.iconst(site as u64);
        self.b.ins().store(t, site, frame, 48);
        let depth = self.b.ins().iadd_imm(depth, 1);
        self.b.def_var(depth_var(), depth);
        if let Some(slot) = self.loops {
            let base = self.b.ins().stack_addr(I64, slot, 0);
            let off = self.b.ins().imul_imm(depth, 4);
            let at = self.b.ins().iadd(base, off);
            let n = self.b.ins().iconst(I32, i64::from(MAX_LOOPS));
            self.b.ins().store(t, n, at, 0);
        }
        self.enter_frame(depth);
        let fp = self.get(10);
        let fp = self.b.ins().iadd_imm(fp, -(FRAME_SIZE as i64));
        self.set(10, fp);
        self.locate_frame();
        self.transfer_to(pc, target);
    }

    /// `exit` at `pc`: the execution's end from the frame it started in, else a return to
    /// the caller.
    fn exit(&mut self, pc: usize) {
        if !self.calls {
            self.leave(pc);
            return;
        }
        let depth = self.b.use_var(depth_var());
        let base = self.b.use_var(base_var());
        let at_base = self.b.ins().icmp(IntCC::Equal, depth, base);
        let main = self.b.create_block();
        let ret = self.b.create_block();
        self.b.ins().brif(at_base, main, &[], ret, &[]);
        self.b.seal_block(ret);
        self.b.seal_block(main);
        self.b.switch_to_block(main);
        self.leave(pc);
        self.b.switch_to_block(ret);
        let depth = self.b.ins().iadd_imm(depth, -1);
        self.b.def_var(depth_var(), depth);
        self.enter_frame(depth);
        let frame = self.frame_addr(depth);
        let t = MemFlags::trusted();
        for (k, r) in (6..=10u8).enumerate() {
            let v = self.b.ins().load(I64, t, frame, 8 * k as i32);
            self.set(r, v);
        }
        self.locate_frame();
        let ret_pc = self.b.ins().load(I64, t, frame, 40);
        let site = self.b.ins().load(I64, t, frame, 48);
        self.transfer(pc, ret_pc, None);
        let targets: Vec<BlockCall> = self
            .returns
            .clone()
            .into_iter()
            .map(|r| {
                let block = self.blocks[r].expect("a return site starts a stretch");
                self.b.func.dfg.block_call(block, &[])
            })
            .collect();
        // Its own block call (one per branch: SSA construction appends arguments to each).
        let first = self.blocks[self.returns[0]].expect("a return site starts a stretch");
        let default = self.b.func.dfg.block_call(first, &[]);
        let table = self
            .b
            .create_jump_table(JumpTableData::new(default, &targets));
        let site = self.b.ins().ireduce(I32, site);
        self.b.ins().br_table(site, table);
    }
}

/// The integer type of `size` bytes.
fn int_type(size: u8) -> Type {
    match size {
        1 => I8,
        2 => I16,
        4 => I32,
        _ => I64,
    }
}
