//! A map that cannot be created referenced in live and in dead code
//! (tests/fixtures/src/dead_map.bpf.c, a STACK_TRACE map with sizes 0 as bcc's `capable`
//! has it): the loader leaves it out and poisons its references as libbpf does, and the
//! verifier refuses only the programs where one is reachable, in the kernel's words
//! ("invalid func unknown#2001000000") with libbpf's and bpfvm's reason; code that a
//! frozen `.rodata` constant switches off is never walked, code a `.bss` variable switches
//! off is. The kernel's verdicts: conformance/tests/kernel_dead_maps.rs.

mod common;

use bpfvm::loader::LoadError;
use bpfvm::{CpuId, Input, ObjectLoader, PrepareError, RunError};

/// `pt_regs` of a kprobe.
fn regs() -> Input {
    Input::context(vec![0u8; 168])
}

#[test]
fn only_reachable_references_to_the_uncreated_map_are_refused() {
    let vm = common::root_vm(1);
    let obj = ObjectLoader::new(common::fixture("dead_map"))
        .load(&vm)
        .expect("the object loads without the stack map");
    let refused: Vec<_> = obj
        .object()
        .refused_maps()
        .iter()
        .map(|m| &*m.name)
        .collect();
    assert_eq!(refused, ["stacks"]);
    assert!(matches!(
        obj.object().refused_maps()[0].error,
        LoadError::MapCreate { .. }
    ));
    for name in ["stack_live", "stack_runtime_flag"] {
        let e = obj.program(name).unwrap_err();
        assert_eq!(e.errno(), 22, "{name}: {e}");
        let text = e.to_string();
        assert!(
            text.contains(
                "invalid func unknown#2001000000: BPF map 'stacks' is referenced but wasn't \
                 created (cannot create map stacks: "
            ),
            "{name}: {text}"
        );
        assert!(
            text.contains("bpf_get_stackid(ctx, &stacks, 0)"),
            "{name}: {text}"
        );
    }
    for name in ["stack_dead_flag", "stack_dead_mode", "no_stacks"] {
        let prog = obj.program(name).unwrap_or_else(|e| panic!("{name}: {e}"));
        vm.run(prog, CpuId(0), &regs()).unwrap();
    }
    // Three runs counted in `seen`.
    assert_eq!(obj.array::<u64>("seen").unwrap().get(0).unwrap(), 3);
}

#[test]
fn the_refusal_names_the_poisoned_instruction() {
    let vm = common::root_vm(1);
    let (obj, maps) = common::fixture("dead_map")
        .create_maps_per_map(1, &Default::default())
        .unwrap();
    let live = obj.program("stack_live").unwrap();
    let at: Vec<usize> = live.map_poisons.iter().map(|(at, _)| *at).collect();
    assert_eq!(at, [12, 13], "both halves of `r2 = stacks ll`");
    let e = vm
        .load(obj.vm_program("stack_live", &maps).unwrap())
        .unwrap_err();
    let PrepareError::Verifier { error, .. } = &e else {
        panic!("{e:?}")
    };
    assert_eq!(error.insn, Some(12));
    assert_eq!(error.rule, bpfvm::verifier::Rule::HelperNotAllowed);
}

#[test]
fn a_set_rodata_flag_makes_the_reference_live() {
    // `want_stacks = 1` before load: the branch is taken, the poisoned call reached.
    let vm = common::root_vm(1);
    let obj = ObjectLoader::new(common::fixture("dead_map"))
        .set_global("want_stacks", &1u8)
        .unwrap()
        .load(&vm)
        .unwrap();
    let e = obj.program("stack_dead_flag").unwrap_err();
    assert!(
        e.to_string().contains("invalid func unknown#2001000000"),
        "{e}"
    );
    assert!(obj.program("stack_dead_mode").is_ok());
}

#[test]
fn without_the_verifier_a_run_that_reaches_the_reference_fails() {
    let vm = common::structural_vm(1);
    let (obj, maps) = common::fixture("dead_map")
        .create_maps_per_map(1, &Default::default())
        .unwrap();
    let prog = vm
        .load(obj.vm_program("stack_live", &maps).unwrap())
        .expect("structural checks let the poisoned call through");
    let e = vm.run(&prog, CpuId(0), &regs()).unwrap_err();
    let RunError::CorePoison { pc, relocation, .. } = &e else {
        panic!("{e:?}")
    };
    assert_eq!(*pc, 12);
    assert!(
        relocation.starts_with("BPF map 'stacks' is referenced but wasn't created (cannot"),
        "{relocation}"
    );
    // One whose reference is dead runs.
    let prog = vm
        .load(obj.vm_program("stack_dead_flag", &maps).unwrap())
        .unwrap();
    assert_eq!(vm.run(&prog, CpuId(0), &regs()).unwrap().retval, 0);
}

#[test]
fn a_global_data_map_not_created_poisons_its_value_loads() {
    // big_bss.o: a 1.5 GiB `.bss` over the default map memory limit; `poke` loads the
    // address of a variable in it (`ld_imm64` of a map value, poisoned too).
    let (obj, _) = common::fixture("big_bss")
        .create_maps_per_map(1, &Default::default())
        .unwrap();
    let poke = obj.program("poke").unwrap();
    assert!(!poke.map_poisons.is_empty());
    assert!(poke
        .map_poisons
        .iter()
        .all(|(_, p)| p.map.as_str() == "big_bss.bss" && p.map_index == 0));
    assert!(poke.maps.is_empty());
    let vm = common::root_vm(1);
    let (obj, maps) = common::fixture("big_bss")
        .create_maps_per_map(1, vm.map_memory())
        .unwrap();
    let e = vm.load(obj.vm_program("poke", &maps).unwrap()).unwrap_err();
    assert!(
        e.to_string().contains(
            "invalid func unknown#2001000000: BPF map 'big_bss.bss' is referenced but wasn't \
             created (cannot create map big_bss.bss: "
        ),
        "{e}"
    );
}
