//! Byte sizes on the command line: a number of bytes, or a number with a binary suffix
//! (`64K`, `512M`, `1G`, `1GiB`; powers of 1024, case-insensitive).

/// Parses `s` as a byte size (clap value parser).
pub fn parse_size(s: &str) -> Result<u64, String> {
    let t = s.trim();
    let digits = t.find(|c: char| !c.is_ascii_digit()).unwrap_or(t.len());
    let (number, suffix) = t.split_at(digits);
    let shift = match suffix.to_ascii_lowercase().as_str() {
        "" | "b" => 0,
        "k" | "kb" | "kib" => 10,
        "m" | "mb" | "mib" => 20,
        "g" | "gb" | "gib" => 30,
        "t" | "tb" | "tib" => 40,
        _ => {
            return Err(format!(
                "{s:?} is not a size: use bytes or a K, M, G or T suffix (e.g. 512M)"
            ))
        }
    };
    let n: u64 = number
        .parse()
        .map_err(|_| format!("{s:?} is not a size: it must start with a number"))?;
    n.checked_mul(1u64 << shift)
        .ok_or_else(|| format!("{s:?} is too large"))
}

/// `1 GiB`, `64 MiB`, `1536 KiB` or `100 bytes`: the largest binary unit that divides `n`.
pub fn show_size(n: u64) -> String {
    for (shift, unit) in [(40, "TiB"), (30, "GiB"), (20, "MiB"), (10, "KiB")] {
        if n >= 1 << shift && n % (1 << shift) == 0 {
            return format!("{} {unit}", n >> shift);
        }
    }
    format!("{n} bytes")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sizes_take_binary_suffixes() {
        assert_eq!(parse_size("4096"), Ok(4096));
        assert_eq!(parse_size("64K"), Ok(64 << 10));
        assert_eq!(parse_size("512m"), Ok(512 << 20));
        assert_eq!(parse_size("1GiB"), Ok(1 << 30));
        assert_eq!(parse_size("2T"), Ok(2 << 40));
        assert!(parse_size("1.5G").is_err());
        assert!(parse_size("G").is_err());
        assert!(parse_size("10Q").is_err());
        assert!(parse_size("99999999999T").is_err());
    }

    #[test]
    fn sizes_show_in_the_largest_exact_unit() {
        assert_eq!(show_size(1 << 30), "1 GiB");
        assert_eq!(show_size(64 << 20), "64 MiB");
        assert_eq!(show_size(1536 << 10), "1536 KiB");
        assert_eq!(show_size(100), "100 bytes");
    }
}
