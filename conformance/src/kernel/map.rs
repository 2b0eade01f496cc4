//! A kernel map with the host-side commands of `bpf(2)`, byte-level like bpfvm-maps.
//!
//! Buffer sizes are checked first, like libbpf's `validate_map_op` (spec §11): a key that
//! is not `key_size` bytes, or a value that is not the size §3 gives for the flags, is
//! `EINVAL` without a syscall. The kernel itself cannot see buffer lengths.

use super::batch::{BatchLookup, BatchWrite};
use super::consts::{elem, Cmd, MapType};
use super::errno::Errno;
use super::sys::{self, BatchArgs, ElemValue, MapFd, MapShape};
use std::os::fd::RawFd;

/// What to create: the fields of BPF_MAP_CREATE the oracle uses.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct MapDef {
    /// Map type.
    pub map_type: MapType,
    /// `key_size` in bytes.
    pub key_size: u32,
    /// `value_size` in bytes (`VS`).
    pub value_size: u32,
    /// `max_entries`.
    pub max_entries: u32,
    /// `map_flags` (see [`super::consts::create`]).
    pub map_flags: u32,
}

/// Marks `out_batch` bytes the kernel did not write (no bucket index or array key that a
/// map of the sizes used here can produce has this pattern).
const UNTOUCHED: u8 = 0xA5;

/// A map created in the running kernel; the fd closes when it drops.
#[derive(Debug)]
pub struct KernelMap {
    fd: MapFd,
}

impl KernelMap {
    /// BPF_MAP_CREATE. N is the kernel's possible CPU count ([`super::possible_cpus`]).
    ///
    /// Fails with the kernel's errno, or `EINVAL` when the possible CPUs cannot be read.
    pub fn create(def: MapDef) -> Result<Self, Errno> {
        let ncpus = super::possible_cpus().map_err(|_| Errno::EINVAL)?;
        let fd = sys::map_create(MapShape {
            map_type: def.map_type,
            key_size: def.key_size,
            value_size: def.value_size,
            max_entries: def.max_entries,
            map_flags: def.map_flags,
            ncpus,
        })?;
        Ok(KernelMap { fd })
    }

    /// The creation parameters.
    pub fn def(&self) -> MapDef {
        let s = self.fd.shape();
        MapDef {
            map_type: s.map_type,
            key_size: s.key_size,
            value_size: s.value_size,
            max_entries: s.max_entries,
            map_flags: s.map_flags,
        }
    }

    /// N, the number of per-CPU copies in a full buffer.
    pub fn ncpus(&self) -> u32 {
        self.fd.shape().ncpus
    }

    /// The raw fd (for substitution into programs).
    pub fn raw_fd(&self) -> RawFd {
        self.fd.raw()
    }

    /// The value buffer size for `flags` (spec §3): `VS` with a cpu flag or on a map that
    /// is not per-CPU, else `round_up(VS, 8) * N`.
    pub fn value_size_for(&self, flags: u64) -> usize {
        let s = self.fd.shape();
        let vs = s.value_size as usize;
        if s.map_type.is_percpu() && flags & (elem::CPU | elem::ALL_CPUS) == 0 {
            vs.div_ceil(8) * 8 * s.ncpus as usize
        } else {
            vs
        }
    }

    fn key_ok(&self, key: &[u8]) -> Result<(), Errno> {
        if key.len() == self.fd.shape().key_size as usize {
            Ok(())
        } else {
            Err(Errno::EINVAL)
        }
    }

    /// A zeroed buffer of the largest size the kernel moves, holding `bytes` at its start.
    fn padded(&self, bytes: &[u8], elems: usize) -> Vec<u8> {
        let mut buf = vec![0; self.fd.shape().max_value_bytes() * elems.max(1)];
        buf[..bytes.len()].copy_from_slice(bytes);
        buf
    }

