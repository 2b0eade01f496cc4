//! The run-time limits of a [`Vm`](crate::Vm): what bounds the memory and time any input can
//! cost. Map memory is limited per VM by [`VmConfig::map_memory_limit`](crate::VmConfig)
//! (default [`DEFAULT_MAP_MEMORY_LIMIT`], 1 GiB) and runs by the instruction budget, which
//! helpers are charged for by the bytes they copy ([`HELPER_BYTES_PER_INSN`]).
//!
//! | limit | value | over it | kernel |
//! |---|---|---|---|
//! | packet of an `__sk_buff` program (`data_meta` + `data`) | [`SKB_MAX_DATA`] = 3,712 bytes | [`RunError::InputTooLarge`](crate::RunError), `EINVAL` | `bpf_test_init`: `PAGE_SIZE` minus headroom and `skb_shared_info` |
//! | packet of an XDP program (`data`, after the metadata) | [`XDP_MAX_DATA`] = 73,152 bytes | `InputTooLarge`, `ENOMEM` | linear part (3,520, or less with `ctx_in`'s `data_end`) plus `MAX_SKB_FRAGS` (17) pages of fragments |
//! | packet of an XDP or `__sk_buff` program, at least | 14 bytes (an Ethernet header; `__sk_buff` programs also their IPv4/IPv6 header by EtherType) | [`RunError::BadInput`](crate::RunError), `EINVAL` | `bpf_test_init`'s `ETH_HLEN` check |
//! | raw context of other program types | [`MAX_RAW_CONTEXT`] = 65,535 bytes | `InputTooLarge`, `EINVAL` | the syscall program test run's `ctx_size_in` limit (`U16_MAX`) |
//! | trace output per run (per `test_run` call) | [`TRACE_CAPACITY`] = 64 KiB | later writes dropped and counted (`RunOutput::trace_dropped`) | the trace buffer drops events too |
//! | results collected by `Vm::run_on_all` | [`MAX_COLLECTED_RESULTS`] = 2^27 return values (1 GiB) | [`RunError::TooManyResults`](crate::RunError); stream them with `Vm::run_on_all_with` | — |
//!
//! The kernel's packet limits were measured with `BPF_PROG_TEST_RUN` on Linux 6.18 (x86_64,
//! 4 KiB pages): 3,712 bytes pass and 3,713 give `EINVAL` for `SCHED_CLS`, `SOCKET_FILTER` and
//! `CGROUP_SKB`; 73,152 pass and 73,153 give `ENOMEM` for XDP (8 + 73,152 pass with 8 bytes of
//! metadata, which come out of the headroom; with `ctx_in`'s `data_end` = 100, 100 + 17 × 4,096).
//! XDP packets longer than the linear part are multi-buffer (the rest in fragments,
//! [`bpfvm_helpers::frags`]): `data_end - data` is the linear part's length.

pub use bpfvm_helpers::context::{HELPER_BYTES_PER_INSN, TRACE_CAPACITY};
pub use bpfvm_maps::DEFAULT_MAP_MEMORY_LIMIT;

/// Largest packet (`data_meta` + `data`) of an `__sk_buff` program's run, as the kernel's skb
/// test run: `PAGE_SIZE - (NET_SKB_PAD + NET_IP_ALIGN) - SKB_DATA_ALIGN(sizeof(struct
/// skb_shared_info))` = 4096 - 64 - 320.
pub const SKB_MAX_DATA: usize = 3712;

/// Largest packet data (`data`, after the metadata, which comes out of the headroom) of an
/// XDP program's run, as the kernel's XDP test run: a linear part of `PAGE_SIZE -
/// XDP_PACKET_HEADROOM - SKB_DATA_ALIGN(sizeof(struct skb_shared_info))` = 3,520 bytes plus
/// `MAX_SKB_FRAGS` = 17 pages of fragments. A shorter linear part (`ctx_in`'s `data_end`)
/// lowers it: the fragments still hold 17 pages at most.
pub const XDP_MAX_DATA: usize = 3520 + 17 * 4096;

/// Largest raw context (program types without a packet): 65,535 bytes, the largest context
/// a kernel test run takes (`BPF_PROG_TYPE_SYSCALL`'s `ctx_size_in`).
pub const MAX_RAW_CONTEXT: usize = u16::MAX as usize;

/// Most return values [`Vm::run_on_all`](crate::Vm::run_on_all) collects (all CPUs together):
/// 2^27, 1 GiB of `u64`s.
pub const MAX_COLLECTED_RESULTS: u64 = 1 << 27;
