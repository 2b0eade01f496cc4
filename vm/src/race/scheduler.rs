//! The turnstile: simulated CPUs run on threads of their own and stop before every shared
//! access ([`Point`]) until the explorer grants them the next step, so exactly one CPU
//! runs at a time and a run is determined by the sequence of CPUs granted.
//!
//! Two hooks stop a CPU: the memory hook ([`CpuHook`], told by `Memory`'s slow path of
//! every load, store and atomic on a watched map value) and the map helpers wrapped by
//! [`MapHelper`] (`bpf_map_lookup_elem` on hash maps, `bpf_map_update_elem`,
//! `bpf_map_delete_elem`).

use std::sync::{Arc, Condvar, Mutex, MutexGuard};
use std::time::{Duration, Instant};

use bpfvm_helpers::memory::{map_handle_index, AccessHook, Memory, WatchedAccess};
use bpfvm_helpers::registry::Callable;
use bpfvm_helpers::{Access, Helper, HelperContext, HelperError, ProgramMap};
use bpfvm_maps::MapType;

/// How long the explorer waits for the CPUs to reach their next shared access (a CPU stuck
/// elsewhere, e.g. spinning on a lock held by a stopped CPU, ends the schedule with an error).
pub(crate) const STALL: Duration = Duration::from_secs(10);

/// What a shared access does.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum AccessKind {
    /// A plain load.
    Read,
    /// A plain store.
    Write,
    /// An atomic read-modify-write (`lock xadd`, fetch ops, xchg, cmpxchg).
    Atomic,
    /// A helper that reads the map (`bpf_map_lookup_elem` on a hash map).
    HelperRead,
    /// A helper that changes the map (`bpf_map_update_elem`, `bpf_map_delete_elem`): a
    /// plain, non-atomic write of the element.
    HelperWrite,
}

impl AccessKind {
    /// Whether the access changes memory.
    pub fn writes(self) -> bool {
        !matches!(self, AccessKind::Read | AccessKind::HelperRead)
    }

    /// Whether the access is a plain (non-atomic) write.
    pub fn plain_write(self) -> bool {
        matches!(self, AccessKind::Write | AccessKind::HelperWrite)
    }
}

/// Where a shared access lands.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub enum Location {
    /// Bytes `offset .. offset + size` of the value in arena slot `slot`.
    Value {
        /// The value's arena slot.
        slot: u64,
        /// First byte.
        offset: u32,
        /// Bytes.
        size: u32,
    },
    /// The element with this key (a map helper).
    Key(Vec<u8>),
}

/// A shared access a CPU is about to make (or made).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Point {
    /// Read, write, atomic, or a map helper.
    pub kind: AccessKind,
    /// The map's index in the program.
    pub map: u32,
    /// The bytes or element accessed.
    pub location: Location,
    /// The instruction (of the program the CPU runs).
    pub pc: usize,
    /// The helper's name, for helper calls.
    pub helper: Option<&'static str>,
    /// The guest address of the bytes (0 for helpers).
    addr: u64,
    /// For `bpf_map_update_elem`: the value it stores.
    pub(crate) stored: Option<Vec<u8>>,
}

impl Point {
    /// Whether `self` and `other` do not commute: the same map, overlapping bytes or the
    /// same element (or a helper and a value of its map), and at least one writes.
    pub fn conflicts(&self, other: &Point) -> bool {
        if self.map != other.map || !(self.kind.writes() || other.kind.writes()) {
            return false;
        }
        match (&self.location, &other.location) {
            (
                Location::Value {
                    slot: a,
                    offset: ao,
                    size: asz,
                },
                Location::Value {
                    slot: b,
                    offset: bo,
                    size: bsz,
                },
            ) => a == b && ao < &(bo + bsz) && bo < &(ao + asz),
            (Location::Key(a), Location::Key(b)) => a == b,
            // A helper and a value of the same map: assumed to conflict.
            _ => true,
        }
    }
}

