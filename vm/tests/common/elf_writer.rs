//! A small writer of BPF ELF objects, `.BTF` and `.BTF.ext` sections, for tests that need
//! objects no compiler would emit (hostile sizes, shared strings, huge counts). It has no
//! dependencies so the fuzz targets include it too (`fuzz/src/lib.rs`).
//!
//! Layout follows the ELF64 gABI and the kernel's `include/uapi/linux/btf.h`:
//! little-endian, `EM_BPF`, `ET_REL`.
#![allow(dead_code)]

use std::collections::HashMap;

/// `SHT_PROGBITS`.
pub const SHT_PROGBITS: u32 = 1;
/// `SHT_SYMTAB`.
pub const SHT_SYMTAB: u32 = 2;
/// `SHT_STRTAB`.
pub const SHT_STRTAB: u32 = 3;
/// `SHT_NOBITS`.
pub const SHT_NOBITS: u32 = 8;
/// `SHT_REL`.
pub const SHT_REL: u32 = 9;
/// `SHF_WRITE`.
pub const SHF_WRITE: u64 = 1;
/// `SHF_ALLOC`.
pub const SHF_ALLOC: u64 = 2;
/// `SHF_EXECINSTR`.
pub const SHF_EXECINSTR: u64 = 4;
/// `STT_OBJECT`.
pub const STT_OBJECT: u8 = 1;
/// `STT_FUNC`.
pub const STT_FUNC: u8 = 2;
/// `STT_SECTION`.
pub const STT_SECTION: u8 = 3;
/// `R_BPF_64_64` (an `ld_imm64` of a symbol).
pub const R_BPF_64_64: u32 = 1;
/// `R_BPF_64_32` (a call's immediate).
pub const R_BPF_64_32: u32 = 10;

/// An interning string table: equal strings share one offset.
#[derive(Debug, Default, Clone)]
pub struct StrTable {
    bytes: Vec<u8>,
    offsets: HashMap<String, u32>,
}

impl StrTable {
    /// A table holding only the empty string at offset 0.
    pub fn new() -> Self {
        let mut t = Self::default();
        t.add("");
        t
    }

    /// Offset of `s`, added on first use.
    pub fn add(&mut self, s: &str) -> u32 {
        if let Some(&off) = self.offsets.get(s) {
            return off;
        }
        let off = self.bytes.len() as u32;
        self.bytes.extend_from_slice(s.as_bytes());
        self.bytes.push(0);
        self.offsets.insert(s.to_string(), off);
        off
    }

    /// The table's bytes.
    pub fn bytes(&self) -> &[u8] {
        &self.bytes
    }
}

#[derive(Debug, Clone)]
struct Section {
    name: String,
    sh_type: u32,
    flags: u64,
    data: Vec<u8>,
    /// `sh_size` for `SHT_NOBITS`.
    nobits_size: u64,
    link: u32,
    info: u32,
    entsize: u64,
    /// Reuse the bytes of another section (to make overlapping sections).
    alias_of: Option<usize>,
}

/// The relocations of one section: `(byte offset, symbol, type)`.
type Rels = Vec<(u64, u32, u32)>;

/// A BPF relocatable object under construction.
#[derive(Debug, Clone)]
pub struct Elf {
    sections: Vec<Section>,
    /// (name, section, value, size, type) — section 0 for undefined.
    symbols: Vec<(String, u16, u64, u64, u8)>,
    rels: Vec<(usize, Rels)>,
}

impl Default for Elf {
    fn default() -> Self {
        Self::new()
    }
}

fn put16(out: &mut Vec<u8>, v: u16) {
    out.extend_from_slice(&v.to_le_bytes());
}
fn put32(out: &mut Vec<u8>, v: u32) {
    out.extend_from_slice(&v.to_le_bytes());
}
fn put64(out: &mut Vec<u8>, v: u64) {
    out.extend_from_slice(&v.to_le_bytes());
}

