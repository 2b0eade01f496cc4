//! Checks ring buffer programs against the kernel: the `ringbuf_logger.o` fixture runs with
//! BPF_PROG_TEST_RUN and in bpfvm on CPUs 0 and 1 for the same frames, and the records a
//! consumer reads (in order, the kernel's clock field masked), the ring positions, the return
//! values and the program's lost-record counts must agree, also when the ring fills up; then
//! hand-written XDP programs compare the helpers' answers for bad flags, oversized records,
//! discards and `bpf_ringbuf_query`.
#![cfg(target_os = "linux")]

use std::sync::Arc;

use bpfvm::loader::Object;
use bpfvm::maps::Map;
use bpfvm::task::Task;
use bpfvm::{CpuId, Input, Program, ProgramType, TestRun as VmTestRun, Vm};
use bpfvm_conformance::kernel::asm::{self, Insn};
use bpfvm_conformance::kernel::consts::{MapType, ProgType};
use bpfvm_conformance::kernel::events::KernelRingbuf;
use bpfvm_conformance::kernel::{
    self, create_object_maps, load_object_program, KernelMap, KernelProg, MapDef, ObjectMap,
    TestRun,
};

const FIXTURE: &str = concat!(
    env!("CARGO_MANIFEST_DIR"),
    "/../vm/tests/fixtures/ringbuf_logger.o"
);

fn frame(proto: u8, sport: u16, dport: u16) -> Vec<u8> {
    let mut f: Vec<u8> = (1..=12).collect();
    f.extend_from_slice(&0x0800u16.to_be_bytes());
    let mut ip = vec![0u8; 20];
    ip[0] = 0x45;
    ip[9] = proto;
    ip[12..16].copy_from_slice(&[10, 0, 0, 1]);
    ip[16..20].copy_from_slice(&[10, 0, 0, 2]);
    f.extend(ip);
    f.extend_from_slice(&sport.to_be_bytes());
    f.extend_from_slice(&dport.to_be_bytes());
    f.extend([0u8; 16]);
    f
}

/// A flow event with its `ts` (bytes 8..16, the kernel's real clock) zeroed.
fn masked(mut r: Vec<u8>) -> Vec<u8> {
    if r.len() == 40 {
        r[8..16].fill(0);
    }
    r
}

/// Both sides of the fixture: kernel maps and program, bpfvm maps, VM and program.
struct Both {
    kmaps: Vec<KernelMap>,
    kprog: KernelProg,
    smaps: Vec<Arc<Map>>,
    vm: Vm,
    prog: bpfvm::LoadedProgram,
    obj: Object,
}

fn load(program: &str) -> Both {
    let n = kernel::possible_cpus().unwrap();
    let obj = Object::from_file(FIXTURE).unwrap();
    let specs: Vec<ObjectMap> = obj
        .maps()
        .iter()
        .map(|m| ObjectMap {
            name: m.name.to_string(),
            map_type: m.map_type,
            key_size: m.key_size,
            value_size: m.value_size,
            max_entries: m.max_entries,
            map_flags: m.map_flags,
            initial_data: None,
            frozen: false,
        })
        .collect();
    let kmaps = create_object_maps(&specs).unwrap();
    let def = obj.program(program).unwrap();
    let pk: Vec<&KernelMap> = def.maps.iter().map(|&i| &kmaps[i]).collect();
    let kprog =
        load_object_program(program, ProgType::Xdp, 0, &def.bytecode(), &pk, "GPL").unwrap();
    let maps = obj.create_maps(n).unwrap();
    let vm = Vm::builder().cpus(n).build();
    // The kernel's current task in a test run is this process.
    for cpu in 0..n {
        let me = std::process::id();
        vm.set_task(
            CpuId(cpu),
            Task {
                pid: me,
                tgid: me,
                ..Task::for_cpu(cpu)
            },
        )
        .unwrap();
    }
    let prog = vm.load(obj.vm_program(program, &maps).unwrap()).unwrap();
    let smaps = maps.all().to_vec();
    Both {
        kmaps,
        kprog,
        smaps,
        vm,
        prog,
        obj,
    }
}