/// One granted shared access of an explored run.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Step {
    /// The CPU that made it.
    pub cpu: usize,
    /// Which run of that CPU (0 = its first).
    pub run: u32,
    /// The access.
    pub point: Point,
    /// The bytes before the access (empty for helpers).
    pub before: Vec<u8>,
    /// The bytes after it (the stored value for `bpf_map_update_elem`; empty when unknown).
    pub after: Vec<u8>,
    /// The key of the element: a helper's key; for an access to a value, the array index,
    /// or on a hash map the key of the same CPU's last map helper call on that map in the
    /// run (where the value pointer came from); `None` when unknown.
    pub key: Option<Vec<u8>>,
}

/// The turnstile's state.
#[derive(Debug, Default)]
struct State {
    /// Hooks return at once: serial baselines, or a schedule given up.
    free: bool,
    /// The CPU allowed to run (`None`: none; the explorer decides).
    turn: Option<usize>,
    /// Each CPU's next shared access, while it waits for its turn.
    waiting: Vec<Option<Point>>,
    /// CPUs whose runs are over.
    finished: Vec<bool>,
    /// Each CPU's current run.
    run: Vec<u32>,
    /// Each CPU's last step (its `after` bytes are read when the CPU stops next).
    last: Vec<Option<usize>>,
    steps: Vec<Step>,
}

/// Lets one simulated CPU run at a time, between shared accesses.
#[derive(Debug)]
pub(crate) struct Turnstile {
    ncpus: usize,
    state: Mutex<State>,
    cv: Condvar,
}

/// What the explorer sees when every CPU has stopped.
pub(crate) enum Quiet {
    /// The waiting CPUs and their next accesses (empty: all runs are over).
    Waiting(Vec<(usize, Point)>),
    /// A CPU did not reach a shared access or the end of its runs in [`STALL`].
    Stalled,
}

impl Turnstile {
    pub(crate) fn new(ncpus: usize) -> Turnstile {
        Turnstile {
            ncpus,
            state: Mutex::new(State::default()),
            cv: Condvar::new(),
        }
    }

    fn lock(&self) -> MutexGuard<'_, State> {
        self.state.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// Starts a new explored run (`free`: hooks return at once).
    pub(crate) fn reset(&self, free: bool) {
        let mut st = self.lock();
        *st = State {
            free,
            turn: None,
            waiting: vec![None; self.ncpus],
            finished: vec![false; self.ncpus],
            run: vec![0; self.ncpus],
            last: vec![None; self.ncpus],
            steps: Vec::new(),
        };
    }

    /// Whether accesses to `map`'s values are interleaving points: maps shared between
    /// CPUs that programs may write (per-CPU maps give each CPU a private copy).
    pub(crate) fn watches(map: &dyn ProgramMap) -> bool {
        let Some(m) = map.as_map() else {
            return false;
        };
        !map.read_only_for_program()
            && matches!(
                m.map_type(),
                MapType::Array | MapType::Hash | MapType::LruHash
            )
    }

    /// CPU `cpu` is about to make `point`: waits for its turn (at once when free).
    pub(crate) fn arrive(&self, cpu: usize, point: Point, memory: &Memory) {
        let mut st = self.lock();
        if st.free || cpu >= self.ncpus {
            return;
        }
        Self::close_last(&mut st, cpu, memory);
        st.waiting[cpu] = Some(point);
        if st.turn == Some(cpu) {
            st.turn = None;
        }
        self.cv.notify_all();
        while !(st.free || st.turn == Some(cpu) && st.waiting[cpu].is_some()) {
            st = self.cv.wait(st).unwrap_or_else(|p| p.into_inner());
        }
        if st.free {
            return;
        }
        let Some(point) = st.waiting[cpu].take() else {
            return;
        };
        let mut before = vec![
            0u8;
            if point.addr != 0 {
                point_size(&point)
            } else {
                0
            }
        ];
        if !before.is_empty() && memory.peek_bytes(point.addr, &mut before).is_err() {
            before.clear();
        }
        let run = st.run[cpu];
        let after = point.stored.clone().unwrap_or_default();
        st.steps.push(Step {
            cpu,
            run,
            point,
            before,
            after,
            key: None,
        });
        st.last[cpu] = Some(st.steps.len() - 1);
    }

