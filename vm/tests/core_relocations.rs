//! CO-RE relocations on the compiled fixtures: `core_abi.o` (contexts and protocol headers
//! only) loads and runs with no target BTF; `core_kernel.o` (every relocation kind, on
//! kernel-internal types) resolves against `core_target.btf`, whose layouts differ from
//! the program's declarations (fields moved and resized, a flavored name, missing fields);
//! unresolvable relocations poison their instruction and fail only the run that reaches
//! one. (`conformance/tests/kernel_core.rs` compares with the kernel and its vmlinux.)

mod common;

use std::time::Instant;

use bpfvm::loader::{Btf, CoreRelocKind, LoadError, Object};
use bpfvm::{CpuId, Input, PrepareError, Privilege, RunError, VerifierMode, Vm};

/// A VM that loads as root (as the kernel oracle loads these fixtures).
fn root_vm() -> Vm {
    Vm::builder().cpus(1).privilege(Privilege::Root).build()
}

/// A VM with bpfvm's structural checks only: a reachable poisoned instruction loads
/// and faults when a run reaches it.
fn structural_vm() -> Vm {
    Vm::builder()
        .cpus(1)
        .verifier(VerifierMode::Structural)
        .build()
}

fn target() -> Btf {
    Btf::from_file(format!(
        "{}/tests/fixtures/core_target.btf",
        env!("CARGO_MANIFEST_DIR")
    ))
    .unwrap()
}

/// Ethernet + IPv4 (ttl 64, protocol UDP, header length `ihl` words) + 8 payload bytes.
fn ipv4_frame(ihl: u8) -> Vec<u8> {
    let mut f = vec![0xaa; 12];
    f.extend_from_slice(&0x0800u16.to_be_bytes());
    let mut ip = vec![0u8; usize::from(ihl) * 4];
    ip[0] = 0x40 | ihl;
    let tot = (ip.len() + 8) as u16;
    ip[2..4].copy_from_slice(&tot.to_be_bytes());
    ip[8] = 64;
    ip[9] = 17;
    f.extend(ip);
    f.extend([0x5a; 8]);
    f
}

/// Runs `prog` of `obj` once on `frame`; the return value and the `facts` array.
fn run(obj: &Object, prog: &str, frame: Vec<u8>) -> (Result<u64, RunError>, Vec<u64>) {
    run_on(&root_vm(), obj, prog, frame)
}

fn run_on(vm: &Vm, obj: &Object, prog: &str, frame: Vec<u8>) -> (Result<u64, RunError>, Vec<u64>) {
    let maps = obj.create_maps(1).unwrap();
    let p = vm.load(obj.vm_program(prog, &maps).unwrap()).unwrap();
    let r = vm
        .run(&p, CpuId(0), &Input::packet(frame))
        .map(|o| o.retval);
    let facts = maps.get("facts").unwrap();
    let n = facts.max_entries();
    let values = (0..n)
        .map(|k| {
            let mut v = [0u8; 8];
            facts.lookup(&k.to_ne_bytes(), &mut v, 0).unwrap();
            u64::from_ne_bytes(v)
        })
        .collect();
    (r, values)
}

#[test]
fn abi_types_resolve_against_the_programs_own_btf() {
    let obj = common::fixture("core_abi");
    for p in obj.programs() {
        assert!(
            p.core_poisons.is_empty(),
            "{}: {:?}",
            p.name,
            p.core_poisons
        );
    }
    let frame = ipv4_frame(6);
    let len = frame.len() as u64;
    let (r, f) = run(&obj, "skb_core", frame.clone());
    assert_eq!(r, Ok(0));
    assert_eq!(f[0], len, "skb->len");
    assert_eq!(f[1], u64::from(0x0800u16.to_be()), "skb->protocol");
    assert_eq!(
        &f[2..9],
        &[1, 20, 20, 4, 1, 1, 8],
        "exists, sizes, enum, offset"
    );
    assert_eq!(&f[9..13], &[6, 4, 64, 17], "ihl, version, ttl, protocol");
    let (r, f) = run(&obj, "xdp_core", frame);
    assert_eq!(r, Ok(2), "XDP_PASS");
    assert_eq!(&f[16..21], &[len, 1, 0, 464, 32]);
}

