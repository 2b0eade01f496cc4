//! `bpfvm disasm`: a program's instructions after relocation.
//!
//! rbpf's disassembler prints what it knows; bpfvm formats the rest itself: atomics (rbpf
//! would call every one `stxxadd`), ISA v4 instructions (signed division, sign-extending
//! moves and loads, `bswap`, `gotol`), `callx`, bpf-to-bpf and kfunc calls, and the pseudo
//! map loads, shown with the map's name. Helper calls get the helper's name and jumps their
//! target index; `.BTF.ext` source lines are interleaved as `;` comments.

use std::fmt::Write as _;
use std::io::Write;
use std::path::Path;

use bpfvm::helpers::Registry;
use bpfvm::loader::{Object, ProgramDefinition, SharedStr, PSEUDO_MAP_FD, PSEUDO_MAP_VALUE};

use super::{object, CliError};

/// The fields of one 8-byte instruction.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Insn {
    /// Opcode byte.
    pub opc: u8,
    /// Destination register.
    pub dst: u8,
    /// Source register.
    pub src: u8,
    /// Offset.
    pub off: i16,
    /// Immediate.
    pub imm: i32,
}

impl Insn {
    /// Decodes the kernel encoding (`opcode | dst << 8 | src << 12 | off << 16 | imm << 32`).
    pub fn decode(word: u64) -> Insn {
        Insn {
            opc: word as u8,
            dst: ((word >> 8) & 0xf) as u8,
            src: ((word >> 12) & 0xf) as u8,
            off: (word >> 16) as u16 as i16,
            imm: (word >> 32) as u32 as i32,
        }
    }
}

/// Names for what an instruction refers to.
#[derive(Debug, Clone, Copy)]
pub struct Names<'a> {
    /// The program's maps, by index in its map list.
    pub maps: &'a [String],
    /// Helper names by id.
    pub helpers: &'a Registry,
    /// Subprogram names and start indices.
    pub subprograms: &'a [(SharedStr, usize)],
    /// The kfuncs the program calls, by the index its kfunc calls carry.
    pub kfuncs: &'a [bpfvm::kfunc::KfuncImport],
}

/// Whether rbpf 0.4.1's disassembler prints `opc` correctly (it panics on opcodes it does not
/// know, and misnames atomics and v4 forms, which [`format_own`] handles).
fn rbpf_knows(i: &Insn) -> bool {
    let class = i.opc & 0x07;
    let op = i.opc & 0xf0;
    match class {
        // BPF_LD: ld_imm64 and the legacy packet loads.
        0x00 => matches!(
            i.opc,
            0x18 | 0x20 | 0x28 | 0x30 | 0x38 | 0x40 | 0x48 | 0x50 | 0x58
        ),
        // BPF_LDX / BPF_ST / BPF_STX in MEM mode.
        0x01..=0x03 => matches!(i.opc & 0xe0, 0x60),
        // BPF_ALU / BPF_ALU64 (v4 forms use `off`).
        0x04 | 0x07 => match op {
            0x80 => i.opc & 0x08 == 0,
            0xd0 => class == 0x04,
            0x30 | 0x90 | 0xb0 => i.off == 0,
            0xe0 | 0xf0 => false,
            _ => true,
        },
        // BPF_JMP / BPF_JMP32.
        0x05 | 0x06 => match op {
            0x00 => i.opc == 0x05,
            0x80 => false,
            0x90 => i.opc == 0x95,
            0xe0 | 0xf0 => false,
            _ => true,
        },
        _ => false,
    }
}

fn mem(reg: u8, off: i16) -> String {
    if off >= 0 {
        format!("[r{reg}+{off:#x}]")
    } else {
        format!("[r{reg}-{:#x}]", -i32::from(off))
    }
}

fn size_suffix(opc: u8) -> &'static str {
    match opc & 0x18 {
        0x00 => "w",
        0x08 => "h",
        0x10 => "b",
        _ => "dw",
    }
}

