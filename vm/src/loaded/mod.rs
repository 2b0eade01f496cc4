//! One step from an object file to runnable programs with their maps, as `aya::Ebpf::load`
//! or a libbpf skeleton give it: [`ObjectLoader`] sets global variables before the maps are
//! created (the `const volatile` configuration pattern), then [`ObjectLoader::load`] creates
//! every map for the VM's CPU count in the VM's map memory and loads every program;
//! [`LoadedObject`] finds programs, maps (typed) and variables by name.
//!
//! ```
//! use bpfvm::loader::Object;
//! use bpfvm::{CpuId, Input, ObjectLoader, Vm};
//!
//! let vm = Vm::builder().cpus(4).build();
//! let object = Object::parse_named(
//!     "percpu_counter",
//!     include_bytes!("../../tests/fixtures/percpu_counter.o"),
//! )?;
//! let bpf = ObjectLoader::new(object).load(&vm)?;
//!
//! let prog = bpf.program("count_packets")?;
//! vm.run_on_all(prog, 3, &Input::packet(vec![0u8; 60]))?; // 3 runs on each of 4 CPUs
//! vm.run(prog, CpuId(2), &Input::packet(vec![0u8; 60]))?;
//!
//! let counts = bpf.percpu_array::<u64>("counts")?;
//! let per_cpu = counts.get(0)?;
//! assert_eq!(per_cpu.to_vec(), [3, 3, 4, 3]);
//! assert_eq!(per_cpu.sum(), 13);
//! # Ok::<(), bpfvm::Error>(())
//! ```

mod globals;

use std::sync::Arc;

use bpfvm_maps::typed::{Array, HashMap, PerCpuArray, PerCpuHashMap};
use bpfvm_maps::{Map, MapType, Pod};

use crate::loader::{GlobalDataKind, LoadError, MapDefinition, Object, ObjectMaps, SlotTarget};
use crate::{Error, LoadedProgram, Vm};

pub use globals::GlobalVar;

/// Names listed in an error message at most.
const NAMES_SHOWN: usize = 16;

/// Finding something by name in a [`LoadedObject`] (or an [`ObjectLoader`]) failed.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum ObjectError {
    /// No program has that name (or section).
    #[error("no program {name} in object {object}; it has: {choices}")]
    NoSuchProgram {
        /// The name asked for.
        name: String,
        /// The object's name.
        object: String,
        /// The programs it has.
        choices: String,
    },
    /// The program exists but did not load; `reason` is its own error.
    #[error("program {name} did not load: {reason}")]
    ProgramNotLoaded {
        /// The program.
        name: String,
        /// Why (its load or prepare error).
        reason: String,
        /// That error's errno.
        errno: i32,
    },
    /// No map has that name.
    #[error("no map {name} in object {object}; it has: {choices}")]
    NoSuchMap {
        /// The name asked for.
        name: String,
        /// The object's name.
        object: String,
        /// The maps it has.
        choices: String,
    },
    /// No global variable has that name (in the object's BTF).
    #[error("no global variable {name} in object {object} (.data, .rodata and .bss, from BTF); it has: {choices}")]
    NoSuchVariable {
        /// The name asked for.
        name: String,
        /// The object's name.
        object: String,
        /// The variables it has.
        choices: String,
    },
    /// The Rust type's size is not the variable's size in BTF.
    #[error("global variable {name} is {btf_size} bytes in BTF, but the value given is {rust_size} bytes")]
    VariableSize {
        /// The variable.
        name: String,
        /// Its size in BTF.
        btf_size: usize,
        /// `size_of` of the Rust type.
        rust_size: usize,
    },
    /// A `.rodata` variable written after load (the map is frozen, as in the kernel).
    #[error("global variable {name} is in .rodata, frozen at load: set it with ObjectLoader::set_global before load")]
    ReadOnlyVariable {
        /// The variable.
        name: String,
    },
}

