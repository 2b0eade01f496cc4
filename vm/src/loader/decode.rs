//! Decoding map keys and values with their BTF type, for listings (CLI, test output):
//! integers as numbers, structs by member, arrays element by element.

use std::fmt;

use super::btf::{Btf, BtfType};

/// How deep nested structs/arrays are decoded before falling back to bytes.
const MAX_DEPTH: usize = 16;

/// A decoded key or value.
#[derive(Debug, Clone, PartialEq)]
#[non_exhaustive]
pub enum BtfValue {
    /// A signed integer (or signed enum without a matching enumerator).
    Signed(i64),
    /// An unsigned integer.
    Unsigned(u64),
    /// A `_Bool`.
    Bool(bool),
    /// A `char` (printed as a character when printable).
    Char(u8),
    /// A float or double.
    Float(f64),
    /// An enumerator's name.
    Enumerator(String),
    /// A struct or union, member by member.
    Struct(Vec<(String, BtfValue)>),
    /// An array; `char` arrays are kept as [`BtfValue::Str`].
    Array(Vec<BtfValue>),
    /// A NUL-terminated `char` array.
    Str(String),
    /// Anything else, or bytes that do not fit the type.
    Bytes(Vec<u8>),
}

fn le_uint(bytes: &[u8]) -> u64 {
    bytes
        .iter()
        .take(8)
        .rev()
        .fold(0u64, |acc, &b| (acc << 8) | u64::from(b))
}

fn sign_extend(v: u64, bits: u32) -> i64 {
    if bits == 0 || bits >= 64 {
        return v as i64;
    }
    let shift = 64 - bits;
    ((v << shift) as i64) >> shift
}

impl Btf {
    /// Decode `bytes` as a value of type `type_id`.
    ///
    /// Never fails: what cannot be decoded (unknown type, short buffer) comes back as
    /// [`BtfValue::Bytes`].
    pub fn decode(&self, type_id: u32, bytes: &[u8]) -> BtfValue {
        self.decode_depth(type_id, bytes, 0)
    }

    fn decode_depth(&self, type_id: u32, bytes: &[u8], depth: usize) -> BtfValue {
        let raw = || BtfValue::Bytes(bytes.to_vec());
        if depth > MAX_DEPTH {
            return raw();
        }
        let Some(id) = self.resolve(type_id) else {
            return raw();
        };
        let Some(size) = self.size_of(id) else {
            return raw();
        };
        let Some(bytes) = bytes.get(..size as usize) else {
            return raw();
        };
        match self.get(id) {
            Some(BtfType::Int {
                signed,
                is_char,
                is_bool,
                bits,
                ..
            }) => {
                let v = le_uint(bytes);
                if *is_bool {
                    BtfValue::Bool(v != 0)
                } else if *is_char && size == 1 {
                    BtfValue::Char(v as u8)
                } else if *signed {
                    BtfValue::Signed(sign_extend(v, *bits))
                } else {
                    BtfValue::Unsigned(v)
                }
            }
            Some(BtfType::Ptr { .. }) => BtfValue::Unsigned(le_uint(bytes)),
            Some(BtfType::Float { .. }) => match size {
                4 => BtfValue::Float(f64::from(f32::from_bits(le_uint(bytes) as u32))),
                8 => BtfValue::Float(f64::from_bits(le_uint(bytes))),
                _ => raw(),
            },
            Some(BtfType::Enum { signed, values, .. }) => {
                let v = le_uint(bytes);
                let v = if *signed {
                    sign_extend(v, size * 8)
                } else {
                    v as i64
                };
                match values.iter().find(|(_, val)| *val == v) {
                    Some((name, _)) => BtfValue::Enumerator(name.clone()),
                    None if *signed => BtfValue::Signed(v),
                    None => BtfValue::Unsigned(v as u64),
                }
            }
            Some(BtfType::Struct { members, .. }) | Some(BtfType::Union { members, .. }) => {
                let mut out = Vec::with_capacity(members.len());
                for m in members {
                    let value = if m.bitfield_size > 0 {
                        let start = (m.bit_offset / 8) as usize;
                        let word = le_uint(bytes.get(start..).unwrap_or(&[]));
                        let shifted = word >> (m.bit_offset % 8);
                        let mask = if m.bitfield_size >= 64 {
                            u64::MAX
                        } else {
                            (1u64 << m.bitfield_size) - 1
                        };
                        BtfValue::Unsigned(shifted & mask)
                    } else {
                        let start = (m.bit_offset / 8) as usize;
                        match bytes.get(start..) {
                            Some(rest) => self.decode_depth(m.type_id, rest, depth + 1),
                            None => BtfValue::Bytes(Vec::new()),
                        }
                    };
                    out.push((m.name.clone(), value));
                }
                BtfValue::Struct(out)
            }
            Some(BtfType::Array { elem, nelems }) => {
                let elem_size = self.size_of(*elem).unwrap_or(0) as usize;
                let is_char = matches!(
                    self.resolve(*elem).and_then(|e| self.get(e)),
                    Some(BtfType::Int {
                        is_char: true,
                        size: 1,
                        ..
                    })
                ) || matches!(
                    self.resolve(*elem).and_then(|e| self.get(e)),
                    Some(BtfType::Int { name, size: 1, .. }) if name == "char"
                );
                if is_char {
                    let end = bytes.iter().position(|&b| b == 0).unwrap_or(bytes.len());
                    return BtfValue::Str(String::from_utf8_lossy(&bytes[..end]).into_owned());
                }
                if elem_size == 0 {
                    return raw();
                }
                BtfValue::Array(
                    bytes
                        .chunks(elem_size)
                        .take(*nelems as usize)
                        .map(|c| self.decode_depth(*elem, c, depth + 1))
                        .collect(),
                )
            }
            Some(BtfType::Datasec { vars, .. }) => BtfValue::Struct(
                vars.iter()
                    .map(|v| {
                        let name = match self.get(v.type_id) {
                            Some(BtfType::Var { name, .. }) => name.clone(),
                            _ => String::new(),
                        };
                        let value = match bytes.get(v.offset as usize..) {
                            Some(rest) => self.decode_depth(v.type_id, rest, depth + 1),
                            None => BtfValue::Bytes(Vec::new()),
                        };
                        (name, value)
                    })
                    .collect(),
            ),
            Some(BtfType::Var { target, .. }) => self.decode_depth(*target, bytes, depth + 1),
            _ => raw(),
        }
    }
}

