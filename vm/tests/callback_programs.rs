//! Callbacks (`bpf_loop`, `bpf_for_each_map_elem`) of `callbacks.o` run as the kernel runs
//! them (the same programs are compared with the kernel in
//! `conformance/tests/kernel_callbacks.rs`): sums, early stops, nested callback frames,
//! flags and counts the helper refuses, and walks over arrays, hashes and per-CPU arrays.

mod common;

use bpfvm::{CpuId, Input, Vm};

fn packet(p: [u8; 4]) -> Input {
    let mut data = vec![0u8; 64];
    data[..4].copy_from_slice(&p);
    Input::packet(data)
}

fn get(maps: &bpfvm::loader::ObjectMaps, map: &str, k: u32) -> u64 {
    let mut v = [0u8; 8];
    maps.get(map)
        .unwrap()
        .lookup(&k.to_ne_bytes(), &mut v, 0)
        .unwrap();
    u64::from_ne_bytes(v)
}

fn run(vm: &Vm, p: &bpfvm::LoadedProgram, cpu: u32, args: [u8; 4]) -> u64 {
    vm.run(p, CpuId(cpu), &packet(args)).unwrap().retval
}

#[test]
fn bpf_loop_sums_stops_and_nests() {
    let (obj, maps, vm) = common::fixture_vm("callbacks", 2);
    let sum = common::fixture_program(&vm, &obj, &maps, "loop_sum");
    for n in [0u8, 1, 10, 255] {
        let n64 = u64::from(n);
        assert_eq!(
            run(&vm, &sum, 0, [n, 0, 0, 0]),
            n64 * n64.saturating_sub(1) / 2
        );
        assert_eq!(get(&maps, "results", 0), n64, "bpf_loop's result");
        assert_eq!(get(&maps, "results", 1), n64, "callback calls");
    }
    let stop = common::fixture_program(&vm, &obj, &maps, "loop_stop");
    // Stops at index 3 of 10: four calls, result 4; never stops: 10.
    assert_eq!(run(&vm, &stop, 1, [10, 3, 0, 0]), 4);
    assert_eq!(get(&maps, "results", 1), 4);
    assert_eq!(run(&vm, &stop, 1, [10, 200, 0, 0]), 10);
    assert_eq!(run(&vm, &stop, 1, [0, 0, 0, 0]), 0);
    let nested = common::fixture_program(&vm, &obj, &maps, "loop_nested");
    // 3 outer iterations of 4 inner ones: the inner sum 1+2+3+4 three times, plus 4 << 8
    // per outer iteration.
    assert_eq!(run(&vm, &nested, 0, [3, 4, 0, 0]), 3 * 10 + 3 * (4 << 8));
    assert_eq!(get(&maps, "results", 0), 3);
    assert_eq!(get(&maps, "results", 1), 12);
}

#[test]
fn bpf_loop_refuses_flags_and_too_many_loops_as_the_kernel() {
    let (obj, maps, vm) = common::fixture_vm("callbacks", 1);
    let flags = common::fixture_program(&vm, &obj, &maps, "loop_flags");
    // flags = 1: the helper's -EINVAL (64 bits).
    assert_eq!(run(&vm, &flags, 0, [0, 1, 5, 0]) as u32, -22i32 as u32);
    assert_eq!(get(&maps, "results", 2), -22i64 as u64);
    // nr = 0x81 << 16 > 1 << 23: -E2BIG from the helper (flags unknown to the verifier).
    assert_eq!(run(&vm, &flags, 0, [0x81, 0, 0, 0]) as u32, -7i32 as u32);
    assert_eq!(get(&maps, "results", 2), -7i64 as u64);
    // flags 0 (unknown to the verifier): the helper runs the loop.
    assert_eq!(run(&vm, &flags, 0, [0, 0, 5, 0]), 5);
    // Constant flags 1: the helper's -EINVAL, no callback called.
    let flags_const = common::fixture_program(&vm, &obj, &maps, "loop_flags_const");
    assert_eq!(run(&vm, &flags_const, 0, [0; 4]) as u32, -22i32 as u32);
    assert_eq!(get(&maps, "results", 2), -22i64 as u64);
    // The inlined form (flags the constant 0): -E2BIG as a 32-bit move.
    let big = common::fixture_program(&vm, &obj, &maps, "loop_too_big");
    assert_eq!(run(&vm, &big, 0, [0; 4]), 0xffff_fff9);
    assert_eq!(get(&maps, "results", 3), 0xffff_fff9);
}

#[test]
fn the_budget_counts_every_callback_instruction() {
    let obj = common::fixture("callbacks");
    let maps = obj.create_maps(1).unwrap();
    let vm = Vm::builder().cpus(1).budget(20_000).build();
    let p = common::fixture_program(&vm, &obj, &maps, "loop_flags");
    // 1 << 23 iterations cannot run in 20,000 instructions.
    let e = vm.run(&p, CpuId(0), &packet([0x80, 0, 0, 0])).unwrap_err();
    assert!(
        matches!(e, bpfvm::RunError::BudgetExhausted { budget: 20_000, .. }),
        "{e}"
    );
    // Nor can 255 << 8 nested ones.
    let nested = common::fixture_program(&vm, &obj, &maps, "loop_nested");
    assert!(vm
        .run(&nested, CpuId(0), &packet([255, 255, 0, 0]))
        .is_err());
    // The VM runs on afterwards.
    assert_eq!(run(&vm, &nested, 0, [2, 2, 0, 0]), 2 * 3 + 2 * (2 << 8));
}

