//! Checks the kernel's test-run context checks (`ctx_in`, issue 16 item 7) against
//! bpfvm's: for XDP (`struct xdp_md`: `data_meta`, `data_end`, the metadata length in
//! `data`, `egress_ifindex`, `ingress_ifindex` and `rx_queue_index`) and for skb programs
//! (`struct __sk_buff`: the fields a test run may set, `wire_len`, `gso_segs`, `ifindex`),
//! and for both a context longer than the structure (zero or non-zero extra bytes), the
//! kernel and `Vm::test_run` must accept the same contexts, refuse the others with the same
//! errno, and give the same return value. XDP contexts with a `data_end` short of the
//! packet make multi-buffer packets (the rest in fragments): the same `ctx_out` too.
#![cfg(target_os = "linux")]

use bpfvm::ctx_layout::{sk_buff, xdp_md, SK_BUFF_SIZE, XDP_MD_SIZE};
use bpfvm::{CpuId, Input, Program, ProgramType, TestRun as VmTestRun, Vm};
use bpfvm_conformance::kernel::asm;
use bpfvm_conformance::kernel::consts::ProgType;
use bpfvm_conformance::kernel::{self, KernelProg, TestRun};

fn put(ctx: &mut [u8], off: usize, v: u32) {
    ctx[off..off + 4].copy_from_slice(&v.to_le_bytes());
}

/// An `xdp_md` for a packet of `len` bytes, `meta` of them metadata.
fn md(meta: u32, len: u32) -> Vec<u8> {
    let mut c = vec![0u8; XDP_MD_SIZE];
    put(&mut c, xdp_md::DATA, meta);
    put(&mut c, xdp_md::DATA_END, len);
    c
}

fn with(mut c: Vec<u8>, off: usize, v: u32) -> Vec<u8> {
    put(&mut c, off, v);
    c
}

fn frame(len: usize) -> Vec<u8> {
    // Ethernet + IPv4 header (20 bytes, version 4, IHL 5) + zeros; byte 12 (EtherType) is
    // 8, so the XDP program's answer changes with the metadata length.
    let mut f = vec![0u8; len];
    f[12] = 0x08;
    f[14] = 0x45;
    f[16..18].copy_from_slice(&((len - 14) as u16).to_be_bytes());
    f
}

fn xdp_cases() -> Vec<(&'static str, usize, Vec<u8>)> {
    let n = 64u32;
    let mut tail_zero = md(0, n);
    tail_zero.extend_from_slice(&[0; 8]);
    let mut tail_set = md(0, n);
    tail_set.extend_from_slice(&[0, 0, 0, 1]);
    vec![
        ("no context", 64, Vec::new()),
        ("data_end = length", 64, md(0, n)),
        ("data_end short", 64, md(0, n - 4)),
        (
            "data_end zero (only a field set)",
            64,
            with(vec![0u8; XDP_MD_SIZE], xdp_md::INGRESS_IFINDEX, 1),
        ),
        ("8 bytes of metadata", 64, md(8, n)),
        ("12 bytes of metadata", 64, md(12, n)),
        ("32 bytes of metadata", 64, md(32, n)),
        ("36 bytes of metadata", 64, md(36, n)),
        ("6 bytes of metadata", 64, md(6, n)),
        ("40 bytes of metadata", 64, md(40, n)),
        ("64 bytes of metadata (all)", 64, md(64, n)),
        ("data 8, data_end 4", 64, md(8, 4)),
        ("data_end past the packet", 64, md(0, 68)),
        ("48 bytes of metadata, 16 of data", 64, md(48, n)),
        ("52 bytes of metadata, 12 of data", 64, md(52, n)),
        ("56 bytes of metadata, 8 of data", 64, md(56, n)),
        ("212 bytes of metadata", 300, md(212, 300)),
        ("216 bytes of metadata", 300, md(216, 300)),
        ("220 bytes of metadata", 300, md(220, 300)),
        ("data 8, data_end 20", 64, md(8, 20)),
        ("data 8, data_end 8", 64, md(8, 8)),
        ("data_meta set", 64, with(md(0, n), xdp_md::DATA_META, 4)),
        (
            "egress_ifindex set",
            64,
            with(md(0, n), xdp_md::EGRESS_IFINDEX, 1),
        ),
        ("ingress lo", 64, with(md(0, n), xdp_md::INGRESS_IFINDEX, 1)),
        (
            "ingress lo, queue 1",
            64,
            with(
                with(md(0, n), xdp_md::INGRESS_IFINDEX, 1),
                xdp_md::RX_QUEUE_INDEX,
                1,
            ),
        ),
        (
            "queue without ingress",
            64,
            with(md(0, n), xdp_md::RX_QUEUE_INDEX, 1),
        ),
        (
            "ingress no such device",
            64,
            with(md(0, n), xdp_md::INGRESS_IFINDEX, 99_999),
        ),
        ("longer, zero tail", 64, tail_zero),
        ("longer, non-zero tail", 64, tail_set),
        ("shorter than xdp_md", 64, md(0, n)[..8].to_vec()),
    ]
}

