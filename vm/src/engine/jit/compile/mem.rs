//! Loads and stores of compiled code: the region table's check inline, shared by the
//! accesses of a straight-line stretch through the same base register.
//!
//! The region table's fast path ([`bpfvm_helpers::memory::FastLayout`]) grants an access of
//! `s` bytes at guest `addr` when, with `e` the entry of `addr >> 52`, `object = addr >> 32`
//! and `off = (addr as u32).wrapping_sub(e.lo)`: `object < e.object_end` and
//! `off + s <= len` (`e.read_len` or `e.write_len`). BPF addresses a load or store as a base
//! register plus a constant `k`, and a stretch usually reaches many fields through one
//! base (`r10`, a context or map value pointer). So for each base value `v` the code works
//! out once, in the stretch where it is first used:
//!
//! - `rel = (v as u32) - e.lo` (signed, 64 bits) and `host = e.biased_base + object * e.stride
//!   + rel` (the host address of `v`, meaningful only when an access is granted);
//! - `lim = if object < e.object_end { min(len, 2^32 - e.lo) } else { 0 }` per direction,
//!   and `q = max(lim - (s - 1), 0)` per access size `s`;
//!
//! and an access at `v + k` is granted when `(rel + k) as u64 < q`: one add and one compare.
//! That implies the table's own test: `0 <= rel + k` and `rel + k + s <= lim` keep
//! `(v as u32) + k` within `[e.lo, 2^32 - s]`, so `addr` has `v`'s region and object, and its
//! `off` is `rel + k`, within `len` with its `s` bytes. Its host address is `host + k`. It is
//! stricter only where `e.lo + len` passes `2^32` (no real region); whatever it does not
//! grant goes to [`rt::load`] / [`rt::store`] (`Memory::load_guest` / `store_guest`), which
//! grant it or report the interpreter's fault, so faults and errors are unchanged.
//!
//! Atomics (`lock`-prefixed operations, cmpxchg) take the same check for both directions
//! (the table's `Access::Atomic` length is the smaller of the two) and, as
//! `Memory::atomic_rmw` requires, a host address aligned to their size; then they are
//! cranelift's sequentially consistent `atomic_rmw` / `atomic_cas`, as the interpreter's
//! `SeqCst` Rust atomics. Anything else calls [`rt::atomic`], which reports the fault
//! (misaligned, out of bounds, read-only, a spin lock field).
//!
//! What is worked out for a base is kept while the code stays in the stretch's blocks and
//! the region table's address is unchanged; any trampoline that can change the table
//! (helpers, the stack window of calls) is followed by [`Gen::reload_fast`], which forgets it.

use cranelift_codegen::ir::condcodes::IntCC;
use cranelift_codegen::ir::types::{I32, I64};
use cranelift_codegen::ir::{AtomicRmwOp, Block, InstBuilder, MemFlags, Value};

use bpfvm_helpers::memory::FAST_LAYOUT;

use super::{fast_var, int_type, offsets, rt, Gen};
use crate::insn::Insn;

/// What the stretch being generated knows about its base registers' values.
#[derive(Debug, Default)]
pub(super) struct Cache {
    /// The block the cached values may be used in (the current one when they were last
    /// used): code elsewhere starts afresh.
    block: Option<Block>,
    /// The region table's address they were computed from.
    fast: Option<Value>,
    bases: Vec<Base>,
}

impl Cache {
    /// Forgets everything (the region table may have changed).
    pub(super) fn clear(&mut self) {
        self.block = None;
        self.fast = None;
        self.bases.clear();
    }
}

/// A base value's part of the check (see the module documentation).
#[derive(Debug)]
struct Base {
    /// The guest address (a register's value).
    v: Value,
    /// Its region's entry in the table.
    entry: Value,
    /// `object < object_end`.
    ok: Value,
    /// `2^32 - lo`.
    cap: Value,
    /// `(v as u32) - lo`, signed.
    rel: Value,
    /// The host address of `v` (when an access is granted).
    host: Value,
    /// `lim` for reads, writes.
    lim: [Option<Value>; 2],
    /// `q` by (write, size).
    q: Vec<((bool, u8), Value)>,
}

