//! Parsing a `.BTF` section into [`Btf`] in one pass: every record is read once, names
//! become [`SharedStr`]s into the one copy of the string section, and nothing is
//! allocated for a count the section does not back with bytes.

use std::collections::HashMap;

use super::btf::{Btf, BtfMember, BtfType, BtfVarSecinfo};
use super::error::LoadError;
use super::limits::MAX_NAME_LEN;
use super::strtab::{SharedStr, StrTab};

/// Length of the BTF header (`struct btf_header`).
const HEADER_LEN: usize = 24;

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
        let v = u32_at(self.data, self.pos)?;
        self.pos += 4;
        Some(v)
    }

    pub(crate) fn is_empty(&self) -> bool {
        self.pos >= self.data.len()
    }

    /// Bytes left to read.
    pub(crate) fn remaining(&self) -> usize {
        self.data.len().saturating_sub(self.pos)
    }
}

/// Read a u32 at `off` in `data`.
pub(crate) fn u32_at(data: &[u8], off: usize) -> Option<u32> {
    let bytes = data.get(off..off.checked_add(4)?)?;
    Some(u32::from_le_bytes(bytes.try_into().ok()?))
}

/// Bytes per record that follow a type's 12-byte header, by kind.
fn record_size(kind: u32) -> usize {
    match kind {
        4 | 5 | 15 | 19 => 12,
        6 | 13 => 8,
        _ => 0,
    }
}

impl Btf {
    /// Parse a `.BTF` section.
    ///
    /// Fails with [`LoadError::BadBtf`] on a bad header, a string section that does not
    /// start and end with a NUL (libbpf's rule), out-of-range offsets, unknown kinds or
    /// type ids pointing past the last type. Time and memory grow with the section's
    /// length only.
    pub fn parse(data: &[u8]) -> Result<Self, LoadError> {
        let magic = data.get(0..2).ok_or_else(|| bad("section too short"))?;
        if magic != [0x9f, 0xeb] {
            return Err(bad("bad magic (not 0xeb9f little-endian)"));
        }
        let field = |off| u32_at(data, off).ok_or_else(|| bad("header truncated"));
        let hdr_len = field(4)? as usize;
        if hdr_len < HEADER_LEN {
            return Err(bad(format!(
                "header length {hdr_len} is below {HEADER_LEN}"
            )));
        }
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
        let string_data = range(str_off, str_len, "strings")?;
        if string_data.first() != Some(&0) || string_data.last() != Some(&0) {
            return Err(bad("the string section must start and end with a NUL byte"));
        }
        let strings = StrTab::new(string_data, ".BTF strings")?;
        let types = parse_types(type_data, &strings)?;
        let mut btf = Self {
            types: std::sync::Arc::new(types),
            struct_names: Default::default(),
            strings,
            datasecs: HashMap::new(),
            enum_index: HashMap::new(),
        };
        btf.check_references()?;
        btf.build_indexes();
        Ok(btf)
    }

    /// Every type id mentioned by a type must exist.
    fn check_references(&self) -> Result<(), LoadError> {
        let n = self.types.len() as u32;
        for (id, ty) in self.types.iter().enumerate() {
            let one = |target: u32| std::iter::once(target);
            let mut refs: Box<dyn Iterator<Item = u32> + '_> = match ty {
                BtfType::Ptr { target }
                | BtfType::Typedef { target, .. }
                | BtfType::Modifier { target, .. }
                | BtfType::Var { target, .. }
                | BtfType::DeclTag { target, .. } => Box::new(one(*target)),
                BtfType::Array { elem, .. } => Box::new(one(*elem)),
                BtfType::Struct { members, .. } | BtfType::Union { members, .. } => {
                    Box::new(members.iter().map(|m| m.type_id))
                }
                BtfType::Func { proto, .. } => Box::new(one(*proto)),
                BtfType::FuncProto { ret, params, .. } => {
                    Box::new(one(*ret).chain(params.iter().copied()))
                }
                BtfType::Datasec { vars, .. } => Box::new(vars.iter().map(|v| v.type_id)),
                _ => Box::new(std::iter::empty()),
            };
            if let Some(bad_ref) = refs.find(|&r| r >= n) {
                return Err(bad(format!(
                    "type {id} refers to type {bad_ref}, past the last type {}",
                    n - 1
                )));
            }
        }
        Ok(())
    }

    /// `DATASEC`s by name and sorted enumerator values, so lookups are not scans.
    fn build_indexes(&mut self) {
        for (id, ty) in self.types.iter().enumerate() {
            match ty {
                BtfType::Datasec { name, .. } => {
                    self.datasecs.entry(name.clone()).or_insert(id as u32);
                }
                BtfType::Enum { values, .. } if !values.is_empty() => {
                    let mut index: Vec<(i64, u32)> = values
                        .iter()
                        .enumerate()
                        .map(|(i, (_, v))| (*v, i as u32))
                        .collect();
                    index.sort_unstable();
                    self.enum_index.insert(id as u32, index);
                }
                _ => {}
            }
        }
    }
}

