//! Raw BPF instructions (RFC 9669 encoding) and the opcode fields the verifier reads.

/// Instruction classes (low 3 bits of the opcode).
pub mod class {
    /// `BPF_LD`.
    pub const LD: u8 = 0x00;
    /// `BPF_LDX`.
    pub const LDX: u8 = 0x01;
    /// `BPF_ST`.
    pub const ST: u8 = 0x02;
    /// `BPF_STX`.
    pub const STX: u8 = 0x03;
    /// `BPF_ALU` (32-bit).
    pub const ALU: u8 = 0x04;
    /// `BPF_JMP`.
    pub const JMP: u8 = 0x05;
    /// `BPF_JMP32`.
    pub const JMP32: u8 = 0x06;
    /// `BPF_ALU64`.
    pub const ALU64: u8 = 0x07;
}

/// ALU operations (high 4 bits of an ALU opcode).
pub mod alu {
    /// `BPF_ADD`.
    pub const ADD: u8 = 0x00;
    /// `BPF_SUB`.
    pub const SUB: u8 = 0x10;
    /// `BPF_MUL`.
    pub const MUL: u8 = 0x20;
    /// `BPF_DIV`.
    pub const DIV: u8 = 0x30;
    /// `BPF_OR`.
    pub const OR: u8 = 0x40;
    /// `BPF_AND`.
    pub const AND: u8 = 0x50;
    /// `BPF_LSH`.
    pub const LSH: u8 = 0x60;
    /// `BPF_RSH`.
    pub const RSH: u8 = 0x70;
    /// `BPF_NEG`.
    pub const NEG: u8 = 0x80;
    /// `BPF_MOD`.
    pub const MOD: u8 = 0x90;
    /// `BPF_XOR`.
    pub const XOR: u8 = 0xa0;
    /// `BPF_MOV`.
    pub const MOV: u8 = 0xb0;
    /// `BPF_ARSH`.
    pub const ARSH: u8 = 0xc0;
    /// `BPF_END`.
    pub const END: u8 = 0xd0;

    /// The kernel's name of an ALU operation, as in "R1 pointer %s pointer prohibited".
    pub fn name(op: u8) -> &'static str {
        match op {
            ADD => "+=",
            SUB => "-=",
            MUL => "*=",
            DIV => "/=",
            OR => "|=",
            AND => "&=",
            LSH => "<<=",
            RSH => ">>=",
            NEG => "neg",
            MOD => "%=",
            XOR => "^=",
            MOV => "=",
            ARSH => "s>>=",
            END => "endian",
            _ => "?",
        }
    }
}

/// Jump operations (high 4 bits of a JMP/JMP32 opcode).
pub mod jmp {
    /// `BPF_JA`.
    pub const JA: u8 = 0x00;
    /// `BPF_JEQ`.
    pub const JEQ: u8 = 0x10;
    /// `BPF_JGT`.
    pub const JGT: u8 = 0x20;
    /// `BPF_JGE`.
    pub const JGE: u8 = 0x30;
    /// `BPF_JSET`.
    pub const JSET: u8 = 0x40;
    /// `BPF_JNE`.
    pub const JNE: u8 = 0x50;
    /// `BPF_JSGT`.
    pub const JSGT: u8 = 0x60;
    /// `BPF_JSGE`.
    pub const JSGE: u8 = 0x70;
    /// `BPF_CALL`.
    pub const CALL: u8 = 0x80;
    /// `BPF_EXIT`.
    pub const EXIT: u8 = 0x90;
    /// `BPF_JLT`.
    pub const JLT: u8 = 0xa0;
    /// `BPF_JLE`.
    pub const JLE: u8 = 0xb0;
    /// `BPF_JSLT`.
    pub const JSLT: u8 = 0xc0;
    /// `BPF_JSLE`.
    pub const JSLE: u8 = 0xd0;
    /// `BPF_JCOND` (`may_goto`).
    pub const JCOND: u8 = 0xe0;
}

