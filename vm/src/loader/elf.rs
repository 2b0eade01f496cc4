//! The ELF layer: sections, symbols and relocations of a BPF object, read with the
//! `object` crate's checked low-level ELF API (every offset is bounds-checked there).
//!
//! Names are [`SharedStr`]s into one copy of each string table, sections may not overlap
//! (the gABI's rule: "no byte in a file resides in more than one section"), and the
//! lookups the loader needs (a section's symbols, a symbol by section and name) are
//! indexed once, so nothing here is quadratic or copies a byte of the file twice.

use std::collections::HashMap;

use object::elf;
use object::read::elf::{FileHeader as _, Rel as _, SectionHeader as _, Sym as _};
use object::{Endianness, FileKind, SectionIndex};

use super::error::LoadError;
use super::limits::MAX_NAME_LEN;
use super::strtab::{SharedStr, StrTab};

/// ELF `R_BPF_64_64`: a 64-bit immediate (`ld_imm64`) referring to a symbol.
pub(crate) const R_BPF_64_64: u32 = 1;
/// ELF `R_BPF_64_32`: a call's 32-bit immediate referring to a function.
pub(crate) const R_BPF_64_32: u32 = 10;

/// What a section holds, as far as the loader cares.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum SectionKind {
    /// `SHT_PROGBITS`: bytes in the file.
    Progbits,
    /// `SHT_NOBITS`: zero-filled (`.bss`).
    Nobits,
    /// Anything else (symbol tables, relocations, strings, ...).
    Other,
}

/// One section, its bytes borrowed from the file.
#[derive(Debug)]
pub(crate) struct Section<'a> {
    /// ELF section index.
    pub index: usize,
    pub name: SharedStr,
    pub kind: SectionKind,
    /// `sh_flags`.
    pub flags: u64,
    /// Bytes (empty for `SHT_NOBITS`).
    pub data: &'a [u8],
    /// `sh_size` (the only size for `SHT_NOBITS`).
    pub size: u64,
    /// Relocations that apply to this section, in file order.
    pub relocations: Vec<Reloc>,
}

impl Section<'_> {
    /// Whether the section holds code (`SHF_EXECINSTR`).
    pub fn is_code(&self) -> bool {
        self.kind == SectionKind::Progbits && self.flags & elf::SHF_EXECINSTR.0 != 0
    }
}

/// The kind of a symbol.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum SymbolKind {
    Func,
    Object,
    Section,
    NoType,
    Other,
}

/// One symbol table entry.
#[derive(Debug, Clone)]
pub(crate) struct Symbol {
    pub name: SharedStr,
    /// Defining section, `None` for undefined (extern) and special symbols.
    pub section: Option<usize>,
    pub value: u64,
    pub size: u64,
    pub kind: SymbolKind,
    /// `STB_*` binding (`STB_LOCAL` 0, `STB_GLOBAL` 1, `STB_WEAK` 2).
    pub bind: u8,
}

/// ELF `STB_LOCAL`: a static symbol.
pub(crate) const STB_LOCAL: u8 = 0;
/// ELF `STB_WEAK`: a weak symbol (`__weak`).
pub(crate) const STB_WEAK: u8 = 2;

/// One `Elf64_Rel` entry.
#[derive(Debug, Clone, Copy)]
pub(crate) struct Reloc {
    /// Byte offset inside the relocated section.
    pub offset: u64,
    /// Index into [`ElfObject::symbols`].
    pub symbol: usize,
    pub r_type: u32,
}

/// The parts of a BPF ELF object the loader uses.
#[derive(Debug)]
pub(crate) struct ElfObject<'a> {
    pub sections: Vec<Section<'a>>,
    pub symbols: Vec<Symbol>,
    /// Indices into `symbols` of each section's symbols, by section index, in table order.
    section_symbols: Vec<Vec<usize>>,
    /// The first symbol of each (section, name), for names up to [`MAX_NAME_LEN`].
    by_section_and_name: HashMap<(usize, SharedStr), usize>,
    /// The first section of each name, for names up to [`MAX_NAME_LEN`].
    by_name: HashMap<SharedStr, usize>,
}

