//! Simulated CPUs: [`CpuId`] and the per-CPU [`Lane`] a run executes in.
//!
//! A lane is exclusive (one run at a time per simulated CPU, as BPF runs with migration
//! disabled) and reusable: its stack, context and packet buffers and its helper context are
//! allocated once and reused by every run, so a run allocates nothing.

use bpfvm_helpers::memory::{guest_addr, REGION_CTX, REGION_STACK};
use bpfvm_helpers::{HelperContext, MapList, PacketProgram};

/// Bytes of one stack frame (`MAX_BPF_STACK`).
pub const FRAME_SIZE: usize = 512;
/// Most frames of bpf-to-bpf calls, the main program included (`MAX_CALL_FRAMES`).
pub const MAX_FRAMES: usize = 8;
/// Bytes of the stack region (all frames).
pub const STACK_SIZE: usize = FRAME_SIZE * MAX_FRAMES;

/// Virtual nanoseconds between the clock starts of consecutive runs on a CPU (10 ms).
pub const CLOCK_PER_RUN: u64 = 10_000_000;
/// Distance between the PRNG states of consecutive runs on a CPU: 2^32 splitmix64 steps.
const RNG_PER_RUN: u64 = 0x9e37_79b9_7f4a_7c15u64.wrapping_mul(1 << 32);

/// A simulated CPU number, `0 .. N` (the same type the maps use).
pub use bpfvm_maps::CpuId;

/// splitmix64's output function.
pub(crate) fn mix(mut z: u64) -> u64 {
    z = z.wrapping_add(0x9e37_79b9_7f4a_7c15);
    z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
    z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
    z ^ (z >> 31)
}

/// A saved caller frame of a bpf-to-bpf call.
#[derive(Debug, Clone, Copy, Default)]
pub(crate) struct Frame {
    pub(crate) ret: usize,
    pub(crate) saved: [u64; 4],
    pub(crate) fp: u64,
}

/// The reusable state of one simulated CPU.
#[derive(Debug)]
pub struct Lane {
    pub(crate) helper_ctx: HelperContext,
    pub(crate) frames: [Frame; MAX_FRAMES],
    /// Frames the last run used (their bytes may be dirty).
    pub(crate) dirty_frames: usize,
    /// Stack frames accessible between runs (the window of the stack region).
    stack_frames: usize,
    installed_program: u64,
    pub(crate) ctx_len: usize,
    ctx_installed: bool,
    pub(crate) has_packet: bool,
    pub(crate) zero_stack: bool,
    /// Virtual clock start and PRNG state of the next run on this CPU: derived from the
    /// seed and the CPU, then advanced by [`CLOCK_PER_RUN`] and [`RNG_PER_RUN`] per run.
    next_clock: u64,
    next_rng: u64,
}

impl Lane {
    pub(crate) fn new(cpu: u32, ncpus: u32, zero_stack: bool, seed: u64) -> Lane {
        let mut helper_ctx = HelperContext::new(cpu, ncpus);
        helper_ctx
            .memory
            .set_owned_region(REGION_STACK, 0, STACK_SIZE, true)
            .fill(0);
        // Between runs only frame 0 is accessible (the interpreter restores this).
        helper_ctx
            .memory
            .set_owned_window(REGION_STACK, STACK_SIZE - FRAME_SIZE);
        Lane {
            helper_ctx,
            frames: [Frame::default(); MAX_FRAMES],
            dirty_frames: 0,
            stack_frames: 1,
            installed_program: 0,
            ctx_len: 0,
            ctx_installed: false,
            has_packet: false,
            zero_stack,
            next_clock: mix(seed ^ ((cpu as u64) << 48)) >> 24,
            next_rng: mix(mix(seed) ^ mix((cpu as u64 + 1) << 40)),
        }
    }

