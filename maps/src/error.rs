//! [`MapError`]: every failure of a map operation, with the kernel errno it stands for.

use crate::spec::MapType;

/// Linux errno values (positive), as the `bpf()` syscall returns them negated.
pub mod errno {
    /// Operation not permitted.
    pub const EPERM: i32 = 1;
    /// No such file or directory (missing element, end of iteration).
    pub const ENOENT: i32 = 2;
    /// Argument list too long (index out of range on update, map full, sizes too big).
    pub const E2BIG: i32 = 7;
    /// Out of memory.
    pub const ENOMEM: i32 = 12;
    /// Bad file descriptor.
    pub const EBADF: i32 = 9;
    /// Try again (a full ring buffer).
    pub const EAGAIN: i32 = 11;
    /// Bad address (a host buffer is too small).
    pub const EFAULT: i32 = 14;
    /// Device or resource busy.
    pub const EBUSY: i32 = 16;
    /// File exists (element already present with `BPF_NOEXIST`).
    pub const EEXIST: i32 = 17;
    /// Invalid argument.
    pub const EINVAL: i32 = 22;
    /// No space left on device (a batch bucket does not fit).
    pub const ENOSPC: i32 = 28;
    /// Result out of range (CPU number `>= N` with `BPF_F_CPU`).
    pub const ERANGE: i32 = 34;
    /// No such device (a CPUMAP key that is not a CPU).
    pub const ENODEV: i32 = 19;
    /// Value too large (a CPUMAP `qsize` over its limit).
    pub const EOVERFLOW: i32 = 75;
    /// Operation not supported (user-visible `EOPNOTSUPP`).
    pub const EOPNOTSUPP: i32 = 95;
    /// Kernel-internal "operation not supported", visible to user space as 524.
    pub const ENOTSUPP: i32 = 524;
}

