//! The kernel's types (the target BTF, e.g. `/sys/kernel/btf/vmlinux`) as the verifier
//! reads them to check loads through `PTR_TO_BTF_ID` pointers: a small read-only view
//! ([`KernelBtf`]) that a BTF parser implements, and the type walks the kernel's
//! `btf.c` makes on it (skipping modifiers, resolving a member's size).

/// One type of the target BTF, as far as struct walks need it.
#[derive(Clone, Copy, PartialEq, Eq, Debug)]
pub enum KernelType<'a> {
    /// Type id 0.
    Void,
    /// `BTF_KIND_INT`.
    Int {
        /// Size in bytes.
        size: u32,
    },
    /// `BTF_KIND_ENUM` / `BTF_KIND_ENUM64`.
    Enum {
        /// Size in bytes.
        size: u32,
    },
    /// `BTF_KIND_FLOAT`.
    Float {
        /// Size in bytes.
        size: u32,
    },
    /// `BTF_KIND_PTR`.
    Ptr {
        /// Pointee type id.
        target: u32,
    },
    /// `BTF_KIND_ARRAY`.
    Array {
        /// Element type id.
        elem: u32,
        /// Number of elements.
        nelems: u32,
    },
    /// `BTF_KIND_STRUCT` or `BTF_KIND_UNION`; its members by [`KernelBtf::member`].
    Struct {
        /// Tag name (empty when anonymous).
        name: &'a str,
        /// Size in bytes.
        size: u32,
        /// Number of members.
        members: u32,
        /// A union.
        union: bool,
    },
    /// `BTF_KIND_TYPEDEF`.
    Typedef {
        /// Aliased type id.
        target: u32,
    },
    /// `BTF_KIND_CONST` / `VOLATILE` / `RESTRICT` (`tag` `None`) or `BTF_KIND_TYPE_TAG`
    /// (`tag`: its text, e.g. `rcu`, `user`, `percpu`).
    Modifier {
        /// Modified type id.
        target: u32,
        /// A type tag's text.
        tag: Option<&'a str>,
    },
    /// `BTF_KIND_FWD`.
    Fwd {
        /// Name.
        name: &'a str,
    },
    /// Functions, prototypes, variables, sections, declaration tags.
    Other,
}

/// One member of a struct or union.
#[derive(Clone, Copy, PartialEq, Eq, Debug)]
pub struct KernelMember<'a> {
    /// Name (empty when anonymous).
    pub name: &'a str,
    /// Type id.
    pub type_id: u32,
    /// Offset from the start of the struct, in bits.
    pub bit_offset: u32,
    /// Bitfield width in bits, 0 when not a bitfield.
    pub bitfield_size: u32,
}

/// The target BTF as the verifier reads it (bpfvm's loader implements it for its parsed
/// BTF). Lookups must not panic on any id.
///
/// ```
/// use bpfvm_verifier::{KernelBtf, KernelMember, KernelType};
///
/// /// `struct pair { int a; int b; }` as type 2, `int` as type 1.
/// #[derive(Debug)]
/// struct Pair;
/// impl KernelBtf for Pair {
///     fn ty(&self, id: u32) -> Option<KernelType<'_>> {
///         match id {
///             0 => Some(KernelType::Void),
///             1 => Some(KernelType::Int { size: 4 }),
///             2 => Some(KernelType::Struct { name: "pair", size: 8, members: 2, union: false }),
///             _ => None,
///         }
///     }
///     fn member(&self, id: u32, i: u32) -> Option<KernelMember<'_>> {
///         let name = ["a", "b"].get(i as usize)?;
///         (id == 2).then_some(KernelMember { name, type_id: 1, bit_offset: 32 * i, bitfield_size: 0 })
///     }
///     fn struct_by_name(&self, name: &str) -> Option<u32> {
///         (name == "pair").then_some(2)
///     }
/// }
/// assert_eq!(Pair.struct_by_name("pair"), Some(2));
/// ```
pub trait KernelBtf: std::fmt::Debug + Sync {
    /// The type with id `id`.
    fn ty(&self, id: u32) -> Option<KernelType<'_>>;
    /// Member `i` of the struct or union `id`.
    fn member(&self, id: u32, i: u32) -> Option<KernelMember<'_>>;
    /// The id of the struct (not union) named `name` (`btf_find_by_name_kind`).
    fn struct_by_name(&self, name: &str) -> Option<u32>;
}