impl Both {
    fn map(&self, name: &str) -> (&KernelMap, &Arc<Map>) {
        let i = self.obj.map_index(name).unwrap();
        (&self.kmaps[i], &self.smaps[i])
    }

    /// Runs `frame` on `cpu` on both sides; the two return values.
    fn run(&self, cpu: u32, frame: &[u8]) -> (u32, u32) {
        let k = self
            .kprog
            .test_run_on_cpu(
                cpu,
                &TestRun {
                    data_in: frame.to_vec(),
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
                    input: Input::packet(frame.to_vec()),
                    repeat: 1,
                    cpu: CpuId(cpu),
                },
            )
            .unwrap()
            .retval as u32;
        (k, s)
    }

    /// The per-CPU `lost` counters on both sides.
    fn lost(&self) -> (Vec<u8>, Vec<u8>) {
        let (k, s) = self.map("lost");
        let key = 0u32.to_ne_bytes();
        let mut sv = vec![0u8; s.host_value_size(0)];
        s.lookup(&key, &mut sv, 0).unwrap();
        (k.lookup(&key, 0).unwrap(), sv)
    }
}

#[test]
fn logger_records_positions_and_losses_agree_with_the_kernel() {
    if !kernel::oracle_or_skip() {
        return;
    }
    let both = load("xdp_ringbuf_logger");
    let (kq, sq) = both.map("quiet_ports");
    kq.update(&53u16.to_ne_bytes(), &[1], 0).unwrap();
    sq.update(&53u16.to_ne_bytes(), &[1], 0).unwrap();
    let arp: Vec<u8> = [vec![0xff; 12], vec![0x08, 0x06], vec![0; 28]].concat();
    let frames = [
        frame(17, 1234, 80),
        frame(6, 40000, 443),
        frame(17, 5353, 53),
        arp,
        frame(17, 1, 2)[..30].to_vec(),
    ];
    for (i, f) in frames.iter().enumerate() {
        let (k, s) = both.run(i as u32 % 2, f);
        assert_eq!(k, s, "frame {i}: return values");
    }
    let (kr, sr) = both.map("events");
    let kring = KernelRingbuf::new(kr).unwrap();
    let krecords: Vec<Vec<u8>> = kring.drain().into_iter().map(masked).collect();
    let srecords: Vec<Vec<u8>> = sr
        .ringbuf_drain()
        .unwrap()
        .into_iter()
        .map(masked)
        .collect();
    assert_eq!(krecords.len(), 4);
    assert_eq!(krecords, srecords, "records");
    assert_eq!(
        kring.positions(),
        sr.ringbuf_positions().unwrap(),
        "positions"
    );

    // Fill the ring on CPU 0: 85 records fit, the rest are counted as lost.
    for _ in 0..100 {
        both.run(0, &frame(17, 9, 99));
    }
    let (kl, sl) = both.lost();
    assert_eq!(kl, sl, "lost counters");
    let (kn, sn) = (kring.drain().len(), sr.ringbuf_drain().unwrap().len());
    assert_eq!(
        (kn, kring.positions()),
        (sn, sr.ringbuf_positions().unwrap())
    );
    assert_eq!(kn, 85);
}

fn ld_map(dst: u8) -> Vec<Insn> {
    asm::ld_map(dst, 0).to_vec()
}

/// `r0 = bpf_ringbuf_output(rb, r10 - 8, size, flags)` after writing 8 bytes there.
fn output(size: i32, flags: i32) -> Vec<u8> {
    asm::image(&[
        &[asm::st_dw(10, -8, 0x0102_0304)],
        &ld_map(1),
        &[
            asm::mov64_reg(2, 10),
            asm::add64_imm(2, -8),
            asm::mov64_imm(3, size),
            asm::mov64_imm(4, flags),
            asm::call(130),
            asm::exit(),
        ],
    ])
}