fn skb_cases() -> Vec<(&'static str, usize, Vec<u8>)> {
    let z = || vec![0u8; SK_BUFF_SIZE];
    let mut allowed = z();
    put(&mut allowed, sk_buff::MARK, 7);
    put(&mut allowed, sk_buff::PRIORITY, 3);
    put(&mut allowed, sk_buff::INGRESS_IFINDEX, 11);
    put(&mut allowed, sk_buff::CB + 8, 0xabcd);
    put(&mut allowed, sk_buff::TSTAMP, 1000);
    put(&mut allowed, sk_buff::GSO_SEGS, 2);
    put(&mut allowed, sk_buff::GSO_SIZE, 1400);
    put(&mut allowed, sk_buff::HWTSTAMP, 5);
    let mut tail_zero = z();
    tail_zero.extend_from_slice(&[0; 8]);
    let mut tail_set = z();
    tail_set.extend_from_slice(&[0, 0, 0, 1]);
    let mut tstamp_type = z();
    tstamp_type[sk_buff::TSTAMP_TYPE] = 1;
    vec![
        ("no context", 64, Vec::new()),
        ("all zero", 64, z()),
        ("the allowed fields", 64, allowed),
        ("len set", 64, with(z(), sk_buff::LEN, 64)),
        ("protocol set", 64, with(z(), sk_buff::PROTOCOL, 8)),
        (
            "queue_mapping set",
            64,
            with(z(), sk_buff::QUEUE_MAPPING, 1),
        ),
        ("tc_index set", 64, with(z(), sk_buff::TC_INDEX, 1)),
        ("hash set", 64, with(z(), sk_buff::HASH, 1)),
        ("data_end set", 64, with(z(), sk_buff::DATA_END, 64)),
        ("family set", 64, with(z(), sk_buff::FAMILY, 2)),
        ("tstamp_type set", 64, tstamp_type),
        ("ifindex lo", 64, with(z(), sk_buff::IFINDEX, 1)),
        (
            "ifindex no such device",
            64,
            with(z(), sk_buff::IFINDEX, 99_999),
        ),
        ("wire_len = frame", 64, with(z(), sk_buff::WIRE_LEN, 64)),
        (
            "wire_len = frame - 14",
            64,
            with(z(), sk_buff::WIRE_LEN, 50),
        ),
        ("wire_len short", 64, with(z(), sk_buff::WIRE_LEN, 40)),
        ("wire_len 65536", 64, with(z(), sk_buff::WIRE_LEN, 65_536)),
        ("wire_len 65537", 64, with(z(), sk_buff::WIRE_LEN, 65_537)),
        ("gso_segs 65535", 64, with(z(), sk_buff::GSO_SEGS, 65_535)),
        ("gso_segs 65536", 64, with(z(), sk_buff::GSO_SEGS, 65_536)),
        ("longer, zero tail", 64, tail_zero),
        ("longer, non-zero tail", 64, tail_set),
        (
            "shorter than __sk_buff",
            64,
            with(z(), sk_buff::MARK, 1)[..12].to_vec(),
        ),
    ]
}

