//! The command line creates maps one at a time: `bpfvm run` runs a program of an object
//! whose other map cannot be created (max_entries 0, sized by its tool's loader), refuses
//! the program that uses it with the verifier's error on the poisoned reference naming the
//! map, and `bpfvm verify` lists that program as refused while it verifies the other one.

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
        err.contains(
            "invalid func unknown#2001000001: BPF map 'sized_later' is referenced but wasn't created"
        ) && err.contains("max_entries"),
        "{err}"
    );
}

#[test]
fn verify_refuses_only_the_program_using_the_map() {
    let (ok, out, err) = bpfvm(&["verify", &fixture()]);
    assert!(!ok, "one program is refused: {out}{err}");
    assert!(out.contains("count (section xdp): accepted"), "{out}");
    assert!(
        out.contains(
            "remember (section xdp): refused for a cap_bpf loader (errno 22): the kernel's \
             verifier refuses the program: instruction 8: invalid func unknown#2001000001: \
             BPF map 'sized_later' is referenced but wasn't created"
        ),
        "{out}"
    );
}