    /// Reads the bytes CPU `cpu`'s last step left (it has stopped since).
    fn close_last(st: &mut State, cpu: usize, memory: &Memory) {
        if let Some(i) = st.last[cpu].take() {
            let s = &mut st.steps[i];
            if s.point.addr != 0 {
                let mut after = vec![0u8; point_size(&s.point)];
                if memory.peek_bytes(s.point.addr, &mut after).is_ok() {
                    s.after = after;
                }
            }
        }
    }

    /// CPU `cpu`'s current run ended (`memory`: its lane's, to read what its last step left).
    pub(crate) fn run_ended(&self, cpu: usize, memory: &Memory) {
        let mut st = self.lock();
        if cpu >= self.ncpus {
            return;
        }
        Self::close_last(&mut st, cpu, memory);
        st.run[cpu] += 1;
    }

    /// CPU `cpu` has no more runs.
    pub(crate) fn finish(&self, cpu: usize) {
        let mut st = self.lock();
        if cpu >= self.ncpus {
            return;
        }
        st.finished[cpu] = true;
        if st.turn == Some(cpu) {
            st.turn = None;
        }
        self.cv.notify_all();
    }

    /// Waits until no CPU runs: each waits at a shared access or has finished.
    pub(crate) fn quiet(&self) -> Quiet {
        let deadline = Instant::now() + STALL;
        let mut st = self.lock();
        loop {
            let settled = st.turn.is_none()
                && (0..self.ncpus).all(|c| st.finished[c] || st.waiting[c].is_some());
            if settled {
                let waiting = (0..self.ncpus)
                    .filter_map(|c| st.waiting[c].clone().map(|p| (c, p)))
                    .collect();
                return Quiet::Waiting(waiting);
            }
            let now = Instant::now();
            if now >= deadline {
                return Quiet::Stalled;
            }
            st = self
                .cv
                .wait_timeout(st, deadline - now)
                .unwrap_or_else(|p| p.into_inner())
                .0;
        }
    }

    /// Lets `cpu` make its waiting access and run on to its next one.
    pub(crate) fn grant(&self, cpu: usize) {
        let mut st = self.lock();
        st.turn = Some(cpu);
        self.cv.notify_all();
    }

    /// Gives the schedule up: every hook returns at once from now on.
    pub(crate) fn release(&self) {
        let mut st = self.lock();
        st.free = true;
        self.cv.notify_all();
    }

    /// The steps granted so far, with their keys (see [`Step::key`]; `arrays`: whether
    /// map `i` is an array, whose slots are its keys).
    pub(crate) fn take_steps(&self, arrays: &[bool]) -> Vec<Step> {
        let mut steps = std::mem::take(&mut self.lock().steps);
        let mut last: std::collections::HashMap<(usize, u32, u32), Vec<u8>> =
            std::collections::HashMap::new();
        for s in &mut steps {
            s.key = match &s.point.location {
                Location::Key(k) => {
                    last.insert((s.cpu, s.run, s.point.map), k.clone());
                    Some(k.clone())
                }
                Location::Value { slot, .. } => {
                    if arrays.get(s.point.map as usize).copied().unwrap_or(false) {
                        Some((*slot as u32).to_le_bytes().to_vec())
                    } else {
                        last.get(&(s.cpu, s.run, s.point.map)).cloned()
                    }
                }
            };
        }
        steps
    }
}

fn point_size(p: &Point) -> usize {
    match &p.location {
        Location::Value { size, .. } => *size as usize,
        Location::Key(_) => 0,
    }
}

/// The memory hook of one CPU's lane.
#[derive(Debug)]
pub(crate) struct CpuHook {
    pub(crate) cpu: usize,
    pub(crate) turnstile: Arc<Turnstile>,
}

impl AccessHook for CpuHook {
    fn watches(&self, map: &dyn ProgramMap) -> bool {
        Turnstile::watches(map)
    }

    fn before_access(&self, memory: &Memory, a: &WatchedAccess) {
        let kind = match a.access {
            Access::Read => AccessKind::Read,
            Access::Write => AccessKind::Write,
            Access::Atomic => AccessKind::Atomic,
        };
        let point = Point {
            kind,
            map: a.map,
            location: Location::Value {
                slot: a.slot,
                offset: a.offset,
                size: a.size as u32,
            },
            pc: a.pc,
            helper: None,
            addr: a.addr,
            stored: None,
        };
        self.turnstile.arrive(self.cpu, point, memory);
    }
}

