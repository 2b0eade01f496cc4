//! Checks programs that use real maps: a per-CPU counter on 8 simulated CPUs × 10,000 runs
//! finds exactly 10,000 in each CPU's slot, a shared ARRAY counter with an atomic add finds
//! exactly 80,000, writes to a `BPF_F_RDONLY_PROG` map fault, value accesses stay inside one
//! value, and map helpers behave as in the kernel.

mod common;

use std::sync::Arc;

use bpfvm::helpers::Access;
use bpfvm::maps::flags::create::RDONLY_PROG;
use bpfvm::maps::{Map, MapSpec, MapType};
use bpfvm::{CpuId, EngineKind, Input, Program, ProgramType, RunError, Vm};
use common::*;

/// `key = 0; v = map_lookup_elem(map0, &key); if (v) <body>; return 0;` with `body` raw
/// instructions using `r0` = value pointer; `body.len()` must be given to the jump.
fn lookup_then(body: &[[u8; 8]]) -> Vec<u8> {
    let mut v = vec![
        ins(0x62, 10, 0, -4, 0), // *(u32 *)(r10 - 4) = 0
        ins(0x18, 1, 1, 0, 0),   // r1 = map 0
        ins(0, 0, 0, 0, 0),
        ins(0xbf, 2, 10, 0, 0),                // r2 = r10
        ins(0x07, 2, 0, 0, -4),                // r2 -= 4
        ins(0x85, 0, 0, 0, 1),                 // call map_lookup_elem
        ins(0x15, 0, 0, body.len() as i16, 0), // if r0 == 0 goto out
    ];
    v.extend_from_slice(body);
    v.push(ins(0xb7, 0, 0, 0, 0)); // out: r0 = 0
    v.push(EXIT);
    code(&v)
}

fn read_u64s(map: &Map, ncpus: usize) -> Vec<u64> {
    let mut all = vec![0u8; 8 * ncpus];
    map.lookup(&0u32.to_ne_bytes(), &mut all, 0).unwrap();
    all.chunks(8)
        .map(|c| u64::from_ne_bytes(c.try_into().unwrap()))
        .collect()
}

#[test]
fn percpu_counter_counts_exactly_per_cpu() {
    let vm = Vm::builder().cpus(8).build();
    let map = Arc::new(Map::create(MapSpec::new(MapType::PercpuArray, 4, 8, 1), 8).unwrap());
    // Plain load/add/store: each CPU's slot is only touched by runs on that CPU.
    let code = lookup_then(&[
        ins(0x79, 1, 0, 0, 0), // r1 = *(u64 *)r0
        ins(0x07, 1, 0, 0, 1), // r1 += 1
        ins(0x7b, 0, 1, 0, 0), // *(u64 *)r0 = r1
    ]);
    let prog = vm
        .load(Program::new(code, ProgramType::Unspecified).with_map(Arc::clone(&map)))
        .unwrap();
    let results = vm.run_on_all(&prog, 10_000, &Input::empty()).unwrap();
    assert!(results.iter().all(|r| r.len() == 10_000));
    assert_eq!(read_u64s(&map, 8), vec![10_000; 8]);
}

#[test]
fn shared_array_counter_with_atomic_add_is_exact() {
    let vm = Vm::builder().cpus(8).build();
    let map = Arc::new(Map::create(MapSpec::new(MapType::Array, 4, 8, 1), 8).unwrap());
    let code = lookup_then(&[
        ins(0xb7, 1, 0, 0, 1), // r1 = 1
        ins(0xdb, 0, 1, 0, 0), // lock *(u64 *)r0 += r1
    ]);
    let prog = vm
        .load(Program::new(code, ProgramType::Unspecified).with_map(Arc::clone(&map)))
        .unwrap();
    vm.run_on_all(&prog, 10_000, &Input::empty()).unwrap();
    assert_eq!(read_u64s(&map, 1), vec![80_000]);
}

