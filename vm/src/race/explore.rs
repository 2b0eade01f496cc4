//! [`Explorer`]: runs a program on K simulated CPUs under chosen interleavings of their
//! shared accesses, and compares each final state of the maps with the serial results.

use std::collections::{BTreeMap, BTreeSet, HashMap, HashSet};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use bpfvm_helpers::{HelperId, Registry};

use super::schedule::Schedule;
use super::scheduler::{AccessKind, CpuHook, Location, MapHelper, Point, Quiet, Step, Turnstile};
use super::state::{self, MapsState};
use super::RaceError;
use crate::cpu::mix;
use crate::{
    CpuId, EngineKind, Input, LoadedProgram, Privilege, Program, RunError, VerifierMode, Vm,
    VmConfig,
};

/// Most simulated CPUs an explorer runs on.
pub const MAX_CPUS: u32 = 16;
/// Most runs of all CPUs together (CPUs × runs).
pub const MAX_TOTAL_RUNS: u32 = 64;
/// Most serial orders of whole runs compared with (all orders are run once each).
pub const MAX_SERIAL_ORDERS: u64 = 20_000;

/// What an [`Explorer`] runs and how far it goes.
#[derive(Debug, Clone)]
pub struct RaceConfig {
    /// Simulated CPUs running the program at once (2 ..= [`MAX_CPUS`]). Default 2.
    pub cpus: u32,
    /// Runs of the program on each CPU (≥ 1). Default 1.
    pub runs: u32,
    /// The input of every run.
    pub input: Input,
    /// Instruction budget of each run. Default 100,000.
    pub budget: u64,
    /// Shared accesses one schedule may make before it is given up. Default 10,000.
    pub max_steps: usize,
    /// Most schedules one exploration runs (complete or pruned). Default 100,000.
    pub max_schedules: u64,
    /// Seed of the virtual clock and PRNG of the runs (as `Vm`'s). Default 0.
    pub seed: u64,
    /// Skip interleavings that only swap independent accesses (different bytes, or two
    /// reads): sleep sets. Default true; false explores every interleaving.
    pub partial_order_reduction: bool,
    /// The verifier applied when the program is loaded. Default the kernel's verdict.
    pub verifier: VerifierMode,
    /// The loader's privilege for the kernel's verdict. Default root.
    pub privilege: Privilege,
    /// The target BTF `bpf_snprintf_btf` shows types of, as [`Vm::set_target_btf`].
    /// Default none: the helper returns `-EINVAL`, as on a kernel without BTF.
    pub target_btf: Option<Arc<crate::loader::Btf>>,
}

impl Default for RaceConfig {
    fn default() -> RaceConfig {
        RaceConfig {
            cpus: 2,
            runs: 1,
            input: Input::empty(),
            budget: 100_000,
            max_steps: 10_000,
            max_schedules: 100_000,
            seed: 0,
            partial_order_reduction: true,
            verifier: VerifierMode::Kernel,
            privilege: Privilege::Root,
            target_btf: None,
        }
    }
}

/// How an explored run ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Outcome {
    /// Every CPU finished its runs.
    Complete,
    /// Pruned: every waiting CPU's access was already explored in an equivalent order.
    Pruned,
    /// More than `max_steps` shared accesses.
    StepLimit,
    /// A CPU reached neither a shared access nor its end in time.
    Stalled,
}

/// One explored run.
#[derive(Debug, Clone)]
pub struct Execution {
    /// The CPUs granted, in order.
    pub schedule: Schedule,
    /// The shared accesses, in order.
    pub steps: Vec<Step>,
    /// The maps afterwards.
    pub state: MapsState,
    /// Return values of each CPU's runs.
    pub returns: Vec<Vec<u64>>,
}

/// Two (or three) accesses that make a lost update: CPU A reads a value, CPU B writes it,
/// CPU A writes it from what it read, overwriting B's update.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Conflict {
    /// Index (in the steps) of A's read of the old value.
    pub stale_read: usize,
    /// Index of B's write that A does not see.
    pub other_write: usize,
    /// Index of A's write that overwrites it, when there is one.
    pub overwrite: Option<usize>,
}

