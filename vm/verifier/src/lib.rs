//! A BPF verifier that gives the Linux kernel's verdict, with the kernel's reason, without
//! a kernel.
//!
//! It follows every path of a relocated program as the kernel's verifier (6.x) does,
//! tracking register types, scalar ranges (known bits and signed/unsigned 64- and 32-bit
//! bounds), packet ranges, NULL checks, stack slots and map value bounds, and refuses what
//! the kernel refuses, in the kernel's words:
//!
//! ```
//! use bpfvm_verifier::{verify, Insn, MapInfo, Options, ProgType, Program};
//!
//! // r0 = *(u8 *)(r2 + 0) where r2 = ctx->data, without comparing against data_end.
//! let words: [u64; 4] = [
//!     0x0000_0000_0000_1261, // r2 = *(u32 *)(r1 + 0)   (xdp_md->data)
//!     0x0000_0000_0000_2071, // r0 = *(u8 *)(r2 + 0)
//!     0x0000_0000_0000_00b7, // r0 = 0
//!     0x0000_0000_0000_0095, // exit
//! ];
//! let insns: Vec<Insn> = words.iter().map(|&w| Insn::from_word(w)).collect();
//! let prog = Program {
//!     insns: &insns,
//!     prog_type: ProgType::Xdp,
//!     expected_attach_type: None,
//!     maps: &[] as &[MapInfo],
//!     gpl_compatible: true,
//!     func_info: false,
//!     kfuncs: &[],
//!     btf: None,
//! };
//! let err = verify(&prog, &Options::default()).unwrap_err();
//! assert_eq!(err.insn, Some(1));
//! assert!(err.message.starts_with("invalid access to packet, off=0 size=1, R2(id=0,off=0,r=0)"));
//! assert_eq!(err.errno, 13); // EACCES
//! ```
//!
//! Callbacks of `bpf_loop` and `bpf_for_each_map_elem` are followed as the kernel follows
//! them. Where bpfvm's verifier does not model something the kernel checks (kfuncs,
//! sockets, BTF-typed objects, the callbacks of other helpers), it refuses with
//! [`Rule::Unsupported`] rather than guess.
#![deny(unsafe_code)]

mod bounds;
mod btf_access;
mod btf_args;
mod callback;
mod cfg;
mod check_alu;
mod check_call;
mod check_jmp;
mod check_mem;
mod check_stack;
mod ctx;
mod ctx_trace;
mod dynptr;
mod error;
mod helpers;
pub use helpers::HELPER_NAMES;
#[cfg(test)]
mod inner_map_tests;
mod input;
mod insn;
mod kernel_btf;
pub use kernel_btf::{KernelBtf, KernelMember, KernelType};
mod kfunc;
pub use kfunc::{Kfunc, KfuncArg, KfuncRet, KF_ACQUIRE, KF_RELEASE, KF_RET_NULL};
mod liveness;
mod log;
mod may_goto;
mod precision;
mod prune;
mod reg;
mod scalar_alu;
mod sinks;
mod sock;
mod spin_lock;
mod stack;
mod state;
mod timer;
mod tnum;
mod verifier;

pub use bounds::Bounds;
pub use error::{Rule, VerifierError};
pub use input::{
    map_type, FieldKind, MapInfo, Options, Privilege, ProgType, Program, SpecialField, TracingCtx,
    BPF_CGROUP_INET_EGRESS, BPF_CGROUP_INET_INGRESS, BPF_F_RDONLY_PROG, BPF_F_WRONLY_PROG,
};
pub use insn::{decode, Insn};
pub use tnum::Tnum;
pub use verifier::{AccessKind, InsnFacts, Verdict};

use error::{E2BIG, EINVAL, EPERM};

/// Most instructions a program may have when loaded with `CAP_BPF`
/// (`BPF_COMPLEXITY_LIMIT_INSNS`).
pub const MAX_INSNS: usize = 1_000_000;

/// Verifies `prog` as the kernel's `BPF_PROG_LOAD` would: `Ok` with what the walk found
/// when the kernel accepts it, or the kernel's reason when it refuses it.
pub fn verify(prog: &Program<'_>, opts: &Options) -> Result<Verdict, VerifierError> {
    let n = prog.insns.len();
    if n == 0 {
        return Err(VerifierError::new(
            Rule::ProgramSize,
            EINVAL,
            "the program has no instructions",
        ));
    }
    if n > MAX_INSNS {
        return Err(VerifierError::new(
            Rule::ProgramSize,
            E2BIG,
            format!("BPF program is too large: {n} instructions, at most {MAX_INSNS}"),
        ));
    }
    if prog.prog_type.needs_perfmon() && !opts.privilege.perfmon() {
        return Err(VerifierError::new(
            Rule::Privilege,
            EPERM,
            format!(
                "loading {} programs needs CAP_PERFMON (privilege root)",
                prog.prog_type.name()
            ),
        ));
    }
    if prog.prog_type == ProgType::CgroupSkb
        && prog
            .expected_attach_type
            .is_some_and(|a| a != BPF_CGROUP_INET_INGRESS && a != BPF_CGROUP_INET_EGRESS)
    {
        return Err(VerifierError::new(
            Rule::Privilege,
            EINVAL,
            "cgroup_skb programs attach to the inet ingress or egress hook only",
        ));
    }
    let mut v = verifier::Verifier::new(prog, *opts);
    v.prepare()?;
    v.do_check()?;
    v.check_max_stack_depth()?;
    Ok(v.verdict())
}