#[test]
fn every_kind_resolves_against_a_target_with_other_layouts() {
    let target = target();
    let bytes = common::fixture_bytes("core_kernel");
    let obj = Object::parse_with_btf("core_kernel", &bytes, Some(&target)).unwrap();
    let def = obj.program("kernel_core").unwrap();
    // The two relocations on paths never taken have nothing to resolve to.
    let poisoned: Vec<_> = def.core_poisons.iter().map(|(_, p)| p.kind).collect();
    assert_eq!(
        poisoned,
        [CoreRelocKind::FieldByteOffset, CoreRelocKind::EnumvalValue],
        "{:?}",
        def.core_poisons
    );
    let local_task = obj
        .btf()
        .unwrap()
        .types()
        .iter()
        .position(
            |t| matches!(t, bpfvm::loader::BtfType::Struct { name, .. } if name == "task_struct"),
        )
        .unwrap() as u64;
    let frame = ipv4_frame(5);
    let len = frame.len() as u64;
    let (r, f) = run(&obj, "kernel_core", frame);
    assert_eq!(r, Ok(7));
    #[rustfmt::skip]
    let want: [u64; 34] = [
        24, 20, 32, 72, 1, 0, 1, 0, 20,     // task_struct: pid, tgid, comm, tasks.prev, ...
        8, 12, 2, 57, 62, 56, 0,            // sk_buff: len, fclone offset/size/shifts, ...
        16, 8,                              // net_device.mtu: moved, 8 bytes
        local_task, 2, 0,                   // type ids: local, target, missing
        1, 0, 80, 32,                       // type exists, sizes
        1, 0,                               // type matches
        1, 0, 7, 42,                        // enumerators (flavored names)
        0, 0,                               // poisoned, not reached
        len,
    ];
    assert_eq!(f[..34], want);
}

#[test]
fn without_a_target_kernel_types_poison_and_the_run_names_the_relocation() {
    let obj = common::fixture("core_kernel");
    let def = obj.program("kernel_core").unwrap();
    // Everything but the local type id is about kernel-internal types.
    assert_eq!(def.core_poisons.len(), 33 - 1);
    // The kernel's verifier refuses a reachable poison; bpfvm's too, naming it as libbpf does.
    let maps = obj.create_maps(1).unwrap();
    let e = root_vm()
        .load(obj.vm_program("kernel_core", &maps).unwrap())
        .unwrap_err();
    let PrepareError::Verifier { error, .. } = &e else {
        panic!("{e:?}")
    };
    assert!(
        error
            .message
            .starts_with("invalid func unknown#195896080: "),
        "{e}"
    );
    assert!(error.message.contains("struct task_struct.pid"), "{e}");
    assert!(error.message.contains("--btf"), "{e}");
    // With the structural checks only, the run that reaches it fails naming it.
    let (r, _) = run_on(&structural_vm(), &obj, "kernel_core", ipv4_frame(5));
    let Err(RunError::CorePoison { pc, relocation, .. }) = r else {
        panic!("{r:?}")
    };
    let poison = def.core_poison(pc).expect("the poisoned relocation");
    assert_eq!(relocation, poison.to_string(), "the run error names it");
    assert!(
        relocation.contains("struct task_struct.pid"),
        "{relocation}"
    );
    assert!(relocation.contains("no target BTF"), "{relocation}");
}

