//! Instructions: the raw 8-byte encoding and the compact pre-decoded form engines run.
//!
//! Opcodes are rbpf's ISA vocabulary (`rbpf::ebpf`). Forms that share an opcode with another
//! instruction (sdiv/smod, movsx, bpf-to-bpf call) and the pseudo `ld_imm64` forms get
//! internal opcodes in [`op`], taken from slots of the `BPF_LD` class that the ISA leaves
//! unused.

/// One raw instruction slot, fields as in `struct bpf_insn`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct RawInsn {
    /// `code`.
    pub opc: u8,
    /// `dst_reg`.
    pub dst: u8,
    /// `src_reg`.
    pub src: u8,
    /// `off`.
    pub off: i16,
    /// `imm`.
    pub imm: i32,
}

impl RawInsn {
    /// Decodes slot `pc` of little-endian bytecode (`bytes.len() >= 8 * (pc + 1)`).
    pub fn at(bytes: &[u8], pc: usize) -> RawInsn {
        let b = &bytes[pc * 8..pc * 8 + 8];
        RawInsn {
            opc: b[0],
            dst: b[1] & 0x0f,
            src: b[1] >> 4,
            off: i16::from_le_bytes([b[2], b[3]]),
            imm: i32::from_le_bytes([b[4], b[5], b[6], b[7]]),
        }
    }

    /// Encodes the instruction as 8 little-endian bytes.
    pub fn to_bytes(self) -> [u8; 8] {
        let o = self.off.to_le_bytes();
        let i = self.imm.to_le_bytes();
        [
            self.opc,
            (self.src << 4) | (self.dst & 0x0f),
            o[0],
            o[1],
            i[0],
            i[1],
            i[2],
            i[3],
        ]
    }
}

/// The helper id of libbpf's poison call (`call 0xbad2310`), which replaces an
/// instruction whose CO-RE relocation could not be resolved.
pub const CORE_POISON_HELPER: i32 = 0x0bad_2310;

/// Internal opcodes for forms without an opcode of their own.
pub mod op {
    /// `sdiv32 dst, imm` (`BPF_DIV` with `off = 1`).
    pub const SDIV32_IMM: u8 = 0x08;
    /// `sdiv32 dst, src`.
    pub const SDIV32_REG: u8 = 0x10;
    /// `smod32 dst, imm`.
    pub const SMOD32_IMM: u8 = 0x38;
    /// `smod32 dst, src`.
    pub const SMOD32_REG: u8 = 0x58;
    /// `sdiv dst, imm`.
    pub const SDIV64_IMM: u8 = 0x60;
    /// `sdiv dst, src`.
    pub const SDIV64_REG: u8 = 0x68;
    /// `smod dst, imm`.
    pub const SMOD64_IMM: u8 = 0x70;
    /// `smod dst, src`.
    pub const SMOD64_REG: u8 = 0x78;
    /// `movsx` into a 32-bit destination; `off` = source width in bits (8, 16).
    pub const MOVSX32: u8 = 0x80;
    /// `movsx` into a 64-bit destination; `off` = source width in bits (8, 16, 32).
    pub const MOVSX64: u8 = 0x88;
    /// bpf-to-bpf call (`call` with `src = 1`); `target` = callee's first instruction.
    pub const CALL_LOCAL: u8 = 0x90;
    /// `ld_imm64` of a map handle; `imm` = map index.
    pub const LD_MAP_FD: u8 = 0x98;
    /// `ld_imm64` of a map value address; `imm` = map index, `target` = offset.
    pub const LD_MAP_VALUE: u8 = 0xa0;
    /// The second slot of an `ld_imm64`; never executed.
    pub const LD_IMM64_TAIL: u8 = 0xa8;
    /// A call of a plain-function helper resolved when the program was prepared (engine
    /// `interpreter`): `target` = index in the program's table of helper functions, `imm` =
    /// helper id.
    pub const CALL_HELPER: u8 = 0xb0;
    /// A call of a helper object (a closure with state) resolved when the program was
    /// prepared: `target` = index in the program's table of helper objects, `imm` = helper id.
    pub const CALL_HELPER_DYN: u8 = 0xc0;
    /// The built-in `bpf_get_smp_processor_id` (helper 8), inlined as the kernel's x86_64
    /// JIT does: `r0` = the simulated CPU (engine `interpreter`; never for a user helper
    /// registered under id 8).
    #[doc(alias = "BPF_FUNC_get_smp_processor_id")]
    pub const GET_SMP_PROCESSOR_ID: u8 = 0xb8;
    /// libbpf's poison call ([`CORE_POISON_HELPER`](super::CORE_POISON_HELPER)) for an
    /// unresolved CO-RE relocation (engine `interpreter`): the run fails when it gets here.
    pub const CORE_POISON: u8 = 0xc8;
    /// `ld_imm64` of a function's address (`src = 4`, `BPF_PSEUDO_FUNC`): the callback of
    /// `bpf_loop` or `bpf_for_each_map_elem`; `target` = the function's first instruction.
    pub const LD_FUNC: u8 = 0xf8;
    /// A call of a helper that calls back into the program (`bpf_loop`,
    /// `bpf_for_each_map_elem`), resolved when the program was prepared (engine
    /// `interpreter`): `imm` = helper id. See `engine::callback`.
    pub const CALL_CALLBACK: u8 = 0xf0;
    /// `bpf_tail_call` (helper 12, engine `interpreter`): the program in the PROG_ARRAY slot
    /// replaces the current frame (see `engine::tail_call`).
    #[doc(alias = "BPF_FUNC_tail_call")]
    pub const TAIL_CALL_HELPER: u8 = 0xd0;
}

