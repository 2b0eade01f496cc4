//! Explaining a failed run: the C source line of the failing instruction (from `.BTF.ext`).

#[cfg(test)]
use bpfvm::loader::Object;
use bpfvm::loader::ProgramDefinition;
use bpfvm::RunError;

/// The instruction index a run error names, if any.
pub fn failing_pc(e: &RunError) -> Option<usize> {
    let pc = match e {
        RunError::Fault { pc, .. }
        | RunError::BudgetExhausted { pc, .. }
        | RunError::CallDepth { pc, .. }
        | RunError::Helper { pc, .. }
        | RunError::BadCallx { pc, .. }
        | RunError::CorePoison { pc, .. }
        | RunError::InTailCall { pc, .. } => *pc,
        _ => return None,
    };
    (pc != usize::MAX).then_some(pc)
}

/// Extra lines for a failed run: the C source line of the failing instruction. Empty when
/// there is none. (What a faulting address named — packet, stack, context, which map's
/// value, element and CPU — and the CO-RE relocation a poisoned instruction stands for are
/// part of the error's own message.)
pub fn explain_failure(e: &RunError, def: &ProgramDefinition) -> String {
    match failing_pc(e).and_then(|pc| def.source_line(pc)) {
        Some(line) => format!(
            "\n  source: {}:{}: {}",
            line.file,
            line.line,
            line.source.trim()
        ),
        None => String::new(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use bpfvm::{Input, VerifierMode, Vm};

    #[test]
    fn a_fault_names_the_source_line_and_the_map_value() {
        let obj = Object::parse_named("globals", include_bytes!("../../tests/fixtures/globals.o"))
            .unwrap();
        let def = obj.program("write_rodata").unwrap();
        // The kernel refuses the write at load; the run-time check is what is tested here.
        let vm = Vm::builder()
            .cpus(1)
            .verifier(VerifierMode::Structural)
            .build();
        let maps = obj.create_maps(1).unwrap();
        let prog = vm.load(obj.vm_program(&def.name, &maps).unwrap()).unwrap();
        let e = vm
            .run(&prog, bpfvm::CpuId(0), &Input::packet(vec![0u8; 64]))
            .unwrap_err();
        let msg = e.to_string();
        assert!(msg.contains("read-only to programs"), "{msg}");
        assert!(msg.contains("map globals.rodata"), "{msg}");
        assert!(explain_failure(&e, def).contains("source: "), "{e}");
    }
}
