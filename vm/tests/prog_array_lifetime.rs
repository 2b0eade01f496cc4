//! PROG_ARRAY lifetimes, on both engines: the host's map handles are the array's users
//! (the kernel's `usercnt`); when the last is dropped the array is emptied
//! (`map_release_uref`), so a program stored in an array it uses — or a cycle of programs
//! through arrays — is freed, with its compiled code, and a program still held by the
//! host finds the array empty.

use std::sync::{Arc, Weak};

use bpfvm::maps::{Map, MapSpec, MapType};
use bpfvm::{CpuId, EngineKind, Input, LoadedProgram, Program, ProgramType, VerifierMode, Vm};

fn raw(op: u8, dst: u8, src: u8, off: i16, imm: i32) -> [u8; 8] {
    let mut w = [0u8; 8];
    w[0] = op;
    w[1] = (src << 4) | dst;
    w[2..4].copy_from_slice(&off.to_le_bytes());
    w[4..].copy_from_slice(&imm.to_le_bytes());
    w
}

/// `bpf_tail_call(ctx, map 0, 0)`; on fall-through `return fallthrough`.
fn tail_caller(fallthrough: i32) -> Vec<u8> {
    [
        raw(0x18, 2, 1, 0, 0),           // r2 = map 0
        raw(0, 0, 0, 0, 0),              //
        raw(0xb7, 3, 0, 0, 0),           // r3 = 0
        raw(0x85, 0, 0, 0, 12),          // bpf_tail_call
        raw(0xb7, 0, 0, 0, fallthrough), // r0 = fallthrough
        raw(0x95, 0, 0, 0, 0),           // exit
    ]
    .concat()
}

fn vm() -> Vm {
    Vm::builder()
        .cpus(1)
        .verifier(VerifierMode::Structural)
        .build()
}

fn engines() -> Vec<EngineKind> {
    EngineKind::available()
        .iter()
        .copied()
        .filter(|e| matches!(e, EngineKind::Interpreter | EngineKind::Jit))
        .collect()
}

fn prog_array(vm: &Vm) -> Arc<Map> {
    vm.create_map(MapSpec::new(MapType::ProgArray, 4, 4, 2))
        .unwrap()
}

/// Loads `code` with `maps` (a sentinel ARRAY appended: the returned `Weak` dies when the
/// loaded program is freed and no CPU of the VM has its maps installed).
fn load(
    vm: &Vm,
    code: Vec<u8>,
    maps: &[&Arc<Map>],
    engine: EngineKind,
) -> (LoadedProgram, Weak<Map>) {
    let sentinel = vm
        .create_map(MapSpec::new(MapType::Array, 4, 8, 1))
        .unwrap();
    let mut p = Program::new(code, ProgramType::Xdp).with_engine(engine);
    for m in maps {
        p.add_map(Arc::clone(m));
    }
    p.add_map(Arc::clone(&sentinel));
    let weak = Arc::downgrade(&sentinel);
    (vm.load(p).unwrap(), weak)
}

fn run(vm: &Vm, p: &LoadedProgram) -> u64 {
    vm.run(p, CpuId(0), &Input::packet(vec![0; 16]))
        .unwrap()
        .retval
}

#[test]
fn a_program_in_its_own_prog_array_is_freed_with_the_array() {
    for engine in engines() {
        let vm = vm();
        let jmp = prog_array(&vm);
        let (p, alive) = load(&vm, tail_caller(7), &[&jmp], engine);
        p.set_in_prog_array(&jmp, 0).unwrap();
        // It calls itself 33 times, then falls through.
        assert_eq!(run(&vm, &p), 7, "{engine:?}");
        // The VM's CPU keeps the last run's maps (the sentinel among them) installed.
        drop((p, vm));
        // The array still holds it while the host holds the array.
        assert!(alive.upgrade().is_some(), "{engine:?}");
        assert_eq!(jmp.element_count(), 1);
        drop(jmp);
        assert!(
            alive.upgrade().is_none(),
            "{engine:?}: the program outlived its array"
        );
    }
}

