//! Checks that hostile objects — strings reused by thousands of names, line info into one
//! huge string, exponentially fanning type DAGs, self-containing structs, huge declared
//! sizes, thousands of programs sharing one large function, thousands of sections — load
//! (or fail with a clear error) with memory proportional to the file, measured by a
//! per-thread counting allocator, and decode to values of bounded size.
//!
//! Time is not asserted (no wall-clock checks); the inputs are sized so that the
//! quadratic or exponential behaviour these cases once had would not finish (hours or
//! terabytes), while the bounded loader takes well under a second each in a debug build.

mod common;

use bpfvm::loader::limits::{
    DECODE_BASE_UNITS, DECODE_UNITS_PER_BYTE, MAX_NAME_LEN, MAX_OBJECT_FILE_BYTES,
    MAX_OBJECT_INSNS, MAX_PROGRAM_INSNS,
};
use bpfvm::loader::{BtfValue, LoadError, Object};
use common::alloc_meter::{peak_of, Counting};
use common::elf_writer::{self as w, btf_ext_lines, kind, Btf, Elf, LineRecord};

#[global_allocator]
static ALLOC: Counting = Counting;

/// Parse `bytes`, returning the result and the peak bytes allocated by parsing.
fn parse_measured(bytes: &[u8]) -> (Result<Object, LoadError>, usize) {
    peak_of(|| Object::parse(bytes))
}

#[track_caller]
fn assert_proportional(peak: usize, input: usize, per_byte: usize) {
    let bound = per_byte * input + (1 << 20);
    assert!(
        peak <= bound,
        "parsing {input} bytes allocated {peak} bytes at peak, over {per_byte}x + 1 MiB = {bound}"
    );
}

// ---- building blocks ----

/// Decoded nodes in a value (each struct member, array element and leaf counts one).
fn nodes(v: &BtfValue) -> usize {
    1 + match v {
        BtfValue::Struct(members) => members.iter().map(|(_, m)| nodes(m)).sum(),
        BtfValue::Array(items) => items.iter().map(nodes).sum(),
        _ => 0,
    }
}

fn truncated_somewhere(v: &BtfValue) -> bool {
    match v {
        BtfValue::Truncated => true,
        BtfValue::Struct(members) => members.iter().any(|(_, m)| truncated_somewhere(m)),
        BtfValue::Array(items) => items.iter().any(truncated_somewhere),
        _ => false,
    }
}

/// An object with one BTF map `m` (ARRAY, 1 entry, `int` key) whose value type is made
/// by `value_type`, one trivial program, and `.BTF`.
fn object_with_map_value(value_type: impl FnOnce(&mut Btf, u32) -> u32) -> Vec<u8> {
    object_with_array_map(1, value_type)
}

/// [`object_with_map_value`] with `entries` entries.
fn object_with_array_map(entries: u32, value_type: impl FnOnce(&mut Btf, u32) -> u32) -> Vec<u8> {
    let mut btf = Btf::new();
    let int = btf.int("int", 4, true);
    let value = value_type(&mut btf, int);
    let var = btf.map_var(int, "m", 2, entries, int, value);
    btf.datasec(".maps", 32, &[(var, 0, 32)]);
    let mut elf = Elf::new();
    let prog = elf.code("xdp", &[w::MOV_R0_0, w::EXIT]);
    elf.func("prog", prog, 0, 2);
    let maps = elf.data(".maps", vec![0; 32]);
    elf.object("m", maps, 0, 32);
    elf.progbits(".BTF", btf.build());
    elf.progbits("license", b"GPL\0".to_vec());
    elf.build()
}

// ---- BTF ----

