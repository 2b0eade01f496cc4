//! Tail calls (`bpf_tail_call`, helper 12, through `BPF_MAP_TYPE_PROG_ARRAY`) with the
//! fixture `tail_call.o`, whose PROG_ARRAYs are filled by the object's own `values`
//! initialisers: a chain of three programs, the 33-call limit, indexes that fall through,
//! a tail call from a subprogram, the owner-type rule, and host updates of the slots.

mod common;

use bpfvm::loader::Object;
use bpfvm::{CpuId, Input, LoadedObject, ObjectLoader, PrepareError, Program, ProgramType, Vm};

fn load() -> (LoadedObject, Vm) {
    let vm = common::root_vm(2);
    let obj = Object::from_file(common::fixture_path("tail_call")).unwrap();
    let bpf = ObjectLoader::new(obj).load(&vm).unwrap();
    (bpf, vm)
}

fn packet(first: u8) -> Input {
    let mut data = vec![0u8; 64];
    data[0] = first;
    Input::packet(data)
}

fn counts(bpf: &LoadedObject) -> Vec<u64> {
    let a = bpf.array::<u64>("counts").unwrap();
    (0..4).map(|i| a.get(i).unwrap()).collect()
}

#[test]
fn every_program_loads_verified() {
    let (bpf, _vm) = load();
    for (name, p) in bpf.programs() {
        let p = p.unwrap_or_else(|e| panic!("{name}: {e}"));
        assert_eq!(
            p.unverified(),
            None,
            "{name} loaded without the kernel's verdict"
        );
    }
}

#[test]
fn a_chain_of_tail_calls_ends_in_the_last_program() {
    let (bpf, vm) = load();
    let r = vm
        .run(bpf.program("xdp_entry").unwrap(), CpuId(0), &packet(0))
        .unwrap();
    assert_eq!(r.retval, 2, "xdp_third's XDP_PASS");
    assert_eq!(counts(&bpf), [1, 1, 1, 0]);
}

#[test]
fn missing_and_out_of_range_indexes_fall_through() {
    let (bpf, vm) = load();
    let dispatch = bpf.program("xdp_dispatch").unwrap();
    for (first, expect) in [(0u8, 200), (3, 203), (4, 204), (255, 455)] {
        let r = vm.run(dispatch, CpuId(1), &packet(first)).unwrap();
        assert_eq!(r.retval, expect, "index {first}");
    }
    // Slots 1 and 2 jump: to xdp_second (which goes on to xdp_third) and xdp_third.
    assert_eq!(vm.run(dispatch, CpuId(1), &packet(1)).unwrap().retval, 2);
    assert_eq!(vm.run(dispatch, CpuId(1), &packet(2)).unwrap().retval, 2);
    assert_eq!(counts(&bpf), [0, 1, 2, 6]);
}

#[test]
fn a_run_makes_at_most_33_tail_calls() {
    let (bpf, vm) = load();
    let me = bpf.program("xdp_self").unwrap();
    let r = vm.run(me, CpuId(0), &packet(0)).unwrap();
    assert_eq!(r.retval, 7, "the 34th call falls through");
    assert_eq!(bpf.array::<u64>("hits").unwrap().get(0).unwrap(), 34);
    // Each run has its own count (test_run repeats too).
    let t = vm
        .test_run(
            me,
            &bpfvm::TestRun {
                input: packet(0),
                repeat: 3,
                cpu: CpuId(1),
            },
        )
        .unwrap();
    assert_eq!(t.retval, 7);
    assert_eq!(bpf.array::<u64>("hits").unwrap().get(0).unwrap(), 34 * 4);
}

#[test]
fn calls_to_empty_slots_do_not_count_towards_the_33() {
    let (bpf, vm) = load();
    let me = bpf.program("xdp_self_empty").unwrap();
    assert_eq!(vm.run(me, CpuId(0), &packet(0)).unwrap().retval, 8);
    // Each run makes 3 calls to an empty slot and 1 to itself: only the last counts, as
    // in the kernel's JIT (its interpreter would stop after 9 runs).
    assert_eq!(bpf.array::<u64>("hits").unwrap().get(1).unwrap(), 34);
}

#[test]
fn a_tail_call_from_a_subprogram_returns_to_its_caller() {
    let (bpf, vm) = load();
    let p = bpf.program("xdp_from_sub").unwrap();
    // jmp[2] = xdp_third: its XDP_PASS is sub_jump's result, + 10 in the caller.
    assert_eq!(vm.run(p, CpuId(0), &packet(2)).unwrap().retval, 12);
    // jmp[3] is empty: sub_jump returns 40 + 3.
    assert_eq!(vm.run(p, CpuId(0), &packet(3)).unwrap().retval, 53);
    assert_eq!(counts(&bpf), [0, 0, 1, 0]);
}

