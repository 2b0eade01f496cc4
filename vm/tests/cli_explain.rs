//! `bpfvm run --explain` walks through per-CPU semantics with real lookups: the flags-0
//! layout of N slots of round_up(value_size, 8) bytes, BPF_F_CPU per CPU, and BPF_F_ALL_CPUS on
//! a copy; the same command prints the same text.

use assert_cmd::Command;

#[path = "common/cli.rs"]
mod cli;
use cli::fixture;

fn explain(args: &[&str]) -> String {
    let out = Command::new(env!("CARGO_BIN_EXE_bpfvm"))
        .arg("run")
        .args(args)
        .arg("--explain")
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8(out.stdout).unwrap()
}

#[test]
fn the_counter_walkthrough_shows_layout_cpu_flags_and_all_cpus() {
    let args = [
        fixture("percpu_counter.o"),
        "--cpus".into(),
        "3".into(),
        "--cpu".into(),
        "1".into(),
        "--repeat".into(),
        "5".into(),
    ];
    let args: Vec<&str> = args.iter().map(String::as_str).collect();
    let text = explain(&args);
    assert!(text.contains("step 1: the runs"), "{text}");
    assert!(text.contains("cpu 0: did not run"), "{text}");
    assert!(
        text.contains("cpu 1: 5 run(s), returned 2 (XDP_PASS) ×5"),
        "{text}"
    );
    // Flags 0: 3 slots of 8 bytes; only cpu 1 ran.
    assert!(
        text.contains("N × round_up(value_size, 8) = 3 × 8 = 24 bytes"),
        "{text}"
    );
    assert!(
        text.contains("cpu 1: 05 00 00 00 00 00 00 00  = 5"),
        "{text}"
    );
    assert!(
        text.contains("cpu 0: 00 00 00 00 00 00 00 00  = 0"),
        "{text}"
    );
    // BPF_F_CPU for each CPU, and ERANGE one past the last.
    assert!(
        text.contains("cpu 1: flags 0x0000000100000008 -> 05 00 00 00 00 00 00 00  = 5"),
        "{text}"
    );
    assert!(
        text.contains("cpu 3: flags 0x0000000300000008 -> error ERANGE (34)"),
        "{text}"
    );
    // BPF_F_ALL_CPUS on a copy: 42 + seed 0 in every slot, and EINVAL on lookups.
    assert!(text.contains("on a COPY of the map"), "{text}");
    assert_eq!(
        text.matches("2a 00 00 00 00 00 00 00  = 42").count(),
        3,
        "{text}"
    );
    assert!(text.contains("refused with EINVAL (22)"), "{text}");
    // The shared array is explained too.
    assert!(text.contains("map total (array) is shared"), "{text}");
    assert!(
        !text.contains(" ms") && !text.contains(" µs"),
        "no timing: {text}"
    );
}

#[test]
fn the_seed_picks_the_written_value_and_output_is_reproducible() {
    let a = [
        fixture("percpu_counter.o"),
        "--cpus".into(),
        "2".into(),
        "--seed".into(),
        "58".into(),
    ];
    let a: Vec<&str> = a.iter().map(String::as_str).collect();
    let first = explain(&a);
    assert!(first.contains("64 00 00 00 00 00 00 00  = 100"), "{first}");
    assert_eq!(first, explain(&a));
}

#[test]
fn values_that_are_not_a_multiple_of_8_show_their_padding() {
    // legacy_percpu: a PERCPU_ARRAY of 4-byte values (no BTF: hex), bumped once per run.
    let text = explain(&[&fixture("legacy_maps.o"), "--cpus", "2", "--repeat", "3"]);
    assert!(text.contains("2 × 8 = 16 bytes"), "{text}");
    assert!(
        text.contains("cpu 1: 03 00 00 00 | 00 00 00 00 (padding)"),
        "{text}"
    );
    assert!(
        text.contains("value_size = 4 bytes (42 + --seed 0): 2a 00 00 00"),
        "{text}"
    );
    // The shared hash is bumped by both CPUs; CPU after CPU, cpu 1 sees 4, 5, 6.
    assert!(
        text.contains("cpu 1: 3 run(s), returned 4 ×1, 5 ×1, 6 ×1"),
        "{text}"
    );
}
