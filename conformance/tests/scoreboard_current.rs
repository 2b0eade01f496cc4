//! Checks that the scoreboard in `conformance/README.md` and the expectations files are what
//! `scoreboard --write` would generate now (so neither is stale or edited by hand).

use bpfvm::EngineKind;
use bpfvm_conformance::{expectations, runner, scoreboard, vectors};

#[test]
fn readme_scoreboard_and_expectations_are_current() {
    let dir = vectors::default_dir();
    if !dir.exists() {
        assert!(!vectors::required(), "vectors missing at {}", dir.display());
        eprintln!("SKIP: conformance vectors missing at {}", dir.display());
        return;
    }
    let engines = EngineKind::available();
    if !engines.contains(&EngineKind::RbpfJit) {
        // The committed scoreboard includes the JIT (generated on x86_64 Linux).
        eprintln!("SKIP: the rbpf JIT is not available here, the scoreboard would differ");
        return;
    }
    let all = vectors::load_all(&dir).unwrap();
    let vm = runner::suite_vm();
    let scores: Vec<_> = engines
        .iter()
        .map(|&e| scoreboard::score(&vm, e, &all))
        .collect();
    let table = scoreboard::render(&scores, all.len());
    let readme_path = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("README.md");
    let readme = std::fs::read_to_string(&readme_path).unwrap();
    assert_eq!(
        scoreboard::splice(&readme, &table).unwrap(),
        readme,
        "README scoreboard is stale: run `cargo run -p bpfvm-conformance --bin scoreboard -- --write`"
    );
    for (e, s) in engines.iter().zip(&scores) {
        let committed = std::fs::read_to_string(expectations::path(*e)).unwrap_or_default();
        assert_eq!(
            committed,
            expectations::render(*e, &s.refused),
            "{} is stale: run the scoreboard with --write",
            expectations::path(*e).display()
        );
        assert!(s.wrong.is_empty(), "{e}: {:?}", s.wrong);
    }
}
