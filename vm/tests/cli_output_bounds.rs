//! What `bpfvm run` keeps and prints does not grow with the map size, the number of runs or
//! the trace: a 262,144-entry map prints 32 rows and says what it left out (`--json` lists
//! every entry), more than 64 distinct return values are summarised, and a trace flood keeps
//! 8 short lines per CPU and reports the bytes dropped (each run keeps at most 64 KiB).

use assert_cmd::Command;
use serde_json::Value;

const CELLS: usize = 1 << 18;
const RUNS: u64 = 70;

fn run(extra: &[&str]) -> String {
    let fixture = format!("{}/tests/fixtures/noisy.o", env!("CARGO_MANIFEST_DIR"));
    let out = Command::new(env!("CARGO_BIN_EXE_bpfvm"))
        .args([
            "run",
            &fixture,
            "--cpus",
            "1",
            "--repeat",
            &RUNS.to_string(),
            // bpf_printk in a socket filter needs CAP_PERFMON: loaded as root.
            "--privileged",
            "root",
        ])
        .args(extra)
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8(out.stdout).unwrap()
}

/// Bytes one run prints: "line <i> of a flood\n" for i in 0..4000.
fn trace_bytes_per_run() -> usize {
    (0..4000)
        .map(|i| format!("line {i} of a flood\n").len())
        .sum()
}

/// Bytes a run keeps: whole lines while they fit in 64 KiB.
fn trace_kept_per_run() -> usize {
    let mut kept = 0;
    for i in 0..4000 {
        let n = format!("line {i} of a flood\n").len();
        if kept + n > 64 << 10 {
            break;
        }
        kept += n;
    }
    kept
}

#[test]
fn the_text_output_is_a_bounded_summary() {
    let text = run(&[]);
    // Return values: the first 64 distinct ones, then how many runs returned others.
    let runs_line = text.lines().find(|l| l.starts_with("    0  ")).unwrap();
    assert_eq!(runs_line.matches(" ×1").count(), 64, "{runs_line}");
    assert!(
        runs_line.contains("and 6 runs returning other values (only the first 64 distinct values are counted; the last run returned "),
        "{runs_line}"
    );
    // Trace: 8 lines, then the dropped bytes.
    let trace: Vec<&str> = text
        .lines()
        .skip_while(|l| !l.starts_with("trace of cpu 0"))
        .skip(1)
        .take(9)
        .collect();
    assert_eq!(
        trace[..8],
        (0..8)
            .map(|i| format!("  line {i} of a flood"))
            .collect::<Vec<_>>()
    );
    let dropped = (trace_bytes_per_run() - trace_kept_per_run()) as u64 * RUNS;
    assert_eq!(
        trace[8],
        format!("  cpu 0: {dropped} bytes of trace output dropped (each run keeps at most 64 KiB, as the kernel's trace buffer drops what does not fit)")
    );
    // The map: 32 rows of cells holding data, and what was left out.
    let table: Vec<&str> = text
        .lines()
        .skip_while(|l| !l.starts_with("map cells"))
        .skip(2)
        .take_while(|l| !l.is_empty() && !l.starts_with("map "))
        .collect();
    let rows = table
        .iter()
        .filter(|l| !l.trim_start().starts_with('('))
        .count();
    assert_eq!(rows, 32, "{table:?}");
    let with_data = rows
        + table
            .iter()
            .find_map(|l| {
                l.trim()
                    .strip_prefix('(')?
                    .strip_suffix(" more entries not shown; --json lists all)")
            })
            .map_or(0, |n| n.parse::<usize>().unwrap());
    let zero: usize = table
        .iter()
        .find_map(|l| {
            l.trim()
                .strip_prefix('(')?
                .strip_suffix(" all-zero entries not shown)")
        })
        .unwrap()
        .parse()
        .unwrap();
    assert_eq!(with_data + zero, CELLS);
    assert!(with_data as u64 <= RUNS && with_data > 32);
}

#[test]
fn json_lists_every_entry_and_summarises_runs() {
    let doc: Value = serde_json::from_str(&run(&["--json"])).unwrap();
    let r = &doc["runs"][0];
    assert_eq!(r["count"], RUNS);
    assert_eq!(r["retvals"].as_object().unwrap().len(), 64);
    assert_eq!(r["retvals_other"], RUNS - 64);
    assert!(r["first_retval"].is_u64() && r["last_retval"].is_u64());
    let dropped = (trace_bytes_per_run() - trace_kept_per_run()) as u64 * RUNS;
    assert_eq!(r["trace_dropped"], dropped);
    let cells = doc["maps"]
        .as_array()
        .unwrap()
        .iter()
        .find(|m| m["name"] == "cells")
        .unwrap();
    let entries = cells["entries"].as_array().unwrap();
    assert_eq!(entries.len(), CELLS);
    let total: u64 = entries
        .iter()
        .map(|e| {
            let hex = e["value"].as_str().unwrap();
            u64::from_str_radix(&hex[..2], 16).unwrap()
        })
        .sum();
    assert_eq!(total, RUNS, "one increment per run");
}
