//! The kernel's verdict when a program is loaded: [`VerifierMode::Kernel`] runs
//! `bpfvm-verifier` on the program (its maps described as the kernel sees them), so a
//! program the Linux kernel would refuse is refused here too, with the kernel's reason and
//! the C source line. See `docs/verifier.md`.

use bpfvm_maps::MapFlags;
use bpfvm_verifier::{Insn, MapInfo, Options, ProgType, Verdict, VerifierError};

use crate::error::PrepareError;
use crate::program::Program;
use crate::ProgramType;

pub use bpfvm_verifier::Privilege;

/// Which checks [`crate::Vm::load`] applies before a program may run. Run-time checks (of
/// every memory access, the instruction budget) stay on in every mode.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default)]
pub enum VerifierMode {
    /// The Linux kernel's verdict (6.x): register types, ranges, packet and map bounds,
    /// NULL checks, helper arguments, loops, in the kernel's words. Programs with no
    /// kernel program type (`ProgramType::Unspecified`, a raw context) get the structural
    /// checks only.
    #[default]
    Kernel,
    /// bpfvm's structural checks only (opcodes, reserved fields, jump targets, registers
    /// read before written): for ISA experiments and the conformance vectors, which are
    /// not verifier-clean programs.
    Structural,
}

impl std::str::FromStr for VerifierMode {
    type Err = String;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        match s {
            "kernel" => Ok(VerifierMode::Kernel),
            "structural" => Ok(VerifierMode::Structural),
            _ => Err(format!("unknown verifier mode {s:?} (kernel, structural)")),
        }
    }
}

/// The kernel's program type for bpfvm's, `None` for a raw context.
pub fn kernel_prog_type(t: ProgramType) -> Option<ProgType> {
    Some(match t {
        ProgramType::SocketFilter => ProgType::SocketFilter,
        ProgramType::Kprobe => ProgType::Kprobe,
        ProgramType::SchedCls => ProgType::SchedCls,
        ProgramType::SchedAct => ProgType::SchedAct,
        ProgramType::Tracepoint => ProgType::Tracepoint,
        ProgramType::Xdp => ProgType::Xdp,
        ProgramType::CgroupSkb => ProgType::CgroupSkb,
        ProgramType::PerfEvent => ProgType::PerfEvent,
        ProgramType::RawTracepoint => ProgType::RawTracepoint,
        // The prototype comes with the program ([`Program::tracing_ctx`]).
        ProgramType::Tracing => ProgType::Tracing(bpfvm_verifier::TracingCtx::default()),
        ProgramType::Syscall => ProgType::Syscall,
        ProgramType::Unspecified => return None,
    })
}

/// Whether a license string is GPL-compatible (`license_is_gpl_compatible`).
pub fn license_is_gpl_compatible(license: &str) -> bool {
    matches!(
        license,
        "GPL"
            | "GPL v2"
            | "GPL and additional rights"
            | "Dual BSD/GPL"
            | "Dual MIT/GPL"
            | "Dual MPL/GPL"
    )
}

/// What the kernel's verifier knows of the program's maps.
fn map_infos(program: &Program) -> Vec<MapInfo> {
    program
        .maps()
        .iter()
        .zip(program.kernel_maps())
        .map(|(m, k)| match k {
            Some(map) => {
                let spec = map.spec();
                let mut info = MapInfo::new(
                    spec.map_type as u32,
                    spec.key_size,
                    spec.value_size,
                    spec.max_entries,
                );
                info.name = spec.name.clone();
                info.map_flags = spec.map_flags;
                if let Some(offset) = map.spin_lock_off() {
                    // Only a map whose value type (BTF) holds a lock has one.
                    info.btf = true;
                    info.fields.push(bpfvm_verifier::SpecialField {
                        kind: bpfvm_verifier::FieldKind::SpinLock,
                        offset,
                        size: 4,
                    });
                }
                if let Some(offset) = map.timer_off() {
                    info.btf = true;
                    info.fields.push(bpfvm_verifier::SpecialField {
                        kind: bpfvm_verifier::FieldKind::Timer,
                        offset,
                        size: 16,
                    });
                }
                let rdonly = spec.map_flags & bpfvm_maps::flags::create::RDONLY_PROG != 0;
                if map.is_frozen() && rdonly && spec.map_type == bpfvm_maps::MapType::Array {
                    let mut value = vec![0u8; spec.value_size as usize];
                    if map
                        .lookup(&0u32.to_ne_bytes(), &mut value, MapFlags::ANY.bits())
                        .is_ok()
                    {
                        info.frozen_value = Some(value);
                    }
                }
                if let Some(t) = map.inner_template() {
                    // The kernel's `inner_map_meta`: what a lookup in the outer map yields.
                    let mut inner =
                        MapInfo::new(t.map_type as u32, t.key_size, t.value_size, t.max_entries);
                    inner.map_flags = t.map_flags;
                    inner.fields = template_fields(t);
                    inner.btf = !inner.fields.is_empty();
                    info.inner = Some(Box::new(inner));
                }
                info
            }
            None => {
                // A map of another implementation: only its sizes and access are known.
                let mut info = MapInfo::new(
                    bpfvm_verifier::map_type::HASH,
                    m.key_size() as u32,
                    m.value_size() as u32,
                    1,
                );
                if m.read_only_for_program() {
                    info.map_flags = bpfvm_verifier::BPF_F_RDONLY_PROG;
                }
                info
            }
        })
        .collect()
}

