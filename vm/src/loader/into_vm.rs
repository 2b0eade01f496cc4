//! From a loaded program to a VM [`Program`]: relocated instructions plus the live maps
//! it uses, in the order its pseudo `ld_imm64`s index them.

use std::sync::Arc;

use super::error::LoadError;
use super::instance::ObjectMaps;
use super::section_types::KernelProgType;
use super::{Object, ProgramDefinition};
use crate::{Program, ProgramType};

impl Object {
    /// The program `name_or_section` as a VM [`Program`], with the live maps it uses
    /// from `maps` (made by [`Object::create_maps`]).
    ///
    /// Fails with [`LoadError::NoSuchProgram`] when no program has that name, with the
    /// program's own error when it was refused at load ([`Object::refused_programs`]),
    /// with [`LoadError::UnknownProgramType`] when libbpf does not know its section name
    /// (give the type with [`Object::vm_program_as`]) and with
    /// [`LoadError::CannotRunType`] for a kernel program type bpfvm does not run yet.
    ///
    /// ```
    /// use bpfvm::loader::Object;
    /// use bpfvm::{Input, Vm};
    ///
    /// let bytes = include_bytes!("../../tests/fixtures/percpu_counter.o");
    /// let obj = Object::parse_named("percpu_counter", bytes)?;
    /// let maps = obj.create_maps(2)?;
    /// let vm = Vm::builder().cpus(2).build();
    /// let prog = vm.load(obj.vm_program("count_packets", &maps)?).unwrap();
    /// vm.run_on_all(&prog, 3, &Input::packet(vec![0; 64])).unwrap();
    /// let mut total = [0u8; 8];
    /// maps.get("total").unwrap().lookup(&0u32.to_ne_bytes(), &mut total, 0).unwrap();
    /// assert_eq!(u64::from_ne_bytes(total), 2 * 3);
    /// # Ok::<(), bpfvm::loader::LoadError>(())
    /// ```
    pub fn vm_program(
        &self,
        name_or_section: &str,
        maps: &ObjectMaps,
    ) -> Result<Program, LoadError> {
        let def = self.program_result(name_or_section)?;
        Ok(self.build(def, self.run_type(name_or_section, None)?, maps))
    }

    /// The type bpfvm runs program `name_or_section` as: `explicit` when given, else
    /// libbpf's type for its section; or the error [`Object::vm_program`] /
    /// [`Object::vm_program_as`] would give.
    ///
    /// ```
    /// use bpfvm::loader::{KernelProgType, Object};
    /// use bpfvm::ProgramType;
    ///
    /// let obj = Object::parse_named("multi", include_bytes!("../../tests/fixtures/multi.o"))?;
    /// assert_eq!(obj.run_type("tc_prog", None)?, ProgramType::SchedCls);
    /// assert!(obj.run_type("custom_prog", None).is_err());
    /// assert_eq!(obj.run_type("custom_prog", Some(KernelProgType::Xdp))?, ProgramType::Xdp);
    /// # Ok::<(), bpfvm::loader::LoadError>(())
    /// ```
    pub fn run_type(
        &self,
        name_or_section: &str,
        explicit: Option<KernelProgType>,
    ) -> Result<ProgramType, LoadError> {
        let def = self.program_result(name_or_section)?;
        let t = match (explicit, def.section_type) {
            (Some(t), _) => t,
            (None, Some(s)) => s.prog_type,
            (None, None) => {
                return Err(LoadError::UnknownProgramType {
                    program: def.name.to_string(),
                    section: def.section.to_string(),
                    types: KernelProgType::names(),
                })
            }
        };
        runnable(def, t)
    }