/// A final state no serial order of the runs gives.
#[derive(Debug, Clone)]
pub struct LostUpdate {
    /// The run that shows it (its schedule replays it).
    pub execution: Execution,
    /// The accesses that conflict, when the pattern is found.
    pub conflict: Option<Conflict>,
}

/// Two accesses of different CPUs to the same shared bytes, at least one a plain write,
/// with nothing ordering them.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DataRace {
    /// The schedule in which they were seen.
    pub schedule: Schedule,
    /// The earlier access.
    pub first: Step,
    /// The later access.
    pub second: Step,
}

/// How the schedules were chosen.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Mode {
    /// Every interleaving (up to partial-order reduction).
    Exhaustive,
    /// Random interleavings from a seed.
    Random {
        /// The seed.
        seed: u64,
    },
}

/// What an exploration found.
#[derive(Debug, Clone)]
pub struct Exploration {
    /// How schedules were chosen.
    pub mode: Mode,
    /// Schedules run to the end.
    pub schedules: u64,
    /// Schedules cut short by partial-order reduction.
    pub pruned: u64,
    /// Whether every interleaving was covered (exhaustive mode within the cap).
    pub complete: bool,
    /// Serial orders of whole runs run for the baseline.
    pub serial_orders: u64,
    /// The distinct final states the serial orders give.
    pub serial_states: Vec<MapsState>,
    /// The maps before any run.
    pub initial: MapsState,
    /// The shortest run found whose final state no serial order gives.
    pub lost_update: Option<LostUpdate>,
    /// Data races seen (one per pair of instructions).
    pub data_races: Vec<DataRace>,
    /// The kinds of shared access the program made (empty: it shares nothing).
    pub kinds: BTreeSet<AccessKind>,
    /// Most shared accesses in one schedule.
    pub max_steps_seen: usize,
    /// Time taken.
    pub elapsed: Duration,
}

impl Exploration {
    /// Why there is no lost update, in a sentence (or that there is one).
    pub fn verdict(&self) -> String {
        if let Some(l) = &self.lost_update {
            return format!(
                "lost update: schedule {} ({} shared steps) ends in a state no serial order gives",
                l.execution.schedule,
                l.execution.steps.len()
            );
        }
        let scope = if self.complete {
            "in every interleaving"
        } else {
            "in the schedules explored"
        };
        if self.kinds.is_empty() {
            return "no lost update: the program writes no map shared between CPUs (a per-CPU \
                    map gives each CPU a private copy)"
                .into();
        }
        if !self
            .kinds
            .iter()
            .any(|k| matches!(k, AccessKind::Write | AccessKind::HelperWrite))
        {
            let what = if self.kinds.contains(&AccessKind::Atomic) {
                "every write to shared memory is an atomic read-modify-write"
            } else {
                "the program only reads shared memory"
            };
            return format!("no lost update: {what} ({scope})");
        }
        format!("no lost update {scope}: each final state is one a serial order of the runs gives")
    }
}

/// Runs one program on several simulated CPUs under chosen interleavings.
///
/// The program's maps must have been created for [`RaceConfig::cpus`] CPUs. Every schedule
/// starts from the maps as they were when the explorer was made.
///
/// ```
/// use bpfvm::loader::Object;
/// use bpfvm::race::{Explorer, RaceConfig};
/// use bpfvm::Input;
///
/// let path = concat!(env!("CARGO_MANIFEST_DIR"), "/tests/fixtures/race_counter.o");
/// let obj = Object::from_file(path).unwrap();
/// let maps = obj.create_maps(2).unwrap();
/// let config = RaceConfig {
///     input: Input::packet(vec![0u8; 64]),
///     ..RaceConfig::default()
/// };
/// // The atomic counter loses nothing on 2 CPUs...
/// let atomic = obj.vm_program("atomic_counter", &maps).unwrap();
/// let explorer = Explorer::new(atomic, config.clone()).unwrap();
/// assert!(explorer.find_lost_update().unwrap().is_none());
/// // ... the `+=` one does: both CPUs read 0, both store 1.
/// let shared = obj.vm_program("shared_counter", &maps).unwrap();
/// let explorer = Explorer::new(shared, config).unwrap();
/// let lost = explorer.find_lost_update().unwrap().expect("a lost update");
/// assert!(lost.execution.schedule.len() <= 4);
/// ```
pub struct Explorer {
    vm: Vm,
    prog: LoadedProgram,
    turnstile: Arc<Turnstile>,
    config: RaceConfig,
    initial: MapsState,
}

