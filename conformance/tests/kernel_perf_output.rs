//! Checks `bpf_perf_event_output` against the kernel: real `PERF_COUNT_SW_BPF_OUTPUT` events
//! on CPUs 0 and 1 (one page each) in a kernel PERF_EVENT_ARRAY, and bpfvm's perf buffers on
//! the same CPUs. The `ringbuf_logger.o` perf logger (BPF_F_CURRENT_CPU, the Ethernet header
//! appended with BPF_F_CTXLEN) and hand-written XDP programs run with BPF_PROG_TEST_RUN and in
//! bpfvm; return values (every flag and index case), each CPU's samples with their padding,
//! and the lost-samples records after a full buffer must agree.
#![cfg(target_os = "linux")]

use std::sync::Arc;

use bpfvm::loader::Object;
use bpfvm::maps::{Map, PerfRecord};
use bpfvm::{CpuId, Input, Program, ProgramType, TestRun as VmTestRun, Vm};
use bpfvm_conformance::kernel::asm;
use bpfvm_conformance::kernel::consts::{MapType, ProgType};
use bpfvm_conformance::kernel::events::{KernelPerfBuffer, RawPerfRecord};
use bpfvm_conformance::kernel::{self, load_object_program, KernelMap, MapDef, TestRun};

const FIXTURE: &str = concat!(
    env!("CARGO_MANIFEST_DIR"),
    "/../vm/tests/fixtures/ringbuf_logger.o"
);

/// bpfvm's records in the kernel consumer's terms.
fn raw(records: Vec<PerfRecord>) -> Vec<RawPerfRecord> {
    records
        .into_iter()
        .map(|r| match r {
            PerfRecord::Sample(b) => RawPerfRecord::Sample(b),
            PerfRecord::Lost(n) => RawPerfRecord::Lost(n),
        })
        .collect()
}

/// A perf event array on both sides with an event on each of CPUs 0 and 1 (index = CPU).
struct Events {
    kmap: KernelMap,
    kbufs: Vec<KernelPerfBuffer>,
    smap: Arc<Map>,
}

fn events(max_entries: u32, n: u32) -> Events {
    let def = MapDef {
        map_type: MapType::PerfEventArray,
        key_size: 4,
        value_size: 4,
        max_entries,
        map_flags: 0,
    };
    let kmap = KernelMap::create(def).unwrap();
    let smap = Arc::new(bpfvm_conformance::kernel::diff::sim_map(def, n).unwrap());
    let mut kbufs = Vec::new();
    for cpu in 0..2 {
        let b = KernelPerfBuffer::open(cpu, 1).unwrap();
        kmap.update(&cpu.to_ne_bytes(), &b.fd().to_ne_bytes(), 0)
            .unwrap();
        smap.perf_event_open(cpu, CpuId(cpu), 1).unwrap();
        kbufs.push(b);
    }
    Events { kmap, kbufs, smap }
}

impl Events {
    /// Each CPU's records on both sides differ in `what` (printed).
    fn compare(&self, what: &str, mask: impl Fn(&mut Vec<u8>)) -> usize {
        let mut differ = 0;
        for cpu in 0..2u32 {
            let fix = |v: Vec<RawPerfRecord>| {
                v.into_iter()
                    .map(|r| match r {
                        RawPerfRecord::Sample(mut b) => {
                            mask(&mut b);
                            RawPerfRecord::Sample(b)
                        }
                        other => other,
                    })
                    .collect::<Vec<_>>()
            };
            let k = fix(self.kbufs[cpu as usize].read());
            let s = fix(raw(self.smap.perf_read(cpu).unwrap()));
            if k != s {
                differ += 1;
                let first = k.iter().zip(&s).position(|(a, b)| a != b);
                let at = first.unwrap_or(k.len().min(s.len()));
                println!(
                    "DIFFERENCE {what} cpu {cpu}: {} kernel records, {} bpfvm records; record {at}: kernel {:?}, bpfvm {:?}",
                    k.len(),
                    s.len(),
                    k.get(at),
                    s.get(at)
                );
            }
        }
        differ
    }
}

fn run_both(
    kprog: &kernel::KernelProg,
    vm: &Vm,
    prog: &bpfvm::LoadedProgram,
    cpu: u32,
    frame: &[u8],
) -> (u32, u32) {
    let k = kprog
        .test_run_on_cpu(
            cpu,
            &TestRun {
                data_in: frame.to_vec(),
                ..TestRun::default()
            },
        )
        .unwrap()
        .retval;
    let s = vm
        .test_run(
            prog,
            &VmTestRun {
                input: Input::packet(frame.to_vec()),
                repeat: 1,
                cpu: CpuId(cpu),
            },
        )
        .unwrap()
        .retval as u32;
    (k, s)
}