/// Everything that can go wrong in a map operation.
///
/// [`MapError::errno`] gives the positive Linux errno the kernel returns in the same situation
/// (spec §10).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum MapError {
    /// The key is not in the map, or iteration reached its end (`ENOENT`).
    #[error("no such element")]
    NotFound,
    /// An array update with an index `>= max_entries` (`E2BIG`).
    #[error("index {index} is out of range (max_entries {max_entries})")]
    IndexOutOfRange {
        /// The index that was asked for.
        index: u32,
        /// The map's `max_entries`.
        max_entries: u32,
    },
    /// A hash map has no room for a new key (`E2BIG`).
    #[error("map is full (max_entries {max_entries})")]
    Full {
        /// The map's `max_entries`.
        max_entries: u32,
    },
    /// `BPF_NOEXIST` and the element exists (`EEXIST`).
    #[error("element already exists")]
    Exists,
    /// Flags rejected by a flag check (`EINVAL`).
    #[error("invalid flags {flags:#x}: {reason}")]
    InvalidFlags {
        /// The flags as passed.
        flags: u64,
        /// Which rule rejected them.
        reason: &'static str,
    },
    /// `BPF_F_CPU` with a CPU number `>= N` (`ERANGE`).
    #[error("cpu {cpu} is out of range (ncpus {ncpus})")]
    CpuOutOfRange {
        /// The CPU that was asked for.
        cpu: u64,
        /// The number of simulated CPUs.
        ncpus: u32,
    },
    /// Map creation rejected the spec (`EINVAL`).
    #[error("invalid map spec: {reason}")]
    InvalidSpec {
        /// Which rule rejected it.
        reason: &'static str,
    },
    /// Map creation rejected a size as too big (`E2BIG`).
    #[error("map spec too big: {reason}")]
    SpecTooBig {
        /// Which limit was exceeded.
        reason: &'static str,
    },
    /// The operation is never valid on this map type (`EINVAL`), e.g. delete on an array.
    #[error("{op} is not valid on a {map_type:?} map")]
    InvalidOperation {
        /// The operation.
        op: &'static str,
        /// The map's type.
        map_type: MapType,
    },
    /// The map type does not implement the operation (`ENOTSUPP`, 524).
    #[error("{op} is not supported by a {map_type:?} map")]
    NotSupported {
        /// The operation.
        op: &'static str,
        /// The map's type.
        map_type: MapType,
    },
    /// The map type is known but not implemented by this simulator (`EOPNOTSUPP`).
    #[error("map type {map_type:?} is not implemented")]
    UnsupportedMapType {
        /// The map's type.
        map_type: MapType,
    },
    /// A `bpf_spin_lock` in the value of a map type that refuses one (`EOPNOTSUPP`, spec U6).
    #[error("a bpf_spin_lock is not supported in a {map_type:?} map")]
    SpinLockNotSupported {
        /// The map's type.
        map_type: MapType,
    },
    /// A `bpf_timer` in the value of a map type that refuses one (`EOPNOTSUPP`,
    /// `map_check_btf`: only HASH, LRU_HASH and ARRAY).
    #[error("a bpf_timer is not supported in a {map_type:?} map")]
    TimerNotSupported {
        /// The map's type.
        map_type: MapType,
    },
    /// A numeric map type this crate does not know (`EINVAL`, as the kernel).
    #[error("unknown map type {value}")]
    UnknownMapType {
        /// The raw value.
        value: u32,
    },
    /// Missing read or write permission, or the map is frozen (`EPERM`).
    #[error("permission denied: {reason}")]
    PermissionDenied {
        /// Why.
        reason: &'static str,
    },
    /// A hash batch lookup whose first bucket does not fit in `count` (`ENOSPC`).
    #[error("bucket of {needed} elements does not fit in a batch of {room}")]
    NoSpace {
        /// Elements in the bucket.
        needed: u32,
        /// Room left in the batch.
        room: u32,
    },
    /// A host buffer is shorter than the operation needs (`EFAULT`).
    #[error("buffer too small: {what} needs {needed} bytes, got {got}")]
    BufferTooSmall {
        /// Which buffer.
        what: &'static str,
        /// Bytes needed.
        needed: usize,
        /// Bytes provided.
        got: usize,
    },
    /// A typed view or library-level check found a size that does not match (`EINVAL`).
    #[error("unexpected {what} size {got}, expected {expected}")]
    SizeMismatch {
        /// Which size.
        what: &'static str,
        /// The size the map needs.
        expected: usize,
        /// The size that was provided.
        got: usize,
    },
    /// No memory or no node could be obtained (`ENOMEM`).
    #[error("out of memory: {reason}")]
    OutOfMemory {
        /// What could not be obtained.
        reason: &'static str,
    },
    /// No room for an element or record: a full LPM trie, a full perf buffer (`ENOSPC`).
    #[error("no space left: {what}")]
    NoSpaceLeft {
        /// What is full.
        what: &'static str,
    },
    /// A key the map type cannot take, e.g. an LPM prefix longer than its data (`EINVAL`).
    #[error("invalid key: {reason}")]
    InvalidKey {
        /// Why.
        reason: &'static str,
    },
    /// An inner map that does not match a map-in-map's template (`EINVAL`).
    #[error("incompatible inner map: {reason}")]
    IncompatibleInnerMap {
        /// What differs.
        reason: String,
    },
    /// A value that should be a file descriptor (`EBADF`).
    #[error("bad file descriptor: {reason}")]
    BadFd {
        /// Why.
        reason: &'static str,
    },
    /// A perf event output to an event of another CPU (`EOPNOTSUPP`), as the kernel refuses
    /// it.
    #[error("perf event at index {index} belongs to cpu {event_cpu}, not cpu {cpu}")]
    EventOnOtherCpu {
        /// The map index.
        index: u32,
        /// The event's CPU.
        event_cpu: u32,
        /// The CPU the program runs on.
        cpu: u32,
    },
    /// A value field over its limit, e.g. a CPUMAP `qsize` over 16384 (`EOVERFLOW`).
    #[error("value out of range: {reason}")]
    ValueOutOfRange {
        /// Which limit.
        reason: &'static str,
    },
    /// The key names a device or CPU the machine does not have (`ENODEV`).
    #[error("no such device: {reason}")]
    NoSuchDevice {
        /// What was asked for.
        reason: &'static str,
    },
    /// The map type answers this operation with `EOPNOTSUPP`, as in the kernel (e.g. a host
    /// lookup on an XSKMAP).
    #[error("{op} is not supported on a {map_type:?} map")]
    OperationNotSupported {
        /// The operation.
        op: &'static str,
        /// The map's type.
        map_type: MapType,
    },
    /// Creating the map would take the maps sharing its [`MapMemory`](crate::MapMemory) over
    /// their limit (`ENOMEM`, as a memory cgroup that cannot be charged).
    #[error("map memory limit: the map needs {needed} bytes, {used} of {limit} bytes are in use")]
    MemoryLimit {
        /// Bytes the map needs (value arena and bookkeeping).
        needed: u64,
        /// Bytes already charged by other maps.
        used: u64,
        /// The limit.
        limit: u64,
    },
    /// The map is busy, e.g. frozen twice (`EBUSY`).
    #[error("map is busy: {reason}")]
    Busy {
        /// Why.
        reason: &'static str,
    },
}

