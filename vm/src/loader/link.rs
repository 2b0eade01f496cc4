//! Turning code sections into [`ProgramDefinition`]s: relocating map and global data
//! references and appending the `.text` subprograms each program calls, as libbpf does.
//!
//! Each program gets its own copy of the functions it calls, so linking is bounded: a
//! program may not pass [`MAX_PROGRAM_INSNS`] (the kernel's limit) nor all programs
//! together [`MAX_OBJECT_INSNS`]; both are checked before anything is copied, so the
//! work done is at most the limit. Every lookup (call targets, maps, line info) is a
//! hash or a binary search, never a scan.

use std::cell::Cell;
use std::collections::{HashMap, HashSet, VecDeque};
use std::sync::Arc;

use super::btf_ext::SectionLines;
use super::core::{CorePoison, SectionCore};
use super::elf::{ElfObject, Reloc, Section, SymbolKind, R_BPF_64_32, R_BPF_64_64, STB_LOCAL};
use super::error::LoadError;
use super::externs::{ExternValue, Externs, KfuncExtern};
use super::limits::{MAX_OBJECT_INSNS, MAX_PROGRAM_INSNS};
use super::map_def::{MapDefinition, MapKind, RefusedMap};
use super::program::{
    imm, opcode, src_reg, with_imm, with_src_reg, ProgramDefinition, CALL, LD_IMM64, PSEUDO_CALL,
    PSEUDO_FUNC, PSEUDO_KFUNC_CALL, PSEUDO_MAP_FD, PSEUDO_MAP_VALUE,
};
use super::section_types::{program_type_for_section, section_type};
use super::strtab::SharedStr;
use crate::kfunc::{KfuncImport, PSEUDO_KFUNC_ADDR};

/// A program that could not be linked or uses something that cannot be loaded: the other
/// programs of the object load without it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RefusedProgram {
    /// Function name.
    pub name: SharedStr,
    /// ELF section name.
    pub section: SharedStr,
    /// Why it cannot be loaded.
    pub error: LoadError,
}

/// A function inside a code section, in instructions.
#[derive(Debug, Clone)]
struct Func {
    name: SharedStr,
    start: usize,
    len: usize,
    /// `STB_LOCAL`: a static function, a subprogram only.
    local: bool,
}

/// Whether code section `name` holds subprograms only (`.text`, and `.text.*` as
/// `-ffunction-sections` makes them).
fn is_text(name: &str) -> bool {
    name == ".text" || name.starts_with(".text.")
}

/// One code section, decoded.
struct CodeSection<'s, 'a> {
    section: &'s Section<'a>,
    insns: Vec<u64>,
    /// Functions sorted by start; two either have the same range or do not overlap.
    funcs: Vec<Func>,
    /// Relocations by instruction index.
    relocs: HashMap<usize, Reloc>,
    /// `.BTF.ext` line info of the section (empty without any).
    lines: &'s [(usize, Arc<super::program::SourceLine>)],
    /// CO-RE relocations that poisoned an instruction, by instruction (empty without).
    poisons: &'s [(usize, Arc<CorePoison>)],
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
    /// Legacy and BTF maps by (section index, offset): the first at each place.
    map_at: HashMap<(usize, u64), usize>,
    /// Maps that cannot be loaded, by (section index, offset).
    refused_at: HashMap<(usize, u64), &'e RefusedMap>,
    /// Extern variables, and the index of the `.kconfig` map in `maps`.
    externs: &'e Externs,
    kconfig_map: Option<usize>,
    /// Global data maps by section index.
    global_data: HashMap<usize, usize>,
    /// Sections that hold some map.
    map_sections: HashSet<usize>,
    /// Instructions linked so far, all programs together.
    linked: Cell<usize>,
}

