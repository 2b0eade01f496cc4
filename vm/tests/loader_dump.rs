//! Checks that live maps list their entries decoded with BTF: integers as numbers,
//! structs by member, one value per CPU for per-CPU maps, plain integers for legacy maps
//! without BTF.

mod common;

use bpfvm::loader::{BtfValue, LoadError};
use bpfvm_maps::MapFlags;

fn show(entries: &[bpfvm::loader::MapEntry]) -> Vec<String> {
    entries
        .iter()
        .map(|e| {
            let values: Vec<String> = e.values.iter().map(ToString::to_string).collect();
            format!("{} => {}", e.key, values.join(" | "))
        })
        .collect()
}

#[test]
fn per_cpu_arrays_show_every_cpu() {
    let obj = common::fixture("percpu_counter");
    let maps = obj.create_maps(3).unwrap();
    let counts = maps.get("counts").unwrap();
    counts
        .update(
            &0u32.to_ne_bytes(),
            &5u64.to_ne_bytes(),
            MapFlags::ALL_CPUS.bits(),
        )
        .unwrap();
    counts
        .update(
            &0u32.to_ne_bytes(),
            &9u64.to_ne_bytes(),
            MapFlags::cpu(1).bits(),
        )
        .unwrap();
    let entries = obj.dump_map(&maps, "counts").unwrap();
    assert_eq!(show(&entries), ["0 => 5 | 9 | 5"]);
    assert_eq!(entries[0].values[1], BtfValue::Unsigned(9));
    assert_eq!(show(&obj.dump_map(&maps, "total").unwrap()), ["0 => 0"]);
}

#[test]
fn structs_and_global_data_decode_by_member() {
    let obj = common::fixture("signed_v4");
    let maps = obj.create_maps(1).unwrap();
    let mut input = Vec::new();
    input.extend_from_slice(&(-7i64).to_le_bytes());
    input.extend_from_slice(&2i64.to_le_bytes());
    input.extend_from_slice(&[0xff, 0]);
    input.extend_from_slice(&(-300i16).to_le_bytes());
    input.extend_from_slice(&70000i32.to_le_bytes());
    maps.get("in")
        .unwrap()
        .update(&0u32.to_ne_bytes(), &input, 0)
        .unwrap();
    assert_eq!(
        show(&obj.dump_map(&maps, "in").unwrap()),
        ["0 => { a: -7, b: 2, c: -1, d: -300, e: 70000 }"]
    );

    let globals = common::fixture("globals");
    let maps = globals.create_maps(1).unwrap();
    assert_eq!(
        show(&globals.dump_map(&maps, ".rodata").unwrap()),
        [r#"0 => { factor: 5, greeting: "bpfvm!" }"#]
    );
    assert_eq!(
        show(&globals.dump_map(&maps, "globals.data").unwrap()),
        ["0 => { step: 3 }"]
    );
}

#[test]
fn hashes_list_their_keys_and_legacy_maps_fall_back_to_integers() {
    let obj = common::fixture("legacy_maps");
    let maps = obj.create_maps(2).unwrap();
    let hash = maps.get("legacy_hash").unwrap();
    assert!(obj.dump_map(&maps, "legacy_hash").unwrap().is_empty());
    for (k, v) in [(7u32, 70u64), (3, 30)] {
        hash.update(&k.to_ne_bytes(), &v.to_ne_bytes(), 0).unwrap();
    }
    let mut lines = show(&obj.dump_map(&maps, "legacy_hash").unwrap());
    lines.sort();
    assert_eq!(lines, ["3 => 30", "7 => 70"]);
    assert_eq!(
        show(&obj.dump_map(&maps, "legacy_percpu").unwrap()),
        ["0 => 0 | 0", "1 => 0 | 0"]
    );
    let err = obj.dump_map(&maps, "nope").unwrap_err();
    assert!(matches!(err, LoadError::NoSuchMap { .. }));
    assert_eq!(err.to_string(), "no map named nope in the object");
}