#[test]
fn member_names_sharing_one_long_string_are_not_copied() {
    // One 64 KiB name; 60,000 members, half naming it whole and half naming each a
    // different suffix of it. Copying names would take 60,000 x ~48 KiB = 2.9 GB.
    let long = "n".repeat(64 << 10);
    let mut btf = Btf::new();
    let int = btf.int("int", 4, true);
    let base = btf.name(&long);
    let members: Vec<(u32, u32, u32)> = (0..60_000u32)
        .map(|i| (if i % 2 == 0 { base } else { base + i / 2 }, int, 0))
        .collect();
    let s = btf.composite(kind::STRUCT, base, 4, &members);
    let mut elf = Elf::new();
    elf.progbits(".BTF", btf.build());
    let bytes = elf.build();

    let (obj, peak) = parse_measured(&bytes);
    let obj = obj.expect("valid BTF loads");
    assert_proportional(peak, bytes.len(), 8);
    let btf = obj.btf().unwrap();
    let Some(bpfvm::loader::BtfType::Struct { members, .. }) = btf.get(s) else {
        panic!("type {s} is not the struct");
    };
    assert_eq!(members.len(), 60_000);
    assert_eq!(members[0].name.len(), 64 << 10);
    assert_eq!(members[3].name.len(), (64 << 10) - 1);

    // Decoding it is bounded too: each member name is charged, so the value stops early.
    let (v, decode_peak) = peak_of(|| btf.decode(s, &7i32.to_le_bytes()));
    assert!(truncated_somewhere(&v), "the budget must run out");
    let text = v.to_string();
    let budget = DECODE_BASE_UNITS + DECODE_UNITS_PER_BYTE * 4;
    assert!(
        text.len() <= budget + (64 << 10) + 16,
        "{} bytes of text",
        text.len()
    );
    assert!(
        decode_peak < 1 << 20,
        "decoding allocated {decode_peak} bytes"
    );
}

#[test]
fn a_union_dag_decodes_to_a_bounded_value() {
    // u0 = union { int a; int b; }, u(k) = union { u(k-1) m0..m15 }: valid BTF (the
    // kernel accepts it), 8 KB, but decoding u20 naively is 16^19 x 2 nodes.
    let bytes = object_with_map_value(|btf, int| {
        let (a, b) = (btf.name("a"), btf.name("b"));
        let mut t = btf.composite(kind::UNION, 0, 4, &[(a, int, 0), (b, int, 0)]);
        let names: Vec<u32> = (0..16).map(|i| btf.name(&format!("m{i}"))).collect();
        for _ in 0..20 {
            let members: Vec<(u32, u32, u32)> = names.iter().map(|&n| (n, t, 0)).collect();
            t = btf.composite(kind::UNION, 0, 4, &members);
        }
        t
    });
    assert!(bytes.len() < 16 << 10, "{} bytes", bytes.len());
    let obj = Object::parse(&bytes).expect("the object loads");
    let map = obj.map("m").unwrap();
    assert_eq!(map.value_size, 4);

    let (v, peak) = peak_of(|| obj.decode_value(map, &1u32.to_le_bytes()).unwrap());
    let budget = DECODE_BASE_UNITS + DECODE_UNITS_PER_BYTE * 4;
    assert!(nodes(&v) <= budget, "{} nodes", nodes(&v));
    assert!(truncated_somewhere(&v));
    assert!(v.to_string().len() < 16 * budget);
    assert!(peak < 4 << 20, "decoding allocated {peak} bytes");

    // Through a live map and dump_map as the CLI and tests list maps.
    let maps = obj.create_maps(2).unwrap();
    let entries = obj.dump_map(&maps, "m").unwrap();
    assert_eq!(entries.len(), 1);
    assert!(nodes(&entries[0].values[0]) <= budget);
}

