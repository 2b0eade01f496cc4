//! Checks bpfvm's structural return-value range check (`vm::retval`, the check of
//! `VerifierMode::Structural`; the kernel mode's verdicts are compared in
//! `kernel_verifier_*`) against the kernel verifier: hand-assembled
//! cgroup_skb programs (constant, spilled, branched and unknown return values) loaded as
//! ingress and egress programs; bpfvm must never refuse one the kernel accepts, and must
//! refuse those whose every run returns a constant the kernel refuses for both.
#![cfg(target_os = "linux")]

use bpfvm::{PrepareError, Program, ProgramType, Vm};
use bpfvm_conformance::kernel::asm::{self, insn, Insn};
use bpfvm_conformance::kernel::consts::ProgType;
use bpfvm_conformance::kernel::{self, KernelProg};

fn programs() -> Vec<(String, Vec<Insn>)> {
    let mut out = Vec::new();
    for v in [0i32, 1, 2, 3, 4, 5, -1] {
        out.push((format!("r0 = {v}"), vec![asm::mov64_imm(0, v), asm::exit()]));
        // Spilled to the stack and loaded back (what clang emits for `return slot`).
        out.push((
            format!("r0 = {v} through the stack"),
            vec![asm::st_w(10, -4, v), asm::ldx_w(0, 10, -4), asm::exit()],
        ));
        // One path returns v, the other 1 (skb->len is unknown).
        out.push((
            format!("r0 = {v} or 1"),
            vec![
                asm::ldx_w(2, 1, 0),
                asm::jeq_imm(2, 0, 2),
                asm::mov64_imm(0, v),
                asm::exit(),
                asm::mov64_imm(0, 1),
                asm::exit(),
            ],
        ));
        // A branch decided by a constant skips the `return v`.
        out.push((
            format!("dead r0 = {v}"),
            vec![
                asm::mov64_imm(3, 0),
                asm::jeq_imm(3, 0, 2),
                asm::mov64_imm(0, v),
                asm::exit(),
                asm::mov64_imm(0, 0),
                asm::exit(),
            ],
        ));
    }
    let big = asm::ld_imm64(0, 1 << 32);
    out.push(("r0 = 2^32".into(), vec![big[0], big[1], asm::exit()]));
    out.push((
        "r0 = skb->len".into(),
        vec![asm::ldx_w(0, 1, 0), asm::exit()],
    ));
    out.push((
        "r0 = skb->len & 1".into(),
        vec![asm::ldx_w(0, 1, 0), insn(0x57, 0, 0, 0, 1), asm::exit()],
    ));
    out
}

#[test]
fn bpfvm_refuses_only_what_the_kernel_refuses() {
    if !kernel::oracle_or_skip() {
        return;
    }
    let vm = Vm::builder()
        .cpus(1)
        .verifier(bpfvm::VerifierMode::Structural)
        .build();
    let (mut compared, mut both_refuse, mut wrong) = (0, 0, 0);
    for (name, insns) in programs() {
        let image = asm::image(&[&insns]);
        let s = vm.load(Program::new(image.clone(), ProgramType::CgroupSkb));
        // BPF_CGROUP_INET_INGRESS = 0, BPF_CGROUP_INET_EGRESS = 1.
        let k: Vec<bool> = [0, 1]
            .iter()
            .map(|&attach| {
                let mut log = String::new();
                KernelProg::load(ProgType::CgroupSkb, attach, &image, "GPL", &mut log).is_ok()
            })
            .collect();
        compared += 1;
        println!(
            "{name}: kernel accepts (ingress, egress) {k:?}, bpfvm {}",
            if s.is_ok() { "accepts" } else { "refuses" }
        );
        match &s {
            Err(PrepareError::ReturnValueOutOfRange { .. }) if k.iter().any(|&ok| ok) => {
                wrong += 1;
                println!(
                    "WRONG {name}: bpfvm refuses ({:?}), kernel accepts (ingress, egress) {k:?}",
                    s.as_ref().err()
                );
            }
            Err(PrepareError::ReturnValueOutOfRange { .. }) => both_refuse += 1,
            Err(e) => {
                wrong += 1;
                println!("WRONG {name}: bpfvm refuses for another reason: {e}");
            }
            Ok(_) => {}
        }
    }
    // The constants the kernel refuses for ingress and egress alike must be refused.
    for v in [4, 5, -1] {
        let image = asm::image(&[&[asm::mov64_imm(0, v), asm::exit()]]);
        if vm.load(Program::new(image, ProgramType::CgroupSkb)).is_ok() {
            wrong += 1;
            println!("WRONG r0 = {v}: bpfvm accepts it");
        }
    }
    println!("{compared} programs compared, {both_refuse} refused by both, {wrong} wrong");
    assert_eq!(wrong, 0);
    // r0 = 4, 5, -1 (direct and through the stack) and r0 = 2^32.
    assert_eq!(both_refuse, 7);
}
