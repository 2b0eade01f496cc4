//! The XDP packet helpers: resizing (`bpf_xdp_adjust_head`, `_meta`, `_tail`, with the
//! limits of the kernel's XDP test run: the `xdp_frame` at the head of the page, the
//! `skb_shared_info` at its end) and bytes (`bpf_xdp_load_bytes`, `_store_bytes`,
//! `bpf_xdp_get_buff_len`).
//!
//! | id | helper | returns |
//! |---|---|---|
//! | 44 | `bpf_xdp_adjust_head(ctx, delta)` | 0; `-EINVAL` when `data` would go below the `xdp_frame` plus metadata or within 14 bytes of `data_end` |
//! | 54 | `bpf_xdp_adjust_meta(ctx, delta)` | 0; `-EINVAL` outside `xdp_frame .. data`; `-EACCES` for metadata that is not a multiple of 4 or over 255 bytes |
//! | 65 | `bpf_xdp_adjust_tail(ctx, delta)` | 0 (grown bytes zeroed); `-EINVAL` past the tailroom or under 14 bytes; with fragments, the last fragment grows within its page and shrinking releases emptied fragments (then the linear part) |
//! | 188 | `bpf_xdp_get_buff_len(ctx)` | `data_end - data` plus the fragments' bytes |
//! | 189, 190 | `bpf_xdp_load_bytes` / `_store_bytes(ctx, off, buf, len)` | 0, across the linear part and the fragments; `-EFAULT` for an offset or length over 0xffff, `-EINVAL` past the packet |
//!
//! The three resizing helpers invalidate the program's packet pointers (see
//! [`crate::packet`]); the byte helpers do not, as in the kernel.
//!
//! Multi-buffer packets (longer than the linear part of the kernel's test-run buffer, or
//! with a short `ctx_in` `data_end`) keep their remainder in fragments
//! ([`crate::frags`]): `bpf_xdp_adjust_head` and `_meta` work on the linear part only, as
//! in the kernel.

use crate::context::HelperContext;
use crate::error::HelperError;
use crate::id::HelperId;
use crate::net::PacketHelper;
use crate::net::{
    check_guest, guest_to_packet, neg, packet_to_guest, read_guest, require, write_guest, EACCES,
    EFAULT, EINVAL, XDP,
};
use crate::packet::{ETH_HLEN, XDP_META_MAX};
use crate::registry::Registry;
use crate::Access;

/// `bpf_xdp_adjust_head`.
pub const ADJUST_HEAD: HelperId = HelperId(44);
/// `bpf_xdp_adjust_meta`.
pub const ADJUST_META: HelperId = HelperId(54);
/// `bpf_xdp_adjust_tail`.
pub const ADJUST_TAIL: HelperId = HelperId(65);
/// `bpf_xdp_get_buff_len`.
pub const GET_BUFF_LEN: HelperId = HelperId(188);
/// `bpf_xdp_load_bytes`.
pub const LOAD_BYTES: HelperId = HelperId(189);
/// `bpf_xdp_store_bytes`.
pub const STORE_BYTES: HelperId = HelperId(190);

/// The helpers of this module, with the program types that may call them.
pub const HELPERS: [PacketHelper; 6] = [
    PacketHelper {
        id: ADJUST_HEAD.0,
        name: "bpf_xdp_adjust_head",
        f: adjust_head,
        programs: XDP,
    },
    PacketHelper {
        id: ADJUST_META.0,
        name: "bpf_xdp_adjust_meta",
        f: adjust_meta,
        programs: XDP,
    },
    PacketHelper {
        id: ADJUST_TAIL.0,
        name: "bpf_xdp_adjust_tail",
        f: adjust_tail,
        programs: XDP,
    },
    PacketHelper {
        id: GET_BUFF_LEN.0,
        name: "bpf_xdp_get_buff_len",
        f: get_buff_len,
        programs: XDP,
    },
    PacketHelper {
        id: LOAD_BYTES.0,
        name: "bpf_xdp_load_bytes",
        f: load_bytes,
        programs: XDP,
    },
    PacketHelper {
        id: STORE_BYTES.0,
        name: "bpf_xdp_store_bytes",
        f: store_bytes,
        programs: XDP,
    },
];

/// Registers this module's helpers.
pub fn register(r: &mut Registry) {
    for h in &HELPERS {
        r.register_builtin(HelperId(h.id), h.name, h.f, None)
            .expect("packet helper ids are small");
    }
}