impl std::fmt::Debug for Explorer {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Explorer")
            .field("config", &self.config)
            .field("maps", &self.initial.0.len())
            .finish_non_exhaustive()
    }
}

/// Picks the CPU of step `i` among the waiting ones (`None`: give the schedule up).
type Chooser<'a> = dyn FnMut(usize, &[(usize, Point)]) -> Option<usize> + 'a;

/// Marks a CPU finished however its thread ends.
struct Finish<'a>(&'a Turnstile, usize);

impl Drop for Finish<'_> {
    fn drop(&mut self) {
        self.0.finish(self.1);
    }
}

impl Explorer {
    /// An explorer of `program` (its maps made for `config.cpus` CPUs) under `config`.
    pub fn new(program: Program, config: RaceConfig) -> Result<Explorer, RaceError> {
        if config.cpus < 2 {
            return Err(RaceError::Cpus {
                cpus: config.cpus,
                max: MAX_CPUS,
            });
        }
        if config.cpus > MAX_CPUS {
            return Err(RaceError::Cpus {
                cpus: config.cpus,
                max: MAX_CPUS,
            });
        }
        if config.runs == 0 || config.cpus.saturating_mul(config.runs) > MAX_TOTAL_RUNS {
            return Err(RaceError::Runs {
                cpus: config.cpus,
                runs: config.runs,
                max: MAX_TOTAL_RUNS,
            });
        }
        if !matches!(program.engine(), EngineKind::Interpreter | EngineKind::Jit) {
            // rbpf's engines touch memory without bpfvm's region table: no access would
            // reach the hook, and every schedule would look serial.
            return Err(RaceError::Unsupported {
                what: format!(
                    "the {} engine (its memory accesses bypass the explorer's hook; use the \
                     interpreter or the jit)",
                    program.engine()
                ),
            });
        }
        if uses_spin_lock(&program) {
            return Err(RaceError::Unsupported {
                what: "bpf_spin_lock (a CPU waiting for a lock held by a stopped CPU is not \
                       modelled yet)"
                    .into(),
            });
        }
        let turnstile = Arc::new(Turnstile::new(config.cpus as usize));
        let mut registry = Registry::with_builtins();
        for (id, writes) in [
            (HelperId::MAP_LOOKUP_ELEM, false),
            (HelperId::MAP_UPDATE_ELEM, true),
            (HelperId::MAP_DELETE_ELEM, true),
        ] {
            let Some(entry) = registry.get(id.0).cloned() else {
                continue;
            };
            let name: &'static str = match id {
                HelperId::MAP_LOOKUP_ELEM => "bpf_map_lookup_elem",
                HelperId::MAP_UPDATE_ELEM => "bpf_map_update_elem",
                _ => "bpf_map_delete_elem",
            };
            let wrapped = MapHelper {
                name,
                writes,
                inner: entry.helper,
                turnstile: Arc::clone(&turnstile),
            };
            registry
                .register(id, entry.name, wrapped)
                .map_err(|e| RaceError::Unsupported {
                    what: e.to_string(),
                })?;
        }
        let vm_config = VmConfig {
            ncpus: config.cpus,
            budget: config.budget,
            seed: config.seed,
            verifier: config.verifier,
            privilege: config.privilege,
            ..VmConfig::default()
        };
        let vm = Vm::with_registry(vm_config, registry);
        vm.set_target_btf(config.target_btf.clone());
        let prog = vm.load(program).map_err(RaceError::Prepare)?;
        for cpu in 0..config.cpus {
            let hook = CpuHook {
                cpu: cpu as usize,
                turnstile: Arc::clone(&turnstile),
            };
            vm.lane(CpuId(cpu))
                .map_err(|source| RaceError::Run {
                    schedule: Schedule::default(),
                    cpu,
                    source,
                })?
                .helper_ctx
                .memory
                .set_access_hook(Some(Arc::new(hook)));
        }
        let initial = state::read(prog.program().maps())?;
        Ok(Explorer {
            vm,
            prog,
            turnstile,
            config,
            initial,
        })
    }

    /// The configuration.
    pub fn config(&self) -> &RaceConfig {
        &self.config
    }

    /// The program explored.
    pub fn program(&self) -> &Program {
        self.prog.program()
    }

    /// The maps before any run.
    pub fn initial_state(&self) -> &MapsState {
        &self.initial
    }

    /// Exhaustive exploration if it covers every interleaving within
    /// [`RaceConfig::max_schedules`], else that many random schedules (seed
    /// [`RaceConfig::seed`]); the shortest lost update found, if any.
    pub fn find_lost_update(&self) -> Result<Option<LostUpdate>, RaceError> {
        let e = self.exhaustive()?;
        if e.complete || e.lost_update.is_some() {
            return Ok(e.lost_update);
        }
        Ok(self
            .random(self.config.max_schedules, self.config.seed)?
            .lost_update)
    }

    fn rewind(&self, free: bool) -> Result<(), RaceError> {
        state::restore(self.prog.program().maps(), &self.initial)?;
        for cpu in 0..self.config.cpus {
            self.vm
                .lane(CpuId(cpu))
                .map_err(|source| RaceError::Run {
                    schedule: Schedule::default(),
                    cpu,
                    source,
                })?
                .rewind(self.config.seed);
        }
        self.turnstile.reset(free);
        Ok(())
    }

    /// Runs every CPU's runs, granting at each step the CPU `choose(step, waiting)` names
    /// (`None`: give the schedule up).
    fn execute(&self, choose: &mut Chooser<'_>) -> Result<(Execution, Outcome), RaceError> {
        self.rewind(false)?;
        let k = self.config.cpus as usize;
        let errors: Mutex<Vec<(u32, RunError)>> = Mutex::new(Vec::new());
        let returns: Vec<Mutex<Vec<u64>>> = (0..k).map(|_| Mutex::new(Vec::new())).collect();
        let mut outcome = Outcome::Complete;
        let mut granted = Vec::new();
        std::thread::scope(|s| {
            for cpu in 0..k {
                let (errors, returns) = (&errors, &returns);
                s.spawn(move || {
                    let _finish = Finish(&self.turnstile, cpu);
                    for _ in 0..self.config.runs {
                        let r = self
                            .vm
                            .run(&self.prog, CpuId(cpu as u32), &self.config.input);
                        if let Ok(lane) = self.vm.lane(CpuId(cpu as u32)) {
                            self.turnstile.run_ended(cpu, &lane.helper_ctx.memory);
                        }
                        match r {
                            Ok(out) => lock(&returns[cpu]).push(out.retval),
                            Err(e) => {
                                lock(errors).push((cpu as u32, e));
                                break;
                            }
                        }
                    }
                });
            }
            loop {
                match self.turnstile.quiet() {
                    Quiet::Stalled => {
                        outcome = Outcome::Stalled;
                        break;
                    }
                    Quiet::Waiting(w) if w.is_empty() => break,
                    Quiet::Waiting(w) => {
                        if granted.len() >= self.config.max_steps {
                            outcome = Outcome::StepLimit;
                            break;
                        }
                        match choose(granted.len(), &w) {
                            Some(c) => {
                                granted.push(c as u8);
                                self.turnstile.grant(c);
                            }
                            None => {
                                outcome = Outcome::Pruned;
                                break;
                            }
                        }
                    }
                }
            }
            // Whatever is left runs free (bounded by each run's budget).
            self.turnstile.release();
        });
        let schedule = Schedule::new(granted);
        match outcome {
            Outcome::StepLimit => {
                return Err(RaceError::StepLimit {
                    schedule,
                    max: self.config.max_steps,
                })
            }
            Outcome::Stalled => return Err(RaceError::Stalled { schedule }),
            _ => {}
        }
        let arrays: Vec<bool> = self
            .prog
            .program()
            .maps()
            .iter()
            .map(|m| {
                m.as_map()
                    .is_some_and(|map| map.map_type() == bpfvm_maps::MapType::Array)
            })
            .collect();
        let steps = self.turnstile.take_steps(&arrays);
        if outcome == Outcome::Complete {
            let mut errors = errors.into_inner().unwrap_or_else(|p| p.into_inner());
            if !errors.is_empty() {
                let (cpu, source) = errors.swap_remove(0);
                return Err(RaceError::Run {
                    schedule,
                    cpu,
                    source: source.at_source_of(self.prog.program()),
                });
            }
        }
        let state = if outcome == Outcome::Complete {
            state::read(self.prog.program().maps())?
        } else {
            MapsState(Vec::new())
        };
        let returns = returns
            .into_iter()
            .map(|m| m.into_inner().unwrap_or_else(|p| p.into_inner()))
            .collect();
        Ok((
            Execution {
                schedule,
                steps,
                state,
                returns,
            },
            outcome,
        ))
    }

    /// Replays `schedule` exactly (a CPU it names that is not waiting is an error; past its
    /// end the lowest waiting CPU goes first).
    pub fn replay(&self, schedule: &Schedule) -> Result<Execution, RaceError> {
        let mut bad = None;
        let (e, _) = self.execute(&mut |i, waiting| match schedule.steps().get(i) {
            Some(&c) if waiting.iter().any(|w| w.0 == c as usize) => Some(c as usize),
            Some(&c) => {
                bad.get_or_insert((i, c));
                None
            }
            None => waiting.first().map(|w| w.0),
        })?;
        if let Some((i, c)) = bad {
            return Err(RaceError::BadSchedule {
                reason: format!(
                    "step {} of {schedule} names CPU {c}, which is not waiting at a shared access",
                    i + 1
                ),
            });
        }
        Ok(e)
    }

    /// The final states of every serial order of whole runs (each CPU's runs in order).
    pub fn serial_states(&self) -> Result<(u64, Vec<MapsState>), RaceError> {
        let k = self.config.cpus as usize;
        let r = self.config.runs as usize;
        let count = serial_count(k, r);
        if count > MAX_SERIAL_ORDERS {
            return Err(RaceError::TooManySerialOrders {
                cpus: self.config.cpus,
                runs: self.config.runs,
                max: MAX_SERIAL_ORDERS,
            });
        }
        let mut states: Vec<MapsState> = Vec::new();
        let mut seen = HashSet::new();
        let mut left = vec![r; k];
        let mut order = Vec::with_capacity(k * r);
        let mut n = 0u64;
        self.serial_orders(&mut left, &mut order, &mut |order| {
            n += 1;
            self.rewind(true)?;
            for &cpu in order {
                self.vm
                    .run(&self.prog, CpuId(cpu as u32), &self.config.input)
                    .map_err(|source| RaceError::SerialRun {
                        order: Schedule::new(order.iter().map(|&c| c as u8).collect()),
                        cpu: cpu as u32,
                        source: source.at_source_of(self.prog.program()),
                    })?;
            }
            let s = state::read(self.prog.program().maps())?;
            if seen.insert(s.clone()) {
                states.push(s);
            }
            Ok(())
        })?;
        Ok((n, states))
    }

    fn serial_orders(
        &self,
        left: &mut [usize],
        order: &mut Vec<usize>,
        each: &mut dyn FnMut(&[usize]) -> Result<(), RaceError>,
    ) -> Result<(), RaceError> {
        if left.iter().all(|&l| l == 0) {
            return each(order);
        }
        for cpu in 0..left.len() {
            if left[cpu] > 0 {
                left[cpu] -= 1;
                order.push(cpu);
                self.serial_orders(left, order, each)?;
                order.pop();
                left[cpu] += 1;
            }
        }
        Ok(())
    }

    /// Every interleaving of the shared accesses (those that only swap independent
    /// accesses skipped with [`RaceConfig::partial_order_reduction`]), at most
    /// [`RaceConfig::max_schedules`] runs.
    pub fn exhaustive(&self) -> Result<Exploration, RaceError> {
        let start = Instant::now();
        let (serial_orders, serial) = self.serial_states()?;
        let mut found = Findings::new(&serial);
        let mut stack: Vec<Node> = Vec::new();
        let por = self.config.partial_order_reduction;
        let mut runs = 0u64;
        let mut complete = false;
        while runs < self.config.max_schedules {
            runs += 1;
            let mut diverged = false;
            let (exec, outcome) = self.execute(&mut |i, waiting| {
                if let Some(n) = stack.get(i) {
                    if !same_cpus(&n.enabled, waiting) {
                        diverged = true;
                        return None;
                    }
                    return Some(n.chosen);
                }
                let sleep = match (por, i.checked_sub(1).and_then(|p| stack.get(p))) {
                    (true, Some(p)) => p.sleep_after(),
                    _ => Vec::new(),
                };
                let sleep: Vec<usize> = sleep
                    .into_iter()
                    .filter(|c| waiting.iter().any(|w| w.0 == *c))
                    .collect();
                let chosen = waiting.iter().map(|w| w.0).find(|c| !sleep.contains(c))?;
                stack.push(Node {
                    enabled: waiting.to_vec(),
                    sleep,
                    done: Vec::new(),
                    chosen,
                });
                Some(chosen)
            })?;
            if diverged {
                return Err(RaceError::Nondeterministic {
                    schedule: exec.schedule,
                });
            }
            match outcome {
                Outcome::Complete => found.add(exec),
                _ => found.pruned += 1,
            }
            // Backtrack to the deepest step with a CPU left to try.
            while let Some(n) = stack.last_mut() {
                n.done.push(n.chosen);
                let next = n
                    .enabled
                    .iter()
                    .map(|w| w.0)
                    .find(|c| !n.done.contains(c) && !n.sleep.contains(c));
                match next {
                    Some(c) => {
                        n.chosen = c;
                        break;
                    }
                    None => {
                        stack.pop();
                    }
                }
            }
            if stack.is_empty() {
                complete = true;
                break;
            }
        }
        Ok(found.finish(
            Mode::Exhaustive,
            complete,
            serial_orders,
            serial,
            &self.initial,
            start,
        ))
    }

    /// `schedules` random interleavings (each step's CPU drawn from `seed`), at most
    /// [`RaceConfig::max_schedules`].
    pub fn random(&self, schedules: u64, seed: u64) -> Result<Exploration, RaceError> {
        let start = Instant::now();
        let (serial_orders, serial) = self.serial_states()?;
        let mut found = Findings::new(&serial);
        for n in 0..schedules.min(self.config.max_schedules) {
            let mut rng = mix(seed ^ mix(n));
            let (exec, _) = self.execute(&mut |_, waiting| {
                rng = mix(rng);
                Some(waiting[(rng % waiting.len() as u64) as usize].0)
            })?;
            found.add(exec);
        }
        Ok(found.finish(
            Mode::Random { seed },
            false,
            serial_orders,
            serial,
            &self.initial,
            start,
        ))
    }

    /// The name of the map a step touched.
    pub fn map_name(&self, step: &Step) -> String {
        self.prog
            .program()
            .maps()
            .get(step.point.map as usize)
            .map_or_else(
                || format!("map {}", step.point.map),
                |m| m.name().to_string(),
            )
    }

    /// `map[key]+from..to` of the bytes a step touched (`map[slot N]` when the key is
    /// unknown).
    pub fn describe(&self, step: &Step) -> String {
        let maps = self.prog.program().maps();
        let name = maps.get(step.point.map as usize).map_or_else(
            || format!("map {}", step.point.map),
            |m| m.name().to_string(),
        );
        let key = step.key.as_deref().map(key_text);
        match &step.point.location {
            Location::Key(k) => format!("{name}[{}]", key_text(k)),
            Location::Value { slot, offset, size } => match key {
                Some(k) => format!("{name}[{k}]+{offset}..{}", offset + size),
                None => format!("{name}[slot {slot}]+{offset}..{}", offset + size),
            },
        }
    }
}

