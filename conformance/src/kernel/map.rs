//! A kernel map with the host-side commands of `bpf(2)`, byte-level like bpfvm-maps.
//!
//! Buffer lengths behave as with raw `bpf(2)` calls: the kernel reads the first `key_size`
//! bytes of a key and the first §3-size bytes of a value, so longer buffers work, and a
//! shorter one is handed over right in front of an unmapped page, so the kernel's read
//! past its end faults (`EFAULT`) exactly where a short user buffer would. Output buffers
//! are always allocated at the size the kernel writes.

use super::batch::{BatchLookup, BatchWrite};
use super::consts::{elem, Cmd, MapType};
use super::errno::Errno;
use super::sys::{self, BatchArgs, BatchBuf, ElemValue, GuardedBuf, In, MapFd, MapShape};
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

    /// BPF_MAP_CREATE with BTF: `key_type` and `value_type` are type ids of `btf` (a value
    /// type holding a `struct bpf_spin_lock` gives the map a lock, as libbpf creates it).
    pub fn create_with_btf(
        def: MapDef,
        btf: &super::btf::KernelBtf,
        key_type: u32,
        value_type: u32,
    ) -> Result<Self, Errno> {
        let ncpus = super::possible_cpus().map_err(|_| Errno::EINVAL)?;
        let fd = sys::map_create_btf(
            MapShape {
                map_type: def.map_type,
                key_size: def.key_size,
                value_size: def.value_size,
                max_entries: def.max_entries,
                map_flags: def.map_flags,
                ncpus,
            },
            &btf.fd,
            key_type,
            value_type,
        )?;
        Ok(KernelMap { fd })
    }

    /// A map another loader (libbpf) created as `def`, taking ownership of `fd`.
    ///
    /// Fails with `EINVAL` when the possible CPUs cannot be read.
    pub fn from_owned_fd(fd: std::os::fd::OwnedFd, def: MapDef) -> Result<Self, Errno> {
        let ncpus = super::possible_cpus().map_err(|_| Errno::EINVAL)?;
        let shape = MapShape {
            map_type: def.map_type,
            key_size: def.key_size,
            value_size: def.value_size,
            max_entries: def.max_entries,
            map_flags: def.map_flags,
            ncpus,
        };
        Ok(KernelMap {
            fd: MapFd::from_owned(fd, shape),
        })
    }

    /// Wraps a map fd made by another module of the oracle.
    pub(crate) fn from_fd(fd: MapFd) -> KernelMap {
        KernelMap { fd }
    }

    /// The fd and geometry, for the other modules of the oracle.
    pub(crate) fn map_fd(&self) -> &MapFd {
        &self.fd
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

    /// `bytes` as the kernel will read them: at least `needed` bytes given → a copy
    /// zero-padded to `room`; fewer → a guarded copy whose overrun faults.
    fn input(&self, bytes: &[u8], needed: usize, room: usize) -> Result<Input, Errno> {
        if bytes.len() >= needed {
            let mut v = bytes.to_vec();
            v.resize(v.len().max(room), 0);
            Ok(Input::Plain(v))
        } else {
            GuardedBuf::new(bytes).map(Input::Guarded)
        }
    }

    fn key_input(&self, key: &[u8]) -> Result<Input, Errno> {
        let ks = self.fd.shape().key_size as usize;
        self.input(key, ks, ks)
    }

    /// A zeroed output buffer of the largest size the kernel writes per element.
    fn out_buf(&self) -> Vec<u8> {
        vec![0; self.fd.shape().max_value_bytes()]
    }

    /// BPF_MAP_LOOKUP_ELEM: the value (`value_size_for(flags)` bytes).
    pub fn lookup(&self, key: &[u8], flags: u64) -> Result<Vec<u8>, Errno> {
        self.read_elem(Cmd::MapLookupElem, key, flags, self.value_size_for(flags))
    }

    /// A command that copies one value out (`cmd`): the first `len` bytes the kernel wrote.
    fn read_elem(&self, cmd: Cmd, key: &[u8], flags: u64, len: usize) -> Result<Vec<u8>, Errno> {
        let key = self.key_input(key)?;
        let mut out = self.out_buf();
        sys::map_elem(
            &self.fd,
            cmd,
            key.key_arg(),
            ElemValue::Out(&mut out),
            flags,
        )?;
        out.truncate(len);
        Ok(out)
    }

    /// BPF_MAP_UPDATE_ELEM; the kernel reads `value_size_for(flags)` bytes of `value`.
    pub fn update(&self, key: &[u8], value: &[u8], flags: u64) -> Result<(), Errno> {
        let key = self.key_input(key)?;
        let room = self.fd.shape().max_value_bytes();
        let value = self.input(value, self.value_size_for(flags), room)?;
        sys::map_elem(
            &self.fd,
            Cmd::MapUpdateElem,
            key.key_arg(),
            ElemValue::In(value.as_in()),
            flags,
        )
    }

    /// BPF_MAP_DELETE_ELEM with `flags` 0.
    pub fn delete(&self, key: &[u8]) -> Result<(), Errno> {
        self.delete_raw(key, 0)
    }

    /// BPF_MAP_DELETE_ELEM with an explicit `flags` field (which must be 0 for the kernel).
    pub fn delete_raw(&self, key: &[u8], flags: u64) -> Result<(), Errno> {
        let key = self.key_input(key)?;
        sys::map_elem(
            &self.fd,
            Cmd::MapDeleteElem,
            key.key_arg(),
            ElemValue::None,
            flags,
        )
    }

    /// BPF_MAP_GET_NEXT_KEY; `None` asks for the first key.
    pub fn get_next_key(&self, key: Option<&[u8]>) -> Result<Vec<u8>, Errno> {
        let key = key.map(|k| self.key_input(k)).transpose()?;
        let mut next = vec![0; self.fd.shape().key_size as usize];
        sys::map_elem(
            &self.fd,
            Cmd::MapGetNextKey,
            key.as_ref().map(Input::as_in),
            ElemValue::NextKey(&mut next),
            0,
        )?;
        Ok(next)
    }

    /// BPF_MAP_LOOKUP_AND_DELETE_ELEM: the value, always at the no-flag size (§3).
    pub fn lookup_and_delete(&self, key: &[u8], flags: u64) -> Result<Vec<u8>, Errno> {
        self.read_elem(
            Cmd::MapLookupAndDeleteElem,
            key,
            flags,
            self.value_size_for(0),
        )
    }

    /// LOOKUP_ELEM (or LOOKUP_AND_DELETE_ELEM when `delete`) into a value buffer of only
    /// `len` bytes, placed before an unmapped page: what a caller with a too-short buffer
    /// gets. Returns the `len` bytes as the kernel left them, or the errno (`EFAULT` when
    /// the kernel's copy-out ran into the unmapped page).
    pub fn lookup_short(
        &self,
        key: &[u8],
        flags: u64,
        len: usize,
        delete: bool,
    ) -> Result<Vec<u8>, Errno> {
        let key = self.key_input(key)?;
        let out = GuardedBuf::new(&vec![0; len])?;
        let cmd = if delete {
            Cmd::MapLookupAndDeleteElem
        } else {
            Cmd::MapLookupElem
        };
        sys::map_elem(
            &self.fd,
            cmd,
            key.key_arg(),
            ElemValue::OutGuarded(&out),
            flags,
        )?;
        Ok(out.read())
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
        let needed = if super::consts::batch_token_is_key(s.map_type) {
            s.key_size as usize
        } else {
            4
        };
        let in_buf = match in_batch.map(|b| self.input(b, needed, tok)).transpose() {
            Ok(b) => b,
            Err(e) => return BatchLookup::failed(e, count),
        };
        let n = count as usize;
        let mut out_batch = vec![UNTOUCHED; tok];
        let mut keys = vec![0; n * s.key_size as usize];
        let mut values = vec![0; n * s.max_value_bytes()];
        let (result, out_count) = sys::map_batch(
            &self.fd,
            cmd,
            BatchArgs {
                in_batch: in_buf.as_ref().map(Input::as_in),
                out_batch: &mut out_batch,
                keys: BatchBuf::Out(&mut keys),
                values: Some(BatchBuf::Out(&mut values)),
                count,
                elem_flags,
                flags,
            },
        );
        let written = out_batch.iter().any(|&b| b != UNTOUCHED);
        let out_len = if super::consts::batch_token_is_key(s.map_type) {
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
        .trimmed(count, s.key_size as usize, stride)
    }

    /// BPF_MAP_UPDATE_BATCH of `count` elements: the kernel reads `count * key_size` bytes
    /// of `keys` and `count * value_size_for(elem_flags)` bytes of `values`.
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
        let inputs = self.input(keys, n * s.key_size as usize, 0).and_then(|k| {
            let needed = n * self.value_size_for(elem_flags);
            let v = self.input(values, needed, n * s.max_value_bytes())?;
            Ok((k, v))
        });
        let (keys, values) = match inputs {
            Ok(kv) => kv,
            Err(e) => return BatchWrite::failed(e, count),
        };
        self.write_batch(
            Cmd::MapUpdateBatch,
            &keys,
            Some(&values),
            count,
            elem_flags,
            flags,
        )
    }

    /// BPF_MAP_DELETE_BATCH of `count` keys (the kernel reads `count * key_size` bytes).
    pub fn delete_batch(&self, keys: &[u8], count: u32, elem_flags: u64, flags: u64) -> BatchWrite {
        let s = *self.fd.shape();
        let keys = match self.input(keys, count as usize * s.key_size as usize, 0) {
            Ok(k) => k,
            Err(e) => return BatchWrite::failed(e, count),
        };
        self.write_batch(Cmd::MapDeleteBatch, &keys, None, count, elem_flags, flags)
    }

    /// UPDATE_BATCH or DELETE_BATCH (`cmd`) of prepared `keys` (and `values`).
    fn write_batch(
        &self,
        cmd: Cmd,
        keys: &Input,
        values: Option<&Input>,
        count: u32,
        elem_flags: u64,
        flags: u64,
    ) -> BatchWrite {
        let mut out_batch = vec![0; self.fd.shape().batch_token_bytes()];
        let (result, count) = sys::map_batch(
            &self.fd,
            cmd,
            BatchArgs {
                in_batch: None,
                out_batch: &mut out_batch,
                keys: BatchBuf::In(keys.as_in()),
                values: values.map(|v| BatchBuf::In(v.as_in())),
                count,
                elem_flags,
                flags,
            },
        );
        BatchWrite { result, count }
    }
}

/// Bytes prepared for the kernel to read (see [`KernelMap::input`]).
#[derive(Debug)]
enum Input {
    Plain(Vec<u8>),
    Guarded(GuardedBuf),
}

impl Input {
    fn as_in(&self) -> In<'_> {
        match self {
            Input::Plain(v) => In::Plain(v),
            Input::Guarded(g) => In::Guarded(g),
        }
    }

    /// The key argument: NULL for an empty plain key (maps with `key_size` 0, such as
    /// queues, stacks and ring buffers, take no key: a non-NULL one is `EINVAL`).
    fn key_arg(&self) -> Option<In<'_>> {
        match self {
            Input::Plain(v) if v.is_empty() => None,
            other => Some(other.as_in()),
        }
    }
}
