//! Per-map creation (tests/fixtures/src/zero_entries.bpf.c): a map left at `max_entries` 0
//! for its tool's loader to size is left out and its references poisoned, so only the
//! program that uses it is refused, by the verifier, with an error naming the map and the
//! reason, through `ObjectLoader::load` and `Object::create_maps_per_map`; sized first
//! (`set_max_entries`, `set_value_size`), everything loads. (Dead references:
//! loader_dead_map.rs.)

mod common;

use bpfvm::loader::LoadError;
use bpfvm::{CpuId, Input, ObjectLoader, Vm};

fn xdp_frame() -> Input {
    Input::packet(vec![0u8; 64])
}

#[test]
fn an_uncreatable_map_refuses_only_its_programs() {
    let vm = Vm::builder().cpus(1).build();
    let obj = ObjectLoader::new(common::fixture("zero_entries"))
        .load(&vm)
        .expect("the object loads without the map");
    let err = obj.program("remember").unwrap_err();
    assert_eq!(err.errno(), 22, "{err}");
    let text = err.to_string();
    assert!(
        text.contains(
            "invalid func unknown#2001000001: BPF map 'sized_later' is referenced but \
             wasn't created (cannot create map sized_later: "
        ) && text.contains("max_entries"),
        "{text}"
    );
    // The other program loads and runs; the refused map is listed with its error.
    let count = obj.program("count").unwrap();
    vm.run(count, CpuId(0), &xdp_frame()).unwrap();
    assert_eq!(obj.array::<u64>("counter").unwrap().get(0).unwrap(), 1);
    assert!(obj.map("sized_later").is_err());
    let refused: Vec<_> = obj
        .object()
        .refused_maps()
        .iter()
        .map(|m| &*m.name)
        .collect();
    assert_eq!(refused, ["sized_later"]);
    assert!(matches!(
        obj.object().refused_maps()[0].error,
        LoadError::MapCreate { .. }
    ));
}

#[test]
fn set_max_entries_sizes_a_map_before_creation() {
    let vm = Vm::builder().cpus(1).build();
    let obj = ObjectLoader::new(common::fixture("zero_entries"))
        .set_max_entries("sized_later", 8)
        .unwrap()
        .load(&vm)
        .unwrap();
    let remember = obj.program("remember").unwrap();
    vm.run(remember, CpuId(0), &xdp_frame()).unwrap();
    assert_eq!(obj.map("sized_later").unwrap().max_entries(), 8);
    assert_eq!(obj.map("sized_later").unwrap().element_count(), 1);
    assert!(ObjectLoader::new(common::fixture("zero_entries"))
        .set_max_entries("no_such_map", 8)
        .is_err());
}

#[test]
fn set_value_size_resizes_a_stack_map() {
    // trace_maps' `stacks` holds 4 frames; a tool asking for 8 sizes it to 64 bytes.
    let vm = Vm::builder()
        .cpus(1)
        .privilege(bpfvm::Privilege::Root)
        .build();
    let obj = ObjectLoader::new(common::fixture("trace_maps"))
        .set_value_size("stacks", 64)
        .unwrap()
        .load(&vm)
        .unwrap();
    let stacks = obj.map("stacks").unwrap();
    assert_eq!(stacks.value_size(), 64);
    assert_eq!(stacks.stack_trace_depth(), Ok(8));
    // A size the kernel refuses refuses only the programs using the map.
    let obj = ObjectLoader::new(common::fixture("trace_maps"))
        .set_value_size("stacks", 12)
        .unwrap()
        .load(&vm)
        .unwrap();
    assert!(obj.program("stack_ids").is_err());
    assert!(obj.program("task_filter").is_ok());
}

#[test]
fn create_maps_per_map_gives_each_program_its_answer() {
    let obj = common::fixture("zero_entries");
    // The all-or-nothing form still fails on the first map it cannot create.
    assert!(obj.create_maps(1).is_err());
    let (obj, maps) = obj.create_maps_per_map(1, &Default::default()).unwrap();
    assert_eq!(maps.all().len(), obj.maps().len());
    assert!(obj.vm_program("count", &maps).is_ok());
    // `remember` is there, its reference to the map poisoned; the verifier refuses it.
    let remember = obj.program("remember").unwrap();
    let poisoned: Vec<(usize, &str)> = remember
        .map_poisons
        .iter()
        .map(|(at, p)| (*at, p.map.as_str()))
        .collect();
    assert_eq!(poisoned, [(8, "sized_later"), (9, "sized_later")]);
    assert!(matches!(
        remember.map_poisons[0].1.reason,
        LoadError::MapCreate { .. }
    ));
    let vm = Vm::builder().cpus(1).build();
    let e = vm
        .load(obj.vm_program("remember", &maps).unwrap())
        .unwrap_err();
    assert_eq!(e.errno(), 22);
    let results: Vec<bool> = obj.program_results().map(|r| r.is_ok()).collect();
    assert_eq!(results, [true, true], "file order kept");
}
