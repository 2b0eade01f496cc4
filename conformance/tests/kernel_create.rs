//! Checks map creation against the kernel: for each of the six map types, the same
//! (key_size, value_size, max_entries, map_flags) given to BPF_MAP_CREATE and to
//! `Map::create` must both succeed or fail with the same errno.
#![cfg(target_os = "linux")]

use bpfvm_conformance::kernel::consts::{create, MapType};
use bpfvm_conformance::kernel::{self, diff, Errno, KernelMap, MapDef};

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
    ];
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
    let (mut compared, mut differ, mut known_seen) = (0, 0, 0);
    for ty in MapType::ALL {
        for &(key_size, value_size, max_entries) in shapes {
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
                    match known(&def, k, s) {
                        Some(why) => {
                            known_seen += 1;
                            println!("KNOWN ({why}): {def:?}: kernel {k:?} bpfvm {s:?}");
                        }
                        None => {
                            differ += 1;
                            println!("DIFFERENCE {def:?}: kernel {k:?} bpfvm {s:?}");
                        }
                    }
                }
            }
        }
    }
    println!("{compared} creations compared, {known_seen} known differences, {differ} others");
    assert_eq!(differ, 0);
}

/// Reported bpfvm-maps bugs: hash-family creations Linux 6.18 accepts and bpfvm refuses
/// with E2BIG.
fn known(
    def: &MapDef,
    kernel: Result<(), Errno>,
    bpfvm: Result<(), Errno>,
) -> Option<&'static str> {
    if def.map_type.is_array() || kernel.is_err() || bpfvm != Err(Errno::E2BIG) {
        return None;
    }
    if def.key_size > 512 {
        return Some("bpfvm-maps bug: hash keys over 512 bytes (MAX_BPF_STACK) refused; 6.18 only limits key_size + value_size");
    }
    if def.value_size > (4 << 20) - 1024 {
        return Some("bpfvm-maps bug: extra value_size limit KMALLOC_MAX_SIZE - 512 - elem; 6.18 only limits key_size + value_size");
    }
    None
}