#[test]
fn listing_many_entries_of_a_union_dag_is_bounded_by_the_map_bytes() {
    // Fuzz finding (btf target, 2026-12-04): the union DAG as the value of an ARRAY of
    // 4,609 entries took 12 s to dump under AddressSanitizer, as each 4-byte value got the
    // whole base budget (4,096 + 64 nodes): a million entries (4 MB of map) would list
    // 4 billion nodes. One listing now shares one budget.
    let entries = 4_096u32;
    let bytes = object_with_array_map(entries, |btf, int| {
        let (a, b) = (btf.name("a"), btf.name("b"));
        let mut t = btf.composite(kind::UNION, 0, 4, &[(a, int, 0), (b, int, 0)]);
        let names: Vec<u32> = (0..16).map(|i| btf.name(&format!("m{i}"))).collect();
        for _ in 0..20 {
            let members: Vec<(u32, u32, u32)> = names.iter().map(|&n| (n, t, 0)).collect();
            t = btf.composite(kind::UNION, 0, 4, &members);
        }
        t
    });
    let obj = Object::parse(&bytes).expect("the object loads");
    let maps = obj.create_maps(2).unwrap();
    let mut listed = 0usize;
    let mut total = 0usize;
    let mut text = 0usize;
    obj.for_each_map_entry(&maps, "m", |e| {
        listed += 1;
        total += nodes(&e.key) + e.values.iter().map(nodes).sum::<usize>();
        text += e.values.iter().map(|v| v.to_string().len()).sum::<usize>();
    })
    .unwrap();
    assert_eq!(listed, entries as usize);
    let map_bytes = entries as usize * (4 + 4);
    let budget = DECODE_BASE_UNITS + DECODE_UNITS_PER_BYTE * map_bytes;
    // A `Truncated` marker counts as a node without spending: at most one per level.
    assert!(
        total <= budget + 32 * entries as usize,
        "{total} nodes listed, budget {budget}"
    );
    assert!(text <= 16 * budget, "{text} bytes of text");
    // The first value still decodes as far as one value alone would.
    let first = obj.dump_map(&maps, "m").unwrap().swap_remove(0);
    let alone = obj.decode_value(obj.map("m").unwrap(), &[0; 4]).unwrap();
    assert_eq!(first.values[0], alone);

    // Plain values are never cut, however many: a 4,096-entry ARRAY of `int`.
    let obj = Object::parse(&object_with_array_map(entries, |_, int| int)).unwrap();
    let maps = obj.create_maps(2).unwrap();
    let listing = obj.dump_map(&maps, "m").unwrap();
    assert_eq!(listing.len(), entries as usize);
    assert!(listing
        .iter()
        .all(|e| matches!(e.values[0], BtfValue::Signed(0))));
}

#[test]
fn a_struct_containing_itself_as_a_map_value_is_bounded() {
    // struct s { struct s a; struct s b; } (8 bytes): the kernel refuses such BTF
    // ("Loop detected"), but libbpf only needs its size; decoding must stop.
    let bytes = object_with_map_value(|btf, _int| {
        let (name, a, b) = (btf.name("s"), btf.name("a"), btf.name("b"));
        let next = btf_next_id(btf);
        btf.composite(kind::STRUCT, name, 8, &[(a, next, 0), (b, next, 0)])
    });
    let obj = Object::parse(&bytes).expect("the object loads");
    let map = obj.map("m").unwrap();
    assert_eq!(map.value_size, 8);
    let v = obj.decode_value(map, &[1; 8]).unwrap();
    let budget = DECODE_BASE_UNITS + DECODE_UNITS_PER_BYTE * 8;
    assert!(nodes(&v) <= budget, "{} nodes", nodes(&v));
    assert!(obj.btf().unwrap().type_name(map.value_type_id.unwrap()) == "struct s");
    let maps = obj.create_maps(1).unwrap();
    assert_eq!(obj.dump_map(&maps, "m").unwrap().len(), 1);
}

/// The id the next type added to `btf` will get.
fn btf_next_id(btf: &Btf) -> u32 {
    let mut probe = btf.clone();
    probe.raw(0, kind::PTR << 24, 0, &[])
}

