//! Map creation one map at a time: a map that cannot be created (a `max_entries` of 0 that
//! the tool's loader would have set at run time, a size the kernel refuses, memory) is left
//! out, as a tool leaves it out with libbpf (`bpf_map__set_autocreate(map, false)`): every
//! reference to it is poisoned ([`super::MapPoison`]), and the verifier refuses a program
//! only where such a reference is reachable, with the kernel's words and why the map could
//! not be created; the other programs load. And [`Object::set_max_entries`] /
//! [`Object::set_value_size`], libbpf's `bpf_map__set_max_entries` /
//! `bpf_map__set_value_size`, to size a map before it is created.
//!
//! ```
//! use bpfvm::loader::{LoadError, Object};
//! use bpfvm::Vm;
//!
//! let bytes = include_bytes!("../../tests/fixtures/zero_entries.o");
//! let obj = Object::parse_named("zero_entries", bytes)?;
//! // `sized_later` has max_entries 0: only `remember`, which uses it, is refused.
//! let vm = Vm::builder().cpus(1).build();
//! let (obj, maps) = obj.create_maps_per_map(1, &Default::default())?;
//! assert!(vm.load(obj.vm_program("count", &maps)?).is_ok());
//! let err = vm.load(obj.vm_program("remember", &maps)?).unwrap_err();
//! assert!(err.to_string().contains(
//!     "invalid func unknown#2001000001: BPF map 'sized_later' is referenced but wasn't created"
//! ));
//!
//! // Sized first, as the tool's loader does: everything loads.
//! let mut obj = Object::parse_named("zero_entries", bytes)?;
//! obj.set_max_entries("sized_later", 64)?;
//! let (obj, maps) = obj.create_maps_per_map(1, &Default::default())?;
//! assert!(vm.load(obj.vm_program("remember", &maps)?).is_ok());
//! # Ok::<(), LoadError>(())
//! ```

use std::sync::Arc;

use bpfvm_maps::{Map, MapMemory};

use super::error::LoadError;
use super::instance::ObjectMaps;
use super::map_def::RefusedMap;
use super::strtab::SharedStr;
use super::{NameIndex, Object};

impl Object {
    /// Sets map `name`'s `max_entries` before its creation (libbpf's
    /// `bpf_map__set_max_entries`): a map the object leaves at 0 for its loader to size.
    /// [`LoadError::NoSuchMap`] when the object has no such map.
    pub fn set_max_entries(&mut self, name: &str, max_entries: u32) -> Result<(), LoadError> {
        let i = self.map_index(name).ok_or_else(|| LoadError::NoSuchMap {
            name: name.to_string(),
        })?;
        self.maps[i].max_entries = max_entries;
        Ok(())
    }

    /// Sets map `name`'s `value_size` before its creation (libbpf's
    /// `bpf_map__set_value_size`): bcc's tools size their stack maps to the stack depth
    /// they are asked for. [`LoadError::NoSuchMap`] when the object has no such map.
    pub fn set_value_size(&mut self, name: &str, value_size: u32) -> Result<(), LoadError> {
        let i = self.map_index(name).ok_or_else(|| LoadError::NoSuchMap {
            name: name.to_string(),
        })?;
        self.maps[i].value_size = value_size;
        Ok(())
    }

    /// Creates every map that can be created, on `ncpus` simulated CPUs and charged to
    /// `memory` (as [`Object::create_maps_in`]), and returns the object without the others:
    /// they become [`Object::refused_maps`] with their creation error, and the programs'
    /// references to them are poisoned as libbpf poisons those to a map it does not create
    /// ([`ProgramDefinition::map_poisons`](super::ProgramDefinition::map_poisons)): the
    /// verifier refuses a program only where one is reachable. A map-in-map whose initial
    /// inner map cannot be created cannot be created either.
    ///
    /// Fails only where [`Object::create_maps_in`] fails for the maps that were created
    /// (putting initial inner maps in their slots).
    pub fn create_maps_per_map(
        self,
        ncpus: u32,
        memory: &MapMemory,
    ) -> Result<(Object, ObjectMaps), LoadError> {
        let created: Vec<Result<Arc<Map>, LoadError>> = self
            .maps
            .iter()
            .map(|d| d.create_with_lock_in(ncpus, self.spin_lock_offset(d), memory))
            .collect();
        let (object, maps) = self.keep_created(created);
        let maps = ObjectMaps::from_parts(object.maps.clone(), maps);
        crate::loader::map_slots::fill_initial_slots(&maps)?;
        Ok((object, maps))
    }

    /// The object without the maps whose creation failed (`created[i]` is map `i`'s
    /// outcome), and the maps that were created, in the new order.
    pub(crate) fn keep_created<E: Into<LoadError>>(
        mut self,
        created: Vec<Result<Arc<Map>, E>>,
    ) -> (Object, Vec<Arc<Map>>) {
        let mut failed: Vec<Option<LoadError>> = Vec::with_capacity(created.len());
        let mut maps = Vec::with_capacity(created.len());
        for r in created {
            match r {
                Ok(m) => {
                    maps.push(Some(m));
                    failed.push(None);
                }
                Err(e) => {
                    maps.push(None);
                    failed.push(Some(e.into()));
                }
            }
        }
        // A map-in-map that needs a failed map in a slot fails too (until nothing changes).
        loop {
            let mut changed = false;
            for i in 0..self.maps.len() {
                if failed[i].is_some() {
                    continue;
                }
                let needs = self.maps[i].initial_slots.iter().find_map(|(_, inner)| {
                    let j = self.maps.iter().position(|m| m.name == *inner)?;
                    failed[j].is_some().then(|| (j, inner.clone()))
                });
                if let Some((j, inner)) = needs {
                    let reason = failed[j].clone().expect("failed");
                    failed[i] = Some(LoadError::MapUnavailable {
                        map: inner.to_string(),
                        reason: Box::new(reason),
                    });
                    maps[i] = None;
                    changed = true;
                }
            }
            if !changed {
                break;
            }
        }
        if failed.iter().all(Option::is_none) {
            return (self, maps.into_iter().flatten().collect());
        }
        // Old map index -> new one.
        let mut new_index = Vec::with_capacity(self.maps.len());
        let mut next = 0;
        for f in &failed {
            new_index.push(f.is_none().then(|| {
                next += 1;
                next - 1
            }));
        }
        let names: Vec<SharedStr> = self.maps.iter().map(|m| m.name.clone()).collect();
        let old_maps = std::mem::take(&mut self.maps);
        for (def, f) in old_maps.into_iter().zip(&failed) {
            match f {
                None => self.maps.push(def),
                Some(error) => self.refused_maps.push(RefusedMap {
                    name: def.name.clone(),
                    error: error.clone(),
                    section_index: def.section_index,
                    section_offset: def.section_offset,
                }),
            }
        }
        // Programs: their references to a failed map poisoned (libbpf's treatment of a
        // map it does not create), the others renumbered.
        for p in self.programs.iter_mut() {
            super::map_poison::poison_program(p, &failed, &names, &new_index);
        }
        self.index = NameIndex::new(&self.programs, &self.maps);
        (self, maps.into_iter().flatten().collect())
    }
}