/// `r0 = reserve(rb, size, flags); if r0: submit or discard it (r0 = 1), else r0 = 0`.
fn reserve(size: i32, flags: i32, discard: bool) -> Vec<u8> {
    asm::image(&[
        &ld_map(1),
        &[
            asm::mov64_imm(2, size),
            asm::mov64_imm(3, flags),
            asm::call(131),
            asm::jeq_imm(0, 0, 6),
            asm::st_dw(0, 0, 0x0a0b),
            asm::mov64_reg(1, 0),
            asm::mov64_imm(2, 0),
            asm::call(if discard { 133 } else { 132 }),
            asm::mov64_imm(0, 1),
            asm::exit(),
            asm::mov64_imm(0, 0),
            asm::exit(),
        ],
    ])
}

/// `r0 = bpf_ringbuf_query(rb, flags)`.
fn query(flags: i32) -> Vec<u8> {
    asm::image(&[
        &ld_map(1),
        &[asm::mov64_imm(2, flags), asm::call(134), asm::exit()],
    ])
}

#[test]
fn helper_answers_agree_with_the_kernel() {
    if !kernel::oracle_or_skip() {
        return;
    }
    let n = kernel::possible_cpus().unwrap();
    let def = MapDef {
        map_type: MapType::Ringbuf,
        key_size: 0,
        value_size: 0,
        max_entries: 4096,
        map_flags: 0,
    };
    let kmap = KernelMap::create(def).unwrap();
    let smap = Arc::new(bpfvm_conformance::kernel::diff::sim_map(def, n).unwrap());
    let vm = Vm::builder().cpus(n).build();
    let kring = KernelRingbuf::new(&kmap).unwrap();
    let cases: Vec<(&str, Vec<u8>)> = vec![
        ("output", output(8, 0)),
        ("output with both wakeup flags", output(8, 3)),
        ("output with an unknown flag", output(8, 4)),
        ("output of 0 bytes", output(0, 0)),
        ("reserve and submit", reserve(8, 0, false)),
        ("reserve and discard", reserve(16, 0, true)),
        ("reserve with flags", reserve(8, 1, false)),
        ("reserve of the most that fits", reserve(4080, 0, true)),
        ("reserve of more than fits", reserve(4081, 0, false)),
        ("query avail", query(0)),
        ("query size", query(1)),
        ("query cons", query(2)),
        ("query prod", query(3)),
        ("query unknown", query(7)),
    ];
    let mut differ = 0;
    for (what, code) in cases {
        let kprog = load_object_program(what, ProgType::Xdp, 0, &code, &[&kmap], "GPL").unwrap();
        let k = kprog
            .test_run_on_cpu(
                0,
                &TestRun {
                    data_in: vec![0; 64],
                    ..TestRun::default()
                },
            )
            .unwrap()
            .retval;
        let p = vm
            .load(Program::new(code, ProgramType::Xdp).with_map(smap.clone()))
            .unwrap();
        let s = vm
            .test_run(
                &p,
                &VmTestRun {
                    input: Input::packet(vec![0; 64]),
                    repeat: 1,
                    cpu: CpuId(0),
                },
            )
            .unwrap()
            .retval as u32;
        if k != s {
            differ += 1;
            println!("DIFFERENCE {what}: kernel {k:#x}, bpfvm {s:#x}");
        }
        let (kr, sr) = (kring.drain(), smap.ringbuf_drain().unwrap());
        if kr != sr || kring.positions() != smap.ringbuf_positions().unwrap() {
            differ += 1;
            println!("DIFFERENCE {what}: records kernel {kr:?}, bpfvm {sr:?}");
        }
    }
    assert_eq!(differ, 0);
}
