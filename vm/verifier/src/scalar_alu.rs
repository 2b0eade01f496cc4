//! Range arithmetic: the result [`Bounds`] of an ALU instruction on two scalars, as the
//! kernel computes them (`adjust_scalar_min_max_vals` and its `scalar*_min_max_*` helpers).
//! Operations that the kernel does not track (division, modulo, shifts by a non-constant)
//! give an unknown value.

use crate::bounds::Bounds;
use crate::insn::{alu, Insn};
#[cfg(test)]
use crate::tnum::Tnum;

/// Whether the kernel computes a range for `op` with source `src` (`is_safe_to_compute_dst_reg_range`).
pub fn is_trackable(op: u8, alu64: bool, src: &Bounds) -> bool {
    let bits: u64 = if alu64 { 64 } else { 32 };
    let src_const = if alu64 {
        src.var_off.is_const() && src.smin == src.smax && src.umin == src.umax
    } else {
        src.var_off.subreg_is_const() && src.s32_min == src.s32_max && src.u32_min == src.u32_max
    };
    match op {
        alu::ADD | alu::SUB | alu::NEG | alu::AND | alu::XOR | alu::OR | alu::MUL | alu::END => {
            true
        }
        alu::LSH | alu::RSH | alu::ARSH => src_const && src.umax < bits,
        _ => false,
    }
}

fn add32(d: &mut Bounds, s: &Bounds) {
    match (
        d.s32_min.checked_add(s.s32_min),
        d.s32_max.checked_add(s.s32_max),
    ) {
        (Some(lo), Some(hi)) => {
            d.s32_min = lo;
            d.s32_max = hi;
        }
        _ => {
            d.s32_min = i32::MIN;
            d.s32_max = i32::MAX;
        }
    }
    let (lo, lo_over) = d.u32_min.overflowing_add(s.u32_min);
    let (hi, hi_over) = d.u32_max.overflowing_add(s.u32_max);
    d.u32_min = lo;
    d.u32_max = hi;
    if !lo_over && hi_over {
        d.u32_min = 0;
        d.u32_max = u32::MAX;
    }
}

fn add64(d: &mut Bounds, s: &Bounds) {
    match (d.smin.checked_add(s.smin), d.smax.checked_add(s.smax)) {
        (Some(lo), Some(hi)) => {
            d.smin = lo;
            d.smax = hi;
        }
        _ => {
            d.smin = i64::MIN;
            d.smax = i64::MAX;
        }
    }
    let (lo, lo_over) = d.umin.overflowing_add(s.umin);
    let (hi, hi_over) = d.umax.overflowing_add(s.umax);
    d.umin = lo;
    d.umax = hi;
    if !lo_over && hi_over {
        d.umin = 0;
        d.umax = u64::MAX;
    }
}

fn sub32(d: &mut Bounds, s: &Bounds) {
    match (
        d.s32_min.checked_sub(s.s32_max),
        d.s32_max.checked_sub(s.s32_min),
    ) {
        (Some(lo), Some(hi)) => {
            d.s32_min = lo;
            d.s32_max = hi;
        }
        _ => {
            d.s32_min = i32::MIN;
            d.s32_max = i32::MAX;
        }
    }
    let (lo, lo_under) = d.u32_min.overflowing_sub(s.u32_max);
    let (hi, hi_under) = d.u32_max.overflowing_sub(s.u32_min);
    d.u32_min = lo;
    d.u32_max = hi;
    if lo_under && !hi_under {
        d.u32_min = 0;
        d.u32_max = u32::MAX;
    }
}

fn sub64(d: &mut Bounds, s: &Bounds) {
    match (d.smin.checked_sub(s.smax), d.smax.checked_sub(s.smin)) {
        (Some(lo), Some(hi)) => {
            d.smin = lo;
            d.smax = hi;
        }
        _ => {
            d.smin = i64::MIN;
            d.smax = i64::MAX;
        }
    }
    let (lo, lo_under) = d.umin.overflowing_sub(s.umax);
    let (hi, hi_under) = d.umax.overflowing_sub(s.umin);
    d.umin = lo;
    d.umax = hi;
    if lo_under && !hi_under {
        d.umin = 0;
        d.umax = u64::MAX;
    }
}

