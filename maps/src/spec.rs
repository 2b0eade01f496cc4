//! What a map is made of: [`MapType`], [`MapSpec`] and the simulated [`CpuId`].

use crate::error::MapError;

/// A simulated CPU, `0..N-1`, where `N` is chosen when a map (or VM) is created.
///
/// N is never read from the host machine.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Default)]
pub struct CpuId(pub u32);

impl CpuId {
    /// The CPU number as an index.
    pub fn index(self) -> usize {
        self.0 as usize
    }
}

impl From<u32> for CpuId {
    fn from(cpu: u32) -> Self {
        CpuId(cpu)
    }
}

impl std::fmt::Display for CpuId {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "cpu{}", self.0)
    }
}

/// Map types, with the kernel's numeric values (spec §1.2).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
#[repr(u32)]
pub enum MapType {
    /// Hash table.
    #[doc(alias = "BPF_MAP_TYPE_HASH")]
    Hash = 1,
    /// Array indexed by a u32.
    #[doc(alias = "BPF_MAP_TYPE_ARRAY")]
    Array = 2,
    /// Hash table with one value per CPU.
    #[doc(alias = "BPF_MAP_TYPE_PERCPU_HASH")]
    PercpuHash = 5,
    /// Programs, by index: the targets of `bpf_tail_call` (see [`crate::prog_array`]).
    #[doc(alias = "BPF_MAP_TYPE_PROG_ARRAY")]
    ProgArray = 3,
    /// Array of perf event buffers, one per index (usually per CPU): helpers 25 and 121
    /// write samples, the host reads them per CPU (see [`crate::perf`]).
    #[doc(alias = "BPF_MAP_TYPE_PERF_EVENT_ARRAY")]
    PerfEventArray = 4,
    /// Array with one value per CPU.
    #[doc(alias = "BPF_MAP_TYPE_PERCPU_ARRAY")]
    PercpuArray = 6,
    /// Call stacks by id, filled by `bpf_get_stackid` (see [`crate::stack_trace`]).
    #[doc(alias = "BPF_MAP_TYPE_STACK_TRACE")]
    StackTrace = 7,
    /// Cgroups by index, for the "under cgroup" helpers (see [`crate::cgroup_array`]).
    #[doc(alias = "BPF_MAP_TYPE_CGROUP_ARRAY")]
    CgroupArray = 8,
    /// Hash table with LRU eviction.
    #[doc(alias = "BPF_MAP_TYPE_LRU_HASH")]
    LruHash = 9,
    /// Per-CPU hash table with LRU eviction.
    #[doc(alias = "BPF_MAP_TYPE_LRU_PERCPU_HASH")]
    LruPercpuHash = 10,
    /// Longest-prefix-match trie (see [`crate::lpm`]).
    #[doc(alias = "BPF_MAP_TYPE_LPM_TRIE")]
    LpmTrie = 11,
    /// Array of maps: each value is another map (see [`crate::of_maps`]).
    #[doc(alias = "BPF_MAP_TYPE_ARRAY_OF_MAPS")]
    ArrayOfMaps = 12,
    /// Hash table of maps: each value is another map (see [`crate::of_maps`]).
    #[doc(alias = "BPF_MAP_TYPE_HASH_OF_MAPS")]
    HashOfMaps = 13,
    /// Network devices, by index (`bpf_redirect_map` targets).
    #[doc(alias = "BPF_MAP_TYPE_DEVMAP")]
    Devmap = 14,
    /// CPUs, by number (`bpf_redirect_map` targets).
    #[doc(alias = "BPF_MAP_TYPE_CPUMAP")]
    Cpumap = 16,
    /// AF_XDP sockets, by queue (`bpf_redirect_map` targets).
    #[doc(alias = "BPF_MAP_TYPE_XSKMAP")]
    Xskmap = 17,
    /// Cgroup local storage (one value per attached cgroup).
    #[doc(alias = "BPF_MAP_TYPE_CGROUP_STORAGE")]
    CgroupStorage = 19,
    /// Per-CPU cgroup local storage.
    #[doc(alias = "BPF_MAP_TYPE_PERCPU_CGROUP_STORAGE")]
    PercpuCgroupStorage = 21,
    /// FIFO queue (see [`crate::queue`]).
    #[doc(alias = "BPF_MAP_TYPE_QUEUE")]
    Queue = 22,
    /// LIFO stack (see [`crate::queue`]).
    #[doc(alias = "BPF_MAP_TYPE_STACK")]
    Stack = 23,
    /// Ring buffer shared by all CPUs (see [`crate::ringbuf`]).
    #[doc(alias = "BPF_MAP_TYPE_RINGBUF")]
    Ringbuf = 27,
    /// Network devices, by any u32 key (`bpf_redirect_map` targets).
    #[doc(alias = "BPF_MAP_TYPE_DEVMAP_HASH")]
    DevmapHash = 25,
}

