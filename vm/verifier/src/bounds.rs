//! What is known about a value's range: its bits (`var_off`, a [`Tnum`]) and its signed
//! and unsigned bounds as a 64-bit value and as its low 32 bits, kept consistent with each
//! other the way the kernel's `reg_bounds_sync` does.

use crate::tnum::Tnum;

/// The range knowledge of a scalar register (or of a pointer's variable offset).
#[derive(Clone, Copy, PartialEq, Eq, Hash, Debug)]
pub struct Bounds {
    /// Known bits.
    pub var_off: Tnum,
    /// Smallest value as signed 64-bit.
    pub smin: i64,
    /// Largest value as signed 64-bit.
    pub smax: i64,
    /// Smallest value as unsigned 64-bit.
    pub umin: u64,
    /// Largest value as unsigned 64-bit.
    pub umax: u64,
    /// Smallest low 32 bits as signed.
    pub s32_min: i32,
    /// Largest low 32 bits as signed.
    pub s32_max: i32,
    /// Smallest low 32 bits as unsigned.
    pub u32_min: u32,
    /// Largest low 32 bits as unsigned.
    pub u32_max: u32,
}

impl Bounds {
    /// Nothing known.
    pub const UNKNOWN: Bounds = Bounds {
        var_off: Tnum::UNKNOWN,
        smin: i64::MIN,
        smax: i64::MAX,
        umin: 0,
        umax: u64::MAX,
        s32_min: i32::MIN,
        s32_max: i32::MAX,
        u32_min: 0,
        u32_max: u32::MAX,
    };

    /// Exactly `v`.
    pub fn known(v: u64) -> Bounds {
        Bounds {
            var_off: Tnum::constant(v),
            smin: v as i64,
            smax: v as i64,
            umin: v,
            umax: v,
            s32_min: v as i32,
            s32_max: v as i32,
            u32_min: v as u32,
            u32_max: v as u32,
        }
    }

    /// Sets the low 32 bits to exactly `v` (the 64-bit bounds are left alone).
    pub fn set_known32(&mut self, v: u32) {
        self.var_off = self.var_off.const_subreg(v);
        self.s32_min = v as i32;
        self.s32_max = v as i32;
        self.u32_min = v;
        self.u32_max = v;
    }

    /// Whether the whole value is known.
    pub fn is_const(&self) -> bool {
        self.var_off.is_const()
    }

    /// Whether the value is known (low 32 bits only when `subreg32`).
    pub fn is_const_in(&self, subreg32: bool) -> bool {
        if subreg32 {
            self.var_off.subreg_is_const()
        } else {
            self.var_off.is_const()
        }
    }

    /// The known value (low 32 bits only when `subreg32`), if [`Bounds::is_const_in`].
    pub fn const_value(&self, subreg32: bool) -> u64 {
        if subreg32 {
            self.var_off.subreg().value
        } else {
            self.var_off.value
        }
    }

    /// Forgets all bounds (the bits stay).
    pub fn set_unbounded(&mut self) {
        self.set_unbounded64();
        self.set_unbounded32();
    }

    /// Forgets the 64-bit bounds.
    pub fn set_unbounded64(&mut self) {
        self.smin = i64::MIN;
        self.smax = i64::MAX;
        self.umin = 0;
        self.umax = u64::MAX;
    }

    /// Forgets the 32-bit bounds.
    pub fn set_unbounded32(&mut self) {
        self.s32_min = i32::MIN;
        self.s32_max = i32::MAX;
        self.u32_min = 0;
        self.u32_max = u32::MAX;
    }

    fn update32(&mut self) {
        let t = self.var_off.subreg();
        let (v, m) = (t.value as u32, t.mask as u32);
        self.s32_min = self.s32_min.max((v | (m & 0x8000_0000)) as i32);
        self.s32_max = self.s32_max.min((v | (m & 0x7fff_ffff)) as i32);
        self.u32_min = self.u32_min.max(v);
        self.u32_max = self.u32_max.min(v | m);
    }

    fn set_const_keep_ids(&mut self, v: u64) {
        *self = Bounds::known(v);
    }