#[test]
fn host_lookups_give_program_ids_and_slots_change() {
    let (bpf, vm) = load();
    let jmp = bpf.map("jmp").unwrap();
    let mut id = [0u8; 4];
    jmp.lookup(&1u32.to_ne_bytes(), &mut id, 0).unwrap();
    assert_eq!(
        u32::from_ne_bytes(id),
        bpf.program("xdp_second").unwrap().id()
    );
    assert_eq!(
        jmp.lookup(&0u32.to_ne_bytes(), &mut id, 0)
            .unwrap_err()
            .errno(),
        2
    );
    let entry = bpf.program("xdp_entry").unwrap();
    bpf.clear_prog_slot("jmp", 1).unwrap();
    assert_eq!(vm.run(entry, CpuId(0), &packet(0)).unwrap().retval, 100);
    assert_eq!(bpf.clear_prog_slot("jmp", 1).unwrap_err().errno(), 2);
    assert_eq!(bpf.clear_prog_slot("jmp", 4).unwrap_err().errno(), 7);
    bpf.set_prog_slot("jmp", 1, "xdp_third").unwrap();
    assert_eq!(vm.run(entry, CpuId(0), &packet(0)).unwrap().retval, 2);
    assert_eq!(
        bpf.set_prog_slot("jmp", 4, "xdp_third")
            .unwrap_err()
            .errno(),
        7
    );
    // A socket filter in an XDP program's array: EINVAL (bpf_prog_map_compatible).
    assert_eq!(
        bpf.set_prog_slot("jmp", 0, "sock_other")
            .unwrap_err()
            .errno(),
        22
    );
    // A PROG_ARRAY takes programs, not bytes (bpfvm has no program fds).
    assert_eq!(
        jmp.update(&0u32.to_ne_bytes(), &[3, 0, 0, 0], 0)
            .unwrap_err()
            .errno(),
        9
    );
}

#[test]
fn a_program_of_another_type_cannot_use_the_array() {
    let (bpf, vm) = load();
    let jmp = bpf.map("jmp").unwrap().clone();
    // A socket filter tail-calling through the XDP programs' array:
    // r2 = jmp; r3 = 0; call bpf_tail_call; r0 = 0; exit
    let mut code = Vec::new();
    code.extend(common::ins(0x18, 2, 1, 0, 0));
    code.extend(common::ins(0, 0, 0, 0, 0));
    code.extend(common::ins(0xb7, 3, 0, 0, 0));
    code.extend(common::ins(0x85, 0, 0, 0, 12));
    code.extend(common::ins(0xb7, 0, 0, 0, 0));
    code.extend(common::ins(0x95, 0, 0, 0, 0));
    let prog = Program::new(code.clone(), ProgramType::SocketFilter).with_map(jmp.clone());
    let err = vm.load(prog).unwrap_err();
    assert!(
        matches!(
            err,
            PrepareError::ProgArrayOwner {
                owner: 6,
                prog_type: 1,
                ..
            }
        ),
        "{err}"
    );
    assert_eq!(err.errno(), 22);
    // An XDP program may.
    let xdp = Program::new(code, ProgramType::Xdp).with_map(jmp);
    assert!(vm.load(xdp).is_ok());
}

/// `bpfvm run` fills the object's PROG_ARRAYs from its `values` initialisers: the chain
/// runs to its end and the self-calling program makes its 33 tail calls on each CPU.
#[test]
fn the_command_line_fills_prog_arrays() {
    let run = |prog: &str| {
        let out = std::process::Command::new(env!("CARGO_BIN_EXE_bpfvm"))
            .args(["run", &common::fixture_path("tail_call"), "--prog", prog])
            .args(["--cpus", "2", "--json"])
            .output()
            .unwrap();
        assert!(
            out.status.success(),
            "{}",
            String::from_utf8_lossy(&out.stderr)
        );
        serde_json::from_slice::<serde_json::Value>(&out.stdout).unwrap()
    };
    let entry = run("xdp_entry").to_string();
    assert!(entry.contains("\"first_retval\":2"), "{entry}");
    let me = run("xdp_self");
    let hits = me["maps"]
        .as_array()
        .unwrap()
        .iter()
        .find(|m| m["name"] == "hits")
        .unwrap()
        .to_string();
    assert!(
        hits.contains("\"value_btf\":\"68\""),
        "2 cpus × 34 runs: {hits}"
    );
}