fn lock<T>(m: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    m.lock().unwrap_or_else(|p| p.into_inner())
}

/// A key as a number (up to 8 bytes, little-endian) or hex.
pub fn key_text(k: &[u8]) -> String {
    super::report::value_text(k)
}

/// Whether the program calls `bpf_spin_lock` (helper 93).
fn uses_spin_lock(p: &Program) -> bool {
    p.bytecode()
        .chunks_exact(8)
        .any(|i| i[0] == 0x85 && i[1] >> 4 == 0 && i[4..8] == 93u32.to_le_bytes())
}

/// Number of orders of `k` CPUs' `r` runs each: (k·r)! / (r!)^k, saturating.
fn serial_count(k: usize, r: usize) -> u64 {
    // Product of binomials C(i·r, r) for i = 1..=k.
    let mut total: u64 = 1;
    for i in 1..=k {
        let n = i * r;
        let mut c: u64 = 1;
        for j in 0..r {
            c = c.saturating_mul((n - j) as u64) / (j as u64 + 1);
        }
        total = total.saturating_mul(c);
    }
    total
}

/// Whether a replayed step has the same CPUs waiting at the same accesses (the same
/// instruction, kind and map: a hash map refilled between schedules may place an element
/// in another slot).
fn same_cpus(a: &[(usize, Point)], b: &[(usize, Point)]) -> bool {
    a.len() == b.len()
        && a.iter().zip(b).all(|(x, y)| {
            x.0 == y.0 && x.1.pc == y.1.pc && x.1.kind == y.1.kind && x.1.map == y.1.map
        })
}

