//! Checks that every program of the several-programs object `multi.o` runs with the
//! context its section's program type asks for, and that they share one map; `skb_prog`
//! (cgroup_skb returning 5, outside [0, 1]) is refused at load: by the kernel's verifier,
//! and by the structural mode's return-value check. `custom_prog`'s section `bpfvm/custom`
//! is not a name libbpf knows: it is refused until its type is given.

mod common;

use bpfvm::loader::{KernelProgType, LoadError};
use bpfvm::{CpuId, Input, PrepareError, ProgramType};

#[test]
fn each_program_runs_and_counts_in_the_shared_map() {
    let (obj, maps, vm) = common::fixture_vm("multi", 2);
    let expected = [
        ("xdp_prog", 0u64),
        ("tc_prog", 1),
        ("sock_prog", 2),
        ("kprobe_prog", 3),
        ("tp_prog", 4),
        ("custom_prog", 6),
        ("xdp_second", 7),
    ];
    let refused = vm.load(obj.vm_program("skb_prog", &maps).unwrap());
    let Err(PrepareError::Verifier { error, line }) = &refused else {
        panic!("{refused:?}");
    };
    assert_eq!(error.rule, bpfvm::verifier::Rule::ReturnValue);
    assert!(
        error.message.ends_with("should have been in [0, 1]"),
        "{}",
        error.message
    );
    assert!(line.as_deref().unwrap_or("").contains("return bump(5);"));
    let refused = common::structural_vm(2).load(obj.vm_program("skb_prog", &maps).unwrap());
    assert!(
        matches!(
            refused,
            Err(PrepareError::ReturnValueOutOfRange { value: 5, .. })
        ),
        "{refused:?}"
    );
    for (round, cpu) in [(1u64, 0u32), (2, 1)] {
        for (name, number) in expected {
            let def = obj.program(name).unwrap();
            let input =
                if def.program_type == bpfvm::ProgramType::Xdp || def.program_type.uses_sk_buff() {
                    Input::packet(vec![0u8; 14])
                } else {
                    Input::context(vec![0u8; 64])
                };
            let prog = if name == "custom_prog" {
                let e = obj.vm_program(name, &maps).unwrap_err();
                assert!(
                    matches!(&e, LoadError::UnknownProgramType { section, .. } if section == "bpfvm/custom"),
                    "{e}"
                );
                assert!(e.to_string().contains("--type"), "{e}");
                let p = obj
                    .vm_program_as(name, &maps, KernelProgType::Kprobe)
                    .unwrap();
                assert_eq!(p.prog_type(), ProgramType::Kprobe);
                vm.load(p).unwrap()
            } else {
                common::fixture_program(&vm, &obj, &maps, name)
            };
            let out = vm.run(&prog, CpuId(cpu), &input).unwrap();
            assert_eq!(out.retval, number, "{name}");
            let mut v = [0u8; 8];
            maps.get("calls")
                .unwrap()
                .lookup(&(number as u32).to_ne_bytes(), &mut v, 0)
                .unwrap();
            assert_eq!(u64::from_ne_bytes(v), round, "{name}");
        }
    }
}
