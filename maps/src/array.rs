//! ARRAY and PERCPU_ARRAY: every index `0..max_entries` always exists (zero at creation).
//!
//! Arrays need no lock: element `i` is arena slot `i` (per-CPU: `i * N + cpu`).

use crate::error::MapError;
use crate::flags::{create, lo, BPF_F_ALL_CPUS, BPF_F_LOCK, BPF_NOEXIST};
use crate::map::{access_ok, Dst, Map, Src};
use crate::spec::{MapSpec, MapType};

/// `PCPU_MIN_UNIT_SIZE`: the largest per-CPU slot.
pub(crate) const PCPU_MIN_UNIT_SIZE: u32 = 32768;

/// `array_map_alloc_check` (kernel/bpf/arraymap.c).
pub(crate) fn check_create(spec: &MapSpec) -> Result<(), MapError> {
    let percpu = spec.map_type == MapType::PercpuArray;
    let mask = create::NUMA_NODE
        | create::MMAPABLE
        | create::ACCESS_MASK
        | create::PRESERVE_ELEMS
        | create::INNER_MAP;
    let f = spec.map_flags;
    if spec.max_entries == 0 {
        return Err(MapError::InvalidSpec {
            reason: "max_entries must not be 0",
        });
    }
    if spec.key_size != 4 {
        return Err(MapError::InvalidSpec {
            reason: "array key_size must be 4",
        });
    }
    if spec.value_size == 0 {
        return Err(MapError::InvalidSpec {
            reason: "value_size must not be 0",
        });
    }
    if f & !mask != 0 || !access_ok(f) {
        return Err(MapError::InvalidSpec {
            reason: "map_flags not valid for an array",
        });
    }
    if percpu && f & create::NUMA_NODE != 0 {
        return Err(MapError::InvalidSpec {
            reason: "BPF_F_NUMA_NODE on a per-CPU map",
        });
    }
    if spec.map_type != MapType::Array && f & (create::MMAPABLE | create::INNER_MAP) != 0 {
        return Err(MapError::InvalidSpec {
            reason: "BPF_F_MMAPABLE / BPF_F_INNER_MAP need ARRAY",
        });
    }
    if f & create::PRESERVE_ELEMS != 0 {
        return Err(MapError::InvalidSpec {
            reason: "BPF_F_PRESERVE_ELEMS needs PERF_EVENT_ARRAY",
        });
    }
    if spec.value_size > i32::MAX as u32 {
        return Err(MapError::SpecTooBig {
            reason: "value_size over INT_MAX",
        });
    }
    if percpu && spec.value_size.div_ceil(8) * 8 > PCPU_MIN_UNIT_SIZE {
        return Err(MapError::SpecTooBig {
            reason: "per-CPU value over 32768 bytes",
        });
    }
    Ok(())
}

fn index(key: &[u8]) -> u32 {
    u32::from_ne_bytes([key[0], key[1], key[2], key[3]])
}

impl Map {
    pub(crate) fn array_lookup(
        &self,
        key: &[u8],
        value: &mut [u8],
        size: usize,
        dst: Dst,
    ) -> Result<(), MapError> {
        let i = index(key);
        if i >= self.spec.max_entries {
            return Err(MapError::NotFound);
        }
        let out = Map::buf_out("value", value, size)?;
        self.read_elem(i, dst, out)?;
        Ok(())
    }

    /// Host-side update (`array_map_update_elem` / `bpf_percpu_array_update`).
    pub(crate) fn array_update_host(
        &self,
        key: &[u8],
        value: &[u8],
        f: u64,
    ) -> Result<(), MapError> {
        let i = index(key);
        if self.spec.map_type == MapType::PercpuArray {
            if f & BPF_F_LOCK != 0 || u64::from(lo(f)) > BPF_F_ALL_CPUS {
                return Err(MapError::flags(f, "per-CPU array update flags"));
            }
            if i >= self.spec.max_entries {
                return Err(MapError::IndexOutOfRange {
                    index: i,
                    max_entries: self.spec.max_entries,
                });
            }
            if f == BPF_NOEXIST {
                return Err(MapError::Exists);
            }
            self.write_elem(i, Src::from_host(f, value), false)?;
            Ok(())
        } else {
            self.array_update_common(i, f, Src::from_host(f, value))
        }
    }

    /// Program-side update (helper 2): only `cpu`'s copy of a per-CPU array is written.
    pub(crate) fn array_update_prog(
        &self,
        cpu: u32,
        key: &[u8],
        value: &[u8],
        f: u64,
    ) -> Result<(), MapError> {
        let src = if f & BPF_F_LOCK != 0 {
            Src::Locked(value)
        } else {
            Src::Cpu(cpu, value)
        };
        self.array_update_common(index(key), f, src)
    }

    fn array_update_common(&self, i: u32, f: u64, src: Src<'_>) -> Result<(), MapError> {
        if f & !BPF_F_LOCK > 2 {
            return Err(MapError::flags(f, "array update flags"));
        }
        if i >= self.spec.max_entries {
            return Err(MapError::IndexOutOfRange {
                index: i,
                max_entries: self.spec.max_entries,
            });
        }
        if f & BPF_NOEXIST != 0 {
            return Err(MapError::Exists);
        }
        if f & BPF_F_LOCK != 0 && !self.has_spin_lock() {
            return Err(MapError::flags(
                f,
                "BPF_F_LOCK on a map without a spin lock",
            ));
        }
        self.write_elem(i, src, false)?;
        Ok(())
    }

    /// `array_map_get_next_key`.
    pub(crate) fn array_next_key(
        &self,
        key: Option<&[u8]>,
        out: &mut [u8],
    ) -> Result<(), MapError> {
        let i = key.map_or(u32::MAX, index);
        let max = self.spec.max_entries;
        let next = if i >= max {
            0
        } else if i == max - 1 {
            return Err(MapError::NotFound);
        } else {
            i + 1
        };
        out[..4].copy_from_slice(&next.to_ne_bytes());
        Ok(())
    }

    #[inline]
    pub(crate) fn array_prog_lookup(&self, cpu: u32, key: &[u8]) -> Option<usize> {
        let i = index(key);
        if i >= self.spec.max_entries {
            return None;
        }
        Some(self.slot(i, cpu))
    }
}
