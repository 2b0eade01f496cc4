//! Turning code sections into [`ProgramDefinition`]s: relocating map and global data
//! references and appending the `.text` subprograms each program calls, as libbpf does.

use std::collections::{HashMap, VecDeque};

use super::elf::{ElfObject, Reloc, Section, SymbolKind, R_BPF_64_32, R_BPF_64_64};
use super::error::LoadError;
use super::map_def::{MapDefinition, MapKind};
use super::program::{
    imm, opcode, src_reg, with_imm, with_src_reg, ProgramDefinition, SourceLine, CALL, LD_IMM64,
    PSEUDO_CALL, PSEUDO_KFUNC_CALL, PSEUDO_MAP_FD, PSEUDO_MAP_VALUE,
};
use super::section::program_type_for_section;

/// A function inside a code section, in instructions.
#[derive(Debug, Clone)]
struct Func {
    name: String,
    start: usize,
    len: usize,
}

/// One code section, decoded.
struct CodeSection<'s, 'a> {
    section: &'s Section<'a>,
    insns: Vec<u64>,
    funcs: Vec<Func>,
    /// Relocations by instruction index.
    relocs: HashMap<usize, Reloc>,
}

/// A stretch of a code section copied into the output program at `out_pos`.
struct Block {
    sec: usize,
    start: usize,
    len: usize,
    out_pos: usize,
}

/// Links every program of the object.
pub(crate) struct Linker<'e, 'a> {
    elf: &'e ElfObject<'a>,
    maps: &'e [MapDefinition],
    code: HashMap<usize, CodeSection<'e, 'a>>,
    text: Option<usize>,
    /// `.BTF.ext` line info by section name.
    lines: &'e HashMap<String, Vec<(usize, SourceLine)>>,
}

fn decode_section<'s, 'a>(
    elf: &ElfObject<'a>,
    section: &'s Section<'a>,
) -> Result<CodeSection<'s, 'a>, LoadError> {
    if section.data.len() % 8 != 0 {
        return Err(LoadError::BadInstruction {
            section: section.name.clone(),
            insn: section.data.len() / 8,
            reason: format!("section size {} is not a multiple of 8", section.data.len()),
        });
    }
    let insns: Vec<u64> = section
        .data
        .chunks_exact(8)
        .map(|c| u64::from_le_bytes(c.try_into().unwrap_or([0; 8])))
        .collect();
    let mut funcs = Vec::new();
    for sym in &elf.symbols {
        if sym.section != Some(section.index) || sym.kind != SymbolKind::Func {
            continue;
        }
        let bad = |why: &str| LoadError::Malformed {
            reason: format!("function {} in section {}: {why}", sym.name, section.name),
        };
        if sym.value % 8 != 0 || sym.size % 8 != 0 {
            return Err(bad("not aligned to instructions"));
        }
        let start = usize::try_from(sym.value / 8).map_err(|_| bad("out of range"))?;
        let len = usize::try_from(sym.size / 8).map_err(|_| bad("out of range"))?;
        if len == 0 || start.checked_add(len).is_none_or(|end| end > insns.len()) {
            return Err(bad("lies outside its section"));
        }
        funcs.push(Func {
            name: sym.name.clone(),
            start,
            len,
        });
    }
    funcs.sort_by_key(|f| f.start);
    let mut relocs = HashMap::new();
    for r in &section.relocations {
        let insn = usize::try_from(r.offset / 8).unwrap_or(usize::MAX);
        let bad = |why: &str| LoadError::BadRelocation {
            section: section.name.clone(),
            insn,
            reason: why.into(),
        };
        if r.offset % 8 != 0 {
            return Err(bad("offset is not at an instruction boundary"));
        }
        if insn >= insns.len() {
            return Err(bad("offset lies past the end of the section"));
        }
        match r.r_type {
            R_BPF_64_64 | R_BPF_64_32 => {}
            0 => continue,
            t => return Err(bad(&format!("relocation type {t} is not valid on code"))),
        }
        if relocs.insert(insn, *r).is_some() {
            return Err(bad("two relocations on one instruction"));
        }
    }
    Ok(CodeSection {
        section,
        insns,
        funcs,
        relocs,
    })
}