/// One step of the depth-first search: the CPUs waiting there, those not to try (sleep
/// set), those tried, and the one granted in the current run.
struct Node {
    enabled: Vec<(usize, Point)>,
    sleep: Vec<usize>,
    done: Vec<usize>,
    chosen: usize,
}

impl Node {
    fn point(&self, cpu: usize) -> Option<&Point> {
        self.enabled.iter().find(|w| w.0 == cpu).map(|w| &w.1)
    }

    /// The sleep set of the step after granting `chosen`: the CPUs asleep here or already
    /// tried here whose access is independent of `chosen`'s.
    fn sleep_after(&self) -> Vec<usize> {
        let Some(chosen) = self.point(self.chosen) else {
            return Vec::new();
        };
        self.sleep
            .iter()
            .chain(&self.done)
            .copied()
            .filter(|&c| c != self.chosen)
            .filter(|&c| self.point(c).is_some_and(|p| !p.conflicts(chosen)))
            .collect()
    }
}

/// What the runs of an exploration found so far.
struct Findings {
    serial: HashSet<MapsState>,
    schedules: u64,
    pruned: u64,
    lost: Option<LostUpdate>,
    races: BTreeMap<(u32, usize, usize), DataRace>,
    kinds: BTreeSet<AccessKind>,
    max_steps: usize,
}