    /// [`Object::vm_program`] with the program type given explicitly, as
    /// `bpf_program__set_type` would (for a legacy section name such as `xdp_pass` that
    /// libbpf does not know, or to run a program as another type).
    ///
    /// ```
    /// use bpfvm::loader::{KernelProgType, LoadError, Object};
    ///
    /// let bytes = include_bytes!("../../tests/fixtures/multi.o");
    /// let obj = Object::parse_named("multi", bytes)?;
    /// let maps = obj.create_maps(1)?;
    /// let refused = obj.vm_program("custom_prog", &maps).unwrap_err();
    /// assert!(matches!(refused, LoadError::UnknownProgramType { .. }));
    /// let prog = obj.vm_program_as("custom_prog", &maps, KernelProgType::Xdp)?;
    /// assert_eq!(prog.prog_type(), bpfvm::ProgramType::Xdp);
    /// # Ok::<(), LoadError>(())
    /// ```
    pub fn vm_program_as(
        &self,
        name_or_section: &str,
        maps: &ObjectMaps,
        prog_type: KernelProgType,
    ) -> Result<Program, LoadError> {
        let def = self.program_result(name_or_section)?;
        Ok(self.build(def, runnable(def, prog_type)?, maps))
    }

    fn build(&self, def: &ProgramDefinition, prog_type: ProgramType, maps: &ObjectMaps) -> Program {
        let maps = def.maps.iter().map(|&i| Arc::clone(&maps.all()[i]));
        let poisons = def
            .core_poisons
            .iter()
            .map(|(pc, p)| (*pc, Arc::<str>::from(p.to_string())))
            .chain(
                def.map_poisons
                    .iter()
                    .map(|(pc, p)| (*pc, Arc::<str>::from(p.to_string()))),
            );
        let lines = def
            .lines
            .iter()
            .map(|(i, l)| (*i, format!("{}:{}: {}", l.file, l.line, l.source.trim())))
            .collect();
        // libbpf passes BTF function info for an object built with `-g`: one with BTF and
        // line info for the program.
        let func_info = self.btf().is_some() && !def.lines.is_empty();
        let mut program = Program::from_words(&def.insns, prog_type)
            .with_maps(maps)
            .with_source_lines(lines)
            .with_core_poisons(poisons)
            .with_btf_func_info(func_info)
            .with_kfuncs(def.kfuncs.clone());
        if let Some(c) = def.tracing_ctx {
            program = program.with_tracing_ctx(c);
        }
        if let Some(btf) = &def.kernel_btf {
            program = program.with_kernel_btf(btf.0.clone());
        }
        if let Some(license) = self.license() {
            program = program.with_license(license);
        }
        // The expected attach type libbpf passes (cgroup_skb ingress 0 / egress 1, ...).
        if let Some(attach) = def.section_type.and_then(|s| s.expected_attach_type) {
            program = program.with_attach_type(attach);
        } else if prog_type == ProgramType::CgroupSkb {
            // `cgroup/skb` (no attach type in libbpf's table): as libbpf derives it.
            program = program.with_attach_type(u32::from(def.section.ends_with("egress")));
        }
        program
    }
}

/// The type bpfvm runs `def` as when its kernel type is `t`, or why it cannot.
fn runnable(def: &ProgramDefinition, t: KernelProgType) -> Result<ProgramType, LoadError> {
    // Of the tracing attach types, bpfvm types tp_btf, fentry, fexit and fmod_ret (23..=26);
    // iterators and the multi-function forms have other contexts.
    let typed_tracing = def
        .section_type
        .filter(|s| s.prog_type == t)
        .and_then(|s| s.expected_attach_type)
        .is_none_or(|a| (23..=26).contains(&a));
    t.runnable()
        .filter(|_| t != KernelProgType::Tracing || typed_tracing)
        .ok_or_else(|| LoadError::CannotRunType {
            program: def.name.to_string(),
            section: def.section.to_string(),
            prog_type: t.name(),
        })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn types_bpfvm_cannot_run_are_refused_by_name() {
        let obj =
            Object::parse_named("multi", include_bytes!("../../tests/fixtures/multi.o")).unwrap();
        let maps = obj.create_maps(1).unwrap();
        let e = obj
            .vm_program_as("xdp_prog", &maps, KernelProgType::Lsm)
            .unwrap_err();
        assert_eq!(
            e,
            LoadError::CannotRunType {
                program: "xdp_prog".into(),
                section: "xdp".into(),
                prog_type: "lsm",
            }
        );
        assert!(e.to_string().contains("type lsm"), "{e}");
        assert_eq!(e.errno(), 95);
    }
}
