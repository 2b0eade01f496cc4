//! Matching a local spec against one candidate target type, and the values a relocation
//! takes (libbpf's `bpf_core_spec_match` and `bpf_core_calc_*_relo`).

use super::super::btf::{Btf, BtfType};
use super::compat::{fields_compat, types_compat, types_match};
use super::kind::CoreRelocKind;
use super::spec::{add_bits, is_flex_array, Accessor, Spec, MAX_SPEC_LEN};
use super::types::{essential, members, size, skip_mods, Budget};

/// Match `local` (a spec in `lbtf`) against candidate `targ_id` of `tbtf`: the target
/// spec, or `None` when the candidate does not have what the local spec accesses.
pub(crate) fn spec_match(
    lbtf: &Btf,
    local: &Spec,
    kind: CoreRelocKind,
    tbtf: &Btf,
    targ_id: u32,
    budget: &mut Budget,
) -> Result<Option<Spec>, String> {
    let mut targ = Spec {
        root: targ_id,
        ..Spec::default()
    };
    if kind.is_type() {
        let ok = if kind == CoreRelocKind::TypeMatches {
            types_match(lbtf, local.root, tbtf, targ_id, false, 32, budget)?
        } else {
            types_compat(lbtf, local.root, tbtf, targ_id, 32, budget)?
        };
        return Ok(ok.then_some(targ));
    }
    let first = local.acc.first().ok_or("empty spec")?;
    if kind.is_enumval() {
        let (id, t) = skip_mods(tbtf, targ_id)?;
        let BtfType::Enum { values, .. } = t else {
            return Ok(None);
        };
        let want = essential(first.name.as_deref().unwrap_or(""));
        for (i, (n, _)) in values.iter().enumerate() {
            budget.step()?;
            if essential(n) == want {
                targ.acc.push(Accessor {
                    type_id: id,
                    idx: i as u32,
                    name: Some(n.clone()),
                });
                targ.raw.push(i as u32);
                return Ok(Some(targ));
            }
        }
        return Ok(None);
    }
    let mut tid = targ_id;
    for (i, la) in local.acc.iter().enumerate() {
        let (id, tt) = skip_mods(tbtf, tid)?;
        tid = id;
        if la.name.is_some() {
            match match_member(lbtf, la, tbtf, tid, &mut targ, budget)? {
                Some(next) => tid = next,
                None => return Ok(None),
            }
            continue;
        }
        if i > 0 {
            let BtfType::Array { elem, nelems } = tt else {
                return Ok(None);
            };
            if !is_flex_array(tbtf, targ.acc.last(), *nelems) && la.idx >= *nelems {
                return Ok(None);
            }
            tid = skip_mods(tbtf, *elem)?.0;
        }
        if targ.raw.len() == MAX_SPEC_LEN {
            return Err(format!(
                "the target access is more than {MAX_SPEC_LEN} steps deep"
            ));
        }
        targ.acc.push(Accessor {
            type_id: tid,
            idx: la.idx,
            name: None,
        });
        targ.raw.push(la.idx);
        targ.bit_offset = add_bits(targ.bit_offset, la.idx, size(tbtf, tid)?)?;
    }
    Ok(Some(targ))
}

/// libbpf's `bpf_core_match_member`: find the local named field `la` in the target
/// struct/union `targ_id`, looking inside anonymous members (bounded by the spec length
/// and the budget). Returns the matched member's type, or `None`.
fn match_member(
    lbtf: &Btf,
    la: &Accessor,
    tbtf: &Btf,
    targ_id: u32,
    spec: &mut Spec,
    budget: &mut Budget,
) -> Result<Option<u32>, String> {
    let (targ_id, tt) = skip_mods(tbtf, targ_id)?;
    let Some(tms) = members(tt) else {
        return Ok(None);
    };
    let lm = lbtf
        .get(la.type_id)
        .and_then(members)
        .and_then(|m| m.get(la.idx as usize))
        .ok_or("local accessor names no member")?;
    for (i, m) in tms.iter().enumerate() {
        budget.step()?;
        if spec.raw.len() == MAX_SPEC_LEN {
            return Err(format!(
                "the target access is more than {MAX_SPEC_LEN} steps deep"
            ));
        }
        let (saved_bits, saved_raw, saved_acc) = (spec.bit_offset, spec.raw.len(), spec.acc.len());
        spec.bit_offset = spec
            .bit_offset
            .checked_add(u64::from(m.bit_offset))
            .ok_or("bit offset overflow")?;
        spec.raw.push(i as u32);
        if m.name.is_empty() {
            if let Some(found) = match_member(lbtf, la, tbtf, m.type_id, spec, budget)? {
                return Ok(Some(found));
            }
        } else if m.name == lm.name {
            if fields_compat(lbtf, lm.type_id, tbtf, m.type_id, budget)? {
                spec.acc.push(Accessor {
                    type_id: targ_id,
                    idx: i as u32,
                    name: Some(m.name.clone()),
                });
                return Ok(Some(m.type_id));
            }
            spec.bit_offset = saved_bits;
            spec.raw.truncate(saved_raw);
            return Ok(None);
        }
        spec.bit_offset = saved_bits;
        spec.raw.truncate(saved_raw);
        spec.acc.truncate(saved_acc);
    }
    Ok(None)
}

/// What a relocation computes on one side (local or target).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub(crate) struct Value {
    pub(crate) val: u64,
    /// Field byte offsets: the size of the memory access the field needs (0 otherwise).
    pub(crate) mem_size: u32,
    /// Field byte offsets: the field's type, for size adjustments.
    pub(crate) type_id: u32,
}

/// A side's value, or a request to poison the instruction.
pub(crate) enum Calc {
    Value(Value),
    Poison,
}