/// Formats what rbpf cannot (or would get wrong); `None` for instructions left to rbpf.
/// `next` is the second slot of an `ld_imm64`.
pub fn format_own(pc: usize, i: &Insn, next: Option<&Insn>, names: &Names<'_>) -> Option<String> {
    let target = |delta: i64| pc as i64 + 1 + delta;
    let s = match i.opc {
        0x18 if i.src == PSEUDO_MAP_FD => {
            let name = names.maps.get(i.imm as usize).map_or("?", String::as_str);
            format!("lddw r{}, map {name}", i.dst)
        }
        0x18 if i.src == PSEUDO_MAP_VALUE => {
            let name = names.maps.get(i.imm as usize).map_or("?", String::as_str);
            let off = next.map_or(0, |n| n.imm);
            format!("lddw r{}, &map {name} value + {off}", i.dst)
        }
        0x18 if next.is_none() => format!("lddw r{} (truncated: no second slot)", i.dst),
        0x18 if i.src == bpfvm::kfunc::PSEUDO_KFUNC_ADDR => {
            let name = usize::try_from(i.imm)
                .ok()
                .and_then(|k| names.kfuncs.get(k))
                .map_or_else(|| format!("#{}", i.imm), |k| k.name.to_string());
            format!("lddw r{}, &kfunc {name}", i.dst)
        }
        0x18 if i.src == bpfvm::loader::PSEUDO_FUNC => {
            let t = target(i64::from(i.imm));
            let sub = names
                .subprograms
                .iter()
                .find(|(_, start)| *start as i64 == t)
                .map(|(n, _)| format!(" <{n}>"))
                .unwrap_or_default();
            format!("lddw r{}, func pc{:+} -> {t}{sub}", i.dst, i.imm)
        }
        0x18 if i.src != 0 => format!("lddw r{}, pseudo src {} imm {}", i.dst, i.src, i.imm),
        0xc3 | 0xdb => {
            let w = if i.opc == 0xdb { "64" } else { "32" };
            let (op, fetch) = match i.imm {
                0x00 => ("add", false),
                0x01 => ("add", true),
                0x40 => ("or", false),
                0x41 => ("or", true),
                0x50 => ("and", false),
                0x51 => ("and", true),
                0xa0 => ("xor", false),
                0xa1 => ("xor", true),
                0xe1 => ("xchg", false),
                0xf1 => ("cmpxchg", false),
                _ => return Some(format!("atomic{w} unknown op {:#x}", i.imm)),
            };
            let name = if fetch {
                format!("fetch_{op}")
            } else {
                op.to_string()
            };
            let extra = if i.imm == 0xf1 { " (compares r0)" } else { "" };
            format!("atomic{w} {name} {}, r{}{extra}", mem(i.dst, i.off), i.src)
        }
        0x85 => match i.src {
            0 => {
                let id = i.imm as u32;
                match names.helpers.get(id) {
                    _ if i.imm == bpfvm::loader::CORE_POISON_HELPER => {
                        "call 0xbad2310 (poisoned CO-RE relocation: faults if reached)".into()
                    }
                    Some(e) => format!("call {} #{id}", e.name),
                    None => format!("call helper #{id} (not registered)"),
                }
            }
            1 => {
                let t = target(i64::from(i.imm));
                let sub = names
                    .subprograms
                    .iter()
                    .find(|(_, start)| *start as i64 == t)
                    .map(|(n, _)| format!(" <{n}>"))
                    .unwrap_or_default();
                format!("call pc{:+} -> {t}{sub}", i.imm)
            }
            2 => match usize::try_from(i.imm)
                .ok()
                .and_then(|k| names.kfuncs.get(k))
            {
                Some(k) => format!("call kfunc {} #{}", k.name, i.imm),
                None => format!("call kfunc #{}", i.imm),
            },
            s => format!("call (src {s}) {:#x}", i.imm),
        },
        0x8d => format!("callx r{}", i.dst),
        0x06 => format!("gotol {:+} -> {}", i.imm, target(i64::from(i.imm))),
        0xd7 => format!("bswap{} r{}", i.imm, i.dst),
        // BPF_LDX | BPF_MEMSX.
        0x81 | 0x89 | 0x91 => format!(
            "ldxs{} r{}, {}",
            size_suffix(i.opc),
            i.dst,
            mem(i.src, i.off)
        ),
        _ => {
            let class = i.opc & 0x07;
            let alu = class == 0x04 || class == 0x07;
            let w = if class == 0x07 { "64" } else { "32" };
            let operand = if i.opc & 0x08 != 0 {
                format!("r{}", i.src)
            } else {
                format!("{:#x}", i.imm)
            };
            match i.opc & 0xf0 {
                0x30 | 0x90 if alu && i.off == 1 => {
                    let op = if i.opc & 0xf0 == 0x30 { "sdiv" } else { "smod" };
                    format!("{op}{w} r{}, {operand}", i.dst)
                }
                0xb0 if alu && i.off != 0 => {
                    format!("movsx{w} r{}, r{} (s{})", i.dst, i.src, i.off)
                }
                _ if rbpf_knows(i) => return None,
                _ => format!("unknown opcode {:#04x}", i.opc),
            }
        }
    };
    Some(s)
}

