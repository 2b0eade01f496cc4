//! Decoding map keys and values with their BTF type, for listings (CLI, test output):
//! integers as numbers, structs by member, arrays element by element.
//!
//! A decoded value is bounded: it holds at most a budget of nodes and text that grows
//! with the bytes decoded (see [`DECODE_BASE_UNITS`]), and nests at most
//! [`MAX_DECODE_DEPTH`] deep, so a union DAG that fans out exponentially, a struct that
//! contains itself or members sharing one huge name cannot make it large. Names are
//! [`SharedStr`]s, shared with the BTF, not copies.

use std::fmt;

use super::btf::{Btf, BtfType};
use super::limits::{DECODE_BASE_UNITS, DECODE_UNITS_PER_BYTE, MAX_DECODE_DEPTH, MAX_DECODE_UNITS};
use super::strtab::SharedStr;

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
    Enumerator(SharedStr),
    /// A struct or union, member by member (a last member with an empty name and a
    /// [`BtfValue::Truncated`] value stands for members left out).
    Struct(Vec<(SharedStr, BtfValue)>),
    /// An array; `char` arrays are kept as [`BtfValue::Str`].
    Array(Vec<BtfValue>),
    /// A NUL-terminated `char` array.
    Str(String),
    /// Anything else, or bytes that do not fit the type.
    Bytes(Vec<u8>),
    /// What was left undecoded when the decoding budget ran out (printed as `...`).
    Truncated,
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

/// The units a decode of `len` bytes may spend.
pub(crate) fn decode_budget(len: usize) -> usize {
    len.saturating_mul(DECODE_UNITS_PER_BYTE)
        .saturating_add(DECODE_BASE_UNITS)
        .min(MAX_DECODE_UNITS)
}

/// One decode: the BTF and the units left.
struct Decoder<'b> {
    btf: &'b Btf,
    budget: usize,
}

impl Decoder<'_> {
    /// Spend `units`; `false` (and nothing spent) when they are not there.
    fn spend(&mut self, units: usize) -> bool {
        match self.budget.checked_sub(units) {
            Some(left) => {
                self.budget = left;
                true
            }
            None => {
                self.budget = 0;
                false
            }
        }
    }

    /// Raw bytes, as many as the budget allows.
    fn raw(&mut self, bytes: &[u8]) -> BtfValue {
        if !self.spend(1 + bytes.len()) {
            return BtfValue::Truncated;
        }
        BtfValue::Bytes(bytes.to_vec())
    }

    fn decode(&mut self, type_id: u32, bytes: &[u8], depth: usize) -> BtfValue {
        if depth > MAX_DECODE_DEPTH {
            return self.raw(bytes);
        }
        let btf = self.btf;
        let Some(id) = btf.resolve(type_id) else {
            return self.raw(bytes);
        };
        let Some(size) = btf.size_of(id) else {
            return self.raw(bytes);
        };
        let Some(bytes) = bytes.get(..size as usize) else {
            return self.raw(bytes);
        };
        if !self.spend(1) {
            return BtfValue::Truncated;
        }
        match btf.get(id) {
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
                _ => self.raw(bytes),
            },
            Some(BtfType::Enum { signed, .. }) => {
                let v = le_uint(bytes);
                let v = if *signed {
                    sign_extend(v, size.saturating_mul(8))
                } else {
                    v as i64
                };
                match btf.enumerator(id, v) {
                    Some(name) if self.spend(name.len()) => BtfValue::Enumerator(name.clone()),
                    Some(_) => BtfValue::Truncated,
                    None if *signed => BtfValue::Signed(v),
                    None => BtfValue::Unsigned(v as u64),
                }
            }
            Some(BtfType::Struct { members, .. }) | Some(BtfType::Union { members, .. }) => {
                let mut out = Vec::new();
                for m in members {
                    if !self.spend(1 + m.name.len()) {
                        out.push((SharedStr::default(), BtfValue::Truncated));
                        break;
                    }
                    let start = (m.bit_offset / 8) as usize;
                    let value = if m.bitfield_size > 0 {
                        let word = le_uint(bytes.get(start..).unwrap_or(&[]));
                        let shifted = word >> (m.bit_offset % 8);
                        let mask = if m.bitfield_size >= 64 {
                            u64::MAX
                        } else {
                            (1u64 << m.bitfield_size) - 1
                        };
                        BtfValue::Unsigned(shifted & mask)
                    } else {
                        match bytes.get(start..) {
                            Some(rest) => self.decode(m.type_id, rest, depth + 1),
                            None => BtfValue::Bytes(Vec::new()),
                        }
                    };
                    out.push((m.name.clone(), value));
                }
                BtfValue::Struct(out)
            }
            Some(BtfType::Array { elem, nelems }) => {
                let elem_size = btf.size_of(*elem).unwrap_or(0) as usize;
                let elem_ty = btf.resolve(*elem).and_then(|e| btf.get(e));
                let is_char = matches!(
                    elem_ty,
                    Some(BtfType::Int {
                        is_char: true,
                        size: 1,
                        ..
                    })
                ) || matches!(
                    elem_ty,
                    Some(BtfType::Int { name, size: 1, .. }) if name == "char"
                );
                if is_char {
                    let end = bytes.iter().position(|&b| b == 0).unwrap_or(bytes.len());
                    if !self.spend(end) {
                        return BtfValue::Truncated;
                    }
                    return BtfValue::Str(String::from_utf8_lossy(&bytes[..end]).into_owned());
                }
                if elem_size == 0 {
                    return self.raw(bytes);
                }
                let mut items = Vec::new();
                for chunk in bytes.chunks(elem_size).take(*nelems as usize) {
                    if self.budget == 0 {
                        items.push(BtfValue::Truncated);
                        break;
                    }
                    items.push(self.decode(*elem, chunk, depth + 1));
                }
                BtfValue::Array(items)
            }
            Some(BtfType::Datasec { vars, .. }) => {
                let mut out = Vec::new();
                for v in vars {
                    let name = match btf.get(v.type_id) {
                        Some(BtfType::Var { name, .. }) => name.clone(),
                        _ => SharedStr::default(),
                    };
                    if !self.spend(1 + name.len()) {
                        out.push((SharedStr::default(), BtfValue::Truncated));
                        break;
                    }
                    let value = match bytes.get(v.offset as usize..) {
                        Some(rest) => self.decode(v.type_id, rest, depth + 1),
                        None => BtfValue::Bytes(Vec::new()),
                    };
                    out.push((name, value));
                }
                BtfValue::Struct(out)
            }
            Some(BtfType::Var { target, .. }) => self.decode(*target, bytes, depth + 1),
            _ => self.raw(bytes),
        }
    }
}

