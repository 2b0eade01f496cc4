//! What the verifier is given: the relocated instructions, the program type, the maps the
//! program references, and the loader's privileges.

use crate::insn::Insn;

/// Program types, numbered as the kernel's `enum bpf_prog_type`.
#[derive(Clone, Copy, PartialEq, Eq, Hash, Debug)]
pub enum ProgType {
    /// `BPF_PROG_TYPE_SOCKET_FILTER`.
    SocketFilter,
    /// `BPF_PROG_TYPE_KPROBE`.
    Kprobe,
    /// `BPF_PROG_TYPE_SCHED_CLS`.
    SchedCls,
    /// `BPF_PROG_TYPE_SCHED_ACT`.
    SchedAct,
    /// `BPF_PROG_TYPE_TRACEPOINT`.
    Tracepoint,
    /// `BPF_PROG_TYPE_XDP`.
    Xdp,
    /// `BPF_PROG_TYPE_CGROUP_SKB`.
    CgroupSkb,
    /// `BPF_PROG_TYPE_PERF_EVENT`: context is `struct bpf_perf_event_data`.
    PerfEvent,
    /// `BPF_PROG_TYPE_RAW_TRACEPOINT`: context is the tracepoint's `u64 args[]`.
    RawTracepoint,
    /// `BPF_PROG_TYPE_TRACING` (`fentry`, `fexit`, `fmod_ret`, `tp_btf`): context is the
    /// attach target's arguments, typed by its BTF prototype.
    Tracing(TracingCtx),
    /// `BPF_PROG_TYPE_SYSCALL`: context is a user buffer of `ctx_size_in` bytes.
    Syscall,
}

/// What the attach target's BTF prototype says of a tracing program's context (the
/// kernel's `btf_ctx_access`): how many `u64` slots there are, and which hold a pointer
/// to a struct (a `PTR_TO_BTF_ID` when loaded).
#[derive(Clone, Copy, PartialEq, Eq, Hash, Debug, Default)]
pub struct TracingCtx {
    /// Slots: the arguments, plus the return value for `fexit` and `fmod_ret`.
    pub nr_slots: u8,
    /// Bit `i`: slot `i` is a pointer to a struct or union.
    pub btf_ptr_slots: u16,
    /// For each pointer slot: the id of its struct in the target BTF
    /// ([`Program::btf`]), 0 when unknown (loads through it are then not modelled).
    pub btf_ids: [u32; 13],
    /// Whether the prototype is known; without it every context load is refused as not
    /// modelled ([`crate::Rule::Unsupported`]).
    pub known: bool,
}

impl ProgType {
    /// The kernel's number.
    pub fn number(self) -> u32 {
        match self {
            ProgType::SocketFilter => 1,
            ProgType::Kprobe => 2,
            ProgType::SchedCls => 3,
            ProgType::SchedAct => 4,
            ProgType::Tracepoint => 5,
            ProgType::Xdp => 6,
            ProgType::CgroupSkb => 8,
            ProgType::PerfEvent => 7,
            ProgType::RawTracepoint => 17,
            ProgType::Tracing(_) => 26,
            ProgType::Syscall => 31,
        }
    }

    /// The kernel's name (as in `bpftool prog`).
    pub fn name(self) -> &'static str {
        match self {
            ProgType::SocketFilter => "socket_filter",
            ProgType::Kprobe => "kprobe",
            ProgType::SchedCls => "sched_cls",
            ProgType::SchedAct => "sched_act",
            ProgType::Tracepoint => "tracepoint",
            ProgType::Xdp => "xdp",
            ProgType::CgroupSkb => "cgroup_skb",
            ProgType::PerfEvent => "perf_event",
            ProgType::RawTracepoint => "raw_tracepoint",
            ProgType::Tracing(_) => "tracing",
            ProgType::Syscall => "syscall",
        }
    }

    /// Whether the context is `struct __sk_buff`.
    pub fn is_skb(self) -> bool {
        matches!(
            self,
            ProgType::SocketFilter | ProgType::SchedCls | ProgType::SchedAct | ProgType::CgroupSkb
        )
    }

    /// Whether the type's verifier ops have their own `btf_struct_access` (writes to
    /// kernel objects go there: `tc_cls_act` and `xdp`).
    pub fn has_btf_struct_access_op(self) -> bool {
        matches!(
            self,
            ProgType::SchedCls | ProgType::SchedAct | ProgType::Xdp
        )
    }

    /// Whether loading needs `CAP_PERFMON` (`is_perfmon_prog_type`).
    pub fn needs_perfmon(self) -> bool {
        matches!(
            self,
            ProgType::Kprobe
                | ProgType::Tracepoint
                | ProgType::PerfEvent
                | ProgType::RawTracepoint
                | ProgType::Tracing(_)
        )
    }
}

