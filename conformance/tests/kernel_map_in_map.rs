//! Checks ARRAY_OF_MAPS and HASH_OF_MAPS against the kernel from the host side: creation
//! (value size, flags, one level only), updates with inner maps that do and do not match the
//! template (type, sizes, flags, `max_entries` with and without `BPF_F_INNER_MAP`), update
//! flags, lookups (the inner map's id), deletes and `get_next_key`, each errno compared.
#![cfg(target_os = "linux")]

use std::sync::Arc;

use bpfvm::maps::{Map, MapMemory, MapSpec, MapType};
use bpfvm_conformance::kernel::consts::create;
use bpfvm_conformance::kernel::{self, Errno, KernelMap, MapDef};

fn def(map_type: MapType, ks: u32, vs: u32, max: u32, flags: u32) -> MapDef {
    MapDef {
        map_type,
        key_size: ks,
        value_size: vs,
        max_entries: max,
        map_flags: flags,
    }
}

fn spec(d: MapDef) -> MapSpec {
    MapSpec::new(d.map_type, d.key_size, d.value_size, d.max_entries).with_flags(d.map_flags)
}

/// A map in both worlds.
struct Pair {
    k: KernelMap,
    b: Arc<Map>,
}

fn plain(d: MapDef) -> Pair {
    let k = KernelMap::create(d).unwrap_or_else(|e| panic!("kernel {d:?}: {e}"));
    let b = Arc::new(Map::create(spec(d), kernel::possible_cpus().unwrap()).unwrap());
    Pair { k, b }
}

fn outer(d: MapDef, inner: &Pair) -> (Result<KernelMap, Errno>, Result<Map, i32>) {
    let n = kernel::possible_cpus().unwrap();
    let k = KernelMap::create_of_maps(d, &inner.k);
    let b =
        Map::create_of_maps_in(spec(d), n, &inner.b, &MapMemory::default()).map_err(|e| e.errno());
    (k, b)
}

fn errno<T>(r: &Result<T, Errno>) -> Option<i32> {
    r.as_ref().err().map(|e| e.0)
}

fn ours<T>(r: &Result<T, i32>) -> Option<i32> {
    r.as_ref().err().copied()
}

#[test]
fn creation_agrees_with_the_kernel() {
    if !kernel::oracle_or_skip() {
        return;
    }
    let inner = plain(def(MapType::Array, 4, 8, 4, 0));
    let mut compared = 0;
    for t in [MapType::ArrayOfMaps, MapType::HashOfMaps] {
        for vs in [4, 8, 0] {
            for flags in [
                0,
                create::NO_PREALLOC,
                create::RDONLY_PROG,
                create::WRONLY_PROG,
                create::INNER_MAP,
                create::RDONLY,
            ] {
                let d = def(t, 4, vs, 4, flags);
                let (k, b) = outer(d, &inner);
                assert_eq!(errno(&k), ours(&b), "create {d:?}");
                compared += 1;
            }
        }
    }
    // Every map type bpfvm has, as a template.
    for td in [
        def(MapType::PercpuHash, 4, 8, 4, 0),
        def(MapType::LruPercpuHash, 4, 8, 4, 0),
        def(MapType::LpmTrie, 8, 8, 4, create::NO_PREALLOC),
        def(MapType::Queue, 0, 8, 4, 0),
        def(MapType::Stack, 0, 8, 4, 0),
        def(MapType::Ringbuf, 0, 0, 4096, 0),
        def(MapType::Devmap, 4, 4, 4, 0),
        def(MapType::DevmapHash, 4, 4, 4, 0),
        def(MapType::Cpumap, 4, 4, 4, 0),
        def(MapType::Xskmap, 4, 4, 4, 0),
        def(MapType::PerfEventArray, 4, 4, 4, 0),
        def(MapType::CgroupStorage, 16, 8, 0, 0),
        def(MapType::PercpuCgroupStorage, 16, 8, 0, 0),
    ] {
        let template = plain(td);
        for t in [MapType::ArrayOfMaps, MapType::HashOfMaps] {
            let (k, b) = outer(def(t, 4, 4, 4, 0), &template);
            assert_eq!(errno(&k), ours(&b), "{t:?} of {td:?}");
            compared += 1;
        }
    }
    // One level only: an outer map is not a template.
    let (k, b) = outer(def(MapType::ArrayOfMaps, 4, 4, 4, 0), &inner);
    let nested = Pair {
        k: k.unwrap(),
        b: Arc::new(b.unwrap()),
    };
    for t in [MapType::ArrayOfMaps, MapType::HashOfMaps] {
        let (k, b) = outer(def(t, 4, 4, 4, 0), &nested);
        assert!(k.is_err(), "the kernel nests map-in-maps");
        assert_eq!(errno(&k), ours(&b), "nested {t:?}");
        compared += 1;
    }
    assert!(compared > 30);
}

