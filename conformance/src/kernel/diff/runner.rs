//! Runs op sequences on the kernel and on a simulated map and compares every outcome.

use super::emulate::{emulate_noting, needs_emulation, Ambiguous};
use super::host::HostMap;
use super::op::{apply, Op, Outcome};
use crate::kernel::{Errno, KernelMap};
use std::collections::BTreeMap;

/// One op whose outcomes differ.
#[derive(Debug, Clone)]
pub struct Mismatch {
    /// Index of the op in the sequence.
    pub step: usize,
    /// The op.
    pub op: Op,
    /// What the kernel returned (or the emulation derived from it).
    pub kernel: Outcome,
    /// What the simulated map returned.
    pub sim: Outcome,
    /// Whether `kernel` is an emulation of the merged kernel (see the `emulate` module).
    pub emulated: bool,
}

/// Counts and differences of one run.
#[derive(Debug, Clone, Default)]
pub struct Report {
    /// Ops applied to both maps.
    pub ops: u64,
    /// Ops whose kernel outcome was compared directly.
    pub compared: u64,
    /// Ops compared with an emulation of the merged kernel on 6.18.
    pub emulated: u64,
    /// Ops not compared (none today; kept so a skip can never be silent).
    pub skipped: u64,
    /// BPF_F_CPU updates of existing LRU_PERCPU_HASH keys that 6.18 cannot decide between
    /// in place and re-created (see `emulate::Ambiguous`) and where the simulator updated
    /// in place; the kernel map was given the in-place value.
    pub resynced: u64,
    /// The differences, in order.
    pub mismatches: Vec<Mismatch>,
    /// How often each (command, kernel result) pair occurred, e.g. `"update: EEXIST"`.
    pub tally: BTreeMap<String, u64>,
}

impl Report {
    /// Adds another report's counts and differences.
    pub fn merge(&mut self, other: Report) {
        self.ops += other.ops;
        self.compared += other.compared;
        self.emulated += other.emulated;
        self.skipped += other.skipped;
        self.resynced += other.resynced;
        self.mismatches.extend(other.mismatches);
        for (k, v) in other.tally {
            *self.tally.entry(k).or_default() += v;
        }
    }
}

/// Where a run's ops come from.
pub trait OpSource {
    /// The op for `step`, or `None` to stop.
    fn next_op(&mut self, step: usize) -> Option<Op>;
    /// Sees every op with the kernel's outcome (e.g. to resume batches from `out_batch`).
    fn observe(&mut self, _op: &Op, _kernel: &Outcome) {}
}

impl<I: Iterator<Item = Op>> OpSource for I {
    fn next_op(&mut self, _step: usize) -> Option<Op> {
        self.next()
    }
}

/// Applies each op to `kernel` and `sim`, comparing outcomes, and stops after
/// `max_mismatches` differences (later outcomes would only echo the first one).
pub fn run(
    kernel: &KernelMap,
    sim: &dyn HostMap,
    source: &mut dyn OpSource,
    max_mismatches: usize,
) -> Report {
    let def = kernel.def();
    let mut report = Report::default();
    let mut step = 0;
    while let Some(op) = source.next_op(step) {
        let emulated = needs_emulation(&def, &op);
        let mut ambiguous = Vec::new();
        let k = if emulated {
            report.emulated += 1;
            emulate_noting(kernel, &op, &mut ambiguous)
        } else {
            report.compared += 1;
            apply(kernel, &op)
        };
        let s = apply(sim, &op);
        report.ops += 1;
        source.observe(&op, &k);
        *report.tally.entry(tally_key(&op, &k)).or_default() += 1;
        let mut differs = k != s;
        for a in &ambiguous {
            match settle(kernel, sim, a) {
                Ok(true) => report.resynced += 1,
                Ok(false) => {}
                Err(()) => differs = true,
            }
        }
        if differs {
            report.mismatches.push(Mismatch {
                step,
                op,
                kernel: k,
                sim: s,
                emulated,
            });
            if report.mismatches.len() >= max_mismatches {
                break;
            }
        }
        step += 1;
    }
    report
}

