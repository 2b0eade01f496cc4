//! Code generation of the ways into and out of a compiled execution: the entry (instruction
//! 0 or a callback's first instruction), the `exit` of the frame the execution started in,
//! `bpf_tail_call` and the helpers that call back into the program. The work itself is the
//! interpreter's, behind the trampolines of [`reenter`](super::super::reenter).

use cranelift_codegen::ir::condcodes::IntCC;
use cranelift_codegen::ir::types::I64;
use cranelift_codegen::ir::{InstBuilder, MemFlags};

use super::super::reenter;
use super::super::rt::{self, offsets};
use super::{base_var, credit_var, depth_var, Gen};
use crate::insn::Insn;

impl Gen<'_> {
    /// Jumps from the entry block to the instruction the execution starts at: a callback's
    /// first instruction, else instruction 0.
    pub(super) fn enter(&mut self) {
        let first = self.blocks[0].expect("pc 0 starts a stretch");
        for &entry in self.callbacks {
            let Some(block) = self.blocks.get(entry as usize).copied().flatten() else {
                continue;
            };
            let here = self
                .b
                .ins()
                .icmp_imm(IntCC::Equal, self.start, i64::from(entry));
            let next = self.b.create_block();
            self.b.ins().brif(here, block, &[], next, &[]);
            self.b.seal_block(next);
            self.b.switch_to_block(next);
        }
        self.b.ins().jump(first, &[]);
    }

    /// `exit` at `pc` from the frame the execution started in (the interpreter's `exit` at
    /// `depth == base`): in a program with calls (bpf-to-bpf or callbacks) the last stretch
    /// of a callback or of a tail call target in a nested frame is charged (the main
    /// program's is not, nor any in a program without calls: the interpreter's
    /// `ExitMain`), the credit left goes to `env.credit`, and the compiled function
    /// returns `r0`.
    pub(super) fn leave(&mut self, pc: usize) {
        let end = pc as i64 + 1;
        let credit = self.b.use_var(credit_var());
        let short = self.b.ins().icmp_imm(IntCC::UnsignedLessThan, credit, end);
        if self.calls || !self.callbacks.is_empty() {
            let base = self.b.use_var(base_var());
            let nested = self.b.ins().icmp_imm(IntCC::NotEqual, base, 0);
            let bad = self.b.ins().band(short, nested);
            self.fail_if(bad, rt::budget_exhausted as *const (), pc);
        }
        let zero = self.iconst(0);
        let rest = self.b.ins().iadd_imm(credit, -end);
        let left = self.b.ins().select(short, zero, rest);
        self.b
            .ins()
            .store(MemFlags::trusted(), left, self.env, offsets::CREDIT);
        let r0 = self.get(0);
        self.b.ins().return_(&[r0]);
    }

    /// `bpf_tail_call` at `pc` ([`reenter::tail_call`]): when it jumped, the target's `r0`
    /// ends this frame as its `exit` would; when it fell through, the code goes on with
    /// `r0` unchanged.
    pub(super) fn tail_call(&mut self, pc: usize) {
        let env = self.env;
        let pc_v = self.iconst(pc as u64);
        let depth = self.b.use_var(depth_var());
        let credit = self.b.use_var(credit_var());
        let (r1, r2, r3) = (self.get(1), self.get(2), self.get(3));
        let r0 = self
            .call(
                reenter::tail_call as *const (),
                &[env, pc_v, depth, credit, r1, r2, r3],
                true,
            )
            .expect("a tail call returns r0");
        self.check_status();
        self.reload_fast();
        let t = MemFlags::trusted();
        let jumped = self.b.ins().load(I64, t, self.env, offsets::JUMPED);
        let done = self.b.create_block();
        let cont = self.b.create_block();
        self.b.ins().brif(jumped, done, &[], cont, &[]);
        self.b.seal_block(done);
        self.b.seal_block(cont);
        self.b.switch_to_block(done);
        self.set(0, r0);
        let credit = self.b.ins().load(I64, t, self.env, offsets::CREDIT);
        self.b.def_var(credit_var(), credit);
        self.exit(pc);
        self.b.switch_to_block(cont);
        // Only where the code goes on: a target that ran may have left the stack window
        // as its own program needs it.
        self.locate_frame();
    }

    /// `bpf_loop` or `bpf_for_each_map_elem` at `pc` ([`reenter::callback`]): `r0` is its
    /// result, the credit what the callbacks left.
    pub(super) fn callback(&mut self, pc: usize, d: &Insn) {
        let env = self.env;
        let site = u64::from(d.imm as u32) | (u64::from(d.target != 0) << 32);
        let site = self.iconst(site);
        let pc_v = self.iconst(pc as u64);
        let credit = self.b.use_var(credit_var());
        let depth = self.b.use_var(depth_var());
        let fp = self.get(10);
        let mut args = vec![env, site, pc_v, credit, depth, fp];
        for r in 1..=5 {
            args.push(self.get(r));
        }
        let r0 = self
            .call(reenter::callback as *const (), &args, true)
            .expect("a callback-calling helper returns r0");
        self.check_status();
        self.set(0, r0);
        let credit = self
            .b
            .ins()
            .load(I64, MemFlags::trusted(), self.env, offsets::CREDIT);
        self.b.def_var(credit_var(), credit);
        self.reload_tables();
    }
}
