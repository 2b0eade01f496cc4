//! `bpf_spin_lock` (93) and `bpf_spin_unlock` (94): real mutual exclusion between simulated
//! CPUs (which run on different host threads) and the host's `BPF_F_LOCK` copies, through the
//! lock word of `bpfvm_maps` ([`LockWord`](crate::LockWord)).
//!
//! As the verifier demands, a program holds at most one lock, unlocks only the lock it holds,
//! and gives it back before it exits: breaking any of these is a run error here (and an
//! unreleased lock is released when the run ends, see [`crate::held`]). The wait for a lock
//! another CPU or the host holds is bounded like the host's: after
//! [`SPIN_LOCK_WAIT`] the run fails instead of spinning for ever.
//! Not enforced: the verifier's rule that no other helper may be called while a lock is held.

use std::time::Instant;

use bpfvm_maps::SPIN_LOCK_WAIT;

use crate::context::HelperContext;
use crate::error::HelperError;
use crate::id::HelperId;
use crate::registry::Registry;

const LOCK: &str = "bpf_spin_lock";
const UNLOCK: &str = "bpf_spin_unlock";

/// Registers helpers 93 and 94.
pub fn register(r: &mut Registry) {
    r.register_builtin(HelperId::SPIN_LOCK, LOCK, spin_lock, None)
        .expect("built-in ids are small");
    r.register_builtin(HelperId::SPIN_UNLOCK, UNLOCK, spin_unlock, None)
        .expect("built-in ids are small");
}

fn fail(helper: &str, message: String) -> Box<HelperError> {
    Box::new(HelperError::Failed {
        helper: helper.to_string(),
        message,
    })
}

/// `bpf_spin_lock(lock)`: waits for the lock at `lock` (the `bpf_spin_lock` field of a map
/// value) and takes it. Returns 0.
pub fn spin_lock(ctx: &mut HelperContext, a: &[u64; 5]) -> Result<u64, Box<HelperError>> {
    if let Some(held) = &ctx.held.lock {
        return Err(fail(
            LOCK,
            format!(
                "a second lock while holding the one of {} (the verifier refuses nested locks)",
                held.describe()
            ),
        ));
    }
    let word = ctx.memory.spin_lock_word(a[0]).ok_or_else(|| {
        fail(
            LOCK,
            format!("{:#x} is not the bpf_spin_lock of a map value", a[0]),
        )
    })?;
    let mut spins = 0u32;
    let mut deadline = None;
    while !word.try_lock() {
        spins = spins.wrapping_add(1);
        if spins % 64 == 0 {
            let now = Instant::now();
            if *deadline.get_or_insert(now + SPIN_LOCK_WAIT) <= now {
                return Err(fail(
                    LOCK,
                    format!(
                        "the lock of {} stayed held for {:?} (by another CPU's program or the host)",
                        word.describe(),
                        SPIN_LOCK_WAIT
                    ),
                ));
            }
            std::thread::yield_now();
        } else {
            std::hint::spin_loop();
        }
    }
    ctx.held.lock = Some(word);
    Ok(0)
}

/// `bpf_spin_unlock(lock)`: releases the lock the program holds, which must be the one at
/// `lock`. Returns 0.
pub fn spin_unlock(ctx: &mut HelperContext, a: &[u64; 5]) -> Result<u64, Box<HelperError>> {
    let word = ctx.memory.spin_lock_word(a[0]).ok_or_else(|| {
        fail(
            UNLOCK,
            format!("{:#x} is not the bpf_spin_lock of a map value", a[0]),
        )
    })?;
    match ctx.held.lock.take() {
        Some(held) if held.is(&word) => {
            held.unlock();
            Ok(0)
        }
        other => {
            let message = match &other {
                Some(held) => format!(
                    "unlocks {} but the program holds the lock of {}",
                    word.describe(),
                    held.describe()
                ),
                None => format!(
                    "unlocks {}, which the program does not hold",
                    word.describe()
                ),
            };
            ctx.held.lock = other;
            Err(fail(UNLOCK, message))
        }
    }
}
