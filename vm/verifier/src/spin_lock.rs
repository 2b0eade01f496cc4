//! `bpf_spin_lock` / `bpf_spin_unlock` (helpers 93 and 94), as the kernel's
//! `process_spin_lock` and the lock checks of `do_check` and `check_resource_leak` have
//! them: the argument points exactly at the `struct bpf_spin_lock` of a map value (the map
//! has BTF describing one), one lock at a time, the unlock releases the lock that was
//! taken (same map, same lookup id), no helper calls while it is held, no exit from the
//! main program with it held. The state is [`LockState`] on the path ([`VState::lock`]),
//! compared by pruning as the kernel's `refsafe` compares `active_lock_id`/`_ptr`.
//!
//! [`VState::lock`]: crate::state::VState::lock

use crate::error::{Rule, VerifierError, EACCES, EINVAL};
use crate::insn::Insn;
use crate::log::reg_type_str;
use crate::reg::{Reg, RegType};
use crate::state::VState;
use crate::verifier::Verifier;

/// `BPF_FUNC_spin_lock`.
pub const SPIN_LOCK: u32 = 93;
/// `BPF_FUNC_spin_unlock`.
pub const SPIN_UNLOCK: u32 = 94;

/// The lock a path holds (`active_lock_id`, `active_lock_ptr`): the id of the map value
/// pointer it was taken through (0 for a direct value address) and the map.
#[derive(Clone, Copy, PartialEq, Eq, Hash, Debug)]
pub struct LockState {
    /// The register id of the map value pointer.
    pub id: u32,
    /// The map's index.
    pub map: usize,
    /// The instruction that took it.
    pub insn_idx: usize,
}

type R<T> = Result<T, VerifierError>;

impl Verifier<'_> {
    /// `do_check`'s rule for a call instruction while a lock is held: only
    /// `bpf_spin_unlock` and bpf-to-bpf calls of static subprograms.
    pub(crate) fn check_call_under_lock(&self, insn: &Insn) -> R<()> {
        if self.cur.lock.is_none() {
            return Ok(());
        }
        let helper = insn.src == 0 && insn.imm != SPIN_UNLOCK as i32;
        let kfunc = insn.src == crate::insn::PSEUDO_KFUNC_CALL;
        if helper || kfunc {
            return Err(self.err(
                Rule::References,
                EINVAL,
                "function calls are not allowed while holding a lock",
            ));
        }
        Ok(())
    }

    /// `check_resource_leak`'s lock rule: `what` (an exit of the main program, a tail call)
    /// with a lock held.
    pub(crate) fn check_lock_released(&self, what: &str) -> R<()> {
        if self.cur.lock.is_some() {
            return Err(self.err(
                Rule::References,
                EINVAL,
                format!("{what} cannot be used inside bpf_spin_lock-ed region"),
            ));
        }
        Ok(())
    }

    /// A call of `bpf_spin_lock` or `bpf_spin_unlock` (`check_helper_call` with
    /// `ARG_PTR_TO_SPIN_LOCK` and `process_spin_lock`).
    pub(crate) fn check_spin_lock_call(&mut self, func: u32) -> R<()> {
        let regno = 1u8;
        self.check_reg_src(regno)?;
        let reg = *self.reg(regno);
        if reg.ty != RegType::MapValue || reg.maybe_null() {
            return Err(self.err(
                Rule::HelperArgs,
                EACCES,
                format!(
                    "R{regno} type={} expected=map_value, ptr_",
                    reg_type_str(reg.ty, reg.flags)
                ),
            ));
        }
        let lock = self.process_spin_lock(regno, &reg, func == SPIN_LOCK)?;
        self.cur.lock = lock;
        for r in 0..=5 {
            *self.reg_mut(r) = Reg::not_init();
        }
        Ok(())
    }

    /// `process_spin_lock`: the lock state after the call.
    fn process_spin_lock(&self, regno: u8, reg: &Reg, is_lock: bool) -> R<Option<LockState>> {
        if !reg.b.var_off.is_const() {
            return Err(self.err(
                Rule::HelperArgs,
                EINVAL,
                format!(
                    "R{regno} doesn't have constant offset. bpf_spin_lock has to be at the constant offset"
                ),
            ));
        }
        let m = reg.map();
        let map = &self.prog.maps[m];
        if !map.btf {
            return Err(self.err(
                Rule::HelperArgs,
                EINVAL,
                format!(
                    "map '{}' has to have BTF in order to use bpf_spin_lock",
                    map.name
                ),
            ));
        }
        let Some(field) = map.spin_lock() else {
            return Err(self.err(
                Rule::HelperArgs,
                EINVAL,
                format!("map '{}' has no valid bpf_spin_lock", map.name),
            ));
        };
        let off = reg.b.var_off.value as i64 + i64::from(reg.off);
        if off != i64::from(field.offset) {
            return Err(self.err(
                Rule::HelperArgs,
                EINVAL,
                format!(
                    "off {off} doesn't point to 'struct bpf_spin_lock' that is at {}",
                    field.offset
                ),
            ));
        }
        if is_lock {
            if self.cur.lock.is_some() {
                return Err(self.err(
                    Rule::References,
                    EINVAL,
                    "Locking two bpf_spin_locks are not allowed",
                ));
            }
            return Ok(Some(LockState {
                id: reg.id,
                map: m,
                insn_idx: self.insn_idx,
            }));
        }
        let Some(held) = self.cur.lock else {
            return Err(self.err(
                Rule::References,
                EINVAL,
                "bpf_spin_unlock without taking a lock",
            ));
        };
        if held.id != reg.id || held.map != m {
            return Err(self.err(
                Rule::References,
                EINVAL,
                "bpf_spin_unlock of different lock",
            ));
        }
        Ok(None)
    }
}

/// Whether helper `id` is one this module checks.
pub(crate) fn is_lock_helper(id: i32) -> bool {
    id == SPIN_LOCK as i32 || id == SPIN_UNLOCK as i32
}

/// The lock part of `refsafe`: both paths hold no lock, or the same map's lock through
/// ids that `check_ids` maps onto each other.
pub(crate) fn locks_equal(
    old: &VState,
    cur: &VState,
    check_ids: impl FnOnce(u32, u32) -> bool,
) -> bool {
    match (old.lock, cur.lock) {
        (None, None) => true,
        (Some(o), Some(c)) => o.map == c.map && check_ids(o.id, c.id),
        _ => false,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::helpers;

    #[test]
    fn lock_helpers() {
        assert!(is_lock_helper(93) && is_lock_helper(94) && !is_lock_helper(1));
        assert_eq!(helpers::name(93), "bpf_spin_lock");
    }
}
