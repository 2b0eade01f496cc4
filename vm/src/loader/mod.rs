//! Loading clang-compiled BPF ELF objects: programs, maps, global data, relocations.
//!
//! [`Object::parse`] reads an object the way libbpf would and keeps everything
//! self-contained: [`MapDefinition`]s (nothing is created yet) and
//! [`ProgramDefinition`]s whose instructions reference maps in the kernel's pseudo
//! `ld_imm64` forms (see `docs/internals.md`).
//!
//! ```
//! use bpfvm::loader::Object;
//! use bpfvm::ProgramType;
//!
//! let bytes = include_bytes!("../../tests/fixtures/percpu_counter.o");
//! let obj = Object::parse_named("percpu_counter", bytes)?;
//! let prog = obj.program("count_packets").expect("program");
//! assert_eq!(prog.program_type, ProgramType::Xdp);
//! let names: Vec<_> = prog.maps.iter().map(|&i| obj.maps()[i].name.as_str()).collect();
//! assert_eq!(names, ["counts", "total"]);
//! assert_eq!(obj.map("counts").unwrap().map_type_name(), "percpu_array");
//!
//! // Live maps on 4 simulated CPUs, found by name.
//! let maps = obj.create_maps(4)?;
//! let mut per_cpu = [0u8; 4 * 8];
//! maps.get("counts").unwrap().lookup(&0u32.to_ne_bytes(), &mut per_cpu, 0).unwrap();
//! assert_eq!(per_cpu, [0; 32]);
//! # Ok::<(), bpfvm::loader::LoadError>(())
//! ```
//!
//! Parsing uses the `object` crate's checked ELF reader plus a small BTF reader of
//! our own ([`Btf`]), so it builds for every target; malformed input is a
//! [`LoadError`], never a panic.

mod btf;
mod btf_ext;
mod btf_file;
mod btf_kernel;
mod btf_parse;
mod btf_show;
mod core;
mod decode;
mod dump;
mod elf;
mod error;
mod externs;
mod inner_map;
mod instance;
mod into_vm;
mod kfunc_proto;
pub mod limits;
mod link;
mod map_def;
mod map_poison;
mod map_slots;
mod map_values;
mod per_map;
mod program;
mod section_types;
mod strtab;
mod tracing_target;

use std::collections::HashMap;
use std::path::Path;

pub use btf::{Btf, BtfMember, BtfType, BtfVarSecinfo};
pub use core::{is_abi_type, CorePoison, CoreRelocKind, ABI_TYPES, CORE_POISON_HELPER};
pub use decode::BtfValue;
pub use dump::MapEntry;
pub use error::LoadError;
pub use externs::{KernelConfig, DEFAULT_KERNEL_VERSION, MAX_KCONFIG_ENTRIES};
pub use instance::ObjectMaps;
pub use link::RefusedProgram;
pub(crate) use map_def::MAP_TYPE_NAMES;
pub use map_def::{
    internal_map_name, map_type_name, GlobalDataKind, LegacyMapFields, MapDefinition, MapKind,
    RefusedMap, BPF_F_RDONLY_PROG, BPF_MAP_TYPE_ARRAY,
};
pub use map_poison::{is_map_poison, MapPoison, POISON_LDIMM64_MAP_BASE, POISON_LDIMM64_MAP_RANGE};
pub use map_values::{SlotInit, SlotTarget};
pub use program::{
    ProgramDefinition, SourceLine, TargetBtf, PSEUDO_CALL, PSEUDO_FUNC, PSEUDO_KFUNC_CALL,
    PSEUDO_MAP_FD, PSEUDO_MAP_VALUE,
};
pub use section_types::{
    attach_type_name, program_type_for_section, section_type, KernelProgType, SectionType,
    SECTION_DEFS,
};
pub use strtab::SharedStr;
pub use tracing_target::tracing_ctx;