/// Settles an [`Ambiguous`] update by the simulator's choice: if it re-created the
/// element, the kernel map already agrees; if it updated in place, the kernel map takes the
/// in-place value with BPF_EXIST (no node taken; the reference bit the in-place update set
/// is set again, which changes nothing). `Ok(true)` when the in-place value was written,
/// `Err` when the simulator holds neither value.
fn settle(kernel: &KernelMap, sim: &dyn HostMap, a: &Ambiguous) -> Result<bool, ()> {
    let (Ok(k), Ok(s)) = (kernel.lookup(&a.key, 0), sim.lookup(&a.key, 0)) else {
        return Err(());
    };
    if k == s {
        return Ok(false);
    }
    if s != a.in_place {
        return Err(());
    }
    kernel
        .update(&a.key, &s, crate::kernel::consts::elem::EXIST)
        .map_err(drop)?;
    Ok(true)
}

/// A map's contents: (key, full value) pairs in GET_NEXT_KEY order.
pub type Contents = Vec<(Vec<u8>, Vec<u8>)>;

/// Every (key, full value) of `map` in GET_NEXT_KEY order, at most `limit` of them.
pub fn dump(map: &dyn HostMap, limit: usize) -> Result<Contents, Errno> {
    let mut out = Vec::new();
    let mut key: Option<Vec<u8>> = None;
    while out.len() < limit {
        match map.get_next_key(key.as_deref()) {
            Ok(next) => {
                let value = map.lookup(&next, 0)?;
                out.push((next.clone(), value));
                key = Some(next);
            }
            Err(Errno::ENOENT) => break,
            Err(e) => return Err(e),
        }
    }
    Ok(out)
}

/// `"<command>: <result>"` for the tally.
fn tally_key(op: &Op, out: &Outcome) -> String {
    let cmd = match op {
        Op::Lookup { .. } => "lookup",
        Op::Update { .. } => "update",
        Op::Delete { .. } => "delete",
        Op::GetNextKey { .. } => "get_next_key",
        Op::LookupAndDelete { .. } => "lookup_and_delete",
        Op::LookupBatch { .. } => "lookup_batch",
        Op::LookupAndDeleteBatch { .. } => "lookup_and_delete_batch",
        Op::UpdateBatch { .. } => "update_batch",
        Op::DeleteBatch { .. } => "delete_batch",
        Op::Freeze => "freeze",
        Op::HostCpu(_) => "host_cpu",
    };
    let res = match out {
        Outcome::Bytes(r) => r.as_ref().err().copied(),
        Outcome::Unit(r) => r.err(),
        Outcome::Read(r) => r.result.err(),
        Outcome::Write(w) => w.result.err(),
    };
    match res.and_then(Errno::name) {
        None if res.is_none() => format!("{cmd}: ok"),
        Some(name) => format!("{cmd}: {name}"),
        None => format!("{cmd}: {}", res.map_or(0, |e| e.0)),
    }
}

/// Whether `ops` on fresh maps from `def` (kernel and bpfvm-maps with `ncpus` CPUs) show a
/// difference: a mismatching outcome or different final contents.
pub fn differs(def: crate::kernel::MapDef, ncpus: u32, ops: &[Op]) -> Result<bool, Errno> {
    let kernel = KernelMap::create(def)?;
    let sim = super::sim::sim_map(def, ncpus)?;
    let report = run(&kernel, &sim, &mut ops.iter().cloned(), 1);
    Ok(!report.mismatches.is_empty() || dump(&kernel, 10_000) != dump(&sim, 10_000))
}

/// Shrinks a sequence that [`differs`] to a shorter one that still does, by dropping one
/// op at a time (greedy, last to first, repeated until nothing can be dropped).
pub fn minimize(def: crate::kernel::MapDef, ncpus: u32, ops: &[Op]) -> Result<Vec<Op>, Errno> {
    let mut ops = ops.to_vec();
    loop {
        let before = ops.len();
        let mut i = ops.len();
        while i > 0 {
            i -= 1;
            let mut shorter = ops.clone();
            shorter.remove(i);
            if differs(def, ncpus, &shorter)? {
                ops = shorter;
            }
        }
        if ops.len() == before {
            return Ok(ops);
        }
    }
}
