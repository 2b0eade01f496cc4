//! `struct bpf_timer` (issue 15): the timer helpers' argument rules (the timer is the map
//! value's `bpf_timer` field, at its exact offset, in a map with BTF; `bpf_timer_init`'s
//! map is the timer's), and the timer callback, walked on its own with `r1..=r3` the map,
//! key and value, returning 0. Each rule in an accepted form and refused forms. The
//! pointer to the timer (a map value pointer moved onto the timer field) is refused
//! without CAP_PERFMON ("pointer arithmetic of map value goes out of range"), so the
//! accepted forms are accepted for root only.
//!
//! `timer_cases_get_their_verdict_offline` checks bpfvm's verdicts on every platform;
//! `timer_cases_match_the_kernel` compares verdict, errno and message with the kernel's
//! (Linux, as root, for both loaders; the maps are created with BTF describing the
//! timer). `timer_fixture_gets_the_kernels_verdict_from_vm_load` loads
//! vm/tests/fixtures/timers.o the way users load it (the loader finds each map's
//! `bpf_timer` in BTF, `Vm::load` tells the verifier) against libbpf + the kernel: timers
//! used as allowed, a direct load of one, a wrong offset, and timers in inner maps told
//! apart by `map_uid` (the timer's own inner map, the inner map of another lookup).

use bpfvm_conformance::rule_cases::Expect;
use bpfvm_conformance::verdicts::{asm, Case};
use bpfvm_verifier::{map_type, FieldKind, MapInfo, ProgType, SpecialField};

/// A hash map (`u32` key, 24-byte value) whose value holds a `struct bpf_timer` at 8.
fn timer_map() -> MapInfo {
    let mut m = MapInfo::new(map_type::HASH, 4, 24, 4);
    m.btf = true;
    m.fields.push(SpecialField {
        kind: FieldKind::Timer,
        offset: 8,
        size: 16,
    });
    m
}

/// `r6 = lookup(map 0, &0)`, returning 0 when missing.
const R6_VALUE: &str = "
    stw [r10-4], 0
    ldmap r1, 0
    mov64 r2, r10
    add64 r2, -4
    call 1
    jne r0, 0, +2
    mov64 r0, 0
    exit
    mov64 r6, r0
";

/// `bpf_timer_init(r6 + 8, map 0, 0)`.
const INIT: &str = "mov64 r1, r6\nadd64 r1, 8\nldmap r2, 0\nmov64 r3, 0\ncall 169\n";
/// `bpf_timer_set_callback(r6 + 8, callback)`.
const SET_CB: &str = "mov64 r1, r6\nadd64 r1, 8\nldfunc r2\ncall 170\n";
/// `bpf_timer_start(r6 + 8, 0, 0)`.
const START: &str = "mov64 r1, r6\nadd64 r1, 8\nmov64 r2, 0\nmov64 r3, 0\ncall 171\n";
/// A callback returning 0.
const CB_RET0: &str = "mov64 r0, 0\nexit";

/// Assembles `main` then `callback`; `ldfunc rN` in `main` loads the callback's address
/// (`ld_imm64` with `src_reg` 4, `BPF_PSEUDO_FUNC`).
fn program(main: &str, callback: &str) -> Vec<u8> {
    const MARK: i64 = 0x7e57;
    let main = main.replace("ldfunc r2", &format!("ldimm64 r2, {MARK}"));
    let mut insns = asm(&main);
    let cb_idx = insns.len() / 8;
    insns.extend(asm(callback));
    for i in 0..cb_idx {
        let o = i * 8;
        if insns[o] == 0x18
            && i32::from_le_bytes(insns[o + 4..o + 8].try_into().unwrap()) == MARK as i32
        {
            insns[o + 1] = (insns[o + 1] & 0x0f) | (4 << 4);
            let rel = (cb_idx - i - 1) as i32;
            insns[o + 4..o + 8].copy_from_slice(&rel.to_le_bytes());
        }
    }
    insns
}

