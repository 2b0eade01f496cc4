//! Host-side value buffer sizes and layout (spec §3): `SLOT * N` full buffers, exact `VS`
//! with cpu flags, zero padding, and the batch strides.

mod common;
use bpfvm_maps::{MapFlags, MapType};
use common::*;

#[test]
fn full_buffer_is_slot_times_n_and_cpu_flag_is_exact_vs() {
    for t in PERCPU_TYPES {
        // VS = 12: SLOT = 16, N = 3.
        let m = map(t, 12, 4, 3);
        assert_eq!(m.host_value_size(0), 48);
        assert_eq!(m.host_value_size(MapFlags::cpu(1).bits()), 12);
        assert_eq!(m.host_value_size(MapFlags::ALL_CPUS.bits()), 12);
        let v: Vec<u8> = (1..=12).collect();
        m.update(&k(0), &v, MapFlags::ALL_CPUS.bits()).unwrap();
        let mut one = [0u8; 12];
        m.lookup(&k(0), &mut one, MapFlags::cpu(2).bits()).unwrap();
        assert_eq!(&one[..], &v[..]);
        // 11 bytes are too few for a CPU lookup, 47 for a full one.
        assert_eq!(
            errno(m.lookup(&k(0), &mut [0u8; 11], MapFlags::cpu(2).bits())),
            14
        );
        assert_eq!(errno(m.lookup(&k(0), &mut [0u8; 47], 0)), 14);
        assert_eq!(
            errno(m.update(&k(0), &[0u8; 11], MapFlags::cpu(0).bits())),
            14
        );
    }
}

#[test]
fn non_percpu_maps_use_vs() {
    for t in [MapType::Array, MapType::Hash, MapType::LruHash] {
        let m = map(t, 12, 4, 3);
        assert_eq!(m.host_value_size(0), 12);
        let v: Vec<u8> = (1..=12).collect();
        m.update(&k(0), &v, 0).unwrap();
        let mut out = [0u8; 12];
        m.lookup(&k(0), &mut out, 0).unwrap();
        assert_eq!(&out[..], &v[..]);
    }
}

#[test]
fn full_buffer_layout_is_cpu_i_at_i_times_slot_with_zero_padding() {
    for t in PERCPU_TYPES {
        let m = map(t, 4, 4, 2);
        // Input padding (bytes 4..8 of each slot) is ignored.
        let mut input = vec![0xAAu8; 16];
        input[0..4].copy_from_slice(&1u32.to_ne_bytes());
        input[8..12].copy_from_slice(&2u32.to_ne_bytes());
        m.update(&k(1), &input, 0).unwrap();
        let mut out = [0xFFu8; 16];
        m.lookup(&k(1), &mut out, 0).unwrap();
        let mut expect = [0u8; 16];
        expect[0..4].copy_from_slice(&1u32.to_ne_bytes());
        expect[8..12].copy_from_slice(&2u32.to_ne_bytes());
        assert_eq!(out, expect, "{t:?}");
    }
}

#[test]
fn full_update_reads_the_whole_buffer_even_the_last_padding() {
    for t in PERCPU_TYPES {
        let m = map(t, 4, 4, 2);
        // 12 bytes hold both values but miss the last CPU's padding: EFAULT.
        assert_eq!(errno(m.update(&k(0), &[1u8; 12], 0)), 14, "{t:?}");
        // A missing element was not created.
        if t.is_hash() {
            assert_eq!(m.element_count(), 0);
        }
    }
}

#[test]
fn lookup_and_delete_returns_the_full_buffer() {
    for t in [MapType::PercpuHash, MapType::LruPercpuHash] {
        let m = map(t, 8, 4, 2);
        m.update(&k(3), &full(&[10, 20]), 0).unwrap();
        // A VS-sized buffer is too short, and nothing is deleted.
        assert_eq!(errno(m.lookup_and_delete(&k(3), &mut [0u8; 8], 0)), 14);
        assert_eq!(m.element_count(), 1);
        let mut out = [0u8; 16];
        m.lookup_and_delete(&k(3), &mut out, 0).unwrap();
        assert_eq!(u64s(&out), [10, 20]);
        assert_eq!(m.element_count(), 0);
    }
}

#[test]
fn batch_value_stride_follows_elem_flags() {
    for t in PERCPU_TYPES {
        // VS = 4, SLOT = 8, N = 2.
        let m = map(t, 4, 4, 2);
        let keys: Vec<u8> = [0u32, 1, 2].iter().flat_map(|i| i.to_ne_bytes()).collect();
        // ALL_CPUS: stride VS = 4.
        let vals: Vec<u8> = [7u32, 8, 9].iter().flat_map(|i| i.to_ne_bytes()).collect();
        let mut count = 3;
        m.update_batch(&keys, &vals, &mut count, MapFlags::ALL_CPUS.bits(), 0)
            .unwrap();
        assert_eq!(count, 3);
        // CPU=1 lookups: stride VS.
        let (mut out, mut ks, mut vs) = ([0u8; 4], [0u8; 12], [0u8; 12]);
        let mut count = 3;
        let r = m.lookup_batch(
            None,
            &mut out,
            &mut ks,
            &mut vs,
            &mut count,
            MapFlags::cpu(1).bits(),
            0,
        );
        assert!(r.is_ok() || r.unwrap_err().errno() == 2);
        assert_eq!(count, 3);
        let mut got: Vec<(u32, u32)> = (0..3)
            .map(|i| {
                let key = u32::from_ne_bytes(ks[i * 4..i * 4 + 4].try_into().unwrap());
                let val = u32::from_ne_bytes(vs[i * 4..i * 4 + 4].try_into().unwrap());
                (key, val)
            })
            .collect();
        got.sort();
        assert_eq!(got, [(0, 7), (1, 8), (2, 9)], "{t:?}");
        // No flags: stride SLOT * N = 16.
        let (mut ks, mut vs) = ([0u8; 12], [0u8; 48]);
        let mut count = 3;
        let _ = m.lookup_batch(None, &mut out, &mut ks, &mut vs, &mut count, 0, 0);
        assert_eq!(count, 3);
        for i in 0..3 {
            let key = u32::from_ne_bytes(ks[i * 4..i * 4 + 4].try_into().unwrap());
            let e = &vs[i * 16..i * 16 + 16];
            let cpu0 = u32::from_ne_bytes(e[0..4].try_into().unwrap());
            let cpu1 = u32::from_ne_bytes(e[8..12].try_into().unwrap());
            assert_eq!((cpu0, cpu1), (7 + key, 7 + key));
            assert_eq!(&e[4..8], &[0; 4]);
        }
    }
}
