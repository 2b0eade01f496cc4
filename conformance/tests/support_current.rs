//! Checks that the support table in the top-level `README.md` is what `support --write`
//! would generate now (so it is neither stale nor edited by hand).

use bpfvm_conformance::support;

#[test]
fn readme_support_table_is_current() {
    let path = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../README.md");
    let readme = std::fs::read_to_string(&path).unwrap();
    assert_eq!(
        support::splice(&readme, &support::render()).unwrap(),
        readme,
        "the README support table is stale: run `cargo run -p bpfvm-conformance --bin support -- --write`"
    );
}