impl Findings {
    fn new(serial: &[MapsState]) -> Findings {
        Findings {
            serial: serial.iter().cloned().collect(),
            schedules: 0,
            pruned: 0,
            lost: None,
            races: BTreeMap::new(),
            kinds: BTreeSet::new(),
            max_steps: 0,
        }
    }

    fn add(&mut self, exec: Execution) {
        self.schedules += 1;
        self.max_steps = self.max_steps.max(exec.steps.len());
        self.kinds.extend(exec.steps.iter().map(|s| s.point.kind));
        for (key, race) in data_races(&exec) {
            if self.races.len() < 64 {
                self.races.entry(key).or_insert(race);
            }
        }
        if !self.serial.contains(&exec.state) {
            let shorter = self
                .lost
                .as_ref()
                .is_none_or(|l| exec.steps.len() < l.execution.steps.len());
            if shorter {
                let conflict = find_conflict(&exec.steps);
                self.lost = Some(LostUpdate {
                    execution: exec,
                    conflict,
                });
            }
        }
    }

    fn finish(
        self,
        mode: Mode,
        complete: bool,
        serial_orders: u64,
        serial: Vec<MapsState>,
        initial: &MapsState,
        start: Instant,
    ) -> Exploration {
        Exploration {
            mode,
            schedules: self.schedules,
            pruned: self.pruned,
            complete,
            serial_orders,
            serial_states: serial,
            initial: initial.clone(),
            lost_update: self.lost,
            data_races: self.races.into_values().collect(),
            kinds: self.kinds,
            max_steps_seen: self.max_steps,
            elapsed: start.elapsed(),
        }
    }
}

