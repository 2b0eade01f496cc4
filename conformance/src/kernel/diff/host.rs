//! The host-side map interface both sides of a comparison implement.

use crate::kernel::{BatchLookup, BatchWrite, Errno, KernelMap};

/// The `bpf(2)` map commands, byte-level, with errors as kernel errnos. Buffer sizes
/// follow spec §3; implementations refuse other sizes with `EINVAL` (as libbpf does).
pub trait HostMap {
    /// BPF_MAP_LOOKUP_ELEM.
    fn lookup(&self, key: &[u8], flags: u64) -> Result<Vec<u8>, Errno>;
    /// BPF_MAP_UPDATE_ELEM.
    fn update(&self, key: &[u8], value: &[u8], flags: u64) -> Result<(), Errno>;
    /// BPF_MAP_DELETE_ELEM.
    fn delete(&self, key: &[u8]) -> Result<(), Errno>;
    /// BPF_MAP_GET_NEXT_KEY (`None`: the first key).
    fn get_next_key(&self, key: Option<&[u8]>) -> Result<Vec<u8>, Errno>;
    /// BPF_MAP_LOOKUP_AND_DELETE_ELEM.
    fn lookup_and_delete(&self, key: &[u8], flags: u64) -> Result<Vec<u8>, Errno>;
    /// BPF_MAP_LOOKUP_BATCH.
    fn lookup_batch(
        &self,
        in_batch: Option<&[u8]>,
        count: u32,
        elem_flags: u64,
        flags: u64,
    ) -> BatchLookup;
    /// BPF_MAP_LOOKUP_AND_DELETE_BATCH.
    fn lookup_and_delete_batch(
        &self,
        in_batch: Option<&[u8]>,
        count: u32,
        elem_flags: u64,
        flags: u64,
    ) -> BatchLookup;
    /// BPF_MAP_UPDATE_BATCH.
    fn update_batch(
        &self,
        keys: &[u8],
        values: &[u8],
        count: u32,
        elem_flags: u64,
        flags: u64,
    ) -> BatchWrite;
    /// BPF_MAP_DELETE_BATCH.
    fn delete_batch(&self, keys: &[u8], count: u32, elem_flags: u64, flags: u64) -> BatchWrite;
    /// BPF_MAP_FREEZE.
    fn freeze(&self) -> Result<(), Errno>;
    /// Makes `cpu` the caller's current CPU for later calls (spec §7.6).
    fn set_host_cpu(&self, cpu: u32) -> Result<(), Errno>;
}

impl HostMap for KernelMap {
    fn lookup(&self, key: &[u8], flags: u64) -> Result<Vec<u8>, Errno> {
        KernelMap::lookup(self, key, flags)
    }
    fn update(&self, key: &[u8], value: &[u8], flags: u64) -> Result<(), Errno> {
        KernelMap::update(self, key, value, flags)
    }
    fn delete(&self, key: &[u8]) -> Result<(), Errno> {
        KernelMap::delete(self, key)
    }
    fn get_next_key(&self, key: Option<&[u8]>) -> Result<Vec<u8>, Errno> {
        KernelMap::get_next_key(self, key)
    }
    fn lookup_and_delete(&self, key: &[u8], flags: u64) -> Result<Vec<u8>, Errno> {
        KernelMap::lookup_and_delete(self, key, flags)
    }
    fn lookup_batch(
        &self,
        in_batch: Option<&[u8]>,
        count: u32,
        elem_flags: u64,
        flags: u64,
    ) -> BatchLookup {
        KernelMap::lookup_batch(self, in_batch, count, elem_flags, flags)
    }
    fn lookup_and_delete_batch(
        &self,
        in_batch: Option<&[u8]>,
        count: u32,
        elem_flags: u64,
        flags: u64,
    ) -> BatchLookup {
        KernelMap::lookup_and_delete_batch(self, in_batch, count, elem_flags, flags)
    }
    fn update_batch(
        &self,
        keys: &[u8],
        values: &[u8],
        count: u32,
        elem_flags: u64,
        flags: u64,
    ) -> BatchWrite {
        KernelMap::update_batch(self, keys, values, count, elem_flags, flags)
    }
    fn delete_batch(&self, keys: &[u8], count: u32, elem_flags: u64, flags: u64) -> BatchWrite {
        KernelMap::delete_batch(self, keys, count, elem_flags, flags)
    }
    fn freeze(&self) -> Result<(), Errno> {
        KernelMap::freeze(self)
    }
    /// Pins the calling thread to `cpu` (it stays pinned after the call).
    fn set_host_cpu(&self, cpu: u32) -> Result<(), Errno> {
        crate::kernel::pin_current_thread(cpu)
    }
}

