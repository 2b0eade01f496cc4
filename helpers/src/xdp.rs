//! The XDP packet helpers: resizing (`bpf_xdp_adjust_head`, `_meta`, `_tail`, with the
//! limits of the kernel's XDP test run: the `xdp_frame` at the head of the page, the
//! `skb_shared_info` at its end) and bytes (`bpf_xdp_load_bytes`, `_store_bytes`,
//! `bpf_xdp_get_buff_len`).
//!
//! | id | helper | returns |
//! |---|---|---|
//! | 44 | `bpf_xdp_adjust_head(ctx, delta)` | 0; `-EINVAL` when `data` would go below the `xdp_frame` plus metadata or within 14 bytes of `data_end` |
//! | 54 | `bpf_xdp_adjust_meta(ctx, delta)` | 0; `-EINVAL` outside `xdp_frame .. data`; `-EACCES` for metadata that is not a multiple of 4 or over 255 bytes |
//! | 65 | `bpf_xdp_adjust_tail(ctx, delta)` | 0 (grown bytes zeroed); `-EINVAL` past the tailroom or under 14 bytes |
//! | 188 | `bpf_xdp_get_buff_len(ctx)` | `data_end - data` |
//! | 189, 190 | `bpf_xdp_load_bytes` / `_store_bytes(ctx, off, buf, len)` | 0; `-EFAULT` for an offset or length over 0xffff, `-EINVAL` past the packet |
//!
//! The three resizing helpers invalidate the program's packet pointers (see
//! [`crate::packet`]); the byte helpers do not, as in the kernel.
//!
//! XDP fragments (packets longer than the page's linear part) are not modelled: bpfvm keeps
//! the whole packet linear.

use crate::context::HelperContext;
use crate::error::HelperError;
use crate::id::HelperId;
use crate::net::PacketHelper;
use crate::net::{guest_to_packet, neg, packet_to_guest, require, EACCES, EFAULT, EINVAL, XDP};
use crate::packet::{ETH_HLEN, XDP_META_MAX};
use crate::registry::Registry;

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

/// `bpf_xdp_adjust_tail(ctx, delta)`: moves `data_end` by `delta`, zeroing grown bytes.
pub fn adjust_tail(ctx: &mut HelperContext, a: &[u64; 5]) -> Result<u64, Box<HelperError>> {
    require(ctx, "bpf_xdp_adjust_tail", XDP)?;
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

/// `bpf_xdp_get_buff_len(ctx)`: the packet's length (no fragments in bpfvm).
pub fn get_buff_len(ctx: &mut HelperContext, _: &[u64; 5]) -> Result<u64, Box<HelperError>> {
    require(ctx, "bpf_xdp_get_buff_len", XDP)?;
    Ok(ctx.packet.len() as u64)
}

/// The buffer offset of `len` packet bytes at `off` from `data`, or the kernel's errno
/// (`bpf_xdp_pointer`).
fn xdp_pointer(ctx: &HelperContext, off: u64, len: u64) -> Result<usize, i32> {
    let (off, len) = (off as u32, len as u32);
    if off > 0xffff || len > 0xffff {
        return Err(EFAULT);
    }
    if u64::from(off) + u64::from(len) > ctx.packet.len() as u64 {
        return Err(EINVAL);
    }
    Ok(ctx.packet.data_off() + off as usize)
}

/// `bpf_xdp_load_bytes(ctx, off, buf, len)`: copies packet bytes into `buf`.
pub fn load_bytes(ctx: &mut HelperContext, a: &[u64; 5]) -> Result<u64, Box<HelperError>> {
    const NAME: &str = "bpf_xdp_load_bytes";
    require(ctx, NAME, XDP)?;
    match xdp_pointer(ctx, a[1], a[3]) {
        Ok(at) => packet_to_guest(ctx, NAME, at, a[2], a[3] as u32 as usize).map(|()| 0),
        Err(e) => Ok(neg(e)),
    }
}

/// `bpf_xdp_store_bytes(ctx, off, buf, len)`: copies `buf` into the packet.
pub fn store_bytes(ctx: &mut HelperContext, a: &[u64; 5]) -> Result<u64, Box<HelperError>> {
    const NAME: &str = "bpf_xdp_store_bytes";
    require(ctx, NAME, XDP)?;
    match xdp_pointer(ctx, a[1], a[3]) {
        Ok(at) => guest_to_packet(ctx, NAME, a[2], at, a[3] as u32 as usize).map(|()| 0),
        Err(e) => Ok(neg(e)),
    }
}
