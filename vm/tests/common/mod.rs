//! Shared helpers for the scenario tests: assembling, raw encodings, running on every engine.
#![allow(dead_code)]

use bpfvm::{
    CpuId, EngineKind, Input, LoadedProgram, PrepareError, Program, ProgramType, RunError, Vm,
};

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
