//! `bpfvm run --map-memory-limit SIZE` bounds the memory an object's maps use together
//! (default 1 GiB): an object whose maps do not fit is refused naming the map, the limit and
//! the flag, and a lower or higher limit moves where that happens.

use assert_cmd::Command;

#[path = "common/cli.rs"]
mod cli;
use cli::fixture;

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

#[test]
fn maps_over_the_default_limit_are_refused_by_name() {
    let (code, err) = bpfvm(&["run", &fixture("big_maps.o")]);
    assert_eq!(code, Some(1), "{err}");
    assert!(err.contains("cannot create map big25"), "{err}");
    assert!(err.contains("of 1073741824 bytes are in use"), "{err}");
    assert!(err.contains("--map-memory-limit"), "{err}");
    let (code, err) = bpfvm(&["run", &fixture("big_bss.o")]);
    assert_eq!(code, Some(1), "{err}");
    assert!(err.contains("cannot create map big_bss.bss"), "{err}");
    assert!(err.contains("needs 1610612"), "{err}");
}

#[test]
fn the_limit_is_configurable() {
    // 64 MiB maps: one fits in 128 MiB, fifteen in 1 GiB; all forty in 3 GiB.
    let (code, err) = bpfvm(&["run", &fixture("big_maps.o"), "--map-memory-limit", "128M"]);
    assert_eq!(code, Some(1));
    assert!(err.contains("cannot create map big11"), "{err}");
    assert!(err.contains("of 134217728 bytes"), "{err}");
    let (code, err) = bpfvm(&[
        "run",
        &fixture("big_maps.o"),
        "--map-memory-limit",
        "3G",
        "--cpus",
        "1",
    ]);
    assert_eq!(code, Some(0), "{err}");
    // Sizes are checked when parsing.
    let (code, err) = bpfvm(&["run", &fixture("big_maps.o"), "--map-memory-limit", "1.5G"]);
    assert_eq!(code, Some(2), "{err}");
    assert!(err.contains("not a size"), "{err}");
}
