//! Internet checksums as the kernel computes them (x86_64), bit for bit, and the checksum
//! helpers:
//!
//! | id | helper | program types | returns |
//! |---|---|---|---|
//! | 28 | `bpf_csum_diff(from, from_size, to, to_size, seed)` | XDP, tc | the folded 16-bit sum of `to` minus `from` plus `seed` |
//! | 10 | `bpf_l3_csum_replace(ctx, off, from, to, flags)` | tc | 0; `-EINVAL` (flags, or `from` ≠ 0 with size 0), `-EFAULT` (odd offset, over 0xffff or past the packet) |
//! | 11 | `bpf_l4_csum_replace(ctx, off, from, to, flags)` | tc | as 10, with `BPF_F_PSEUDO_HDR`, `BPF_F_MARK_MANGLED_0`, `BPF_F_MARK_ENFORCE`, `BPF_F_IPV6` |
//! | 40 | `bpf_csum_update(ctx, csum)` | tc | `-ENOTSUPP`: the test run's skb is not `CHECKSUM_COMPLETE` |
//!
//! The skb of a test run is `CHECKSUM_NONE`, so `BPF_F_PSEUDO_HDR` changes nothing but
//! the flags check, as in the kernel. `bpf_l3/l4_csum_replace` invalidate the program's
//! packet pointers (the kernel's verifier counts them as changing packet data).
//!
//! The arithmetic follows the kernel's: `csum_partial` sums 64-bit little-endian words
//! with end-around carry (the trailing bytes zero-padded) and folds to 32 bits;
//! `csum_add`/`csum_sub` are 32-bit one's-complement; `csum_fold` folds to 16 bits and
//! complements. Values are the native (little-endian) reading of the bytes, as the
//! kernel's `__wsum`/`__sum16` are.

use crate::context::HelperContext;
use crate::error::HelperError;
use crate::id::HelperId;
use crate::memory::Access;
use crate::net::PacketHelper;
use crate::net::{
    check_guest, neg, read_guest, require, CHUNK, EFAULT, EINVAL, ENOTSUPP, TC, XDP_TC,
};
use crate::registry::Registry;

/// The helpers of this module, with the program types that may call them.
pub const HELPERS: [PacketHelper; 4] = [
    PacketHelper {
        id: 28,
        name: "bpf_csum_diff",
        f: csum_diff,
        programs: XDP_TC,
    },
    PacketHelper {
        id: 10,
        name: "bpf_l3_csum_replace",
        f: l3_csum_replace,
        programs: TC,
    },
    PacketHelper {
        id: 11,
        name: "bpf_l4_csum_replace",
        f: l4_csum_replace,
        programs: TC,
    },
    PacketHelper {
        id: 40,
        name: "bpf_csum_update",
        f: csum_update,
        programs: TC,
    },
];

/// Registers this module's helpers.
pub fn register(r: &mut Registry) {
    for h in &HELPERS {
        r.register_builtin(HelperId(h.id), h.name, h.f, None)
            .expect("packet helper ids are small");
    }
}

/// `csum_partial(buf, len, sum)` of x86_64: 64-bit words with end-around carry, folded to
/// 32 bits.
pub fn csum_partial(bytes: &[u8], sum: u32) -> u32 {
    let mut p = Partial::new(sum);
    p.add(bytes);
    p.finish()
}

/// A `csum_partial` summed piece by piece: every piece but the last must be a multiple of 8
/// bytes long, and the result is then that of one `csum_partial` over all the pieces.
struct Partial {
    acc: u64,
}

impl Partial {
    fn new(sum: u32) -> Partial {
        Partial {
            acc: u64::from(sum),
        }
    }

    fn add_word(&mut self, x: u64) {
        let (s, carry) = self.acc.overflowing_add(x);
        self.acc = s + u64::from(carry);
    }