#[test]
fn a_poison_on_a_taken_path_fails_only_that_run() {
    let target = target();
    let bytes = common::fixture_bytes("core_poison");
    let obj = Object::parse_with_btf("core_poison", &bytes, Some(&target)).unwrap();
    let def = obj.program("reach_poison").unwrap();
    assert_eq!(def.core_poisons.len(), 1);
    let maps = obj.create_maps(1).unwrap();
    // The kernel's verifier sees the poison reachable when skb->len >= 20: refused.
    let e = root_vm()
        .load(obj.vm_program("reach_poison", &maps).unwrap())
        .unwrap_err();
    assert!(
        e.to_string().contains("task_struct___fake.no_such_field"),
        "{e}"
    );
    let vm = structural_vm();
    let p = vm
        .load(obj.vm_program("reach_poison", &maps).unwrap())
        .unwrap();
    assert_eq!(
        vm.run(&p, CpuId(0), &Input::packet(vec![0; 14]))
            .map(|o| o.retval),
        Ok(1)
    );
    let e = vm
        .run(&p, CpuId(0), &Input::packet(vec![0; 64]))
        .unwrap_err();
    let RunError::CorePoison { pc, .. } = e else {
        panic!("{e:?}")
    };
    assert_eq!(pc, def.core_poisons[0].0);
    assert!(e.to_string().contains("0xbad2310"), "{e}");
    let p = def.core_poison(pc).unwrap();
    assert!(p.access.contains("task_struct___fake.no_such_field"), "{p}");
    assert!(p.reason.contains("no struct task_struct"), "{p}");
}

#[test]
fn a_relocation_that_contradicts_its_instruction_is_a_load_error() {
    // Patch the first CO-RE instruction of core_abi.o (`r8 = *(u32 *)(r6 + 0x50)`, the
    // data_end offset) so it no longer holds what the program's BTF says: libbpf refuses.
    let mut bytes = common::fixture_bytes("core_abi");
    let needle = [0x61, 0x68, 0x50, 0x00, 0, 0, 0, 0];
    let at = bytes.windows(8).position(|w| w == needle).unwrap();
    bytes[at + 2] = 0x54;
    let e = Object::parse_named("core_abi", &bytes).unwrap_err();
    let LoadError::CoreRelocation {
        section,
        insn,
        relocation,
        reason,
    } = &e
    else {
        panic!("{e:?}")
    };
    assert_eq!((section.as_str(), *insn), ("tc", 1));
    assert!(relocation.contains("struct __sk_buff.data_end"), "{e}");
    assert!(reason.contains("84"), "{e}");
}

#[test]
fn the_running_kernels_btf_parses_quickly_and_resolves_kernel_types() {
    let path = "/sys/kernel/btf/vmlinux";
    if !std::path::Path::new(path).exists() {
        eprintln!("SKIPPED: {path} does not exist (no kernel BTF on this machine)");
        return;
    }
    let t = Instant::now();
    let vmlinux = Btf::from_file(path).unwrap();
    let parsed = t.elapsed();
    let bytes = common::fixture_bytes("core_kernel");
    let t = Instant::now();
    let obj = Object::parse_with_btf("core_kernel", &bytes, Some(&vmlinux)).unwrap();
    let relocated = t.elapsed();
    eprintln!(
        "vmlinux: {} types parsed in {parsed:?}; core_kernel.o relocated in {relocated:?}",
        vmlinux.types().len()
    );
    let def = obj.program("kernel_core").unwrap();
    assert_eq!(def.core_poisons.len(), 2, "{:?}", def.core_poisons);
    let (r, f) = run(&obj, "kernel_core", ipv4_frame(5));
    assert_eq!(r, Ok(7));
    assert_eq!(f[4], 1, "task_struct.flags exists");
    assert_eq!(f[21], 1, "task_struct exists");
    assert!(f[23] > 1000, "sizeof(task_struct) = {}", f[23]);
}