/// A parsed BPF object file.
///
/// Loading is per program: a program that cannot be linked, or that uses a map or extern
/// that cannot be loaded, is a [`RefusedProgram`] with its own error, and every other
/// program loads ([`Object::programs`] has those, [`Object::program_results`] both in
/// file order). [`Object::require_all`] turns the object back into libbpf's all or
/// nothing.
#[derive(Debug, Clone)]
pub struct Object {
    name: String,
    license: Option<String>,
    programs: Vec<ProgramDefinition>,
    refused_programs: Vec<RefusedProgram>,
    /// Both kinds in file order: `Ok(i)` in `programs`, `Err(i)` in `refused_programs`.
    order: Vec<Result<usize, usize>>,
    maps: Vec<MapDefinition>,
    refused_maps: Vec<RefusedMap>,
    btf: Option<Btf>,
    index: NameIndex,
    /// `values` initialisers of the maps (`loader::map_values`).
    slot_inits: Vec<SlotInit>,
}

/// Options for [`Object::parse_with`].
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct LoadOptions {
    /// Values of `__kconfig` externs ([`KernelConfig::default`]: kernel 6.18.0, no
    /// `CONFIG_*` option set).
    pub kconfig: KernelConfig,
}

/// Programs and maps by name, so a lookup is not a scan (names up to
/// [`limits::MAX_NAME_LEN`]; longer ones are looked up by scanning).
#[derive(Debug, Clone, Default)]
struct NameIndex {
    /// Programs by function name, then by section name (the first of each).
    program_names: HashMap<SharedStr, usize>,
    program_sections: HashMap<SharedStr, usize>,
    /// Maps by name, then by alias (the first of each).
    map_names: HashMap<SharedStr, usize>,
    map_aliases: HashMap<SharedStr, usize>,
}

impl NameIndex {
    fn new(programs: &[ProgramDefinition], maps: &[MapDefinition]) -> Self {
        fn add(index: &mut HashMap<SharedStr, usize>, name: &SharedStr, i: usize) {
            if name.len() <= limits::MAX_NAME_LEN {
                index.entry(name.clone()).or_insert(i);
            }
        }
        let mut x = Self::default();
        for (i, p) in programs.iter().enumerate() {
            add(&mut x.program_names, &p.name, i);
            add(&mut x.program_sections, &p.section, i);
        }
        for (i, m) in maps.iter().enumerate() {
            add(&mut x.map_names, &m.name, i);
            for a in &m.aliases {
                add(&mut x.map_aliases, a, i);
            }
        }
        x
    }
}

impl Object {
    /// Parse an object with the default object name `bpf` (used to name global data
    /// maps, e.g. `bpf.bss`; the plain section name `.bss` works too).
    ///
    /// Fails with a [`LoadError`] for anything malformed or unsupported.
    pub fn parse(bytes: &[u8]) -> Result<Self, LoadError> {
        Self::parse_named("bpf", bytes)
    }

    /// Parse an object, naming it `name` as libbpf names objects after their file.
    ///
    /// CO-RE relocations resolve against the program's own [ABI types](ABI_TYPES) only;
    /// give a target BTF with [`Object::parse_with_btf`] for kernel-internal types.
    pub fn parse_named(name: &str, bytes: &[u8]) -> Result<Self, LoadError> {
        Self::parse_with(name, bytes, &LoadOptions::default())
    }

