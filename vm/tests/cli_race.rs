//! `bpfvm race`: the verdict for the three counters of `race_counter.o`, the timeline, a
//! replayed schedule, JSON, the SVG report, bad arguments; `--explain` points to it.

use assert_cmd::Command;

#[path = "common/cli.rs"]
mod cli;
use cli::{bpfvm, fixture};

fn race(prog: &str, extra: &[&str]) -> String {
    let obj = fixture("race_counter.o");
    let mut args = vec!["race", obj.as_str(), "--prog", prog];
    args.extend_from_slice(extra);
    let (ok, out, err) = bpfvm(&args);
    assert!(ok, "{err}");
    out
}

#[test]
fn the_shared_counter_shows_the_lost_update_step_by_step() {
    let text = race("shared_counter", &[]);
    assert!(
        text.contains("lost update: schedule 0101 (4 shared steps)"),
        "{text}"
    );
    assert!(text.contains("stale read"), "{text}");
    assert!(text.contains("*count += 1;"), "{text}");
    assert!(text.contains("| CPU 0 "), "{text}");
    assert!(text.contains("| CPU 1 "), "{text}");
    assert!(text.contains("shared[0]: 0 -> 1"), "{text}");
    assert!(text.contains("shared[0]: 0 -> 2"), "{text}");
    assert!(text.contains("data races"), "{text}");
    // The printed schedule replays it.
    let replay = race("shared_counter", &["--schedule", "0101"]);
    assert!(replay.contains("lost update: no serial order"), "{replay}");
    let serial = race("shared_counter", &["--schedule", "0011"]);
    assert!(serial.contains("no lost update"), "{serial}");
}

#[test]
fn atomic_and_per_cpu_counters_say_no_lost_update_and_why() {
    let text = race("atomic_counter", &[]);
    assert!(
        text.contains("no lost update: every write to shared memory is an atomic"),
        "{text}"
    );
    let text = race("percpu_counter", &["--cpus", "3", "--runs", "2"]);
    assert!(
        text.contains("no lost update: the program writes no map shared"),
        "{text}"
    );
    assert!(text.contains("per CPU [2, 2, 2]"), "{text}");
}

#[test]
fn json_random_schedules_and_the_svg_report() {
    let text = race(
        "shared_counter",
        &["--json", "--schedules", "50", "--seed", "3"],
    );
    let v: serde_json::Value = serde_json::from_str(&text).unwrap();
    assert_eq!(v["mode"], "random:3");
    assert!(v["lost_update"]["schedule"].is_string(), "{text}");
    assert_eq!(v["maps_before"][0]["name"], "shared");
    let dir = std::env::temp_dir().join(format!("bpfvm-race-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let svg = dir.join("race.svg");
    race("shared_counter", &["--report", svg.to_str().unwrap()]);
    let pic = std::fs::read_to_string(&svg).unwrap();
    assert!(pic.starts_with("<svg") && pic.contains("CPU 1") && pic.contains("lost update"));
    std::fs::remove_dir_all(&dir).unwrap();
}

#[test]
fn bad_arguments_are_refused_clearly() {
    let obj = fixture("race_counter.o");
    for (args, want) in [
        (vec!["--cpus", "0"], "--cpus"),
        (vec!["--cpus", "100000"], "--cpus"),
        (vec!["--runs", "0"], "--runs"),
        (vec!["--runs", "40"], "runs in all"),
        (vec!["--schedule", "01!"], "not a CPU digit"),
        (vec!["--schedule", "05"], "CPU 5"),
    ] {
        let mut a = vec!["race", obj.as_str(), "--prog", "shared_counter"];
        a.extend(args.iter().copied());
        let (ok, _, err) = bpfvm(&a);
        assert!(!ok, "{a:?}");
        assert!(err.contains(want), "{a:?}: {err}");
    }
}

#[test]
fn explain_points_to_race_for_a_shared_map() {
    let (ok, out, err) = bpfvm(&[
        "run",
        &fixture("race_counter.o"),
        "--prog",
        "shared_counter",
        "--explain",
    ]);
    assert!(ok, "{err}");
    assert!(out.contains("bpfvm race"), "{out}");
}

/// The command blocks of `docs/races.md` (`$ bpfvm race ...`, run from the repository
/// root) and the text block after each: their output. `BPFVM_BLESS=1` rewrites them.
#[test]
fn docs_races_outputs_are_current() {
    let root = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("..");
    let path = root.join("docs/races.md");
    let doc = std::fs::read_to_string(&path).unwrap();
    let mut out = String::new();
    let mut rest = doc.as_str();
    let mut stale = Vec::new();
    let mut count = 0;
    while let Some(at) = rest.find("```sh\n$ bpfvm race ") {
        let cmd_start = at + "```sh\n$ bpfvm ".len();
        let cmd_end = cmd_start + rest[cmd_start..].find('\n').unwrap();
        let command = &rest[cmd_start..cmd_end];
        let text_open = cmd_end + rest[cmd_end..].find("```text\n").unwrap() + "```text\n".len();
        let text_close = text_open + rest[text_open..].find("```\n").unwrap();
        let got = Command::new(env!("CARGO_BIN_EXE_bpfvm"))
            .current_dir(&root)
            .args(command.split_whitespace())
            .output()
            .unwrap();
        assert!(
            got.status.success(),
            "{command}: {}",
            String::from_utf8_lossy(&got.stderr)
        );
        let got = String::from_utf8(got.stdout).unwrap();
        if got != rest[text_open..text_close] {
            stale.push(command.to_string());
        }
        out.push_str(&rest[..text_open]);
        out.push_str(&got);
        rest = &rest[text_close..];
        count += 1;
    }
    out.push_str(rest);
    assert!(count >= 5, "{count} commands in docs/races.md");
    if std::env::var_os("BPFVM_BLESS").is_some() {
        std::fs::write(&path, out).unwrap();
    } else {
        assert!(
            stale.is_empty(),
            "docs/races.md is out of date for {stale:?}: BPFVM_BLESS=1 cargo test -p bpfvm --test cli_race docs_races"
        );
    }
}
