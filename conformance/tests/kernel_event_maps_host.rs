//! Checks the host side of RINGBUF and PERF_EVENT_ARRAY against the kernel: creation errnos
//! for their size and flag rules, and the errno of every element command (lookup, update,
//! delete, get_next_key, lookup_and_delete), which these maps mostly refuse.
#![cfg(target_os = "linux")]

use bpfvm_conformance::kernel::consts::{create, MapType};
use bpfvm_conformance::kernel::diff::{self, HostMap};
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
    let rb = MapType::Ringbuf;
    let pe = MapType::PerfEventArray;
    let mut differ = 0;
    for d in [
        def(rb, 0, 0, 4096, 0),
        def(rb, 0, 0, 1 << 20, 0),
        def(rb, 0, 0, 4096, create::NUMA_NODE),
        def(rb, 0, 0, 4096, create::NO_PREALLOC),
        def(rb, 0, 0, 4096, create::RDONLY_PROG),
        def(rb, 4, 0, 4096, 0),
        def(rb, 0, 4, 4096, 0),
        def(rb, 0, 0, 0, 0),
        def(rb, 0, 0, 2048, 0),
        def(rb, 0, 0, 3 * 4096, 0),
        def(pe, 4, 4, 4, 0),
        def(pe, 4, 4, 4, create::PRESERVE_ELEMS),
        def(pe, 4, 4, 4, create::MMAPABLE),
        def(pe, 4, 4, 4, create::NO_PREALLOC),
        def(pe, 4, 4, 4, create::RDONLY_PROG),
        def(pe, 4, 8, 4, 0),
        def(pe, 8, 4, 4, 0),
        def(pe, 4, 4, 0, 0),
    ] {
        let k = KernelMap::create(d).map(drop);
        let s = diff::sim_map(d, n).map(drop);
        if k != s {
            differ += 1;
            println!("DIFFERENCE {d:?}: kernel {k:?}, bpfvm {s:?}");
        }
    }
    assert_eq!(differ, 0, "creation errnos differ");
}

/// Every element command on `k` and `s`, with `key` and `value`; the differences.
fn commands_agree(k: &KernelMap, s: &bpfvm_maps::Map, key: &[u8], value: &[u8]) -> usize {
    let mut differ = 0;
    let mut check = |what: &str, kr: String, sr: String| {
        if kr != sr {
            differ += 1;
            println!(
                "DIFFERENCE {:?} {what}: kernel {kr}, bpfvm {sr}",
                s.map_type()
            );
        }
    };
    for flags in [0u64, 1, 2, 4] {
        check(
            &format!("update flags {flags}"),
            format!("{:?}", k.update(key, value, flags)),
            format!("{:?}", HostMap::update(s, key, value, flags)),
        );
    }
    check(
        "lookup",
        format!("{:?}", k.lookup(key, 0)),
        format!("{:?}", HostMap::lookup(s, key, 0)),
    );
    check(
        "delete",
        format!("{:?}", k.delete(key)),
        format!("{:?}", HostMap::delete(s, key)),
    );
    check(
        "get_next_key",
        format!("{:?}", k.get_next_key(None)),
        format!("{:?}", HostMap::get_next_key(s, None)),
    );
    check(
        "lookup_and_delete",
        format!("{:?}", k.lookup_and_delete(key, 0)),
        format!("{:?}", HostMap::lookup_and_delete(s, key, 0)),
    );
    differ
}

#[test]
fn element_commands_agree_with_the_kernel() {
    if !kernel::oracle_or_skip() {
        return;
    }
    let n = kernel::possible_cpus().unwrap();
    let mut differ = 0;
    let rb = def(MapType::Ringbuf, 0, 0, 4096, 0);
    differ += commands_agree(
        &KernelMap::create(rb).unwrap(),
        &diff::sim_map(rb, n).unwrap(),
        &[],
        &[],
    );
    let pe = def(MapType::PerfEventArray, 4, 4, 2, 0);
    let (k, s) = (
        KernelMap::create(pe).unwrap(),
        diff::sim_map(pe, n).unwrap(),
    );
    // An fd no process has open: the kernel says EBADF, bpfvm (which has no fds) too.
    let fd = 0x7fff_fff0u32.to_ne_bytes();
    differ += commands_agree(&k, &s, &1u32.to_ne_bytes(), &fd);
    differ += commands_agree(&k, &s, &2u32.to_ne_bytes(), &fd);
    assert_eq!(differ, 0, "element commands differ");
}
