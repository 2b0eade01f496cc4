//! Checks that the "Limits" table of `docs/reliability.md` lists every loader limit with
//! the value `bpfvm::loader::limits` really has, so the documentation cannot drift.

use bpfvm::loader::limits;

#[test]
fn every_limit_is_documented_with_its_value() {
    let doc = std::fs::read_to_string(concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/../docs/reliability.md"
    ))
    .expect("docs/reliability.md");
    let section = doc
        .split("\n## Limits\n")
        .nth(1)
        .expect("a Limits section")
        .split("\n## ")
        .next()
        .unwrap();
    let all = [
        ("MAX_OBJECT_FILE_BYTES", limits::MAX_OBJECT_FILE_BYTES),
        ("MAX_PROGRAM_INSNS", limits::MAX_PROGRAM_INSNS),
        ("MAX_OBJECT_INSNS", limits::MAX_OBJECT_INSNS),
        ("MAX_NAME_LEN", limits::MAX_NAME_LEN),
        ("MAX_TYPE_DEPTH", limits::MAX_TYPE_DEPTH),
        ("MAX_DECODE_DEPTH", limits::MAX_DECODE_DEPTH),
        ("DECODE_BASE_UNITS", limits::DECODE_BASE_UNITS),
        ("DECODE_UNITS_PER_BYTE", limits::DECODE_UNITS_PER_BYTE),
        ("MAX_DECODE_UNITS", limits::MAX_DECODE_UNITS),
    ];
    for (name, value) in all {
        let row = section
            .lines()
            .find(|l| l.starts_with(&format!("| `{name}` |")))
            .unwrap_or_else(|| panic!("no row for {name} in the Limits table"));
        let cell = row.split('|').nth(2).unwrap().trim().replace(',', "");
        assert_eq!(cell, value.to_string(), "{name}: {row}");
    }
    let rows = section.lines().filter(|l| l.starts_with("| `")).count();
    assert_eq!(rows, all.len(), "a row for a limit this test does not know");
}
