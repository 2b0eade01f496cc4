//! Element flags ([`MapFlags`]), creation flags ([`create`]) and the host-side flag check
//! of spec §2 (`bpf_map_check_op_flags`).

use crate::error::MapError;
use crate::spec::MapType;

/// The 64-bit `flags` of an element operation (spec §1.1).
///
/// `BPF_F_CPU` takes its CPU number in bits 32..63: use [`MapFlags::cpu`].
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default)]
pub struct MapFlags(u64);

impl MapFlags {
    /// Create or update.
    #[doc(alias = "BPF_ANY")]
    pub const ANY: MapFlags = MapFlags(0);
    /// Create only.
    #[doc(alias = "BPF_NOEXIST")]
    pub const NOEXIST: MapFlags = MapFlags(1);
    /// Update an existing element only.
    #[doc(alias = "BPF_EXIST")]
    pub const EXIST: MapFlags = MapFlags(2);
    /// Spin-locked copy; no map of this crate has a spin lock, so it is always rejected.
    #[doc(alias = "BPF_F_LOCK")]
    pub const LOCK: MapFlags = MapFlags(4);
    /// The bare `BPF_F_CPU` bit (CPU 0); prefer [`MapFlags::cpu`].
    #[doc(alias = "BPF_F_CPU")]
    pub const CPU: MapFlags = MapFlags(8);
    /// One value written to every CPU (updates of per-CPU maps only).
    #[doc(alias = "BPF_F_ALL_CPUS")]
    pub const ALL_CPUS: MapFlags = MapFlags(16);

    /// `BPF_F_CPU` with `cpu` in the high 32 bits.
    pub const fn cpu(cpu: u32) -> MapFlags {
        MapFlags(BPF_F_CPU | ((cpu as u64) << 32))
    }

    /// Flags from raw bits (nothing is checked here; operations check them).
    pub const fn from_bits(bits: u64) -> MapFlags {
        MapFlags(bits)
    }

    /// The raw 64-bit value, as passed to the syscall.
    pub const fn bits(self) -> u64 {
        self.0
    }
}

impl std::ops::BitOr for MapFlags {
    type Output = MapFlags;
    fn bitor(self, rhs: MapFlags) -> MapFlags {
        MapFlags(self.0 | rhs.0)
    }
}

impl From<MapFlags> for u64 {
    fn from(f: MapFlags) -> u64 {
        f.0
    }
}

/// `BPF_ANY` (0).
pub const BPF_ANY: u64 = 0;
/// `BPF_NOEXIST` (1).
pub const BPF_NOEXIST: u64 = 1;
/// `BPF_EXIST` (2).
pub const BPF_EXIST: u64 = 2;
/// `BPF_F_LOCK` (4).
pub const BPF_F_LOCK: u64 = 4;
/// `BPF_F_CPU` (8); the CPU is `flags >> 32`.
pub const BPF_F_CPU: u64 = 8;
/// `BPF_F_ALL_CPUS` (16).
pub const BPF_F_ALL_CPUS: u64 = 16;

/// Map creation flags (`map_flags` of `BPF_MAP_CREATE`, spec §1.3).
pub mod create {
    /// Allocate hash elements on demand (hash and percpu hash only).
    #[doc(alias = "BPF_F_NO_PREALLOC")]
    pub const NO_PREALLOC: u32 = 1;
    /// One LRU list per CPU instead of a common one (LRU maps only).
    #[doc(alias = "BPF_F_NO_COMMON_LRU")]
    pub const NO_COMMON_LRU: u32 = 2;
    /// Allocate on a given NUMA node (node 0 in this simulator).
    #[doc(alias = "BPF_F_NUMA_NODE")]
    pub const NUMA_NODE: u32 = 4;
    /// The host side may only read.
    #[doc(alias = "BPF_F_RDONLY")]
    pub const RDONLY: u32 = 8;
    /// The host side may only write.
    #[doc(alias = "BPF_F_WRONLY")]
    pub const WRONLY: u32 = 16;
    /// Hash seed 0 (this simulator always uses seed 0).
    #[doc(alias = "BPF_F_ZERO_SEED")]
    pub const ZERO_SEED: u32 = 64;
    /// Programs may only read.
    #[doc(alias = "BPF_F_RDONLY_PROG")]
    pub const RDONLY_PROG: u32 = 128;
    /// Programs may only write.
    #[doc(alias = "BPF_F_WRONLY_PROG")]
    pub const WRONLY_PROG: u32 = 256;
    /// Array memory may be mmap-ed (ARRAY only).
    #[doc(alias = "BPF_F_MMAPABLE")]
    pub const MMAPABLE: u32 = 1024;
    /// Keep perf-event array elements (PERF_EVENT_ARRAY only: always rejected here).
    #[doc(alias = "BPF_F_PRESERVE_ELEMS")]
    pub const PRESERVE_ELEMS: u32 = 2048;
    /// The map is an inner map template (ARRAY only).
    #[doc(alias = "BPF_F_INNER_MAP")]
    pub const INNER_MAP: u32 = 4096;
    /// `BPF_F_ACCESS_MASK`.
    pub const ACCESS_MASK: u32 = RDONLY | RDONLY_PROG | WRONLY | WRONLY_PROG;
}