/// Encode one instruction: `opcode | dst << 8 | src << 12 | off << 16 | imm << 32`.
pub fn insn(opcode: u8, dst: u8, src: u8, off: i16, imm: i32) -> u64 {
    u64::from(opcode)
        | u64::from(dst & 0xf) << 8
        | u64::from(src & 0xf) << 12
        | u64::from(off as u16) << 16
        | u64::from(imm as u32) << 32
}

/// `r0 = 0`.
pub const MOV_R0_0: u64 = 0xb7;
/// `exit`.
pub const EXIT: u64 = 0x95;

/// `call pc+imm` to a bpf-to-bpf subprogram (`src_reg` 1).
pub fn call_local(imm: i32) -> u64 {
    insn(0x85, 0, 1, 0, imm)
}

impl Elf {
    /// An object with only the null section.
    pub fn new() -> Self {
        Self {
            sections: vec![Section {
                name: String::new(),
                sh_type: 0,
                flags: 0,
                data: Vec::new(),
                nobits_size: 0,
                link: 0,
                info: 0,
                entsize: 0,
                alias_of: None,
            }],
            symbols: vec![(String::new(), 0, 0, 0, 0)],
            rels: Vec::new(),
        }
    }

    /// Add a section with bytes; returns its index.
    pub fn section(&mut self, name: &str, sh_type: u32, flags: u64, data: Vec<u8>) -> usize {
        self.sections.push(Section {
            name: name.to_string(),
            sh_type,
            flags,
            data,
            nobits_size: 0,
            link: 0,
            info: 0,
            entsize: 0,
            alias_of: None,
        });
        self.sections.len() - 1
    }

    /// A code section (`SHF_ALLOC | SHF_EXECINSTR`).
    pub fn code(&mut self, name: &str, insns: &[u64]) -> usize {
        let data = insns.iter().flat_map(|i| i.to_le_bytes()).collect();
        self.section(name, SHT_PROGBITS, SHF_ALLOC | SHF_EXECINSTR, data)
    }

    /// A data section (`SHF_ALLOC | SHF_WRITE`).
    pub fn data(&mut self, name: &str, bytes: Vec<u8>) -> usize {
        self.section(name, SHT_PROGBITS, SHF_ALLOC | SHF_WRITE, bytes)
    }

    /// A plain `SHT_PROGBITS` section with no flags (`.BTF`, `.BTF.ext`, `license`).
    pub fn progbits(&mut self, name: &str, bytes: Vec<u8>) -> usize {
        self.section(name, SHT_PROGBITS, 0, bytes)
    }

    /// A `SHT_NOBITS` section of `size` bytes (`.bss`): no bytes in the file.
    pub fn nobits(&mut self, name: &str, size: u64) -> usize {
        let i = self.section(name, SHT_NOBITS, SHF_ALLOC | SHF_WRITE, Vec::new());
        self.sections[i].nobits_size = size;
        i
    }

    /// A section header named `name` whose bytes are those of section `of`.
    pub fn alias(&mut self, name: &str, of: usize) -> usize {
        let mut s = self.sections[of].clone();
        s.name = name.to_string();
        s.data = Vec::new();
        s.alias_of = Some(of);
        self.sections.push(s);
        self.sections.len() - 1
    }

    /// Add a symbol; returns its index in `.symtab`.
    pub fn symbol(&mut self, name: &str, section: usize, value: u64, size: u64, ty: u8) -> u32 {
        self.symbols
            .push((name.to_string(), section as u16, value, size, ty));
        (self.symbols.len() - 1) as u32
    }

    /// A function symbol over `len` instructions from instruction `start`.
    pub fn func(&mut self, name: &str, section: usize, start: u64, len: u64) -> u32 {
        self.symbol(name, section, start * 8, len * 8, STT_FUNC)
    }

    /// An object symbol (a map, a global variable).
    pub fn object(&mut self, name: &str, section: usize, off: u64, size: u64) -> u32 {
        self.symbol(name, section, off, size, STT_OBJECT)
    }

