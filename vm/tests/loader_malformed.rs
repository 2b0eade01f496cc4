//! Checks that malformed or unsupported objects — built by mutating the fixtures'
//! bytes — give a clear `LoadError` naming the problem, and never panic.

mod common;

use bpfvm::loader::{LoadError, Object};

fn u16_at(b: &[u8], off: usize) -> u16 {
    u16::from_le_bytes(b[off..off + 2].try_into().unwrap())
}
fn u32_at(b: &[u8], off: usize) -> u32 {
    u32::from_le_bytes(b[off..off + 4].try_into().unwrap())
}
fn u64_at(b: &[u8], off: usize) -> u64 {
    u64::from_le_bytes(b[off..off + 8].try_into().unwrap())
}
fn put_u32(b: &mut [u8], off: usize, v: u32) {
    b[off..off + 4].copy_from_slice(&v.to_le_bytes());
}
fn put_u64(b: &mut [u8], off: usize, v: u64) {
    b[off..off + 8].copy_from_slice(&v.to_le_bytes());
}

/// A section header as found in the file: where its header is, and its fields.
#[derive(Debug, Clone)]
struct Shdr {
    name: String,
    name_off: usize,
    header: usize,
    sh_type: u32,
    offset: usize,
    size: usize,
    link: usize,
}

/// Section headers of an ELF64 little-endian file, read by hand.
fn sections(b: &[u8]) -> Vec<Shdr> {
    let shoff = u64_at(b, 0x28) as usize;
    let shentsize = u16_at(b, 0x3a) as usize;
    let shnum = u16_at(b, 0x3c) as usize;
    let shstrndx = u16_at(b, 0x3e) as usize;
    let strtab = u64_at(b, shoff + shstrndx * shentsize + 24) as usize;
    (0..shnum)
        .map(|i| {
            let h = shoff + i * shentsize;
            let name_off = strtab + u32_at(b, h) as usize;
            let end = b[name_off..].iter().position(|&c| c == 0).unwrap();
            Shdr {
                name: String::from_utf8_lossy(&b[name_off..name_off + end]).into_owned(),
                name_off,
                header: h,
                sh_type: u32_at(b, h + 4),
                offset: u64_at(b, h + 24) as usize,
                size: u64_at(b, h + 32) as usize,
                link: u32_at(b, h + 40) as usize,
            }
        })
        .collect()
}

fn section(b: &[u8], name: &str) -> Shdr {
    sections(b)
        .into_iter()
        .find(|s| s.name == name)
        .unwrap_or_else(|| panic!("no section {name}"))
}

/// Index of the symbol called `name` in `.symtab`.
fn symbol_index(b: &[u8], name: &str) -> usize {
    let all = sections(b);
    let symtab = all.iter().find(|s| s.sh_type == 2).unwrap();
    let strtab = &all[symtab.link];
    (0..symtab.size / 24)
        .find(|i| {
            let st_name = u32_at(b, symtab.offset + i * 24) as usize;
            let start = strtab.offset + st_name;
            let end = start + b[start..].iter().position(|&c| c == 0).unwrap();
            &b[start..end] == name.as_bytes()
        })
        .unwrap()
}

/// Parse requiring every program and map to load (libbpf's all or nothing), so a
/// problem of one program shows as an error here.
fn parse(b: &[u8]) -> Result<Object, LoadError> {
    Object::parse(b).and_then(Object::require_all)
}

#[track_caller]
fn expect_err(b: &[u8], check: impl Fn(&LoadError) -> bool) -> LoadError {
    let err = parse(b).expect_err("malformed input must not load");
    assert!(check(&err), "unexpected error: {err:?}");
    assert!(!err.to_string().is_empty());
    err
}

#[test]
fn empty_and_garbage_inputs() {
    expect_err(&[], |e| matches!(e, LoadError::NotElf { .. }));
    expect_err(
        b"this is not an ELF file at all, just text....................",
        |e| matches!(e, LoadError::NotElf { .. }),
    );
    expect_err(&[0x7f, b'E', b'L', b'F'], |e| {
        matches!(e, LoadError::NotElf { .. } | LoadError::Malformed { .. })
    });
}

#[test]
fn truncated_elf() {
    let b = common::fixture_bytes("percpu_counter");
    expect_err(&b[..40], |e| {
        matches!(e, LoadError::NotElf { .. } | LoadError::Malformed { .. })
    });
    expect_err(&b[..b.len() / 2], |e| {
        matches!(e, LoadError::Malformed { .. })
    });
    // Every prefix fails cleanly: the section headers sit at the end of the file.
    for len in 0..b.len() {
        assert!(parse(&b[..len]).is_err(), "prefix of {len} bytes loaded");
    }
}

