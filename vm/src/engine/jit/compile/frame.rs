//! Loads and stores in the running stack frame at a constant offset from `r10`, without a
//! check per access.
//!
//! In a program that never writes `r10` (nothing but calls and returns, which the compiled
//! code does itself, changes it), `r10` is the running frame's pointer `fp`, and an access
//! of `s` bytes at `r10 + k` with `-FRAME_SIZE <= k` and `k + s <= 0` stays in the frame.
//! Whether the region table grants the whole frame `[fp - FRAME_SIZE, fp)` for reads and
//! writes is decided once, where `r10` or the table may have changed (the entry, a call, a
//! return, every trampoline that hands the context to other code): with `e` the entry of
//! `fp`'s region, `rel = (fp as u32) - e.lo` and `lim` as in `mem.rs` but the smaller of
//! the read and write lengths, the frame is granted when `FRAME_SIZE <= rel <= lim`. Then
//! every access above is granted by the table's own test (its offset `rel + k` is at least
//! 0 and `rel + k + s <= lim`, without carry into `fp`'s region and object bits), exactly as
//! the interpreter would, and its host address is `host + k` with `host` the frame pointer's
//! host address (`mem.rs`), kept in a variable until the next such place.
//!
//! The virtual machine opens the frame of every running function (`Lane`, the calls'
//! stack window, the callbacks'), so the test always passes, unless a helper rewrote the
//! stack region under the running frame (`Memory::set_owned_window` /
//! `set_owned_region` are public): then the run ends at once with [`RunError::BadInput`]
//! (`rt::frame_closed`), where the interpreter would fault at the frame's next access.
//! Every other access (another base register, an offset outside the frame, atomics) keeps
//! `mem.rs`'s check.
//!
//! [`RunError::BadInput`]: crate::RunError::BadInput

use cranelift_codegen::ir::condcodes::IntCC;
use cranelift_codegen::ir::types::{I32, I64};
use cranelift_codegen::ir::{InstBuilder, MemFlags, Value};
use rbpf::ebpf;

use bpfvm_helpers::memory::FAST_LAYOUT;

use super::{frame_var, int_type, load_of, rt, Gen};
use crate::cpu::FRAME_SIZE;
use crate::insn::Insn;

/// Whether no instruction of `insns` writes `r10` (so that it is always the running
/// frame's pointer). Conservative: an instruction naming `r10` as a destination that is not
/// a store or a jump (which only read it), or as the source of an atomic operation (whose
/// fetching forms write it), counts as a write.
pub(super) fn frame_fixed(insns: &[Insn]) -> bool {
    insns.iter().all(|d| {
        let atomic = matches!(d.op, ebpf::ST_W_XADD | ebpf::ST_DW_XADD);
        let reads_only =
            super::store_of(d.op).is_some() || super::jump_of(d.op).is_some() || atomic;
        let writes_dst = d.dst == 10 && !reads_only;
        let writes_src = atomic && d.src == 10;
        !writes_dst && !writes_src
    })
}

/// Whether an access of `size` bytes at `r10 + off` stays in the frame.
fn in_frame(off: i32, size: u8) -> bool {
    off >= -(FRAME_SIZE as i32) && off + i32::from(size) <= 0
}

/// Whether `insns` has an access [`Gen::on_frame`] would take (with `r10` fixed).
pub(super) fn frame_accesses(insns: &[Insn]) -> bool {
    insns.iter().any(|d| {
        let off = d.mem_off() as i32;
        if let Some((size, _)) = load_of(d.op) {
            d.src == 10 && in_frame(off, size)
        } else if let Some((size, _)) = super::store_of(d.op) {
            d.dst == 10 && in_frame(off, size)
        } else {
            false
        }
    })
}

