//! `Vm`: N simulated CPUs, loaded programs, and the run APIs.

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::Instant;

use bpfvm_helpers::fib::Net;
use bpfvm_helpers::registry::RegisterError;
use bpfvm_helpers::{Helper, HelperId, KfuncFlags, KfuncRegisterError, Registry};
use bpfvm_maps::{Map, MapError, MapMemory, MapSpec, DEFAULT_MAP_MEMORY_LIMIT};
use rayon::prelude::*;

use crate::cpu::{CpuId, Lane};
use crate::ctx_layout::{fill_sk_buff, fill_xdp_md, SK_BUFF_SIZE, XDP_MD_SIZE};
use crate::engine::{self, Engine, RunEnv};
use crate::error::{PrepareError, RunError};
use crate::eth::{min_frame_len, sees_l2_header, EthInfo, SockInfo, ETH_HLEN};
use crate::kernel_verify::{Privilege, VerifierMode};
use crate::limits::{MAX_COLLECTED_RESULTS, MAX_RAW_CONTEXT, SKB_MAX_DATA};
use crate::program::Program;
use crate::run::{Input, RunOutput, TestRun, TestRunResult};
use crate::ProgramType;

/// Configuration of a [`Vm`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct VmConfig {
    /// Number of simulated CPUs (≥ 1; never read from the host). Default 4.
    pub ncpus: u32,
    /// Instructions a run may execute before it ends with
    /// [`RunError::BudgetExhausted`]. Default 1,000,000.
    pub budget: u64,
    /// Seed of the virtual clock and PRNG. Runs are deterministic: the same seed and the same
    /// sequence of inputs on a CPU give the same results. Default 0.
    pub seed: u64,
    /// Zero the stack before every run, so no run sees an earlier run's data. Default true.
    pub zero_stack: bool,
    /// Let the rbpf engines run programs with backward jumps. rbpf has no instruction budget,
    /// so such a program may never end. Default false (refused at prepare time).
    pub rbpf_allow_loops: bool,
    /// Which checks [`Vm::load`] applies. Default [`VerifierMode::Kernel`]: the Linux
    /// kernel's verdict.
    pub verifier: VerifierMode,
    /// The loader's privileges for [`VerifierMode::Kernel`]. Default
    /// [`Privilege::CapBpfNetAdmin`] (the stricter verdict); [`Privilege::Root`] as root.
    pub privilege: Privilege,
    /// Bytes of map memory (value arenas and bookkeeping) that the maps made through this VM
    /// ([`Vm::map_memory`], [`Vm::create_map`], `Object::create_maps_in`) may hold together; a
    /// map that would go over it is refused with `ENOMEM`, as a memory cgroup would. Default
    /// [`DEFAULT_MAP_MEMORY_LIMIT`] (1 GiB).
    pub map_memory_limit: u64,
}

impl Default for VmConfig {
    fn default() -> VmConfig {
        VmConfig {
            ncpus: 4,
            budget: 1_000_000,
            seed: 0,
            zero_stack: true,
            rbpf_allow_loops: false,
            verifier: VerifierMode::Kernel,
            privilege: Privilege::CapBpfNetAdmin,
            map_memory_limit: DEFAULT_MAP_MEMORY_LIMIT,
        }
    }
}

/// Builds a [`Vm`] with its configuration and helpers.
#[derive(Debug, Clone)]
pub struct VmBuilder {
    config: VmConfig,
    registry: Registry,
    net: Option<Arc<Net>>,
}

impl VmBuilder {
    /// Sets the number of simulated CPUs (clamped to at least 1).
    pub fn cpus(mut self, ncpus: u32) -> VmBuilder {
        self.config.ncpus = ncpus.max(1);
        self
    }

    /// Sets the instruction budget per run.
    pub fn budget(mut self, budget: u64) -> VmBuilder {
        self.config.budget = budget;
        self
    }

    /// Sets the seed of the virtual clock and PRNG.
    pub fn seed(mut self, seed: u64) -> VmBuilder {
        self.config.seed = seed;
        self
    }

