//! Checks `bpf_spin_lock` against the kernel, on maps whose value type (loaded as BTF) holds
//! a `struct bpf_spin_lock`: an XDP program incrementing a counter under the lock runs 1000
//! times on CPU 0 and on CPU 1 in both, and the counters, return values and host reads
//! (`BPF_F_LOCK` and plain, with the lock word reading 0) agree; host `BPF_F_LOCK` updates
//! agree; the same program run at once on every CPU (kernel test runs on threads pinned to
//! each CPU, bpfvm runs on a thread per CPU) loses no increment on either side; and
//! programs the kernel's verifier refuses for their lock use (exiting with the
//! lock held, a lock in a map without one) are refused by bpfvm's verifier in the kernel's
//! words, and with the structural checks only fail at run time. The VMs load as root, as
//! the kernel side does (a CAP_BPF loader may not point at a lock that is not at offset 0).
#![cfg(target_os = "linux")]

use std::sync::Arc;

use bpfvm::maps::flags::BPF_F_LOCK;
use bpfvm::maps::{Map, MapSpec};
use bpfvm::{
    CpuId, Input, Privilege, Program, ProgramType, RunError, TestRun as VmTestRun, VerifierMode, Vm,
};
use bpfvm_conformance::kernel::asm::{self, Insn};
use bpfvm_conformance::kernel::btf::{BtfBuilder, KernelBtf};
use bpfvm_conformance::kernel::consts::{MapType, ProgType};
use bpfvm_conformance::kernel::diff::HostMap;
use bpfvm_conformance::kernel::{self, load_object_program, KernelMap, MapDef, TestRun};

/// Offset of the lock in the 16-byte value `{ u64 counter; struct bpf_spin_lock lock; u32 pad; }`.
const LOCK_OFF: u32 = 8;

/// BTF with `u32` (id 1), `u64` (2), `struct bpf_spin_lock` (3) and the value (4).
fn btf() -> BtfBuilder {
    let mut b = BtfBuilder::new();
    let u32_id = b.int("unsigned int", 4, false);
    let u64_id = b.int("long long unsigned int", 8, false);
    let lock = b.structure("bpf_spin_lock", 4, &[("val", u32_id, 0)]);
    b.structure(
        "value",
        16,
        &[
            ("counter", u64_id, 0),
            ("lock", lock, LOCK_OFF),
            ("pad", u32_id, 12),
        ],
    );
    b
}

fn maps(map_type: MapType) -> (KernelMap, Arc<Map>, KernelBtf) {
    let n = kernel::possible_cpus().unwrap();
    let def = MapDef {
        map_type,
        key_size: 4,
        value_size: 16,
        max_entries: 4,
        map_flags: 0,
    };
    let kbtf = KernelBtf::load(&btf()).unwrap();
    let kmap = KernelMap::create_with_btf(def, &kbtf, 1, 4).unwrap();
    let spec = MapSpec::new(map_type, 4, 16, 4);
    let smap = Arc::new(Map::create_with_spin_lock(spec, n, LOCK_OFF).unwrap());
    (kmap, smap, kbtf)
}

/// `v = lookup(map0, &0); if (!v) return 0; lock(&v->lock); v->counter++; r = v->counter;
/// unlock(&v->lock); return r` — without the unlock when `unlock` is false.
fn increment(unlock: bool) -> Vec<u8> {
    let mut v: Vec<Insn> = vec![asm::st_w(10, -4, 0)];
    v.extend(asm::ld_map(1, 0));
    v.extend([
        asm::mov64_reg(2, 10),
        asm::add64_imm(2, -4),
        asm::call(1),
        asm::jne_imm(0, 0, 1),
        asm::exit(),
        asm::mov64_reg(6, 0),
        asm::mov64_reg(1, 6),
        asm::add64_imm(1, LOCK_OFF as i32),
        asm::call(93),
        asm::ldx_dw(7, 6, 0),
        asm::add64_imm(7, 1),
        asm::stx_dw(6, 7, 0),
    ]);
    if unlock {
        v.extend([
            asm::mov64_reg(1, 6),
            asm::add64_imm(1, LOCK_OFF as i32),
            asm::call(94),
        ]);
    }
    v.extend([asm::mov64_reg(0, 7), asm::exit()]);
    asm::image(&[&v])
}

