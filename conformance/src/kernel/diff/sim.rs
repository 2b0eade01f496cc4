//! bpfvm-maps behind the [`HostMap`] interface, so it can be compared with the kernel.

use super::host::HostMap;
use crate::kernel::{BatchLookup, BatchWrite, Errno, MapDef};
use bpfvm_maps::{CpuId, Map, MapError, MapSpec};

/// Marks `out_batch` bytes the map did not write (as [`crate::kernel::KernelMap`] does).
const UNTOUCHED: u8 = 0xA5;

fn errno(e: MapError) -> Errno {
    Errno(e.errno())
}

/// Creates the bpfvm map matching `def` on `ncpus` simulated CPUs.
pub fn sim_map(def: MapDef, ncpus: u32) -> Result<Map, Errno> {
    let spec = MapSpec::new(def.map_type, def.key_size, def.value_size, def.max_entries)
        .with_flags(def.map_flags);
    Map::create(spec, ncpus).map_err(errno)
}

fn token_len(map: &Map) -> usize {
    if crate::kernel::consts::batch_token_is_key(map.map_type()) {
        map.key_size() as usize
    } else {
        4
    }
}

fn read_batch(
    map: &Map,
    delete: bool,
    in_batch: Option<&[u8]>,
    count: u32,
    elem_flags: u64,
    flags: u64,
) -> BatchLookup {
    let ks = map.key_size() as usize;
    let stride = map.host_value_size(if delete { 0 } else { elem_flags });
    let n = count as usize;
    let mut out_batch = vec![UNTOUCHED; token_len(map)];
    let mut keys = vec![0; n * ks];
    let mut values = vec![0; n * stride];
    let mut c = count;
    let command = if delete {
        Map::lookup_and_delete_batch
    } else {
        Map::lookup_batch
    };
    let result = command(
        map,
        in_batch,
        &mut out_batch,
        &mut keys,
        &mut values,
        &mut c,
        elem_flags,
        flags,
    )
    .map_err(errno);
    let written = out_batch.iter().any(|&b| b != UNTOUCHED);
    BatchLookup {
        result,
        count: c,
        keys,
        values,
        out_batch: written.then_some(out_batch),
    }
    .trimmed(count, ks, stride)
}

impl HostMap for Map {
    fn lookup(&self, key: &[u8], flags: u64) -> Result<Vec<u8>, Errno> {
        let mut out = vec![0; self.host_value_size(flags)];
        Map::lookup(self, key, &mut out, flags).map_err(errno)?;
        Ok(out)
    }
    fn update(&self, key: &[u8], value: &[u8], flags: u64) -> Result<(), Errno> {
        Map::update(self, key, value, flags).map_err(errno)
    }
    fn delete(&self, key: &[u8]) -> Result<(), Errno> {
        Map::delete(self, key, 0).map_err(errno)
    }
    fn get_next_key(&self, key: Option<&[u8]>) -> Result<Vec<u8>, Errno> {
        let mut next = vec![0; self.key_size() as usize];
        Map::get_next_key(self, key, &mut next, 0).map_err(errno)?;
        Ok(next)
    }
    fn lookup_and_delete(&self, key: &[u8], flags: u64) -> Result<Vec<u8>, Errno> {
        let mut out = vec![0; self.host_value_size(0)];
        Map::lookup_and_delete(self, key, &mut out, flags).map_err(errno)?;
        Ok(out)
    }
    fn lookup_batch(
        &self,
        in_batch: Option<&[u8]>,
        count: u32,
        elem_flags: u64,
        flags: u64,
    ) -> BatchLookup {
        read_batch(self, false, in_batch, count, elem_flags, flags)
    }
    fn lookup_and_delete_batch(
        &self,
        in_batch: Option<&[u8]>,
        count: u32,
        elem_flags: u64,
        flags: u64,
    ) -> BatchLookup {
        read_batch(self, true, in_batch, count, elem_flags, flags)
    }
    fn update_batch(
        &self,
        keys: &[u8],
        values: &[u8],
        count: u32,
        elem_flags: u64,
        flags: u64,
    ) -> BatchWrite {
        let mut c = count;
        let result =
            Map::update_batch(self, keys, values, &mut c, elem_flags, flags).map_err(errno);
        BatchWrite { result, count: c }
    }
    fn delete_batch(&self, keys: &[u8], count: u32, elem_flags: u64, flags: u64) -> BatchWrite {
        let mut c = count;
        let result = Map::delete_batch(self, keys, &mut c, elem_flags, flags).map_err(errno);
        BatchWrite { result, count: c }
    }
    fn freeze(&self) -> Result<(), Errno> {
        Map::freeze(self).map_err(errno)
    }
    fn set_host_cpu(&self, cpu: u32) -> Result<(), Errno> {
        Map::set_host_cpu(self, CpuId(cpu)).map_err(errno)
    }
}
