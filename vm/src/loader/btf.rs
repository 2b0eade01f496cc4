//! A small reader for the BTF type section (`.BTF`): just what the loader needs to
//! describe maps and decode their keys and values. Layout from the kernel's
//! `include/uapi/linux/btf.h`; little-endian objects only.

use super::error::LoadError;

/// How deep type chains (typedef → const → struct ...) may go before we call them cyclic.
const MAX_DEPTH: usize = 32;

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
        name: String,
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
        name: String,
        /// Size in bytes.
        size: u32,
        /// Members in declaration order.
        members: Vec<BtfMember>,
    },
    /// `BTF_KIND_UNION`.
    #[doc(alias = "BTF_KIND_UNION")]
    Union {
        /// Tag name (empty when anonymous).
        name: String,
        /// Size in bytes.
        size: u32,
        /// Members.
        members: Vec<BtfMember>,
    },
    /// `BTF_KIND_ENUM` and `BTF_KIND_ENUM64`.
    #[doc(alias = "BTF_KIND_ENUM")]
    Enum {
        /// Tag name.
        name: String,
        /// Size in bytes.
        size: u32,
        /// Whether values are signed.
        signed: bool,
        /// Enumerators.
        values: Vec<(String, i64)>,
    },
    /// `BTF_KIND_FWD`.
    #[doc(alias = "BTF_KIND_FWD")]
    Fwd {
        /// Name of the forward-declared type.
        name: String,
    },
    /// `BTF_KIND_TYPEDEF`.
    #[doc(alias = "BTF_KIND_TYPEDEF")]
    Typedef {
        /// New name.
        name: String,
        /// Aliased type id.
        target: u32,
    },
    /// `BTF_KIND_VOLATILE`, `BTF_KIND_CONST`, `BTF_KIND_RESTRICT`, `BTF_KIND_TYPE_TAG`.
    Modifier {
        /// Which modifier (`volatile`, `const`, `restrict`, or the type tag's name).
        modifier: String,
        /// Modified type id.
        target: u32,
    },
    /// `BTF_KIND_FUNC`.
    #[doc(alias = "BTF_KIND_FUNC")]
    Func {
        /// Function name.
        name: String,
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
    },
    /// `BTF_KIND_VAR`: a global variable.
    #[doc(alias = "BTF_KIND_VAR")]
    Var {
        /// Variable name.
        name: String,
        /// Its type id.
        target: u32,
    },
    /// `BTF_KIND_DATASEC`: the variables of one ELF section.
    #[doc(alias = "BTF_KIND_DATASEC")]
    Datasec {
        /// Section name.
        name: String,
        /// Section size (0 in clang's output; the ELF section has it).
        size: u32,
        /// The variables, by offset.
        vars: Vec<BtfVarSecinfo>,
    },
    /// `BTF_KIND_FLOAT`.
    #[doc(alias = "BTF_KIND_FLOAT")]
    Float {
        /// Type name.
        name: String,
        /// Size in bytes.
        size: u32,
    },
    /// `BTF_KIND_DECL_TAG`: an annotation, ignored by bpfvm.
    #[doc(alias = "BTF_KIND_DECL_TAG")]
    DeclTag {
        /// Tag text.
        name: String,
        /// Annotated type id.
        target: u32,
    },
}

/// One struct or union member.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct BtfMember {
    /// Member name (empty for anonymous members).
    pub name: String,
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
    types: Vec<BtfType>,
    strings: Vec<u8>,
}

fn bad(reason: impl Into<String>) -> LoadError {
    LoadError::BadBtf {
        section: ".BTF".into(),
        reason: reason.into(),
    }
}

/// A bounds-checked little-endian reader.
pub(crate) struct Reader<'a> {
    data: &'a [u8],
    pos: usize,
}

impl<'a> Reader<'a> {
    pub(crate) fn new(data: &'a [u8]) -> Self {
        Self { data, pos: 0 }
    }

    pub(crate) fn u32(&mut self) -> Option<u32> {
        let bytes = self.data.get(self.pos..self.pos.checked_add(4)?)?;
        self.pos += 4;
        Some(u32::from_le_bytes(bytes.try_into().ok()?))
    }

    pub(crate) fn is_empty(&self) -> bool {
        self.pos >= self.data.len()
    }
}

/// Read a u32 at `off` in `data`.
pub(crate) fn u32_at(data: &[u8], off: usize) -> Option<u32> {
    let bytes = data.get(off..off.checked_add(4)?)?;
    Some(u32::from_le_bytes(bytes.try_into().ok()?))
}

/// Read the NUL-terminated string at `off` of a string table.
pub(crate) fn str_at(strings: &[u8], off: u32) -> Option<String> {
    let rest = strings.get(off as usize..)?;
    let end = rest.iter().position(|&b| b == 0)?;
    Some(String::from_utf8_lossy(&rest[..end]).into_owned())
}