/// `r2 = PROG_ARRAY 0; r3 = 0; call bpf_tail_call; r0 = 1; exit`.
fn caller() -> Vec<u8> {
    let mut code = Vec::new();
    code.extend(common::ins(0x18, 2, 1, 0, 0));
    code.extend(common::ins(0, 0, 0, 0, 0));
    code.extend(common::ins(0xb7, 3, 0, 0, 0));
    code.extend(common::ins(0x85, 0, 0, 0, 12));
    code.extend(common::ins(0xb7, 0, 0, 0, 1));
    code.extend(common::ins(0x95, 0, 0, 0, 0));
    code
}

#[test]
fn the_target_shares_the_run_budget_and_its_errors_name_the_call() {
    for (budget, ok) in [(30, true), (15, false)] {
        let vm = bpfvm::Vm::builder().budget(budget).build();
        let jmp = vm
            .create_map(
                bpfvm::maps::MapSpec::new(bpfvm::maps::MapType::ProgArray, 4, 4, 1)
                    .with_name("jmp"),
            )
            .unwrap();
        let mut long = Vec::new();
        for _ in 0..20 {
            long.extend(common::ins(0xb7, 0, 0, 0, 2)); // r0 = 2
        }
        // The budget is charged at transfers: `ja +0` ends the stretch.
        long.extend(common::ins(0x05, 0, 0, 0, 0));
        long.extend(common::ins(0x95, 0, 0, 0, 0));
        let target = vm.load(Program::new(long, ProgramType::Xdp)).unwrap();
        target.set_in_prog_array(&jmp, 0).unwrap();
        let prog = vm
            // The host keeps its handle: the array's only user (dropping it would empty it).
            .load(Program::new(caller(), ProgramType::Xdp).with_map(jmp.clone()))
            .unwrap();
        let r = vm.run(&prog, CpuId(0), &packet(0));
        if ok {
            assert_eq!(r.unwrap().retval, 2);
            continue;
        }
        let e = r.unwrap_err();
        let bpfvm::RunError::InTailCall {
            pc,
            index,
            program,
            source,
            ..
        } = &e
        else {
            panic!("{e}");
        };
        assert_eq!((*pc, *index, *program), (3, 0, target.id()));
        assert!(
            matches!(**source, bpfvm::RunError::BudgetExhausted { .. }),
            "{source}"
        );
        assert!(e.to_string().contains("tail-called from jmp[0]"), "{e}");
    }
}

/// A PROG_ARRAY from a legacy `struct bpf_map_def` (no initialisers): the host fills it.
#[test]
fn a_legacy_prog_array_is_filled_by_the_host() {
    let vm = common::root_vm(1);
    let obj = Object::from_file(common::fixture_path("tail_call_legacy")).unwrap();
    let bpf = ObjectLoader::new(obj).load(&vm).unwrap();
    let entry = bpf.program("legacy_entry").unwrap();
    assert_eq!(entry.unverified(), None);
    assert_eq!(vm.run(entry, CpuId(0), &packet(0)).unwrap().retval, 1);
    bpf.set_prog_slot("progs", 0, "legacy_target").unwrap();
    assert_eq!(vm.run(entry, CpuId(0), &packet(0)).unwrap().retval, 2);
    assert_eq!(vm.run(entry, CpuId(0), &packet(1)).unwrap().retval, 1);
    assert_eq!(vm.run(entry, CpuId(0), &packet(2)).unwrap().retval, 1);
}

/// The object's PROG_ARRAYs hold its programs (`self_jmp` holds a program that calls
/// through it) for as long as the host holds the arrays, as the kernel's arrays until
/// their last user fd closes: a handle kept from the object keeps them alive after the
/// object is dropped, and dropping it frees them.
#[test]
fn an_object_s_programs_live_as_long_as_the_host_holds_its_arrays() {
    use std::sync::Arc;
    let (bpf, vm) = load();
    assert_eq!(bpf.map("self_jmp").unwrap().element_count(), 1);
    let hits = Arc::clone(bpf.map("hits").unwrap());
    let self_jmp = Arc::clone(bpf.map("self_jmp").unwrap());
    drop((bpf, vm));
    // `xdp_self`, in `self_jmp`, still holds `hits` (`xdp_self_empty`, the other
    // program using it, was freed with `self_empty_jmp`).
    assert!(Arc::strong_count(&hits) > 1);
    assert_eq!(self_jmp.element_count(), 1);
    drop(self_jmp);
    assert_eq!(Arc::strong_count(&hits), 1, "a program outlived its arrays");
}
