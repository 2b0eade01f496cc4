//! The four batch commands (spec §5.6, §6): generic versions for arrays, bucket-based
//! lookups for the hash family.
//!
//! `count` is in/out exactly like `attr.batch.count`: untouched on a flag error or an
//! unsupported command, and the number of elements processed otherwise (also on error).
//! Buffers: `keys` holds `count * key_size` bytes, `values` `count * stride` bytes where the
//! stride is the host value size for `elem_flags` (spec §3). Lookups check the output
//! buffers for `count` elements before copying anything (`EFAULT`), so a short buffer never
//! loses deleted elements.

use crate::error::MapError;
use crate::flags::{BPF_F_ALL_CPUS, BPF_F_CPU, BPF_F_LOCK};
use crate::map::{Dst, Kind, Map, Perm};
use crate::spec::MapType;

/// Which lookup batch command runs: both walk the map the same way.
#[derive(Clone, Copy, PartialEq, Eq)]
enum LookupOp {
    /// `BPF_MAP_LOOKUP_BATCH`.
    Lookup,
    /// `BPF_MAP_LOOKUP_AND_DELETE_BATCH`: every element returned is deleted.
    LookupAndDelete,
}

impl LookupOp {
    fn name(self) -> &'static str {
        match self {
            LookupOp::Lookup => "lookup_batch",
            LookupOp::LookupAndDelete => "lookup_and_delete_batch",
        }
    }
}

impl Map {
    /// `BPF_MAP_LOOKUP_BATCH`. Arrays: `in_batch`/`out_batch` are keys (§6.1). Hash family:
    /// they are a u32 bucket index (§6.2); `flags` (`attr.batch.flags`) must be 0 there.
    /// `ENOENT` at the end (with `count` valid), `ENOSPC` when the first bucket does not fit.
    #[allow(clippy::too_many_arguments)]
    pub fn lookup_batch(
        &self,
        in_batch: Option<&[u8]>,
        out_batch: &mut [u8],
        keys: &mut [u8],
        values: &mut [u8],
        count: &mut u32,
        elem_flags: u64,
        flags: u64,
    ) -> Result<(), MapError> {
        self.lookup_batch_as(
            LookupOp::Lookup,
            in_batch,
            out_batch,
            keys,
            values,
            count,
            elem_flags,
            flags,
        )
    }

    /// `BPF_MAP_LOOKUP_AND_DELETE_BATCH` (hash family only, else `ENOTSUPP`): as
    /// [`Map::lookup_batch`], deleting every element returned; `BPF_F_CPU` is `EINVAL` and
    /// per-CPU values are always full `SLOT * N` buffers.
    #[allow(clippy::too_many_arguments)]
    pub fn lookup_and_delete_batch(
        &self,
        in_batch: Option<&[u8]>,
        out_batch: &mut [u8],
        keys: &mut [u8],
        values: &mut [u8],
        count: &mut u32,
        elem_flags: u64,
        flags: u64,
    ) -> Result<(), MapError> {
        self.lookup_batch_as(
            LookupOp::LookupAndDelete,
            in_batch,
            out_batch,
            keys,
            values,
            count,
            elem_flags,
            flags,
        )
    }

    /// `BPF_MAP_UPDATE_BATCH` (generic, §6.3): `count` updates in order with `elem_flags`
    /// (only LOCK, CPU, ALL_CPUS allowed, so EXIST/NOEXIST are `EINVAL`); stops at the first
    /// error with `count` = the number applied. `flags` is not checked.
    pub fn update_batch(
        &self,
        keys: &[u8],
        values: &[u8],
        count: &mut u32,
        elem_flags: u64,
        flags: u64,
    ) -> Result<(), MapError> {
        let _ = flags;
        self.check_perm(Perm::Write)?;
        if !matches!(self.kind, Kind::Array | Kind::Hash(_) | Kind::Lpm(_)) {
            return Err(self.no_batch("update_batch"));
        }
        self.check_flags(elem_flags, BPF_F_LOCK | BPF_F_CPU | BPF_F_ALL_CPUS)?;
        let vsize = self.host_value_size(elem_flags);
        let ks = self.spec.key_size as usize;
        Map::each_in_order(count, |at| {
            let key = Map::buf_in("keys", keys.get(at * ks..).unwrap_or(&[]), ks)?;
            let value = Map::buf_in("values", values.get(at * vsize..).unwrap_or(&[]), vsize)?;
            self.update_checked(key, value, elem_flags)
        })
    }