impl Gen<'_> {
    /// Whether an access of `size` bytes at `r{base} + off` is one of the running frame's
    /// that needs no check (see the module documentation).
    pub(super) fn on_frame(&self, base: u8, off: i32, size: u8) -> bool {
        self.frame && base == 10 && in_frame(off, size)
    }

    /// Tests that the region table grants the running frame (`r10`'s) and keeps its host
    /// address for [`Gen::frame_load`] / [`Gen::frame_store`]; ends the run if it does
    /// not. Called wherever `r10` or the table may have changed.
    pub(super) fn locate_frame(&mut self) {
        if !self.frame {
            return;
        }
        let l = FAST_LAYOUT;
        let t = MemFlags::trusted();
        let fp = self.get(10);
        let lk = self.lookup(fp);
        let (ok, rel) = (lk.ok, lk.rel);
        let mut lim = lk.cap;
        for at in [l.read_len, l.write_len] {
            let len32 = self.b.ins().load(I32, t, lk.entry, at as i32);
            let len = self.b.ins().uextend(I64, len32);
            lim = self.b.ins().umin(lim, len);
        }
        let above = self
            .b
            .ins()
            .icmp_imm(IntCC::SignedGreaterThanOrEqual, rel, FRAME_SIZE as i64);
        let below = self.b.ins().icmp(IntCC::SignedLessThanOrEqual, rel, lim);
        let granted = self.b.ins().band(above, below);
        let granted = self.b.ins().band(granted, ok);
        let out = self.b.create_block();
        self.b.set_cold_block(out);
        let cont = self.b.create_block();
        self.b.ins().brif(granted, cont, &[], out, &[]);
        self.b.seal_block(out);
        self.b.seal_block(cont);
        self.b.switch_to_block(out);
        let env = self.env;
        self.call(rt::frame_closed as *const (), &[env], false);
        self.b.ins().jump(self.fail, &[]);
        self.b.switch_to_block(cont);
        let host = self.host_address(&lk);
        self.b.def_var(frame_var(), host);
    }

    /// Loads `size` bytes at `r10 + off` in the running frame (zero-extended, or
    /// sign-extended if `signed`).
    pub(super) fn frame_load(&mut self, off: i32, size: u8, signed: bool) -> Value {
        let host = self.b.use_var(frame_var());
        let flags = MemFlags::new().with_notrap();
        let ty = int_type(size);
        let v = self.b.ins().load(ty, flags, host, off);
        match (size, signed) {
            (8, _) => v,
            (_, false) => self.b.ins().uextend(I64, v),
            (_, true) => self.b.ins().sextend(I64, v),
        }
    }

    /// Stores the low `size` bytes of `value` at `r10 + off` in the running frame.
    pub(super) fn frame_store(&mut self, off: i32, size: u8, value: Value) {
        let host = self.b.use_var(frame_var());
        let flags = MemFlags::new().with_notrap();
        let v = if size == 8 {
            value
        } else {
            self.b.ins().ireduce(int_type(size), value)
        };
        self.b.ins().store(flags, v, host, off);
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::insn::op;

    fn insn(op: u8, dst: u8, src: u8) -> Insn {
        Insn {
            op,
            dst,
            src,
            ..Insn::default()
        }
    }

    #[test]
    fn stores_jumps_and_plain_atomics_leave_r10_fixed() {
        let insns = [
            insn(ebpf::ST_DW_REG, 10, 1),
            insn(ebpf::LD_DW_REG, 1, 10),
            insn(ebpf::JEQ_REG, 10, 1),
            insn(ebpf::ST_DW_XADD, 10, 1),
            insn(ebpf::MOV64_REG, 1, 10),
            insn(op::CALL_HELPER, 0, 0),
        ];
        assert!(frame_fixed(&insns));
    }

    #[test]
    fn any_write_of_r10_unfixes_it() {
        for d in [
            insn(ebpf::ADD64_IMM, 10, 0),
            insn(ebpf::MOV64_REG, 10, 1),
            insn(ebpf::LD_DW_REG, 10, 1),
            insn(ebpf::LD_DW_IMM, 10, 0),
            insn(ebpf::NEG64, 10, 0),
            insn(ebpf::ST_DW_XADD, 1, 10),
        ] {
            assert!(!frame_fixed(&[d]), "{d:?}");
        }
    }

    #[test]
    fn only_accesses_inside_the_frame_count() {
        assert!(in_frame(-512, 8));
        assert!(in_frame(-8, 8));
        assert!(in_frame(-1, 1));
        assert!(!in_frame(-513, 1));
        assert!(!in_frame(-4, 8));
        assert!(!in_frame(0, 1));
    }
}
