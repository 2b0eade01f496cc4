//! Opening an object, choosing its program, and turning it into live maps and a
//! [`bpfvm::Program`] (the loader's `Object::vm_program`, see `docs/internals.md`).

use std::path::Path;

use bpfvm::loader::{
    Btf, KernelConfig, KernelProgType, LoadError, LoadOptions, Object, ObjectMaps,
    ProgramDefinition,
};
use bpfvm::maps::{MapError, MapMemory};
use bpfvm::{EngineKind, Program};

use super::args::LoadArgs;
use super::input::{read_bounded, MAX_OBJECT_BYTES};
use super::CliError;

/// Largest `--kconfig` file read (a distribution's config is about 300 KiB).
pub const MAX_KCONFIG_BYTES: usize = 16 << 20;

/// The load options `args` ask for: `--kconfig` read (bounded) and parsed, and
/// `--kernel-version`.
pub fn load_options(args: &LoadArgs) -> Result<LoadOptions, CliError> {
    let mut kconfig = match &args.kconfig {
        None => KernelConfig::default(),
        Some(path) => {
            let bytes = read_bounded(path, MAX_KCONFIG_BYTES, "--kconfig", "the kconfig limit")?;
            let bad = |reason: String| CliError::Kconfig {
                path: path.display().to_string(),
                reason,
            };
            let text = String::from_utf8(bytes)
                .map_err(|_| bad("not UTF-8 text (gunzip it first?)".into()))?;
            KernelConfig::parse(&text).map_err(|e| bad(e.to_string()))?
        }
    };
    if let Some((a, b, c)) = args.kernel_version {
        kconfig.set_kernel_version(a, b, c);
    }
    Ok(LoadOptions { kconfig })
}

/// Reads (at most [`MAX_OBJECT_BYTES`]) and parses the object at `path`, named after the
/// file as libbpf names objects, resolving CO-RE relocations against the BTF file `btf`
/// (`--btf`) when there is one.
pub fn open(path: &Path, btf: Option<&Path>) -> Result<Object, CliError> {
    open_with(path, &LoadOptions::default(), btf)
}

/// [`open`] with load options (kconfig values).
pub fn open_with(
    path: &Path,
    options: &LoadOptions,
    btf: Option<&Path>,
) -> Result<Object, CliError> {
    let target = read_target(btf)?;
    open_with_target(path, options, target.as_ref())
}

/// The target BTF file `btf` (`--btf`), parsed.
fn read_target(btf: Option<&Path>) -> Result<Option<Btf>, CliError> {
    btf.map(|file| {
        Btf::from_file(file).map_err(|source| CliError::Load {
            path: file.display().to_string(),
            source,
        })
    })
    .transpose()
}

/// [`open_with`] with the target BTF already read.
fn open_with_target(
    path: &Path,
    options: &LoadOptions,
    target: Option<&Btf>,
) -> Result<Object, CliError> {
    let bytes = read_bounded(
        path,
        MAX_OBJECT_BYTES,
        "object",
        "the limit on object files",
    )?;
    Object::parse_full(&Object::name_for_path(path), &bytes, options, target).map_err(|source| {
        CliError::Load {
            path: path.display().to_string(),
            source,
        }
    })
}

/// A warning for each CO-RE relocation of `def` that could not be resolved (the kernel's
/// verifier refuses the program if one is reachable; a run that reaches one fails); empty
/// when there is none.
pub fn core_warnings(def: &ProgramDefinition) -> String {
    def.core_poisons
        .iter()
        .map(|(pc, p)| format!("bpfvm: warning: instruction {pc}: {p}\n"))
        .collect()
}

/// `name (section)` for every program (loaded or not), comma-separated.
pub fn program_choices(object: &Object) -> String {
    object
        .program_results()
        .map(|p| match p {
            Ok(p) => format!("{} (section {})", p.name, p.section),
            Err(r) => format!("{} (section {}, refused)", r.name, r.section),
        })
        .collect::<Vec<_>>()
        .join(", ")
}

/// The kernel type `--type NAME` names.
pub fn parse_type(name: &str) -> Result<KernelProgType, CliError> {
    KernelProgType::from_name(name).ok_or_else(|| CliError::UnknownType {
        name: name.to_string(),
        types: KernelProgType::names(),
    })
}

/// The program named `name` (function or section name), or the only program when `name` is
/// `None`. Fails listing the choices when the name matches nothing or when there are several
/// programs and no name, and with the program's own error when it was refused at load.
pub fn choose_program<'o>(
    object: &'o Object,
    path: &Path,
    name: Option<&str>,
) -> Result<&'o ProgramDefinition, CliError> {
    let path = path.display().to_string();
    let total = object.program_results().count();
    let name = match name {
        _ if total == 0 => return Err(CliError::NoPrograms { path }),
        Some(name) => name.to_string(),
        None if total == 1 => match object.program_results().next() {
            Some(Ok(p)) => return Ok(p),
            Some(Err(r)) => r.name.to_string(),
            None => return Err(CliError::NoPrograms { path }),
        },
        None => {
            return Err(CliError::AmbiguousProgram {
                path,
                choices: program_choices(object),
            })
        }
    };
    match object.program_result(&name) {
        Ok(p) => Ok(p),
        Err(LoadError::NoSuchProgram { .. }) => Err(CliError::UnknownProgram {
            path,
            name,
            choices: program_choices(object),
        }),
        Err(source) => Err(CliError::ProgramRefused {
            program: name,
            source,
        }),
    }
}