/// The special fields of an inner map template (its spin lock and timer, from BTF).
fn template_fields(t: &bpfvm_maps::of_maps::InnerTemplate) -> Vec<bpfvm_verifier::SpecialField> {
    use bpfvm_verifier::{FieldKind, SpecialField};
    let lock = t.spin_lock.map(|offset| SpecialField {
        kind: FieldKind::SpinLock,
        offset,
        size: 4,
    });
    let timer = t.timer.map(|offset| SpecialField {
        kind: FieldKind::Timer,
        offset,
        size: 16,
    });
    lock.into_iter().chain(timer).collect()
}

/// Runs the kernel's verifier on `program` as a loader with `privilege` would load it,
/// on a machine with `ncpus` possible CPUs. `Ok(None)` for raw-context programs, which
/// the kernel has no type for.
pub fn verify(
    program: &Program,
    privilege: Privilege,
    ncpus: u32,
) -> Result<Option<Verdict>, PrepareError> {
    verify_with_kfuncs(program, privilege, ncpus, &[])
}

/// [`verify`] for a program whose kfunc calls (`imm`) index `kfuncs`.
pub fn verify_with_kfuncs(
    program: &Program,
    privilege: Privilege,
    ncpus: u32,
    kfuncs: &[bpfvm_verifier::Kfunc],
) -> Result<Option<Verdict>, PrepareError> {
    let Some(mut prog_type) = kernel_prog_type(program.prog_type()) else {
        return Ok(None);
    };
    if let (ProgType::Tracing(_), Some(c)) = (prog_type, program.tracing_ctx()) {
        prog_type = ProgType::Tracing(c);
    }
    let Some(insns) = bpfvm_verifier::decode(program.bytecode()) else {
        return Err(PrepareError::BadLength {
            len: program.bytecode().len(),
        });
    };
    let maps = map_infos(program);
    let prog = bpfvm_verifier::Program {
        insns: &insns,
        prog_type,
        expected_attach_type: program.expected_attach_type(),
        maps: &maps,
        gpl_compatible: program.license().is_none_or(license_is_gpl_compatible),
        func_info: program.btf_func_info(),
        kfuncs,
        btf: program
            .kernel_btf()
            .map(|b| b as &dyn bpfvm_verifier::KernelBtf),
    };
    let opts = Options {
        privilege,
        nr_cpus: ncpus,
        collect_facts: false,
    };
    // A map of another implementation tells nothing of its value's fields.
    let foreign = program.kernel_maps().iter().any(Option::is_none);
    bpfvm_verifier::verify(&prog, &opts).map(Some).map_err(|e| {
        let e = if foreign { timer_fields_unknown(e) } else { e };
        verifier_error(program, e)
    })
}

/// [`map_infos`] knows the `struct bpf_timer` field of bpfvm's maps
/// ([`bpfvm_maps::Map::timer_off`], from the object's BTF) but not of a map of another
/// implementation, so with such a map the verifier's refusals of a timer argument ("map
/// 'm' has to have BTF in order to use bpf_timer", "... has no valid bpf_timer", "off N
/// doesn't point to 'struct bpf_timer' ...") are not the kernel's verdict: they become
/// "not modelled" (the program loads unverified, as the kernel's verdict is unknown).
fn timer_fields_unknown(mut error: VerifierError) -> VerifierError {
    let timer_arg = error.rule == bpfvm_verifier::Rule::HelperArgs
        && (error.message.ends_with("in order to use bpf_timer")
            || error.message.ends_with("has no valid bpf_timer")
            || error.message.contains("'struct bpf_timer' that is at"));
    if timer_arg {
        error.rule = bpfvm_verifier::Rule::Unsupported;
        error.message = format!(
            "{} (bpfvm does not pass a map's bpf_timer field to its verifier)",
            error.message
        );
    }
    error
}

/// The error for a refused program, with the source line of its instruction; a refused
/// poisoned instruction is named as the CO-RE relocation it stands for (as libbpf
/// rewrites the kernel's log).
fn verifier_error(program: &Program, mut error: VerifierError) -> PrepareError {
    if let Some(poison) = error.insn.and_then(|i| program.core_poison(i)) {
        error.message = format!("{}: {poison}", error.message);
    }
    let line = error
        .insn
        .and_then(|i| program.source_line(i))
        .map(str::to_owned);
    PrepareError::Verifier {
        error: Box::new(error),
        line,
    }
}

/// Decodes a program's bytecode into instructions (`None`: not whole instructions).
pub fn decode(bytecode: &[u8]) -> Option<Vec<Insn>> {
    bpfvm_verifier::decode(bytecode)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn error(rule: bpfvm_verifier::Rule, message: &str) -> VerifierError {
        VerifierError {
            insn: Some(3),
            rule,
            errno: 22,
            message: message.into(),
            state: String::new(),
        }
    }

    #[test]
    fn timer_refusals_without_the_maps_btf_are_not_the_kernels() {
        use bpfvm_verifier::Rule;
        for m in [
            "map 'timers' has to have BTF in order to use bpf_timer",
            "map 'timers' has no valid bpf_timer",
            "off 0 doesn't point to 'struct bpf_timer' that is at 8",
        ] {
            let e = timer_fields_unknown(error(Rule::HelperArgs, m));
            assert_eq!(e.rule, Rule::Unsupported, "{m}");
            assert!(e.message.starts_with(m));
        }
        // Other refusals keep their verdict.
        let other = "R1 type=fp expected=map_value";
        let e = timer_fields_unknown(error(Rule::HelperArgs, other));
        assert_eq!((e.rule, e.message.as_str()), (Rule::HelperArgs, other));
    }
}