#[test]
fn updates_check_the_template_as_the_kernel() {
    if !kernel::oracle_or_skip() {
        return;
    }
    let templates = [
        def(MapType::Array, 4, 8, 4, 0),
        def(MapType::Array, 4, 8, 4, create::INNER_MAP),
        def(MapType::Hash, 4, 8, 16, 0),
        def(MapType::PercpuArray, 4, 8, 4, 0),
        def(MapType::LruHash, 8, 16, 16, 0),
    ];
    let candidates: Vec<Pair> = [
        def(MapType::Array, 4, 8, 4, 0),
        def(MapType::Array, 4, 8, 9, 0),
        def(MapType::Array, 4, 16, 4, 0),
        def(MapType::Array, 4, 8, 4, create::INNER_MAP),
        def(MapType::Array, 4, 8, 64, create::INNER_MAP),
        def(MapType::Array, 4, 8, 4, create::RDONLY_PROG),
        def(MapType::Hash, 4, 8, 16, 0),
        def(MapType::Hash, 4, 8, 99, 0),
        def(MapType::Hash, 8, 8, 16, 0),
        def(MapType::Hash, 4, 8, 16, create::NO_PREALLOC),
        def(MapType::PercpuArray, 4, 8, 4, 0),
        def(MapType::LruHash, 8, 16, 3, 0),
    ]
    .into_iter()
    .map(plain)
    .collect();
    let mut compared = 0;
    let mut accepted = 0;
    for t in [MapType::ArrayOfMaps, MapType::HashOfMaps] {
        for td in templates {
            let template = plain(td);
            let (k, b) = outer(def(t, 4, 4, 8, 0), &template);
            let (k, b) = (k.unwrap(), b.unwrap());
            for (i, c) in candidates.iter().enumerate() {
                let key = (i as u32).to_ne_bytes();
                let kr = k.update_map(&key, &c.k, 0);
                let br = b.update_map(&key, &c.b, 0).map_err(|e| e.errno());
                assert_eq!(
                    errno(&kr),
                    ours(&br),
                    "{t:?} of {td:?}: update with {:?}",
                    c.b.spec()
                );
                compared += 1;
                if kr.is_ok() {
                    accepted += 1;
                    // A lookup gives the inner map's id.
                    let kid = k.lookup(&key, 0).unwrap();
                    assert_eq!(
                        u32::from_ne_bytes(kid[..4].try_into().unwrap()),
                        c.k.id().unwrap()
                    );
                    let mut bid = [0u8; 4];
                    b.lookup(&key, &mut bid, 0).unwrap();
                    assert_eq!(u32::from_ne_bytes(bid), c.b.id());
                }
            }
        }
    }
    assert!(compared >= 100 && accepted >= 10, "{compared} {accepted}");
}

