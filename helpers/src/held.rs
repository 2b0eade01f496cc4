//! What a run holds and must give back before it ends: a value's `bpf_spin_lock` (helpers 93
//! and 94) and ring buffer reservations (131, given back by 132 or 133).
//!
//! The kernel's verifier refuses a program that can exit holding either. bpfvm checks it when
//! the run ends: [`HelperContext::end_run`] releases the lock and discards the reservations
//! that are left — so a faulting run never leaves a map locked or a ring buffer blocked — and
//! reports them as an error. Engines call it after every run, whatever its outcome.

use std::sync::Arc;

use bpfvm_maps::Reservation;

use crate::context::HelperContext;
use crate::error::HelperError;
use crate::maps::ProgramMap;
use crate::memory::LockWord;

/// The lock and reservations a run holds.
#[derive(Debug, Default)]
pub struct Held {
    /// The `bpf_spin_lock` taken by helper 93 and not yet released (the verifier allows one
    /// at a time).
    pub(crate) lock: Option<LockWord>,
    /// Ring buffer records reserved and not yet submitted or discarded.
    pub(crate) reservations: Vec<Reserved>,
}

/// One ring buffer reservation held by the run.
#[derive(Debug)]
pub(crate) struct Reserved {
    /// The ring buffer.
    pub(crate) map: Arc<dyn ProgramMap>,
    /// The record.
    pub(crate) record: Reservation,
    /// The address the program got (the object installed for it).
    pub(crate) addr: u64,
}

impl Reserved {
    /// Commits the record (submit, or discard when `discard`).
    pub(crate) fn commit(&self, discard: bool) {
        if let Some(m) = self.map.as_map() {
            m.ringbuf_commit(&self.record, discard);
        }
    }
}

impl HelperContext {
    /// Ends a run: releases a `bpf_spin_lock` the program still holds and discards its
    /// ring buffer reservations (removing their memory from the program's reach). Returns
    /// an error naming what was left, which the kernel's verifier would have refused; `Ok`
    /// (one test, nothing else) when nothing was held. Engines call it after every run.
    #[inline]
    pub fn end_run(&mut self) -> Result<(), HelperError> {
        if self.held.lock.is_none() && self.held.reservations.is_empty() {
            return Ok(());
        }
        self.release_held()
    }

    #[cold]
    fn release_held(&mut self) -> Result<(), HelperError> {
        let mut problems = Vec::new();
        let mut helper = "bpf_ringbuf_reserve";
        if let Some(lock) = self.held.lock.take() {
            lock.unlock();
            helper = "bpf_spin_lock";
            problems.push(format!(
                "still held the bpf_spin_lock of {} (bpfvm released it)",
                lock.describe()
            ));
        }
        let reservations = std::mem::take(&mut self.held.reservations);
        if !reservations.is_empty() {
            for r in &reservations {
                self.memory.remove_object(r.addr);
                r.commit(true);
            }
            problems.push(format!(
                "held {} ring buffer reservation(s) neither submitted nor discarded (bpfvm discarded them)",
                reservations.len()
            ));
        }
        Err(HelperError::Failed {
            helper: helper.to_string(),
            message: format!(
                "the program exited while it {}; the kernel's verifier refuses programs that can",
                problems.join(" and ")
            ),
        })
    }

    /// Whether the run holds a `bpf_spin_lock` now.
    pub fn holds_lock(&self) -> bool {
        self.held.lock.is_some()
    }

    /// Ring buffer reservations the run holds now.
    pub fn reservations_held(&self) -> usize {
        self.held.reservations.len()
    }
}
