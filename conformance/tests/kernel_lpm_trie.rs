//! Checks LPM_TRIE against the kernel: creation errnos for the kernel's size and flag rules,
//! then random sequences of host updates (every flag), deletes, longest-prefix lookups,
//! `get_next_key` walks and batch calls on a kernel trie and a bpfvm trie of the same shape,
//! comparing every result and the full post-order walk at the end.
#![cfg(target_os = "linux")]

use bpfvm_conformance::kernel::consts::{create, MapType};
use bpfvm_conformance::kernel::diff::{self, HostMap, SplitMix64};
use bpfvm_conformance::kernel::{self, Errno, KernelMap, MapDef};

fn def(key_size: u32, value_size: u32, max_entries: u32, map_flags: u32) -> MapDef {
    MapDef {
        map_type: MapType::LpmTrie,
        key_size,
        value_size,
        max_entries,
        map_flags,
    }
}

#[test]
fn creation_errnos_agree_with_the_kernel() {
    if !kernel::oracle_or_skip() {
        return;
    }
    let n = kernel::possible_cpus().unwrap();
    let np = create::NO_PREALLOC;
    let cases = [
        def(8, 4, 16, np),
        def(8, 4, 16, 0),
        def(8, 4, 0, np),
        def(4, 4, 16, np),
        def(5, 4, 16, np),
        def(260, 4, 16, np),
        def(261, 4, 16, np),
        def(20, 0, 16, np),
        def(20, (4 << 20) - 256 - 40, 1, np),
        def(20, (4 << 20) - 256 - 24, 1, np),
        def(20, (4 << 20) - 256 - 23, 1, np),
        def(8, 4, 16, np | create::RDONLY_PROG),
        def(8, 4, 16, np | create::RDONLY_PROG | create::WRONLY_PROG),
        def(8, 4, 16, np | create::NO_COMMON_LRU),
        def(8, 4, 16, np | create::ZERO_SEED),
        def(8, 4, 16, np | create::MMAPABLE),
    ];
    let mut differ = 0;
    for d in cases {
        let k = KernelMap::create(d).map(drop);
        let s = diff::sim_map(d, n).map(drop);
        if k != s {
            differ += 1;
            println!("DIFFERENCE {d:?}: kernel {k:?}, bpfvm {s:?}");
        }
    }
    assert_eq!(differ, 0, "creation errnos differ");
}

/// A key of `len` prefix bits over `data`.
fn key(len: u32, data: &[u8]) -> Vec<u8> {
    [&len.to_ne_bytes()[..], data].concat()
}

/// Every key in `get_next_key` order (at most `limit`, to stop a runaway walk).
fn walk(m: &dyn HostMap, limit: usize) -> Vec<Vec<u8>> {
    let mut out: Vec<Vec<u8>> = Vec::new();
    while out.len() < limit {
        match m.get_next_key(out.last().map(Vec::as_slice)) {
            Ok(k) => out.push(k),
            Err(_) => break,
        }
    }
    out
}

/// A random key over `data_size` bytes drawn from a small universe, so that prefixes nest
/// and collide: bytes from {0x00, 0x0f, 0x80, 0xff, 10, 192}, prefix lengths up to one
/// past the maximum.
fn random_key(r: &mut SplitMix64, data_size: usize) -> Vec<u8> {
    let data: Vec<u8> = (0..data_size)
        .map(|_| *r.pick(&[0x00u8, 0x0f, 0x80, 0xff, 10, 192]))
        .collect();
    let max = data_size as u64 * 8;
    let len = if r.below(10) == 0 {
        max + 1
    } else {
        r.below(max + 1)
    };
    key(len as u32, &data)
}

