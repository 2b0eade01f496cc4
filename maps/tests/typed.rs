//! Typed views (aya style): size and type checks at construction, PerCpuValues length
//! checks, and the single-CPU / all-CPUs calls built on MapFlags.

mod common;
use std::sync::Arc;

use bpfvm_maps::{
    Array, HashMap, Map, MapFlags, MapSpec, MapType, PerCpuArray, PerCpuHashMap, PerCpuValues,
};
use common::*;

#[test]
fn views_check_type_and_sizes_once() {
    let m = map(MapType::PercpuArray, 8, 4, 2);
    assert!(PerCpuArray::<_, u64>::new(&m).is_ok());
    assert_eq!(PerCpuArray::<_, u32>::new(&m).unwrap_err().errno(), 22);
    assert_eq!(Array::<_, u64>::new(&m).unwrap_err().errno(), 22);
    let h = map(MapType::Hash, 8, 4, 2);
    assert!(HashMap::<_, u32, u64>::new(&h).is_ok());
    assert_eq!(HashMap::<_, u64, u64>::new(&h).unwrap_err().errno(), 22);
    assert_eq!(
        PerCpuHashMap::<_, u32, u64>::new(&h).unwrap_err().errno(),
        22
    );
}

#[test]
fn per_cpu_values_length_is_checked() {
    assert_eq!(
        PerCpuValues::new(4, vec![1u64, 2, 3]).unwrap_err().errno(),
        22
    );
    let v = PerCpuValues::new(2, vec![1u64, 2]).unwrap();
    let m = map(MapType::PercpuArray, 8, 4, 3);
    let a = PerCpuArray::<_, u64>::new(&m).unwrap();
    assert_eq!(a.set(0, &v, MapFlags::ANY).unwrap_err().errno(), 22);
}

#[test]
fn percpu_array_view_with_cpu_flags() {
    let m = Arc::new(map(MapType::PercpuArray, 4, 3, 4));
    let a = PerCpuArray::<_, u32>::new(m.clone()).unwrap();
    a.set_value(1, 9, MapFlags::ALL_CPUS).unwrap();
    a.set_value(1, 5, MapFlags::cpu(3)).unwrap();
    assert_eq!(a.get(1).unwrap().into_vec(), [9, 9, 9, 5]);
    assert_eq!(a.get_value(1, MapFlags::cpu(3)).unwrap(), 5);
    assert_eq!(a.get_value(1, MapFlags::cpu(4)).unwrap_err().errno(), 34);
    // One CPU's value needs BPF_F_CPU: without it (or with ALL_CPUS) it is EINVAL.
    assert_eq!(a.get_value(1, MapFlags::ANY).unwrap_err().errno(), 22);
    assert_eq!(a.get_value(1, MapFlags::ALL_CPUS).unwrap_err().errno(), 22);
    assert_eq!(a.set_value(1, 5, MapFlags::ANY).unwrap_err().errno(), 22);
    assert_eq!(
        a.set_value(1, 5, MapFlags::cpu(0) | MapFlags::ALL_CPUS)
            .unwrap_err()
            .errno(),
        22
    );
    a.set(
        2,
        &PerCpuValues::new(4, vec![1, 2, 3, 4]).unwrap(),
        MapFlags::EXIST,
    )
    .unwrap();
    let all: Vec<Vec<u32>> = a.iter().map(|v| v.unwrap().into_vec()).collect();
    assert_eq!(all, [vec![0; 4], vec![9, 9, 9, 5], vec![1, 2, 3, 4]]);
    assert_eq!(
        a.set(3, &PerCpuValues::from_elem(4, 0), MapFlags::ANY)
            .unwrap_err()
            .errno(),
        7
    );
}

#[test]
fn percpu_hash_view() {
    for t in [MapType::PercpuHash, MapType::LruPercpuHash] {
        let m = Map::create(MapSpec::new(t, 8, 16, 8), 2).unwrap();
        let h = PerCpuHashMap::<_, u64, [u64; 2]>::new(&m).unwrap();
        h.insert_value(&7, [1, 2], MapFlags::cpu(1)).unwrap();
        assert_eq!(h.get(&7).unwrap().into_vec(), [[0, 0], [1, 2]]);
        h.insert(
            &8,
            &PerCpuValues::new(2, vec![[3, 3], [4, 4]]).unwrap(),
            MapFlags::NOEXIST,
        )
        .unwrap();
        assert_eq!(
            h.insert(&8, &PerCpuValues::from_elem(2, [0, 0]), MapFlags::NOEXIST)
                .unwrap_err()
                .errno(),
            17
        );
        assert_eq!(h.get_value(&8, MapFlags::cpu(0)).unwrap(), [3, 3]);
        h.insert_value(&8, [6, 6], MapFlags::ALL_CPUS | MapFlags::EXIST)
            .unwrap_err();
        h.insert_value(&8, [6, 6], MapFlags::ALL_CPUS).unwrap();
        let mut keys: Vec<u64> = h.keys().map(|k| k.unwrap()).collect();
        keys.sort();
        assert_eq!(keys, [7, 8]);
        assert_eq!(h.iter().count(), 2);
        h.remove(&7).unwrap();
        assert_eq!(h.get(&7).unwrap_err().errno(), 2);
    }
}

#[test]
fn shared_views() {
    let m = map(MapType::Array, 8, 4, 2);
    let a = Array::<_, u64>::new(&m).unwrap();
    a.set(3, 33, MapFlags::ANY).unwrap();
    assert_eq!(a.get(3).unwrap(), 33);
    assert_eq!(a.set(0, 1, MapFlags::NOEXIST).unwrap_err().errno(), 17);
    assert_eq!(
        a.iter().map(|v| v.unwrap()).collect::<Vec<_>>(),
        [0, 0, 0, 33]
    );
    for t in [MapType::Hash, MapType::LruHash] {
        let m = map(t, 8, 4, 2);
        let h = HashMap::<_, u32, u64>::new(&m).unwrap();
        h.insert(&1, 10, MapFlags::ANY).unwrap();
        h.insert(&2, 20, MapFlags::ANY).unwrap();
        assert_eq!(h.get(&2).unwrap(), 20);
        assert_eq!(h.insert(&3, 1, MapFlags::EXIST).unwrap_err().errno(), 2);
        let mut all: Vec<(u32, u64)> = h.iter().map(|p| p.unwrap()).collect();
        all.sort();
        assert_eq!(all, [(1, 10), (2, 20)]);
        h.remove(&1).unwrap();
        assert_eq!(h.remove(&1).unwrap_err().errno(), 2);
        assert_eq!(h.insert(&1, 1, MapFlags::cpu(0)).unwrap_err().errno(), 22);
    }
}