    /// Puts the virtual clock and PRNG back where a new lane for `seed` starts them, so the
    /// next runs repeat exactly (the race explorer replays schedules on the same lanes).
    pub(crate) fn rewind(&mut self, seed: u64) {
        let cpu = self.helper_ctx.cpu();
        self.next_clock = mix(seed ^ ((cpu as u64) << 48)) >> 24;
        self.next_rng = mix(mix(seed) ^ mix((cpu as u64 + 1) << 40));
    }

    /// The simulated CPU of this lane.
    pub fn cpu(&self) -> CpuId {
        CpuId(self.helper_ctx.cpu())
    }

    /// The helper context (memory, trace, clock) of the current or last run.
    pub fn helper_ctx(&mut self) -> &mut HelperContext {
        &mut self.helper_ctx
    }

    /// Begins the next run on this CPU: its virtual clock start and PRNG state (derived from
    /// the seed, the CPU and the run's index on it), no pending helper error. The trace
    /// buffer is left as it is (cleared once per API call, so repetitions append to it).
    #[inline]
    pub fn begin_run(&mut self) {
        self.helper_ctx.begin_run(self.next_clock, self.next_rng);
        self.next_clock = self.next_clock.wrapping_add(CLOCK_PER_RUN);
        self.next_rng = self.next_rng.wrapping_add(RNG_PER_RUN);
    }

    /// The trace output collected since the last clear, as text (invalid UTF-8 replaced).
    /// The buffer keeps its capacity for the next runs.
    #[inline]
    pub(crate) fn trace_out(&self) -> String {
        let t = self.helper_ctx.trace();
        if t.is_empty() {
            String::new()
        } else {
            String::from_utf8_lossy(t).into_owned()
        }
    }

    /// Fills the context region with `len` bytes from `fill`.
    #[inline]
    pub(crate) fn set_ctx(&mut self, len: usize, fill: impl FnOnce(&mut [u8])) {
        if len == 0 && self.ctx_len == 0 && self.ctx_installed {
            return;
        }
        let bytes = self
            .helper_ctx
            .memory
            .set_owned_region(REGION_CTX, 0, len, true);
        fill(bytes);
        self.ctx_len = len;
        self.ctx_installed = true;
    }

    /// Sets up the packet of an XDP run: `meta` then `data`, laid out as the kernel's XDP
    /// test run does (see [`bpfvm_helpers::packet`]): the first `linear` bytes of `data` in
    /// the linear part, the rest in fragments.
    pub(crate) fn set_xdp_packet(
        &mut self,
        meta: &[u8],
        data: &[u8],
        linear: usize,
    ) -> Result<(), bpfvm_helpers::frags::TooManyFrags> {
        let ctx = &mut self.helper_ctx;
        self.has_packet = true;
        ctx.packet.setup_xdp(&mut ctx.memory, meta, data, linear)
    }

    /// Sets up the packet of an `__sk_buff` run from an Ethernet frame; `pulled` bytes of
    /// L2 header are in front of `data` (and pushed back zeroed in the output).
    pub(crate) fn set_skb_packet(
        &mut self,
        prog: PacketProgram,
        frame: &[u8],
        pulled: usize,
        protocol: u16,
        ifindex: u32,
    ) {
        let ctx = &mut self.helper_ctx;
        ctx.packet
            .setup_skb(&mut ctx.memory, prog, frame, pulled, protocol, ifindex);
        self.has_packet = true;
    }

    /// Removes the packet region.
    pub(crate) fn clear_packet(&mut self) {
        let ctx = &mut self.helper_ctx;
        ctx.packet.clear(&mut ctx.memory);
        self.has_packet = false;
    }

    /// The packet after a run as `BPF_PROG_TEST_RUN` reports it (see
    /// [`bpfvm_helpers::Packet::output`]).
    #[inline]
    pub(crate) fn packet_out(&mut self) -> Vec<u8> {
        if !self.has_packet {
            return Vec::new();
        }
        let ctx = &mut self.helper_ctx;
        ctx.packet.output(&mut ctx.memory)
    }

