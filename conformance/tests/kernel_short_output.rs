//! Checks value buffers that are too short for a lookup against the kernel: both fault
//! with EFAULT; for LOOKUP_AND_DELETE_ELEM the kernel has already deleted the element
//! (it copies out last), while bpfvm keeps it (its rule: bad input never loses map data),
//! a deliberate difference this test pins down.
#![cfg(target_os = "linux")]

use bpfvm_conformance::kernel::consts::MapType;
use bpfvm_conformance::kernel::diff::{self, HostMap};
use bpfvm_conformance::kernel::{self, Errno, KernelMap};

/// A full value of 0x5A bytes with zero per-CPU padding (host-written padding reads
/// back differently on 6.18, see kernel_padding.rs).
fn value(k: &KernelMap) -> Vec<u8> {
    let vs = k.def().value_size as usize;
    let slot = if k.def().map_type.is_percpu() {
        vs.div_ceil(8) * 8
    } else {
        vs
    };
    let mut v = vec![0; k.value_size_for(0)];
    for chunk in v.chunks_mut(slot) {
        chunk[..vs].fill(0x5A);
    }
    v
}

#[test]
fn short_lookup_buffers_fault_in_both() {
    if !kernel::oracle_or_skip() {
        return;
    }
    kernel::pin_current_thread(0).unwrap();
    let n = kernel::possible_cpus().unwrap();
    for ty in MapType::ALL {
        let def = diff::default_def(ty);
        let k = KernelMap::create(def).unwrap();
        let s = diff::sim_map(def, n).unwrap();
        let key = 1u32.to_ne_bytes();
        let full = value(&k);
        k.update(&key, &full, 0).unwrap();
        HostMap::update(&s, &key, &full, 0).unwrap();
        // Every CPU's copy but the last padding byte: still EFAULT (spec §3).
        let short = full.len() - 1;
        let kernel_says = k.lookup_short(&key, 0, short, false);
        let mut buf = vec![0; short];
        let bpfvm_says = s.lookup(&key, &mut buf, 0).map_err(|e| Errno(e.errno()));
        assert_eq!(kernel_says.map(drop), Err(Errno::EFAULT), "{ty:?}");
        assert_eq!(bpfvm_says, Err(Errno::EFAULT), "{ty:?}");
        // The full-size buffer still reads the element in both.
        assert_eq!(k.lookup(&key, 0).unwrap(), full);
        assert_eq!(HostMap::lookup(&s, &key, 0).unwrap(), full);
    }
}

#[test]
fn short_lookup_and_delete_buffer_loses_the_element_only_in_the_kernel() {
    if !kernel::oracle_or_skip() {
        return;
    }
    kernel::pin_current_thread(0).unwrap();
    let n = kernel::possible_cpus().unwrap();
    for ty in MapType::ALL.into_iter().filter(|t| !t.is_array()) {
        let def = diff::default_def(ty);
        let k = KernelMap::create(def).unwrap();
        let s = diff::sim_map(def, n).unwrap();
        let key = 1u32.to_ne_bytes();
        let full = value(&k);
        k.update(&key, &full, 0).unwrap();
        HostMap::update(&s, &key, &full, 0).unwrap();
        let short = full.len() - 1;
        assert_eq!(
            k.lookup_short(&key, 0, short, true).map(drop),
            Err(Errno::EFAULT)
        );
        let mut buf = vec![0; short];
        let r = s.lookup_and_delete(&key, &mut buf, 0);
        assert_eq!(r.map_err(|e| e.errno()), Err(14), "{ty:?}");
        // The kernel deleted before copying out; bpfvm checked the buffer first.
        assert_eq!(
            k.lookup(&key, 0),
            Err(Errno::ENOENT),
            "{ty:?}: kernel keeps it?"
        );
        assert_eq!(HostMap::lookup(&s, &key, 0).unwrap(), full, "{ty:?}");
    }
}
