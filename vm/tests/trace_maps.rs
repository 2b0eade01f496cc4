//! STACK_TRACE and CGROUP_ARRAY from a clang object (tests/fixtures/src/trace_maps.bpf.c):
//! `bpf_get_stackid` ids and stacks from the simulated call stacks a test sets,
//! `bpf_get_stack`'s bytes and return value, `bpf_current_task_under_cgroup` and
//! `bpf_skb_under_cgroup` against the simulated cgroups, and the verifier refusing a
//! program that looks a stack map up, in the kernel's words, while the object's other
//! programs load.

mod common;

use bpfvm::maps::jhash::jhash2;
use bpfvm::sim_kernel::{CallStacks, CgroupEnv};
use bpfvm::{CpuId, Input, LoadedObject, ObjectLoader, Privilege, Vm};

fn load(vm: &Vm) -> LoadedObject {
    ObjectLoader::new(common::fixture("trace_maps"))
        .load(vm)
        .expect("the object loads")
}

fn out(obj: &LoadedObject, i: u32) -> i64 {
    let mut v = [0u8; 8];
    obj.map("out")
        .unwrap()
        .lookup(&i.to_ne_bytes(), &mut v, 0)
        .unwrap();
    i64::from_ne_bytes(v)
}

fn stack_bytes(ips: &[u64]) -> Vec<u8> {
    ips.iter().flat_map(|ip| ip.to_ne_bytes()).collect()
}

#[test]
fn stack_ids_and_stacks_come_from_the_simulated_call_stacks() {
    let vm = Vm::builder().cpus(2).privilege(Privilege::Root).build();
    let obj = load(&vm);
    let prog = obj.program("stack_ids").unwrap();
    // No call stacks: the kernel's answers for an empty callchain.
    vm.run(prog, CpuId(0), &Input::context(vec![0u8; 168]))
        .unwrap();
    assert_eq!(out(&obj, 0), -14, "get_stackid: -EFAULT");
    assert_eq!(out(&obj, 1), -14);
    assert_eq!(
        out(&obj, 2),
        -14,
        "get_stack skipping 1 of 0 frames: -EFAULT"
    );
    let kernel = vec![
        0xffff_ffff_8110_0010,
        0xffff_ffff_8120_0020,
        0xffff_ffff_8130_0030,
    ];
    let user = vec![0x5555_0000_1000, 0x5555_0000_2000];
    vm.set_call_stacks(
        CpuId(1),
        CallStacks {
            kernel: kernel.clone(),
            user: user.clone(),
        },
    )
    .unwrap();
    vm.run(prog, CpuId(1), &Input::context(vec![0u8; 168]))
        .unwrap();
    let stacks = obj.map("stacks").unwrap();
    let kid = out(&obj, 0);
    assert_eq!(kid as u32, jhash2(&stack_bytes(&kernel), 0) & 15);
    let uid = out(&obj, 1);
    assert_eq!(uid as u32, jhash2(&stack_bytes(&user), 0) & 15);
    let mut v = [0u8; 32];
    stacks
        .lookup(&(kid as u32).to_ne_bytes(), &mut v, 0)
        .unwrap();
    let mut want = stack_bytes(&kernel);
    want.resize(32, 0);
    assert_eq!(v.to_vec(), want);
    // bpf_get_stack(ctx, buf, 32, skip 1): two frames, 16 bytes, the rest zero.
    assert_eq!(out(&obj, 2), 16);
    assert_eq!(out(&obj, 3) as u64, kernel[1]);
    assert_eq!(out(&obj, 4) as u64, kernel[2]);
    assert_eq!((out(&obj, 5), out(&obj, 6)), (0, 0));
    // The same stacks again: the same ids; the map holds two stacks.
    vm.run(prog, CpuId(1), &Input::context(vec![0u8; 168]))
        .unwrap();
    assert_eq!((out(&obj, 0), out(&obj, 1)), (kid, uid));
    assert_eq!(stacks.element_count(), 2);
}

#[test]
fn cgroup_membership_follows_the_simulated_cgroups() {
    let vm = Vm::builder().cpus(1).privilege(Privilege::Root).build();
    let obj = load(&vm);
    let cgroups = obj.map("cgroup_map").unwrap();
    cgroups.cgroup_array_update(0, 7, 0).unwrap();
    let prog = obj.program("task_filter").unwrap();
    vm.run(prog, CpuId(0), &Input::context(vec![0u8; 168]))
        .unwrap();
    // The default task is in the root only; slot 1 is empty; slot 2 is past the end.
    assert_eq!((out(&obj, 0), out(&obj, 1), out(&obj, 2)), (0, -11, -7));
    vm.set_cgroups(
        CpuId(0),
        CgroupEnv {
            task: vec![1, 7, 12],
            ..CgroupEnv::default()
        },
    )
    .unwrap();
    vm.run(prog, CpuId(0), &Input::context(vec![0u8; 168]))
        .unwrap();
    assert_eq!(out(&obj, 0), 1);

    // The tc program asks about its packet's socket, slot `skb->mark`.
    cgroups.cgroup_array_update(1, 1, 0).unwrap();
    let tc = obj.program("skb_filter").unwrap();
    let frame = {
        let mut f = vec![0u8; 64];
        f[12] = 0x08;
        f[14] = 0x45;
        f
    };
    let with_mark = |mark: u32| {
        let mut ctx = vec![0u8; 192];
        ctx[8..12].copy_from_slice(&mark.to_ne_bytes());
        Input {
            data: frame.clone(),
            ctx,
            ..Input::default()
        }
    };
    let ret = |mark| vm.run(tc, CpuId(0), &with_mark(mark)).unwrap().retval as i64;
    assert_eq!(
        ret(0),
        0,
        "the test socket is in the root, not under cgroup 7"
    );
    assert_eq!(ret(1), 1, "the root itself");
    assert_eq!(ret(2), -7);
}

#[test]
fn a_stack_map_lookup_is_refused_in_the_kernels_words() {
    let vm = Vm::builder().cpus(1).privilege(Privilege::Root).build();
    let obj = load(&vm);
    let err = obj.program("stack_lookup").unwrap_err().to_string();
    assert!(
        err.contains("cannot pass map_type 7 into func bpf_map_lookup_elem#1"),
        "{err}"
    );
    assert!(obj.program("stack_ids").is_ok());
}
