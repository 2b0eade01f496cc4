//! Run inputs and results, including the `BPF_PROG_TEST_RUN`-shaped test-run API types.

use std::time::Duration;

use crate::cpu::CpuId;
pub use bpfvm_helpers::redirect::{Nexthop, RedirectTarget};

/// What a run starts with: packet data (and metadata) and/or context bytes.
///
/// For XDP and `__sk_buff` programs, `data` becomes the packet and `ctx` seeds the context
/// structure (pointer fields are always set by bpfvm). For other program types `ctx` is the
/// raw context given in `r1` (its length in `r2`) and `data` must be empty.
///
/// A context is checked as the kernel's test run checks `ctx_in` ([`crate::ctx_in`]): an
/// XDP context gives the metadata length in `data` (the first bytes of `data`, unless
/// `data_meta` holds them) and the packet length in `data_end`, leaves `data_meta` and
/// `egress_ifindex` 0 and names an existing device (the VM's `Net`) in `ingress_ifindex`;
/// a `__sk_buff` context may set only `mark`, `priority`, `ingress_ifindex`, `ifindex`,
/// `cb`, `tstamp`, `wire_len`, `gso_segs`, `gso_size` and `hwtstamp`. Anything else is
/// [`crate::RunError::BadContext`] with the kernel's errno.
///
/// `__sk_buff` programs get what the kernel's skb test run gives them: `data` is an
/// Ethernet frame (at least 14 bytes, plus a whole IPv4 or IPv6 header for those
/// EtherTypes), `protocol`, `pkt_type` and `ifindex` (1) come from `eth_type_trans` on the
/// loopback device, and socket filters and cgroup_skb programs run with the L2 header
/// pulled (`data` and `len` start at the network header); their output packet has 14 zero
/// bytes in its place.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Input {
    /// Packet data (`data .. data_end`).
    pub data: Vec<u8>,
    /// Packet metadata in front of the data (`data_meta .. data`).
    pub data_meta: Vec<u8>,
    /// Context bytes (`ctx_in`).
    pub ctx: Vec<u8>,
    /// The `(cgroup_id, attach_type)` the program runs for: the storage
    /// `bpf_get_local_storage` (helper 81) returns (attach it with `Map::attach`).
    pub cgroup: Option<(u64, u32)>,
}

impl Input {
    /// No packet, no context.
    pub fn empty() -> Input {
        Input::default()
    }

    /// A packet.
    pub fn packet(data: impl Into<Vec<u8>>) -> Input {
        Input {
            data: data.into(),
            ..Input::default()
        }
    }

    /// A raw context.
    pub fn context(ctx: impl Into<Vec<u8>>) -> Input {
        Input {
            ctx: ctx.into(),
            ..Input::default()
        }
    }
}

/// The result of one run.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct RunOutput {
    /// `r0` at exit.
    pub retval: u64,
    /// The packet data after the run (empty for programs without a packet).
    pub data: Vec<u8>,
    /// The context bytes after the run, as the program sees them (guest packet pointers
    /// and all the fields bpfvm fills).
    pub ctx: Vec<u8>,
    /// Text written by `bpf_trace_printk` during the run (at most
    /// [`TRACE_CAPACITY`](crate::limits::TRACE_CAPACITY) bytes).
    pub trace: String,
    /// Where the packet went: the target of the run's last redirect helper call
    /// (`bpf_redirect`, `bpf_redirect_map`, `bpf_redirect_neigh`, `bpf_redirect_peer`) when
    /// the program returned the redirect action (`XDP_REDIRECT`, `TC_ACT_REDIRECT`); `None`
    /// otherwise.
    pub redirect: Option<RedirectTarget>,
    /// Bytes of trace output dropped because the trace was full.
    pub trace_dropped: u64,
}

/// A `BPF_PROG_TEST_RUN`-shaped request.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct TestRun {
    /// The input of every repetition.
    pub input: Input,
    /// How many times to run (0 is treated as 1, as in the kernel).
    pub repeat: u32,
    /// The simulated CPU to run on.
    pub cpu: CpuId,
}

/// The result of a [`TestRun`], like the kernel's `test.retval`, `data_out`, `ctx_out` and
/// `duration`.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct TestRunResult {
    /// `r0` of the last run.
    pub retval: u64,
    /// Packet data after the last run.
    pub data_out: Vec<u8>,
    /// Context after the last run, as the kernel reports it: for `__sk_buff` programs
    /// `ctx_in` with the fields the kernel copies back (`mark`, `priority`, `cb[]`,
    /// `ifindex`, `wire_len`, ...) updated, for XDP `data`/`data_end` as offsets from
    /// `data_meta` (see [`RunOutput::ctx`] for the context exactly as the program saw it).
    pub ctx_out: Vec<u8>,
    /// Mean wall-clock duration of one run.
    pub duration: Duration,
    /// Trace output of all runs, concatenated, up to
    /// [`TRACE_CAPACITY`](crate::limits::TRACE_CAPACITY) bytes for the whole call.
    pub trace: String,
    /// Where the last run sent the packet (see [`RunOutput::redirect`]).
    pub redirect: Option<RedirectTarget>,
    /// Bytes of trace output dropped because the trace was full.
    pub trace_dropped: u64,
}