    /// BPF_MAP_LOOKUP_ELEM: the value (`value_size_for(flags)` bytes).
    pub fn lookup(&self, key: &[u8], flags: u64) -> Result<Vec<u8>, Errno> {
        self.key_ok(key)?;
        let mut out = self.padded(&[], 1);
        sys::map_elem(
            &self.fd,
            Cmd::MapLookupElem,
            Some(key),
            ElemValue::Out(&mut out),
            flags,
        )?;
        out.truncate(self.value_size_for(flags));
        Ok(out)
    }

    /// BPF_MAP_UPDATE_ELEM; `value` must be `value_size_for(flags)` bytes.
    pub fn update(&self, key: &[u8], value: &[u8], flags: u64) -> Result<(), Errno> {
        self.key_ok(key)?;
        if value.len() != self.value_size_for(flags) {
            return Err(Errno::EINVAL);
        }
        let buf = self.padded(value, 1);
        sys::map_elem(
            &self.fd,
            Cmd::MapUpdateElem,
            Some(key),
            ElemValue::In(&buf),
            flags,
        )
    }

    /// BPF_MAP_DELETE_ELEM with `flags` 0.
    pub fn delete(&self, key: &[u8]) -> Result<(), Errno> {
        self.delete_raw(key, 0)
    }

    /// BPF_MAP_DELETE_ELEM with an explicit `flags` field (which must be 0 for the kernel).
    pub fn delete_raw(&self, key: &[u8], flags: u64) -> Result<(), Errno> {
        self.key_ok(key)?;
        sys::map_elem(
            &self.fd,
            Cmd::MapDeleteElem,
            Some(key),
            ElemValue::None,
            flags,
        )
    }

    /// BPF_MAP_GET_NEXT_KEY; `None` asks for the first key.
    pub fn get_next_key(&self, key: Option<&[u8]>) -> Result<Vec<u8>, Errno> {
        if let Some(k) = key {
            self.key_ok(k)?;
        }
        let mut next = vec![0; self.fd.shape().key_size as usize];
        sys::map_elem(
            &self.fd,
            Cmd::MapGetNextKey,
            key,
            ElemValue::NextKey(&mut next),
            0,
        )?;
        Ok(next)
    }

    /// BPF_MAP_LOOKUP_AND_DELETE_ELEM: the value, always at the no-flag size (§3).
    pub fn lookup_and_delete(&self, key: &[u8], flags: u64) -> Result<Vec<u8>, Errno> {
        self.key_ok(key)?;
        let mut out = self.padded(&[], 1);
        sys::map_elem(
            &self.fd,
            Cmd::MapLookupAndDeleteElem,
            Some(key),
            ElemValue::Out(&mut out),
            flags,
        )?;
        out.truncate(self.value_size_for(0));
        Ok(out)
    }

    /// BPF_MAP_FREEZE.
    pub fn freeze(&self) -> Result<(), Errno> {
        sys::map_freeze(&self.fd)
    }

    /// BPF_MAP_LOOKUP_BATCH. `in_batch` is a key (arrays) or a u32 bucket index (hashes),
    /// in native byte order; it must be at least `max(key_size, 4)` bytes, else `EINVAL`.
    pub fn lookup_batch(
        &self,
        in_batch: Option<&[u8]>,
        count: u32,
        elem_flags: u64,
        flags: u64,
    ) -> BatchLookup {
        let stride = self.value_size_for(elem_flags);
        self.read_batch(
            Cmd::MapLookupBatch,
            in_batch,
            count,
            elem_flags,
            flags,
            stride,
        )
    }

    /// BPF_MAP_LOOKUP_AND_DELETE_BATCH (per-CPU values always at the full size, §3).
    pub fn lookup_and_delete_batch(
        &self,
        in_batch: Option<&[u8]>,
        count: u32,
        elem_flags: u64,
        flags: u64,
    ) -> BatchLookup {
        let stride = self.value_size_for(0);
        self.read_batch(
            Cmd::MapLookupAndDeleteBatch,
            in_batch,
            count,
            elem_flags,
            flags,
            stride,
        )
    }

