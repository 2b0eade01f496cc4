//! Checks program-side map helpers against the kernel: the same hand-assembled socket
//! filter calls `bpf_map_update_elem` (helper 2) with each interesting flag value, then
//! `bpf_map_lookup_percpu_elem` (195) for CPUs in and out of range, on CPU 0 and CPU 1, in
//! the kernel and in bpfvm; the return values and the map contents afterwards must agree.
#![cfg(target_os = "linux")]

use std::sync::Arc;

use bpfvm::{CpuId, Input, Program, ProgramType, TestRun as VmTestRun, Vm};
use bpfvm_conformance::kernel::asm::{self, Insn};
use bpfvm_conformance::kernel::consts::{elem, ProgType, MAP_TYPES};
use bpfvm_conformance::kernel::diff::{self, HostMap};
use bpfvm_conformance::kernel::{self, load_object_program, KernelMap, MapDef, TestRun};

/// `r0 = bpf_map_update_elem(map0, &key, &(cpu + 100), flags)`.
fn update_prog(key: u32, flags: u64) -> Vec<u8> {
    let pre: [Insn; 6] = [
        asm::call(8),
        asm::add64_imm(0, 100),
        asm::stx_dw(10, 0, -16),
        asm::st_w(10, -4, key as i32),
        asm::mov64_reg(2, 10),
        asm::add64_imm(2, -4),
    ];
    asm::image(&[
        &pre,
        &asm::ld_map(1, 0),
        &[asm::mov64_reg(3, 10), asm::add64_imm(3, -16)],
        &asm::ld_imm64(4, flags),
        &[asm::call(2), asm::exit()],
    ])
}

/// `r0 = *bpf_map_lookup_percpu_elem(map0, &key, cpu)` (low 32 bits), or 0xdead if NULL.
fn lookup_percpu_prog(key: u32, cpu: u32) -> Vec<u8> {
    asm::image(&[
        &[
            asm::st_w(10, -4, key as i32),
            asm::mov64_reg(2, 10),
            asm::add64_imm(2, -4),
        ],
        &asm::ld_map(1, 0),
        &[
            asm::mov64_imm(3, cpu as i32),
            asm::call(195),
            asm::jeq_imm(0, 0, 2),
            asm::ldx_w(0, 0, 0),
            asm::exit(),
            asm::mov64_imm(0, 0xdead),
            asm::exit(),
        ],
    ])
}

fn run_both(
    code: &[u8],
    kmap: &KernelMap,
    smap: &Arc<bpfvm::maps::Map>,
    vm: &Vm,
    cpu: u32,
) -> Result<(u32, u32), String> {
    let kprog = load_object_program("helper", ProgType::SocketFilter, 0, code, &[kmap], "GPL")?;
    let input = vec![0u8; 20];
    let k = kprog
        .test_run_on_cpu(
            cpu,
            &TestRun {
                data_in: input.clone(),
                ..TestRun::default()
            },
        )
        .map_err(|e| e.to_string())?;
    let prog = vm
        .load(Program::new(code.to_vec(), ProgramType::SocketFilter).with_map(smap.clone()))
        .map_err(|e| e.to_string())?;
    let s = vm
        .test_run(
            &prog,
            &VmTestRun {
                input: Input::packet(input),
                repeat: 1,
                cpu: CpuId(cpu),
            },
        )
        .map_err(|e| e.to_string())?;
    Ok((k.retval, s.retval as u32))
}

/// What the runs compared so far: how many, how many differed, the kernel's return values.
#[derive(Default)]
struct Tally {
    compared: usize,
    differ: usize,
    seen: std::collections::BTreeSet<i32>,
}

impl Tally {
    /// Records one [`run_both`] result; a difference is printed with `what` the run was.
    fn record(&mut self, r: Result<(u32, u32), String>, what: impl FnOnce() -> String) {
        self.compared += 1;
        if let Ok((k, _)) = r {
            self.seen.insert(k as i32);
        }
        match r {
            Ok((k, s)) if k == s => {}
            other => {
                self.differ += 1;
                println!("DIFFERENCE {}: {other:?}", what());
            }
        }
    }
}

#[test]
fn program_side_updates_and_percpu_lookups_agree_with_the_kernel() {
    if !kernel::oracle_or_skip() {
        return;
    }
    let n = kernel::possible_cpus().unwrap();
    // The kernel loads the programs as root: the same verdict here.
    let vm = Vm::builder()
        .cpus(n)
        .privilege(bpfvm::Privilege::Root)
        .build();
    let flags = [
        elem::EXIST,
        elem::NOEXIST,
        elem::ANY,
        3,
        elem::LOCK,
        elem::ALL_CPUS,
        elem::cpu(0),
        elem::cpu(1),
        1 << 32,
    ];
    let mut tally = Tally::default();
    for ty in MAP_TYPES {
        let def = MapDef {
            map_type: ty,
            key_size: 4,
            value_size: 8,
            max_entries: 4,
            map_flags: if ty.is_array() { 0 } else { 64 },
        };
        let kmap = KernelMap::create(def).unwrap();
        let smap = Arc::new(diff::sim_map(def, n).unwrap());
        for &f in &flags {
            for key in [1u32, 2, 7] {
                for cpu in 0..n {
                    let r = run_both(&update_prog(key, f), &kmap, &smap, &vm, cpu);
                    tally.record(r, || {
                        format!("{ty:?} update key {key} flags {f:#x} on CPU {cpu}")
                    });
                }
            }
        }
        if ty.is_percpu() {
            for key in [1u32, 2, 3] {
                for target in [0, n - 1, n, 1000] {
                    let r = run_both(&lookup_percpu_prog(key, target), &kmap, &smap, &vm, 0);
                    tally.record(r, || format!("{ty:?} lookup_percpu key {key} cpu {target}"));
                }
            }
        }
        let (kd, sd) = (
            diff::dump(&kmap, 100),
            diff::dump(&*smap as &dyn HostMap, 100),
        );
        if kd != sd {
            tally.differ += 1;
            println!("DIFFERENCE {ty:?} contents: kernel {kd:?} bpfvm {sd:?}");
        }
    }
    let Tally {
        compared,
        differ,
        seen,
    } = tally;
    println!("{compared} program runs compared, {differ} differences; results seen {seen:?}");
    assert_eq!(differ, 0);
    // The runs reach success, EEXIST, ENOENT, EINVAL, E2BIG and NULL percpu lookups.
    for r in [0, -17, -2, -22, -7, 0xdead] {
        assert!(seen.contains(&r), "no run returned {r}");
    }
}
