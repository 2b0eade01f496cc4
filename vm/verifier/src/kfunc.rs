//! Kernel functions (kfuncs) a program may call: what the verifier is told of each
//! (`struct bpf_kfunc_desc` and the BTF prototype behind it) and the check of a call
//! against it (`check_kfunc_call`, `check_kfunc_args`).
//!
//! A call is `call` with `src_reg` `BPF_PSEUDO_KFUNC_CALL` and `imm` an index into
//! [`Program::kfuncs`](crate::Program::kfuncs) (the kernel's `imm` is a BTF id; the
//! loader that relocated the program gives both the same meaning).
//!
//! Modelled: scalar arguments, the program context, pointers to memory of a fixed size
//! (the pointee's) or of the size the next argument gives (`__sz` suffix), scalar and
//! memory returns, references acquired and released (`KF_ACQUIRE`, `KF_RELEASE`,
//! `KF_RET_NULL`), and the RCU read sections of `bpf_rcu_read_lock`/`unlock`. Anything
//! else refuses with [`Rule::Unsupported`](crate::Rule::Unsupported).

use crate::check_call::Meta;
use crate::ctx::Access;
use crate::error::{Rule, VerifierError, EACCES, EINVAL};
use crate::log::reg_type_str;
use crate::reg::{Reg, RegType, MAYBE_NULL};
use crate::state::RefState;
use crate::verifier::Verifier;

/// `KF_ACQUIRE`: the kfunc returns a pointer holding a reference.
pub const KF_ACQUIRE: u32 = 1 << 0;
/// `KF_RELEASE`: the kfunc releases the reference its first argument holds.
pub const KF_RELEASE: u32 = 1 << 1;
/// `KF_RET_NULL`: the returned pointer may be NULL.
pub const KF_RET_NULL: u32 = 1 << 2;

/// One argument of a kfunc, as its BTF prototype says.
#[derive(Clone, PartialEq, Eq, Debug)]
pub enum KfuncArg {
    /// An integer, enum or bool.
    Scalar,
    /// A pointer to the program's context type (`struct __sk_buff *`, `struct xdp_md *`).
    Ctx,
    /// A pointer to `size` bytes (the pointee's size).
    Mem {
        /// Bytes the kfunc may read and write.
        size: u32,
    },
    /// A pointer whose size is the next argument (named with the `__sz` suffix).
    MemSized,
    /// The size of the [`KfuncArg::MemSized`] argument before it.
    Size,
    /// A pointer whose size the prototype does not give (`void *`, a struct with
    /// pointers): usable only as a [`KfuncArg::MemSized`], when the next argument sizes
    /// it.
    Ptr {
        /// What it points to (messages).
        pointee: String,
    },
    /// What bpfvm's verifier does not model (the description says what).
    Other(String),
}

/// What a kfunc returns.
#[derive(Clone, PartialEq, Eq, Debug)]
pub enum KfuncRet {
    /// `void`.
    Void,
    /// An integer, enum or bool.
    Scalar,
    /// A pointer to `size` bytes of memory.
    Mem {
        /// Size of the pointee.
        size: u32,
    },
    /// What bpfvm's verifier does not model.
    Other(String),
}

/// A kfunc the program may call.
#[derive(Clone, PartialEq, Eq, Debug)]
pub struct Kfunc {
    /// Its name (messages).
    pub name: String,
    /// Arguments `r1..` in order (at most 5).
    pub args: Vec<KfuncArg>,
    /// The return value.
    pub ret: KfuncRet,
    /// `KF_*` flags ([`KF_ACQUIRE`], [`KF_RELEASE`], [`KF_RET_NULL`]).
    pub flags: u32,
}

type R<T> = Result<T, VerifierError>;