#[test]
fn element_commands_agree_with_the_kernel() {
    if !kernel::oracle_or_skip() {
        return;
    }
    let inner = plain(def(MapType::Array, 4, 8, 4, 0));
    let other = plain(def(MapType::Array, 4, 8, 4, 0));
    for t in [MapType::ArrayOfMaps, MapType::HashOfMaps] {
        let (k, b) = outer(def(t, 4, 4, 3, 0), &inner);
        let (k, b) = (k.unwrap(), b.unwrap());
        let step = |what: &str, kr: Result<(), Errno>, br: Result<(), i32>| {
            assert_eq!(errno(&kr), ours(&br), "{t:?}: {what}");
        };
        for key in [0u32, 1, 2, 3, 7] {
            let kb = key.to_ne_bytes();
            let mut v = [0u8; 4];
            step(
                "lookup",
                k.lookup(&kb, 0).map(drop),
                b.lookup(&kb, &mut v, 0).map_err(|e| e.errno()),
            );
            step(
                "delete",
                k.delete(&kb),
                b.delete(&kb, 0).map_err(|e| e.errno()),
            );
            for flags in [2u64, 1, 0, 1, 4, 8] {
                let m = if key % 2 == 0 { &inner } else { &other };
                step(
                    &format!("update {key} flags {flags}"),
                    k.update_map(&kb, &m.k, flags),
                    b.update_map(&kb, &m.b, flags).map_err(|e| e.errno()),
                );
            }
            step(
                "lookup after update",
                k.lookup(&kb, 0).map(drop),
                b.lookup(&kb, &mut v, 0).map_err(|e| e.errno()),
            );
            // A value that is not a map fd.
            step(
                "update with a bad fd",
                k.update(&kb, &u32::MAX.to_ne_bytes(), 0),
                b.update(&kb, &u32::MAX.to_ne_bytes(), 0)
                    .map_err(|e| e.errno()),
            );
        }
        // get_next_key walks the same keys.
        let mut kk = Vec::new();
        let mut cur: Option<Vec<u8>> = None;
        while let Ok(n) = k.get_next_key(cur.as_deref()) {
            kk.push(n.clone());
            cur = Some(n);
        }
        let mut bk = Vec::new();
        let mut cur: Option<Vec<u8>> = None;
        let mut next = [0u8; 4];
        while b.get_next_key(cur.as_deref(), &mut next, 0).is_ok() {
            bk.push(next.to_vec());
            cur = Some(next.to_vec());
        }
        if t == MapType::HashOfMaps {
            kk.sort();
            bk.sort();
        }
        assert_eq!(kk, bk, "{t:?}: keys");
        assert!(!kk.is_empty());
    }
}

const FIXTURE: &str = concat!(
    env!("CARGO_MANIFEST_DIR"),
    "/../vm/tests/fixtures/map_in_map.o"
);

/// The kernel's maps of `obj`, made as libbpf makes them: each map-in-map from a template
/// map of its inner definition, then the `values` initialisers put in.
fn kernel_maps(obj: &bpfvm::loader::Object) -> Vec<KernelMap> {
    let kdef = |d: &bpfvm::loader::MapDefinition| {
        def(
            MapType::try_from(d.map_type).unwrap(),
            d.key_size,
            d.value_size,
            d.max_entries,
            d.map_flags,
        )
    };
    let maps: Vec<KernelMap> = obj
        .maps()
        .iter()
        .map(|d| match &d.inner {
            Some(t) => {
                let template = KernelMap::create(kdef(t)).unwrap();
                KernelMap::create_of_maps(kdef(d), &template).unwrap()
            }
            None => KernelMap::create(kdef(d)).unwrap(),
        })
        .collect();
    for (i, d) in obj.maps().iter().enumerate() {
        for (slot, name) in &d.initial_slots {
            let j = obj.map_index(name).unwrap();
            maps[i]
                .update_map(&slot.to_ne_bytes(), &maps[j], 0)
                .unwrap();
        }
    }
    maps
}

/// The u64 at key `k` of an array, in the kernel and in bpfvm.
fn both_u64(k: &KernelMap, b: &Map, key: u32) -> (u64, u64) {
    let kv = k.lookup(&key.to_ne_bytes(), 0).unwrap();
    let mut bv = [0u8; 8];
    b.lookup(&key.to_ne_bytes(), &mut bv, 0).unwrap();
    (
        u64::from_ne_bytes(kv[..8].try_into().unwrap()),
        u64::from_ne_bytes(bv),
    )
}