/// Creates the maps of `object` on `ncpus` simulated CPUs (global data written, `.rodata`
/// frozen), charged to `memory` (the VM's map memory limit), one map at a time
/// ([`Object::create_maps_per_map`]): a map that cannot be created refuses only the
/// programs that use it (they are refused in the object returned). The map memory limit
/// still stops the command ([`CliError::MapMemory`]).
pub fn create_maps_per_map(
    object: Object,
    path: &Path,
    ncpus: u32,
    memory: &MapMemory,
) -> Result<(Object, ObjectMaps), CliError> {
    let path = path.display().to_string();
    let (object, maps) = object
        .create_maps_per_map(ncpus, memory)
        .map_err(|source| CliError::Load {
            path: path.clone(),
            source,
        })?;
    let over_limit = object.refused_maps().iter().find(|m| {
        matches!(
            m.error,
            LoadError::MapCreate {
                source: MapError::MemoryLimit { .. },
                ..
            }
        )
    });
    if let Some(m) = over_limit {
        return Err(CliError::MapMemory {
            path,
            source: m.error.clone(),
        });
    }
    Ok((object, maps))
}

/// The program `def` of `object` with its maps resolved to the live `maps`
/// ([`Object::vm_program`], or [`Object::vm_program_as`] with `prog_type`), on `engine`.
pub fn program(
    object: &Object,
    def: &ProgramDefinition,
    maps: &ObjectMaps,
    engine: EngineKind,
    prog_type: Option<KernelProgType>,
) -> Result<Program, CliError> {
    let program = match prog_type {
        Some(t) => object.vm_program_as(&def.name, maps, t),
        None => object.vm_program(&def.name, maps),
    }
    .map_err(|source| CliError::ProgramRefused {
        program: def.name.to_string(),
        source,
    })?;
    Ok(program.with_engine(engine))
}

/// Loads the programs the object's `values` initialisers put in its PROG_ARRAYs (with
/// `engine`, as libbpf loads every program of an object) and stores them in their slots,
/// so the program run can tail-call them. Returns a warning for each slot left empty
/// because its program did not load.
pub fn fill_prog_arrays(
    vm: &bpfvm::Vm,
    object: &Object,
    maps: &ObjectMaps,
    engine: EngineKind,
) -> Result<Vec<String>, CliError> {
    let mut warnings = Vec::new();
    let mut loaded: Vec<(String, bpfvm::LoadedProgram)> = Vec::new();
    for init in object.slot_inits() {
        let bpfvm::loader::SlotTarget::Program(name) = &init.target else {
            continue;
        };
        let Some(map) = maps.get(&init.map) else {
            continue;
        };
        if map.map_type() != bpfvm::maps::MapType::ProgArray {
            continue;
        }
        let prog = match loaded.iter().find(|(n, _)| n == &**name) {
            Some((_, p)) => p.clone(),
            None => {
                let prog = object
                    .vm_program(name, maps)
                    .map_err(|e| e.to_string())
                    .and_then(|p| vm.load(p.with_engine(engine)).map_err(|e| e.to_string()));
                match prog {
                    Ok(p) => {
                        loaded.push((name.to_string(), p.clone()));
                        p
                    }
                    Err(why) => {
                        warnings.push(format!(
                            "{}[{}] stays empty: program {name} did not load: {why}",
                            init.map, init.slot
                        ));
                        continue;
                    }
                }
            }
        };
        prog.set_in_prog_array(map, init.slot)
            .map_err(|source| CliError::ProgramRefused {
                program: name.to_string(),
                source: bpfvm::loader::LoadError::MapCreate {
                    map: format!("{}[{}]", init.map, init.slot),
                    source,
                },
            })?;
    }
    Ok(warnings)
}

/// The type `def` runs as: `--type` when given, else libbpf's type for its section; an
/// unknown section or a type bpfvm cannot run is the program's error.
pub fn run_type(
    object: &Object,
    def: &ProgramDefinition,
    prog_type: Option<KernelProgType>,
) -> Result<bpfvm::ProgramType, CliError> {
    object
        .run_type(&def.name, prog_type)
        .map_err(|source| CliError::ProgramRefused {
            program: def.name.to_string(),
            source,
        })
}

/// An object opened for one program to run (`bpfvm run`, `bpfvm race`): the object, the
/// chosen program's name and the type it runs as.
pub struct ChosenProgram {
    pub object: Object,
    pub name: String,
    pub run_type: bpfvm::ProgramType,
    /// `--type`, when given.
    pub prog_type: Option<KernelProgType>,
    /// The target BTF (`--btf`), for `bpf_snprintf_btf` ([`bpfvm::Vm::set_target_btf`]).
    pub target_btf: Option<std::sync::Arc<Btf>>,
}

/// Opens the object at `path` with `load`'s options, chooses the program `prog` (or the
/// only one), prints its CO-RE warnings and settles the type it runs as (`prog_type`,
/// `--type`, when given). An unknown section or a type bpfvm cannot run is refused here,
/// before any map is created or input read.
pub fn open_program(
    path: &Path,
    load: &LoadArgs,
    prog: Option<&str>,
    prog_type: Option<&str>,
) -> Result<ChosenProgram, CliError> {
    let prog_type = prog_type.map(parse_type).transpose()?;
    let target = read_target(load.btf.as_deref())?;
    let object = open_with_target(path, &load_options(load)?, target.as_ref())?;
    let def = choose_program(&object, path, prog)?;
    eprint!("{}", core_warnings(def));
    let run_type = run_type(&object, def, prog_type)?;
    let name = def.name.to_string();
    Ok(ChosenProgram {
        object,
        name,
        run_type,
        prog_type,
        target_btf: target.map(std::sync::Arc::new),
    })
}
