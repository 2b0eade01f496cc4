//! `HelperContext`: everything a helper may see during one run.

use std::cell::Cell;
use std::sync::Arc;

use crate::error::HelperError;
use crate::fib::Net;
use crate::maps::ProgramMap;
use crate::memory::{map_handle_index, Memory};
use crate::packet::Packet;

/// The maps of the running program, indexed as in the program's map list.
pub type MapList = Arc<[Arc<dyn ProgramMap>]>;

/// Virtual nanoseconds the clock advances on every read.
pub const CLOCK_STEP_NS: u64 = 1_000;

/// Most bytes of trace output (`bpf_trace_printk`) kept between two
/// [`HelperContext::clear_trace`] calls (one run, or one whole `test_run` call): 64 KiB.
/// Writes that do not fit are dropped whole and counted ([`HelperContext::trace_dropped`]), as
/// the kernel's trace buffer drops events when its reader falls behind.
pub const TRACE_CAPACITY: usize = 64 << 10;

/// Bytes a helper may copy for one instruction of the run's budget: helpers charge
/// `bytes / HELPER_BYTES_PER_INSN` instructions for the guest and map memory they touch
/// ([`HelperContext::charge_bytes`]).
pub const HELPER_BYTES_PER_INSN: usize = 64;

/// Per-run state given to helpers: the simulated CPU, the program's maps, checked guest
/// memory, a virtual clock, a seeded PRNG, the captured trace output and a slot for a helper
/// error to report after the run.
///
/// One context belongs to one simulated CPU and is reused from run to run.
#[derive(Debug)]
pub struct HelperContext {
    cpu: u32,
    ncpus: u32,
    maps: MapList,
    /// The memory the run may touch.
    pub memory: Memory,
    /// The run's packet (none for program types without one): geometry, `sk_buff` state,
    /// redirect target. The VM sets it up; packet helpers read and change it.
    pub packet: Packet,
    net: Arc<Net>,
    clock_ns: u64,
    rng: u64,
    trace: Vec<u8>,
    trace_dropped: u64,
    /// Instructions' worth of helper work not yet charged to the run's budget (a `Cell`, so
    /// helpers holding `&HelperContext` while they borrow its maps can charge too).
    work: Cell<u64>,
    error: Option<HelperError>,
    cgroup: Option<(u64, u32)>,
    /// What the run holds and must give back before it ends (see [`crate::held`]).
    pub(crate) held: crate::held::Held,
    /// The CPU's current task, its kernel memory and the attachment (see [`crate::task`]).
    pub(crate) task: crate::task::TaskEnv,
    /// Where helpers find the packet in the program's context.
    pub(crate) packet_ctx: PacketCtx,
    /// The CPU's simulated call stacks (see [`crate::stack`]).
    pub(crate) stacks: crate::stack::CallStacks,
    /// The CPU's simulated cgroup membership (see [`crate::cgroup`]).
    pub(crate) cgroups: crate::cgroup::CgroupEnv,
}

/// The context a program gets, as far as helpers that read the packet need to know it: where
/// its `data` / `data_end` fields are.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum PacketCtx {
    /// No packet (raw contexts, tracing programs).
    #[default]
    None,
    /// `struct xdp_md`: `data` at offset 0, `data_end` at 4.
    Xdp,
    /// `struct __sk_buff`: `data` at offset 76, `data_end` at 80.
    SkBuff,
}

impl HelperContext {
    /// A context for simulated CPU `cpu` of `ncpus`.
    pub fn new(cpu: u32, ncpus: u32) -> HelperContext {
        HelperContext {
            cpu,
            ncpus,
            maps: Arc::new([]),
            memory: Memory::new(),
            packet: Packet::new(),
            net: Net::shared(),
            clock_ns: 0,
            rng: 0,
            trace: Vec::new(),
            trace_dropped: 0,
            work: Cell::new(0),
            error: None,
            cgroup: None,
            held: crate::held::Held::default(),
            task: crate::task::TaskEnv::for_cpu(cpu),
            packet_ctx: PacketCtx::None,
            stacks: crate::stack::CallStacks::default(),
            cgroups: crate::cgroup::CgroupEnv::default(),
        }
    }

    /// The simulated CPU the program runs on.
    pub fn cpu(&self) -> u32 {
        self.cpu
    }

    /// The number of simulated CPUs.
    pub fn ncpus(&self) -> u32 {
        self.ncpus
    }

    /// The program's maps.
    pub fn maps(&self) -> &MapList {
        &self.maps
    }

    /// The network `bpf_fib_lookup` consults.
    pub fn net(&self) -> &Arc<Net> {
        &self.net
    }

    /// Sets the network `bpf_fib_lookup` consults (a VM shares one between its CPUs).
    pub fn set_net(&mut self, net: Arc<Net>) {
        self.net = net;
    }

    /// Installs the program's maps (does not touch the memory regions).
    pub fn set_maps(&mut self, maps: MapList) {
        self.maps = maps;
    }

    /// Prepares a new run: virtual clock start, PRNG seed, no error, no helper work. The
    /// trace is kept, so the output of repeated runs accumulates (up to [`TRACE_CAPACITY`]);
    /// [`HelperContext::clear_trace`] empties it.
    #[inline]
    pub fn begin_run(&mut self, clock_start_ns: u64, rng_seed: u64) {
        self.clock_ns = clock_start_ns;
        self.rng = rng_seed;
        self.packet.clear_redirect();
        self.work.set(0);
        if self.error.is_some() {
            self.error = None;
        }
    }