impl ObjectError {
    /// The kernel's errno: `ENOENT` for a missing name, `EINVAL` for a size mismatch,
    /// `EPERM` for writing frozen `.rodata`, the program's own for one that did not load.
    pub fn errno(&self) -> i32 {
        match self {
            ObjectError::NoSuchProgram { .. }
            | ObjectError::NoSuchMap { .. }
            | ObjectError::NoSuchVariable { .. } => 2,
            ObjectError::VariableSize { .. } => 22,
            ObjectError::ReadOnlyVariable { .. } => 1,
            ObjectError::ProgramNotLoaded { errno, .. } => *errno,
        }
    }
}

/// The first `NAMES_SHOWN` of `names`, comma-separated (`none` when empty).
fn list(names: impl Iterator<Item = String>) -> String {
    let names: Vec<String> = names.take(NAMES_SHOWN + 1).collect();
    match names.len() {
        0 => "none".to_string(),
        n if n > NAMES_SHOWN => format!("{}, ...", names[..NAMES_SHOWN].join(", ")),
        _ => names.join(", "),
    }
}

/// Loads an [`Object`] into a [`Vm`], after setting global variables.
#[derive(Debug)]
pub struct ObjectLoader {
    object: Object,
    /// `(variable, bytes)` to write before the maps are frozen.
    globals: Vec<(GlobalVar, Vec<u8>)>,
}

impl ObjectLoader {
    /// A loader for `object`.
    pub fn new(object: Object) -> ObjectLoader {
        ObjectLoader {
            object,
            globals: Vec::new(),
        }
    }

    /// Reads and parses the object file at `path` ([`Object::from_file`]).
    pub fn from_file(path: impl AsRef<std::path::Path>) -> Result<ObjectLoader, Error> {
        Ok(ObjectLoader::new(Object::from_file(path)?))
    }

    /// Reads and parses the object file at `path`, resolving its CO-RE relocations against
    /// `target` ([`Object::from_file_with_btf`]; e.g. the kernel's BTF read with
    /// [`Btf::from_file`](crate::loader::Btf::from_file)`("/sys/kernel/btf/vmlinux")`).
    pub fn from_file_with_btf(
        path: impl AsRef<std::path::Path>,
        target: Option<&crate::loader::Btf>,
    ) -> Result<ObjectLoader, Error> {
        Ok(ObjectLoader::new(Object::from_file_with_btf(path, target)?))
    }

    /// Sets global variable `name` (in `.rodata`, `.data` or `.bss`) to `value` before load,
    /// as libbpf's `skel->rodata->name = value` or aya's `EbpfLoader::set_global`: a
    /// `const volatile` configuration value a program reads. `T`'s size must be the
    /// variable's size in BTF ([`ObjectError::VariableSize`]).
    pub fn set_global<T: Pod>(mut self, name: &str, value: &T) -> Result<ObjectLoader, Error> {
        let var = find_var(&self.object, name, std::mem::size_of::<T>())?;
        self.globals.push((var, bytemuck::bytes_of(value).to_vec()));
        Ok(self)
    }

    /// The object.
    pub fn object(&self) -> &Object {
        &self.object
    }

    /// Sets map `name`'s `max_entries` before it is created (libbpf's
    /// `bpf_map__set_max_entries`; see [`Object::set_max_entries`]).
    pub fn set_max_entries(mut self, name: &str, max_entries: u32) -> Result<ObjectLoader, Error> {
        self.object.set_max_entries(name, max_entries)?;
        Ok(self)
    }

    /// Sets map `name`'s `value_size` before it is created (libbpf's
    /// `bpf_map__set_value_size`; see [`Object::set_value_size`]).
    pub fn set_value_size(mut self, name: &str, value_size: u32) -> Result<ObjectLoader, Error> {
        self.object.set_value_size(name, value_size)?;
        Ok(self)
    }

