//! Checks `bpf_spin_lock` / `bpf_spin_unlock` from programs: they exclude each other across
//! CPUs and with the host's `BPF_F_LOCK` copies; the verifier's rules become run errors here
//! (a second lock, unlocking a lock not held, a pointer that is not a lock, exiting with the
//! lock held), and a run that ends holding the lock — by exiting or by faulting — releases
//! it, so the next program and the host are not blocked.

mod common;

use std::sync::Arc;

use bpfvm::maps::flags::BPF_F_LOCK;
use bpfvm::maps::{Map, MapSpec, MapType};
use bpfvm::{CpuId, Input, Program, ProgramType, RunError, Vm};
use common::*;

/// An ARRAY of one 16-byte value: a u64 counter at 0, the lock at 8.
fn locked_array() -> Arc<Map> {
    let spec = MapSpec::new(MapType::Array, 4, 16, 1);
    Arc::new(Map::create_with_spin_lock(spec, 4, 8).unwrap())
}

/// `r6 = lookup(map0, &0)` (never NULL for the array), then `body`, then `r0 = 0; exit`.
fn with_value(body: &[[u8; 8]]) -> Vec<u8> {
    let mut v = vec![
        ins(0x62, 10, 0, -4, 0),
        ins(0x18, 1, 1, 0, 0),
        ins(0, 0, 0, 0, 0),
        ins(0xbf, 2, 10, 0, 0),
        ins(0x07, 2, 0, 0, -4),
        ins(0x85, 0, 0, 0, 1),
        ins(0xbf, 6, 0, 0, 0),
    ];
    v.extend_from_slice(body);
    v.extend([ins(0xb7, 0, 0, 0, 0), EXIT]);
    code(&v)
}

/// `call id(r6 + off)`.
fn lock_call(id: i32, off: i32) -> [[u8; 8]; 3] {
    [
        ins(0xbf, 1, 6, 0, 0),
        ins(0x07, 1, 0, 0, off),
        ins(0x85, 0, 0, 0, id),
    ]
}

fn run(vm: &Vm, map: &Arc<Map>, code: Vec<u8>, cpu: u32) -> Result<u64, RunError> {
    let p = vm
        .load(Program::new(code, ProgramType::Unspecified).with_map(map.clone()))
        .expect("the program loads");
    vm.run(&p, CpuId(cpu), &Input::empty()).map(|o| o.retval)
}

fn counter(map: &Map) -> u64 {
    let mut v = [0u8; 16];
    map.lookup(&0u32.to_ne_bytes(), &mut v, BPF_F_LOCK).unwrap();
    u64::from_ne_bytes(v[..8].try_into().unwrap())
}

/// `lock; r1 = *r6; r1 += 1; *r6 = r1; unlock`: a read-modify-write under the lock.
fn locked_increment() -> Vec<u8> {
    let mut body = lock_call(93, 8).to_vec();
    body.extend([
        ins(0x79, 1, 6, 0, 0),
        ins(0x07, 1, 0, 0, 1),
        ins(0x7b, 6, 1, 0, 0),
    ]);
    body.extend(lock_call(94, 8));
    with_value(&body)
}

#[test]
fn increments_under_the_lock_on_four_cpus_are_exact() {
    let map = locked_array();
    let vm = Vm::builder().cpus(4).build();
    let p = vm
        .load(Program::new(locked_increment(), ProgramType::Unspecified).with_map(map.clone()))
        .unwrap();
    // Host BPF_F_LOCK updates race with the programs too, on their own elements' bytes.
    let host = std::thread::scope(|s| {
        let h = s.spawn(|| {
            for _ in 0..200 {
                let mut v = [0u8; 16];
                map.lookup(&0u32.to_ne_bytes(), &mut v, BPF_F_LOCK).unwrap();
            }
        });
        vm.run_on_all(&p, 5000, &Input::empty()).unwrap();
        h.join()
    });
    host.unwrap();
    assert_eq!(counter(&map), 4 * 5000);
}

#[test]
fn exiting_with_the_lock_fails_and_releases_it() {
    let map = locked_array();
    let vm = Vm::builder().cpus(4).build();
    let e = run(&vm, &map, with_value(&lock_call(93, 8)), 0).unwrap_err();
    assert!(matches!(e, RunError::HeldAtExit { .. }), "{e}");
    assert!(e.to_string().contains("bpf_spin_lock"), "{e}");
    // Released: another CPU's program and the host get it at once.
    assert_eq!(run(&vm, &map, locked_increment(), 3).unwrap(), 0);
    assert_eq!(counter(&map), 1);
}

#[test]
fn a_fault_while_holding_the_lock_releases_it() {
    let map = locked_array();
    let vm = Vm::builder().cpus(4).build();
    let mut body = lock_call(93, 8).to_vec();
    body.push(ins(0x79, 1, 6, 16, 0)); // r1 = *(u64 *)(r6 + 16): past the value
    let e = run(&vm, &map, with_value(&body), 1).unwrap_err();
    assert!(
        matches!(e, RunError::Fault { .. }),
        "the fault is the error: {e}"
    );
    assert_eq!(run(&vm, &map, locked_increment(), 0).unwrap(), 0);
    assert_eq!(counter(&map), 1);
}

#[test]
fn the_verifiers_rules_are_run_errors() {
    let map = locked_array();
    let vm = Vm::builder().cpus(4).build();
    let twice: Vec<[u8; 8]> = [lock_call(93, 8), lock_call(93, 8)].concat();
    let e = run(&vm, &map, with_value(&twice), 0).unwrap_err();
    assert!(e.to_string().contains("a second lock"), "{e}");
    let e = run(&vm, &map, with_value(&lock_call(94, 8)), 0).unwrap_err();
    assert!(e.to_string().contains("does not hold"), "{e}");
    let e = run(&vm, &map, with_value(&lock_call(93, 0)), 0).unwrap_err();
    assert!(e.to_string().contains("not the bpf_spin_lock"), "{e}");
    // None of them left the lock taken.
    assert_eq!(counter(&map), 0);
    // A map without a lock has no lock to take.
    let plain = Arc::new(Map::create(MapSpec::new(MapType::Array, 4, 16, 1), 4).unwrap());
    let e = run(&vm, &plain, with_value(&lock_call(93, 8)), 0).unwrap_err();
    assert!(e.to_string().contains("not the bpf_spin_lock"), "{e}");
}

#[test]
fn a_hash_value_lock_works_like_an_array_one() {
    let spec = MapSpec::new(MapType::Hash, 4, 16, 4);
    let map = Arc::new(Map::create_with_spin_lock(spec, 2, 8).unwrap());
    map.update(&0u32.to_ne_bytes(), &[0u8; 16], 0).unwrap();
    let vm = Vm::builder().cpus(2).build();
    let p = vm
        .load(Program::new(locked_increment(), ProgramType::Unspecified).with_map(map.clone()))
        .unwrap();
    vm.run_on_all(&p, 1000, &Input::empty()).unwrap();
    assert_eq!(counter(&map), 2000);
}