#[test]
fn for_each_walks_arrays_hashes_and_this_cpus_copies() {
    let (obj, maps, vm) = common::fixture_vm("callbacks", 2);
    let arr = common::fixture_program(&vm, &obj, &maps, "each_array");
    // arr[i] = i * 2, walked: sum of (v * 100 + i), values bumped by one.
    let want: u64 = (0..8).map(|i| i * 2 * 100 + i).sum();
    assert_eq!(run(&vm, &arr, 0, [2, 99, 0, 0]), want);
    assert_eq!(get(&maps, "results", 0), 8);
    assert_eq!(
        (0..8).map(|i| get(&maps, "arr", i)).collect::<Vec<_>>(),
        (0..8).map(|i| i * 2 + 1).collect::<Vec<_>>()
    );
    // Stopping at key 2 visits three elements.
    run(&vm, &arr, 1, [0, 2, 0, 0]);
    assert_eq!(get(&maps, "results", 0), 3);
    assert_eq!(get(&maps, "arr", 2), 6);
    assert_eq!(get(&maps, "arr", 3), 7);

    // Flags other than 0: -EINVAL and no element visited.
    let flags = common::fixture_program(&vm, &obj, &maps, "each_flags");
    assert_eq!(run(&vm, &flags, 0, [1, 0, 0, 0]), 0);
    assert_eq!(get(&maps, "results", 0), -22i64 as u64);
    assert_eq!(run(&vm, &flags, 0, [0, 0, 0, 0]), 8);
    assert_eq!(get(&maps, "results", 0), 8);

    let hash = common::fixture_program(&vm, &obj, &maps, "each_hash");
    assert_eq!(run(&vm, &hash, 0, [3, 7, 0, 0]), 703);
    assert_eq!(run(&vm, &hash, 1, [5, 1, 0, 0]), 703 + 105);
    assert_eq!(get(&maps, "results", 0), 2);
    // Value 0xff: counted, then deleted by the callback.
    assert_eq!(
        run(&vm, &hash, 0, [9, 0xff, 0, 0]),
        703 + 105 + 0xff * 100 + 9
    );
    assert_eq!(run(&vm, &hash, 0, [3, 7, 0, 0]), 703 + 105);
    assert_eq!(get(&maps, "results", 0), 2);

    let pcpu = common::fixture_program(&vm, &obj, &maps, "each_percpu");
    assert_eq!(run(&vm, &pcpu, 0, [1, 5, 0, 0]), 5 << 8);
    assert_eq!(
        run(&vm, &pcpu, 1, [2, 3, 0, 0]),
        3 << 16,
        "cpu 1's copies only"
    );
    assert_eq!(run(&vm, &pcpu, 0, [0, 1, 0, 0]), (5 << 8) + 1);
    assert_eq!(get(&maps, "results", 0), 4);
}

#[test]
fn engines_without_callbacks_refuse_them() {
    let obj = common::fixture("callbacks");
    let maps = obj.create_maps(1).unwrap();
    let vm = Vm::builder().cpus(1).build();
    let program = obj
        .vm_program("loop_sum", &maps)
        .unwrap()
        .with_engine(bpfvm::EngineKind::RbpfInterpreter);
    let e = vm.load(program).unwrap_err();
    assert!(e.to_string().contains("pointers to functions"), "{e}");
}

#[test]
fn function_addresses_are_linked_like_callees() {
    let obj = common::fixture("callbacks");
    let def = obj
        .programs()
        .iter()
        .find(|p| &*p.name == "loop_nested")
        .unwrap();
    // Both callbacks are appended once; every `ld_imm64` of a function (src_reg 4) lands
    // on the first instruction of one of them.
    let names: Vec<&str> = def.subprograms.iter().map(|(n, _)| &**n).collect();
    assert!(
        names.contains(&"outer") && names.contains(&"inner"),
        "{names:?}"
    );
    let starts: Vec<usize> = def.subprograms.iter().map(|(_, s)| *s).collect();
    let mut funcs = 0;
    for (pc, &w) in def.insns.iter().enumerate() {
        if w as u8 == 0x18 && (w >> 12) & 0xf == u64::from(bpfvm::loader::PSEUDO_FUNC) {
            let target = pc as i64 + 1 + i64::from((w >> 32) as i32);
            assert!(starts.contains(&(target as usize)), "pc {pc} -> {target}");
            assert_eq!(def.insns[pc + 1] >> 32, 0, "second slot's imm");
            funcs += 1;
        }
    }
    assert_eq!(funcs, 2, "outer's address in the program, inner's in outer");
}