    /// Creates every map for `vm`'s CPU count, charged to its map memory
    /// ([`Vm::map_memory`]), with global data (and the variables set) written and `.rodata`
    /// frozen; then loads every program. A program that does not load does not stop the
    /// others: [`LoadedObject::program`] gives its error. A map that cannot be created
    /// (e.g. `max_entries` 0, left for the tool's loader to set: see
    /// [`ObjectLoader::set_max_entries`]) is left out, as libbpf leaves out a map it is told
    /// not to create: its references are poisoned, so only the programs where one is
    /// reachable are refused (the verifier's "invalid func unknown#2001000000: BPF map 'm'
    /// is referenced but wasn't created (why)"); it is not in [`LoadedObject::maps`].
    pub fn load(self, vm: &Vm) -> Result<LoadedObject, Error> {
        let ObjectLoader { object, globals } = self;
        let mut created = Vec::with_capacity(object.maps().len());
        for (i, def) in object.maps().iter().enumerate() {
            let patches: Vec<&(GlobalVar, Vec<u8>)> =
                globals.iter().filter(|(v, _)| v.map == i).collect();
            created.push(create_map(def, object.spin_lock_offset(def), &patches, vm));
        }
        let (object, maps) = object.keep_created(created);
        let maps = ObjectMaps::from_parts(object.maps().to_vec(), maps);
        // Every program, those the loader refused included (with their own error).
        let programs = object
            .program_results()
            .map(|result| {
                let (name, loaded) = match result {
                    Ok(def) => (
                        def.name.to_string(),
                        object
                            .vm_program(&def.name, &maps)
                            .map_err(Error::from)
                            .and_then(|p| vm.load(p).map_err(Error::from)),
                    ),
                    Err(refused) => (
                        refused.name.to_string(),
                        Err(Error::from(refused.error.clone())),
                    ),
                };
                let loaded = loaded.map_err(|e| ObjectError::ProgramNotLoaded {
                    name: name.clone(),
                    reason: e.to_string(),
                    errno: e.errno(),
                });
                (name, loaded)
            })
            .collect();
        let loaded = LoadedObject {
            object,
            maps,
            programs,
        };
        loaded.fill_prog_arrays()?;
        Ok(loaded)
    }
}

/// Creates `def`'s map in `vm`'s memory (with its value's `bpf_spin_lock` at `spin_lock`,
/// as BTF tells the kernel) with `patches` written over its initial value before it is
/// frozen.
fn create_map(
    def: &MapDefinition,
    spin_lock: Option<u32>,
    patches: &[&(GlobalVar, Vec<u8>)],
    vm: &Vm,
) -> Result<Arc<Map>, LoadError> {
    if patches.is_empty() {
        return def.create_with_lock_in(vm.ncpus(), spin_lock, vm.map_memory());
    }
    let mut open = def.clone();
    open.frozen = false;
    let map = open.create_with_lock_in(vm.ncpus(), spin_lock, vm.map_memory())?;
    let fail = |source| LoadError::MapCreate {
        map: def.name.to_string(),
        source,
    };
    let key = 0u32.to_ne_bytes();
    let mut value = vec![0u8; map.value_size() as usize];
    map.lookup(&key, &mut value, 0).map_err(fail)?;
    for (var, bytes) in patches {
        // find_var checked the variable against the value's size when BTF gave it; a
        // DATASEC that claims more than the map holds is refused here.
        let Some(dst) = value.get_mut(var.offset..var.offset + bytes.len()) else {
            return Err(LoadError::BadBtf {
                section: ".BTF".to_string(),
                reason: format!(
                    "a variable of map {} at offset {} ({} bytes) lies outside its {}-byte value",
                    def.name,
                    var.offset,
                    bytes.len(),
                    value.len()
                ),
            });
        };
        dst.copy_from_slice(bytes);
    }
    map.update(&key, &value, 0).map_err(fail)?;
    if def.frozen {
        map.freeze().map_err(fail)?;
    }
    Ok(map)
}

/// Variable `name` of `object`, checked to be `size` bytes.
fn find_var(object: &Object, name: &str, size: usize) -> Result<GlobalVar, ObjectError> {
    let var = globals::find(object, name).ok_or_else(|| ObjectError::NoSuchVariable {
        name: name.to_string(),
        object: object.name().to_string(),
        choices: list(globals::names(object, NAMES_SHOWN + 1).into_iter()),
    })?;
    if var.size != size {
        return Err(ObjectError::VariableSize {
            name: name.to_string(),
            btf_size: var.size,
            rust_size: size,
        });
    }
    Ok(var)
}

