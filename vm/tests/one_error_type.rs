//! Checks that every step of a test — parse an object, create its maps, prepare a program,
//! run it, read a map through a typed view — converts into `bpfvm::Error`, so a test is one
//! function returning `Result<(), bpfvm::Error>` with `?`, and the errno survives.

mod common;

use bpfvm::loader::Object;
use bpfvm::maps::{MapFlags, PerCpuArray};
use bpfvm::{CpuId, Input, Vm};

fn run_and_read() -> Result<u64, bpfvm::Error> {
    let obj = Object::from_file(common::fixture_path("percpu_counter"))?;
    let maps = obj.create_maps(2)?;
    let vm = Vm::builder().cpus(2).build();
    let prog = vm.load(obj.vm_program("count_packets", &maps)?)?;
    vm.run(&prog, CpuId(1), &Input::packet(vec![0u8; 64]))?;
    let counts = PerCpuArray::<_, u64>::new(maps.get("counts").expect("counts").clone())?;
    Ok(counts.get_value(0, MapFlags::cpu(1))?)
}

#[test]
fn every_step_converts_into_one_error_type() -> Result<(), bpfvm::Error> {
    assert_eq!(run_and_read()?, 1);
    // Each kind of failure keeps its errno through the conversion.
    let missing: Result<Object, bpfvm::Error> =
        Object::from_file("/nonexistent/x.o").map_err(Into::into);
    assert!(matches!(missing, Err(bpfvm::Error::Load(_))));
    let vm = Vm::builder().cpus(1).build();
    let e: bpfvm::Error = vm
        .run(
            &vm.load(bpfvm::Program::new(
                common::asm("ldxb r0, [r1+100]\nexit"),
                bpfvm::ProgramType::Unspecified,
            ))?,
            CpuId(0),
            &Input::context(vec![0u8; 4]),
        )
        .unwrap_err()
        .into();
    assert_eq!(e.errno(), 14, "{e}");
    let e: bpfvm::Error = vm
        .run(
            &vm.load(bpfvm::Program::new(
                common::asm("mov64 r0, 0\nexit"),
                bpfvm::ProgramType::Unspecified,
            ))?,
            CpuId(5),
            &Input::empty(),
        )
        .unwrap_err()
        .into();
    assert_eq!(e.errno(), 6, "{e}");
    Ok(())
}