/// The `int` argument in the low 32 bits of a register.
fn int_arg(a: u64) -> i64 {
    i64::from(a as u32 as i32)
}

/// `bpf_xdp_adjust_head(ctx, delta)`: moves `data` (and the metadata with it) by `delta`.
pub fn adjust_head(ctx: &mut HelperContext, a: &[u64; 5]) -> Result<u64, Box<HelperError>> {
    require(ctx, "bpf_xdp_adjust_head", XDP)?;
    let p = &ctx.packet;
    let (meta, data, end) = (p.meta_off() as i64, p.data_off() as i64, p.end_off() as i64);
    let metalen = data - meta;
    let new_data = data + int_arg(a[1]);
    let ret = if new_data < p.head_min() as i64 + metalen || new_data > end - ETH_HLEN as i64 {
        neg(EINVAL)
    } else {
        let new_meta = (new_data - metalen) as usize;
        if metalen > 0 {
            ctx.charge_bytes(metalen as usize);
            let buf = ctx.packet.buffer(&mut ctx.memory);
            buf.copy_within(meta as usize..data as usize, new_meta);
        }
        0
    };
    if ret == 0 {
        let new_data = new_data as usize;
        ctx.packet.set_bounds(
            &mut ctx.memory,
            new_data - metalen as usize,
            new_data,
            end as usize,
        );
    } else {
        ctx.packet.invalidate(&mut ctx.memory);
    }
    Ok(ret)
}

/// `bpf_xdp_adjust_meta(ctx, delta)`: moves `data_meta` by `delta`.
pub fn adjust_meta(ctx: &mut HelperContext, a: &[u64; 5]) -> Result<u64, Box<HelperError>> {
    require(ctx, "bpf_xdp_adjust_meta", XDP)?;
    let p = &ctx.packet;
    let (data, end) = (p.data_off(), p.end_off());
    let meta = p.meta_off() as i64 + int_arg(a[1]);
    let ret = if meta < p.head_min() as i64 || meta > data as i64 {
        neg(EINVAL)
    } else if (data as i64 - meta) % 4 != 0 || data as i64 - meta > XDP_META_MAX as i64 {
        neg(EACCES)
    } else {
        0
    };
    if ret == 0 {
        ctx.packet
            .set_bounds(&mut ctx.memory, meta as usize, data, end);
    } else {
        ctx.packet.invalidate(&mut ctx.memory);
    }
    Ok(ret)
}

/// `bpf_xdp_adjust_tail(ctx, delta)`: moves `data_end` by `delta`, zeroing grown bytes; on
/// a packet with fragments, changes the fragments instead (growing the last one within its
/// page, shrinking through them; see [`crate::frags`]).
pub fn adjust_tail(ctx: &mut HelperContext, a: &[u64; 5]) -> Result<u64, Box<HelperError>> {
    require(ctx, "bpf_xdp_adjust_tail", XDP)?;
    if !ctx.packet.frags.is_empty() {
        let ret = adjust_frags_tail(ctx, a[1] as u32 as i32);
        ctx.packet.invalidate(&mut ctx.memory);
        return Ok(ret);
    }
    let p = &ctx.packet;
    let (meta, data, end) = (p.meta_off(), p.data_off(), p.end_off());
    let new_end = end as i64 + int_arg(a[1]);
    if new_end > p.tail_max() as i64 || new_end < (data + ETH_HLEN) as i64 {
        ctx.packet.invalidate(&mut ctx.memory);
        return Ok(neg(EINVAL));
    }
    let new_end = new_end as usize;
    if new_end > end {
        ctx.charge_bytes(new_end - end);
        ctx.packet.buffer(&mut ctx.memory)[end..new_end].fill(0);
    }
    ctx.packet.set_bounds(&mut ctx.memory, meta, data, new_end);
    Ok(0)
}

