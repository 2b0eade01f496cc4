//! String tables (ELF `.strtab`/`.shstrtab`, the BTF string section) read once and
//! shared: every name the loader hands out is a [`SharedStr`], a range of one
//! reference-counted copy of its table, so a string referenced a thousand times costs a
//! thousand small handles, not a thousand copies; and resolving an offset costs at most
//! [`BLOCK`] bytes of scanning, however long the string is.

use std::borrow::Borrow;
use std::fmt;
use std::hash::{Hash, Hasher};
use std::ops::Deref;
use std::sync::Arc;

use super::error::LoadError;

/// Granularity of the end-of-string index: a lookup scans at most this many bytes
/// before jumping to the indexed NUL.
pub(crate) const BLOCK: usize = 64;

/// A string from an object's string table (or made from a Rust string), shared: cloning
/// it copies no text.
///
/// It dereferences to `str` and compares, hashes and prints as its text.
#[derive(Clone)]
pub struct SharedStr {
    text: Arc<str>,
    start: u32,
    end: u32,
}

impl SharedStr {
    /// The text.
    pub fn as_str(&self) -> &str {
        // Ranges are made only by `StrTab::get` (char boundaries of `text`) and `From`.
        self.text
            .get(self.start as usize..self.end as usize)
            .unwrap_or_default()
    }
}

impl Default for SharedStr {
    fn default() -> Self {
        Self::from("")
    }
}

impl From<&str> for SharedStr {
    fn from(s: &str) -> Self {
        Self::from(String::from(s))
    }
}

impl From<String> for SharedStr {
    /// Longer than 4 GiB strings keep their first 4 GiB (no loader string gets there).
    fn from(s: String) -> Self {
        let mut end = s.len().min(u32::MAX as usize);
        while !s.is_char_boundary(end) {
            end -= 1;
        }
        Self {
            text: Arc::from(s),
            start: 0,
            end: end as u32,
        }
    }
}

impl From<SharedStr> for String {
    fn from(s: SharedStr) -> Self {
        s.as_str().to_owned()
    }
}

impl Deref for SharedStr {
    type Target = str;
    fn deref(&self) -> &str {
        self.as_str()
    }
}

impl AsRef<str> for SharedStr {
    fn as_ref(&self) -> &str {
        self.as_str()
    }
}

impl Borrow<str> for SharedStr {
    fn borrow(&self) -> &str {
        self.as_str()
    }
}

impl fmt::Debug for SharedStr {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        fmt::Debug::fmt(self.as_str(), f)
    }
}

impl fmt::Display for SharedStr {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.pad(self.as_str())
    }
}

impl PartialEq for SharedStr {
    fn eq(&self, other: &Self) -> bool {
        self.as_str() == other.as_str()
    }
}

impl Eq for SharedStr {}

impl PartialOrd for SharedStr {
    fn partial_cmp(&self, other: &Self) -> Option<std::cmp::Ordering> {
        Some(self.cmp(other))
    }
}

impl Ord for SharedStr {
    fn cmp(&self, other: &Self) -> std::cmp::Ordering {
        self.as_str().cmp(other.as_str())
    }
}

impl Hash for SharedStr {
    fn hash<H: Hasher>(&self, state: &mut H) {
        self.as_str().hash(state)
    }
}

impl PartialEq<str> for SharedStr {
    fn eq(&self, other: &str) -> bool {
        self.as_str() == other
    }
}

impl PartialEq<&str> for SharedStr {
    fn eq(&self, other: &&str) -> bool {
        self.as_str() == *other
    }
}

impl PartialEq<String> for SharedStr {
    fn eq(&self, other: &String) -> bool {
        self.as_str() == other
    }
}

impl PartialEq<SharedStr> for str {
    fn eq(&self, other: &SharedStr) -> bool {
        self == other.as_str()
    }
}

impl PartialEq<SharedStr> for &str {
    fn eq(&self, other: &SharedStr) -> bool {
        *self == other.as_str()
    }
}

impl PartialEq<SharedStr> for String {
    fn eq(&self, other: &SharedStr) -> bool {
        self == other.as_str()
    }
}

/// A string table made valid UTF-8 once (each byte of an invalid sequence becomes `?`,
/// so offsets keep their meaning), with the position of the first NUL at or after each
/// [`BLOCK`]-byte block.
#[derive(Clone)]
pub(crate) struct StrTab {
    text: Arc<str>,
    next_nul: Vec<u32>,
}

impl fmt::Debug for StrTab {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("StrTab")
            .field("len", &self.text.len())
            .finish()
    }
}

impl Default for StrTab {
    fn default() -> Self {
        Self {
            text: Arc::from(""),
            next_nul: Vec::new(),
        }
    }
}