/// An object loaded into a VM: its maps (created for the VM's CPUs) and its programs.
#[derive(Debug)]
pub struct LoadedObject {
    object: Object,
    maps: ObjectMaps,
    programs: Vec<(String, Result<LoadedProgram, ObjectError>)>,
}

impl LoadedObject {
    /// Puts the loaded programs the object's `values` initialisers name in their
    /// PROG_ARRAY slots (libbpf's `bpf_object__init_prog_arrays`). A slot whose program did
    /// not load stays empty (a tail call to it falls through).
    fn fill_prog_arrays(&self) -> Result<(), Error> {
        for init in self.object.slot_inits() {
            let SlotTarget::Program(name) = &init.target else {
                continue;
            };
            let Some(map) = self.maps.get(&init.map) else {
                continue;
            };
            if map.map_type() != MapType::ProgArray {
                continue;
            }
            if let Some((_, Ok(p))) = self.programs.iter().find(|(n, _)| *n == **name) {
                p.set_in_prog_array(map, init.slot)
                    .map_err(|source| LoadError::MapCreate {
                        map: format!("{}[{}] = {name}", init.map, init.slot),
                        source,
                    })?;
            }
        }
        Ok(())
    }

    /// Puts program `program` in slot `index` of PROG_ARRAY `map` (`BPF_MAP_UPDATE_ELEM`
    /// with the program's fd): the kernel's errors (`E2BIG` past `max_entries`, `EINVAL`
    /// when the array holds programs of another type or is no PROG_ARRAY).
    ///
    /// ```
    /// use bpfvm::{Input, ObjectLoader, Vm};
    /// use bpfvm::loader::Object;
    ///
    /// let vm = Vm::default();
    /// let obj = Object::parse_named("tail_call", include_bytes!("../../tests/fixtures/tail_call.o"))?;
    /// let bpf = ObjectLoader::new(obj).load(&vm)?;
    /// let dispatch = bpf.program("xdp_dispatch")?;
    /// let packet = |first: u8| Input::packet(vec![first; 64]);
    /// // jmp[3] is empty: the tail call falls through to `return 200 + 3`.
    /// assert_eq!(vm.run(dispatch, 0, &packet(3))?.retval, 203);
    /// bpf.set_prog_slot("jmp", 3, "xdp_third")?;
    /// assert_eq!(vm.run(dispatch, 0, &packet(3))?.retval, 2); // XDP_PASS from xdp_third
    /// bpf.clear_prog_slot("jmp", 3)?;
    /// assert_eq!(vm.run(dispatch, 0, &packet(3))?.retval, 203);
    /// # Ok::<(), bpfvm::Error>(())
    /// ```
    pub fn set_prog_slot(&self, map: &str, index: u32, program: &str) -> Result<(), Error> {
        let prog = self.program(program)?;
        Ok(prog.set_in_prog_array(self.map(map)?, index)?)
    }

    /// Empties slot `index` of PROG_ARRAY `map` (`BPF_MAP_DELETE_ELEM`: `ENOENT` when it
    /// is empty, `E2BIG` past `max_entries`).
    pub fn clear_prog_slot(&self, map: &str, index: u32) -> Result<(), Error> {
        Ok(self.map(map)?.delete(&index.to_ne_bytes(), 0)?)
    }

    /// The object as parsed.
    pub fn object(&self) -> &Object {
        &self.object
    }

    /// The live maps.
    pub fn maps(&self) -> &ObjectMaps {
        &self.maps
    }

    /// The program named `name` (or whose section is `name`), or why it did not load.
    pub fn program(&self, name: &str) -> Result<&LoadedProgram, ObjectError> {
        let by_section = || {
            let def = self.object.program(name)?;
            self.programs.iter().find(|(n, _)| *n == *def.name)
        };
        let (_, loaded) = self
            .programs
            .iter()
            .find(|(n, _)| n == name)
            .or_else(by_section)
            .ok_or_else(|| ObjectError::NoSuchProgram {
                name: name.to_string(),
                object: self.object.name().to_string(),
                choices: list(self.programs.iter().map(|(n, _)| n.clone())),
            })?;
        loaded.as_ref().map_err(Clone::clone)
    }