fn ops_agree(data_size: usize, max_entries: u32, seed: u64, steps: usize) -> usize {
    let n = kernel::possible_cpus().unwrap();
    let d = def(4 + data_size as u32, 4, max_entries, create::NO_PREALLOC);
    let k = KernelMap::create(d).unwrap();
    let s = diff::sim_map(d, n).unwrap();
    let mut r = SplitMix64::new(seed);
    let mut differ = 0;
    let mut report = |what: String, kr: &dyn std::fmt::Debug, sr: &dyn std::fmt::Debug| {
        differ += 1;
        if differ <= 10 {
            println!("DIFFERENCE {what}: kernel {kr:?}, bpfvm {sr:?}");
        }
    };
    for step in 0..steps {
        let key = random_key(&mut r, data_size);
        match r.below(10) {
            0..=3 => {
                let value = (step as u32).to_ne_bytes();
                let flags = *r.pick(&[0u64, 0, 1, 2, 3, 4]);
                let (kr, sr) = (
                    k.update(&key, &value, flags),
                    HostMap::update(&s, &key, &value, flags),
                );
                if kr != sr {
                    report(
                        format!("step {step} update {key:?} flags {flags}"),
                        &kr,
                        &sr,
                    );
                }
            }
            4..=5 => {
                let (kr, sr) = (k.delete(&key), HostMap::delete(&s, &key));
                if kr != sr {
                    report(format!("step {step} delete {key:?}"), &kr, &sr);
                }
            }
            6..=7 => {
                let (kr, sr) = (k.lookup(&key, 0), HostMap::lookup(&s, &key, 0));
                if kr != sr {
                    report(format!("step {step} lookup {key:?}"), &kr, &sr);
                }
            }
            8 => {
                let start = (r.below(3) != 0).then_some(key.as_slice());
                let (kr, sr) = (k.get_next_key(start), HostMap::get_next_key(&s, start));
                if kr != sr {
                    report(format!("step {step} get_next_key {start:?}"), &kr, &sr);
                }
            }
            _ => {
                let (kr, sr) = (
                    k.lookup_and_delete(&key, 0),
                    HostMap::lookup_and_delete(&s, &key, 0),
                );
                if kr != sr {
                    report(format!("step {step} lookup_and_delete"), &kr, &sr);
                }
                let (kb, sb) = (
                    k.lookup_batch(None, 4, 0, 0),
                    HostMap::lookup_batch(&s, None, 4, 0, 0),
                );
                if kb != sb {
                    report(format!("step {step} lookup_batch"), &kb, &sb);
                }
            }
        }
    }
    let limit = 4 * max_entries as usize + 4;
    let (kw, sw) = (walk(&k, limit), walk(&s, limit));
    if kw != sw {
        report("final get_next_key walk".to_string(), &kw, &sw);
    }
    println!(
        "LPM data_size {data_size}, max_entries {max_entries}, seed {seed}: {steps} ops, {} keys at the end, {differ} differences",
        kw.len()
    );
    differ
}

#[test]
fn random_operations_agree_with_the_kernel() {
    if !kernel::oracle_or_skip() {
        return;
    }
    let mut differ = 0;
    for (data_size, max_entries, seed) in [
        (1, 6, 1),
        (1, 64, 2),
        (2, 12, 3),
        (4, 8, 4),
        (4, 200, 5),
        (16, 40, 6),
    ] {
        differ += ops_agree(data_size, max_entries, seed, 3000);
    }
    assert_eq!(differ, 0, "LPM trie operations differ from the kernel");
}

#[test]
fn full_trie_replaces_in_place_and_refuses_new_prefixes() {
    if !kernel::oracle_or_skip() {
        return;
    }
    let n = kernel::possible_cpus().unwrap();
    let d = def(8, 4, 2, create::NO_PREALLOC);
    let k = KernelMap::create(d).unwrap();
    let s = diff::sim_map(d, n).unwrap();
    let a = key(24, &[10, 0, 0, 0]);
    let b = key(24, &[10, 0, 1, 0]);
    let c = key(16, &[10, 0, 0, 0]);
    for m in [&k as &dyn HostMap, &s] {
        m.update(&a, &1u32.to_ne_bytes(), 0).unwrap();
        m.update(&b, &2u32.to_ne_bytes(), 0).unwrap();
        assert_eq!(m.update(&c, &3u32.to_ne_bytes(), 0), Err(Errno::ENOSPC));
        m.update(&b, &4u32.to_ne_bytes(), 2).unwrap();
        assert_eq!(
            m.lookup(&key(32, &[10, 0, 1, 7]), 0).unwrap(),
            4u32.to_ne_bytes()
        );
        assert_eq!(m.lookup(&key(32, &[10, 0, 2, 7]), 0), Err(Errno::ENOENT));
    }
}