impl Btf {
    /// Parse a `.BTF` section.
    ///
    /// Fails with [`LoadError::BadBtf`] on a bad header, out-of-range offsets, unknown
    /// kinds or type ids pointing past the last type.
    pub fn parse(data: &[u8]) -> Result<Self, LoadError> {
        let magic = data.get(0..2).ok_or_else(|| bad("section too short"))?;
        if magic != [0x9f, 0xeb] {
            return Err(bad("bad magic (not 0xeb9f little-endian)"));
        }
        let hdr_len = u32_at(data, 4).ok_or_else(|| bad("header truncated"))? as usize;
        let field = |off| u32_at(data, off).ok_or_else(|| bad("header truncated"));
        let (type_off, type_len) = (field(8)? as usize, field(12)? as usize);
        let (str_off, str_len) = (field(16)? as usize, field(20)? as usize);
        let range = |off: usize, len: usize, what: &str| {
            hdr_len
                .checked_add(off)
                .and_then(|s| Some(s..s.checked_add(len)?))
                .and_then(|r| data.get(r))
                .ok_or_else(|| bad(format!("{what} lie outside the section")))
        };
        let type_data = range(type_off, type_len, "types")?;
        let strings = range(str_off, str_len, "strings")?;
        let name = |off: u32| str_at(strings, off).ok_or_else(|| bad("name offset out of range"));

        let mut types = vec![BtfType::Void];
        let mut r = Reader::new(type_data);
        while !r.is_empty() {
            let truncated = || bad(format!("type {} truncated", types.len()));
            let name_off = r.u32().ok_or_else(truncated)?;
            let info = r.u32().ok_or_else(truncated)?;
            let size_or_type = r.u32().ok_or_else(truncated)?;
            let vlen = info & 0xffff;
            let kind = (info >> 24) & 0x1f;
            let kind_flag = info >> 31 != 0;
            let ty = match kind {
                1 => {
                    let enc = r.u32().ok_or_else(truncated)?;
                    BtfType::Int {
                        name: name(name_off)?,
                        size: size_or_type,
                        signed: (enc >> 24) & 1 != 0,
                        is_char: (enc >> 24) & 2 != 0,
                        is_bool: (enc >> 24) & 4 != 0,
                        bits: enc & 0xff,
                    }
                }
                2 => BtfType::Ptr {
                    target: size_or_type,
                },
                3 => {
                    let elem = r.u32().ok_or_else(truncated)?;
                    let _index = r.u32().ok_or_else(truncated)?;
                    let nelems = r.u32().ok_or_else(truncated)?;
                    BtfType::Array { elem, nelems }
                }
                4 | 5 => {
                    let mut members = Vec::with_capacity(vlen as usize);
                    for _ in 0..vlen {
                        let m_name = r.u32().ok_or_else(truncated)?;
                        let type_id = r.u32().ok_or_else(truncated)?;
                        let off = r.u32().ok_or_else(truncated)?;
                        let (bit_offset, bitfield_size) = if kind_flag {
                            (off & 0xff_ffff, off >> 24)
                        } else {
                            (off, 0)
                        };
                        members.push(BtfMember {
                            name: name(m_name)?,
                            type_id,
                            bit_offset,
                            bitfield_size,
                        });
                    }
                    let name = name(name_off)?;
                    if kind == 4 {
                        BtfType::Struct {
                            name,
                            size: size_or_type,
                            members,
                        }
                    } else {
                        BtfType::Union {
                            name,
                            size: size_or_type,
                            members,
                        }
                    }
                }
                6 | 19 => {
                    let mut values = Vec::with_capacity(vlen as usize);
                    for _ in 0..vlen {
                        let v_name = name(r.u32().ok_or_else(truncated)?)?;
                        let lo = r.u32().ok_or_else(truncated)?;
                        let value = if kind == 19 {
                            let hi = r.u32().ok_or_else(truncated)?;
                            ((u64::from(hi) << 32) | u64::from(lo)) as i64
                        } else if kind_flag {
                            i64::from(lo as i32)
                        } else {
                            i64::from(lo)
                        };
                        values.push((v_name, value));
                    }
                    BtfType::Enum {
                        name: name(name_off)?,
                        size: size_or_type,
                        signed: kind_flag,
                        values,
                    }
                }
                7 => BtfType::Fwd {
                    name: name(name_off)?,
                },
                8 => BtfType::Typedef {
                    name: name(name_off)?,
                    target: size_or_type,
                },
                9 | 10 | 11 | 18 => BtfType::Modifier {
                    modifier: match kind {
                        9 => "volatile".into(),
                        10 => "const".into(),
                        11 => "restrict".into(),
                        _ => name(name_off)?,
                    },
                    target: size_or_type,
                },
                12 => BtfType::Func {
                    name: name(name_off)?,
                    proto: size_or_type,
                },
                13 => {
                    let mut params = Vec::with_capacity(vlen as usize);
                    for _ in 0..vlen {
                        let _p_name = r.u32().ok_or_else(truncated)?;
                        params.push(r.u32().ok_or_else(truncated)?);
                    }
                    BtfType::FuncProto {
                        ret: size_or_type,
                        params,
                    }
                }
                14 => {
                    let _linkage = r.u32().ok_or_else(truncated)?;
                    BtfType::Var {
                        name: name(name_off)?,
                        target: size_or_type,
                    }
                }
                15 => {
                    let mut vars = Vec::with_capacity(vlen as usize);
                    for _ in 0..vlen {
                        vars.push(BtfVarSecinfo {
                            type_id: r.u32().ok_or_else(truncated)?,
                            offset: r.u32().ok_or_else(truncated)?,
                            size: r.u32().ok_or_else(truncated)?,
                        });
                    }
                    BtfType::Datasec {
                        name: name(name_off)?,
                        size: size_or_type,
                        vars,
                    }
                }
                16 => BtfType::Float {
                    name: name(name_off)?,
                    size: size_or_type,
                },
                17 => {
                    let _component = r.u32().ok_or_else(truncated)?;
                    BtfType::DeclTag {
                        name: name(name_off)?,
                        target: size_or_type,
                    }
                }
                other => {
                    return Err(bad(format!(
                        "type {} has unknown kind {other}",
                        types.len()
                    )))
                }
            };
            types.push(ty);
        }
        let btf = Self {
            types,
            strings: strings.to_vec(),
        };
        btf.check_references()?;
        Ok(btf)
    }