#[test]
fn programs_reach_inner_maps_as_in_the_kernel() {
    use bpfvm::loader::Object;
    use bpfvm::{Input, Vm};
    use bpfvm_conformance::kernel::consts::ProgType;
    use bpfvm_conformance::kernel::{load_object_program, TestRun};

    if !kernel::oracle_or_skip() {
        return;
    }
    let n = kernel::possible_cpus().unwrap();
    let obj = Object::parse_named("map_in_map", &std::fs::read(FIXTURE).unwrap()).unwrap();
    let kmaps = kernel_maps(&obj);
    let bmaps = obj.create_maps(n).unwrap();
    let idx = |name: &str| obj.map_index(name).unwrap();
    // The host puts inner_b in the hash of maps at key 80, in both.
    kmaps[idx("by_port")]
        .update_map(&80u32.to_ne_bytes(), &kmaps[idx("inner_b")], 0)
        .unwrap();
    bmaps
        .set_map_slot("by_port", &80u32.to_ne_bytes(), "inner_b")
        .unwrap();
    let vm = Vm::builder().cpus(n).build();
    let license = obj.license().unwrap_or("GPL").to_owned();
    let load = |name: &str| {
        let def = obj.program(name).unwrap();
        let km: Vec<&KernelMap> = def.maps.iter().map(|&i| &kmaps[i]).collect();
        let k = load_object_program(name, ProgType::Xdp, 0, &def.bytecode(), &km, &license)
            .unwrap_or_else(|e| panic!("kernel: {e}"));
        let b = vm
            .load(obj.vm_program(name, &bmaps).unwrap())
            .unwrap_or_else(|e| panic!("bpfvm {name}: {e}"));
        assert_eq!(b.unverified(), None, "{name}: verified");
        (k, b)
    };
    let packet = vec![0u8; 64];
    let run = TestRun {
        data_in: packet.clone(),
        data_out_size: 0,
        ctx_in: Vec::new(),
        ctx_out_size: 0,
        repeat: 1,
    };
    let compare_all = |what: &str| {
        for m in ["result", "inner_a", "inner_b", "inner_c"] {
            let keys = if m == "result" { 4 } else { 1 };
            for key in 0..keys {
                let (k, b) = both_u64(&kmaps[idx(m)], bmaps.get(m).unwrap(), key);
                assert_eq!(k, b, "{what}: {m}[{key}]");
            }
        }
    };
    let (kc, bc) = load("count_slots");
    for i in 0..3 {
        let k = kc.test_run_on_cpu(0, &run).unwrap().retval;
        let b = vm
            .run(&bc, 0, &Input::packet(packet.clone()))
            .unwrap()
            .retval;
        assert_eq!(u64::from(k), b, "count_slots run {i}");
        compare_all(&format!("count_slots run {i}"));
    }
    assert_eq!(
        both_u64(&kmaps[idx("result")], bmaps.get("result").unwrap(), 3).0,
        6
    );
    // An empty slot: the helper's NULL; then inner_c put in slot 3.
    let (ks, bs) = load("set_slot3");
    let k = ks.test_run_on_cpu(0, &run).unwrap().retval;
    let b = vm
        .run(&bs, 0, &Input::packet(packet.clone()))
        .unwrap()
        .retval;
    assert_eq!((u64::from(k), b), (1, 1), "set_slot3 on an empty slot");
    kmaps[idx("outer")]
        .update_map(&3u32.to_ne_bytes(), &kmaps[idx("inner_c")], 0)
        .unwrap();
    bmaps
        .set_map_slot("outer", &3u32.to_ne_bytes(), "inner_c")
        .unwrap();
    let (ks, bs) = load("set_slot3");
    let k = ks.test_run_on_cpu(0, &run).unwrap().retval;
    let b = vm.run(&bs, 0, &Input::packet(packet)).unwrap().retval;
    assert_eq!((u64::from(k), b), (2, 2), "set_slot3");
    compare_all("set_slot3");
    assert_eq!(
        both_u64(&kmaps[idx("inner_c")], bmaps.get("inner_c").unwrap(), 0),
        (42, 42)
    );
}

#[test]
fn misuses_are_refused_with_the_kernels_words() {
    use bpfvm::Privilege;
    use bpfvm_conformance::verdicts::{cases_from_object, compare};

    if !kernel::oracle_or_skip() {
        return;
    }
    let cases = cases_from_object("map_in_map", &std::fs::read(FIXTURE).unwrap()).unwrap();
    let mut refused = 0;
    for case in &cases {
        for p in [Privilege::CapBpfNetAdmin, Privilege::Root] {
            let c = compare(case, p).unwrap();
            match (&c.kernel_errno, &c.ours) {
                (None, Ok(_)) => assert!(!case.name.ends_with("_bad"), "{}", case.name),
                (Some(k), Err(e)) => {
                    refused += 1;
                    assert_eq!(*k, e.errno, "{}", case.name);
                    // Every line of bpfvm's message is a line of the kernel's log, the
                    // last one last.
                    let log = c.kernel_messages.join("\n");
                    let last = c.kernel_messages.last().cloned().unwrap_or_default();
                    assert!(
                        e.message.lines().all(|l| log.contains(l))
                            && e.message.lines().last() == Some(last.as_str()),
                        "{} [{p:?}]: kernel {log:?}, bpfvm {:?}",
                        case.name,
                        e.message
                    );
                }
                (k, o) => panic!("{} [{p:?}]: kernel {k:?}, bpfvm {o:?}", case.name),
            }
        }
    }
    assert_eq!(refused, 6, "three misuses, two loaders");
}