    fn update64(&mut self) {
        let t = self.var_off;
        self.smin = self.smin.max((t.value | (t.mask & (1 << 63))) as i64);
        self.smax = self.smax.min((t.value | (t.mask & !(1u64 << 63))) as i64);
        self.umin = self.umin.max(t.value);
        self.umax = self.umax.min(t.value | t.mask);
        // Where the unsigned range and the bits meet in a single value, it is that value.
        let next = t.step(self.umin);
        let umin_member = t.covers(self.umin);
        let tmax = t.value | t.mask;
        if umin_member && next > self.umax {
            self.set_const_keep_ids(self.umin);
        } else if !umin_member && next == tmax {
            self.set_const_keep_ids(tmax);
        } else if !umin_member && next <= self.umax && t.step(next) > self.umax {
            self.set_const_keep_ids(next);
        }
    }

    /// Tightens the bounds from the known bits (`__update_reg_bounds`).
    pub fn update(&mut self) {
        self.update32();
        self.update64();
    }

    fn deduce32(&mut self) {
        // The low 32 bits of a 64-bit range whose high 32 bits do not change form a range.
        if self.umin >> 32 == self.umax >> 32 {
            self.u32_min = self.u32_min.max(self.umin as u32);
            self.u32_max = self.u32_max.min(self.umax as u32);
            if (self.umin as i32) <= (self.umax as i32) {
                self.s32_min = self.s32_min.max(self.umin as i32);
                self.s32_max = self.s32_max.min(self.umax as i32);
            }
        }
        if self.smin >> 32 == self.smax >> 32 {
            if (self.smin as u32) <= (self.smax as u32) {
                self.u32_min = self.u32_min.max(self.smin as u32);
                self.u32_max = self.u32_max.min(self.smax as u32);
            }
            if (self.smin as i32) <= (self.smax as i32) {
                self.s32_min = self.s32_min.max(self.smin as i32);
                self.s32_max = self.s32_max.min(self.smax as i32);
            }
        }
        // High 32 bits taking two consecutive values while the low 32 bits go from
        // negative to non-negative: still a signed 32-bit range.
        if ((self.umin >> 32) as u32).wrapping_add(1) == (self.umax >> 32) as u32
            && (self.umin as i32) < 0
            && (self.umax as i32) >= 0
        {
            self.s32_min = self.s32_min.max(self.umin as i32);
            self.s32_max = self.s32_max.min(self.umax as i32);
        }
        if ((self.smin >> 32) as u32).wrapping_add(1) == (self.smax >> 32) as u32
            && (self.smin as i32) < 0
            && (self.smax as i32) >= 0
        {
            self.s32_min = self.s32_min.max(self.smin as i32);
            self.s32_max = self.s32_max.min(self.smax as i32);
        }
        // Signed and unsigned 32-bit ranges inform each other when they do not cross the
        // sign boundary.
        if (self.u32_min as i32) <= (self.u32_max as i32) {
            self.s32_min = self.s32_min.max(self.u32_min as i32);
            self.s32_max = self.s32_max.min(self.u32_max as i32);
        }
        if (self.s32_min as u32) <= (self.s32_max as u32) {
            self.u32_min = self.u32_min.max(self.s32_min as u32);
            self.u32_max = self.u32_max.min(self.s32_max as u32);
        }
    }

    fn deduce64(&mut self) {
        if (self.umin as i64) <= (self.umax as i64) {
            self.smin = self.smin.max(self.umin as i64);
            self.smax = self.smax.min(self.umax as i64);
        }
        if (self.smin as u64) <= (self.smax as u64) {
            self.umin = self.umin.max(self.smin as u64);
            self.umax = self.umax.min(self.smax as u64);
        } else if self.umax < self.smin as u64 {
            // The signed range wraps; the unsigned range meets only its non-negative part.
            self.smin = self.umin as i64;
            self.umax = self.umax.min(self.smax as u64);
        } else if (self.smax as u64) < self.umin {
            // ... or only its negative part.
            self.smax = self.umax as i64;
            self.umin = self.umin.max(self.smin as u64);
        }
    }

