//! Tracked numbers ("tnums"): what is known about each bit of a 64-bit value.
//!
//! A bit is known to be 0 (`value` 0, `mask` 0), known to be 1 (`value` 1, `mask` 0) or
//! unknown (`mask` 1, `value` 0). The operations give a tnum covering every result of the
//! operation on every pair of values the operands cover, the abstraction the kernel's
//! verifier uses for `var_off` (kernel/bpf/tnum.c).

use std::fmt;

/// A value of which some bits are known.
#[derive(Clone, Copy, PartialEq, Eq, Hash, Debug)]
pub struct Tnum {
    /// The known bits (bits with a `mask` bit set are 0 here).
    pub value: u64,
    /// The unknown bits.
    pub mask: u64,
}

impl Tnum {
    /// Nothing known.
    pub const UNKNOWN: Tnum = Tnum {
        value: 0,
        mask: u64::MAX,
    };

    /// A tnum from its parts.
    pub const fn new(value: u64, mask: u64) -> Tnum {
        Tnum { value, mask }
    }

    /// Exactly `v`.
    pub const fn constant(v: u64) -> Tnum {
        Tnum { value: v, mask: 0 }
    }

    /// The smallest tnum covering every value in `[min, max]`.
    pub fn range(min: u64, max: u64) -> Tnum {
        let differing = min ^ max;
        let bits = 64 - differing.leading_zeros();
        if bits > 63 {
            return Tnum::UNKNOWN;
        }
        let low = (1u64 << bits) - 1;
        Tnum::new(min & !low, low)
    }

    /// Whether every bit is known.
    pub fn is_const(self) -> bool {
        self.mask == 0
    }

    /// Whether the value is known to be `v`.
    pub fn equals_const(self, v: u64) -> bool {
        self.is_const() && self.value == v
    }

    /// Whether no bit is known.
    pub fn is_unknown(self) -> bool {
        self.mask == u64::MAX
    }

    /// Shift left by `shift` (< 64).
    pub fn lshift(self, shift: u32) -> Tnum {
        Tnum::new(self.value << shift, self.mask << shift)
    }

    /// Logical shift right by `shift` (< 64).
    pub fn rshift(self, shift: u32) -> Tnum {
        Tnum::new(self.value >> shift, self.mask >> shift)
    }

    /// Arithmetic shift right by `shift` on a `bits`-bit (32 or 64) value.
    pub fn arshift(self, shift: u32, bits: u32) -> Tnum {
        if bits == 32 {
            Tnum::new(
                ((self.value as i32) >> shift) as u32 as u64,
                ((self.mask as i32) >> shift) as u32 as u64,
            )
        } else {
            Tnum::new(
                ((self.value as i64) >> shift) as u64,
                ((self.mask as i64) >> shift) as u64,
            )
        }
    }

    /// Sum (also `+`).
    pub fn plus(self, b: Tnum) -> Tnum {
        let masks = self.mask.wrapping_add(b.mask);
        let values = self.value.wrapping_add(b.value);
        let carries = masks.wrapping_add(values) ^ values;
        let unknown = carries | self.mask | b.mask;
        Tnum::new(values & !unknown, unknown)
    }

    /// Difference (also `-`).
    pub fn minus(self, b: Tnum) -> Tnum {
        let diff = self.value.wrapping_sub(b.value);
        let high = diff.wrapping_add(self.mask);
        let low = diff.wrapping_sub(b.mask);
        let unknown = (high ^ low) | self.mask | b.mask;
        Tnum::new(diff & !unknown, unknown)
    }

    /// Two's complement negation (also unary `-`).
    pub fn negate(self) -> Tnum {
        Tnum::constant(0).minus(self)
    }

    /// Bitwise and.
    pub fn and(self, b: Tnum) -> Tnum {
        let may_a = self.value | self.mask;
        let may_b = b.value | b.mask;
        let v = self.value & b.value;
        Tnum::new(v, may_a & may_b & !v)
    }

    /// Bitwise or.
    pub fn or(self, b: Tnum) -> Tnum {
        let v = self.value | b.value;
        let m = self.mask | b.mask;
        Tnum::new(v, m & !v)
    }

    /// Bitwise exclusive or.
    pub fn xor(self, b: Tnum) -> Tnum {
        let v = self.value ^ b.value;
        let m = self.mask | b.mask;
        Tnum::new(v & !m, m)
    }