    /// A relocation of section `target` at byte `offset` against symbol `sym`.
    pub fn rel(&mut self, target: usize, offset: u64, sym: u32, r_type: u32) {
        match self.rels.iter_mut().find(|(t, _)| *t == target) {
            Some((_, list)) => list.push((offset, sym, r_type)),
            None => self.rels.push((target, vec![(offset, sym, r_type)])),
        }
    }

    /// The object file.
    pub fn build(&self) -> Vec<u8> {
        let mut sections = self.sections.clone();
        // Symbol names.
        let mut strtab = StrTable::new();
        let mut symtab = Vec::with_capacity(self.symbols.len() * 24);
        for (name, shndx, value, size, ty) in &self.symbols {
            put32(&mut symtab, strtab.add(name));
            let bind = if name.is_empty() { 0 } else { 1 };
            symtab.push((bind << 4) | ty);
            symtab.push(0);
            put16(&mut symtab, *shndx);
            put64(&mut symtab, *value);
            put64(&mut symtab, *size);
        }
        let symtab_index = sections.len();
        let strtab_index = symtab_index + 1;
        sections.push(Section {
            name: ".symtab".into(),
            sh_type: SHT_SYMTAB,
            flags: 0,
            data: symtab,
            nobits_size: 0,
            link: strtab_index as u32,
            info: 1,
            entsize: 24,
            alias_of: None,
        });
        sections.push(Section {
            name: ".strtab".into(),
            sh_type: SHT_STRTAB,
            flags: 0,
            data: strtab.bytes().to_vec(),
            nobits_size: 0,
            link: 0,
            info: 0,
            entsize: 0,
            alias_of: None,
        });
        for (target, list) in &self.rels {
            let mut data = Vec::with_capacity(list.len() * 16);
            for &(offset, sym, r_type) in list {
                put64(&mut data, offset);
                put64(&mut data, (u64::from(sym) << 32) | u64::from(r_type));
            }
            sections.push(Section {
                name: format!(".rel{}", self.sections[*target].name),
                sh_type: SHT_REL,
                flags: 0,
                data,
                nobits_size: 0,
                link: symtab_index as u32,
                info: *target as u32,
                entsize: 16,
                alias_of: None,
            });
        }
        let mut shstrtab = StrTable::new();
        let name_offs: Vec<u32> = sections.iter().map(|s| shstrtab.add(&s.name)).collect();
        let shstrndx = sections.len();
        let shstrtab_name = shstrtab.add(".shstrtab");
        sections.push(Section {
            name: ".shstrtab".into(),
            sh_type: SHT_STRTAB,
            flags: 0,
            data: shstrtab.bytes().to_vec(),
            nobits_size: 0,
            link: 0,
            info: 0,
            entsize: 0,
            alias_of: None,
        });

        let mut out = vec![0u8; 64];
        let mut placed = Vec::with_capacity(sections.len());
        for s in &sections {
            while out.len() % 8 != 0 {
                out.push(0);
            }
            match s.alias_of {
                Some(of) => placed.push(placed[of]),
                None => {
                    placed.push((out.len() as u64, s.data.len() as u64));
                    out.extend_from_slice(&s.data);
                }
            }
        }
        while out.len() % 8 != 0 {
            out.push(0);
        }
        let shoff = out.len() as u64;
        for (i, s) in sections.iter().enumerate() {
            let name = if i == shstrndx {
                shstrtab_name
            } else {
                name_offs[i]
            };
            let (offset, len) = placed[i];
            put32(&mut out, name);
            put32(&mut out, s.sh_type);
            put64(&mut out, s.flags);
            put64(&mut out, 0);
            put64(&mut out, if i == 0 { 0 } else { offset });
            put64(
                &mut out,
                if s.sh_type == SHT_NOBITS {
                    s.nobits_size
                } else {
                    len
                },
            );
            put32(&mut out, s.link);
            put32(&mut out, s.info);
            put64(&mut out, if s.sh_type == SHT_PROGBITS { 8 } else { 1 });
            put64(&mut out, s.entsize);
        }
        let mut header = Vec::with_capacity(64);
        header.extend_from_slice(&[0x7f, b'E', b'L', b'F', 2, 1, 1, 0]);
        header.extend_from_slice(&[0; 8]);
        put16(&mut header, 1); // ET_REL
        put16(&mut header, 247); // EM_BPF
        put32(&mut header, 1);
        put64(&mut header, 0);
        put64(&mut header, 0);
        put64(&mut header, shoff);
        put32(&mut header, 0);
        put16(&mut header, 64);
        put16(&mut header, 0);
        put16(&mut header, 0);
        put16(&mut header, 64);
        put16(&mut header, sections.len() as u16);
        put16(&mut header, shstrndx as u16);
        out[..64].copy_from_slice(&header);
        out
    }
}

