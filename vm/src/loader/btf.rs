//! The BTF type section (`.BTF`) as the loader uses it: the types, their names shared
//! with the string section ([`SharedStr`]), and what maps need from them (sizes, names,
//! the `DATASEC` of a section). Parsing is in `btf_parse`; layout from the kernel's
//! `include/uapi/linux/btf.h`; little-endian objects only.

use std::collections::HashMap;
use std::sync::{Arc, OnceLock};

use super::limits::MAX_TYPE_DEPTH as MAX_DEPTH;
use super::strtab::{SharedStr, StrTab};

/// One BTF type; ids index [`Btf::types`], id 0 is `void`.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub enum BtfType {
    /// Type id 0.
    Void,
    /// `BTF_KIND_INT`.
    #[doc(alias = "BTF_KIND_INT")]
    Int {
        /// Type name (`unsigned int`, `__u64` is a typedef of it).
        name: SharedStr,
        /// Size in bytes.
        size: u32,
        /// `BTF_INT_SIGNED`.
        signed: bool,
        /// `BTF_INT_CHAR`.
        is_char: bool,
        /// `BTF_INT_BOOL`.
        is_bool: bool,
        /// Number of value bits.
        bits: u32,
        /// Bit offset of the value inside the integer (`BTF_INT_OFFSET`; 0 in everything
        /// clang and pahole emit).
        offset: u32,
    },
    /// `BTF_KIND_PTR`.
    #[doc(alias = "BTF_KIND_PTR")]
    Ptr {
        /// Pointee type id.
        target: u32,
    },
    /// `BTF_KIND_ARRAY`.
    #[doc(alias = "BTF_KIND_ARRAY")]
    Array {
        /// Element type id.
        elem: u32,
        /// Number of elements.
        nelems: u32,
    },
    /// `BTF_KIND_STRUCT`.
    #[doc(alias = "BTF_KIND_STRUCT")]
    Struct {
        /// Tag name (empty when anonymous).
        name: SharedStr,
        /// Size in bytes.
        size: u32,
        /// Members in declaration order.
        members: Vec<BtfMember>,
    },
    /// `BTF_KIND_UNION`.
    #[doc(alias = "BTF_KIND_UNION")]
    Union {
        /// Tag name (empty when anonymous).
        name: SharedStr,
        /// Size in bytes.
        size: u32,
        /// Members.
        members: Vec<BtfMember>,
    },
    /// `BTF_KIND_ENUM` and `BTF_KIND_ENUM64`.
    #[doc(alias = "BTF_KIND_ENUM")]
    Enum {
        /// Tag name.
        name: SharedStr,
        /// Size in bytes.
        size: u32,
        /// Whether values are signed.
        signed: bool,
        /// Enumerators.
        values: Vec<(SharedStr, i64)>,
        /// `BTF_KIND_ENUM64` (64-bit values) rather than `BTF_KIND_ENUM`.
        is64: bool,
    },
    /// `BTF_KIND_FWD`.
    #[doc(alias = "BTF_KIND_FWD")]
    Fwd {
        /// Name of the forward-declared type.
        name: SharedStr,
        /// Whether it declares a union (`kind_flag`) rather than a struct.
        is_union: bool,
    },
    /// `BTF_KIND_TYPEDEF`.
    #[doc(alias = "BTF_KIND_TYPEDEF")]
    Typedef {
        /// New name.
        name: SharedStr,
        /// Aliased type id.
        target: u32,
    },
    /// `BTF_KIND_VOLATILE`, `BTF_KIND_CONST`, `BTF_KIND_RESTRICT`, `BTF_KIND_TYPE_TAG`.
    Modifier {
        /// Which modifier (`volatile`, `const`, `restrict`, or the type tag's name).
        modifier: SharedStr,
        /// Modified type id.
        target: u32,
    },
    /// `BTF_KIND_FUNC`.
    #[doc(alias = "BTF_KIND_FUNC")]
    Func {
        /// Function name.
        name: SharedStr,
        /// Its `FuncProto` type id.
        proto: u32,
    },
    /// `BTF_KIND_FUNC_PROTO`.
    #[doc(alias = "BTF_KIND_FUNC_PROTO")]
    FuncProto {
        /// Return type id.
        ret: u32,
        /// Parameter type ids.
        params: Vec<u32>,
        /// The parameters' names (empty for unnamed ones), in order.
        param_names: Vec<SharedStr>,
    },
    /// `BTF_KIND_VAR`: a global variable.
    #[doc(alias = "BTF_KIND_VAR")]
    Var {
        /// Variable name.
        name: SharedStr,
        /// Its type id.
        target: u32,
    },
    /// `BTF_KIND_DATASEC`: the variables of one ELF section.
    #[doc(alias = "BTF_KIND_DATASEC")]
    Datasec {
        /// Section name.
        name: SharedStr,
        /// Section size (0 in clang's output; the ELF section has it).
        size: u32,
        /// The variables, by offset.
        vars: Vec<BtfVarSecinfo>,
    },
    /// `BTF_KIND_FLOAT`.
    #[doc(alias = "BTF_KIND_FLOAT")]
    Float {
        /// Type name.
        name: SharedStr,
        /// Size in bytes.
        size: u32,
    },
    /// `BTF_KIND_DECL_TAG`: an annotation, ignored by bpfvm.
    #[doc(alias = "BTF_KIND_DECL_TAG")]
    DeclTag {
        /// Tag text.
        name: SharedStr,
        /// Annotated type id.
        target: u32,
    },
}

