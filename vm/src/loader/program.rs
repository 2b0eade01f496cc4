//! A program found in an object, relocated in the kernel's pseudo-instruction forms
//! (see `docs/internals.md`, "Relocated programs").

use std::sync::Arc;

use super::strtab::SharedStr;
use crate::ProgramType;

/// `BPF_LD | BPF_IMM | BPF_DW`: the first half of a 64-bit immediate load.
pub(crate) const LD_IMM64: u8 = 0x18;
/// `BPF_JMP | BPF_CALL`.
pub(crate) const CALL: u8 = 0x85;
/// `src_reg` of a `ld_imm64` that loads a map handle.
#[doc(alias = "BPF_PSEUDO_MAP_FD")]
pub const PSEUDO_MAP_FD: u8 = 1;
/// `src_reg` of a `ld_imm64` that loads the address of a map value plus an offset.
#[doc(alias = "BPF_PSEUDO_MAP_VALUE")]
pub const PSEUDO_MAP_VALUE: u8 = 2;
/// `src_reg` of a `call` to a bpf-to-bpf subprogram.
#[doc(alias = "BPF_PSEUDO_CALL")]
pub const PSEUDO_CALL: u8 = 1;
/// `src_reg` of a `call` to a kernel function.
#[doc(alias = "BPF_PSEUDO_KFUNC_CALL")]
pub const PSEUDO_KFUNC_CALL: u8 = 2;
/// `src_reg` of an `ld_imm64` of a function's address (a callback): `imm` = the
/// function's first instruction relative to the next one (`BPF_PSEUDO_FUNC`).
pub const PSEUDO_FUNC: u8 = 4;

/// Opcode byte of an encoded instruction.
pub(crate) fn opcode(insn: u64) -> u8 {
    insn as u8
}

/// `src_reg` of an encoded instruction.
pub(crate) fn src_reg(insn: u64) -> u8 {
    ((insn >> 12) & 0xf) as u8
}

/// `imm` of an encoded instruction.
pub(crate) fn imm(insn: u64) -> i32 {
    (insn >> 32) as u32 as i32
}

/// `insn` with its `imm` replaced.
pub(crate) fn with_imm(insn: u64, imm: i32) -> u64 {
    (insn & 0xffff_ffff) | (u64::from(imm as u32) << 32)
}

/// `insn` with its `src_reg` replaced.
pub(crate) fn with_src_reg(insn: u64, src: u8) -> u64 {
    (insn & !0xf000) | (u64::from(src & 0xf) << 12)
}

/// One program of an object, ready for an engine.
///
/// Instructions are the kernel's 8-byte encoding, one little-endian `u64` each
/// (`opcode | dst << 8 | src << 12 | off << 16 | imm << 32`). Map references are
/// `ld_imm64` with `src_reg` [`PSEUDO_MAP_FD`] or [`PSEUDO_MAP_VALUE`] and `imm` = an
/// index into [`ProgramDefinition::maps`]; bpf-to-bpf calls are `call` with `src_reg`
/// [`PSEUDO_CALL`] and a relative `imm`, the called functions (from `.text` or any other
/// code section) appended after the program's own code as libbpf does. `__kconfig`
/// externs are `PSEUDO_MAP_VALUE` loads from the `.kconfig` map; an unresolved weak
/// `__ksym` is a plain `ld_imm64` of 0.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ProgramDefinition {
    /// Function name (`count_packets`).
    pub name: SharedStr,
    /// ELF section name (`xdp`, `kprobe/do_sys_open`).
    pub section: SharedStr,
    /// The type bpfvm runs the program as: libbpf's type for the section when bpfvm runs
    /// that type, else [`ProgramType::Unspecified`] (then [`Self::section_type`] says
    /// whether the section is unknown or of a type bpfvm cannot run, and
    /// [`Object::vm_program`](super::Object::vm_program) refuses it).
    pub program_type: ProgramType,
    /// What libbpf derives from the section name (kernel program type, expected attach
    /// type, sleepable); `None` for a section name libbpf does not know.
    pub section_type: Option<super::SectionType>,
    /// Relocated instructions.
    pub insns: Vec<u64>,
    /// The maps the program uses: indices into [`Object::maps`](super::Object::maps).
    /// A pseudo `ld_imm64`'s `imm` is a position in this list.
    pub maps: Vec<usize>,
    /// The subprograms appended after the program's code, in order, with the
    /// instruction index where each starts.
    pub subprograms: Vec<(SharedStr, usize)>,
    /// Source lines from `.BTF.ext` line info (`-g`): `(instruction index, line)`,
    /// sorted by instruction; empty without debug info. A line is shared by every
    /// program that links its instruction.
    pub lines: Vec<(usize, Arc<SourceLine>)>,
    /// CO-RE relocations that could not be resolved: `(instruction index, relocation)`,
    /// sorted. Each instruction is libbpf's poison call
    /// ([`CORE_POISON_HELPER`](super::CORE_POISON_HELPER)); a run that reaches one fails.
    pub core_poisons: Vec<(usize, Arc<super::CorePoison>)>,
    /// References to maps that could not be created: `(instruction index, poison)`,
    /// sorted, both halves of each poisoned `ld_imm64` (libbpf's
    /// `call 2001000000 + map index`, [`super::MapPoison`]); the verifier refuses the
    /// program only if one is reachable.
    pub map_poisons: Vec<(usize, Arc<super::MapPoison>)>,
    /// The kernel functions the program calls (`extern ... __ksym` functions): a kfunc
    /// call is `call` with `src_reg` [`PSEUDO_KFUNC_CALL`] and `imm` an index here, and
    /// `bpf_ksym_exists(f)` an `ld_imm64` with `src_reg`
    /// [`PSEUDO_KFUNC_ADDR`](crate::kfunc::PSEUDO_KFUNC_ADDR) and the same index;
    /// [`Vm::load`](crate::Vm::load) resolves them by name.
    pub kfuncs: Vec<crate::kfunc::KfuncImport>,
    /// A tracing program's context as its attach target's BTF prototype gives it
    /// ([`super::tracing_ctx`]); `None` for other programs and without a target BTF.
    pub tracing_ctx: Option<bpfvm_verifier::TracingCtx>,
    /// The target BTF the object was parsed with (the kernel's types, which the verifier
    /// checks loads through BTF pointers against); shared, not copied.
    pub kernel_btf: Option<TargetBtf>,
}