/// `bytes` as UTF-8, each byte of an invalid sequence replaced by `?`.
fn sanitize(bytes: &[u8], what: &str) -> Result<String, LoadError> {
    let mut out = Vec::new();
    out.try_reserve_exact(bytes.len())
        .map_err(|_| LoadError::out_of_memory(what, bytes.len()))?;
    let mut rest = bytes;
    loop {
        match std::str::from_utf8(rest) {
            Ok(s) => {
                out.extend_from_slice(s.as_bytes());
                break;
            }
            Err(e) => {
                let good = e.valid_up_to();
                let bad = e.error_len().unwrap_or(rest.len() - good);
                out.extend_from_slice(&rest[..good]);
                out.extend(std::iter::repeat_n(b'?', bad));
                rest = &rest[good + bad..];
            }
        }
    }
    Ok(match String::from_utf8(out) {
        Ok(s) => s,
        Err(e) => String::from_utf8_lossy(e.as_bytes()).into_owned(),
    })
}

impl StrTab {
    /// Read a string table; `what` names it in errors (`.strtab`, `.BTF strings`).
    ///
    /// Fails when the table is larger than 4 GiB or cannot be allocated.
    pub(crate) fn new(bytes: &[u8], what: &str) -> Result<Self, LoadError> {
        if u32::try_from(bytes.len()).is_err() {
            return Err(LoadError::TooLarge {
                what: what.into(),
                size: bytes.len() as u64,
                limit: u64::from(u32::MAX),
            });
        }
        let text = sanitize(bytes, what)?;
        let blocks = bytes.len().div_ceil(BLOCK);
        let mut next_nul = Vec::new();
        next_nul
            .try_reserve_exact(blocks)
            .map_err(|_| LoadError::out_of_memory(what, blocks * 4))?;
        next_nul.resize(blocks, u32::MAX);
        let mut next = u32::MAX;
        for b in (0..blocks).rev() {
            let block = &bytes[b * BLOCK..((b + 1) * BLOCK).min(bytes.len())];
            if let Some(i) = block.iter().position(|&c| c == 0) {
                next = (b * BLOCK + i) as u32;
            }
            next_nul[b] = next;
        }
        Ok(Self {
            text: Arc::from(text),
            next_nul,
        })
    }

    /// The NUL-terminated string at `off`, or `None` when `off` lies outside the table
    /// or no NUL follows it. An offset inside a multi-byte character starts at the next
    /// character.
    pub(crate) fn get(&self, off: u32) -> Option<SharedStr> {
        let start = off as usize;
        let bytes = self.text.as_bytes();
        if start >= bytes.len() {
            return None;
        }
        let block = start / BLOCK;
        let block_end = ((block + 1) * BLOCK).min(bytes.len());
        let end = match bytes[start..block_end].iter().position(|&c| c == 0) {
            Some(i) => start + i,
            None => match self.next_nul.get(block + 1) {
                Some(&n) if n != u32::MAX => n as usize,
                _ => return None,
            },
        };
        let mut start = start;
        while !self.text.is_char_boundary(start) {
            start += 1;
        }
        Some(SharedStr {
            text: Arc::clone(&self.text),
            start: start as u32,
            end: end as u32,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn offsets_resolve_to_shared_strings() {
        let mut table = b"\0abc\0".to_vec();
        table.extend(std::iter::repeat_n(b'x', 1000));
        table.extend_from_slice(b"\0end\0");
        let t = StrTab::new(&table, "test").unwrap();
        assert_eq!(t.get(0).unwrap(), "");
        assert_eq!(t.get(1).unwrap(), "abc");
        assert_eq!(t.get(2).unwrap(), "bc");
        assert_eq!(t.get(5).unwrap().len(), 1000);
        assert_eq!(t.get(900).unwrap().len(), 105);
        assert_eq!(t.get(1006).unwrap(), "end");
        assert!(t.get(table.len() as u32).is_none());
        // Every handle shares the one copy of the table.
        let a = t.get(5).unwrap();
        assert!(Arc::ptr_eq(&a.text, &t.get(6).unwrap().text));
    }

    #[test]
    fn unterminated_and_invalid_utf8() {
        let t = StrTab::new(b"\0abc", "test").unwrap();
        assert!(t.get(1).is_none(), "no NUL after it");
        let t = StrTab::new(b"\0a\xffb\0\xc3\xa9t\xc3\0", "test").unwrap();
        assert_eq!(t.get(1).unwrap(), "a?b");
        assert_eq!(t.get(5).unwrap(), "ét?");
        // Inside the two-byte 'é': starts at the next character.
        assert_eq!(t.get(6).unwrap(), "t?");
    }

    #[test]
    fn shared_str_behaves_like_a_string() {
        let s = SharedStr::from("count");
        assert_eq!(s, "count");
        assert_eq!("count", s);
        assert_eq!(s.to_string(), "count");
        assert_eq!(format!("{s:?}"), "\"count\"");
        assert_eq!(format!("{s:>7}"), "  count");
        assert!(s.starts_with("co"));
        let set: std::collections::HashSet<SharedStr> = [s.clone()].into();
        assert!(set.contains("count"));
    }
}