    /// Chooses the load-time checks ([`VerifierMode`]).
    pub fn verifier(mut self, mode: VerifierMode) -> VmBuilder {
        self.config.verifier = mode;
        self
    }

    /// Sets the loader's privileges for the kernel's verdict.
    pub fn privilege(mut self, privilege: Privilege) -> VmBuilder {
        self.config.privilege = privilege;
        self
    }

    /// Sets the map memory limit in bytes ([`VmConfig::map_memory_limit`]).
    pub fn map_memory_limit(mut self, bytes: u64) -> VmBuilder {
        self.config.map_memory_limit = bytes;
        self
    }

    /// Replaces the whole configuration.
    pub fn config(mut self, config: VmConfig) -> VmBuilder {
        self.config = config;
        self.config.ncpus = self.config.ncpus.max(1);
        self
    }

    /// Registers (or replaces) helper `id`.
    pub fn helper(
        mut self,
        id: u32,
        name: &'static str,
        helper: impl Helper + 'static,
    ) -> Result<VmBuilder, RegisterError> {
        self.registry.register(HelperId(id), name, helper)?;
        Ok(self)
    }

    /// Registers (or replaces) the kernel function `name`, which programs call by name
    /// (`extern ... name(...) __ksym;`), with its `KF_*` flags; see [`crate::kfunc`].
    pub fn kfunc(
        mut self,
        name: &'static str,
        flags: KfuncFlags,
        kfunc: impl Helper + 'static,
    ) -> Result<VmBuilder, KfuncRegisterError> {
        self.registry.register_kfunc(name, flags, kfunc)?;
        Ok(self)
    }

    /// Shares `net` (interfaces, routes, neighbours) with the VM: what `bpf_fib_lookup`
    /// consults. Without it the VM gets a fresh network ([`Vm::net`]).
    pub fn net(mut self, net: Arc<Net>) -> VmBuilder {
        self.net = Some(net);
        self
    }

    /// Builds the VM.
    pub fn build(self) -> Vm {
        let vm = Vm::with_registry(self.config, self.registry);
        match self.net {
            Some(net) => vm.with_net(net),
            None => vm,
        }
    }
}

/// A program prepared for its engine, shareable across threads.
#[derive(Debug, Clone)]
pub struct LoadedProgram {
    pub(crate) inner: Arc<Loaded>,
}

#[derive(Debug)]
pub(crate) struct Loaded {
    pub(crate) program: Program,
    /// Why the kernel's verdict is unknown, when bpfvm's verifier met something it does
    /// not model (the program loaded anyway).
    unverified: Option<String>,
    /// The end of the furthest context access the kernel's verifier found (0 when it
    /// did not run): raw_tracepoint and syscall test runs need that much context.
    pub(crate) max_ctx_offset: u32,
    pub(crate) engine: Box<dyn Engine>,
    /// The program's id (what a PROG_ARRAY lookup from the host answers).
    pub(crate) id: u32,
}

impl LoadedProgram {
    /// The program.
    pub fn program(&self) -> &Program {
        &self.inner.program
    }

    /// `Some(why)` when the program was loaded without the kernel's verdict: bpfvm's
    /// verifier met a construct it does not model (a helper, kfunc or callback), so it did
    /// not refuse the program; whether the kernel accepts it is unknown. Run-time checks
    /// confine it as any program.
    pub fn unverified(&self) -> Option<&str> {
        self.inner.unverified.as_deref()
    }
}

/// A virtual machine with N simulated CPUs.
///
/// Each CPU is an exclusive lane: at most one run at a time, as BPF programs run with
/// migration disabled. Different CPUs run in parallel on rayon's worker threads.
#[derive(Debug)]
pub struct Vm {
    config: VmConfig,
    lanes: Box<[LaneSlot]>,
    registry: Arc<Registry>,
    net: Arc<Net>,
    map_memory: MapMemory,
}

/// One CPU's lane on cache lines of its own (128 bytes: a line and its prefetch neighbour),
/// so that simulated CPUs running on different host threads never write the same line.
#[derive(Debug)]
#[repr(align(128))]
struct LaneSlot(Mutex<Lane>);

impl Default for Vm {
    fn default() -> Vm {
        Vm::new(VmConfig::default())
    }
}

