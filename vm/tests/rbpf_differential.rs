//! Checks that the rbpf engines either refuse a conformance vector at load time, naming the
//! instruction, or give the expected result: they never run a program wrongly.

use std::path::PathBuf;

use bpfvm::helpers::HelperContext;
use bpfvm::{CpuId, EngineKind, Input, PrepareError, Program, ProgramType, Vm, VmConfig};

fn hex(s: &str) -> Vec<u8> {
    (0..s.len() / 2)
        .map(|i| u8::from_str_radix(&s[2 * i..2 * i + 2], 16).unwrap())
        .collect()
}

/// Vectors that depend on the uBPF calling convention rather than the ISA: rbpf does not
/// pass the memory length in `r2`.
const CONVENTION_ONLY: &[&str] = &["tests/mem-len.data"];

#[test]
fn rbpf_engines_refuse_or_agree_with_the_expected_result() {
    let index = std::fs::read_to_string(
        PathBuf::from(env!("CARGO_MANIFEST_DIR"))
            .join("../../shared/conformance/bpf_conformance/index.tsv"),
    )
    .unwrap();
    let config = VmConfig {
        ncpus: 1,
        rbpf_allow_loops: true,
        ..VmConfig::default()
    };
    let vm = Vm::builder()
        .config(config)
        .helper(
            5,
            "conformance_identity",
            |_: &mut HelperContext, a: [u64; 5]| Ok(a[0]),
        )
        .unwrap()
        .build();
    let mut report = Vec::new();
    for engine in EngineKind::available()
        .into_iter()
        .filter(|e| *e != EngineKind::Interpreter)
    {
        let (mut ran, mut refused) = (0, 0);
        for line in index
            .lines()
            .filter(|l| !l.starts_with('#') && !l.starts_with("file\t"))
        {
            let cols: Vec<&str> = line.split('\t').collect();
            let (file, expected, mem, code) = (cols[0], cols[5], cols[6], cols[7]);
            if CONVENTION_ONLY.contains(&file) {
                continue;
            }
            let expected = u64::from_str_radix(expected.trim_start_matches("0x"), 16).unwrap();
            let mem = if mem == "-" { Vec::new() } else { hex(mem) };
            let program = Program::new(hex(code), ProgramType::Unspecified).with_engine(engine);
            match vm.load(program) {
                Err(PrepareError::Unsupported { .. }) => refused += 1,
                Err(e) => report.push(format!("{engine} {file}: unexpected refusal: {e}")),
                Ok(prog) => {
                    ran += 1;
                    match vm.run(&prog, CpuId(0), &Input::context(mem)) {
                        Ok(out) if out.retval == expected => {}
                        Ok(out) => report.push(format!(
                            "{engine} {file}: r0 = {:#x}, expected {expected:#x}",
                            out.retval
                        )),
                        Err(e) => report.push(format!("{engine} {file}: {e}")),
                    }
                }
            }
        }
        eprintln!("{engine}: ran {ran}, refused {refused}");
        assert!(ran > 150, "{engine} ran only {ran} vectors");
    }
    assert!(report.is_empty(), "{}", report.join("\n"));
}