    /// Empties the trace output (keeping the buffer's capacity) and its dropped-bytes count.
    #[inline]
    pub fn clear_trace(&mut self) {
        self.trace.clear();
        self.trace_dropped = 0;
    }

    /// Sets the `(cgroup_id, attach_type)` the program runs for (helper 81), or none.
    pub fn set_cgroup(&mut self, cgroup: Option<(u64, u32)>) {
        self.cgroup = cgroup;
    }

    /// Sets what the program's context is, so helpers find the packet in it.
    pub fn set_packet_ctx(&mut self, packet_ctx: PacketCtx) {
        self.packet_ctx = packet_ctx;
    }

    /// What the program's context is (see [`PacketCtx`]).
    pub fn packet_ctx(&self) -> PacketCtx {
        self.packet_ctx
    }

    /// The `(cgroup_id, attach_type)` the program runs for, if any.
    pub fn cgroup(&self) -> Option<(u64, u32)> {
        self.cgroup
    }

    /// Reads the virtual clock and advances it by [`CLOCK_STEP_NS`].
    pub fn now_ns(&mut self) -> u64 {
        let t = self.clock_ns;
        self.clock_ns = self.clock_ns.wrapping_add(CLOCK_STEP_NS);
        t
    }

    /// The next value of the seeded PRNG (splitmix64).
    pub fn next_random(&mut self) -> u64 {
        self.rng = self.rng.wrapping_add(0x9e37_79b9_7f4a_7c15);
        let mut z = self.rng;
        z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
        z ^ (z >> 31)
    }

    /// Appends bytes to this run's trace output, or drops them whole (counting them in
    /// [`HelperContext::trace_dropped`]) when they would take it over [`TRACE_CAPACITY`].
    pub fn trace_write(&mut self, bytes: &[u8]) {
        if self.trace.len() + bytes.len() <= TRACE_CAPACITY {
            self.trace.extend_from_slice(bytes);
        } else {
            self.trace_dropped += bytes.len() as u64;
        }
    }

    /// Bytes of trace output dropped since the last [`HelperContext::clear_trace`] because
    /// the trace was full.
    pub fn trace_dropped(&self) -> u64 {
        self.trace_dropped
    }

    /// Charges the run's instruction budget for `bytes` of memory a helper copied or
    /// touched: one instruction per [`HELPER_BYTES_PER_INSN`] bytes (copies of small keys
    /// and values are free). Engines with a budget subtract the work after each helper call
    /// ([`HelperContext::take_work`]); helpers registered by users may charge their own work.
    #[inline]
    pub fn charge_bytes(&self, bytes: usize) {
        self.charge_work((bytes / HELPER_BYTES_PER_INSN) as u64);
    }

    /// Charges `insns` instructions of helper work to the run's budget.
    #[inline]
    pub fn charge_work(&self, insns: u64) {
        self.work.set(self.work.get().saturating_add(insns));
    }

    /// The helper work charged and not yet taken (in instructions): one load, for the
    /// helper-call path of an engine to test before it takes the work.
    #[inline]
    pub fn pending_work(&self) -> u64 {
        self.work.get()
    }

    /// The helper work charged since the last call (in instructions), resetting it to 0.
    #[inline]
    pub fn take_work(&mut self) -> u64 {
        self.work.replace(0)
    }

    /// This run's trace output so far.
    pub fn trace(&self) -> &[u8] {
        &self.trace
    }

    /// Takes the trace output, leaving it empty.
    pub fn take_trace(&mut self) -> Vec<u8> {
        std::mem::take(&mut self.trace)
    }

    /// Records a helper error to report after the run (the first one wins).
    pub fn set_error(&mut self, error: HelperError) {
        self.error.get_or_insert(error);
    }

    /// Takes the recorded helper error, if any.
    pub fn take_error(&mut self) -> Option<HelperError> {
        self.error.take()
    }

    /// Resolves a map handle argument (`(3 << 52) | index`) to the map's index and the map.
    pub fn map_arg(
        &self,
        helper: &str,
        handle: u64,
    ) -> Result<(u32, Arc<dyn ProgramMap>), HelperError> {
        if let Some(idx) = map_handle_index(handle) {
            if let Some(m) = self.maps.get(idx as usize) {
                return Ok((idx, Arc::clone(m)));
            }
        }
        Err(HelperError::BadMap {
            helper: helper.to_string(),
            handle,
        })
    }

    /// Copies `out.len()` bytes of guest memory at `addr` (a helper argument) into `out`,
    /// charging the copy to the run's budget ([`HelperContext::charge_bytes`]).
    pub fn read_arg(&self, helper: &str, addr: u64, out: &mut [u8]) -> Result<(), HelperError> {
        self.charge_bytes(out.len());
        self.memory
            .read_bytes(addr, out)
            .map_err(|fault| HelperError::Memory {
                helper: helper.to_string(),
                fault: Box::new(fault),
            })
    }

    /// The address the program sees for the value in arena slot `slot` of map `index` (see
    /// [`Memory::value_addr`]).
    #[inline]
    pub fn value_addr(&self, index: u32, slot: usize) -> u64 {
        self.memory.value_addr(index, slot)
    }
}
