//! Loading per program (issue 13, items 1, 2, 7, 8): a program that cannot load does not
//! stop the others; sections libbpf does not know need their type given; `__kconfig` and
//! `__ksym` externs resolve as libbpf resolves them; subprograms live in any code section;
//! legacy `bpf_elf_map` definitions with their extra fields load.

mod common;

use bpfvm::loader::{
    section_type, KernelConfig, KernelProgType, LoadError, LoadOptions, MapKind, Object,
};
use bpfvm::{CpuId, Input, ProgramType, Vm};

fn parse_with(name: &str, kconfig: KernelConfig) -> Object {
    Object::parse_with(name, &common::fixture_bytes(name), &LoadOptions { kconfig })
        .unwrap_or_else(|e| panic!("{name}: {e}"))
}

fn u64_at(map: &bpfvm::maps::Map, key: u32) -> u64 {
    let mut v = [0u8; 8];
    map.lookup(&key.to_ne_bytes(), &mut v, 0).unwrap();
    u64::from_ne_bytes(v)
}

#[test]
fn one_object_good_program_loads_and_runs_the_others_get_their_own_errors() {
    let obj = common::fixture("partial");
    let results: Vec<(String, Result<(), String>)> = obj
        .program_results()
        .map(|r| match r {
            Ok(p) => (p.name.to_string(), Ok(())),
            Err(r) => (r.name.to_string(), Err(r.error.to_string())),
        })
        .collect();
    assert_eq!(results.len(), 4, "{results:?}");
    assert_eq!(results[0], ("good".to_string(), Ok(())));
    assert_eq!(results[1].0, "uses_bad_map");
    assert_eq!(
        results[1].1.as_ref().unwrap_err(),
        "uses map mystery, which cannot be loaded: map mystery has unknown map type 999"
    );
    assert_eq!(results[2], ("probes_weak_kfunc".to_string(), Ok(())));
    // A kfunc is resolved when the program is loaded into a VM (against its registered
    // kfuncs): the object holds the program.
    assert_eq!(results[3], ("uses_kfunc".to_string(), Ok(())));
    // The refused map is not created; the good program's map is.
    assert_eq!(obj.refused_maps().len(), 1);
    assert_eq!(obj.refused_maps()[0].name, "mystery");
    let names: Vec<&str> = obj.maps().iter().map(|m| m.name.as_str()).collect();
    assert_eq!(names, ["hits"]);

    let (obj, maps, vm) = common::fixture_vm("partial", 2);
    let good = common::fixture_program(&vm, &obj, &maps, "good");
    for cpu in [0, 1, 1] {
        let out = vm
            .run(&good, CpuId(cpu), &Input::packet(vec![0; 60]))
            .unwrap();
        assert_eq!(out.retval, 2, "XDP_PASS");
    }
    assert_eq!(u64_at(maps.get("hits").unwrap(), 0), 3);
    // The address of a weak kfunc nobody has is 0 (libbpf's bpf_ksym_exists is false).
    let probe = common::fixture_program(&vm, &obj, &maps, "probes_weak_kfunc");
    let out = vm
        .run(&probe, CpuId(0), &Input::packet(vec![0; 60]))
        .unwrap();
    assert_eq!(out.retval, 2, "XDP_PASS: not called");
    // A strong kfunc nobody registered refuses the program at load, by name (EINVAL).
    let e = vm
        .load(obj.vm_program("uses_kfunc", &maps).unwrap())
        .unwrap_err();
    assert!(
        matches!(&e, bpfvm::PrepareError::UnresolvedKfunc { name, .. } if name == "bpf_kfunc_that_does_not_exist"),
        "{e:?}"
    );
    assert_eq!(e.errno(), 22);
    // Asking for a refused program gives its own error, with its errno.
    let e = obj.vm_program("uses_bad_map", &maps).unwrap_err();
    assert!(matches!(&e, LoadError::MapUnavailable { map, .. } if map == "mystery"));
    assert_eq!(e.errno(), 22, "the unknown map type's EINVAL");
    // All or nothing, as libbpf: the map's error first.
    let e = obj.require_all().unwrap_err();
    assert!(
        matches!(e, LoadError::UnknownMapType { map_type: 999, .. }),
        "{e:?}"
    );
}