    fn deduce_mixed(&mut self) {
        const HIGH: u64 = !0xffff_ffffu64;
        let new_umin = (self.umin & HIGH) | u64::from(self.u32_min);
        let new_umax = (self.umax & HIGH) | u64::from(self.u32_max);
        self.umin = self.umin.max(new_umin);
        self.umax = self.umax.min(new_umax);
        let new_smin = ((self.smin as u64 & HIGH) | u64::from(self.u32_min)) as i64;
        let new_smax = ((self.smax as u64 & HIGH) | u64::from(self.u32_max)) as i64;
        self.smin = self.smin.max(new_smin);
        self.smax = self.smax.min(new_smax);
        // After a sign-extending load: a non-negative low half inside
        // [S32_MIN, S32_MAX] as a whole means the high half is 0.
        if self.s32_min >= 0 && self.smin >= i64::from(i32::MIN) && self.smax <= i64::from(i32::MAX)
        {
            self.smin = i64::from(self.s32_min);
            self.smax = i64::from(self.s32_max);
            self.umin = self.s32_min as u64;
            self.umax = self.s32_max as u64;
            self.var_off = self
                .var_off
                .intersect(Tnum::range(self.smin as u64, self.smax as u64));
        }
    }

    /// Lets the four ranges inform each other (`__reg_deduce_bounds`).
    pub fn deduce(&mut self) {
        self.deduce32();
        self.deduce64();
        self.deduce_mixed();
    }

    /// Learns bits from the unsigned ranges (`__reg_bound_offset`).
    pub fn bound_offset(&mut self) {
        let v64 = self.var_off.intersect(Tnum::range(self.umin, self.umax));
        let v32 = v64.subreg().intersect(Tnum::range(
            u64::from(self.u32_min),
            u64::from(self.u32_max),
        ));
        self.var_off = v64.clear_subreg().or(v32);
    }

    /// Makes bits and ranges consistent (`reg_bounds_sync`), then checks the invariants:
    /// an impossible combination (which the kernel reports as its own bug) forgets the
    /// bounds as the kernel does.
    pub fn sync(&mut self) {
        self.update();
        self.deduce();
        self.deduce();
        self.deduce();
        self.bound_offset();
        self.update();
    }

    /// Whether the ranges are non-empty and agree with constant bits (the kernel's
    /// `reg_bounds_sanity_check`).
    pub fn is_sane(&self) -> bool {
        if self.umin > self.umax
            || self.smin > self.smax
            || self.u32_min > self.u32_max
            || self.s32_min > self.s32_max
        {
            return false;
        }
        if self.var_off.is_const() {
            let v = self.var_off.value;
            if self.umin != v || self.umax != v || self.smin != v as i64 || self.smax != v as i64 {
                return false;
            }
        }
        if self.var_off.subreg_is_const() {
            let v = self.var_off.subreg().value as u32;
            if self.u32_min != v
                || self.u32_max != v
                || self.s32_min != v as i32
                || self.s32_max != v as i32
            {
                return false;
            }
        }
        true
    }

    /// The kernel's handling of a failed sanity check: forget the ranges.
    pub fn sanitize(&mut self) {
        if !self.is_sane() {
            self.set_unbounded();
        }
    }

    /// Copies the 32-bit ranges into the 64-bit ones (after a zero extension).
    pub fn assign_32_into_64(&mut self) {
        self.umin = u64::from(self.u32_min);
        self.umax = u64::from(self.u32_max);
        if self.s32_min >= 0 && self.s32_max >= 0 {
            self.smin = i64::from(self.s32_min);
            self.smax = i64::from(self.s32_max);
        } else {
            self.smin = 0;
            self.smax = i64::from(u32::MAX);
        }
    }

    /// Zero-extends the low 32 bits into the whole value.
    pub fn zext_32_to_64(&mut self) {
        self.var_off = self.var_off.subreg();
        self.assign_32_into_64();
    }