/// A kernel map that answers ops Linux 6.18 lacks through the `emulate` module, so two kernel
/// maps can be compared op for op (a self-check of the harness and of the kernel's
/// determinism).
#[derive(Debug)]
pub struct Emulated(pub KernelMap);

impl Emulated {
    fn op(&self, op: super::Op) -> super::Outcome {
        if super::needs_emulation(&self.0.def(), &op) {
            super::emulate::emulate(&self.0, &op)
        } else {
            super::apply(&self.0, &op)
        }
    }
}

fn bytes(o: super::Outcome) -> Result<Vec<u8>, Errno> {
    match o {
        super::Outcome::Bytes(r) => r,
        _ => Err(Errno::EINVAL),
    }
}

fn unit(o: super::Outcome) -> Result<(), Errno> {
    match o {
        super::Outcome::Unit(r) => r,
        _ => Err(Errno::EINVAL),
    }
}

impl HostMap for Emulated {
    fn lookup(&self, key: &[u8], flags: u64) -> Result<Vec<u8>, Errno> {
        bytes(self.op(super::Op::Lookup {
            key: key.to_vec(),
            flags,
        }))
    }
    fn update(&self, key: &[u8], value: &[u8], flags: u64) -> Result<(), Errno> {
        unit(self.op(super::Op::Update {
            key: key.to_vec(),
            value: value.to_vec(),
            flags,
        }))
    }
    fn delete(&self, key: &[u8]) -> Result<(), Errno> {
        self.0.delete(key)
    }
    fn get_next_key(&self, key: Option<&[u8]>) -> Result<Vec<u8>, Errno> {
        self.0.get_next_key(key)
    }
    fn lookup_and_delete(&self, key: &[u8], flags: u64) -> Result<Vec<u8>, Errno> {
        self.0.lookup_and_delete(key, flags)
    }
    fn lookup_batch(
        &self,
        in_batch: Option<&[u8]>,
        count: u32,
        elem_flags: u64,
        flags: u64,
    ) -> BatchLookup {
        match self.op(super::Op::LookupBatch {
            in_batch: in_batch.map(<[u8]>::to_vec),
            count,
            elem_flags,
            flags,
        }) {
            super::Outcome::Read(r) => r,
            // Not produced for a lookup batch; kept total rather than panicking.
            _ => BatchLookup::failed(Errno::EINVAL, count),
        }
    }
    fn lookup_and_delete_batch(
        &self,
        in_batch: Option<&[u8]>,
        count: u32,
        elem_flags: u64,
        flags: u64,
    ) -> BatchLookup {
        self.0
            .lookup_and_delete_batch(in_batch, count, elem_flags, flags)
    }
    fn update_batch(
        &self,
        keys: &[u8],
        values: &[u8],
        count: u32,
        elem_flags: u64,
        flags: u64,
    ) -> BatchWrite {
        match self.op(super::Op::UpdateBatch {
            keys: keys.to_vec(),
            values: values.to_vec(),
            count,
            elem_flags,
            flags,
        }) {
            super::Outcome::Write(w) => w,
            // Not produced for an update batch; kept total rather than panicking.
            _ => BatchWrite::failed(Errno::EINVAL, count),
        }
    }
    fn delete_batch(&self, keys: &[u8], count: u32, elem_flags: u64, flags: u64) -> BatchWrite {
        self.0.delete_batch(keys, count, elem_flags, flags)
    }
    fn freeze(&self) -> Result<(), Errno> {
        self.0.freeze()
    }
    fn set_host_cpu(&self, cpu: u32) -> Result<(), Errno> {
        crate::kernel::pin_current_thread(cpu)
    }
}