impl Vm {
    /// A VM with the built-in helpers.
    pub fn new(config: VmConfig) -> Vm {
        Vm::with_registry(config, Registry::with_builtins())
    }

    /// A builder starting from the default configuration and the built-in helpers.
    pub fn builder() -> VmBuilder {
        VmBuilder {
            config: VmConfig::default(),
            registry: Registry::with_builtins(),
            net: None,
        }
    }

    /// A VM with the given helpers.
    pub fn with_registry(mut config: VmConfig, registry: Registry) -> Vm {
        config.ncpus = config.ncpus.max(1);
        let net = Net::shared();
        let lanes = (0..config.ncpus)
            .map(|cpu| {
                let mut lane = Lane::new(cpu, config.ncpus, config.zero_stack, config.seed);
                lane.helper_ctx().set_net(Arc::clone(&net));
                LaneSlot(Mutex::new(lane))
            })
            .collect();
        Vm {
            map_memory: MapMemory::new(config.map_memory_limit),
            config,
            lanes,
            registry: Arc::new(registry),
            net,
        }
    }

    /// The same VM with `net` as its network (see [`VmBuilder::net`]).
    fn with_net(mut self, net: Arc<Net>) -> Vm {
        for slot in self.lanes.iter_mut() {
            let lane = slot.0.get_mut().unwrap_or_else(|p| p.into_inner());
            lane.helper_ctx().set_net(Arc::clone(&net));
        }
        self.net = net;
        self
    }

    /// The network `bpf_fib_lookup` consults: add interfaces, addresses, routes and
    /// neighbours to it at any time.
    pub fn net(&self) -> &Arc<Net> {
        &self.net
    }

    /// Number of simulated CPUs.
    pub fn ncpus(&self) -> u32 {
        self.config.ncpus
    }

    /// The configuration.
    pub fn config(&self) -> &VmConfig {
        &self.config
    }

    /// The helper table.
    pub fn registry(&self) -> &Registry {
        &self.registry
    }

    /// The memory account of this VM's maps (limit [`VmConfig::map_memory_limit`]): pass it
    /// to `Map::create_in` or `Object::create_maps_in` so their maps count against the limit.
    pub fn map_memory(&self) -> &MapMemory {
        &self.map_memory
    }

    /// `BPF_MAP_CREATE` on this VM: a map on its [`Vm::ncpus`] simulated CPUs, charged to
    /// [`Vm::map_memory`] (`ENOMEM` over the limit; other errors as `Map::create`).
    pub fn create_map(&self, spec: MapSpec) -> Result<Arc<Map>, MapError> {
        Map::create_in(spec, self.config.ncpus, &self.map_memory).map(Arc::new)
    }

    /// [`Vm::create_map`] for an `ARRAY_OF_MAPS` / `HASH_OF_MAPS` with `inner` as the inner
    /// map template (`Map::create_of_maps_in`).
    pub fn create_map_of_maps(&self, spec: MapSpec, inner: &Map) -> Result<Arc<Map>, MapError> {
        Map::create_of_maps_in(spec, self.config.ncpus, inner, &self.map_memory).map(Arc::new)
    }