    /// Truncates to the low `size` bytes (`size` < 8), zero-extended.
    pub fn coerce_to_size(&mut self, size: u32) {
        self.var_off = self.var_off.cast(size);
        let mask = (1u64 << (size * 8)) - 1;
        if self.umin & !mask == self.umax & !mask {
            self.umin &= mask;
            self.umax &= mask;
        } else {
            self.umin = 0;
            self.umax = mask;
        }
        self.smin = self.umin as i64;
        self.smax = self.umax as i64;
        if size < 4 {
            self.set_unbounded32();
        }
        self.sync();
    }

    fn sext64_default(&mut self, size: u32) {
        let (lo, hi) = match size {
            1 => (i64::from(i8::MIN), i64::from(i8::MAX)),
            2 => (i64::from(i16::MIN), i64::from(i16::MAX)),
            _ => (i64::from(i32::MIN), i64::from(i32::MAX)),
        };
        self.smin = lo;
        self.s32_min = lo as i32;
        self.smax = hi;
        self.s32_max = hi as i32;
        self.umin = 0;
        self.u32_min = 0;
        self.umax = u64::MAX;
        self.u32_max = u32::MAX;
        self.var_off = Tnum::UNKNOWN;
    }

    /// Sign-extends the low `size` bytes (1, 2 or 4) into the whole value.
    pub fn coerce_to_size_sx(&mut self, size: u32) {
        let sext = |v: u64| -> i64 {
            match size {
                1 => i64::from(v as i8),
                2 => i64::from(v as i16),
                _ => i64::from(v as i32),
            }
        };
        if self.var_off.is_const() {
            let v = sext(self.var_off.value) as u64;
            self.var_off = Tnum::constant(v);
            self.smin = v as i64;
            self.smax = v as i64;
            self.umin = v;
            self.umax = v;
            self.s32_min = v as i32;
            self.s32_max = v as i32;
            self.u32_min = v as u32;
            self.u32_max = v as u32;
            return;
        }
        let bits = size * 8;
        let top_max = ((self.smax as u64) >> bits) << bits;
        let top_min = ((self.smin as u64) >> bits) << bits;
        if top_max == top_min {
            let a = sext(self.smax as u64);
            let b = sext(self.smin as u64);
            let (lo, hi) = (a.min(b), a.max(b));
            if (hi >= 0) == (lo >= 0) {
                self.smin = lo;
                self.s32_min = lo as i32;
                self.smax = hi;
                self.s32_max = hi as i32;
                self.umin = lo as u64;
                self.u32_min = lo as u32;
                self.umax = hi as u64;
                self.u32_max = hi as u32;
                self.var_off = Tnum::range(lo as u64, hi as u64);
                return;
            }
        }
        self.sext64_default(size);
    }

    /// Sign-extends the low `size` bytes (1 or 2) into the low 32 bits.
    pub fn coerce_subreg_to_size_sx(&mut self, size: u32) {
        let sext = |v: u32| -> i32 {
            if size == 1 {
                i32::from(v as i8)
            } else {
                i32::from(v as i16)
            }
        };
        if self.var_off.is_const() {
            let v = sext(self.var_off.value as u32);
            self.var_off = Tnum::constant(v as i64 as u64);
            self.s32_min = v;
            self.s32_max = v;
            self.u32_min = v as u32;
            self.u32_max = v as u32;
            return;
        }
        let bits = size * 8;
        let top_max = ((self.s32_max as u32) >> bits) << bits;
        let top_min = ((self.s32_min as u32) >> bits) << bits;
        if top_max == top_min {
            let a = sext(self.s32_max as u32);
            let b = sext(self.s32_min as u32);
            let (lo, hi) = (a.min(b), a.max(b));
            if (lo >= 0) == (hi >= 0) {
                self.s32_min = lo;
                self.s32_max = hi;
                self.u32_min = lo as u32;
                self.u32_max = hi as u32;
                self.var_off = Tnum::range(lo as i64 as u64, hi as i64 as u64).subreg();
                return;
            }
        }
        let (lo, hi) = if size == 1 {
            (i32::from(i8::MIN), i32::from(i8::MAX))
        } else {
            (i32::from(i16::MIN), i32::from(i16::MAX))
        };
        self.s32_min = lo;
        self.s32_max = hi;
        self.u32_min = 0;
        self.u32_max = u32::MAX;
        self.var_off = Tnum::UNKNOWN.subreg();
    }

