//! Access specs: the relocation's access string (`0:1:2:3`) turned into the accessors
//! that matter (named fields, array indices) and a bit offset, in the program's BTF
//! (libbpf's `bpf_core_parse_spec`) and, when matched, in the target's.

use super::super::btf::{Btf, BtfType};
use super::super::strtab::SharedStr;
use super::kind::CoreRelocKind;
use super::types::{members, name, size, skip_mods};

/// Most raw accessors in a spec (libbpf's `BPF_CORE_SPEC_MAX_LEN`).
pub(crate) const MAX_SPEC_LEN: usize = 64;

/// One named field or array element on the way to what is accessed.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Accessor {
    /// The struct/union holding the field, or the array element type.
    pub(crate) type_id: u32,
    /// Field index, array index, or enumerator index.
    pub(crate) idx: u32,
    /// Field or enumerator name; `None` for an array index.
    pub(crate) name: Option<SharedStr>,
}

/// A parsed access in one BTF.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub(crate) struct Spec {
    /// The root type (unresolved: typedefs kept).
    pub(crate) root: u32,
    /// High-level accessors.
    pub(crate) acc: Vec<Accessor>,
    /// Every step of the access string (anonymous members included).
    pub(crate) raw: Vec<u32>,
    /// Bit offset of the accessed field from the start of the root.
    pub(crate) bit_offset: u64,
}

/// `a * b * 8` added to `to`, or an error on overflow.
pub(crate) fn add_bits(to: u64, idx: u32, elem_size: u64) -> Result<u64, String> {
    u64::from(idx)
        .checked_mul(elem_size)
        .and_then(|b| b.checked_mul(8))
        .and_then(|b| b.checked_add(to))
        .filter(|&b| b <= u64::from(u32::MAX))
        .ok_or_else(|| "the access lies more than 4 GiB into its type".to_string())
}

/// libbpf's `is_flex_arr`: an array of 0 elements that is the last member of the struct
/// `parent` names.
pub(crate) fn is_flex_array(btf: &Btf, parent: Option<&Accessor>, nelems: u32) -> bool {
    let Some(parent) = parent else { return false };
    if parent.name.is_none() || nelems > 0 {
        return false;
    }
    btf.get(parent.type_id)
        .and_then(members)
        .is_some_and(|m| parent.idx as usize + 1 == m.len())
}

/// Parse the access string `access` of a relocation of `kind` on type `root`.
pub(crate) fn parse(
    btf: &Btf,
    root: u32,
    access: &str,
    kind: CoreRelocKind,
) -> Result<Spec, String> {
    if access.is_empty() || access.starts_with(':') {
        return Err(format!("bad access string {access:?}"));
    }
    let mut spec = Spec {
        root,
        ..Spec::default()
    };
    if kind.is_type() {
        if access != "0" {
            return Err(format!(
                "a type relocation's access string is \"0\", not {access:?}"
            ));
        }
        return Ok(spec);
    }
    for part in access.split(':') {
        let idx: u32 = part
            .parse()
            .ok()
            .filter(|&i| i <= i32::MAX as u32)
            .ok_or_else(|| format!("bad access string {access:?}"))?;
        if spec.raw.len() == MAX_SPEC_LEN {
            return Err(format!(
                "access string {access:?} has more than {MAX_SPEC_LEN} steps"
            ));
        }
        spec.raw.push(idx);
    }
    let (mut id, t) = skip_mods(btf, root)?;
    let first = spec.raw[0];
    if kind.is_enumval() {
        let BtfType::Enum { values, .. } = t else {
            return Err(format!("enumerator relocation on non-enum type {root}"));
        };
        let value = values
            .get(first as usize)
            .filter(|_| spec.raw.len() == 1)
            .ok_or_else(|| format!("bad enumerator access {access:?}"))?;
        spec.acc.push(Accessor {
            type_id: id,
            idx: first,
            name: Some(value.0.clone()),
        });
        return Ok(spec);
    }
    spec.acc.push(Accessor {
        type_id: id,
        idx: first,
        name: None,
    });
    spec.bit_offset = add_bits(0, first, size(btf, id)?)?;
    for &idx in &spec.raw[1..] {
        let (rid, t) = skip_mods(btf, id)?;
        id = rid;
        if let Some(ms) = members(t) {
            let m = ms
                .get(idx as usize)
                .ok_or_else(|| format!("access {access:?}: type {id} has no member {idx}"))?;
            spec.bit_offset = spec
                .bit_offset
                .checked_add(u64::from(m.bit_offset))
                .ok_or("bit offset overflow")?;
            if !m.name.is_empty() {
                spec.acc.push(Accessor {
                    type_id: id,
                    idx,
                    name: Some(m.name.clone()),
                });
            }
            id = m.type_id;
        } else if let BtfType::Array { elem, nelems } = t {
            let (elem_id, _) = skip_mods(btf, *elem)?;
            if !is_flex_array(btf, spec.acc.last(), *nelems) && idx >= *nelems {
                return Err(format!(
                    "access {access:?}: index {idx} is past the {nelems} elements of its array"
                ));
            }
            spec.acc.push(Accessor {
                type_id: elem_id,
                idx,
                name: None,
            });
            spec.bit_offset = add_bits(spec.bit_offset, idx, size(btf, elem_id)?)?;
            id = elem_id;
        } else {
            return Err(format!(
                "access {access:?} goes into type {id} ({}), neither a struct, a union nor an array",
                btf.type_name(id)
            ));
        }
    }
    Ok(spec)
}

/// libbpf's spec format: `[7] struct s.a[3].b (0:1:3:0 @ offset 20)`.
pub(crate) fn format(btf: &Btf, spec: &Spec, kind: CoreRelocKind) -> String {
    let mut out = format!("[{}] {}", spec.root, btf.type_name(spec.root));
    if let Some(t) = btf.get(spec.root) {
        if name(t).is_empty() && !matches!(t, BtfType::Ptr { .. } | BtfType::Array { .. }) {
            out.push_str(" <anon>");
        }
    }
    if kind.is_type() {
        return out;
    }
    if kind.is_enumval() {
        if let Some(a) = spec.acc.first() {
            let value = match btf.get(a.type_id) {
                Some(BtfType::Enum { values, .. }) => values.get(a.idx as usize).map(|v| v.1),
                _ => None,
            };
            let n = a.name.as_deref().unwrap_or("?");
            match value {
                Some(v) => out.push_str(&format!("::{n} = {v}")),
                None => out.push_str(&format!("::{n}")),
            }
        }
        return out;
    }
    for (i, a) in spec.acc.iter().enumerate() {
        match &a.name {
            Some(n) => out.push_str(&format!(".{n}")),
            None if i > 0 || a.idx > 0 => out.push_str(&format!("[{}]", a.idx)),
            None => {}
        }
    }
    let raw: Vec<String> = spec.raw.iter().map(u32::to_string).collect();
    let (byte, bit) = (spec.bit_offset / 8, spec.bit_offset % 8);
    if bit != 0 {
        out.push_str(&format!(" ({} @ offset {byte}.{bit})", raw.join(":")));
    } else {
        out.push_str(&format!(" ({} @ offset {byte})", raw.join(":")));
    }
    out
}
