//! The form the engines run of a program whose references to maps that were not created
//! are poisoned (libbpf's `call 2001000000 + map index`, see
//! [`crate::loader::MapPoison`]): the kernel's verifier checks the poisoned calls as they
//! are (refused only where reachable, "invalid func unknown#2001000003"), and the engines
//! run them as poisoned instructions ([`crate::insn::CORE_POISON_HELPER`]), so a run that
//! reaches one (structural verifier) ends with [`crate::RunError::CorePoison`] naming the
//! map.

use std::sync::Arc;

use crate::loader::is_map_poison;
use crate::program::Program;

/// `program` with each poisoned map reference as a poisoned instruction, named (the
/// loader's description, or the map's number); `None` when it has none.
pub(crate) fn run_form(program: &Program) -> Option<Program> {
    let code = program.bytecode();
    let mut run: Option<Vec<u8>> = None;
    let mut names = Vec::new();
    for (pc, insn) in code.chunks_exact(8).enumerate() {
        let imm = i32::from_le_bytes([insn[4], insn[5], insn[6], insn[7]]);
        // `call` with src 0 (a helper call).
        if insn[0] != 0x85 || insn[1] >> 4 != 0 || !is_map_poison(imm) {
            continue;
        }
        let bytes = run.get_or_insert_with(|| code.to_vec());
        bytes[pc * 8 + 4..pc * 8 + 8]
            .copy_from_slice(&crate::insn::CORE_POISON_HELPER.to_le_bytes());
        if program.core_poison(pc).is_none() {
            names.push((
                pc,
                Arc::<str>::from(format!(
                    "BPF map #{} is referenced but wasn't created",
                    imm - crate::loader::POISON_LDIMM64_MAP_BASE
                )),
            ));
        }
    }
    let run = run?;
    let mut poisons = program.core_poisons().to_vec();
    poisons.extend(names);
    Some(program.with_bytecode(run).with_core_poisons(poisons))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::ProgramType;

    fn call(imm: i32) -> u64 {
        0x85 | (u64::from(imm as u32) << 32)
    }

    #[test]
    fn poisoned_map_calls_become_poisoned_instructions() {
        let poison = crate::loader::POISON_LDIMM64_MAP_BASE + 3;
        // r0 = 0; if r0 == 0 goto +2; call poison; call poison; exit
        let words = [
            0xb7,
            0x0000_0002_0000_0015,
            call(poison),
            call(poison),
            0x95,
        ];
        let named: Arc<str> = Arc::from("BPF map 'm' is referenced but wasn't created (x)");
        let p = Program::from_words(&words, ProgramType::Xdp)
            .with_core_poisons([(2, Arc::clone(&named))]);
        let run = run_form(&p).expect("rewritten");
        let core = call(crate::insn::CORE_POISON_HELPER).to_le_bytes();
        assert_eq!(&run.bytecode()[16..24], core);
        assert_eq!(&run.bytecode()[24..32], core);
        assert_eq!(&run.bytecode()[..16], &p.bytecode()[..16]);
        assert_eq!(run.core_poison(2), Some(&named));
        assert_eq!(
            run.core_poison(3).map(|s| &**s),
            Some("BPF map #3 is referenced but wasn't created")
        );
    }

    #[test]
    fn other_calls_are_left_alone() {
        let words = [call(1), call(crate::kfunc::POISON_CALL_KFUNC_BASE), 0x95];
        assert!(run_form(&Program::from_words(&words, ProgramType::Xdp)).is_none());
        // A bpf-to-bpf call (src 1) with such an imm is no helper call.
        let local = call(crate::loader::POISON_LDIMM64_MAP_BASE) | 0x1000;
        assert!(run_form(&Program::from_words(&[local, 0x95], ProgramType::Xdp)).is_none());
    }
}