#[test]
fn line_info_into_one_huge_string_is_shared() {
    // A 1 MiB line of "source" and 60,000 line records pointing at different suffixes
    // of it: copying each would take 60,000 x ~0.5 MiB = 30 GB.
    let text = "x".repeat(1 << 20);
    let mut btf = Btf::new();
    let file = btf.name("hostile.c");
    let line = btf.name(&text);
    let sec = btf.name("xdp");
    let n = 60_000u32;
    let records: Vec<LineRecord> = (0..n)
        .map(|i| LineRecord {
            insn_off: i * 8,
            file,
            line_text: line + i,
            line: i + 1,
            column: 1,
        })
        .collect();
    let mut insns = vec![w::MOV_R0_0; n as usize - 1];
    insns.push(w::EXIT);
    let mut elf = Elf::new();
    let code = elf.code("xdp", &insns);
    elf.func("prog", code, 0, u64::from(n));
    elf.progbits(".BTF", btf.build());
    elf.progbits(".BTF.ext", btf_ext_lines(&[(sec, records)]));
    let bytes = elf.build();

    let (obj, peak) = parse_measured(&bytes);
    let obj = obj.expect("the object loads");
    assert_proportional(peak, bytes.len(), 8);
    let prog = obj.program("prog").unwrap();
    assert_eq!(prog.lines.len(), n as usize);
    let last = prog.source_line(n as usize - 1).unwrap();
    assert_eq!(last.source.len(), (1 << 20) - (n as usize - 1));
    assert_eq!(last.file, "hostile.c");
    assert_eq!(last.line, n);
}

#[test]
fn line_info_out_of_order_or_with_long_section_names_is_refused() {
    let mut btf = Btf::new();
    let file = btf.name("a.c");
    let sec = btf.name("xdp");
    let long_sec = btf.name(&"s".repeat(MAX_NAME_LEN + 1));
    let rec = |insn: u32| LineRecord {
        insn_off: insn * 8,
        file,
        line_text: file,
        line: 1,
        column: 1,
    };
    let object = |ext: Vec<u8>| {
        let mut elf = Elf::new();
        let code = elf.code("xdp", &[w::MOV_R0_0, w::MOV_R0_0, w::EXIT]);
        elf.func("prog", code, 0, 3);
        elf.progbits(".BTF", btf.build());
        elf.progbits(".BTF.ext", ext);
        elf.build()
    };
    let e = Object::parse(&object(btf_ext_lines(&[(sec, vec![rec(1), rec(1)])])))
        .and_then(Object::require_all)
        .unwrap_err();
    assert!(
        matches!(&e, LoadError::BadBtf { section, .. } if section == ".BTF.ext"),
        "{e}"
    );
    assert!(e.to_string().contains("increasing"), "{e}");
    let e = Object::parse(&object(btf_ext_lines(&[(sec, vec![rec(2), rec(0)])]))).unwrap_err();
    assert!(e.to_string().contains("section xdp"), "{e}");
    let e = Object::parse(&object(btf_ext_lines(&[(long_sec, vec![rec(0)])]))).unwrap_err();
    assert!(e.to_string().contains("limit is 511"), "{e}");
    // In order, it loads.
    let ok = Object::parse(&object(btf_ext_lines(&[(sec, vec![rec(0), rec(2)])]))).unwrap();
    assert_eq!(ok.program("prog").unwrap().lines.len(), 2);
}

#[test]
fn var_and_datasec_names_are_bounded_as_the_kernel_bounds_them() {
    let long = "v".repeat(MAX_NAME_LEN + 1);
    let mut btf = Btf::new();
    let int = btf.int("int", 4, true);
    btf.var(&long, int);
    let mut elf = Elf::new();
    elf.progbits(".BTF", btf.build());
    let e = Object::parse(&elf.build())
        .and_then(Object::require_all)
        .unwrap_err();
    assert!(matches!(e, LoadError::BadBtf { .. }), "{e}");
    assert!(e.to_string().contains("VAR name"), "{e}");
    assert!(e.to_string().contains("511"), "{e}");

    let mut btf = Btf::new();
    btf.datasec(&format!(".data.{long}"), 0, &[]);
    let mut elf = Elf::new();
    elf.progbits(".BTF", btf.build());
    let e = Object::parse(&elf.build())
        .and_then(Object::require_all)
        .unwrap_err();
    assert!(e.to_string().contains("DATASEC name"), "{e}");
}

