//! `bpfvm run --json` prints one JSON object with the shape of issue 5 and the real per-CPU
//! values: every CPU's slot, only the `--cpu` chosen, and packets given with `--data`.

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
        "stderr: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    serde_json::from_slice(&out.stdout).expect("stdout is exactly one JSON value")
}

fn u64_hex(v: u64) -> String {
    v.to_le_bytes().iter().map(|b| format!("{b:02x}")).collect()
}

fn map<'a>(doc: &'a Value, name: &str) -> &'a Value {
    doc["maps"]
        .as_array()
        .unwrap()
        .iter()
        .find(|m| m["name"] == name)
        .unwrap_or_else(|| panic!("no map {name} in {doc}"))
}

#[test]
fn percpu_counter_on_4_cpus_1000_runs_has_1000_in_every_slot() {
    let doc = run_json(&[
        &fixture("percpu_counter.o"),
        "--cpus",
        "4",
        "--repeat",
        "1000",
    ]);
    assert_eq!(doc["program"], "count_packets");
    assert_eq!(doc["cpus"], 4);
    assert_eq!(doc["engine"], "interpreter");
    let runs = doc["runs"].as_array().unwrap();
    assert_eq!(runs.len(), 4);
    for (cpu, r) in runs.iter().enumerate() {
        assert_eq!(r["cpu"], cpu);
        assert_eq!(r["count"], 1000);
        // XDP_PASS is 2: every run returned it.
        assert_eq!(r["retvals"], serde_json::json!({"2": 1000}));
    }
    let counts = map(&doc, "counts");
    assert_eq!(counts["type"], "percpu_array");
    assert_eq!(
        (
            &counts["key_size"],
            &counts["value_size"],
            &counts["max_entries"]
        ),
        (&Value::from(4), &Value::from(8), &Value::from(1))
    );
    let entries = counts["entries"].as_array().unwrap();
    assert_eq!(entries.len(), 1);
    assert_eq!(entries[0]["key"], "00000000");
    assert!(
        entries[0].get("value").is_none(),
        "per-CPU maps give values"
    );
    let values: Vec<&str> = entries[0]["values"]
        .as_array()
        .unwrap()
        .iter()
        .map(|v| v.as_str().unwrap())
        .collect();
    assert_eq!(values, vec![u64_hex(1000).as_str(); 4]);
    let total = map(&doc, "total");
    assert_eq!(total["type"], "array");
    assert_eq!(total["entries"][0]["value"], u64_hex(4000));
    assert!(total["entries"][0].get("values").is_none());
}

#[test]
fn the_object_has_the_documented_keys_only() {
    let doc = run_json(&[&fixture("percpu_counter.o"), "--cpus", "2"]);
    let keys: Vec<&String> = doc.as_object().unwrap().keys().collect();
    assert_eq!(
        keys,
        ["program", "cpus", "engine", "runs", "maps", "events"]
    );
    assert_eq!(
        doc["events"],
        Value::Array(vec![]),
        "no ring or perf buffers"
    );
    let m: Vec<&String> = doc["maps"][0].as_object().unwrap().keys().collect();
    assert_eq!(
        m,
        [
            "name",
            "type",
            "key_size",
            "value_size",
            "max_entries",
            "entries"
        ]
    );
}

#[test]
fn cpu_flag_only_touches_that_cpu() {
    let doc = run_json(&[
        &fixture("percpu_counter.o"),
        "--cpus",
        "4",
        "--cpu",
        "2",
        "--repeat",
        "7",
    ]);
    let counts: Vec<u64> = doc["runs"]
        .as_array()
        .unwrap()
        .iter()
        .map(|r| r["count"].as_u64().unwrap())
        .collect();
    assert_eq!(counts, [0, 0, 7, 0]);
    let values = &map(&doc, "counts")["entries"][0]["values"];
    for cpu in 0..4 {
        let want = if cpu == 2 { 7 } else { 0 };
        assert_eq!(values[cpu], u64_hex(want), "cpu {cpu}");
    }
    assert_eq!(map(&doc, "total")["entries"][0]["value"], u64_hex(7));
}

/// An Ethernet + IPv4 + UDP frame to `port`.
fn udp_frame(port: u16) -> Vec<u8> {
    let mut f = vec![0xff; 12];
    f.extend([0x08, 0x00]);
    f.extend([
        0x45, 0, 0, 28, 0, 0, 0, 0, 64, 17, 0, 0, 10, 0, 0, 1, 10, 0, 0, 2,
    ]);
    f.extend(1234u16.to_be_bytes());
    f.extend(port.to_be_bytes());
    f.extend([0, 8, 0, 0]);
    f
}

