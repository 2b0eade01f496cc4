//! The formatter of `bpf_trace_printk` (6) and `bpf_trace_vprintk` (177), with the rules of
//! the kernel's `bpf_bprintf_prepare` and the output of its `bstr_printf`:
//!
//! - the format ends at its first NUL within `fmt_size` (none: `-EINVAL`); every byte before
//!   it must not be an ASCII control character other than white space (`-EINVAL`; bytes
//!   from 0x80 on, UTF-8 text, pass);
//! - `%%` is a percent sign; any other conversion takes the next argument (none left:
//!   `-EINVAL`) and may have flags `0`, `+`, `-`, ` ` and a width; then `%c`, `%s`, `%p`,
//!   or `%d %i %u %x %X` with up to two `l` (anything else, precision included: `-EINVAL`);
//! - the text is cut to 511 bytes (the kernel's 512-byte buffer with its NUL) and the
//!   helper returns the length the whole text would have, as `vsnprintf`.
//!
//! `%s` reads a string of at most 256 bytes (the kernel's per-string room) from the
//! program's memory, the task's user memory (addresses below `TASK_SIZE_MAX`) or the kernel
//! memory a test provided; one that cannot be read prints as nothing.
//!
//! `%p` takes the kernel's modifiers (`bpf_bprintf_prepare`, then `lib/vsprintf.c`):
//! - plain `%p` (followed by the end, white space or punctuation) and `%pK` print a pointer
//!   as 16 hex digits; NULL and error pointers print as themselves, others are hashed. The
//!   kernel hashes with a key drawn at boot, so its digits differ from boot to boot: bpfvm
//!   hashes with a fixed key — the same length and shape (`00000000` and 8 digits), stable
//!   from run to run, not the kernel's digits;
//! - `%px` prints the value as 16 hex digits;
//! - `%ps`, `%pS`, `%pB` print a kernel symbol; bpfvm has no kernel symbols, and the kernel
//!   prints an address it has no symbol for as `0x` and its hex digits, as bpfvm does;
//! - `%pks` / `%pus` print a kernel / user string, as `%s`;
//! - `%pI4` / `%pi4` print the 4 bytes at the pointer as `1.2.3.4` / `001.002.003.004`,
//!   `%pI6` / `%pi6` the 16 bytes at it as eight colon-separated groups of 4 hex digits / 32
//!   hex digits (unreadable bytes print as zeros, as the kernel's `copy_from_kernel_nofault`
//!   failure does);
//! - any other letter or digit after `%p` is `-EINVAL`.

/// Bytes of text kept: the kernel formats into `MAX_BPRINTF_BUF` (512) bytes with the NUL.
pub const MAX_TEXT: usize = 511;

/// Largest width honoured (`FIELD_WIDTH_MAX` of `lib/vsprintf.c`).
const FIELD_WIDTH_MAX: usize = (1 << 23) - 1;

/// Longest `%s` string read.
pub const MAX_STRING: usize = 256;

/// The formatted text (at most [`MAX_TEXT`] bytes) and the length the whole text has.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Formatted {
    /// The text, cut to [`MAX_TEXT`] bytes.
    pub text: Vec<u8>,
    /// The length of the whole text (the helper's return value).
    pub len: usize,
}

/// The format was refused (`-EINVAL`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Invalid;

/// Output that keeps [`MAX_TEXT`] bytes and counts the rest.
struct Out {
    text: Vec<u8>,
    len: usize,
}

impl Out {
    fn push(&mut self, bytes: &[u8]) {
        let room = MAX_TEXT - self.text.len();
        self.text.extend_from_slice(&bytes[..bytes.len().min(room)]);
        self.len += bytes.len();
    }

    fn pad(&mut self, byte: u8, n: usize) {
        let room = MAX_TEXT - self.text.len();
        self.text.extend(std::iter::repeat_n(byte, n.min(room)));
        self.len += n;
    }

    /// `body` (after `prefix`: a sign or `0x`) in a field of `width`.
    fn field(&mut self, f: &Flags, width: usize, prefix: &[u8], body: &[u8], numeric: bool) {
        let fill = width.saturating_sub(prefix.len() + body.len());
        if f.left {
            self.push(prefix);
            self.push(body);
            self.pad(b' ', fill);
        } else if f.zero && numeric {
            self.push(prefix);
            self.pad(b'0', fill);
            self.push(body);
        } else {
            self.pad(b' ', fill);
            self.push(prefix);
            self.push(body);
        }
    }
}