/// One struct or union member.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct BtfMember {
    /// Member name (empty for anonymous members).
    pub name: SharedStr,
    /// Member type id.
    pub type_id: u32,
    /// Offset from the start of the struct, in bits.
    pub bit_offset: u32,
    /// Bitfield width in bits, 0 when the member is not a bitfield.
    pub bitfield_size: u32,
}

/// One variable of a [`BtfType::Datasec`].
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct BtfVarSecinfo {
    /// The `Var` type id.
    pub type_id: u32,
    /// Byte offset inside the section.
    pub offset: u32,
    /// Size in bytes.
    pub size: u32,
}

/// Parsed `.BTF` section.
#[derive(Debug, Clone, Default)]
pub struct Btf {
    /// Shared: a clone (one per program given the kernel's BTF) copies no types.
    pub(crate) types: Arc<Vec<BtfType>>,
    /// Struct ids by name, built at the first lookup ([`Btf::struct_by_name`]).
    pub(crate) struct_names: Arc<OnceLock<HashMap<SharedStr, u32>>>,
    pub(crate) strings: StrTab,
    /// `DATASEC` type ids by name (the first of each name).
    pub(crate) datasecs: HashMap<SharedStr, u32>,
    /// For each `ENUM`/`ENUM64` with enumerators: `(value, enumerator index)` sorted, so
    /// decoding finds an enumerator in `O(log n)`.
    pub(crate) enum_index: HashMap<u32, Vec<(i64, u32)>>,
}

impl Btf {
    /// The string at offset `off` of the BTF string section.
    pub(crate) fn string(&self, off: u32) -> Option<SharedStr> {
        self.strings.get(off)
    }

    /// Fill in what clang leaves as 0 in a `Datasec`, as libbpf does: the section size
    /// and each variable's offset (`offset_of` looks a variable name up in the ELF
    /// symbols of that section).
    pub(crate) fn fixup_datasec(
        &mut self,
        section: &str,
        section_size: u32,
        offset_of: impl Fn(&SharedStr) -> Option<u32>,
    ) {
        let Some(id) = self.datasec(section) else {
            return;
        };
        let names: Vec<Option<SharedStr>> = match &self.types[id as usize] {
            BtfType::Datasec { vars, .. } => vars
                .iter()
                .map(|v| match self.get(v.type_id) {
                    Some(BtfType::Var { name, .. }) => Some(name.clone()),
                    _ => None,
                })
                .collect(),
            _ => return,
        };
        if let BtfType::Datasec { size, vars, .. } =
            &mut Arc::make_mut(&mut self.types)[id as usize]
        {
            *size = section_size;
            for (var, name) in vars.iter_mut().zip(names) {
                if let Some(off) = name.as_ref().and_then(&offset_of) {
                    var.offset = off;
                }
            }
        }
    }

