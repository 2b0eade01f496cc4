//! Checks that a run which faults midway (an out-of-bounds access, or the instruction budget
//! running out, after some map writes) keeps exactly the writes it made before the fault and
//! none after it, on the CPU it ran on only, and that the VM stays usable afterwards.

mod common;

use std::sync::Arc;

use bpfvm::maps::{Map, MapSpec, MapType};
use bpfvm::{CpuId, EngineKind, Input, Program, ProgramType, RunError, Vm};
use common::*;

const NCPUS: u32 = 4;
/// Map indexes in the program.
const PERCPU: i32 = 0;
const HASH: i32 = 1;
const SHARED: i32 = 2;

/// A program under construction; `pc()` is the index of the next instruction slot.
#[derive(Default)]
struct Asm(Vec<[u8; 8]>);

impl Asm {
    fn pc(&self) -> usize {
        self.0.len()
    }
    fn i(&mut self, opc: u8, dst: u8, src: u8, off: i16, imm: i32) -> &mut Self {
        self.0.push(ins(opc, dst, src, off, imm));
        self
    }
    /// `r{dst} = map[idx]` (BPF_PSEUDO_MAP_FD, two slots).
    fn ld_map(&mut self, dst: u8, idx: i32) -> &mut Self {
        self.i(0x18, dst, 1, 0, idx).i(0, 0, 0, 0, 0)
    }
    /// `r6 = map_lookup_elem(map[idx], &(u32)key)`, r6 = 0 when missing.
    fn lookup_into_r6(&mut self, idx: i32, key: i32) -> &mut Self {
        self.i(0x62, 10, 0, -4, key) // *(u32 *)(r10 - 4) = key
            .ld_map(1, idx)
            .i(0xbf, 2, 10, 0, 0) // r2 = r10
            .i(0x07, 2, 0, 0, -4) // r2 -= 4
            .i(0x85, 0, 0, 0, 1) // call map_lookup_elem
            .i(0xbf, 6, 0, 0, 0) // r6 = r0
    }
    /// `r0 = map_update_elem(map[idx], &(u32)key, &(u64)val, BPF_ANY)`.
    fn update(&mut self, idx: i32, key: i32, val: i32) -> &mut Self {
        self.i(0x62, 10, 0, -8, key) // *(u32 *)(r10 - 8) = key
            .i(0x7a, 10, 0, -16, val) // *(u64 *)(r10 - 16) = val
            .ld_map(1, idx)
            .i(0xbf, 2, 10, 0, 0)
            .i(0x07, 2, 0, 0, -8)
            .i(0xbf, 3, 10, 0, 0)
            .i(0x07, 3, 0, 0, -16)
            .i(0xb7, 4, 0, 0, 0)
            .i(0x85, 0, 0, 0, 2)
    }
    fn bytes(&self) -> Vec<u8> {
        code(&self.0)
    }
}

struct Setup {
    vm: Vm,
    percpu: Arc<Map>,
    hash: Arc<Map>,
    shared: Arc<Map>,
}

fn setup() -> Setup {
    let vm = Vm::builder().cpus(NCPUS).budget(10_000).build();
    let mk = |t, max| Arc::new(Map::create(MapSpec::new(t, 4, 8, max), NCPUS).unwrap());
    Setup {
        vm,
        percpu: mk(MapType::PercpuArray, 4),
        hash: mk(MapType::Hash, 16),
        shared: mk(MapType::Array, 4),
    }
}

impl Setup {
    fn load(&self, a: &Asm) -> bpfvm::LoadedProgram {
        let maps: Vec<Arc<dyn bpfvm::helpers::ProgramMap>> =
            vec![self.percpu.clone(), self.hash.clone(), self.shared.clone()];
        self.vm
            .load(
                Program::new(a.bytes(), ProgramType::Unspecified)
                    .with_dyn_maps(maps)
                    .with_engine(EngineKind::Interpreter),
            )
            .expect("program loads")
    }
}

fn percpu_values(m: &Map, key: u32) -> Vec<u64> {
    let mut all = vec![0u8; 8 * NCPUS as usize];
    m.lookup(&key.to_ne_bytes(), &mut all, 0).unwrap();
    all.chunks(8)
        .map(|c| u64::from_ne_bytes(c.try_into().unwrap()))
        .collect()
}

