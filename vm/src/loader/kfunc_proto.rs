//! What the verifier checks a kfunc call against, from the BTF `FUNC_PROTO` of the
//! program's `extern ... __ksym` declaration, classified as the kernel classifies a
//! kfunc's arguments (`get_kfunc_ptr_arg_type`, `is_kfunc_arg_mem_size`).

use crate::kfunc::{KfuncArg, KfuncRet};

use super::btf::{Btf, BtfType};

/// Context structures a kfunc argument may point to (`btf_is_prog_ctx_type`).
const CTX_TYPES: &[&str] = &["__sk_buff", "xdp_md", "pt_regs", "bpf_sock_ops"];

/// Kernel structures whose pointers kfuncs take as objects with rules of their own
/// (dynptrs, iterators, lists, trees, ...), not as plain memory, although their BTF is a
/// struct of scalars; `bpf_iter_*` too.
const SPECIAL_STRUCTS: &[&str] = &[
    "bpf_dynptr",
    "bpf_list_head",
    "bpf_list_node",
    "bpf_rb_root",
    "bpf_rb_node",
    "bpf_refcount",
    "bpf_wq",
    "bpf_timer",
    "bpf_spin_lock",
    "bpf_res_spin_lock",
    "bpf_task_work",
    "bpf_map",
];

/// Whether `id` (resolved) is one of the [`SPECIAL_STRUCTS`] or an iterator.
fn is_special(btf: &Btf, id: u32) -> bool {
    match btf.resolve(id).and_then(|r| btf.get(r)) {
        Some(BtfType::Struct { name, .. }) => {
            SPECIAL_STRUCTS.contains(&name.as_str()) || name.starts_with("bpf_iter_")
        }
        _ => false,
    }
}

/// Most arguments a kfunc takes (`MAX_BPF_FUNC_REG_ARGS`).
const MAX_ARGS: usize = 5;

/// Whether `id` (resolved) is an integer, enum or bool.
fn is_scalar(btf: &Btf, id: u32) -> bool {
    matches!(
        btf.resolve(id).and_then(|r| btf.get(r)),
        Some(BtfType::Int { .. } | BtfType::Enum { .. })
    )
}

/// `__btf_type_is_scalar_struct`: a struct whose members are scalars or arrays of them.
fn is_scalar_struct(btf: &Btf, id: u32, depth: u32) -> bool {
    if depth > 4 {
        return false;
    }
    match btf.resolve(id).and_then(|r| btf.get(r)) {
        Some(BtfType::Int { .. } | BtfType::Enum { .. }) => true,
        Some(BtfType::Array { elem, .. }) => is_scalar_struct(btf, *elem, depth + 1),
        Some(BtfType::Struct { members, .. }) => members
            .iter()
            .all(|m| is_scalar_struct(btf, m.type_id, depth + 1)),
        _ => false,
    }
}

/// The arguments and return value of FUNC_PROTO `proto`.
pub(crate) fn classify(btf: &Btf, proto: u32) -> (Vec<KfuncArg>, KfuncRet) {
    let Some(BtfType::FuncProto {
        ret,
        params,
        param_names,
    }) = btf.get(proto)
    else {
        return (
            vec![KfuncArg::Other(
                "a declaration that is not a function".into(),
            )],
            KfuncRet::Other("a declaration that is not a function".into()),
        );
    };
    let mut args = Vec::with_capacity(params.len().min(MAX_ARGS + 1));
    if params.len() > MAX_ARGS {
        args.push(KfuncArg::Other(format!("{} arguments", params.len())));
    }
    for (i, &p) in params.iter().enumerate().take(MAX_ARGS) {
        let sized_by_next = param_names.get(i + 1).is_some_and(|n| n.ends_with("__sz"))
            && params.get(i + 1).is_some_and(|&n| is_scalar(btf, n));
        let arg = match btf.resolve(p).and_then(|r| btf.get(r)) {
            _ if i > 0 && matches!(args.last(), Some(KfuncArg::MemSized)) => KfuncArg::Size,
            Some(BtfType::Int { .. } | BtfType::Enum { .. }) => KfuncArg::Scalar,
            Some(BtfType::Ptr { target }) => {
                let pointee = btf.resolve(*target).and_then(|r| btf.get(r));
                match pointee {
                    Some(BtfType::Struct { name, .. }) if CTX_TYPES.contains(&name.as_str()) => {
                        KfuncArg::Ctx
                    }
                    _ if is_special(btf, *target) => KfuncArg::Ptr {
                        pointee: btf.type_name(*target),
                    },
                    _ if sized_by_next => KfuncArg::MemSized,
                    _ if is_scalar_struct(btf, *target, 0) => match btf.size_of(*target) {
                        Some(size) if size > 0 => KfuncArg::Mem { size },
                        _ => KfuncArg::Ptr {
                            pointee: btf.type_name(*target),
                        },
                    },
                    _ => KfuncArg::Ptr {
                        pointee: btf.type_name(*target),
                    },
                }
            }
            _ => KfuncArg::Other(format!("an argument of type {}", btf.type_name(p))),
        };
        args.push(arg);
    }
    let ret = match btf.resolve(*ret).and_then(|r| btf.get(r)) {
        Some(BtfType::Void) | None if *ret == 0 => KfuncRet::Void,
        Some(BtfType::Int { .. } | BtfType::Enum { .. }) => KfuncRet::Scalar,
        Some(BtfType::Ptr { target }) if is_scalar_struct(btf, *target, 0) => {
            match btf.size_of(*target) {
                Some(size) if size > 0 => KfuncRet::Mem { size },
                _ => KfuncRet::Other(format!("a pointer to {}", btf.type_name(*target))),
            }
        }
        _ => KfuncRet::Other(format!("a value of type {}", btf.type_name(*ret))),
    };
    (args, ret)
}
