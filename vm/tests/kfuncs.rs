//! kfuncs (issue 13, item 7): `extern ... __ksym` functions resolved by name against the
//! kfuncs registered with the VM, checked by the verifier against the prototype the
//! object's BTF gives, called with the run's context (fixture `kfunc_user.o`).

mod common;

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;

use bpfvm::helpers::{HelperContext, HelperError, KfuncFlags};
use bpfvm::kfunc::{KfuncArg, KfuncRet, POISON_CALL_KFUNC_BASE};
use bpfvm::loader::Object;
use bpfvm::{Input, LoadedProgram, PrepareError, RunError, VerifierMode, Vm};

fn object() -> Object {
    common::fixture("kfunc_user")
}

/// A VM with the fixture's kfuncs registered (all but `bpfvm_test_weak` and
/// `bpfvm_test_strong`), counting the calls of `bpfvm_test_add`.
fn vm_with_kfuncs(adds: Arc<AtomicU64>) -> Vm {
    Vm::builder()
        .cpus(1)
        .kfunc(
            "bpfvm_test_add",
            KfuncFlags::NONE,
            move |_: &mut HelperContext, a: [u64; 5]| {
                adds.fetch_add(1, Ordering::Relaxed);
                Ok((a[0] as i32).wrapping_add(a[1] as i32) as u32 as u64)
            },
        )
        .unwrap()
        .kfunc(
            "bpfvm_test_sum",
            // The kernel's `buf__sz`: argument 1 is the size of argument 0.
            KfuncFlags::sized(0),
            |ctx: &mut HelperContext, a: [u64; 5]| {
                let mut buf = vec![0u8; a[1] as usize];
                ctx.read_arg("bpfvm_test_sum", a[0], &mut buf)?;
                Ok(buf.iter().map(|&b| u64::from(b)).sum())
            },
        )
        .unwrap()
        .kfunc(
            "bpfvm_test_ctx",
            KfuncFlags::NONE,
            |_: &mut HelperContext, a: [u64; 5]| Ok(u64::from(a[0] != 0) * 77),
        )
        .unwrap()
        .kfunc(
            "bpfvm_test_u64",
            KfuncFlags::NONE,
            |_: &mut HelperContext, a: [u64; 5]| Ok(a[0]),
        )
        .unwrap()
        .kfunc(
            "bpfvm_test_acquire",
            KfuncFlags::ACQUIRE | KfuncFlags::RET_NULL,
            // No object to hand out: NULL, which the program must expect.
            |_: &mut HelperContext, _: [u64; 5]| Ok(0),
        )
        .unwrap()
        .kfunc(
            "bpfvm_test_release",
            KfuncFlags::RELEASE,
            |_: &mut HelperContext, _: [u64; 5]| Ok(0),
        )
        .unwrap()
        .build()
}

fn load(vm: &Vm, obj: &Object, name: &str) -> Result<LoadedProgram, PrepareError> {
    let maps = obj.create_maps(vm.ncpus()).unwrap();
    vm.load(obj.vm_program(name, &maps).unwrap())
}

fn run(vm: &Vm, prog: &LoadedProgram, len: usize) -> Result<u64, RunError> {
    run_on(vm, prog, vec![0; len])
}

fn run_on(vm: &Vm, prog: &LoadedProgram, packet: Vec<u8>) -> Result<u64, RunError> {
    vm.run(prog, 0, &Input::packet(packet)).map(|o| o.retval)
}

#[test]
fn the_loader_reads_each_prototype_from_btf() {
    let obj = object();
    let kf = &obj.program("sums_buffer").unwrap().kfuncs;
    assert_eq!(kf.len(), 1);
    assert_eq!(&*kf[0].name, "bpfvm_test_sum");
    // clang keeps no parameter names of extern declarations: a pointer to the pointee's
    // size, until the registration says the next argument sizes it.
    assert_eq!(kf[0].args, [KfuncArg::Mem { size: 1 }, KfuncArg::Scalar]);
    assert_eq!(kf[0].ret, KfuncRet::Scalar);
    let kf = &obj.program("passes_ctx").unwrap().kfuncs;
    assert_eq!(kf[0].args, [KfuncArg::Ctx]);
    let kf = &obj.program("acquires").unwrap().kfuncs;
    assert_eq!(kf[0].ret, KfuncRet::Mem { size: 8 });
    assert_eq!(kf[1].args, [KfuncArg::Mem { size: 8 }]);
    assert_eq!(kf[1].ret, KfuncRet::Void);
    let kf = &obj.program("calls_weak").unwrap().kfuncs;
    assert!(kf[0].weak);
    // libbpf's extern index: no kconfig externs, ksym externs by name:
    // bpfvm_test_acquire add ctx release strong sum u64 weak -> 7.
    assert_eq!(kf[0].extern_index, 7);
    assert!(!obj.program("calls_strong").unwrap().kfuncs[0].weak);
    // Kernel objects with rules of their own are not plain memory, although their BTF is
    // a struct of scalars (the kernel's struct bpf_dynptr).
    let obj = common::fixture("kfunc_args");
    let kf = &obj.program("dynptr_good").unwrap().kfuncs;
    assert_eq!(
        kf[0].args,
        [
            KfuncArg::Ctx,
            KfuncArg::Scalar,
            KfuncArg::Ptr {
                pointee: "struct bpf_dynptr".into()
            }
        ]
    );
}