fn decode_section<'s, 'a>(
    elf: &ElfObject<'a>,
    section: &'s Section<'a>,
    lines: &'s HashMap<SharedStr, SectionLines>,
    core: &'s HashMap<SharedStr, SectionCore>,
) -> Result<CodeSection<'s, 'a>, LoadError> {
    if section.data.len() % 8 != 0 {
        return Err(LoadError::BadInstruction {
            section: section.name.to_string(),
            insn: section.data.len() / 8,
            reason: format!("section size {} is not a multiple of 8", section.data.len()),
        });
    }
    let mut insns: Vec<u64> = section
        .data
        .chunks_exact(8)
        .map(|c| u64::from_le_bytes(c.try_into().unwrap_or([0; 8])))
        .collect();
    // CO-RE results (only the first section of a name has them, as only it has BTF).
    let core = core
        .get(section.name.as_str())
        .filter(|_| elf.section_by_name(&section.name).map(|s| s.index) == Some(section.index));
    for &(i, word) in core.map_or(&[][..], |c| c.patches.as_slice()) {
        if let Some(slot) = insns.get_mut(i) {
            *slot = word;
        }
    }
    let poisons = core.map_or(&[][..], |c| c.poisons.as_slice());
    let mut funcs = Vec::new();
    for sym in elf.symbols_in(section.index) {
        if sym.kind != SymbolKind::Func {
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
            local: sym.bind == STB_LOCAL,
        });
    }
    funcs.sort_by_key(|f| f.start);
    for pair in funcs.windows(2) {
        let (a, b) = (&pair[0], &pair[1]);
        let same = a.start == b.start && a.len == b.len;
        if !same && a.start + a.len > b.start {
            return Err(LoadError::Malformed {
                reason: format!(
                    "functions {} and {} in section {} overlap",
                    a.name, b.name, section.name
                ),
            });
        }
    }
    let mut relocs = HashMap::new();
    for r in &section.relocations {
        let insn = usize::try_from(r.offset / 8).unwrap_or(usize::MAX);
        let bad = |why: &str| LoadError::BadRelocation {
            section: section.name.to_string(),
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
    // Line info names sections of at most MAX_NAME_LEN bytes (parsing refuses longer).
    let lines = if section.name.len() <= super::limits::MAX_NAME_LEN {
        lines
            .get(section.name.as_str())
            .map_or(&[][..], Vec::as_slice)
    } else {
        &[]
    };
    Ok(CodeSection {
        section,
        insns,
        funcs,
        relocs,
        lines,
        poisons,
    })
}

impl<'e, 'a> Linker<'e, 'a> {
    pub(crate) fn new(
        elf: &'e ElfObject<'a>,
        maps: &'e [MapDefinition],
        refused_maps: &'e [RefusedMap],
        externs: &'e Externs,
        lines: &'e HashMap<SharedStr, SectionLines>,
        core: &'e HashMap<SharedStr, SectionCore>,
    ) -> Result<Self, LoadError> {
        let mut code = HashMap::new();
        for section in elf.sections.iter().filter(|s| s.is_code()) {
            code.insert(section.index, decode_section(elf, section, lines, core)?);
        }
        let mut refused_at = HashMap::new();
        for r in refused_maps {
            refused_at
                .entry((r.section_index, r.section_offset))
                .or_insert(r);
        }
        let kconfig_map = maps.iter().position(|m| {
            matches!(&m.kind, MapKind::GlobalData { section, .. } if section == ".kconfig")
                && m.section_index == usize::MAX
        });
        let mut map_at = HashMap::new();
        let mut global_data = HashMap::new();
        let mut map_sections = HashSet::new();
        for (i, m) in maps.iter().enumerate() {
            map_sections.insert(m.section_index);
            if matches!(m.kind, MapKind::GlobalData { .. }) {
                global_data.entry(m.section_index).or_insert(i);
            } else {
                map_at
                    .entry((m.section_index, m.section_offset))
                    .or_insert(i);
            }
        }
        Ok(Self {
            elf,
            maps,
            code,
            map_at,
            refused_at,
            externs,
            kconfig_map,
            global_data,
            map_sections,
            linked: Cell::new(0),
        })
    }

    /// Check that a program of `len` instructions, linked so far, is within the limits.
    fn check_size(&self, entry: &Func, section: &SharedStr, len: usize) -> Result<(), LoadError> {
        if len > MAX_PROGRAM_INSNS {
            return Err(LoadError::ProgramTooLarge {
                program: entry.name.to_string(),
                section: section.to_string(),
                insns: len,
                limit: MAX_PROGRAM_INSNS,
            });
        }
        let total = self.linked.get().saturating_add(len);
        if total > MAX_OBJECT_INSNS {
            return Err(LoadError::ObjectTooLarge {
                program: entry.name.to_string(),
                insns: total,
                limit: MAX_OBJECT_INSNS,
            });
        }
        Ok(())
    }

    /// Every program, linked or refused: each global function of each code section
    /// except `.text` / `.text.*` (static functions there are subprograms; a section
    /// without global functions makes each of its functions a program), in section then
    /// address order.
    pub(crate) fn programs(&self) -> Vec<Result<ProgramDefinition, RefusedProgram>> {
        let mut sections: Vec<_> = self
            .code
            .iter()
            .filter(|(_, cs)| !is_text(&cs.section.name))
            .map(|(&s, _)| s)
            .collect();
        sections.sort_unstable();
        let mut out = Vec::new();
        for sec in sections {
            let cs = &self.code[&sec];
            if cs.insns.is_empty() {
                continue;
            }
            let program_type = program_type_for_section(&cs.section.name);
            let mut entries: Vec<Func> = if cs.funcs.is_empty() {
                // No symbols: the whole section is one program named after it.
                vec![Func {
                    name: cs.section.name.clone(),
                    start: 0,
                    len: cs.insns.len(),
                    local: false,
                }]
            } else if cs.funcs.iter().any(|f| !f.local) {
                cs.funcs.iter().filter(|f| !f.local).cloned().collect()
            } else {
                cs.funcs.clone()
            };
            entries.dedup_by(|a, b| a.start == b.start && a.name == b.name);
            for f in &entries {
                out.push(
                    self.link(sec, f, program_type)
                        .map_err(|error| RefusedProgram {
                            name: f.name.clone(),
                            section: cs.section.name.clone(),
                            error,
                        }),
                );
            }
        }
        out
    }

    fn link(
        &self,
        sec: usize,
        entry: &Func,
        program_type: crate::ProgramType,
    ) -> Result<ProgramDefinition, LoadError> {
        let cs = &self.code[&sec];
        self.check_size(entry, &cs.section.name, entry.len)?;
        let mut insns = cs.insns[entry.start..entry.start + entry.len].to_vec();
        let mut maps: Vec<usize> = Vec::new();
        let mut slots: HashMap<usize, usize> = HashMap::new();
        let mut subprograms = Vec::new();
        let mut appended: HashMap<(usize, usize), usize> = HashMap::new();
        let mut lines = Vec::new();
        let mut core_poisons = Vec::new();
        let mut kfuncs = Kfuncs::default();
        let mut queue = VecDeque::from([Block {
            sec,
            start: entry.start,
            len: entry.len,
            out_pos: 0,
        }]);
        // Appends the function of section `$tsec` containing instruction `$target` (once)
        // and rewrites the call or `ld_imm64` at `$out_idx` to reach `$target` relatively.
        macro_rules! link_func {
            ($tsec:expr, $target:expr, $sec_idx:expr, $out_idx:expr, $name:expr, $what:literal) => {{
                let (tsec, target, sec_idx, out_idx) = ($tsec, $target, $sec_idx, $out_idx);
                let tcs = &self.code[&tsec];
                let tname = &tcs.section.name;
                let func =
                    containing(&tcs.funcs, target).ok_or_else(|| LoadError::BadRelocation {
                        section: $name.to_string(),
                        insn: sec_idx,
                        reason: format!(
                            concat!($what, " target {}+{} is in no function"),
                            tname, target
                        ),
                    })?;
                // The entry's own function, called recursively, is at 0.
                let own = tsec == sec && func.start == entry.start;
                let pos = match appended.get(&(tsec, func.start)) {
                    Some(&pos) => pos,
                    None if own => 0,
                    None => {
                        let pos = insns.len();
                        self.check_size(entry, &cs.section.name, pos + func.len)?;
                        insns.extend_from_slice(&tcs.insns[func.start..func.start + func.len]);
                        appended.insert((tsec, func.start), pos);
                        subprograms.push((func.name.clone(), pos));
                        queue.push_back(Block {
                            sec: tsec,
                            start: func.start,
                            len: func.len,
                            out_pos: pos,
                        });
                        pos
                    }
                };
                let dest = (pos + (target - func.start)) as i64;
                let rel = dest - (out_idx as i64 + 1);
                i32::try_from(rel).map_err(|_| LoadError::BadRelocation {
                    section: $name.to_string(),
                    insn: sec_idx,
                    reason: concat!($what, " offset does not fit in 32 bits").into(),
                })?
            }};
        }
        while let Some(block) = queue.pop_front() {
            let cs = &self.code[&block.sec];
            let name = &cs.section.name;
            let section_lines = cs.lines;
            let from = section_lines.partition_point(|(i, _)| *i < block.start);
            let to = section_lines.partition_point(|(i, _)| *i < block.start + block.len);
            lines.extend(
                section_lines[from..to.max(from)]
                    .iter()
                    .map(|(i, l)| (block.out_pos + (i - block.start), Arc::clone(l))),
            );
            let from = cs.poisons.partition_point(|(i, _)| *i < block.start);
            let to = cs
                .poisons
                .partition_point(|(i, _)| *i < block.start + block.len);
            core_poisons.extend(
                cs.poisons[from..to.max(from)]
                    .iter()
                    .map(|(i, p)| (block.out_pos + (i - block.start), Arc::clone(p))),
            );
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
                                section: name.to_string(),
                                insn: sec_idx,
                                reason: "ld_imm64 is missing its second half".into(),
                            });
                        }
                        if cs.relocs.contains_key(&(sec_idx + 1)) {
                            return Err(LoadError::BadRelocation {
                                section: name.to_string(),
                                insn: sec_idx + 1,
                                reason: "relocation on the second half of an ld_imm64".into(),
                            });
                        }
                        if let Some(k) = reloc.and_then(|r| self.kfunc_of(r)) {
                            // bpf_ksym_exists(f): the address of a kfunc.
                            let slot = kfuncs.slot(k, &self.externs.kfuncs[k]);
                            insns[out_idx] =
                                with_imm(with_src_reg(insn, PSEUDO_KFUNC_ADDR), slot as i32);
                            insns[out_idx + 1] = with_imm(insns[out_idx + 1], 0);
                        } else if let Some((tsec, target)) = reloc
                            .map(|r| self.func_target(cs, sec_idx, r, insn))
                            .transpose()?
                            .flatten()
                        {
                            // A function's address (a callback): linked as a callee.
                            let rel = link_func!(
                                tsec,
                                target,
                                sec_idx,
                                out_idx,
                                name,
                                "function pointer"
                            );
                            insns[out_idx] = with_imm(with_src_reg(insn, PSEUDO_FUNC), rel);
                            insns[out_idx + 1] = with_imm(insns[out_idx + 1], 0);
                        } else if let Some(r) = reloc {
                            let slot = self.relocate_ld(cs, sec_idx, r, &mut insns, out_idx)?;
                            if let Some(slot) = slot {
                                let p = *slots.entry(slot).or_insert_with(|| {
                                    maps.push(slot);
                                    maps.len() - 1
                                });
                                insns[out_idx] = with_imm(insns[out_idx], p as i32);
                            }
                        } else if src_reg(insn) != 0 {
                            return Err(LoadError::BadInstruction {
                                section: name.to_string(),
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
                    CALL if reloc.is_some_and(|r| self.kfunc_of(r).is_some()) => {
                        // A call to an extern __ksym function, whatever clang put in
                        // src_reg (libbpf's RELO_EXTERN_CALL).
                        let k = reloc.and_then(|r| self.kfunc_of(r)).expect("checked");
                        let slot = kfuncs.slot(k, &self.externs.kfuncs[k]);
                        let call = with_src_reg(insn, PSEUDO_KFUNC_CALL) & !0xffff_0000;
                        insns[out_idx] = with_imm(call, slot as i32);
                    }
                    CALL if src_reg(insn) == PSEUDO_CALL => {
                        let (tsec, target) =
                            self.call_target(cs, block.sec, sec_idx, insn, reloc)?;
                        let rel = link_func!(tsec, target, sec_idx, out_idx, name, "call");
                        insns[out_idx] = with_imm(insn, rel);
                    }
                    CALL if src_reg(insn) == PSEUDO_KFUNC_CALL => {
                        return Err(LoadError::KfuncCall {
                            name: reloc
                                .map(|r| self.elf.symbols[r.symbol].name.to_string())
                                .unwrap_or_default(),
                            section: name.to_string(),
                            insn: sec_idx,
                        });
                    }
                    CALL if reloc.is_some_and(|r| self.elf.symbols[r.symbol].section.is_none()) => {
                        // A call to an undefined function is a kfunc whatever its src_reg.
                        return Err(LoadError::KfuncCall {
                            name: reloc
                                .map(|r| self.elf.symbols[r.symbol].name.to_string())
                                .unwrap_or_default(),
                            section: name.to_string(),
                            insn: sec_idx,
                        });
                    }
                    _ if reloc.is_some() => {
                        return Err(LoadError::BadRelocation {
                            section: name.to_string(),
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
        self.linked.set(self.linked.get() + insns.len());
        Ok(ProgramDefinition {
            name: entry.name.clone(),
            section: cs.section.name.clone(),
            program_type,
            section_type: section_type(&cs.section.name),
            insns,
            maps,
            subprograms,
            lines: {
                lines.sort_by_key(|(i, _)| *i);
                lines
            },
            core_poisons: {
                core_poisons.sort_by_key(|(i, _)| *i);
                core_poisons
            },
            map_poisons: Vec::new(),
            kfuncs: kfuncs.list,
            tracing_ctx: None,
            kernel_btf: None,
        })
    }

    /// The code section and instruction index in it that a bpf-to-bpf call lands on: the
    /// relocation's symbol (in any code section), or without a relocation the same section.
    fn call_target(
        &self,
        cs: &CodeSection<'_, '_>,
        sec: usize,
        sec_idx: usize,
        insn: u64,
        reloc: Option<&Reloc>,
    ) -> Result<(usize, usize), LoadError> {
        let bad = |why: String| LoadError::BadRelocation {
            section: cs.section.name.to_string(),
            insn: sec_idx,
            reason: why,
        };
        let (tsec, target) = match reloc {
            Some(r) => {
                if r.r_type != R_BPF_64_32 {
                    return Err(bad(format!("call with relocation type {}", r.r_type)));
                }
                let sym = &self.elf.symbols[r.symbol];
                let Some(sym_sec) = sym.section else {
                    return Err(LoadError::KfuncCall {
                        name: sym.name.to_string(),
                        section: cs.section.name.to_string(),
                        insn: sec_idx,
                    });
                };
                if !self.code.contains_key(&sym_sec) {
                    return Err(bad(format!(
                        "call into section {}, which holds no code",
                        self.elf.sections[sym_sec].name
                    )));
                }
                (sym_sec, (sym.value / 8) as i64 + i64::from(imm(insn)) + 1)
            }
            None => (sec, sec_idx as i64 + i64::from(imm(insn)) + 1),
        };
        let target = usize::try_from(target)
            .map_err(|_| bad(format!("call target {target} is negative")))?;
        Ok((tsec, target))
    }

    /// The code section and instruction an `ld_imm64` of a function's address (relocated
    /// against a symbol in a code section) names, as libbpf reads it: the symbol's offset
    /// plus the instruction's `imm`, in bytes. `None` when the symbol is not in a code
    /// section (a map or global data).
    fn func_target(
        &self,
        cs: &CodeSection<'_, '_>,
        sec_idx: usize,
        r: &Reloc,
        insn: u64,
    ) -> Result<Option<(usize, usize)>, LoadError> {
        let sym = &self.elf.symbols[r.symbol];
        let Some(sym_sec) = sym.section else {
            return Ok(None);
        };
        if r.r_type != R_BPF_64_64 || !self.code.contains_key(&sym_sec) {
            return Ok(None);
        }
        let addend = i64::from(imm(insn));
        let at = (sym.value as i64).wrapping_add(addend);
        if sym.value % 8 != 0 || addend % 8 != 0 || at < 0 {
            return Err(LoadError::BadRelocation {
                section: cs.section.name.to_string(),
                insn: sec_idx,
                reason: format!(
                    "function pointer to {}+{at} is not at an instruction",
                    self.elf.sections[sym_sec].name
                ),
            });
        }
        Ok(Some((sym_sec, (at / 8) as usize)))
    }

    /// Rewrite a relocated `ld_imm64` into its pseudo form; returns the index (in
    /// [`Object::maps`](super::Object::maps)) of the map it refers to, which the caller
    /// turns into the program's slot for it.
    fn relocate_ld(
        &self,
        cs: &CodeSection<'_, '_>,
        sec_idx: usize,
        r: &Reloc,
        insns: &mut [u64],
        out_idx: usize,
    ) -> Result<Option<usize>, LoadError> {
        let bad = |why: String| LoadError::BadRelocation {
            section: cs.section.name.to_string(),
            insn: sec_idx,
            reason: why,
        };
        if r.r_type != R_BPF_64_64 {
            return Err(bad(format!("ld_imm64 with relocation type {}", r.r_type)));
        }
        let sym = &self.elf.symbols[r.symbol];
        let Some(sym_sec) = sym.section else {
            return self.relocate_extern(cs, sec_idx, &sym.name, insns, out_idx);
        };
        let insn = insns[out_idx];
        let addend = i64::from(imm(insn));
        let target = &self.elf.sections[sym_sec];
        if let Some(&map_idx) = self.global_data.get(&sym_sec) {
            let offset = (sym.value as i64).wrapping_add(addend);
            let size = i64::from(self.maps[map_idx].value_size);
            if !(0..=size).contains(&offset) {
                return Err(bad(format!(
                    "offset {offset} lies outside {} ({size} bytes)",
                    target.name
                )));
            }
            insns[out_idx] = with_src_reg(insn, PSEUDO_MAP_VALUE);
            insns[out_idx + 1] = with_imm(insns[out_idx + 1], offset as i32);
            return Ok(Some(map_idx));
        }
        let offset = if sym.kind == SymbolKind::Section {
            (sym.value as i64).wrapping_add(addend)
        } else {
            sym.value as i64
        };
        let at = u64::try_from(offset).ok().map(|off| (sym_sec, off));
        if let Some(refused) = at.and_then(|at| self.refused_at.get(&at)) {
            return Err(LoadError::MapUnavailable {
                map: refused.name.to_string(),
                reason: Box::new(refused.error.clone()),
            });
        }
        let map_idx = at.and_then(|at| self.map_at.get(&at));
        match map_idx {
            Some(&map_idx) => {
                insns[out_idx] = with_src_reg(insn, PSEUDO_MAP_FD);
                insns[out_idx + 1] = with_imm(insns[out_idx + 1], 0);
                Ok(Some(map_idx))
            }
            None if self.map_sections.contains(&sym_sec) => Err(bad(format!(
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

/// The kfuncs one program uses, in the order it first uses them.
#[derive(Default)]
struct Kfuncs {
    list: Vec<KfuncImport>,
    slots: HashMap<SharedStr, usize>,
}

impl Kfuncs {
    /// The index of kfunc `name` in the program's table, added if new.
    fn slot(&mut self, name: &SharedStr, k: &KfuncExtern) -> usize {
        *self.slots.entry(name.clone()).or_insert_with(|| {
            self.list.push(KfuncImport {
                name: Arc::from(name.as_str()),
                weak: k.weak,
                extern_index: k.extern_index,
                args: k.args.clone(),
                ret: k.ret.clone(),
            });
            self.list.len() - 1
        })
    }
}

impl Linker<'_, '_> {
    /// The name of the kfunc (an extern `__ksym` function) relocation `r` refers to.
    fn kfunc_of(&self, r: &Reloc) -> Option<&SharedStr> {
        let sym = self.elf.symbols.get(r.symbol)?;
        if sym.section.is_some() {
            return None;
        }
        self.externs
            .kfuncs
            .get_key_value(&sym.name)
            .map(|(name, _)| name)
    }

    /// Rewrite an `ld_imm64` of extern `name` as libbpf does: a `__kconfig` value becomes
    /// the address of its slot in the `.kconfig` map, an unresolved weak `__ksym` the
    /// constant 0; anything else refuses the program.
    fn relocate_extern(
        &self,
        cs: &CodeSection<'_, '_>,
        sec_idx: usize,
        name: &SharedStr,
        insns: &mut [u64],
        out_idx: usize,
    ) -> Result<Option<usize>, LoadError> {
        let at_here = |e: &LoadError| match e {
            LoadError::UnresolvedExtern { name, reason, .. } => LoadError::UnresolvedExtern {
                name: name.clone(),
                section: cs.section.name.to_string(),
                insn: sec_idx,
                reason: reason.clone(),
            },
            other => other.clone(),
        };
        match self.externs.by_name.get(name) {
            Some(ExternValue::Kconfig { offset }) => {
                let map = self
                    .kconfig_map
                    .ok_or_else(|| LoadError::malformed("kconfig extern without a .kconfig map"))?;
                insns[out_idx] = with_imm(with_src_reg(insns[out_idx], PSEUDO_MAP_VALUE), 0);
                insns[out_idx + 1] = with_imm(insns[out_idx + 1], *offset as i32);
                Ok(Some(map))
            }
            Some(ExternValue::Zero) => {
                insns[out_idx] = with_imm(with_src_reg(insns[out_idx], 0), 0);
                insns[out_idx + 1] = with_imm(insns[out_idx + 1], 0);
                Ok(None)
            }
            Some(ExternValue::Refused(e)) => Err(at_here(e)),
            // Handled by the caller (`kfunc_of`).
            Some(ExternValue::Kfunc) => Err(LoadError::malformed("kfunc address out of place")),
            None => Err(LoadError::UnresolvedExtern {
                name: name.to_string(),
                section: cs.section.name.to_string(),
                insn: sec_idx,
                reason: "not a __kconfig or __ksym variable".into(),
            }),
        }
    }
}

/// The function of `funcs` (sorted by start, same-range or disjoint) that contains
/// instruction `target`: the first of those with the nearest start at or before it.
fn containing(funcs: &[Func], target: usize) -> Option<&Func> {
    let after = funcs.partition_point(|f| f.start <= target);
    let candidate = funcs.get(after.checked_sub(1)?)?;
    let first = funcs.partition_point(|f| f.start < candidate.start);
    let f = &funcs[first];
    (target < f.start + f.len).then_some(f)
}
