//! Checks bpfvm-maps against the running kernel: the same host-side operations on the same
//! map in both, comparing every errno, output buffer, batch `count` and `out_batch`.
#![cfg(target_os = "linux")]

use bpfvm_conformance::kernel::consts::{create, MapType};
use bpfvm_conformance::kernel::diff::{self, HostMap, OpGen, Report};
use bpfvm_conformance::kernel::{self, KernelMap, MapDef};

fn print_report(what: &str, r: &Report) {
    println!(
        "{what}: {} ops: {} compared with the kernel, {} with the emulated merged kernel, {} skipped; {} ambiguous LRU cpu-flag updates settled in place",
        r.ops, r.compared, r.emulated, r.skipped, r.resynced
    );
    for m in &r.mismatches {
        println!(
            "  MISMATCH at step {}{}: {:?}\n    kernel: {:?}\n    bpfvm:  {:?}",
            m.step,
            if m.emulated { " (emulated)" } else { "" },
            m.op,
            m.kernel,
            m.sim
        );
    }
}

fn setup() -> Option<u32> {
    if !kernel::oracle_or_skip() {
        return None;
    }
    // Host-side LRU inserts use the caller's CPU's free list (spec §7.6); bpfvm's host CPU
    // defaults to 0.
    kernel::pin_current_thread(0).unwrap();
    Some(kernel::possible_cpus().unwrap())
}

fn pair(def: MapDef, n: u32) -> (KernelMap, bpfvm_maps::Map) {
    (
        KernelMap::create(def).unwrap(),
        diff::sim_map(def, n).unwrap(),
    )
}

#[test]
fn scenarios_agree_with_the_kernel() {
    let Some(n) = setup() else { return };
    let mut failures = 0;
    let mut total = Report::default();
    for ty in MapType::ALL {
        for sc in diff::scenarios(ty, n) {
            let (k, s) = pair(sc.def, n);
            let r = diff::run(&k, &s, &mut sc.ops.clone().into_iter(), 3);
            let contents_k = diff::dump(&k, 1000);
            let contents_s = diff::dump(&s as &dyn HostMap, 1000);
            print_report(&format!("{ty:?} / {}", sc.name), &r);
            if contents_k != contents_s {
                println!(
                    "  CONTENTS differ:\n    kernel {contents_k:?}\n    bpfvm  {contents_s:?}"
                );
                failures += 1;
            }
            failures += r.mismatches.len();
            total.merge(r);
        }
    }
    print_report("all scenarios", &total);
    println!("  outcomes: {:?}", total.tally);
    assert_eq!(failures, 0, "bpfvm differs from the kernel");
}

#[test]
fn random_sequences_agree_with_the_kernel() {
    let Some(n) = setup() else { return };
    let mut failures = 0;
    let mut total = Report::default();
    for ty in MapType::ALL {
        if ty.is_lru() {
            continue;
        }
        let mut runs = vec![(1, diff::default_def(ty)), (2, small_def(ty))];
        if !ty.is_array() {
            // Odd and long keys: jhash over 13 bytes, jhash2 over 10 words.
            for (seed, key_size) in [(3, 13), (4, 40)] {
                runs.push((
                    seed,
                    MapDef {
                        key_size,
                        ..diff::default_def(ty)
                    },
                ));
            }
        }
        for (seed, def) in runs {
            let (k, s) = pair(def, n);
            let mut gen = OpGen::new(seed, def, n, def.max_entries + 4, 3000);
            let r = diff::run(&k, &s, &mut gen, 3);
            print_report(&format!("{ty:?} seed {seed}"), &r);
            let (ck, cs) = (diff::dump(&k, 1000), diff::dump(&s as &dyn HostMap, 1000));
            if r.mismatches.is_empty() && ck != cs {
                println!("  CONTENTS differ:\n    kernel {ck:?}\n    bpfvm  {cs:?}");
                failures += 1;
            }
            failures += r.mismatches.len();
            total.merge(r);
        }
    }
    print_report("all random sequences", &total);
    println!("  outcomes: {:?}", total.tally);
    assert_eq!(failures, 0, "bpfvm differs from the kernel");
}

/// A second shape: 6-byte keys (jhash, not jhash2) on hashes, 4-byte values without
/// per-CPU padding, 4 entries.
fn small_def(ty: MapType) -> MapDef {
    let d = diff::default_def(ty);
    MapDef {
        key_size: if ty.is_array() { 4 } else { 6 },
        value_size: 4,
        max_entries: 4,
        ..d
    }
}

#[test]
fn lru_maps_agree_with_the_kernel() {
    let Some(n) = setup() else { return };
    let mut failures = 0;
    let mut total = Report::default();
    for ty in [MapType::LruHash, MapType::LruPercpuHash] {
        for sc in diff::lru_scenarios(ty, n) {
            let (k, s) = pair(sc.def, n);
            let r = diff::run(&k, &s, &mut sc.ops.clone().into_iter(), 3);
            print_report(&format!("{ty:?} / {}", sc.name), &r);
            let (ck, cs) = (diff::dump(&k, 1000), diff::dump(&s as &dyn HostMap, 1000));
            if ck != cs {
                println!("  CONTENTS differ:\n    kernel {ck:?}\n    bpfvm  {cs:?}");
                failures += 1;
            }
            failures += r.mismatches.len();
            total.merge(r);
        }
        let no_common = |d: MapDef| MapDef {
            map_flags: d.map_flags | create::NO_COMMON_LRU,
            ..d
        };
        let runs = [
            (1, diff::default_def(ty), false),
            (2, small_def(ty), false),
            (3, diff::default_def(ty), true),
            (4, no_common(diff::default_def(ty)), true),
            (5, no_common(small_def(ty)), false),
        ];
        for (seed, def, moving) in runs {
            kernel::pin_current_thread(0).unwrap();
            let (k, s) = pair(def, n);
            let mut gen = OpGen::new(seed, def, n, def.max_entries * 3, 3000);
            if moving {
                gen = gen.moving_cpus();
            }
            let r = diff::run(&k, &s, &mut gen, 3);
            print_report(&format!("{ty:?} seed {seed}"), &r);
            let (ck, cs) = (diff::dump(&k, 1000), diff::dump(&s as &dyn HostMap, 1000));
            if r.mismatches.is_empty() && ck != cs {
                println!("  CONTENTS differ:\n    kernel {ck:?}\n    bpfvm  {cs:?}");
                failures += 1;
            }
            failures += r.mismatches.len();
            total.merge(r);
        }
    }
    print_report("all LRU sequences", &total);
    println!("  outcomes: {:?}", total.tally);
    assert_eq!(failures, 0, "bpfvm's LRU differs from the kernel");
}
