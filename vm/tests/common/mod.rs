//! Shared helpers for the scenario tests: assembling, raw encodings, running on every engine,
//! loading the compiled fixture objects.
#![allow(dead_code)]

pub mod alloc_meter;
pub mod elf_writer;

use bpfvm::loader::{Object, ObjectMaps};
use bpfvm::{
    CpuId, EngineKind, Input, LoadedProgram, PrepareError, Privilege, Program, ProgramType,
    RunError, VerifierMode, Vm,
};

/// Every compiled fixture object the loader supports (`tests/fixtures/<name>.o`).
pub const FIXTURES: &[&str] = &[
    "btf_attrs",
    "cpu_steer",
    "fib",
    "globals",
    "legacy_maps",
    "lpm_firewall",
    "lru_percpu_hash",
    "multi",
    "percpu_counter",
    "percpu_hash",
    "percpu_sum",
    "pkt_ops",
    "printk",
    "ringbuf_logger",
    "signed_v4",
    "section_subprogs",
    "legacy_elf_maps",
    "subprog",
    "tc_nat",
    "tc_skb",
    "trusted",
    "xdp_lb",
    "xdp_parser",
];

/// Path of the compiled fixture `name` (`tests/fixtures/<name>.o`).
pub fn fixture_path(name: &str) -> String {
    format!("{}/tests/fixtures/{name}.o", env!("CARGO_MANIFEST_DIR"))
}

/// The bytes of the compiled fixture `name`.
pub fn fixture_bytes(name: &str) -> Vec<u8> {
    std::fs::read(fixture_path(name)).unwrap_or_else(|e| panic!("reading fixture {name}: {e}"))
}

/// The compiled fixture `name`, parsed.
pub fn fixture(name: &str) -> Object {
    Object::from_file(fixture_path(name)).unwrap_or_else(|e| panic!("{name}: {e}"))
}

/// The compiled fixture `name` with its maps created on `ncpus` CPUs and a VM of as many
/// whose loader is root (the kernel's verdict for root, as the kernel oracle loads the
/// fixtures; several use pointer arithmetic that needs `CAP_PERFMON`).
pub fn fixture_vm(name: &str, ncpus: u32) -> (Object, ObjectMaps, Vm) {
    let obj = fixture(name);
    let maps = obj
        .create_maps(ncpus)
        .unwrap_or_else(|e| panic!("{name}: creating maps: {e}"));
    (obj, maps, root_vm(ncpus))
}

/// A VM of `ncpus` CPUs giving the kernel's verdict for a root loader.
pub fn root_vm(ncpus: u32) -> Vm {
    Vm::builder().cpus(ncpus).privilege(Privilege::Root).build()
}

/// A VM of `ncpus` CPUs with bpfvm's structural checks only, for tests of run-time
/// behaviour of programs the kernel's verifier would refuse.
pub fn structural_vm(ncpus: u32) -> Vm {
    Vm::builder()
        .cpus(ncpus)
        .verifier(VerifierMode::Structural)
        .build()
}

/// Program `name` of a fixture object, linked to `maps` and loaded into `vm`.
pub fn fixture_program(vm: &Vm, obj: &Object, maps: &ObjectMaps, name: &str) -> LoadedProgram {
    let program = obj
        .vm_program(name, maps)
        .unwrap_or_else(|e| panic!("{name}: {e}"));
    vm.load(program)
        .unwrap_or_else(|e| panic!("loading {name}: {e}"))
}

/// Assembles rbpf assembly.
pub fn asm(src: &str) -> Vec<u8> {
    rbpf::assembler::assemble(src).unwrap_or_else(|e| panic!("assembling {src:?}: {e}"))
}

/// One raw instruction.
pub fn ins(opc: u8, dst: u8, src: u8, off: i16, imm: i32) -> [u8; 8] {
    let o = off.to_le_bytes();
    let i = imm.to_le_bytes();
    [opc, (src << 4) | dst, o[0], o[1], i[0], i[1], i[2], i[3]]
}

/// Concatenates raw instructions.
pub fn code(insns: &[[u8; 8]]) -> Vec<u8> {
    insns.iter().flatten().copied().collect()
}

/// `exit`.
pub const EXIT: [u8; 8] = [0x95, 0, 0, 0, 0, 0, 0, 0];

/// Loads `code` for `engine` on `vm`.
pub fn load(vm: &Vm, code: &[u8], engine: EngineKind) -> Result<LoadedProgram, PrepareError> {
    vm.load(Program::new(code.to_vec(), ProgramType::Unspecified).with_engine(engine))
}

/// Runs `code` once on CPU 0 with `ctx` on `engine`.
pub fn run_on(vm: &Vm, code: &[u8], ctx: &[u8], engine: EngineKind) -> Result<u64, String> {
    let p = load(vm, code, engine).map_err(|e| format!("prepare: {e}"))?;
    vm.run(&p, CpuId(0), &Input::context(ctx.to_vec()))
        .map(|o| o.retval)
        .map_err(|e: RunError| format!("run: {e}"))
}
