//! Programs of the tracing types from a compiled object (`fixtures/src/tracing.bpf.c`):
//! `fentry`/`fexit`/`tp_btf` typed by a target BTF (`tracing_target.btf`), `raw_tp`,
//! `perf_event` and `syscall`, and helpers 45, 120, 158 and 173. Loads through a traced
//! struct pointer run as probe loads: the VM's kernel memory image, else 0.

mod common;

use bpfvm::helpers::trace_task::PidNamespace;
use bpfvm::loader::{Btf, KernelProgType, LoadError, Object};
use bpfvm::task::{MemoryImage, Task};
use bpfvm::{CpuId, Input, LoadedObject, ObjectLoader, ProgramType, TestRun, Vm};

fn target() -> Btf {
    Btf::parse_any(
        &std::fs::read(format!(
            "{}/tests/fixtures/tracing_target.btf",
            env!("CARGO_MANIFEST_DIR")
        ))
        .unwrap(),
    )
    .unwrap()
}

fn object() -> Object {
    Object::parse_with_btf(
        "tracing",
        &common::fixture_bytes("tracing"),
        Some(&target()),
    )
    .unwrap()
}

fn loaded(vm: &Vm) -> LoadedObject {
    ObjectLoader::new(object()).load(vm).unwrap()
}

fn args(values: &[u64]) -> Vec<u8> {
    values.iter().flat_map(|v| v.to_ne_bytes()).collect()
}

fn run(vm: &Vm, bpf: &LoadedObject, name: &str, ctx: Vec<u8>) -> u64 {
    let prog = bpf.program(name).unwrap();
    vm.run(prog, CpuId(0), &Input::context(ctx)).unwrap().retval
}

#[test]
fn section_names_give_the_tracing_types() {
    let obj = object();
    for (name, t) in [
        ("on_entry", ProgramType::Tracing),
        ("on_exit", ProgramType::Tracing),
        ("on_tp", ProgramType::Tracing),
        ("on_raw", ProgramType::RawTracepoint),
        ("on_perf", ProgramType::PerfEvent),
        ("on_syscall", ProgramType::Syscall),
    ] {
        assert_eq!(obj.run_type(name, None).unwrap(), t, "{name}");
    }
    let entry = obj.program("on_entry").unwrap().tracing_ctx.unwrap();
    assert_eq!((entry.nr_slots, entry.btf_ptr_slots), (2, 0b01));
    let exit = obj.program("on_exit").unwrap().tracing_ctx.unwrap();
    assert_eq!(exit.nr_slots, 3, "two arguments and the return value");
    let tp = obj.program("on_tp").unwrap().tracing_ctx.unwrap();
    assert_eq!(
        (tp.nr_slots, tp.btf_ptr_slots),
        (2, 0b01),
        "__data is not a slot"
    );
}

#[test]
fn tracing_programs_need_a_target_btf_that_has_their_target() {
    let obj = Object::parse_named("tracing", &common::fixture_bytes("tracing")).unwrap();
    let maps = obj.create_maps(1).unwrap();
    let e = obj.vm_program("on_entry", &maps).unwrap_err();
    assert!(matches!(e, LoadError::TracingNeedsBtf { .. }), "{e}");
    assert!(e.to_string().contains("--btf"), "{e}");
    // The other programs of the object still load.
    assert!(obj.vm_program("on_raw", &maps).is_ok());

    let e = bpfvm::loader::tracing_ctx(&target(), "fentry/not_in_the_target", 24).unwrap_err();
    assert!(matches!(e, LoadError::TracingTargetNotFound { .. }), "{e}");
    assert_eq!(e.errno(), 3, "ESRCH, as libbpf");
    // Iterators are tracing programs of another context: not run yet.
    assert!(matches!(
        KernelProgType::Tracing.runnable(),
        Some(ProgramType::Tracing)
    ));
    assert_eq!(
        bpfvm::loader::section_type("iter/task").and_then(|s| s.runnable()),
        None
    );
}