fn mul32(d: &mut Bounds, s: &Bounds) {
    match (
        d.u32_max.checked_mul(s.u32_max),
        d.u32_min.checked_mul(s.u32_min),
    ) {
        (Some(hi), Some(lo)) => {
            d.u32_max = hi;
            d.u32_min = lo;
        }
        (hi, _) => {
            // The kernel stores the first product even when the second overflows; either
            // way the range becomes unknown.
            let _ = hi;
            d.u32_min = 0;
            d.u32_max = u32::MAX;
        }
    }
    let products = [
        d.s32_min.checked_mul(s.s32_min),
        d.s32_min.checked_mul(s.s32_max),
        d.s32_max.checked_mul(s.s32_min),
        d.s32_max.checked_mul(s.s32_max),
    ];
    if products.iter().any(Option::is_none) {
        d.s32_min = i32::MIN;
        d.s32_max = i32::MAX;
    } else {
        let p = products.map(Option::unwrap_or_default);
        d.s32_min = *p.iter().min().expect("four products");
        d.s32_max = *p.iter().max().expect("four products");
    }
}

fn mul64(d: &mut Bounds, s: &Bounds) {
    match (d.umax.checked_mul(s.umax), d.umin.checked_mul(s.umin)) {
        (Some(hi), Some(lo)) => {
            d.umax = hi;
            d.umin = lo;
        }
        _ => {
            d.umin = 0;
            d.umax = u64::MAX;
        }
    }
    let products = [
        d.smin.checked_mul(s.smin),
        d.smin.checked_mul(s.smax),
        d.smax.checked_mul(s.smin),
        d.smax.checked_mul(s.smax),
    ];
    if products.iter().any(Option::is_none) {
        d.smin = i64::MIN;
        d.smax = i64::MAX;
    } else {
        let p = products.map(Option::unwrap_or_default);
        d.smin = *p.iter().min().expect("four products");
        d.smax = *p.iter().max().expect("four products");
    }
}

/// Signed 32-bit bounds from the unsigned ones when they do not cross the sign boundary.
fn s32_from_u32(d: &mut Bounds) {
    if (d.u32_min as i32) <= (d.u32_max as i32) {
        d.s32_min = d.u32_min as i32;
        d.s32_max = d.u32_max as i32;
    } else {
        d.s32_min = i32::MIN;
        d.s32_max = i32::MAX;
    }
}

fn s64_from_u64(d: &mut Bounds) {
    if (d.umin as i64) <= (d.umax as i64) {
        d.smin = d.umin as i64;
        d.smax = d.umax as i64;
    } else {
        d.smin = i64::MIN;
        d.smax = i64::MAX;
    }
}

fn and32(d: &mut Bounds, s: &Bounds) {
    let t = d.var_off.subreg();
    if s.var_off.subreg_is_const() && t.is_const() {
        d.set_known32(t.value as u32);
        return;
    }
    d.u32_min = t.value as u32;
    d.u32_max = d.u32_max.min(s.u32_max);
    s32_from_u32(d);
}

fn and64(d: &mut Bounds, s: &Bounds) {
    if s.var_off.is_const() && d.var_off.is_const() {
        *d = Bounds::known(d.var_off.value);
        return;
    }
    d.umin = d.var_off.value;
    d.umax = d.umax.min(s.umax);
    s64_from_u64(d);
    d.update();
}

fn or32(d: &mut Bounds, s: &Bounds) {
    let t = d.var_off.subreg();
    if s.var_off.subreg_is_const() && t.is_const() {
        d.set_known32(t.value as u32);
        return;
    }
    d.u32_min = d.u32_min.max(s.u32_min);
    d.u32_max = (t.value | t.mask) as u32;
    s32_from_u32(d);
}

fn or64(d: &mut Bounds, s: &Bounds) {
    if s.var_off.is_const() && d.var_off.is_const() {
        *d = Bounds::known(d.var_off.value);
        return;
    }
    d.umin = d.umin.max(s.umin);
    d.umax = d.var_off.value | d.var_off.mask;
    s64_from_u64(d);
    d.update();
}

fn xor32(d: &mut Bounds, s: &Bounds) {
    let t = d.var_off.subreg();
    if s.var_off.subreg_is_const() && t.is_const() {
        d.set_known32(t.value as u32);
        return;
    }
    d.u32_min = t.value as u32;
    d.u32_max = (t.value | t.mask) as u32;
    s32_from_u32(d);
}

fn xor64(d: &mut Bounds, s: &Bounds) {
    if s.var_off.is_const() && d.var_off.is_const() {
        *d = Bounds::known(d.var_off.value);
        return;
    }
    d.umin = d.var_off.value;
    d.umax = d.var_off.value | d.var_off.mask;
    s64_from_u64(d);
    d.update();
}