    /// Parse an object, resolving its CO-RE relocations against `target` (e.g. the
    /// kernel's `/sys/kernel/btf/vmlinux`, read with [`Btf::from_file`]) and, for the
    /// [ABI types](ABI_TYPES) `target` lacks, the program's own BTF. A relocation that
    /// resolves to nothing poisons its instruction ([`ProgramDefinition::core_poisons`]).
    ///
    /// ```
    /// use bpfvm::loader::{Btf, Object};
    ///
    /// let obj = include_bytes!("../../tests/fixtures/core_relo.o");
    /// // Without a target, the read of task_struct.tgid is poisoned.
    /// let poisoned = Object::parse_named("core_relo", obj)?;
    /// assert_eq!(poisoned.program("read_pid").unwrap().core_poisons.len(), 1);
    /// // core_target.btf has task_struct, with tgid at offset 20.
    /// let target = Btf::parse_any(include_bytes!("../../tests/fixtures/core_target.btf"))?;
    /// let obj = Object::parse_with_btf("core_relo", obj, Some(&target))?;
    /// assert!(obj.program("read_pid").unwrap().core_poisons.is_empty());
    /// # Ok::<(), bpfvm::loader::LoadError>(())
    /// ```
    pub fn parse_with_btf(
        name: &str,
        bytes: &[u8],
        target: Option<&Btf>,
    ) -> Result<Self, LoadError> {
        Self::parse_full(name, bytes, &LoadOptions::default(), target)
    }

    /// Parse an object named `name` with `options` (e.g. the values of `__kconfig`
    /// externs).
    ///
    /// Fails only for what breaks the whole object (malformed ELF or BTF, a broken
    /// `.maps` section); a problem of one program or map refuses just the programs it
    /// touches ([`Object::refused_programs`]).
    ///
    /// ```
    /// use bpfvm::loader::{KernelConfig, LoadOptions, Object};
    ///
    /// let bytes = include_bytes!("../../tests/fixtures/kconfig.o");
    /// let mut kconfig = KernelConfig::default();
    /// kconfig.set_kernel_version(5, 15, 0);
    /// let obj = Object::parse_with("kconfig", bytes, &LoadOptions { kconfig })?;
    /// let version = obj.map(".kconfig").unwrap().initial_data.clone().unwrap();
    /// assert_eq!(version, 0x050f00u32.to_ne_bytes());
    /// # Ok::<(), bpfvm::loader::LoadError>(())
    /// ```
    pub fn parse_with(name: &str, bytes: &[u8], options: &LoadOptions) -> Result<Self, LoadError> {
        Self::parse_full(name, bytes, options, None)
    }