#[derive(Default)]
struct Flags {
    left: bool,
    zero: bool,
    plus: bool,
    space: bool,
}

/// ASCII control characters other than white space are refused; bytes from 0x80 on pass
/// (UTF-8 text), as Linux 6.18 has it (checked by the kernel-oracle suite).
fn allowed(c: u8) -> bool {
    (0x20..0x7f).contains(&c) || (0x09..=0x0d).contains(&c) || c >= 0x80
}

/// Formats `fmt` (the bytes the program passed, `fmt_size` of them) with `args`; `%s`
/// arguments are read with `read_str(addr)` (at most [`MAX_STRING`] bytes without the NUL,
/// `None` when unreadable), the addresses `%pI4`/`%pI6` print with `read_mem(addr, len)`.
pub fn format(
    fmt: &[u8],
    args: &[u64],
    mut read_str: impl FnMut(u64) -> Option<Vec<u8>>,
    mut read_mem: impl FnMut(u64, usize) -> Option<Vec<u8>>,
) -> Result<Formatted, Invalid> {
    let nul = fmt.iter().position(|&b| b == 0).ok_or(Invalid)?;
    let fmt = &fmt[..nul];
    if !fmt.iter().all(|&c| allowed(c)) {
        return Err(Invalid);
    }
    let mut out = Out {
        text: Vec::new(),
        len: 0,
    };
    let at = |i: usize| fmt.get(i).copied().unwrap_or(0);
    let mut next = 0usize;
    let mut i = 0;
    while i < fmt.len() {
        let c = fmt[i];
        i += 1;
        if c != b'%' {
            out.push(&[c]);
            continue;
        }
        if at(i) == b'%' {
            out.push(b"%");
            i += 1;
            continue;
        }
        let v = *args.get(next).ok_or(Invalid)?;
        next += 1;
        let mut f = Flags::default();
        loop {
            match at(i) {
                b'-' => f.left = true,
                b'0' => f.zero = true,
                b'+' => f.plus = true,
                b' ' => f.space = true,
                _ => break,
            }
            i += 1;
        }
        let mut width = 0usize;
        while at(i).is_ascii_digit() {
            width = (width * 10 + usize::from(at(i) - b'0')).min(FIELD_WIDTH_MAX);
            i += 1;
        }
        match at(i) {
            b'c' => {
                out.field(&f, width, b"", &[v as u8], false);
                i += 1;
                continue;
            }
            b's' => {
                let s = read_str(v).unwrap_or_default();
                out.field(&f, width, b"", &s[..s.len().min(MAX_STRING)], false);
                i += 1;
                continue;
            }
            b'p' => {
                i += 1;
                let (text, used) = pointer(v, at(i), at(i + 1), &mut read_str, &mut read_mem)?;
                i += used;
                match text {
                    Pointer::Digits(d) if width == 0 => out.push(d.as_bytes()),
                    Pointer::Digits(d) | Pointer::Text(d) => {
                        out.field(&f, width, b"", d.as_bytes(), false)
                    }
                    Pointer::Bytes(b) => out.field(&f, width, b"", &b, false),
                }
                continue;
            }
            _ => {}
        }
        let mut longs = 0;
        while longs < 2 && at(i) == b'l' {
            longs += 1;
            i += 1;
        }
        let conv = at(i);
        i += 1;
        let narrow = longs == 0;
        let (neg, body) = match conv {
            b'd' | b'i' => {
                let s = if narrow {
                    i64::from(v as i32)
                } else {
                    v as i64
                };
                (s < 0, s.unsigned_abs().to_string())
            }
            b'u' if narrow => (false, (v as u32).to_string()),
            b'u' => (false, v.to_string()),
            b'x' if narrow => (false, format!("{:x}", v as u32)),
            b'x' => (false, format!("{v:x}")),
            b'X' if narrow => (false, format!("{:X}", v as u32)),
            b'X' => (false, format!("{v:X}")),
            _ => return Err(Invalid),
        };
        let signed = matches!(conv, b'd' | b'i');
        let sign: &[u8] = match (neg, signed && f.plus, signed && f.space) {
            (true, _, _) => b"-",
            (false, true, _) => b"+",
            (false, false, true) => b" ",
            _ => b"",
        };
        out.field(&f, width, sign, body.as_bytes(), true);
    }
    Ok(Formatted {
        text: out.text,
        len: out.len,
    })
}