fn lsh32_ranges(d: &mut Bounds, umin: u64, umax: u64) {
    d.s32_min = i32::MIN;
    d.s32_max = i32::MAX;
    if umax > 31 || u64::from(d.u32_max) > 1u64 << (31 - umax) {
        d.u32_min = 0;
        d.u32_max = u32::MAX;
    } else {
        d.u32_min <<= umin;
        d.u32_max <<= umax;
    }
}

fn lsh32(d: &mut Bounds, s: &Bounds) {
    let (umin, umax) = (u64::from(s.u32_min), u64::from(s.u32_max));
    let sub = d.var_off.subreg();
    lsh32_ranges(d, umin, umax);
    d.var_off = sub.lshift(umin as u32).subreg();
    d.set_unbounded64();
    d.update();
}

fn lsh64(d: &mut Bounds, s: &Bounds) {
    let (umin, umax) = (s.umin, s.umax);
    if umin == 32 && umax == 32 {
        d.smax = i64::from(d.s32_max) << 32;
        d.smin = i64::from(d.s32_min) << 32;
    } else {
        d.smax = i64::MAX;
        d.smin = i64::MIN;
    }
    if d.umax > 1u64 << (63 - umax) {
        d.umin = 0;
        d.umax = u64::MAX;
    } else {
        d.umin <<= umin;
        d.umax <<= umax;
    }
    lsh32_ranges(d, umin, umax);
    d.var_off = d.var_off.lshift(umin as u32);
    d.update();
}

fn rsh32(d: &mut Bounds, s: &Bounds) {
    let sub = d.var_off.subreg();
    let (umin, umax) = (s.u32_min, s.u32_max);
    d.s32_min = i32::MIN;
    d.s32_max = i32::MAX;
    d.var_off = sub.rshift(umin);
    d.u32_min >>= umax;
    d.u32_max >>= umin;
    d.set_unbounded64();
    d.update();
}

fn rsh64(d: &mut Bounds, s: &Bounds) {
    let (umin, umax) = (s.umin, s.umax);
    d.smin = i64::MIN;
    d.smax = i64::MAX;
    d.var_off = d.var_off.rshift(umin as u32);
    d.umin >>= umax;
    d.umax >>= umin;
    d.set_unbounded32();
    d.update();
}

fn arsh32(d: &mut Bounds, s: &Bounds) {
    let shift = s.u32_min;
    d.s32_min >>= shift;
    d.s32_max >>= shift;
    d.var_off = d.var_off.subreg().arshift(shift, 32);
    d.u32_min = 0;
    d.u32_max = u32::MAX;
    d.set_unbounded64();
    d.update();
}

fn arsh64(d: &mut Bounds, s: &Bounds) {
    let shift = s.umin as u32;
    d.smin >>= shift;
    d.smax >>= shift;
    d.var_off = d.var_off.arshift(shift, 64);
    d.umin = 0;
    d.umax = u64::MAX;
    d.set_unbounded32();
    d.update();
}

/// A byte swap (`BPF_END`): `insn` says which. Returns whether the value changed in a way
/// that breaks any link to other registers (the caller then clears the scalar id).
pub fn byte_swap(d: &mut Bounds, insn: &Insn) -> bool {
    let alu64 = insn.is_alu64();
    let to_le = insn.code & 0x08 == 0;
    // Little-endian host: to_le is a truncation, to_be and the 64-bit bswap swap.
    let swap = alu64 || !to_le;
    let bits = insn.imm;
    if swap {
        d.var_off = match bits {
            16 => d.var_off.bswap16(),
            32 => d.var_off.bswap32(),
            _ => d.var_off.bswap64(),
        };
        d.set_unbounded();
    }
    if bits == 16 || bits == 32 {
        d.coerce_to_size(bits as u32 / 8);
    }
    swap || bits == 16 || bits == 32
}

/// `dst += src` on the ranges and bits without re-syncing them (as the kernel's
/// `sync_linked_regs` adds a link's delta).
pub fn add_unsynced(d: &mut Bounds, s: &Bounds) {
    add32(d, s);
    add64(d, s);
    d.var_off = d.var_off + s.var_off;
}