/// Pairs of steps of different CPUs on the same shared bytes, at least one a plain write
/// (nothing orders accesses of different CPUs: the explorer refuses programs with locks),
/// keyed by map and the two instructions.
fn data_races(exec: &Execution) -> Vec<((u32, usize, usize), DataRace)> {
    let mut by_value: HashMap<(u32, u64), Vec<usize>> = HashMap::new();
    let mut out = Vec::new();
    for (j, s) in exec.steps.iter().enumerate() {
        let Location::Value { slot, .. } = s.point.location else {
            continue;
        };
        let earlier = by_value.entry((s.point.map, slot)).or_default();
        for &i in earlier.iter() {
            let f = &exec.steps[i];
            if f.cpu != s.cpu
                && f.point.conflicts(&s.point)
                && (f.point.kind.plain_write() || s.point.kind.plain_write())
            {
                let (a, b) = (f.point.pc.min(s.point.pc), f.point.pc.max(s.point.pc));
                out.push((
                    (s.point.map, a, b),
                    DataRace {
                        schedule: exec.schedule.clone(),
                        first: f.clone(),
                        second: s.clone(),
                    },
                ));
            }
        }
        if earlier.len() < 256 {
            earlier.push(j);
        }
    }
    out
}

/// The lost-update pattern: CPU A reads, CPU B writes the same bytes, CPU A (same run)
/// writes them; else the first conflicting pair of different CPUs.
fn find_conflict(steps: &[Step]) -> Option<Conflict> {
    let touches = |a: &Point, b: &Point| match (&a.location, &b.location) {
        (
            Location::Value {
                slot: x,
                offset: xo,
                size: xs,
            },
            Location::Value {
                slot: y,
                offset: yo,
                size: ys,
            },
        ) => a.map == b.map && x == y && xo < &(yo + ys) && yo < &(xo + xs),
        (Location::Key(x), Location::Key(y)) => a.map == b.map && x == y,
        _ => a.map == b.map,
    };
    let same_kind = |a: &Point, b: &Point| {
        matches!(
            (&a.location, &b.location),
            (Location::Value { .. }, Location::Value { .. }) | (Location::Key(_), Location::Key(_))
        )
    };
    // First with the other write on the same kind of location (a value's bytes, or an
    // element through a helper), then any.
    for strict in [true, false] {
        if let Some(c) = lost_update_pattern(steps, &touches, &|a, b| !strict || same_kind(a, b)) {
            return Some(c);
        }
    }
    for (j, b) in steps.iter().enumerate() {
        for (i, a) in steps[..j].iter().enumerate() {
            if a.cpu != b.cpu && a.point.conflicts(&b.point) {
                return Some(Conflict {
                    stale_read: i,
                    other_write: j,
                    overwrite: None,
                });
            }
        }
    }
    None
}

