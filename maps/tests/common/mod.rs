//! Shared helpers for the scenario tests.
#![allow(dead_code)]

use bpfvm_maps::{Map, MapError, MapSpec, MapType};

pub const ALL_TYPES: [MapType; 6] = [
    MapType::Array,
    MapType::PercpuArray,
    MapType::Hash,
    MapType::PercpuHash,
    MapType::LruHash,
    MapType::LruPercpuHash,
];

pub const PERCPU_TYPES: [MapType; 3] = [
    MapType::PercpuArray,
    MapType::PercpuHash,
    MapType::LruPercpuHash,
];

pub const HASH_TYPES: [MapType; 4] = [
    MapType::Hash,
    MapType::PercpuHash,
    MapType::LruHash,
    MapType::LruPercpuHash,
];

/// A map with 4-byte keys.
pub fn map(t: MapType, value_size: u32, max_entries: u32, ncpus: u32) -> Map {
    Map::create(MapSpec::new(t, 4, value_size, max_entries), ncpus).expect("create")
}

pub fn map_flags(t: MapType, value_size: u32, max_entries: u32, flags: u32, ncpus: u32) -> Map {
    Map::create(
        MapSpec::new(t, 4, value_size, max_entries).with_flags(flags),
        ncpus,
    )
    .expect("create")
}

pub fn k(i: u32) -> [u8; 4] {
    i.to_ne_bytes()
}

pub fn v64(x: u64) -> [u8; 8] {
    x.to_ne_bytes()
}

pub fn u64s(buf: &[u8]) -> Vec<u64> {
    buf.chunks(8)
        .map(|c| u64::from_ne_bytes(c.try_into().unwrap()))
        .collect()
}

pub fn errno<T: std::fmt::Debug>(r: Result<T, MapError>) -> i32 {
    r.expect_err("expected an error").errno()
}

/// A full per-CPU buffer of u64 values.
pub fn full(vals: &[u64]) -> Vec<u8> {
    vals.iter().flat_map(|v| v.to_ne_bytes()).collect()
}

/// Keys in GET_NEXT_KEY order.
pub fn keys(m: &Map) -> Vec<Vec<u8>> {
    let ks = m.key_size() as usize;
    let mut out: Vec<Vec<u8>> = Vec::new();
    let mut next = vec![0u8; ks];
    loop {
        let prev = out.last().cloned();
        match m.get_next_key(prev.as_deref(), &mut next, 0) {
            Ok(()) => out.push(next.clone()),
            Err(e) => {
                assert_eq!(e.errno(), 2);
                return out;
            }
        }
        assert!(out.len() <= 1 << 20, "iteration does not end");
    }
}

/// Seed a key in any map type with a u64 value (for per-CPU maps: every CPU).
pub fn put(m: &Map, key: u32, val: u64) {
    let buf: Vec<u8> = (0..m.ncpus()).flat_map(|_| val.to_ne_bytes()).collect();
    let v = if m.map_type().is_percpu() {
        &buf[..]
    } else {
        &buf[..8]
    };
    m.update(&k(key), v, 0).expect("update");
}

/// Value buffer big enough for any lookup of `m`.
pub fn vbuf(m: &Map) -> Vec<u8> {
    vec![0u8; m.slot_size() * m.ncpus() as usize]
}