/// Memory access modes (bits 5..7 of LD/LDX/ST/STX opcodes).
pub mod mode {
    /// `BPF_IMM` (`ld_imm64`).
    pub const IMM: u8 = 0x00;
    /// `BPF_ABS`.
    pub const ABS: u8 = 0x20;
    /// `BPF_IND`.
    pub const IND: u8 = 0x40;
    /// `BPF_MEM`.
    pub const MEM: u8 = 0x60;
    /// `BPF_MEMSX` (sign-extending load).
    pub const MEMSX: u8 = 0x80;
    /// `BPF_ATOMIC`.
    pub const ATOMIC: u8 = 0xc0;
}

/// Atomic operations (`imm` of `BPF_ATOMIC`).
pub mod atomic {
    /// `BPF_FETCH` flag.
    pub const FETCH: i32 = 0x01;
    /// `BPF_XCHG`.
    pub const XCHG: i32 = 0xe0 | FETCH;
    /// `BPF_CMPXCHG`.
    pub const CMPXCHG: i32 = 0xf0 | FETCH;
    /// `BPF_LOAD_ACQ`.
    pub const LOAD_ACQ: i32 = 0x100;
    /// `BPF_STORE_REL`.
    pub const STORE_REL: i32 = 0x110;
}

/// `src_reg` of a `call` to another BPF function.
pub const PSEUDO_CALL: u8 = 1;
/// `src_reg` of a `call` to a kernel function.
pub const PSEUDO_KFUNC_CALL: u8 = 2;
/// `src_reg` of an `ld_imm64` loading a map handle.
pub const PSEUDO_MAP_FD: u8 = 1;
/// `src_reg` of an `ld_imm64` loading the address of a map value.
pub const PSEUDO_MAP_VALUE: u8 = 2;
/// `src_reg` of an `ld_imm64` loading the address of a BPF function.
pub const PSEUDO_FUNC: u8 = 4;

/// One 8-byte instruction slot.
#[derive(Clone, Copy, PartialEq, Eq, Debug, Default)]
pub struct Insn {
    /// Opcode.
    pub code: u8,
    /// Destination register.
    pub dst: u8,
    /// Source register.
    pub src: u8,
    /// Offset.
    pub off: i16,
    /// Immediate.
    pub imm: i32,
}

impl Insn {
    /// Decodes a little-endian instruction.
    pub fn from_bytes(b: [u8; 8]) -> Insn {
        Insn {
            code: b[0],
            dst: b[1] & 0x0f,
            src: b[1] >> 4,
            off: i16::from_le_bytes([b[2], b[3]]),
            imm: i32::from_le_bytes([b[4], b[5], b[6], b[7]]),
        }
    }

    /// Decodes a 64-bit word (opcode in the low byte), as `rbpf` listings show them.
    pub fn from_word(w: u64) -> Insn {
        Insn::from_bytes(w.to_le_bytes())
    }

    /// The class.
    pub fn class(&self) -> u8 {
        self.code & 0x07
    }

    /// The ALU or jump operation.
    pub fn op(&self) -> u8 {
        self.code & 0xf0
    }

    /// Whether the source is a register (`BPF_X`) rather than the immediate.
    pub fn src_is_reg(&self) -> bool {
        self.code & 0x08 != 0
    }

    /// The memory access mode.
    pub fn mode(&self) -> u8 {
        self.code & 0xe0
    }

    /// Access size in bytes of a load or store.
    pub fn size(&self) -> u32 {
        match self.code & 0x18 {
            0x00 => 4,
            0x08 => 2,
            0x10 => 1,
            _ => 8,
        }
    }

    /// Whether this is an `ld_imm64` (two slots).
    pub fn is_ldimm64(&self) -> bool {
        self.code == (class::LD | mode::IMM | 0x18)
    }

    /// Whether this is a 64-bit ALU instruction.
    pub fn is_alu64(&self) -> bool {
        self.class() == class::ALU64
    }

    /// Whether this is a jump-class instruction.
    pub fn is_jmp_class(&self) -> bool {
        matches!(self.class(), class::JMP | class::JMP32)
    }

    /// Whether this is a helper call (`call imm`, `src` 0).
    pub fn is_helper_call(&self) -> bool {
        self.code == (class::JMP | jmp::CALL) && self.src == 0
    }

    /// Whether this is a call of another BPF function.
    pub fn is_pseudo_call(&self) -> bool {
        self.code == (class::JMP | jmp::CALL) && self.src == PSEUDO_CALL
    }