#[test]
fn thousands_of_data_sections_and_datasecs_load_in_one_pass() {
    // 30,000 `.data.vN` sections, each with one variable and its DATASEC. Matching
    // every section against every DATASEC and every variable against every symbol
    // (as a scan would) is ~2 x 10^9 string comparisons; the indexed loader does one
    // lookup each.
    let n = 30_000u32;
    let mut btf = Btf::new();
    let int = btf.int("int", 4, true);
    let mut elf = Elf::new();
    for i in 0..n {
        let name = format!("v{i}");
        let section = format!(".data.{name}");
        let var = btf.var(&name, int);
        btf.datasec(&section, 0, &[(var, 0, 4)]);
        let s = elf.data(&section, i.to_le_bytes().to_vec());
        elf.object(&name, s, 0, 4);
    }
    elf.progbits(".BTF", btf.build());
    let bytes = elf.build();
    let (obj, peak) = parse_measured(&bytes);
    let obj = obj.expect("the object loads");
    assert_proportional(peak, bytes.len(), 16);
    assert_eq!(obj.maps().len(), n as usize);
    let last = obj.map(&format!(".data.v{}", n - 1)).unwrap();
    let v = obj
        .decode_value(last, last.initial_data.as_deref().unwrap())
        .unwrap();
    assert_eq!(v.to_string(), format!("{{ v{}: {} }}", n - 1, n - 1));
    // Every map found by its alias (an index lookup, not a scan of 30,000 maps each).
    for i in (0..n).step_by(7) {
        let m = obj.map(&format!(".data.v{i}")).unwrap();
        assert_eq!(m.initial_data.as_deref(), Some(&i.to_le_bytes()[..]));
    }
}

// ---- objects ----

/// `.text` holding one function of `len` instructions (`r0 = 0` ... `exit`) and a
/// section `xdp` holding `programs` programs of 3 instructions, each calling it.
fn many_programs_calling_one_function(programs: usize, len: usize) -> Vec<u8> {
    let mut text = vec![w::MOV_R0_0; len - 1];
    text.push(w::EXIT);
    let mut elf = Elf::new();
    let t = elf.code(".text", &text);
    let f = elf.func("big", t, 0, len as u64);
    let mut code = Vec::with_capacity(programs * 3);
    for _ in 0..programs {
        code.extend([w::call_local(-1), w::MOV_R0_0, w::EXIT]);
    }
    let x = elf.code("xdp", &code);
    for p in 0..programs {
        elf.func(&format!("p{p}"), x, (p * 3) as u64, 3);
        elf.rel(x, (p * 3 * 8) as u64, f, w::R_BPF_64_32);
    }
    elf.build()
}

#[test]
fn programs_sharing_one_large_function_stop_at_the_object_limit() {
    // 2,000 programs each calling one function of ~1M instructions: each program would
    // carry its own 8 MB copy (16 GB). Linking stops at MAX_OBJECT_INSNS with E2BIG.
    let len = MAX_PROGRAM_INSNS - 3;
    let bytes = many_programs_calling_one_function(2_000, len);
    let (r, peak) = parse_measured(&bytes);
    // Loading is per program: the first four load, every later one is refused.
    let obj = r.expect("the object parses");
    assert_eq!(obj.programs().len(), 4);
    assert_eq!(obj.refused_programs().len(), 2_000 - 4);
    let e = obj.require_all().expect_err("too much to link");
    assert!(
        matches!(&e, LoadError::ObjectTooLarge { limit, .. } if *limit == MAX_OBJECT_INSNS),
        "{e}"
    );
    assert_eq!(e.errno(), 7, "E2BIG");
    assert!(
        e.to_string().contains("program p4"),
        "the fifth program crosses it: {e}"
    );
    // At most the limit's worth of instructions (8 bytes each) plus the input.
    assert!(
        peak <= 2 * MAX_OBJECT_INSNS * 8 + 4 * bytes.len(),
        "peak {peak} bytes"
    );

    // Fewer programs load, each with its copy.
    let ok = Object::parse(&many_programs_calling_one_function(3, len)).unwrap();
    assert_eq!(ok.programs().len(), 3);
    assert!(ok.programs().iter().all(|p| p.insns.len() == len + 3));
}

