//! When a target type may stand for a local one: libbpf's three relations, each bounded
//! (32 levels of pointers/arrays/typedefs, 32 levels of nesting, and the relocation's
//! step [`Budget`]) so a malformed or hostile BTF costs bounded work.

use super::super::btf::{Btf, BtfType};
use super::types::{essential, kinds_compat, members, name, names_match, skip_mods, Budget};

/// Most pointer/array/return-type steps, and most nesting levels (libbpf's 32).
const MAX_LEVELS: i32 = 32;

fn too_deep() -> String {
    "types nest more than 32 levels deep".into()
}

/// libbpf's `bpf_core_fields_are_compat`: may a target field of type `targ_id` be read
/// as the local field of type `local_id`?
pub(crate) fn fields_compat(
    local: &Btf,
    local_id: u32,
    targ: &Btf,
    targ_id: u32,
    budget: &mut Budget,
) -> Result<bool, String> {
    let (mut lid, mut tid) = (local_id, targ_id);
    for _ in 0..MAX_LEVELS {
        budget.step()?;
        let (_, lt) = skip_mods(local, lid)?;
        let (_, tt) = skip_mods(targ, tid)?;
        if members(lt).is_some() && members(tt).is_some() {
            return Ok(true);
        }
        if !kinds_compat(lt, tt) {
            return Ok(false);
        }
        return Ok(match (lt, tt) {
            (BtfType::Ptr { .. }, _) | (BtfType::Float { .. }, _) => true,
            (BtfType::Fwd { .. } | BtfType::Enum { .. }, _) => {
                let (ln, tn) = (essential(name(lt)), essential(name(tt)));
                ln.is_empty() || tn.is_empty() || ln == tn
            }
            (BtfType::Int { offset: lo, .. }, BtfType::Int { offset: to, .. }) => {
                *lo == 0 && *to == 0
            }
            (BtfType::Array { elem: le, .. }, BtfType::Array { elem: te, .. }) => {
                (lid, tid) = (*le, *te);
                continue;
            }
            _ => false,
        });
    }
    Err(too_deep())
}

/// libbpf's `bpf_core_types_are_compat` (for `type_exists`, `type_size`,
/// `type_id_target`): same kinds all the way down through pointers, arrays and function
/// prototypes; structs, unions, enums and forward declarations are compatible by name
/// (checked by the caller).
pub(crate) fn types_compat(
    local: &Btf,
    local_id: u32,
    targ: &Btf,
    targ_id: u32,
    level: i32,
    budget: &mut Budget,
) -> Result<bool, String> {
    let (Some(lt), Some(tt)) = (local.get(local_id), targ.get(targ_id)) else {
        return Err(format!("no type {local_id} or {targ_id}"));
    };
    if !kinds_compat(lt, tt) {
        return Ok(false);
    }
    let (mut lid, mut tid) = (local_id, targ_id);
    for _ in 0..MAX_LEVELS {
        budget.step()?;
        let (_, lt) = skip_mods(local, lid)?;
        let (_, tt) = skip_mods(targ, tid)?;
        if !kinds_compat(lt, tt) {
            return Ok(false);
        }
        match (lt, tt) {
            (
                BtfType::Void
                | BtfType::Struct { .. }
                | BtfType::Union { .. }
                | BtfType::Enum { .. }
                | BtfType::Fwd { .. },
                _,
            ) => return Ok(true),
            (BtfType::Int { offset: lo, .. }, BtfType::Int { offset: to, .. }) => {
                return Ok(*lo == 0 && *to == 0)
            }
            (BtfType::Ptr { target: l }, BtfType::Ptr { target: t }) => (lid, tid) = (*l, *t),
            (BtfType::Array { elem: l, .. }, BtfType::Array { elem: t, .. }) => {
                (lid, tid) = (*l, *t)
            }
            (
                BtfType::FuncProto {
                    ret: lr,
                    params: lp,
                    ..
                },
                BtfType::FuncProto {
                    ret: tr,
                    params: tp,
                    ..
                },
            ) => {
                if lp.len() != tp.len() {
                    return Ok(false);
                }
                for (&l, &t) in lp.iter().zip(tp) {
                    if level <= 0 {
                        return Err(too_deep());
                    }
                    let (l, _) = skip_mods(local, l)?;
                    let (t, _) = skip_mods(targ, t)?;
                    if !types_compat(local, l, targ, t, level - 1, budget)? {
                        return Ok(false);
                    }
                }
                (lid, tid) = (*lr, *tr);
            }
            _ => return Ok(false),
        }
    }
    Err(too_deep())
}