#[test]
fn the_perf_logger_fixture_agrees_with_the_kernel() {
    if !kernel::oracle_or_skip() {
        return;
    }
    let n = kernel::possible_cpus().unwrap();
    let obj = Object::from_file(FIXTURE).unwrap();
    let ev = events(n, n);
    // The program's other maps (lost counters) on both sides.
    let lost_def = MapDef {
        map_type: MapType::PercpuArray,
        key_size: 4,
        value_size: 8,
        max_entries: 1,
        map_flags: 0,
    };
    let klost = KernelMap::create(lost_def).unwrap();
    let slost = Arc::new(bpfvm_conformance::kernel::diff::sim_map(lost_def, n).unwrap());
    let def = obj.program("xdp_perf_logger").unwrap();
    let names: Vec<&str> = def
        .maps
        .iter()
        .map(|&i| obj.maps()[i].name.as_str())
        .collect();
    let kmaps: Vec<&KernelMap> = names
        .iter()
        .map(|&name| {
            if name == "perf_events" {
                &ev.kmap
            } else {
                &klost
            }
        })
        .collect();
    let kprog = load_object_program(
        "xdp_perf_logger",
        ProgType::Xdp,
        0,
        &def.bytecode(),
        &kmaps,
        "GPL",
    )
    .unwrap();
    let smaps: Vec<Arc<Map>> = names
        .iter()
        .map(|&name| {
            if name == "perf_events" {
                ev.smap.clone()
            } else {
                slost.clone()
            }
        })
        .collect();
    let vm = Vm::builder()
        .cpus(n)
        .privilege(bpfvm::Privilege::Root) // as the kernel oracle loads
        .build();
    let me = std::process::id();
    for cpu in 0..n {
        let task = bpfvm::task::Task {
            pid: me,
            tgid: me,
            ..bpfvm::task::Task::for_cpu(cpu)
        };
        vm.set_task(CpuId(cpu), task).unwrap();
    }
    let prog = vm
        .load(Program::from_words(&def.insns, ProgramType::Xdp).with_maps(smaps))
        .unwrap();
    let mut frame: Vec<u8> = (1..=12).collect();
    frame.extend([0x08, 0x00, 0x45, 0, 0, 0, 0, 0, 0, 0, 0, 17, 0, 0]);
    frame.extend([10, 0, 0, 1, 10, 0, 0, 2, 0x12, 0x34, 0x00, 0x35]);
    frame.extend([0u8; 8]);
    let mut differ = 0;
    for i in 0..6u32 {
        let (k, s) = run_both(&kprog, &vm, &prog, i % 2, &frame);
        if k != s {
            differ += 1;
            println!("DIFFERENCE run {i}: kernel {k}, bpfvm {s}");
        }
    }
    // The event's ts (bytes 8..16) is the kernel's clock.
    differ += ev.compare("perf logger", |b| b[8..16].fill(0));
    assert_eq!(differ, 0);
}

/// `*(u64 *)(r10 - 8) = 0x0807060504030201; r0 = bpf_perf_event_output(ctx, map, flags,
/// r10 - 8, size)`.
fn output(flags: u64, size: i32) -> Vec<u8> {
    asm::image(&[
        &asm::ld_imm64(0, 0x0807_0605_0403_0201),
        &[asm::stx_dw(10, 0, -8)],
        &asm::ld_map(2, 0),
        &asm::ld_imm64(3, flags),
        &[
            asm::mov64_reg(4, 10),
            asm::add64_imm(4, -8),
            asm::mov64_imm(5, size),
            asm::call(25),
            asm::exit(),
        ],
    ])
}

