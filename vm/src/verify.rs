//! Program preparation: validate raw bytecode and pre-decode it into [`Insn`]s.
//!
//! The rules are the structural checks of the kernel verifier that do not need data-flow
//! analysis: known opcodes, reserved fields zero (RFC 9669), registers `r0..=r10`, no writes
//! to `r10`, the frame pointer only copied/added/stored/compared/dereferenced, jumps and
//! calls inside the program and not into an `ld_imm64`, well-formed `ld_imm64`, no division
//! by an immediate zero, known helpers, and no falling off the end.

use rbpf::ebpf;

use bpfvm_helpers::ProgramMap;
use bpfvm_maps::MapType;

use crate::error::PrepareError;
use crate::insn::{op, Insn, RawInsn};

mod init_regs;

/// Most instruction slots a program may have (the kernel's limit for privileged programs).
pub const MAX_INSNS: usize = 1_000_000;

/// What the verifier needs to know about the program's environment.
#[derive(Clone, Copy)]
pub struct Env<'a> {
    /// Each of the program's maps.
    pub maps: &'a [MapShape],
    /// Whether a helper id is registered.
    pub helper_known: &'a dyn Fn(u32) -> bool,
}

impl std::fmt::Debug for Env<'_> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Env")
            .field("maps", &self.maps)
            .finish_non_exhaustive()
    }
}

/// What preparation checks of one of the program's maps.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct MapShape {
    /// Value size in bytes.
    pub value_size: usize,
    /// Whether `ld_imm64` may take the address of its value (`BPF_PSEUDO_MAP_VALUE`).
    pub direct_value: DirectValue,
}

/// Whether a map supports direct value access (`BPF_PSEUDO_MAP_VALUE`), as the kernel's
/// `map_direct_value_addr` decides.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum DirectValue {
    /// A single-entry `ARRAY` (global data): yes.
    Supported,
    /// Every other type (per-CPU arrays among them): "no direct value access support for
    /// this map type".
    Unsupported,
    /// An `ARRAY` with more than one entry: `ENOTSUPP`.
    NotSingleEntry,
}

impl MapShape {
    /// A single-entry array of `value_size`-byte values (global data).
    pub fn array(value_size: usize) -> MapShape {
        MapShape {
            value_size,
            direct_value: DirectValue::Supported,
        }
    }

    /// The shape of `map`. A map that does not describe itself (no [`ProgramMap::spec`])
    /// allows direct value access.
    pub fn of(map: &dyn ProgramMap) -> MapShape {
        let direct_value = match map.spec() {
            None => DirectValue::Supported,
            Some(s) if s.map_type != MapType::Array => DirectValue::Unsupported,
            Some(s) if s.max_entries != 1 => DirectValue::NotSingleEntry,
            Some(_) => DirectValue::Supported,
        };
        MapShape {
            value_size: map.value_size(),
            direct_value,
        }
    }

    /// The shapes of a program's maps.
    pub fn all(maps: &[std::sync::Arc<dyn ProgramMap>]) -> Vec<MapShape> {
        maps.iter().map(|m| MapShape::of(m.as_ref())).collect()
    }
}

/// Splits bytecode into raw instructions, checking its length.
pub fn raw_insns(bytes: &[u8]) -> Result<Vec<RawInsn>, PrepareError> {
    if bytes.is_empty() {
        return Err(PrepareError::Empty);
    }
    if bytes.len() % 8 != 0 {
        return Err(PrepareError::BadLength { len: bytes.len() });
    }
    let n = bytes.len() / 8;
    if n > MAX_INSNS {
        return Err(PrepareError::TooLong {
            len: n,
            max: MAX_INSNS,
        });
    }
    Ok((0..n).map(|pc| RawInsn::at(bytes, pc)).collect())
}

fn reserved(
    pc: usize,
    i: &RawInsn,
    field: &'static str,
    value: i64,
    expected: &'static str,
) -> PrepareError {
    PrepareError::ReservedField {
        pc,
        opcode: i.opc,
        field,
        value,
        expected,
    }
}

fn zero(pc: usize, i: &RawInsn, field: &'static str, value: i64) -> Result<(), PrepareError> {
    if value != 0 {
        return Err(reserved(pc, i, field, value, "0"));
    }
    Ok(())
}