/// Longest chain of typedefs and modifiers followed (`MAX_RESOLVE_DEPTH`).
const MAX_RESOLVE_DEPTH: usize = 32;

/// `btf_type_skip_modifiers`: the id after typedefs and modifiers (the id itself when it
/// is none; `None` for a chain too long or broken).
pub(crate) fn skip_modifiers(btf: &dyn KernelBtf, mut id: u32) -> Option<u32> {
    for _ in 0..MAX_RESOLVE_DEPTH {
        match btf.ty(id)? {
            KernelType::Typedef { target } | KernelType::Modifier { target, .. } => id = target,
            _ => return Some(id),
        }
    }
    None
}

/// The name of struct `id` (empty when it is not a struct or union).
pub(crate) fn struct_name(btf: &dyn KernelBtf, id: u32) -> &str {
    match btf.ty(id) {
        Some(KernelType::Struct { name, .. }) | Some(KernelType::Fwd { name }) => name,
        _ => "",
    }
}

/// What `__btf_resolve_size` finds for a member's type.
#[derive(Clone, Copy, Debug)]
pub(crate) struct Resolved {
    /// The type after modifiers: the outermost array, or the element type.
    pub id: u32,
    /// Whether it is an array (then `elem` / `nelems` describe its flattened elements).
    pub is_array: bool,
    /// Total size in bytes.
    pub size: u64,
    /// The innermost element type (after modifiers), the type itself for a non-array.
    pub elem: u32,
    /// Elements of all dimensions multiplied.
    pub nelems: u64,
}

/// `__btf_resolve_size`: a member's size, through typedefs, modifiers and (multi-
/// dimensional) arrays; `None` for types without a size (void, functions, forward
/// declarations).
pub(crate) fn resolve_size(btf: &dyn KernelBtf, mut id: u32) -> Option<Resolved> {
    let mut nelems: u64 = 1;
    let mut array: Option<u32> = None;
    for _ in 0..MAX_RESOLVE_DEPTH {
        let size = match btf.ty(id)? {
            KernelType::Int { size }
            | KernelType::Enum { size }
            | KernelType::Float { size }
            | KernelType::Struct { size, .. } => u64::from(size),
            KernelType::Ptr { .. } => 8,
            KernelType::Typedef { target } | KernelType::Modifier { target, .. } => {
                id = target;
                continue;
            }
            KernelType::Array { elem, nelems: n } => {
                array.get_or_insert(id);
                nelems = nelems.checked_mul(u64::from(n))?;
                id = elem;
                continue;
            }
            KernelType::Void | KernelType::Fwd { .. } | KernelType::Other => return None,
        };
        let total = size.checked_mul(nelems)?;
        if total > u64::from(u32::MAX) {
            return None;
        }
        return Some(Resolved {
            id: array.unwrap_or(id),
            is_array: array.is_some(),
            size: total,
            elem: id,
            nelems,
        });
    }
    None
}

#[cfg(test)]
pub(crate) mod testing {
    //! A hand-built BTF for unit tests.
    use super::*;

    /// Types by index (id), structs' members in a side table.
    #[derive(Debug, Default)]
    pub struct TestBtf {
        pub types: Vec<KernelType<'static>>,
        pub members: Vec<Vec<KernelMember<'static>>>,
    }

    impl TestBtf {
        pub fn new() -> TestBtf {
            TestBtf {
                types: vec![KernelType::Void],
                members: vec![Vec::new()],
            }
        }

        pub fn add(&mut self, t: KernelType<'static>) -> u32 {
            self.types.push(t);
            self.members.push(Vec::new());
            (self.types.len() - 1) as u32
        }

