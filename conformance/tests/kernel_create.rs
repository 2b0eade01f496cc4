//! Checks map creation against the kernel: for each of the six map types, the same
//! (key_size, value_size, max_entries, map_flags) given to BPF_MAP_CREATE and to
//! `Map::create` must both succeed or fail with the same errno.
#![cfg(target_os = "linux")]

use bpfvm_conformance::kernel::consts::{create, MapType};
use bpfvm_conformance::kernel::{self, diff, KernelMap, MapDef};

/// BPF_F_NUMA_NODE (spec §1.3), not used elsewhere.
const NUMA_NODE: u32 = 4;
/// BPF_F_WRONLY_PROG.
const WRONLY_PROG: u32 = 256;

#[test]
fn creation_errnos_agree_with_the_kernel() {
    if !kernel::oracle_or_skip() {
        return;
    }
    let n = kernel::possible_cpus().unwrap();
    let shapes: &[(u32, u32, u32)] = &[
        (4, 8, 4),
        (0, 8, 4),
        (4, 0, 4),
        (4, 8, 0),
        (8, 8, 4),
        (3, 5, 1),
        (512, 8, 2),
        (513, 8, 2),
        (4, 32768, 1),
        (4, 32769, 1),
        (4, 65536, 1),
        (1024, 8, 1),
        (4096, 8, 1),
        (4, (4 << 20) - 600, 1),
        (4, (4 << 20) - 100, 1),
        (4, 4 << 20, 1),
        // key_size + value_size around KMALLOC_MAX_SIZE - sizeof(struct htab_elem).
        (4, (4 << 20) - 53, 1),
        (4, (4 << 20) - 52, 1),
        (4096, (4 << 20) - 4096 - 49, 1),
        (4096, (4 << 20) - 4096 - 48, 1),
        ((4 << 20) - 49 - 8, 8, 1),
        ((4 << 20) - 48 - 8, 8, 1),
    ];
    // Hash-only shapes: the bucket array limit (16-byte buckets, at most U32_MAX bytes),
    // refused before anything is allocated (arrays of that size would really be allocated).
    let hash_shapes: &[(u32, u32, u32)] = &[(4, 8, (1 << 27) + 1), (4, 8, 1 << 31)];
    let flags = [
        0,
        create::NO_PREALLOC,
        create::NO_COMMON_LRU,
        NUMA_NODE,
        create::RDONLY,
        create::WRONLY,
        create::RDONLY | create::WRONLY,
        create::ZERO_SEED,
        create::RDONLY_PROG,
        WRONLY_PROG,
        create::RDONLY_PROG | WRONLY_PROG,
        NUMA_NODE | create::NO_COMMON_LRU,
        1 << 20,
    ];
    let (mut compared, mut differ) = (0, 0);
    for ty in MapType::ALL {
        let extra = if ty.is_array() { &[][..] } else { hash_shapes };
        for &(key_size, value_size, max_entries) in shapes.iter().chain(extra) {
            for map_flags in flags {
                let def = MapDef {
                    map_type: ty,
                    key_size,
                    value_size,
                    max_entries,
                    map_flags,
                };
                let k = KernelMap::create(def).map(drop);
                let s = diff::sim_map(def, n).map(drop);
                compared += 1;
                if k != s {
                    differ += 1;
                    println!("DIFFERENCE {def:?}: kernel {k:?} bpfvm {s:?}");
                }
            }
        }
    }
    println!("{compared} creations compared, {differ} differences");
    assert_eq!(differ, 0);
}
