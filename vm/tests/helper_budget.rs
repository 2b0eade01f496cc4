//! Helpers are charged to the instruction budget by the bytes they copy (one instruction per
//! 64 bytes): a program updating a 4 MiB map value in a loop runs out of budget after a few
//! updates with `BudgetExhausted` at the call, instead of running for minutes, while helpers
//! copying small keys and values cost only their call instruction.

mod common;

use std::sync::Arc;

use bpfvm::limits::HELPER_BYTES_PER_INSN;
use bpfvm::maps::{Map, MapSpec, MapType};
use bpfvm::{CpuId, Input, Program, ProgramType, RunError, SourceAt, Vm};
use common::{code, ins, EXIT};

/// `v = lookup(map0, 0); c = lookup(map1, 0); repeat loops times { *c += 1 (atomic);
/// update(map0, 0, v, 0) }; return 0`: each update copies map 0's whole value.
fn update_loop(loops: i32) -> Vec<u8> {
    code(&[
        ins(0x62, 10, 0, -4, 0), // 0: *(u32 *)(r10 - 4) = 0
        ins(0x18, 1, 1, 0, 0),   // 1: r1 = map 0
        ins(0, 0, 0, 0, 0),
        ins(0xbf, 2, 10, 0, 0), // 3: r2 = r10
        ins(0x07, 2, 0, 0, -4), // 4: r2 -= 4
        ins(0x85, 0, 0, 0, 1),  // 5: call map_lookup_elem
        ins(0x15, 0, 0, 20, 0), // 6: if r0 == 0 goto 27
        ins(0xbf, 7, 0, 0, 0),  // 7: r7 = r0
        ins(0x18, 1, 1, 0, 1),  // 8: r1 = map 1
        ins(0, 0, 0, 0, 0),
        ins(0xbf, 2, 10, 0, 0),    // 10: r2 = r10
        ins(0x07, 2, 0, 0, -4),    // 11: r2 -= 4
        ins(0x85, 0, 0, 0, 1),     // 12: call map_lookup_elem
        ins(0x15, 0, 0, 13, 0),    // 13: if r0 == 0 goto 27
        ins(0xbf, 8, 0, 0, 0),     // 14: r8 = r0
        ins(0xb7, 6, 0, 0, loops), // 15: r6 = loops
        ins(0xb7, 1, 0, 0, 1),     // 16: r1 = 1
        ins(0xdb, 8, 1, 0, 0),     // 17: lock *(u64 *)(r8 + 0) += r1
        ins(0x18, 1, 1, 0, 0),     // 18: r1 = map 0
        ins(0, 0, 0, 0, 0),
        ins(0xbf, 2, 10, 0, 0),  // 20: r2 = r10
        ins(0x07, 2, 0, 0, -4),  // 21: r2 -= 4
        ins(0xbf, 3, 7, 0, 0),   // 22: r3 = r7
        ins(0xb7, 4, 0, 0, 0),   // 23: r4 = 0
        ins(0x85, 0, 0, 0, 2),   // 24: call map_update_elem
        ins(0x17, 6, 0, 0, 1),   // 25: r6 -= 1
        ins(0x55, 6, 0, -11, 0), // 26: if r6 != 0 goto 16
        ins(0xb7, 0, 0, 0, 0),   // 27: r0 = 0
        EXIT,
    ])
}

const CALL_PC: usize = 24;

/// Runs `update_loop(loops)` over a one-element ARRAY of `value_size` bytes with `budget`;
/// returns the run's result and how many updates were started.
fn run(value_size: u32, loops: i32, budget: u64) -> (Result<u64, RunError>, u64) {
    let vm = Vm::builder().cpus(1).budget(budget).build();
    let big = Arc::new(Map::create(MapSpec::new(MapType::Array, 4, value_size, 1), 1).unwrap());
    let count = Arc::new(Map::create(MapSpec::new(MapType::Array, 4, 8, 1), 1).unwrap());
    let prog = vm
        .load(
            Program::new(update_loop(loops), ProgramType::Unspecified)
                .with_map(big)
                .with_map(Arc::clone(&count)),
        )
        .unwrap();
    let r = vm.run(&prog, CpuId(0), &Input::empty()).map(|o| o.retval);
    let mut n = [0u8; 8];
    count.lookup(&0u32.to_ne_bytes(), &mut n, 0).unwrap();
    (r, u64::from_ne_bytes(n))
}