/// The result of `dst = dst OP src` on two scalars, where `op` is trackable
/// ([`is_trackable`]); `BPF_AND`/`BPF_OR` forking and `BPF_END` are the caller's.
pub fn apply(op: u8, alu64: bool, d: &mut Bounds, s: &Bounds) {
    match op {
        alu::ADD => {
            add32(d, s);
            add64(d, s);
            d.var_off = d.var_off + s.var_off;
        }
        alu::SUB => {
            sub32(d, s);
            sub64(d, s);
            d.var_off = d.var_off - s.var_off;
        }
        alu::NEG => {
            let old = *d;
            *d = Bounds::known(0);
            sub32(d, &old);
            sub64(d, &old);
            d.var_off = -old.var_off;
        }
        alu::MUL => {
            d.var_off = d.var_off * s.var_off;
            mul32(d, s);
            mul64(d, s);
        }
        alu::AND => {
            d.var_off = d.var_off.and(s.var_off);
            and32(d, s);
            and64(d, s);
        }
        alu::OR => {
            d.var_off = d.var_off.or(s.var_off);
            or32(d, s);
            or64(d, s);
        }
        alu::XOR => {
            d.var_off = d.var_off.xor(s.var_off);
            xor32(d, s);
            xor64(d, s);
        }
        alu::LSH if alu64 => lsh64(d, s),
        alu::LSH => lsh32(d, s),
        alu::RSH if alu64 => rsh64(d, s),
        alu::RSH => rsh32(d, s),
        alu::ARSH if alu64 => arsh64(d, s),
        alu::ARSH => arsh32(d, s),
        _ => {}
    }
    if !alu64 {
        d.zext_32_to_64();
    }
    d.sync();
}

/// Bounds of every value in `[lo, hi]` (unsigned).
#[cfg(test)]
pub fn bounds_of_range(lo: u64, hi: u64) -> Bounds {
    let mut b = Bounds::UNKNOWN;
    b.umin = lo;
    b.umax = hi;
    b.var_off = Tnum::range(lo, hi);
    b.sync();
    b
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    fn eval(op: u8, alu64: bool, x: u64, y: u64) -> Option<u64> {
        let r = if alu64 {
            match op {
                alu::ADD => x.wrapping_add(y),
                alu::SUB => x.wrapping_sub(y),
                alu::MUL => x.wrapping_mul(y),
                alu::AND => x & y,
                alu::OR => x | y,
                alu::XOR => x ^ y,
                alu::LSH => x.checked_shl(y as u32)?,
                alu::RSH => x.checked_shr(y as u32)?,
                alu::ARSH => ((x as i64).checked_shr(y as u32)?) as u64,
                _ => return None,
            }
        } else {
            let (x, y) = (x as u32, y as u32);
            u64::from(match op {
                alu::ADD => x.wrapping_add(y),
                alu::SUB => x.wrapping_sub(y),
                alu::MUL => x.wrapping_mul(y),
                alu::AND => x & y,
                alu::OR => x | y,
                alu::XOR => x ^ y,
                alu::LSH => x.checked_shl(y)?,
                alu::RSH => x.checked_shr(y)?,
                alu::ARSH => ((x as i32).checked_shr(y)?) as u32,
                _ => return None,
            })
        };
        Some(r)
    }

    proptest! {
        #[test]
        fn results_cover_concrete_values(
            op in prop::sample::select(vec![alu::ADD, alu::SUB, alu::MUL, alu::AND, alu::OR, alu::XOR, alu::LSH, alu::RSH, alu::ARSH]),
            alu64 in any::<bool>(),
            a in any::<u64>(), aspan in 0u64..300, apick in any::<u64>(),
            b in any::<u64>(), bspan in 0u64..3, bpick in any::<u64>(),
            small_shift in 0u64..64,
        ) {
            let b = if matches!(op, alu::LSH | alu::RSH | alu::ARSH) { small_shift % if alu64 { 64 } else { 32 } } else { b };
            let bspan = if matches!(op, alu::LSH | alu::RSH | alu::ARSH) { 0 } else { bspan };
            let ahi = a.saturating_add(aspan);
            let bhi = b.saturating_add(bspan);
            let x = a + apick % (ahi - a + 1);
            let y = b + bpick % (bhi - b + 1);
            let mut d = bounds_of_range(a, ahi);
            let s = bounds_of_range(b, bhi);
            prop_assume!(is_trackable(op, alu64, &s));
            let Some(r) = eval(op, alu64, x, y) else { return Ok(()); };
            apply(op, alu64, &mut d, &s);
            prop_assert!(d.covers(r), "{op:#x} alu64={alu64} {x:#x},{y:#x} -> {r:#x} not in {d:?}");
        }
    }

    #[test]
    fn masking_bounds_an_index() {
        let mut d = Bounds::UNKNOWN;
        apply(alu::AND, true, &mut d, &Bounds::known(15));
        assert_eq!((d.umin, d.umax, d.smin, d.smax), (0, 15, 0, 15));
        let mut d = Bounds::UNKNOWN;
        apply(alu::RSH, false, &mut d, &Bounds::known(28));
        assert_eq!((d.umin, d.umax), (0, 15));
    }
}