#[test]
fn writes_to_a_read_only_map_fault_and_leave_it_intact() {
    let vm = Vm::builder().cpus(2).build();
    let spec = MapSpec::new(MapType::Array, 4, 8, 1).with_flags(RDONLY_PROG);
    let map = Arc::new(Map::create(spec, 2).unwrap());
    map.update(&0u32.to_ne_bytes(), &5u64.to_ne_bytes(), 0)
        .unwrap();
    let write = lookup_then(&[ins(0x7a, 0, 0, 0, 99)]); // *(u64 *)r0 = 99
    let prog = vm
        .load(Program::new(write, ProgramType::Unspecified).with_map(Arc::clone(&map)))
        .unwrap();
    let err = vm.run(&prog, CpuId(1), &Input::empty()).unwrap_err();
    match &err {
        RunError::Fault { pc: 7, fault, .. } => {
            assert_eq!(fault.access, Access::Write);
            assert_eq!(fault.addr, bpfvm::helpers::memory::guest_addr(4, 0));
            assert_eq!(fault.kind, bpfvm::helpers::FaultKind::ReadOnly);
        }
        e => panic!("unexpected {e}"),
    }
    // Reading is fine, and the value is intact.
    let read = lookup_then(&[ins(0x79, 6, 0, 0, 0), ins(0xbf, 0, 6, 0, 0), EXIT]);
    let prog = vm
        .load(Program::new(read, ProgramType::Unspecified).with_map(Arc::clone(&map)))
        .unwrap();
    assert_eq!(vm.run(&prog, CpuId(0), &Input::empty()).unwrap().retval, 5);
    assert_eq!(read_u64s(&map, 1), vec![5]);
}

#[test]
fn value_accesses_stay_inside_one_value() {
    let vm = Vm::builder().cpus(1).build();
    let map = Arc::new(Map::create(MapSpec::new(MapType::Array, 4, 12, 2), 1).unwrap());
    // Reading 8 bytes at offset 8 of a 12-byte value crosses into the padding.
    let code = lookup_then(&[ins(0x79, 1, 0, 8, 0)]);
    let prog = vm
        .load(Program::new(code, ProgramType::Unspecified).with_map(Arc::clone(&map)))
        .unwrap();
    assert!(matches!(
        vm.run(&prog, CpuId(0), &Input::empty()),
        Err(RunError::Fault { pc: 7, .. })
    ));
    // So does a 4-byte read of the padding after the value.
    let code = lookup_then(&[ins(0x61, 1, 0, 12, 0)]);
    let prog = vm
        .load(Program::new(code, ProgramType::Unspecified).with_map(Arc::clone(&map)))
        .unwrap();
    assert!(matches!(
        vm.run(&prog, CpuId(0), &Input::empty()),
        Err(RunError::Fault { pc: 7, .. })
    ));
}

