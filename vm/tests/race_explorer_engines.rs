//! The interleaving explorer (`bpfvm::race`) with compiled code: a program explored on the
//! `jit` engine, and a tail call target compiled by the jit, give the interpreter's
//! exploration step for step — the same interleaving points (every access to a shared
//! value, every map helper call) with the same instruction numbers.
#![cfg(all(
    feature = "jit",
    any(target_arch = "x86_64", target_arch = "aarch64"),
    target_endian = "little",
    not(miri)
))]

mod common;

use std::sync::Arc;

use bpfvm::maps::{MapSpec, MapType};
use bpfvm::race::{Exploration, Explorer, RaceConfig};
use bpfvm::{EngineKind, Input, Program, ProgramType, VerifierMode, Vm};

fn config(cpus: u32, runs: u32) -> RaceConfig {
    RaceConfig {
        cpus,
        runs,
        input: Input::packet(vec![0u8; 64]),
        ..RaceConfig::default()
    }
}

/// What an exploration found, without its timing.
fn text(e: &Exploration) -> String {
    format!(
        "schedules {} pruned {} complete {} serial {} {:?}\nkinds {:?} max steps {}\n\
         lost {:#?}\nraces {:#?}",
        e.schedules,
        e.pruned,
        e.complete,
        e.serial_orders,
        e.serial_states,
        e.kinds,
        e.max_steps_seen,
        e.lost_update,
        e.data_races,
    )
}

fn fixture_exploration(fixture: &str, prog: &str, engine: EngineKind, cpus: u32) -> String {
    let obj = common::fixture(fixture);
    let maps = obj.create_maps(cpus).unwrap();
    let program = obj.vm_program(prog, &maps).unwrap().with_engine(engine);
    let x = Explorer::new(program, config(cpus, 1)).unwrap();
    text(&x.exhaustive().unwrap())
}

#[test]
fn fixtures_explored_on_the_jit_are_explored_as_on_the_interpreter() {
    for (fixture, prog, cpus) in [
        ("race_counter", "shared_counter", 2),
        ("race_counter", "shared_counter", 3),
        ("race_counter", "atomic_counter", 2),
        ("race_counter", "percpu_counter", 2),
        ("race_ratelimit", "rate_limit", 2),
    ] {
        let want = fixture_exploration(fixture, prog, EngineKind::Interpreter, cpus);
        let got = fixture_exploration(fixture, prog, EngineKind::Jit, cpus);
        assert_eq!(want, got, "{fixture} {prog} on {cpus} CPUs");
        if prog == "shared_counter" {
            assert!(got.contains("stale_read"), "{got}");
        }
    }
}

fn raw(op: u8, dst: u8, src: u8, off: i16, imm: i32) -> [u8; 8] {
    let mut w = [0u8; 8];
    w[0] = op;
    w[1] = (src << 4) | dst;
    w[2..4].copy_from_slice(&off.to_le_bytes());
    w[4..].copy_from_slice(&imm.to_le_bytes());
    w
}

/// `v = lookup(map 0, 0); if v { *v += 1 }; return 0`: a lost update on a shared ARRAY.
fn racy_increment() -> Vec<u8> {
    [
        raw(0x62, 10, 0, -4, 0), // *(u32 *)(r10 - 4) = 0
        raw(0xbf, 2, 10, 0, 0),  // r2 = r10 - 4
        raw(0x07, 2, 0, 0, -4),  //
        raw(0x18, 1, 1, 0, 0),   // r1 = map 0
        raw(0, 0, 0, 0, 0),      //
        raw(0x85, 0, 0, 0, 1),   // bpf_map_lookup_elem
        raw(0x15, 0, 0, 3, 0),   // if r0 == 0 goto +3
        raw(0x79, 1, 0, 0, 0),   // r1 = *(u64 *)(r0 + 0)
        raw(0x07, 1, 0, 0, 1),   // r1 += 1
        raw(0x7b, 0, 1, 0, 0),   // *(u64 *)(r0 + 0) = r1
        raw(0xb7, 0, 0, 0, 0),   // r0 = 0
        raw(0x95, 0, 0, 0, 0),   // exit
    ]
    .concat()
}

/// `bpf_tail_call(ctx, map 0, 0); return 1`.
fn tail_caller() -> Vec<u8> {
    [
        raw(0x18, 2, 1, 0, 0),  // r2 = map 0
        raw(0, 0, 0, 0, 0),     //
        raw(0xb7, 3, 0, 0, 0),  // r3 = 0
        raw(0x85, 0, 0, 0, 12), // bpf_tail_call
        raw(0xb7, 0, 0, 0, 1),  // r0 = 1
        raw(0x95, 0, 0, 0, 0),  // exit
    ]
    .concat()
}

/// The explorer runs a caller (on the interpreter) whose tail call target, loaded by the
/// host on `target`, makes the racy increment.
fn tail_target_exploration(target: EngineKind) -> String {
    let cpus = 2;
    let vm = Vm::builder()
        .cpus(cpus)
        .verifier(VerifierMode::Structural)
        .build();
    let shared = vm
        .create_map(MapSpec::new(MapType::Array, 4, 8, 1).with_name("shared"))
        .unwrap();
    let jmp = vm
        .create_map(MapSpec::new(MapType::ProgArray, 4, 4, 1).with_name("jmp"))
        .unwrap();
    let t = Program::new(racy_increment(), ProgramType::Xdp)
        .with_engine(target)
        .with_map(Arc::clone(&shared));
    let t = vm.load(t).unwrap();
    t.set_in_prog_array(&jmp, 0).unwrap();
    let caller = Program::new(tail_caller(), ProgramType::Xdp)
        .with_map(Arc::clone(&jmp))
        .with_map(Arc::clone(&shared));
    let x = Explorer::new(
        caller,
        RaceConfig {
            verifier: VerifierMode::Structural,
            ..config(cpus, 1)
        },
    )
    .unwrap();
    let e = x.exhaustive().unwrap();
    // The host holds the array (its user) until the exploration is over.
    drop(jmp);
    text(&e)
}

#[test]
fn a_compiled_tail_call_target_is_explored_as_an_interpreted_one() {
    let want = tail_target_exploration(EngineKind::Interpreter);
    let got = tail_target_exploration(EngineKind::Jit);
    assert_eq!(want, got);
    // The target's load (instruction 7) and store (9) are the conflict.
    assert!(got.contains("stale_read"), "{got}");
    assert!(got.contains("pc: 7,") && got.contains("pc: 9,"), "{got}");
}

#[test]
fn the_rbpf_engines_are_refused_with_a_clear_error() {
    for engine in [EngineKind::RbpfInterpreter, EngineKind::RbpfJit] {
        let obj = common::fixture("race_counter");
        let maps = obj.create_maps(2).unwrap();
        let program = obj
            .vm_program("shared_counter", &maps)
            .unwrap()
            .with_engine(engine);
        let e = Explorer::new(program, config(2, 1)).unwrap_err();
        assert!(
            matches!(e, bpfvm::race::RaceError::Unsupported { .. }),
            "{e:?}"
        );
        let text = e.to_string();
        assert!(
            text.contains(engine.name()) && text.contains("use the interpreter or the jit"),
            "{text}"
        );
    }
}