/// A map helper wrapped so that calls on a watched map are interleaving points.
pub(crate) struct MapHelper {
    pub(crate) name: &'static str,
    pub(crate) writes: bool,
    pub(crate) inner: Callable,
    pub(crate) turnstile: Arc<Turnstile>,
}

impl std::fmt::Debug for MapHelper {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "MapHelper({})", self.name)
    }
}

impl Helper for MapHelper {
    fn call(&self, ctx: &mut HelperContext, args: [u64; 5]) -> Result<u64, HelperError> {
        if ctx.memory.has_access_hook() {
            self.point(ctx, &args);
        }
        self.inner.call(ctx, args)
    }
}

impl MapHelper {
    /// Stops at the call when its map is watched (a lookup only on hash maps: an array's
    /// lookup reads no shared state).
    fn point(&self, ctx: &HelperContext, args: &[u64; 5]) {
        let Some(index) = map_handle_index(args[0]) else {
            return;
        };
        let Some(map) = ctx.maps().get(index as usize) else {
            return;
        };
        if !Turnstile::watches(map.as_ref()) {
            return;
        }
        let is_array = map.as_map().is_some_and(|m| m.map_type() == MapType::Array);
        if is_array && !self.writes {
            return;
        }
        let mut key = vec![0u8; map.key_size()];
        if ctx.memory.peek_bytes(args[1], &mut key).is_err() {
            return; // the helper reports the bad pointer
        }
        let stored = (self.name == "bpf_map_update_elem").then(|| {
            let mut v = vec![0u8; map.value_size()];
            ctx.memory.peek_bytes(args[2], &mut v).map(|()| v).ok()
        });
        let point = Point {
            kind: if self.writes {
                AccessKind::HelperWrite
            } else {
                AccessKind::HelperRead
            },
            map: index,
            location: Location::Key(key),
            pc: ctx.memory.noted_pc(),
            helper: Some(self.name),
            addr: 0,
            stored: stored.flatten(),
        };
        self.turnstile
            .arrive(ctx.cpu() as usize, point, &ctx.memory);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn at(kind: AccessKind, slot: u64, offset: u32, size: u32) -> Point {
        Point {
            kind,
            map: 0,
            location: Location::Value { slot, offset, size },
            pc: 0,
            helper: None,
            addr: 0,
            stored: None,
        }
    }

    #[test]
    fn only_overlapping_accesses_with_a_write_conflict() {
        use AccessKind::*;
        assert!(at(Read, 0, 0, 8).conflicts(&at(Write, 0, 4, 4)));
        assert!(at(Atomic, 0, 0, 8).conflicts(&at(Atomic, 0, 0, 8)));
        assert!(!at(Read, 0, 0, 8).conflicts(&at(Read, 0, 0, 8)));
        assert!(!at(Write, 0, 0, 4).conflicts(&at(Write, 0, 4, 4)));
        assert!(!at(Write, 0, 0, 8).conflicts(&at(Write, 1, 0, 8)));
        let mut other_map = at(Write, 0, 0, 8);
        other_map.map = 1;
        assert!(!at(Write, 0, 0, 8).conflicts(&other_map));
        let key = |kind, k: u8| Point {
            location: Location::Key(vec![k]),
            ..at(kind, 0, 0, 0)
        };
        assert!(key(HelperWrite, 1).conflicts(&key(HelperRead, 1)));
        assert!(!key(HelperWrite, 1).conflicts(&key(HelperWrite, 2)));
        assert!(!key(HelperRead, 1).conflicts(&at(Read, 0, 0, 8)));
        assert!(key(HelperWrite, 1).conflicts(&at(Read, 0, 0, 8)));
    }

    #[test]
    fn a_free_turnstile_lets_every_access_through() {
        let t = Turnstile::new(2);
        t.reset(true);
        t.arrive(0, at(AccessKind::Write, 0, 0, 8), &Memory::new());
        t.arrive(5, at(AccessKind::Write, 0, 0, 8), &Memory::new());
        assert!(t.take_steps(&[]).is_empty());
    }
}