impl fmt::Display for BtfValue {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::Signed(v) => write!(f, "{v}"),
            Self::Unsigned(v) => write!(f, "{v}"),
            Self::Bool(v) => write!(f, "{v}"),
            Self::Char(c) if c.is_ascii_graphic() || *c == b' ' => {
                write!(f, "'{}'", char::from(*c))
            }
            Self::Char(c) => write!(f, "{c}"),
            Self::Float(v) => write!(f, "{v}"),
            Self::Enumerator(name) => f.write_str(name),
            Self::Str(s) => write!(f, "{s:?}"),
            Self::Struct(members) => {
                f.write_str("{ ")?;
                for (i, (name, value)) in members.iter().enumerate() {
                    if i > 0 {
                        f.write_str(", ")?;
                    }
                    write!(f, "{name}: {value}")?;
                }
                f.write_str(" }")
            }
            Self::Array(items) => {
                f.write_str("[")?;
                for (i, item) in items.iter().enumerate() {
                    if i > 0 {
                        f.write_str(", ")?;
                    }
                    write!(f, "{item}")?;
                }
                f.write_str("]")
            }
            Self::Bytes(bytes) => {
                for (i, b) in bytes.iter().enumerate() {
                    if i > 0 {
                        f.write_str(" ")?;
                    }
                    write!(f, "{b:02x}")?;
                }
                Ok(())
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::super::btf::tests::build;
    use super::*;

    #[test]
    fn decodes_struct_of_signed_and_unsigned() {
        // 1: int (signed 32), 2: unsigned char (char? no: 8 bits unsigned)
        // 3: struct p { int x; unsigned char y; } size 8
        let strings = b"\0int\0u8\0p\0x\0y\0";
        let types = [
            1,
            1 << 24,
            4,
            (1 << 24) | 32,
            5,
            1 << 24,
            1,
            8,
            8,
            (4 << 24) | 2,
            8,
            10,
            1,
            0,
            12,
            2,
            32,
        ];
        let btf = Btf::parse(&build(&types, strings)).unwrap();
        let mut bytes = (-5i32).to_le_bytes().to_vec();
        bytes.extend_from_slice(&[200, 0, 0, 0]);
        let v = btf.decode(3, &bytes);
        assert_eq!(
            v,
            BtfValue::Struct(vec![
                ("x".into(), BtfValue::Signed(-5)),
                ("y".into(), BtfValue::Unsigned(200)),
            ])
        );
        assert_eq!(v.to_string(), "{ x: -5, y: 200 }");
        // Too short: raw bytes, no panic.
        assert_eq!(btf.decode(3, &[1, 2]).to_string(), "01 02");
        assert_eq!(btf.decode(99, &[7]), BtfValue::Bytes(vec![7]));
    }
}