#[test]
fn a_legacy_section_name_needs_its_type_and_then_runs_as_the_kernel_runs_it() {
    let (obj, maps, vm) = common::fixture_vm("legacy_section", 1);
    let def = obj.program("pass_len").unwrap();
    assert_eq!(def.section, "xdp_pass");
    assert_eq!(def.section_type, None);
    assert_eq!(def.program_type, ProgramType::Unspecified);
    let e = obj.vm_program("pass_len", &maps).unwrap_err();
    assert!(matches!(&e, LoadError::UnknownProgramType { section, .. } if section == "xdp_pass"));
    let msg = e.to_string();
    assert!(
        msg.contains("--type xdp") && msg.contains("vm_program_as"),
        "{msg}"
    );
    let prog = vm
        .load(
            obj.vm_program_as("pass_len", &maps, KernelProgType::Xdp)
                .unwrap(),
        )
        .unwrap();
    for len in [60usize, 100] {
        let out = vm
            .run(&prog, CpuId(0), &Input::packet(vec![7; len]))
            .unwrap();
        assert_eq!(out.retval, 2);
        assert_eq!(u64_at(maps.get("lens").unwrap(), 0), len as u64);
    }
    assert_eq!(u64_at(maps.get("lens").unwrap(), 1), 160);
}

#[test]
fn program_types_follow_libbpf_and_unrunnable_types_fail_by_name() {
    let s = section_type("sk_skb/stream_verdict").unwrap();
    assert_eq!(s.prog_type, KernelProgType::SkSkb);
    assert_eq!(s.attach_type_name(), Some("sk_skb_stream_verdict"));
    let (obj, maps, _vm) = common::fixture_vm("multi", 1);
    for (prog, t) in [
        ("tc_prog", KernelProgType::Lsm),
        ("tc_prog", KernelProgType::StructOps),
        ("xdp_prog", KernelProgType::SkMsg),
    ] {
        let e = obj.vm_program_as(prog, &maps, t).unwrap_err();
        assert_eq!(
            e.to_string().split(" (section").next().unwrap(),
            format!("program {prog} has program type {}", t.name())
        );
    }
    // The attach type libbpf passes is kept with the program.
    let skb = obj.program("skb_prog").unwrap().section_type.unwrap();
    assert_eq!(skb.expected_attach_type, Some(0), "BPF_CGROUP_INET_INGRESS");
}

/// What `read_externs` wrote to `out` (struct values in externs.bpf.c).
#[derive(Debug, PartialEq, Eq)]
struct Values {
    version: u32,
    hz: u32,
    nr_cpus: u64,
    cookie: u8,
    syscall: u8,
    missing: u8,
    bridge: u32,
    hostname: Vec<u8>,
}

fn read_externs(kconfig: KernelConfig) -> (u64, Values) {
    let obj = parse_with("externs", kconfig);
    let maps = obj.create_maps(1).unwrap();
    let vm = Vm::builder().cpus(1).build();
    let prog = vm
        .load(obj.vm_program("read_externs", &maps).unwrap())
        .unwrap();
    let out = vm
        .run(&prog, CpuId(0), &Input::packet(vec![0; 60]))
        .unwrap();
    let mut b = vec![0u8; 48];
    maps.get(".bss")
        .unwrap()
        .lookup(&0u32.to_ne_bytes(), &mut b, 0)
        .unwrap();
    let u32_at = |o: usize| u32::from_ne_bytes(b[o..o + 4].try_into().unwrap());
    let v = Values {
        version: u32_at(0),
        hz: u32_at(4),
        nr_cpus: u64::from_ne_bytes(b[8..16].try_into().unwrap()),
        cookie: b[16],
        syscall: b[17],
        missing: b[18],
        bridge: u32_at(20),
        hostname: b[24..40].to_vec(),
    };
    (out.retval, v)
}

