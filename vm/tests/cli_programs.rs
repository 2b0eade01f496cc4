//! The command line for per-program loading: `bpfvm list` shows which programs load and
//! why others do not, `run` gives a refused program's own error, `--type` runs a legacy
//! section, `--kconfig`/`--kernel-version` feed `__kconfig` externs, and `run --json`
//! reports each CPU's output packet and context.

use serde_json::Value;

#[path = "common/cli.rs"]
mod cli;
use cli::bpfvm;

fn fixture(name: &str) -> String {
    format!("{}/tests/fixtures/{name}.o", env!("CARGO_MANIFEST_DIR"))
}

/// A scratch directory of this test's own, removed at the end.
struct Scratch(std::path::PathBuf);

impl Scratch {
    fn new(name: &str) -> Scratch {
        let dir =
            std::env::temp_dir().join(format!("bpfvm-cli-programs-{name}-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        Scratch(dir)
    }

    fn file(&self, name: &str, contents: &[u8]) -> String {
        let p = self.0.join(name);
        std::fs::write(&p, contents).unwrap();
        p.display().to_string()
    }
}

impl Drop for Scratch {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

#[test]
fn list_shows_which_programs_load_and_why_others_do_not() {
    let (ok, out, err) = bpfvm(&["list", &fixture("partial")]);
    assert!(ok, "{err}");
    let lines: Vec<&str> = out.lines().collect();
    assert!(lines[0].starts_with("program"), "{out}");
    assert!(
        lines[1].starts_with("good ") && lines[1].ends_with("loads"),
        "{out}"
    );
    assert!(lines[2].contains("refused: uses map mystery"), "{out}");
    assert!(lines[3].starts_with("probes_weak_kfunc ") && lines[3].ends_with("loads"));
    assert!(
        lines[4].contains("refused: kfunc bpf_kfunc_that_does_not_exist is not built into bpfvm"),
        "{out}"
    );
    assert_eq!(
        lines[5],
        "map mystery cannot be loaded: map mystery has unknown map type 999"
    );
    let (ok, out, _) = bpfvm(&["list", &fixture("multi")]);
    assert!(ok);
    let custom = out.lines().find(|l| l.starts_with("custom_prog")).unwrap();
    assert!(
        custom.contains("unknown section: run with --type TYPE"),
        "{custom}"
    );
    let skb = out.lines().find(|l| l.starts_with("skb_prog")).unwrap();
    assert!(
        skb.contains("cgroup_skb") && skb.contains("cgroup_inet_ingress"),
        "{skb}"
    );
}

#[test]
fn run_of_a_refused_program_gives_its_error_and_the_good_one_runs() {
    let (ok, _, err) = bpfvm(&["run", &fixture("partial"), "--prog", "uses_kfunc"]);
    assert!(!ok);
    assert!(
        err.contains(
            "program uses_kfunc refused: instruction 1: kfunc bpf_kfunc_that_does_not_exist is \
             not registered"
        ),
        "{err}"
    );
    let (ok, out, err) = bpfvm(&["run", &fixture("partial"), "--prog", "good", "--json"]);
    assert!(ok, "{err}");
    let doc: Value = serde_json::from_str(&out).unwrap();
    assert_eq!(doc["runs"][0]["last_retval"], 2);
    // Without --prog the choices name the refused ones too.
    let (ok, _, err) = bpfvm(&["run", &fixture("partial")]);
    assert!(!ok);
    assert!(err.contains("uses_bad_map (section xdp, refused)"), "{err}");
}

#[test]
fn a_legacy_section_runs_with_type_and_is_refused_without() {
    let (ok, _, err) = bpfvm(&["run", &fixture("legacy_section")]);
    assert!(!ok);
    assert!(
        err.contains("section name xdp_pass (program pass_len) is not one libbpf knows")
            && err.contains("--type xdp"),
        "{err}"
    );
    let (ok, out, err) = bpfvm(&[
        "run",
        &fixture("legacy_section"),
        "--type",
        "xdp",
        "--cpus",
        "1",
        "--privileged",
        "root",
        "--json",
    ]);
    assert!(ok, "{err}");
    let doc: Value = serde_json::from_str(&out).unwrap();
    let lens = doc["maps"]
        .as_array()
        .unwrap()
        .iter()
        .find(|m| m["name"] == "lens")
        .unwrap();
    // Without --data an XDP program gets a 60-byte zeroed frame.
    assert_eq!(lens["entries"][0]["value"], "3c00000000000000");
    let (ok, _, err) = bpfvm(&["run", &fixture("legacy_section"), "--type", "nonsense"]);
    assert!(!ok);
    assert!(err.contains("--type nonsense: not a program type") && err.contains("sched_cls"));
    let (ok, _, err) = bpfvm(&["run", &fixture("legacy_section"), "--type", "lsm"]);
    assert!(!ok);
    assert!(err.contains("has program type lsm"), "{err}");
}

#[test]
fn kconfig_file_and_kernel_version_reach_the_externs() {
    let dir = Scratch::new("kconfig");
    let cfg = dir.file(
        "config",
        b"# comment\nCONFIG_HZ=300\nCONFIG_BPF_SYSCALL=y\n",
    );
    let (ok, out, err) = bpfvm(&[
        "run",
        &fixture("externs"),
        "--prog",
        "read_externs",
        "--cpus",
        "1",
        "--kconfig",
        &cfg,
        "--kernel-version",
        "5.4.1",
        "--json",
    ]);
    assert!(ok, "{err}");
    let doc: Value = serde_json::from_str(&out).unwrap();
    let bss = doc["maps"]
        .as_array()
        .unwrap()
        .iter()
        .find(|m| m["name"] == "externs.bss")
        .unwrap();
    let value = bss["entries"][0]["value"].as_str().unwrap();
    // version 0x050401, hz 300 (0x12c), nr_cpus 0, cookie 1, syscall 1.
    assert!(
        value.starts_with("010405002c010000000000000000000001010000"),
        "{value}"
    );
    let bad = dir.file("bad", b"CONFIG_HZ\n");
    let (ok, _, err) = bpfvm(&["run", &fixture("externs"), "--kconfig", &bad]);
    assert!(!ok);
    assert!(
        err.contains("--kconfig") && err.contains("no '=' separator"),
        "{err}"
    );
    // A value of the wrong kind refuses the program that reads it.
    let wrong = dir.file("wrong", b"CONFIG_HZ=m\n");
    let (ok, _, err) = bpfvm(&[
        "run",
        &fixture("externs"),
        "--prog",
        "read_externs",
        "--kconfig",
        &wrong,
    ]);
    assert!(!ok);
    assert!(err.contains("kconfig CONFIG_HZ: value 'm'"), "{err}");
}

#[test]
fn json_reports_the_output_packet_and_context_of_each_cpu() {
    let dir = Scratch::new("json");
    let frame: Vec<u8> = (0..64u8).collect();
    let data = dir.file("frame", &frame);
    let (ok, out, err) = bpfvm(&[
        "run",
        &fixture("tc_skb"),
        "--data",
        &data,
        "--cpus",
        "2",
        "--repeat",
        "3",
        "--privileged",
        "root",
        "--json",
    ]);
    assert!(ok, "{err}");
    let doc: Value = serde_json::from_str(&out).unwrap();
    for run in doc["runs"].as_array().unwrap() {
        let hex: String = frame.iter().map(|b| format!("{b:02x}")).collect();
        assert_eq!(
            run["data_out"],
            hex.as_str(),
            "tc_skb leaves the frame as it is"
        );
        assert!(
            run.get("first_data_out").is_none(),
            "same as the last run's"
        );
        let ctx = run["ctx_out"].as_str().unwrap();
        assert_eq!(ctx.len(), 2 * 192, "struct __sk_buff");
    }
    // A kprobe has neither a packet nor a test-run context.
    let (ok, out, err) = bpfvm(&[
        "run",
        &fixture("multi"),
        "--prog",
        "kprobe_prog",
        "--privileged",
        "root",
        "--json",
    ]);
    assert!(ok, "{err}");
    let doc: Value = serde_json::from_str(&out).unwrap();
    assert_eq!(doc["runs"][0]["data_out"], "");
    assert!(doc["runs"][0].get("ctx_out").is_none());
}
