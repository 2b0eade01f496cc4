//! Checks programs against the kernel: hand-assembled programs are loaded with
//! BPF_PROG_LOAD, run with BPF_PROG_TEST_RUN on each CPU, and their return values, output
//! packets and per-CPU map contents are checked against what the program must do.
#![cfg(target_os = "linux")]

use bpfvm_conformance::kernel::asm::{self, insn};
use bpfvm_conformance::kernel::consts::{create, MapType, ProgType};
use bpfvm_conformance::kernel::{
    self, create_object_maps, load_object_program, substitute_map_fds, KernelMap, KernelProg,
    MapDef, ObjectMap, TestRun,
};

/// Stores `cpu + 1` into CPU-local slot 0 of map 0 (a PERCPU_ARRAY) and returns the CPU.
fn percpu_writer() -> Vec<u8> {
    asm::image(&[
        &[asm::call(8), asm::mov64_reg(7, 0), asm::st_w(10, -4, 0)],
        &asm::ld_map(1, 0),
        &[
            asm::mov64_reg(2, 10),
            asm::add64_imm(2, -4),
            asm::call(1),
            asm::jeq_imm(0, 0, 3),
            asm::mov64_reg(1, 7),
            asm::add64_imm(1, 1),
            asm::stx_dw(0, 1, 0),
            asm::mov64_reg(0, 7),
            asm::exit(),
        ],
    ])
}

/// XDP: writes 0xAB over the first packet byte when it exists, returns XDP_PASS (2).
fn xdp_marker() -> Vec<u8> {
    asm::image(&[&[
        asm::ldx_w(2, 1, 0), // r2 = data
        asm::ldx_w(3, 1, 4), // r3 = data_end
        asm::mov64_reg(4, 2),
        asm::add64_imm(4, 1),
        insn(0x2d, 4, 3, 1, 0),    // if r4 > r3 goto +1
        insn(0x72, 2, 0, 0, 0xAB), // *(u8 *)(r2 + 0) = 0xAB
        asm::mov64_imm(0, 2),
        asm::exit(),
    ]])
}

fn packet() -> Vec<u8> {
    (0..64u8).collect()
}

#[test]
fn percpu_writes_land_on_the_cpu_that_ran() {
    if !kernel::oracle_or_skip() {
        return;
    }
    let n = kernel::possible_cpus().unwrap();
    let map = KernelMap::create(MapDef {
        map_type: MapType::PercpuArray,
        key_size: 4,
        value_size: 8,
        max_entries: 1,
        map_flags: 0,
    })
    .unwrap();
    let image = substitute_map_fds(&percpu_writer(), &[&map]).unwrap();
    let mut log = String::new();
    let prog = KernelProg::load(ProgType::SchedCls, 0, &image, "GPL", &mut log)
        .unwrap_or_else(|e| panic!("load failed: {e}\n{log}"));
    let run = TestRun {
        data_in: packet(),
        data_out_size: 256,
        ..TestRun::default()
    };
    for cpu in 0..n {
        let out = prog.test_run_on_cpu(cpu, &run).unwrap();
        assert_eq!(out.retval, cpu, "test run pinned to CPU {cpu}");
        assert_eq!(out.data_out, packet(), "tc program leaves the packet alone");
    }
    let full = map.lookup(&0u32.to_ne_bytes(), 0).unwrap();
    let expect: Vec<u8> = (0..n as u64).flat_map(|c| (c + 1).to_ne_bytes()).collect();
    assert_eq!(full, expect);
}

#[test]
fn xdp_output_packet_is_returned() {
    if !kernel::oracle_or_skip() {
        return;
    }
    let mut log = String::new();
    let prog = KernelProg::load(ProgType::Xdp, 0, &xdp_marker(), "GPL", &mut log)
        .unwrap_or_else(|e| panic!("load failed: {e}\n{log}"));
    let out = prog
        .test_run_on_cpu(
            0,
            &TestRun {
                data_in: packet(),
                data_out_size: 256,
                ..TestRun::default()
            },
        )
        .unwrap();
    let mut expect = packet();
    expect[0] = 0xAB;
    assert_eq!((out.retval, out.data_out), (2, expect));
}