    /// The name of the enumerator of enum `id` whose value is `value` (the first one in
    /// declaration order when several have it).
    pub(crate) fn enumerator(&self, id: u32, value: i64) -> Option<&SharedStr> {
        let index = self.enum_index.get(&id)?;
        let i = index.partition_point(|&(v, _)| v < value);
        let &(v, at) = index.get(i)?;
        if v != value {
            return None;
        }
        match self.get(id)? {
            BtfType::Enum { values, .. } => values.get(at as usize).map(|(name, _)| name),
            _ => None,
        }
    }

    /// All types; index = type id, entry 0 is [`BtfType::Void`].
    pub fn types(&self) -> &[BtfType] {
        &self.types
    }

    /// The id of the struct (not union) named `name`, the first one when several are;
    /// the index of names is built at the first call.
    pub fn struct_by_name(&self, name: &str) -> Option<u32> {
        self.struct_names
            .get_or_init(|| {
                let mut index = HashMap::new();
                for (id, t) in self.types.iter().enumerate() {
                    if let BtfType::Struct { name, .. } = t {
                        if !name.is_empty() {
                            index.entry(name.clone()).or_insert(id as u32);
                        }
                    }
                }
                index
            })
            .get(name)
            .copied()
    }

    /// The type with id `id`.
    pub fn get(&self, id: u32) -> Option<&BtfType> {
        self.types.get(id as usize)
    }

    /// Follow typedefs and modifiers to the underlying type id (bounded, so a cycle
    /// in a malformed file ends as `None`).
    pub fn resolve(&self, mut id: u32) -> Option<u32> {
        for _ in 0..MAX_DEPTH {
            match self.get(id)? {
                BtfType::Typedef { target, .. } | BtfType::Modifier { target, .. } => id = *target,
                _ => return Some(id),
            }
        }
        None
    }

    /// Size in bytes of a type, as `sizeof` would give it; `None` for void, functions
    /// and unresolvable chains.
    pub fn size_of(&self, id: u32) -> Option<u32> {
        self.size_of_depth(id, 0)
    }

    fn size_of_depth(&self, id: u32, depth: usize) -> Option<u32> {
        if depth > MAX_DEPTH {
            return None;
        }
        match self.get(self.resolve(id)?)? {
            BtfType::Int { size, .. }
            | BtfType::Struct { size, .. }
            | BtfType::Union { size, .. }
            | BtfType::Enum { size, .. }
            | BtfType::Float { size, .. } => Some(*size),
            BtfType::Ptr { .. } => Some(8),
            BtfType::Array { elem, nelems } => {
                self.size_of_depth(*elem, depth + 1)?.checked_mul(*nelems)
            }
            BtfType::Var { target, .. } => self.size_of_depth(*target, depth + 1),
            BtfType::Datasec { size, .. } => Some(*size),
            _ => None,
        }
    }

    /// The id of the `Datasec` named `name` (e.g. `.maps`, `.bss`).
    pub fn datasec(&self, name: &str) -> Option<u32> {
        if name.len() > super::limits::MAX_NAME_LEN {
            return None; // no DATASEC has such a name (parsing refuses them)
        }
        self.datasecs.get(name).copied()
    }

    /// A C-like name for a type, for messages and listings (`struct input`, `__u64`).
    pub fn type_name(&self, id: u32) -> String {
        self.type_name_depth(id, 0)
    }