    /// Where the run sent its packet: the redirect target when `retval` is the redirect
    /// action of program type `t`.
    #[inline]
    pub(crate) fn redirect(
        &self,
        t: crate::ProgramType,
        retval: u64,
    ) -> Option<bpfvm_helpers::RedirectTarget> {
        use bpfvm_helpers::redirect::{TC_ACT_REDIRECT, XDP_REDIRECT};
        let action = match t {
            crate::ProgramType::Xdp => XDP_REDIRECT,
            crate::ProgramType::SchedCls | crate::ProgramType::SchedAct => TC_ACT_REDIRECT,
            _ => return None,
        };
        if retval as u32 as u64 != action {
            return None;
        }
        self.helper_ctx.packet.redirect()
    }

    /// The context bytes after a run.
    #[inline]
    pub(crate) fn ctx_out(&mut self) -> Vec<u8> {
        let n = self.ctx_len;
        if n == 0 {
            return Vec::new();
        }
        self.helper_ctx
            .memory
            .owned_bytes_mut(REGION_CTX)
            .map(|b| b[..n].to_vec())
            .unwrap_or_default()
    }

    /// The context after a run as `BPF_PROG_TEST_RUN` reports it in `ctx_out`
    /// ([`crate::ctx_layout::test_run_ctx_out`]).
    #[inline]
    pub(crate) fn test_run_ctx_out(&mut self, t: crate::ProgramType, ctx_in: &[u8]) -> Vec<u8> {
        let n = self.ctx_len;
        if n == 0 {
            return Vec::new();
        }
        match self.helper_ctx.memory.owned_bytes_mut(REGION_CTX) {
            Some(b) => crate::ctx_layout::test_run_ctx_out(t, &b[..n], ctx_in),
            None => Vec::new(),
        }
    }

    /// Guest address of the context (`r1` at entry).
    pub(crate) fn ctx_addr(&self) -> u64 {
        guest_addr(REGION_CTX, 0)
    }

    /// Zeroes the frames the last run used, when configured to (so runs cannot see earlier
    /// runs' data). Only frame 0 is accessible between runs.
    #[inline]
    pub(crate) fn prepare_stack(&mut self) {
        let dirty = std::mem::take(&mut self.dirty_frames);
        if self.zero_stack && dirty > 0 {
            if let Some(s) = self.helper_ctx.memory.owned_bytes_mut(REGION_STACK) {
                s[STACK_SIZE - dirty * FRAME_SIZE..].fill(0);
            }
        }
    }

    /// Makes the top `frames` stack frames accessible (the current one and its callers) at
    /// the start of a run: 1 for programs that use the stack, 0 for those that do not.
    /// Nothing to do when the last run left it so.
    #[inline]
    pub(crate) fn set_stack_depth(&mut self, frames: usize) {
        if self.stack_frames != frames {
            self.reset_stack_depth(frames);
        }
    }

    /// [`Lane::set_stack_depth`] after a run that may have moved the window itself (calls).
    #[cold]
    pub(crate) fn reset_stack_depth(&mut self, frames: usize) {
        self.helper_ctx
            .memory
            .set_owned_window(REGION_STACK, STACK_SIZE - frames * FRAME_SIZE);
        self.stack_frames = frames;
    }

    /// Makes the next [`Lane::install_maps`] install its maps whatever was installed
    /// (after a run whose tail calls installed other programs' maps).
    #[inline]
    pub(crate) fn forget_maps(&mut self) {
        self.installed_program = 0;
    }

    /// Installs the value arenas of `maps` (see [`bpfvm_helpers::Memory::install_maps`]),
    /// unless program `id`'s maps are already installed. `false` when they need more
    /// regions than an address can name (the program's preparation refuses that first).
    #[inline]
    pub(crate) fn install_maps(&mut self, id: u64, maps: &MapList) -> bool {
        if self.installed_program == id {
            return true;
        }
        if self.helper_ctx.memory.install_maps(maps).is_none() {
            return false;
        }
        self.helper_ctx.set_maps(maps.clone());
        self.installed_program = id;
        true
    }
}
