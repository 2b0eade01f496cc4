//! `bpf_snprintf_btf` (149) end to end in bpfvm, without a kernel: a raw tracepoint program
//! shows a `struct task_struct` of `tests/fixtures/core_target.btf` held in a map value,
//! through the target BTF given with `Vm::set_target_btf` (the kernel comparison is
//! conformance/tests/kernel_snprintf_btf.rs).

mod common;

use std::sync::Arc;

use bpfvm::loader::Btf;
use bpfvm::maps::{Map, MapSpec, MapType};
use bpfvm::{CpuId, Input, Privilege, Program, ProgramType, Vm};
use common::*;

/// The map value: return value (8 bytes), the object (80), the string buffer (256).
const OBJ: usize = 8;
const STR: usize = 88;
const VALUE: usize = STR + 256;
/// `struct task_struct` in core_target.btf.
const TASK_STRUCT: i32 = 2;

/// `*(u64 *)v = bpf_snprintf_btf(v + 88, 256, &{v + 8, type_id}, 16, flags)`.
fn program(type_id: i32, flags: i32) -> Vec<u8> {
    code(&[
        ins(0x62, 10, 0, -4, 0),
        ins(0x18, 1, 1, 0, 0),
        ins(0, 0, 0, 0, 0),
        ins(0xbf, 2, 10, 0, 0),
        ins(0x07, 2, 0, 0, -4),
        ins(0x85, 0, 0, 0, 1),
        ins(0x55, 0, 0, 2, 0),
        ins(0xb7, 0, 0, 0, 0),
        EXIT,
        ins(0xbf, 6, 0, 0, 0),
        ins(0xbf, 1, 6, 0, 0),
        ins(0x07, 1, 0, 0, OBJ as i32),
        ins(0x7b, 10, 1, -24, 0),
        ins(0x62, 10, 0, -16, type_id),
        ins(0x62, 10, 0, -12, 0),
        ins(0xbf, 1, 6, 0, 0),
        ins(0x07, 1, 0, 0, STR as i32),
        ins(0xb7, 2, 0, 0, 256),
        ins(0xbf, 3, 10, 0, 0),
        ins(0x07, 3, 0, 0, -24),
        ins(0xb7, 4, 0, 0, 16),
        ins(0xb7, 5, 0, 0, flags),
        ins(0x85, 0, 0, 0, 149),
        ins(0x7b, 6, 0, 0, 0),
        ins(0xb7, 0, 0, 0, 0),
        EXIT,
    ])
}

/// Runs the program over a task with tgid 42, pid 43 and comm "bpfvm": (return, string).
fn show(vm: &Vm, type_id: i32, flags: i32) -> (i64, String) {
    let map = Arc::new(Map::create(MapSpec::new(MapType::Array, 4, VALUE as u32, 1), 1).unwrap());
    let mut value = vec![0u8; VALUE];
    value[OBJ + 20..OBJ + 24].copy_from_slice(&42i32.to_le_bytes());
    value[OBJ + 24..OBJ + 28].copy_from_slice(&43i32.to_le_bytes());
    value[OBJ + 28..OBJ + 33].copy_from_slice(b"bpfvm");
    map.update(&0u32.to_ne_bytes(), &value, 0).unwrap();
    let p = vm
        .load(
            Program::new(program(type_id, flags), ProgramType::RawTracepoint).with_map(map.clone()),
        )
        .expect("the program loads");
    let out = vm.run(&p, CpuId(0), &Input::context(Vec::new())).unwrap();
    assert_eq!(out.retval, 0);
    map.lookup(&0u32.to_ne_bytes(), &mut value, 0).unwrap();
    let ret = i64::from_le_bytes(value[..8].try_into().unwrap());
    let s = &value[STR..];
    let end = s.iter().position(|&b| b == 0).unwrap_or(s.len());
    (ret, String::from_utf8_lossy(&s[..end]).into_owned())
}

fn root_vm() -> Vm {
    Vm::builder().cpus(1).privilege(Privilege::Root).build()
}

#[test]
fn shows_a_task_struct_of_the_target_btf() {
    let btf = Btf::parse_any(include_bytes!("fixtures/core_target.btf")).unwrap();
    let vm = root_vm();
    vm.set_target_btf(Some(Arc::new(btf)));
    let want = "(struct task_struct){.tgid = (int)42,.pid = (int)43,\
                .comm = (char[])['b','p','f','v','m',],}";
    assert_eq!(
        show(&vm, TASK_STRUCT, 1),
        (want.len() as i64, want.to_string())
    );
    // BTF_F_NONAME: only the braces.
    let want = "{42,43,['b','p','f','v','m',],}";
    assert_eq!(
        show(&vm, TASK_STRUCT, 3),
        (want.len() as i64, want.to_string())
    );
    // A type id past the BTF.
    assert_eq!(show(&vm, 1000, 1).0, -2);
}

#[test]
fn without_a_target_btf_it_is_einval() {
    assert_eq!(show(&root_vm(), TASK_STRUCT, 1), (-22, String::new()));
}

/// The race explorer's CPUs get the target BTF of its configuration (`bpfvm race --btf`):
/// every CPU's `bpf_snprintf_btf` shows the task, as `Vm::set_target_btf` makes it.
#[test]
fn the_race_explorer_shows_types_of_its_target_btf() {
    use bpfvm::race::{Explorer, RaceConfig, Schedule};
    let explore = |target_btf: Option<Arc<Btf>>| {
        let map =
            Arc::new(Map::create(MapSpec::new(MapType::Array, 4, VALUE as u32, 1), 2).unwrap());
        let mut value = vec![0u8; VALUE];
        value[OBJ + 20..OBJ + 24].copy_from_slice(&42i32.to_le_bytes());
        map.update(&0u32.to_ne_bytes(), &value, 0).unwrap();
        let program =
            Program::new(program(TASK_STRUCT, 3), ProgramType::RawTracepoint).with_map(map);
        let config = RaceConfig {
            input: Input::context(Vec::new()),
            target_btf,
            ..RaceConfig::default()
        };
        let explorer = Explorer::new(program, config).unwrap();
        let exec = explorer.replay(&Schedule::new(Vec::new())).unwrap();
        let (_, value) = &exec.state.0[0].entries.as_ref().unwrap()[0];
        let ret = i64::from_le_bytes(value[..8].try_into().unwrap());
        let s = &value[STR..];
        let end = s.iter().position(|&b| b == 0).unwrap_or(s.len());
        (ret, String::from_utf8_lossy(&s[..end]).into_owned())
    };
    let btf = Btf::parse_any(include_bytes!("fixtures/core_target.btf")).unwrap();
    // Flags 3 (BTF_F_COMPACT | BTF_F_NONAME): the zero pid and empty comm are left out.
    let want = "{42,}";
    assert_eq!(
        explore(Some(Arc::new(btf))),
        (want.len() as i64, want.to_string())
    );
    assert_eq!(explore(None), (-22, String::new()));
}
