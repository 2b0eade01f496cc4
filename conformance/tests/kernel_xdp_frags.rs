//! Checks multi-buffer (fragmented) XDP packets against the kernel's XDP test run: packets
//! longer than the 3,520-byte linear part (or whose `ctx_in` `data_end` asks for a shorter
//! one) keep the rest in page fragments. For packets of 64, 3,520, 3,521, 8,000 and 73,152
//! bytes, with and without metadata and with short linear parts, hand-assembled programs
//! find `data_end - data` by bounded compares, call `bpf_xdp_get_buff_len`, copy bytes with
//! `bpf_xdp_load_bytes`/`_store_bytes` across the linear part's end and fragment
//! boundaries, and resize with `bpf_xdp_adjust_tail` (growing the last fragment, shrinking
//! through fragments into the linear part); the kernel and `Vm::test_run` must give the
//! same return value, `data_out` and `ctx_out`, or the same errno. The packet size limits
//! with fragments (17 pages past the linear part, `ENOMEM` beyond) are checked too.
#![cfg(target_os = "linux")]

use bpfvm::ctx_layout::{xdp_md, XDP_MD_SIZE};
use bpfvm::{CpuId, Input, Program, ProgramType, TestRun as VmTestRun, Vm};
use bpfvm_conformance::kernel::asm::{self, Insn};
use bpfvm_conformance::kernel::consts::ProgType;
use bpfvm_conformance::kernel::{self, KernelProg, TestRun};

/// The linear part's most data bytes in the kernel's XDP test run.
const LINEAR_MAX: usize = 3520;
/// A fragment's page.
const PAGE: usize = 4096;

/// A packet case: its bytes (metadata first), and `ctx_in` (empty for none).
struct Case {
    what: String,
    bytes: Vec<u8>,
    ctx: Vec<u8>,
    /// Metadata bytes at the front of `bytes`.
    meta: usize,
    /// Data bytes in the linear part (as the kernel lays the packet out).
    linear: usize,
}

impl Case {
    fn new(len: usize, meta: usize, data_end: Option<usize>) -> Case {
        let bytes: Vec<u8> = (0..len).map(|i| (i * 7 % 251) as u8 + 1).collect();
        let ctx = match data_end {
            None if meta == 0 => Vec::new(),
            end => {
                let mut c = vec![0u8; XDP_MD_SIZE];
                c[xdp_md::DATA..][..4].copy_from_slice(&(meta as u32).to_le_bytes());
                let end = end.unwrap_or(len) as u32;
                c[xdp_md::DATA_END..][..4].copy_from_slice(&end.to_le_bytes());
                c
            }
        };
        let end = data_end.unwrap_or(len);
        Case {
            what: format!("{len} bytes, {meta} of metadata, data_end {end}"),
            linear: (end - meta).min(LINEAR_MAX),
            bytes,
            ctx,
            meta,
        }
    }

    /// Data bytes (linear part and fragments).
    fn data_len(&self) -> usize {
        self.bytes.len() - self.meta
    }
}

fn cases() -> Vec<Case> {
    vec![
        Case::new(64, 0, None),
        Case::new(LINEAR_MAX, 0, None),
        Case::new(LINEAR_MAX + 1, 0, None),
        Case::new(8000, 0, None),
        Case::new(73_152, 0, None),
        Case::new(8000, 8, None),
        Case::new(73_160, 8, None),
        Case::new(8000, 0, Some(100)),
        Case::new(4200, 8, Some(20)),
        Case::new(8000, 0, Some(0)),
        Case::new(2 * PAGE + 14, 0, Some(14)),
    ]
}

/// `data_end - data` by a binary search of bounded compares (`p + 2^k <= data_end`, then
/// `p += 2^k`, from `p = data`; immediates only), 12 bits (the linear part is under 4,096
/// bytes).
fn linear_len_prog() -> Vec<Insn> {
    let mut p = vec![
        asm::ldx_w(2, 1, 0),
        asm::ldx_w(3, 1, 4),
        asm::mov64_imm(0, 0),
    ];
    for bit in (0..12).rev() {
        p.extend([
            asm::mov64_reg(4, 2),
            asm::add64_imm(4, 1 << bit),
            asm::jgt_reg(4, 3, 2),
            asm::mov64_reg(2, 4),
            asm::add64_imm(0, 1 << bit),
        ]);
    }
    p.push(asm::exit());
    p
}