    /// Whether every value `cur` allows is allowed by `self` (`range_within`).
    pub fn range_within(&self, cur: &Bounds) -> bool {
        self.umin <= cur.umin
            && self.umax >= cur.umax
            && self.smin <= cur.smin
            && self.smax >= cur.smax
            && self.u32_min <= cur.u32_min
            && self.u32_max >= cur.u32_max
            && self.s32_min <= cur.s32_min
            && self.s32_max >= cur.s32_max
    }

    /// Whether `v` satisfies every bound and the known bits.
    pub fn covers(&self, v: u64) -> bool {
        self.var_off.covers(v)
            && self.umin <= v
            && v <= self.umax
            && self.smin <= v as i64
            && v as i64 <= self.smax
            && self.u32_min <= v as u32
            && v as u32 <= self.u32_max
            && self.s32_min <= v as i32
            && v as i32 <= self.s32_max
    }
}

impl Default for Bounds {
    fn default() -> Bounds {
        Bounds::UNKNOWN
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    /// Bounds built from a range of concrete values, as the analysis would have them.
    pub(crate) fn bounds_of(lo: u64, hi: u64) -> Bounds {
        let (lo, hi) = (lo.min(hi), lo.max(hi));
        let mut b = Bounds::UNKNOWN;
        b.umin = lo;
        b.umax = hi;
        b.sync();
        b
    }

    #[test]
    fn constants_are_consistent() {
        let mut b = Bounds::known(0xffff_ffff_ffff_fff0);
        assert!(b.is_sane());
        b.sync();
        assert_eq!(b, Bounds::known(0xffff_ffff_ffff_fff0));
        assert_eq!((b.smin, b.s32_min), (-16, -16));
    }

    #[test]
    fn unsigned_range_gives_bits_and_signed_range() {
        let b = bounds_of(0, 255);
        assert_eq!(b.var_off, Tnum::new(0, 0xff));
        assert_eq!((b.smin, b.smax), (0, 255));
        assert_eq!(
            (b.u32_min, b.u32_max, b.s32_min, b.s32_max),
            (0, 255, 0, 255)
        );
    }

    #[test]
    fn truncation_and_sign_extension() {
        let mut b = Bounds::known(0x1_0000_00ff);
        b.coerce_to_size(1);
        assert_eq!(b, Bounds::known(0xff));
        let mut b = Bounds::known(0xff);
        b.coerce_to_size_sx(1);
        assert_eq!(b, Bounds::known(u64::MAX));
        let mut b = bounds_of(0, 100);
        b.coerce_to_size_sx(1);
        assert_eq!((b.smin, b.smax), (0, 100));
        let mut b = bounds_of(0, 200);
        b.coerce_to_size_sx(1);
        assert_eq!((b.smin, b.smax), (-128, 127));
    }

    proptest! {
        #[test]
        fn sync_keeps_every_member(lo in any::<u64>(), hi in any::<u64>(), pick in any::<u64>()) {
            let b = bounds_of(lo, hi);
            let (lo, hi) = (lo.min(hi), lo.max(hi));
            let v = if hi == lo { lo } else { lo + pick % (hi - lo) };
            prop_assert!(b.covers(v), "{b:?} lost {v:#x}");
            prop_assert!(b.is_sane());
        }

        #[test]
        fn coercions_keep_every_member(lo in any::<u64>(), span in 0u64..5000, pick in any::<u64>(), size in prop::sample::select(vec![1u32, 2, 4])) {
            let hi = lo.saturating_add(span);
            let v = lo + pick % (hi - lo + 1);
            let b = bounds_of(lo, hi);
            let mut z = b;
            z.coerce_to_size(size);
            prop_assert!(z.covers(v & ((1u64 << (size * 8)) - 1)));
            let mut s = b;
            s.coerce_to_size_sx(size);
            let sx = match size { 1 => v as i8 as i64, 2 => v as i16 as i64, _ => v as i32 as i64 } as u64;
            prop_assert!(s.covers(sx), "{b:?} sx{size} lost {sx:#x}: {s:?}");
        }
    }
}
