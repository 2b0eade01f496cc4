//! `bpfvm race`: the verdict for the three counters of `race_counter.o`, the timeline, a
//! replayed schedule, JSON, the SVG report, bad arguments; `--explain` points to it.

use assert_cmd::Command;

fn fixture(name: &str) -> String {
    format!("{}/tests/fixtures/{name}", env!("CARGO_MANIFEST_DIR"))
}

fn bpfvm(args: &[&str]) -> (bool, String, String) {
    let out = Command::new(env!("CARGO_BIN_EXE_bpfvm"))
        .args(args)
        .output()
        .unwrap();
    (
        out.status.success(),
        String::from_utf8_lossy(&out.stdout).into_owned(),
        String::from_utf8_lossy(&out.stderr).into_owned(),
    )
}

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
