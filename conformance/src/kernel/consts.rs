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
    #[doc(alias = "BPF_OBJ_GET_INFO_BY_FD")]
    ObjGetInfoByFd = 15,
    #[doc(alias = "BPF_BTF_LOAD")]
    BtfLoad = 18,
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

/// Map types: the simulator's own enum (`repr(u32)`, the kernel's numbers), so a map
/// definition means the same thing on both sides.
pub use bpfvm_maps::MapType;

/// The six map types the oracle compares with the kernel, in kernel numbering order.
pub const MAP_TYPES: [MapType; 6] = [
    MapType::Hash,
    MapType::Array,
    MapType::PercpuHash,
    MapType::PercpuArray,
    MapType::LruHash,
    MapType::LruPercpuHash,
];

/// Whether the kernel's batch commands on `t` are the generic ones (walking keys with
/// `get_next_key`), whose `in_batch` / `out_batch` is a key; the hash family's is a u32 bucket.
pub fn batch_token_is_key(t: MapType) -> bool {
    t.is_array() || t == MapType::LpmTrie
}
/// The `bpf_redirect_map` targets, which fixtures of packet programs use.
pub const REDIRECT_MAP_TYPES: [MapType; 4] = [
    MapType::Devmap,
    MapType::Cpumap,
    MapType::Xskmap,
    MapType::DevmapHash,
];

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
    #[doc(alias = "BPF_PROG_TYPE_PERF_EVENT")]
    PerfEvent = 7,
    #[doc(alias = "BPF_PROG_TYPE_RAW_TRACEPOINT")]
    RawTracepoint = 17,
    #[doc(alias = "BPF_PROG_TYPE_TRACING")]
    Tracing = 26,
    #[doc(alias = "BPF_PROG_TYPE_SYSCALL")]
    Syscall = 31,
}

/// Element flags (`flags` / `elem_flags`), §1.1 of the spec: `bpfvm_maps`'s constants
/// under the oracle's short names.
pub mod elem {
    pub use bpfvm_maps::flags::{
        BPF_ANY as ANY, BPF_EXIST as EXIST, BPF_F_ALL_CPUS as ALL_CPUS, BPF_F_CPU as CPU,
        BPF_F_LOCK as LOCK, BPF_NOEXIST as NOEXIST,
    };

    /// `BPF_F_CPU` with `cpu` in the high 32 bits.
    pub const fn cpu(cpu: u32) -> u64 {
        bpfvm_maps::MapFlags::cpu(cpu).bits()
    }
}

/// Map creation flags (`map_flags`), §1.3 of the spec.
pub use bpfvm_maps::flags::create;

/// `BPF_F_SLEEPABLE` (`prog_flags` of BPF_PROG_LOAD): syscall programs must be sleepable.
#[doc(alias = "BPF_F_SLEEPABLE")]
pub const SLEEPABLE: u32 = 1 << 4;

/// `BPF_F_TEST_RUN_ON_CPU`: honour `cpu` in PROG_TEST_RUN (raw tracepoints only).
#[doc(alias = "BPF_F_TEST_RUN_ON_CPU")]
pub const TEST_RUN_ON_CPU: u32 = 1;