    /// Validates `program` and prepares it for its engine.
    ///
    /// With [`VerifierMode::Kernel`] (the default) a program the Linux kernel's verifier
    /// would refuse is refused with [`PrepareError::Verifier`], which names the
    /// instruction, its source line, the rule and the kernel's words.
    ///
    /// Every map of the program must have been created for this VM's CPU count (a map made
    /// for fewer CPUs would have no value for the others): otherwise
    /// [`PrepareError::CpuCountMismatch`].
    ///
    /// The inner maps that the program's map-in-maps hold when it is loaded become maps of
    /// the program too (after the ones it names), so a lookup in an outer map can return
    /// them; an inner map put in an outer map later is a run-time error when a lookup finds
    /// it (see `docs/internals.md`).
    pub fn load(&self, program: Program) -> Result<LoadedProgram, PrepareError> {
        let mut program = program;
        crate::inner_maps::add_inner_maps(&mut program);
        crate::tail_call::hold_prog_arrays_as_program(&mut program);
        for map in program.maps() {
            if let Some(n) = map.ncpus().filter(|&n| n != self.config.ncpus) {
                return Err(PrepareError::CpuCountMismatch {
                    map: map.name().to_string(),
                    map_cpus: n,
                    vm_cpus: self.config.ncpus,
                });
            }
        }
        let mut unverified = None;
        let mut max_ctx_offset = 0;
        let resolved = crate::kfunc::resolve(&program, &self.registry)?;
        let (checked, kfuncs, run) = match &resolved {
            Some(r) => (&r.verify, &r.kfuncs[..], &r.run),
            None => (&program, &[][..], &program),
        };
        if self.config.verifier == VerifierMode::Kernel {
            match crate::kernel_verify::verify_with_kfuncs(
                checked,
                self.config.privilege,
                self.config.ncpus,
                kfuncs,
            ) {
                // What bpfvm's verifier does not model is not refused (a program the kernel
                // accepts must load); the run-time checks still confine it, and the loaded
                // program says the kernel's verdict is unknown.
                Err(PrepareError::Verifier { error, line })
                    if error.rule == bpfvm_verifier::Rule::Unsupported =>
                {
                    unverified = Some(format!(
                        "the kernel's verdict is unknown: {}",
                        crate::error::verifier_display(&error, line.as_deref())
                    ));
                }
                r => {
                    max_ctx_offset = r?.map_or(0, |v| v.max_ctx_offset);
                }
            }
        }
        crate::tracing_helpers::check(run, &self.registry)?;
        // Poisoned references to maps that were not created run as poisoned instructions.
        let unpoisoned = crate::map_poison_run::run_form(run);
        let run = unpoisoned.as_ref().unwrap_or(run);
        let engine = engine::prepare(run, &self.registry, run.engine(), &self.config)?;
        check_return_range(run, &self.registry)?;
        crate::tail_call::claim_prog_arrays(run)?;
        // What runs: kfunc calls as calls of the registered kfuncs.
        let program = match (unpoisoned, resolved) {
            (Some(p), _) => p,
            (None, Some(r)) => r.run,
            (None, None) => program,
        };
        Ok(LoadedProgram {
            inner: Arc::new(Loaded {
                program,
                engine,
                unverified,
                max_ctx_offset,
                id: crate::tail_call::next_program_id(),
            }),
        })
    }