/// BTF kinds (`BTF_KIND_*`).
pub mod kind {
    /// `BTF_KIND_INT`.
    pub const INT: u32 = 1;
    /// `BTF_KIND_PTR`.
    pub const PTR: u32 = 2;
    /// `BTF_KIND_ARRAY`.
    pub const ARRAY: u32 = 3;
    /// `BTF_KIND_STRUCT`.
    pub const STRUCT: u32 = 4;
    /// `BTF_KIND_UNION`.
    pub const UNION: u32 = 5;
    /// `BTF_KIND_ENUM`.
    pub const ENUM: u32 = 6;
    /// `BTF_KIND_TYPEDEF`.
    pub const TYPEDEF: u32 = 8;
    /// `BTF_KIND_VAR`.
    pub const VAR: u32 = 14;
    /// `BTF_KIND_DATASEC`.
    pub const DATASEC: u32 = 15;
}

/// A `.BTF` section under construction. Names are string offsets, so a test can make
/// many types share one string (or point into the middle of one).
#[derive(Debug, Default, Clone)]
pub struct Btf {
    /// The string table.
    pub strings: StrTable,
    words: Vec<u32>,
    count: u32,
}

impl Btf {
    /// An empty BTF (type 0 is void).
    pub fn new() -> Self {
        Self {
            strings: StrTable::new(),
            words: Vec::new(),
            count: 0,
        }
    }

    /// Offset of string `s` in the string table (added on first use).
    pub fn name(&mut self, s: &str) -> u32 {
        self.strings.add(s)
    }

    /// Append a raw type: header words and the records after them; returns its id.
    pub fn raw(&mut self, name_off: u32, info: u32, size_or_type: u32, rest: &[u32]) -> u32 {
        self.words
            .extend_from_slice(&[name_off, info, size_or_type]);
        self.words.extend_from_slice(rest);
        self.count += 1;
        self.count
    }

    /// `BTF_KIND_INT` of `size` bytes.
    pub fn int(&mut self, name: &str, size: u32, signed: bool) -> u32 {
        let n = self.name(name);
        let enc = (u32::from(signed) << 24) | (size * 8);
        self.raw(n, kind::INT << 24, size, &[enc])
    }

    /// `BTF_KIND_PTR`.
    pub fn ptr(&mut self, target: u32) -> u32 {
        self.raw(0, kind::PTR << 24, target, &[])
    }

    /// `BTF_KIND_ARRAY` of `nelems` elements (index type `index`).
    pub fn array(&mut self, elem: u32, index: u32, nelems: u32) -> u32 {
        self.raw(0, kind::ARRAY << 24, 0, &[elem, index, nelems])
    }

    /// `BTF_KIND_STRUCT` or `BTF_KIND_UNION` (`kind`): members are
    /// `(name offset, type, bit offset)`.
    pub fn composite(
        &mut self,
        k: u32,
        name_off: u32,
        size: u32,
        members: &[(u32, u32, u32)],
    ) -> u32 {
        let rest: Vec<u32> = members
            .iter()
            .flat_map(|&(n, t, off)| [n, t, off])
            .collect();
        self.raw(name_off, (k << 24) | members.len() as u32, size, &rest)
    }

