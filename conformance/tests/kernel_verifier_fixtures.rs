//! Every program of the fixture objects gets the same verdict from bpfvm's verifier as from
//! the kernel's, for a loader with CAP_BPF + CAP_NET_ADMIN and for root: what the kernel
//! accepts bpfvm accepts, and what it refuses bpfvm refuses with the kernel's errno.
#![cfg(target_os = "linux")]

use bpfvm_conformance::kernel;
use bpfvm_conformance::verdicts::{cases_from_object, compare};
use bpfvm_verifier::Privilege;

const FIXTURES: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/../vm/tests/fixtures");

#[test]
fn fixture_verdicts_match_the_kernel() {
    if !kernel::oracle_or_skip() {
        return;
    }
    let mut entries: Vec<_> = std::fs::read_dir(FIXTURES)
        .expect("fixtures")
        .filter_map(Result::ok)
        .map(|e| e.path())
        .filter(|p| p.extension().is_some_and(|x| x == "o"))
        .collect();
    entries.sort();
    let mut compared = 0;
    let mut mismatches = Vec::new();
    for path in entries {
        let name = path.file_stem().unwrap().to_string_lossy().into_owned();
        let bytes = std::fs::read(&path).unwrap();
        let Ok(cases) = cases_from_object(&name, &bytes) else {
            // Objects the loader refuses on purpose (kfuncs, kconfig, ...) have no program.
            continue;
        };
        for case in &cases {
            for p in [Privilege::CapBpfNetAdmin, Privilege::Root] {
                let cmp = compare(case, p).unwrap_or_else(|e| panic!("{}: {e}", case.name));
                compared += 1;
                println!("[{p:?}] {}", cmp.describe());
                if !cmp.same_verdict() || !cmp.same_errno() {
                    mismatches.push(format!("[{p:?}] {}", cmp.describe()));
                }
            }
        }
    }
    assert!(compared > 20, "only {compared} fixture programs compared");
    assert!(
        mismatches.is_empty(),
        "verdicts differ:\n{}",
        mismatches.join("\n")
    );
}
