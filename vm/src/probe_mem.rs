//! Probe loads: how bpfvm runs a load through a kernel pointer it does not hold.
//!
//! The kernel's verifier lets a tracing program read through `PTR_TO_BTF_ID` pointers (a
//! traced function's `struct` arguments, `bpf_get_current_task_btf()`): the JIT emits
//! those loads as `BPF_PROBE_MEM`, and a load that faults reads 0 (the exception table),
//! as does one below `TASK_SIZE_MAX + PAGE_SIZE` (x86_64).
//!
//! bpfvm's sandbox model: in a program that may hold such pointers (a
//! [`ProgramType::Tracing`] program, or one that calls `bpf_get_current_task_btf`), every
//! load (`ldx`, `ldsx`) is a probe load. Inside bpfvm's regions (stack, context, map
//! values) it reads as any load; elsewhere it reads the VM's kernel memory image
//! ([`crate::Vm::set_kernel_memory`]) when the address is a kernel address the image
//! holds, and 0 otherwise. No host address ever reaches a program, and a probe load never
//! faults. Stores stay checked: a store outside bpfvm's regions is a fault. For a program
//! the kernel's verifier accepts this is the kernel's behaviour, since only its
//! `PTR_TO_BTF_ID` loads can leave the memory the verifier proved in bounds.
//!
//! The `interpreter` and `jit` engines run probe loads, the jit with the region table's
//! check inline and `probe_mem::load` for the rest (`engine/jit/compile/probe.rs`), so both give
//! the same values; the `rbpf` engines refuse such programs (`PrepareError::Unsupported`).

use bpfvm_helpers::HelperContext;

use crate::program::Program;
use crate::ProgramType;

/// `bpf_get_current_task_btf`.
const GET_CURRENT_TASK_BTF: i32 = 158;
/// `TASK_SIZE_MAX + PAGE_SIZE` on x86_64: a probe load below it reads 0.
const KERNEL_START: u64 = (1 << 47) - 4096 + 4096;

/// Whether `program`'s loads run as probe loads.
pub fn enabled(program: &Program) -> bool {
    program.prog_type() == ProgramType::Tracing
        || program.bytecode().chunks_exact(8).any(|w| {
            // `call imm` (0x85) with src_reg 0: a helper call.
            w[0] == 0x85
                && w[1] >> 4 == 0
                && i32::from_le_bytes([w[4], w[5], w[6], w[7]]) == GET_CURRENT_TASK_BTF
        })
}

/// The probe form of load opcode `op` (`ldx`/`ldsx` of each size), or `op` itself.
pub(crate) fn probe_op(op: u8) -> u8 {
    match op {
        0x61 | 0x69 | 0x71 | 0x79 | 0x81 | 0x89 | 0x91 => op ^ PROBE_FLIP,
        _ => op,
    }
}

/// XOR that turns a load opcode into its probe form (mode bits `0x40`: `0x61` → `0x21`,
/// `0x81` → `0xc1`), opcodes no instruction has.
pub(crate) const PROBE_FLIP: u8 = 0x40;

/// A probe load of `size` bytes at `addr`: the program's own memory, else the kernel
/// memory image, else 0.
#[inline(never)]
pub(crate) fn load(ctx: &HelperContext, addr: u64, size: u64) -> u64 {
    if let Ok(v) = ctx.memory.load_guest(addr, size) {
        return v;
    }
    if addr < KERNEL_START {
        return 0;
    }
    let mut b = [0u8; 8];
    if !ctx.kernel_memory().read(addr, &mut b[..size as usize]) {
        return 0;
    }
    // In the host's byte order, as every other load.
    match size {
        1 => u64::from(b[0]),
        2 => u64::from(u16::from_ne_bytes([b[0], b[1]])),
        4 => u64::from(u32::from_ne_bytes([b[0], b[1], b[2], b[3]])),
        _ => u64::from_ne_bytes(b),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn probe_opcodes_are_free_and_round_trip() {
        for op in [0x61u8, 0x69, 0x71, 0x79, 0x81, 0x89, 0x91] {
            let p = probe_op(op);
            assert_ne!(p, op);
            assert_eq!(p ^ PROBE_FLIP, op);
            assert!(matches!(p, 0x21 | 0x29 | 0x31 | 0x39 | 0xc1 | 0xc9 | 0xd1));
        }
        assert_eq!(probe_op(0x63), 0x63, "stores are not probed");
    }
}