#[test]
fn fentry_reads_its_arguments_and_the_struct_behind_a_pointer() {
    let vm = common::root_vm(1);
    let bpf = loaded(&vm);
    // task->pid is at offset 8 of the target's task_struct; the VM's kernel memory holds it.
    let task = 0xffff_8880_0001_0000u64;
    let mut bytes = vec![0u8; 32];
    bytes[8..12].copy_from_slice(&4242u32.to_ne_bytes());
    vm.set_kernel_memory(MemoryImage::new().with(task, bytes));
    assert_eq!(run(&vm, &bpf, "on_entry", args(&[task, 7])), 0);
    assert_eq!(bpf.global::<u64>("seen_pid").unwrap(), 4242);
    assert_eq!(bpf.global::<u64>("seen_flags").unwrap(), 7);
    // A pointer into nothing the VM holds reads 0, as the kernel's probe load does.
    assert_eq!(
        run(&vm, &bpf, "on_entry", args(&[0xffff_8880_dead_0000, 1])),
        0
    );
    assert_eq!(bpf.global::<u64>("seen_pid").unwrap(), 0);
    assert_eq!(
        run(&vm, &bpf, "on_entry", args(&[16, 1])),
        0,
        "a user address"
    );
    assert_eq!(bpf.global::<u64>("seen_pid").unwrap(), 0);

    // fexit: the return value is the slot after the arguments.
    assert_eq!(
        run(&vm, &bpf, "on_exit", args(&[task, 7, (-5i64) as u64])),
        0
    );
    assert_eq!(bpf.global::<u64>("seen_ret").unwrap(), (-5i64) as u64);
}

#[test]
fn get_func_ip_returns_the_address_given_with_the_program() {
    let vm = common::root_vm(1);
    let bpf = loaded(&vm);
    let prog = bpf
        .object()
        .vm_program("on_entry", bpf.maps())
        .unwrap()
        .with_func_ip(0xffff_ffff_8123_4560);
    let prog = vm.load(prog).unwrap();
    vm.run(&prog, CpuId(0), &Input::context(args(&[0, 0])))
        .unwrap();
    assert_eq!(bpf.global::<u64>("seen_ip").unwrap(), 0xffff_ffff_8123_4560);
}

#[test]
fn tp_btf_reads_the_current_task_through_get_current_task_btf() {
    let vm = common::root_vm(1);
    let bpf = loaded(&vm);
    let handle = vm.task(CpuId(0)).unwrap().handle;
    let mut bytes = vec![0u8; 32];
    bytes[8..12].copy_from_slice(&1000u32.to_ne_bytes());
    vm.set_kernel_memory(MemoryImage::new().with(handle, bytes));
    assert_eq!(run(&vm, &bpf, "on_tp", args(&[0, 99])), 0);
    assert_eq!(bpf.global::<u64>("tp_value").unwrap(), 99);
    assert_eq!(bpf.global::<u64>("seen_task_pid").unwrap(), 1000);
}

#[test]
fn raw_tp_reads_u64_arguments() {
    let vm = common::root_vm(1);
    let bpf = loaded(&vm);
    assert_eq!(run(&vm, &bpf, "on_raw", args(&[5, 100])), 205);
    // More than 12 arguments is EINVAL, as the kernel's raw_tp test run.
    let prog = bpf.program("on_raw").unwrap();
    let e = vm
        .test_run(
            prog,
            &TestRun {
                input: Input::context(vec![0u8; 104]),
                repeat: 1,
                cpu: CpuId(0),
            },
        )
        .unwrap_err();
    assert_eq!(e.errno(), 22, "{e}");
    // Fewer arguments than the program reads (max_ctx_offset 16): EINVAL, as the kernel.
    let e = vm
        .run(prog, CpuId(0), &Input::context(args(&[5])))
        .unwrap_err();
    assert_eq!(e.errno(), 22, "{e}");
    assert!(e.to_string().contains("reads 16 bytes"), "{e}");
}

#[test]
fn ns_pid_tgid_checks_the_namespace_and_probe_read_str_reads_either_space() {
    let vm = common::root_vm(1);
    let bpf = loaded(&vm);
    let ns = PidNamespace {
        dev: 4,
        ino: 0xf000_0123,
        pid: 7,
        tgid: 5,
    };
    let user_str = 0x7000_0000u64;
    vm.set_task(
        CpuId(0),
        Task {
            pid_ns: ns,
            user_memory: MemoryImage::new().with(user_str, b"bash\0".to_vec()),
            ..Task::for_cpu(0)
        },
    )
    .unwrap();
    assert_eq!(
        run(&vm, &bpf, "on_raw_ns", args(&[4, 0xf000_0123, user_str])),
        0
    );
    assert_eq!(bpf.global::<i64>("ns_err").unwrap(), 0);
    assert_eq!(bpf.global::<u64>("ns_pid_tgid").unwrap(), 5 << 32 | 7);
    assert_eq!(bpf.global::<i64>("str_len").unwrap(), 5);
    assert_eq!(&bpf.global::<[u8; 16]>("str").unwrap()[..5], b"bash\0");

    // Another namespace: -EINVAL and the output zeroed; an unreadable string: -EFAULT.
    assert_eq!(
        run(&vm, &bpf, "on_raw_ns", args(&[4, 0xf000_0124, 0x6000_0000])),
        0
    );
    assert_eq!(bpf.global::<i64>("ns_err").unwrap(), -22);
    assert_eq!(bpf.global::<u64>("ns_pid_tgid").unwrap(), 0);
    assert_eq!(bpf.global::<i64>("str_len").unwrap(), -14);
}

