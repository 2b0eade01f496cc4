//! Kernel oracle for kfuncs (issue 13, item 7): fixture `kfunc_kernel.o` with kfuncs the
//! running kernel has (`bpf_rcu_read_lock` / `bpf_rcu_read_unlock`, built into bpfvm) and
//! a weak kfunc no kernel has, `kfunc_user.o` with kfuncs only a bpfvm user registers, and
//! `kfunc_args.o` with wrong arguments to the kernel's `bpf_dynptr_from_xdp`, and
//! `dynptr_kfuncs.o` with the kfuncs that read or adjust a dynptr.
//!
//! The kernel gets each program as libbpf (1.2 and later) relocates it: a kfunc call's
//! `imm` is the function's id in `/sys/kernel/btf/vmlinux`, the address of a kfunc
//! (`bpf_ksym_exists`) a `BPF_PSEUDO_BTF_ID` load of it, and a weak kfunc the kernel lacks
//! is 0 with its calls poisoned (`call 2002000000 + extern index`). bpfvm loads the same
//! object. Both must take the same load verdict, in the same words when they refuse,
//! and give the same return values and map contents on the same packets.
//!
//! Needs root and a kernel with BTF; without them the test says why and skips (fails
//! with BPFVM_REQUIRE_KERNEL=1).
#![cfg(target_os = "linux")]

use std::collections::HashMap;
use std::path::Path;

use bpfvm::helpers::{HelperContext, KfuncFlags};
use bpfvm::kfunc::{POISON_CALL_KFUNC_BASE, PSEUDO_KFUNC_ADDR};
use bpfvm::loader::{Btf, BtfType, Object, ObjectMaps, ProgramDefinition, PSEUDO_KFUNC_CALL};
use bpfvm::{CpuId, EngineKind, Input, PrepareError, Privilege, TestRun as VmTestRun, Vm};
use bpfvm_conformance::kernel::consts::{MapType, ProgType};
use bpfvm_conformance::kernel::{
    self, load_object_program, KernelMap, KernelProg, MapDef, TestRun, REQUIRE_ENV,
};

const FIXTURES: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/../vm/tests/fixtures");
const VMLINUX: &str = "/sys/kernel/btf/vmlinux";
/// `BPF_PSEUDO_BTF_ID`.
const PSEUDO_BTF_ID: u8 = 3;

/// The kernel's FUNC ids by name, when the oracle can run.
fn prerequisites() -> Option<HashMap<String, u32>> {
    if !kernel::oracle_or_skip() {
        return None;
    }
    if !Path::new(VMLINUX).exists() {
        let reason = format!("{VMLINUX} does not exist (a kernel without BTF)");
        if std::env::var(REQUIRE_ENV).is_ok_and(|v| v == "1") {
            panic!("kernel kfunc oracle required but unavailable: {reason}");
        }
        println!("SKIP kernel kfunc oracle: {reason}");
        return None;
    }
    let btf = Btf::from_file(VMLINUX).expect("the kernel's BTF parses");
    let funcs = btf
        .types()
        .iter()
        .enumerate()
        .filter_map(|(id, t)| match t {
            BtfType::Func { name, .. } => Some((name.to_string(), id as u32)),
            _ => None,
        })
        .collect();
    Some(funcs)
}

/// Program `def` as libbpf relocates its kfuncs against the running kernel.
fn as_libbpf_relocates(def: &ProgramDefinition, funcs: &HashMap<String, u32>) -> Vec<u8> {
    let mut insns = def.insns.clone();
    let mut i = 0;
    while i < insns.len() {
        let w = insns[i];
        let (op, src, imm) = (w as u8, ((w >> 12) & 0xf) as u8, (w >> 32) as u32 as usize);
        let with = |w: u64, src: u8, imm: u32| {
            (w & 0xffff_0fff & !0xffff_0000) | (u64::from(src) << 12) | (u64::from(imm) << 32)
        };
        if op == 0x85 && src == PSEUDO_KFUNC_CALL {
            let k = &def.kfuncs[imm];
            insns[i] = match funcs.get(&*k.name) {
                Some(&id) => with(w, PSEUDO_KFUNC_CALL, id),
                None => {
                    assert!(k.weak, "{} is strong: libbpf refuses the object", k.name);
                    with(w, 0, (POISON_CALL_KFUNC_BASE as u32) + k.extern_index)
                }
            };
        } else if op == 0x18 && src == PSEUDO_KFUNC_ADDR {
            let k = &def.kfuncs[imm];
            insns[i] = match funcs.get(&*k.name) {
                Some(&id) => with(w, PSEUDO_BTF_ID, id),
                None => with(w, 0, 0),
            };
            insns[i + 1] &= 0xffff_ffff;
        }
        i += if op == 0x18 { 2 } else { 1 };
    }
    insns.iter().flat_map(|w| w.to_le_bytes()).collect()
}

