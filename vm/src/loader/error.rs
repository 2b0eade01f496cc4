//! `LoadError`: everything that can make an object file unloadable.

use thiserror::Error;

/// Why an object file could not be loaded.
///
/// Every variant names where the problem is (section, symbol, instruction index inside
/// its section) so a user can find it with `llvm-objdump -dr`.
#[derive(Debug, Clone, PartialEq, Eq, Error)]
#[non_exhaustive]
pub enum LoadError {
    /// The bytes are not an ELF file (bad magic, too short for a header).
    #[error("not an ELF object: {reason}")]
    NotElf {
        /// What the ELF reader reported.
        reason: String,
    },
    /// The ELF file is structurally broken (offsets or sizes out of range, truncated).
    #[error("malformed ELF object: {reason}")]
    Malformed {
        /// What is broken.
        reason: String,
    },
    /// The object is a 32-bit ELF; BPF objects are ELF64.
    #[error("unsupported ELF class: BPF objects are 64-bit ELF")]
    WrongClass,
    /// The object is big-endian (`bpfeb`); bpfvm runs little-endian BPF only.
    #[error("unsupported byte order: big-endian BPF objects are not supported")]
    BigEndian,
    /// The object was built for another machine than BPF (`EM_BPF` = 247).
    #[error("wrong machine: e_machine is {machine}, expected 247 (EM_BPF)")]
    WrongMachine {
        /// The object's `e_machine`.
        machine: u16,
    },
    /// A `.maps` section exists but there is no `.BTF` to describe it.
    #[error("section .maps needs BTF, but the object has no .BTF section")]
    MissingBtf,
    /// The `.BTF` (or `.BTF.ext`) section cannot be parsed.
    #[error("bad BTF in {section}: {reason}")]
    BadBtf {
        /// `.BTF` or `.BTF.ext`.
        section: String,
        /// What is wrong.
        reason: String,
    },
    /// A map definition is malformed (missing or inconsistent attributes).
    #[error("bad definition of map {map}: {reason}")]
    BadMapDefinition {
        /// The map's name.
        map: String,
        /// What is wrong.
        reason: String,
    },
    /// A map asks for a map type the kernel does not define.
    #[error("map {map} has unknown map type {map_type}")]
    UnknownMapType {
        /// The map's name.
        map: String,
        /// The raw `BPF_MAP_TYPE_*` number.
        map_type: u32,
    },
    /// A relocation cannot be applied.
    #[error("bad relocation in section {section} at instruction {insn}: {reason}")]
    BadRelocation {
        /// The section holding the instruction.
        section: String,
        /// Instruction index inside that section.
        insn: usize,
        /// What is wrong.
        reason: String,
    },
    /// An instruction's encoding is not usable (e.g. a truncated `ld_imm64`).
    #[error("bad instruction in section {section} at instruction {insn}: {reason}")]
    BadInstruction {
        /// The section holding the instruction.
        section: String,
        /// Instruction index inside that section.
        insn: usize,
        /// What is wrong.
        reason: String,
    },
    /// A CO-RE relocation (`.BTF.ext`) is malformed, ambiguous, or does not fit its
    /// instruction (libbpf refuses such objects too). One that merely finds nothing in the
    /// target is not an error: its instruction is poisoned (see `CorePoison`).
    #[error("CO-RE relocation {relocation} in section {section} at instruction {insn}: {reason}")]
    CoreRelocation {
        /// The program section.
        section: String,
        /// Instruction index inside that section.
        insn: usize,
        /// Which relocation: `#index <kind> access`, libbpf's format.
        relocation: String,
        /// What is wrong.
        reason: String,
    },
    /// The program calls a kernel function (`__ksym` kfunc), which bpfvm does not provide.
    #[error("kfunc call to {name} in section {section} at instruction {insn} is not supported")]
    KfuncCall {
        /// The extern function's name (empty when unknown).
        name: String,
        /// The program section.
        section: String,
        /// Instruction index inside that section.
        insn: usize,
    },
    /// The program references an extern variable (`__kconfig`, `__ksym`) bpfvm cannot resolve.
    #[error("unresolved extern {name} in section {section} at instruction {insn}: {reason}")]
    UnresolvedExtern {
        /// The extern's name.
        name: String,
        /// The program section.
        section: String,
        /// Instruction index inside that section.
        insn: usize,
        /// Why it is unresolved.
        reason: String,
    },
    /// A `__kconfig` extern's value does not suit its type (libbpf's rules), or a strong
    /// one has no value; or a line of a kernel config is malformed.
    #[error("kconfig {name}: {reason}")]
    BadKconfig {
        /// The extern (`CONFIG_HZ`) or the config line.
        name: String,
        /// What is wrong.
        reason: String,
    },
    /// The program uses a map that cannot be loaded (see [`super::RefusedMap`]).
    #[error("uses map {map}, which cannot be loaded: {reason}")]
    MapUnavailable {
        /// The map's name.
        map: String,
        /// Why the map cannot be loaded.
        reason: Box<LoadError>,
    },
    /// The program's section name is not one libbpf knows, so its program type is unknown.
    #[error(
        "section name {section} (program {program}) is not one libbpf knows, so the \
         program type is unknown; give it explicitly (bpfvm run --type xdp, or \
         Object::vm_program_as) — types: {types}"
    )]
    UnknownProgramType {
        /// The program.
        program: String,
        /// Its section.
        section: String,
        /// The type names that may be given.
        types: String,
    },
    /// The program's type is one bpfvm does not run yet (its context is not modelled).
    #[error(
        "program {program} has program type {prog_type} (section {section}), which bpfvm \
         cannot run yet; types it runs: socket_filter, kprobe, sched_cls, sched_act, \
         tracepoint, xdp, cgroup_skb, perf_event, raw_tracepoint, tracing (fentry, fexit, \
         fmod_ret, tp_btf), syscall"
    )]
    CannotRunType {
        /// The program.
        program: String,
        /// Its section.
        section: String,
        /// The kernel type name (`lsm`).
        prog_type: &'static str,
    },
    /// A tracing program (`fentry/`, `fexit/`, `fmod_ret/`, `tp_btf/`) whose attach
    /// target's prototype types its context, and no target BTF was given.
    #[error(
        "program {program} (section {section}) is a tracing program: its arguments are typed \
         by the kernel's BTF of its attach target; give a target BTF (--btf FILE, e.g. \
         /sys/kernel/btf/vmlinux; Object::parse_with_btf in the API)"
    )]
    TracingNeedsBtf {
        /// The program.
        program: String,
        /// Its section.
        section: String,
    },
    /// The target BTF has no function (`fentry`) or raw tracepoint (`tp_btf`) of the
    /// section's name (libbpf: "failed to find kernel BTF type ID", `-ESRCH`).
    #[error("section {section}: the target BTF has no attach target {target:?} (a function, or for tp_btf the typedef btf_trace_{target})")]
    TracingTargetNotFound {
        /// The section.
        section: String,
        /// The function or tracepoint name.
        target: String,
    },
    /// A map type the kernel defines but bpfvm does not simulate.
    #[error("map {map} has map type {map_type}, which bpfvm does not support")]
    UnsupportedMapType {
        /// The map's name.
        map: String,
        /// The kernel's name of the type (`ringbuf`).
        map_type: &'static str,
    },
    /// Creating a map (or writing its initial data) failed in the maps crate.
    #[error("cannot create map {map}: {source}")]
    MapCreate {
        /// The map's name.
        map: String,
        /// What the maps crate reported.
        source: bpfvm_maps::MapError,
    },
    /// Reading a live map failed in the maps crate.
    #[error("cannot read map {map}: {source}")]
    MapRead {
        /// The map's name.
        map: String,
        /// What the maps crate reported.
        source: bpfvm_maps::MapError,
    },
    /// No program has this function or section name.
    #[error("no program named {name} in the object")]
    NoSuchProgram {
        /// The name asked for.
        name: String,
    },
    /// No map has this name or alias.
    #[error("no map named {name} in the object")]
    NoSuchMap {
        /// The name asked for.
        name: String,
    },
    /// The object file could not be read.
    #[error("cannot read {path}: {reason}")]
    Io {
        /// The file.
        path: String,
        /// The OS error.
        reason: String,
    },
    /// A program is longer after linking than the kernel allows
    /// ([`MAX_PROGRAM_INSNS`](super::limits::MAX_PROGRAM_INSNS)).
    #[error(
        "program {program} in section {section} is too large: {insns} instructions after \
         linking, the limit is {limit}"
    )]
    ProgramTooLarge {
        /// The program's name.
        program: String,
        /// Its section.
        section: String,
        /// Instructions after linking (at least; linking stops at the limit).
        insns: usize,
        /// The limit.
        limit: usize,
    },
    /// The programs of the object together are longer after linking than
    /// [`MAX_OBJECT_INSNS`](super::limits::MAX_OBJECT_INSNS).
    #[error(
        "the object's programs are too large: {insns} instructions after linking up to \
         program {program}, the limit for all programs together is {limit}"
    )]
    ObjectTooLarge {
        /// The program whose linking crossed the limit.
        program: String,
        /// Instructions linked so far, that program included.
        insns: usize,
        /// The limit.
        limit: usize,
    },
    /// Something in the object is larger than the loader can hold.
    #[error("{what} is too large: {size} bytes or more, the limit is {limit}")]
    TooLarge {
        /// What it is (section, table).
        what: String,
        /// Its size in bytes (for a file read up to the limit: the bytes read).
        size: u64,
        /// The limit in bytes.
        limit: u64,
    },
    /// An allocation whose size comes from the object (or a live map) failed.
    #[error("cannot allocate {bytes} bytes for {what}")]
    OutOfMemory {
        /// What the memory was for.
        what: String,
        /// How much was asked for.
        bytes: usize,
    },
    /// A feature bpfvm does not support, with what it is.
    #[error("unsupported in {section}: {what}")]
    Unsupported {
        /// Where it was found.
        section: String,
        /// What is unsupported.
        what: String,
    },
}