/// What a `%p` conversion prints.
enum Pointer {
    /// A pointer as hex digits, zero-padded to 16 unless a width is given.
    Digits(String),
    /// Text (a symbol, an address).
    Text(String),
    /// A string read from memory.
    Bytes(Vec<u8>),
}

/// `%p` with the modifier `m` (and the byte after it, `m2`): the text and how many format
/// bytes the modifier used.
fn pointer(
    v: u64,
    m: u8,
    m2: u8,
    read_str: &mut impl FnMut(u64) -> Option<Vec<u8>>,
    read_mem: &mut impl FnMut(u64, usize) -> Option<Vec<u8>>,
) -> Result<(Pointer, usize), Invalid> {
    let plain = m == 0 || m.is_ascii_whitespace() || m.is_ascii_punctuation();
    if plain {
        return Ok((Pointer::Digits(hashed(v)), 0));
    }
    let r = match (m, m2) {
        (b'k' | b'u', b's') => {
            let s = read_str(v).unwrap_or_default();
            (Pointer::Bytes(s[..s.len().min(MAX_STRING)].to_vec()), 2)
        }
        (b'K', _) => (Pointer::Digits(hashed(v)), 1),
        (b'x', _) => (Pointer::Digits(format!("{v:016x}")), 1),
        (b's' | b'S' | b'B', _) => (Pointer::Text(format!("0x{v:x}")), 1),
        (b'i' | b'I', b'4') => {
            let b = read_mem(v, 4).unwrap_or_else(|| vec![0; 4]);
            let parts: Vec<String> = b
                .iter()
                .map(|x| {
                    if m == b'I' {
                        x.to_string()
                    } else {
                        format!("{x:03}")
                    }
                })
                .collect();
            (Pointer::Text(parts.join(".")), 2)
        }
        (b'i' | b'I', b'6') => {
            let b = read_mem(v, 16).unwrap_or_else(|| vec![0; 16]);
            let groups: Vec<String> = b
                .chunks(2)
                .map(|g| format!("{:02x}{:02x}", g[0], g[1]))
                .collect();
            let sep = if m == b'I' { ":" } else { "" };
            (Pointer::Text(groups.join(sep)), 2)
        }
        _ => return Err(Invalid),
    };
    Ok(r)
}