/// `return bpf_xdp_get_buff_len(ctx)`.
fn buff_len_prog() -> Vec<Insn> {
    vec![asm::call(188), asm::exit()]
}

/// Fills a 64-byte stack buffer with a pattern, `bpf_xdp_load_bytes(ctx, off, buf, len)`
/// (returning its error), then `bpf_xdp_store_bytes(ctx, dst, buf, len)`: the output
/// packet shows what was loaded (and the pattern where it was not).
fn load_store_prog(off: i32, len: i32, dst: i32) -> Vec<Insn> {
    let mut p = vec![asm::mov64_reg(6, 1)];
    for i in 0..8 {
        p.push(asm::st_dw(10, -64 + 8 * i, 0x5a5a_0000 + i as i32));
    }
    p.extend([
        asm::mov64_reg(1, 6),
        asm::mov64_imm(2, off),
        asm::mov64_reg(3, 10),
        asm::add64_imm(3, -64),
        asm::mov64_imm(4, len),
        asm::call(189),
        asm::jne_imm(0, 0, 6),
        asm::mov64_reg(1, 6),
        asm::mov64_imm(2, dst),
        asm::mov64_reg(3, 10),
        asm::add64_imm(3, -64),
        asm::mov64_imm(4, len),
        asm::call(190),
        asm::exit(),
    ]);
    p
}

/// `bpf_xdp_adjust_tail(ctx, d1)`, then `(ctx, d2)`, each returning its error; then
/// `bpf_xdp_get_buff_len(ctx)`.
fn adjust_tail_prog(d1: i32, d2: i32) -> Vec<Insn> {
    vec![
        asm::mov64_reg(6, 1),
        asm::mov64_imm(2, d1),
        asm::call(65),
        asm::jne_imm(0, 0, 6),
        asm::mov64_reg(1, 6),
        asm::mov64_imm(2, d2),
        asm::call(65),
        asm::jne_imm(0, 0, 2),
        asm::mov64_reg(1, 6),
        asm::call(188),
        asm::exit(),
    ]
}

type Outcome = Result<(u32, Vec<u8>, Vec<u8>), i32>;

struct Checker {
    vm: Vm,
    runs: usize,
    differ: Vec<String>,
    /// Distinct non-zero negative return values seen (errnos the helpers gave).
    errnos: std::collections::BTreeSet<i32>,
}

impl Checker {
    fn check(&mut self, what: &str, code: &[Insn], case: &Case) {
        let image = asm::image(&[code]);
        let mut log = String::new();
        let k = KernelProg::load(ProgType::Xdp, 0, &image, "GPL", &mut log)
            .unwrap_or_else(|e| panic!("{what}: the kernel refuses the program ({e}): {log}"));
        let s = self
            .vm
            .load(Program::new(image, ProgramType::Xdp))
            .unwrap_or_else(|e| panic!("{what}: bpfvm refuses the program: {e}"));
        let with_ctx = !case.ctx.is_empty();
        let kernel: Outcome = k
            .test_run(&TestRun {
                data_in: case.bytes.clone(),
                data_out_size: case.bytes.len() + 2 * PAGE,
                ctx_in: case.ctx.clone(),
                ctx_out_size: if with_ctx { XDP_MD_SIZE } else { 0 },
                ..TestRun::default()
            })
            .map(|o| (o.retval, o.data_out, o.ctx_out))
            .map_err(|e| e.0);
        let input = Input {
            ctx: case.ctx.clone(),
            ..Input::packet(case.bytes.clone())
        };
        let bpfvm: Outcome = self
            .vm
            .test_run(
                &s,
                &VmTestRun {
                    input,
                    repeat: 1,
                    cpu: CpuId(0),
                },
            )
            .map(|o| {
                let ctx = if with_ctx { o.ctx_out } else { Vec::new() };
                (o.retval as u32, o.data_out, ctx)
            })
            .map_err(|e| e.errno());
        self.runs += 1;
        if let Ok((r, _, _)) = &kernel {
            if (*r as i32) < 0 {
                self.errnos.insert(*r as i32);
            }
        }
        let brief = |o: &Outcome| {
            o.as_ref()
                .map(|(r, out, ctx)| (*r as i32, out.len(), ctx.get(4..8).map(<[u8]>::to_vec)))
                .map_err(|e| *e)
        };
        println!(
            "{what} on {}: kernel {:?} bpfvm {:?}",
            case.what,
            brief(&kernel),
            brief(&bpfvm)
        );
        if kernel != bpfvm {
            let first = match (&kernel, &bpfvm) {
                (Ok((_, a, _)), Ok((_, b, _))) => a.iter().zip(b).position(|(x, y)| x != y),
                _ => None,
            };
            self.differ.push(format!(
                "{what} on {}: kernel {:?} bpfvm {:?} (data_out first differs at {first:?})",
                case.what,
                brief(&kernel),
                brief(&bpfvm)
            ));
        }
    }
}