    fn read_batch(
        &self,
        cmd: Cmd,
        in_batch: Option<&[u8]>,
        count: u32,
        elem_flags: u64,
        flags: u64,
        stride: usize,
    ) -> BatchLookup {
        let s = *self.fd.shape();
        let tok = s.batch_token_bytes();
        let mut in_buf = vec![0; tok];
        if let Some(b) = in_batch {
            if b.len() > tok {
                return early(Errno::EINVAL, count);
            }
            in_buf[..b.len()].copy_from_slice(b);
        }
        let n = count as usize;
        let mut out_batch = vec![UNTOUCHED; tok];
        let mut keys = vec![0; n * s.key_size as usize];
        let mut values = vec![0; n * s.max_value_bytes()];
        let (result, out_count) = sys::map_batch(
            &self.fd,
            cmd,
            BatchArgs {
                in_batch: in_batch.map(|_| &in_buf[..]),
                out_batch: &mut out_batch,
                keys: &mut keys,
                values: Some(&mut values),
                count,
                elem_flags,
                flags,
            },
        );
        // `count` is meaningful on success and at the end of the map (ENOENT); after
        // other errors it is 0 or untouched, and no entries are reported.
        let got = match result {
            Ok(()) | Err(Errno::ENOENT) => out_count.min(count) as usize,
            Err(_) => 0,
        };
        keys.truncate(got * s.key_size as usize);
        values.truncate(got * stride);
        let written = out_batch.iter().any(|&b| b != UNTOUCHED);
        let out_len = if s.map_type.is_array() {
            s.key_size as usize
        } else {
            4
        };
        out_batch.truncate(out_len);
        BatchLookup {
            result,
            count: out_count,
            keys,
            values,
            out_batch: written.then_some(out_batch),
        }
    }

    /// BPF_MAP_UPDATE_BATCH of `count` elements: `keys` is `count * key_size` bytes,
    /// `values` is `count * value_size_for(elem_flags)` bytes, else `EINVAL`.
    pub fn update_batch(
        &self,
        keys: &[u8],
        values: &[u8],
        count: u32,
        elem_flags: u64,
        flags: u64,
    ) -> BatchWrite {
        let s = *self.fd.shape();
        let n = count as usize;
        if keys.len() != n * s.key_size as usize
            || values.len() != n * self.value_size_for(elem_flags)
        {
            return BatchWrite {
                result: Err(Errno::EINVAL),
                count,
            };
        }
        let mut keys = keys.to_vec();
        let mut vals = self.padded(values, n);
        let mut out_batch = vec![0; s.batch_token_bytes()];
        let (result, count) = sys::map_batch(
            &self.fd,
            Cmd::MapUpdateBatch,
            BatchArgs {
                in_batch: None,
                out_batch: &mut out_batch,
                keys: &mut keys,
                values: Some(&mut vals),
                count,
                elem_flags,
                flags,
            },
        );
        BatchWrite { result, count }
    }

    /// BPF_MAP_DELETE_BATCH of `count` keys (`keys` is `count * key_size` bytes).
    pub fn delete_batch(&self, keys: &[u8], count: u32, elem_flags: u64, flags: u64) -> BatchWrite {
        let s = *self.fd.shape();
        if keys.len() != count as usize * s.key_size as usize {
            return BatchWrite {
                result: Err(Errno::EINVAL),
                count,
            };
        }
        let mut keys = keys.to_vec();
        let mut out_batch = vec![0; s.batch_token_bytes()];
        let (result, count) = sys::map_batch(
            &self.fd,
            Cmd::MapDeleteBatch,
            BatchArgs {
                in_batch: None,
                out_batch: &mut out_batch,
                keys: &mut keys,
                values: None,
                count,
                elem_flags,
                flags,
            },
        );
        BatchWrite { result, count }
    }
}

fn early(errno: Errno, count: u32) -> BatchLookup {
    BatchLookup {
        result: Err(errno),
        count,
        keys: Vec::new(),
        values: Vec::new(),
        out_batch: None,
    }
}
