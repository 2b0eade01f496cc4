//! The attach target of a `BPF_PROG_TYPE_TRACING` program (`fentry/F`, `fexit/F`,
//! `fmod_ret/F`, `tp_btf/T`), found in the target BTF as libbpf finds it
//! (`find_kernel_btf_id`): the function `F`, or the typedef `btf_trace_T` of a raw
//! tracepoint. Its prototype types the program's context for the verifier
//! ([`TracingCtx`]): one `u64` slot per argument (a `tp_btf` prototype's first argument,
//! `void *__data`, is not one), plus the return value for `fexit` and `fmod_ret`; a
//! pointer to a struct or union is a `PTR_TO_BTF_ID`.
//!
//! ```
//! use bpfvm::loader::{tracing_ctx, Btf};
//!
//! let target = Btf::parse_any(include_bytes!("../../tests/fixtures/tracing_target.btf"))?;
//! // int bpfvm_traced(struct task_struct *task, unsigned long flags)
//! let c = tracing_ctx(&target, "fexit/bpfvm_traced", 25)?.unwrap();
//! assert_eq!((c.nr_slots, c.btf_ptr_slots), (3, 0b001));
//! assert!(tracing_ctx(&target, "fentry/no_such_function", 24).is_err());
//! # Ok::<(), bpfvm::loader::LoadError>(())
//! ```

use bpfvm_verifier::TracingCtx;

use super::btf::{Btf, BtfType};
use super::error::LoadError;

/// `BPF_TRACE_RAW_TP` (`tp_btf`).
const TRACE_RAW_TP: u32 = 23;
/// `BPF_TRACE_FEXIT`.
const TRACE_FEXIT: u32 = 25;
/// `BPF_MODIFY_RETURN`.
const MODIFY_RETURN: u32 = 26;
/// `MAX_BPF_FUNC_ARGS`.
const MAX_ARGS: usize = 12;

/// The context of the tracing program in `section` with expected attach type `attach`
/// (23 `tp_btf`, 24 `fentry`, 25 `fexit`, 26 `fmod_ret`), from `target`; `Ok(None)` for
/// attach types bpfvm does not type (iterators, `fentry.multi`). Fails with
/// [`LoadError::TracingTargetNotFound`] when `target` has no such function or tracepoint.
pub fn tracing_ctx(
    target: &Btf,
    section: &str,
    attach: u32,
) -> Result<Option<TracingCtx>, LoadError> {
    if !(TRACE_RAW_TP..=MODIFY_RETURN).contains(&attach) {
        return Ok(None);
    }
    let name = section.split_once('/').map_or("", |(_, n)| n);
    let not_found = || LoadError::TracingTargetNotFound {
        section: section.to_string(),
        target: name.to_string(),
    };
    if name.is_empty() {
        return Err(not_found());
    }
    let (params, ret) = if attach == TRACE_RAW_TP {
        let typedef = format!("btf_trace_{name}");
        let id = find(
            target,
            |t| matches!(t, BtfType::Typedef { name, .. } if **name == *typedef),
        )
        .ok_or_else(not_found)?;
        let ptr = target.resolve(id).ok_or_else(not_found)?;
        let Some(BtfType::Ptr { target: proto }) = target.get(ptr) else {
            return Err(not_found());
        };
        let (params, ret) = proto_of(target, *proto).ok_or_else(not_found)?;
        // The first argument is the tracepoint's `void *__data`.
        (params.get(1..).unwrap_or_default().to_vec(), ret)
    } else {
        let id = find(
            target,
            |t| matches!(t, BtfType::Func { name: n, .. } if **n == *name),
        )
        .ok_or_else(not_found)?;
        let Some(BtfType::Func { proto, .. }) = target.get(id) else {
            return Err(not_found());
        };
        proto_of(target, *proto).ok_or_else(not_found)?
    };
    let mut slots: Vec<u32> = params.into_iter().take(MAX_ARGS).collect();
    if attach == TRACE_FEXIT || attach == MODIFY_RETURN {
        slots.push(ret);
    }
    let mut btf_ptr_slots = 0u16;
    let mut btf_ids = [0u32; 13];
    for (i, &ty) in slots.iter().enumerate() {
        if let Some(id) = ptr_to_struct(target, ty) {
            btf_ptr_slots |= 1 << i;
            btf_ids[i] = id;
        }
    }
    Ok(Some(TracingCtx {
        nr_slots: slots.len() as u8,
        btf_ptr_slots,
        btf_ids,
        known: true,
    }))
}

/// The first type matching `f`.
fn find(btf: &Btf, f: impl Fn(&BtfType) -> bool) -> Option<u32> {
    btf.types().iter().position(f).map(|i| i as u32)
}

/// A `FuncProto`'s parameter types and return type.
fn proto_of(btf: &Btf, id: u32) -> Option<(Vec<u32>, u32)> {
    match btf.get(btf.resolve(id)?)? {
        BtfType::FuncProto { ret, params, .. } => Some((params.clone(), *ret)),
        _ => None,
    }
}

/// The struct or union `ty` points to (through typedefs and modifiers), when it is such
/// a pointer.
fn ptr_to_struct(btf: &Btf, ty: u32) -> Option<u32> {
    let Some(BtfType::Ptr { target }) = btf.resolve(ty).and_then(|id| btf.get(id)) else {
        return None;
    };
    let id = btf.resolve(*target)?;
    matches!(
        btf.get(id),
        Some(BtfType::Struct { .. } | BtfType::Union { .. })
    )
    .then_some(id)
}

/// Sets `program`'s tracing context from `target`, or gives why the program is refused: a
/// tracing program bpfvm types needs a target BTF that has its attach target.
pub(crate) fn attach(
    program: &mut super::ProgramDefinition,
    target: Option<&Btf>,
) -> Option<LoadError> {
    let st = program.section_type?;
    let attach = st.expected_attach_type.unwrap_or(0);
    if st.prog_type != super::KernelProgType::Tracing
        || !(TRACE_RAW_TP..=MODIFY_RETURN).contains(&attach)
    {
        return None;
    }
    let Some(target) = target else {
        return Some(LoadError::TracingNeedsBtf {
            program: program.name.to_string(),
            section: program.section.to_string(),
        });
    };
    match tracing_ctx(target, &program.section, attach) {
        Ok(c) => {
            program.tracing_ctx = c;
            None
        }
        Err(e) => Some(e),
    }
}
