//! Every program of every committed fixture object under `vm/`, `conformance/`, `benches/`
//! and `docs/` is loaded the way a user loads it — `Object::vm_program` into a `Vm` in the
//! default (kernel) verifier mode — for a CAP_BPF + CAP_NET_ADMIN loader and for root, and
//! the verdict is compared with the kernel's `BPF_PROG_LOAD` of the same instructions and
//! maps: what the kernel loads bpfvm loads, and what the kernel refuses bpfvm refuses with
//! a verifier error carrying the kernel's errno.
//!
//! One refusal is not the verifier's: a program calling a helper bpfvm does not implement
//! is refused at load (`PrepareError::UnknownHelper`) although the kernel loads it. Those
//! are listed, and allowed only when bpfvm's verifier itself accepts the program.
#![cfg(target_os = "linux")]

use std::path::{Path, PathBuf};

use bpfvm::loader::Object;
use bpfvm::maps::MapMemory;
use bpfvm::{PrepareError, Privilege, VerifierMode, Vm};
use bpfvm_conformance::kernel;
use bpfvm_conformance::verdicts::{cases_from_object, compare};

const ROOT: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/..");

/// `.o` files under `dir`, recursively, leaving out build output.
fn objects(dir: &Path, out: &mut Vec<PathBuf>) {
    let Ok(entries) = std::fs::read_dir(dir) else {
        return;
    };
    for entry in entries.filter_map(Result::ok) {
        let path = entry.path();
        if path.is_dir() {
            if path.file_name().is_some_and(|n| n != "target") {
                objects(&path, out);
            }
        } else if path.extension().is_some_and(|x| x == "o") {
            out.push(path);
        }
    }
}

#[test]
fn every_fixture_object_gets_the_kernels_verdict_from_vm_load() {
    if !kernel::oracle_or_skip() {
        return;
    }
    let mut paths = Vec::new();
    for dir in ["vm", "conformance", "benches", "docs"] {
        objects(&Path::new(ROOT).join(dir), &mut paths);
    }
    paths.sort();
    assert!(paths.len() >= 20, "only {} fixture objects", paths.len());
    let (mut compared, mut accepted) = (0usize, 0usize);
    let mut mismatches = Vec::new();
    let mut unimplemented = Vec::new();
    let mut unverified: Vec<String> = Vec::new();
    for path in &paths {
        let name = path.file_stem().unwrap().to_string_lossy().into_owned();
        let bytes = std::fs::read(path).unwrap();
        let shown = path
            .strip_prefix(ROOT)
            .unwrap_or(path)
            .display()
            .to_string();
        let (obj, cases) = match (
            Object::parse_named(&name, &bytes),
            cases_from_object(&name, &bytes),
        ) {
            (Ok(obj), Ok(cases)) => (obj, cases),
            (Err(e), _) => {
                // Objects bpfvm's loader refuses on purpose (kfuncs, kconfig, CO-RE, ...).
                println!("{shown}: not loadable by bpfvm's loader: {e}");
                continue;
            }
            (_, Err(e)) => panic!("{shown}: {e}"),
        };
        // Zeroed map arenas cost no RAM until written: a limit above every fixture's maps.
        let maps = match obj.create_maps_in(2, &MapMemory::new(8 << 30)) {
            Ok(maps) => maps,
            Err(e) => {
                println!("{shown}: maps not created by bpfvm: {e}");
                continue;
            }
        };
        for case in &cases {
            let prog_name = case.name.split_once('/').map_or("", |(_, p)| p);
            for p in [Privilege::CapBpfNetAdmin, Privilege::Root] {
                let kernel = compare(case, p).unwrap_or_else(|e| panic!("{}: {e}", case.name));
                let vm = Vm::builder().cpus(2).privilege(p).build();
                assert_eq!(vm.config().verifier, VerifierMode::Kernel);
                // The kernel side is loaded without BTF function info (libbpf would pass
                // it): so is bpfvm's, for the same verdict on subprogram tail calls.
                let program = obj
                    .vm_program(prog_name, &maps)
                    .unwrap_or_else(|e| panic!("{}: {e}", case.name))
                    .with_btf_func_info(false);
                let ours = vm.load(program);
                compared += 1;
                let line = match (&kernel.kernel_errno, &ours) {
                    (None, Ok(_)) => {
                        accepted += 1;
                        format!("[{p:?}] {}: both load", case.name)
                    }
                    (Some(k), Err(PrepareError::Verifier { error, .. })) if error.errno == *k => {
                        format!(
                            "[{p:?}] {}: both refuse (errno {k}): {}",
                            case.name,
                            error.message.replace('\n', " / ")
                        )
                    }
                    // bpfvm's verifier met something it does not model and loaded the
                    // program without a verdict: nothing to compare.
                    (_, Ok(prog)) if prog.unverified().is_some() => {
                        let l = format!(
                            "[{p:?}] {}: verdict unknown to bpfvm ({}); the kernel {}",
                            case.name,
                            prog.unverified().unwrap_or_default(),
                            if k_loads(&kernel.kernel_errno) {
                                "loads"
                            } else {
                                "refuses"
                            }
                        );
                        unverified.push(l.clone());
                        l
                    }
                    (None, Err(PrepareError::UnknownHelper { id, .. })) if kernel.ours.is_ok() => {
                        let l = format!(
                            "[{p:?}] {}: kernel loads, bpfvm's verifier accepts, bpfvm has no \
                             helper {id}",
                            case.name
                        );
                        unimplemented.push(l.clone());
                        l
                    }
                    (k, o) => {
                        let l = format!(
                            "[{p:?}] {}: kernel {}; Vm::load {}",
                            case.name,
                            match k {
                                None => "loads".to_string(),
                                Some(e) => format!(
                                    "refuses (errno {e}): {}",
                                    kernel.kernel_messages.last().cloned().unwrap_or_default()
                                ),
                            },
                            match o {
                                Ok(_) => "loads".to_string(),
                                Err(e) => format!("refuses (errno {}): {e}", e.errno()),
                            }
                        );
                        mismatches.push(l.clone());
                        l
                    }
                };
                println!("{line}");
            }
        }
    }
    println!(
        "{} loads whose verdict bpfvm's verifier cannot give (loaded without one):\n{}",
        unverified.len(),
        unverified.join("\n")
    );
    println!(
        "{compared} loads compared, {accepted} accepted by both, {} refused for a helper \
         bpfvm does not implement:\n{}",
        unimplemented.len(),
        unimplemented.join("\n")
    );
    assert!(compared > 40, "only {compared} loads compared");
    assert!(accepted > 20, "only {accepted} loads accepted");
    assert!(
        mismatches.is_empty(),
        "Vm::load and the kernel differ:\n{}",
        mismatches.join("\n")
    );
}

/// Whether the kernel loaded the program (no errno).
fn k_loads(errno: &Option<i32>) -> bool {
    errno.is_none()
}