#[test]
fn data_gives_the_packet_to_the_xdp_parser() {
    let dir = std::env::temp_dir().join(format!("bpfvm-cli-json-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let drop = dir.join("drop.bin");
    let pass = dir.join("pass.bin");
    std::fs::write(&drop, udp_frame(7777)).unwrap();
    std::fs::write(&pass, udp_frame(53)).unwrap();

    // The parser uses variable packet offsets, which the kernel allows a root loader.
    let xdp = fixture("xdp_parser.o");
    let doc = run_json(&[
        &xdp,
        "--privileged",
        "root",
        "--cpus",
        "3",
        "--repeat",
        "5",
        "--data",
        drop.to_str().unwrap(),
    ]);
    // XDP_DROP (1) on every run; slot 3 (UDP dropped by the rule) is 5 on every CPU.
    for r in doc["runs"].as_array().unwrap() {
        assert_eq!(r["retvals"], serde_json::json!({"1": 5}));
    }
    let stats = map(&doc, "stats");
    assert_eq!(stats["type"], "percpu_array");
    let entries = stats["entries"].as_array().unwrap();
    assert_eq!(entries.len(), 5);
    for (slot, e) in entries.iter().enumerate() {
        let want = if slot == 3 { 5 } else { 0 };
        assert_eq!(e["key"], format!("{slot:02x}000000"));
        assert_eq!(
            e["values"],
            serde_json::json!(vec![u64_hex(want); 3]),
            "slot {slot}"
        );
    }

    let doc = run_json(&[
        &xdp,
        "--privileged",
        "root",
        "--cpus",
        "2",
        "--data",
        pass.to_str().unwrap(),
    ]);
    assert_eq!(doc["runs"][0]["retvals"], serde_json::json!({"2": 1}));
    assert_eq!(
        map(&doc, "stats")["entries"][2]["values"],
        serde_json::json!([u64_hex(1), u64_hex(1)])
    );
    std::fs::remove_dir_all(&dir).ok();
}

#[test]
fn global_data_maps_appear_under_their_section_names() {
    let doc = run_json(&[
        &fixture("globals.o"),
        "--prog",
        "bump",
        "--cpus",
        "1",
        "--repeat",
        "2",
    ]);
    let names: Vec<&str> = doc["maps"]
        .as_array()
        .unwrap()
        .iter()
        .map(|m| m["name"].as_str().unwrap())
        .collect();
    assert_eq!(
        names,
        [
            "globals.data",
            "globals.rodata",
            ".data.stats",
            "globals.bss"
        ]
    );
    // counter (.bss) = 2 runs × step 3 × factor 5.
    assert_eq!(map(&doc, "globals.bss")["entries"][0]["value"], u64_hex(30));
    // .rodata holds factor (5) then "bpfvm!\0\0": exactly value_size = 16 bytes.
    let ro = map(&doc, "globals.rodata")["entries"][0]["value"]
        .as_str()
        .unwrap()
        .to_string();
    assert_eq!(ro, format!("{}{}", u64_hex(5), "627066766d210000"));
}

#[test]
fn engine_and_seed_reach_the_vm() {
    let doc = run_json(&[
        &fixture("xdp_parser.o"),
        "--privileged",
        "root",
        "--cpus",
        "2",
        "--engine",
        "interpreter",
        "--seed",
        "9",
        "--repeat",
        "3",
    ]);
    assert_eq!(doc["engine"], "interpreter");
    // Without --data every frame is a zeroed 60-byte Ethernet frame (an XDP test run needs
    // at least 14 bytes): EtherType 0 is not IPv4 (slot 0), XDP_PASS (2).
    assert_eq!(doc["runs"][1]["retvals"], serde_json::json!({"2": 3}));
    assert_eq!(
        map(&doc, "stats")["entries"][0]["values"],
        serde_json::json!([u64_hex(3), u64_hex(3)])
    );
    // The rbpf engines refuse this program (backward jumps, XDP context): the error names
    // the engine, so the flag did reach the VM (past the --unsafe-engine check).
    let out = Command::new(env!("CARGO_BIN_EXE_bpfvm"))
        .args([
            "run",
            &fixture("xdp_parser.o"),
            "--privileged",
            "root",
            "--engine",
            "rbpf-interpreter",
            "--unsafe-engine",
            "--json",
        ])
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(1));
    assert!(out.stdout.is_empty());
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(
        err.contains("engine rbpf-interpreter does not support"),
        "{err}"
    );
}