impl LoadError {
    /// The errno `bpf(BPF_PROG_LOAD)` / libbpf would report for this error.
    pub fn errno(&self) -> i32 {
        const EINVAL: i32 = 22;
        const ENOTSUP: i32 = 95;
        const ESRCH: i32 = 3;
        const ENOENT: i32 = 2;
        const E2BIG: i32 = 7;
        const ENOMEM: i32 = 12;
        match self {
            Self::Unsupported { .. } | Self::KfuncCall { .. } => ENOTSUP,
            Self::UnresolvedExtern { .. } => ESRCH,
            Self::TracingTargetNotFound { .. } => ESRCH,
            Self::MapUnavailable { reason, .. } => reason.errno(),
            Self::CannotRunType { .. } => ENOTSUP,
            Self::UnsupportedMapType { .. } => ENOTSUP,
            Self::MapCreate { source, .. } | Self::MapRead { source, .. } => source.errno(),
            Self::NoSuchMap { .. } | Self::NoSuchProgram { .. } => ENOENT,
            Self::ProgramTooLarge { .. } | Self::ObjectTooLarge { .. } | Self::TooLarge { .. } => {
                E2BIG
            }
            Self::OutOfMemory { .. } => ENOMEM,
            _ => EINVAL,
        }
    }

    pub(crate) fn out_of_memory(what: impl Into<String>, bytes: usize) -> Self {
        Self::OutOfMemory {
            what: what.into(),
            bytes,
        }
    }

    pub(crate) fn malformed(reason: impl std::fmt::Display) -> Self {
        Self::Malformed {
            reason: reason.to_string(),
        }
    }
}

impl From<object::read::Error> for LoadError {
    fn from(e: object::read::Error) -> Self {
        Self::malformed(e)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn messages_are_lowercase_and_name_the_place() {
        let e = LoadError::BadRelocation {
            section: "xdp".into(),
            insn: 4,
            reason: "not an ld_imm64".into(),
        };
        assert_eq!(
            e.to_string(),
            "bad relocation in section xdp at instruction 4: not an ld_imm64"
        );
        assert_eq!(e.errno(), 22);
        assert_eq!(LoadError::MissingBtf.errno(), 22);
        let core = LoadError::CoreRelocation {
            section: "kprobe/x".into(),
            insn: 1,
            relocation: "#0 <byte_off> [3] struct s.a (0:0 @ offset 0)".into(),
            reason: "ambiguous".into(),
        };
        assert_eq!(core.errno(), 22);
    }
}
