//! Probe loads (`crate::probe_mem`): a tracing program's loads, which read through kernel
//! pointers the program may hold (`PTR_TO_BTF_ID`). The kernel's JIT emits them as
//! `BPF_PROBE_MEM` loads whose fault is caught by the exception table and leaves 0 in the
//! destination; the interpreter's `PROBE_LD_*` read bpfvm's regions, else the VM's kernel
//! memory image, else 0, and never fault.
//!
//! Compiled the same way: the region table's check inline, as any load (`mem.rs`: what it
//! grants `Memory::load_guest` grants with the same value); what it does not grant calls
//! [`probe_load`], which is the interpreter's own `probe_mem::load`. No fault, no error.

use cranelift_codegen::ir::Value;

use super::{load_of, Gen};
use crate::engine::jit::code::with_env;
use crate::engine::jit::rt::Env;
use crate::probe_mem::PROBE_FLIP;

/// `(bytes, sign-extended)` of a probe load opcode (the interpreter's `PROBE_LD_*`,
/// `PROBE_LDSX_*`: a load's opcode with [`PROBE_FLIP`]).
pub(super) fn probe_load_of(opcode: u8) -> Option<(u8, bool)> {
    let plain = opcode ^ PROBE_FLIP;
    (crate::probe_mem::probe_op(plain) == opcode)
        .then(|| load_of(plain))
        .flatten()
}

/// A probe load at `pc` the inline check did not grant: `probe_mem::load`, as the
/// interpreter (which notes `pc` for the race explorer's hook first). Never fails; a panic
/// (none is expected) ends the run as in every trampoline.
pub(super) extern "C" fn probe_load(env: *mut Env<'_>, addr: u64, size: u64, pc: u64) -> u64 {
    with_env(env, |env| {
        env.ctx.memory.note_pc(pc as usize);
        env.guard(|env| crate::probe_mem::load(env.ctx, addr, size))
    })
}

impl Gen<'_> {
    /// A probe load (instruction `pc`) of `size` bytes at guest `base + off` (zero-extended, or sign-extended
    /// if `signed`).
    pub(super) fn probe_load(
        &mut self,
        pc: usize,
        base: Value,
        off: i32,
        size: u8,
        signed: bool,
    ) -> Value {
        self.load_via(pc, base, off, size, signed, probe_load as *const ())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_probe_opcode_has_its_load_s_size_and_sign() {
        for (op, want) in [
            (0x71u8, (1, false)),
            (0x69, (2, false)),
            (0x61, (4, false)),
            (0x79, (8, false)),
            (0x91, (1, true)),
            (0x89, (2, true)),
            (0x81, (4, true)),
        ] {
            assert_eq!(probe_load_of(crate::probe_mem::probe_op(op)), Some(want));
            assert_eq!(probe_load_of(op), None, "a plain load is not a probe load");
        }
        // Stores and other opcodes with the probe bit flipped are not probe loads.
        assert_eq!(probe_load_of(0x63 ^ PROBE_FLIP), None);
        assert_eq!(probe_load_of(0x95 ^ PROBE_FLIP), None);
    }
}