    pub(crate) fn lane(&self, cpu: CpuId) -> Result<MutexGuard<'_, Lane>, RunError> {
        let Some(lane) = self.lanes.get(cpu.0 as usize) else {
            return Err(RunError::NoSuchCpu {
                cpu: cpu.0,
                ncpus: self.config.ncpus,
            });
        };
        // A panic cannot leave a lane inconsistent (every run re-initialises what it uses).
        Ok(lane.0.lock().unwrap_or_else(|p| p.into_inner()))
    }

    /// Runs `prog` once on simulated CPU `cpu`.
    pub fn run(
        &self,
        prog: &LoadedProgram,
        cpu: impl Into<CpuId>,
        input: &Input,
    ) -> Result<RunOutput, RunError> {
        let mut lane = self.lane(cpu.into())?;
        self.run_on_lane(prog, &mut lane, input)
    }

    /// Runs `prog` `repeat` times on every simulated CPU, CPUs in parallel; returns each
    /// CPU's return values in order (index = CPU).
    ///
    /// The results are collected, so `repeat` × N may be at most
    /// [`MAX_COLLECTED_RESULTS`] (2^27, 1 GiB of
    /// `u64`s): above that, or when the memory for them cannot be allocated, nothing runs and
    /// the error is [`RunError::TooManyResults`]. [`Vm::run_on_all_with`] streams the results
    /// instead, for any count.
    pub fn run_on_all(
        &self,
        prog: &LoadedProgram,
        repeat: u64,
        input: &Input,
    ) -> Result<Vec<Vec<u64>>, RunError> {
        let too_many = || RunError::TooManyResults {
            repeat,
            ncpus: self.config.ncpus,
            max: MAX_COLLECTED_RESULTS,
        };
        let total = repeat.checked_mul(u64::from(self.config.ncpus));
        if total.is_none_or(|t| t > MAX_COLLECTED_RESULTS) {
            return Err(too_many());
        }
        let mut results = Vec::new();
        results
            .try_reserve_exact(self.config.ncpus as usize)
            .map_err(|_| too_many())?;
        for _ in 0..self.config.ncpus {
            let mut out = Vec::new();
            out.try_reserve_exact(repeat as usize)
                .map_err(|_| too_many())?;
            results.push(Mutex::new(out));
        }
        self.run_on_all_with(prog, repeat, input, |cpu, r0| {
            // Each CPU's vector is only ever locked by that CPU's worker: never contended.
            results[cpu.index()]
                .lock()
                .unwrap_or_else(|p| p.into_inner())
                .push(r0);
        })?;
        Ok(results
            .into_iter()
            .map(|m| m.into_inner().unwrap_or_else(|p| p.into_inner()))
            .collect())
    }

    /// Runs `prog` `repeat` times on every simulated CPU, CPUs in parallel (each CPU's runs
    /// in order), and calls `each(cpu, r0)` after every run, on the thread that ran it.
    /// Nothing is collected, so any `repeat` works in constant memory. Stops at the first
    /// failed run (other CPUs stop at their next run) and returns its error.
    pub fn run_on_all_with<F>(
        &self,
        prog: &LoadedProgram,
        repeat: u64,
        input: &Input,
        each: F,
    ) -> Result<(), RunError>
    where
        F: Fn(CpuId, u64) + Sync,
    {
        let failed = AtomicBool::new(false);
        (0..self.config.ncpus).into_par_iter().try_for_each(|cpu| {
            let mut lane = self.lane(CpuId(cpu))?;
            for _ in 0..repeat {
                if failed.load(Ordering::Relaxed) {
                    break;
                }
                let r = self.setup(prog, &mut lane, input).and_then(|()| {
                    lane.helper_ctx.clear_trace();
                    self.exec(prog, &mut lane, 1)
                });
                match r {
                    Ok(r0) => each(CpuId(cpu), r0),
                    Err(e) => {
                        failed.store(true, Ordering::Relaxed);
                        return Err(e);
                    }
                }
            }
            Ok(())
        })
    }

    /// Runs a stream of `(cpu, input)` events: each CPU's events in their order, CPUs in
    /// parallel. Results come back in the order of `events`.
    pub fn run_events(
        &self,
        prog: &LoadedProgram,
        events: &[(CpuId, Input)],
    ) -> Vec<Result<RunOutput, RunError>> {
        let n = self.config.ncpus as usize;
        let mut by_cpu: Vec<Vec<usize>> = vec![Vec::new(); n];
        let mut results: Vec<Option<Result<RunOutput, RunError>>> = vec![None; events.len()];
        for (i, (cpu, _)) in events.iter().enumerate() {
            match by_cpu.get_mut(cpu.0 as usize) {
                Some(v) => v.push(i),
                None => {
                    results[i] = Some(Err(RunError::NoSuchCpu {
                        cpu: cpu.0,
                        ncpus: self.config.ncpus,
                    }))
                }
            }
        }
        let done: Vec<Vec<(usize, Result<RunOutput, RunError>)>> = by_cpu
            .into_par_iter()
            .enumerate()
            .map(|(cpu, idxs)| {
                if idxs.is_empty() {
                    return Vec::new();
                }
                let mut lane = match self.lane(CpuId(cpu as u32)) {
                    Ok(l) => l,
                    Err(e) => return idxs.into_iter().map(|i| (i, Err(e.clone()))).collect(),
                };
                idxs.into_iter()
                    .map(|i| (i, self.run_on_lane(prog, &mut lane, &events[i].1)))
                    .collect()
            })
            .collect();
        for (i, r) in done.into_iter().flatten() {
            results[i] = Some(r);
        }
        results
            .into_iter()
            .map(|r| r.expect("every event has a result"))
            .collect()
    }

    /// `BPF_PROG_TEST_RUN`: runs `prog` `repeat` times on one CPU.
    ///
    /// As the kernel's `bpf_test_run`, the packet and context are set up from `req.input`
    /// once, and every repetition runs on them: a program that changes its packet or a
    /// writable context field (`mark`, `cb[]`, ...) sees its own earlier changes, and
    /// `data_out` / `ctx_out` are what the last repetition left. Each repetition is still a
    /// run of its own for the virtual clock, the PRNG and the stack (zeroed between runs).
    /// Only the loop is timed (two clock reads per call, as the kernel's `bpf_test_timer`),
    /// and `duration` is the mean per repetition.
    ///
    /// As the kernel, XDP programs a device or CPU map runs (sections `xdp/devmap`,
    /// `xdp/cpumap`) have no test run: [`RunError::BadInput`] (`EINVAL`); [`Vm::run`] runs
    /// them.
    pub fn test_run(&self, prog: &LoadedProgram, req: &TestRun) -> Result<TestRunResult, RunError> {
        crate::ctx_in::check_test_runnable(prog.program())?;
        let mut lane = self.lane(req.cpu)?;
        let repeat = req.repeat.max(1);
        self.setup(prog, &mut lane, &req.input)?;
        lane.helper_ctx.clear_trace();
        let start = Instant::now();
        let retval = self.exec(prog, &mut lane, repeat)?;
        let total = start.elapsed();
        Ok(TestRunResult {
            retval,
            data_out: lane.packet_out(),
            ctx_out: lane.test_run_ctx_out(prog.program().prog_type(), &req.input.ctx),
            // The mean per repetition (a 64-bit division, skipped for a single run).
            duration: if repeat == 1 { total } else { total / repeat },
            trace: lane.trace_out(),
            redirect: lane.redirect(prog.program().prog_type(), retval),
            trace_dropped: lane.helper_ctx.trace_dropped(),
        })
    }

    #[inline]
    fn run_on_lane(
        &self,
        prog: &LoadedProgram,
        lane: &mut Lane,
        input: &Input,
    ) -> Result<RunOutput, RunError> {
        self.setup(prog, lane, input)?;
        lane.helper_ctx.clear_trace();
        let retval = self.exec(prog, lane, 1)?;
        Ok(RunOutput {
            retval,
            data: lane.packet_out(),
            ctx: lane.ctx_out(),
            trace: lane.trace_out(),
            redirect: lane.redirect(prog.program().prog_type(), retval),
            trace_dropped: lane.helper_ctx.trace_dropped(),
        })
    }

    /// Fills the lane's packet and context for one run.
    fn setup(&self, prog: &LoadedProgram, lane: &mut Lane, input: &Input) -> Result<(), RunError> {
        let t = prog.program().prog_type();
        let (meta, data, ctx) = (&input.data_meta, &input.data, &input.ctx);
        lane.helper_ctx().set_cgroup(input.cgroup);
        crate::task::setup_run(lane.helper_ctx(), prog.program());
        if t == ProgramType::Xdp || t.uses_sk_buff() {
            let size = if t == ProgramType::Xdp {
                XDP_MD_SIZE
            } else {
                SK_BUFF_SIZE
            };
            crate::ctx_in::check_tail(
                ctx,
                size,
                if t == ProgramType::Xdp {
                    "struct xdp_md"
                } else {
                    "struct __sk_buff"
                },
            )?;
            // As the kernel: a context's `data` says how much of the packet is metadata, its
            // `data_end` where the linear part of an XDP packet ends.
            let mut linear_end = None;
            let (meta, data): (&[u8], &[u8]) = if t == ProgramType::Xdp && !ctx.is_empty() {
                let (at, end) = crate::ctx_in::check_xdp(ctx, meta.len() + data.len(), &self.net)?;
                linear_end = Some(end);
                if meta.is_empty() {
                    data.split_at(at.min(data.len()))
                } else if at == meta.len() {
                    (meta, data)
                } else {
                    return Err(RunError::BadContext {
                        field: "data",
                        reason: format!(
                            "xdp_md.data ({at}) is not the length of the input's data_meta ({})",
                            meta.len()
                        ),
                        errno: 22,
                    });
                }
            } else {
                (meta, data)
            };
            if t == ProgramType::Xdp {
                check_xdp_meta(meta.len())?;
            } else {
                check_packet_size(meta.len().saturating_add(data.len()))?;
            }
            if t == ProgramType::Xdp {
                // As the kernel's `bpf_test_init`: at least an Ethernet header after the
                // metadata.
                if data.len() < ETH_HLEN {
                    return Err(RunError::BadInput {
                        reason: format!(
                            "an XDP test run's packet holds at least an Ethernet header ({ETH_HLEN} bytes) after its metadata; this one has {}",
                            data.len()
                        ),
                    });
                }
                let linear = linear_end.map_or(data.len(), |end| end - meta.len());
                let linear = check_xdp_frags(meta.len(), data.len(), linear)?;
                lane.set_xdp_packet(meta, data, linear)
                    .map_err(|_| xdp_too_large(meta.len(), data.len(), linear))?;
                let ml = meta.len();
                lane.set_ctx(size, |b| fill_xdp_md(b, ctx, ml, linear));
            } else {
                // As the kernel's skb test run: eth_type_trans on the loopback device,
                // which pulls the L2 header; tc programs get it pushed back.
                let min = min_frame_len(data);
                if data.len() < min {
                    return Err(RunError::BadInput {
                        reason: format!(
                            "packet of {} bytes is shorter than its headers ({min} bytes: Ethernet, and IPv4 or IPv6 by EtherType)",
                            data.len()
                        ),
                    });
                }
                let eth = EthInfo::of(data);
                let pulled = if sees_l2_header(t) { 0 } else { ETH_HLEN };
                if !ctx.is_empty() {
                    crate::ctx_in::check_sk_buff(ctx, data.len() - pulled, &self.net)?;
                }
                let ifindex = ctx_ifindex(ctx);
                lane.set_skb_packet(
                    packet_program(t),
                    data,
                    pulled,
                    eth.protocol as u16,
                    ifindex,
                );
                let (ml, dl) = (meta.len(), data.len() - pulled);
                let sock = SockInfo::of(data);
                lane.set_ctx(size, |b| fill_sk_buff(b, ctx, ml, dl, eth, &sock));
            }
        } else {
            if !data.is_empty() || !meta.is_empty() {
                return Err(RunError::BadInput {
                    reason: format!("program type {t:?} takes no packet; pass the context instead"),
                });
            }
            crate::trace_run::check_ctx(t, ctx, prog.inner.max_ctx_offset)?;
            if ctx.len() > MAX_RAW_CONTEXT {
                return Err(RunError::InputTooLarge {
                    what: "context",
                    len: ctx.len(),
                    max: MAX_RAW_CONTEXT,
                    whose: "a raw-context program's",
                    errno: 22,
                });
            }
            if lane.has_packet {
                lane.clear_packet();
            }
            lane.set_ctx(ctx.len(), |b| b.copy_from_slice(ctx));
        }
        Ok(())
    }

    /// Runs `repeat` (≥ 1) times on a prepared lane, without resetting its packet or
    /// context between runs; returns `r0` of the last run. The lane's trace buffer collects
    /// the output of every run.
    #[inline]
    fn exec(&self, prog: &LoadedProgram, lane: &mut Lane, repeat: u32) -> Result<u64, RunError> {
        let env = RunEnv {
            registry: &self.registry,
            budget: self.config.budget,
        };
        prog.inner
            .engine
            .run_repeated(&prog.inner.program, lane, env, repeat)
            .map_err(|e| e.at_source_of(&prog.inner.program))
    }
}