#[test]
fn kconfig_externs_take_the_values_given_with_libbpf_rules() {
    // Defaults: kernel 6.18.0, LINUX_HAS_BPF_COOKIE, every weak CONFIG_* 0.
    let (ret, v) = read_externs(KernelConfig::default());
    assert_eq!(ret, 2, "the weak ksym is 0: XDP_PASS");
    assert_eq!(
        v,
        Values {
            version: 0x061200,
            hz: 0,
            nr_cpus: 0,
            cookie: 1,
            syscall: 0,
            missing: 0,
            bridge: 0,
            hostname: vec![0; 16],
        }
    );
    let mut cfg = KernelConfig::parse(
        "CONFIG_HZ=250\nCONFIG_NR_CPUS=0x2000\nCONFIG_BPF_SYSCALL=y\nCONFIG_BRIDGE=m\n\
         CONFIG_DEFAULT_HOSTNAME=\"a-hostname-longer-than-16\"\n# CONFIG_BPFVM_NOT_A_REAL_OPTION is not set\n",
    )
    .unwrap();
    cfg.set_kernel_version(5, 15, 300);
    let (_, v) = read_externs(cfg);
    let mut host = b"a-hostname-long".to_vec();
    host.push(0);
    assert_eq!(
        v,
        Values {
            version: 0x050fff,
            hz: 250,
            nr_cpus: 0x2000,
            cookie: 1,
            syscall: 1,
            missing: 0,
            bridge: 2,
            hostname: host,
        }
    );
    // The .kconfig map: read-only for programs and frozen, as libbpf makes it.
    let obj = parse_with("externs", KernelConfig::default());
    let kconfig = obj.map(".kconfig").unwrap();
    assert_eq!(kconfig.name, "externs.kconfig");
    assert!(kconfig.frozen);
    assert!(matches!(&kconfig.kind, MapKind::GlobalData { section, .. } if section == ".kconfig"));
}

#[test]
fn bad_or_missing_extern_values_refuse_only_the_programs_that_use_them() {
    let mut cfg = KernelConfig::default();
    cfg.set("CONFIG_HZ", "y");
    let obj = parse_with("externs", cfg);
    let e = obj.program_result("read_externs").unwrap_err();
    assert_eq!(
        e,
        LoadError::BadKconfig {
            name: "CONFIG_HZ".into(),
            reason: "value 'y' implies bool, tristate, or char type".into()
        }
    );
    let mut cfg = KernelConfig::default();
    cfg.set("CONFIG_BRIDGE", "12");
    let e = parse_with("externs", cfg)
        .program_result("read_externs")
        .unwrap_err();
    assert!(e.to_string().contains("implies integer type"), "{e}");
    // A strong ksym bpfvm cannot resolve refuses its program, naming it.
    let obj = common::fixture("externs");
    let e = obj.program_result("strong_ksym").unwrap_err();
    assert!(
        matches!(&e, LoadError::UnresolvedExtern { name, .. } if name == "_stext"),
        "{e:?}"
    );
    assert_eq!(e.errno(), 3, "ESRCH, as libbpf");
    assert!(obj.program("read_externs").is_some());
    // kconfig.o's strong LINUX_KERNEL_VERSION has the default.
    let (obj, maps, vm) = common::fixture_vm("kconfig", 1);
    let p = common::fixture_program(&vm, &obj, &maps, "kernel_version");
    let out = vm.run(&p, CpuId(0), &Input::packet(vec![0; 60])).unwrap();
    assert_eq!(out.retval, 0x061200);
}

fn mix(a: u32, b: u32) -> u32 {
    (a ^ (b << 7)).wrapping_add(0x9e37_79b9u32.wrapping_mul(b))
}