    /// Every type id mentioned by a type must exist.
    fn check_references(&self) -> Result<(), LoadError> {
        let n = self.types.len() as u32;
        for (id, ty) in self.types.iter().enumerate() {
            let mut refs: Vec<u32> = Vec::new();
            match ty {
                BtfType::Ptr { target }
                | BtfType::Typedef { target, .. }
                | BtfType::Modifier { target, .. }
                | BtfType::Var { target, .. }
                | BtfType::DeclTag { target, .. } => refs.push(*target),
                BtfType::Array { elem, .. } => refs.push(*elem),
                BtfType::Struct { members, .. } | BtfType::Union { members, .. } => {
                    refs.extend(members.iter().map(|m| m.type_id))
                }
                BtfType::Func { proto, .. } => refs.push(*proto),
                BtfType::FuncProto { ret, params } => {
                    refs.push(*ret);
                    refs.extend(params);
                }
                BtfType::Datasec { vars, .. } => refs.extend(vars.iter().map(|v| v.type_id)),
                _ => {}
            }
            if let Some(bad_ref) = refs.into_iter().find(|&r| r >= n) {
                return Err(bad(format!(
                    "type {id} refers to type {bad_ref}, past the last type {}",
                    n - 1
                )));
            }
        }
        Ok(())
    }

    /// The string at offset `off` of the BTF string table.
    pub(crate) fn string(&self, off: u32) -> Option<String> {
        str_at(&self.strings, off)
    }

    /// Fill in what clang leaves as 0 in a `Datasec`, as libbpf does: the section size
    /// and each variable's offset (`offset_of` looks a variable name up in the ELF
    /// symbols of that section).
    pub(crate) fn fixup_datasec(
        &mut self,
        section: &str,
        section_size: u32,
        offset_of: impl Fn(&str) -> Option<u32>,
    ) {
        let Some(id) = self.datasec(section) else {
            return;
        };
        let names: Vec<Option<String>> = match &self.types[id as usize] {
            BtfType::Datasec { vars, .. } => vars
                .iter()
                .map(|v| match self.get(v.type_id) {
                    Some(BtfType::Var { name, .. }) => Some(name.clone()),
                    _ => None,
                })
                .collect(),
            _ => return,
        };
        if let BtfType::Datasec { size, vars, .. } = &mut self.types[id as usize] {
            *size = section_size;
            for (var, name) in vars.iter_mut().zip(names) {
                if let Some(off) = name.as_deref().and_then(&offset_of) {
                    var.offset = off;
                }
            }
        }
    }

    /// All types; index = type id, entry 0 is [`BtfType::Void`].
    pub fn types(&self) -> &[BtfType] {
        &self.types
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
        self.types
            .iter()
            .position(|t| matches!(t, BtfType::Datasec { name: n, .. } if n == name))
            .map(|i| i as u32)
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
            | Some(BtfType::Fwd { name })
            | Some(BtfType::Func { name, .. })
            | Some(BtfType::Var { name, .. })
            | Some(BtfType::Datasec { name, .. })
            | Some(BtfType::DeclTag { name, .. }) => name.clone(),
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