/// The kernel's XDP test-run check of the metadata in front of the packet (`ctx_in`'s
/// `data`): a multiple of 4 bytes, at most the headroom left after the `xdp_frame`.
fn check_xdp_meta(len: usize) -> Result<(), RunError> {
    let max = bpfvm_helpers::packet::XDP_PACKET_HEADROOM - bpfvm_helpers::packet::XDP_FRAME_SIZE;
    if len % 4 != 0 || len > max {
        return Err(RunError::BadInput {
            reason: format!(
                "{len} bytes of XDP metadata: the kernel's test run takes a multiple of 4 up to {max} (EINVAL)"
            ),
        });
    }
    Ok(())
}

/// The kernel's XDP test-run layout of `data_len` bytes of packet data (after `meta_len`
/// bytes of metadata) whose linear part ends `linear` bytes after `data` (`ctx_in`'s
/// `data_end`, or the whole packet): the linear part holds at most
/// [`XDP_LINEAR_MAX`](bpfvm_helpers::packet::XDP_LINEAR_MAX) bytes, the rest goes into
/// fragments of a page each, at most
/// [`MAX_SKB_FRAGS`](bpfvm_helpers::frags::MAX_SKB_FRAGS) of them, else `ENOMEM` (so
/// [`XDP_MAX_DATA`](crate::limits::XDP_MAX_DATA) bytes at most with a full linear part). Returns the linear length.
fn check_xdp_frags(meta_len: usize, data_len: usize, linear: usize) -> Result<usize, RunError> {
    use bpfvm_helpers::frags::{Frags, MAX_SKB_FRAGS};
    let linear = linear
        .min(bpfvm_helpers::packet::XDP_LINEAR_MAX)
        .min(data_len);
    let needed = Frags::needed(data_len - linear);
    if needed > MAX_SKB_FRAGS {
        return Err(xdp_too_large(meta_len, data_len, linear));
    }
    Ok(linear)
}