fn fold(x: u32) -> u32 {
    (x >> 16) ^ (x & 0xffff)
}

#[test]
fn subprograms_in_the_programs_section_and_in_text_dot_sections_are_linked() {
    let (obj, maps, vm) = common::fixture_vm("section_subprogs", 1);
    let names: Vec<&str> = obj.programs().iter().map(|p| p.name.as_str()).collect();
    assert_eq!(
        names,
        ["subprogs_xdp", "subprogs_tc"],
        "mix and fold are not programs"
    );
    let xdp = obj.program("subprogs_xdp").unwrap();
    let subs: Vec<&str> = xdp.subprograms.iter().map(|(n, _)| n.as_str()).collect();
    assert_eq!(subs, ["mix", "fold"]);
    let p = common::fixture_program(&vm, &obj, &maps, "subprogs_xdp");
    for len in [14usize, 64, 333] {
        let pkt: Vec<u8> = (0..len).map(|i| (i * 7 + 3) as u8).collect();
        let first = u32::from_ne_bytes(pkt[..4].try_into().unwrap());
        let out = vm.run(&p, CpuId(0), &Input::packet(pkt)).unwrap();
        assert_eq!(
            out.retval,
            u64::from(fold(mix(first, len as u32))),
            "len {len}"
        );
    }
    let p = common::fixture_program(&vm, &obj, &maps, "subprogs_tc");
    let out = vm.run(&p, CpuId(0), &Input::packet(vec![0; 60])).unwrap();
    assert_eq!(out.retval, u64::from(fold(60u32.wrapping_mul(1_000_003))));
}

#[test]
fn iproute2_bpf_elf_map_definitions_load_with_their_extra_fields() {
    let (obj, maps, vm) = common::fixture_vm("legacy_elf_maps", 2);
    let counts = obj.map("elf_counts").unwrap();
    let extra = counts.legacy.unwrap();
    assert_eq!((extra.def_size, extra.id, extra.pinning), (36, 1, 2));
    assert_eq!(obj.map("elf_hash").unwrap().legacy.unwrap().id, 2);
    assert_eq!(obj.map("elf_hash").unwrap().max_entries, 8);
    let p = common::fixture_program(&vm, &obj, &maps, "count_elf");
    for (i, len) in [60usize, 61, 62].into_iter().enumerate() {
        let out = vm
            .run(&p, CpuId(i as u32 % 2), &Input::packet(vec![0; len]))
            .unwrap();
        assert_eq!(out.retval, i as u64 + 1);
    }
    let mut v = [0u8; 4];
    maps.get("elf_hash")
        .unwrap()
        .lookup(&61u32.to_ne_bytes(), &mut v, 0)
        .unwrap();
    assert_eq!(u32::from_ne_bytes(v), 61);
}

#[test]
fn object_loader_loads_the_good_program_and_keeps_each_refusal() {
    let vm = Vm::builder().cpus(2).build();
    let bpf = bpfvm::ObjectLoader::new(common::fixture("partial"))
        .load(&vm)
        .unwrap();
    let names: Vec<&str> = bpf.programs().map(|(n, _)| n).collect();
    assert_eq!(
        names,
        ["good", "uses_bad_map", "probes_weak_kfunc", "uses_kfunc"]
    );
    let good = bpf.program("good").unwrap();
    assert_eq!(
        vm.run(good, CpuId(1), &Input::packet(vec![0; 60]))
            .unwrap()
            .retval,
        2
    );
    let e = bpf.program("uses_kfunc").unwrap_err();
    assert_eq!(e.errno(), 22, "EINVAL: no one registered the kfunc");
    assert!(
        e.to_string().contains("bpf_kfunc_that_does_not_exist"),
        "{e}"
    );
    assert_eq!(bpf.program("uses_bad_map").unwrap_err().errno(), 22);
}