/// The target BTF a program was parsed with; two are equal when they are the same parse.
#[derive(Debug, Clone)]
pub struct TargetBtf(pub std::sync::Arc<super::Btf>);

impl PartialEq for TargetBtf {
    fn eq(&self, other: &TargetBtf) -> bool {
        std::sync::Arc::ptr_eq(&self.0, &other.0)
    }
}

impl Eq for TargetBtf {}

/// Where an instruction comes from in the C source (from `.BTF.ext` line info).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SourceLine {
    /// Source file as clang recorded it.
    pub file: SharedStr,
    /// The text of the line.
    pub source: SharedStr,
    /// Line number (1-based).
    pub line: u32,
    /// Column (1-based, 0 when unknown).
    pub column: u32,
}

impl ProgramDefinition {
    /// The instructions as bytes, 8 per instruction, as the kernel takes them.
    pub fn bytecode(&self) -> Vec<u8> {
        self.insns.iter().flat_map(|i| i.to_le_bytes()).collect()
    }

    /// The source line instruction `insn` belongs to: the last line info entry at or
    /// before it.
    pub fn source_line(&self, insn: usize) -> Option<&SourceLine> {
        let idx = self.lines.partition_point(|(i, _)| *i <= insn);
        self.lines[..idx].last().map(|(_, line)| &**line)
    }

    /// The unresolved CO-RE relocation whose poisoned instruction is `insn`, if any.
    pub fn core_poison(&self, insn: usize) -> Option<&super::CorePoison> {
        let i = self.core_poisons.partition_point(|(at, _)| *at < insn);
        self.core_poisons
            .get(i)
            .filter(|(at, _)| *at == insn)
            .map(|(_, p)| &**p)
    }

    /// The map whose poisoned reference is instruction `insn`, if any.
    pub fn map_poison(&self, insn: usize) -> Option<&super::MapPoison> {
        let i = self.map_poisons.partition_point(|(at, _)| *at < insn);
        self.map_poisons
            .get(i)
            .filter(|(at, _)| *at == insn)
            .map(|(_, p)| &**p)
    }

    /// Number of instructions of the program's own function (before subprograms).
    pub fn main_len(&self) -> usize {
        self.subprograms
            .first()
            .map_or(self.insns.len(), |(_, start)| *start)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn field_accessors_round_trip() {
        // r1 = 0 ll with src 0; call -1 with src 1
        let ld = 0x0000_0000_0000_0118u64;
        assert_eq!(opcode(ld), LD_IMM64);
        let ld = with_src_reg(with_imm(ld, 3), PSEUDO_MAP_VALUE);
        assert_eq!(src_reg(ld), 2);
        assert_eq!(imm(ld), 3);
        assert_eq!(opcode(ld), LD_IMM64);
        assert_eq!((ld >> 8) & 0xf, 1, "dst_reg kept");
        let call = with_imm(0x1085, -1);
        assert_eq!(imm(call), -1);
        assert_eq!(src_reg(call), PSEUDO_CALL);
    }
}
