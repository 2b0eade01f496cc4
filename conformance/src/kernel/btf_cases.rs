//! Verdict cases that need the running kernel's BTF (`/sys/kernel/btf/vmlinux`) as bpfvm's
//! target BTF: `tp_btf/T` programs (loaded with the tracepoint's `btf_trace_T` as attach
//! target), and `raw_tp` and `tc` programs that reach BTF-typed kernel objects through
//! helpers. Each case is loaded by the kernel (as root) and verified by bpfvm; the verdict,
//! the errno and every line of bpfvm's message must be the kernel's.

use bpfvm::loader::{Btf, BtfType};
use bpfvm::Privilege;
use bpfvm_verifier::ProgType;

use super::consts::ProgType as KProgType;
use super::KernelProg;
use crate::verdicts::{asm, compare, Case};

/// `expected_attach_type` of `tp_btf` programs (`BPF_TRACE_RAW_TP`).
const BPF_TRACE_RAW_TP: u32 = 23;

/// One case: section (`tp_btf/T`, `raw_tp` or `tc`), program source, license, and
/// whether the kernel accepts it.
#[derive(Debug, Clone)]
pub struct BtfCase {
    /// `tp_btf/T`, `raw_tp` or `tc`.
    pub section: &'static str,
    /// The program, in the assembler's syntax.
    pub src: String,
    /// The license string.
    pub license: &'static str,
    /// The kernel's verdict the case was written for.
    pub accepts: bool,
}

/// A GPL case.
pub fn case(section: &'static str, src: impl Into<String>, accepts: bool) -> BtfCase {
    BtfCase {
        section,
        src: src.into(),
        license: "GPL",
        accepts,
    }
}

/// The running kernel's BTF, or `None`.
pub fn vmlinux() -> Option<Btf> {
    Btf::from_file("/sys/kernel/btf/vmlinux").ok()
}

/// The id of typedef `name` in `btf` (panics if it has none).
pub fn typedef_id(btf: &Btf, name: &str) -> u32 {
    btf.types()
        .iter()
        .position(|t| matches!(t, BtfType::Typedef { name: n, .. } if **n == *name))
        .unwrap_or_else(|| panic!("no {name} in vmlinux")) as u32
}

/// Judges every case on both sides with `btf` as the target BTF; one line per case that
/// differs (or whose kernel verdict is no longer the one it was written for).
pub fn check_all(btf: &Btf, cases: &[BtfCase]) -> Vec<String> {
    let mut failures = Vec::new();
    for case in cases {
        let name = format!(
            "{} ({}): {}",
            case.section,
            case.license,
            case.src.replace('\n', "; ")
        );
        let insns = asm(&case.src);
        let (kernel_errno, log, ours) = match case.section {
            "raw_tp" | "tc" => {
                let pt = if case.section == "tc" {
                    ProgType::SchedCls
                } else {
                    ProgType::RawTracepoint
                };
                let mut k = Case::new(&name, pt, insns);
                k.license = case.license.into();
                k.kernel_btf = Some(btf.clone());
                let cmp = compare(&k, Privilege::Root).unwrap_or_else(|e| panic!("{name}: {e}"));
                (cmp.kernel_errno, cmp.kernel_messages.join("\n"), cmp.ours)
            }
            section => {
                let tp = section
                    .strip_prefix("tp_btf/")
                    .unwrap_or_else(|| panic!("{name}: section {section}"));
                let mut log = String::new();
                let kernel = KernelProg::load_attach_btf(
                    KProgType::Tracing,
                    BPF_TRACE_RAW_TP,
                    typedef_id(btf, &format!("btf_trace_{tp}")),
                    &insns,
                    case.license,
                    &mut log,
                );
                let c = bpfvm::loader::tracing_ctx(btf, section, BPF_TRACE_RAW_TP)
                    .unwrap()
                    .expect("a typed attach type");
                let mut k = Case::new(&name, ProgType::Tracing(c), insns);
                k.attach = Some(BPF_TRACE_RAW_TP);
                k.license = case.license.into();
                k.kernel_btf = Some(btf.clone());
                (kernel.err().map(|e| e.0), log, k.ours(Privilege::Root))
            }
        };
        println!(
            "{name}: kernel {kernel_errno:?} {:?}, bpfvm {:?}",
            log.lines()
                .rev()
                .find(|l| !l.starts_with("processed") && !l.is_empty()),
            ours.as_ref().err().map(|e| &e.message)
        );
        if kernel_errno.is_none() != case.accepts {
            failures.push(format!("{name}: the kernel's verdict changed: {log}"));
            continue;
        }
        match (kernel_errno, &ours) {
            (None, Ok(_)) => {}
            (Some(k), Err(o))
                if k == o.errno && o.message.lines().all(|l| log.lines().any(|k| k == l)) => {}
            (k, o) => failures.push(format!("{name}: kernel {k:?} {log:?}, bpfvm {o:?}")),
        }
    }
    failures
}