#[test]
fn fragmented_xdp_packets_agree_with_the_kernel() {
    if !kernel::oracle_or_skip() {
        return;
    }
    let mut c = Checker {
        vm: Vm::builder().cpus(1).build(),
        runs: 0,
        differ: Vec::new(),
        errnos: Default::default(),
    };
    for case in cases() {
        let (lin, total) = (case.linear as i32, case.data_len() as i32);
        let frags = total - lin;
        c.check("data_end - data", &linear_len_prog(), &case);
        c.check("get_buff_len", &buff_len_prog(), &case);
        // (off, len, dst): across the linear part's end, across the first fragment's end,
        // the last bytes, one past them, an offset over 0xffff.
        let copies = [
            (lin - 8, 16, 0),
            (lin + PAGE as i32 - 20, 40, 0),
            (total - 16, 16, lin - 8),
            (total - 15, 16, 0),
            (0, 64, lin - 32),
            (0, 64, lin + PAGE as i32 - 32),
            (0x10000, 1, 0),
        ];
        for (off, len, dst) in copies {
            if off < 0 || dst < 0 {
                continue;
            }
            c.check(
                &format!("load_bytes({off}, {len}) store_bytes({dst})"),
                &load_store_prog(off, len, dst),
                &case,
            );
        }
        let tails = [
            (1, 0),
            (100, 0),
            (PAGE as i32, 0),
            (-1, 0),
            (-100, 0),
            (-frags, 0),
            (-frags - 1, 0),
            (-(total - 14), 0),
            (-(total - 13), 0),
            (i32::MIN, 0),
            (0, 0),
            (-frags - 5, 10),
            (-frags + 10, 5),
            (-(frags % PAGE as i32).max(1), 1),
        ];
        for (d1, d2) in tails {
            c.check(
                &format!("adjust_tail({d1}), adjust_tail({d2})"),
                &adjust_tail_prog(d1, d2),
                &case,
            );
        }
    }
    // The limits: 17 pages past the linear part, whatever its length.
    let limits = [
        Case::new(LINEAR_MAX + 17 * PAGE, 0, None),
        Case::new(LINEAR_MAX + 17 * PAGE + 1, 0, None),
        Case::new(LINEAR_MAX + 8 + 17 * PAGE, 8, None),
        Case::new(LINEAR_MAX + 8 + 17 * PAGE + 1, 8, None),
        Case::new(100 + 17 * PAGE, 0, Some(100)),
        Case::new(100 + 17 * PAGE + 1, 0, Some(100)),
        Case::new(17 * PAGE, 0, Some(0)),
        Case::new(17 * PAGE + 1, 0, Some(0)),
        Case::new(13 + 8, 8, Some(8)),
        Case::new(14 + 8, 8, Some(8)),
    ];
    for case in &limits {
        c.check("get_buff_len", &buff_len_prog(), case);
    }
    assert!(c.runs >= 250, "{} runs", c.runs);
    // The cases reach the helpers' errors: -EINVAL (22) and -EFAULT (14).
    assert!(
        c.errnos.contains(&-22) && c.errnos.contains(&-14),
        "{:?}",
        c.errnos
    );
    assert!(
        c.differ.is_empty(),
        "{} differences from the kernel:\n{}",
        c.differ.len(),
        c.differ.join("\n")
    );
}
