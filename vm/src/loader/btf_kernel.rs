//! The loader's parsed BTF as the verifier reads the kernel's types
//! ([`bpfvm_verifier::KernelBtf`]): struct layouts for loads through `PTR_TO_BTF_ID`
//! pointers.

use bpfvm_verifier::{KernelBtf, KernelMember, KernelType};

use super::btf::{Btf, BtfType};

/// The modifiers that are not type tags (`BTF_KIND_CONST`, `VOLATILE`, `RESTRICT`).
const PLAIN_MODIFIERS: [&str; 3] = ["const", "volatile", "restrict"];

impl KernelBtf for Btf {
    fn ty(&self, id: u32) -> Option<KernelType<'_>> {
        Some(match self.get(id)? {
            BtfType::Void => KernelType::Void,
            BtfType::Int { size, .. } => KernelType::Int { size: *size },
            BtfType::Enum { size, .. } => KernelType::Enum { size: *size },
            BtfType::Float { size, .. } => KernelType::Float { size: *size },
            BtfType::Ptr { target } => KernelType::Ptr { target: *target },
            BtfType::Array { elem, nelems } => KernelType::Array {
                elem: *elem,
                nelems: *nelems,
            },
            BtfType::Struct {
                name,
                size,
                members,
            } => KernelType::Struct {
                name,
                size: *size,
                members: members.len() as u32,
                union: false,
            },
            BtfType::Union {
                name,
                size,
                members,
            } => KernelType::Struct {
                name,
                size: *size,
                members: members.len() as u32,
                union: true,
            },
            BtfType::Typedef { target, .. } => KernelType::Typedef { target: *target },
            BtfType::Modifier { modifier, target } => KernelType::Modifier {
                target: *target,
                tag: (!PLAIN_MODIFIERS.contains(&&**modifier)).then_some(&**modifier),
            },
            BtfType::Fwd { name, .. } => KernelType::Fwd { name },
            BtfType::Func { .. }
            | BtfType::FuncProto { .. }
            | BtfType::Var { .. }
            | BtfType::Datasec { .. }
            | BtfType::DeclTag { .. } => KernelType::Other,
        })
    }

    fn member(&self, id: u32, i: u32) -> Option<KernelMember<'_>> {
        let (BtfType::Struct { members, .. } | BtfType::Union { members, .. }) = self.get(id)?
        else {
            return None;
        };
        let m = members.get(i as usize)?;
        Some(KernelMember {
            name: &m.name,
            type_id: m.type_id,
            bit_offset: m.bit_offset,
            bitfield_size: m.bitfield_size,
        })
    }

    fn struct_by_name(&self, name: &str) -> Option<u32> {
        Btf::struct_by_name(self, name)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_kernels_task_struct_as_the_verifier_sees_it() {
        let btf = Btf::parse_any(include_bytes!("../../tests/fixtures/tracing_target.btf"))
            .expect("fixture");
        let id = KernelBtf::struct_by_name(&btf, "task_struct").expect("task_struct");
        let Some(KernelType::Struct { name, members, .. }) = btf.ty(id) else {
            panic!("not a struct");
        };
        assert_eq!(name, "task_struct");
        assert!(members > 0);
        assert!(btf.member(id, 0).is_some());
        assert!(btf.member(id, members).is_none());
        assert!(btf.ty(u32::MAX).is_none());
        assert_eq!(btf.ty(0), Some(KernelType::Void));
        // A clone shares the types.
        let copy = btf.clone();
        assert!(std::ptr::eq(btf.types(), copy.types()));
    }
}