/// `expected_attach_type` of a cgroup_skb program on the ingress hook.
pub const BPF_CGROUP_INET_INGRESS: u32 = 0;
/// `expected_attach_type` of a cgroup_skb program on the egress hook.
pub const BPF_CGROUP_INET_EGRESS: u32 = 1;

/// Map types the verifier treats specially (kernel numbering).
pub mod map_type {
    /// `BPF_MAP_TYPE_HASH`.
    pub const HASH: u32 = 1;
    /// `BPF_MAP_TYPE_ARRAY`.
    pub const ARRAY: u32 = 2;
    /// `BPF_MAP_TYPE_PROG_ARRAY`.
    pub const PROG_ARRAY: u32 = 3;
    /// `BPF_MAP_TYPE_PERF_EVENT_ARRAY`.
    pub const PERF_EVENT_ARRAY: u32 = 4;
    /// `BPF_MAP_TYPE_PERCPU_HASH`.
    pub const PERCPU_HASH: u32 = 5;
    /// `BPF_MAP_TYPE_PERCPU_ARRAY`.
    pub const PERCPU_ARRAY: u32 = 6;
    /// `BPF_MAP_TYPE_STACK_TRACE`.
    pub const STACK_TRACE: u32 = 7;
    /// `BPF_MAP_TYPE_CGROUP_ARRAY`.
    pub const CGROUP_ARRAY: u32 = 8;
    /// `BPF_MAP_TYPE_LRU_HASH`.
    pub const LRU_HASH: u32 = 9;
    /// `BPF_MAP_TYPE_LRU_PERCPU_HASH`.
    pub const LRU_PERCPU_HASH: u32 = 10;
    /// `BPF_MAP_TYPE_LPM_TRIE`.
    pub const LPM_TRIE: u32 = 11;
    /// `BPF_MAP_TYPE_ARRAY_OF_MAPS`.
    pub const ARRAY_OF_MAPS: u32 = 12;
    /// `BPF_MAP_TYPE_HASH_OF_MAPS`.
    pub const HASH_OF_MAPS: u32 = 13;
    /// `BPF_MAP_TYPE_DEVMAP`.
    pub const DEVMAP: u32 = 14;
    /// `BPF_MAP_TYPE_SOCKMAP`.
    pub const SOCKMAP: u32 = 15;
    /// `BPF_MAP_TYPE_CPUMAP`.
    pub const CPUMAP: u32 = 16;
    /// `BPF_MAP_TYPE_XSKMAP`.
    pub const XSKMAP: u32 = 17;
    /// `BPF_MAP_TYPE_SOCKHASH`.
    pub const SOCKHASH: u32 = 18;
    /// `BPF_MAP_TYPE_CGROUP_STORAGE`.
    pub const CGROUP_STORAGE: u32 = 19;
    /// `BPF_MAP_TYPE_REUSEPORT_SOCKARRAY`.
    pub const REUSEPORT_SOCKARRAY: u32 = 20;
    /// `BPF_MAP_TYPE_PERCPU_CGROUP_STORAGE`.
    pub const PERCPU_CGROUP_STORAGE: u32 = 21;
    /// `BPF_MAP_TYPE_QUEUE`.
    pub const QUEUE: u32 = 22;
    /// `BPF_MAP_TYPE_STACK`.
    pub const STACK: u32 = 23;
    /// `BPF_MAP_TYPE_SK_STORAGE`.
    pub const SK_STORAGE: u32 = 24;
    /// `BPF_MAP_TYPE_DEVMAP_HASH`.
    pub const DEVMAP_HASH: u32 = 25;
    /// `BPF_MAP_TYPE_STRUCT_OPS`.
    pub const STRUCT_OPS: u32 = 26;
    /// `BPF_MAP_TYPE_RINGBUF`.
    pub const RINGBUF: u32 = 27;
    /// `BPF_MAP_TYPE_INODE_STORAGE`.
    pub const INODE_STORAGE: u32 = 28;
    /// `BPF_MAP_TYPE_TASK_STORAGE`.
    pub const TASK_STORAGE: u32 = 29;
    /// `BPF_MAP_TYPE_BLOOM_FILTER`.
    pub const BLOOM_FILTER: u32 = 30;
    /// `BPF_MAP_TYPE_USER_RINGBUF`.
    pub const USER_RINGBUF: u32 = 31;
    /// `BPF_MAP_TYPE_CGRP_STORAGE`.
    pub const CGRP_STORAGE: u32 = 32;
    /// `BPF_MAP_TYPE_ARENA`.
    pub const ARENA: u32 = 33;
}

