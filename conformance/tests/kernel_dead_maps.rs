//! A map the kernel cannot create, referenced in live and in dead code
//! (vm/tests/fixtures/src/dead_map.bpf.c: a STACK_TRACE map with its sizes 0, as bcc's
//! `capable` has it). libbpf, told not to create it (`bpf_map__set_autocreate`, what a tool
//! does), poisons every reference to it, and the kernel's verifier refuses only the
//! programs where one is reachable: live code, code a `.bss` variable switches off; code
//! a frozen `.rodata` constant switches off is never walked. bpfvm's loader leaves the map
//! out the same way (`ObjectLoader::load`, `Object::create_maps_per_map`).
//!
//! - `libbpf_and_the_kernel_agree_with_object_loader`: libbpf (`libbpf.so.1`) + the
//!   kernel against `ObjectLoader::load` + `Vm::load` (root): the verdict of each program,
//!   the errno, the poisoned instruction and the map named in libbpf's log, and libbpf's
//!   poisoned calls (`bpf_program__insns`: where, which number) against the loader's.
//! - `the_kernel_gives_bpfvms_verifier_verdicts_on_the_poisoned_programs`: bpfvm's
//!   poisoned instructions loaded into the kernel as they are (maps created by the
//!   oracle, `.rodata` frozen), compared with bpfvm's verifier: verdict, errno, the
//!   kernel's own line ("invalid func unknown#2001000000"); and again with `want_stacks`
//!   set to 1 in `.rodata`, which makes the reference live.
//!
//! Linux, as root (the kernel oracle); skips without it or without libbpf.
#![cfg(target_os = "linux")]

use std::path::PathBuf;

use bpfvm::loader::Object;
use bpfvm::{ObjectLoader, Privilege, Vm};
use bpfvm_conformance::corpus::libbpf::{KObject, Libbpf};
use bpfvm_conformance::kernel;
use bpfvm_conformance::verdicts::{cases_of, compare};

fn fixture() -> PathBuf {
    PathBuf::from(concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/../vm/tests/fixtures/dead_map.o"
    ))
}

/// The programs and whether the kernel loads them (the fixture's comments).
const EXPECTED: [(&str, bool); 5] = [
    ("stack_live", false),
    ("stack_dead_flag", true),
    ("stack_dead_mode", true),
    ("stack_runtime_flag", false),
    ("no_stacks", true),
];

/// `N` of libbpf's `N: <invalid BPF map reference>` log line.
fn poisoned_insn(log: &str) -> Option<usize> {
    log.lines()
        .find_map(|l| l.strip_suffix(": <invalid BPF map reference>"))
        .and_then(|n| n.trim().parse().ok())
}

/// `(instruction, helper id)` of the calls to a poisoned map reference.
fn poisoned_calls(insns: &[u64]) -> Vec<(usize, i32)> {
    insns
        .iter()
        .enumerate()
        .filter(|(_, &w)| w as u8 == 0x85 && bpfvm::loader::is_map_poison((w >> 32) as i32))
        .map(|(i, &w)| (i, (w >> 32) as i32))
        .collect()
}

