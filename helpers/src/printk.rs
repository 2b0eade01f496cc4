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
//! memory a test provided; one that cannot be read prints as nothing. `%p` prints `0x` and the hex value (the kernel hashes plain
//! `%p` pointers: the only place this formatter cannot match the kernel byte for byte).

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
/// `None` when unreadable).
pub fn format(
    fmt: &[u8],
    args: &[u64],
    mut read_str: impl FnMut(u64) -> Option<Vec<u8>>,
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
                out.field(&f, width, b"0x", format!("{v:x}").as_bytes(), true);
                i += 1;
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

#[cfg(test)]
mod tests {
    use super::*;

    fn fmt(f: &str, args: &[u64]) -> Result<(String, usize), Invalid> {
        let mut bytes = f.as_bytes().to_vec();
        bytes.push(0);
        format(&bytes, args, |a| (a == 1).then(|| b"str".to_vec()))
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
        let one = format(b"%c\0", &[0xe9], |_| None).unwrap();
        assert_eq!((one.text, one.len), (vec![0xe9], 1), "one byte, not UTF-8");
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
        assert_eq!(format(b"no nul", &[], |_| None), Err(Invalid));
        for c in [0x01, 0x07, 0x1f, 0x7f] {
            assert_eq!(format(&[b'a', c, 0], &[], |_| None), Err(Invalid), "{c:#x}");
        }
        for c in [0x80, 0x85, 0xa0, 0xe9, 0xff] {
            assert_eq!(
                format(&[b'a', c, 0], &[], |_| None).unwrap().len,
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