/// Validates `raw` and returns one pre-decoded [`Insn`] per slot.
pub fn decode(raw: &[RawInsn], env: Env<'_>) -> Result<Vec<Insn>, PrepareError> {
    let n = raw.len();
    let mut out = vec![Insn::default(); n];
    let mut pc = 0;
    while pc < n {
        let i = raw[pc];
        if i.dst > 10 {
            return Err(PrepareError::BadRegister { pc, reg: i.dst });
        }
        if i.src > 10 {
            return Err(PrepareError::BadRegister { pc, reg: i.src });
        }
        let mut d = Insn {
            op: i.opc,
            dst: i.dst,
            src: i.src,
            // `off` lives in `target` until a jump or call replaces it with its target.
            target: i.off as i32 as u32,
            imm: i.imm as i64 as u64,
        };
        match i.opc & 0x07 {
            ebpf::BPF_ALU | ebpf::BPF_ALU64 => decode_alu(pc, &i, &mut d)?,
            ebpf::BPF_JMP | ebpf::BPF_JMP32 => decode_jmp(pc, &i, &mut d, n, env)?,
            ebpf::BPF_LDX => {
                match i.opc {
                    ebpf::LD_B_REG | ebpf::LD_H_REG | ebpf::LD_W_REG | ebpf::LD_DW_REG => {}
                    0x81 | 0x89 | 0x91 => {} // ldsx w/h/b (BPF_MEMSX)
                    _ => return Err(PrepareError::UnknownOpcode { pc, opcode: i.opc }),
                }
                zero(pc, &i, "imm", i.imm as i64)?;
                if i.dst == 10 {
                    return Err(PrepareError::WriteToFramePointer { pc });
                }
            }
            ebpf::BPF_ST => {
                match i.opc {
                    ebpf::ST_B_IMM | ebpf::ST_H_IMM | ebpf::ST_W_IMM | ebpf::ST_DW_IMM => {}
                    _ => return Err(PrepareError::UnknownOpcode { pc, opcode: i.opc }),
                }
                zero(pc, &i, "src", i.src as i64)?;
            }
            ebpf::BPF_STX => match i.opc {
                ebpf::ST_B_REG | ebpf::ST_H_REG | ebpf::ST_W_REG | ebpf::ST_DW_REG => {
                    zero(pc, &i, "imm", i.imm as i64)?;
                }
                ebpf::ST_W_XADD | ebpf::ST_DW_XADD => {
                    const FETCH: i32 = 0x01;
                    let fetch =
                        match i.imm {
                            0x00 | 0x40 | 0x50 | 0xa0 => false,
                            0x01 | 0x41 | 0x51 | 0xa1 | 0xe1 | 0xf1 => true,
                            v => return Err(reserved(
                                pc,
                                &i,
                                "imm",
                                v as i64,
                                "an atomic operation (add, or, and, xor [| fetch], xchg, cmpxchg)",
                            )),
                        };
                    debug_assert_eq!(fetch, i.imm & FETCH != 0);
                    if i.src == 10 {
                        return Err(PrepareError::FramePointerMisuse { pc, opcode: i.opc });
                    }
                }
                _ => return Err(PrepareError::UnknownOpcode { pc, opcode: i.opc }),
            },
            _ => {
                // BPF_LD
                if i.opc != ebpf::LD_DW_IMM {
                    return Err(match i.opc {
                        ebpf::LD_ABS_B
                        | ebpf::LD_ABS_H
                        | ebpf::LD_ABS_W
                        | ebpf::LD_IND_B
                        | ebpf::LD_IND_H
                        | ebpf::LD_IND_W => PrepareError::Unsupported {
                            pc,
                            engine: crate::engine::EngineKind::Interpreter,
                            what: "legacy packet access (ld_abs/ld_ind)",
                        },
                        _ => PrepareError::UnknownOpcode { pc, opcode: i.opc },
                    });
                }
                zero(pc, &i, "off", i.off as i64)?;
                if i.dst == 10 {
                    return Err(PrepareError::WriteToFramePointer { pc });
                }
                let Some(&t) = raw.get(pc + 1) else {
                    return Err(PrepareError::BadLdImm64 { pc });
                };
                if t.opc != 0 || t.dst != 0 || t.src != 0 || t.off != 0 {
                    return Err(PrepareError::BadLdImm64 { pc });
                }
                let hi = t.imm as u32 as u64;
                match i.src {
                    0 => d.imm = (i.imm as u32 as u64) | (hi << 32),
                    1 | 2 => {
                        let idx = i.imm as i64;
                        let count = env.maps.len();
                        if idx < 0 || idx as usize >= count {
                            return Err(PrepareError::BadMapIndex {
                                pc,
                                index: idx,
                                count,
                            });
                        }
                        d.imm = idx as u64;
                        d.src = 0;
                        if i.src == 1 {
                            zero(pc + 1, &t, "imm", t.imm as i64)?;
                            d.op = op::LD_MAP_FD;
                        } else {
                            let offset = t.imm as i64;
                            let map = env.maps[idx as usize];
                            if map.direct_value == DirectValue::Unsupported {
                                return Err(PrepareError::NoDirectValueAccess {
                                    pc,
                                    index: idx as usize,
                                });
                            }
                            if map.direct_value == DirectValue::NotSingleEntry
                                || offset < 0
                                || offset as usize >= map.value_size
                            {
                                return Err(PrepareError::BadMapValueOffset {
                                    pc,
                                    index: idx as usize,
                                    offset,
                                    value_size: map.value_size,
                                    single_entry: map.direct_value == DirectValue::Supported,
                                });
                            }
                            d.op = op::LD_MAP_VALUE;
                            d.target = offset as u32;
                        }
                    }
                    4 => {
                        // A function's address (a callback): the function starts at
                        // `pc + imm + 1`, as a bpf-to-bpf call's target.
                        zero(pc + 1, &t, "imm", t.imm as i64)?;
                        d.op = op::LD_FUNC;
                        d.src = 0;
                        d.imm = 0;
                        d.target = target(pc, i.imm as i64, n)?;
                    }
                    s => {
                        return Err(reserved(
                            pc,
                            &i,
                            "src",
                            s as i64,
                            "0 (imm64), 1 (map), 2 (map value) or 4 (function)",
                        ))
                    }
                }
                out[pc] = d;
                out[pc + 1] = Insn {
                    op: op::LD_IMM64_TAIL,
                    ..Insn::default()
                };
                pc += 2;
                continue;
            }
        }
        out[pc] = d;
        pc += 1;
    }
    // Jump targets must not land on the second slot of an ld_imm64.
    for (pc, d) in out.iter().enumerate() {
        let is_jump = matches!(d.op & 0x07, ebpf::BPF_JMP | ebpf::BPF_JMP32)
            && !matches!(d.op, ebpf::CALL | ebpf::EXIT | ebpf::TAIL_CALL)
            || d.op == op::CALL_LOCAL
            || d.op == op::LD_FUNC;
        if is_jump && out[d.target as usize].op == op::LD_IMM64_TAIL {
            return Err(PrepareError::JumpIntoLdImm64 {
                pc,
                target: d.target as usize,
            });
        }
    }
    let last = n - 1;
    let l = out[last];
    let ends = l.op == ebpf::EXIT || l.op == ebpf::JA || l.op == (ebpf::BPF_JMP32 | ebpf::BPF_JA);
    if !ends || l.op == op::LD_IMM64_TAIL {
        return Err(PrepareError::FallsOffEnd { pc: last });
    }
    init_regs::check_initialized(&out)?;
    Ok(out)
}

