//! `struct bpf_timer` in map values through the loader (tests/fixtures/src/timers.bpf.c):
//! the loader finds each map's timer in BTF (inner map templates too), the maps keep its
//! offset, and `Vm::load` gives the verifier the kernel's verdicts: a direct load of the
//! timer and a timer argument at the wrong offset are refused, as is `bpf_timer_init` with
//! the inner map of another lookup (`map_uid`); programs the verifier accepts are refused
//! only because bpfvm runs no timer helpers. The kernel's verdicts:
//! conformance/tests/kernel_verifier_timers.rs.

mod common;

use bpfvm::{PrepareError, Vm};

#[test]
fn the_timer_offset_comes_from_btf() {
    let obj = common::fixture("timers");
    assert_eq!(obj.map("timers").unwrap().timer_offset, Some(8));
    let outer = obj.map("outer").unwrap();
    assert_eq!(outer.timer_offset, None);
    assert_eq!(outer.inner.as_ref().unwrap().timer_offset, Some(8));
    let maps = obj.create_maps(1).unwrap();
    assert_eq!(maps.get("timers").unwrap().timer_off(), Some(8));
    assert_eq!(maps.get("inner_a").unwrap().timer_off(), Some(8));
    let template = maps.get("outer").unwrap().inner_template().unwrap();
    assert_eq!(template.timer, Some(8));
}

#[test]
fn vm_load_gives_the_kernels_timer_verdicts() {
    let vm = Vm::builder()
        .cpus(1)
        .privilege(bpfvm::Privilege::Root)
        .build();
    let obj = common::fixture("timers");
    let maps = obj.create_maps(1).unwrap();
    for (name, refusal) in [
        ("arm", None),
        (
            "read_timer",
            Some((13, "bpf_timer cannot be accessed directly by load/store")),
        ),
        (
            "wrong_offset",
            Some((22, "off 0 doesn't point to 'struct bpf_timer' that is at 8")),
        ),
        ("arm_inner", None),
        (
            "arm_other_inner",
            Some((
                22,
                "timer pointer in R1 map_uid=1 doesn't match map pointer in R2 map_uid=2",
            )),
        ),
    ] {
        let r = vm.load(obj.vm_program(name, &maps).unwrap());
        match (refusal, &r) {
            (None, Err(PrepareError::UnknownHelper { id: 169, .. })) => {}
            (Some((errno, message)), Err(PrepareError::Verifier { error, .. })) => {
                assert_eq!(
                    (error.errno, error.message.as_str()),
                    (errno, message),
                    "{name}"
                );
            }
            _ => panic!("{name}: {r:?}"),
        }
    }
}
