//! Lowercase hex of raw bytes, as the JSON output and listings print them.

const DIGITS: &[u8; 16] = b"0123456789abcdef";

/// `bytes` as lowercase hex without separators (`[0xe8, 0x03]` → `"e803"`).
pub fn hex(bytes: &[u8]) -> String {
    let mut s = String::with_capacity(bytes.len() * 2);
    for &b in bytes {
        s.push(char::from(DIGITS[usize::from(b >> 4)]));
        s.push(char::from(DIGITS[usize::from(b & 15)]));
    }
    s
}

/// `bytes` as lowercase hex pairs separated by spaces (`"e8 03"`), for byte layouts.
pub fn hex_spaced(bytes: &[u8]) -> String {
    bytes
        .iter()
        .map(|b| format!("{b:02x}"))
        .collect::<Vec<_>>()
        .join(" ")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn hex_is_lowercase_and_unpadded() {
        assert_eq!(hex(&[0xe8, 0x03, 0, 0xff]), "e80300ff");
        assert_eq!(hex(&[]), "");
        assert_eq!(hex_spaced(&[0xab, 1]), "ab 01");
    }
}