/// A string table section's bytes (empty for index 0, "no table").
fn table_bytes<'a>(
    table: &object::read::elf::SectionTable<'a, elf::FileHeader64<Endianness>>,
    endian: Endianness,
    data: &'a [u8],
    index: usize,
    what: &str,
) -> Result<&'a [u8], LoadError> {
    if index == 0 {
        return Ok(&[]);
    }
    table
        .section(SectionIndex(index))
        .and_then(|sh| sh.data(endian, data))
        .map_err(|_| {
            LoadError::malformed(format!("{what} (section {index}) lies outside the file"))
        })
}

/// Sections whose bytes overlap another section's (`sh_type` other than `SHT_NULL` and
/// `SHT_NOBITS`, inside the file, not empty) are refused: one byte read as two sections
/// would be parsed, copied and relocated twice.
fn check_no_overlap(sections: &[(usize, u64, u64, SharedStr)]) -> Result<(), LoadError> {
    let mut ranges: Vec<&(usize, u64, u64, SharedStr)> = sections.iter().collect();
    ranges.sort_unstable_by_key(|&&(index, off, _, _)| (off, index));
    for pair in ranges.windows(2) {
        let (a, b) = (pair[0], pair[1]);
        if a.1 + a.2 > b.1 {
            return Err(LoadError::malformed(format!(
                "sections {} and {} overlap in the file (bytes {}..{} and {}..{})",
                a.3,
                b.3,
                a.1,
                a.1 + a.2,
                b.1,
                b.1 + b.2
            )));
        }
    }
    Ok(())
}

impl<'a> ElfObject<'a> {
    /// Parse and check an ELF64 little-endian `EM_BPF` relocatable object.
    pub fn parse(data: &'a [u8]) -> Result<Self, LoadError> {
        match FileKind::parse(data) {
            Ok(FileKind::Elf64) => {}
            Ok(FileKind::Elf32) => return Err(LoadError::WrongClass),
            Ok(other) => {
                return Err(LoadError::NotElf {
                    reason: format!("file kind is {other:?}"),
                })
            }
            Err(e) => {
                return Err(LoadError::NotElf {
                    reason: e.to_string(),
                })
            }
        }
        let header = elf::FileHeader64::<Endianness>::parse(data)?;
        let endian = header.endian()?;
        if endian == Endianness::Big {
            return Err(LoadError::BigEndian);
        }
        let machine = header.e_machine(endian);
        if machine != elf::EM_BPF {
            return Err(LoadError::WrongMachine { machine: machine.0 });
        }
        let table = header.sections(endian, data)?;
        let shstrndx = if table.is_empty() {
            0
        } else {
            header.shstrndx(endian, data).unwrap_or(0) as usize
        };
        let shstrtab = StrTab::new(
            table_bytes(&table, endian, data, shstrndx, "the section name table")?,
            "the section name table",
        )?;
        let mut sections = Vec::with_capacity(table.len());
        let mut with_bytes = Vec::new();
        for (index, sh) in table.enumerate() {
            let name = shstrtab.get(sh.sh_name(endian)).ok_or_else(|| {
                LoadError::malformed(format!(
                    "section {} has name offset {}, outside the section name table",
                    index.0,
                    sh.sh_name(endian)
                ))
            })?;
            let sh_type = sh.sh_type(endian);
            if let Some((off, size)) = sh.file_range(endian) {
                let in_file = off
                    .checked_add(size)
                    .is_some_and(|end| end <= data.len() as u64);
                if size > 0 && in_file {
                    with_bytes.push((index.0, off, size, name.clone()));
                }
            }
            let kind = if sh_type == elf::SHT_PROGBITS {
                SectionKind::Progbits
            } else if sh_type == elf::SHT_NOBITS {
                SectionKind::Nobits
            } else {
                SectionKind::Other
            };
            let bytes: &'a [u8] = if kind == SectionKind::Progbits {
                sh.data(endian, data).map_err(|_| {
                    LoadError::malformed(format!("section {name} lies outside the file"))
                })?
            } else {
                &[]
            };
            sections.push(Section {
                index: index.0,
                name,
                kind,
                flags: sh.sh_flags(endian).0,
                data: bytes,
                size: sh.sh_size(endian),
                relocations: Vec::new(),
            });
        }

        check_no_overlap(&with_bytes)?;