/// The kernel structure behind a map of `map_type` (what a program reading fields of the
/// map pointer reads), `None` for types without one.
pub(crate) fn map_struct_name(t: u32) -> Option<&'static str> {
    use map_type::*;
    Some(match t {
        ARRAY | PERCPU_ARRAY | PROG_ARRAY | PERF_EVENT_ARRAY | CGROUP_ARRAY | ARRAY_OF_MAPS => {
            "bpf_array"
        }
        HASH | PERCPU_HASH | LRU_HASH | LRU_PERCPU_HASH | HASH_OF_MAPS => "bpf_htab",
        STACK_TRACE => "bpf_stack_map",
        LPM_TRIE => "lpm_trie",
        DEVMAP | DEVMAP_HASH => "bpf_dtab",
        SOCKMAP => "bpf_stab",
        SOCKHASH => "bpf_shtab",
        CPUMAP => "bpf_cpu_map",
        XSKMAP => "xsk_map",
        CGROUP_STORAGE | PERCPU_CGROUP_STORAGE => "bpf_cgroup_storage_map",
        REUSEPORT_SOCKARRAY => "reuseport_array",
        QUEUE | STACK => "bpf_queue_stack",
        SK_STORAGE | INODE_STORAGE | TASK_STORAGE | CGRP_STORAGE => "bpf_local_storage_map",
        STRUCT_OPS => "bpf_struct_ops_map",
        RINGBUF | USER_RINGBUF => "bpf_ringbuf_map",
        BLOOM_FILTER => "bpf_bloom_filter",
        ARENA => "bpf_arena",
        _ => return None,
    })
}

/// `BPF_F_RDONLY_PROG`: programs may only read values.
pub const BPF_F_RDONLY_PROG: u32 = 1 << 7;
/// `BPF_F_WRONLY_PROG`: programs may only write values.
pub const BPF_F_WRONLY_PROG: u32 = 1 << 8;

/// A field of a map value that programs may not touch with loads and stores
/// (`struct btf_field`), as BTF describes it.
#[derive(Clone, Copy, PartialEq, Eq, Debug)]
pub struct SpecialField {
    /// What it is.
    pub kind: FieldKind,
    /// Offset in the value.
    pub offset: u32,
    /// Size in bytes.
    pub size: u32,
}

/// Kinds of special map value fields.
#[derive(Clone, Copy, PartialEq, Eq, Debug)]
pub enum FieldKind {
    /// `struct bpf_spin_lock`.
    SpinLock,
    /// `struct bpf_timer`.
    Timer,
    /// `struct bpf_wq`.
    Workqueue,
}

impl FieldKind {
    /// The kernel's name (`btf_field_type_name`).
    pub fn name(self) -> &'static str {
        match self {
            FieldKind::SpinLock => "bpf_spin_lock",
            FieldKind::Timer => "bpf_timer",
            FieldKind::Workqueue => "bpf_wq",
        }
    }
}

/// What the verifier knows of one map (what the kernel reads from `struct bpf_map`).
#[derive(Clone, PartialEq, Eq, Debug, Default)]
pub struct MapInfo {
    /// Name (for messages and state dumps).
    pub name: String,
    /// `BPF_MAP_TYPE_*` number.
    pub map_type: u32,
    /// Key size in bytes.
    pub key_size: u32,
    /// Value size in bytes.
    pub value_size: u32,
    /// Maximum entries.
    pub max_entries: u32,
    /// Creation flags (`BPF_F_RDONLY_PROG`, ...).
    pub map_flags: u32,
    /// For a frozen read-only array: its value at key 0, so loads from it are constants as
    /// the kernel makes them (`bpf_map_direct_read`).
    pub frozen_value: Option<Vec<u8>>,
    /// Spin locks and timers inside the value.
    pub fields: Vec<SpecialField>,
    /// Whether the map was created with BTF for its key and value (`map->btf`), which
    /// `bpf_spin_lock` needs.
    pub btf: bool,
    /// For `ARRAY_OF_MAPS` / `HASH_OF_MAPS`: the inner map template (the kernel's
    /// `inner_map_meta`). A lookup in the map gives, once checked against NULL, a map
    /// pointer to a map of this shape.
    pub inner: Option<Box<MapInfo>>,
}

