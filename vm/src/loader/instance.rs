//! From descriptions to live maps: each [`MapDefinition`] becomes a `bpfvm_maps::Map`
//! (global data written, `.rodata` frozen, as libbpf does at load time).

use std::sync::Arc;

use bpfvm_maps::{Map, MapMemory, MapSpec, MapType};

use super::error::LoadError;
use super::map_def::MapDefinition;
use super::Object;

/// Longest map name the kernel keeps (`BPF_OBJ_NAME_LEN - 1`).
const NAME_MAX: usize = 15;

/// The kernel's view of a map name: at most 15 bytes of `[A-Za-z0-9_.]`, as libbpf
/// passes it to `BPF_MAP_CREATE` (longer names are cut, other characters become `_`).
fn kernel_map_name(name: &str) -> String {
    name.chars()
        .map(|c| {
            if c.is_ascii_alphanumeric() || c == '_' || c == '.' {
                c
            } else {
                '_'
            }
        })
        .take(NAME_MAX)
        .collect()
}

impl MapDefinition {
    /// The `BPF_MAP_CREATE` attributes of this map for the maps crate.
    ///
    /// Fails with [`LoadError::UnsupportedMapType`] for kernel map types bpfvm does not
    /// simulate (e.g. `ringbuf`).
    pub fn to_spec(&self) -> Result<MapSpec, LoadError> {
        let map_type =
            MapType::try_from(self.map_type).map_err(|_| LoadError::UnsupportedMapType {
                map: self.name.to_string(),
                map_type: self.map_type_name(),
            })?;
        Ok(
            MapSpec::new(map_type, self.key_size, self.value_size, self.max_entries)
                .with_flags(self.map_flags)
                .with_name(kernel_map_name(&self.name)),
        )
    }

    /// [`MapDefinition::to_spec`] for `ncpus` CPUs: a PERF_EVENT_ARRAY without
    /// `max_entries` gets one entry per CPU, as libbpf gives it.
    fn spec_for(&self, ncpus: u32) -> Result<MapSpec, LoadError> {
        let mut spec = self.to_spec()?;
        if spec.map_type == MapType::PerfEventArray && spec.max_entries == 0 {
            spec.max_entries = ncpus;
        }
        Ok(spec)
    }

    /// Create the map on `ncpus` simulated CPUs, write its initial data at key 0 and
    /// freeze it when the definition says so (`.rodata`). The map gets a memory account of
    /// its own ([`MapMemory::default`], 1 GiB); see [`MapDefinition::create_in`].
    pub fn create(&self, ncpus: u32) -> Result<Arc<Map>, LoadError> {
        self.create_in(ncpus, &MapMemory::default())
    }

    /// [`MapDefinition::create`], charging the map to `memory` ([`Map::create_in`]): a map
    /// that does not fit is [`LoadError::MapCreate`] with `ENOMEM`.
    pub fn create_in(&self, ncpus: u32, memory: &MapMemory) -> Result<Arc<Map>, LoadError> {
        self.create_with_lock_in(ncpus, None, memory)
    }

    /// [`MapDefinition::create`] for a value holding a `struct bpf_spin_lock` at byte
    /// `spin_lock` (what BTF tells the kernel; see [`Object::spin_lock_offset`]).
    pub fn create_with_lock(
        &self,
        ncpus: u32,
        spin_lock: Option<u32>,
    ) -> Result<Arc<Map>, LoadError> {
        self.create_with_lock_in(ncpus, spin_lock, &MapMemory::default())
    }

    /// [`MapDefinition::create_with_lock`], charging the map to `memory` as
    /// [`MapDefinition::create_in`].
    pub fn create_with_lock_in(
        &self,
        ncpus: u32,
        spin_lock: Option<u32>,
        memory: &MapMemory,
    ) -> Result<Arc<Map>, LoadError> {
        let fail = |source| LoadError::MapCreate {
            map: self.name.to_string(),
            source,
        };
        let spec = self.spec_for(ncpus)?;
        let map = match (&self.inner, spin_lock) {
            (Some(inner), _) if spec.map_type.is_map_of_maps() => {
                // libbpf's `<map>.inner`: made for the outer map's creation only.
                let template = inner.create_in(ncpus, memory)?;
                Map::create_of_maps_in(spec, ncpus, &template, memory)
            }
            (_, Some(off)) => Map::create_with_spin_lock_in(spec, ncpus, off, memory),
            (_, None) => Map::create_in(spec, ncpus, memory),
        }
        .and_then(|map| match self.timer_offset {
            Some(off) => map.with_timer(off),
            None => Ok(map),
        })
        .map_err(fail)?;
        if let Some(data) = &self.initial_data {
            map.update(&0u32.to_ne_bytes(), data, 0).map_err(fail)?;
        }
        if self.frozen {
            map.freeze().map_err(fail)?;
        }
        Ok(Arc::new(map))
    }
}