#[test]
fn a_registered_kfunc_is_called_with_typed_arguments() {
    let adds = Arc::new(AtomicU64::new(0));
    let vm = vm_with_kfuncs(Arc::clone(&adds));
    let obj = object();
    let p = load(&vm, &obj, "calls_add").unwrap();
    assert!(p.unverified().is_none(), "{:?}", p.unverified());
    assert_eq!(run_on(&vm, &p, vec![41; 64]), Ok(42), "first byte + 1");
    assert_eq!(run_on(&vm, &p, vec![200; 100]), Ok(201));
    assert_eq!(adds.load(Ordering::Relaxed), 2);
    let p = load(&vm, &obj, "sums_buffer").unwrap();
    assert_eq!(run(&vm, &p, 64), Ok(36), "1 + 2 + ... + 8");
    let p = load(&vm, &obj, "passes_ctx").unwrap();
    assert_eq!(run(&vm, &p, 64), Ok(77));
    let p = load(&vm, &obj, "acquires").unwrap();
    assert!(p.unverified().is_none());
    assert_eq!(run(&vm, &p, 64), Ok(1), "NULL: not released");
}

#[test]
fn a_missing_weak_kfunc_is_absent_and_its_calls_poisoned() {
    let vm = vm_with_kfuncs(Arc::default());
    let obj = object();
    // bpf_ksym_exists() is false: the call is never reached, the program loads.
    let p = load(&vm, &obj, "probes_weak").unwrap();
    assert_eq!(run(&vm, &p, 64), Ok(1));
    // A reachable call is libbpf's poisoned call, which the kernel's verifier refuses.
    let e = load(&vm, &obj, "calls_weak").unwrap_err();
    let want = format!("invalid func unknown#{}", POISON_CALL_KFUNC_BASE + 7);
    assert!(e.to_string().contains(&want), "{e}");
    assert!(
        e.to_string()
            .contains("kfunc 'bpfvm_test_weak' is referenced but wasn't resolved"),
        "{e}"
    );
    // With the structural checks only it loads; the run that reaches the call fails.
    let structural = Vm::builder()
        .cpus(1)
        .verifier(VerifierMode::Structural)
        .build();
    let p = load(&structural, &obj, "calls_weak").unwrap();
    let e = run(&structural, &p, 64).unwrap_err();
    assert!(matches!(e, RunError::CorePoison { .. }), "{e:?}");
    assert!(e.to_string().contains("bpfvm_test_weak"), "{e}");
}

#[test]
fn registering_the_weak_kfunc_makes_it_exist() {
    let vm = Vm::builder()
        .cpus(1)
        .kfunc(
            "bpfvm_test_weak",
            KfuncFlags::NONE,
            |_: &mut HelperContext, a: [u64; 5]| Ok(a[0] * 10),
        )
        .unwrap()
        .build();
    let obj = object();
    let p = load(&vm, &obj, "probes_weak").unwrap();
    assert_eq!(run(&vm, &p, 64), Ok(70));
    let p = load(&vm, &obj, "calls_weak").unwrap();
    assert_eq!(run(&vm, &p, 64), Ok(30));
}

#[test]
fn a_missing_strong_kfunc_is_a_load_error_naming_it() {
    let vm = vm_with_kfuncs(Arc::default());
    let e = load(&vm, &object(), "calls_strong").unwrap_err();
    assert!(
        matches!(&e, PrepareError::UnresolvedKfunc { name, .. } if name == "bpfvm_test_strong"),
        "{e:?}"
    );
    assert!(e.to_string().contains("bpfvm_test_strong"), "{e}");
    assert_eq!(e.errno(), 22, "EINVAL, as libbpf's bpf_object__load");
}

#[test]
fn calls_that_break_the_prototype_are_refused_in_the_kernels_words() {
    let vm = vm_with_kfuncs(Arc::default());
    let obj = object();
    let refusal = |name: &str| {
        let e = load(&vm, &obj, name).unwrap_err();
        match e {
            PrepareError::Verifier { error, .. } => error.message.clone(),
            other => panic!("{name}: {other:?}"),
        }
    };
    assert_eq!(refusal("ptr_as_scalar"), "R1 is not a scalar");
    assert_eq!(
        refusal("overreads"),
        "arg#0 arg#1 memory, len pair leads to invalid memory access"
    );
    assert!(
        refusal("leaks").starts_with("Unreleased reference id="),
        "{}",
        refusal("leaks")
    );
}

#[test]
fn a_kfunc_error_ends_the_run() {
    let vm = Vm::builder()
        .cpus(1)
        .kfunc(
            "bpfvm_test_add",
            KfuncFlags::NONE,
            |_: &mut HelperContext, _: [u64; 5]| Err(HelperError::Unknown { id: 1 }),
        )
        .unwrap()
        .build();
    let p = load(&vm, &object(), "calls_add").unwrap();
    assert!(run(&vm, &p, 64).is_err());
}

#[test]
fn rbpf_engines_refuse_kfunc_calls_by_name() {
    let vm = vm_with_kfuncs(Arc::default());
    let obj = object();
    let maps = obj.create_maps(1).unwrap();
    let p = obj
        .vm_program("calls_add", &maps)
        .unwrap()
        .with_engine(bpfvm::EngineKind::RbpfInterpreter);
    let e = vm.load(p).unwrap_err();
    assert!(e.to_string().contains("kfunc calls"), "{e}");
}