/// `bpf_xdp_adjust_tail` on a packet with fragments, as the kernel's
/// `bpf_xdp_frags_increase_tail` / `bpf_xdp_frags_shrink_tail`: growing adds zero bytes to
/// the last fragment within its page (`-EINVAL` past it); shrinking by more than the
/// packet's length with fragments less 14 is `-EINVAL`, else it takes the bytes off the
/// last fragments, releasing those it empties, and what is left of the shrink off the
/// linear part once no fragment is left. The shrink is `-delta` as a C `int` (so
/// `i32::MIN` stays negative and changes nothing, as in the kernel). Does not invalidate
/// packet pointers (the caller does).
fn adjust_frags_tail(ctx: &mut HelperContext, delta: i32) -> u64 {
    if delta >= 0 {
        let n = delta as usize;
        ctx.charge_bytes(n);
        return if ctx.packet.frags.grow(n) {
            0
        } else {
            neg(EINVAL)
        };
    }
    let shrink = delta.wrapping_neg();
    if i64::from(shrink) > ctx.packet.buff_len() as i64 - ETH_HLEN as i64 {
        return neg(EINVAL);
    }
    if shrink <= 0 {
        return 0;
    }
    let left = ctx.packet.frags.shrink(shrink as usize);
    if ctx.packet.frags.is_empty() && left > 0 {
        // The check above leaves at least ETH_HLEN bytes in the linear part.
        let p = &ctx.packet;
        let (meta, data, end) = (p.meta_off(), p.data_off(), p.end_off());
        ctx.packet
            .set_bounds(&mut ctx.memory, meta, data, end - left);
    }
    0
}

/// `bpf_xdp_get_buff_len(ctx)`: the packet's length with its fragments.
pub fn get_buff_len(ctx: &mut HelperContext, _: &[u64; 5]) -> Result<u64, Box<HelperError>> {
    require(ctx, "bpf_xdp_get_buff_len", XDP)?;
    Ok(ctx.packet.buff_len() as u64)
}

/// The checked `(off, len)` of `len` packet bytes at `off` from `data` (linear part, then
/// fragments), or the kernel's errno (`bpf_xdp_pointer`).
fn xdp_range(ctx: &HelperContext, off: u64, len: u64) -> Result<(usize, usize), i32> {
    let (off, len) = (off as u32, len as u32);
    if off > 0xffff || len > 0xffff {
        return Err(EFAULT);
    }
    if u64::from(off) + u64::from(len) > ctx.packet.buff_len() as u64 {
        return Err(EINVAL);
    }
    Ok((off as usize, len as usize))
}

/// `bpf_xdp_load_bytes(ctx, off, buf, len)`: copies packet bytes into `buf`.
pub fn load_bytes(ctx: &mut HelperContext, a: &[u64; 5]) -> Result<u64, Box<HelperError>> {
    const NAME: &str = "bpf_xdp_load_bytes";
    require(ctx, NAME, XDP)?;
    let (off, len) = match xdp_range(ctx, a[1], a[3]) {
        Ok(r) => r,
        Err(e) => return Ok(neg(e)),
    };
    let linear = ctx.packet.len();
    if off + len <= linear {
        return packet_to_guest(ctx, NAME, ctx.packet.data_off() + off, a[2], len).map(|()| 0);
    }
    // Across the linear part and the fragments (`bpf_xdp_copy_buf`).
    check_guest(ctx, NAME, a[2], len, Access::Write)?;
    let mut tmp = vec![0u8; len];
    ctx.packet.read_at(&mut ctx.memory, off, &mut tmp);
    write_guest(ctx, NAME, a[2], &tmp).map(|()| 0)
}