/// The verdict: `Ok` or the last line of the refusal.
fn kernel_load(
    obj: &Object,
    name: &str,
    funcs: &HashMap<String, u32>,
    kmaps: &[KernelMap],
) -> Result<KernelProg, String> {
    let def = obj.program(name).unwrap();
    let maps: Vec<&KernelMap> = def.maps.iter().map(|&i| &kmaps[i]).collect();
    let bytecode = as_libbpf_relocates(def, funcs);
    load_object_program(name, ProgType::Xdp, 0, &bytecode, &maps, "GPL")
}

fn kernel_maps(obj: &Object) -> Vec<KernelMap> {
    obj.maps()
        .iter()
        .map(|m| {
            assert_eq!(m.map_type, 2, "arrays only");
            KernelMap::create(MapDef {
                map_type: MapType::Array,
                key_size: m.key_size,
                value_size: m.value_size,
                max_entries: m.max_entries,
                map_flags: m.map_flags,
            })
            .unwrap()
        })
        .collect()
}

/// What comparing every program of an object found: programs both load (and run the
/// same), both refuse, and that libbpf refuses before the kernel sees them (a strong kfunc
/// the kernel lacks) as bpfvm refuses them (`UnresolvedKfunc`, EINVAL).
#[derive(Debug, Default, PartialEq, Eq)]
struct Tally {
    loaded: usize,
    refused: usize,
    unresolved: usize,
}

/// Loads and runs every program of fixture `fixture` on both sides (bpfvm with its
/// built-in kfuncs only, as the kernel has none of the fixture's own).
fn compare_object(
    fixture: &str,
    funcs: &HashMap<String, u32>,
    engine: EngineKind,
) -> (Tally, Object, ObjectMaps, Vec<KernelMap>) {
    let bytes = std::fs::read(format!("{FIXTURES}/{fixture}.o")).unwrap();
    let obj = Object::parse_named(fixture, &bytes).unwrap();
    let kmaps = kernel_maps(&obj);
    let smaps = obj.create_maps(1).unwrap();
    let vm = Vm::builder().cpus(1).privilege(Privilege::Root).build();
    let packets = [vec![0xab; 60], vec![0x11; 64], vec![0; 200]];
    let mut tally = Tally::default();
    for def in obj.programs() {
        let name = def.name.as_str();
        let ours = vm.load(obj.vm_program(name, &smaps).unwrap().with_engine(engine));
        let missing_strong = def
            .kfuncs
            .iter()
            .find(|k| !k.weak && !funcs.contains_key(&*k.name));
        if let Some(k) = missing_strong {
            // libbpf: "extern (func ksym) '...': not found in kernel or module BTFs".
            assert!(
                matches!(&ours, Err(e @ PrepareError::UnresolvedKfunc { name, .. }) if **name == *k.name && e.errno() == 22),
                "{name}: {ours:?}"
            );
            tally.unresolved += 1;
            continue;
        }
        let kernel = kernel_load(&obj, name, funcs, &kmaps);
        match (kernel, ours) {
            (Ok(kprog), Ok(sprog)) => {
                assert!(
                    sprog.unverified().is_none(),
                    "{name}: {:?}",
                    sprog.unverified()
                );
                for p in &packets {
                    let k = kprog
                        .test_run_on_cpu(
                            0,
                            &TestRun {
                                data_in: p.clone(),
                                data_out_size: p.len() + 256,
                                ..TestRun::default()
                            },
                        )
                        .unwrap();
                    let s = vm
                        .test_run(
                            &sprog,
                            &VmTestRun {
                                input: Input::packet(p.clone()),
                                repeat: 1,
                                cpu: CpuId(0),
                            },
                        )
                        .unwrap();
                    assert_eq!(u64::from(k.retval), s.retval, "{name}");
                    assert_eq!(k.data_out, s.data_out, "{name}");
                }
                tally.loaded += 1;
            }
            (Err(klog), Err(PrepareError::Verifier { error, .. })) => {
                // Our words are the kernel's last words (for a poisoned call, before
                // the note naming the kfunc, which libbpf adds to the kernel's log).
                let words = error.message.split(": kfunc '").next().unwrap();
                assert!(
                    klog.lines().any(|l| l == words),
                    "{name}: bpfvm says {:?}, the kernel:\n{klog}",
                    error.message
                );
                tally.refused += 1;
            }
            (k, s) => panic!(
                "{name}: the kernel {:?}, bpfvm {:?}",
                k.map(|_| ()),
                s.map(|_| ())
            ),
        }
    }
    (tally, obj, smaps, kmaps)
}

#[test]
fn rcu_sections_and_weak_kfuncs_load_and_run_as_in_the_kernel() {
    let Some(funcs) = prerequisites() else {
        return;
    };
    for k in ["bpf_rcu_read_lock", "bpf_rcu_read_unlock"] {
        assert!(funcs.contains_key(k), "the kernel has {k}");
    }
    assert!(!funcs.contains_key("bpfvm_kfunc_no_kernel_has"));
    for engine in engines() {
        rcu_sections_and_weak_kfuncs_on(&funcs, engine);
    }
}

