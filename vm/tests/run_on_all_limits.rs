//! `Vm::run_on_all` collects return values only up to `MAX_COLLECTED_RESULTS`: a count like
//! 2^40 runs per CPU is refused with `TooManyResults` before anything runs or is allocated,
//! and `Vm::run_on_all_with` streams the results of any count in constant memory.

mod common;
use common::alloc_meter as counting;

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;

use bpfvm::limits::MAX_COLLECTED_RESULTS;
use bpfvm::maps::{Map, MapSpec, MapType};
use bpfvm::{CpuId, Input, Program, ProgramType, RunError, Vm};
use common::{code, ins, EXIT};

#[global_allocator]
static ALLOCATOR: counting::Counting = counting::Counting;

/// `*count += 1` (atomic) on ARRAY map 0's element 0; returns the CPU number.
fn count_and_return_cpu() -> Vec<u8> {
    code(&[
        ins(0x62, 10, 0, -4, 0), // *(u32 *)(r10 - 4) = 0
        ins(0x18, 1, 1, 0, 0),   // r1 = map 0
        ins(0, 0, 0, 0, 0),
        ins(0xbf, 2, 10, 0, 0), // r2 = r10
        ins(0x07, 2, 0, 0, -4), // r2 -= 4
        ins(0x85, 0, 0, 0, 1),  // call map_lookup_elem
        ins(0x15, 0, 0, 2, 0),  // if r0 == 0 goto +2
        ins(0xb7, 1, 0, 0, 1),  // r1 = 1
        ins(0xdb, 0, 1, 0, 0),  // lock *(u64 *)(r0 + 0) += r1
        ins(0x85, 0, 0, 0, 8),  // call get_smp_processor_id
        EXIT,
    ])
}

fn setup() -> (Vm, bpfvm::LoadedProgram, Arc<Map>) {
    let vm = Vm::builder().cpus(4).build();
    let count = Arc::new(Map::create(MapSpec::new(MapType::Array, 4, 8, 1), 4).unwrap());
    let prog = vm
        .load(
            Program::new(count_and_return_cpu(), ProgramType::Unspecified)
                .with_map(Arc::clone(&count)),
        )
        .unwrap();
    (vm, prog, count)
}

fn runs_done(count: &Map) -> u64 {
    let mut n = [0u8; 8];
    count.lookup(&0u32.to_ne_bytes(), &mut n, 0).unwrap();
    u64::from_ne_bytes(n)
}

#[test]
fn counts_whose_results_do_not_fit_are_refused_before_running() {
    let (vm, prog, count) = setup();
    for repeat in [1u64 << 40, u64::MAX, MAX_COLLECTED_RESULTS / 4 + 1] {
        let (r, peak) = counting::peak_of(|| vm.run_on_all(&prog, repeat, &Input::empty()));
        assert_eq!(
            r,
            Err(RunError::TooManyResults {
                repeat,
                ncpus: 4,
                max: MAX_COLLECTED_RESULTS
            })
        );
        assert!(peak < 1 << 20, "{peak} bytes allocated to refuse {repeat}");
        assert_eq!(r.unwrap_err().errno(), 12);
    }
    assert_eq!(runs_done(&count), 0, "nothing ran");
    // Counts that fit still collect every result.
    let all = vm.run_on_all(&prog, 1000, &Input::empty()).unwrap();
    assert_eq!(all.len(), 4);
    for (cpu, r) in all.iter().enumerate() {
        assert_eq!(r, &vec![cpu as u64; 1000]);
    }
    assert_eq!(runs_done(&count), 4000);
}

#[test]
fn run_on_all_with_streams_every_result() {
    let (vm, prog, count) = setup();
    let per_cpu: [AtomicU64; 4] = Default::default();
    let wrong = AtomicU64::new(0);
    vm.run_on_all_with(&prog, 20_000, &Input::empty(), |cpu: CpuId, r0| {
        per_cpu[cpu.index()].fetch_add(1, Ordering::Relaxed);
        if r0 != u64::from(cpu.0) {
            wrong.fetch_add(1, Ordering::Relaxed);
        }
    })
    .unwrap();
    for c in &per_cpu {
        assert_eq!(c.load(Ordering::Relaxed), 20_000);
    }
    assert_eq!(wrong.load(Ordering::Relaxed), 0);
    assert_eq!(runs_done(&count), 80_000);
}

#[test]
fn run_on_all_with_stops_at_the_first_failure() {
    let vm = Vm::builder().cpus(4).build();
    // r0 = *(u64 *)0: a fault on every run.
    let faulty = code(&[ins(0xb7, 1, 0, 0, 0), ins(0x79, 0, 1, 0, 0), EXIT]);
    let prog = vm
        .load(Program::new(faulty, ProgramType::Unspecified))
        .unwrap();
    let calls = AtomicU64::new(0);
    let r = vm.run_on_all_with(&prog, 1 << 40, &Input::empty(), |_, _| {
        calls.fetch_add(1, Ordering::Relaxed);
    });
    assert!(matches!(r, Err(RunError::Fault { pc: 1, .. })), "{r:?}");
    assert_eq!(calls.load(Ordering::Relaxed), 0);
}
