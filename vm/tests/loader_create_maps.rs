//! Checks that an object's map definitions become live `bpfvm-maps` maps on N CPUs, found
//! by name, with global data written, `.rodata` frozen, and clear errors for map types
//! or attributes the maps crate refuses.

mod common;

use bpfvm::loader::{LoadError, Object};

#[test]
fn every_fixture_creates_its_maps() {
    for &name in common::FIXTURES {
        let obj = common::fixture(name);
        let maps = obj.create_maps(4).unwrap_or_else(|e| panic!("{name}: {e}"));
        assert_eq!(maps.all().len(), obj.maps().len());
        for (def, map) in maps.iter() {
            assert_eq!(
                u32::from(map.map_type()),
                def.map_type,
                "{name}/{}",
                def.name
            );
            assert_eq!(map.key_size(), def.key_size);
            assert_eq!(map.value_size(), def.value_size);
            assert_eq!(map.ncpus(), 4);
            assert!(std::sync::Arc::ptr_eq(maps.get(&def.name).unwrap(), map));
        }
    }
}

#[test]
fn per_cpu_maps_are_per_cpu_on_the_host_side() {
    let obj = common::fixture("percpu_counter");
    let maps = obj.create_maps(3).unwrap();
    let counts = maps.get("counts").unwrap();
    assert_eq!(counts.host_value_size(0), 3 * 8, "one 8-byte slot per CPU");
    let total = maps.get("total").unwrap();
    assert_eq!(total.host_value_size(0), 8);
}

#[test]
fn global_data_is_written_and_rodata_frozen() {
    let obj = common::fixture("globals");
    let maps = obj.create_maps(2).unwrap();
    let key = 0u32.to_ne_bytes();
    let read = |name: &str| {
        let map = maps.get(name).unwrap();
        let mut v = vec![0u8; map.value_size() as usize];
        map.lookup(&key, &mut v, 0).unwrap();
        v
    };
    assert_eq!(read(".data"), 3u64.to_le_bytes());
    assert_eq!(read(".bss"), [0u8; 8]);
    let rodata = read(".rodata");
    assert_eq!(&rodata[..8], &5u64.to_le_bytes());
    assert_eq!(&rodata[8..14], b"bpfvm!");
    let ro = maps.get("globals.rodata").unwrap();
    assert!(ro.is_frozen());
    assert!(ro.rdonly_prog());
    let err = ro.update(&key, &[0u8; 16], 0).unwrap_err();
    assert_eq!(err.errno(), 1, "EPERM: frozen");
    // Writable sections stay writable from the host.
    let data = maps.get(".data").unwrap();
    data.update(&key, &9u64.to_le_bytes(), 0).unwrap();
    assert_eq!(read("globals.data"), 9u64.to_le_bytes());
    assert!(!data.is_frozen());
}

#[test]
fn map_types_and_attributes_the_maps_crate_refuses() {
    let b = common::fixture_bytes("legacy_maps");
    // The `maps` section's file offset, found by its definitions' bytes.
    let first_def: Vec<u8> = [1u32, 4, 8, 32, 1]
        .iter()
        .flat_map(|v| v.to_le_bytes())
        .collect();
    let at = b
        .windows(first_def.len())
        .position(|w| w == first_def.as_slice())
        .unwrap();

    let mut inode = b.clone();
    inode[at..at + 4].copy_from_slice(&28u32.to_le_bytes()); // BPF_MAP_TYPE_INODE_STORAGE
    let obj = Object::parse(&inode).expect("a known kernel map type parses");
    // The map is refused, and so is the program that uses it; the other maps are created.
    let refused = &obj.refused_maps()[0];
    assert_eq!(refused.name, "legacy_hash");
    let err = refused.error.clone();
    assert!(
        matches!(&err, LoadError::UnsupportedMapType { map, map_type: "inode_storage" } if map == "legacy_hash"),
        "{err:?}"
    );
    assert_eq!(err.errno(), 95);
    assert_eq!(obj.create_maps(2).unwrap().all().len(), obj.maps().len());
    let prog = obj.program_result("legacy_count").unwrap_err();
    assert!(
        matches!(&prog, LoadError::MapUnavailable { map, reason } if map == "legacy_hash" && **reason == err),
        "{prog:?}"
    );
    assert_eq!(prog.errno(), 95);
    assert!(prog
        .to_string()
        .starts_with("uses map legacy_hash, which cannot be loaded: "));

    let mut no_key = b.clone();
    no_key[at + 4..at + 8].copy_from_slice(&0u32.to_le_bytes()); // key_size 0
    let err = Object::parse(&no_key).unwrap().create_maps(2).unwrap_err();
    assert!(
        matches!(&err, LoadError::MapCreate { map, .. } if map == "legacy_hash"),
        "{err:?}"
    );
    assert_eq!(err.errno(), 22, "EINVAL from BPF_MAP_CREATE");
    assert!(err
        .to_string()
        .starts_with("cannot create map legacy_hash: "));
}

#[test]
fn zero_cpus_is_an_error_not_a_panic() {
    let err = common::fixture("percpu_counter")
        .create_maps(0)
        .unwrap_err();
    assert!(matches!(err, LoadError::MapCreate { .. }), "{err:?}");
}

#[test]
fn typed_views_work_on_maps_found_by_name() {
    use bpfvm_maps::{Array, HashMap, MapFlags, PerCpuArray, PerCpuValues};
    let obj = common::fixture("percpu_counter");
    let maps = obj.create_maps(4).unwrap();
    let counts = PerCpuArray::<_, u64>::new(maps.get("counts").unwrap().clone()).unwrap();
    counts
        .set(
            0,
            &PerCpuValues::new(4, vec![1, 2, 3, 4]).unwrap(),
            MapFlags::ANY,
        )
        .unwrap();
    assert_eq!(counts.get(0).unwrap().into_vec(), [1, 2, 3, 4]);
    // A view with the wrong value size is refused when it is made.
    assert!(PerCpuArray::<_, u32>::new(maps.get("counts").unwrap().clone()).is_err());

    let globals = common::fixture("globals");
    let maps = globals.create_maps(1).unwrap();
    let data = Array::<_, u64>::new(maps.get(".data").unwrap().clone()).unwrap();
    assert_eq!(data.get(0).unwrap(), 3, "step");
    let legacy = common::fixture("legacy_maps");
    let maps = legacy.create_maps(1).unwrap();
    let hash = HashMap::<_, u32, u64>::new(maps.get("legacy_hash").unwrap().clone()).unwrap();
    hash.insert(&7, 70, MapFlags::NOEXIST).unwrap();
    assert_eq!(hash.get(&7).unwrap(), 70);
}
