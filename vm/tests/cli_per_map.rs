//! The command line creates maps one at a time: `bpfvm run` runs a program of an object
//! whose other map cannot be created (max_entries 0, sized by its tool's loader), refuses
//! the program that uses it with an error naming the map, and `bpfvm verify` lists that
//! program as refused at load while it verifies the other one.

#[path = "common/cli.rs"]
mod cli;
use cli::bpfvm;

fn fixture() -> String {
    format!(
        "{}/tests/fixtures/zero_entries.o",
        env!("CARGO_MANIFEST_DIR")
    )
}

#[test]
fn run_uses_only_the_maps_of_its_program() {
    let (ok, out, err) = bpfvm(&["run", &fixture(), "--prog", "count", "--cpus", "1"]);
    assert!(ok, "{err}");
    assert!(out.contains("counter"), "{out}");
    let (ok, _, err) = bpfvm(&["run", &fixture(), "--prog", "remember", "--cpus", "1"]);
    assert!(!ok);
    assert!(
        err.contains("uses map sized_later, which cannot be loaded") && err.contains("max_entries"),
        "{err}"
    );
}

#[test]
fn verify_refuses_only_the_program_using_the_map() {
    let (ok, out, err) = bpfvm(&["verify", &fixture()]);
    assert!(!ok, "one program is refused: {out}{err}");
    assert!(out.contains("count (section xdp): accepted"), "{out}");
    assert!(
        out.contains("remember (section xdp): refused at load: uses map sized_later"),
        "{out}"
    );
}