impl MapError {
    /// The positive Linux errno for this error (the syscall returns it negated).
    pub fn errno(&self) -> i32 {
        use errno::*;
        match self {
            MapError::NotFound => ENOENT,
            MapError::IndexOutOfRange { .. }
            | MapError::Full { .. }
            | MapError::SpecTooBig { .. } => E2BIG,
            MapError::Exists => EEXIST,
            MapError::InvalidFlags { .. }
            | MapError::InvalidSpec { .. }
            | MapError::InvalidOperation { .. }
            | MapError::UnknownMapType { .. }
            | MapError::SizeMismatch { .. }
            | MapError::InvalidKey { .. } => EINVAL,
            MapError::CpuOutOfRange { .. } => ERANGE,
            MapError::NotSupported { .. } => ENOTSUPP,
            MapError::UnsupportedMapType { .. }
            | MapError::SpinLockNotSupported { .. }
            | MapError::TimerNotSupported { .. }
            | MapError::EventOnOtherCpu { .. }
            | MapError::OperationNotSupported { .. } => EOPNOTSUPP,
            MapError::NoSpaceLeft { .. } => ENOSPC,
            MapError::BadFd { .. } => EBADF,
            MapError::IncompatibleInnerMap { .. } => EINVAL,
            MapError::ValueOutOfRange { .. } => EOVERFLOW,
            MapError::NoSuchDevice { .. } => ENODEV,
            MapError::PermissionDenied { .. } => EPERM,
            MapError::NoSpace { .. } => ENOSPC,
            MapError::BufferTooSmall { .. } => EFAULT,
            MapError::OutOfMemory { .. } | MapError::MemoryLimit { .. } => ENOMEM,
            MapError::Busy { .. } => EBUSY,
        }
    }

    pub(crate) fn flags(flags: u64, reason: &'static str) -> Self {
        MapError::InvalidFlags { flags, reason }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn errno_values_are_the_kernel_ones() {
        assert_eq!(MapError::NotFound.errno(), 2);
        assert_eq!(MapError::Full { max_entries: 1 }.errno(), 7);
        assert_eq!(MapError::CpuOutOfRange { cpu: 2, ncpus: 2 }.errno(), 34);
        let e = MapError::NotSupported {
            op: "delete",
            map_type: MapType::Array,
        };
        assert_eq!(e.errno(), 524);
        assert_eq!(e.to_string(), "delete is not supported by a Array map");
    }
}