    /// Product (also `*`), by long multiplication over the bits of `self`: a known 1 adds
    /// `b`, an unknown bit takes the union of adding and not adding it.
    pub fn times(self, b: Tnum) -> Tnum {
        let (mut a, mut b) = (self, b);
        let mut acc = Tnum::constant(0);
        while a.value != 0 || a.mask != 0 {
            if a.value & 1 != 0 {
                acc = acc.plus(b);
            } else if a.mask & 1 != 0 {
                acc = acc.union(acc.plus(b));
            }
            a = a.rshift(1);
            b = b.lshift(1);
        }
        acc
    }

    /// What both describe (where they disagree on a known bit, that bit reads as 1).
    pub fn intersect(self, b: Tnum) -> Tnum {
        let v = self.value | b.value;
        let m = self.mask & b.mask;
        Tnum::new(v & !m, m)
    }

    /// A tnum covering every value either covers.
    pub fn union(self, b: Tnum) -> Tnum {
        let v = self.value & b.value;
        let m = (self.value ^ b.value) | self.mask | b.mask;
        Tnum::new(v & !m, m)
    }

    /// The low `size` bytes (`size` < 8).
    pub fn cast(self, size: u32) -> Tnum {
        let keep = if size >= 8 {
            u64::MAX
        } else {
            (1u64 << (size * 8)) - 1
        };
        Tnum::new(self.value & keep, self.mask & keep)
    }

    /// Whether every value is a multiple of `size` (a power of two; 0 counts as aligned).
    pub fn is_aligned(self, size: u64) -> bool {
        if size == 0 {
            return true;
        }
        (self.value | self.mask) & (size - 1) == 0
    }

    /// Whether every value `b` covers is covered by `self`.
    pub fn contains(self, b: Tnum) -> bool {
        if b.mask & !self.mask != 0 {
            return false;
        }
        self.value == b.value & !self.mask
    }

    /// The low 32 bits.
    pub fn subreg(self) -> Tnum {
        self.cast(4)
    }

    /// The value with its low 32 bits cleared.
    pub fn clear_subreg(self) -> Tnum {
        self.rshift(32).lshift(32)
    }

    /// The high 32 bits of `self` with the low 32 bits of `sub`.
    pub fn with_subreg(self, sub: Tnum) -> Tnum {
        self.clear_subreg().or(sub.subreg())
    }

    /// The high 32 bits of `self` with the low 32 bits known to be `v`.
    pub fn const_subreg(self, v: u32) -> Tnum {
        self.with_subreg(Tnum::constant(u64::from(v)))
    }

    /// Whether the low 32 bits are all known.
    pub fn subreg_is_const(self) -> bool {
        self.subreg().is_const()
    }

    /// Whether some value is covered by both.
    pub fn overlaps(self, b: Tnum) -> bool {
        let known = !self.mask & !b.mask;
        (self.value & known) == (b.value & known)
    }

    /// Byte swap of the low 16 bits (the result's other bits are 0).
    pub fn bswap16(self) -> Tnum {
        Tnum::new(
            u64::from((self.value as u16).swap_bytes()),
            u64::from((self.mask as u16).swap_bytes()),
        )
    }

    /// Byte swap of the low 32 bits (the result's other bits are 0).
    pub fn bswap32(self) -> Tnum {
        Tnum::new(
            u64::from((self.value as u32).swap_bytes()),
            u64::from((self.mask as u32).swap_bytes()),
        )
    }

    /// Byte swap of all 64 bits.
    pub fn bswap64(self) -> Tnum {
        Tnum::new(self.value.swap_bytes(), self.mask.swap_bytes())
    }

    /// The smallest value covered that is larger than `z`: the largest value covered when
    /// `z` is at least that, the smallest when `z` is below it.
    pub fn step(self, z: u64) -> u64 {
        let max = self.value | self.mask;
        if z >= max {
            return max;
        }
        if z < self.value {
            return self.value;
        }
        // Known bits of self, unknown bits taken from z.
        let matched = self.value | (z & self.mask);
        let fls = |x: u64| 64 - x.leading_zeros();
        if matched > z {
            // The highest known bit where self has 1 and z has 0 decides.
            let k = fls(!z & self.value & !self.mask);
            let high = u64::MAX.checked_shl(k).unwrap_or(0);
            (high & z) | (!high & self.value)
        } else {
            // The highest known bit where z has 1 and self has 0: carry into the
            // unknown bits above it.
            let k = fls(z & !self.value & !self.mask);
            let high = u64::MAX.checked_shl(k).unwrap_or(0);
            let v = (high & self.mask & z) | (high & !self.mask);
            let u = v.wrapping_add(1u64.checked_shl(k).unwrap_or(0));
            (u & self.mask) | self.value
        }
    }