#[test]
fn verifier_rejections_come_with_a_log() {
    if !kernel::oracle_or_skip() {
        return;
    }
    // r0 is never set before exit.
    let image = asm::image(&[&[asm::exit()]]);
    let mut log = String::new();
    let err = KernelProg::load(ProgType::SocketFilter, 0, &image, "GPL", &mut log).unwrap_err();
    assert_eq!(err, kernel::Errno::EACCES);
    assert!(log.contains("R0 !read_ok"), "log: {log}");
}

#[test]
fn global_data_is_read_and_written_through_map_values() {
    if !kernel::oracle_or_skip() {
        return;
    }
    // map 0: .rodata holding 40 at offset 4; map 1: .data, 8 bytes of zeros; map 2: a
    // map the program does not use (the program names maps by its own list).
    let global = |name: &str, data: Vec<u8>, ro: bool| ObjectMap {
        name: name.into(),
        map_type: MapType::Array as u32,
        key_size: 4,
        value_size: data.len() as u32,
        max_entries: 1,
        map_flags: if ro { create::RDONLY_PROG } else { 0 },
        initial_data: Some(data),
        frozen: ro,
    };
    let maps = create_object_maps(&[
        global("unused", vec![1; 4], false),
        global(".rodata", vec![0, 0, 0, 0, 40, 0, 0, 0], true),
        global(".data", vec![0; 8], false),
    ])
    .unwrap();
    let (rodata, data) = (&maps[1], &maps[2]);
    let code = asm::image(&[
        &asm::ld_map_value(1, 0, 4),
        &[asm::ldx_w(0, 1, 0), asm::add64_imm(0, 2)],
        &asm::ld_map_value(2, 1, 0),
        &[asm::stx_dw(2, 0, 0), asm::exit()],
    ]);
    let prog = load_object_program(
        "globals",
        ProgType::SocketFilter,
        0,
        &code,
        &[rodata, data],
        "GPL",
    )
    .unwrap();
    let out = prog
        .test_run_on_cpu(
            0,
            &TestRun {
                data_in: packet(),
                ..TestRun::default()
            },
        )
        .unwrap();
    assert_eq!(out.retval, 42);
    assert_eq!(
        data.lookup(&0u32.to_ne_bytes(), 0).unwrap(),
        42u64.to_ne_bytes()
    );
    // .rodata is frozen: the host cannot change it.
    assert_eq!(
        rodata.update(&0u32.to_ne_bytes(), &[0; 8], 0),
        Err(kernel::Errno::EPERM)
    );
}

#[test]
fn skb_test_runs_zero_the_l2_header_for_types_without_l2_access() {
    if !kernel::oracle_or_skip() {
        return;
    }
    let code = asm::image(&[&[asm::mov64_imm(0, 1), asm::exit()]]);
    let input: Vec<u8> = (1..=20).collect();
    for (ty, zeroed) in [
        (ProgType::SocketFilter, true),
        (ProgType::CgroupSkb, true),
        (ProgType::SchedCls, false),
    ] {
        let mut log = String::new();
        let prog = KernelProg::load(ty, 0, &code, "GPL", &mut log)
            .unwrap_or_else(|e| panic!("load failed: {e}\n{log}"));
        let out = prog
            .test_run_on_cpu(
                0,
                &TestRun {
                    data_in: input.clone(),
                    data_out_size: 64,
                    ..TestRun::default()
                },
            )
            .unwrap();
        let mut expect = input.clone();
        if zeroed {
            expect[..14].fill(0);
        }
        assert_eq!(out.data_out, expect, "{ty:?}");
    }
}