    fn type_name_depth(&self, id: u32, depth: usize) -> String {
        if depth > MAX_DEPTH {
            return "...".into();
        }
        match self.get(id) {
            None => format!("<type {id}>"),
            Some(BtfType::Void) => "void".into(),
            Some(BtfType::Int { name, .. })
            | Some(BtfType::Typedef { name, .. })
            | Some(BtfType::Float { name, .. })
            | Some(BtfType::Fwd { name, .. })
            | Some(BtfType::Func { name, .. })
            | Some(BtfType::Var { name, .. })
            | Some(BtfType::Datasec { name, .. })
            | Some(BtfType::DeclTag { name, .. }) => name.to_string(),
            Some(BtfType::Struct { name, .. }) => format!("struct {name}").trim_end().into(),
            Some(BtfType::Union { name, .. }) => format!("union {name}").trim_end().into(),
            Some(BtfType::Enum { name, .. }) => format!("enum {name}").trim_end().into(),
            Some(BtfType::Ptr { target }) => {
                format!("{} *", self.type_name_depth(*target, depth + 1))
            }
            Some(BtfType::Array { elem, nelems }) => {
                format!("{}[{nelems}]", self.type_name_depth(*elem, depth + 1))
            }
            Some(BtfType::Modifier { modifier, target }) => {
                format!("{modifier} {}", self.type_name_depth(*target, depth + 1))
            }
            Some(BtfType::FuncProto { .. }) => "fn".into(),
        }
    }
}

#[cfg(test)]
pub(crate) mod tests {
    use super::*;
    use crate::loader::LoadError;

    /// Build a `.BTF` section from raw type words and a string table.
    pub(crate) fn build(types: &[u32], strings: &[u8]) -> Vec<u8> {
        let mut out = Vec::new();
        out.extend_from_slice(&[0x9f, 0xeb, 1, 0]);
        let type_len = (types.len() * 4) as u32;
        for w in [24u32, 0, type_len, type_len, strings.len() as u32] {
            out.extend_from_slice(&w.to_le_bytes());
        }
        for w in types {
            out.extend_from_slice(&w.to_le_bytes());
        }
        out.extend_from_slice(strings);
        out
    }

    #[test]
    fn parses_int_typedef_struct_and_sizes() {
        // strings: 0 "", 1 "int", 5 "T", 7 "s", 9 "a", 11 "b"
        let strings = b"\0int\0T\0s\0a\0b\0";
        let types = [
            // 1: int, 4 bytes, signed 32 bits
            1,
            1 << 24,
            4,
            (1 << 24) | 32,
            // 2: typedef T -> 1
            5,
            8 << 24,
            1,
            // 3: struct s { int a; T b[2]; } size 12
            7,
            (4 << 24) | 2,
            12,
            9,
            1,
            0,
            11,
            4,
            32,
            // 4: array of T x 2
            0,
            3 << 24,
            0,
            2,
            1,
            2,
        ];
        let btf = Btf::parse(&build(&types, strings)).unwrap();
        assert_eq!(btf.types().len(), 5);
        assert_eq!(btf.size_of(1), Some(4));
        assert_eq!(btf.size_of(2), Some(4));
        assert_eq!(btf.size_of(3), Some(12));
        assert_eq!(btf.size_of(4), Some(8));
        assert_eq!(btf.resolve(2), Some(1));
        assert_eq!(btf.type_name(3), "struct s");
        assert_eq!(btf.type_name(4), "T[2]");
    }

    #[test]
    fn rejects_bad_input_without_panicking() {
        assert!(Btf::parse(&[]).is_err());
        assert!(Btf::parse(&[0x9f, 0xeb, 1, 0, 24, 0, 0]).is_err());
        // type 1 refers to type 7, which does not exist
        let dangling = build(&[0, 2 << 24, 7], b"\0");
        assert!(matches!(
            Btf::parse(&dangling),
            Err(LoadError::BadBtf { .. })
        ));
        // unknown kind 31
        let unknown = build(&[0, 31 << 24, 0], b"\0");
        assert!(Btf::parse(&unknown).is_err());
        // truncated type record
        let short = build(&[0, 1 << 24], b"\0");
        assert!(Btf::parse(&short).is_err());
        // string offset past the table
        let bad_name = build(&[99, 1 << 24, 4, 32], b"\0");
        assert!(Btf::parse(&bad_name).is_err());
    }

    #[test]
    fn cycles_end_as_none() {
        // 1: typedef -> 2, 2: const -> 1
        let btf = Btf::parse(&build(&[0, 8 << 24, 2, 0, 10 << 24, 1], b"\0")).unwrap();
        assert_eq!(btf.resolve(1), None);
        assert_eq!(btf.size_of(1), None);
    }
}
