//! Verdict tests of hand-written verifier cases: what the kernel is expected to do with a
//! case (checked first, so that a case that stopped testing its rule is noticed) and the
//! comparison of both verifiers for both loaders. Shared by the kernel-verdict suites
//! (`kernel_verifier_rules`, `kernel_verifier_divergences`).

use bpfvm_verifier::Privilege;

use crate::verdicts::{Case, Comparison};

/// Both loaders: CAP_BPF + CAP_NET_ADMIN, and root.
pub const BOTH: [Privilege; 2] = [Privilege::CapBpfNetAdmin, Privilege::Root];

/// What the kernel does with a case.
#[derive(Debug, Clone, Copy, PartialEq)]
pub enum Expect {
    /// Refused for both loaders.
    Refused,
    /// Refused for the CAP_BPF loader, accepted for root.
    RootOnly,
    /// Accepted for both.
    Accepted,
    /// Refused for the CAP_BPF loader; accepted for root, where bpfvm's verifier refuses
    /// it as something it does not model (`Rule::Unsupported`, a documented difference).
    RootUnmodelled,
}

impl Expect {
    /// Whether the kernel refuses the case for loader `p`.
    pub fn kernel_refuses(self, p: Privilege) -> bool {
        match self {
            Expect::Refused => true,
            Expect::RootOnly | Expect::RootUnmodelled => p == Privilege::CapBpfNetAdmin,
            Expect::Accepted => false,
        }
    }
}

/// Judges `case` for both loaders with `judge` (the kernel and bpfvm:
/// [`crate::verdicts::compare`] on Linux) and records in `failures` every way it falls
/// short: the kernel's verdict is not `expect`'s, the verdicts or errnos differ, or bpfvm's
/// message is not one of the kernel's log lines. Returns the verdicts compared.
pub fn check(
    case: &Case,
    expect: Expect,
    judge: impl Fn(&Case, Privilege) -> Result<Comparison, String>,
    failures: &mut Vec<String>,
) -> usize {
    let mut n = 0;
    for p in BOTH {
        let cmp = judge(case, p).unwrap_or_else(|e| panic!("{}: {e}", case.name));
        n += 1;
        println!("[{p:?}] {}", cmp.describe());
        let kernel_refused = cmp.kernel_errno.is_some();
        if kernel_refused != expect.kernel_refuses(p) {
            failures.push(format!(
                "[{p:?}] {}: the kernel no longer gives the expected verdict ({expect:?}): {}",
                case.name,
                cmp.describe()
            ));
            continue;
        }
        if expect == Expect::RootUnmodelled && p == Privilege::Root {
            if !matches!(&cmp.ours, Err(e) if e.rule == bpfvm_verifier::Rule::Unsupported) {
                failures.push(format!(
                    "[{p:?}] not refused as unmodelled: {}",
                    cmp.describe()
                ));
            }
            continue;
        }
        if !cmp.same_verdict() || !cmp.same_errno() {
            failures.push(format!("[{p:?}] verdicts differ: {}", cmp.describe()));
        } else if kernel_refused && !cmp.kernel_messages.is_empty() && !cmp.same_message() {
            failures.push(format!(
                "[{p:?}] messages differ: {}\n    kernel log: {:?}",
                cmp.describe(),
                cmp.kernel_messages
            ));
        }
    }
    n
}

/// bpfvm's verdicts on `cases` for both loaders, without a kernel: one line for every case
/// whose verdict is not the one `expect` gives the kernel and, with `unmodelled_is_wrong`,
/// for every refusal as something bpfvm's verifier does not model.
pub fn offline_mismatches(cases: &[(Case, Expect)], unmodelled_is_wrong: bool) -> Vec<String> {
    let mut wrong = Vec::new();
    for (case, expect) in cases {
        for p in BOTH {
            let ours = case.ours(p);
            if ours.is_err() != expect.kernel_refuses(p) {
                wrong.push(format!("[{p:?}] {} ({expect:?}): {ours:?}", case.name));
            }
            match &ours {
                Err(e) if unmodelled_is_wrong && e.rule == bpfvm_verifier::Rule::Unsupported => {
                    wrong.push(format!("[{p:?}] {}: not modelled: {e}", case.name));
                }
                _ => {}
            }
        }
    }
    wrong
}

/// [`check`]s every case of `cases` with `judge`; returns how many verdicts were compared
/// and every failure.
pub fn check_all(
    cases: &[(Case, Expect)],
    judge: impl Fn(&Case, Privilege) -> Result<Comparison, String>,
) -> (usize, Vec<String>) {
    let mut failures = Vec::new();
    let compared = cases
        .iter()
        .map(|(case, expect)| check(case, *expect, &judge, &mut failures))
        .sum();
    (compared, failures)
}

/// Rewrites `call -1` (imm -1, a helper id no kernel has) into a local call to the first
/// instruction after the next `exit`: rbpf's assembler, which [`crate::verdicts::asm`]
/// uses, has no syntax for a bpf-to-bpf call.
///
/// ```
/// use bpfvm_conformance::rule_cases::fix_local_calls;
/// use bpfvm_conformance::verdicts::asm;
///
/// let mut p = asm("call -1\nexit\nmov64 r0, 0\nexit");
/// fix_local_calls(&mut p);
/// assert_eq!(p[1], 0x10); // src_reg 1: a local call
/// assert_eq!(i32::from_le_bytes(p[4..8].try_into().unwrap()), 1); // to instruction 2
/// ```
pub fn fix_local_calls(insns: &mut [u8]) {
    let n = insns.len() / 8;
    for i in 0..n {
        let o = i * 8;
        if insns[o] == 0x85 && insns[o + 4..o + 8] == (-1i32).to_le_bytes() {
            let exit = (i..n)
                .find(|&j| insns[j * 8] == 0x95)
                .expect("exit after call");
            insns[o + 1] = 0x10;
            insns[o + 4..o + 8].copy_from_slice(&((exit - i) as i32).to_le_bytes());
        }
    }
}