fn decode_alu(pc: usize, i: &RawInsn, d: &mut Insn) -> Result<(), PrepareError> {
    let is64 = i.opc & 0x07 == ebpf::BPF_ALU64;
    let reg_form = i.opc & ebpf::BPF_X != 0;
    let code = i.opc & 0xf0;
    if i.dst == 10 {
        return Err(PrepareError::WriteToFramePointer { pc });
    }
    match code {
        ebpf::BPF_END => {
            if is64 && reg_form {
                return Err(PrepareError::UnknownOpcode { pc, opcode: i.opc });
            }
            zero(pc, i, "src", i.src as i64)?;
            zero(pc, i, "off", i.off as i64)?;
            if !matches!(i.imm, 16 | 32 | 64) {
                return Err(reserved(pc, i, "imm", i.imm as i64, "16, 32 or 64"));
            }
            return Ok(());
        }
        ebpf::BPF_NEG => {
            if reg_form {
                return Err(PrepareError::UnknownOpcode { pc, opcode: i.opc });
            }
            zero(pc, i, "src", i.src as i64)?;
            zero(pc, i, "off", i.off as i64)?;
            zero(pc, i, "imm", i.imm as i64)?;
            return Ok(());
        }
        0xe0 | 0xf0 => return Err(PrepareError::UnknownOpcode { pc, opcode: i.opc }),
        _ => {}
    }
    let divmod = matches!(code, ebpf::BPF_DIV | ebpf::BPF_MOD);
    if reg_form {
        zero(pc, i, "imm", i.imm as i64)?;
        if i.src == 10
            && !(is64 && (code == ebpf::BPF_ADD || (code == ebpf::BPF_MOV && i.off == 0)))
        {
            return Err(PrepareError::FramePointerMisuse { pc, opcode: i.opc });
        }
    } else {
        zero(pc, i, "src", i.src as i64)?;
        if divmod && i.imm == 0 {
            return Err(PrepareError::DivisionByZero { pc });
        }
    }
    match (code, i.off) {
        (_, 0) => {}
        (ebpf::BPF_DIV | ebpf::BPF_MOD, 1) => {
            d.op = match (code, is64, reg_form) {
                (ebpf::BPF_DIV, false, false) => op::SDIV32_IMM,
                (ebpf::BPF_DIV, false, true) => op::SDIV32_REG,
                (ebpf::BPF_DIV, true, false) => op::SDIV64_IMM,
                (ebpf::BPF_DIV, true, true) => op::SDIV64_REG,
                (_, false, false) => op::SMOD32_IMM,
                (_, false, true) => op::SMOD32_REG,
                (_, true, false) => op::SMOD64_IMM,
                (_, true, true) => op::SMOD64_REG,
            };
        }
        (ebpf::BPF_MOV, 8 | 16) if reg_form => d.op = if is64 { op::MOVSX64 } else { op::MOVSX32 },
        (ebpf::BPF_MOV, 32) if reg_form && is64 => d.op = op::MOVSX64,
        (_, off) => {
            let expected = match code {
                ebpf::BPF_DIV | ebpf::BPF_MOD => "0 or 1",
                ebpf::BPF_MOV if reg_form && is64 => "0, 8, 16 or 32",
                ebpf::BPF_MOV if reg_form => "0, 8 or 16",
                _ => "0",
            };
            return Err(reserved(pc, i, "off", off as i64, expected));
        }
    }
    Ok(())
}