#[test]
fn wrong_machine_class_and_byte_order() {
    let b = common::fixture_bytes("percpu_counter");
    let mut x86 = b.clone();
    x86[18..20].copy_from_slice(&62u16.to_le_bytes()); // EM_X86_64
    let e = expect_err(&x86, |e| {
        matches!(e, LoadError::WrongMachine { machine: 62 })
    });
    assert!(e.to_string().contains("247"), "{e}");
    let mut class32 = b.clone();
    class32[4] = 1; // ELFCLASS32
    expect_err(&class32, |e| matches!(e, LoadError::WrongClass));
    let mut big = b.clone();
    big[5] = 2; // ELFDATA2MSB
    expect_err(&big, |e| matches!(e, LoadError::BigEndian));
}

#[test]
fn section_offsets_out_of_range() {
    let b = common::fixture_bytes("percpu_counter");
    let mut shoff = b.clone();
    put_u64(&mut shoff, 0x28, u64::MAX / 2);
    expect_err(&shoff, |e| matches!(e, LoadError::Malformed { .. }));
    let mut code = b.clone();
    let xdp = section(&b, "xdp");
    put_u64(&mut code, xdp.header + 24, b.len() as u64 + 100);
    let e = expect_err(&code, |e| matches!(e, LoadError::Malformed { .. }));
    assert!(e.to_string().contains("xdp"), "{e}");
    let mut size = b.clone();
    put_u64(&mut size, xdp.header + 32, u64::MAX - 8);
    expect_err(&size, |e| matches!(e, LoadError::Malformed { .. }));
}

#[test]
fn unknown_map_type() {
    let b = common::fixture_bytes("legacy_maps");
    let maps = section(&b, "maps");
    let mut m = b.clone();
    put_u32(&mut m, maps.offset, 999); // legacy_hash.type
    let e = expect_err(
        &m,
        |e| matches!(e, LoadError::UnknownMapType { map, map_type: 999 } if map == "legacy_hash"),
    );
    assert_eq!(e.to_string(), "map legacy_hash has unknown map type 999");
    let mut zero = b.clone();
    put_u32(&mut zero, maps.offset + 20, 0); // legacy_percpu.type = UNSPEC
    expect_err(&zero, |e| {
        matches!(e, LoadError::UnknownMapType { map_type: 0, .. })
    });
}

#[test]
fn missing_or_broken_btf() {
    let b = common::fixture_bytes("percpu_counter");
    let btf = section(&b, ".BTF");
    let mut renamed = b.clone();
    renamed[btf.name_off + 3] = b'X'; // ".BTF" -> ".BTX"
    let e = expect_err(&renamed, |e| matches!(e, LoadError::MissingBtf));
    assert!(e.to_string().contains(".maps"));
    let mut magic = b.clone();
    magic[btf.offset] = 0;
    expect_err(&magic, |e| matches!(e, LoadError::BadBtf { .. }));
    let mut strings = b.clone();
    put_u32(&mut strings, btf.offset + 20, u32::MAX); // str_len
    expect_err(&strings, |e| matches!(e, LoadError::BadBtf { .. }));
    let mut types = b.clone();
    put_u32(&mut types, btf.offset + 12, 13); // type_len not a whole record
    expect_err(&types, |e| matches!(e, LoadError::BadBtf { .. }));
}

#[test]
fn bad_relocations() {
    let b = common::fixture_bytes("percpu_counter");
    let rel = section(&b, ".relxdp");
    let first = rel.offset; // Elf64_Rel { r_offset: u64, r_info: u64 }
    let r_offset = u64_at(&b, first);
    let r_info = u64_at(&b, first + 8);
    let at = |e: &LoadError, insn: usize| matches!(e, LoadError::BadRelocation { section, insn: i, .. } if section == "xdp" && *i == insn);

    let mut misaligned = b.clone();
    put_u64(&mut misaligned, first, r_offset + 3);
    expect_err(&misaligned, |e| at(e, r_offset as usize / 8));

    let mut not_ld = b.clone();
    put_u64(&mut not_ld, first, r_offset + 8); // the second half of the ld_imm64
    let e = expect_err(&not_ld, |e| at(e, r_offset as usize / 8 + 1));
    assert!(e.to_string().contains("second half"), "{e}");

    let mut on_alu = b.clone();
    put_u64(&mut on_alu, first, 0); // instruction 0 is `w1 = 0`
    let e = expect_err(&on_alu, |e| at(e, 0));
    assert!(e.to_string().contains("neither ld_imm64 nor call"), "{e}");

    let mut past_end = b.clone();
    put_u64(&mut past_end, first, 1 << 20);
    expect_err(&past_end, |e| at(e, (1 << 20) / 8));

    let mut bad_type = b.clone();
    put_u64(&mut bad_type, first + 8, (r_info & !0xffff_ffff) | 2); // R_BPF_64_ABS64
    let e = expect_err(&bad_type, |e| at(e, r_offset as usize / 8));
    assert!(e.to_string().contains("relocation type 2"), "{e}");

    let mut bad_symbol = b.clone();
    put_u64(&mut bad_symbol, first + 8, (0xffff << 32) | 1);
    expect_err(&bad_symbol, |e| matches!(e, LoadError::Malformed { .. }));

    let license = symbol_index(&b, "LICENSE") as u64;
    let mut not_a_map = b.clone();
    put_u64(&mut not_a_map, first + 8, (license << 32) | 1);
    let e = expect_err(&not_a_map, |e| at(e, r_offset as usize / 8));
    assert!(e.to_string().contains("license"), "{e}");

    let mut info = b.clone();
    put_u32(&mut info, rel.header + 44, 999); // sh_info: relocated section
    expect_err(&info, |e| matches!(e, LoadError::Malformed { .. }));
}

