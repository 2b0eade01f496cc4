//! Numeric constants of the `bpf(2)` ABI (include/uapi/linux/bpf.h), as the oracle uses them.

/// A `bpf(2)` command number.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
#[repr(u32)]
#[allow(missing_docs)] // each variant is the kernel command named in its alias
pub enum Cmd {
    #[doc(alias = "BPF_MAP_CREATE")]
    MapCreate = 0,
    #[doc(alias = "BPF_MAP_LOOKUP_ELEM")]
    MapLookupElem = 1,
    #[doc(alias = "BPF_MAP_UPDATE_ELEM")]
    MapUpdateElem = 2,
    #[doc(alias = "BPF_MAP_DELETE_ELEM")]
    MapDeleteElem = 3,
    #[doc(alias = "BPF_MAP_GET_NEXT_KEY")]
    MapGetNextKey = 4,
    #[doc(alias = "BPF_PROG_LOAD")]
    ProgLoad = 5,
    #[doc(alias = "BPF_PROG_TEST_RUN")]
    ProgTestRun = 10,
    #[doc(alias = "BPF_MAP_LOOKUP_AND_DELETE_ELEM")]
    MapLookupAndDeleteElem = 21,
    #[doc(alias = "BPF_MAP_FREEZE")]
    MapFreeze = 22,
    #[doc(alias = "BPF_MAP_LOOKUP_BATCH")]
    MapLookupBatch = 24,
    #[doc(alias = "BPF_MAP_LOOKUP_AND_DELETE_BATCH")]
    MapLookupAndDeleteBatch = 25,
    #[doc(alias = "BPF_MAP_UPDATE_BATCH")]
    MapUpdateBatch = 26,
    #[doc(alias = "BPF_MAP_DELETE_BATCH")]
    MapDeleteBatch = 27,
}

/// The map types the oracle creates.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
#[repr(u32)]
#[allow(missing_docs)] // each variant is the kernel map type named in its alias
pub enum MapType {
    #[doc(alias = "BPF_MAP_TYPE_HASH")]
    Hash = 1,
    #[doc(alias = "BPF_MAP_TYPE_ARRAY")]
    Array = 2,
    #[doc(alias = "BPF_MAP_TYPE_PERCPU_HASH")]
    PercpuHash = 5,
    #[doc(alias = "BPF_MAP_TYPE_PERCPU_ARRAY")]
    PercpuArray = 6,
    #[doc(alias = "BPF_MAP_TYPE_LRU_HASH")]
    LruHash = 9,
    #[doc(alias = "BPF_MAP_TYPE_LRU_PERCPU_HASH")]
    LruPercpuHash = 10,
}

impl MapType {
    /// The six types, in kernel numbering order.
    pub const ALL: [MapType; 6] = [
        MapType::Hash,
        MapType::Array,
        MapType::PercpuHash,
        MapType::PercpuArray,
        MapType::LruHash,
        MapType::LruPercpuHash,
    ];

    /// Whether values are per-CPU (full buffers are `round_up(VS, 8) * N` bytes).
    pub fn is_percpu(self) -> bool {
        matches!(
            self,
            MapType::PercpuArray | MapType::PercpuHash | MapType::LruPercpuHash
        )
    }

    /// Whether the type is an array (u32 index keys, no delete).
    pub fn is_array(self) -> bool {
        matches!(self, MapType::Array | MapType::PercpuArray)
    }

    /// Whether the type is an LRU hash.
    pub fn is_lru(self) -> bool {
        matches!(self, MapType::LruHash | MapType::LruPercpuHash)
    }
}

/// Program types the oracle loads (`enum bpf_prog_type`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
#[repr(u32)]
#[allow(missing_docs)] // each variant is the kernel program type named in its alias
pub enum ProgType {
    #[doc(alias = "BPF_PROG_TYPE_SOCKET_FILTER")]
    SocketFilter = 1,
    #[doc(alias = "BPF_PROG_TYPE_KPROBE")]
    Kprobe = 2,
    #[doc(alias = "BPF_PROG_TYPE_SCHED_CLS")]
    SchedCls = 3,
    #[doc(alias = "BPF_PROG_TYPE_SCHED_ACT")]
    SchedAct = 4,
    #[doc(alias = "BPF_PROG_TYPE_TRACEPOINT")]
    Tracepoint = 5,
    #[doc(alias = "BPF_PROG_TYPE_XDP")]
    Xdp = 6,
    #[doc(alias = "BPF_PROG_TYPE_CGROUP_SKB")]
    CgroupSkb = 8,
}

/// Element flags (`flags` / `elem_flags`), §1.1 of the spec.
pub mod elem {
    /// `BPF_ANY`: create or update.
    #[doc(alias = "BPF_ANY")]
    pub const ANY: u64 = 0;
    /// `BPF_NOEXIST`: create only.
    #[doc(alias = "BPF_NOEXIST")]
    pub const NOEXIST: u64 = 1;
    /// `BPF_EXIST`: update existing only.
    #[doc(alias = "BPF_EXIST")]
    pub const EXIST: u64 = 2;
    /// `BPF_F_LOCK`: spin-locked copy.
    #[doc(alias = "BPF_F_LOCK")]
    pub const LOCK: u64 = 4;
    /// `BPF_F_CPU`: one CPU, whose number is in bits 32..63 (not in Linux 6.18).
    #[doc(alias = "BPF_F_CPU")]
    pub const CPU: u64 = 8;
    /// `BPF_F_ALL_CPUS`: one value for every CPU (not in Linux 6.18).
    #[doc(alias = "BPF_F_ALL_CPUS")]
    pub const ALL_CPUS: u64 = 16;

    /// `BPF_F_CPU` with `cpu` in the high 32 bits.
    pub const fn cpu(cpu: u32) -> u64 {
        CPU | ((cpu as u64) << 32)
    }
}

/// Map creation flags (`map_flags`), §1.3 of the spec.
pub mod create {
    /// `BPF_F_NO_PREALLOC`.
    #[doc(alias = "BPF_F_NO_PREALLOC")]
    pub const NO_PREALLOC: u32 = 1;
    /// `BPF_F_NO_COMMON_LRU`.
    #[doc(alias = "BPF_F_NO_COMMON_LRU")]
    pub const NO_COMMON_LRU: u32 = 2;
    /// `BPF_F_RDONLY`: read-only for the syscall side.
    #[doc(alias = "BPF_F_RDONLY")]
    pub const RDONLY: u32 = 8;
    /// `BPF_F_WRONLY`: write-only for the syscall side.
    #[doc(alias = "BPF_F_WRONLY")]
    pub const WRONLY: u32 = 16;
    /// `BPF_F_ZERO_SEED`: hash seed 0, so the bucket order is deterministic.
    #[doc(alias = "BPF_F_ZERO_SEED")]
    pub const ZERO_SEED: u32 = 64;
    /// `BPF_F_RDONLY_PROG`: read-only for programs.
    #[doc(alias = "BPF_F_RDONLY_PROG")]
    pub const RDONLY_PROG: u32 = 128;
}

/// `BPF_F_TEST_RUN_ON_CPU`: honour `cpu` in PROG_TEST_RUN (raw tracepoints only).
#[doc(alias = "BPF_F_TEST_RUN_ON_CPU")]
pub const TEST_RUN_ON_CPU: u32 = 1;