fn target(pc: usize, rel: i64, n: usize) -> Result<u32, PrepareError> {
    let t = pc as i64 + 1 + rel;
    if t < 0 || t >= n as i64 {
        return Err(PrepareError::JumpOutOfRange {
            pc,
            target: t,
            len: n,
        });
    }
    Ok(t as u32)
}

fn decode_jmp(
    pc: usize,
    i: &RawInsn,
    d: &mut Insn,
    n: usize,
    env: Env<'_>,
) -> Result<(), PrepareError> {
    let is32 = i.opc & 0x07 == ebpf::BPF_JMP32;
    let reg_form = i.opc & ebpf::BPF_X != 0;
    let code = i.opc & 0xf0;
    match code {
        ebpf::BPF_JA => {
            if reg_form {
                return Err(PrepareError::UnknownOpcode { pc, opcode: i.opc });
            }
            zero(pc, i, "src", i.src as i64)?;
            zero(pc, i, "dst", i.dst as i64)?;
            if is32 {
                // gotol: 32-bit offset in imm
                zero(pc, i, "off", i.off as i64)?;
                d.target = target(pc, i.imm as i64, n)?;
            } else {
                zero(pc, i, "imm", i.imm as i64)?;
                d.target = target(pc, i.off as i64, n)?;
            }
            d.op = ebpf::JA;
        }
        ebpf::BPF_CALL => {
            if is32 {
                return Err(PrepareError::UnknownOpcode { pc, opcode: i.opc });
            }
            zero(pc, i, "off", i.off as i64)?;
            if reg_form {
                // callx: the register (in dst) holds a helper id.
                zero(pc, i, "src", i.src as i64)?;
                zero(pc, i, "imm", i.imm as i64)?;
                if i.dst == 10 {
                    return Err(PrepareError::FramePointerMisuse { pc, opcode: i.opc });
                }
                return Ok(());
            }
            zero(pc, i, "dst", i.dst as i64)?;
            match i.src {
                0 => {
                    // libbpf's poisoned CO-RE relocation: refused by the kernel only when
                    // reachable, so a run fault here (see `op::CORE_POISON`).
                    let poison = i.imm == crate::insn::CORE_POISON_HELPER;
                    if !poison && (i.imm < 0 || !(env.helper_known)(i.imm as u32)) {
                        return Err(PrepareError::UnknownHelper {
                            pc,
                            id: i.imm as i64,
                        });
                    }
                    d.imm = i.imm as u32 as u64;
                }
                1 => {
                    d.op = op::CALL_LOCAL;
                    d.target = target(pc, i.imm as i64, n)?;
                }
                s => {
                    return Err(reserved(
                        pc,
                        i,
                        "src",
                        s as i64,
                        "0 (helper) or 1 (bpf-to-bpf call)",
                    ))
                }
            }
        }
        ebpf::BPF_EXIT => {
            if is32 || reg_form {
                return Err(PrepareError::UnknownOpcode { pc, opcode: i.opc });
            }
            zero(pc, i, "src", i.src as i64)?;
            zero(pc, i, "dst", i.dst as i64)?;
            zero(pc, i, "off", i.off as i64)?;
            zero(pc, i, "imm", i.imm as i64)?;
        }
        0xe0 if !is32 && !reg_form => {
            // may_goto (BPF_JCOND with src 0, the only condition the kernel defines).
            zero(pc, i, "src", i.src as i64)?;
            zero(pc, i, "dst", i.dst as i64)?;
            zero(pc, i, "imm", i.imm as i64)?;
            d.target = target(pc, i.off as i64, n)?;
        }
        0xe0 | 0xf0 => return Err(PrepareError::UnknownOpcode { pc, opcode: i.opc }),
        _ => {
            if reg_form {
                zero(pc, i, "imm", i.imm as i64)?;
            } else {
                zero(pc, i, "src", i.src as i64)?;
            }
            d.target = target(pc, i.off as i64, n)?;
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn prog(insns: &[[u8; 8]]) -> Result<Vec<Insn>, PrepareError> {
        let bytes: Vec<u8> = insns.iter().flatten().copied().collect();
        let raw = raw_insns(&bytes)?;
        decode(
            &raw,
            Env {
                maps: &[MapShape::array(8)],
                helper_known: &|id| id == 1,
            },
        )
    }

    const EXIT: [u8; 8] = [0x95, 0, 0, 0, 0, 0, 0, 0];

    #[test]
    fn accepts_a_minimal_program() {
        assert_eq!(prog(&[[0xb7, 0, 0, 0, 1, 0, 0, 0], EXIT]).unwrap().len(), 2);
    }

    #[test]
    fn names_the_instruction_in_errors() {
        let e = prog(&[
            [0xb7, 0, 0, 0, 1, 0, 0, 0],
            [0xff, 0, 0, 0, 0, 0, 0, 0],
            EXIT,
        ])
        .unwrap_err();
        assert_eq!(
            e,
            PrepareError::UnknownOpcode {
                pc: 1,
                opcode: 0xff
            }
        );
        assert!(e.to_string().contains("instruction 1"));
        assert!(matches!(
            prog(&[[0x37, 0, 0, 0, 0, 0, 0, 0], EXIT]),
            Err(PrepareError::DivisionByZero { pc: 0 })
        ));
        assert!(matches!(
            prog(&[[0x05, 0, 5, 0, 0, 0, 0, 0], EXIT]),
            Err(PrepareError::JumpOutOfRange { pc: 0, .. })
        ));
        assert!(matches!(
            prog(&[[0xb7, 10, 0, 0, 0, 0, 0, 0], EXIT]),
            Err(PrepareError::WriteToFramePointer { pc: 0 })
        ));
        assert!(matches!(
            prog(&[[0x18, 0, 0, 0, 0, 0, 0, 0], EXIT]),
            Err(PrepareError::BadLdImm64 { pc: 0 })
        ));
        assert!(matches!(
            prog(&[[0x4f, 0xa0, 0, 0, 0, 0, 0, 0], EXIT]),
            Err(PrepareError::FramePointerMisuse { pc: 0, .. })
        ));
        assert!(matches!(
            prog(&[[0x85, 0, 0, 0, 2, 0, 0, 0], EXIT]),
            Err(PrepareError::UnknownHelper { pc: 0, id: 2 })
        ));
        assert!(matches!(
            prog(&[[0xb7, 0, 0, 0, 0, 0, 0, 0]]),
            Err(PrepareError::FallsOffEnd { pc: 0 })
        ));
        assert!(matches!(
            prog(&[[0x18, 0, 0, 0, 0, 0, 0, 0], [0, 0, 0, 0, 0, 0, 0, 0]]),
            Err(PrepareError::FallsOffEnd { .. })
        ));
    }

    #[test]
    fn refuses_reads_of_uninitialised_registers() {
        // exit with r0 never set
        assert_eq!(
            prog(&[EXIT]),
            Err(PrepareError::UninitializedRegister { pc: 0, reg: 0 })
        );
        // r3 set on one path only
        let e = prog(&[
            [0xb7, 0, 0, 0, 0, 0, 0, 0],
            [0x15, 1, 1, 0, 0, 0, 0, 0], // if r1 == 0 goto +1
            [0xb7, 3, 0, 0, 1, 0, 0, 0],
            [0x0f, 0x30, 0, 0, 0, 0, 0, 0], // r0 += r3
            EXIT,
        ]);
        assert_eq!(
            e,
            Err(PrepareError::UninitializedRegister { pc: 3, reg: 3 })
        );
        // r1-r5 are unreadable after a helper call, r0 is set
        let e = prog(&[
            [0x85, 0, 0, 0, 1, 0, 0, 0],
            [0xbf, 0x10, 0, 0, 0, 0, 0, 0],
            EXIT,
        ]);
        assert_eq!(
            e,
            Err(PrepareError::UninitializedRegister { pc: 1, reg: 1 })
        );
        assert!(prog(&[[0x85, 0, 0, 0, 1, 0, 0, 0], EXIT]).is_ok());
    }

    #[test]
    fn a_void_subprogram_may_leave_r0_unset_until_the_caller_reads_it() {
        const CALL_2: [u8; 8] = [0x85, 0x10, 0, 0, 1, 0, 0, 0]; // a local call to pc+1+1
        const CALL_3: [u8; 8] = [0x85, 0x10, 0, 0, 2, 0, 0, 0]; // a local call to pc+1+2
        const MOV_R0_0: [u8; 8] = [0xb7, 0, 0, 0, 0, 0, 0, 0];
        // The callee never sets r0; the caller sets it before its own exit.
        assert!(prog(&[CALL_3, MOV_R0_0, EXIT, EXIT]).is_ok());
        // The caller's exit reads the callee's r0: fine when the callee sets it.
        assert!(prog(&[CALL_2, EXIT, MOV_R0_0, EXIT]).is_ok());
        assert_eq!(
            prog(&[CALL_2, EXIT, EXIT]),
            Err(PrepareError::UninitializedRegister { pc: 1, reg: 0 })
        );
        // The callee sets r0 on one path only: the caller's read is refused, its own
        // write is not.
        let callee = [
            [0x15, 1, 1, 0, 0, 0, 0, 0], // if r1 == 0 goto +1
            [0xb7, 0, 0, 0, 1, 0, 0, 0], // r0 = 1
            EXIT,
        ];
        let reads: Vec<_> = [CALL_2, EXIT].into_iter().chain(callee).collect();
        assert_eq!(
            prog(&reads),
            Err(PrepareError::UninitializedRegister { pc: 1, reg: 0 })
        );
        let writes: Vec<_> = [CALL_3, MOV_R0_0, EXIT].into_iter().chain(callee).collect();
        assert!(prog(&writes).is_ok());
        // A callback's exit reads r0 as the main program's does.
        let ld_func = [0x18, 0x41, 0, 0, 3, 0, 0, 0]; // r1 = &callback (pc+1+3 = 4)
        let e = prog(&[ld_func, [0; 8], MOV_R0_0, EXIT, EXIT]);
        assert_eq!(
            e,
            Err(PrepareError::UninitializedRegister { pc: 4, reg: 0 })
        );
    }

    #[test]
    fn refuses_jumps_into_ld_imm64() {
        let e = prog(&[
            [0x05, 0, 1, 0, 0, 0, 0, 0],
            [0x18, 0, 0, 0, 0, 0, 0, 0],
            [0, 0, 0, 0, 0, 0, 0, 0],
            EXIT,
        ])
        .unwrap_err();
        assert!(matches!(
            e,
            PrepareError::JumpIntoLdImm64 { pc: 0, target: 2 }
        ));
    }

    #[test]
    fn resolves_map_pseudo_loads() {
        let d = prog(&[
            [0x18, 0x11, 0, 0, 0, 0, 0, 0],
            [0; 8],
            [0xb7, 0, 0, 0, 0, 0, 0, 0],
            EXIT,
        ])
        .unwrap();
        assert_eq!(d[0].op, op::LD_MAP_FD);
        let e = prog(&[[0x18, 0x11, 0, 0, 1, 0, 0, 0], [0; 8], EXIT]).unwrap_err();
        assert!(matches!(e, PrepareError::BadMapIndex { index: 1, .. }));
        let e = prog(&[
            [0x18, 0x21, 0, 0, 0, 0, 0, 0],
            [0, 0, 0, 0, 8, 0, 0, 0],
            EXIT,
        ])
        .unwrap_err();
        assert!(matches!(
            e,
            PrepareError::BadMapValueOffset { offset: 8, .. }
        ));
    }
}