fn value(m: &Map, key: u32) -> Option<u64> {
    let mut v = [0u8; 8];
    m.lookup(&key.to_ne_bytes(), &mut v, 0).ok()?;
    Some(u64::from_ne_bytes(v))
}

/// Writes before the fault: percpu[0] = 111 (this CPU's copy), hash[5] = 7, shared[0] += 1
/// (atomic); then the fault produced by `fault`; then writes that must never happen:
/// percpu[1] = 222, hash[6] = 8, shared[1] += 1. Returns the program and the fault's pc.
fn program(fault: impl FnOnce(&mut Asm)) -> (Asm, usize) {
    let mut a = Asm::default();
    a.lookup_into_r6(PERCPU, 0)
        .i(0x15, 6, 0, 1, 0) // if r6 == 0 skip the store
        .i(0x7a, 6, 0, 0, 111) // *(u64 *)r6 = 111
        .update(HASH, 5, 7)
        .lookup_into_r6(SHARED, 0)
        .i(0x15, 6, 0, 2, 0)
        .i(0xb7, 1, 0, 0, 1) // r1 = 1
        .i(0xdb, 6, 1, 0, 0); // lock *(u64 *)r6 += r1
    let pc = a.pc();
    fault(&mut a);
    a.lookup_into_r6(PERCPU, 1)
        .i(0x15, 6, 0, 1, 0)
        .i(0x7a, 6, 0, 0, 222)
        .update(HASH, 6, 8)
        .lookup_into_r6(SHARED, 1)
        .i(0x15, 6, 0, 2, 0)
        .i(0xb7, 1, 0, 0, 1)
        .i(0xdb, 6, 1, 0, 0)
        .i(0xb7, 0, 0, 0, 0)
        .i(0x95, 0, 0, 0, 0);
    (a, pc)
}

/// The state after `runs` faulting runs on CPU `cpu` (fresh maps).
fn assert_state_after_fault(s: &Setup, cpu: u32, runs: u64) {
    let mut want = vec![0; NCPUS as usize];
    want[cpu as usize] = 111;
    assert_eq!(percpu_values(&s.percpu, 0), want, "write before the fault");
    assert_eq!(
        percpu_values(&s.percpu, 1),
        vec![0; NCPUS as usize],
        "write after the fault"
    );
    assert_eq!(value(&s.hash, 5), Some(7), "helper update before the fault");
    assert_eq!(value(&s.hash, 6), None, "helper update after the fault");
    assert_eq!(s.hash.element_count(), 1);
    assert_eq!(
        value(&s.shared, 0),
        Some(runs),
        "atomic add before the fault"
    );
    assert_eq!(value(&s.shared, 1), Some(0), "atomic add after the fault");
}

/// A program that must work on the same VM after the faults: returns percpu[0] of its CPU
/// plus shared[0].
fn healthy(s: &Setup) -> bpfvm::LoadedProgram {
    let mut a = Asm::default();
    a.lookup_into_r6(PERCPU, 0)
        .i(0xb7, 7, 0, 0, 0) // r7 = 0
        .i(0x15, 6, 0, 1, 0)
        .i(0x79, 7, 6, 0, 0) // r7 = *(u64 *)r6
        .lookup_into_r6(SHARED, 0)
        .i(0x15, 6, 0, 2, 0)
        .i(0x79, 1, 6, 0, 0) // r1 = *(u64 *)r6
        .i(0x0f, 7, 1, 0, 0) // r7 += r1
        .i(0xbf, 0, 7, 0, 0) // r0 = r7
        .i(0x95, 0, 0, 0, 0);
    s.load(&a)
}