    /// `BTF_KIND_VAR` (global linkage).
    pub fn var(&mut self, name: &str, target: u32) -> u32 {
        let n = self.name(name);
        self.raw(n, kind::VAR << 24, target, &[1])
    }

    /// `BTF_KIND_DATASEC`: variables are `(var type, offset, size)`.
    pub fn datasec(&mut self, name: &str, size: u32, vars: &[(u32, u32, u32)]) -> u32 {
        let n = self.name(name);
        let rest: Vec<u32> = vars.iter().flat_map(|&(t, o, s)| [t, o, s]).collect();
        self.raw(n, (kind::DATASEC << 24) | vars.len() as u32, size, &rest)
    }

    /// A BTF map attribute `__uint(name, value)`: a pointer to an array of `value` ints.
    pub fn uint_attr(&mut self, int: u32, value: u32) -> u32 {
        let arr = self.array(int, int, value);
        self.ptr(arr)
    }

    /// A BTF-defined map `name` (`__uint(type)`, `__uint(max_entries)`, `__type(key)`,
    /// `__type(value)`; a 32-byte definition struct); returns its VAR id.
    pub fn map_var(
        &mut self,
        int: u32,
        name: &str,
        map_type: u32,
        entries: u32,
        key: u32,
        value: u32,
    ) -> u32 {
        let t = self.uint_attr(int, map_type);
        let e = self.uint_attr(int, entries);
        let k = self.ptr(key);
        let v = self.ptr(value);
        let members = [
            (self.name("type"), t, 0),
            (self.name("max_entries"), e, 64),
            (self.name("key"), k, 128),
            (self.name("value"), v, 192),
        ];
        let def = self.composite(kind::STRUCT, 0, 32, &members);
        self.var(name, def)
    }

    /// The section bytes.
    pub fn build(&self) -> Vec<u8> {
        let types: Vec<u8> = self.words.iter().flat_map(|w| w.to_le_bytes()).collect();
        let strings = self.strings.bytes();
        let mut out = Vec::with_capacity(24 + types.len() + strings.len());
        out.extend_from_slice(&[0x9f, 0xeb, 1, 0]);
        for w in [
            24u32,
            0,
            types.len() as u32,
            types.len() as u32,
            strings.len() as u32,
        ] {
            put32(&mut out, w);
        }
        out.extend_from_slice(&types);
        out.extend_from_slice(strings);
        out
    }
}

/// One line info record: byte offset of the instruction, file name and line text
/// (string offsets into the `.BTF` string table), line and column.
#[derive(Debug, Clone, Copy)]
pub struct LineRecord {
    /// Byte offset of the instruction in its section.
    pub insn_off: u32,
    /// File name offset.
    pub file: u32,
    /// Line text offset.
    pub line_text: u32,
    /// Line number.
    pub line: u32,
    /// Column.
    pub column: u32,
}

/// A `.BTF.ext` section with line info only: `(section name offset, records)`.
pub fn btf_ext_lines(sections: &[(u32, Vec<LineRecord>)]) -> Vec<u8> {
    let mut lines = Vec::new();
    put32(&mut lines, 16);
    for (name, records) in sections {
        put32(&mut lines, *name);
        put32(&mut lines, records.len() as u32);
        for r in records {
            put32(&mut lines, r.insn_off);
            put32(&mut lines, r.file);
            put32(&mut lines, r.line_text);
            put32(&mut lines, (r.line << 10) | (r.column & 0x3ff));
        }
    }
    let mut out = Vec::with_capacity(24 + lines.len());
    out.extend_from_slice(&[0x9f, 0xeb, 1, 0]);
    // hdr_len, func_info_off, func_info_len, line_info_off, line_info_len
    for w in [24u32, 0, 0, 0, lines.len() as u32] {
        put32(&mut out, w);
    }
    out.extend_from_slice(&lines);
    out
}