#[test]
fn perf_event_reads_its_sample() {
    let vm = common::root_vm(1);
    let bpf = loaded(&vm);
    let mut ctx = vec![0u8; 184];
    ctx[128..136].copy_from_slice(&1u64.to_ne_bytes()); // regs.ip (index 16)
    ctx[168..176].copy_from_slice(&10u64.to_ne_bytes()); // sample_period
    ctx[176..184].copy_from_slice(&100u64.to_ne_bytes()); // addr
    assert_eq!(run(&vm, &bpf, "on_perf", ctx), 111);
}

#[test]
fn syscall_programs_write_their_context() {
    let vm = common::root_vm(1);
    let bpf = loaded(&vm);
    let prog = bpf.program("on_syscall").unwrap();
    let mut ctx = Vec::new();
    for v in [20i32, 22, 0] {
        ctx.extend_from_slice(&v.to_ne_bytes());
    }
    let out = vm
        .test_run(
            prog,
            &TestRun {
                input: Input::context(ctx),
                repeat: 1,
                cpu: CpuId(0),
            },
        )
        .unwrap();
    assert_eq!(out.retval, 40);
    let sum = i32::from_ne_bytes(out.ctx_out[8..12].try_into().unwrap());
    assert_eq!(sum, 42);
}

#[test]
fn the_verdicts_are_the_kernels_or_say_what_is_not_modelled() {
    let vm = common::root_vm(1);
    let bpf = loaded(&vm);
    // raw_tp, perf_event, syscall and tracing programs get the kernel's verdict: loads
    // through a PTR_TO_BTF_ID (`task->pid`) are checked against the target BTF.
    for name in [
        "on_raw",
        "on_raw_ns",
        "on_perf",
        "on_syscall",
        "on_exit",
        "on_entry",
        "on_tp",
    ] {
        assert_eq!(bpf.program(name).unwrap().unverified(), None, "{name}");
    }
    // Without the kernel's types, the same kind of load is not modelled.
    let ctx = bpfvm::verifier::TracingCtx {
        nr_slots: 1,
        btf_ptr_slots: 1,
        known: true,
        ..Default::default()
    };
    // r2 = ctx[0]; r3 = *(u32 *)(r2 + 0); r0 = 0; exit
    let words = [0x1279, 0x2361, 0xb7, 0x95];
    let p = bpfvm::Program::from_words(&words, ProgramType::Tracing).with_tracing_ctx(ctx);
    let p = vm.load(p).unwrap();
    let why = p.unverified().unwrap();
    assert!(why.contains("PTR_TO_BTF_ID"), "{why}");
}

#[test]
fn probe_load_opcodes_are_not_accepted_from_programs() {
    // 0x21 is bpfvm's internal probe form of `ldxw`; as an instruction it is no opcode.
    for vm in [common::root_vm(1), common::structural_vm(1)] {
        let p = bpfvm::Program::from_words(&[0x1021, 0x95], ProgramType::Tracing);
        assert!(vm.load(p).is_err());
    }
}

#[test]
fn the_same_loads_fault_in_a_program_without_btf_pointers() {
    // r0 = *(u32 *)(r1 + 0) with r1 = args[0], a kernel address no region holds: a
    // raw_tp program (no PTR_TO_BTF_ID; the kernel would refuse the load) faults, a
    // tracing program reads 0.
    let words = [0x0000_0000_0000_1179u64, 0x0000_0000_0000_1061, 0x95];
    let vm = common::structural_vm(1);
    let ctx = Input::context(args(&[0xffff_8880_dead_0000]));
    let raw = vm
        .load(bpfvm::Program::from_words(
            &words,
            ProgramType::RawTracepoint,
        ))
        .unwrap();
    assert!(vm.run(&raw, CpuId(0), &ctx).is_err());
    let tracing = vm
        .load(bpfvm::Program::from_words(&words, ProgramType::Tracing))
        .unwrap();
    assert_eq!(vm.run(&tracing, CpuId(0), &ctx).unwrap().retval, 0);
}

#[test]
fn probe_loads_are_refused_by_the_rbpf_engines() {
    let words = [0x0000_0000_0000_1179u64, 0x0000_0000_0000_1061, 0x95];
    let vm = common::structural_vm(1);
    let p = bpfvm::Program::from_words(&words, ProgramType::Tracing)
        .with_engine(bpfvm::EngineKind::RbpfInterpreter);
    let e = vm.load(p).unwrap_err();
    assert!(
        matches!(e, bpfvm::PrepareError::Unsupported { pc: 0, .. }),
        "{e:?}"
    );
    assert!(e.to_string().contains("probe loads"), "{e}");
}