/// A pointer as plain `%p` prints it: NULL and error pointers (the last 4,095 values) as
/// themselves, others hashed to 32 bits (the kernel's `ptr_to_id` on 64-bit), 16 digits.
fn hashed(v: u64) -> String {
    if v == 0 || v >= (-4095i64) as u64 {
        return format!("{v:016x}");
    }
    // A fixed-key mix (splitmix64's finaliser); the kernel uses siphash with a boot key.
    let mut z = v.wrapping_add(0x9e37_79b9_7f4a_7c15);
    z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
    z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
    z ^= z >> 31;
    format!("{:016x}", z >> 32)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn fmt(f: &str, args: &[u64]) -> Result<(String, usize), Invalid> {
        let mut bytes = f.as_bytes().to_vec();
        bytes.push(0);
        format(
            &bytes,
            args,
            |a| (a == 1).then(|| b"str".to_vec()),
            |a, n| (a == 2).then(|| (1..=n as u8).collect()),
        )
        .map(|o| (String::from_utf8_lossy(&o.text).into_owned(), o.len))
    }

    #[test]
    fn widths_flags_and_signs_are_as_vsnprintf() {
        let r = fmt(
            "%5d|%-5d|%05u|%+d|% d|%-05d|",
            &[-3i64 as u64, 4, 5, 6, 7, 8],
        );
        assert_eq!(r.unwrap().0, "   -3|4    |00005|+6| 7|8    |");
        assert_eq!(fmt("%05d", &[-3i64 as u64]).unwrap().0, "-0003");
        assert_eq!(fmt("%+u %8x", &[1, 255]).unwrap().0, "1       ff");
        assert_eq!(fmt("[%4s][%-4c]", &[1, 65]).unwrap().0, "[ str][A   ]");
        let one = format(b"%c\0", &[0xe9], |_| None, |_, _| None).unwrap();
        assert_eq!((one.text, one.len), (vec![0xe9], 1), "one byte, not UTF-8");
    }

    #[test]
    fn pointer_modifiers_print_as_the_kernel() {
        // NULL and error pointers as themselves; %px raw; 16 digits.
        assert_eq!(
            fmt("%p|%px|%pK", &[0, 0xffff_8880_0000_1000, 0]).unwrap().0,
            "0000000000000000|ffff888000001000|0000000000000000"
        );
        assert_eq!(fmt("%p", &[-22i64 as u64]).unwrap().0, "ffffffffffffffea");
        // Others hashed to 32 bits: 8 zeros then 8 digits, stable.
        let (h, len) = fmt("%p", &[0xffff_8880_0000_1000]).unwrap();
        assert_eq!((len, &h[..8]), (16, "00000000"), "{h}");
        assert_eq!(fmt("%p", &[0xffff_8880_0000_1000]).unwrap().0, h);
        assert_ne!(fmt("%p", &[0xffff_8880_0000_2000]).unwrap().0, h);
        // Punctuation and white space after %p leave it plain.
        assert_eq!(fmt("%p.%p %p", &[0, 0, 0]).unwrap().1, 16 * 3 + 2);
        // Symbols: no kernel symbols, so the address.
        assert_eq!(
            fmt("%ps %pS %pB", &[255, 16, 1]).unwrap().0,
            "0xff 0x10 0x1"
        );
        // Strings.
        assert_eq!(fmt("[%pks][%pus]", &[1, 1]).unwrap().0, "[str][str]");
        // Addresses: the bytes at the pointer (the test reader gives 1, 2, 3, ...).
        assert_eq!(
            fmt("%pI4 %pi4", &[2, 2]).unwrap().0,
            "1.2.3.4 001.002.003.004"
        );
        assert_eq!(
            fmt("%pI6", &[2]).unwrap().0,
            "0102:0304:0506:0708:090a:0b0c:0d0e:0f10"
        );
        assert_eq!(
            fmt("%pi6", &[2]).unwrap().0,
            "0102030405060708090a0b0c0d0e0f10"
        );
        // Unreadable: zeros.
        assert_eq!(fmt("%pI4", &[7]).unwrap().0, "0.0.0.0");
        // Any other modifier is refused.
        for f in ["%pa", "%pI5", "%pi", "%pM", "%p5", "%pk", "%pu"] {
            assert_eq!(fmt(f, &[2]), Err(Invalid), "{f}");
        }
    }

    #[test]
    fn the_kernels_refusals() {
        for (f, n) in [
            ("%d %d", 1),
            ("%y", 1),
            ("%.3d", 1),
            ("%lc", 1),
            ("%llld", 1),
            ("%5%", 1),
            ("%#x", 1),
            ("tab\x01", 0),
            ("%", 1),
        ] {
            assert_eq!(fmt(f, &vec![1; n]), Err(Invalid), "{f:?}");
        }
        assert_eq!(format(b"no nul", &[], |_| None, |_, _| None), Err(Invalid));
        for c in [0x01, 0x07, 0x1f, 0x7f] {
            assert_eq!(
                format(&[b'a', c, 0], &[], |_| None, |_, _| None),
                Err(Invalid),
                "{c:#x}"
            );
        }
        for c in [0x80, 0x85, 0xa0, 0xe9, 0xff] {
            assert_eq!(
                format(&[b'a', c, 0], &[], |_| None, |_, _| None)
                    .unwrap()
                    .len,
                2,
                "{c:#x}"
            );
        }
        assert_eq!(fmt("100%% %d", &[1]).unwrap().0, "100% 1");
        assert_eq!(fmt("tab\there\n", &[]).unwrap().0, "tab\there\n");
    }

    #[test]
    fn long_text_is_cut_and_the_whole_length_returned() {
        let (text, len) = fmt("%600d|%s", &[1, 2]).unwrap();
        assert_eq!((text.len(), len), (MAX_TEXT, 601));
        let (_, len) = fmt("%99999999d", &[1]).unwrap();
        assert_eq!(len, FIELD_WIDTH_MAX, "the width is capped");
        assert_eq!(
            fmt("[%s]", &[2]).unwrap().0,
            "[]",
            "unreadable strings print nothing"
        );
    }
}
