//! XDP programs a device or CPU map runs (`SEC("xdp/devmap")`, `SEC("xdp/cpumap")`,
//! expected attach types 33 and 35) against the kernel: only a device-map program may read
//! `xdp_md.egress_ifindex` (the verifier's verdict and message, for both loaders), and the
//! kernel's test run refuses both kinds with `EINVAL` where it runs a plain XDP program
//! (attach type 0 or libbpf's 37): `Vm::test_run` must give the same answers.
#![cfg(target_os = "linux")]

use bpfvm::{CpuId, Input, Program, ProgramType, TestRun as VmTestRun, Vm};
use bpfvm_conformance::kernel::consts::ProgType;
use bpfvm_conformance::kernel::{self, asm, KernelProg, TestRun};
use bpfvm_conformance::verdicts::{compare, Case};
use bpfvm_verifier::{Privilege, ProgType as VerifierProgType};

const DEVMAP: u32 = 33;
const CPUMAP: u32 = 35;
/// `BPF_XDP`, what libbpf passes for `SEC("xdp")`.
const XDP: u32 = 37;

/// `return ctx->egress_ifindex == 0 ? XDP_PASS : XDP_DROP`.
fn reads_egress() -> Vec<u8> {
    asm::image(&[&[
        asm::ldx_w(2, 1, 20),
        asm::mov64_imm(0, 2),
        asm::jeq_imm(2, 0, 1),
        asm::mov64_imm(0, 1),
        asm::exit(),
    ]])
}

/// `return XDP_PASS`.
fn passes() -> Vec<u8> {
    asm::image(&[&[asm::mov64_imm(0, 2), asm::exit()]])
}

#[test]
fn only_device_map_programs_read_egress_ifindex() {
    if !kernel::oracle_or_skip() {
        return;
    }
    let mut differ = Vec::new();
    for attach in [None, Some(XDP), Some(DEVMAP), Some(CPUMAP)] {
        let mut case = Case::new(
            format!("egress_ifindex, attach {attach:?}"),
            VerifierProgType::Xdp,
            reads_egress(),
        );
        case.attach = attach;
        for p in [Privilege::CapBpfNetAdmin, Privilege::Root] {
            let cmp = compare(&case, p).unwrap();
            println!("[{p:?}] {}", cmp.describe());
            let kernel_accepts = cmp.kernel_errno.is_none();
            assert_eq!(
                kernel_accepts,
                attach == Some(DEVMAP),
                "the kernel's rule changed: {}",
                cmp.describe()
            );
            if let Some(d) = cmp.disagreement() {
                differ.push(format!("[{p:?}] {d}"));
            }
        }
    }
    assert!(differ.is_empty(), "{}", differ.join("\n"));
}

#[test]
fn the_test_run_refuses_device_and_cpu_map_programs() {
    if !kernel::oracle_or_skip() {
        return;
    }
    let vm = Vm::builder().cpus(1).build();
    let mut frame = vec![0u8; 64];
    frame[12] = 0x08;
    for (attach, image) in [
        (0, passes()),
        (XDP, passes()),
        (DEVMAP, reads_egress()),
        (CPUMAP, passes()),
    ] {
        let mut log = String::new();
        let k = KernelProg::load(ProgType::Xdp, attach, &image, "GPL", &mut log)
            .unwrap_or_else(|e| panic!("attach {attach}: the kernel refuses ({e}): {log}"));
        let kernel = k
            .test_run(&TestRun {
                data_in: frame.clone(),
                data_out_size: 128,
                ..TestRun::default()
            })
            .map(|o| o.retval)
            .map_err(|e| e.0);
        let mut program = Program::new(image, ProgramType::Xdp);
        if attach != 0 {
            program = program.with_attach_type(attach);
        }
        let s = vm.load(program).unwrap();
        let run = VmTestRun {
            input: Input::packet(frame.clone()),
            repeat: 1,
            cpu: CpuId(0),
        };
        let ours = vm.test_run(&s, &run);
        if let Err(e) = &ours {
            println!("attach {attach}: {e}");
        }
        let ours = ours.map(|o| o.retval as u32).map_err(|e| e.errno());
        println!("attach {attach}: kernel {kernel:?}, bpfvm {ours:?}");
        assert_eq!(kernel, ours, "attach type {attach}");
        let refused = matches!(attach, DEVMAP | CPUMAP);
        assert_eq!(
            kernel == Err(22),
            refused,
            "attach type {attach}: {kernel:?}"
        );
        // Vm::run still runs them (egress_ifindex reads 0 outside a device map).
        let out = vm.run(&s, CpuId(0), &Input::packet(frame.clone())).unwrap();
        assert_eq!(out.retval, 2);
    }
}
