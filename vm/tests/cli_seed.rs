//! `bpfvm run --map-set NAME KEY=VALUE[@CPU]` and `--maps FILE` seed maps before the runs
//! (numbers sized by the map, `hex:` bytes, every CPU or one), `--json` prints BTF-decoded
//! keys and values beside the hex, and one run's `--json` output seeds the next run. Wrong
//! names, sizes, types and flags are errors naming the map and the entry.

use assert_cmd::Command;
use serde_json::Value;

#[path = "common/cli.rs"]
mod cli;
use cli::fixture;

fn run_json(args: &[&str]) -> Value {
    let out = Command::new(env!("CARGO_BIN_EXE_bpfvm"))
        .arg("run")
        .args(args)
        .arg("--json")
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    serde_json::from_slice(&out.stdout).unwrap()
}

fn fails(args: &[&str]) -> String {
    let out = Command::new(env!("CARGO_BIN_EXE_bpfvm"))
        .arg("run")
        .args(args)
        .output()
        .unwrap();
    assert!(!out.status.success(), "{args:?} succeeded");
    String::from_utf8_lossy(&out.stderr).into_owned()
}

fn map<'a>(doc: &'a Value, name: &str) -> &'a Value {
    doc["maps"]
        .as_array()
        .unwrap()
        .iter()
        .find(|m| m["name"] == name)
        .unwrap()
}

#[test]
fn map_set_seeds_every_cpu_or_one_and_json_shows_btf_values() {
    let obj = fixture("percpu_counter.o");
    let doc = run_json(&[
        &obj,
        "--map-set",
        "counts",
        "0=100",
        "--map-set",
        "counts",
        "0=7@2",
        "--map-set",
        "total",
        "0=0x3e8",
    ]);
    // One run on each of 4 CPUs adds 1 to each CPU's copy and 4 to the shared total.
    let counts = &map(&doc, "counts")["entries"][0];
    assert_eq!(
        counts["values_btf"],
        serde_json::json!(["101", "101", "8", "101"])
    );
    assert_eq!(counts["values"][2], "0800000000000000");
    assert_eq!(counts["key_btf"], "0");
    assert_eq!(map(&doc, "total")["entries"][0]["value_btf"], "1004");
}

#[test]
fn one_runs_json_output_seeds_the_next_run() {
    let obj = fixture("percpu_counter.o");
    let first = run_json(&[&obj, "--repeat", "5"]);
    let dir = std::env::temp_dir().join(format!("bpfvm-cli-seed-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let file = dir.join("maps.json");
    std::fs::write(&file, first.to_string()).unwrap();
    let second = run_json(&[&obj, "--repeat", "5", "--maps", file.to_str().unwrap()]);
    std::fs::remove_dir_all(&dir).ok();
    assert_eq!(
        map(&second, "counts")["entries"][0]["values_btf"],
        serde_json::json!(["10", "10", "10", "10"])
    );
    assert_eq!(map(&second, "total")["entries"][0]["value_btf"], "40");
}

#[test]
fn seeding_mistakes_name_the_map_and_what_was_wrong() {
    let counter = fixture("percpu_counter.o");
    let e = fails(&[&counter, "--map-set", "cnt", "0=1"]);
    assert!(
        e.contains("no such map; the object has: counts, total"),
        "{e}"
    );
    let e = fails(&[&counter, "--map-set", "total", "0=1@1"]);
    assert!(e.contains("@CPU is for per-CPU maps"), "{e}");
    let e = fails(&[&counter, "--map-set", "counts", "0=1@9"]);
    assert!(e.contains("counts") && e.contains("0=1@9"), "{e}");
    let e = fails(&[&counter, "--map-set", "total", "0=hex:0102"]);
    assert!(
        e.contains("value has 2 bytes, the map's value size is 8"),
        "{e}"
    );
    let e = fails(&[&counter, "--map-set", "total", "0=2x"]);
    assert!(e.contains("is not a number"), "{e}");
    let e = fails(&[&counter, "--map-set", "total", "1=1"]);
    assert!(e.contains("total") && e.contains("1=1"), "{e}");
    // A struct key is given as bytes.
    let e = fails(&[&fixture("btf_attrs.o"), "--map-set", "flows", "1=1"]);
    assert!(
        e.contains("not a number in BTF: give its 16 bytes as hex:"),
        "{e}"
    );
    // .rodata is frozen at load, as libbpf freezes it.
    let e = fails(&[
        &fixture("globals.o"),
        "--prog",
        "bump",
        "--map-set",
        ".rodata",
        "0=hex:00000000000000000000000000000000",
    ]);
    assert!(e.contains("frozen"), "{e}");
    // A --maps file that is not what --json prints.
    let dir = std::env::temp_dir().join(format!("bpfvm-cli-seed-bad-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let bad = dir.join("bad.json");
    std::fs::write(
        &bad,
        r#"{"maps":[{"name":"counts","entries":[{"key":"00000000","values":["01"]}]}]}"#,
    )
    .unwrap();
    let e = fails(&[&counter, "--maps", bad.to_str().unwrap()]);
    std::fs::remove_dir_all(&dir).ok();
    assert!(e.contains("1 values for a map on 4 cpus"), "{e}");
}

#[test]
fn map_set_puts_a_map_in_a_map_in_map_by_name() {
    let obj = fixture("map_in_map.o");
    let doc = run_json(&[
        &obj,
        "--prog",
        "count_slots",
        "--cpus",
        "1",
        "--map-set",
        "outer",
        "1=inner_c",
        "--map-set",
        "by_port",
        "80=inner_a",
    ]);
    // Slot 1 now reaches inner_c and by_port[80] inner_a (also in slot 0).
    let result: Vec<&Value> = map(&doc, "result")["entries"]
        .as_array()
        .unwrap()
        .iter()
        .map(|e| &e["value_btf"])
        .collect();
    assert_eq!(result, ["1", "1", "1", "2"]);
    let out = Command::new(env!("CARGO_BIN_EXE_bpfvm"))
        .args(["run", &obj, "--prog", "count_slots", "--map-set", "outer"])
        .arg("1=result")
        .output()
        .unwrap();
    assert!(!out.status.success());
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(
        err.contains("outer") && err.contains("incompatible inner map"),
        "{err}"
    );
}

#[test]
fn a_map_in_maps_entries_in_a_maps_file_are_skipped_with_a_warning() {
    let obj = fixture("map_in_map.o");
    let first = run_json(&[&obj, "--prog", "count_slots", "--cpus", "1"]);
    let dir = std::env::temp_dir().join(format!("bpfvm-mim-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let file = dir.join("maps.json");
    std::fs::write(&file, serde_json::to_vec(&first).unwrap()).unwrap();
    let out = Command::new(env!("CARGO_BIN_EXE_bpfvm"))
        .args([
            "run",
            &obj,
            "--prog",
            "count_slots",
            "--cpus",
            "1",
            "--json",
            "--maps",
        ])
        .arg(&file)
        .output()
        .unwrap();
    std::fs::remove_dir_all(&dir).ok();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.contains("outer is a map-in-map"), "{err}");
    // The counters were seeded from the first run and counted once more.
    let doc: Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(map(&doc, "inner_a")["entries"][0]["value_btf"], "2");
}
