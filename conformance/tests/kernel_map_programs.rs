//! Checks the program side of QUEUE, STACK and LPM_TRIE maps against the kernel: one XDP
//! program per map kind reads an operation from its packet (push/pop/peek, or LPM
//! lookup/update/delete with flags) and runs it; random operation sequences run with
//! BPF_PROG_TEST_RUN and in bpfvm on CPUs 0 and 1 must give the same return values, and the
//! maps the same contents afterwards (host pops, `get_next_key` walks).
#![cfg(target_os = "linux")]

use std::sync::Arc;

use bpfvm::maps::Map;
use bpfvm::{CpuId, Input, Program, ProgramType, TestRun as VmTestRun, Vm};
use bpfvm_conformance::kernel::asm::{self, Insn};
use bpfvm_conformance::kernel::consts::{create, MapType, ProgType};
use bpfvm_conformance::kernel::diff::{self, HostMap, SplitMix64};
use bpfvm_conformance::kernel::{self, load_object_program, KernelMap, MapDef, TestRun};

/// The packet prologue: `r2 = data`, bail out with 0xbad unless `len` bytes are there
/// (the bail-out is at instruction `bad`).
fn prologue(len: i32, bad: i16) -> Vec<Insn> {
    vec![
        asm::mov64_reg(6, 1),
        asm::ldx_w(2, 6, 0),
        asm::ldx_w(3, 6, 4),
        asm::mov64_reg(4, 2),
        asm::add64_imm(4, len),
        asm::jgt_reg(4, 3, bad - 6),
    ]
}

/// Packet `[op, flags, 0, 0, value: u32]`: op 0 pushes `value` with `flags`, 1 pops, 2
/// peeks; pop/peek return the value read, or the (negative) errno.
fn queue_program() -> Vec<u8> {
    let mut v = prologue(8, 29);
    v.extend([
        asm::ldx_w(5, 2, 4),
        asm::stx_w(10, 5, -8),
        asm::ldx_b(7, 2, 0),
        asm::ldx_b(8, 2, 1),
        asm::jeq_imm(7, 0, 11), // -> 22 push
    ]);
    v.extend(asm::ld_map(1, 0));
    v.extend([
        asm::mov64_reg(2, 10),
        asm::add64_imm(2, -8),
        asm::jeq_imm(7, 1, 2), // -> 18 pop
        asm::call(89),
        asm::ja(1),
        asm::call(88),
        asm::jne_imm(0, 0, 1), // -> 21
        asm::ldx_w(0, 10, -8),
        asm::exit(),
    ]);
    v.extend(asm::ld_map(1, 0)); // 22 push
    v.extend([
        asm::mov64_reg(2, 10),
        asm::add64_imm(2, -8),
        asm::mov64_reg(3, 8),
        asm::call(87),
        asm::exit(),
        asm::mov64_imm(0, 0xbad), // 29
        asm::exit(),
    ]);
    asm::image(&[&v])
}

/// Packet `[op, flags, 0, 0, prefixlen: u32, addr: 4 bytes, value: u32]`: op 0 looks the
/// key up (returns the value or 0xdead), 1 updates with `flags`, 2 deletes (both return the
/// helper's result).
fn lpm_program() -> Vec<u8> {
    let mut v = prologue(16, 41);
    v.extend([
        asm::ldx_w(5, 2, 4),
        asm::stx_w(10, 5, -8),
        asm::ldx_w(5, 2, 8),
        asm::stx_w(10, 5, -4),
        asm::ldx_w(5, 2, 12),
        asm::stx_w(10, 5, -12),
        asm::ldx_b(7, 2, 0),
        asm::ldx_b(8, 2, 1),
        asm::jeq_imm(7, 1, 11), // -> 26 update
        asm::jeq_imm(7, 2, 19), // -> 35 delete
    ]);
    v.extend(asm::ld_map(1, 0));
    v.extend([
        asm::mov64_reg(2, 10),
        asm::add64_imm(2, -8),
        asm::call(1),
        asm::jeq_imm(0, 0, 2),
        asm::ldx_w(0, 0, 0),
        asm::exit(),
        asm::mov64_imm(0, 0xdead),
        asm::exit(),
    ]);
    v.extend(asm::ld_map(1, 0)); // 26 update
    v.extend([
        asm::mov64_reg(2, 10),
        asm::add64_imm(2, -8),
        asm::mov64_reg(3, 10),
        asm::add64_imm(3, -12),
        asm::mov64_reg(4, 8),
        asm::call(2),
        asm::exit(),
    ]);
    v.extend(asm::ld_map(1, 0)); // 35 delete
    v.extend([
        asm::mov64_reg(2, 10),
        asm::add64_imm(2, -8),
        asm::call(3),
        asm::exit(),
        asm::mov64_imm(0, 0xbad), // 41
        asm::exit(),
    ]);
    asm::image(&[&v])
}

/// A map and one program on both sides.
struct Both {
    kmap: KernelMap,
    smap: Arc<Map>,
    kprog: kernel::KernelProg,
    vm: Vm,
    prog: bpfvm::LoadedProgram,
}