    /// `BPF_MAP_DELETE_BATCH` (generic, §6.4; hash family only, else `ENOTSUPP`): deletes in
    /// order, stops at the first error (e.g. `ENOENT`), `count` = the number deleted.
    pub fn delete_batch(
        &self,
        keys: &[u8],
        count: &mut u32,
        elem_flags: u64,
        flags: u64,
    ) -> Result<(), MapError> {
        let _ = flags;
        self.check_perm(Perm::Write)?;
        if !matches!(self.kind, Kind::Hash(_) | Kind::Lpm(_)) {
            return Err(self.no_batch("delete_batch"));
        }
        if elem_flags & !BPF_F_LOCK != 0 {
            return Err(MapError::flags(
                elem_flags,
                "DELETE_BATCH only allows BPF_F_LOCK",
            ));
        }
        if elem_flags & BPF_F_LOCK != 0 && !self.has_spin_lock() {
            return Err(MapError::flags(
                elem_flags,
                "BPF_F_LOCK on a map without a spin lock",
            ));
        }
        let ks = self.spec.key_size as usize;
        Map::each_in_order(count, |at| {
            let key = Map::buf_in("keys", keys.get(at * ks..).unwrap_or(&[]), ks)?;
            self.delete_checked(key)
        })
    }

    /// Applies `apply` to elements `0..count` in order, stopping at the first error, and
    /// leaves in `count` the number applied (the update and delete batches, §6.3–§6.4).
    fn each_in_order(
        count: &mut u32,
        mut apply: impl FnMut(usize) -> Result<(), MapError>,
    ) -> Result<(), MapError> {
        let max = *count;
        let mut done = 0u32;
        let result = (0..max as usize).try_for_each(|at| {
            apply(at)?;
            done += 1;
            Ok(())
        });
        *count = done;
        result
    }

    /// The two lookup batches: the same walk, `op` says whether returned elements are
    /// deleted (and so which map kinds, permission and `elem_flags` are allowed).
    #[allow(clippy::too_many_arguments)]
    fn lookup_batch_as(
        &self,
        op: LookupOp,
        in_batch: Option<&[u8]>,
        out_batch: &mut [u8],
        keys: &mut [u8],
        values: &mut [u8],
        count: &mut u32,
        elem_flags: u64,
        flags: u64,
    ) -> Result<(), MapError> {
        let delete = op == LookupOp::LookupAndDelete;
        self.check_perm(if delete { Perm::ReadWrite } else { Perm::Read })?;
        match &self.kind {
            Kind::Array | Kind::Lpm(_) if !delete => {
                self.generic_lookup_batch(in_batch, out_batch, keys, values, count, elem_flags)
            }
            Kind::Hash(_) => {
                let allowed = match self.spec.map_type {
                    MapType::PercpuHash | MapType::LruPercpuHash if !delete => {
                        BPF_F_LOCK | BPF_F_CPU
                    }
                    _ => BPF_F_LOCK,
                };
                self.hash_batch(
                    in_batch, out_batch, keys, values, count, elem_flags, flags, allowed, delete,
                )
            }
            _ => Err(self.no_batch(op.name())),
        }
    }

    fn no_batch(&self, op: &'static str) -> MapError {
        MapError::NotSupported {
            op,
            map_type: self.spec.map_type,
        }
    }

