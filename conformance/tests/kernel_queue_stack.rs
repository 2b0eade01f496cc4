//! Checks QUEUE and STACK against the kernel: creation errnos, then random sequences of host
//! pushes (every flag), peeks, pops, deletes and `get_next_key` calls on a kernel map and a
//! bpfvm map of the same shape, comparing every errno and value.
#![cfg(target_os = "linux")]

use bpfvm_conformance::kernel::consts::{create, MapType};
use bpfvm_conformance::kernel::diff::{self, HostMap, SplitMix64};
use bpfvm_conformance::kernel::{self, KernelMap, MapDef};

fn def(map_type: MapType, key_size: u32, value_size: u32, max_entries: u32, flags: u32) -> MapDef {
    MapDef {
        map_type,
        key_size,
        value_size,
        max_entries,
        map_flags: flags,
    }
}

#[test]
fn creation_errnos_agree_with_the_kernel() {
    if !kernel::oracle_or_skip() {
        return;
    }
    let n = kernel::possible_cpus().unwrap();
    let mut differ = 0;
    for t in [MapType::Queue, MapType::Stack] {
        for d in [
            def(t, 0, 8, 4, 0),
            def(t, 4, 8, 4, 0),
            def(t, 0, 0, 4, 0),
            def(t, 0, 8, 0, 0),
            def(t, 0, 8, 4, create::NO_PREALLOC),
            def(t, 0, 8, 4, create::RDONLY_PROG),
            def(t, 0, 8, 4, create::RDONLY_PROG | create::WRONLY_PROG),
            def(t, 0, 8, 4, create::ZERO_SEED),
            def(t, 0, 4 << 20, 1, 0),
            def(t, 0, (4 << 20) + 1, 1, 0),
        ] {
            let k = KernelMap::create(d).map(drop);
            let s = diff::sim_map(d, n).map(drop);
            if k != s {
                differ += 1;
                println!("DIFFERENCE {d:?}: kernel {k:?}, bpfvm {s:?}");
            }
        }
    }
    assert_eq!(differ, 0, "creation errnos differ");
}

fn ops_agree(t: MapType, max_entries: u32, seed: u64, steps: usize) -> usize {
    let n = kernel::possible_cpus().unwrap();
    let d = def(t, 0, 4, max_entries, 0);
    let k = KernelMap::create(d).unwrap();
    let s = diff::sim_map(d, n).unwrap();
    let mut r = SplitMix64::new(seed);
    let mut differ = 0;
    let mut check = |what: String, kr: &dyn std::fmt::Debug, sr: &dyn std::fmt::Debug| {
        let (kr, sr) = (format!("{kr:?}"), format!("{sr:?}"));
        if kr != sr {
            differ += 1;
            if differ <= 10 {
                println!("DIFFERENCE {t:?} {what}: kernel {kr}, bpfvm {sr}");
            }
        }
    };
    for step in 0..steps {
        let flags = *r.pick(&[0u64, 0, 0, 1, 2, 2, 3, 4, 8]);
        match r.below(8) {
            0..=2 => {
                let v = (step as u32).to_ne_bytes();
                let kr = k.update(&[], &v, flags);
                let sr = HostMap::update(&s, &[], &v, flags);
                check(format!("step {step} push flags {flags}"), &kr, &sr);
            }
            3 => {
                let f = flags & 4;
                check(
                    format!("step {step} peek flags {f}"),
                    &k.lookup(&[], f),
                    &HostMap::lookup(&s, &[], f),
                );
            }
            4..=5 => {
                let f = if r.below(4) == 0 { flags } else { 0 };
                check(
                    format!("step {step} pop flags {f}"),
                    &k.lookup_and_delete(&[], f),
                    &HostMap::lookup_and_delete(&s, &[], f),
                );
            }
            6 => check(
                format!("step {step} delete"),
                &k.delete(&[]),
                &HostMap::delete(&s, &[]),
            ),
            _ => check(
                format!("step {step} get_next_key"),
                &k.get_next_key(None),
                &HostMap::get_next_key(&s, None),
            ),
        }
    }
    println!("{t:?} max_entries {max_entries} seed {seed}: {steps} ops, {differ} differences");
    differ
}

#[test]
fn random_operations_agree_with_the_kernel() {
    if !kernel::oracle_or_skip() {
        return;
    }
    let mut differ = 0;
    for (i, t) in [MapType::Queue, MapType::Stack].into_iter().enumerate() {
        for (max, seed) in [(1, 1u64), (3, 2), (7, 3)] {
            differ += ops_agree(t, max, seed + 10 * i as u64, 2000);
        }
    }
    assert_eq!(differ, 0, "queue/stack operations differ from the kernel");
}
