//! Helper ids, as numbered in the kernel's `enum bpf_func_id`.

/// A helper id (`BPF_FUNC_*`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct HelperId(pub u32);

impl HelperId {
    /// `bpf_map_lookup_elem`.
    #[doc(alias = "BPF_FUNC_map_lookup_elem")]
    pub const MAP_LOOKUP_ELEM: HelperId = HelperId(1);
    /// `bpf_map_update_elem`.
    #[doc(alias = "BPF_FUNC_map_update_elem")]
    pub const MAP_UPDATE_ELEM: HelperId = HelperId(2);
    /// `bpf_map_delete_elem`.
    #[doc(alias = "BPF_FUNC_map_delete_elem")]
    pub const MAP_DELETE_ELEM: HelperId = HelperId(3);
    /// `bpf_ktime_get_ns`.
    #[doc(alias = "BPF_FUNC_ktime_get_ns")]
    pub const KTIME_GET_NS: HelperId = HelperId(5);
    /// `bpf_trace_printk`.
    #[doc(alias = "BPF_FUNC_trace_printk")]
    pub const TRACE_PRINTK: HelperId = HelperId(6);
    /// `bpf_get_prandom_u32`.
    #[doc(alias = "BPF_FUNC_get_prandom_u32")]
    pub const GET_PRANDOM_U32: HelperId = HelperId(7);
    /// `bpf_get_smp_processor_id`.
    #[doc(alias = "BPF_FUNC_get_smp_processor_id")]
    pub const GET_SMP_PROCESSOR_ID: HelperId = HelperId(8);
    /// `bpf_get_local_storage`.
    #[doc(alias = "BPF_FUNC_get_local_storage")]
    pub const GET_LOCAL_STORAGE: HelperId = HelperId(81);
    /// `bpf_ktime_get_boot_ns`.
    #[doc(alias = "BPF_FUNC_ktime_get_boot_ns")]
    pub const KTIME_GET_BOOT_NS: HelperId = HelperId(125);
    /// `bpf_per_cpu_ptr`.
    #[doc(alias = "BPF_FUNC_per_cpu_ptr")]
    pub const PER_CPU_PTR: HelperId = HelperId(153);
    /// `bpf_this_cpu_ptr`.
    #[doc(alias = "BPF_FUNC_this_cpu_ptr")]
    pub const THIS_CPU_PTR: HelperId = HelperId(154);
    /// `bpf_map_lookup_percpu_elem`.
    #[doc(alias = "BPF_FUNC_map_lookup_percpu_elem")]
    pub const MAP_LOOKUP_PERCPU_ELEM: HelperId = HelperId(195);
    /// `bpf_get_current_pid_tgid`.
    #[doc(alias = "BPF_FUNC_get_current_pid_tgid")]
    pub const GET_CURRENT_PID_TGID: HelperId = HelperId(14);
    /// `bpf_get_current_uid_gid`.
    #[doc(alias = "BPF_FUNC_get_current_uid_gid")]
    pub const GET_CURRENT_UID_GID: HelperId = HelperId(15);
    /// `bpf_get_current_comm`.
    #[doc(alias = "BPF_FUNC_get_current_comm")]
    pub const GET_CURRENT_COMM: HelperId = HelperId(16);
    /// `bpf_perf_event_output`.
    #[doc(alias = "BPF_FUNC_perf_event_output")]
    pub const PERF_EVENT_OUTPUT: HelperId = HelperId(25);
    /// `bpf_get_current_task`.
    #[doc(alias = "BPF_FUNC_get_current_task")]
    pub const GET_CURRENT_TASK: HelperId = HelperId(35);
    /// `bpf_map_push_elem`.
    #[doc(alias = "BPF_FUNC_map_push_elem")]
    pub const MAP_PUSH_ELEM: HelperId = HelperId(87);
    /// `bpf_map_pop_elem`.
    #[doc(alias = "BPF_FUNC_map_pop_elem")]
    pub const MAP_POP_ELEM: HelperId = HelperId(88);
    /// `bpf_map_peek_elem`.
    #[doc(alias = "BPF_FUNC_map_peek_elem")]
    pub const MAP_PEEK_ELEM: HelperId = HelperId(89);
    /// `bpf_spin_lock`.
    #[doc(alias = "BPF_FUNC_spin_lock")]
    pub const SPIN_LOCK: HelperId = HelperId(93);
    /// `bpf_spin_unlock`.
    #[doc(alias = "BPF_FUNC_spin_unlock")]
    pub const SPIN_UNLOCK: HelperId = HelperId(94);
    /// `bpf_probe_read_user`.
    #[doc(alias = "BPF_FUNC_probe_read_user")]
    pub const PROBE_READ_USER: HelperId = HelperId(112);
    /// `bpf_probe_read_kernel`.
    #[doc(alias = "BPF_FUNC_probe_read_kernel")]
    pub const PROBE_READ_KERNEL: HelperId = HelperId(113);
    /// `bpf_probe_read_user_str`.
    #[doc(alias = "BPF_FUNC_probe_read_user_str")]
    pub const PROBE_READ_USER_STR: HelperId = HelperId(114);
    /// `bpf_probe_read_kernel_str`.
    #[doc(alias = "BPF_FUNC_probe_read_kernel_str")]
    pub const PROBE_READ_KERNEL_STR: HelperId = HelperId(115);
    /// `bpf_xdp_output`.
    #[doc(alias = "BPF_FUNC_xdp_output")]
    pub const XDP_OUTPUT: HelperId = HelperId(121);
    /// `bpf_ringbuf_output`.
    #[doc(alias = "BPF_FUNC_ringbuf_output")]
    pub const RINGBUF_OUTPUT: HelperId = HelperId(130);
    /// `bpf_ringbuf_reserve`.
    #[doc(alias = "BPF_FUNC_ringbuf_reserve")]
    pub const RINGBUF_RESERVE: HelperId = HelperId(131);
    /// `bpf_ringbuf_submit`.
    #[doc(alias = "BPF_FUNC_ringbuf_submit")]
    pub const RINGBUF_SUBMIT: HelperId = HelperId(132);
    /// `bpf_ringbuf_discard`.
    #[doc(alias = "BPF_FUNC_ringbuf_discard")]
    pub const RINGBUF_DISCARD: HelperId = HelperId(133);
    /// `bpf_ringbuf_query`.
    #[doc(alias = "BPF_FUNC_ringbuf_query")]
    pub const RINGBUF_QUERY: HelperId = HelperId(134);
    /// `bpf_get_attach_cookie`.
    #[doc(alias = "BPF_FUNC_get_attach_cookie")]
    pub const GET_ATTACH_COOKIE: HelperId = HelperId(174);
    /// `bpf_trace_vprintk`.
    #[doc(alias = "BPF_FUNC_trace_vprintk")]
    pub const TRACE_VPRINTK: HelperId = HelperId(177);
    /// `bpf_ktime_get_tai_ns`.
    #[doc(alias = "BPF_FUNC_ktime_get_tai_ns")]
    pub const KTIME_GET_TAI_NS: HelperId = HelperId(208);
    /// `bpf_for_each_map_elem`.
    #[doc(alias = "BPF_FUNC_for_each_map_elem")]
    pub const FOR_EACH_MAP_ELEM: HelperId = HelperId(164);
    /// `bpf_loop`.
    #[doc(alias = "BPF_FUNC_loop")]
    pub const LOOP: HelperId = HelperId(181);
}
