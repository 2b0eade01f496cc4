//! Checks that the kernel oracle is deterministic: two kernel maps of each type given the
//! same seeded op sequence from CPU 0 agree on every outcome and end with the same
//! contents, so any difference against bpfvm comes from bpfvm.
#![cfg(target_os = "linux")]

use bpfvm_conformance::kernel::consts::{create, MapType};
use bpfvm_conformance::kernel::diff::{self, Emulated, HostMap, OpGen};
use bpfvm_conformance::kernel::{self, KernelMap, MapDef};

fn def(map_type: MapType) -> MapDef {
    MapDef {
        map_type,
        key_size: 4,
        value_size: 12,
        max_entries: 8,
        map_flags: if map_type.is_array() {
            0
        } else {
            create::ZERO_SEED
        },
    }
}

#[test]
fn two_kernel_maps_agree_on_random_sequences() {
    if !kernel::oracle_or_skip() {
        return;
    }
    kernel::pin_current_thread(0).unwrap();
    let n = kernel::possible_cpus().unwrap();
    for ty in MapType::ALL {
        let d = def(ty);
        let a = KernelMap::create(d).unwrap();
        let b = Emulated(KernelMap::create(d).unwrap());
        let mut gen = OpGen::new(42, d, n, d.max_entries + 4, 2000);
        let report = diff::run(&a, &b, &mut gen, 5);
        println!(
            "{ty:?}: {} ops, {} compared, {} emulated, {} skipped",
            report.ops, report.compared, report.emulated, report.skipped
        );
        for m in &report.mismatches {
            println!(
                "  step {}: {:?}\n    kernel {:?}\n    other  {:?}",
                m.step, m.op, m.kernel, m.sim
            );
        }
        println!("  {:?}", report.tally);
        assert!(report.mismatches.is_empty(), "{ty:?} differs");
        assert_eq!(diff::dump(&a, 100), diff::dump(&b as &dyn HostMap, 100));
    }
}

#[test]
fn two_kernel_maps_agree_on_the_scenarios() {
    if !kernel::oracle_or_skip() {
        return;
    }
    kernel::pin_current_thread(0).unwrap();
    let n = kernel::possible_cpus().unwrap();
    let mut total = diff::Report::default();
    for ty in MapType::ALL {
        for sc in diff::scenarios(ty, n) {
            let a = KernelMap::create(sc.def).unwrap();
            let b = Emulated(KernelMap::create(sc.def).unwrap());
            let report = diff::run(&a, &b, &mut sc.ops.clone().into_iter(), 5);
            for m in &report.mismatches {
                println!(
                    "{ty:?} {}: step {}: {:?}\n    kernel {:?}\n    other  {:?}",
                    sc.name, m.step, m.op, m.kernel, m.sim
                );
            }
            assert!(report.mismatches.is_empty(), "{ty:?} {} differs", sc.name);
            total.merge(report);
        }
    }
    println!(
        "{} ops, {} compared, {} emulated; {:?}",
        total.ops, total.compared, total.emulated, total.tally
    );
    for needed in [
        "lookup_batch: ENOSPC",
        "lookup_and_delete_batch: ENOSPC",
        "update: E2BIG",
        "update_batch: E2BIG",
        "update: EPERM",
        "delete_batch: ENOENT",
        "lookup_batch: ERANGE",
    ] {
        assert!(
            total.tally.contains_key(needed),
            "scenarios never reach {needed}"
        );
    }
}

#[test]
fn lru_scenarios_match_the_spec_examples_in_the_kernel() {
    if !kernel::oracle_or_skip() {
        return;
    }
    kernel::pin_current_thread(0).unwrap();
    let n = kernel::possible_cpus().unwrap();
    for ty in [MapType::LruHash, MapType::LruPercpuHash] {
        let mut sizes = Vec::new();
        for sc in diff::lru_scenarios(ty, n) {
            let a = KernelMap::create(sc.def).unwrap();
            let b = Emulated(KernelMap::create(sc.def).unwrap());
            let report = diff::run(&a, &b, &mut sc.ops.clone().into_iter(), 5);
            assert!(report.mismatches.is_empty(), "{ty:?} {}", sc.name);
            sizes.push(diff::dump(&a, 100).unwrap().len());
        }
        println!("{ty:?}: elements left {sizes:?}");
        // Spec §7.3: 50 distinct inserts from one CPU leave 14 elements (N = 2).
        if n == 2 {
            assert_eq!(sizes[0], 14);
        }
    }
}
