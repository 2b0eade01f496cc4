//! `HelperContext`: everything a helper may see during one run.

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
    error: Option<HelperError>,
    cgroup: Option<(u64, u32)>,
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
            error: None,
            cgroup: None,
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

    /// Prepares a new run: virtual clock start, PRNG seed, no error. The trace is kept, so
    /// the output of repeated runs accumulates; [`HelperContext::clear_trace`] empties it.
    #[inline]
    pub fn begin_run(&mut self, clock_start_ns: u64, rng_seed: u64) {
        self.clock_ns = clock_start_ns;
        self.rng = rng_seed;
        self.packet.clear_redirect();
        if self.error.is_some() {
            self.error = None;
        }
    }

    /// Empties the trace output (keeping the buffer's capacity).
    #[inline]
    pub fn clear_trace(&mut self) {
        self.trace.clear();
    }

    /// Sets the `(cgroup_id, attach_type)` the program runs for (helper 81), or none.
    pub fn set_cgroup(&mut self, cgroup: Option<(u64, u32)>) {
        self.cgroup = cgroup;
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

    /// Appends bytes to this run's trace output.
    pub fn trace_write(&mut self, bytes: &[u8]) {
        self.trace.extend_from_slice(bytes);
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

    /// Copies `out.len()` bytes of guest memory at `addr` (a helper argument) into `out`.
    pub fn read_arg(&self, helper: &str, addr: u64, out: &mut [u8]) -> Result<(), HelperError> {
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