/// The budget one listing of many values shares (every entry of a map dump): it starts at
/// [`DECODE_BASE_UNITS`] and earns [`DECODE_UNITS_PER_BYTE`] per byte decoded, so a whole
/// listing costs `DECODE_BASE_UNITS + DECODE_UNITS_PER_BYTE × bytes listed` at most, not
/// [`DECODE_BASE_UNITS`] again for every small value (a million 4-byte values of a union
/// DAG type would otherwise decode to billions of nodes).
#[derive(Debug)]
pub(crate) struct ListingBudget {
    left: usize,
}

impl ListingBudget {
    /// A fresh listing's budget.
    pub(crate) fn new() -> Self {
        Self {
            left: DECODE_BASE_UNITS,
        }
    }
}

impl Btf {
    /// [`Btf::decode`] as part of a listing: the value gets at most what it would alone
    /// and what the listing has left (after earning this value's bytes), and spends it
    /// from the listing.
    pub(crate) fn decode_listed(
        &self,
        type_id: u32,
        bytes: &[u8],
        listing: &mut ListingBudget,
    ) -> BtfValue {
        listing.left = listing
            .left
            .saturating_add(bytes.len().saturating_mul(DECODE_UNITS_PER_BYTE));
        let budget = decode_budget(bytes.len()).min(listing.left);
        let mut d = Decoder { btf: self, budget };
        let v = d.decode(type_id, bytes, 0);
        listing.left -= budget - d.budget;
        v
    }

    /// Decode `bytes` as a value of type `type_id`.
    ///
    /// Never fails: what cannot be decoded (unknown type, short buffer) comes back as
    /// [`BtfValue::Bytes`], and what is left when the budget of
    /// `DECODE_BASE_UNITS + DECODE_UNITS_PER_BYTE × bytes.len()` units (at most
    /// `MAX_DECODE_UNITS`, see [`limits`](super::limits)) runs out as
    /// [`BtfValue::Truncated`].
    pub fn decode(&self, type_id: u32, bytes: &[u8]) -> BtfValue {
        Decoder {
            btf: self,
            budget: decode_budget(bytes.len()),
        }
        .decode(type_id, bytes, 0)
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
                    match value {
                        // Members left out when the budget ran out.
                        Self::Truncated if name.is_empty() => f.write_str("...")?,
                        _ => write!(f, "{name}: {value}")?,
                    }
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
            Self::Truncated => f.write_str("..."),
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
