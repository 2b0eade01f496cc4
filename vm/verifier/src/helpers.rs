//! Helper prototypes (`struct bpf_func_proto`): each helper's argument and return types,
//! one line per helper, and which program types and privileges may call it (the kernel's
//! `*_func_proto` switch statements).

use crate::input::{Privilege, ProgType};

/// `BPF_FUNC_tail_call`.
pub const TAIL_CALL: u32 = 12;
/// `BPF_FUNC_get_local_storage`.
pub const GET_LOCAL_STORAGE: u32 = 81;
/// `BPF_FUNC_loop`.
pub const LOOP: u32 = 181;
/// `BPF_FUNC_for_each_map_elem`.
pub const FOR_EACH_MAP_ELEM: u32 = 164;
/// `BPF_FUNC_get_smp_processor_id`.
pub const GET_SMP_PROCESSOR_ID: u32 = 8;
/// `BPF_FUNC_map_lookup_elem`.
pub const MAP_LOOKUP_ELEM: u32 = 1;

/// An argument type (`enum bpf_arg_type` with its flags).
#[derive(Clone, Copy, PartialEq, Eq, Debug)]
pub enum Arg {
    /// No argument (`ARG_DONTCARE`).
    None,
    /// Any scalar (`ARG_ANYTHING`); a pointer leaks.
    Anything,
    /// A map (`ARG_CONST_MAP_PTR`).
    ConstMapPtr,
    /// A key of the map argument, initialised (`ARG_PTR_TO_MAP_KEY`).
    MapKey,
    /// A value of the map argument (`ARG_PTR_TO_MAP_VALUE`); `uninit`: written by the
    /// helper (`MEM_UNINIT | MEM_WRITE`).
    MapValue {
        /// Written, may be uninitialised.
        uninit: bool,
    },
    /// Memory (`ARG_PTR_TO_MEM`), sized by the next argument unless `fixed`.
    Mem {
        /// `MEM_RDONLY`: the helper only reads.
        rdonly: bool,
        /// `PTR_MAYBE_NULL`: NULL (with size 0) is allowed.
        maybe_null: bool,
        /// `MEM_UNINIT`: the helper fills it (may be uninitialised).
        uninit: bool,
        /// `MEM_WRITE`: the helper writes it.
        write: bool,
        /// `MEM_FIXED_SIZE`: this many bytes, no size argument.
        fixed: u32,
        /// `MEM_ALIGNED`.
        aligned: bool,
    },
    /// Size of the previous argument, at least 1 (`ARG_CONST_SIZE`).
    ConstSize,
    /// Size of the previous argument, may be 0 (`ARG_CONST_SIZE_OR_ZERO`).
    ConstSizeOrZero,
    /// A known constant size (`ARG_CONST_ALLOC_SIZE_OR_ZERO`).
    ConstAllocSizeOrZero,
    /// The context (`ARG_PTR_TO_CTX`); `maybe_null`: or NULL.
    Ctx {
        /// `PTR_MAYBE_NULL`.
        maybe_null: bool,
    },
    /// A BPF function (`ARG_PTR_TO_FUNC`).
    Func,
    /// A stack pointer or NULL (`ARG_PTR_TO_STACK_OR_NULL`).
    StackOrNull,
    /// Ring buffer memory to release (`ARG_PTR_TO_RINGBUF_MEM | OBJ_RELEASE`).
    RingbufMemRelease,
    /// A per-CPU kernel object (`ARG_PTR_TO_PERCPU_BTF_ID`).
    PercpuBtfId,
    /// A kernel object of the helper's struct (`ARG_PTR_TO_BTF_ID`, the struct by
    /// `btf_args::arg_struct`).
    BtfId,
    /// A read-only map value holding a NUL-terminated string (`ARG_PTR_TO_CONST_STR`).
    ConstStr,
    /// A map value's `struct bpf_timer` (`ARG_PTR_TO_TIMER`).
    Timer,
    /// A socket of any kind (`ARG_PTR_TO_SOCK_COMMON`).
    SockCommon,
    /// A socket or a BTF `struct sock_common` (`ARG_PTR_TO_BTF_ID_SOCK_COMMON`).
    BtfIdSockCommon {
        /// `OBJ_RELEASE`: the call releases the acquired socket.
        release: bool,
        /// `PTR_MAYBE_NULL`: NULL is allowed.
        maybe_null: bool,
    },
    /// A `struct bpf_dynptr` on the stack (`ARG_PTR_TO_DYNPTR`, see [`crate::dynptr`]).
    Dynptr(crate::dynptr::DynptrArg),
    /// Arguments bpfvm's verifier does not model (BTF objects, dynptrs, spin locks): calls are refused as not modelled.
    Unmodelled,
}

impl Arg {
    const RO_MEM: Arg = Arg::Mem {
        rdonly: true,
        maybe_null: false,
        uninit: false,
        write: false,
        fixed: 0,
        aligned: false,
    };
    const RO_MEM_OR_NULL: Arg = Arg::Mem {
        rdonly: true,
        maybe_null: true,
        uninit: false,
        write: false,
        fixed: 0,
        aligned: false,
    };
    const UNINIT_MEM: Arg = Arg::Mem {
        rdonly: false,
        maybe_null: false,
        uninit: true,
        write: true,
        fixed: 0,
        aligned: false,
    };
    const WRITE_MEM: Arg = Arg::Mem {
        rdonly: false,
        maybe_null: false,
        uninit: false,
        write: true,
        fixed: 0,
        aligned: false,
    };
    const CTX: Arg = Arg::Ctx { maybe_null: false };