    fn add(&mut self, bytes: &[u8]) {
        let mut words = bytes.chunks_exact(8);
        for w in &mut words {
            self.add_word(u64::from_le_bytes(w.try_into().expect("8 bytes")));
        }
        let rest = words.remainder();
        if !rest.is_empty() {
            let mut tail = [0u8; 8];
            tail[..rest.len()].copy_from_slice(rest);
            self.add_word(u64::from_le_bytes(tail));
        }
    }

    /// `csum_finalize_sum`: (acc + ror64(acc, 32)) >> 32.
    fn finish(self) -> u32 {
        (self.acc.wrapping_add(self.acc.rotate_right(32)) >> 32) as u32
    }
}

/// `csum_partial` of `len` guest bytes at `addr`, read [`CHUNK`] bytes at a time (charged to
/// the run's budget as any helper argument read).
fn guest_partial(
    ctx: &HelperContext,
    helper: &str,
    addr: u64,
    len: usize,
    sum: u32,
) -> Result<u32, Box<HelperError>> {
    check_guest(ctx, helper, addr, len, Access::Read)?;
    let mut p = Partial::new(sum);
    let mut tmp = [0u8; CHUNK];
    let mut done = 0;
    while done < len {
        let n = CHUNK.min(len - done);
        read_guest(ctx, helper, addr + done as u64, &mut tmp[..n])?;
        p.add(&tmp[..n]);
        done += n;
    }
    Ok(p.finish())
}

/// `csum_add`: 32-bit one's-complement addition.
pub fn csum_add(a: u32, b: u32) -> u32 {
    let (s, carry) = a.overflowing_add(b);
    s + u32::from(carry)
}

/// `csum_sub`.
pub fn csum_sub(a: u32, b: u32) -> u32 {
    csum_add(a, !b)
}

/// `csum_fold`: folds a 32-bit sum to 16 bits and complements it.
pub fn csum_fold(sum: u32) -> u16 {
    let s = (sum & 0xffff) + (sum >> 16);
    let s = (s & 0xffff) + (s >> 16);
    !(s as u16)
}

/// `csum_unfold`.
pub fn csum_unfold(sum: u16) -> u32 {
    u32::from(sum)
}

/// `csum16_add`: 16-bit one's-complement addition.
pub fn csum16_add(a: u16, b: u16) -> u16 {
    let (s, carry) = a.overflowing_add(b);
    s + u16::from(carry)
}

/// `csum_from32to16`: folds a 32-bit sum to 16 bits (not complemented).
pub fn csum_from32to16(sum: u32) -> u16 {
    let s = sum.wrapping_add(sum.rotate_left(16));
    (s >> 16) as u16
}

/// `csum_replace_by_diff(sum, diff)`.
pub fn replace_by_diff(sum: u16, diff: u32) -> u16 {
    csum_fold(csum_add(diff, !csum_unfold(sum)))
}

/// `csum_replace4(sum, from, to)` (`from`, `to` as the packet holds them, read natively).
pub fn replace4(sum: u16, from: u32, to: u32) -> u16 {
    let tmp = csum_sub(!csum_unfold(sum), from);
    csum_fold(csum_add(tmp, to))
}

/// `csum_replace2(sum, from, to)`.
pub fn replace2(sum: u16, from: u16, to: u16) -> u16 {
    !csum16_add(csum16_add(!sum, !from), to)
}

/// `bpf_csum_diff(from, from_size, to, to_size, seed)`.
pub fn csum_diff(ctx: &mut HelperContext, a: &[u64; 5]) -> Result<u64, Box<HelperError>> {
    const NAME: &str = "bpf_csum_diff";
    require(ctx, NAME, XDP_TC)?;
    let (from_size, to_size, seed) = (a[1] as u32 as usize, a[3] as u32 as usize, a[4] as u32);
    if from_size > 0 {
        check_guest(ctx, NAME, a[0], from_size, Access::Read)?;
    }
    if to_size > 0 {
        check_guest(ctx, NAME, a[2], to_size, Access::Read)?;
    }
    let ret = if from_size > 0 && to_size > 0 {
        csum_sub(
            guest_partial(ctx, NAME, a[2], to_size, seed)?,
            guest_partial(ctx, NAME, a[0], from_size, 0)?,
        )
    } else if to_size > 0 {
        guest_partial(ctx, NAME, a[2], to_size, seed)?
    } else if from_size > 0 {
        !guest_partial(ctx, NAME, a[0], from_size, !seed)?
    } else {
        seed
    };
    Ok(u64::from(csum_from32to16(ret)))
}

