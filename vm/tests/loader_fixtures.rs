//! Checks that every committed clang fixture parses and that its programs and maps
//! have the names, program types, map types, sizes and flags its C source declares.

mod common;

use bpfvm::loader::{GlobalDataKind, LoadError, MapKind, Object, BPF_F_RDONLY_PROG};
use bpfvm::ProgramType;

/// (name, map_type, key_size, value_size, max_entries, map_flags)
fn maps_of(obj: &Object) -> Vec<(String, u32, u32, u32, u32, u32)> {
    obj.maps()
        .iter()
        .map(|m| {
            (
                m.name.to_string(),
                m.map_type,
                m.key_size,
                m.value_size,
                m.max_entries,
                m.map_flags,
            )
        })
        .collect()
}

fn owned(v: &[(&str, u32, u32, u32, u32, u32)]) -> Vec<(String, u32, u32, u32, u32, u32)> {
    v.iter()
        .map(|&(n, t, k, val, e, f)| (n.to_string(), t, k, val, e, f))
        .collect()
}

fn programs_of(obj: &Object) -> Vec<(String, String, ProgramType)> {
    obj.programs()
        .iter()
        .map(|p| (p.name.to_string(), p.section.to_string(), p.program_type))
        .collect()
}

#[test]
fn every_supported_fixture_parses() {
    let dir = format!("{}/tests/fixtures", env!("CARGO_MANIFEST_DIR"));
    let mut seen = 0;
    for entry in std::fs::read_dir(dir).unwrap() {
        let path = entry.unwrap().path();
        if path.extension().and_then(|e| e.to_str()) != Some("o") {
            continue;
        }
        let stem = path.file_stem().unwrap().to_str().unwrap().to_string();
        // Everything must load, as libbpf's all-or-nothing load would have it.
        let result = Object::from_file(&path).and_then(Object::require_all);
        match stem.as_str() {
            // A CO-RE read of a kernel type: with no target BTF, it loads poisoned.
            "core_relo" | "core_kernel" => {
                let obj = result.unwrap();
                assert!(obj.programs().iter().all(|p| !p.core_poisons.is_empty()));
            }
            "unknown_map_type" => assert!(
                matches!(result, Err(LoadError::UnknownMapType { .. })),
                "{result:?}"
            ),
            "untyped_map" | "size_mismatch" | "map_in_map_value_type" => assert!(
                matches!(result, Err(LoadError::BadMapDefinition { .. })),
                "{result:?}"
            ),
            "partial" | "externs" => assert!(result.is_err(), "{stem} has a refused program"),
            // Its fentry/fexit/tp_btf programs need a target BTF (tracing_programs.rs,
            // socket_cookies.rs).
            "tracing" | "sock_cookie" => assert!(
                matches!(result, Err(LoadError::TracingNeedsBtf { .. })),
                "{result:?}"
            ),
            _ => {
                let obj = result.unwrap_or_else(|e| panic!("{stem}: {e}"));
                assert!(!obj.programs().is_empty(), "{stem} has programs");
                assert_eq!(obj.license(), Some("GPL"));
                assert_eq!(obj.name(), stem);
            }
        }
        seen += 1;
    }
    assert!(seen >= 20, "found {seen} fixtures");
}

#[test]
fn percpu_counter_bundled_example() {
    let obj = common::fixture("percpu_counter");
    assert_eq!(
        maps_of(&obj),
        owned(&[("counts", 6, 4, 8, 1, 0), ("total", 2, 4, 8, 1, 0)])
    );
    assert_eq!(obj.map("counts").unwrap().kind, MapKind::Btf);
    assert_eq!(
        programs_of(&obj),
        [("count_packets".into(), "xdp".into(), ProgramType::Xdp)]
    );
    let btf = obj.btf().unwrap();
    let counts = obj.map("counts").unwrap();
    assert_eq!(btf.type_name(counts.key_type_id.unwrap()), "__u32");
    assert_eq!(btf.type_name(counts.value_type_id.unwrap()), "__u64");
}

