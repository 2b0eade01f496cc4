//! From a loaded program to a VM [`Program`]: relocated instructions plus the live maps
//! it uses, in the order its pseudo `ld_imm64`s index them.

use std::sync::Arc;

use super::error::LoadError;
use super::instance::ObjectMaps;
use super::Object;
use crate::Program;

impl Object {
    /// The program `name_or_section` as a VM [`Program`], with the live maps it uses
    /// from `maps` (made by [`Object::create_maps`]).
    ///
    /// Fails with [`LoadError::NoSuchProgram`] when no program has that name.
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
        let def = self
            .program(name_or_section)
            .ok_or_else(|| LoadError::NoSuchProgram {
                name: name_or_section.to_owned(),
            })?;
        let maps = def.maps.iter().map(|&i| Arc::clone(&maps.all()[i]));
        let lines = def
            .lines
            .iter()
            .map(|(i, l)| (*i, format!("{}:{}: {}", l.file, l.line, l.source.trim())))
            .collect();
        let mut program = Program::from_words(&def.insns, def.program_type)
            .with_maps(maps)
            .with_source_lines(lines);
        if let Some(license) = self.license() {
            program = program.with_license(license);
        }
        if def.program_type == crate::ProgramType::CgroupSkb {
            // BPF_CGROUP_INET_INGRESS (0) or BPF_CGROUP_INET_EGRESS (1), as libbpf derives it.
            program = program.with_attach_type(u32::from(def.section.ends_with("egress")));
        }
        Ok(program)
    }
}