    /// Parse an object with `options` and CO-RE relocations resolved against `target`
    /// (both [`Object::parse_with`] and [`Object::parse_with_btf`]).
    pub fn parse_full(
        name: &str,
        bytes: &[u8],
        options: &LoadOptions,
        target: Option<&Btf>,
    ) -> Result<Self, LoadError> {
        let elf = elf::ElfObject::parse(bytes)?;
        let mut btf = match elf.section_by_name(".BTF") {
            Some(s) => Some(Btf::parse(s.data)?),
            None => None,
        };
        if let Some(btf) = btf.as_mut() {
            for section in &elf.sections {
                if elf.section_by_name(&section.name).map(|s| s.index) != Some(section.index) {
                    continue; // only the first section of a name has its DATASEC
                }
                let size = u32::try_from(section.size).unwrap_or(u32::MAX);
                btf.fixup_datasec(&section.name, size, |var| {
                    elf.symbol_in(section.index, var)
                        .and_then(|s| u32::try_from(s.value).ok())
                });
            }
        }
        let mut lines = std::collections::HashMap::new();
        let mut core_patches = std::collections::HashMap::new();
        if let Some(ext) = elf.section_by_name(".BTF.ext") {
            let relos = btf_ext::core_relocations(ext.data, btf.as_ref())?;
            if let (Some(local), false) = (&btf, relos.is_empty()) {
                core_patches = core::relocate(&relos, local, target, |name| {
                    elf.section_by_name(name)
                        .filter(|s| s.is_code())
                        .map(|s| s.data)
                })?;
            }
            if let Some(btf) = &btf {
                lines = btf_ext::line_info(ext.data, btf)?;
            }
        }
        let mut refused_maps = Vec::new();
        let mut maps = map_def::legacy_maps(&elf, &mut refused_maps)?;
        maps.extend(map_def::btf_maps(&elf, btf.as_ref(), &mut refused_maps)?);
        // `values` initialisers; a map whose initialisers are malformed is refused.
        let (slot_inits, bad_inits) = map_values::slot_inits(&elf, btf.as_ref(), &maps);
        for (name, error) in bad_inits {
            if let Some(at) = maps.iter().position(|m| m.name == name) {
                let m = maps.remove(at);
                refused_maps.push(RefusedMap {
                    name: m.name,
                    error,
                    section_index: m.section_index,
                    section_offset: m.section_offset,
                });
            }
        }
        // A map-in-map's initial maps (libbpf fills them once every map exists).
        for m in maps.iter_mut() {
            m.initial_slots = slot_inits
                .iter()
                .filter(|i| i.map == m.name)
                .filter_map(|i| match &i.target {
                    SlotTarget::Map(inner) => Some((i.slot, inner.clone())),
                    SlotTarget::Program(_) => None,
                })
                .collect();
        }
        let mut maps = map_slots::with_legacy_templates(&maps);
        // A kernel map type bpfvm does not simulate refuses only the programs using it.
        maps.retain(|m| match m.to_spec() {
            Ok(_) => true,
            Err(error) => {
                refused_maps.push(RefusedMap {
                    name: m.name.clone(),
                    error,
                    section_index: m.section_index,
                    section_offset: m.section_offset,
                });
                false
            }
        });
        maps.extend(map_def::global_data_maps(&elf, name, btf.as_ref())?);
        let externs = externs::resolve(&elf, btf.as_ref(), name, &options.kconfig);
        maps.extend(externs.kconfig_map.clone());
        let linker =
            link::Linker::new(&elf, &maps, &refused_maps, &externs, &lines, &core_patches)?;
        let (mut programs, mut refused_programs, mut order) = (Vec::new(), Vec::new(), Vec::new());
        // One copy of the target BTF's indexes for all programs (its types are shared).
        let shared_target = target.map(|t| program::TargetBtf(std::sync::Arc::new(t.clone())));
        for p in linker.programs() {
            let refused = match p {
                Ok(mut p) => match tracing_target::attach(&mut p, target) {
                    None if target.is_some() => {
                        p.kernel_btf = shared_target.clone();
                        order.push(Ok(programs.len()));
                        programs.push(p);
                        continue;
                    }
                    // A tracing program needs its attach target in the target BTF.
                    Some(error) => RefusedProgram {
                        name: p.name.clone(),
                        section: p.section.clone(),
                        error,
                    },
                    None => {
                        order.push(Ok(programs.len()));
                        programs.push(p);
                        continue;
                    }
                },
                Err(r) => r,
            };
            order.push(Err(refused_programs.len()));
            refused_programs.push(refused);
        }
        let license = elf.section_by_name("license").map(|s| {
            let end = s.data.iter().position(|&b| b == 0).unwrap_or(s.data.len());
            String::from_utf8_lossy(&s.data[..end]).into_owned()
        });
        let index = NameIndex::new(&programs, &maps);
        Ok(Self {
            name: name.to_owned(),
            license,
            programs,
            refused_programs,
            order,
            maps,
            refused_maps,
            btf,
            index,
            slot_inits,
        })
    }

    /// The `values` initialisers of the object's maps (`__array(values, ...)`): for a
    /// PROG_ARRAY, the programs [`ObjectLoader::load`](crate::ObjectLoader::load) puts in
    /// its slots.
    ///
    /// ```
    /// use bpfvm::loader::{Object, SlotTarget};
    ///
    /// let bytes = include_bytes!("../../tests/fixtures/tail_call.o");
    /// let obj = Object::parse_named("tail_call", bytes)?;
    /// let jmp: Vec<_> = obj.slot_inits().iter().filter(|i| &*i.map == "jmp").collect();
    /// assert_eq!(jmp[0].slot, 1);
    /// assert!(matches!(&jmp[0].target, SlotTarget::Program(p) if &**p == "xdp_second"));
    /// # Ok::<(), bpfvm::loader::LoadError>(())
    /// ```
    pub fn slot_inits(&self) -> &[SlotInit] {
        &self.slot_inits
    }