#[test]
fn libbpf_and_the_kernel_agree_with_object_loader() {
    if !kernel::oracle_or_skip() {
        return;
    }
    let lib = match Libbpf::open("libbpf.so.1") {
        Ok(l) => l,
        Err(e) => {
            eprintln!("skipped: {e}");
            return;
        }
    };
    let vm = Vm::builder()
        .cpus(kernel::possible_cpus().unwrap())
        .privilege(Privilege::Root)
        .build();
    let bpfvm = ObjectLoader::new(Object::from_file(fixture()).unwrap())
        .load(&vm)
        .unwrap();
    let (poisoned, _) = Object::from_file(fixture())
        .unwrap()
        .create_maps_per_map(1, &Default::default())
        .unwrap();
    let programs = KObject::open(&lib, &fixture()).unwrap().programs();
    let names: Vec<&str> = programs.iter().map(|p| p.name.as_str()).collect();
    assert_eq!(names, EXPECTED.map(|(n, _)| n));
    for (index, (name, loads)) in EXPECTED.into_iter().enumerate() {
        let mut k = KObject::open(&lib, &fixture()).unwrap();
        let kernel = k.load_only(index, None, &["stacks".to_string()]);
        let log = k.log();
        let ours = bpfvm.program(name);
        // The same poisoned calls, at the same instructions, with libbpf's map number.
        let theirs = poisoned_calls(&k.program_insns(index));
        let mine = poisoned_calls(&poisoned.program(name).unwrap().insns);
        assert_eq!(mine, theirs, "{name}");
        if name.starts_with("stack_") {
            assert_eq!(theirs.len(), 2, "{name}: {theirs:?}");
        }
        println!("{name}: kernel {kernel:?}; bpfvm {:?}", ours.as_ref().err());
        assert_eq!(kernel.is_ok(), loads, "{name}: kernel {kernel:?}\n{log}");
        assert_eq!(ours.is_ok(), loads, "{name}: bpfvm {:?}", ours.err());
        if loads {
            continue;
        }
        let kernel = kernel.unwrap_err();
        assert!(kernel.contains("os error 22"), "{name}: {kernel}");
        assert!(
            log.contains("BPF map 'stacks' is referenced but wasn't created"),
            "{name}: {log}"
        );
        let err = ours.unwrap_err();
        assert_eq!(err.errno(), 22, "{name}: {err}");
        let text = err.to_string();
        assert!(
            text.contains(
                "invalid func unknown#2001000000: BPF map 'stacks' is referenced but wasn't created"
            ),
            "{name}: {text}"
        );
        // The same instruction: bpfvm's error names it as `instruction N`.
        let at = poisoned_insn(&log).unwrap_or_else(|| panic!("{name}: {log}"));
        assert!(
            text.contains(&format!("instruction {at}")),
            "{name}: {at}: {text}"
        );
    }
}

#[test]
fn the_kernel_gives_bpfvms_verifier_verdicts_on_the_poisoned_programs() {
    if !kernel::oracle_or_skip() {
        return;
    }
    let (obj, _maps) = Object::from_file(fixture())
        .unwrap()
        .create_maps_per_map(1, &Default::default())
        .unwrap();
    let cases = cases_of(&obj, "dead_map");
    let names: Vec<&str> = cases.iter().map(|c| c.name.as_str()).collect();
    assert_eq!(
        names,
        EXPECTED.map(|(n, _)| n).map(|n| format!("dead_map/{n}"))
    );
    let mut compared = 0;
    for (case, (name, loads)) in cases.iter().zip(EXPECTED) {
        let c = compare(case, Privilege::Root).unwrap();
        println!("{}", c.describe());
        assert_eq!(c.kernel_errno.is_none(), loads, "{name}: {}", c.describe());
        assert!(c.disagreement().is_none(), "{:?}", c.disagreement());
        if !loads {
            assert_eq!(
                c.ours.as_ref().unwrap_err().message,
                "invalid func unknown#2001000000",
                "{name}"
            );
        }
        compared += 1;
    }
    // `want_stacks = 1` in the frozen `.rodata`: the flag's branch is live.
    let mut set = cases[1].clone();
    let rodata = set
        .maps
        .iter_mut()
        .find(|m| m.name.ends_with(".rodata"))
        .expect("the case has .rodata");
    rodata.frozen_value.as_mut().expect("frozen")[0] = 1;
    let c = compare(&set, Privilege::Root).unwrap();
    println!("want_stacks = 1: {}", c.describe());
    assert_eq!(c.kernel_errno, Some(22), "{}", c.describe());
    assert!(c.disagreement().is_none(), "{:?}", c.disagreement());
    compared += 1;
    assert_eq!(compared, 6);
}