#[test]
fn update_delete_and_percpu_lookup_helpers() {
    let vm = Vm::builder().cpus(4).build();
    let hash = Arc::new(Map::create(MapSpec::new(MapType::Hash, 4, 8, 4), 4).unwrap());
    let pcpu = Arc::new(Map::create(MapSpec::new(MapType::PercpuArray, 4, 8, 1), 4).unwrap());
    // key = 7, value = cpu; update(hash, &key, &value, BPF_NOEXIST) -> r6;
    // update again with BPF_NOEXIST -> r7 (-EEXIST); delete -> r8; delete again -> r9
    let prog_code = code(&[
        ins(0x62, 10, 0, -4, 7),
        ins(0x85, 0, 0, 0, 8),
        ins(0x7b, 10, 0, -16, 0),
        ins(0x18, 1, 1, 0, 0),
        ins(0, 0, 0, 0, 0),
        ins(0xbf, 2, 10, 0, 0),
        ins(0x07, 2, 0, 0, -4),
        ins(0xbf, 3, 10, 0, 0),
        ins(0x07, 3, 0, 0, -16),
        ins(0xb7, 4, 0, 0, 1),
        ins(0x85, 0, 0, 0, 2),
        ins(0xbf, 6, 0, 0, 0), // r6 = 0
        ins(0x18, 1, 1, 0, 0),
        ins(0, 0, 0, 0, 0),
        ins(0xbf, 2, 10, 0, 0),
        ins(0x07, 2, 0, 0, -4),
        ins(0xbf, 3, 10, 0, 0),
        ins(0x07, 3, 0, 0, -16),
        ins(0xb7, 4, 0, 0, 1),
        ins(0x85, 0, 0, 0, 2),
        ins(0xbf, 7, 0, 0, 0), // r7 = -EEXIST
        ins(0x18, 1, 1, 0, 0),
        ins(0, 0, 0, 0, 0),
        ins(0xbf, 2, 10, 0, 0),
        ins(0x07, 2, 0, 0, -4),
        ins(0x85, 0, 0, 0, 3),
        ins(0xbf, 8, 0, 0, 0), // r8 = 0
        ins(0x18, 1, 1, 0, 0),
        ins(0, 0, 0, 0, 0),
        ins(0xbf, 2, 10, 0, 0),
        ins(0x07, 2, 0, 0, -4),
        ins(0x85, 0, 0, 0, 3), // r0 = -ENOENT
        // r0 = r6 + r7 * 1000 + r8 + r0 * 1_000_000 (as signed)
        ins(0x27, 7, 0, 0, 1000),
        ins(0x27, 0, 0, 0, 1_000_000),
        ins(0x0f, 0, 6, 0, 0),
        ins(0x0f, 0, 7, 0, 0),
        ins(0x0f, 0, 8, 0, 0),
        EXIT,
    ]);
    let prog = vm
        .load(Program::new(prog_code, ProgramType::Unspecified).with_map(Arc::clone(&hash)))
        .unwrap();
    let r = vm.run(&prog, CpuId(2), &Input::empty()).unwrap().retval as i64;
    assert_eq!(r, -17 * 1000 + -2 * 1_000_000);
    // map_lookup_percpu_elem(pcpu, &key, 3) reads CPU 3's copy from CPU 0; CPU 9 is NULL.
    pcpu.update(
        &0u32.to_ne_bytes(),
        &[
            11, 0, 0, 0, 0, 0, 0, 0, 22, 0, 0, 0, 0, 0, 0, 0, 33, 0, 0, 0, 0, 0, 0, 0, 44, 0, 0, 0,
            0, 0, 0, 0,
        ],
        0,
    )
    .unwrap();
    let lookup_cpu = |cpu: i32| {
        code(&[
            ins(0x62, 10, 0, -4, 0),
            ins(0x18, 1, 1, 0, 0),
            ins(0, 0, 0, 0, 0),
            ins(0xbf, 2, 10, 0, 0),
            ins(0x07, 2, 0, 0, -4),
            ins(0xb7, 3, 0, 0, cpu),
            ins(0x85, 0, 0, 0, 195),
            ins(0x15, 0, 0, 1, 0),
            ins(0x79, 0, 0, 0, 0),
            EXIT,
        ])
    };
    for (cpu, want) in [(3, 44), (0, 11), (9, 0)] {
        let p = vm
            .load(
                Program::new(lookup_cpu(cpu), ProgramType::Unspecified).with_map(Arc::clone(&pcpu)),
            )
            .unwrap();
        assert_eq!(vm.run(&p, CpuId(0), &Input::empty()).unwrap().retval, want);
    }
}

#[test]
fn global_data_via_map_value_pseudo_load() {
    let vm = Vm::builder().cpus(1).build();
    let data = Arc::new(Map::create(MapSpec::new(MapType::Array, 4, 16, 1), 1).unwrap());
    let mut v = [0u8; 16];
    v[8..].copy_from_slice(&123u64.to_ne_bytes());
    data.update(&0u32.to_ne_bytes(), &v, 0).unwrap();
    // r1 = &value + 8 (BPF_PSEUDO_MAP_VALUE); r0 = *r1; *r1 = 7
    let code = code(&[
        ins(0x18, 1, 2, 0, 0),
        ins(0, 0, 0, 0, 8),
        ins(0x79, 0, 1, 0, 0),
        ins(0x7a, 1, 0, 0, 7),
        EXIT,
    ]);
    let prog = vm
        .load(Program::new(code, ProgramType::Unspecified).with_map(Arc::clone(&data)))
        .unwrap();
    assert_eq!(
        vm.run(&prog, CpuId(0), &Input::empty()).unwrap().retval,
        123
    );
    let mut out = [0u8; 16];
    data.lookup(&0u32.to_ne_bytes(), &mut out, 0).unwrap();
    assert_eq!(u64::from_ne_bytes(out[8..].try_into().unwrap()), 7);
}

