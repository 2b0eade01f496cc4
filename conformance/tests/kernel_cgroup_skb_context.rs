//! Checks what cgroup_skb programs see in a test run against the kernel: each readable
//! `struct __sk_buff` field (and `data_end - data`) stored into an ARRAY by the program
//! (cgroup_skb programs must return 0 or 1, so fields cannot be returned), for IPv4, IPv6
//! and ARP frames: the test run's socket gives `family` and the IP addresses.
#![cfg(target_os = "linux")]

use std::sync::Arc;

use bpfvm::maps::{Map, MapSpec, MapType as SimType};
use bpfvm::{CpuId, Input, Program, ProgramType, TestRun as VmTestRun, Vm};
use bpfvm_conformance::kernel::asm::{self, insn, Insn};
use bpfvm_conformance::kernel::consts::{MapType, ProgType};
use bpfvm_conformance::kernel::{self, substitute_map_fds, KernelMap, KernelProg, MapDef, TestRun};

const FIELDS: &[i16] = &[
    0, 4, 8, 12, 16, 20, 24, 28, 32, 36, 40, 44, 48, 68, 72, 84, 88, 92, 96, 100, 116, 132, 136,
    160, 164, 176,
];

/// r6 = field (or data_end - data when `off` is None); map[0] = r6; return 1.
fn program(off: Option<i16>) -> Vec<u8> {
    let load: Vec<Insn> = match off {
        Some(o) => vec![asm::ldx_w(6, 1, o)],
        None => vec![
            asm::ldx_w(2, 1, 76),
            asm::ldx_w(6, 1, 80),
            insn(0x1f, 6, 2, 0, 0),
        ],
    };
    let map = asm::ld_map(1, 0);
    asm::image(&[
        &load,
        &[
            asm::st_w(10, -4, 0),
            asm::mov64_reg(2, 10),
            asm::add64_imm(2, -4),
        ],
        &map,
        &[
            asm::call(1),
            asm::jeq_imm(0, 0, 1),
            asm::stx_w(0, 6, 0),
            asm::mov64_imm(0, 1),
            asm::exit(),
        ],
    ])
}

fn frames() -> Vec<Vec<u8>> {
    let mut ip = vec![0u8; 14];
    ip[12] = 8;
    ip.extend((0..40).map(|i| i as u8 + 0x40));
    let mut bcast = vec![0xffu8; 6];
    bcast.extend([2, 0, 0, 0, 0, 1, 8, 6]);
    bcast.extend([7u8; 28]);
    let mut ip6 = vec![0u8; 14];
    ip6[12..14].copy_from_slice(&[0x86, 0xdd]);
    ip6.extend((0..60).map(|i| i as u8 + 0x80));
    vec![ip, bcast, ip6]
}

#[test]
fn cgroup_skb_fields_agree_with_the_kernel() {
    if !kernel::oracle_or_skip() {
        return;
    }
    // The kernel loads the programs as root: the same verdict here.
    let vm = Vm::builder()
        .cpus(kernel::possible_cpus().unwrap())
        .privilege(bpfvm::Privilege::Root)
        .build();
    let (mut compared, mut refused, mut differ) = (0, 0, 0);
    for off in FIELDS.iter().map(|&o| Some(o)).chain([None]) {
        let kmap = KernelMap::create(MapDef {
            map_type: MapType::Array,
            key_size: 4,
            value_size: 4,
            max_entries: 1,
            map_flags: 0,
        })
        .unwrap();
        let smap =
            Arc::new(Map::create(MapSpec::new(SimType::Array, 4, 4, 1), vm.ncpus()).unwrap());
        let image = program(off);
        let kimage = substitute_map_fds(&image, &[&kmap]).unwrap();
        let mut log = String::new();
        let Ok(k) = KernelProg::load(ProgType::CgroupSkb, 0, &kimage, "GPL", &mut log) else {
            refused += 1;
            continue;
        };
        let s = vm
            .load(Program::new(image, ProgramType::CgroupSkb).with_map(smap.clone()))
            .unwrap();
        for f in frames() {
            let kr = k
                .test_run_on_cpu(
                    0,
                    &TestRun {
                        data_in: f.clone(),
                        data_out_size: f.len() + 64,
                        ..TestRun::default()
                    },
                )
                .unwrap();
            let sr = vm
                .test_run(
                    &s,
                    &VmTestRun {
                        input: Input::packet(f.clone()),
                        repeat: 1,
                        cpu: CpuId(0),
                    },
                )
                .unwrap();
            let kv = kmap.lookup(&0u32.to_ne_bytes(), 0).unwrap();
            let mut sv = vec![0u8; 4];
            smap.lookup(&0u32.to_ne_bytes(), &mut sv, 0).unwrap();
            compared += 1;
            if kv != sv || u64::from(kr.retval) != sr.retval || kr.data_out != sr.data_out {
                differ += 1;
                println!(
                    "DIFFERENCE field {off:?}: kernel {kv:?} {} bpfvm {sv:?} {}",
                    kr.retval, sr.retval
                );
            }
        }
    }
    println!("{compared} runs compared, {refused} field loads refused, {differ} differences");
    assert_eq!(differ, 0);
}