impl MapType {
    /// True for the types that accept `BPF_F_CPU` / `BPF_F_ALL_CPUS` (spec notation
    /// "percpu map").
    pub fn is_percpu(self) -> bool {
        matches!(
            self,
            MapType::PercpuArray
                | MapType::PercpuHash
                | MapType::LruPercpuHash
                | MapType::PercpuCgroupStorage
        )
    }

    /// True for ARRAY and PERCPU_ARRAY.
    pub fn is_array(self) -> bool {
        matches!(self, MapType::Array | MapType::PercpuArray)
    }

    /// True for the four hash types.
    pub fn is_hash(self) -> bool {
        matches!(
            self,
            MapType::Hash | MapType::PercpuHash | MapType::LruHash | MapType::LruPercpuHash
        )
    }

    /// True for LRU_HASH and LRU_PERCPU_HASH.
    pub fn is_lru(self) -> bool {
        matches!(self, MapType::LruHash | MapType::LruPercpuHash)
    }

    /// True for the `bpf_redirect_map` targets: DEVMAP, DEVMAP_HASH, CPUMAP, XSKMAP.
    pub fn is_redirect(self) -> bool {
        matches!(
            self,
            MapType::Devmap | MapType::DevmapHash | MapType::Cpumap | MapType::Xskmap
        )
    }

    /// True for ARRAY_OF_MAPS and HASH_OF_MAPS.
    pub fn is_map_of_maps(self) -> bool {
        matches!(self, MapType::ArrayOfMaps | MapType::HashOfMaps)
    }

    /// True for CGROUP_STORAGE and PERCPU_CGROUP_STORAGE.
    pub fn is_cgroup_storage(self) -> bool {
        matches!(self, MapType::CgroupStorage | MapType::PercpuCgroupStorage)
    }
}

impl TryFrom<u32> for MapType {
    type Error = MapError;

    fn try_from(value: u32) -> Result<Self, MapError> {
        Ok(match value {
            1 => MapType::Hash,
            2 => MapType::Array,
            3 => MapType::ProgArray,
            4 => MapType::PerfEventArray,
            5 => MapType::PercpuHash,
            6 => MapType::PercpuArray,
            7 => MapType::StackTrace,
            8 => MapType::CgroupArray,
            9 => MapType::LruHash,
            10 => MapType::LruPercpuHash,
            11 => MapType::LpmTrie,
            12 => MapType::ArrayOfMaps,
            13 => MapType::HashOfMaps,
            14 => MapType::Devmap,
            16 => MapType::Cpumap,
            17 => MapType::Xskmap,
            25 => MapType::DevmapHash,
            19 => MapType::CgroupStorage,
            21 => MapType::PercpuCgroupStorage,
            22 => MapType::Queue,
            23 => MapType::Stack,
            27 => MapType::Ringbuf,
            _ => return Err(MapError::UnknownMapType { value }),
        })
    }
}

impl From<MapType> for u32 {
    fn from(t: MapType) -> u32 {
        t as u32
    }
}

/// The attributes of `BPF_MAP_CREATE` that this simulator uses.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct MapSpec {
    /// Map name (at most 15 bytes of `[A-Za-z0-9_.]`, as the kernel requires).
    pub name: String,
    /// Map type.
    pub map_type: MapType,
    /// Key size in bytes.
    pub key_size: u32,
    /// Value size in bytes (`VS`).
    pub value_size: u32,
    /// Maximum number of elements (0 for cgroup storage).
    pub max_entries: u32,
    /// Creation flags (`BPF_F_NO_PREALLOC`, ...), see [`crate::flags::create`].
    pub map_flags: u32,
}

impl MapSpec {
    /// A spec with an empty name and no flags.
    pub fn new(map_type: MapType, key_size: u32, value_size: u32, max_entries: u32) -> Self {
        MapSpec {
            name: String::new(),
            map_type,
            key_size,
            value_size,
            max_entries,
            map_flags: 0,
        }
    }

    /// The same spec with `map_flags` set.
    pub fn with_flags(mut self, map_flags: u32) -> Self {
        self.map_flags = map_flags;
        self
    }

    /// The same spec with a name.
    pub fn with_name(mut self, name: impl Into<String>) -> Self {
        self.name = name.into();
        self
    }
}