#[test]
fn rbpf_engines_use_maps_through_the_bridge() {
    let vm = Vm::builder().cpus(2).build();
    let map = Arc::new(Map::create(MapSpec::new(MapType::PercpuArray, 4, 8, 1), 2).unwrap());
    let code = lookup_then(&[
        ins(0x79, 1, 0, 0, 0),
        ins(0x07, 1, 0, 0, 1),
        ins(0x7b, 0, 1, 0, 0),
    ]);
    let engines = [EngineKind::Interpreter, EngineKind::RbpfInterpreter];
    for engine in engines {
        let prog = vm
            .load(
                Program::new(code.clone(), ProgramType::Unspecified)
                    .with_map(Arc::clone(&map))
                    .with_engine(engine),
            )
            .unwrap();
        vm.run_on_all(&prog, 10, &Input::empty()).unwrap();
    }
    let n = engines.len() as u64 * 10;
    assert_eq!(read_u64s(&map, 2), vec![n, n]);
    // The JIT refuses helper calls (it calls them with a misaligned stack).
    if EngineKind::available().contains(&EngineKind::RbpfJit) {
        let jit = Program::new(code, ProgramType::Unspecified)
            .with_map(Arc::clone(&map))
            .with_engine(EngineKind::RbpfJit);
        assert!(matches!(
            vm.load(jit),
            Err(bpfvm::PrepareError::Unsupported { pc: 5, .. })
        ));
    }
    // A bad map pointer on an rbpf engine is reported after the run.
    let bad = asm("mov64 r1, 1234\nmov64 r2, r10\ncall 1\nexit");
    let prog = vm
        .load(Program::new(bad, ProgramType::Unspecified).with_engine(EngineKind::RbpfInterpreter))
        .unwrap();
    assert!(matches!(
        vm.run(&prog, CpuId(0), &Input::empty()),
        Err(RunError::HelperAfterRun { .. })
    ));
}

#[test]
fn get_local_storage_returns_the_runs_cgroup_storage() {
    // The program returns the counter, which the kernel refuses for cgroup_skb (its return
    // value must be proven in [0, 3]); this checks the helper, with the structural checks.
    let vm = Vm::builder()
        .cpus(2)
        .verifier(bpfvm::VerifierMode::Structural)
        .build();
    let storage = Arc::new(Map::create(MapSpec::new(MapType::CgroupStorage, 16, 8, 0), 2).unwrap());
    storage.attach(42, 3).unwrap();
    // v = bpf_get_local_storage(&storage, 0); *v += 1; return *v
    let prog_code = code(&[
        ins(0x18, 1, 1, 0, 0),
        ins(0, 0, 0, 0, 0),
        ins(0xb7, 2, 0, 0, 0),
        ins(0x85, 0, 0, 0, 81),
        ins(0xb7, 1, 0, 0, 1),
        ins(0xdb, 0, 1, 0, 0x01), // r1 = fetch_add(*r0, 1)
        ins(0xbf, 0, 1, 0, 0),
        ins(0x07, 0, 0, 0, 1),
        EXIT,
    ]);
    let prog = vm
        .load(Program::new(prog_code, ProgramType::CgroupSkb).with_map(Arc::clone(&storage)))
        .unwrap();
    let input = Input {
        data: vec![0; 20],
        cgroup: Some((42, 3)),
        ..Input::default()
    };
    assert_eq!(vm.run(&prog, CpuId(0), &input).unwrap().retval, 1);
    assert_eq!(vm.run(&prog, CpuId(1), &input).unwrap().retval, 2);
    // Without a cgroup, or for one with no storage, the helper fails clearly.
    let err = vm
        .run(&prog, CpuId(0), &Input::packet(vec![0; 20]))
        .unwrap_err();
    assert!(err.to_string().contains("bpf_get_local_storage"), "{err}");
    let other = Input {
        cgroup: Some((7, 3)),
        ..input
    };
    assert!(matches!(
        vm.run(&prog, CpuId(0), &other),
        Err(RunError::Helper { pc: 3, .. })
    ));
}
