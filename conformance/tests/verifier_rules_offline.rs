//! The verifier rule fixtures judged by bpfvm's verifier alone (every platform, no kernel):
//! programs named `*_bad` are refused for a loader with CAP_BPF + CAP_NET_ADMIN, `*_ok`
//! accepted for it and for root, `*_root_ok` accepted for root. `kernel_verifier_rules`
//! checks the same names against the kernel.

use bpfvm_conformance::verdicts::cases_from_object;
use bpfvm_verifier::Privilege;

const FIXTURES: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/fixtures/verifier");

#[test]
fn rule_fixtures_get_the_verdict_their_names_say() {
    let mut objects: Vec<_> = std::fs::read_dir(FIXTURES)
        .expect("fixtures/verifier")
        .filter_map(Result::ok)
        .map(|e| e.path())
        .filter(|p| p.extension().is_some_and(|x| x == "o"))
        .collect();
    objects.sort();
    let mut wrong = Vec::new();
    let mut n = 0;
    for path in objects {
        let name = path.file_stem().unwrap().to_string_lossy().into_owned();
        let cases = cases_from_object(&name, &std::fs::read(&path).unwrap())
            .unwrap_or_else(|e| panic!("{name}: {e}"));
        for case in cases {
            n += 1;
            let cap_bpf = case.ours(Privilege::CapBpfNetAdmin);
            let root = case.ours(Privilege::Root);
            let ok = if case.name.ends_with("_bad") {
                cap_bpf.is_err()
            } else if case.name.ends_with("_root_ok") {
                root.is_ok()
            } else {
                cap_bpf.is_ok() && root.is_ok()
            };
            if !ok {
                let show = |r: &Result<_, bpfvm_verifier::VerifierError>| match r {
                    Ok(_) => "accepted".to_string(),
                    Err(e) => format!("refused: {e}"),
                };
                wrong.push(format!(
                    "{}: CAP_BPF {}; root {}",
                    case.name,
                    show(&cap_bpf),
                    show(&root)
                ));
            }
        }
    }
    assert!(n >= 40, "only {n} programs");
    assert!(wrong.is_empty(), "{}", wrong.join("\n"));
}