    /// Whether the call releases the reference this argument holds (`OBJ_RELEASE`).
    pub fn releases(self) -> bool {
        matches!(
            self,
            Arg::RingbufMemRelease | Arg::BtfIdSockCommon { release: true, .. }
        )
    }

    /// Whether this argument writes memory (the size argument after it checks a write).
    pub fn writes(self) -> bool {
        match self {
            Arg::Mem { write, .. } => write,
            Arg::MapValue { uninit } => uninit,
            _ => false,
        }
    }
}

/// A return type (`enum bpf_return_type`).
#[derive(Clone, Copy, PartialEq, Eq, Debug)]
pub enum Ret {
    /// A number.
    Integer,
    /// Nothing (`r0` unreadable).
    Void,
    /// A value of the map argument or NULL.
    MapValueOrNull,
    /// A value of the map argument.
    MapValue,
    /// Ring buffer memory of the size argument, or NULL (acquired).
    RingbufMemOrNull,
    /// A per-CPU object (read-only memory), or NULL.
    MemOrBtfIdOrNull,
    /// A per-CPU object (read-only memory).
    MemOrBtfId,
    /// A kernel object typed by BTF (`RET_PTR_TO_BTF_ID_TRUSTED` of
    /// `bpf_get_current_task_btf`, `RET_PTR_TO_BTF_ID` of `bpf_task_pt_regs`).
    BtfId,
    /// A full socket or NULL (`RET_PTR_TO_SOCKET_OR_NULL`).
    SocketOrNull,
    /// A socket's common part or NULL (`RET_PTR_TO_SOCK_COMMON_OR_NULL`).
    SockCommonOrNull,
    /// A TCP socket or NULL (`RET_PTR_TO_TCP_SOCK_OR_NULL`).
    TcpSockOrNull,
    /// A kernel object typed by BTF, or NULL (`RET_PTR_TO_BTF_ID_OR_NULL`): the struct
    /// of the helper (`btf_args::skc_struct`).
    BtfIdOrNull,
    /// Memory inside a dynptr of the size argument, or NULL
    /// (`RET_PTR_TO_DYNPTR_MEM_OR_NULL`).
    DynptrMemOrNull,
    /// Returns something bpfvm's verifier does not model (BTF objects).
    Unmodelled,
}

/// A helper prototype.
#[derive(Clone, Copy, PartialEq, Eq, Debug)]
pub struct Proto {
    /// Helper id (`BPF_FUNC_*`).
    pub id: u32,
    /// The kernel's name.
    pub name: &'static str,
    /// Return type.
    pub ret: Ret,
    /// Arguments `r1..=r5`.
    pub args: [Arg; 5],
    /// Only for GPL-compatible programs.
    pub gpl_only: bool,
    /// May be given packet pointers (`pkt_access`).
    pub pkt_access: bool,
}

impl Proto {
    /// Arguments before the first [`Arg::None`].
    pub fn num_params(&self) -> usize {
        self.args.iter().take_while(|a| **a != Arg::None).count()
    }
}

use Arg::{Anything as A, ConstMapPtr as MAP, ConstSize as SZ, ConstSizeOrZero as SZ0, None as N};

const fn p(
    id: u32,
    name: &'static str,
    ret: Ret,
    args: [Arg; 5],
    gpl_only: bool,
    pkt_access: bool,
) -> Proto {
    Proto {
        id,
        name,
        ret,
        args,
        gpl_only,
        pkt_access,
    }
}

const FIXED_U64_OUT: Arg = Arg::Mem {
    rdonly: false,
    maybe_null: false,
    uninit: true,
    write: true,
    fixed: 8,
    aligned: true,
};
const FIXED_U32_WRITE: Arg = Arg::Mem {
    rdonly: false,
    maybe_null: false,
    uninit: false,
    write: true,
    fixed: 4,
    aligned: true,
};
const MEM_OR_NULL_WRITE: Arg = Arg::Mem {
    rdonly: false,
    maybe_null: true,
    uninit: false,
    write: true,
    fixed: 0,
    aligned: false,
};
const UNMOD: Arg = Arg::Unmodelled;
const TIMER: Arg = Arg::Timer;
const SK_RELEASE: Arg = Arg::BtfIdSockCommon {
    release: true,
    maybe_null: false,
};
const SK: Arg = Arg::BtfIdSockCommon {
    release: false,
    maybe_null: false,
};
const CTX: Arg = Arg::CTX;
const DYNPTR: Arg = Arg::Dynptr(crate::dynptr::DynptrArg::READ);
const DYNPTR_NEW_LOCAL: Arg = Arg::Dynptr(crate::dynptr::DynptrArg::NEW_LOCAL);
const DYNPTR_NEW_RINGBUF: Arg = Arg::Dynptr(crate::dynptr::DynptrArg::NEW_RINGBUF);
const DYNPTR_RELEASE_RINGBUF: Arg = Arg::Dynptr(crate::dynptr::DynptrArg::RELEASE_RINGBUF);
const RO: Arg = Arg::RO_MEM;
const RO0: Arg = Arg::RO_MEM_OR_NULL;
const UNINIT: Arg = Arg::UNINIT_MEM;
const WMEM: Arg = Arg::WRITE_MEM;

use Ret::{Integer as I, Void as V};

