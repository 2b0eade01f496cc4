//! The maps of one object or VM share a memory limit (1 GiB by default,
//! `VmConfig::map_memory_limit`): objects whose maps the kernel would create but that need
//! more (40 hash maps of 64 MiB, a 1.5 GiB `.bss`) are refused with `ENOMEM` naming the map,
//! without allocating it, and fit once the limit is raised.

mod common;
use common::alloc_meter as counting;

use bpfvm::loader::LoadError;
use bpfvm::maps::{MapMemory, MapSpec, MapType, DEFAULT_MAP_MEMORY_LIMIT};
use bpfvm::{CpuId, Input, VerifierMode, Vm, VmConfig};

#[global_allocator]
static ALLOCATOR: counting::Counting = counting::Counting;

const MIB: u64 = 1 << 20;

fn enomem_map(e: LoadError) -> String {
    match e {
        LoadError::MapCreate { map, source } => {
            assert_eq!(source.errno(), 12, "{map}: {source}");
            map
        }
        other => panic!("not a map creation error: {other}"),
    }
}

#[test]
fn forty_large_hash_maps_do_not_fit_the_default_limit() {
    let obj = common::fixture("big_maps");
    assert_eq!(obj.maps().len(), 41, "40 hash maps and the .bss");
    // create_maps: one 1 GiB account for the object's maps; 15 of 64 MiB fit.
    let e = obj.create_maps(4).expect_err("2.5 GiB of maps");
    assert_eq!(enomem_map(e), "big25");
    // The same against an account we can watch: nothing stays charged after the failure.
    let memory = MapMemory::default();
    assert!(obj.create_maps_in(4, &memory).is_err());
    assert_eq!(memory.used(), 0);
}

#[test]
fn a_vm_limit_applies_to_the_maps_created_through_it() {
    let obj = common::fixture("big_maps");
    let vm = Vm::builder().cpus(2).map_memory_limit(256 * MIB).build();
    assert_eq!(vm.config().map_memory_limit, 256 * MIB);
    assert_eq!(vm.map_memory().limit(), 256 * MIB);
    let e = obj.create_maps_in(2, vm.map_memory()).unwrap_err();
    assert_eq!(enomem_map(e), "big13", "three 64 MiB maps fit in 256 MiB");
    // Vm::create_map charges the same account.
    let a = vm
        .create_map(MapSpec::new(MapType::Array, 4, 1 << 20, 200))
        .unwrap();
    assert_eq!(a.ncpus(), 2);
    assert!(a.memory().same_account(vm.map_memory()));
    let b = vm.create_map(MapSpec::new(MapType::Array, 4, 1 << 20, 100));
    assert_eq!(b.unwrap_err().errno(), 12, "200 + 100 MiB > 256 MiB");
    drop(a);
    assert_eq!(vm.map_memory().used(), 0);
    assert_eq!(
        VmConfig::default().map_memory_limit,
        DEFAULT_MAP_MEMORY_LIMIT
    );
}

#[test]
fn a_huge_bss_is_refused_without_allocating_it_and_runs_with_a_higher_limit() {
    let obj = common::fixture("big_bss");
    let (r, peak) = counting::peak_of(|| obj.create_maps(2));
    assert_eq!(enomem_map(r.unwrap_err()), "big_bss.bss");
    assert!(
        peak < MIB as usize,
        "{peak} bytes allocated for a refused map"
    );

    // With 2 GiB allowed the map exists; its zeroed arena costs no RAM until written.
    // The kernel refuses the access 1.5 GiB into a map value (over BPF_MAX_VAR_OFF) at
    // load; the structural mode lets the run-time memory path be tested.
    let vm = Vm::builder()
        .cpus(2)
        .map_memory_limit(2048 * MIB)
        .verifier(VerifierMode::Structural)
        .build();
    let maps = obj.create_maps_in(2, vm.map_memory()).unwrap();
    assert!(vm.map_memory().used() >= 1536 * MIB);
    let prog = vm.load(obj.vm_program("poke", &maps).unwrap()).unwrap();
    let out = vm
        .run(&prog, CpuId(1), &Input::packet(vec![0u8; 64]))
        .unwrap();
    assert_eq!(out.retval, 3);
}
