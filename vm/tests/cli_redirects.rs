//! `bpfvm run` shows where each CPU's packets went: a redirects table in the text output
//! and a `redirects` list per CPU in `--json`, for the `cpu_steer` fixture whose CPUs each
//! redirect to their own device; maps the host cannot read (XSKMAP) do not stop the listing.

use assert_cmd::Command;
use serde_json::Value;

#[path = "common/cli.rs"]
mod cli;
use cli::fixture;

fn run(args: &[&str]) -> std::process::Output {
    // One file per call: the tests of this file run in parallel threads of one process.
    static CALLS: std::sync::atomic::AtomicUsize = std::sync::atomic::AtomicUsize::new(0);
    let call = CALLS.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
    let dir = std::env::temp_dir().join(format!("bpfvm-cli-redirects-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let pkt = dir.join(format!("frame-{call}"));
    std::fs::write(&pkt, [0u8; 60]).unwrap();
    let out = Command::new(env!("CARGO_BIN_EXE_bpfvm"))
        .arg("run")
        // pkt_ops computes data - data_meta, which the kernel allows a root loader only.
        .args(["--privileged", "root"])
        .args(args)
        .arg("--data")
        .arg(&pkt)
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "stderr: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    out
}

#[test]
fn the_text_output_lists_each_cpus_redirect_target() {
    let out = run(&[&fixture("cpu_steer.o"), "--cpus", "3", "--repeat", "4"]);
    let text = String::from_utf8(out.stdout).unwrap();
    assert!(
        text.contains("redirects (where the packets went)"),
        "{text}"
    );
    for cpu in 0..3 {
        let line = format!("{cpu}  ifindex {}     4", 100 + cpu);
        assert!(text.contains(&line), "no {line:?} in\n{text}");
    }
    assert!(text.contains("4 (XDP_REDIRECT) ×4"), "{text}");
}

#[test]
fn json_lists_redirects_per_cpu() {
    let out = run(&[
        &fixture("cpu_steer.o"),
        "--cpus",
        "2",
        "--repeat",
        "3",
        "--json",
    ]);
    let doc: Value = serde_json::from_slice(&out.stdout).unwrap();
    for cpu in 0..2u64 {
        let r = &doc["runs"][cpu as usize]["redirects"];
        assert_eq!(r.as_array().unwrap().len(), 1, "{doc}");
        assert_eq!(r[0]["kind"], "ifindex");
        assert_eq!(r[0]["ifindex"], 100 + cpu);
        assert_eq!(r[0]["count"], 3);
        assert_eq!(r[0]["target"], format!("ifindex {}", 100 + cpu));
    }
}

#[test]
fn objects_with_redirect_maps_list_them() {
    let out = run(&[
        &fixture("pkt_ops.o"),
        "--prog",
        "xdp_ops",
        "--cpus",
        "2",
        "--json",
    ]);
    let doc: Value = serde_json::from_slice(&out.stdout).unwrap();
    let types: Vec<&str> = doc["maps"]
        .as_array()
        .unwrap()
        .iter()
        .map(|m| m["type"].as_str().unwrap())
        .collect();
    for t in ["devmap", "devmap_hash", "cpumap", "xskmap"] {
        assert!(types.contains(&t), "{types:?}");
    }
}