#[test]
fn updates_of_a_4_mib_value_exhaust_the_budget_after_a_few_calls() {
    let value_size = 4u32 << 20;
    // Each update reads the 4 MiB value from the program and writes it into the map:
    // 2 x 65,536 instructions' worth. With a budget of 1,000,000 the 8th update ends it.
    let per_update = 2 * (4 + value_size as u64) / HELPER_BYTES_PER_INSN as u64;
    assert_eq!(per_update, 131_072);
    let (r, updates) = run(value_size, 80_000, 1_000_000);
    assert_eq!(
        r,
        Err(RunError::BudgetExhausted {
            pc: CALL_PC,
            budget: 1_000_000,
            at: SourceAt::NONE,
        })
    );
    assert_eq!(updates, 8, "7 updates fit in the budget, the 8th goes over");
    // A budget twice as large lets about twice as many through.
    let (r, updates) = run(value_size, 80_000, 2_000_000);
    assert!(matches!(
        r,
        Err(RunError::BudgetExhausted { pc: CALL_PC, .. })
    ));
    assert_eq!(updates, 16);
}

#[test]
fn small_copies_cost_only_their_instructions() {
    // 1,000 updates of an 8-byte value: about 11 instructions per iteration, no helper work.
    let (r, updates) = run(8, 1000, 12_000);
    assert_eq!(r, Ok(0));
    assert_eq!(updates, 1000);
    // The same loop over 4 KiB values costs 2 x 64 more per update and runs out.
    let (r, updates) = run(4096, 1000, 12_000);
    assert!(
        matches!(r, Err(RunError::BudgetExhausted { pc: CALL_PC, .. })),
        "{r:?}"
    );
    assert!((80..=90).contains(&updates), "{updates} updates");
    // An unlimited budget never runs out, helper work included.
    let (r, updates) = run(4096, 1000, u64::MAX);
    assert_eq!((r, updates), (Ok(0), 1000));
}

/// `v = lookup(map0, 0); if v: r0 = helper(v, value_size, 0)` with `helper` a probe read.
fn probe_into_value(helper: i32, value_size: u32) -> Vec<u8> {
    code(&[
        ins(0x62, 10, 0, -4, 0), // 0: *(u32 *)(r10 - 4) = 0
        ins(0x18, 1, 1, 0, 0),   // 1: r1 = map 0
        ins(0, 0, 0, 0, 0),
        ins(0xbf, 2, 10, 0, 0),                // 3: r2 = r10
        ins(0x07, 2, 0, 0, -4),                // 4: r2 -= 4
        ins(0x85, 0, 0, 0, 1),                 // 5: call map_lookup_elem
        ins(0x15, 0, 0, 4, 0),                 // 6: if r0 == 0 goto 11
        ins(0xbf, 1, 0, 0, 0),                 // 7: r1 = r0
        ins(0xb7, 2, 0, 0, value_size as i32), // 8: r2 = value_size
        ins(0xb7, 3, 0, 0, 0),                 // 9: r3 = 0 (NULL: -EFAULT)
        ins(0x85, 0, 0, 0, helper),            // 10: call helper
        EXIT,                                  // 11
    ])
}

#[test]
fn probe_reads_are_charged_by_their_size() {
    let value_size = 1u32 << 20;
    let vm = Vm::builder().cpus(1).budget(10_000).build();
    let map = Arc::new(Map::create(MapSpec::new(MapType::Array, 4, value_size, 1), 1).unwrap());
    // probe_read_user (112): 1 MiB / 64 = 16,384 instructions; probe_read_user_str (114),
    // read byte by byte, eight times that.
    for helper in [112, 114] {
        let prog = vm
            .load(
                Program::new(
                    probe_into_value(helper, value_size),
                    ProgramType::Unspecified,
                )
                .with_map(map.clone()),
            )
            .unwrap();
        let r = vm.run(&prog, CpuId(0), &Input::empty()).map(|o| o.retval);
        assert_eq!(
            r,
            Err(RunError::BudgetExhausted {
                pc: 10,
                budget: 10_000,
                at: SourceAt::NONE,
            }),
            "helper {helper}"
        );
        // A small read costs its call only.
        let prog = vm
            .load(
                Program::new(probe_into_value(helper, 64), ProgramType::Unspecified)
                    .with_map(map.clone()),
            )
            .unwrap();
        let r = vm
            .run(&prog, CpuId(0), &Input::empty())
            .map(|o| o.retval as i64);
        assert_eq!(r, Ok(-14), "helper {helper}: NULL is -EFAULT");
    }
}