        /// A struct (or union) with `(name, type, byte offset)` members.
        pub fn add_struct(
            &mut self,
            name: &'static str,
            size: u32,
            union: bool,
            members: &[(&'static str, u32, u32)],
        ) -> u32 {
            let id = self.add(KernelType::Struct {
                name,
                size,
                members: members.len() as u32,
                union,
            });
            self.members[id as usize] = members
                .iter()
                .map(|&(name, type_id, off)| KernelMember {
                    name,
                    type_id,
                    bit_offset: off * 8,
                    bitfield_size: 0,
                })
                .collect();
            id
        }
    }

    impl KernelBtf for TestBtf {
        fn ty(&self, id: u32) -> Option<KernelType<'_>> {
            self.types.get(id as usize).copied()
        }
        fn member(&self, id: u32, i: u32) -> Option<KernelMember<'_>> {
            self.members.get(id as usize)?.get(i as usize).copied()
        }
        fn struct_by_name(&self, name: &str) -> Option<u32> {
            self.types
                .iter()
                .position(
                    |t| matches!(t, KernelType::Struct { name: n, union: false, .. } if *n == name),
                )
                .map(|i| i as u32)
        }
    }

    /// Verifies (as root) a `tp_btf` program of one argument, a pointer to type `arg` of
    /// `btf` (or of no BTF), made of the instructions `words` (`Insn::from_word` forms).
    pub fn verify_tp_btf(
        btf: Option<&TestBtf>,
        arg: u32,
        words: &[u64],
    ) -> Result<(), crate::VerifierError> {
        use crate::{Insn, Options, Privilege, ProgType, Program, TracingCtx};
        let mut btf_ids = [0; 13];
        btf_ids[0] = arg;
        let ctx = TracingCtx {
            nr_slots: 1,
            btf_ptr_slots: 1,
            btf_ids,
            known: true,
        };
        let insns: Vec<Insn> = words.iter().map(|&w| Insn::from_word(w)).collect();
        let prog = Program {
            insns: &insns,
            prog_type: ProgType::Tracing(ctx),
            // BPF_TRACE_RAW_TP
            expected_attach_type: Some(23),
            maps: &[],
            gpl_compatible: true,
            func_info: false,
            kfuncs: &[],
            btf: btf.map(|b| b as &dyn KernelBtf),
        };
        let opts = Options {
            privilege: Privilege::Root,
            ..Options::default()
        };
        crate::verify(&prog, &opts).map(|_| ())
    }
}

#[cfg(test)]
mod tests {
    use super::testing::TestBtf;
    use super::*;

    #[test]
    fn sizes_through_modifiers_and_arrays() {
        let mut b = TestBtf::new();
        let int = b.add(KernelType::Int { size: 4 });
        let cint = b.add(KernelType::Modifier {
            target: int,
            tag: None,
        });
        let arr = b.add(KernelType::Array {
            elem: cint,
            nelems: 3,
        });
        let arr2 = b.add(KernelType::Array {
            elem: arr,
            nelems: 2,
        });
        let td = b.add(KernelType::Typedef { target: arr2 });
        let r = resolve_size(&b, td).unwrap();
        assert_eq!(
            (r.id, r.is_array, r.size, r.elem, r.nelems),
            (arr2, true, 24, int, 6)
        );
        let r = resolve_size(&b, cint).unwrap();
        assert_eq!((r.id, r.is_array, r.size), (int, false, 4));
        assert!(resolve_size(&b, 0).is_none(), "void has no size");
        assert_eq!(skip_modifiers(&b, td), Some(arr2));
        // A cycle of typedefs ends.
        let loop_a = b.add(KernelType::Typedef { target: 0 });
        b.types[loop_a as usize] = KernelType::Typedef { target: loop_a };
        assert_eq!(skip_modifiers(&b, loop_a), None);
        assert!(resolve_size(&b, loop_a).is_none());
        assert!(b.ty(999).is_none());
    }
}