/// `cpu(flags)`: the CPU number in the high 32 bits.
pub(crate) fn cpu_of(flags: u64) -> u32 {
    (flags >> 32) as u32
}

/// `lo(flags)`.
pub(crate) fn lo(flags: u64) -> u32 {
    flags as u32
}

/// `bpf_map_check_op_flags(map, flags, allowed)` (spec §2), in the kernel's order.
///
/// Only maps made with [`crate::Map::create_with_spin_lock`] carry a `bpf_spin_lock`;
/// on every other map `BPF_F_LOCK` fails step 2. (Spec U6: among our types the kernel
/// accepts a spin lock only in HASH, ARRAY and CGROUP_STORAGE, so per-CPU maps never
/// accept LOCK.)
pub(crate) fn check_op_flags(
    map_type: MapType,
    ncpus: u32,
    has_spin_lock: bool,
    flags: u64,
    allowed: u64,
) -> Result<(), MapError> {
    if u64::from(lo(flags)) & !allowed != 0 {
        return Err(MapError::flags(flags, "flag not allowed for this command"));
    }
    if flags & BPF_F_LOCK != 0 && !has_spin_lock {
        return Err(MapError::flags(
            flags,
            "BPF_F_LOCK on a map without a spin lock",
        ));
    }
    if flags & BPF_F_CPU == 0 && flags >> 32 != 0 {
        return Err(MapError::flags(flags, "high 32 bits set without BPF_F_CPU"));
    }
    if flags & (BPF_F_CPU | BPF_F_ALL_CPUS) != 0 {
        if !map_type.is_percpu() {
            return Err(MapError::flags(
                flags,
                "cpu flags on a map that is not per-CPU",
            ));
        }
        if flags & BPF_F_CPU != 0 && flags & BPF_F_ALL_CPUS != 0 {
            return Err(MapError::flags(
                flags,
                "BPF_F_CPU and BPF_F_ALL_CPUS together",
            ));
        }
        if flags & BPF_F_CPU != 0 && cpu_of(flags) >= ncpus {
            return Err(MapError::CpuOutOfRange {
                cpu: u64::from(cpu_of(flags)),
                ncpus,
            });
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn map_flags_cpu_puts_the_cpu_in_the_high_bits() {
        assert_eq!(MapFlags::cpu(3).bits(), (3u64 << 32) | 8);
        assert_eq!((MapFlags::ALL_CPUS | MapFlags::EXIST).bits(), 18);
    }

    #[test]
    fn check_order_first_failure_wins() {
        // Unknown low bit beats LOCK.
        let e = check_op_flags(MapType::PercpuArray, 2, false, 32 | 4, 4 | 8).unwrap_err();
        assert_eq!(e.errno(), 22);
        // cpu out of range only after the type check.
        let e =
            check_op_flags(MapType::Array, 2, false, MapFlags::cpu(9).bits(), 4 | 8).unwrap_err();
        assert_eq!(e.errno(), 22);
        let e = check_op_flags(
            MapType::PercpuArray,
            2,
            false,
            MapFlags::cpu(2).bits(),
            4 | 8,
        )
        .unwrap_err();
        assert_eq!(e.errno(), 34);
        assert!(check_op_flags(
            MapType::PercpuArray,
            2,
            false,
            MapFlags::cpu(1).bits(),
            4 | 8
        )
        .is_ok());
    }
}
