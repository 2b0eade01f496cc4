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
}