#[test]
fn out_of_bounds_fault_keeps_earlier_writes_only() {
    let s = setup();
    // Reading 8 bytes at the top of the stack frame is outside every region.
    let (a, fault_pc) = program(|a| {
        a.i(0x79, 0, 10, 0, 0); // r0 = *(u64 *)(r10 + 0)
    });
    let p = s.load(&a);
    let cpu = 2;
    for run in 1..=3u64 {
        match s.vm.run(&p, CpuId(cpu), &Input::empty()) {
            Err(RunError::Fault { pc, .. }) => assert_eq!(pc, fault_pc),
            other => panic!("expected a fault at {fault_pc}, got {other:?}"),
        }
        assert_state_after_fault(&s, cpu, run);
    }
    // The VM is still usable: on the faulting CPU, on the others, and for the host API.
    let h = healthy(&s);
    assert_eq!(
        s.vm.run(&h, CpuId(cpu), &Input::empty()).unwrap().retval,
        111 + 3
    );
    assert_eq!(s.vm.run(&h, CpuId(0), &Input::empty()).unwrap().retval, 3);
    let all = s.vm.run_on_all(&h, 2, &Input::empty()).unwrap();
    assert_eq!(
        all,
        vec![vec![3, 3], vec![3, 3], vec![114, 114], vec![3, 3]]
    );
    s.hash
        .update(&9u32.to_ne_bytes(), &1u64.to_ne_bytes(), 0)
        .unwrap();
    assert_eq!(s.hash.element_count(), 2);
}

#[test]
fn out_of_bounds_write_past_a_map_arena_faults_without_touching_it() {
    let s = setup();
    // A store 4 KiB past the last per-CPU value lies outside the map's arena: it must fault
    // and leave every copy of every element as it was. (A store that lands inside another
    // value of the same arena is not a fault in bpfvm: see docs/reliability.md.)
    let (a, fault_pc) = program(|a| {
        a.lookup_into_r6(PERCPU, 3).i(0x7a, 6, 0, 0x1000, 0x5555); // *(u64 *)(r6 + 4096) = 0x5555
    });
    let p = s.load(&a);
    let fault_pc = fault_pc + Asm::default().lookup_into_r6(PERCPU, 3).pc();
    match s.vm.run(&p, CpuId(1), &Input::empty()) {
        Err(RunError::Fault { pc, .. }) => assert_eq!(pc, fault_pc),
        other => panic!("expected a fault at {fault_pc}, got {other:?}"),
    }
    assert_state_after_fault(&s, 1, 1);
    for key in 2..4 {
        assert_eq!(percpu_values(&s.percpu, key), vec![0; NCPUS as usize]);
    }
}

#[test]
fn budget_exhaustion_keeps_earlier_writes_only() {
    let s = setup();
    // An endless loop after the first writes.
    let (a, _) = program(|a| {
        a.i(0x05, 0, 0, -1, 0); // goto self
    });
    let p = s.load(&a);
    match s.vm.run(&p, CpuId(3), &Input::empty()) {
        Err(RunError::BudgetExhausted { .. }) => {}
        other => panic!("expected the budget to run out, got {other:?}"),
    }
    assert_state_after_fault(&s, 3, 1);
    let h = healthy(&s);
    assert_eq!(s.vm.run(&h, CpuId(3), &Input::empty()).unwrap().retval, 112);
}

#[test]
fn faults_on_every_cpu_at_once_keep_state_consistent() {
    let s = setup();
    let (a, fault_pc) = program(|a| {
        a.i(0x79, 0, 10, 0, 0);
    });
    let p = s.load(&a);
    let events: Vec<(CpuId, Input)> = (0..40)
        .map(|i| (CpuId(i % NCPUS), Input::empty()))
        .collect();
    for r in s.vm.run_events(&p, &events) {
        match r {
            Err(RunError::Fault { pc, .. }) => assert_eq!(pc, fault_pc),
            other => panic!("expected a fault, got {other:?}"),
        }
    }
    assert_eq!(percpu_values(&s.percpu, 0), vec![111; NCPUS as usize]);
    assert_eq!(percpu_values(&s.percpu, 1), vec![0; NCPUS as usize]);
    assert_eq!(value(&s.hash, 5), Some(7));
    assert_eq!(value(&s.hash, 6), None);
    assert_eq!(value(&s.shared, 0), Some(40));
    assert_eq!(value(&s.shared, 1), Some(0));
    let h = healthy(&s);
    assert_eq!(s.vm.run(&h, CpuId(0), &Input::empty()).unwrap().retval, 151);
}
