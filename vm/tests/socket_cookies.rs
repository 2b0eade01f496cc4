//! `bpf_get_socket_cookie` on a traced `struct sock *` (`fixtures/src/sock_cookie.bpf.c`,
//! typed by `sock_target.btf`), as bcc's `tcppktlat` calls it: verified as the kernel
//! verifies tracing's `bpf_get_socket_ptr_cookie_proto` and run with the kernel's
//! observable behaviour: one non-zero cookie per socket, stable, shared by the VM's CPUs,
//! 0 for NULL. Other program types pass their context to helper 46, which bpfvm does not
//! run: such programs are refused at load as an unknown helper.

mod common;

use bpfvm::loader::{Btf, Object};
use bpfvm::task::MemoryImage;
use bpfvm::{CpuId, Input, LoadedObject, ObjectLoader, PrepareError, ProgramType, Vm};

fn object() -> Object {
    let target = Btf::parse_any(
        &std::fs::read(format!(
            "{}/tests/fixtures/sock_target.btf",
            env!("CARGO_MANIFEST_DIR")
        ))
        .unwrap(),
    )
    .unwrap();
    Object::parse_with_btf(
        "sock_cookie",
        &common::fixture_bytes("sock_cookie"),
        Some(&target),
    )
    .unwrap()
}

fn run(vm: &Vm, bpf: &LoadedObject, cpu: u32, sk: u64) {
    let ctx = sk.to_ne_bytes().to_vec();
    let prog = bpf.program("on_sock").unwrap();
    assert_eq!(
        vm.run(prog, CpuId(cpu), &Input::context(ctx))
            .unwrap()
            .retval,
        0
    );
}

#[test]
fn each_socket_gets_one_cookie() {
    let vm = common::root_vm(2);
    let bpf = ObjectLoader::new(object()).load(&vm).unwrap();
    let on_sock = bpf.program("on_sock").unwrap();
    assert_eq!(on_sock.unverified(), None, "the kernel's verdict");
    let (a, b) = (0xffff_8880_0001_0000u64, 0xffff_8880_0002_0000u64);
    // skc_family (offset 8) of socket a, read through the pointer (a probe load).
    let mut bytes = vec![0u8; 16];
    bytes[8..10].copy_from_slice(&10u16.to_ne_bytes());
    vm.set_kernel_memory(MemoryImage::new().with(a, bytes));
    run(&vm, &bpf, 0, a);
    let first = bpf.global::<u64>("cookie").unwrap();
    assert_ne!(first, 0);
    assert_eq!(bpf.global::<u64>("null_cookie").unwrap(), 0, "NULL gives 0");
    assert_eq!(bpf.global::<u16>("family").unwrap(), 10);
    run(&vm, &bpf, 1, b);
    let second = bpf.global::<u64>("cookie").unwrap();
    assert!(second != 0 && second != first, "{first} {second}");
    // The same socket on another CPU: the same cookie.
    run(&vm, &bpf, 1, a);
    assert_eq!(bpf.global::<u64>("cookie").unwrap(), first);
    run(&vm, &bpf, 0, b);
    assert_eq!(bpf.global::<u64>("cookie").unwrap(), second);
    // In order of first use, from 1, in the VM's network.
    assert_eq!((first, second), (1, 2));
    assert_eq!(vm.net().socket_cookies().get(b), Some(2));
    assert_eq!(vm.net().socket_cookies().len(), 2);
}

#[test]
fn a_task_is_not_a_socket() {
    let vm = common::root_vm(1);
    let bpf = ObjectLoader::new(object()).load(&vm).unwrap();
    let e = bpf.program("on_task").unwrap_err().to_string();
    assert!(
        e.contains("R1 is of type task_struct but sock_common is expected"),
        "{e}"
    );
}

#[test]
fn other_program_types_do_not_run_it() {
    // r1 = ctx; call bpf_get_socket_cookie; exit: a socket filter's skb cookie.
    let words = [0x0000_002e_0000_0085u64, 0x95];
    for vm in [common::root_vm(1), common::structural_vm(1)] {
        let p = bpfvm::Program::from_words(&words, ProgramType::SocketFilter);
        let e = vm.load(p).unwrap_err();
        assert!(
            matches!(e, PrepareError::UnknownHelper { pc: 0, id: 46 }),
            "{e:?}"
        );
    }
    // A helper the user registers under id 46 runs for any type.
    let mut registry = bpfvm::helpers::Registry::with_builtins();
    registry
        .register_fn(bpfvm::helpers::HelperId(46), "mine", |_, _| Ok(7))
        .unwrap();
    let vm = Vm::with_registry(bpfvm::VmConfig::default(), registry);
    let p = bpfvm::Program::from_words(&words, ProgramType::SocketFilter);
    let p = vm.load(p).unwrap();
    let out = vm.run(&p, CpuId(0), &Input::packet(vec![0; 64])).unwrap();
    assert_eq!(out.retval, 7);
}
