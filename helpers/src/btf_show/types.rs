//! The BTF a show walks, as a trait: the helpers crate does not parse BTF itself; the VM
//! gives it the target BTF it loaded (`bpfvm::loader::Btf` implements [`ShowBtf`]).

use std::fmt::Debug;

/// `BTF_INT_SIGNED`.
pub const INT_SIGNED: u8 = 1;
/// `BTF_INT_CHAR`.
pub const INT_CHAR: u8 = 2;
/// `BTF_INT_BOOL`.
pub const INT_BOOL: u8 = 4;

/// One BTF type as the show sees it (borrowed from the BTF).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum TypeView<'a> {
    /// Type id 0.
    Void,
    /// `BTF_KIND_INT`.
    Int {
        /// Name.
        name: &'a str,
        /// Size in bytes.
        size: u32,
        /// `BTF_INT_ENCODING` bits ([`INT_SIGNED`], [`INT_CHAR`], [`INT_BOOL`]).
        encoding: u8,
        /// `BTF_INT_BITS`.
        bits: u32,
        /// `BTF_INT_OFFSET`.
        offset: u32,
    },
    /// `BTF_KIND_PTR`.
    Ptr {
        /// Pointee.
        target: u32,
    },
    /// `BTF_KIND_ARRAY`.
    Array {
        /// Element type.
        elem: u32,
        /// Number of elements.
        nelems: u32,
    },
    /// `BTF_KIND_STRUCT` or `BTF_KIND_UNION`.
    Struct {
        /// Tag name ("" when anonymous).
        name: &'a str,
        /// Size in bytes.
        size: u32,
        /// Number of members ([`ShowBtf::member`]).
        vlen: usize,
        /// A union.
        union: bool,
    },
    /// `BTF_KIND_ENUM` or `BTF_KIND_ENUM64`.
    Enum {
        /// Tag name.
        name: &'a str,
        /// Size in bytes.
        size: u32,
        /// `kind_flag`: signed values.
        signed: bool,
        /// `BTF_KIND_ENUM64`.
        is64: bool,
        /// Number of enumerators ([`ShowBtf::enumerator`]).
        vlen: usize,
    },
    /// `BTF_KIND_TYPEDEF`.
    Typedef {
        /// New name.
        name: &'a str,
        /// Aliased type.
        target: u32,
    },
    /// `BTF_KIND_VOLATILE`, `CONST`, `RESTRICT` (name "") and `TYPE_TAG` (its text).
    Modifier {
        /// The BTF name of the type (empty except for type tags).
        name: &'a str,
        /// Modified type.
        target: u32,
    },
    /// `BTF_KIND_VAR`.
    Var {
        /// Variable name.
        name: &'a str,
        /// Its type.
        target: u32,
    },
    /// `BTF_KIND_DATASEC`.
    Datasec {
        /// Section name.
        name: &'a str,
    },
    /// A kind the kernel does not show (`BTF_KIND_FWD` 7, `FUNC` 12, `FUNC_PROTO` 13,
    /// `FLOAT` 16, `DECL_TAG` 17): printed as `<unsupported kind:N>`.
    Other {
        /// `BTF_KIND_*`.
        kind: u32,
        /// Its name ("" when none).
        name: &'a str,
        /// Its size in bytes (a `FLOAT`'s; 0 for the others).
        size: u32,
    },
}

/// One struct or union member.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct MemberView<'a> {
    /// Name ("" for anonymous members).
    pub name: &'a str,
    /// Type id.
    pub type_id: u32,
    /// Offset in bits from the start of the struct.
    pub bit_offset: u32,
    /// Bitfield width (0 when not a bitfield).
    pub bitfield_size: u32,
}

/// A BTF type graph the show can walk. Every method is total: an id or index the BTF
/// lacks is `None`, never a panic.
pub trait ShowBtf: Send + Sync + Debug {
    /// The type with id `id` (0 is [`TypeView::Void`]); `None` past the last id.
    fn type_view(&self, id: u32) -> Option<TypeView<'_>>;
    /// Member `index` of struct or union `id`.
    fn member(&self, id: u32, index: usize) -> Option<MemberView<'_>>;
    /// Enumerator `index` of enum `id`: its name and value.
    fn enumerator(&self, id: u32, index: usize) -> Option<(&str, i64)>;
}