    fn check_batch_bufs(
        &self,
        keys: &[u8],
        values: &[u8],
        count: u32,
        vsize: usize,
    ) -> Result<(), MapError> {
        let ks = self.spec.key_size as usize;
        let need_k = count as usize * ks;
        if keys.len() < need_k {
            return Err(MapError::BufferTooSmall {
                what: "keys",
                needed: need_k,
                got: keys.len(),
            });
        }
        let need_v = count as usize * vsize;
        if values.len() < need_v {
            return Err(MapError::BufferTooSmall {
                what: "values",
                needed: need_v,
                got: values.len(),
            });
        }
        Ok(())
    }

    fn generic_lookup_batch(
        &self,
        in_batch: Option<&[u8]>,
        out_batch: &mut [u8],
        keys: &mut [u8],
        values: &mut [u8],
        count: &mut u32,
        elem_flags: u64,
    ) -> Result<(), MapError> {
        self.check_flags(elem_flags, BPF_F_LOCK | BPF_F_CPU)?;
        let vsize = self.host_value_size(elem_flags);
        let max = *count;
        if max == 0 {
            return Ok(());
        }
        *count = 0;
        let ks = self.spec.key_size as usize;
        self.check_batch_bufs(keys, values, max, vsize)?;
        Map::buf_out("out_batch", out_batch, ks)?;
        let mut prev: Option<Vec<u8>> = match in_batch {
            Some(b) => Some(Map::buf_in("in_batch", b, ks)?.to_vec()),
            None => None,
        };
        let dst = Dst::from_host(elem_flags);
        let mut key = vec![0u8; ks];
        let mut cp = 0u32;
        let mut result = Ok(());
        while cp < max {
            if let Err(e) = self.next_key_checked(prev.as_deref(), &mut key) {
                result = Err(e);
                break;
            }
            let at = cp as usize;
            match self.lookup_checked(&key, &mut values[at * vsize..(at + 1) * vsize], vsize, dst) {
                Ok(()) => {
                    keys[at * ks..(at + 1) * ks].copy_from_slice(&key);
                    cp += 1;
                }
                Err(MapError::NotFound) => {}
                Err(e) => {
                    result = Err(e);
                    break;
                }
            }
            prev = Some(key.clone());
        }
        *count = cp;
        if cp > 0 {
            if let Some(p) = &prev {
                out_batch[..ks].copy_from_slice(p);
            }
        }
        result
    }

    #[allow(clippy::too_many_arguments)]
    fn hash_batch(
        &self,
        in_batch: Option<&[u8]>,
        out_batch: &mut [u8],
        keys: &mut [u8],
        values: &mut [u8],
        count: &mut u32,
        elem_flags: u64,
        flags: u64,
        allowed: u64,
        delete: bool,
    ) -> Result<(), MapError> {
        let Kind::Hash(h) = &self.kind else {
            return Err(self.no_batch("batch"));
        };
        self.check_flags(elem_flags, allowed)?;
        if flags != 0 {
            return Err(MapError::flags(flags, "attr.batch.flags must be 0"));
        }
        let max = *count;
        if max == 0 {
            return Ok(());
        }
        *count = 0;
        let vsize = self.host_value_size(elem_flags);
        let start = match in_batch {
            Some(b) => {
                let b = Map::buf_in("in_batch", b, 4)?;
                u32::from_ne_bytes([b[0], b[1], b[2], b[3]])
            }
            None => 0,
        };
        if start >= h.n_buckets() {
            return Err(MapError::NotFound);
        }
        self.check_batch_bufs(keys, values, max, vsize)?;
        Map::buf_out("out_batch", out_batch, 4)?;
        *count = max;
        h.lookup_batch(
            self,
            start,
            out_batch,
            keys,
            values,
            count,
            vsize,
            Dst::from_host(elem_flags),
            delete,
        )
    }
}