/// The prototypes, one line per helper: id, name, return, arguments, gpl_only, pkt_access.
static PROTOS: &[Proto] = &[
    p(
        1,
        "bpf_map_lookup_elem",
        Ret::MapValueOrNull,
        [MAP, Arg::MapKey, N, N, N],
        false,
        true,
    ),
    p(
        2,
        "bpf_map_update_elem",
        I,
        [MAP, Arg::MapKey, Arg::MapValue { uninit: false }, A, N],
        false,
        true,
    ),
    p(
        3,
        "bpf_map_delete_elem",
        I,
        [MAP, Arg::MapKey, N, N, N],
        false,
        true,
    ),
    p(5, "bpf_ktime_get_ns", I, [N; 5], false, false),
    p(6, "bpf_trace_printk", I, [RO, SZ, N, N, N], true, false),
    p(7, "bpf_get_prandom_u32", I, [N; 5], false, false),
    p(8, "bpf_get_smp_processor_id", I, [N; 5], false, false),
    p(
        9,
        "bpf_skb_store_bytes",
        I,
        [CTX, A, RO, SZ, A],
        false,
        false,
    ),
    p(
        10,
        "bpf_l3_csum_replace",
        I,
        [CTX, A, A, A, A],
        false,
        false,
    ),
    p(
        11,
        "bpf_l4_csum_replace",
        I,
        [CTX, A, A, A, A],
        false,
        false,
    ),
    p(12, "bpf_tail_call", V, [CTX, MAP, A, N, N], false, false),
    p(13, "bpf_clone_redirect", I, [CTX, A, A, N, N], false, false),
    p(14, "bpf_get_current_pid_tgid", I, [N; 5], false, false),
    p(15, "bpf_get_current_uid_gid", I, [N; 5], false, false),
    p(
        16,
        "bpf_get_current_comm",
        I,
        [UNINIT, SZ, N, N, N],
        false,
        false,
    ),
    p(
        17,
        "bpf_get_cgroup_classid",
        I,
        [CTX, N, N, N, N],
        false,
        false,
    ),
    p(18, "bpf_skb_vlan_push", I, [CTX, A, A, N, N], false, false),
    p(19, "bpf_skb_vlan_pop", I, [CTX, N, N, N, N], false, false),
    p(
        20,
        "bpf_skb_get_tunnel_key",
        I,
        [CTX, UNINIT, SZ, A, N],
        false,
        false,
    ),
    p(
        21,
        "bpf_skb_set_tunnel_key",
        I,
        [CTX, RO, SZ, A, N],
        false,
        false,
    ),
    p(23, "bpf_redirect", I, [A, A, N, N, N], false, false),
    p(
        24,
        "bpf_get_route_realm",
        I,
        [CTX, N, N, N, N],
        false,
        false,
    ),
    p(
        25,
        "bpf_perf_event_output",
        I,
        [CTX, MAP, A, RO, SZ0],
        true,
        false,
    ),
    p(
        26,
        "bpf_skb_load_bytes",
        I,
        [CTX, A, UNINIT, SZ, N],
        false,
        false,
    ),
    p(27, "bpf_get_stackid", I, [CTX, MAP, A, N, N], true, false),
    p(28, "bpf_csum_diff", I, [RO0, SZ0, RO0, SZ0, A], false, true),
    p(
        29,
        "bpf_skb_get_tunnel_opt",
        I,
        [CTX, UNINIT, SZ, N, N],
        false,
        false,
    ),
    p(
        30,
        "bpf_skb_set_tunnel_opt",
        I,
        [CTX, RO, SZ, N, N],
        false,
        false,
    ),
    p(
        31,
        "bpf_skb_change_proto",
        I,
        [CTX, A, A, N, N],
        false,
        false,
    ),
    p(
        32,
        "bpf_skb_change_type",
        I,
        [CTX, A, N, N, N],
        false,
        false,
    ),
    p(
        33,
        "bpf_skb_under_cgroup",
        I,
        [CTX, MAP, A, N, N],
        false,
        false,
    ),
    p(
        34,
        "bpf_get_hash_recalc",
        I,
        [CTX, N, N, N, N],
        false,
        false,
    ),
    p(35, "bpf_get_current_task", I, [N; 5], true, false),
    p(
        37,
        "bpf_current_task_under_cgroup",
        I,
        [MAP, A, N, N, N],
        false,
        false,
    ),
    p(
        38,
        "bpf_skb_change_tail",
        I,
        [CTX, A, A, N, N],
        false,
        false,
    ),
    p(39, "bpf_skb_pull_data", I, [CTX, A, N, N, N], false, false),
    p(40, "bpf_csum_update", I, [CTX, A, N, N, N], false, false),
    p(
        41,
        "bpf_set_hash_invalid",
        I,
        [CTX, N, N, N, N],
        false,
        false,
    ),
    p(42, "bpf_get_numa_node_id", I, [N; 5], false, false),
    p(
        43,
        "bpf_skb_change_head",
        I,
        [CTX, A, A, N, N],
        false,
        false,
    ),
    p(
        44,
        "bpf_xdp_adjust_head",
        I,
        [CTX, A, N, N, N],
        false,
        false,
    ),
    p(
        45,
        "bpf_probe_read_str",
        I,
        [UNINIT, SZ0, A, N, N],
        true,
        false,
    ),
    p(
        46,
        "bpf_get_socket_cookie",
        I,
        [CTX, N, N, N, N],
        false,
        false,
    ),
    p(47, "bpf_get_socket_uid", I, [CTX, N, N, N, N], false, false),
    p(48, "bpf_set_hash", I, [CTX, A, N, N, N], false, false),
    p(
        50,
        "bpf_skb_adjust_room",
        I,
        [CTX, A, A, A, N],
        false,
        false,
    ),
    p(51, "bpf_redirect_map", I, [MAP, A, A, N, N], false, false),
    p(
        54,
        "bpf_xdp_adjust_meta",
        I,
        [CTX, A, N, N, N],
        false,
        false,
    ),
    p(
        65,
        "bpf_xdp_adjust_tail",
        I,
        [CTX, A, N, N, N],
        false,
        false,
    ),
    p(
        67,
        "bpf_get_stack",
        I,
        [CTX, UNINIT, SZ0, A, N],
        true,
        false,
    ),
    p(
        68,
        "bpf_skb_load_bytes_relative",
        I,
        [CTX, A, UNINIT, SZ, A],
        false,
        false,
    ),
    p(69, "bpf_fib_lookup", I, [CTX, WMEM, SZ, A, N], true, false),
    p(79, "bpf_skb_cgroup_id", I, [CTX, N, N, N, N], false, false),
    p(80, "bpf_get_current_cgroup_id", I, [N; 5], false, false),
    p(
        81,
        "bpf_get_local_storage",
        Ret::MapValue,
        [MAP, A, N, N, N],
        false,
        false,
    ),
    p(
        83,
        "bpf_skb_ancestor_cgroup_id",
        I,
        [CTX, A, N, N, N],
        false,
        false,
    ),
    p(
        84,
        "bpf_sk_lookup_tcp",
        Ret::SocketOrNull,
        [CTX, RO, SZ, A, A],
        false,
        true,
    ),
    p(
        85,
        "bpf_sk_lookup_udp",
        Ret::SocketOrNull,
        [CTX, RO, SZ, A, A],
        false,
        true,
    ),
    p(
        86,
        "bpf_sk_release",
        I,
        [SK_RELEASE, N, N, N, N],
        false,
        false,
    ),
    p(
        87,
        "bpf_map_push_elem",
        I,
        [MAP, Arg::MapValue { uninit: false }, A, N, N],
        false,
        true,
    ),
    p(
        88,
        "bpf_map_pop_elem",
        I,
        [MAP, Arg::MapValue { uninit: true }, N, N, N],
        false,
        false,
    ),
    p(
        89,
        "bpf_map_peek_elem",
        I,
        [MAP, Arg::MapValue { uninit: true }, N, N, N],
        false,
        false,
    ),
    p(93, "bpf_spin_lock", V, [UNMOD, N, N, N, N], false, false),
    p(94, "bpf_spin_unlock", V, [UNMOD, N, N, N, N], false, false),
    p(
        95,
        "bpf_sk_fullsock",
        Ret::SocketOrNull,
        [Arg::SockCommon, N, N, N, N],
        false,
        false,
    ),
    p(
        96,
        "bpf_tcp_sock",
        Ret::TcpSockOrNull,
        [Arg::SockCommon, N, N, N, N],
        false,
        false,
    ),
    p(97, "bpf_skb_ecn_set_ce", I, [CTX, N, N, N, N], false, false),
    p(
        98,
        "bpf_get_listener_sock",
        Ret::SocketOrNull,
        [Arg::SockCommon, N, N, N, N],
        false,
        false,
    ),
    p(
        99,
        "bpf_skc_lookup_tcp",
        Ret::SockCommonOrNull,
        [CTX, RO, SZ, A, A],
        false,
        true,
    ),
    p(
        105,
        "bpf_strtol",
        I,
        [RO, SZ, A, FIXED_U64_OUT, N],
        false,
        false,
    ),
    p(
        106,
        "bpf_strtoul",
        I,
        [RO, SZ, A, FIXED_U64_OUT, N],
        false,
        false,
    ),
    p(
        112,
        "bpf_probe_read_user",
        I,
        [UNINIT, SZ0, A, N, N],
        true,
        false,
    ),
    p(
        113,
        "bpf_probe_read_kernel",
        I,
        [UNINIT, SZ0, A, N, N],
        true,
        false,
    ),
    p(
        114,
        "bpf_probe_read_user_str",
        I,
        [UNINIT, SZ0, A, N, N],
        true,
        false,
    ),
    p(
        115,
        "bpf_probe_read_kernel_str",
        I,
        [UNINIT, SZ0, A, N, N],
        true,
        false,
    ),
    p(118, "bpf_jiffies64", I, [N; 5], false, false),
    p(
        120,
        "bpf_get_ns_current_pid_tgid",
        I,
        [A, A, UNINIT, SZ, N],
        false,
        false,
    ),
    p(
        122,
        "bpf_get_netns_cookie",
        I,
        [Arg::Ctx { maybe_null: true }, N, N, N, N],
        false,
        false,
    ),
    p(
        123,
        "bpf_get_current_ancestor_cgroup_id",
        I,
        [A, N, N, N, N],
        false,
        false,
    ),
    p(124, "bpf_sk_assign", I, [CTX, SK, A, N, N], false, false),
    p(125, "bpf_ktime_get_boot_ns", I, [N; 5], false, false),
    p(
        130,
        "bpf_ringbuf_output",
        I,
        [MAP, RO, SZ0, A, N],
        false,
        false,
    ),
    p(
        131,
        "bpf_ringbuf_reserve",
        Ret::RingbufMemOrNull,
        [MAP, Arg::ConstAllocSizeOrZero, A, N, N],
        false,
        false,
    ),
    p(
        132,
        "bpf_ringbuf_submit",
        V,
        [Arg::RingbufMemRelease, A, N, N, N],
        false,
        false,
    ),
    p(
        133,
        "bpf_ringbuf_discard",
        V,
        [Arg::RingbufMemRelease, A, N, N, N],
        false,
        false,
    ),
    p(134, "bpf_ringbuf_query", I, [MAP, A, N, N, N], false, false),
    p(135, "bpf_csum_level", I, [CTX, A, N, N, N], false, false),
    p(
        136,
        "bpf_skc_to_tcp6_sock",
        Ret::BtfIdOrNull,
        [SK, N, N, N, N],
        false,
        false,
    ),
    p(
        137,
        "bpf_skc_to_tcp_sock",
        Ret::BtfIdOrNull,
        [SK, N, N, N, N],
        false,
        false,
    ),
    p(
        138,
        "bpf_skc_to_tcp_timewait_sock",
        Ret::BtfIdOrNull,
        [SK, N, N, N, N],
        false,
        false,
    ),
    p(
        139,
        "bpf_skc_to_tcp_request_sock",
        Ret::BtfIdOrNull,
        [SK, N, N, N, N],
        false,
        false,
    ),
    p(
        140,
        "bpf_skc_to_udp6_sock",
        Ret::BtfIdOrNull,
        [SK, N, N, N, N],
        false,
        false,
    ),
    // `bpf_snprintf_btf_proto`: str ARG_PTR_TO_MEM | MEM_WRITE, str_size ARG_CONST_SIZE,
    // ptr ARG_PTR_TO_MEM | MEM_RDONLY, btf_ptr_size ARG_CONST_SIZE, flags ARG_ANYTHING.
    p(
        141,
        "bpf_get_task_stack",
        I,
        [Arg::BtfId, UNINIT, SZ0, A, N],
        false,
        false,
    ),
    p(
        149,
        "bpf_snprintf_btf",
        I,
        [WMEM, SZ, RO, SZ, A],
        false,
        false,
    ),
    p(
        151,
        "bpf_skb_cgroup_classid",
        I,
        [CTX, N, N, N, N],
        false,
        false,
    ),
    p(
        152,
        "bpf_redirect_neigh",
        I,
        [A, RO0, SZ0, A, N],
        false,
        false,
    ),
    p(
        153,
        "bpf_per_cpu_ptr",
        Ret::MemOrBtfIdOrNull,
        [Arg::PercpuBtfId, A, N, N, N],
        false,
        false,
    ),
    p(
        154,
        "bpf_this_cpu_ptr",
        Ret::MemOrBtfId,
        [Arg::PercpuBtfId, N, N, N, N],
        false,
        false,
    ),
    p(155, "bpf_redirect_peer", I, [A, A, N, N, N], false, false),
    p(
        158,
        "bpf_get_current_task_btf",
        Ret::BtfId,
        [N; 5],
        true,
        false,
    ),
    p(160, "bpf_ktime_get_coarse_ns", I, [N; 5], false, false),
    p(
        163,
        "bpf_check_mtu",
        I,
        [CTX, A, FIXED_U32_WRITE, A, A],
        true,
        false,
    ),
    p(
        164,
        "bpf_for_each_map_elem",
        I,
        [MAP, Arg::Func, Arg::StackOrNull, A, N],
        false,
        false,
    ),
    p(
        165,
        "bpf_snprintf",
        I,
        [MEM_OR_NULL_WRITE, SZ0, Arg::ConstStr, RO0, SZ0],
        true,
        false,
    ),
    p(169, "bpf_timer_init", I, [TIMER, MAP, A, N, N], true, false),
    p(
        170,
        "bpf_timer_set_callback",
        I,
        [TIMER, Arg::Func, N, N, N],
        true,
        false,
    ),
    p(171, "bpf_timer_start", I, [TIMER, A, A, N, N], true, false),
    p(172, "bpf_timer_cancel", I, [TIMER, N, N, N, N], true, false),
    p(173, "bpf_get_func_ip", I, [CTX, N, N, N, N], false, false),
    p(
        174,
        "bpf_get_attach_cookie",
        I,
        [CTX, N, N, N, N],
        false,
        false,
    ),
    p(
        175,
        "bpf_task_pt_regs",
        Ret::BtfId,
        [Arg::BtfId, N, N, N, N],
        true,
        false,
    ),
    p(
        177,
        "bpf_trace_vprintk",
        I,
        [RO, SZ, RO0, SZ0, N],
        true,
        false,
    ),
    p(
        178,
        "bpf_skc_to_unix_sock",
        Ret::BtfIdOrNull,
        [SK, N, N, N, N],
        false,
        false,
    ),
    p(
        181,
        "bpf_loop",
        I,
        [A, Arg::Func, Arg::StackOrNull, A, N],
        false,
        false,
    ),
    p(
        182,
        "bpf_strncmp",
        I,
        [RO, SZ, Arg::ConstStr, N, N],
        false,
        false,
    ),
    p(186, "bpf_get_retval", I, [N; 5], false, false),
    p(187, "bpf_set_retval", I, [A, N, N, N, N], false, false),
    p(
        188,
        "bpf_xdp_get_buff_len",
        I,
        [CTX, N, N, N, N],
        false,
        false,
    ),
    p(
        189,
        "bpf_xdp_load_bytes",
        I,
        [CTX, A, UNINIT, SZ, N],
        false,
        false,
    ),
    p(
        190,
        "bpf_xdp_store_bytes",
        I,
        [CTX, A, RO, SZ, N],
        false,
        false,
    ),
    p(
        192,
        "bpf_skb_set_tstamp",
        I,
        [CTX, A, A, N, N],
        false,
        false,
    ),
    p(
        195,
        "bpf_map_lookup_percpu_elem",
        Ret::MapValueOrNull,
        [MAP, Arg::MapKey, A, N, N],
        false,
        true,
    ),
    // `bpf_skc_to_mptcp_sock_proto` takes `ARG_PTR_TO_SOCK_COMMON` (no BTF pointers).
    p(
        196,
        "bpf_skc_to_mptcp_sock",
        Ret::BtfIdOrNull,
        [Arg::SockCommon, N, N, N, N],
        false,
        false,
    ),
    p(
        197,
        "bpf_dynptr_from_mem",
        I,
        [UNINIT, SZ0, A, DYNPTR_NEW_LOCAL, N],
        false,
        false,
    ),
    p(
        198,
        "bpf_ringbuf_reserve_dynptr",
        I,
        [MAP, A, A, DYNPTR_NEW_RINGBUF, N],
        false,
        false,
    ),
    p(
        199,
        "bpf_ringbuf_submit_dynptr",
        V,
        [DYNPTR_RELEASE_RINGBUF, A, N, N, N],
        false,
        false,
    ),
    p(
        200,
        "bpf_ringbuf_discard_dynptr",
        V,
        [DYNPTR_RELEASE_RINGBUF, A, N, N, N],
        false,
        false,
    ),
    p(
        201,
        "bpf_dynptr_read",
        I,
        [UNINIT, SZ0, DYNPTR, A, A],
        false,
        false,
    ),
    p(
        202,
        "bpf_dynptr_write",
        I,
        [DYNPTR, A, RO, SZ0, A],
        false,
        false,
    ),
    p(
        203,
        "bpf_dynptr_data",
        Ret::DynptrMemOrNull,
        [DYNPTR, A, Arg::ConstAllocSizeOrZero, N, N],
        false,
        false,
    ),
    p(208, "bpf_ktime_get_tai_ns", I, [N; 5], false, false),
];