/// The sandboxed engines of this build: each runs the comparisons with the kernel.
fn engines() -> Vec<EngineKind> {
    EngineKind::available()
        .into_iter()
        .filter(|e| e.is_sandboxed())
        .collect()
}

fn rcu_sections_and_weak_kfuncs_on(funcs: &HashMap<String, u32>, engine: EngineKind) {
    let (tally, _, smaps, kmaps) = compare_object("kfunc_kernel", funcs, engine);
    // rcu_balanced and weak_absent load; rcu_nested, rcu_unmatched, rcu_exit_locked and
    // weak_reached are refused.
    assert_eq!(
        tally,
        Tally {
            loaded: 2,
            refused: 4,
            unresolved: 0
        }
    );
    // The packets rcu_balanced counted.
    let mut ours = [0u8; 8];
    smaps
        .get("hits")
        .unwrap()
        .lookup(&0u32.to_ne_bytes(), &mut ours, 0)
        .unwrap();
    let theirs = kmaps[0].lookup(&0u32.to_ne_bytes(), 0).unwrap();
    assert_eq!(theirs, ours);
    assert_eq!(u64::from_ne_bytes(ours), 3);
}

#[test]
fn kfuncs_no_kernel_has_are_absent_when_weak_and_refused_when_strong() {
    let Some(funcs) = prerequisites() else {
        return;
    };
    for engine in engines() {
        let (tally, ..) = compare_object("kfunc_user", &funcs, engine);
        // probes_weak loads (bpf_ksym_exists is false); calls_weak is refused (the
        // poisoned call); the other eight programs call strong kfuncs no kernel has.
        assert_eq!(
            tally,
            Tally {
                loaded: 1,
                refused: 1,
                unresolved: 8
            },
            "{engine}"
        );
    }
}

#[test]
fn dynptr_kfuncs_load_and_run_as_in_the_kernel() {
    let Some(funcs) = prerequisites() else {
        return;
    };
    for k in [
        "bpf_dynptr_size",
        "bpf_dynptr_is_null",
        "bpf_dynptr_is_rdonly",
        "bpf_dynptr_adjust",
    ] {
        assert!(funcs.contains_key(k), "the kernel has {k}");
    }
    for engine in engines() {
        let (tally, ..) = compare_object("dynptr_kfuncs", &funcs, engine);
        // adjust_and_read loads (same frames out on 3 packets); size_uninit and
        // size_not_stack are refused.
        assert_eq!(
            tally,
            Tally {
                loaded: 1,
                refused: 2,
                unresolved: 0
            },
            "{engine}"
        );
    }
}

#[test]
fn kfunc_arguments_are_refused_in_the_kernels_words() {
    let Some(funcs) = prerequisites() else {
        return;
    };
    assert!(funcs.contains_key("bpf_dynptr_from_xdp"));
    let bytes = std::fs::read(format!("{FIXTURES}/kfunc_args.o")).unwrap();
    let obj = Object::parse_named("kfunc_args", &bytes).unwrap();
    let smaps = obj.create_maps(1).unwrap();
    // bpfvm does not have the kernel's bpf_dynptr_from_xdp: a stand-in of that name lets
    // the verifier check the calls (it is never run here).
    let vm = Vm::builder()
        .cpus(1)
        .privilege(Privilege::Root)
        .kfunc(
            "bpf_dynptr_from_xdp",
            KfuncFlags::NONE,
            |_: &mut HelperContext, _: [u64; 5]| Ok(0),
        )
        .unwrap()
        .build();
    let load = |name: &str| {
        (
            kernel_load(&obj, name, &funcs, &[]),
            vm.load(obj.vm_program(name, &smaps).unwrap()),
        )
    };
    // The kernel loads the right call; bpfvm, which does not model dynptrs, loads it
    // without a verdict, naming the argument.
    let (k, s) = load("dynptr_good");
    assert!(k.is_ok(), "{:?}", k.err());
    let s = s.unwrap();
    let why = s.unverified().expect("no verdict for a dynptr argument");
    assert!(why.contains("bpf_dynptr") && why.contains("arg#2"), "{why}");
    for (name, words) in [
        (
            "dynptr_not_ctx",
            "arg#0 expected pointer to ctx, but got fp",
        ),
        ("dynptr_ptr_flags", "R2 is not a scalar"),
    ] {
        let (k, s) = load(name);
        let klog = k.err().unwrap_or_else(|| panic!("the kernel loads {name}"));
        assert!(klog.lines().any(|l| l == words), "{name}: {klog}");
        match s {
            Err(PrepareError::Verifier { error, .. }) => {
                assert_eq!(error.message, words, "{name}");
                assert_eq!(error.errno, 22, "{name}: EINVAL");
            }
            other => panic!("{name}: {other:?}"),
        }
    }
}
