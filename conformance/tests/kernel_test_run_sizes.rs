//! Checks the packet size limits of `BPF_PROG_TEST_RUN` against the kernel: for XDP,
//! `SCHED_CLS`, `SOCKET_FILTER` and `CGROUP_SKB` programs, packets just under, at and over
//! bpfvm's limits (`bpfvm::limits::{SKB_MAX_DATA, XDP_MAX_DATA}`), a 1 MiB one and the short
//! ones around an Ethernet header (0, 1, 13, 14, 15 bytes; the kernel wants 14) must be
//! accepted or refused with the same errno by the kernel and by `Vm::test_run`.
#![cfg(target_os = "linux")]

use bpfvm::limits::{SKB_MAX_DATA, XDP_MAX_DATA};
use bpfvm::{CpuId, Input, Program, ProgramType, TestRun as VmTestRun, Vm};
use bpfvm_conformance::kernel::asm;
use bpfvm_conformance::kernel::consts::ProgType;
use bpfvm_conformance::kernel::{self, KernelProg, TestRun};

#[test]
fn packet_size_limits_agree_with_the_kernel() {
    if !kernel::oracle_or_skip() {
        return;
    }
    let vm = Vm::builder().cpus(1).build();
    let cases = [
        (ProgType::Xdp, ProgramType::Xdp, 2, XDP_MAX_DATA),
        (ProgType::SchedCls, ProgramType::SchedCls, 0, SKB_MAX_DATA),
        (
            ProgType::SocketFilter,
            ProgramType::SocketFilter,
            0,
            SKB_MAX_DATA,
        ),
        (ProgType::CgroupSkb, ProgramType::CgroupSkb, 1, SKB_MAX_DATA),
    ];
    let mut differ = 0;
    for (kt, vt, r0, limit) in cases {
        // r0 = r0; exit.
        let image = asm::image(&[&[asm::mov64_imm(0, r0), asm::exit()]]);
        let mut log = String::new();
        let k = KernelProg::load(kt, 0, &image, "GPL", &mut log)
            .unwrap_or_else(|e| panic!("{kt:?}: the kernel refuses the program ({e}): {log}"));
        let s = vm.load(Program::new(image, vt)).unwrap();
        for len in [
            0,
            1,
            13,
            14,
            15,
            33,
            34,
            60,
            limit - 1,
            limit,
            limit + 1,
            1 << 20,
        ] {
            let kernel = k
                .test_run(&TestRun {
                    data_in: vec![0; len],
                    data_out_size: len + 64,
                    ..TestRun::default()
                })
                .map(|o| o.retval)
                .map_err(|e| e.0);
            let bpfvm = vm
                .test_run(
                    &s,
                    &VmTestRun {
                        input: Input::packet(vec![0; len]),
                        repeat: 1,
                        cpu: CpuId(0),
                    },
                )
                .map(|o| o.retval as u32)
                .map_err(|e| e.errno());
            println!("{kt:?} {len} bytes: kernel {kernel:?} bpfvm {bpfvm:?}");
            if kernel != bpfvm {
                differ += 1;
                println!("DIFFERENCE {kt:?} {len} bytes");
            }
        }
    }
    assert_eq!(differ, 0, "{differ} differences from the kernel");
}