#[test]
fn a_cycle_of_programs_through_two_arrays_is_freed() {
    for engine in engines() {
        let vm = vm();
        let (ja, jb) = (prog_array(&vm), prog_array(&vm));
        // a calls through ja, which holds b; b calls through jb, which holds a.
        let (a, a_alive) = load(&vm, tail_caller(1), &[&ja], engine);
        let (b, b_alive) = load(&vm, tail_caller(2), &[&jb], engine);
        b.set_in_prog_array(&ja, 0).unwrap();
        a.set_in_prog_array(&jb, 0).unwrap();
        // 33 tail calls alternate a, b, ...: the 34th call, from b, falls through.
        assert_eq!(run(&vm, &a), 2, "{engine:?}");
        drop((a, b, vm));
        drop(ja);
        // b is freed (ja held it); a is still in jb.
        assert!(b_alive.upgrade().is_none(), "{engine:?}");
        assert!(a_alive.upgrade().is_some(), "{engine:?}");
        drop(jb);
        assert!(a_alive.upgrade().is_none(), "{engine:?}");
    }
}

/// The kernel's behaviour when user space closes the array's last fd but keeps the
/// program: the array is emptied and the program's tail calls fall through.
#[test]
fn a_program_kept_after_its_array_is_dropped_finds_it_empty() {
    for engine in engines() {
        let vm = vm();
        let jmp = prog_array(&vm);
        let (caller, _) = load(&vm, tail_caller(7), &[&jmp], engine);
        let code = [raw(0xb7, 0, 0, 0, 42), raw(0x95, 0, 0, 0, 0)].concat();
        let (target, target_alive) = load(&vm, code, &[], engine);
        target.set_in_prog_array(&jmp, 0).unwrap();
        drop(target);
        assert_eq!(run(&vm, &caller), 42, "{engine:?}");
        // The loaded caller holds the array; the host's handle is its only user.
        drop(jmp);
        assert!(target_alive.upgrade().is_none(), "{engine:?}");
        assert_eq!(run(&vm, &caller), 7, "{engine:?}");
        // The caller's map list still shows the (empty) array.
        let held = caller.program().kernel_maps()[0].clone().unwrap();
        assert_eq!(held.map_type(), MapType::ProgArray);
        assert_eq!(held.element_count(), 0);
    }
}

/// Any clone of the host's handle keeps the array's programs; a program's own hold on the
/// array does not.
#[test]
fn every_host_handle_is_a_user_and_a_loaded_program_is_not() {
    let vm = vm();
    let jmp = prog_array(&vm);
    let (p, alive) = load(&vm, tail_caller(7), &[&jmp], EngineKind::Interpreter);
    p.set_in_prog_array(&jmp, 1).unwrap();
    let second = Arc::clone(&jmp);
    drop((p, jmp));
    assert!(alive.upgrade().is_some());
    assert_eq!(second.element_count(), 1);
    // A program loaded with the array is not a user either.
    let (q, _) = load(&vm, tail_caller(8), &[&second], EngineKind::Interpreter);
    drop(second);
    assert!(alive.upgrade().is_none());
    assert_eq!(run(&vm, &q), 8);
}

/// Thousands of self-referencing jit programs whose arrays are dropped give their
/// executable memory back (each would keep 2 mappings otherwise).
#[cfg(all(
    target_os = "linux",
    feature = "jit",
    any(target_arch = "x86_64", target_arch = "aarch64"),
    target_endian = "little",
    not(miri)
))]
#[test]
fn self_referencing_jit_programs_free_their_code() {
    let mappings = || {
        std::fs::read_to_string("/proc/self/maps")
            .unwrap()
            .lines()
            .count()
    };
    let vm = vm();
    let one = || {
        let jmp = prog_array(&vm);
        let (p, _) = load(&vm, tail_caller(7), &[&jmp], EngineKind::Jit);
        p.set_in_prog_array(&jmp, 0).unwrap();
        assert_eq!(run(&vm, &p), 7);
    };
    one();
    let before = mappings();
    for _ in 0..2_000 {
        one();
    }
    let after = mappings();
    eprintln!("{before} mappings before 2,000 programs, {after} after");
    // Other tests of this binary run at the same time: allow them some mappings (a leak
    // is 4,000).
    assert!(
        after < before + 1_000,
        "{before} mappings before, {after} after"
    );
}
