//! Map-in-map in the kernel: outer maps made from an inner map template, and map ids (what
//! a host lookup of an outer map returns).

use super::errno::Errno;
use super::map::{KernelMap, MapDef};
use super::sys::{self, MapShape};

impl KernelMap {
    /// BPF_MAP_CREATE of an `ARRAY_OF_MAPS` / `HASH_OF_MAPS` (`def.map_type`) with `inner`
    /// as `inner_map_fd`. Fails with the kernel's errno.
    pub fn create_of_maps(def: MapDef, inner: &KernelMap) -> Result<KernelMap, Errno> {
        let ncpus = super::possible_cpus().map_err(|_| Errno::EINVAL)?;
        let fd = sys::map_in_map::map_create_of_maps(
            MapShape {
                map_type: def.map_type,
                key_size: def.key_size,
                value_size: def.value_size,
                max_entries: def.max_entries,
                map_flags: def.map_flags,
                ncpus,
            },
            inner.map_fd(),
        )?;
        Ok(KernelMap::from_fd(fd))
    }

    /// BPF_MAP_UPDATE_ELEM of an outer map with `inner`'s fd as the value.
    pub fn update_map(&self, key: &[u8], inner: &KernelMap, flags: u64) -> Result<(), Errno> {
        self.update(key, &(inner.raw_fd() as u32).to_ne_bytes(), flags)
    }

    /// The map's id (BPF_OBJ_GET_INFO_BY_FD).
    pub fn id(&self) -> Result<u32, Errno> {
        sys::map_in_map::map_id(self.map_fd())
    }
}