/// Whether `op` is the first slot of a two-slot `ld_imm64` in pre-decoded form.
pub const fn is_ld_imm64(op: u8) -> bool {
    matches!(
        op,
        0x18 /* ebpf::LD_DW_IMM */ | op::LD_MAP_FD | op::LD_MAP_VALUE | op::LD_FUNC
    )
}

/// `BPF_FUNC_tail_call`: the helper id engines implement themselves.
pub const TAIL_CALL_HELPER: u32 = 12;

/// A pre-decoded instruction: validated, immediates sign-extended, jump targets absolute.
///
/// 16 bytes (one quarter of a cache line, an index is one shift): the instruction's `off` and
/// its jump target share [`Insn::target`], as no instruction needs both.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Insn {
    /// Immediate, sign-extended to 64 bits (`ld_imm64`: the full 64-bit value).
    pub imm: u64,
    /// Jumps and bpf-to-bpf calls: the absolute target; resolved helper calls: the helper's
    /// slot; the map-value `ld_imm64`: the offset in the value; every other instruction:
    /// `off` sign-extended to 32 bits (memory offset of loads, stores and atomics, width of
    /// movsx; read it with [`Insn::off`]).
    pub target: u32,
    /// Opcode: an `rbpf::ebpf` opcode or one of [`op`].
    pub op: u8,
    /// Destination register.
    pub dst: u8,
    /// Source register.
    pub src: u8,
}

impl Insn {
    /// The instruction's `off` field (loads, stores, atomics: the memory offset; movsx: the
    /// source width), for instructions whose [`Insn::target`] holds it.
    #[inline(always)]
    pub fn off(&self) -> i16 {
        self.target as i32 as i16
    }

    /// The memory offset of a load, store or atomic, sign-extended to 64 bits.
    #[inline(always)]
    pub fn mem_off(&self) -> u64 {
        self.target as i32 as i64 as u64
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn insn_is_sixteen_bytes_and_keeps_negative_offsets() {
        assert_eq!(std::mem::size_of::<Insn>(), 16);
        let d = Insn {
            target: -8i16 as i32 as u32,
            ..Insn::default()
        };
        assert_eq!(d.off(), -8);
        assert_eq!(d.mem_off(), (-8i64) as u64);
    }
}
