//! Checks `BPF_PROG_TEST_RUN` with `repeat` > 1 against the kernel: the kernel's
//! `bpf_test_run` runs the program `repeat` times on one packet and one context without
//! resetting them, so a program that increments a packet byte or `skb->mark` sees its own
//! earlier increments; `retval`, `data_out` and `ctx_out` are those of the last repetition.
//! bpfvm's `Vm::test_run` must give the same bytes, `ctx_out` included (only the fields the
//! kernel copies back for `__sk_buff`; offsets for XDP's `data`/`data_end`).
#![cfg(target_os = "linux")]

use bpfvm::{CpuId, Input, Program, ProgramType, TestRun as VmTestRun, Vm};
use bpfvm_conformance::kernel::asm::{self, insn, Insn};
use bpfvm_conformance::kernel::consts::ProgType;
use bpfvm_conformance::kernel::{self, KernelProg, TestRun};

const REPEATS: [u32; 5] = [0, 1, 2, 5, 100];

/// Offsets in `struct __sk_buff`.
const MARK: i16 = 8;
const PRIORITY: i16 = 32;
const CB0: i16 = 48;
const SKB_DATA: i16 = 76;
const SKB_DATA_END: i16 = 80;
const SK_BUFF_SIZE: usize = 192;

/// `r3 = ++data[0]` when the packet has a byte (`data`/`data_end` loaded from the context
/// at `data`/`end` into r2/r4); r1 stays the context.
fn bump_first_byte(data: i16, end: i16) -> Vec<Insn> {
    vec![
        asm::ldx_w(2, 1, data),
        asm::ldx_w(4, 1, end),
        asm::mov64_imm(3, 0),
        asm::mov64_reg(5, 2),
        asm::add64_imm(5, 1),
        insn(0x2d, 5, 4, 3, 0), // if r5 > r4 goto +3
        insn(0x71, 3, 2, 0, 0), // r3 = *(u8 *)(r2 + 0)
        asm::add64_imm(3, 1),
        insn(0x73, 2, 3, 0, 0), // *(u8 *)(r2 + 0) = r3
    ]
}

/// `*(u32 *)(r1 + off) += add`, through r6.
fn bump_field(off: i16, add: i32) -> Vec<Insn> {
    vec![
        asm::ldx_w(6, 1, off),
        asm::add64_imm(6, add),
        asm::stx_w(1, 6, off),
    ]
}

fn frame() -> Vec<u8> {
    let mut f = vec![0u8; 14 + 20 + 8];
    f[12] = 0x08; // IPv4
    f[14] = 0x45;
    f[23] = 17; // UDP
    f[26..30].copy_from_slice(&[127, 0, 0, 1]);
    f[30..34].copy_from_slice(&[127, 0, 0, 1]);
    f[0] = 40;
    f
}

struct Case {
    name: &'static str,
    kernel_type: ProgType,
    vm_type: ProgramType,
    insns: Vec<Insn>,
    ctx_in: Vec<u8>,
}

fn cases() -> Vec<Case> {
    let mut skb_ctx = vec![0u8; SK_BUFF_SIZE];
    skb_ctx[MARK as usize] = 9;
    skb_ctx[PRIORITY as usize] = 3;
    skb_ctx[CB0 as usize] = 1;
    // `struct xdp_md` in: data 0, data_end = the frame's length, ingress_ifindex 1 (lo).
    let mut xdp_ctx = vec![0u8; 24];
    xdp_ctx[4] = frame().len() as u8;
    xdp_ctx[12] = 1;
    // XDP: ++data[0]; r0 = XDP_PASS.
    let mut xdp = bump_first_byte(0, 4);
    xdp.extend([asm::mov64_imm(0, 2), asm::exit()]);
    // tc: ++data[0]; mark += 1; cb[0] += 2; priority += 3; r0 = mark (TC_ACT_* are not
    // checked by the verifier).
    let mut tc = bump_first_byte(SKB_DATA, SKB_DATA_END);
    tc.extend(bump_field(MARK, 1));
    tc.extend(bump_field(CB0, 2));
    tc.extend(bump_field(PRIORITY, 3));
    tc.extend([asm::ldx_w(0, 1, MARK), asm::exit()]);
    // Socket filter: cb[0] += 2 (its only writable field); r0 = cb[0] (bytes kept).
    let mut sf = bump_field(CB0, 2);
    sf.extend([asm::ldx_w(0, 1, CB0), asm::exit()]);
    vec![
        Case {
            name: "xdp",
            kernel_type: ProgType::Xdp,
            vm_type: ProgramType::Xdp,
            insns: xdp,
            ctx_in: xdp_ctx,
        },
        Case {
            name: "tc",
            kernel_type: ProgType::SchedCls,
            vm_type: ProgramType::SchedCls,
            insns: tc,
            ctx_in: skb_ctx.clone(),
        },
        Case {
            name: "socket filter",
            kernel_type: ProgType::SocketFilter,
            vm_type: ProgramType::SocketFilter,
            insns: sf,
            ctx_in: skb_ctx,
        },
    ]
}

#[test]
fn repetitions_run_on_one_packet_and_context_as_in_the_kernel() {
    if !kernel::oracle_or_skip() {
        return;
    }
    // The kernel loads the programs as root: the same verdict here.
    let vm = Vm::builder()
        .cpus(1)
        .privilege(bpfvm::Privilege::Root)
        .build();
    let mut differ = 0;
    for case in cases() {
        let image = asm::image(&[&case.insns]);
        let mut log = String::new();
        let k =
            KernelProg::load(case.kernel_type, 0, &image, "GPL", &mut log).unwrap_or_else(|e| {
                panic!("{}: the kernel refuses the program ({e}): {log}", case.name)
            });
        let s = vm
            .load(Program::new(image, case.vm_type))
            .unwrap_or_else(|e| panic!("{}: bpfvm refuses the program: {e}", case.name));
        for repeat in REPEATS {
            let kr = k
                .test_run(&TestRun {
                    data_in: frame(),
                    data_out_size: frame().len() + 64,
                    ctx_in: case.ctx_in.clone(),
                    ctx_out_size: case.ctx_in.len(),
                    repeat,
                })
                .unwrap_or_else(|e| panic!("{} repeat {repeat}: kernel test run: {e}", case.name));
            let sr = vm
                .test_run(
                    &s,
                    &VmTestRun {
                        input: Input {
                            data: frame(),
                            ctx: case.ctx_in.clone(),
                            ..Input::default()
                        },
                        repeat,
                        cpu: CpuId(0),
                    },
                )
                .unwrap_or_else(|e| panic!("{} repeat {repeat}: bpfvm test run: {e}", case.name));
            let mut report = |what: &str, kernel: String, bpfvm: String| {
                if kernel != bpfvm {
                    differ += 1;
                    println!(
                        "DIFFERENCE {} repeat {repeat} {what}: kernel {kernel} bpfvm {bpfvm}",
                        case.name
                    );
                }
            };
            report(
                "retval",
                kr.retval.to_string(),
                (sr.retval as u32).to_string(),
            );
            report(
                "data_out",
                format!("{:?}", kr.data_out),
                format!("{:?}", sr.data_out),
            );
            report(
                "ctx_out",
                format!("{:?}", kr.ctx_out),
                format!("{:?}", sr.ctx_out),
            );
            println!(
                "{} repeat {repeat}: data_out[0] {} retval {} ctx_out {:?}",
                case.name, kr.data_out[0], kr.retval, kr.ctx_out
            );
        }
    }
    assert_eq!(differ, 0, "{differ} differences from the kernel");
}