#[test]
fn percpu_and_lru_hashes() {
    assert_eq!(
        maps_of(&common::fixture("percpu_hash")),
        owned(&[("seen", 5, 4, 8, 16, 0), ("eexist", 2, 4, 8, 1, 0)])
    );
    assert_eq!(
        maps_of(&common::fixture("lru_percpu_hash")),
        owned(&[("recent", 10, 4, 8, 4, 0)])
    );
    assert_eq!(
        maps_of(&common::fixture("percpu_sum")),
        owned(&[("hits", 6, 4, 8, 1, 0), ("result", 2, 4, 8, 2, 0)])
    );
    assert_eq!(
        maps_of(&common::fixture("xdp_parser")),
        owned(&[("stats", 6, 4, 8, 5, 0)])
    );
}

#[test]
fn struct_values_have_their_btf_size() {
    let obj = common::fixture("signed_v4");
    assert_eq!(
        maps_of(&obj),
        owned(&[("in", 2, 4, 24, 1, 0), ("out", 2, 4, 64, 1, 0)])
    );
    let btf = obj.btf().unwrap();
    assert_eq!(
        btf.type_name(obj.map("out").unwrap().value_type_id.unwrap()),
        "struct output"
    );
    let tc = common::fixture("tc_skb");
    assert_eq!(maps_of(&tc), owned(&[("seen", 2, 4, 32, 1, 0)]));
    assert_eq!(
        programs_of(&tc),
        [("tc_inspect".into(), "tc".into(), ProgramType::SchedCls)]
    );
}

#[test]
fn legacy_bpf_map_def_maps() {
    let obj = common::fixture("legacy_maps");
    // BPF_F_NO_PREALLOC = 1
    assert_eq!(
        maps_of(&obj),
        owned(&[
            ("legacy_hash", 1, 4, 8, 32, 1),
            ("legacy_percpu", 6, 4, 4, 2, 0)
        ])
    );
    assert!(obj.maps().iter().all(|m| m.kind == MapKind::Legacy));
    assert!(obj.maps().iter().all(|m| m.key_type_id.is_none()));
}

#[test]
fn global_data_sections_become_single_entry_arrays() {
    let obj = common::fixture("globals");
    assert_eq!(
        maps_of(&obj),
        owned(&[
            ("globals.data", 2, 4, 8, 1, 0),
            ("globals.rodata", 2, 4, 16, 1, BPF_F_RDONLY_PROG),
            (".data.stats", 2, 4, 8, 1, 0),
            ("globals.bss", 2, 4, 8, 1, 0),
        ])
    );
    let data = obj.map(".data").unwrap();
    assert_eq!(data.name, "globals.data");
    assert_eq!(data.initial_data.as_deref(), Some(&3u64.to_le_bytes()[..]));
    assert!(!data.frozen);
    let rodata = obj.map(".rodata").unwrap();
    assert!(rodata.frozen);
    assert_eq!(
        rodata.kind,
        MapKind::GlobalData {
            section: ".rodata".into(),
            kind: GlobalDataKind::Rodata
        }
    );
    let init = rodata.initial_data.as_deref().unwrap();
    assert_eq!(&init[..8], &5u64.to_le_bytes());
    assert_eq!(&init[8..14], b"bpfvm!");
    let bss = obj.map(".bss").unwrap();
    assert_eq!(bss.initial_data, None, ".bss starts zeroed");
    assert_eq!(
        obj.map("globals.bss").unwrap().kind,
        MapKind::GlobalData {
            section: ".bss".into(),
            kind: GlobalDataKind::Bss
        }
    );
    // A renamed object renames the standard sections' maps, not the custom ones.
    let bytes = common::fixture_bytes("globals");
    let long = Object::parse_named("a_long_object_name", &bytes).unwrap();
    assert!(long.map("a_long_o.bss").is_some());
    assert!(long.map(".data.stats").is_some());
}