/// The prototype of helper `id`, if bpfvm's verifier knows it.
pub fn proto(id: i32) -> Option<&'static Proto> {
    let id = u32::try_from(id).ok()?;
    PROTOS.iter().find(|p| p.id == id)
}

/// Number of helper ids the kernel knows (`__BPF_FUNC_MAX_ID`).
pub const FUNC_MAX_ID: u32 = 212;

/// Whether helper `id` calls a BPF function given as an argument.
pub fn calls_callback(id: i32) -> bool {
    matches!(id as u32, LOOP | FOR_EACH_MAP_ELEM | 180 | 209)
}

/// Whether the helper may move or resize the packet (`bpf_helper_changes_pkt_data`):
/// packet pointers are invalid after the call.
pub fn changes_pkt_data(id: u32) -> bool {
    matches!(
        id,
        13 | 10
            | 11
            | 73
            | 76
            | 75
            | 74
            | 63
            | 62
            | 64
            | 50
            | 43
            | 31
            | 38
            | 39
            | 9
            | 19
            | 18
            | 143
            | 44
            | 54
            | 65
            | TAIL_CALL
    )
}

/// Helper names by id (the uapi `enum bpf_func_id` without the `BPF_FUNC_` prefix), as
/// Linux 6.18 numbers them.
pub static HELPER_NAMES: [&str; 212] = [
    "unspec",
    "map_lookup_elem",
    "map_update_elem",
    "map_delete_elem",
    "probe_read",
    "ktime_get_ns",
    "trace_printk",
    "get_prandom_u32",
    "get_smp_processor_id",
    "skb_store_bytes",
    "l3_csum_replace",
    "l4_csum_replace",
    "tail_call",
    "clone_redirect",
    "get_current_pid_tgid",
    "get_current_uid_gid",
    "get_current_comm",
    "get_cgroup_classid",
    "skb_vlan_push",
    "skb_vlan_pop",
    "skb_get_tunnel_key",
    "skb_set_tunnel_key",
    "perf_event_read",
    "redirect",
    "get_route_realm",
    "perf_event_output",
    "skb_load_bytes",
    "get_stackid",
    "csum_diff",
    "skb_get_tunnel_opt",
    "skb_set_tunnel_opt",
    "skb_change_proto",
    "skb_change_type",
    "skb_under_cgroup",
    "get_hash_recalc",
    "get_current_task",
    "probe_write_user",
    "current_task_under_cgroup",
    "skb_change_tail",
    "skb_pull_data",
    "csum_update",
    "set_hash_invalid",
    "get_numa_node_id",
    "skb_change_head",
    "xdp_adjust_head",
    "probe_read_str",
    "get_socket_cookie",
    "get_socket_uid",
    "set_hash",
    "setsockopt",
    "skb_adjust_room",
    "redirect_map",
    "sk_redirect_map",
    "sock_map_update",
    "xdp_adjust_meta",
    "perf_event_read_value",
    "perf_prog_read_value",
    "getsockopt",
    "override_return",
    "sock_ops_cb_flags_set",
    "msg_redirect_map",
    "msg_apply_bytes",
    "msg_cork_bytes",
    "msg_pull_data",
    "bind",
    "xdp_adjust_tail",
    "skb_get_xfrm_state",
    "get_stack",
    "skb_load_bytes_relative",
    "fib_lookup",
    "sock_hash_update",
    "msg_redirect_hash",
    "sk_redirect_hash",
    "lwt_push_encap",
    "lwt_seg6_store_bytes",
    "lwt_seg6_adjust_srh",
    "lwt_seg6_action",
    "rc_repeat",
    "rc_keydown",
    "skb_cgroup_id",
    "get_current_cgroup_id",
    "get_local_storage",
    "sk_select_reuseport",
    "skb_ancestor_cgroup_id",
    "sk_lookup_tcp",
    "sk_lookup_udp",
    "sk_release",
    "map_push_elem",
    "map_pop_elem",
    "map_peek_elem",
    "msg_push_data",
    "msg_pop_data",
    "rc_pointer_rel",
    "spin_lock",
    "spin_unlock",
    "sk_fullsock",
    "tcp_sock",
    "skb_ecn_set_ce",
    "get_listener_sock",
    "skc_lookup_tcp",
    "tcp_check_syncookie",
    "sysctl_get_name",
    "sysctl_get_current_value",
    "sysctl_get_new_value",
    "sysctl_set_new_value",
    "strtol",
    "strtoul",
    "sk_storage_get",
    "sk_storage_delete",
    "send_signal",
    "tcp_gen_syncookie",
    "skb_output",
    "probe_read_user",
    "probe_read_kernel",
    "probe_read_user_str",
    "probe_read_kernel_str",
    "tcp_send_ack",
    "send_signal_thread",
    "jiffies64",
    "read_branch_records",
    "get_ns_current_pid_tgid",
    "xdp_output",
    "get_netns_cookie",
    "get_current_ancestor_cgroup_id",
    "sk_assign",
    "ktime_get_boot_ns",
    "seq_printf",
    "seq_write",
    "sk_cgroup_id",
    "sk_ancestor_cgroup_id",
    "ringbuf_output",
    "ringbuf_reserve",
    "ringbuf_submit",
    "ringbuf_discard",
    "ringbuf_query",
    "csum_level",
    "skc_to_tcp6_sock",
    "skc_to_tcp_sock",
    "skc_to_tcp_timewait_sock",
    "skc_to_tcp_request_sock",
    "skc_to_udp6_sock",
    "get_task_stack",
    "load_hdr_opt",
    "store_hdr_opt",
    "reserve_hdr_opt",
    "inode_storage_get",
    "inode_storage_delete",
    "d_path",
    "copy_from_user",
    "snprintf_btf",
    "seq_printf_btf",
    "skb_cgroup_classid",
    "redirect_neigh",
    "per_cpu_ptr",
    "this_cpu_ptr",
    "redirect_peer",
    "task_storage_get",
    "task_storage_delete",
    "get_current_task_btf",
    "bprm_opts_set",
    "ktime_get_coarse_ns",
    "ima_inode_hash",
    "sock_from_file",
    "check_mtu",
    "for_each_map_elem",
    "snprintf",
    "sys_bpf",
    "btf_find_by_name_kind",
    "sys_close",
    "timer_init",
    "timer_set_callback",
    "timer_start",
    "timer_cancel",
    "get_func_ip",
    "get_attach_cookie",
    "task_pt_regs",
    "get_branch_snapshot",
    "trace_vprintk",
    "skc_to_unix_sock",
    "kallsyms_lookup_name",
    "find_vma",
    "loop",
    "strncmp",
    "get_func_arg",
    "get_func_ret",
    "get_func_arg_cnt",
    "get_retval",
    "set_retval",
    "xdp_get_buff_len",
    "xdp_load_bytes",
    "xdp_store_bytes",
    "copy_from_user_task",
    "skb_set_tstamp",
    "ima_file_hash",
    "kptr_xchg",
    "map_lookup_percpu_elem",
    "skc_to_mptcp_sock",
    "dynptr_from_mem",
    "ringbuf_reserve_dynptr",
    "ringbuf_submit_dynptr",
    "ringbuf_discard_dynptr",
    "dynptr_read",
    "dynptr_write",
    "dynptr_data",
    "tcp_raw_gen_syncookie_ipv4",
    "tcp_raw_gen_syncookie_ipv6",
    "tcp_raw_check_syncookie_ipv4",
    "tcp_raw_check_syncookie_ipv6",
    "ktime_get_tai_ns",
    "user_ringbuf_drain",
    "cgrp_storage_get",
    "cgrp_storage_delete",
];