fn value(counter: u64) -> Vec<u8> {
    let mut v = counter.to_ne_bytes().to_vec();
    v.extend([0xaa; 8]); // the lock word and the pad: the lock word is never copied
    v
}

#[test]
fn locked_increments_and_host_reads_agree_with_the_kernel() {
    if !kernel::oracle_or_skip() {
        return;
    }
    let n = kernel::possible_cpus().unwrap();
    let mut differ = 0;
    for map_type in [MapType::Array, MapType::Hash] {
        let (kmap, smap, _btf) = maps(map_type);
        let key = 0u32.to_ne_bytes();
        for m in [&kmap as &dyn HostMap, &*smap] {
            m.update(&key, &value(5), 0).unwrap();
        }
        let code = increment(true);
        let kprog = load_object_program("inc", ProgType::Xdp, 0, &code, &[&kmap], "GPL").unwrap();
        let vm = Vm::builder().cpus(n).privilege(Privilege::Root).build();
        let prog = vm
            .load(Program::new(code, ProgramType::Xdp).with_map(smap.clone()))
            .unwrap();
        for cpu in 0..2 {
            let k = kprog
                .test_run_on_cpu(
                    cpu,
                    &TestRun {
                        data_in: vec![0; 64],
                        repeat: 1000,
                        ..TestRun::default()
                    },
                )
                .unwrap()
                .retval;
            let run = VmTestRun {
                input: Input::packet(vec![0; 64]),
                repeat: 1000,
                cpu: CpuId(cpu),
            };
            let s = vm.test_run(&prog, &run).unwrap().retval as u32;
            if k != s {
                differ += 1;
                println!("DIFFERENCE {map_type:?} cpu {cpu}: kernel {k}, bpfvm {s}");
            }
        }
        for flags in [0, BPF_F_LOCK] {
            let (k, s) = (
                kmap.lookup(&key, flags),
                HostMap::lookup(&*smap, &key, flags),
            );
            if k != s {
                differ += 1;
                println!("DIFFERENCE {map_type:?} lookup flags {flags}: kernel {k:?}, bpfvm {s:?}");
            }
            assert_eq!(k.unwrap()[..8], 2005u64.to_ne_bytes());
        }
        // Host updates under the lock, and BPF_F_LOCK on a key that does not exist.
        for (k_, flags) in [
            (0u32, BPF_F_LOCK),
            (1, BPF_F_LOCK),
            (1, 0),
            (1, BPF_F_LOCK | 2),
        ] {
            let key = k_.to_ne_bytes();
            let (k, s) = (
                kmap.update(&key, &value(9), flags),
                HostMap::update(&*smap, &key, &value(9), flags),
            );
            if k != s {
                differ += 1;
                println!(
                    "DIFFERENCE {map_type:?} update {k_} flags {flags}: kernel {k:?}, bpfvm {s:?}"
                );
            }
            let (k, s) = (
                kmap.lookup(&key, BPF_F_LOCK),
                HostMap::lookup(&*smap, &key, BPF_F_LOCK),
            );
            if k != s {
                differ += 1;
                println!("DIFFERENCE {map_type:?} lookup {k_}: kernel {k:?}, bpfvm {s:?}");
            }
        }
    }
    assert_eq!(differ, 0);
}