#[test]
fn a_program_longer_than_the_kernel_limit_after_linking_is_e2big() {
    let bytes = many_programs_calling_one_function(1, MAX_PROGRAM_INSNS);
    let e = Object::parse(&bytes)
        .and_then(Object::require_all)
        .unwrap_err();
    match &e {
        LoadError::ProgramTooLarge {
            program,
            section,
            insns,
            limit,
        } => {
            assert_eq!((program.as_str(), section.as_str()), ("p0", "xdp"));
            assert_eq!(*insns, MAX_PROGRAM_INSNS + 3);
            assert_eq!(*limit, MAX_PROGRAM_INSNS);
        }
        other => panic!("{other}"),
    }
    assert_eq!(e.errno(), 7);
    // A section that is itself longer than the limit, as one program.
    let mut elf = Elf::new();
    let mut code = vec![w::MOV_R0_0; MAX_PROGRAM_INSNS];
    code.push(w::EXIT);
    elf.code("xdp", &code);
    let e = Object::parse(&elf.build())
        .and_then(Object::require_all)
        .unwrap_err();
    assert!(matches!(e, LoadError::ProgramTooLarge { .. }), "{e}");
}

#[test]
fn huge_declared_sizes_are_described_not_allocated() {
    // A 2 GiB .bss in a file of a few hundred bytes.
    let mut elf = Elf::new();
    elf.nobits(".bss", 2 << 30);
    let bytes = elf.build();
    assert!(bytes.len() < 1024);
    let (obj, peak) = parse_measured(&bytes);
    let obj = obj.unwrap();
    assert_eq!(obj.map(".bss").unwrap().value_size, 2 << 30);
    assert!(peak < 64 << 10, "parsing allocated {peak} bytes");

    // A .bss past what a map value can be is refused, naming it.
    let mut elf = Elf::new();
    elf.nobits(".bss", 5 << 30);
    let e = Object::parse(&elf.build())
        .and_then(Object::require_all)
        .unwrap_err();
    assert!(e.to_string().contains(".bss"), "{e}");

    // Legacy ARRAY with INT_MAX-byte values and 536M entries.
    let mut def = Vec::new();
    for v in [2u32, 4, i32::MAX as u32, 536_870_912, 0] {
        def.extend_from_slice(&v.to_le_bytes());
    }
    let mut elf = Elf::new();
    let maps = elf.data("maps", def);
    elf.object("big", maps, 0, 20);
    let (obj, peak) = parse_measured(&elf.build());
    let big = obj.unwrap().map("big").unwrap().clone();
    assert_eq!(
        (big.value_size, big.max_entries),
        (i32::MAX as u32, 536_870_912)
    );
    assert!(peak < 64 << 10, "parsing allocated {peak} bytes");

    // BTF ARRAY map whose value is char[1 GiB]: described, and decoding a short buffer
    // of it, or a long one, stays bounded.
    let bytes = object_with_map_value(|btf, _| {
        let ch = btf.int("char", 1, true);
        btf.array(ch, ch, 1 << 30)
    });
    let (obj, peak) = parse_measured(&bytes);
    let obj = obj.unwrap();
    assert!(peak < 256 << 10, "parsing allocated {peak} bytes");
    let m = obj.map("m").unwrap();
    assert_eq!(m.value_size, 1 << 30);
    let v = obj.decode_value(m, &[b'a'; 16]).unwrap();
    assert!(
        matches!(v, BtfValue::Bytes(ref b) if b.len() == 16),
        "{v:?}"
    );
}

