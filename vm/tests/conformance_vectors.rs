//! Checks that the interpreter passes all 313 bpf_conformance vectors and refuses the 45
//! `negative/unused-*` programs and `negative/error.data` at load time.

use std::path::PathBuf;

use bpfvm::helpers::HelperContext;
use bpfvm::{CpuId, Input, PrepareError, Program, ProgramType, Vm};

fn suite() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../../shared/conformance/bpf_conformance")
}

fn hex(s: &str) -> Vec<u8> {
    (0..s.len() / 2)
        .map(|i| u8::from_str_radix(&s[2 * i..2 * i + 2], 16).unwrap())
        .collect()
}

fn vm() -> Vm {
    // The suite's contract: helper 5 returns its first argument.
    Vm::builder()
        .cpus(1)
        .helper(
            5,
            "conformance_identity",
            |_: &mut HelperContext, a: [u64; 5]| Ok(a[0]),
        )
        .unwrap()
        .build()
}

#[test]
fn all_313_vectors_pass_on_the_interpreter() {
    let index = std::fs::read_to_string(suite().join("index.tsv")).expect("index.tsv");
    let vm = vm();
    let mut failures = Vec::new();
    let mut count = 0;
    for line in index
        .lines()
        .filter(|l| !l.starts_with('#') && !l.starts_with("file\t"))
    {
        let cols: Vec<&str> = line.split('\t').collect();
        let (file, expected, mem, code) = (cols[0], cols[5], cols[6], cols[7]);
        count += 1;
        let expected = u64::from_str_radix(expected.trim_start_matches("0x"), 16).unwrap();
        let mem = if mem == "-" { Vec::new() } else { hex(mem) };
        let prog = match vm.load(Program::new(hex(code), ProgramType::Unspecified)) {
            Ok(p) => p,
            Err(e) => {
                failures.push(format!("{file}: refused: {e}"));
                continue;
            }
        };
        match vm.run(&prog, CpuId(0), &Input::context(mem)) {
            Ok(out) if out.retval == expected => {}
            Ok(out) => failures.push(format!(
                "{file}: r0 = {:#x}, expected {expected:#x}",
                out.retval
            )),
            Err(e) => failures.push(format!("{file}: {e}")),
        }
    }
    assert_eq!(count, 313);
    assert!(
        failures.is_empty(),
        "{} failures:\n{}",
        failures.len(),
        failures.join("\n")
    );
}

/// Reads the `-- raw` bytes of a negative vector (8 hex bytes per line) or assembles its one
/// `-- asm` line for `error.data`.
fn negative_program(text: &str) -> Vec<u8> {
    let mut out = Vec::new();
    let mut in_raw = false;
    for line in text.lines() {
        let line = line.split('#').next().unwrap().trim();
        if line.contains("--") {
            in_raw = line.contains("raw");
            continue;
        }
        if in_raw {
            out.extend(
                line.split_whitespace()
                    .map(|b| u8::from_str_radix(b.trim_start_matches("0x"), 16).unwrap()),
            );
        }
    }
    out
}

#[test]
fn negative_vectors_are_refused_at_load_time() {
    let vm = vm();
    let mut refused = 0;
    for entry in std::fs::read_dir(suite().join("negative")).unwrap() {
        let path = entry.unwrap().path();
        let name = path.file_name().unwrap().to_string_lossy().into_owned();
        if !name.starts_with("unused-") {
            continue;
        }
        let code = negative_program(&std::fs::read_to_string(&path).unwrap());
        assert_eq!(code.len(), 16, "{name}");
        let err = vm
            .load(Program::new(code, ProgramType::Unspecified))
            .expect_err(&name);
        assert!(err.to_string().contains("instruction 0"), "{name}: {err}");
        refused += 1;
    }
    assert_eq!(refused, 45);
    // error.data: `or %r0, %r10` reads the frame pointer into a result.
    let or_r0_r10 = [0x4f, 0xa0, 0, 0, 0, 0, 0, 0, 0x95, 0, 0, 0, 0, 0, 0, 0];
    let err = vm
        .load(Program::new(or_r0_r10, ProgramType::Unspecified))
        .unwrap_err();
    assert!(
        matches!(err, PrepareError::FramePointerMisuse { pc: 0, .. }),
        "{err}"
    );
}
