//! One load step (`ObjectLoader` → `LoadedObject`): global variables set before load
//! (`.rodata` included, checked against their BTF size), maps created for the VM's CPU
//! count, programs and typed maps found by name, `.data`/`.bss` variables read and written
//! between runs, and every misuse an error naming what was wrong. Maps made for another CPU
//! count than the VM's are refused at load.

use bpfvm::loader::Object;
use bpfvm::{CpuId, Error, Input, ObjectError, ObjectLoader, PrepareError, Vm};

fn fixture(name: &str) -> Object {
    let path = format!("{}/tests/fixtures/{name}.o", env!("CARGO_MANIFEST_DIR"));
    Object::from_file(path).unwrap()
}

fn frame() -> Input {
    Input::packet(vec![0u8; 60])
}

#[test]
fn rodata_set_before_load_configures_the_program() -> Result<(), Error> {
    let vm = Vm::builder().cpus(2).build();
    let bpf = ObjectLoader::new(fixture("globals"))
        .set_global("factor", &7u64)?
        .set_global("greeting", b"Bpfvm!\0\0")?
        .load(&vm)?;
    let bump = bpf.program("bump")?;
    // counter += step (3) * factor (7); returns counter + greeting[0] - 'b'.
    let out = vm.run(bump, CpuId(1), &frame())?;
    assert_eq!(out.retval as i32, 21 + i32::from(b'B') - i32::from(b'b'));
    assert_eq!(bpf.global::<u64>("counter")?, 21);
    assert_eq!(bpf.global::<u64>("factor")?, 7);
    assert_eq!(&bpf.global::<[u8; 8]>("greeting")?, b"Bpfvm!\0\0");
    assert!(bpf.map(".rodata")?.is_frozen(), ".rodata is frozen at load");

    // .data and .bss change between runs; .rodata does not.
    bpf.set_global("step", &10u64)?;
    bpf.set_global("counter", &1000u64)?;
    vm.run(bump, CpuId(0), &frame())?;
    assert_eq!(bpf.global::<u64>("counter")?, 1070);
    assert_eq!(bpf.global::<u64>("runs")?, 2, ".data.stats");
    let e = bpf.set_global("factor", &1u64).unwrap_err();
    assert!(matches!(
        e,
        Error::Object(ObjectError::ReadOnlyVariable { .. })
    ));
    assert_eq!(e.errno(), 1);
    assert!(e.to_string().contains("before load"), "{e}");
    Ok(())
}

#[test]
fn misused_names_and_sizes_are_errors_naming_the_choices() {
    let loader = ObjectLoader::new(fixture("globals"));
    let e = loader.set_global("factor", &7u32).unwrap_err();
    assert_eq!(e.errno(), 22);
    assert!(
        e.to_string()
            .contains("factor is 8 bytes in BTF, but the value given is 4"),
        "{e}"
    );
    let loader = ObjectLoader::new(fixture("globals"));
    let e = loader.set_global("fator", &7u64).unwrap_err();
    assert_eq!(e.errno(), 2);
    let msg = e.to_string();
    assert!(
        msg.contains("no global variable fator") && msg.contains("factor"),
        "{msg}"
    );

    let vm = Vm::builder().cpus(1).build();
    let bpf = ObjectLoader::new(fixture("globals")).load(&vm).unwrap();
    let e = bpf.program("bmup").unwrap_err();
    assert_eq!(e.errno(), 2);
    assert!(e.to_string().contains("bump, write_rodata"), "{e}");
    let e = bpf.map("cnt").unwrap_err();
    assert!(e.to_string().contains("no map cnt"), "{e}");
    // A typed view of the wrong shape is the maps crate's EINVAL.
    let e = bpf.percpu_array::<u64>(".bss").unwrap_err();
    assert_eq!(e.errno(), 22, "{e}");
}

#[test]
fn typed_maps_by_name_with_per_cpu_sums() -> Result<(), Error> {
    let vm = Vm::builder().cpus(4).build();
    let bpf = ObjectLoader::from_file(format!(
        "{}/tests/fixtures/percpu_counter.o",
        env!("CARGO_MANIFEST_DIR")
    ))?
    .load(&vm)?;
    let prog = bpf.program("count_packets")?;
    vm.run_on_all(prog, 5, &frame())?;
    vm.run(prog, CpuId(3), &frame())?;
    let counts = bpf.percpu_array::<u64>("counts")?.get(0)?;
    assert_eq!(counts.to_vec(), [5, 5, 5, 6]);
    assert_eq!(counts.sum(), 21);
    assert_eq!(bpf.array::<u64>("total")?.get(0)?, 21);
    assert_eq!(
        bpf.programs().filter(|(_, p)| p.is_ok()).count(),
        bpf.object().programs().len()
    );
    Ok(())
}

#[test]
fn maps_made_for_another_cpu_count_are_refused_at_load() {
    let obj = fixture("percpu_counter");
    let maps = obj.create_maps(4).unwrap();
    let vm = Vm::builder().cpus(8).build();
    let e = vm
        .load(obj.vm_program("count_packets", &maps).unwrap())
        .unwrap_err();
    assert!(
        matches!(
            &e,
            PrepareError::CpuCountMismatch {
                map_cpus: 4,
                vm_cpus: 8,
                ..
            }
        ),
        "{e}"
    );
    assert_eq!(e.errno(), 22);
    assert!(
        e.to_string()
            .contains("created for 4 cpus but the vm has 8"),
        "{e}"
    );
}