impl MapInfo {
    /// A map of `map_type` with the given sizes and no flags.
    pub fn new(map_type: u32, key_size: u32, value_size: u32, max_entries: u32) -> MapInfo {
        MapInfo {
            map_type,
            key_size,
            value_size,
            max_entries,
            ..MapInfo::default()
        }
    }

    /// Whether programs may read values (`BPF_MAP_CAN_READ`).
    pub fn prog_can_read(&self) -> bool {
        self.map_flags & BPF_F_WRONLY_PROG == 0
    }

    /// Whether programs may write values (`BPF_MAP_CAN_WRITE`).
    pub fn prog_can_write(&self) -> bool {
        self.map_flags & BPF_F_RDONLY_PROG == 0
    }

    /// The spin lock field, if any.
    pub fn spin_lock(&self) -> Option<SpecialField> {
        self.fields
            .iter()
            .copied()
            .find(|f| f.kind == FieldKind::SpinLock)
    }
}

/// The loader's capabilities, which decide several rules.
#[derive(Clone, Copy, PartialEq, Eq, Hash, Debug, Default)]
pub enum Privilege {
    /// `CAP_BPF` + `CAP_NET_ADMIN` without `CAP_PERFMON`: the least privilege that loads
    /// networking programs, and the stricter verdict (no pointer leaks, no reads of
    /// uninitialised stack, Spectre v1/v4 mitigations, no `bpf_trace_printk`).
    #[default]
    CapBpfNetAdmin,
    /// root (`CAP_SYS_ADMIN`, which implies `CAP_PERFMON`).
    Root,
}

impl Privilege {
    /// `env->allow_ptr_leaks` (`CAP_PERFMON`).
    pub fn allow_ptr_leaks(self) -> bool {
        self == Privilege::Root
    }

    /// `env->allow_uninit_stack` (`CAP_PERFMON`).
    pub fn allow_uninit_stack(self) -> bool {
        self == Privilege::Root
    }

    /// `env->bypass_spec_v1` (`CAP_PERFMON`).
    pub fn bypass_spec_v1(self) -> bool {
        self == Privilege::Root
    }

    /// `env->bypass_spec_v4` (`CAP_PERFMON`).
    pub fn bypass_spec_v4(self) -> bool {
        self == Privilege::Root
    }

    /// Whether `CAP_PERFMON` is held.
    pub fn perfmon(self) -> bool {
        self == Privilege::Root
    }

    /// The name used on the command line.
    pub fn name(self) -> &'static str {
        match self {
            Privilege::CapBpfNetAdmin => "cap_bpf",
            Privilege::Root => "root",
        }
    }
}

/// A program to verify.
#[derive(Clone, Debug)]
pub struct Program<'a> {
    /// Relocated instructions: map references are pseudo `ld_imm64`s whose `imm` indexes
    /// `maps`; bpf-to-bpf calls have `src_reg` 1 and a relative `imm`.
    pub insns: &'a [Insn],
    /// The program type.
    pub prog_type: ProgType,
    /// `expected_attach_type` when the loader knows it (cgroup_skb ingress or egress);
    /// `None` takes the most permissive rule of the type.
    pub expected_attach_type: Option<u32>,
    /// The maps, in the index order of the pseudo `ld_imm64`s.
    pub maps: &'a [MapInfo],
    /// Whether the license is GPL-compatible (gpl_only helpers need it).
    pub gpl_compatible: bool,
    /// Whether the loader passes BTF function info (`func_info`, as libbpf does for an
    /// object built with `-g`): without it the kernel refuses `bpf_tail_call` and
    /// `ld_abs` in subprograms.
    pub func_info: bool,
    /// The kernel functions the program may call: a kfunc call's `imm` indexes it.
    pub kfuncs: &'a [crate::Kfunc],
    /// The kernel's types (the target BTF, e.g. `/sys/kernel/btf/vmlinux`): loads
    /// through `PTR_TO_BTF_ID` pointers are checked against them; without them such
    /// loads are refused as not modelled.
    pub btf: Option<&'a dyn crate::KernelBtf>,
}

/// How to verify.
#[derive(Clone, Copy, Debug)]
pub struct Options {
    /// The loader's capabilities.
    pub privilege: Privilege,
    /// Possible CPUs (`nr_cpu_ids`), the bound of `bpf_get_smp_processor_id()`.
    pub nr_cpus: u32,
    /// Collect per-instruction facts for engines ([`crate::Verdict::facts`]).
    pub collect_facts: bool,
}

impl Default for Options {
    fn default() -> Options {
        Options {
            privilege: Privilege::default(),
            nr_cpus: 1,
            collect_facts: false,
        }
    }
}