/// libbpf's `bpf_core_types_match` (for `type_matches`): same kinds, integers of the same
/// size and signedness, enums whose local enumerators all exist in the target, structs
/// and unions whose local members all have a matching member in the target (behind a
/// pointer only names and kinds are compared), arrays of the same length.
pub(crate) fn types_match(
    local: &Btf,
    local_id: u32,
    targ: &Btf,
    targ_id: u32,
    mut behind_ptr: bool,
    level: i32,
    budget: &mut Budget,
) -> Result<bool, String> {
    if level <= 0 {
        return Err(too_deep());
    }
    let (mut lid, mut tid) = (local_id, targ_id);
    for _ in 0..MAX_LEVELS {
        budget.step()?;
        let (_, lt) = skip_mods(local, lid)?;
        let (_, tt) = skip_mods(targ, tid)?;
        if !names_match(name(lt), name(tt)) {
            return Ok(false);
        }
        match lt {
            BtfType::Void => return Ok(matches!(tt, BtfType::Void)),
            BtfType::Fwd {
                is_union: local_union,
                ..
            } => {
                return Ok(match tt {
                    BtfType::Fwd { is_union, .. } => is_union == local_union,
                    BtfType::Struct { .. } if behind_ptr => !local_union,
                    BtfType::Union { .. } if behind_ptr => *local_union,
                    _ => false,
                })
            }
            BtfType::Enum {
                size: ls,
                values: lv,
                ..
            } => {
                let BtfType::Enum {
                    size: ts,
                    values: tv,
                    ..
                } = tt
                else {
                    return Ok(false);
                };
                if ls != ts || lv.len() > tv.len() {
                    return Ok(false);
                }
                for (ln, _) in lv {
                    let mut found = false;
                    for (tn, _) in tv {
                        budget.step()?;
                        if names_match(ln, tn) {
                            found = true;
                            break;
                        }
                    }
                    if !found {
                        return Ok(false);
                    }
                }
                return Ok(true);
            }
            BtfType::Struct { .. } | BtfType::Union { .. } => {
                let local_union = matches!(lt, BtfType::Union { .. });
                if behind_ptr {
                    return Ok(match tt {
                        BtfType::Struct { .. } => !local_union,
                        BtfType::Union { .. } => local_union,
                        BtfType::Fwd { is_union, .. } => *is_union == local_union,
                        _ => false,
                    });
                }
                if kinds_compat(lt, tt) {
                    return composites_match(local, lt, targ, tt, level, budget);
                }
                return Ok(false);
            }
            BtfType::Int {
                size: ls,
                signed: lsg,
                ..
            } => {
                return Ok(matches!(tt, BtfType::Int { size, signed, .. }
                    if size == ls && signed == lsg))
            }
            BtfType::Ptr { target: l } => {
                let BtfType::Ptr { target: t } = tt else {
                    return Ok(false);
                };
                behind_ptr = true;
                (lid, tid) = (*l, *t);
            }
            BtfType::Array {
                elem: l,
                nelems: ln,
            } => {
                let BtfType::Array {
                    elem: t,
                    nelems: tn,
                } = tt
                else {
                    return Ok(false);
                };
                if ln != tn {
                    return Ok(false);
                }
                (lid, tid) = (*l, *t);
            }
            BtfType::FuncProto {
                ret: lr,
                params: lp,
                ..
            } => {
                let BtfType::FuncProto {
                    ret: tr,
                    params: tp,
                    ..
                } = tt
                else {
                    return Ok(false);
                };
                if lp.len() != tp.len() {
                    return Ok(false);
                }
                for (&l, &t) in lp.iter().zip(tp) {
                    if !types_match(local, l, targ, t, behind_ptr, level - 1, budget)? {
                        return Ok(false);
                    }
                }
                (lid, tid) = (*lr, *tr);
            }
            _ => return Ok(false),
        }
    }
    Err(too_deep())
}

fn composites_match(
    local: &Btf,
    lt: &BtfType,
    targ: &Btf,
    tt: &BtfType,
    level: i32,
    budget: &mut Budget,
) -> Result<bool, String> {
    let (Some(lm), Some(tm)) = (members(lt), members(tt)) else {
        return Ok(false);
    };
    if lm.len() > tm.len() {
        return Ok(false);
    }
    for l in lm {
        let mut matched = false;
        for t in tm {
            budget.step()?;
            if !names_match(&l.name, &t.name) {
                continue;
            }
            if types_match(local, l.type_id, targ, t.type_id, false, level - 1, budget)? {
                matched = true;
                break;
            }
        }
        if !matched {
            return Ok(false);
        }
    }
    Ok(true)
}
