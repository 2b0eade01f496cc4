//! The ISA vectors need only upstream's `tests/` and `negative/` folders: programs are
//! assembled from the `.data` files (`vector_asm`). Where the shared copy's `index.tsv`
//! (bytecode from an independent harness) is present, every assembled program must equal it.

use std::path::{Path, PathBuf};

use bpfvm::EngineKind;
use bpfvm_conformance::runner::{run_vector, suite_vm, Outcome};
use bpfvm_conformance::vectors::{self, Expect};

/// The vector folder, or `None` (after a loud skip) when it is missing and not required.
fn vector_dir() -> Option<PathBuf> {
    let dir = vectors::default_dir();
    if dir.exists() {
        return Some(dir);
    }
    assert!(
        !vectors::required(),
        "conformance vectors missing at {}",
        dir.display()
    );
    eprintln!("SKIP: conformance vectors missing at {}", dir.display());
    None
}

#[test]
fn self_assembled_bytecode_equals_index_tsv_for_all_313_vectors() {
    let Some(dir) = vector_dir() else { return };
    let positive = vectors::load_positive(&dir).unwrap();
    assert_eq!(positive.len(), 313);
    match vectors::check_index(&dir, &positive).unwrap() {
        Some(rows) => assert_eq!(rows, 313),
        None => eprintln!(
            "SKIP: no index.tsv in {}, nothing to cross-check",
            dir.display()
        ),
    }
}

/// A temporary folder removed on drop.
struct TempDir(PathBuf);

impl TempDir {
    fn new(tag: &str) -> TempDir {
        let path = std::env::temp_dir().join(format!("bpfvm-{tag}-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&path);
        std::fs::create_dir_all(&path).unwrap();
        TempDir(path)
    }
}

impl Drop for TempDir {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

fn copy_folder(from: &Path, to: &Path) -> usize {
    std::fs::create_dir_all(to).unwrap();
    let mut n = 0;
    for entry in std::fs::read_dir(from).unwrap() {
        let entry = entry.unwrap();
        if entry.file_type().unwrap().is_file() {
            std::fs::copy(entry.path(), to.join(entry.file_name())).unwrap();
            n += 1;
        }
    }
    n
}

#[test]
fn the_suite_runs_from_upstreams_two_folders_without_index_tsv() {
    let Some(shared) = vector_dir() else { return };
    let tmp = TempDir::new("upstream-vectors");
    // Exactly what the README tells users to take from upstream.
    assert_eq!(
        copy_folder(&shared.join("tests"), &tmp.0.join("tests")),
        313
    );
    assert!(copy_folder(&shared.join("negative"), &tmp.0.join("negative")) >= 45);
    assert!(!tmp.0.join("index.tsv").exists());

    let all = vectors::load_all(&tmp.0).unwrap();
    assert_eq!(all.len(), 313 + 45);
    assert_eq!(vectors::check_index(&tmp.0, &all[..313]).unwrap(), None);
    // The same vectors as from the shared folder.
    let reference = vectors::load_all(&shared).unwrap();
    assert_eq!(reference.len(), all.len());
    for (a, b) in all.iter().zip(&reference) {
        assert_eq!(
            (&a.name, &a.code, &a.mem, &a.expect),
            (&b.name, &b.code, &b.mem, &b.expect)
        );
    }
    // And they run: every positive vector passes on the interpreter, every negative one is
    // refused at load time by bpfvm's own checks (both are `Outcome::Passed`).
    let vm = suite_vm();
    let mut refusals = 0;
    for v in &all {
        assert_eq!(
            run_vector(&vm, EngineKind::Interpreter, v),
            Outcome::Passed,
            "{}",
            v.name
        );
        refusals += usize::from(matches!(v.expect, Expect::Error(_)));
    }
    assert_eq!(refusals, 45);
}

#[test]
fn upstreams_malformed_vector_files_are_refused_with_the_file_named() {
    let Some(dir) = vector_dir() else { return };
    let neg = dir.join("negative");
    let mut refused = 0;
    for name in [
        "empty",
        "empty_instructions",
        "invalid_imm32_dec_range",
        "invalid_imm32_hex_range",
        "invalid_label",
        "invalid_lock",
        "invalid_lock2",
        "invalid_mnemonic",
        "invalid_offset",
        "invalid_offset_range",
        "invalid_operand_count",
        "invalid_register",
        "invalid_unknown_directive",
    ] {
        let path = neg.join(format!("{name}.data"));
        let e = vectors::load_file(&path).unwrap_err();
        assert_eq!(e.path, path, "{e}");
        eprintln!("{e}");
        refused += 1;
    }
    assert_eq!(refused, 13);
    // These two assemble: one expects a runtime refusal, one a deliberately wrong result.
    assert!(vectors::load_file(&neg.join("error.data")).is_ok());
    assert!(vectors::load_file(&neg.join("incorrect_return_value_high_bits.data")).is_ok());
}

#[test]
fn the_index_cross_check_notices_a_changed_byte() {
    let Some(shared) = vector_dir() else { return };
    let index = shared.join("index.tsv");
    if !index.exists() {
        eprintln!("SKIP: no index.tsv in {}", shared.display());
        return;
    }
    let positive = vectors::load_positive(&shared).unwrap();
    let tmp = TempDir::new("changed-index");
    copy_folder(&shared.join("tests"), &tmp.0.join("tests"));
    let text = std::fs::read_to_string(&index).unwrap();
    // add.data's first instruction `mov32 %r0, 0` (b4 00 ...) becomes `mov32 %r0, 1`.
    let changed = text.replacen(
        "tests/add.data\tasm\tv1\tbase32\t-\t0x3\t-\tb400000000000000",
        "tests/add.data\tasm\tv1\tbase32\t-\t0x3\t-\tb400000001000000",
        1,
    );
    assert_ne!(changed, text, "the add.data row has the expected shape");
    std::fs::write(tmp.0.join("index.tsv"), changed).unwrap();
    let e = vectors::check_index(&tmp.0, &positive).unwrap_err();
    assert!(e.path.ends_with("tests/add.data"), "{e}");
    assert!(e.reason.contains("bytecode differs"), "{e}");
    // A missing row is noticed too.
    let fewer: String = text
        .lines()
        .filter(|l| !l.starts_with("tests/add.data\t"))
        .map(|l| format!("{l}\n"))
        .collect();
    std::fs::write(tmp.0.join("index.tsv"), fewer).unwrap();
    let e = vectors::check_index(&tmp.0, &positive).unwrap_err();
    assert!(e.reason.contains("312 rows for 313 vectors"), "{e}");
}