/// `bpf_xdp_store_bytes(ctx, off, buf, len)`: copies `buf` into the packet.
pub fn store_bytes(ctx: &mut HelperContext, a: &[u64; 5]) -> Result<u64, Box<HelperError>> {
    const NAME: &str = "bpf_xdp_store_bytes";
    require(ctx, NAME, XDP)?;
    let (off, len) = match xdp_range(ctx, a[1], a[3]) {
        Ok(r) => r,
        Err(e) => return Ok(neg(e)),
    };
    let linear = ctx.packet.len();
    if off + len <= linear {
        return guest_to_packet(ctx, NAME, a[2], ctx.packet.data_off() + off, len).map(|()| 0);
    }
    check_guest(ctx, NAME, a[2], len, Access::Read)?;
    let mut tmp = vec![0u8; len];
    read_guest(ctx, NAME, a[2], &mut tmp)?;
    ctx.charge_bytes(len);
    ctx.packet.write_at(&mut ctx.memory, off, &tmp);
    Ok(0)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::memory::{guest_addr, REGION_STACK};
    use crate::packet::{PAGE_SIZE, XDP_LINEAR_MAX};

    /// A context with an XDP packet of `data` (linear part `linear`) and a 256-byte guest
    /// buffer at [`buf`].
    fn ctx_with(data: &[u8], linear: usize) -> HelperContext {
        let mut ctx = HelperContext::new(0, 1);
        ctx.memory.set_owned_region(REGION_STACK, 0, 256, true);
        ctx.packet
            .setup_xdp(&mut ctx.memory, &[], data, linear)
            .unwrap();
        ctx
    }

    fn buf() -> u64 {
        guest_addr(REGION_STACK, 0)
    }

    fn call(f: crate::registry::HelperFn, ctx: &mut HelperContext, a: [u64; 5]) -> i64 {
        f(ctx, &a).unwrap() as i64
    }

    fn counted(len: usize) -> Vec<u8> {
        (0..len).map(|i| (i % 251) as u8).collect()
    }

    #[test]
    fn bytes_helpers_cross_the_linear_part_into_the_fragments() {
        let data = counted(8000);
        let mut ctx = ctx_with(&data, data.len());
        assert_eq!(call(get_buff_len, &mut ctx, [0; 5]), 8000);
        // 100 bytes across the linear part's end.
        let off = XDP_LINEAR_MAX as u64 - 40;
        assert_eq!(call(load_bytes, &mut ctx, [0, off, buf(), 100, 0]), 0);
        let mut got = [0u8; 100];
        ctx.memory.read_bytes(buf(), &mut got).unwrap();
        assert!(got[..] == data[off as usize..off as usize + 100]);
        // Across two fragments.
        let off2 = (XDP_LINEAR_MAX + PAGE_SIZE - 3) as u64;
        ctx.memory.write_bytes(buf(), &[0xee; 64]).unwrap();
        assert_eq!(call(store_bytes, &mut ctx, [0, off2, buf(), 10, 0]), 0);
        assert_eq!(call(store_bytes, &mut ctx, [0, off, buf(), 64, 0]), 0);
        let out = ctx.packet.output(&mut ctx.memory);
        let mut want = data.clone();
        want[off2 as usize..off2 as usize + 10].fill(0xee);
        want[off as usize..off as usize + 64].fill(0xee);
        assert!(out == want, "the stores landed elsewhere");
        // The last byte, and one past it.
        assert_eq!(call(load_bytes, &mut ctx, [0, 7999, buf(), 1, 0]), 0);
        assert_eq!(
            call(load_bytes, &mut ctx, [0, 7999, buf(), 2, 0]),
            -i64::from(EINVAL)
        );
        assert_eq!(
            call(load_bytes, &mut ctx, [0, 0x10000, buf(), 1, 0]),
            -i64::from(EFAULT)
        );
    }

    #[test]
    fn adjust_tail_grows_the_last_fragment_and_shrinks_through_the_fragments() {
        // Linear part of 20 bytes, then fragments of 4096 and 84.
        let data = counted(4200);
        let mut ctx = ctx_with(&data, 20);
        let grow =
            |ctx: &mut HelperContext, d: i32| call(adjust_tail, ctx, [0, d as u32 as u64, 0, 0, 0]);
        assert_eq!(
            grow(&mut ctx, (PAGE_SIZE - 84 + 1) as i32),
            -i64::from(EINVAL)
        );
        assert_eq!(grow(&mut ctx, 12), 0);
        assert_eq!(ctx.packet.buff_len(), 4212);
        assert_eq!(ctx.packet.len(), 20, "the linear part stays");
        assert_eq!(&ctx.packet.output(&mut ctx.memory)[4200..], &[0; 12]);
        // Shrinking to fewer than 14 bytes is refused, whatever the fragments.
        assert_eq!(grow(&mut ctx, -(4212 - 13)), -i64::from(EINVAL));
        assert_eq!(grow(&mut ctx, i32::MIN), 0, "-INT_MIN stays negative");
        assert_eq!(ctx.packet.buff_len(), 4212);
        // Through both fragments and 6 bytes into the linear part.
        assert_eq!(grow(&mut ctx, -(4212 - 14)), 0);
        assert!(ctx.packet.frags().is_empty());
        assert_eq!((ctx.packet.len(), ctx.packet.buff_len()), (14, 14));
        assert_eq!(ctx.packet.output(&mut ctx.memory), &data[..14]);
        // Linear again: the linear part's tailroom applies.
        assert_eq!(grow(&mut ctx, 100), 0);
        assert_eq!(ctx.packet.len(), 114);
        // Releasing exactly the fragments keeps the linear part whole.
        let mut ctx = ctx_with(&data, 20);
        assert_eq!(grow(&mut ctx, -4180), 0);
        assert_eq!((ctx.packet.len(), ctx.packet.frags().count()), (20, 0));
    }
}