    /// The object if every program and map loads, else the first refused map's error,
    /// else the first refused program's: libbpf's all-or-nothing `bpf_object__load`
    /// (which creates the maps before it loads the programs).
    pub fn require_all(self) -> Result<Self, LoadError> {
        if let Some(m) = self.refused_maps.first() {
            return Err(m.error.clone());
        }
        if let Some(p) = self.refused_programs.first() {
            return Err(p.error.clone());
        }
        Ok(self)
    }

    /// The programs that cannot be loaded, each with its error, in file order.
    pub fn refused_programs(&self) -> &[RefusedProgram] {
        &self.refused_programs
    }

    /// The maps that cannot be loaded (unknown or unsupported type, bad definition), each
    /// with its error. They are not in [`Object::maps`]; programs using them are refused.
    pub fn refused_maps(&self) -> &[RefusedMap] {
        &self.refused_maps
    }

    /// Every program in file order: loaded (`Ok`) or refused with its error (`Err`).
    ///
    /// ```
    /// let bytes = include_bytes!("../../tests/fixtures/multi.o");
    /// let obj = bpfvm::loader::Object::parse_named("multi", bytes)?;
    /// assert_eq!(obj.program_results().count(), 8);
    /// assert!(obj.program_results().all(|r| r.is_ok()));
    /// # Ok::<(), bpfvm::loader::LoadError>(())
    /// ```
    pub fn program_results(
        &self,
    ) -> impl Iterator<Item = Result<&ProgramDefinition, &RefusedProgram>> + '_ {
        self.order.iter().map(|o| match *o {
            Ok(i) => Ok(&self.programs[i]),
            Err(i) => Err(&self.refused_programs[i]),
        })
    }

    /// The program `name_or_section` (function name, else the first program of that
    /// section), loaded or not: its definition, or the error that refused it, or
    /// [`LoadError::NoSuchProgram`].
    pub fn program_result(&self, name_or_section: &str) -> Result<&ProgramDefinition, LoadError> {
        if let Some(p) = self.program(name_or_section) {
            return Ok(p);
        }
        let refused = self
            .refused_programs
            .iter()
            .find(|p| p.name == name_or_section)
            .or_else(|| {
                self.refused_programs
                    .iter()
                    .find(|p| p.section == name_or_section)
            });
        match refused {
            Some(r) => Err(r.error.clone()),
            None => Err(LoadError::NoSuchProgram {
                name: name_or_section.to_owned(),
            }),
        }
    }

    /// Read and parse an object file; the object is named after the file as libbpf
    /// does (`dir/globals.bpf.o` → `globals`).
    ///
    /// Reads at most [`MAX_OBJECT_FILE_BYTES`](limits::MAX_OBJECT_FILE_BYTES): a larger
    /// file (or an endless one such as `/dev/zero`) is [`LoadError::TooLarge`].
    pub fn from_file(path: impl AsRef<Path>) -> Result<Self, LoadError> {
        Self::from_file_with_btf(path, None)
    }

    /// [`Object::from_file`], resolving CO-RE relocations against `target` as
    /// [`Object::parse_with_btf`] does.
    pub fn from_file_with_btf(
        path: impl AsRef<Path>,
        target: Option<&Btf>,
    ) -> Result<Self, LoadError> {
        let path = path.as_ref();
        let bytes = read_bounded(path, limits::MAX_OBJECT_FILE_BYTES, "object file")?;
        Self::parse_with_btf(&Self::name_for_path(path), &bytes, target)
    }

    /// The name libbpf gives the object in file `path`: the file name up to its first dot
    /// (`dir/globals.bpf.o` → `globals`), or `bpf` when that is empty.
    ///
    /// ```
    /// assert_eq!(bpfvm::loader::Object::name_for_path("dir/globals.bpf.o".as_ref()), "globals");
    /// ```
    pub fn name_for_path(path: &Path) -> String {
        let file = path
            .file_name()
            .map(|f| f.to_string_lossy().into_owned())
            .unwrap_or_default();
        file.split('.')
            .next()
            .filter(|n| !n.is_empty())
            .unwrap_or("bpf")
            .to_string()
    }

    /// The object's name (used as the prefix of global data map names).
    pub fn name(&self) -> &str {
        &self.name
    }

    /// The `license` section's text, if any.
    pub fn license(&self) -> Option<&str> {
        self.license.as_deref()
    }

    /// The programs that load, in section then address order (see
    /// [`Object::refused_programs`] for the others).
    pub fn programs(&self) -> &[ProgramDefinition] {
        &self.programs
    }

    /// The program whose function name is `name_or_section`, else the first program
    /// in the section of that name.
    pub fn program(&self, name_or_section: &str) -> Option<&ProgramDefinition> {
        if name_or_section.len() > limits::MAX_NAME_LEN {
            return self
                .programs
                .iter()
                .find(|p| p.name == name_or_section)
                .or_else(|| self.programs.iter().find(|p| p.section == name_or_section));
        }
        let i = self.index.program_names.get(name_or_section);
        let i = i.or_else(|| self.index.program_sections.get(name_or_section))?;
        self.programs.get(*i)
    }

    /// All maps: legacy `maps`, then BTF `.maps`, then global data sections.
    pub fn maps(&self) -> &[MapDefinition] {
        &self.maps
    }

    /// The map named `name` (or with that alias, e.g. `.bss`).
    pub fn map(&self, name: &str) -> Option<&MapDefinition> {
        self.map_index(name).map(|i| &self.maps[i])
    }

    /// Index in [`Object::maps`] of the map named `name`.
    pub fn map_index(&self, name: &str) -> Option<usize> {
        if name.len() > limits::MAX_NAME_LEN {
            return self
                .maps
                .iter()
                .position(|m| m.name == name)
                .or_else(|| self.maps.iter().position(|m| m.is_named(name)));
        }
        let i = self.index.map_names.get(name);
        i.or_else(|| self.index.map_aliases.get(name)).copied()
    }

    /// The object's BTF, if it has a `.BTF` section.
    pub fn btf(&self) -> Option<&Btf> {
        self.btf.as_ref()
    }

    /// Decode a key of map `map` with its BTF type; `None` when it has no key type.
    pub fn decode_key(&self, map: &MapDefinition, bytes: &[u8]) -> Option<BtfValue> {
        Some(self.btf.as_ref()?.decode(map.key_type_id?, bytes))
    }

    /// Decode a value of map `map` with its BTF type; `None` when it has no value type.
    pub fn decode_value(&self, map: &MapDefinition, bytes: &[u8]) -> Option<BtfValue> {
        Some(self.btf.as_ref()?.decode(map.value_type_id?, bytes))
    }
}

/// Read at most `limit` bytes of `path`: a larger file (or an endless one such as
/// `/dev/zero`) is [`LoadError::TooLarge`].
pub(crate) fn read_bounded(path: &Path, limit: usize, what: &str) -> Result<Vec<u8>, LoadError> {
    use std::io::Read as _;
    let io = |e: std::io::Error| LoadError::Io {
        path: path.display().to_string(),
        reason: e.to_string(),
    };
    let mut bytes = Vec::new();
    std::fs::File::open(path)
        .map_err(io)?
        .take(limit as u64 + 1)
        .read_to_end(&mut bytes)
        .map_err(io)?;
    if bytes.len() > limit {
        return Err(LoadError::TooLarge {
            what: format!("{what} {}", path.display()),
            size: bytes.len() as u64,
            limit: limit as u64,
        });
    }
    Ok(bytes)
}