/// Read every type record of the type section.
fn parse_types(type_data: &[u8], strings: &StrTab) -> Result<Vec<BtfType>, LoadError> {
    let name = |off: u32| -> Result<SharedStr, LoadError> {
        strings
            .get(off)
            .ok_or_else(|| bad(format!("name offset {off} out of range")))
    };
    // VAR and DATASEC names are matched against ELF symbols and sections: bounded, as
    // the kernel bounds BTF names.
    let key_name = |off: u32, what: &str, id: usize| -> Result<SharedStr, LoadError> {
        let n = name(off)?;
        if n.len() > MAX_NAME_LEN {
            return Err(bad(format!(
                "{what} name of type {id} is {} bytes long, the limit is {MAX_NAME_LEN}",
                n.len()
            )));
        }
        Ok(n)
    };
    let mut types = vec![BtfType::Void];
    let mut r = Reader::new(type_data);
    while !r.is_empty() {
        let truncated = || bad(format!("type {} truncated", types.len()));
        let name_off = r.u32().ok_or_else(truncated)?;
        let info = r.u32().ok_or_else(truncated)?;
        let size_or_type = r.u32().ok_or_else(truncated)?;
        let vlen = (info & 0xffff) as usize;
        let kind = (info >> 24) & 0x1f;
        let kind_flag = info >> 31 != 0;
        // Records are read one by one below; this only stops a vlen the section does not
        // back with bytes from reserving memory first.
        if vlen * record_size(kind) > r.remaining() {
            return Err(truncated());
        }
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
                    offset: (enc >> 16) & 0xff,
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
                let mut members = Vec::with_capacity(vlen);
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
                let mut values = Vec::with_capacity(vlen);
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
                    is64: kind == 19,
                }
            }
            7 => BtfType::Fwd {
                name: name(name_off)?,
                is_union: kind_flag,
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
                let mut params = Vec::with_capacity(vlen);
                let mut param_names = Vec::with_capacity(vlen);
                for _ in 0..vlen {
                    let p_name = r.u32().ok_or_else(truncated)?;
                    param_names.push(name(p_name)?);
                    params.push(r.u32().ok_or_else(truncated)?);
                }
                BtfType::FuncProto {
                    ret: size_or_type,
                    params,
                    param_names,
                }
            }
            14 => {
                let _linkage = r.u32().ok_or_else(truncated)?;
                BtfType::Var {
                    name: key_name(name_off, "VAR", types.len())?,
                    target: size_or_type,
                }
            }
            15 => {
                let mut vars = Vec::with_capacity(vlen);
                for _ in 0..vlen {
                    vars.push(BtfVarSecinfo {
                        type_id: r.u32().ok_or_else(truncated)?,
                        offset: r.u32().ok_or_else(truncated)?,
                        size: r.u32().ok_or_else(truncated)?,
                    });
                }
                BtfType::Datasec {
                    name: key_name(name_off, "DATASEC", types.len())?,
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
    Ok(types)
}
