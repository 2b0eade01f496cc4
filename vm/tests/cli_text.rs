//! `bpfvm run` without `--json` prints a run summary and every map as a table, one column per
//! CPU for per-CPU maps, values decoded with BTF.

use assert_cmd::Command;

#[path = "common/cli.rs"]
mod cli;
use cli::fixture;

fn stdout(args: &[&str]) -> String {
    let out = Command::new(env!("CARGO_BIN_EXE_bpfvm"))
        .args(args)
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8(out.stdout).unwrap()
}

/// The whitespace-separated cells of the first line starting with `first` (after indent),
/// after the line starting with `section`.
fn row_after(text: &str, section: &str, first: &str) -> Vec<String> {
    text.lines()
        .skip_while(|l| !l.starts_with(section))
        .map(|l| l.split_whitespace().map(str::to_string).collect::<Vec<_>>())
        .find(|cells| cells.first().map(String::as_str) == Some(first))
        .unwrap_or_else(|| panic!("no row {first:?} in\n{text}"))
}

#[test]
fn the_per_cpu_table_has_one_column_per_cpu_and_a_sum() {
    let text = stdout(&[
        "run",
        &fixture("percpu_counter.o"),
        "--cpus",
        "4",
        "--repeat",
        "1000",
    ]);
    assert!(
        text.contains("program count_packets (section xdp"),
        "{text}"
    );
    assert!(
        text.contains("1000 runs on each of 4 cpus, 4000 runs in all"),
        "{text}"
    );
    assert!(text.contains("2 (XDP_PASS) ×1000"), "{text}");
    assert!(text.contains(" per run (mean on one cpu)"), "{text}");
    assert!(text.contains("map counts (percpu_array, key 4 B, value 8 B, max_entries 1)"));
    assert_eq!(
        row_after(&text, "map counts", "key"),
        ["key", "cpu0", "cpu1", "cpu2", "cpu3", "sum"]
    );
    assert_eq!(
        row_after(&text, "map counts", "0"),
        ["0", "1000", "1000", "1000", "1000", "4000"]
    );
    assert!(text.contains("map total (array"), "{text}");
}

#[test]
fn global_data_is_decoded_by_variable_name() {
    let text = stdout(&[
        "run",
        &fixture("globals.o"),
        "--prog",
        "bump",
        "--cpus",
        "1",
        "--repeat",
        "3",
    ]);
    assert!(text.contains("{ counter: 45 }"), "{text}");
    assert!(text.contains("{ runs: 3 }"), "{text}");
    assert!(text.contains("greeting: \"bpfvm!\""), "{text}");
    assert!(text.contains("section .bss"), "{text}");
}

#[test]
fn many_cpus_are_listed_one_row_per_cpu() {
    let text = stdout(&[
        "run",
        &fixture("percpu_counter.o"),
        "--cpus",
        "12",
        "--repeat",
        "2",
    ]);
    assert_eq!(
        row_after(&text, "map counts", "key"),
        ["key", "cpu", "value"]
    );
    let rows = text
        .lines()
        .filter(|l| l.split_whitespace().collect::<Vec<_>>().as_slice() == ["0", "11", "2"])
        .count();
    assert_eq!(rows, 1, "{text}");
}
