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
            "bpf_rcu_read_lock" => {
                if self.cur.active_rcu_lock {
                    return Err(self.err(
                        Rule::References,
                        EINVAL,
                        format!("nested rcu read lock (kernel function {name})"),
                    ));
                }
            }
            "bpf_rcu_read_unlock" => {
                if !self.cur.active_rcu_lock {
                    return Err(self.err(
                        Rule::References,
                        EINVAL,
                        format!("unmatched rcu read unlock (kernel function {name})"),
                    ));
                }
            }
            _ => {}
        }
        if let Some(KfuncArg::Other(what)) = k.args.iter().find(|a| matches!(a, KfuncArg::Other(_)))
        {
            return Err(self.err(
                Rule::Unsupported,
                EINVAL,
                format!(
                    "kernel function {name} takes {what}, which bpfvm's verifier does not model"
                ),
            ));
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
        if let Some(KfuncArg::Ptr { pointee }) =
            k.args.iter().find(|a| matches!(a, KfuncArg::Ptr { .. }))
        {
            return Err(self.err(
                Rule::Unsupported,
                EINVAL,
                format!(
                    "kernel function {name} takes a pointer to {pointee} of no known size, which bpfvm's verifier does not model"
                ),
            ));
        }
        let mut release = None;
        for (i, arg) in k.args.iter().enumerate().take(5) {
            let regno = (i + 1) as u8;
            self.check_reg_src(regno)?;
            let reg = *self.reg(regno);
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
                        return Err(self.err(
                            Rule::HelperArgs,
                            EACCES,
                            format!(
                                "R{regno} type={} expected=fp, pkt, pkt_meta, map_key, map_value, mem",
                                reg_type_str(reg.ty, reg.flags)
                            ),
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
                KfuncArg::Other(_) | KfuncArg::Ptr { .. } => unreachable!("refused above"),
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