/// The first read-write-overwrite triple (see [`find_conflict`]) whose other write and
/// overwrite pass `fits`.
fn lost_update_pattern(
    steps: &[Step],
    touches: &dyn Fn(&Point, &Point) -> bool,
    fits: &dyn Fn(&Point, &Point) -> bool,
) -> Option<Conflict> {
    for (k, w2) in steps.iter().enumerate() {
        if !w2.point.kind.writes() {
            continue;
        }
        for j in (0..k).rev() {
            let w = &steps[j];
            if w.cpu == w2.cpu
                || !w.point.kind.writes()
                || !touches(&w.point, &w2.point)
                || !fits(&w.point, &w2.point)
            {
                continue;
            }
            for i in (0..j).rev() {
                let r = &steps[i];
                if r.cpu == w2.cpu
                    && r.run == w2.run
                    && !r.point.kind.writes()
                    && touches(&r.point, &w2.point)
                {
                    return Some(Conflict {
                        stale_read: i,
                        other_write: j,
                        overwrite: Some(k),
                    });
                }
            }
        }
    }
    None
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn serial_orders_are_counted_as_multinomials() {
        assert_eq!(serial_count(2, 1), 2);
        assert_eq!(serial_count(3, 1), 6);
        assert_eq!(serial_count(2, 2), 6);
        assert_eq!(serial_count(4, 2), 2520);
        assert!(serial_count(16, 4) > MAX_SERIAL_ORDERS);
    }
}