/// The helper's name for messages (`func_id_name`): `bpf_<name>`, or `unknown` for ids
/// the kernel does not know.
pub fn name(id: i32) -> String {
    match usize::try_from(id).ok().and_then(|i| HELPER_NAMES.get(i)) {
        Some(n) => format!("bpf_{n}"),
        None => "unknown".to_string(),
    }
}

/// `bpf_base_func_proto`: helpers every program type has, by privilege tier.
fn base(id: u32, privilege: Privilege) -> bool {
    const ALWAYS: &[u32] = &[
        1, 2, 3, 87, 88, 89, 195, 7, 8, 42, 12, 5, 125, 208, 130, 131, 132, 133, 134, 182, 105,
        106, 14, 120, 15,
    ];
    const CAP_BPF: &[u32] = &[
        93, 94, 118, 153, 154, 169, 170, 171, 172, 194, 164, 181, 209, 198, 199, 200, 197, 201,
        202, 203, 210, 211, 80, 123, 37, 17, 156, 157,
    ];
    const CAP_PERFMON: &[u32] = &[
        6, 35, 158, 16, 112, 113, 114, 115, 148, 191, 149, 165, 175, 177, 55, 22, 109, 117, 141,
        176, 180,
    ];
    ALWAYS.contains(&id)
        || CAP_BPF.contains(&id)
        || (privilege.perfmon() && CAP_PERFMON.contains(&id))
}

