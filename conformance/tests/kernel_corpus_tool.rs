//! The corpus tool's measurement (conformance/src/corpus) end to end on the repository's
//! own packet fixtures: the kernel (through libbpf) and bpfvm both load each program, and
//! the 11 frames give the same return values, output packets and maps; a legacy section
//! name is refused by both unless `legacy_types` gives it the XDP type, and then agrees.
//! Needs the kernel oracle (root) and libbpf.so.1; skips without them.
#![cfg(target_os = "linux")]

use std::path::PathBuf;

use bpfvm_conformance::corpus::libbpf::Libbpf;
use bpfvm_conformance::corpus::measure::{measure_object, BpfvmSide};
use bpfvm_conformance::corpus::{ProgramRow, Summary};
use bpfvm_conformance::kernel;

fn fixture(name: &str) -> PathBuf {
    PathBuf::from(concat!(env!("CARGO_MANIFEST_DIR"), "/../vm/tests/fixtures")).join(name)
}

fn setup() -> Option<(Libbpf, u32)> {
    if !kernel::oracle_or_skip() {
        return None;
    }
    match Libbpf::open("libbpf.so.1") {
        Ok(l) => Some((l, kernel::possible_cpus().unwrap())),
        Err(e) => {
            eprintln!("skipped: {e}");
            None
        }
    }
}

fn measure(lib: &Libbpf, ncpus: u32, name: &str, legacy_types: bool) -> Vec<ProgramRow> {
    let side = BpfvmSide {
        legacy_types,
        ..BpfvmSide::default()
    };
    measure_object(lib, &fixture(name), name, &side, ncpus)
}

#[test]
fn packet_fixtures_load_and_run_alike_on_both_sides() {
    let Some((lib, ncpus)) = setup() else { return };
    let mut rows = Vec::new();
    for name in [
        "percpu_counter.o",
        "xdp_parser.o",
        "tc_nat.o",
        "lpm_firewall.o",
    ] {
        rows.extend(measure(&lib, ncpus, name, false));
    }
    let names: Vec<&str> = rows.iter().map(|r| r.program.as_str()).collect();
    assert_eq!(
        names,
        [
            "count_packets",
            "xdp_udp_filter",
            "tc_dnat",
            "tc_snat",
            "xdp_firewall"
        ]
    );
    for r in &rows {
        assert!(r.kernel_loaded(), "{r:?}");
        assert!(r.bpfvm_loaded(), "{r:?}");
        let runs = r.runs.as_ref().expect("packet program runs compared");
        assert_eq!(runs.frames, 11, "{r:?}");
        assert!(runs.differences.is_empty(), "{r:?}");
    }
    let s = Summary::of(&rows);
    assert_eq!((s.kernel_loaded, s.both_loaded, s.packet_agree), (5, 5, 5));
}

#[test]
fn a_legacy_section_is_refused_by_both_unless_its_type_is_given() {
    let Some((lib, ncpus)) = setup() else { return };
    let rows = measure(&lib, ncpus, "legacy_section.o", false);
    assert_eq!(rows.len(), 1);
    let r = &rows[0];
    assert_eq!((r.program.as_str(), r.kernel_type), ("pass_len", 0));
    assert!(r
        .kernel_error
        .as_deref()
        .unwrap()
        .contains("missing BPF prog type"));
    assert!(r
        .bpfvm_error
        .as_deref()
        .unwrap()
        .contains("not one libbpf knows"));

    let rows = measure(&lib, ncpus, "legacy_section.o", true);
    let r = &rows[0];
    assert!(r.type_given);
    assert_eq!(r.kernel_type, 6);
    assert!(r.kernel_loaded() && r.bpfvm_loaded(), "{r:?}");
    assert!(r.runs_agree(), "{r:?}");
}

#[test]
fn an_object_libbpf_refuses_whole_is_listed_per_program() {
    let Some((lib, ncpus)) = setup() else { return };
    // partial.o: one program calls a kfunc no kernel has. libbpf resolves externs for the
    // whole object, so the kernel side refuses every program; bpfvm loads the two that do
    // not use it (per-program loading), which the report lists as bpfvm-only.
    let rows = measure(&lib, ncpus, "partial.o", false);
    assert!(rows.iter().all(|r| !r.kernel_loaded()));
    let only: Vec<&str> = rows
        .iter()
        .filter(|r| r.bpfvm_loaded())
        .map(|r| r.program.as_str())
        .collect();
    assert_eq!(only, ["good", "probes_weak_kfunc"]);
    assert_eq!(Summary::of(&rows).bpfvm_only, 2);
}

#[test]
fn a_bad_object_is_one_row_with_both_errors() {
    let Some((lib, ncpus)) = setup() else { return };
    let dir = std::env::temp_dir().join(format!("bpfvm-corpus-bad-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let good = std::fs::read(fixture("xdp_parser.o")).unwrap();
    let cases: [(&str, Vec<u8>); 3] = [
        ("empty.o", Vec::new()),
        ("text.o", b"hello\n".to_vec()),
        ("truncated.o", good[..good.len() / 3].to_vec()),
    ];
    for (name, bytes) in cases {
        let path = dir.join(name);
        std::fs::write(&path, bytes).unwrap();
        let rows = measure_object(&lib, &path, name, &BpfvmSide::default(), ncpus);
        assert_eq!(rows.len(), 1, "{name}: {rows:?}");
        let r = &rows[0];
        assert_eq!(r.program, "(object)");
        assert!(
            r.kernel_error.as_deref().unwrap().contains("libbpf open"),
            "{r:?}"
        );
        assert!(r.bpfvm_error.as_deref().unwrap().contains("ELF"), "{r:?}");
    }
    std::fs::remove_dir_all(&dir).unwrap();
}
