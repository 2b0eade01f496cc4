//! The ELF layer: sections, symbols and relocations of a BPF object, read with the
//! `object` crate's checked low-level ELF API (every offset is bounds-checked there).

use object::elf;
use object::read::elf::{FileHeader as _, Rel as _, SectionHeader as _, Sym as _};
use object::{Endianness, FileKind};

use super::error::LoadError;

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
    pub name: String,
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
    pub name: String,
    /// Defining section, `None` for undefined (extern) and special symbols.
    pub section: Option<usize>,
    pub value: u64,
    pub size: u64,
    pub kind: SymbolKind,
}

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
        let mut sections = Vec::with_capacity(table.len());
        for (index, sh) in table.enumerate() {
            let name = String::from_utf8_lossy(table.section_name(endian, sh)?).into_owned();
            let sh_type = sh.sh_type(endian);
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

        let symtab = table.symbols(endian, data, elf::SHT_SYMTAB)?;
        let mut symbols = Vec::with_capacity(symtab.len());
        for sym in symtab.iter() {
            let name = String::from_utf8_lossy(symtab.symbol_name(endian, sym)?).into_owned();
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
            });
        }

        for sh in table.iter() {
            if sh.sh_type(endian) == elf::SHT_RELA {
                return Err(LoadError::Unsupported {
                    section: String::from_utf8_lossy(table.section_name(endian, sh)?).into_owned(),
                    what: "RELA relocation sections (clang emits REL for BPF)".into(),
                });
            }
            let Some((rels, _link)) = sh.rel(endian, data)? else {
                continue;
            };
            let rel_name = String::from_utf8_lossy(table.section_name(endian, sh)?).into_owned();
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
        Ok(Self { sections, symbols })
    }

    /// The section named `name`, if any.
    pub fn section_by_name(&self, name: &str) -> Option<&Section<'a>> {
        self.sections.iter().find(|s| s.name == name)
    }
}