fn both(def: MapDef, code: Vec<u8>) -> Both {
    let n = kernel::possible_cpus().unwrap();
    let kmap = KernelMap::create(def).unwrap();
    let smap = Arc::new(diff::sim_map(def, n).unwrap());
    let kprog = load_object_program("ops", ProgType::Xdp, 0, &code, &[&kmap], "GPL").unwrap();
    let vm = Vm::builder().cpus(n).build();
    let prog = vm
        .load(Program::new(code, ProgramType::Xdp).with_map(smap.clone()))
        .unwrap();
    Both {
        kmap,
        smap,
        kprog,
        vm,
        prog,
    }
}

impl Both {
    fn run(&self, cpu: u32, packet: &[u8]) -> (u32, u32) {
        let mut data = packet.to_vec();
        data.resize(64, 0);
        let k = self
            .kprog
            .test_run_on_cpu(
                cpu,
                &TestRun {
                    data_in: data.clone(),
                    ..TestRun::default()
                },
            )
            .unwrap()
            .retval;
        let s = self
            .vm
            .test_run(
                &self.prog,
                &VmTestRun {
                    input: Input::packet(data),
                    repeat: 1,
                    cpu: CpuId(cpu),
                },
            )
            .unwrap()
            .retval as u32;
        (k, s)
    }
}

#[test]
fn queue_and_stack_programs_agree_with_the_kernel() {
    if !kernel::oracle_or_skip() {
        return;
    }
    let mut differ = 0;
    for (t, seed) in [(MapType::Queue, 1u64), (MapType::Stack, 2)] {
        let def = MapDef {
            map_type: t,
            key_size: 0,
            value_size: 4,
            max_entries: 5,
            map_flags: 0,
        };
        let b = both(def, queue_program());
        let mut seen = std::collections::BTreeSet::new();
        let mut r = SplitMix64::new(seed);
        for step in 0..600u32 {
            let op = *r.pick(&[0u8, 0, 1, 2]);
            let flags = *r.pick(&[0u8, 0, 2, 1, 3]);
            let mut p = vec![op, flags, 0, 0];
            p.extend(step.to_ne_bytes());
            let (k, s) = b.run(step % 2, &p);
            seen.insert(k as i32);
            if k != s {
                differ += 1;
                println!("DIFFERENCE {t:?} step {step} op {op} flags {flags}: kernel {k:#x}, bpfvm {s:#x}");
            }
        }
        // The sequence reached the interesting answers: 0, E2BIG, EINVAL, ENOENT, values.
        for errno in [0, -7, -22, -2] {
            assert!(seen.contains(&errno), "{t:?}: never saw {errno} ({seen:?})");
        }
        assert!(seen.len() > 20, "{t:?}: values popped");
        let drain = |m: &dyn HostMap| {
            std::iter::from_fn(|| m.lookup_and_delete(&[], 0).ok()).collect::<Vec<_>>()
        };
        let (kv, sv) = (drain(&b.kmap), drain(&*b.smap));
        if kv != sv {
            differ += 1;
            println!("DIFFERENCE {t:?} contents: kernel {kv:?}, bpfvm {sv:?}");
        }
    }
    assert_eq!(differ, 0);
}

#[test]
fn lpm_programs_agree_with_the_kernel() {
    if !kernel::oracle_or_skip() {
        return;
    }
    let def = MapDef {
        map_type: MapType::LpmTrie,
        key_size: 8,
        value_size: 4,
        max_entries: 12,
        map_flags: create::NO_PREALLOC,
    };
    let b = both(def, lpm_program());
    let mut seen = std::collections::BTreeSet::new();
    let mut r = SplitMix64::new(7);
    let mut differ = 0;
    for step in 0..3000u32 {
        let op = *r.pick(&[0u8, 0, 0, 1, 1, 2]);
        let flags = *r.pick(&[0u8, 0, 1, 2, 3]);
        let len = if r.below(12) == 0 {
            33
        } else {
            r.below(33) as u32
        };
        let addr: Vec<u8> = (0..4)
            .map(|_| *r.pick(&[0u8, 10, 0x80, 0xff, 192]))
            .collect();
        let mut p = vec![op, flags, 0, 0];
        p.extend(len.to_ne_bytes());
        p.extend(&addr);
        p.extend(step.to_ne_bytes());
        let (k, s) = b.run(step % 2, &p);
        seen.insert(k as i32);
        if k != s {
            differ += 1;
            if differ < 10 {
                println!("DIFFERENCE step {step} op {op} flags {flags} /{len} {addr:?}: kernel {k:#x}, bpfvm {s:#x}");
            }
        }
    }
    // 0, ENOENT, EEXIST, EINVAL, ENOSPC, "no match" and matched values all occurred.
    for code in [0, -2, -17, -22, -28, 0xdead] {
        assert!(seen.contains(&code), "never saw {code} ({seen:?})");
    }
    let (kw, sw) = (keys_and_values(&b.kmap), keys_and_values(&*b.smap));
    if kw != sw {
        differ += 1;
        println!("DIFFERENCE contents: kernel {kw:?}, bpfvm {sw:?}");
    }
    assert_eq!(differ, 0);
}

/// Every (key, value) of a map in `get_next_key` order (at most 100).
fn keys_and_values(m: &dyn HostMap) -> Vec<(Vec<u8>, Vec<u8>)> {
    let mut out: Vec<(Vec<u8>, Vec<u8>)> = Vec::new();
    while out.len() < 100 {
        let Ok(k) = m.get_next_key(out.last().map(|(k, _)| k.as_slice())) else {
            break;
        };
        let v = m.lookup(&k, 0).unwrap_or_default();
        out.push((k, v));
    }
    out
}
