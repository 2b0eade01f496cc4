//! Operands of the bpf_conformance assembly dialect: registers (`%r0`..`%r10`), numbers
//! (decimal or `0x` hex, optionally signed), memory operands (`[%rN]`, `[%rN+off]`,
//! `[%rN-off]`) and jump targets (`+off`, `-off` or a label).

use super::AsmErrorKind;

/// Where a jump or local call goes.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(super) enum Target {
    /// A relative offset in instruction slots, counted from the next instruction.
    Relative(i64),
    /// A label defined somewhere in the program.
    Label(String),
}

/// `%r0`..`%r10`.
pub(super) fn register(op: &str) -> Result<u8, AsmErrorKind> {
    let bad = || AsmErrorKind::BadRegister(op.to_owned());
    let digits = op.strip_prefix("%r").ok_or_else(bad)?;
    if digits.is_empty() || digits.len() > 2 || !digits.bytes().all(|b| b.is_ascii_digit()) {
        return Err(bad());
    }
    match digits.parse::<u8>() {
        Ok(n) if n <= 10 && (n == 0 || !digits.starts_with('0')) => Ok(n),
        _ => Err(bad()),
    }
}

/// Whether an operand is written as a register (`%...`), as opposed to an immediate.
pub(super) fn is_register(op: &str) -> bool {
    op.starts_with('%')
}

/// A number with an optional sign: `(negative, magnitude, was_hex)`.
fn number(op: &str) -> Option<(bool, u64, bool)> {
    let (neg, rest) = match op.as_bytes().first()? {
        b'-' => (true, &op[1..]),
        b'+' => (false, &op[1..]),
        _ => (false, op),
    };
    let (digits, radix) = match rest.strip_prefix("0x").or_else(|| rest.strip_prefix("0X")) {
        Some(hex) => (hex, 16),
        None => (rest, 10),
    };
    // from_str_radix would accept a second sign; only digits are allowed here.
    if digits.is_empty() || !digits.chars().all(|c| c.is_digit(radix)) {
        return None;
    }
    let magnitude = u64::from_str_radix(digits, radix).ok()?;
    Some((neg, magnitude, radix == 16))
}

/// A signed value that must lie in `[min, max]`; an unsigned hex value may also be any bit
/// pattern of `bits` bits (`0xffffffff` is -1 as a 32-bit immediate).
fn ranged(op: &str, bits: u32) -> Result<i64, AsmErrorKind> {
    let (neg, mag, hex) = number(op).ok_or_else(|| AsmErrorKind::BadNumber(op.to_owned()))?;
    let min = -(1i64 << (bits - 1));
    let max = (1i64 << (bits - 1)) - 1;
    let out_of_range = || AsmErrorKind::OutOfRange {
        operand: op.to_owned(),
        bits,
    };
    if neg {
        let v = i64::try_from(mag).map_err(|_| out_of_range())?;
        return if -v >= min {
            Ok(-v)
        } else {
            Err(out_of_range())
        };
    }
    let v = i64::try_from(mag).map_err(|_| out_of_range())?;
    if v <= max {
        Ok(v)
    } else if hex && v < (1i64 << bits) {
        // A full-width bit pattern: reinterpret as signed.
        Ok(v - (1i64 << bits))
    } else {
        Err(out_of_range())
    }
}

/// A 32-bit immediate: decimal in `i32` range, or hex up to `0xffffffff` (a bit pattern).
pub(super) fn imm32(op: &str) -> Result<i32, AsmErrorKind> {
    ranged(op, 32).map(|v| v as i32)
}

/// A 16-bit offset: decimal in `i16` range, or hex up to `0xffff` (a bit pattern).
pub(super) fn off16(op: &str) -> Result<i16, AsmErrorKind> {
    ranged(op, 16).map(|v| v as i16)
}

/// The 64-bit immediate of `lddw`: any `u64` (decimal or hex), or a negative `i64`.
pub(super) fn imm64(op: &str) -> Result<u64, AsmErrorKind> {
    let (neg, mag, _) = number(op).ok_or_else(|| AsmErrorKind::BadNumber(op.to_owned()))?;
    if !neg {
        return Ok(mag);
    }
    if mag <= 1u64 << 63 {
        Ok(mag.wrapping_neg())
    } else {
        Err(AsmErrorKind::OutOfRange {
            operand: op.to_owned(),
            bits: 64,
        })
    }
}