/// A guest address's region-table entry ([`Gen::lookup`]).
pub(super) struct Lookup {
    /// The entry's address.
    pub(super) entry: Value,
    /// The object index (bits 32..52).
    pub(super) object: Value,
    /// Whether the object index is below the entry's `object_end`.
    pub(super) ok: Value,
    /// `2^32 - lo`: the most any length can grant.
    pub(super) cap: Value,
    /// The offset into the object (low 32 bits minus `lo`).
    pub(super) rel: Value,
}

impl Gen<'_> {
    /// The region-table entry of guest address `v` (`FAST_LAYOUT`) and what every check
    /// derives from it; the table's address is read from the `Env` here rather than kept in
    /// a register for the whole run: one value fewer living across every call
    /// (callee-saved registers are few, and what does not fit is spilled in the hot path).
    pub(super) fn lookup(&mut self, v: Value) -> Lookup {
        let l = FAST_LAYOUT;
        let t = MemFlags::trusted();
        let region = self.b.ins().ushr_imm(v, 52);
        let scaled = self.b.ins().imul_imm(region, i64::from(l.entry_size));
        let table = self.b.ins().load(I64, t, self.env, offsets::FAST);
        let entry = self.b.ins().iadd(table, scaled);
        let object = self.b.ins().ushr_imm(v, 32);
        let object_end = self.b.ins().load(I64, t, entry, l.object_end as i32);
        let ok = self
            .b
            .ins()
            .icmp(IntCC::UnsignedLessThan, object, object_end);
        let lo32 = self.b.ins().load(I32, t, entry, l.lo as i32);
        let lo = self.b.ins().uextend(I64, lo32);
        let top = self.b.ins().iconst(I64, 1 << 32);
        let cap = self.b.ins().isub(top, lo);
        let v32 = self.b.ins().ireduce(I32, v);
        let v32 = self.b.ins().uextend(I64, v32);
        let rel = self.b.ins().isub(v32, lo);
        Lookup {
            entry,
            object,
            ok,
            cap,
            rel,
        }
    }

    /// The host address of the guest address `lk` was looked up for (valid once the
    /// check built on `lk` passed).
    pub(super) fn host_address(&mut self, lk: &Lookup) -> Value {
        let l = FAST_LAYOUT;
        let t = MemFlags::trusted();
        let stride32 = self.b.ins().load(I32, t, lk.entry, l.stride as i32);
        let stride = self.b.ins().uextend(I64, stride32);
        let biased = self.b.ins().load(I64, t, lk.entry, l.biased_base as i32);
        let at = self.b.ins().imul(lk.object, stride);
        let at = self.b.ins().iadd(at, lk.rel);
        self.b.ins().iadd(biased, at)
    }

    /// The index in the cache of base `v`'s check values, computed here if new.
    fn base(&mut self, v: Value) -> usize {
        let fast = self.b.use_var(fast_var());
        // Values a join block's SSA construction found equal on every path are aliases.
        let fast = self.b.func.dfg.resolve_aliases(fast);
        let v = self.b.func.dfg.resolve_aliases(v);
        let here = self.b.current_block();
        if self.mem.block != here || self.mem.fast != Some(fast) {
            self.mem.clear();
            self.mem.block = here;
            self.mem.fast = Some(fast);
        }
        if let Some(i) = self.mem.bases.iter().position(|b| b.v == v) {
            return i;
        }
        let lk = self.lookup(v);
        let host = self.host_address(&lk);
        let Lookup {
            entry,
            ok,
            cap,
            rel,
            ..
        } = lk;
        self.mem.bases.push(Base {
            v,
            entry,
            ok,
            cap,
            rel,
            host,
            lim: [None, None],
            q: Vec::new(),
        });
        self.mem.bases.len() - 1
    }

    /// `q` of base `i` for accesses of `size` bytes (writes if `write`).
    fn bound(&mut self, i: usize, size: u8, write: bool) -> Value {
        if let Some(&(_, q)) = self.mem.bases[i]
            .q
            .iter()
            .find(|(k, _)| *k == (write, size))
        {
            return q;
        }
        let lim = match self.mem.bases[i].lim[usize::from(write)] {
            Some(lim) => lim,
            None => {
                let l = FAST_LAYOUT;
                let base = &self.mem.bases[i];
                let (entry, ok, cap) = (base.entry, base.ok, base.cap);
                let at = if write { l.write_len } else { l.read_len };
                let len32 = self
                    .b
                    .ins()
                    .load(I32, MemFlags::trusted(), entry, at as i32);
                let len = self.b.ins().uextend(I64, len32);
                let lim = self.b.ins().umin(len, cap);
                let zero = self.b.ins().iconst(I64, 0);
                let lim = self.b.ins().select(ok, lim, zero);
                self.mem.bases[i].lim[usize::from(write)] = Some(lim);
                lim
            }
        };
        let q = if size == 1 {
            lim
        } else {
            let q = self.b.ins().iadd_imm(lim, -(i64::from(size) - 1));
            let zero = self.b.ins().iconst(I64, 0);
            self.b.ins().smax(q, zero)
        };
        self.mem.bases[i].q.push(((write, size), q));
        q
    }

    /// Checks an access of `size` bytes at guest `base + off`: returns `(host address,
    /// slow block)` with the current block the one where the check passed; the slow block
    /// (cold, not yet filled) is where it did not.
    pub(super) fn check(&mut self, base: Value, off: i32, size: u8, write: bool) -> (Value, Block) {
        let i = self.base(base);
        let q = self.bound(i, size, write);
        let rel = self.mem.bases[i].rel;
        let host = self.mem.bases[i].host;
        let t = self.b.ins().iadd_imm(rel, i64::from(off));
        let ok = self.b.ins().icmp(IntCC::UnsignedLessThan, t, q);
        let fast_b = self.b.create_block();
        let slow_b = self.b.create_block();
        self.b.set_cold_block(slow_b);
        self.b.ins().brif(ok, fast_b, &[], slow_b, &[]);
        self.b.seal_block(fast_b);
        self.b.seal_block(slow_b);
        self.b.switch_to_block(fast_b);
        (host, slow_b)
    }

    /// After an access's code, in its join block: the base values stay usable here.
    pub(super) fn keep(&mut self) {
        self.mem.block = self.b.current_block();
    }

    /// Loads `size` bytes at guest `base + off` (zero-extended, or sign-extended if
    /// `signed`) for instruction `pc`.
    pub(super) fn load(
        &mut self,
        pc: usize,
        base: Value,
        off: i32,
        size: u8,
        signed: bool,
    ) -> Value {
        self.load_via(pc, base, off, size, signed, rt::load as *const ())
    }

    /// A load as [`Gen::load`] whose slow path (an access the inline check does not grant)
    /// is the trampoline `slow(env, addr, size, pc) -> value`: `rt::load` (faults) or
    /// `probe::probe_load` (0 for a faulting probe load).
    pub(super) fn load_via(
        &mut self,
        pc: usize,
        base: Value,
        off: i32,
        size: u8,
        signed: bool,
        slow: *const (),
    ) -> Value {
        let (host, slow_b) = self.check(base, off, size, false);
        let join = self.b.create_block();
        self.b.append_block_param(join, I64);
        let flags = MemFlags::new().with_notrap();
        let off32 = off;
        let v = match size {
            8 => self.b.ins().load(I64, flags, host, off32),
            _ => {
                let ty = int_type(size);
                let v = self.b.ins().load(ty, flags, host, off32);
                self.b.ins().uextend(I64, v)
            }
        };
        self.b.ins().jump(join, &[v.into()]);
        self.b.switch_to_block(slow_b);
        let addr = self.b.ins().iadd_imm(base, i64::from(off));
        let env = self.env;
        let size_v = self.iconst(u64::from(size));
        let pc_v = self.iconst(pc as u64);
        let v = self
            .call(slow, &[env, addr, size_v, pc_v], true)
            .expect("load returns a value");
        self.check_status();
        self.b.ins().jump(join, &[v.into()]);
        self.b.seal_block(join);
        self.b.switch_to_block(join);
        self.keep();
        let v = self.b.block_params(join)[0];
        if signed && size < 8 {
            let narrow = self.b.ins().ireduce(int_type(size), v);
            self.b.ins().sextend(I64, narrow)
        } else {
            v
        }
    }

    /// Stores the low `size` bytes of `value` at guest `base + off` for instruction `pc`.
    pub(super) fn store(&mut self, pc: usize, base: Value, off: i32, size: u8, value: Value) {
        let (host, slow_b) = self.check(base, off, size, true);
        let join = self.b.create_block();
        let flags = MemFlags::new().with_notrap();
        let off32 = off;
        if size == 8 {
            self.b.ins().store(flags, value, host, off32);
        } else {
            let narrow = self.b.ins().ireduce(int_type(size), value);
            self.b.ins().store(flags, narrow, host, off32);
        }
        self.b.ins().jump(join, &[]);
        self.b.switch_to_block(slow_b);
        let addr = self.b.ins().iadd_imm(base, i64::from(off));
        let env = self.env;
        let size_v = self.iconst(u64::from(size));
        let pc_v = self.iconst(pc as u64);
        self.call(
            rt::store as *const (),
            &[env, addr, size_v, value, pc_v],
            false,
        );
        self.check_status();
        self.b.ins().jump(join, &[]);
        self.b.seal_block(join);
        self.b.switch_to_block(join);
        self.keep();
    }

    /// The atomic operation `d` (its `imm` names it) of `size` (4 or 8) bytes at
    /// `dst + off` for instruction `pc`: the old value (zero-extended). The caller puts it
    /// where the operation says.
    pub(super) fn atomic(&mut self, pc: usize, d: &Insn, size: u8) -> Value {
        let off = d.mem_off() as i32;
        let v = self.get(d.dst);
        let i = self.base(v);
        let qr = self.bound(i, size, false);
        let qw = self.bound(i, size, true);
        let rel = self.mem.bases[i].rel;
        let host = self.mem.bases[i].host;
        let t = self.b.ins().iadd_imm(rel, i64::from(off));
        let okr = self.b.ins().icmp(IntCC::UnsignedLessThan, t, qr);
        let okw = self.b.ins().icmp(IntCC::UnsignedLessThan, t, qw);
        let at = self.b.ins().iadd_imm(host, i64::from(off));
        let low = self.b.ins().band_imm(at, i64::from(size) - 1);
        let aligned = self.b.ins().icmp_imm(IntCC::Equal, low, 0);
        let ok = self.b.ins().band(okr, okw);
        let ok = self.b.ins().band(ok, aligned);
        let fast_b = self.b.create_block();
        let slow_b = self.b.create_block();
        self.b.set_cold_block(slow_b);
        self.b.ins().brif(ok, fast_b, &[], slow_b, &[]);
        self.b.seal_block(fast_b);
        self.b.seal_block(slow_b);
        self.b.switch_to_block(fast_b);
        let join = self.b.create_block();
        self.b.append_block_param(join, I64);
        let src = self.get(d.src);
        let ty = int_type(size);
        let flags = MemFlags::trusted();
        let operand = if size == 8 {
            src
        } else {
            self.b.ins().ireduce(ty, src)
        };
        let rmw = match d.imm as u32 {
            0x00 | 0x01 => Some(AtomicRmwOp::Add),
            0x40 | 0x41 => Some(AtomicRmwOp::Or),
            0x50 | 0x51 => Some(AtomicRmwOp::And),
            0xa0 | 0xa1 => Some(AtomicRmwOp::Xor),
            0xe1 => Some(AtomicRmwOp::Xchg),
            // cmpxchg (0xf1), as the interpreter reads any other `imm`.
            _ => None,
        };
        let old = match rmw {
            Some(op) => self.b.ins().atomic_rmw(ty, flags, op, at, operand),
            None => {
                let r0 = self.get(0);
                let expected = if size == 8 {
                    r0
                } else {
                    self.b.ins().ireduce(ty, r0)
                };
                self.b.ins().atomic_cas(flags, at, expected, operand)
            }
        };
        let old = if size == 8 {
            old
        } else {
            self.b.ins().uextend(I64, old)
        };
        self.b.ins().jump(join, &[old.into()]);
        self.b.switch_to_block(slow_b);
        let base = self.get(d.dst);
        let addr = self.b.ins().iadd_imm(base, i64::from(off));
        let env = self.env;
        let size_v = self.iconst(u64::from(size));
        let op_v = self.iconst(d.imm);
        let src = self.get(d.src);
        let r0 = self.get(0);
        let pc_v = self.iconst(pc as u64);
        let old = self
            .call(
                rt::atomic as *const (),
                &[env, addr, size_v, op_v, src, r0, pc_v],
                true,
            )
            .expect("atomics return the old value");
        self.check_status();
        self.b.ins().jump(join, &[old.into()]);
        self.b.seal_block(join);
        self.b.switch_to_block(join);
        self.keep();
        self.b.block_params(join)[0]
    }
}