/// `BPF_F_HDR_FIELD_MASK` and the `bpf_l4_csum_replace` flags.
const F_HDR_FIELD_MASK: u64 = 0xf;
const F_PSEUDO_HDR: u64 = 1 << 4;
const F_MARK_MANGLED_0: u64 = 1 << 5;
const F_MARK_ENFORCE: u64 = 1 << 6;
const F_IPV6: u64 = 1 << 7;
/// `CSUM_MANGLED_0`.
const CSUM_MANGLED_0: u16 = 0xffff;

/// The buffer offset of the 16-bit checksum at `off` from `data`, or `-EFAULT` (odd, over
/// 0xffff, or past the packet: `bpf_try_make_writable`).
fn sum_at(ctx: &HelperContext, off: u64) -> Result<usize, i32> {
    let off = off as u32 as u64;
    if off > 0xffff || off & 1 != 0 || off + 2 > ctx.packet.len() as u64 {
        return Err(EFAULT);
    }
    Ok(ctx.packet.data_off() + off as usize)
}

/// The replacement both helpers make: `how` 0 adds the diff `to`, 2 and 4 replace a 16- or
/// 32-bit field `from` by `to`; `None` for another size.
fn replace(sum: u16, how: u64, from: u64, to: u64) -> Option<u16> {
    match how {
        0 => Some(replace_by_diff(sum, to as u32)),
        2 => Some(replace2(sum, from as u16, to as u16)),
        4 => Some(replace4(sum, from as u32, to as u32)),
        _ => None,
    }
}

/// Reads, changes and writes back the checksum for the two replace helpers.
fn replace_in_packet(
    ctx: &mut HelperContext,
    off: u64,
    from: u64,
    to: u64,
    flags: u64,
    l4: bool,
) -> u64 {
    let at = match sum_at(ctx, off) {
        Ok(at) => at,
        Err(e) => return neg(e),
    };
    let buf = ctx.packet.buffer(&mut ctx.memory);
    let sum = u16::from_ne_bytes([buf[at], buf[at + 1]]);
    let mmzero = l4 && flags & F_MARK_MANGLED_0 != 0;
    if mmzero && flags & F_MARK_ENFORCE == 0 && sum == 0 {
        return 0;
    }
    let how = flags & F_HDR_FIELD_MASK;
    if how == 0 && from != 0 {
        return neg(EINVAL);
    }
    let Some(mut new) = replace(sum, how, from, to) else {
        return neg(EINVAL);
    };
    if mmzero && new == 0 {
        new = CSUM_MANGLED_0;
    }
    buf[at..at + 2].copy_from_slice(&new.to_ne_bytes());
    ctx.packet.touch(at, at + 2);
    0
}

/// `bpf_l3_csum_replace(ctx, off, from, to, flags)`.
pub fn l3_csum_replace(ctx: &mut HelperContext, a: &[u64; 5]) -> Result<u64, Box<HelperError>> {
    require(ctx, "bpf_l3_csum_replace", TC)?;
    let flags = a[4];
    let ret = if flags & !F_HDR_FIELD_MASK != 0 {
        neg(EINVAL)
    } else {
        replace_in_packet(ctx, a[1], a[2], a[3], flags, false)
    };
    ctx.packet.invalidate(&mut ctx.memory);
    Ok(ret)
}