#[test]
fn test_run_contexts_agree_with_the_kernel() {
    if !kernel::oracle_or_skip() {
        return;
    }
    let vm = Vm::builder().cpus(1).build();
    // XDP: the byte at data + 4 (which shows where the metadata ends), 99 for a packet
    // shorter than an Ethernet header; skb programs: the context's `mark`.
    let xdp = [
        asm::ldx_w(2, 1, 0),
        asm::ldx_w(3, 1, 4),
        asm::mov64_reg(4, 2),
        asm::add64_imm(4, 14),
        asm::mov64_imm(0, 99),
        asm::jgt_reg(4, 3, 1),
        asm::ldx_b(0, 2, 4),
        asm::exit(),
    ];
    let mark = [asm::ldx_w(0, 1, sk_buff::MARK as i16), asm::exit()];
    let programs: [(_, _, &[asm::Insn], _); 3] = [
        (ProgType::Xdp, ProgramType::Xdp, &xdp, xdp_cases()),
        (
            ProgType::SchedCls,
            ProgramType::SchedCls,
            &mark,
            skb_cases(),
        ),
        (
            ProgType::SocketFilter,
            ProgramType::SocketFilter,
            &mark,
            skb_cases(),
        ),
    ];
    let mut differ = Vec::new();
    let mut total = 0;
    for (kt, vt, code, cases) in programs {
        let image = asm::image(&[code]);
        let mut log = String::new();
        let k = KernelProg::load(kt, 0, &image, "GPL", &mut log)
            .unwrap_or_else(|e| panic!("{kt:?}: the kernel refuses the program ({e}): {log}"));
        let s = vm.load(Program::new(image, vt)).unwrap();
        // XDP: the output packet (linear part and fragments) and context (`data_end`: where
        // the linear part ends) as well.
        let xdp = vt == ProgramType::Xdp;
        for (what, len, ctx) in cases {
            total += 1;
            let kernel = k
                .test_run(&TestRun {
                    data_in: frame(len),
                    data_out_size: len + 64,
                    ctx_in: ctx.clone(),
                    ctx_out_size: if xdp && !ctx.is_empty() { 64 } else { 0 },
                    ..TestRun::default()
                })
                .map(|o| {
                    if xdp {
                        (o.retval, o.data_out, o.ctx_out)
                    } else {
                        (o.retval, Vec::new(), Vec::new())
                    }
                })
                .map_err(|e| e.0);
            let input = Input {
                ctx: ctx.clone(),
                ..Input::packet(frame(len))
            };
            let bpfvm = vm.test_run(
                &s,
                &VmTestRun {
                    input,
                    repeat: 1,
                    cpu: CpuId(0),
                },
            );
            let reason = bpfvm.as_ref().err().map(ToString::to_string);
            let bpfvm = bpfvm
                .map(|o| {
                    // Without ctx_in the kernel's run is not asked for a context.
                    if xdp && ctx.is_empty() {
                        (o.retval as u32, o.data_out, Vec::new())
                    } else if xdp {
                        (o.retval as u32, o.data_out, o.ctx_out)
                    } else {
                        (o.retval as u32, Vec::new(), Vec::new())
                    }
                })
                .map_err(|e| e.errno());
            let brief = |r: &Result<(u32, Vec<u8>, Vec<u8>), i32>| {
                r.as_ref()
                    .map(|(ret, out, ctx)| (*ret, out.len(), ctx.get(..8).map(<[u8]>::to_vec)))
                    .map_err(|e| *e)
            };
            println!(
                "{kt:?} {what}: kernel {:?} bpfvm {:?} {reason:?}",
                brief(&kernel),
                brief(&bpfvm)
            );
            if kernel != bpfvm {
                differ.push(format!(
                    "{kt:?} {what}: kernel {:?} bpfvm {:?}",
                    brief(&kernel),
                    brief(&bpfvm)
                ));
            }
        }
    }
    assert!(total >= 50, "{total} cases");
    assert!(
        differ.is_empty(),
        "differences from the kernel:\n{}",
        differ.join("\n")
    );
}