/// rbpf's text for instruction `pc` (two slots for `ld_imm64`), with jump targets added.
fn format_rbpf(pc: usize, i: &Insn, slots: &[u64]) -> String {
    let bytes: Vec<u8> = slots.iter().flat_map(|w| w.to_le_bytes()).collect();
    let text = rbpf::disassembler::to_insn_vec(&bytes)
        .into_iter()
        .next()
        .map(|h| h.desc)
        .unwrap_or_default();
    let class = i.opc & 0x07;
    let is_jump = (class == 0x05 || class == 0x06) && i.opc != 0x95 && i.opc & 0xf0 != 0x80;
    if is_jump {
        format!("{text} -> {}", pc as i64 + 1 + i64::from(i.off))
    } else {
        text
    }
}

/// The listing of `def`: one line per instruction (`index: bytes  text`), subprogram labels
/// and source lines.
pub fn listing(obj: &Object, def: &ProgramDefinition, helpers: &Registry) -> String {
    let maps: Vec<String> = def
        .maps
        .iter()
        .map(|&m| obj.maps()[m].name.to_string())
        .collect();
    let names = Names {
        maps: &maps,
        helpers,
        subprograms: &def.subprograms,
        kfuncs: &def.kfuncs,
    };
    let mut out = format!(
        "program {} (section {}, {:?}): {} instructions\n",
        def.name,
        def.section,
        def.program_type,
        def.insns.len()
    );
    let mut last_line = None;
    let mut pc = 0;
    while pc < def.insns.len() {
        if let Some((name, _)) = def.subprograms.iter().find(|(_, s)| *s == pc) {
            let _ = writeln!(out, "{name}:");
        }
        if let Some(line) = def.source_line(pc) {
            let key = (line.file.as_str(), line.line);
            if last_line != Some(key) {
                let _ = writeln!(out, "      ; {}", line.source.trim());
                last_line = Some(key);
            }
        }
        let i = Insn::decode(def.insns[pc]);
        let wide = i.opc == 0x18;
        let next = def
            .insns
            .get(pc + 1)
            .filter(|_| wide)
            .map(|&w| Insn::decode(w));
        let text = format_own(pc, &i, next.as_ref(), &names).unwrap_or_else(|| {
            let end = if wide { pc + 2 } else { pc + 1 };
            format_rbpf(pc, &i, &def.insns[pc..end])
        });
        let slots = if wide && next.is_some() { 2 } else { 1 };
        let bytes: Vec<String> = def.insns[pc]
            .to_le_bytes()
            .iter()
            .map(|b| format!("{b:02x}"))
            .collect();
        let _ = writeln!(out, "{pc:5}: {}  {text}", bytes.join(" "));
        if let Some(p) = def.core_poison(pc) {
            let _ = writeln!(out, "      ; {p}");
        }
        pc += slots;
    }
    out
}