/// The live maps of an [`Object`], in the order of [`Object::maps`].
#[derive(Debug, Clone)]
pub struct ObjectMaps {
    defs: Vec<MapDefinition>,
    maps: Vec<Arc<Map>>,
}

impl ObjectMaps {
    /// Maps made elsewhere in the crate (one per definition, in order).
    pub(crate) fn from_parts(defs: Vec<MapDefinition>, maps: Vec<Arc<Map>>) -> ObjectMaps {
        debug_assert_eq!(defs.len(), maps.len());
        ObjectMaps { defs, maps }
    }

    /// The map named `name` (or with that alias, e.g. `.bss`).
    pub fn get(&self, name: &str) -> Option<&Arc<Map>> {
        let i = self
            .defs
            .iter()
            .position(|d| d.name == name)
            .or_else(|| self.defs.iter().position(|d| d.is_named(name)))?;
        Some(&self.maps[i])
    }

    /// All maps, index = index in [`Object::maps`].
    pub fn all(&self) -> &[Arc<Map>] {
        &self.maps
    }

    /// Map definitions and their live maps.
    pub fn iter(&self) -> impl Iterator<Item = (&MapDefinition, &Arc<Map>)> {
        self.defs.iter().zip(&self.maps)
    }
}

impl Object {
    /// The byte offset of the `struct bpf_spin_lock` in `def`'s value, when the object's BTF
    /// describes the value as a struct holding one (directly or in a nested struct), as the
    /// kernel finds it (`btf_find_spin_lock`).
    pub fn spin_lock_offset(&self, def: &MapDefinition) -> Option<u32> {
        let btf = self.btf.as_ref()?;
        find_struct(btf, def.value_type_id?, "bpf_spin_lock", 0)
    }

    /// The byte offset of the `struct bpf_timer` in `def`'s value, as
    /// [`Object::spin_lock_offset`] finds the lock ([`MapDefinition::timer_offset`]).
    pub fn timer_offset(&self, def: &MapDefinition) -> Option<u32> {
        def.timer_offset
    }

    /// Create every map of the object on `ncpus` simulated CPUs, with global data
    /// written and `.rodata` frozen. The maps share one new memory account with the default
    /// limit ([`MapMemory::default`]: 1 GiB for all of them together).
    ///
    /// Fails on the first map that cannot be created ([`LoadError::MapCreate`] with the
    /// maps crate's error, `ENOMEM` when the maps do not fit the limit, or
    /// [`LoadError::UnsupportedMapType`]).
    pub fn create_maps(&self, ncpus: u32) -> Result<ObjectMaps, LoadError> {
        self.create_maps_in(ncpus, &MapMemory::default())
    }

    /// [`Object::create_maps`], charging every map to `memory` (for example a VM's,
    /// [`crate::Vm::map_memory`], so that the limit of [`crate::VmConfig::map_memory_limit`]
    /// holds for all the maps the VM's programs use).
    pub fn create_maps_in(&self, ncpus: u32, memory: &MapMemory) -> Result<ObjectMaps, LoadError> {
        let defs = self.maps().to_vec();
        let maps = defs
            .iter()
            .map(|d| d.create_with_lock_in(ncpus, self.spin_lock_offset(d), memory))
            .collect::<Result<Vec<_>, _>>()?;
        let maps = ObjectMaps { defs, maps };
        crate::loader::map_slots::fill_initial_slots(&maps)?;
        Ok(maps)
    }
}

/// The offset of a struct named `name` (`bpf_spin_lock`, `bpf_timer`) inside type `id`,
/// directly or in a nested struct (bounded depth).
pub(crate) fn find_struct(btf: &super::Btf, id: u32, name: &str, depth: usize) -> Option<u32> {
    if depth > 8 {
        return None;
    }
    match btf.get(btf.resolve(id)?)? {
        super::BtfType::Struct { name: n, .. } if n == name => Some(0),
        super::BtfType::Struct { members, .. } => members.iter().find_map(|m| {
            let inner = find_struct(btf, m.type_id, name, depth + 1)?;
            (m.bit_offset % 8 == 0).then(|| m.bit_offset / 8 + inner)
        }),
        _ => None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_are_cut_and_sanitised_like_libbpf() {
        assert_eq!(kernel_map_name("counts"), "counts");
        assert_eq!(kernel_map_name("a_very_long_map_name"), "a_very_long_map");
        assert_eq!(kernel_map_name("weird-name"), "weird_name");
    }
}