#[test]
fn return_values_samples_and_losses_agree_with_the_kernel() {
    if !kernel::oracle_or_skip() {
        return;
    }
    let n = kernel::possible_cpus().unwrap();
    let ev = events(3, n);
    let vm = Vm::builder()
        .cpus(n)
        .privilege(bpfvm::Privilege::Root) // as the kernel oracle loads
        .build();
    const CUR: u64 = 0xffff_ffff;
    let packet: Vec<u8> = (100..160).collect();
    let cases: Vec<(&str, u64, i32, u32)> = vec![
        ("current cpu", CUR, 8, 0),
        ("current cpu, 3 bytes", CUR, 3, 1),
        ("current cpu, 0 bytes", CUR, 0, 0),
        ("index 1 from cpu 1", 1, 5, 1),
        ("index 1 from cpu 0", 1, 8, 0),
        ("index 2: no event", 2, 8, 0),
        ("index 3: past max_entries", 3, 8, 0),
        ("16 packet bytes", CUR | 16 << 32, 4, 0),
        ("the whole packet", CUR | 60 << 32, 8, 1),
        ("more than the packet", CUR | 61 << 32, 8, 1),
        ("a bit above the masks", CUR | 1 << 52, 8, 0),
    ];
    let mut differ = 0;
    for (what, flags, size, cpu) in cases {
        let code = output(flags, size);
        let kprog = load_object_program(what, ProgType::Xdp, 0, &code, &[&ev.kmap], "GPL").unwrap();
        let prog = vm
            .load(Program::new(code, ProgramType::Xdp).with_map(ev.smap.clone()))
            .unwrap();
        let (k, s) = run_both(&kprog, &vm, &prog, cpu, &packet);
        if k != s {
            differ += 1;
            println!("DIFFERENCE {what}: kernel {}, bpfvm {}", k as i32, s as i32);
        }
        differ += ev.compare(what, |_| ());
    }
    // Fill CPU 0's page: 8-byte samples take 24 bytes, 170 fit; then 5 are lost, and the
    // next sample after a read comes behind a lost-samples record.
    let code = output(CUR, 8);
    let kprog = load_object_program("fill", ProgType::Xdp, 0, &code, &[&ev.kmap], "GPL").unwrap();
    let prog = vm
        .load(Program::new(code, ProgramType::Xdp).with_map(ev.smap.clone()))
        .unwrap();
    for i in 0..175 {
        let (k, s) = run_both(&kprog, &vm, &prog, 0, &packet);
        if k != s {
            differ += 1;
            println!(
                "DIFFERENCE fill {i}: kernel {}, bpfvm {}",
                k as i32, s as i32
            );
        }
    }
    differ += ev.compare("full buffer", |_| ());
    run_both(&kprog, &vm, &prog, 0, &packet);
    differ += ev.compare("after the loss", |_| ());
    assert_eq!(differ, 0);
}

/// Packet bytes appended from a multi-buffer XDP packet (6,000 bytes: a 3,520-byte linear
/// part and two fragments): `BPF_F_CTXLEN` reaches into the fragments (the kernel's
/// `bpf_xdp_copy`), up to the whole length with fragments, and `-EFAULT` past it.
#[test]
fn packet_bytes_come_from_the_fragments_too() {
    if !kernel::oracle_or_skip() {
        return;
    }
    let n = kernel::possible_cpus().unwrap();
    let ev = events(3, n);
    let vm = Vm::builder()
        .cpus(n)
        .privilege(bpfvm::Privilege::Root)
        .build();
    const CUR: u64 = 0xffff_ffff;
    let packet: Vec<u8> = (0..6000).map(|i| (i * 13 % 251) as u8).collect();
    let cases: [(&str, u64); 5] = [
        ("16 bytes", CUR | 16 << 32),
        ("past the linear part", CUR | 3600 << 32),
        ("more than a page: lost", CUR | 4090 << 32),
        ("the whole packet: lost", CUR | 6000 << 32),
        ("more than the packet", CUR | 6001 << 32),
    ];
    let mut differ = 0;
    let mut returned = Vec::new();
    for (what, flags) in cases {
        let code = output(flags, 8);
        let kprog = load_object_program(what, ProgType::Xdp, 0, &code, &[&ev.kmap], "GPL").unwrap();
        let prog = vm
            .load(Program::new(code, ProgramType::Xdp).with_map(ev.smap.clone()))
            .unwrap();
        let (k, s) = run_both(&kprog, &vm, &prog, 0, &packet);
        returned.push(k as i32);
        if k != s {
            differ += 1;
            println!("DIFFERENCE {what}: kernel {}, bpfvm {}", k as i32, s as i32);
        }
        differ += ev.compare(what, |_| ());
    }
    // The cases reach a sample, a full buffer (-ENOSPC) and -EFAULT.
    assert_eq!(returned, [0, 0, -28, -28, -14]);
    assert_eq!(differ, 0);
}
