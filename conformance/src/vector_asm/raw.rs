//! `-- raw` sections: the program written as numbers instead of assembly.
//!
//! Two layouts occur upstream. In `tests/` each token is one whole 64-bit instruction word,
//! `0x…` hex or decimal, whose little-endian bytes are the instruction
//! (`0x0000000000000095` is `exit`). In `negative/unused-*` each line is one instruction as
//! eight hex bytes (`95 00 00 00 00 00 00 00`). A line whose tokens are all two hex digits
//! is read as bytes (and must have exactly eight); any other line as words.

use super::{AsmError, AsmErrorKind};

fn is_byte(tok: &str) -> bool {
    tok.len() == 2 && tok.bytes().all(|b| b.is_ascii_hexdigit())
}

fn word(tok: &str) -> Option<u64> {
    match tok.strip_prefix("0x").or_else(|| tok.strip_prefix("0X")) {
        Some(hex) if !hex.is_empty() && hex.bytes().all(|b| b.is_ascii_hexdigit()) => {
            u64::from_str_radix(hex, 16).ok()
        }
        Some(_) => None,
        None if !tok.is_empty() && tok.bytes().all(|b| b.is_ascii_digit()) => tok.parse().ok(),
        None => None,
    }
}

/// Decodes numbered `-- raw` lines (comments already removed or not) into bytecode.
pub fn decode_raw<'a>(
    lines: impl IntoIterator<Item = (usize, &'a str)>,
) -> Result<Vec<u8>, AsmError> {
    let mut code = Vec::new();
    let mut last_line = 0;
    for (line, text) in lines {
        last_line = line;
        let text = text.split('#').next().unwrap_or("");
        let toks: Vec<&str> = text.split_whitespace().collect();
        if toks.is_empty() {
            continue;
        }
        let bad = || AsmError {
            line,
            kind: AsmErrorKind::BadRaw(text.trim().to_owned()),
        };
        if toks.iter().all(|t| is_byte(t)) {
            if toks.len() != 8 {
                return Err(bad());
            }
            for t in toks {
                code.push(u8::from_str_radix(t, 16).map_err(|_| bad())?);
            }
        } else {
            for t in toks {
                code.extend(word(t).ok_or_else(bad)?.to_le_bytes());
            }
        }
    }
    if code.is_empty() {
        return Err(AsmError {
            line: last_line,
            kind: AsmErrorKind::Empty,
        });
    }
    Ok(code)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn raw(s: &str) -> Result<Vec<u8>, AsmError> {
        decode_raw(s.lines().enumerate().map(|(i, l)| (i + 1, l)))
    }

    #[test]
    fn words_are_little_endian_instructions() {
        let code = raw("0x5566778800000018\n0x1122334400000000\n149 # exit\n").unwrap();
        assert_eq!(
            code,
            [
                0x18, 0, 0, 0, 0x88, 0x77, 0x66, 0x55, 0, 0, 0, 0, 0x44, 0x33, 0x22, 0x11, 0x95, 0,
                0, 0, 0, 0, 0, 0
            ]
        );
    }

    #[test]
    fn byte_lines_are_one_instruction_each() {
        let code = raw("07 10 00 00 01 00 00 00\n95 00 00 00 00 00 00 00\n").unwrap();
        assert_eq!(code.len(), 16);
        assert_eq!(&code[..2], &[0x07, 0x10]);
    }

    #[test]
    fn bad_lines_are_refused_with_their_number() {
        let e = raw("95 00 00\n").unwrap_err();
        assert_eq!(e.line, 1);
        assert!(matches!(e.kind, AsmErrorKind::BadRaw(_)));
        assert_eq!(raw("0x95\n0xzz\n").unwrap_err().line, 2);
        assert!(raw("0x10000000000000000").is_err());
        assert!(raw("-1").is_err());
        assert_eq!(raw("# nothing\n").unwrap_err().kind, AsmErrorKind::Empty);
    }
}