fn cases() -> Vec<(Case, Expect)> {
    use Expect::*;
    let mut v = Vec::new();
    let mut add = |name: &str, maps: Vec<MapInfo>, main: String, cb: &str, e: Expect| {
        let cb = if main.contains("ldfunc") { cb } else { "" };
        let mut c = Case::new(name, ProgType::SchedCls, program(&main, cb));
        c.maps = maps;
        v.push((c, e));
    };
    let full = format!("{R6_VALUE}{INIT}{SET_CB}{START}mov64 r0, 0\nexit");
    add(
        "timer_init_set_start",
        vec![timer_map()],
        full.clone(),
        CB_RET0,
        RootOnly,
    );
    add(
        "timer_cancel",
        vec![timer_map()],
        format!("{R6_VALUE}mov64 r1, r6\nadd64 r1, 8\ncall 172\nmov64 r0, 0\nexit"),
        CB_RET0,
        RootOnly,
    );
    // The timer argument: offset, NULL check, type, constant offset, map with BTF and timer.
    add(
        "timer_wrong_offset",
        vec![timer_map()],
        full.replacen("add64 r1, 8", "add64 r1, 0", 1),
        CB_RET0,
        Refused,
    );
    add(
        "timer_inside_field",
        vec![timer_map()],
        full.replacen("add64 r1, 8", "add64 r1, 16", 1),
        CB_RET0,
        Refused,
    );
    add(
        "timer_unchecked",
        vec![timer_map()],
        "stw [r10-4], 0\nldmap r1, 0\nmov64 r2, r10\nadd64 r2, -4\ncall 1\nmov64 r1, r0\nadd64 r1, 8\ncall 172\nmov64 r0, 0\nexit"
            .into(),
        CB_RET0,
        Refused,
    );
    add(
        "timer_on_stack",
        vec![timer_map()],
        "stdw [r10-16], 0\nstdw [r10-8], 0\nmov64 r1, r10\nadd64 r1, -16\ncall 172\nmov64 r0, 0\nexit".into(),
        CB_RET0,
        Refused,
    );
    add(
        "timer_variable_offset",
        vec![timer_map()],
        format!("{R6_VALUE}ldxw r2, [r6+0]\nand64 r2, 8\nmov64 r1, r6\nadd64 r1, r2\ncall 172\nmov64 r0, 0\nexit"),
        CB_RET0,
        Refused,
    );
    add(
        "timer_map_without_btf",
        vec![MapInfo::new(map_type::HASH, 4, 24, 4)],
        full.clone(),
        CB_RET0,
        Refused,
    );
    // bpf_timer_init's map is not the timer's.
    add(
        "timer_init_other_map",
        vec![timer_map(), timer_map()],
        full.replace("ldmap r2, 0", "ldmap r2, 1"),
        CB_RET0,
        Refused,
    );
    add(
        "timer_init_map_of_no_map",
        vec![timer_map()],
        full.replace("ldmap r2, 0", "mov64 r2, 0"),
        CB_RET0,
        Refused,
    );
    // Direct access to the timer.
    add(
        "timer_load_directly",
        vec![timer_map()],
        format!("{R6_VALUE}ldxdw r0, [r6+8]\nmov64 r0, 0\nexit"),
        CB_RET0,
        Refused,
    );
    // The callback: returns 0, reads the value, not the timer, not r4.
    add(
        "callback_returns_1",
        vec![timer_map()],
        full.clone(),
        "mov64 r0, 1\nexit",
        Refused,
    );
    add(
        "callback_returns_unknown",
        vec![timer_map()],
        full.clone(),
        "ldxw r0, [r3+0]\nexit",
        Refused,
    );
    add(
        "callback_reads_value_and_key",
        vec![timer_map()],
        full.clone(),
        "ldxw r1, [r3+0]\nldxw r1, [r3+4]\nldxw r2, [r2+0]\nmov64 r0, 0\nexit",
        RootOnly,
    );
    add(
        "callback_reads_key_past_end",
        vec![timer_map()],
        full.clone(),
        "ldxw r2, [r2+4]\nmov64 r0, 0\nexit",
        Refused,
    );
    add(
        "callback_loads_timer",
        vec![timer_map()],
        full.clone(),
        "ldxdw r1, [r3+8]\nmov64 r0, 0\nexit",
        Refused,
    );
    add(
        "callback_reads_r4",
        vec![timer_map()],
        full.clone(),
        "mov64 r0, r4\nmov64 r0, 0\nexit",
        Refused,
    );
    add(
        "callback_rearms_timer",
        vec![timer_map()],
        full.clone(),
        "mov64 r1, r3\nadd64 r1, 8\nmov64 r2, 0\nmov64 r3, 0\ncall 171\nmov64 r0, 0\nexit",
        RootOnly,
    );
    add(
        "callback_uses_map",
        vec![timer_map()],
        full.clone(),
        "stw [r10-4], 1\nmov64 r2, r10\nadd64 r2, -4\ncall 3\nmov64 r0, 0\nexit",
        RootOnly,
    );
    // Timer helpers are GPL only.
    let mut mit = Case::new("timer_non_gpl", ProgType::SchedCls, program(&full, CB_RET0));
    mit.maps = vec![timer_map()];
    mit.license = "MIT".into();
    v.push((mit, Refused));
    v
}