#[test]
fn global_data_values_decode_with_btf() {
    let obj = common::fixture("globals");
    let rodata = obj.map(".rodata").unwrap();
    let decoded = obj
        .decode_value(rodata, rodata.initial_data.as_deref().unwrap())
        .unwrap();
    assert_eq!(decoded.to_string(), r#"{ factor: 5, greeting: "bpfvm!" }"#);
    let out = common::fixture("signed_v4");
    let map = out.map("in").unwrap();
    let mut bytes = Vec::new();
    bytes.extend_from_slice(&(-7i64).to_le_bytes());
    bytes.extend_from_slice(&2i64.to_le_bytes());
    bytes.push(0xff); // c = -1
    bytes.push(0);
    bytes.extend_from_slice(&(-300i16).to_le_bytes());
    bytes.extend_from_slice(&70000i32.to_le_bytes());
    assert_eq!(
        out.decode_value(map, &bytes).unwrap().to_string(),
        "{ a: -7, b: 2, c: -1, d: -300, e: 70000 }"
    );
    assert_eq!(
        out.decode_key(map, &0u32.to_le_bytes())
            .unwrap()
            .to_string(),
        "0"
    );
}

#[test]
fn several_programs_per_object_with_libbpf_types() {
    let obj = common::fixture("multi");
    let key = |p: &(String, String, ProgramType)| (p.0.clone(), p.1.clone());
    let mut progs = programs_of(&obj);
    progs.sort_by_key(key);
    let mut expected: Vec<(String, String, ProgramType)> = [
        ("xdp_prog", "xdp", ProgramType::Xdp),
        ("xdp_second", "xdp", ProgramType::Xdp),
        ("tc_prog", "classifier", ProgramType::SchedCls),
        ("sock_prog", "socket", ProgramType::SocketFilter),
        ("kprobe_prog", "kprobe/do_sys_open", ProgramType::Kprobe),
        (
            "tp_prog",
            "tracepoint/syscalls/sys_enter_openat",
            ProgramType::Tracepoint,
        ),
        ("skb_prog", "cgroup_skb/ingress", ProgramType::CgroupSkb),
        ("custom_prog", "bpfvm/custom", ProgramType::Unspecified),
    ]
    .iter()
    .map(|&(n, s, t)| (n.to_string(), s.to_string(), t))
    .collect();
    expected.sort_by_key(key);
    assert_eq!(progs, expected);
    // Lookup by function name, then by section name (first program of the section).
    assert_eq!(obj.program("xdp_second").unwrap().name, "xdp_second");
    assert_eq!(obj.program("xdp").unwrap().name, "xdp_prog");
    assert_eq!(
        obj.program("kprobe/do_sys_open").unwrap().name,
        "kprobe_prog"
    );
    assert!(obj.program("nope").is_none());
    // Every program uses the one shared map.
    for p in obj.programs() {
        assert_eq!(p.maps, [obj.map_index("calls").unwrap()], "{}", p.name);
    }
}

#[test]
fn string_literals_get_read_only_maps() {
    let obj = common::fixture("printk");
    assert_eq!(
        maps_of(&obj),
        owned(&[
            ("printk.rodata", 2, 4, 9, 1, BPF_F_RDONLY_PROG),
            (".rodata.str1.1", 2, 4, 5, 1, BPF_F_RDONLY_PROG),
        ])
    );
    let strings = obj.map(".rodata.str1.1").unwrap();
    assert!(strings.frozen);
    assert_eq!(strings.initial_data.as_deref(), Some(&b"bye\n\0"[..]));
    assert_eq!(
        obj.map(".rodata").unwrap().initial_data.as_deref(),
        Some(&b"hello %d\0"[..])
    );
    assert_eq!(obj.program("hello").unwrap().maps, [0, 1]);
}

#[test]
fn btf_attributes_numbers_flags_pinning_and_struct_keys() {
    let obj = common::fixture("btf_attrs");
    // sized: HASH, key_size/value_size as numbers, BPF_F_NO_PREALLOC; flows: LRU_HASH
    // keyed by a 16-byte struct flow (13 bytes of fields + padding), pinned by name.
    assert_eq!(
        maps_of(&obj),
        owned(&[("sized", 1, 4, 16, 8, 1), ("flows", 9, 4 * 4, 8, 64, 0)])
    );
    let sized = obj.map("sized").unwrap();
    assert_eq!((sized.key_type_id, sized.value_type_id), (None, None));
    let flows = obj.map("flows").unwrap();
    let mut key = Vec::new();
    key.extend_from_slice(&0x0a00_0001u32.to_le_bytes());
    key.extend_from_slice(&0x0a00_0002u32.to_le_bytes());
    key.extend_from_slice(&53u16.to_le_bytes());
    key.extend_from_slice(&4242u16.to_le_bytes());
    key.extend_from_slice(&[17, 0, 0, 0]);
    assert_eq!(
        obj.decode_key(flows, &key).unwrap().to_string(),
        "{ saddr: 167772161, daddr: 167772162, sport: 53, dport: 4242, proto: 17 }"
    );
}
