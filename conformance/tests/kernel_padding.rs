//! Checks the one host-side per-CPU difference spec §3 predicts between Linux 6.18 and the
//! merged series: padding bytes (`VS..SLOT` of each CPU) written by a full-buffer update
//! read back unchanged on 6.18 (`copy_map_value_long`) but as zeros in bpfvm, which follows
//! the series (`copy_map_value`, `VS` bytes); the value bytes agree.
#![cfg(target_os = "linux")]

use bpfvm_conformance::kernel::consts::MapType;
use bpfvm_conformance::kernel::diff::{self, HostMap};
use bpfvm_conformance::kernel::{self, KernelMap, MapDef};

#[test]
fn host_written_padding_is_kept_by_6_18_and_zeroed_by_bpfvm() {
    if !kernel::oracle_or_skip() {
        return;
    }
    let n = kernel::possible_cpus().unwrap();
    for ty in [
        MapType::PercpuArray,
        MapType::PercpuHash,
        MapType::LruPercpuHash,
    ] {
        let def = MapDef {
            map_type: ty,
            key_size: 4,
            value_size: 12,
            max_entries: 4,
            map_flags: 0,
        };
        let k = KernelMap::create(def).unwrap();
        let s = diff::sim_map(def, n).unwrap();
        let key = 1u32.to_ne_bytes();
        let full = vec![0x5A; k.value_size_for(0)];
        k.update(&key, &full, 0).unwrap();
        HostMap::update(&s, &key, &full, 0).unwrap();
        let from_kernel = k.lookup(&key, 0).unwrap();
        let from_bpfvm = HostMap::lookup(&s, &key, 0).unwrap();
        assert_eq!(from_kernel, full, "{ty:?}: 6.18 keeps the padding");
        for cpu in 0..n as usize {
            let slot = &from_bpfvm[cpu * 16..cpu * 16 + 16];
            assert_eq!(&slot[..12], &[0x5A; 12], "{ty:?}: value bytes");
            assert_eq!(&slot[12..], &[0; 4], "{ty:?}: bpfvm zeroes the padding");
        }
    }
}