impl<'e, 'a> Linker<'e, 'a> {
    pub(crate) fn new(
        elf: &'e ElfObject<'a>,
        maps: &'e [MapDefinition],
        lines: &'e HashMap<String, Vec<(usize, SourceLine)>>,
    ) -> Result<Self, LoadError> {
        let mut code = HashMap::new();
        let mut text = None;
        for section in elf.sections.iter().filter(|s| s.is_code()) {
            if section.name == ".text" {
                text = Some(section.index);
            }
            code.insert(section.index, decode_section(elf, section)?);
        }
        Ok(Self {
            elf,
            maps,
            code,
            text,
            lines,
        })
    }

    /// Every program: each function of each code section except `.text`, in section
    /// then address order.
    pub(crate) fn programs(&self) -> Result<Vec<ProgramDefinition>, LoadError> {
        let mut sections: Vec<_> = self
            .code
            .keys()
            .copied()
            .filter(|&s| Some(s) != self.text)
            .collect();
        sections.sort_unstable();
        let mut out = Vec::new();
        for sec in sections {
            let cs = &self.code[&sec];
            if cs.insns.is_empty() {
                continue;
            }
            if cs.funcs.is_empty() {
                // No symbols: the whole section is one program named after it.
                let whole = Func {
                    name: cs.section.name.clone(),
                    start: 0,
                    len: cs.insns.len(),
                };
                out.push(self.link(sec, &whole)?);
            }
            for f in &cs.funcs {
                out.push(self.link(sec, f)?);
            }
        }
        Ok(out)
    }