#[test]
fn program_names_sharing_one_long_symbol_name_are_not_copied() {
    // 4,000 one-instruction programs all named by one 64 KiB symbol name (copies: 256 MB).
    let name = "p".repeat(64 << 10);
    let mut elf = Elf::new();
    let x = elf.code("xdp", &vec![w::EXIT; 4_000]);
    for i in 0..4_000 {
        elf.func(&name, x, i, 1);
    }
    let bytes = elf.build();
    let (obj, peak) = parse_measured(&bytes);
    let obj = obj.unwrap();
    assert_eq!(obj.programs().len(), 4_000);
    assert_eq!(obj.programs()[3_999].name.len(), 64 << 10);
    assert_proportional(peak, bytes.len(), 16);
}

#[test]
fn overlapping_sections_are_refused() {
    // Two section headers over the same bytes would be decoded (and their relocations
    // applied) twice; 1,000 of them would multiply the file.
    let mut elf = Elf::new();
    let x = elf.code("xdp", &[w::MOV_R0_0, w::EXIT]);
    elf.alias("xdp/again", x);
    let e = Object::parse(&elf.build())
        .and_then(Object::require_all)
        .unwrap_err();
    assert!(matches!(e, LoadError::Malformed { .. }), "{e}");
    assert!(
        e.to_string().contains("xdp") && e.to_string().contains("xdp/again"),
        "{e}"
    );
    assert!(e.to_string().contains("overlap"), "{e}");
}

#[test]
fn overlapping_functions_are_refused_and_calls_find_theirs() {
    let mut text = vec![w::MOV_R0_0, w::EXIT, w::MOV_R0_0, w::EXIT];
    text.push(w::EXIT);
    let mut elf = Elf::new();
    let t = elf.code(".text", &text);
    elf.func("f", t, 0, 2);
    elf.func("g", t, 1, 2);
    let e = Object::parse(&elf.build())
        .and_then(Object::require_all)
        .unwrap_err();
    assert!(e.to_string().contains("overlap"), "{e}");

    // Aliases (same range) are fine; a call lands in the function that holds it.
    let mut elf = Elf::new();
    let t = elf.code(".text", &text);
    let f = elf.func("f", t, 0, 2);
    elf.func("f_alias", t, 0, 2);
    let g = elf.func("g", t, 2, 2);
    let x = elf.code("xdp", &[w::call_local(-1), w::call_local(-1), w::EXIT]);
    elf.func("prog", x, 0, 3);
    elf.rel(x, 0, g, w::R_BPF_64_32);
    elf.rel(x, 8, f, w::R_BPF_64_32);
    let obj = Object::parse(&elf.build()).unwrap();
    let p = obj.program("prog").unwrap();
    let subs: Vec<(&str, usize)> = p
        .subprograms
        .iter()
        .map(|(n, s)| (n.as_str(), *s))
        .collect();
    assert_eq!(subs, [("g", 3), ("f", 5)]);
}

#[test]
fn an_endless_object_file_is_refused_at_the_file_limit() {
    let dev_zero = std::path::Path::new("/dev/zero");
    if !dev_zero.exists() {
        eprintln!("SKIP: no /dev/zero on this system");
        return;
    }
    let (r, peak) = peak_of(|| Object::from_file(dev_zero));
    let e = r.unwrap_err();
    assert!(
        matches!(&e, LoadError::TooLarge { limit, .. } if *limit == MAX_OBJECT_FILE_BYTES as u64),
        "{e}"
    );
    assert_eq!(e.errno(), 7);
    assert!(e.to_string().contains("/dev/zero"), "{e}");
    assert!(
        peak <= 2 * MAX_OBJECT_FILE_BYTES + (1 << 20),
        "read {peak} bytes"
    );
}