/// `bpf_l4_csum_replace(ctx, off, from, to, flags)`.
pub fn l4_csum_replace(ctx: &mut HelperContext, a: &[u64; 5]) -> Result<u64, Box<HelperError>> {
    require(ctx, "bpf_l4_csum_replace", TC)?;
    let flags = a[4];
    let known = F_MARK_MANGLED_0 | F_MARK_ENFORCE | F_PSEUDO_HDR | F_HDR_FIELD_MASK | F_IPV6;
    let ret = if flags & !known != 0 {
        neg(EINVAL)
    } else {
        replace_in_packet(ctx, a[1], a[2], a[3], flags, true)
    };
    ctx.packet.invalidate(&mut ctx.memory);
    Ok(ret)
}

/// `bpf_csum_update(ctx, csum)`: only a `CHECKSUM_COMPLETE` skb has a sum to update.
pub fn csum_update(ctx: &mut HelperContext, _: &[u64; 5]) -> Result<u64, Box<HelperError>> {
    require(ctx, "bpf_csum_update", TC)?;
    Ok(neg(ENOTSUPP))
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The IPv4 header checksum of RFC 1071's example header.
    #[test]
    fn an_ipv4_header_sums_to_zero_with_its_checksum() {
        let mut h = [
            0x45u8, 0x00, 0x00, 0x73, 0x00, 0x00, 0x40, 0x00, 0x40, 0x11, 0x00, 0x00, 0xc0, 0xa8,
            0x00, 0x01, 0xc0, 0xa8, 0x00, 0xc7,
        ];
        let c = csum_fold(csum_partial(&h, 0));
        assert_eq!(c.to_ne_bytes(), [0xb8, 0x61]);
        h[10..12].copy_from_slice(&c.to_ne_bytes());
        assert_eq!(csum_fold(csum_partial(&h, 0)), 0);
    }

    #[test]
    fn incremental_updates_match_a_full_recomputation() {
        let mut h: Vec<u8> = (0u8..20).map(|i| i.wrapping_mul(37)).collect();
        h[10] = 0;
        h[11] = 0;
        let c = csum_fold(csum_partial(&h, 0));
        h[10..12].copy_from_slice(&c.to_ne_bytes());
        // Replace the 32-bit word at 12 and the 16-bit word at 4.
        let old4 = u32::from_ne_bytes(h[12..16].try_into().unwrap());
        let new4 = u32::from_ne_bytes([10, 0, 0, 9]);
        let old2 = u16::from_ne_bytes([h[4], h[5]]);
        let new2 = u16::from_ne_bytes([0xbe, 0xef]);
        let s = replace4(c, old4, new4);
        let s = replace2(s, old2, new2);
        h[12..16].copy_from_slice(&new4.to_ne_bytes());
        h[4..6].copy_from_slice(&new2.to_ne_bytes());
        h[10] = 0;
        h[11] = 0;
        assert_eq!(s, csum_fold(csum_partial(&h, 0)));
    }

    #[test]
    fn partial_sums_do_not_depend_on_how_the_bytes_are_split() {
        let data: Vec<u8> = (0..101u32).map(|i| (i * 7 + 3) as u8).collect();
        let whole = csum_partial(&data, 0);
        for cut in [8, 16, 40, 80, 96] {
            let split = csum_partial(&data[cut..], csum_partial(&data[..cut], 0));
            assert_eq!(csum_from32to16(split), csum_from32to16(whole), "cut {cut}");
        }
        assert_eq!(csum_partial(&[], 0), 0);
        // Summed in pieces of multiples of 8 bytes, the 32-bit sum itself is the same.
        for seed in [0, 1, 0xffff_ffff, 0x1234_5678] {
            let mut p = Partial::new(seed);
            for piece in data.chunks(16) {
                p.add(piece);
            }
            assert_eq!(p.finish(), csum_partial(&data, seed), "seed {seed:#x}");
        }
        assert_eq!(csum_partial(&[0; 12], 0), 0);
    }
}