    fn link(&self, sec: usize, entry: &Func) -> Result<ProgramDefinition, LoadError> {
        let cs = &self.code[&sec];
        let mut insns = cs.insns[entry.start..entry.start + entry.len].to_vec();
        let mut maps: Vec<usize> = Vec::new();
        let mut subprograms = Vec::new();
        let mut appended: HashMap<usize, usize> = HashMap::new();
        let mut lines = Vec::new();
        let mut queue = VecDeque::from([Block {
            sec,
            start: entry.start,
            len: entry.len,
            out_pos: 0,
        }]);
        while let Some(block) = queue.pop_front() {
            let cs = &self.code[&block.sec];
            let name = &cs.section.name;
            if let Some(section_lines) = self.lines.get(name) {
                lines.extend(
                    section_lines
                        .iter()
                        .filter(|(i, _)| (block.start..block.start + block.len).contains(i))
                        .map(|(i, l)| (block.out_pos + (i - block.start), l.clone())),
                );
            }
            let mut j = 0;
            while j < block.len {
                let sec_idx = block.start + j;
                let out_idx = block.out_pos + j;
                let insn = insns[out_idx];
                let reloc = cs.relocs.get(&sec_idx);
                match opcode(insn) {
                    LD_IMM64 => {
                        if j + 1 >= block.len {
                            return Err(LoadError::BadInstruction {
                                section: name.clone(),
                                insn: sec_idx,
                                reason: "ld_imm64 is missing its second half".into(),
                            });
                        }
                        if cs.relocs.contains_key(&(sec_idx + 1)) {
                            return Err(LoadError::BadRelocation {
                                section: name.clone(),
                                insn: sec_idx + 1,
                                reason: "relocation on the second half of an ld_imm64".into(),
                            });
                        }
                        if let Some(r) = reloc {
                            self.relocate_ld(cs, sec_idx, r, &mut insns, out_idx, &mut maps)?;
                        } else if src_reg(insn) != 0 {
                            return Err(LoadError::BadInstruction {
                                section: name.clone(),
                                insn: sec_idx,
                                reason: format!(
                                    "pseudo ld_imm64 (src_reg {}) without a relocation",
                                    src_reg(insn)
                                ),
                            });
                        }
                        j += 2;
                        continue;
                    }
                    CALL if src_reg(insn) == PSEUDO_CALL => {
                        let target = self.call_target(cs, block.sec, sec_idx, insn, reloc)?;
                        let text = self.text.ok_or_else(|| LoadError::BadRelocation {
                            section: name.clone(),
                            insn: sec_idx,
                            reason: "bpf-to-bpf call but the object has no .text".into(),
                        })?;
                        let tcs = &self.code[&text];
                        let func = tcs
                            .funcs
                            .iter()
                            .find(|f| f.start <= target && target < f.start + f.len)
                            .ok_or_else(|| LoadError::BadRelocation {
                                section: name.clone(),
                                insn: sec_idx,
                                reason: format!("call target .text+{target} is in no function"),
                            })?;
                        let pos = match appended.get(&func.start) {
                            Some(&pos) => pos,
                            None => {
                                let pos = insns.len();
                                insns.extend_from_slice(
                                    &tcs.insns[func.start..func.start + func.len],
                                );
                                appended.insert(func.start, pos);
                                subprograms.push((func.name.clone(), pos));
                                queue.push_back(Block {
                                    sec: text,
                                    start: func.start,
                                    len: func.len,
                                    out_pos: pos,
                                });
                                pos
                            }
                        };
                        let dest = (pos + (target - func.start)) as i64;
                        let rel = dest - (out_idx as i64 + 1);
                        let rel = i32::try_from(rel).map_err(|_| LoadError::BadRelocation {
                            section: name.clone(),
                            insn: sec_idx,
                            reason: "call offset does not fit in 32 bits".into(),
                        })?;
                        insns[out_idx] = with_imm(insn, rel);
                    }
                    CALL if src_reg(insn) == PSEUDO_KFUNC_CALL => {
                        return Err(LoadError::KfuncCall {
                            name: reloc
                                .map(|r| self.elf.symbols[r.symbol].name.clone())
                                .unwrap_or_default(),
                            section: name.clone(),
                            insn: sec_idx,
                        });
                    }
                    CALL if reloc.is_some_and(|r| self.elf.symbols[r.symbol].section.is_none()) => {
                        // A call to an undefined function is a kfunc whatever its src_reg.
                        return Err(LoadError::KfuncCall {
                            name: reloc
                                .map(|r| self.elf.symbols[r.symbol].name.clone())
                                .unwrap_or_default(),
                            section: name.clone(),
                            insn: sec_idx,
                        });
                    }
                    _ if reloc.is_some() => {
                        return Err(LoadError::BadRelocation {
                            section: name.clone(),
                            insn: sec_idx,
                            reason: format!(
                                "relocation on opcode {:#04x}, which is neither ld_imm64 nor call",
                                opcode(insn)
                            ),
                        });
                    }
                    _ => {}
                }
                j += 1;
            }
        }
        Ok(ProgramDefinition {
            name: entry.name.clone(),
            section: cs.section.name.clone(),
            program_type: program_type_for_section(&cs.section.name),
            insns,
            maps,
            subprograms,
            lines: {
                lines.sort_by_key(|(i, _)| *i);
                lines
            },
        })
    }

    /// Instruction index in `.text` that a bpf-to-bpf call lands on.
    fn call_target(
        &self,
        cs: &CodeSection<'_, '_>,
        sec: usize,
        sec_idx: usize,
        insn: u64,
        reloc: Option<&Reloc>,
    ) -> Result<usize, LoadError> {
        let bad = |why: String| LoadError::BadRelocation {
            section: cs.section.name.clone(),
            insn: sec_idx,
            reason: why,
        };
        let target = match reloc {
            Some(r) => {
                if r.r_type != R_BPF_64_32 {
                    return Err(bad(format!("call with relocation type {}", r.r_type)));
                }
                let sym = &self.elf.symbols[r.symbol];
                let Some(sym_sec) = sym.section else {
                    return Err(LoadError::KfuncCall {
                        name: sym.name.clone(),
                        section: cs.section.name.clone(),
                        insn: sec_idx,
                    });
                };
                if Some(sym_sec) != self.text {
                    return Err(bad(format!(
                        "call into section {}; subprograms must be in .text",
                        self.elf.sections[sym_sec].name
                    )));
                }
                (sym.value / 8) as i64 + i64::from(imm(insn)) + 1
            }
            None if Some(sec) == self.text => sec_idx as i64 + i64::from(imm(insn)) + 1,
            None => {
                return Err(bad(
                    "bpf-to-bpf call without a relocation outside .text".into()
                ))
            }
        };
        usize::try_from(target).map_err(|_| bad(format!("call target {target} is negative")))
    }