#[test]
fn timer_cases_get_their_verdict_offline() {
    let wrong = bpfvm_conformance::rule_cases::offline_mismatches(&cases(), true);
    assert!(wrong.is_empty(), "{}", wrong.join("\n"));
}

#[cfg(target_os = "linux")]
#[test]
fn timer_cases_match_the_kernel() {
    use bpfvm_conformance::kernel;
    use bpfvm_conformance::rule_cases::check_all;
    use bpfvm_conformance::verdicts::compare;

    if !kernel::oracle_or_skip() {
        return;
    }
    let (compared, failures) = check_all(&cases(), compare);
    assert!(compared >= 40, "only {compared} verdicts compared");
    assert!(failures.is_empty(), "{}", failures.join("\n"));
}

/// vm/tests/fixtures/timers.o: each program's verdict through `ObjectLoader` +
/// `Vm::load` (root) against libbpf (`libbpf.so.1`) + the kernel: the same verdict, and
/// for a refusal the same errno and bpfvm's message a line of the kernel's log. A program
/// the verifier accepts is then refused by `Vm::load` only because bpfvm runs no timer
/// helpers (`PrepareError::UnknownHelper`).
#[cfg(target_os = "linux")]
#[test]
fn timer_fixture_gets_the_kernels_verdict_from_vm_load() {
    use bpfvm::loader::Object;
    use bpfvm::{PrepareError, Privilege, Vm};
    use bpfvm_conformance::corpus::libbpf::{KObject, Libbpf};
    use bpfvm_conformance::kernel;

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
    let path = std::path::PathBuf::from(concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/../vm/tests/fixtures/timers.o"
    ));
    let ncpus = kernel::possible_cpus().unwrap();
    let vm = Vm::builder().cpus(ncpus).privilege(Privilege::Root).build();
    let (obj, maps) = Object::from_file(&path)
        .unwrap()
        .create_maps_per_map(ncpus, vm.map_memory())
        .unwrap();
    assert!(obj.refused_maps().is_empty());
    assert_eq!(obj.map("timers").unwrap().timer_offset, Some(8));
    let expected = [
        ("arm", None),
        (
            "read_timer",
            Some("bpf_timer cannot be accessed directly by load/store"),
        ),
        (
            "wrong_offset",
            Some("off 0 doesn't point to 'struct bpf_timer' that is at 8"),
        ),
        ("arm_inner", None),
        (
            "arm_other_inner",
            Some("timer pointer in R1 map_uid=1 doesn't match map pointer in R2 map_uid=2"),
        ),
    ];
    let programs = KObject::open(&lib, &path).unwrap().programs();
    let names: Vec<&str> = programs.iter().map(|p| p.name.as_str()).collect();
    assert_eq!(names, expected.map(|(n, _)| n));
    for (index, (name, refusal)) in expected.into_iter().enumerate() {
        let mut k = KObject::open(&lib, &path).unwrap();
        let kernel = k.load_only(index, None, &[]);
        let log = k.log();
        let ours = vm.load(obj.vm_program(name, &maps).unwrap());
        println!(
            "{name}: kernel {:?}; bpfvm {:?}",
            kernel.as_ref().err(),
            ours.as_ref().err()
        );
        match refusal {
            None => {
                assert!(kernel.is_ok(), "{name}: {kernel:?}\n{log}");
                match &ours {
                    Err(PrepareError::UnknownHelper { .. }) => {}
                    Ok(p) => assert!(p.unverified().is_none(), "{name}: {:?}", p.unverified()),
                    Err(e) => panic!("{name}: {e}"),
                }
            }
            Some(message) => {
                let kernel = kernel.expect_err(name);
                let errno: i32 = kernel
                    .split_once("os error ")
                    .and_then(|(_, r)| r.split(')').next()?.parse().ok())
                    .unwrap_or_else(|| panic!("{name}: {kernel}"));
                let Err(PrepareError::Verifier { error, .. }) = &ours else {
                    panic!("{name}: {ours:?}")
                };
                assert_eq!(
                    (error.errno, error.message.as_str()),
                    (errno, message),
                    "{name}"
                );
                assert!(
                    log.lines().any(|l| l == message),
                    "{name}: {message:?} not in the kernel's log:\n{log}"
                );
            }
        }
    }
}
