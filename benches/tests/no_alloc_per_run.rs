//! Checks that a run on the `interpreter` engine allocates nothing on the heap (the issue's
//! "no heap allocation per run" target), through `Vm::run` and through `Vm::test_run` with
//! repeat 1 and 1,000, with a counting global allocator.
#![allow(unsafe_code)]

use std::alloc::{GlobalAlloc, Layout, System};
use std::cell::Cell;
use std::sync::Arc;

use bpfvm::maps::{Map, MapSpec, MapType};
use bpfvm::{CpuId, Input, Program, ProgramType, TestRun, Vm};
use bpfvm_benches::{programs, vm_config};

thread_local! {
    static ALLOCS: Cell<u64> = const { Cell::new(0) };
}

struct Counting;

// SAFETY: every call is forwarded unchanged to the system allocator; the counter is a
// thread-local `Cell` with a const initialiser, which never allocates.
unsafe impl GlobalAlloc for Counting {
    unsafe fn alloc(&self, layout: Layout) -> *mut u8 {
        ALLOCS.with(|c| c.set(c.get() + 1));
        // SAFETY: forwarded with the caller's guarantees.
        unsafe { System.alloc(layout) }
    }
    unsafe fn dealloc(&self, ptr: *mut u8, layout: Layout) {
        // SAFETY: forwarded with the caller's guarantees.
        unsafe { System.dealloc(ptr, layout) }
    }
    unsafe fn realloc(&self, ptr: *mut u8, layout: Layout, new_size: usize) -> *mut u8 {
        ALLOCS.with(|c| c.set(c.get() + 1));
        // SAFETY: forwarded with the caller's guarantees.
        unsafe { System.realloc(ptr, layout, new_size) }
    }
}

#[global_allocator]
static GLOBAL: Counting = Counting;

fn allocations(f: impl FnOnce()) -> u64 {
    let before = ALLOCS.with(|c| c.get());
    f();
    ALLOCS.with(|c| c.get()) - before
}

#[test]
fn runs_allocate_nothing() {
    let vm = Vm::new(vm_config(1));
    let map = Arc::new(Map::create(MapSpec::new(MapType::PercpuArray, 4, 8, 1), 1).unwrap());
    let cases = [
        Program::new(programs::empty(), ProgramType::Unspecified),
        Program::new(programs::memory_loop(100), ProgramType::Unspecified),
        Program::new(programs::helper_loop(100), ProgramType::Unspecified),
        Program::new(programs::lookup_loop(100), ProgramType::Unspecified).with_map(map),
    ];
    for program in cases {
        let prog = vm.load(program).unwrap();
        let input = Input::empty();
        let req = TestRun {
            input: Input::empty(),
            repeat: 1,
            cpu: CpuId(0),
        };
        let req_1000 = TestRun {
            repeat: 1000,
            ..req.clone()
        };
        // The first run installs the program's maps in the lane.
        vm.run(&prog, CpuId(0), &input).unwrap();
        let n = allocations(|| {
            for _ in 0..100 {
                vm.run(&prog, CpuId(0), &input).unwrap();
                vm.test_run(&prog, &req).unwrap();
            }
        });
        assert_eq!(n, 0, "{} allocations in 200 runs", n);
        // One `test_run` of 1,000 repetitions: none per repetition, none per call.
        let n = allocations(|| {
            for _ in 0..10 {
                vm.test_run(&prog, &req_1000).unwrap();
            }
        });
        assert_eq!(
            n, 0,
            "{} allocations in 10 test runs of 1,000 repetitions",
            n
        );
    }
}