    /// Every program by name, loaded or with its error.
    pub fn programs(&self) -> impl Iterator<Item = (&str, Result<&LoadedProgram, &ObjectError>)> {
        self.programs.iter().map(|(n, r)| (n.as_str(), r.as_ref()))
    }

    /// The map named `name` (its variable name, or for global data `.bss`, `.data`, ...).
    pub fn map(&self, name: &str) -> Result<&Arc<Map>, ObjectError> {
        self.maps.get(name).ok_or_else(|| ObjectError::NoSuchMap {
            name: name.to_string(),
            object: self.object.name().to_string(),
            choices: list(self.object.maps().iter().map(|d| d.name.to_string())),
        })
    }

    /// Map `name` as an `ARRAY` of `V` (the type and sizes are checked).
    pub fn array<V: Pod>(&self, name: &str) -> Result<Array<Arc<Map>, V>, Error> {
        Ok(Array::new(Arc::clone(self.map(name)?))?)
    }

    /// Map `name` as a `HASH` (or `LRU_HASH`) of `K` to `V`.
    pub fn hash_map<K: Pod, V: Pod>(&self, name: &str) -> Result<HashMap<Arc<Map>, K, V>, Error> {
        Ok(HashMap::new(Arc::clone(self.map(name)?))?)
    }

    /// Map `name` as a `PERCPU_ARRAY` of `V`.
    pub fn percpu_array<V: Pod>(&self, name: &str) -> Result<PerCpuArray<Arc<Map>, V>, Error> {
        Ok(PerCpuArray::new(Arc::clone(self.map(name)?))?)
    }

    /// Map `name` as a `PERCPU_HASH` (or `LRU_PERCPU_HASH`) of `K` to `V`.
    pub fn percpu_hash_map<K: Pod, V: Pod>(
        &self,
        name: &str,
    ) -> Result<PerCpuHashMap<Arc<Map>, K, V>, Error> {
        Ok(PerCpuHashMap::new(Arc::clone(self.map(name)?))?)
    }

    /// The current value of global variable `name` (`.data`, `.rodata` or `.bss`).
    pub fn global<T: Pod>(&self, name: &str) -> Result<T, Error> {
        let var = find_var(&self.object, name, std::mem::size_of::<T>())?;
        let map = &self.maps.all()[var.map];
        let mut value = vec![0u8; map.value_size() as usize];
        map.lookup(&0u32.to_ne_bytes(), &mut value, 0)?;
        let bytes = value
            .get(var.offset..var.offset + var.size)
            .ok_or_else(|| ObjectError::NoSuchVariable {
                name: name.to_string(),
                object: self.object.name().to_string(),
                choices: "(its BTF places it outside its map)".to_string(),
            })?;
        Ok(bytemuck::pod_read_unaligned(bytes))
    }

    /// Sets global variable `name` in `.data` or `.bss` between runs (a `.rodata` one is
    /// frozen: [`ObjectError::ReadOnlyVariable`]; set it before load).
    pub fn set_global<T: Pod>(&self, name: &str, value: &T) -> Result<(), Error> {
        let var = find_var(&self.object, name, std::mem::size_of::<T>())?;
        if var.kind == GlobalDataKind::Rodata {
            return Err(ObjectError::ReadOnlyVariable {
                name: name.to_string(),
            }
            .into());
        }
        let map = &self.maps.all()[var.map];
        let key = 0u32.to_ne_bytes();
        let mut bytes = vec![0u8; map.value_size() as usize];
        map.lookup(&key, &mut bytes, 0)?;
        let Some(dst) = bytes.get_mut(var.offset..var.offset + var.size) else {
            return Err(ObjectError::NoSuchVariable {
                name: name.to_string(),
                object: self.object.name().to_string(),
                choices: "(its BTF places it outside its map)".to_string(),
            }
            .into());
        };
        dst.copy_from_slice(bytemuck::bytes_of(value));
        map.update(&key, &bytes, 0)?;
        Ok(())
    }
}