#[test]
fn concurrent_locked_increments_are_exact_on_both_sides() {
    if !kernel::oracle_or_skip() {
        return;
    }
    const REPEAT: u32 = 20_000;
    let n = kernel::possible_cpus().unwrap();
    let (kmap, smap, _btf) = maps(MapType::Array);
    let key = 0u32.to_ne_bytes();
    let code = increment(true);
    let kprog = load_object_program("inc", ProgType::Xdp, 0, &code, &[&kmap], "GPL").unwrap();
    let vm = Vm::builder().cpus(n).privilege(Privilege::Root).build();
    let prog = vm
        .load(Program::new(code, ProgramType::Xdp).with_map(smap.clone()))
        .unwrap();
    // Every CPU's last return value; the largest is the final counter on both sides.
    let (k_last, s_last): (Vec<u32>, Vec<u32>) = std::thread::scope(|s| {
        let handles: Vec<_> = (0..n)
            .map(|cpu| {
                let (kprog, vm, prog) = (&kprog, &vm, &prog);
                s.spawn(move || {
                    let run = TestRun {
                        data_in: vec![0; 64],
                        repeat: REPEAT,
                        ..TestRun::default()
                    };
                    let k = kprog.test_run_on_cpu(cpu, &run).unwrap().retval;
                    let run = VmTestRun {
                        input: Input::packet(vec![0; 64]),
                        repeat: REPEAT,
                        cpu: CpuId(cpu),
                    };
                    let s = vm.test_run(prog, &run).unwrap().retval as u32;
                    (k, s)
                })
            })
            .collect();
        handles.into_iter().map(|h| h.join().unwrap()).unzip()
    });
    let total = u64::from(n * REPEAT);
    for m in [&kmap as &dyn HostMap, &*smap] {
        let v = m.lookup(&key, BPF_F_LOCK).unwrap();
        assert_eq!(v[..8], total.to_ne_bytes(), "no increment lost");
    }
    assert_eq!(k_last.iter().max().map(|&m| u64::from(m)), Some(total));
    assert_eq!(s_last.iter().max().map(|&m| u64::from(m)), Some(total));
}

#[test]
fn lock_misuse_the_verifier_refuses_fails_in_bpfvm() {
    if !kernel::oracle_or_skip() {
        return;
    }
    let n = kernel::possible_cpus().unwrap();
    // Exiting with the lock held.
    let (kmap, smap, _btf) = maps(MapType::Array);
    let code = increment(false);
    let k = load_object_program("held", ProgType::Xdp, 0, &code, &[&kmap], "GPL");
    assert!(k.is_err(), "the kernel's verifier refuses it");
    // bpfvm's verifier refuses it at load in the kernel's words...
    let kernel_mode = Vm::builder().cpus(n).privilege(Privilege::Root).build();
    let refused = kernel_mode
        .load(Program::new(code.clone(), ProgramType::Xdp).with_map(smap.clone()))
        .unwrap_err();
    assert!(
        refused.to_string().contains(
            "BPF_EXIT instruction in main prog cannot be used inside bpf_spin_lock-ed region"
        ),
        "{refused}"
    );
    // ...and with the structural checks only, the run fails.
    let vm = Vm::builder()
        .cpus(n)
        .verifier(VerifierMode::Structural)
        .build();
    let prog = vm
        .load(Program::new(code, ProgramType::Xdp).with_map(smap.clone()))
        .unwrap();
    let e = vm
        .run(&prog, CpuId(0), &Input::packet(vec![0; 64]))
        .unwrap_err();
    assert!(matches!(e, RunError::HeldAtExit { .. }), "{e}");
    // A lock in a map whose value has none.
    let def = MapDef {
        map_type: MapType::Array,
        key_size: 4,
        value_size: 16,
        max_entries: 4,
        map_flags: 0,
    };
    let plain_k = KernelMap::create(def).unwrap();
    let plain_s = Arc::new(Map::create(MapSpec::new(MapType::Array, 4, 16, 4), n).unwrap());
    let code = increment(true);
    let k = load_object_program("nolock", ProgType::Xdp, 0, &code, &[&plain_k], "GPL");
    assert!(k.is_err(), "the kernel's verifier refuses it");
    let refused = kernel_mode
        .load(Program::new(code.clone(), ProgramType::Xdp).with_map(plain_s.clone()))
        .unwrap_err();
    assert!(
        refused
            .to_string()
            .contains("has to have BTF in order to use bpf_spin_lock"),
        "{refused}"
    );
    let prog = vm
        .load(Program::new(code, ProgramType::Xdp).with_map(plain_s))
        .unwrap();
    let e = vm
        .run(&prog, CpuId(0), &Input::packet(vec![0; 64]))
        .unwrap_err();
    assert!(e.to_string().contains("not the bpf_spin_lock"), "{e}");
}
