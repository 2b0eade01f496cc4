//! The show on a small hand-built BTF, each expected string worked out from the kernel's
//! `btf_show` code (the kernel-oracle test in conformance/tests/kernel_snprintf_btf.rs
//! compares real vmlinux types with the running kernel).

use super::*;

/// A BTF held as views: `types[id]`, members and enumerators by type id.
#[derive(Debug, Default)]
struct TestBtf {
    types: Vec<TypeView<'static>>,
    members: Vec<(u32, Vec<MemberView<'static>>)>,
    enums: Vec<(u32, Vec<(&'static str, i64)>)>,
}

impl ShowBtf for TestBtf {
    fn type_view(&self, id: u32) -> Option<TypeView<'_>> {
        self.types.get(id as usize).copied()
    }
    fn member(&self, id: u32, index: usize) -> Option<MemberView<'_>> {
        let (_, ms) = self.members.iter().find(|(i, _)| *i == id)?;
        ms.get(index).copied()
    }
    fn enumerator(&self, id: u32, index: usize) -> Option<(&str, i64)> {
        let (_, es) = self.enums.iter().find(|(i, _)| *i == id)?;
        es.get(index).copied()
    }
}

fn int(name: &'static str, size: u32, encoding: u8) -> TypeView<'static> {
    TypeView::Int {
        name,
        size,
        encoding,
        bits: size * 8,
        offset: 0,
    }
}

fn m(name: &'static str, type_id: u32, bit_offset: u32, bitfield_size: u32) -> MemberView<'static> {
    MemberView {
        name,
        type_id,
        bit_offset,
        bitfield_size,
    }
}

const U8: u32 = 1;
const U16: u32 = 2;
const BE16: u32 = 3;
const HDR: u32 = 4;
const CHAR: u32 = 5;
const NAME16: u32 = 6;
const OUTER: u32 = 7;
const COLOR: u32 = 8;
const PTR: u32 = 9;
const LOOP: u32 = 10;
const TD_LOOP: u32 = 11;
const SEC: u32 = 12;
const INT: u32 = 13;

/// 1 u8, 2 u16, 3 typedef __be16, 4 struct hdr { u8 ihl:4, version:4; u8 tos; __be16
/// tot_len; }, 5 char, 6 char[16], 7 struct outer { struct hdr h; char name[16]; enum
/// color c; struct hdr *p; }, 8 enum color { RED, GREEN = 5 }, 9 ptr to hdr, 10 struct
/// loop { struct loop l; } (malformed), 11 typedef cycle (malformed), 12 a DATASEC, 13 int.
fn btf() -> TestBtf {
    TestBtf {
        types: vec![
            TypeView::Void,
            int("u8", 1, 0),
            int("u16", 2, 0),
            TypeView::Typedef {
                name: "__be16",
                target: U16,
            },
            TypeView::Struct {
                name: "hdr",
                size: 4,
                vlen: 4,
                union: false,
            },
            int("char", 1, INT_SIGNED),
            TypeView::Array {
                elem: CHAR,
                nelems: 16,
            },
            TypeView::Struct {
                name: "outer",
                size: 36,
                vlen: 4,
                union: false,
            },
            TypeView::Enum {
                name: "color",
                size: 4,
                signed: false,
                is64: false,
                vlen: 2,
            },
            TypeView::Ptr { target: HDR },
            TypeView::Struct {
                name: "loop",
                size: 4,
                vlen: 1,
                union: false,
            },
            TypeView::Typedef {
                name: "again",
                target: TD_LOOP,
            },
            TypeView::Datasec { name: ".data" },
            int("int", 4, INT_SIGNED),
        ],
        members: vec![
            (
                HDR,
                vec![
                    m("ihl", U8, 0, 4),
                    m("version", U8, 4, 4),
                    m("tos", U8, 8, 0),
                    m("tot_len", BE16, 16, 0),
                ],
            ),
            (
                OUTER,
                vec![
                    m("h", HDR, 0, 0),
                    m("name", NAME16, 32, 0),
                    m("c", COLOR, 160, 0),
                    m("p", PTR, 192, 0),
                ],
            ),
            (LOOP, vec![m("l", LOOP, 0, 0)]),
        ],
        enums: vec![(COLOR, vec![("RED", 0), ("GREEN", 5)])],
    }
}

/// Shows `bytes` (at address 0x1000) as type `id` into a buffer of `size`.
fn show(id: u32, bytes: &[u8], size: u32, flags: u64) -> Shown {
    let mut read = |addr: u64, out: &mut [u8]| {
        let off = addr.checked_sub(0x1000).ok_or(-34)? as usize;
        for (i, b) in out.iter_mut().enumerate() {
            *b = bytes.get(off + i).copied().unwrap_or(0);
        }
        Ok(())
    };
    snprintf_show(&btf(), id, 0x1000, size, flags, &mut read)
}

fn text(s: &Shown) -> String {
    let end = s
        .bytes
        .iter()
        .position(|&b| b == 0)
        .unwrap_or(s.bytes.len());
    String::from_utf8_lossy(&s.bytes[..end]).into_owned()
}

const HDR_BYTES: [u8; 4] = [0x45, 0, 0x00, 0x3c];

#[test]
fn struct_with_bitfields_default_format() {
    let s = show(HDR, &HDR_BYTES, 256, 0);
    let want =
        "(struct hdr){\n .ihl = (u8)0x5,\n .version = (u8)0x4,\n .tot_len = (__be16)15360,\n}\n";
    assert_eq!(text(&s), want);
    assert_eq!(s.ret, want.len() as i64);
    assert_eq!(s.bytes.len(), want.len() + 1, "NUL-terminated");
}

#[test]
fn compact_noname_and_zero_flags() {
    let s = show(HDR, &HDR_BYTES, 256, F_COMPACT | F_NONAME);
    assert_eq!(text(&s), "{0x5,0x4,15360,}");
    let s = show(HDR, &HDR_BYTES, 256, F_COMPACT | F_ZERO);
    assert_eq!(
        text(&s),
        "(struct hdr){.ihl = (u8)0x5,.version = (u8)0x4,.tos = (u8)0,.tot_len = (__be16)15360,}"
    );
}

#[test]
fn truncation_keeps_the_full_length() {
    let full = show(HDR, &HDR_BYTES, 256, F_COMPACT);
    for size in [0u32, 1, 5, 13, 14, 20] {
        let s = show(HDR, &HDR_BYTES, size, F_COMPACT);
        assert_eq!(s.ret, full.ret, "size {size}");
        let n = (size as usize).saturating_sub(1);
        if size == 0 {
            assert!(s.bytes.is_empty());
        } else {
            assert_eq!(s.bytes.len(), n + 1, "size {size}");
            assert_eq!(&s.bytes[..n], &full.bytes[..n]);
            assert_eq!(s.bytes[n], 0);
        }
    }
}

fn outer_bytes(name: &[u8], color: u32, ptr: u64) -> Vec<u8> {
    let mut b = vec![0u8; 36];
    b[4..4 + name.len()].copy_from_slice(name);
    b[20..24].copy_from_slice(&color.to_le_bytes());
    b[24..32].copy_from_slice(&ptr.to_le_bytes()[..8]);
    b.truncate(32);
    b
}

#[test]
fn zero_nested_struct_is_omitted_char_array_stops_at_nul() {
    let b = outer_bytes(b"ab\0z", 0, 0);
    let s = show(OUTER, &b, 512, F_COMPACT);
    // The all-zero `h` is left out; the enum's name shows although its value is 0.
    assert_eq!(
        text(&s),
        "(struct outer){.name = (char[])['a','b',],.c = (enum color)RED,}"
    );
}

#[test]
fn enums_pointers_and_nested_values() {
    let mut b = outer_bytes(b"", 5, 0xffff_8880_1234_5678);
    b[0] = 0x45;
    let s = show(OUTER, &b, 512, F_COMPACT | F_PTR_RAW);
    assert_eq!(
        text(&s),
        "(struct outer){.h = (struct hdr){.ihl = (u8)0x5,.version = (u8)0x4,},\
         .c = (enum color)GREEN,.p = (struct hdr *)0xffff888012345678,}"
    );
    let s = show(OUTER, &outer_bytes(b"", 9, 0x1234), 512, F_COMPACT);
    let hashed = hashed_pointer(0x1234);
    assert_eq!(&hashed[..8], "00000000");
    assert_eq!(
        text(&s),
        format!("(struct outer){{.c = (enum color)9,.p = (struct hdr *)0x{hashed},}}")
    );
    assert_eq!(hashed_pointer(0), "0000000000000000");
    assert_eq!(hashed_pointer(u64::MAX), "ffffffffffffffff");
}

#[test]
fn top_level_values_show_even_when_zero() {
    assert_eq!(text(&show(INT, &[0; 4], 64, 0)), "(int)0\n");
    assert_eq!(
        text(&show(INT, &(-3i32).to_le_bytes(), 64, F_COMPACT)),
        "(int)-3"
    );
    // A typedef at the top is shown as the type it names (the kernel's resolved id).
    assert_eq!(text(&show(BE16, &[1, 0], 64, F_COMPACT)), "(u16)1");
}

#[test]
fn malformed_btf_ends_with_an_error_not_a_hang() {
    assert_eq!(show(LOOP, &[0; 4], 64, 0).ret, -22);
    assert_eq!(show(TD_LOOP, &[0; 4], 64, 0).ret, -22);
    assert_eq!(show(SEC, &[0; 4], 64, 0).ret, -22);
}

#[test]
fn unreadable_object_is_the_copy_error() {
    let mut read = |_: u64, _: &mut [u8]| Err(-34);
    let s = snprintf_show(&btf(), HDR, 0, 64, 0, &mut read);
    assert_eq!(s.ret, -34);
    assert!(s.bytes.is_empty(), "nothing written");
}