/// libbpf's `bpf_core_calc_field_relo` on `spec` (`None`: no target has the field).
/// Also says whether the local value can be checked against the instruction.
pub(crate) fn field_value(
    btf: &Btf,
    kind: CoreRelocKind,
    spec: Option<&Spec>,
    validate: &mut bool,
) -> Result<Calc, String> {
    if kind == CoreRelocKind::FieldExists {
        return Ok(Calc::Value(Value {
            val: u64::from(spec.is_some()),
            ..Value::default()
        }));
    }
    let Some(spec) = spec else {
        return Ok(Calc::Poison);
    };
    let acc = spec.acc.last().ok_or("empty spec")?;
    let mut v = Value::default();
    if acc.name.is_none() {
        match kind {
            CoreRelocKind::FieldByteOffset => {
                v.val = spec.bit_offset / 8;
                v.mem_size = elem_size(btf, acc.type_id)?;
                v.type_id = acc.type_id;
            }
            CoreRelocKind::FieldByteSize => v.val = size(btf, acc.type_id)?,
            _ => return Err(format!("{kind} cannot be applied to an array element")),
        }
        *validate = true;
        return Ok(Calc::Value(v));
    }
    let m = btf
        .get(acc.type_id)
        .and_then(members)
        .and_then(|m| m.get(acc.idx as usize))
        .ok_or("accessor names no member")?;
    let (field_type, mt) = skip_mods(btf, m.type_id)?;
    let bit_off = spec.bit_offset;
    let mut bit_sz = u64::from(m.bitfield_size);
    let bitfield = bit_sz > 0;
    let (byte_off, byte_sz);
    if bitfield {
        let mut sz = match mt {
            BtfType::Int { size, .. } | BtfType::Enum { size, .. } => u64::from(*size),
            _ => 0,
        };
        if sz == 0 {
            return Err("a bitfield whose type is neither an integer nor an enum".into());
        }
        let mut off = bit_off / 8 / sz * sz;
        while bit_off + bit_sz - off * 8 > sz * 8 {
            if sz >= 8 {
                return Err("the bitfield cannot be read with one 64-bit load".into());
            }
            sz *= 2;
            off = bit_off / 8 / sz * sz;
        }
        (byte_off, byte_sz) = (off, sz);
    } else {
        byte_sz = size(btf, field_type)?;
        byte_off = bit_off / 8;
        bit_sz = byte_sz.saturating_mul(8);
    }
    *validate = !bitfield;
    match kind {
        CoreRelocKind::FieldByteOffset => {
            v.val = byte_off;
            if !bitfield {
                v.mem_size = elem_size(btf, field_type)?;
                v.type_id = field_type;
            }
        }
        CoreRelocKind::FieldByteSize => v.val = byte_sz,
        CoreRelocKind::FieldSigned => {
            v.val = u64::from(matches!(
                mt,
                BtfType::Enum { signed: true, .. } | BtfType::Int { signed: true, .. }
            ));
            *validate = true;
        }
        CoreRelocKind::FieldLshiftU64 => {
            v.val = 64u64.wrapping_sub(bit_off + bit_sz - byte_off * 8);
        }
        CoreRelocKind::FieldRshiftU64 => {
            v.val = 64u64.wrapping_sub(bit_sz);
            *validate = true;
        }
        _ => return Err(format!("{kind} is not a field relocation")),
    }
    Ok(Calc::Value(v))
}

/// Size of `id` after stripping arrays (a load reads one element).
fn elem_size(btf: &Btf, id: u32) -> Result<u32, String> {
    let mut id = id;
    for _ in 0..32 {
        let (rid, t) = skip_mods(btf, id)?;
        match t {
            BtfType::Array { elem, .. } => id = *elem,
            _ => return u32::try_from(size(btf, rid)?).map_err(|_| "field too large".into()),
        }
    }
    Err("arrays nest more than 32 levels deep".into())
}

/// libbpf's `bpf_core_calc_type_relo` (not for `type_id_local`).
pub(crate) fn type_value(
    btf: &Btf,
    kind: CoreRelocKind,
    spec: Option<&Spec>,
) -> Result<u64, String> {
    let Some(spec) = spec else { return Ok(0) };
    match kind {
        CoreRelocKind::TypeIdTarget => Ok(u64::from(spec.root)),
        CoreRelocKind::TypeExists | CoreRelocKind::TypeMatches => Ok(1),
        CoreRelocKind::TypeSize => size(btf, spec.root),
        _ => Err(format!("{kind} is not a type relocation")),
    }
}

/// libbpf's `bpf_core_calc_enumval_relo`.
pub(crate) fn enum_value(
    btf: &Btf,
    kind: CoreRelocKind,
    spec: Option<&Spec>,
) -> Result<Calc, String> {
    let val = match kind {
        CoreRelocKind::EnumvalExists => u64::from(spec.is_some()),
        CoreRelocKind::EnumvalValue => {
            let Some(spec) = spec else {
                return Ok(Calc::Poison);
            };
            let a = spec.acc.first().ok_or("empty spec")?;
            match btf.get(a.type_id) {
                Some(BtfType::Enum { values, is64, .. }) => {
                    let v = values.get(a.idx as usize).ok_or("no such enumerator")?.1;
                    // A 32-bit enumerator is an `__s32` in libbpf: sign-extended.
                    if *is64 {
                        v as u64
                    } else {
                        v as u32 as i32 as i64 as u64
                    }
                }
                _ => return Err("enumerator relocation on a non-enum".into()),
            }
        }
        _ => return Err(format!("{kind} is not an enumerator relocation")),
    };
    Ok(Calc::Value(Value {
        val,
        ..Value::default()
    }))
}
