//! Checks `bpf_map_push_elem` / `bpf_map_pop_elem` / `bpf_map_peek_elem` from programs on
//! QUEUE and STACK maps: the kernel's return values (`-E2BIG` when full, `-EINVAL` for bad
//! flags, `-ENOENT` when empty with the buffer zeroed), FIFO and LIFO order shared with the
//! host side, and that `bpf_map_lookup_elem` finds nothing in them.

mod common;

use std::sync::Arc;

use bpfvm::maps::{Map, MapSpec, MapType};
use bpfvm::{CpuId, Input, Program, ProgramType, Vm};
use common::*;

fn queue(t: MapType, max: u32) -> Arc<Map> {
    Arc::new(Map::create(MapSpec::new(t, 0, 8, max), 2).unwrap())
}

/// `r0 = bpf_map_push_elem(map0, &value, flags)`.
fn push(value: i32, flags: i32) -> Vec<u8> {
    code(&[
        ins(0x7a, 10, 0, -8, value),
        ins(0x18, 1, 1, 0, 0),
        ins(0, 0, 0, 0, 0),
        ins(0xbf, 2, 10, 0, 0),
        ins(0x07, 2, 0, 0, -8),
        ins(0xb7, 3, 0, 0, flags),
        ins(0x85, 0, 0, 0, 87),
        EXIT,
    ])
}

/// `*(u64 *)(r10 - 8) = 0x5555; r6 = pop/peek(map0, r10 - 8); return r6 == 0 ? value : 1000 +
/// (-r6) + value`: the value read back (overwritten with zeros on an empty map).
fn take(id: i32) -> Vec<u8> {
    code(&[
        ins(0x7a, 10, 0, -8, 0x5555),
        ins(0x18, 1, 1, 0, 0),
        ins(0, 0, 0, 0, 0),
        ins(0xbf, 2, 10, 0, 0),
        ins(0x07, 2, 0, 0, -8),
        ins(0x85, 0, 0, 0, id),
        ins(0x79, 1, 10, -8, 0), // r1 = the value
        ins(0x15, 0, 0, 4, 0),   // if r0 == 0 goto +4
        ins(0x87, 0, 0, 0, 0),   // r0 = -r0
        ins(0x07, 0, 0, 0, 1000),
        ins(0x0f, 0, 1, 0, 0), // r0 += value
        ins(0x05, 0, 0, 1, 0),
        ins(0xbf, 0, 1, 0, 0), // r0 = value
        EXIT,
    ])
}

fn run(vm: &Vm, map: &Arc<Map>, code: Vec<u8>, cpu: u32) -> i64 {
    let p = vm
        .load(Program::new(code, ProgramType::Unspecified).with_map(map.clone()))
        .expect("the program loads");
    vm.run(&p, CpuId(cpu), &Input::empty()).unwrap().retval as i64
}

#[test]
fn queue_is_fifo_stack_is_lifo_and_both_share_the_host_view() {
    let vm = Vm::builder().cpus(2).build();
    for (t, first, second) in [(MapType::Queue, 11, 22), (MapType::Stack, 22, 11)] {
        let m = queue(t, 4);
        assert_eq!(run(&vm, &m, push(11, 0), 0), 0);
        assert_eq!(run(&vm, &m, push(22, 0), 1), 0);
        assert_eq!(m.element_count(), 2);
        assert_eq!(run(&vm, &m, take(89), 1), first, "{t:?} peek");
        assert_eq!(run(&vm, &m, take(88), 0), first, "{t:?} pop");
        let mut v = [0u8; 8];
        m.lookup_and_delete(&[], &mut v, 0).unwrap();
        assert_eq!(
            i64::from_ne_bytes(v),
            second,
            "{t:?}: the host pops the rest"
        );
        // Empty: -ENOENT and the buffer zeroed (so the value read back is 0, not 0x5555).
        assert_eq!(run(&vm, &m, take(88), 0), 1002, "{t:?} pop on empty");
        assert_eq!(run(&vm, &m, take(89), 0), 1002, "{t:?} peek on empty");
    }
}

#[test]
fn a_full_queue_needs_bpf_exist_and_bad_flags_are_einval() {
    let vm = Vm::builder().cpus(2).build();
    let m = queue(MapType::Queue, 2);
    assert_eq!(run(&vm, &m, push(1, 0), 0), 0);
    assert_eq!(run(&vm, &m, push(2, 0), 0), 0);
    assert_eq!(run(&vm, &m, push(3, 0), 0), -7, "E2BIG");
    assert_eq!(run(&vm, &m, push(3, 2), 0), 0, "BPF_EXIST drops the oldest");
    assert_eq!(run(&vm, &m, push(4, 1), 0), -22, "BPF_NOEXIST");
    assert_eq!(run(&vm, &m, push(4, 4), 0), -22, "BPF_F_LOCK");
    let values: Vec<i64> = m
        .queue_values()
        .unwrap()
        .iter()
        .map(|v| i64::from_ne_bytes(v[..].try_into().unwrap()))
        .collect();
    assert_eq!(values, [2, 3]);
}

#[test]
fn lookup_finds_nothing_in_a_queue_and_push_refuses_other_maps() {
    let vm = Vm::builder().cpus(2).build();
    let m = queue(MapType::Stack, 2);
    assert_eq!(run(&vm, &m, push(5, 0), 0), 0);
    let lookup = code(&[
        ins(0x62, 10, 0, -4, 0),
        ins(0x18, 1, 1, 0, 0),
        ins(0, 0, 0, 0, 0),
        ins(0xbf, 2, 10, 0, 0),
        ins(0x07, 2, 0, 0, -4),
        ins(0x85, 0, 0, 0, 1),
        EXIT,
    ]);
    assert_eq!(run(&vm, &m, lookup, 0), 0, "NULL");
    let array = Arc::new(Map::create(MapSpec::new(MapType::Array, 4, 8, 1), 2).unwrap());
    assert_eq!(run(&vm, &array, push(1, 0), 0), -22);
    assert_eq!(
        run(&vm, &array, take(88), 0),
        1022,
        "-EINVAL, buffer zeroed"
    );
}