    /// Whether `v` is one of the values covered.
    pub fn covers(self, v: u64) -> bool {
        v & !self.mask == self.value
    }
}

impl std::ops::Add for Tnum {
    type Output = Tnum;
    fn add(self, b: Tnum) -> Tnum {
        self.plus(b)
    }
}

impl std::ops::Sub for Tnum {
    type Output = Tnum;
    fn sub(self, b: Tnum) -> Tnum {
        self.minus(b)
    }
}

impl std::ops::Neg for Tnum {
    type Output = Tnum;
    fn neg(self) -> Tnum {
        self.negate()
    }
}

impl std::ops::Mul for Tnum {
    type Output = Tnum;
    fn mul(self, b: Tnum) -> Tnum {
        self.times(b)
    }
}

impl fmt::Display for Tnum {
    /// As the kernel's `tnum_strn` prints it: a constant as a number (decimal up to 65535,
    /// else hex), otherwise `(value; mask)` in hex.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if self.mask == 0 {
            if self.value <= u64::from(u16::MAX) {
                write!(f, "{}", self.value)
            } else {
                write!(f, "{:#x}", self.value)
            }
        } else {
            write!(f, "({:#x}; {:#x})", self.value, self.mask)
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    /// A tnum and a value it covers.
    fn tnum_and_member() -> impl Strategy<Value = (Tnum, u64)> {
        (any::<u64>(), any::<u64>(), any::<u64>()).prop_map(|(v, m, pick)| {
            // Mostly-known masks make the checks meaningful.
            let m = m & (m >> 7) & (m >> 13);
            let t = Tnum::new(v & !m, m);
            (t, t.value | (pick & m))
        })
    }

    #[test]
    fn range_covers_its_bounds() {
        assert_eq!(Tnum::range(0, 0), Tnum::constant(0));
        assert_eq!(Tnum::range(4, 7), Tnum::new(4, 3));
        assert_eq!(Tnum::range(0, 255), Tnum::new(0, 255));
        assert_eq!(Tnum::range(0, u64::MAX), Tnum::UNKNOWN);
        assert_eq!(
            Tnum::range(1 << 63, u64::MAX),
            Tnum::new(1 << 63, (1 << 63) - 1)
        );
        assert_eq!(Tnum::range(3, 3), Tnum::constant(3));
    }

    #[test]
    fn display_is_the_kernels() {
        assert_eq!(Tnum::new(0, 0xff).to_string(), "(0x0; 0xff)");
        assert_eq!(Tnum::constant(0x10).to_string(), "16");
        assert_eq!(Tnum::constant(0x10000).to_string(), "0x10000");
    }

    proptest! {
        #[test]
        fn operations_cover_concrete_results(
            (a, x) in tnum_and_member(),
            (b, y) in tnum_and_member(),
            s in 0u32..64,
        ) {
            prop_assert!((a + b).covers(x.wrapping_add(y)));
            prop_assert!((a - b).covers(x.wrapping_sub(y)));
            prop_assert!((a * b).covers(x.wrapping_mul(y)));
            prop_assert!(a.and(b).covers(x & y));
            prop_assert!(a.or(b).covers(x | y));
            prop_assert!(a.xor(b).covers(x ^ y));
            prop_assert!((-a).covers(x.wrapping_neg()));
            prop_assert!(a.lshift(s).covers(x << s));
            prop_assert!(a.rshift(s).covers(x >> s));
            prop_assert!(a.arshift(s, 64).covers(((x as i64) >> s) as u64));
            prop_assert!(a.arshift(s % 32, 32).covers((((x as i32) >> (s % 32)) as u32) as u64));
            prop_assert!(a.union(b).covers(x) && a.union(b).covers(y));
            prop_assert!(a.bswap16().covers(u64::from((x as u16).swap_bytes())));
            prop_assert!(a.bswap32().covers(u64::from((x as u32).swap_bytes())));
            prop_assert!(a.bswap64().covers(x.swap_bytes()));
            prop_assert!(Tnum::range(x.min(y), x.max(y)).covers(x));
            prop_assert!(a.contains(Tnum::constant(x)));
            // step: the next member above y (when there is one) is a member, and no
            // member lies strictly between y and it.
            let next = a.step(y);
            let max = a.value | a.mask;
            if y < max {
                prop_assert!(a.covers(next) && next > y);
                if x > y { prop_assert!(x >= next); }
            }
        }
    }
}
