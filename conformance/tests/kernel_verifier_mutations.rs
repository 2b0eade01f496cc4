//! Mutation differential test of the verifier: every program of the fixtures that the
//! kernel accepts is mutated one instruction at a time (a bounds check dropped or
//! inverted, a NULL test removed or inverted, an access widened, a loop lengthened, a
//! bound moved by one, an instruction dropped, a comparison made signed or unsigned or
//! 32-bit, an access shifted by a byte; see `bpfvm_conformance::mutations`), and each
//! mutant is judged by the kernel and by bpfvm's verifier, for a CAP_BPF + CAP_NET_ADMIN
//! loader and for root.
//! The test prints the agreement rate per class, the rules behind the refusals, and every
//! disagreement with its kind. It fails when bpfvm accepts any mutant the kernel refuses,
//! when the verdicts (accepted or refused) differ on more than 1% of mutants, or when the
//! mutants are too few or too one-sided to mean anything.
//!
//! `BPFVM_MUTANTS_PER_CLASS` (default 12) caps the mutants of each class per program.
#![cfg(target_os = "linux")]

use std::collections::BTreeMap;

use bpfvm_conformance::kernel;
use bpfvm_conformance::mutations::{mutants, sample_of, MutationClass};
use bpfvm_conformance::verdicts::{cases_from_object, compare, Case};
use bpfvm_verifier::Privilege;

const DIRS: [&str; 2] = [
    concat!(env!("CARGO_MANIFEST_DIR"), "/../vm/tests/fixtures"),
    concat!(env!("CARGO_MANIFEST_DIR"), "/fixtures/verifier"),
];

/// How two verdicts on a mutant relate.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
enum Kind {
    /// Both accept.
    BothAccept,
    /// Both refuse with the same errno and bpfvm's message is one of the kernel's lines.
    BothRefuse,
    /// Both refuse with the same errno; bpfvm's message is not one of the kernel's lines.
    OtherWords,
    /// Both refuse, with different errnos.
    OtherErrno,
    /// The kernel accepts, bpfvm refuses (stricter).
    OnlyBpfvmRefuses,
    /// The kernel refuses, bpfvm accepts (unsound).
    OnlyKernelRefuses,
}

fn sources() -> Vec<Case> {
    let mut out = Vec::new();
    for dir in DIRS {
        let mut objects: Vec<_> = std::fs::read_dir(dir)
            .expect("fixtures")
            .filter_map(Result::ok)
            .map(|e| e.path())
            .filter(|p| p.extension().is_some_and(|x| x == "o"))
            .collect();
        objects.sort();
        for path in objects {
            let name = path.file_stem().unwrap().to_string_lossy().into_owned();
            if let Ok(cases) = cases_from_object(&name, &std::fs::read(&path).unwrap()) {
                out.extend(cases);
            }
        }
    }
    out
}

#[test]
fn mutant_verdicts_match_the_kernel() {
    if !kernel::oracle_or_skip() {
        return;
    }
    // Every class: the seven of `MutationClass::ALL` and the extended ones (dropped
    // instructions, signed and 32-bit comparisons, offsets shifted by one).
    let classes: Vec<MutationClass> = MutationClass::ALL
        .into_iter()
        .chain(MutationClass::EXTENDED)
        .collect();
    let per_class = std::env::var("BPFVM_MUTANTS_PER_CLASS")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(12);
    // (privilege, class) -> kind -> count
    let mut tally: BTreeMap<(String, MutationClass), BTreeMap<Kind, usize>> = BTreeMap::new();
    // (privilege, class) -> the rule bpfvm names when both refuse -> count
    let mut reasons: BTreeMap<(String, MutationClass), BTreeMap<String, usize>> = BTreeMap::new();
    let mut disagreements = Vec::new();
    let mut unsound = Vec::new();
    let (mut total, mut same_verdict, mut refused) = (0usize, 0usize, 0usize);
    for source in sources() {
        for p in [Privilege::CapBpfNetAdmin, Privilege::Root] {
            let base = compare(&source, p).unwrap_or_else(|e| panic!("{}: {e}", source.name));
            if base.kernel_errno.is_some() {
                // Only programs the kernel accepts are mutated.
                println!(
                    "[{p:?}] not mutated (the kernel refuses it): {}",
                    source.name
                );
                continue;
            }
            println!(
                "[{p:?}] mutating {} ({} instructions)",
                source.name,
                source.insns.len() / 8
            );
            for m in sample_of(mutants(&source.insns), per_class, &classes) {
                let mut case = source.clone();
                case.name = format!("{}@{}:{}", source.name, m.insn, m.class);
                case.insns = m.insns;
                let cmp = compare(&case, p).unwrap_or_else(|e| panic!("{}: {e}", case.name));
                let kernel_refuses = cmp.kernel_errno.is_some();
                let kind = match (kernel_refuses, cmp.ours.is_err()) {
                    (false, false) => Kind::BothAccept,
                    (true, true) if !cmp.same_errno() => Kind::OtherErrno,
                    (true, true) if !cmp.same_message() && !cmp.kernel_messages.is_empty() => {
                        Kind::OtherWords
                    }
                    (true, true) => Kind::BothRefuse,
                    (false, true) => Kind::OnlyBpfvmRefuses,
                    (true, false) => Kind::OnlyKernelRefuses,
                };
                total += 1;
                if cmp.same_verdict() {
                    same_verdict += 1;
                }
                *tally
                    .entry((format!("{p:?}"), m.class))
                    .or_default()
                    .entry(kind)
                    .or_default() += 1;
                if kernel_refuses {
                    refused += 1;
                }
                if let (true, Err(e)) = (kernel_refuses, &cmp.ours) {
                    *reasons
                        .entry((format!("{p:?}"), m.class))
                        .or_default()
                        .entry(format!("{:?}", e.rule))
                        .or_default() += 1;
                }
                if !matches!(kind, Kind::BothAccept | Kind::BothRefuse) {
                    let line = format!("[{p:?}] {kind:?}: {}", cmp.describe());
                    if kind == Kind::OnlyKernelRefuses {
                        unsound.push(line.clone());
                    }
                    disagreements.push(line);
                }
            }
        }
    }
    println!("mutants per (privilege, class): kind counts");
    for ((p, class), kinds) in &tally {
        let n: usize = kinds.values().sum();
        let agree = kinds.get(&Kind::BothAccept).copied().unwrap_or(0)
            + kinds.get(&Kind::BothRefuse).copied().unwrap_or(0);
        println!(
            "  {p:<15} {class:<17} {n:>5} mutants, {:>5.1}% full agreement, {kinds:?}",
            100.0 * agree as f64 / n as f64
        );
    }
    println!("refused by both, per (privilege, class): bpfvm's rule counts");
    for ((p, class), rules) in &reasons {
        println!("  {p:<15} {class:<17} {rules:?}");
    }
    println!("disagreements:");
    for d in &disagreements {
        println!("  {d}");
    }
    let rate = 100.0 * same_verdict as f64 / total.max(1) as f64;
    println!(
        "{total} mutants ({refused} refused by the kernel), same verdict on {same_verdict} \
         ({rate:.2}%), {} with any difference",
        disagreements.len()
    );
    assert!(total >= 500, "only {total} mutants");
    assert!(
        refused >= total / 4 && total - refused >= total / 10,
        "too one-sided: {refused} of {total} mutants refused by the kernel"
    );
    assert!(
        unsound.is_empty(),
        "bpfvm accepts mutants the kernel refuses:\n{}",
        unsound.join("\n")
    );
    assert!(rate >= 99.0, "verdicts agree on only {rate:.2}% of mutants");
}
