//! Scalar precision tracking (`mark_chain_precision`): scalars start imprecise and only
//! those whose exact range decided something (a branch, a pointer offset, a helper size,
//! the return value) are marked precise, backwards through the instructions and
//! checkpoints that computed them. Pruning compares only precise scalars' ranges.

use crate::check_jmp::Linked;
use crate::error::VerifierError;
use crate::verifier::Verifier;

/// Whether precision tracking decides which scalars pruning compares; when off, every
/// scalar is compared exactly (sound, prunes less).
pub(crate) const ENABLED: bool = false;

/// Packs linked registers into a jump history entry (`linked_regs_pack`).
pub(crate) fn pack_linked(l: &[Linked]) -> u64 {
    let mut v: u64 = 0;
    for e in l {
        let entry =
            (e.frameno as u64 & 0x7) | ((e.index as u64 & 0x3f) << 3) | (u64::from(e.is_reg) << 9);
        v = (v << 10) | entry;
    }
    (v << 4) | l.len() as u64
}

/// Unpacks [`pack_linked`].
#[allow(dead_code)] // read by backtracking once precision tracking is enabled
pub(crate) fn unpack_linked(mut v: u64) -> Vec<Linked> {
    let n = (v & 0xf) as usize;
    v >>= 4;
    let mut out = Vec::with_capacity(n);
    for _ in 0..n {
        out.push(Linked {
            frameno: (v & 0x7) as usize,
            index: ((v >> 3) & 0x3f) as usize,
            is_reg: (v >> 9) & 1 != 0,
        });
        v >>= 10;
    }
    out.reverse();
    out
}

impl Verifier<'_> {
    /// Marks register `regno` of the current frame (and everything it came from) precise.
    pub(crate) fn mark_chain_precision(&mut self, regno: u8) -> Result<(), VerifierError> {
        let _ = regno;
        Ok(())
    }

    /// After a pruning hit: the precise scalars of checkpoint `k` must be precise along
    /// the current path too (`propagate_precision`).
    pub(crate) fn propagate_precision(&mut self, k: usize) -> Result<(), VerifierError> {
        let _ = k;
        Ok(())
    }

    /// Before a checkpoint: forget inherited precision (`mark_all_scalars_imprecise`).
    pub(crate) fn mark_all_scalars_imprecise(&mut self) {
        if !ENABLED {
            return;
        }
        self.cur.for_each_reg(|r| {
            if r.ty == crate::reg::RegType::Scalar {
                r.precise = false;
            }
        });
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn linked_registers_round_trip() {
        let l = vec![
            Linked {
                frameno: 0,
                index: 3,
                is_reg: true,
            },
            Linked {
                frameno: 1,
                index: 17,
                is_reg: false,
            },
        ];
        assert_eq!(unpack_linked(pack_linked(&l)), l);
    }
}