    /// Rewrite a relocated `ld_imm64` into its pseudo form.
    fn relocate_ld(
        &self,
        cs: &CodeSection<'_, '_>,
        sec_idx: usize,
        r: &Reloc,
        insns: &mut [u64],
        out_idx: usize,
        maps: &mut Vec<usize>,
    ) -> Result<(), LoadError> {
        let bad = |why: String| LoadError::BadRelocation {
            section: cs.section.name.clone(),
            insn: sec_idx,
            reason: why,
        };
        if r.r_type != R_BPF_64_64 {
            return Err(bad(format!("ld_imm64 with relocation type {}", r.r_type)));
        }
        let sym = &self.elf.symbols[r.symbol];
        let Some(sym_sec) = sym.section else {
            return Err(LoadError::UnresolvedExtern {
                name: sym.name.clone(),
                section: cs.section.name.clone(),
                insn: sec_idx,
            });
        };
        let insn = insns[out_idx];
        let addend = i64::from(imm(insn));
        let target = &self.elf.sections[sym_sec];
        if target.is_code() {
            let at = (sym.value as i64).wrapping_add(addend);
            let func = self
                .elf
                .symbols
                .iter()
                .find(|s| {
                    s.section == Some(sym_sec) && s.kind == SymbolKind::Func && s.value as i64 == at
                })
                .map_or_else(|| format!("{}+{at}", target.name), |s| s.name.clone());
            return Err(LoadError::Unsupported {
                section: cs.section.name.clone(),
                what: format!(
                    "pointer to function {func} at instruction {sec_idx} (callbacks such as bpf_loop)"
                ),
            });
        }
        let mut slot = |map_idx: usize| match maps.iter().position(|&m| m == map_idx) {
            Some(p) => p,
            None => {
                maps.push(map_idx);
                maps.len() - 1
            }
        };
        let global = self.maps.iter().position(|m| {
            m.section_index == sym_sec && matches!(m.kind, MapKind::GlobalData { .. })
        });
        if let Some(map_idx) = global {
            let offset = (sym.value as i64).wrapping_add(addend);
            let size = i64::from(self.maps[map_idx].value_size);
            if !(0..=size).contains(&offset) {
                return Err(bad(format!(
                    "offset {offset} lies outside {} ({size} bytes)",
                    target.name
                )));
            }
            let p = slot(map_idx) as i32;
            insns[out_idx] = with_src_reg(with_imm(insn, p), PSEUDO_MAP_VALUE);
            insns[out_idx + 1] = with_imm(insns[out_idx + 1], offset as i32);
            return Ok(());
        }
        let offset = if sym.kind == SymbolKind::Section {
            (sym.value as i64).wrapping_add(addend)
        } else {
            sym.value as i64
        };
        let map_idx = self
            .maps
            .iter()
            .position(|m| m.section_index == sym_sec && m.section_offset as i64 == offset);
        match map_idx {
            Some(map_idx) => {
                let p = slot(map_idx) as i32;
                insns[out_idx] = with_src_reg(with_imm(insn, p), PSEUDO_MAP_FD);
                insns[out_idx + 1] = with_imm(insns[out_idx + 1], 0);
                Ok(())
            }
            None if self.maps.iter().any(|m| m.section_index == sym_sec) => Err(bad(format!(
                "no map at offset {offset} of section {}",
                target.name
            ))),
            None => Err(bad(format!(
                "symbol {} is in section {}, which holds no map or global data",
                sym.name, target.name
            ))),
        }
    }
}
