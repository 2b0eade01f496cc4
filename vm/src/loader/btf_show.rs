//! The loader's [`Btf`] as the BTF `bpf_snprintf_btf` (149) walks
//! ([`bpfvm_helpers::btf_show::ShowBtf`]): a view of each type, nothing copied.

use bpfvm_helpers::btf_show::{MemberView, ShowBtf, TypeView, INT_BOOL, INT_CHAR, INT_SIGNED};

use super::btf::{Btf, BtfType};

impl ShowBtf for Btf {
    fn type_view(&self, id: u32) -> Option<TypeView<'_>> {
        Some(match self.get(id)? {
            BtfType::Void => TypeView::Void,
            BtfType::Int {
                name,
                size,
                signed,
                is_char,
                is_bool,
                bits,
                offset,
            } => TypeView::Int {
                name,
                size: *size,
                encoding: (if *signed { INT_SIGNED } else { 0 })
                    | (if *is_char { INT_CHAR } else { 0 })
                    | (if *is_bool { INT_BOOL } else { 0 }),
                bits: *bits,
                offset: *offset,
            },
            BtfType::Ptr { target } => TypeView::Ptr { target: *target },
            BtfType::Array { elem, nelems } => TypeView::Array {
                elem: *elem,
                nelems: *nelems,
            },
            BtfType::Struct {
                name,
                size,
                members,
            } => TypeView::Struct {
                name,
                size: *size,
                vlen: members.len(),
                union: false,
            },
            BtfType::Union {
                name,
                size,
                members,
            } => TypeView::Struct {
                name,
                size: *size,
                vlen: members.len(),
                union: true,
            },
            BtfType::Enum {
                name,
                size,
                signed,
                values,
                is64,
            } => TypeView::Enum {
                name,
                size: *size,
                signed: *signed,
                is64: *is64,
                vlen: values.len(),
            },
            BtfType::Typedef { name, target } => TypeView::Typedef {
                name,
                target: *target,
            },
            // The loader keeps the kind of const/volatile/restrict as their keyword (they
            // have no BTF name); a type tag keeps its text.
            BtfType::Modifier { modifier, target } => TypeView::Modifier {
                name: match modifier.as_str() {
                    "volatile" | "const" | "restrict" => "",
                    tag => tag,
                },
                target: *target,
            },
            BtfType::Var { name, target } => TypeView::Var {
                name,
                target: *target,
            },
            BtfType::Datasec { name, .. } => TypeView::Datasec { name },
            BtfType::Fwd { name, .. } => other(7, name, 0),
            BtfType::Func { name, .. } => other(12, name, 0),
            BtfType::FuncProto { .. } => other(13, "", 0),
            BtfType::Float { name, size } => other(16, name, *size),
            BtfType::DeclTag { name, .. } => other(17, name, 0),
        })
    }

    fn member(&self, id: u32, index: usize) -> Option<MemberView<'_>> {
        match self.get(id)? {
            BtfType::Struct { members, .. } | BtfType::Union { members, .. } => {
                let m = members.get(index)?;
                Some(MemberView {
                    name: &m.name,
                    type_id: m.type_id,
                    bit_offset: m.bit_offset,
                    bitfield_size: m.bitfield_size,
                })
            }
            _ => None,
        }
    }

    fn enumerator(&self, id: u32, index: usize) -> Option<(&str, i64)> {
        match self.get(id)? {
            BtfType::Enum { values, .. } => values.get(index).map(|(n, v)| (n.as_str(), *v)),
            _ => None,
        }
    }
}

/// A kind the kernel shows as `<unsupported kind:N>`.
fn other(kind: u32, name: &str, size: u32) -> TypeView<'_> {
    TypeView::Other { kind, name, size }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn core_target_types_are_viewed() {
        let btf = Btf::parse_any(include_bytes!("../../tests/fixtures/core_target.btf")).unwrap();
        assert_eq!(btf.type_view(0), Some(TypeView::Void));
        assert_eq!(btf.type_view(u32::MAX), None);
        let task = (1..btf.types().len() as u32)
            .find(|&id| {
                matches!(
                    btf.type_view(id),
                    Some(TypeView::Struct {
                        name: "task_struct",
                        ..
                    })
                )
            })
            .expect("core_target.btf has task_struct");
        let Some(TypeView::Struct { vlen, .. }) = btf.type_view(task) else {
            unreachable!()
        };
        assert!(vlen > 0);
        assert!(btf.member(task, vlen - 1).is_some());
        assert!(btf.member(task, vlen).is_none());
    }
}