    /// Whether this is an `exit`.
    pub fn is_exit(&self) -> bool {
        self.code == (class::JMP | jmp::EXIT)
    }

    /// Whether this is a `may_goto`.
    pub fn is_may_goto(&self) -> bool {
        self.code == (class::JMP | jmp::JCOND) && self.src == 0
    }

    /// The jump offset of a jump (`imm` for `gotol`, else `off`).
    pub fn jmp_offset(&self) -> i64 {
        if self.code == (class::JMP32 | jmp::JA) {
            i64::from(self.imm)
        } else {
            i64::from(self.off)
        }
    }
}

/// Whether `code` is an opcode the kernel knows (`bpf_opcode_in_insntable`).
pub fn in_insntable(code: u8) -> bool {
    let class = code & 0x07;
    let op = code & 0xf0;
    let src = code & 0x08;
    match class {
        class::ALU | class::ALU64 => match op {
            alu::NEG => src == 0,
            // 32-bit: to_le and to_be; 64-bit: only bswap (to_le encoding).
            alu::END => class == class::ALU || src == 0,
            alu::ADD
            | alu::SUB
            | alu::MUL
            | alu::DIV
            | alu::OR
            | alu::AND
            | alu::LSH
            | alu::RSH
            | alu::MOD
            | alu::XOR
            | alu::MOV
            | alu::ARSH => true,
            _ => false,
        },
        class::JMP => match op {
            jmp::JA | jmp::CALL | jmp::EXIT | jmp::JCOND => src == 0,
            0xf0 => false,
            _ => true,
        },
        class::JMP32 => match op {
            jmp::JA => src == 0,
            jmp::CALL | jmp::EXIT | jmp::JCOND | 0xf0 => false,
            _ => true,
        },
        class::STX => matches!(code & 0xe0, mode::ATOMIC | mode::MEM),
        class::ST => code & 0xe0 == mode::MEM,
        class::LDX => {
            matches!(code & 0xe0, mode::MEM) || (code & 0xe0 == mode::MEMSX && code & 0x18 != 0x18)
        }
        _ => {
            // BPF_LD: ld_imm64, and the legacy packet loads of 1, 2 and 4 bytes.
            code == 0x18 || (matches!(code & 0xe0, mode::ABS | mode::IND) && code & 0x18 != 0x18)
        }
    }
}

/// Splits bytecode into instructions; `None` when the length is not a multiple of 8.
pub fn decode(bytes: &[u8]) -> Option<Vec<Insn>> {
    if bytes.len() % 8 != 0 {
        return None;
    }
    Some(
        bytes
            .chunks_exact(8)
            .map(|c| Insn::from_bytes(c.try_into().expect("8 bytes")))
            .collect(),
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn decodes_fields() {
        // r1 = *(u32 *)(r2 + -4)
        let i = Insn::from_bytes([0x61, 0x21, 0xfc, 0xff, 0, 0, 0, 0]);
        assert_eq!(
            (i.class(), i.dst, i.src, i.off, i.size()),
            (class::LDX, 1, 2, -4, 4)
        );
        assert_eq!(i.mode(), mode::MEM);
        let ld = Insn::from_word(0x1118);
        assert!(ld.is_ldimm64());
        assert_eq!((ld.dst, ld.src), (1, 1));
        assert!(decode(&[0; 9]).is_none());
        for ok in [
            0x07u8, 0x0f, 0x84, 0x87, 0xd4, 0xdc, 0xd7, 0x85, 0x95, 0x05, 0x06, 0x18, 0x20, 0x61,
            0x81, 0xdb, 0x7a, 0xe5,
        ] {
            assert!(in_insntable(ok), "{ok:#x}");
        }
        for bad in [
            0x8du8, 0x8c, 0xdf, 0x0d, 0x86, 0x96, 0x99, 0x38, 0x00, 0xe7, 0xf7, 0x98, 0xf5, 0xf6,
            0x8e,
        ] {
            assert!(!in_insntable(bad), "{bad:#x}");
        }
        assert_eq!(decode(&[0; 16]).map(|v| v.len()), Some(2));
    }
}