/// `[%rN]`, `[%rN+off]` or `[%rN-off]`: the register and the 16-bit offset.
pub(super) fn memory(op: &str) -> Result<(u8, i16), AsmErrorKind> {
    let inner = op
        .strip_prefix('[')
        .and_then(|s| s.strip_suffix(']'))
        .ok_or_else(|| AsmErrorKind::BadMemoryOperand(op.to_owned()))?
        .trim();
    match inner.find(['+', '-']) {
        None => Ok((register(inner)?, 0)),
        Some(i) => {
            let reg = register(inner[..i].trim())?;
            let off_text: String = inner[i..].chars().filter(|c| !c.is_whitespace()).collect();
            Ok((reg, off16(&off_text)?))
        }
    }
}

/// A jump target: `+N` / `-N` (slots) or a label name.
pub(super) fn target(op: &str) -> Result<Target, AsmErrorKind> {
    if op.starts_with(['+', '-']) {
        let (neg, mag, _) = number(op).ok_or_else(|| AsmErrorKind::BadNumber(op.to_owned()))?;
        let v = i64::try_from(mag).map_err(|_| AsmErrorKind::OutOfRange {
            operand: op.to_owned(),
            bits: 32,
        })?;
        return Ok(Target::Relative(if neg { -v } else { v }));
    }
    if is_label(op) {
        Ok(Target::Label(op.to_owned()))
    } else {
        Err(AsmErrorKind::BadTarget(op.to_owned()))
    }
}

/// Label names: a letter or `_`, then letters, digits, `_` or `.`.
pub(super) fn is_label(name: &str) -> bool {
    let mut chars = name.chars();
    chars
        .next()
        .is_some_and(|c| c.is_ascii_alphabetic() || c == '_')
        && chars.all(|c| c.is_ascii_alphanumeric() || c == '_' || c == '.')
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn registers() {
        assert_eq!(register("%r0"), Ok(0));
        assert_eq!(register("%r10"), Ok(10));
        for bad in ["%r11", "%r50", "r1", "%r", "%r01", "%rx", "%r-1", "%r1 "] {
            assert!(register(bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn imm32_ranges() {
        assert_eq!(imm32("2147483647"), Ok(i32::MAX));
        assert_eq!(imm32("-2147483648"), Ok(i32::MIN));
        assert_eq!(imm32("0xffffffff"), Ok(-1));
        assert_eq!(imm32("0x80000000"), Ok(i32::MIN));
        assert_eq!(imm32("-0x10"), Ok(-16));
        assert_eq!(imm32("+5"), Ok(5));
        assert!(imm32("2147483648").is_err());
        assert!(imm32("-2147483649").is_err());
        assert!(imm32("0x100000000").is_err());
        assert!(imm32("-0x80000001").is_err());
        for bad in [
            "",
            "-",
            "0x",
            "12a",
            "0xg",
            "--1",
            "+-1",
            "1.0",
            "99999999999999999999",
        ] {
            assert!(imm32(bad).is_err(), "{bad:?}");
        }
    }

    #[test]
    fn imm64_takes_any_u64_and_negative_i64() {
        assert_eq!(imm64("0xFFFFFFFFFFFFFFFF"), Ok(u64::MAX));
        assert_eq!(imm64("18446744073709551615"), Ok(u64::MAX));
        assert_eq!(imm64("-1"), Ok(u64::MAX));
        assert_eq!(imm64("-9223372036854775808"), Ok(1 << 63));
        assert!(imm64("-9223372036854775809").is_err());
        assert!(imm64("0x10000000000000000").is_err());
    }

    #[test]
    fn memory_operands() {
        assert_eq!(memory("[%r1]"), Ok((1, 0)));
        assert_eq!(memory("[%r10-8]"), Ok((10, -8)));
        assert_eq!(memory("[%r1+0x10]"), Ok((1, 16)));
        assert_eq!(memory("[%r1+32767]"), Ok((1, i16::MAX)));
        assert_eq!(memory("[%r1-32768]"), Ok((1, i16::MIN)));
        assert!(matches!(
            memory("[%r1+0x10000]"),
            Err(AsmErrorKind::OutOfRange { .. })
        ));
        assert!(memory("[%r1+32768]").is_err());
        assert!(matches!(
            memory("%r1"),
            Err(AsmErrorKind::BadMemoryOperand(_))
        ));
        assert!(memory("[%r11]").is_err());
        assert!(memory("[%r1+]").is_err());
    }

    #[test]
    fn targets() {
        assert_eq!(target("+3"), Ok(Target::Relative(3)));
        assert_eq!(target("-1"), Ok(Target::Relative(-1)));
        assert_eq!(target("exit"), Ok(Target::Label("exit".into())));
        assert!(target("3").is_err());
        assert!(target("+x").is_err());
    }
}
