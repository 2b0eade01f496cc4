//! `bpfvm` reads its input files once and with a size limit: an object over 64 MiB (or an
//! endless file such as `/dev/zero`) is refused, and so is `--data` over what the kernel's
//! test run takes for the program type (3,712 bytes for `__sk_buff` programs, 73,152 for
//! XDP, 65,535 for a raw context); data at the limit runs.

use std::fs::File;
use std::path::PathBuf;

#[path = "common/cli.rs"]
mod cli;
use cli::fixture;

use assert_cmd::Command;

fn bpfvm(args: &[&str]) -> (Option<i32>, String) {
    let out = Command::new(env!("CARGO_BIN_EXE_bpfvm"))
        .args(args)
        .output()
        .unwrap();
    (
        out.status.code(),
        String::from_utf8_lossy(&out.stderr).into_owned(),
    )
}

/// A scratch directory of one test, removed when dropped.
struct Scratch(PathBuf);

impl Scratch {
    fn new(test: &str) -> Scratch {
        let dir =
            std::env::temp_dir().join(format!("bpfvm-cli-input-{}-{test}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        Scratch(dir)
    }

    /// A sparse file of `len` bytes (no disk space used).
    fn sparse(&self, name: &str, len: u64) -> String {
        let path = self.0.join(name);
        File::create(&path).unwrap().set_len(len).unwrap();
        path.display().to_string()
    }

    fn filled(&self, name: &str, len: usize) -> String {
        let path = self.0.join(name);
        std::fs::write(&path, vec![0u8; len]).unwrap();
        path.display().to_string()
    }
}

impl Drop for Scratch {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

#[test]
fn objects_over_64_mib_or_endless_are_refused() {
    let scratch = Scratch::new("objects");
    let big = scratch.sparse("big.o", 100 << 20);
    let mut objects = vec![big];
    if cfg!(unix) {
        objects.push("/dev/zero".to_string());
    }
    for obj in &objects {
        for args in [
            vec!["run", obj.as_str()],
            vec!["maps", obj.as_str()],
            vec!["disasm", obj.as_str()],
        ] {
            let (code, err) = bpfvm(&args);
            assert_eq!(code, Some(1), "{args:?}: {err}");
            assert!(
                err.contains("the object is larger than 64 MiB (the limit on object files)"),
                "{err}"
            );
        }
    }
}

#[test]
fn data_over_the_kernels_test_run_limit_is_refused() {
    // (fixture, program type's limit, why)
    let cases = [
        (
            "percpu_counter.o",
            73_152,
            "the XDP test run's packet limit",
        ),
        ("tc_skb.o", 3712, "the __sk_buff test run's packet limit"),
        ("trusted.o", 65_535, "the raw context limit"),
    ];
    let scratch = Scratch::new("data");
    for (obj, max, why) in cases {
        let over = scratch.filled(&format!("{obj}.over"), max + 1);
        let at = scratch.filled(&format!("{obj}.at"), max);
        let huge = scratch.sparse(&format!("{obj}.huge"), 100 << 20);
        let mut too_big = vec![over, huge];
        if cfg!(unix) {
            too_big.push("/dev/zero".to_string());
        }
        for data in &too_big {
            let (code, err) = bpfvm(&["run", &fixture(obj), "--data", data, "--cpus", "2"]);
            assert_eq!(code, Some(1), "{obj} {data}: {err}");
            assert!(
                err.contains(&format!("the --data is larger than {max} bytes ({why})")),
                "{err}"
            );
        }
        // As root, as the kernel oracle loads these fixtures (tc_skb needs CAP_PERFMON).
        let (code, err) = bpfvm(&[
            "run",
            &fixture(obj),
            "--data",
            &at,
            "--cpus",
            "2",
            "--privileged",
            "root",
        ]);
        assert_eq!(code, Some(0), "{obj} at the limit: {err}");
    }
}