/// `bpf_sk_base_func_proto`.
fn sk_base(id: u32, privilege: Privilege) -> bool {
    const SKC_TO: &[u32] = &[136, 137, 138, 139, 140, 178, 196];
    if SKC_TO.contains(&id) {
        return privilege.perfmon();
    }
    id == 160 || base(id, privilege)
}

fn sk_filter(id: u32, privilege: Privilege) -> bool {
    matches!(id, 26 | 68 | 46 | 122 | 47 | 25) || sk_base(id, privilege)
}

fn cg_skb(id: u32, privilege: Privilege) -> bool {
    // get_retval and set_retval are not offered on the inet ingress/egress hooks.
    if matches!(id, 186 | 187) {
        return false;
    }
    matches!(
        id,
        81 | 95 | 107 | 108 | 25 | 79 | 83 | 128 | 129 | 84 | 85 | 86 | 99 | 96 | 98 | 97
    ) || sk_filter(id, privilege)
}

fn tc(id: u32, privilege: Privilege) -> bool {
    const TC: &[u32] = &[
        9, 26, 68, 39, 28, 40, 135, 10, 11, 13, 17, 18, 19, 31, 32, 50, 38, 43, 20, 21, 29, 30, 23,
        152, 155, 24, 34, 41, 48, 25, 8, 33, 46, 122, 47, 69, 163, 95, 107, 108, 66, 151, 79, 83,
        84, 85, 86, 96, 98, 99, 100, 97, 110, 124, 192, 204, 205, 206, 207,
    ];
    TC.contains(&id) || sk_base(id, privilege)
}

