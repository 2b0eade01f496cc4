//! Opening an object, choosing its program, and turning it into live maps and a
//! [`bpfvm::Program`] (the loader's `Object::vm_program`, see `docs/internals.md`).

use std::path::Path;

use bpfvm::loader::{LoadError, Object, ObjectMaps, ProgramDefinition};
use bpfvm::maps::{MapError, MapMemory};
use bpfvm::{EngineKind, Program};

use super::input::{read_bounded, MAX_OBJECT_BYTES};
use super::CliError;

/// Reads (at most [`MAX_OBJECT_BYTES`]) and parses the object at `path`, named after the
/// file as libbpf names objects.
pub fn open(path: &Path) -> Result<Object, CliError> {
    let bytes = read_bounded(
        path,
        MAX_OBJECT_BYTES,
        "object",
        "the limit on object files",
    )?;
    Object::parse_named(&Object::name_for_path(path), &bytes).map_err(|source| CliError::Load {
        path: path.display().to_string(),
        source,
    })
}

/// `name (section)` for every program, comma-separated.
pub fn program_choices(object: &Object) -> String {
    object
        .programs()
        .iter()
        .map(|p| format!("{} (section {})", p.name, p.section))
        .collect::<Vec<_>>()
        .join(", ")
}

/// The program named `name` (function or section name), or the only program when `name` is
/// `None`. Fails listing the choices when the name matches nothing or when there are several
/// programs and no name.
pub fn choose_program<'o>(
    object: &'o Object,
    path: &Path,
    name: Option<&str>,
) -> Result<&'o ProgramDefinition, CliError> {
    let path = path.display().to_string();
    match (name, object.programs()) {
        (_, []) => Err(CliError::NoPrograms { path }),
        (Some(name), _) => object
            .program(name)
            .ok_or_else(|| CliError::UnknownProgram {
                path,
                name: name.to_string(),
                choices: program_choices(object),
            }),
        (None, [only]) => Ok(only),
        (None, _) => Err(CliError::AmbiguousProgram {
            path,
            choices: program_choices(object),
        }),
    }
}

/// Creates every map of `object` on `ncpus` simulated CPUs (global data written, `.rodata`
/// frozen), charged to `memory` (the VM's map memory limit).
pub fn create_maps(
    object: &Object,
    path: &Path,
    ncpus: u32,
    memory: &MapMemory,
) -> Result<ObjectMaps, CliError> {
    let path = path.display().to_string();
    object
        .create_maps_in(ncpus, memory)
        .map_err(|source| match &source {
            LoadError::MapCreate {
                source: MapError::MemoryLimit { .. },
                ..
            } => CliError::MapMemory { path, source },
            _ => CliError::Load { path, source },
        })
}

/// The program `def` of `object` with its maps resolved to the live `maps`
/// ([`Object::vm_program`]), on `engine`.
pub fn program(
    object: &Object,
    path: &Path,
    def: &ProgramDefinition,
    maps: &ObjectMaps,
    engine: EngineKind,
) -> Result<Program, CliError> {
    let program = object
        .vm_program(&def.name, maps)
        .map_err(|source| CliError::Load {
            path: path.display().to_string(),
            source,
        })?;
    Ok(program.with_engine(engine))
}
