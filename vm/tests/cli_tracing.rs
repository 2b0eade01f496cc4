//! `bpfvm run` on tracing programs: a raw tracepoint takes its `u64` arguments as the
//! context (`--data`); an fentry program needs `--btf` (its attach target's prototype) and
//! says so without it.

#[path = "common/cli.rs"]
mod cli;
use cli::{bpfvm, fixture};

fn args_file(name: &str, values: &[u64]) -> String {
    let path =
        std::env::temp_dir().join(format!("bpfvm-cli-tracing-{}-{name}", std::process::id()));
    let bytes: Vec<u8> = values.iter().flat_map(|v| v.to_ne_bytes()).collect();
    std::fs::write(&path, bytes).unwrap();
    path.to_string_lossy().into_owned()
}

#[test]
fn a_raw_tracepoint_runs_on_its_arguments() {
    let ctx = args_file("raw", &[5, 100]);
    let (ok, out, err) = bpfvm(&[
        "run",
        &fixture("tracing.o"),
        "--prog",
        "on_raw",
        "--privileged",
        "root",
        "--data",
        &ctx,
        "--cpus",
        "1",
        "--json",
    ]);
    assert!(ok, "{err}");
    assert!(out.contains("\"first_retval\":205"), "{out}");
}

#[test]
fn fentry_needs_a_target_btf() {
    let ctx = args_file("fentry", &[0, 7]);
    let common = [
        "run",
        &fixture("tracing.o"),
        "--prog",
        "on_entry",
        "--privileged",
        "root",
        "--data",
        &ctx,
        "--cpus",
        "1",
    ];
    let (ok, _, err) = bpfvm(&common);
    assert!(!ok);
    assert!(err.contains("give a target BTF (--btf FILE"), "{err}");
    let btf = fixture("tracing_target.btf");
    let mut with_btf = common.to_vec();
    with_btf.extend(["--btf", &btf, "--json"]);
    let (ok, out, err) = bpfvm(&with_btf);
    assert!(ok, "{err}");
    assert!(out.contains("\"first_retval\":0"), "{out}");
    // The struct read (`task->pid`) is checked against the target BTF: a full verdict.
    assert!(!err.contains("PTR_TO_BTF_ID"), "{err}");
}