fn xdp(id: u32, privilege: Privilege) -> bool {
    const XDP: &[u32] = &[
        25, 8, 28, 44, 54, 23, 51, 65, 188, 189, 190, 69, 163, 85, 84, 86, 99, 100, 110, 204, 205,
        206, 207,
    ];
    XDP.contains(&id) || sk_base(id, privilege)
}

fn tracing(id: u32, privilege: Privilege) -> bool {
    matches!(id, 8 | 4 | 45 | 173) || base(id, privilege)
}

/// Whether a program of type `t` loaded with `privilege` may call helper `id` (the
/// kernel's `get_func_proto` of the type returns a prototype).
pub fn allowed(id: u32, t: ProgType, privilege: Privilege) -> bool {
    match t {
        ProgType::SocketFilter => sk_filter(id, privilege),
        ProgType::CgroupSkb => cg_skb(id, privilege),
        ProgType::SchedCls | ProgType::SchedAct => tc(id, privilege),
        ProgType::Xdp => xdp(id, privilege),
        ProgType::Kprobe => matches!(id, 25 | 27 | 67 | 58 | 173 | 174) || tracing(id, privilege),
        ProgType::Tracepoint => matches!(id, 25 | 27 | 67 | 174) || tracing(id, privilege),
        // `pe_prog_func_proto`, `raw_tp_prog_func_proto`, `tracing_prog_func_proto`.
        ProgType::PerfEvent => {
            matches!(id, 25 | 27 | 67 | 55 | 119 | 174) || tracing(id, privilege)
        }
        ProgType::RawTracepoint => matches!(id, 25 | 27 | 67 | 174) || tracing(id, privilege),
        ProgType::Tracing(_) => {
            matches!(id, 25 | 27 | 67 | 174)
                || crate::btf_args::tracing_only(id)
                || tracing(id, privilege)
        }
        // `syscall_prog_func_proto`: the base helpers, plus `bpf_sys_bpf` (166),
        // `bpf_btf_find_by_name_kind` (167), `bpf_sys_close` (168), `bpf_kallsyms_lookup_name`
        // (179).
        ProgType::Syscall => matches!(id, 166 | 167 | 168 | 179) || base(id, privilege),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn table_is_sorted_without_duplicates() {
        for w in PROTOS.windows(2) {
            assert!(w[0].id < w[1].id, "{} then {}", w[0].id, w[1].id);
        }
        assert!(PROTOS.iter().all(|p| p.id < FUNC_MAX_ID));
    }

    #[test]
    fn availability_follows_privilege_and_type() {
        let unpriv = Privilege::CapBpfNetAdmin;
        assert!(allowed(1, ProgType::Xdp, unpriv));
        assert!(
            !allowed(6, ProgType::Xdp, unpriv),
            "trace_printk needs CAP_PERFMON"
        );
        assert!(allowed(6, ProgType::Xdp, Privilege::Root));
        assert!(
            !allowed(44, ProgType::SchedCls, unpriv),
            "xdp_adjust_head is XDP only"
        );
        assert!(allowed(81, ProgType::CgroupSkb, unpriv));
        assert!(!allowed(81, ProgType::Xdp, unpriv));
        assert!(!allowed(9, ProgType::SocketFilter, unpriv));
        assert_eq!(proto(2).map(Proto::num_params), Some(4));
        assert_eq!(HELPER_NAMES.len() as u32, FUNC_MAX_ID);
        for p in PROTOS {
            assert_eq!(name(p.id as i32), p.name, "table name of {}", p.id);
        }
        assert_eq!(name(500), "unknown");
    }

    #[test]
    fn printk_and_attach_cookie_have_prototypes() {
        // libbpf's bpf_printk with more than 3 arguments calls trace_vprintk.
        let vprintk = proto(177).expect("trace_vprintk");
        assert!(vprintk.gpl_only);
        assert_eq!(vprintk.num_params(), 4);
        assert!(allowed(177, ProgType::Kprobe, Privilege::Root));
        assert!(!allowed(177, ProgType::Xdp, Privilege::CapBpfNetAdmin));
        let cookie = proto(174).expect("get_attach_cookie");
        assert_eq!(cookie.args[0], Arg::CTX);
        assert!(allowed(174, ProgType::Tracepoint, Privilege::Root));
        assert!(!allowed(174, ProgType::Xdp, Privilege::Root));
    }
}