        let symtab = table.symbols(endian, data, elf::SHT_SYMTAB)?;
        let strtab = StrTab::new(
            table_bytes(
                &table,
                endian,
                data,
                symtab.string_section().0,
                "the symbol name table",
            )?,
            "the symbol name table",
        )?;
        let mut symbols = Vec::with_capacity(symtab.len());
        for (i, sym) in symtab.iter().enumerate() {
            let name = strtab.get(sym.st_name(endian)).ok_or_else(|| {
                LoadError::malformed(format!(
                    "symbol {i} has name offset {}, outside the symbol name table",
                    sym.st_name(endian)
                ))
            })?;
            let shndx = sym.st_shndx(endian);
            let section = match shndx.index() {
                Some(i) if usize::from(i) < sections.len() => Some(usize::from(i)),
                Some(i) => {
                    return Err(LoadError::malformed(format!(
                        "symbol {name} refers to section {i}, which does not exist"
                    )))
                }
                None => None,
            };
            let st_type = sym.st_type();
            let kind = if st_type == elf::STT_FUNC {
                SymbolKind::Func
            } else if st_type == elf::STT_OBJECT {
                SymbolKind::Object
            } else if st_type == elf::STT_SECTION {
                SymbolKind::Section
            } else if st_type == elf::STT_NOTYPE {
                SymbolKind::NoType
            } else {
                SymbolKind::Other
            };
            symbols.push(Symbol {
                name,
                section,
                value: sym.st_value(endian),
                size: sym.st_size(endian),
                kind,
                bind: sym.st_bind().0,
            });
        }

        for sh in table.iter() {
            if sh.sh_type(endian) == elf::SHT_RELA {
                return Err(LoadError::Unsupported {
                    section: shstrtab.get(sh.sh_name(endian)).unwrap_or_default().into(),
                    what: "RELA relocation sections (clang emits REL for BPF)".into(),
                });
            }
            let Some((rels, _link)) = sh.rel(endian, data)? else {
                continue;
            };
            let rel_name = shstrtab.get(sh.sh_name(endian)).unwrap_or_default();
            let target = sh.sh_info(endian) as usize;
            if target == 0 || target >= sections.len() {
                return Err(LoadError::malformed(format!(
                    "relocation section {rel_name} applies to section {target}, which does not exist"
                )));
            }
            let mut relocs = Vec::with_capacity(rels.len());
            for rel in rels {
                let symbol = rel.r_sym(endian) as usize;
                if symbol >= symbols.len() {
                    return Err(LoadError::malformed(format!(
                        "relocation in {rel_name} refers to symbol {symbol}, which does not exist"
                    )));
                }
                relocs.push(Reloc {
                    offset: rel.r_offset(endian),
                    symbol,
                    r_type: rel.r_type(endian).0,
                });
            }
            sections[target].relocations.extend(relocs);
        }
        let mut section_symbols = vec![Vec::new(); sections.len()];
        let mut by_section_and_name = HashMap::new();
        for (i, sym) in symbols.iter().enumerate() {
            if let Some(sec) = sym.section {
                section_symbols[sec].push(i);
                if sym.name.len() <= MAX_NAME_LEN {
                    by_section_and_name
                        .entry((sec, sym.name.clone()))
                        .or_insert(i);
                }
            }
        }
        let mut by_name = HashMap::new();
        for s in sections.iter().filter(|s| s.name.len() <= MAX_NAME_LEN) {
            by_name.entry(s.name.clone()).or_insert(s.index);
        }
        Ok(Self {
            sections,
            symbols,
            section_symbols,
            by_section_and_name,
            by_name,
        })
    }

    /// The (first) section named `name`, if any. Names longer than [`MAX_NAME_LEN`] are
    /// not looked up.
    pub fn section_by_name(&self, name: &str) -> Option<&Section<'a>> {
        if name.len() > MAX_NAME_LEN {
            return None;
        }
        self.by_name.get(name).map(|&i| &self.sections[i])
    }

    /// The symbols defined in section `index`, in symbol table order.
    pub fn symbols_in(&self, index: usize) -> impl Iterator<Item = &Symbol> {
        self.section_symbols
            .get(index)
            .into_iter()
            .flatten()
            .map(|&i| &self.symbols[i])
    }

    /// The first symbol named `name` defined in section `index`.
    pub fn symbol_in(&self, index: usize, name: &SharedStr) -> Option<&Symbol> {
        if name.len() > MAX_NAME_LEN {
            return None;
        }
        self.by_section_and_name
            .get(&(index, name.clone()))
            .map(|&i| &self.symbols[i])
    }
}