impl Verifier<'_> {
    /// A kfunc call (`check_kfunc_call`).
    pub(crate) fn check_kfunc_call(&mut self, imm: i32) -> R<()> {
        let prog = self.prog;
        let Some(k) = usize::try_from(imm).ok().and_then(|i| prog.kfuncs.get(i)) else {
            return Err(self.err(
                Rule::HelperNotAllowed,
                EINVAL,
                format!("kernel btf_id {imm} is not a function"),
            ));
        };
        let name = k.name.as_str();
        match name {
            "bpf_rcu_read_lock" if self.cur.active_rcu_lock => {
                return Err(self.err(
                    Rule::References,
                    EINVAL,
                    format!("nested rcu read lock (kernel function {name})"),
                ));
            }
            "bpf_rcu_read_unlock" if !self.cur.active_rcu_lock => {
                return Err(self.err(
                    Rule::References,
                    EINVAL,
                    format!("unmatched rcu read unlock (kernel function {name})"),
                ));
            }
            _ => {}
        }
        let mut release = None;
        for (i, arg) in k.args.iter().enumerate().take(5) {
            let regno = (i + 1) as u8;
            self.check_reg_src(regno)?;
            let reg = *self.reg(regno);
            if crate::dynptr::kfunc_dynptr_arg(name, arg) {
                self.check_dynptr_kfunc_arg(regno)?;
                continue;
            }
            // The arguments in order, as the kernel checks them: one bpfvm does not
            // model ends the check there.
            let unmodelled = match arg {
                KfuncArg::Other(what) => Some(what.clone()),
                KfuncArg::Ptr { pointee } => Some(format!(
                    "a pointer to {pointee} of no known size (for memory, register the kfunc with \
                     KfuncFlags::sized)"
                )),
                _ => None,
            };
            if let Some(what) = unmodelled {
                return Err(self.err(
                    Rule::Unsupported,
                    EINVAL,
                    format!(
                        "kernel function {name} takes {what} as arg#{i}, which bpfvm's verifier does not model"
                    ),
                ));
            }
            match arg {
                KfuncArg::Scalar => {
                    if reg.ty != RegType::Scalar {
                        return Err(self.err(
                            Rule::HelperArgs,
                            EINVAL,
                            format!("R{regno} is not a scalar"),
                        ));
                    }
                }
                KfuncArg::Ctx => {
                    if reg.ty != RegType::Ctx {
                        return Err(self.err(
                            Rule::HelperArgs,
                            EINVAL,
                            format!(
                                "arg#{i} expected pointer to ctx, but got {}",
                                reg_type_str(reg.ty, reg.flags)
                            ),
                        ));
                    }
                }
                KfuncArg::Mem { size } => {
                    if reg.maybe_null() {
                        // Pointer arguments are trusted (KF_TRUSTED_ARGS).
                        return Err(self.err(
                            Rule::HelperArgs,
                            EACCES,
                            format!("Possibly NULL pointer passed to trusted arg{i}"),
                        ));
                    }
                    let size = i64::from(*size);
                    self.check_helper_mem_access(regno, size, Access::Read, true, None)?;
                    self.check_helper_mem_access(regno, size, Access::Write, true, None)?;
                }
                KfuncArg::MemSized => {
                    if !matches!(k.args.get(i + 1), Some(KfuncArg::Size)) || i + 1 >= 5 {
                        return Err(self.internal("a sized memory argument without its size"));
                    }
                    self.check_reg_src(regno + 1)?;
                    let mut meta = Meta::default();
                    let pair = self
                        .check_mem_size_reg(regno + 1, Access::Read, true, &mut meta)
                        .and_then(|()| {
                            self.check_mem_size_reg(regno + 1, Access::Write, true, &mut meta)
                        });
                    if pair.is_err() {
                        return Err(self.err(
                            Rule::HelperArgs,
                            EACCES,
                            format!(
                                "arg#{i} arg#{} memory, len pair leads to invalid memory access",
                                i + 1
                            ),
                        ));
                    }
                }
                KfuncArg::Size => {
                    if reg.ty != RegType::Scalar {
                        return Err(self.err(
                            Rule::HelperArgs,
                            EINVAL,
                            format!("R{regno} is not a scalar"),
                        ));
                    }
                }
                KfuncArg::Other(_) | KfuncArg::Ptr { .. } => {}
            }
            if i == 0 && k.flags & KF_RELEASE != 0 {
                if reg.ref_obj_id == 0 || reg.maybe_null() {
                    return Err(self.err(
                        Rule::References,
                        EINVAL,
                        format!("release kernel function {name} expects refcounted PTR_TO_BTF_ID"),
                    ));
                }
                release = Some(reg.ref_obj_id);
            }
        }
        if let KfuncRet::Other(what) = &k.ret {
            return Err(self.err(
                Rule::Unsupported,
                EINVAL,
                format!(
                    "kernel function {name} returns {what}, which bpfvm's verifier does not model"
                ),
            ));
        }
        if let Some(id) = release {
            if !self.release_reference(id) {
                return Err(self.err(
                    Rule::References,
                    EINVAL,
                    format!("kernel function {name} reference has not been acquired before"),
                ));
            }
        }
        match name {
            "bpf_rcu_read_lock" => self.cur.active_rcu_lock = true,
            "bpf_rcu_read_unlock" => self.cur.active_rcu_lock = false,
            _ => {}
        }
        for r in 0..=5 {
            *self.reg_mut(r) = Reg::not_init();
        }
        let r0 = match &k.ret {
            KfuncRet::Void => Reg::not_init(),
            KfuncRet::Scalar => self.unknown_scalar(),
            KfuncRet::Mem { size } => {
                let mut r = Reg::pointer(RegType::Mem);
                r.aux = *size;
                if k.flags & KF_RET_NULL != 0 {
                    r.flags = MAYBE_NULL;
                }
                r
            }
            KfuncRet::Other(_) => unreachable!("refused above"),
        };
        *self.reg_mut(0) = r0;
        if k.flags & KF_ACQUIRE != 0 && matches!(k.ret, KfuncRet::Mem { .. }) {
            let rid = self.new_id();
            self.cur.refs.push(RefState {
                id: rid,
                insn_idx: self.insn_idx,
            });
            let r0 = self.reg_mut(0);
            if r0.maybe_null() {
                r0.id = rid;
            }
            r0.ref_obj_id = rid;
        }
        if self.reg(0).maybe_null() && self.reg(0).id == 0 {
            let nid = self.new_id();
            self.reg_mut(0).id = nid;
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::{verify, Insn, MapInfo, Options, ProgType, Program, Rule};

    /// `call kfunc #k`.
    fn kcall(k: u32) -> u64 {
        0x2085 | (u64::from(k) << 32)
    }
    const EXIT: u64 = 0x95;
    const R0_0: u64 = 0xb7; // r0 = 0
    /// `r1 = <imm>` (64-bit move).
    fn r1_imm(imm: u32) -> u64 {
        0x01b7 | (u64::from(imm) << 32)
    }
    const R1_FP: u64 = 0xa1bf; // r1 = r10
    const R1_ADD_M8: u64 = 0xffff_fff8_0000_0107; // r1 += -8
    const STDW_FP_M8_0: u64 = 0x0000_0000_fff8_0a7a; // *(u64 *)(r10 - 8) = 0
    const R2_8: u64 = 0x0000_0008_0000_02b7; // r2 = 8
    const R2_16: u64 = 0x0000_0010_0000_02b7; // r2 = 16

    fn kfunc(name: &str, args: Vec<KfuncArg>, ret: KfuncRet, flags: u32) -> Kfunc {
        Kfunc {
            name: name.into(),
            args,
            ret,
            flags,
        }
    }

    fn check(words: &[u64], kfuncs: &[Kfunc], gpl: bool) -> Result<(), crate::VerifierError> {
        let insns: Vec<Insn> = words.iter().map(|&w| Insn::from_word(w)).collect();
        let prog = Program {
            insns: &insns,
            prog_type: ProgType::Xdp,
            expected_attach_type: None,
            maps: &[] as &[MapInfo],
            gpl_compatible: gpl,
            func_info: false,
            kfuncs,
            btf: None,
        };
        verify(&prog, &Options::default()).map(|_| ())
    }

    fn refusal(words: &[u64], kfuncs: &[Kfunc]) -> String {
        check(words, kfuncs, true).unwrap_err().message
    }

    #[test]
    fn scalar_ctx_and_sized_memory_arguments() {
        let scalar = [kfunc("f", vec![KfuncArg::Scalar], KfuncRet::Scalar, 0)];
        assert!(check(&[r1_imm(5), kcall(0), EXIT], &scalar, true).is_ok());
        // r1 is still the context: not a scalar.
        assert_eq!(refusal(&[kcall(0), EXIT], &scalar), "R1 is not a scalar");
        let ctx = [kfunc("f", vec![KfuncArg::Ctx], KfuncRet::Scalar, 0)];
        assert!(check(&[kcall(0), EXIT], &ctx, true).is_ok());
        assert_eq!(
            refusal(&[r1_imm(0), kcall(0), EXIT], &ctx),
            "arg#0 expected pointer to ctx, but got scalar"
        );
        let mem = [kfunc(
            "f",
            vec![KfuncArg::MemSized, KfuncArg::Size],
            KfuncRet::Void,
            0,
        )];
        let ok = [STDW_FP_M8_0, R1_FP, R1_ADD_M8, R2_8, kcall(0), R0_0, EXIT];
        assert!(check(&ok, &mem, true).is_ok());
        let over = [STDW_FP_M8_0, R1_FP, R1_ADD_M8, R2_16, kcall(0), R0_0, EXIT];
        assert_eq!(
            refusal(&over, &mem),
            "arg#0 arg#1 memory, len pair leads to invalid memory access"
        );
        // r0 of a void kfunc is not readable.
        let e = check(
            &[STDW_FP_M8_0, R1_FP, R1_ADD_M8, R2_8, kcall(0), EXIT],
            &mem,
            true,
        )
        .unwrap_err();
        assert_eq!(e.message, "R0 !read_ok");
    }

    #[test]
    fn unknown_indices_licenses_and_unmodelled_types_are_refused() {
        let f = [kfunc("f", vec![], KfuncRet::Void, 0)];
        assert_eq!(
            refusal(&[kcall(1), R0_0, EXIT], &f),
            "kernel btf_id 1 is not a function"
        );
        let e = check(&[kcall(0), R0_0, EXIT], &f, false).unwrap_err();
        assert_eq!(
            e.message,
            "cannot call kernel function from non-GPL compatible program"
        );
        let other = [kfunc(
            "g",
            vec![KfuncArg::Ptr {
                pointee: "void".into(),
            }],
            KfuncRet::Void,
            0,
        )];
        let e = check(&[kcall(0), R0_0, EXIT], &other, true).unwrap_err();
        assert_eq!(e.rule, Rule::Unsupported);
    }

    #[test]
    fn rcu_read_sections_follow_the_kernel() {
        let rcu = [
            kfunc("bpf_rcu_read_lock", vec![], KfuncRet::Void, 0),
            kfunc("bpf_rcu_read_unlock", vec![], KfuncRet::Void, 0),
        ];
        assert!(check(&[kcall(0), kcall(1), R0_0, EXIT], &rcu, true).is_ok());
        assert_eq!(
            refusal(&[kcall(0), kcall(0), R0_0, EXIT], &rcu),
            "nested rcu read lock (kernel function bpf_rcu_read_lock)"
        );
        assert_eq!(
            refusal(&[kcall(1), R0_0, EXIT], &rcu),
            "unmatched rcu read unlock (kernel function bpf_rcu_read_unlock)"
        );
        assert_eq!(
            refusal(&[kcall(0), R0_0, EXIT], &rcu),
            "BPF_EXIT instruction in main prog cannot be used inside bpf_rcu_read_lock-ed region"
        );
    }

    #[test]
    fn acquired_references_must_be_released() {
        let k = [
            kfunc(
                "get",
                vec![],
                KfuncRet::Mem { size: 8 },
                KF_ACQUIRE | KF_RET_NULL,
            ),
            kfunc(
                "put",
                vec![KfuncArg::Mem { size: 8 }],
                KfuncRet::Void,
                KF_RELEASE,
            ),
        ];
        const IF_R0_0_SKIP2: u64 = 0x0002_0015; // if r0 == 0 goto +2
        const R1_R0: u64 = 0x01bf; // r1 = r0
                                   // r0 = get(); if (r0) put(r0); return 0
        let paired = [kcall(0), IF_R0_0_SKIP2, R1_R0, kcall(1), R0_0, EXIT];
        assert!(check(&paired, &k, true).is_ok());
        let leak = [kcall(0), R0_0, EXIT];
        assert!(refusal(&leak, &k).starts_with("Unreleased reference id="));
        // Releasing what may be NULL, or what holds no reference.
        assert_eq!(
            refusal(&[kcall(0), R1_R0, kcall(1), R0_0, EXIT], &k),
            "Possibly NULL pointer passed to trusted arg0"
        );
        let put_stack = [STDW_FP_M8_0, R1_FP, R1_ADD_M8, kcall(1), R0_0, EXIT];
        assert_eq!(
            refusal(&put_stack, &k),
            "release kernel function put expects refcounted PTR_TO_BTF_ID"
        );
    }
}