#[test]
fn a_kprobe_reading_a_kernel_struct_needs_a_target() {
    let obj = common::fixture("core_relo");
    let def = obj.program("read_pid").unwrap();
    assert_eq!(def.core_poisons.len(), 1);
    let p = &def.core_poisons[0].1;
    assert_eq!(
        (p.section.as_str(), p.kind),
        ("kprobe/do_exit", CoreRelocKind::FieldByteOffset)
    );
    let bytes = common::fixture_bytes("core_relo");
    let obj = Object::parse_with_btf("core_relo", &bytes, Some(&target())).unwrap();
    let def = obj.program("read_pid").unwrap();
    assert!(def.core_poisons.is_empty());
    // BPF_CORE_READ(task, tgid) reads through bpf_probe_read_kernel at tgid's offset: 20.
    let off_20 = def
        .insns
        .iter()
        .any(|&i| i as u8 & 0x07 == 0x07 && (i >> 32) == 20);
    assert!(off_20, "{:x?}", def.insns);
}

#[test]
fn the_poison_call_faults_only_when_reached_and_only_in_the_interpreter() {
    use bpfvm::{EngineKind, Program, ProgramType};
    let poison = [0x85u8, 0, 0, 0, 0x10, 0x23, 0xad, 0x0b];
    let exit = [0x95u8, 0, 0, 0, 0, 0, 0, 0];
    let mov_r0_0 = [0xb7u8, 0, 0, 0, 0, 0, 0, 0];
    let jeq_r0_0_skip1 = [0x15u8, 0, 1, 0, 0, 0, 0, 0];
    let skipped: Vec<u8> = [mov_r0_0, jeq_r0_0_skip1, poison, exit].concat();
    // The kernel's verifier proves the poison dead (r0 is 0) and accepts the program.
    let kernel = root_vm();
    let p = kernel
        .load(Program::new(skipped.clone(), ProgramType::Xdp))
        .unwrap();
    assert_eq!(
        kernel
            .run(&p, CpuId(0), &Input::packet(vec![0; 64]))
            .unwrap()
            .retval,
        0
    );
    let vm = structural_vm();
    let p = vm
        .load(Program::new(skipped.clone(), ProgramType::Xdp))
        .unwrap();
    let out = vm.run(&p, CpuId(0), &Input::packet(vec![0; 64])).unwrap();
    assert_eq!(out.retval, 0);
    // r1..r5 after the poison are never read: it ends the run, the verifier knows
    let reached: Vec<u8> = [poison, [0xbfu8, 0x10, 0, 0, 0, 0, 0, 0], exit].concat();
    assert!(kernel
        .load(Program::new(reached.clone(), ProgramType::Xdp))
        .is_err());
    let p = vm.load(Program::new(reached, ProgramType::Xdp)).unwrap();
    let e = vm
        .run(&p, CpuId(0), &Input::packet(vec![0; 64]))
        .unwrap_err();
    let RunError::CorePoison {
        pc: 0, relocation, ..
    } = e
    else {
        panic!("{e:?}")
    };
    assert!(relocation.contains("could not be resolved"), "{relocation}");
    let unsafe_vm = structural_vm();
    let refused = unsafe_vm
        .load(Program::new(skipped, ProgramType::Xdp).with_engine(EngineKind::RbpfInterpreter));
    assert!(format!("{:?}", refused.unwrap_err()).contains("poisoned CO-RE"));
}

#[test]
fn object_loader_takes_a_target_btf() {
    let path = format!(
        "{}/tests/fixtures/core_kernel.o",
        env!("CARGO_MANIFEST_DIR")
    );
    let vm = root_vm();
    let loaded = bpfvm::ObjectLoader::from_file_with_btf(&path, Some(&target()))
        .unwrap()
        .load(&vm)
        .unwrap();
    let prog = loaded.program("kernel_core").unwrap();
    let out = vm
        .run(prog, CpuId(0), &Input::packet(ipv4_frame(5)))
        .unwrap();
    assert_eq!(out.retval, 7);
    let facts = loaded.map("facts").unwrap();
    let mut v = [0u8; 8];
    facts.lookup(&0u32.to_ne_bytes(), &mut v, 0).unwrap();
    assert_eq!(
        u64::from_ne_bytes(v),
        24,
        "task_struct.pid where core_target.btf has it"
    );
}
