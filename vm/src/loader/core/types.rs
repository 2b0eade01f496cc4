//! What the resolver asks of a [`Btf`]: kinds, names, members, flavor-less names, and a
//! work budget that bounds every search.

use super::super::btf::{Btf, BtfMember, BtfType};
use super::super::limits::MAX_CORE_STEPS as STEPS_PER_RELOCATION;

/// The BTF kind number of a type, with `ENUM64` counted as `ENUM` (libbpf's
/// `btf_kind_core_compat` treats the two as one kind).
pub(crate) fn kind(t: &BtfType) -> u8 {
    match t {
        BtfType::Void => 0,
        BtfType::Int { .. } => 1,
        BtfType::Ptr { .. } => 2,
        BtfType::Array { .. } => 3,
        BtfType::Struct { .. } => 4,
        BtfType::Union { .. } => 5,
        BtfType::Enum { .. } => 6,
        BtfType::Fwd { .. } => 7,
        BtfType::Typedef { .. } => 8,
        BtfType::Modifier { modifier, .. } => match modifier.as_str() {
            "volatile" => 9,
            "const" => 10,
            "restrict" => 11,
            _ => 18,
        },
        BtfType::Func { .. } => 12,
        BtfType::FuncProto { .. } => 13,
        BtfType::Var { .. } => 14,
        BtfType::Datasec { .. } => 15,
        BtfType::Float { .. } => 16,
        BtfType::DeclTag { .. } => 17,
    }
}

/// libbpf's `btf_kind_core_compat`: same kind, or both enums.
pub(crate) fn kinds_compat(a: &BtfType, b: &BtfType) -> bool {
    kind(a) == kind(b)
}

/// The type's own name (empty for anonymous and nameless kinds).
pub(crate) fn name(t: &BtfType) -> &str {
    match t {
        BtfType::Int { name, .. }
        | BtfType::Struct { name, .. }
        | BtfType::Union { name, .. }
        | BtfType::Enum { name, .. }
        | BtfType::Fwd { name, .. }
        | BtfType::Typedef { name, .. }
        | BtfType::Func { name, .. }
        | BtfType::Var { name, .. }
        | BtfType::Datasec { name, .. }
        | BtfType::Float { name, .. }
        | BtfType::DeclTag { name, .. } => name,
        _ => "",
    }
}

/// libbpf's kind name for messages (`struct`, `union`, `enum`, `typedef`, ...).
pub(crate) fn kind_name(t: &BtfType) -> &'static str {
    match t {
        BtfType::Void => "void",
        BtfType::Int { .. } => "int",
        BtfType::Ptr { .. } => "ptr",
        BtfType::Array { .. } => "array",
        BtfType::Struct { .. } => "struct",
        BtfType::Union { .. } => "union",
        BtfType::Enum { is64: false, .. } => "enum",
        BtfType::Enum { is64: true, .. } => "enum64",
        BtfType::Fwd { .. } => "fwd",
        BtfType::Typedef { .. } => "typedef",
        BtfType::Modifier { .. } => "modifier",
        BtfType::Func { .. } => "func",
        BtfType::FuncProto { .. } => "func_proto",
        BtfType::Var { .. } => "var",
        BtfType::Datasec { .. } => "datasec",
        BtfType::Float { .. } => "float",
        BtfType::DeclTag { .. } => "decl_tag",
    }
}

/// The members of a struct or union.
pub(crate) fn members(t: &BtfType) -> Option<&[BtfMember]> {
    match t {
        BtfType::Struct { members, .. } | BtfType::Union { members, .. } => Some(members),
        _ => None,
    }
}

/// Length of `name` without its flavor: the part before the last `___` that has a
/// non-underscore on each side (`task_struct___old` → `task_struct`), as libbpf's
/// `bpf_core_essential_name_len`.
pub(crate) fn essential_len(name: &str) -> usize {
    let b = name.as_bytes();
    let n = b.len();
    if n >= 5 {
        for i in (0..=n - 5).rev() {
            if b[i] != b'_' && &b[i + 1..i + 4] == b"___" && b[i + 4] != b'_' {
                return i + 1;
            }
        }
    }
    n
}

/// `name` without its flavor.
pub(crate) fn essential(name: &str) -> &str {
    &name[..essential_len(name)]
}

/// libbpf's `bpf_core_names_match`: an anonymous target matches only an anonymous local
/// name; otherwise the flavor-less names are equal.
pub(crate) fn names_match(local: &str, target: &str) -> bool {
    if target.is_empty() {
        return local.is_empty();
    }
    essential(local) == essential(target)
}

/// The type `id` after typedefs and modifiers, with its id.
pub(crate) fn skip_mods(btf: &Btf, id: u32) -> Result<(u32, &BtfType), String> {
    let id = btf
        .resolve(id)
        .ok_or_else(|| format!("type {id} does not resolve (a missing type or a cycle)"))?;
    let t = btf.get(id).ok_or_else(|| format!("no type {id}"))?;
    Ok((id, t))
}

/// The size of type `id` (libbpf's `btf__resolve_size`).
pub(crate) fn size(btf: &Btf, id: u32) -> Result<u64, String> {
    btf.size_of(id)
        .map(u64::from)
        .ok_or_else(|| format!("type {} ({}) has no size", id, btf.type_name(id)))
}

/// A count of work left.
#[derive(Debug)]
pub(crate) struct Budget(pub(crate) u64);

impl Budget {
    /// Take one step; an error once the budget is gone.
    pub(crate) fn step(&mut self) -> Result<(), String> {
        self.0 = self
            .0
            .checked_sub(1)
            .ok_or_else(|| format!("resolving it takes more than {STEPS_PER_RELOCATION} steps"))?;
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn flavors_are_cut_as_libbpf_cuts_them() {
        assert_eq!(essential("task_struct___old"), "task_struct");
        assert_eq!(essential("a___b___c"), "a___b");
        assert_eq!(essential("task_struct"), "task_struct");
        assert_eq!(essential("__sk_buff"), "__sk_buff");
        assert_eq!(
            essential("x____y"),
            "x____y",
            "four underscores are no separator"
        );
        assert_eq!(essential("___x"), "___x");
        assert_eq!(essential("x___"), "x___");
        assert_eq!(essential(""), "");
        assert!(names_match("s___1", "s___2"));
        assert!(names_match("", ""));
        assert!(!names_match("s", ""));
        assert!(!names_match("s", "t"));
    }
}