#[test]
fn unsupported_features_name_section_and_instruction() {
    // A call to an extern __ksym function is a kfunc call (src_reg 2, imm its index in
    // the program's kfuncs), whatever src_reg clang gave it, as libbpf decides by the
    // relocation.
    let mut helper_shaped = common::fixture_bytes("kfunc");
    let tc = section(&helper_shaped, "tc");
    helper_shaped[tc.offset + 1] = 0;
    for bytes in [common::fixture_bytes("kfunc"), helper_shaped] {
        let obj = Object::parse(&bytes).unwrap();
        let p = obj.program("uses_kfunc").unwrap();
        let names: Vec<&str> = p.kfuncs.iter().map(|k| &*k.name).collect();
        assert_eq!(names, ["bpf_rcu_read_lock", "bpf_rcu_read_unlock"]);
        assert_eq!(p.insns[0], 0x0000_0000_0000_2085, "call kfunc #0");
        assert_eq!(p.insns[1], 0x0000_0001_0000_2085, "call kfunc #1");
    }
}

#[test]
fn random_byte_flips_never_panic() {
    let names = [
        "percpu_counter",
        "globals",
        "subprog",
        "legacy_maps",
        "signed_v4",
    ];
    let mut state = 0x9e37_79b9_7f4a_7c15u64;
    let mut next = move || {
        state ^= state << 13;
        state ^= state >> 7;
        state ^= state << 17;
        state
    };
    let mut errors = 0;
    for name in names {
        let b = common::fixture_bytes(name);
        for _ in 0..400 {
            let mut m = b.clone();
            for _ in 0..1 + next() % 4 {
                let i = (next() % m.len() as u64) as usize;
                m[i] = next() as u8;
            }
            if let Err(e) = parse(&m) {
                assert!(!e.to_string().is_empty());
                errors += 1;
            }
        }
    }
    assert!(errors > 0, "some flips must be caught");
}

#[test]
fn flips_inside_each_parsed_section_never_panic() {
    let mut state = 0x2545_f491_4f6c_dd1du64;
    let mut next = move || {
        state ^= state << 13;
        state ^= state >> 7;
        state ^= state << 17;
        state
    };
    for (name, targets) in [
        (
            "percpu_counter",
            &[
                ".BTF", ".BTF.ext", ".symtab", ".strtab", ".relxdp", ".maps", "xdp",
            ][..],
        ),
        (
            "subprog",
            &[".text", ".rel.text", "socket", ".relsocket", ".BTF"][..],
        ),
        (
            "globals",
            &[".rodata", ".data", ".relsocket", ".BTF", ".symtab"][..],
        ),
        ("legacy_maps", &["maps", ".symtab", ".relsocket"][..]),
    ] {
        let b = common::fixture_bytes(name);
        for target in targets {
            let s = section(&b, target);
            for _ in 0..300 {
                let mut m = b.clone();
                for _ in 0..1 + next() % 3 {
                    let i = s.offset + (next() % s.size.max(1) as u64) as usize;
                    m[i] = next() as u8;
                }
                if let Err(e) = parse(&m) {
                    assert!(!e.to_string().is_empty(), "{name} {target}");
                }
            }
        }
    }
}

#[test]
fn bad_btf_map_definitions() {
    let e = expect_err(
        &common::fixture_bytes("unknown_map_type"),
        |e| matches!(e, LoadError::UnknownMapType { map, map_type: 999 } if map == "mystery"),
    );
    assert_eq!(e.to_string(), "map mystery has unknown map type 999");
    let e = expect_err(
        &common::fixture_bytes("untyped_map"),
        |e| matches!(e, LoadError::BadMapDefinition { map, .. } if map == "untyped"),
    );
    assert_eq!(
        e.to_string(),
        "bad definition of map untyped: missing __uint(type, ...)"
    );
    let e = expect_err(
        &common::fixture_bytes("size_mismatch"),
        |e| matches!(e, LoadError::BadMapDefinition { map, .. } if map == "mismatched"),
    );
    assert_eq!(
        e.to_string(),
        "bad definition of map mismatched: key_size 8 does not match sizeof(key) 4"
    );
}
