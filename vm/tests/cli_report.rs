//! `bpfvm run --report FILE` writes a self-contained SVG with runs per CPU and per-CPU
//! values as bars, alongside the normal output.

use assert_cmd::Command;

#[path = "common/cli.rs"]
mod cli;
use cli::fixture;

#[test]
fn the_report_is_an_svg_with_one_bar_per_cpu() {
    let file = std::env::temp_dir().join(format!("bpfvm-cli-report-{}.svg", std::process::id()));
    let out = Command::new(env!("CARGO_BIN_EXE_bpfvm"))
        .args([
            "run",
            &fixture("percpu_counter.o"),
            "--cpus",
            "4",
            "--cpu",
            "3",
            "--repeat",
            "9",
            "--json",
            "--report",
        ])
        .arg(&file)
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    // stdout stays one JSON object; the note goes to stderr.
    serde_json::from_slice::<serde_json::Value>(&out.stdout).unwrap();
    assert!(String::from_utf8_lossy(&out.stderr).contains("report written to"));

    let svg = std::fs::read_to_string(&file).unwrap();
    std::fs::remove_file(&file).ok();
    assert!(svg.starts_with("<?xml"), "{svg}");
    assert!(svg.contains("<svg xmlns=\"http://www.w3.org/2000/svg\""));
    assert!(svg.trim_end().ends_with("</svg>"));
    assert!(
        !svg.contains("http://") || svg.matches("http://").count() == 1,
        "no external refs"
    );
    assert!(svg.contains("runs per cpu"));
    assert!(svg.contains("map counts (percpu_array)"));
    // Runs chart: 4 bars (one per CPU), tooltips with the counts 0, 0, 0, 9; the per-CPU map
    // chart has 4 more bars for key 0, CPU 3's holding 9; the shared map `total` (an ARRAY
    // the program adds to atomically) is drawn too: one bar, 9.
    assert!(svg.contains("<title>cpu3: 9 runs</title>"), "{svg}");
    assert!(svg.contains("<title>cpu3: 9</title>"), "{svg}");
    assert!(svg.contains("map total (array): one value per key, shared by all cpus"));
    assert!(svg.contains("<title>key 0: 9 (all cpus)</title>"), "{svg}");
    assert_eq!(svg.matches("<title>").count(), 9, "{svg}");
    // Tags balance: every opened text is closed.
    assert_eq!(svg.matches("<text").count(), svg.matches("</text>").count());
}