/// Prints the listing of program `prog` of `path` (every program when `None`), CO-RE
/// relocations resolved against `btf` (`--btf`) when given.
pub fn disasm(
    path: &Path,
    prog: Option<&str>,
    btf: Option<&Path>,
    out: &mut dyn Write,
) -> Result<(), CliError> {
    let obj = object::open(path, btf)?;
    let registry = Registry::with_builtins();
    let defs: Vec<&ProgramDefinition> = match prog {
        Some(_) => vec![object::choose_program(&obj, path, prog)?],
        None if obj.programs().is_empty() => {
            return Err(match obj.refused_programs().first() {
                Some(r) => CliError::ProgramRefused {
                    program: r.name.to_string(),
                    source: r.error.clone(),
                },
                None => CliError::NoPrograms {
                    path: path.display().to_string(),
                },
            })
        }
        None => obj.programs().iter().collect(),
    };
    let text: Vec<String> = defs.iter().map(|d| listing(&obj, d, &registry)).collect();
    out.write_all(text.join("\n").as_bytes())
        .map_err(CliError::stdout)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn word(opc: u8, dst: u8, src: u8, off: i16, imm: i32) -> u64 {
        u64::from(opc)
            | u64::from(dst) << 8
            | u64::from(src) << 12
            | u64::from(off as u16) << 16
            | u64::from(imm as u32) << 32
    }

    fn show(words: &[u64]) -> String {
        let registry = Registry::with_builtins();
        let maps = ["counts".to_string()];
        let names = Names {
            maps: &maps,
            helpers: &registry,
            subprograms: &[],
            kfuncs: &[],
        };
        let i = Insn::decode(words[0]);
        let next = words.get(1).map(|&w| Insn::decode(w));
        format_own(0, &i, next.as_ref(), &names).unwrap_or_else(|| format_rbpf(0, &i, words))
    }

    #[test]
    fn plain_instructions_come_from_rbpf() {
        assert_eq!(show(&[word(0xb7, 1, 0, 0, 5)]), "mov64 r1, 0x5");
        assert_eq!(show(&[word(0x15, 0, 0, 3, 0)]), "jeq r0, 0x0, +0x3 -> 4");
        assert_eq!(show(&[word(0x95, 0, 0, 0, 0)]), "exit");
    }

    #[test]
    fn map_loads_show_the_map_name() {
        let ld = word(0x18, 1, PSEUDO_MAP_FD, 0, 0);
        assert_eq!(show(&[ld, 0]), "lddw r1, map counts");
        let ldv = word(0x18, 2, PSEUDO_MAP_VALUE, 0, 0);
        assert_eq!(
            show(&[ldv, word(0, 0, 0, 0, 8)]),
            "lddw r2, &map counts value + 8"
        );
        let func = word(0x18, 2, bpfvm::loader::PSEUDO_FUNC, 0, 6);
        assert_eq!(show(&[func, 0]), "lddw r2, func pc+6 -> 7");
    }

    #[test]
    fn atomics_and_v4_are_formatted_here() {
        assert_eq!(
            show(&[word(0xdb, 1, 2, 0, 0x01)]),
            "atomic64 fetch_add [r1+0x0], r2"
        );
        assert_eq!(
            show(&[word(0xc3, 1, 2, -8, 0xf1)]),
            "atomic32 cmpxchg [r1-0x8], r2 (compares r0)"
        );
        assert_eq!(show(&[word(0x3f, 1, 2, 1, 0)]), "sdiv64 r1, r2");
        assert_eq!(show(&[word(0xbf, 1, 2, 8, 0)]), "movsx64 r1, r2 (s8)");
        assert_eq!(show(&[word(0x91, 1, 2, 4, 0)]), "ldxsb r1, [r2+0x4]");
        assert_eq!(show(&[word(0xd7, 3, 0, 0, 32)]), "bswap32 r3");
        assert_eq!(show(&[word(0x06, 0, 0, 0, -2)]), "gotol -2 -> -1");
        assert_eq!(
            show(&[word(0x85, 0, 0, 0, 1)]),
            "call bpf_map_lookup_elem #1"
        );
        assert_eq!(show(&[word(0x8d, 4, 0, 0, 0)]), "callx r4");
    }

    #[test]
    fn unknown_opcodes_do_not_panic() {
        assert_eq!(show(&[word(0xff, 0, 0, 0, 0)]), "unknown opcode 0xff");
        assert_eq!(
            show(&[word(0x18, 0, 0, 0, 0)]),
            "lddw r0 (truncated: no second slot)"
        );
    }
}