/// `InputTooLarge` for an XDP packet whose rest past the linear part needs more than
/// `MAX_SKB_FRAGS` fragments.
fn xdp_too_large(meta_len: usize, data_len: usize, linear: usize) -> RunError {
    let frags_max = bpfvm_helpers::frags::MAX_SKB_FRAGS * bpfvm_helpers::packet::PAGE_SIZE;
    RunError::InputTooLarge {
        what: "packet",
        len: meta_len + data_len,
        max: meta_len + linear + frags_max,
        whose: "an XDP program's (metadata, linear part and 17 page fragments)",
        errno: 12,
    }
}

/// The kernel's test-run packet limit of `__sk_buff` programs ([`crate::limits`]): `EINVAL`
/// over [`SKB_MAX_DATA`] (XDP packets: [`check_xdp_frags`]).
fn check_packet_size(len: usize) -> Result<(), RunError> {
    if len > SKB_MAX_DATA {
        return Err(RunError::InputTooLarge {
            what: "packet",
            len,
            max: SKB_MAX_DATA,
            whose: "an __sk_buff program's",
            errno: 22,
        });
    }
    Ok(())
}

/// The helpers' name for an `__sk_buff` program type.
fn packet_program(t: ProgramType) -> bpfvm_helpers::PacketProgram {
    use bpfvm_helpers::PacketProgram;
    match t {
        ProgramType::SchedCls | ProgramType::SchedAct => PacketProgram::Tc,
        ProgramType::CgroupSkb => PacketProgram::CgroupSkb,
        _ => PacketProgram::SocketFilter,
    }
}

/// The device of an skb run: `ifindex` from `ctx_in` when it names one, else the loopback
/// device (as `fill_sk_buff` sets it).
fn ctx_ifindex(ctx: &[u8]) -> u32 {
    let at = crate::ctx_layout::sk_buff::IFINDEX;
    match ctx.get(at..at + 4) {
        Some(b) if b != [0; 4] => u32::from_le_bytes([b[0], b[1], b[2], b[3]]),
        _ => crate::eth::LOOPBACK_IFINDEX,
    }
}

/// The kernel verifier's return-value range check, where bpfvm can decide it
/// ([`crate::retval`]); the program has already been validated by its engine.
fn check_return_range(program: &Program, registry: &Registry) -> Result<(), PrepareError> {
    if crate::retval::allowed_range(program.prog_type()).is_none() {
        return Ok(());
    }
    let raw = crate::verify::raw_insns(program.bytecode())?;
    let shapes = crate::verify::MapShape::all(program.maps());
    let insns = crate::verify::decode(
        &raw,
        crate::verify::Env {
            maps: &shapes,
            helper_known: &|id| id == crate::insn::TAIL_CALL_HELPER || registry.get(id).is_some(),
        },
    )?;
    crate::retval::check(&insns, program.prog_type())
}
