//! A frame's stack as the verifier sees it: per 8-byte slot, what each byte holds
//! (`STACK_INVALID`, `STACK_MISC`, `STACK_ZERO`, or part of a spilled register) and the
//! spilled register's state.

use crate::reg::{Reg, RegType};

/// Bytes of one slot (`BPF_REG_SIZE`).
pub const SLOT: usize = 8;
/// Bytes of stack a frame may use (`MAX_BPF_STACK`).
pub const MAX_STACK: i64 = 512;

/// What one stack byte holds.
#[derive(Clone, Copy, PartialEq, Eq, Hash, Debug)]
pub enum SlotType {
    /// Never written (`STACK_INVALID`).
    Invalid,
    /// Part of a spilled register (`STACK_SPILL`).
    Spill,
    /// Some data (`STACK_MISC`).
    Misc,
    /// Known zero (`STACK_ZERO`).
    Zero,
    /// Part of a `struct bpf_dynptr` (`STACK_DYNPTR`); the slot's `spilled` register
    /// describes it (see [`crate::dynptr`]).
    Dynptr,
}

impl SlotType {
    /// The kernel's one-letter name in state dumps.
    pub fn letter(self) -> char {
        match self {
            SlotType::Invalid => '?',
            SlotType::Spill => 'r',
            SlotType::Misc => 'm',
            SlotType::Zero => '0',
            SlotType::Dynptr => 'd',
        }
    }
}

/// One 8-byte slot. `types[7]` is the byte at the slot's lowest address (the kernel's
/// layout: byte `fp + off` is `types[(-off - 1) % 8]` of slot `(-off - 1) / 8`).
#[derive(Clone, Copy, PartialEq, Eq, Hash, Debug)]
pub struct StackSlot {
    /// State of the spilled register, meaningful when `types[7]` is [`SlotType::Spill`].
    pub spilled: Reg,
    /// Per byte.
    pub types: [SlotType; SLOT],
}

impl Default for StackSlot {
    fn default() -> StackSlot {
        StackSlot {
            spilled: Reg::not_init(),
            types: [SlotType::Invalid; SLOT],
        }
    }
}

impl StackSlot {
    /// Whether the slot holds a spilled register (`is_spilled_reg`).
    pub fn is_spilled(&self) -> bool {
        self.types[SLOT - 1] == SlotType::Spill
    }

    /// Whether it holds a spilled scalar (`is_spilled_scalar_reg`).
    pub fn is_spilled_scalar(&self) -> bool {
        self.is_spilled() && self.spilled.ty == RegType::Scalar
    }

    /// Whether it holds a whole 8-byte spilled scalar (`is_spilled_scalar_reg64`).
    pub fn is_spilled_scalar64(&self) -> bool {
        self.types[0] == SlotType::Spill && self.spilled.ty == RegType::Scalar
    }

    /// Whether it is a spill (`is_stack_slot_special` for the types bpfvm models).
    pub fn is_special(&self) -> bool {
        self.types[SLOT - 1] == SlotType::Spill
    }

    /// Whether every byte is `STACK_MISC` (or invalid, when `uninit_ok`).
    pub fn is_all_misc(&self, uninit_ok: bool) -> bool {
        self.types
            .iter()
            .all(|&t| t == SlotType::Misc || (t == SlotType::Invalid && uninit_ok))
    }

    /// Saves `reg` as a spill of `size` bytes (`save_register_state`): the top `size`
    /// bytes become `Spill`, the rest `Misc` unless they are zero or invalid.
    pub fn save(&mut self, reg: &Reg, size: usize) {
        self.spilled = *reg;
        for i in (SLOT - size)..SLOT {
            self.types[i] = SlotType::Spill;
        }
        for t in self.types.iter_mut().take(SLOT - size) {
            if *t != SlotType::Zero && *t != SlotType::Invalid {
                *t = SlotType::Misc;
            }
        }
    }

    /// A plain write destroys a spilled register (`scrub_special_slot`).
    pub fn scrub(&mut self) {
        self.spilled.ty = RegType::NotInit;
        if self.is_special() {
            for t in self.types.iter_mut() {
                if *t != SlotType::Invalid {
                    *t = SlotType::Misc;
                }
            }
        }
    }
}

/// The slot index and byte index of stack offset `off` (negative).
pub fn slot_of(off: i64) -> (usize, usize) {
    let slot = (-off - 1) as usize;
    (slot / SLOT, slot % SLOT)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn byte_layout_matches_the_kernel() {
        assert_eq!(slot_of(-8), (0, 7));
        assert_eq!(slot_of(-1), (0, 0));
        assert_eq!(slot_of(-9), (1, 0));
        let mut s = StackSlot::default();
        s.save(&Reg::known(1, false), 4);
        // A 4-byte spill at fp-8 covers fp-8..fp-5: indexes 7..4.
        assert_eq!(&s.types[4..], &[SlotType::Spill; 4]);
        assert_eq!(&s.types[..4], &[SlotType::Invalid; 4]);
        assert!(s.is_spilled() && s.is_spilled_scalar() && !s.is_spilled_scalar64());
        s.scrub();
        assert_eq!(s.types[7], SlotType::Misc);
        assert_eq!(s.types[0], SlotType::Invalid);
    }
}
