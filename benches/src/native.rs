//! Native Rust versions of the benchmark loops: the floor the engines are compared with.

use std::hint::black_box;
use std::sync::atomic::{AtomicU32, AtomicU64, Ordering};

/// The computation of [`crate::programs::alu_loop`].
pub fn alu_loop(iters: u64) -> u64 {
    let (mut r0, mut r1, mut r2) = (0u64, black_box(iters), 0u64);
    loop {
        r0 = r0.wrapping_add(3);
        r0 ^= 5;
        r0 = r0.wrapping_mul(3);
        r0 >>= 1;
        r2 = r2.wrapping_add(r0);
        r2 |= 1;
        r2 &= 0xffff;
        r1 = r1.wrapping_sub(1);
        if r1 == 0 {
            break;
        }
    }
    r0.wrapping_add(r2)
}

/// The computation of [`crate::programs::memory_loop`]. The two stack slots are relaxed
/// atomics so that every load and store stays a real memory access (plain locals would
/// live in registers), as in the VM, whose memory accesses are also relaxed atomics.
pub fn memory_loop(iters: u64) -> u64 {
    let slot_a = AtomicU64::new(0);
    let slot_b = AtomicU32::new(0);
    let (a, b) = (black_box(&slot_a), black_box(&slot_b));
    let (mut r0, mut r1) = (0u64, black_box(iters));
    loop {
        a.store(
            a.load(Ordering::Relaxed).wrapping_add(r1),
            Ordering::Relaxed,
        );
        b.store(b.load(Ordering::Relaxed).wrapping_add(1), Ordering::Relaxed);
        r0 = r0.wrapping_add(a.load(Ordering::Relaxed) & 0xff);
        r1 = r1.wrapping_sub(1);
        if r1 == 0 {
            break;
        }
    }
    r0
}

/// A stand-in for `bpf_get_smp_processor_id`, never inlined.
#[inline(never)]
pub fn smp_processor_id() -> u64 {
    black_box(0)
}

/// The computation of [`crate::programs::helper_loop`]: a non-inlined call per iteration.
pub fn helper_loop(iters: u64) -> u64 {
    let (mut sum, mut n) = (0u64, black_box(iters));
    loop {
        sum = sum.wrapping_add(smp_processor_id());
        n = n.wrapping_sub(1);
        if n == 0 {
            break;
        }
    }
    sum
}

/// The computation of [`crate::programs::empty`].
#[inline(never)]
pub fn empty() -> u64 {
    black_box(0)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn loops_compute_what_the_programs_compute() {
        // Worked by hand for 2 iterations: r0 = ((0+3)^5)*3>>1 = 9, r2 = 9|1 = 9;
        // r0 = ((9+3)^5)*3>>1 = 13, r2 = (9+13)|1 = 23.
        assert_eq!(alu_loop(2), 13 + 23);
        // a = 2, then 2+1 = 3: r0 = 2 + 3.
        assert_eq!(memory_loop(2), 5);
        assert_eq!(helper_loop(5), 0);
    }
}
