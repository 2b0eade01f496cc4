//! The `__sk_buff` packet helpers, as the kernel runs them on the skb of its test run
//! (linear, `CHECKSUM_NONE`, not GSO, not cloned):
//!
//! | id | helper | program types | returns |
//! |---|---|---|---|
//! | 26 | `bpf_skb_load_bytes(ctx, off, to, len)` | all `__sk_buff` | 0; `-EFAULT` (and `to` zeroed) past the packet |
//! | 68 | `bpf_skb_load_bytes_relative(ctx, off, to, len, start)` | all `__sk_buff` | 0; `-EFAULT` (zeroed) for an offset over 0xffff, an unknown `start` or past the packet |
//! | 9 | `bpf_skb_store_bytes(ctx, off, from, len, flags)` | tc | 0; `-EINVAL` for unknown flags, `-EFAULT` past the packet |
//! | 39 | `bpf_skb_pull_data(ctx, len)` | tc | 0; `-ENOMEM` past the packet |
//! | 31 | `bpf_skb_change_proto(ctx, proto, flags)` | tc | 0 (IPv4 ⇄ IPv6: 20 bytes pushed or popped after the MAC header); `-ENOTSUPP` otherwise |
//! | 38 | `bpf_skb_change_tail(ctx, len, flags)` | tc | 0 (grown bytes zeroed); `-EINVAL` over 16,064 bytes or under the headers |
//! | 43 | `bpf_skb_change_head(ctx, room, flags)` | tc | 0 (room zeroed, MAC header reset to it); `-EINVAL` over 16,064 bytes |
//! | 50 | `bpf_skb_adjust_room(ctx, diff, mode, flags)` | tc | 0; the kernel's `-EINVAL`/`-EFAULT`/`-ENOTSUPP`/`-EALREADY`/`-ENOMEM` |
//! | 97 | `bpf_skb_ecn_set_ce(ctx)` | tc, cgroup_skb | 1 when CE was set on an ECN-capable IPv4/IPv6 packet, else 0 |
//! | 34 | `bpf_get_hash_recalc(ctx)` | tc | the flow hash (set in `skb->hash`) |
//! | 41, 48 | `bpf_set_hash_invalid(ctx)`, `bpf_set_hash(ctx, hash)` | tc | 0 |
//! | 20, 21 | `bpf_skb_get_tunnel_key`, `bpf_skb_set_tunnel_key` | tc | 0; `-EINVAL` (no key, bad size or flags), `-EPROTO` (family) |
//!
//! Every helper the kernel's verifier treats as changing packet data (all of the above
//! from 9 down to 50) invalidates the program's packet pointers at each call.
//!
//! `bpf_get_hash_recalc`: the kernel's flow hash is keyed by a random value drawn at boot,
//! so no two machines agree on it; bpfvm's is a fixed function of the same flow keys
//! (addresses, protocol, ports), the same for both directions of a flow, never 0.

use crate::context::HelperContext;
use crate::error::HelperError;
use crate::id::HelperId;
use crate::memory::Access;
use crate::net::PacketHelper;
use crate::net::{
    check_guest, guest_to_packet, neg, packet_to_guest, read_guest, require, write_guest,
    zero_guest, EALREADY, EFAULT, EINVAL, ENOMEM, ENOTSUPP, EPROTO, SKB_ALL, TC, TC_CGROUP,
};
use crate::packet::{TunnelInfo, SKB_MAX_LEN};
use crate::registry::Registry;

/// The helpers of this module, with the program types that may call them.
pub const HELPERS: [PacketHelper; 14] = [
    PacketHelper {
        id: 26,
        name: "bpf_skb_load_bytes",
        f: load_bytes,
        programs: SKB_ALL,
    },
    PacketHelper {
        id: 68,
        name: "bpf_skb_load_bytes_relative",
        f: load_bytes_relative,
        programs: SKB_ALL,
    },
    PacketHelper {
        id: 9,
        name: "bpf_skb_store_bytes",
        f: store_bytes,
        programs: TC,
    },
    PacketHelper {
        id: 39,
        name: "bpf_skb_pull_data",
        f: pull_data,
        programs: TC,
    },
    PacketHelper {
        id: 31,
        name: "bpf_skb_change_proto",
        f: change_proto,
        programs: TC,
    },
    PacketHelper {
        id: 38,
        name: "bpf_skb_change_tail",
        f: change_tail,
        programs: TC,
    },
    PacketHelper {
        id: 43,
        name: "bpf_skb_change_head",
        f: change_head,
        programs: TC,
    },
    PacketHelper {
        id: 50,
        name: "bpf_skb_adjust_room",
        f: adjust_room,
        programs: TC,
    },
    PacketHelper {
        id: 97,
        name: "bpf_skb_ecn_set_ce",
        f: ecn_set_ce,
        programs: TC_CGROUP,
    },
    PacketHelper {
        id: 34,
        name: "bpf_get_hash_recalc",
        f: get_hash_recalc,
        programs: TC,
    },
    PacketHelper {
        id: 41,
        name: "bpf_set_hash_invalid",
        f: set_hash_invalid,
        programs: TC,
    },
    PacketHelper {
        id: 48,
        name: "bpf_set_hash",
        f: set_hash,
        programs: TC,
    },
    PacketHelper {
        id: 20,
        name: "bpf_skb_get_tunnel_key",
        f: get_tunnel_key,
        programs: TC,
    },
    PacketHelper {
        id: 21,
        name: "bpf_skb_set_tunnel_key",
        f: set_tunnel_key,
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

/// `ETH_P_IP` and `ETH_P_IPV6` as `skb->protocol` holds them (network order, read natively).
const PROTO_IP: u16 = u16::from_ne_bytes(0x0800u16.to_be_bytes());
const PROTO_IPV6: u16 = u16::from_ne_bytes(0x86ddu16.to_be_bytes());
/// `ETH_P_TEB` is only recorded as the inner protocol, which nothing reads back here.
const IPV4_HLEN: usize = 20;
const IPV6_HLEN: usize = 40;
const INT_MAX: u64 = i32::MAX as u64;

/// `skb->len`.
fn skb_len(ctx: &HelperContext) -> usize {
    ctx.packet.len()
}

/// Ends a helper that the kernel's verifier treats as changing packet data: the packet's
/// pointers are invalidated (and the context rewritten) whatever the outcome.
fn changed(ctx: &mut HelperContext, ret: u64) -> Result<u64, Box<HelperError>> {
    ctx.packet.invalidate(&mut ctx.memory);
    Ok(ret)
}

/// `bpf_skb_load_bytes(ctx, off, to, len)`.
pub fn load_bytes(ctx: &mut HelperContext, a: &[u64; 5]) -> Result<u64, Box<HelperError>> {
    const NAME: &str = "bpf_skb_load_bytes";
    require(ctx, NAME, SKB_ALL)?;
    let (off, to, len) = (a[1] as u32 as u64, a[2], a[3] as u32 as usize);
    if off > INT_MAX || off + len as u64 > skb_len(ctx) as u64 {
        zero_guest(ctx, NAME, to, len)?;
        return Ok(neg(EFAULT));
    }
    let at = ctx.packet.data_off() + off as usize;
    packet_to_guest(ctx, NAME, at, to, len)?;
    Ok(0)
}

/// `BPF_HDR_START_MAC`, `BPF_HDR_START_NET`.
const HDR_START_MAC: u64 = 0;
const HDR_START_NET: u64 = 1;

/// `bpf_skb_load_bytes_relative(ctx, off, to, len, start_header)`.
pub fn load_bytes_relative(ctx: &mut HelperContext, a: &[u64; 5]) -> Result<u64, Box<HelperError>> {
    const NAME: &str = "bpf_skb_load_bytes_relative";
    require(ctx, NAME, SKB_ALL)?;
    let (off, to, len) = (a[1] as u32 as usize, a[2], a[3] as u32 as usize);
    let start = match a[4] as u32 as u64 {
        HDR_START_MAC => ctx.packet.skb.mac,
        HDR_START_NET => Some(ctx.packet.skb.network),
        _ => None,
    };
    match start {
        Some(s) if off <= 0xffff && s + off + len <= ctx.packet.end_off() => {
            packet_to_guest(ctx, NAME, s + off, to, len)?;
            Ok(0)
        }
        _ => {
            zero_guest(ctx, NAME, to, len)?;
            Ok(neg(EFAULT))
        }
    }
}

/// `BPF_F_RECOMPUTE_CSUM`, `BPF_F_INVALIDATE_HASH`.
const F_RECOMPUTE_CSUM: u64 = 1;
const F_INVALIDATE_HASH: u64 = 2;

/// `bpf_skb_store_bytes(ctx, off, from, len, flags)`. `BPF_F_RECOMPUTE_CSUM` changes only
/// `skb->csum` of a `CHECKSUM_COMPLETE` skb, which test runs do not have.
pub fn store_bytes(ctx: &mut HelperContext, a: &[u64; 5]) -> Result<u64, Box<HelperError>> {
    const NAME: &str = "bpf_skb_store_bytes";
    require(ctx, NAME, TC)?;
    let (off, from, len, flags) = (a[1] as u32 as u64, a[2], a[3] as u32 as usize, a[4]);
    if flags & !(F_RECOMPUTE_CSUM | F_INVALIDATE_HASH) != 0 {
        return changed(ctx, neg(EINVAL));
    }
    if off > INT_MAX || off + len as u64 > skb_len(ctx) as u64 {
        return changed(ctx, neg(EFAULT));
    }
    let at = ctx.packet.data_off() + off as usize;
    guest_to_packet(ctx, NAME, from, at, len)?;
    if flags & F_INVALIDATE_HASH != 0 {
        clear_hash(ctx);
    }
    changed(ctx, 0)
}

/// `bpf_skb_pull_data(ctx, len)`: the packet is always linear here, so only a length past
/// its end fails (`-ENOMEM`).
pub fn pull_data(ctx: &mut HelperContext, a: &[u64; 5]) -> Result<u64, Box<HelperError>> {
    require(ctx, "bpf_skb_pull_data", TC)?;
    let len = a[1] as u32 as usize;
    let ret = if len > skb_len(ctx) { neg(ENOMEM) } else { 0 };
    changed(ctx, ret)
}

/// `skb_clear_hash`.
fn clear_hash(ctx: &mut HelperContext) {
    ctx.packet.skb.hash = 0;
    ctx.packet.skb.hash_valid = false;
}

/// `bpf_skb_generic_push` + header moves (`bpf_skb_net_hdr_push`): `len` zero bytes
/// inserted `off` bytes after `data` (the first `off` bytes move to the new front).
fn net_hdr_push(ctx: &mut HelperContext, off: usize, len: usize) -> Result<(), i32> {
    let p = &ctx.packet;
    let (data, end) = (p.data_off(), p.end_off());
    if data < p.head_min() + len || off > end - data {
        return Err(ENOMEM);
    }
    let new_data = data - len;
    ctx.charge_bytes(off + len);
    let buf = ctx.packet.buffer(&mut ctx.memory);
    buf.copy_within(data..data + off, new_data);
    buf[new_data + off..new_data + off + len].fill(0);
    let s = &mut ctx.packet.skb;
    let trans_same = s.transport == Some(s.network);
    s.mac = s.mac.map(|m| m.wrapping_sub(len));
    s.network = s.network.wrapping_sub(len);
    if trans_same {
        s.transport = Some(s.network);
    }
    ctx.packet.touch(new_data, data);
    ctx.packet
        .set_bounds(&mut ctx.memory, new_data, new_data, end);
    Ok(())
}

/// `bpf_skb_generic_pop` + header moves (`bpf_skb_net_hdr_pop`): `len` bytes removed `off`
/// bytes after `data`.
fn net_hdr_pop(ctx: &mut HelperContext, off: usize, len: usize) -> Result<(), i32> {
    let (data, end) = (ctx.packet.data_off(), ctx.packet.end_off());
    if off + len > end - data {
        return Err(ENOMEM);
    }
    let new_data = data + len;
    ctx.charge_bytes(off);
    let buf = ctx.packet.buffer(&mut ctx.memory);
    buf.copy_within(data..data + off, new_data);
    let s = &mut ctx.packet.skb;
    let trans_same = s.transport == Some(s.network);
    s.mac = s.mac.map(|m| m + len);
    s.network += len;
    if trans_same {
        s.transport = Some(s.network);
    }
    ctx.packet
        .set_bounds(&mut ctx.memory, new_data, new_data, end);
    Ok(())
}

/// `skb_mac_header_len`: network header minus MAC header.
fn mac_header_len(ctx: &HelperContext) -> usize {
    let s = &ctx.packet.skb;
    s.network - s.mac.unwrap_or(s.network)
}

/// `bpf_skb_change_proto(ctx, proto, flags)`: IPv4 ⇄ IPv6 room after the MAC header.
pub fn change_proto(ctx: &mut HelperContext, a: &[u64; 5]) -> Result<u64, Box<HelperError>> {
    require(ctx, "bpf_skb_change_proto", TC)?;
    if a[2] != 0 {
        return changed(ctx, neg(EINVAL));
    }
    let to = a[1] as u16;
    let from = ctx.packet.skb.protocol;
    let off = mac_header_len(ctx);
    let diff = IPV6_HLEN - IPV4_HLEN;
    let r = if from == PROTO_IP && to == PROTO_IPV6 {
        net_hdr_push(ctx, off, diff)
    } else if from == PROTO_IPV6 && to == PROTO_IP {
        net_hdr_pop(ctx, off, diff)
    } else {
        Err(ENOTSUPP)
    };
    if r.is_ok() {
        ctx.packet.skb.protocol = to;
        clear_hash(ctx);
    }
    changed(ctx, r.map_or_else(neg, |()| 0))
}

/// `__bpf_skb_min_len`: the packet may not be cut into its network or transport header.
fn min_len(ctx: &HelperContext) -> usize {
    let s = &ctx.packet.skb;
    let data = ctx.packet.data_off() as i64;
    let mut min = 0;
    if s.network as i64 - data > 0 {
        min = (s.network as i64 - data) as usize;
    }
    if let Some(t) = s.transport {
        if t as i64 - data > 0 {
            min = (t as i64 - data) as usize;
        }
    }
    min
}

/// `bpf_skb_change_tail(ctx, len, flags)`.
pub fn change_tail(ctx: &mut HelperContext, a: &[u64; 5]) -> Result<u64, Box<HelperError>> {
    require(ctx, "bpf_skb_change_tail", TC)?;
    let new_len = a[1] as u32 as usize;
    if a[2] != 0 || new_len > SKB_MAX_LEN || new_len < min_len(ctx) {
        return changed(ctx, neg(EINVAL));
    }
    if ctx.packet.skb.encapsulation {
        return changed(ctx, neg(ENOTSUPP));
    }
    let (meta, data, end) = (
        ctx.packet.meta_off(),
        ctx.packet.data_off(),
        ctx.packet.end_off(),
    );
    let new_end = data + new_len;
    if new_end > ctx.packet.tail_max() {
        return changed(ctx, neg(ENOMEM));
    }
    if new_end > end {
        ctx.charge_bytes(new_end - end);
        ctx.packet.buffer(&mut ctx.memory)[end..new_end].fill(0);
    }
    ctx.packet.set_bounds(&mut ctx.memory, meta, data, new_end);
    Ok(0)
}

/// `bpf_skb_change_head(ctx, room, flags)`: `room` zero bytes in front, the MAC header
/// reset to them.
pub fn change_head(ctx: &mut HelperContext, a: &[u64; 5]) -> Result<u64, Box<HelperError>> {
    require(ctx, "bpf_skb_change_head", TC)?;
    let room = a[1] as u32;
    let len = skb_len(ctx) as u64;
    let new_len = len + u64::from(room);
    if a[2] != 0 || (room as i32) < 0 || new_len > SKB_MAX_LEN as u64 {
        return changed(ctx, neg(EINVAL));
    }
    let room = room as usize;
    let (data, end) = (ctx.packet.data_off(), ctx.packet.end_off());
    if data < ctx.packet.head_min() + room {
        return changed(ctx, neg(ENOMEM));
    }
    let new_data = data - room;
    ctx.charge_bytes(room);
    ctx.packet.buffer(&mut ctx.memory)[new_data..data].fill(0);
    ctx.packet.skb.mac = Some(new_data);
    ctx.packet
        .set_bounds(&mut ctx.memory, new_data, new_data, end);
    Ok(0)
}

/// `bpf_skb_adjust_room` flags and modes.
mod adj {
    pub const FIXED_GSO: u64 = 1 << 0;
    pub const ENCAP_L3_IPV4: u64 = 1 << 1;
    pub const ENCAP_L3_IPV6: u64 = 1 << 2;
    pub const ENCAP_L4_GRE: u64 = 1 << 3;
    pub const ENCAP_L4_UDP: u64 = 1 << 4;
    pub const NO_CSUM_RESET: u64 = 1 << 5;
    pub const ENCAP_L2_ETH: u64 = 1 << 6;
    pub const DECAP_L3_IPV4: u64 = 1 << 7;
    pub const DECAP_L3_IPV6: u64 = 1 << 8;
    pub const ENCAP_L2_SHIFT: u32 = 56;
    pub const ENCAP_L2_MASK: u64 = 0xff << ENCAP_L2_SHIFT;
    pub const ENCAP_L3: u64 = ENCAP_L3_IPV4 | ENCAP_L3_IPV6;
    pub const DECAP_L3: u64 = DECAP_L3_IPV4 | DECAP_L3_IPV6;
    pub const MASK: u64 = FIXED_GSO
        | ENCAP_L3
        | ENCAP_L4_GRE
        | ENCAP_L4_UDP
        | ENCAP_L2_ETH
        | ENCAP_L2_MASK
        | DECAP_L3;
    pub const MODE_NET: u64 = 0;
    pub const MODE_MAC: u64 = 1;
}

/// The IP header length of `skb->protocol` (`bpf_skb_net_base_len`).
fn net_base_len(protocol: u16) -> Option<usize> {
    match protocol {
        PROTO_IP => Some(IPV4_HLEN),
        PROTO_IPV6 => Some(IPV6_HLEN),
        _ => None,
    }
}

/// `bpf_skb_adjust_room(ctx, len_diff, mode, flags)`.
pub fn adjust_room(ctx: &mut HelperContext, a: &[u64; 5]) -> Result<u64, Box<HelperError>> {
    require(ctx, "bpf_skb_adjust_room", TC)?;
    let r = adjust_room_inner(ctx, a[1] as u32 as i32, a[2] as u32 as u64, a[3]);
    changed(ctx, r.map_or_else(neg, |()| 0))
}

fn adjust_room_inner(ctx: &mut HelperContext, diff: i32, mode: u64, flags: u64) -> Result<(), i32> {
    let abs = diff.unsigned_abs() as usize;
    let shrink = diff < 0;
    if flags & !(adj::MASK | adj::NO_CSUM_RESET) != 0 {
        return Err(EINVAL);
    }
    if abs > 0xfff {
        return Err(EFAULT);
    }
    let proto = ctx.packet.skb.protocol;
    let Some(base_len) = net_base_len(proto) else {
        return Err(ENOTSUPP);
    };
    let mut off = mac_header_len(ctx);
    match mode {
        adj::MODE_NET => off += base_len,
        adj::MODE_MAC => {}
        _ => return Err(ENOTSUPP),
    }
    let mut len_min = base_len;
    if flags & adj::DECAP_L3 != 0 {
        if !shrink {
            return Err(EINVAL);
        }
        len_min = match flags & adj::DECAP_L3 {
            adj::DECAP_L3_IPV4 => IPV4_HLEN,
            adj::DECAP_L3_IPV6 => IPV6_HLEN,
            _ => return Err(EINVAL),
        };
    }
    let len = skb_len(ctx);
    let net_off = ctx.packet.skb.network as i64 - ctx.packet.data_off() as i64;
    let len_cur = len as i64 - net_off;
    if shrink && (abs as i64 >= len_cur || len_cur - (abs as i64) < len_min as i64) {
        return Err(ENOTSUPP);
    }
    if !shrink && len + abs > SKB_MAX_LEN {
        return Err(ENOTSUPP);
    }
    if shrink {
        if flags & !(adj::FIXED_GSO | adj::DECAP_L3 | adj::NO_CSUM_RESET) != 0 {
            return Err(EINVAL);
        }
        net_hdr_pop(ctx, off, abs)?;
        let s = &mut ctx.packet.skb;
        if s.protocol == PROTO_IP && flags & adj::DECAP_L3_IPV6 != 0 {
            s.protocol = PROTO_IPV6;
        } else if s.protocol == PROTO_IPV6 && flags & adj::DECAP_L3_IPV4 != 0 {
            s.protocol = PROTO_IP;
        }
        return Ok(());
    }
    let encap = flags & adj::ENCAP_L3 != 0;
    let inner_mac_len = (flags >> adj::ENCAP_L2_SHIFT) as usize;
    let mac_len = mac_header_len(ctx);
    if encap {
        if flags & adj::ENCAP_L3 == adj::ENCAP_L3 {
            return Err(EINVAL);
        }
        if flags & (adj::ENCAP_L4_GRE | adj::ENCAP_L4_UDP) == adj::ENCAP_L4_GRE | adj::ENCAP_L4_UDP
        {
            return Err(EINVAL);
        }
        if flags & adj::ENCAP_L2_ETH != 0 && inner_mac_len < crate::packet::ETH_HLEN {
            return Err(EINVAL);
        }
        if ctx.packet.skb.encapsulation {
            return Err(EALREADY);
        }
        if inner_mac_len > abs {
            return Err(EINVAL);
        }
    }
    net_hdr_push(ctx, off, abs)?;
    if encap {
        let data = ctx.packet.data_off();
        let s = &mut ctx.packet.skb;
        s.encapsulation = true;
        s.network = data + mac_len;
        if flags & (adj::ENCAP_L4_GRE | adj::ENCAP_L4_UDP) != 0 {
            let nh_len = if flags & adj::ENCAP_L3_IPV6 != 0 {
                IPV6_HLEN
            } else {
                IPV4_HLEN
            };
            s.transport = Some(data + mac_len + nh_len);
        }
        if s.protocol == PROTO_IP && flags & adj::ENCAP_L3_IPV6 != 0 {
            s.protocol = PROTO_IPV6;
        } else if s.protocol == PROTO_IPV6 && flags & adj::ENCAP_L3_IPV4 != 0 {
            s.protocol = PROTO_IP;
        }
    }
    Ok(())
}

/// `bpf_skb_ecn_set_ce(ctx)` (`INET_ECN_set_ce`).
pub fn ecn_set_ce(ctx: &mut HelperContext, _: &[u64; 5]) -> Result<u64, Box<HelperError>> {
    require(ctx, "bpf_skb_ecn_set_ce", TC_CGROUP)?;
    let proto = ctx.packet.skb.protocol;
    let Some(hlen) = net_base_len(proto) else {
        return Ok(0);
    };
    let (data, end, nh) = (
        ctx.packet.data_off(),
        ctx.packet.end_off(),
        ctx.packet.skb.network,
    );
    if end - data < hlen || nh + hlen > end {
        return Ok(0);
    }
    let buf = ctx.packet.buffer(&mut ctx.memory);
    let set = if proto == PROTO_IP {
        let tos = buf[nh + 1];
        // ECN field + 1: not-ECT 01, ECT(1) 10, ECT(0) 11, CE 00.
        let ecn = (tos.wrapping_add(1)) & 3;
        if ecn & 2 == 0 {
            u64::from(ecn == 0)
        } else {
            // The checksum grows by 0xfffd (ECT(1)) or 0xfffe (ECT(0)), network order.
            let check = u16::from_ne_bytes([buf[nh + 10], buf[nh + 11]]);
            let add = u16::from_ne_bytes((0xfffbu16 + u16::from(ecn)).to_be_bytes());
            let sum = crate::csum::csum16_add(check, add);
            buf[nh + 10..nh + 12].copy_from_slice(&sum.to_ne_bytes());
            buf[nh + 1] = tos | 3;
            1
        }
    } else {
        let first = u32::from_be_bytes([buf[nh], buf[nh + 1], buf[nh + 2], buf[nh + 3]]);
        // The traffic class is bits 20..28; its ECN field bits 20..22.
        if (first >> 20) & 3 == 0 {
            0
        } else {
            buf[nh..nh + 4].copy_from_slice(&(first | (3 << 20)).to_be_bytes());
            1
        }
    };
    Ok(set)
}

/// The flow hash of the packet (see the module documentation): symmetric in the
/// addresses and ports, never 0; `l4` says whether ports were found.
fn flow_hash(ctx: &mut HelperContext) -> (u32, bool) {
    let proto = ctx.packet.skb.protocol;
    let (nh, end) = (ctx.packet.skb.network, ctx.packet.end_off());
    let buf = ctx.packet.buffer(&mut ctx.memory);
    let pkt = buf.get(nh..end).unwrap_or(&[]);
    let (mut a, mut b, l4proto, l4): (&[u8], &[u8], u8, Option<usize>) = match proto {
        PROTO_IP if pkt.len() >= IPV4_HLEN => {
            let ihl = usize::from(pkt[0] & 0xf) * 4;
            let frag = u16::from_be_bytes([pkt[6], pkt[7]]) & 0x3fff != 0;
            (&pkt[12..16], &pkt[16..20], pkt[9], (!frag).then_some(ihl))
        }
        PROTO_IPV6 if pkt.len() >= IPV6_HLEN => {
            (&pkt[8..24], &pkt[24..40], pkt[6], Some(IPV6_HLEN))
        }
        _ => (&[], &[], 0, None),
    };
    let ports = match (l4proto, l4) {
        (6 | 17 | 33 | 132 | 136, Some(at)) => pkt.get(at..at + 4),
        _ => None,
    };
    let (mut sp, mut dp) = ports.map_or(([0u8; 2], [0u8; 2]), |p| ([p[0], p[1]], [p[2], p[3]]));
    // `__flow_hash_consistentify`: the smaller address (or port) first.
    if b < a || (a == b && dp < sp) {
        std::mem::swap(&mut a, &mut b);
        std::mem::swap(&mut sp, &mut dp);
    }
    let mut h: u64 = 0x6a09_e667_f3bc_c908 ^ u64::from(proto) ^ (u64::from(l4proto) << 16);
    for chunk in [a, b, &sp[..], &dp[..]] {
        for &x in chunk {
            h = (h ^ u64::from(x)).wrapping_mul(0x0100_0000_01b3);
        }
        h ^= h >> 29;
    }
    h = h.wrapping_mul(0xbf58_476d_1ce4_e5b9);
    let v = (h ^ (h >> 32)) as u32;
    (if v == 0 { 1 } else { v }, ports.is_some())
}

/// `bpf_get_hash_recalc(ctx)`: `skb->hash`, computed from the flow when not set.
pub fn get_hash_recalc(ctx: &mut HelperContext, _: &[u64; 5]) -> Result<u64, Box<HelperError>> {
    require(ctx, "bpf_get_hash_recalc", TC)?;
    if !ctx.packet.skb.hash_valid {
        let (h, _) = flow_hash(ctx);
        ctx.packet.skb.hash = h;
        ctx.packet.skb.hash_valid = true;
        ctx.packet.install(&mut ctx.memory);
    }
    Ok(u64::from(ctx.packet.skb.hash))
}

/// `bpf_set_hash_invalid(ctx)`: clears `skb->hash`.
pub fn set_hash_invalid(ctx: &mut HelperContext, _: &[u64; 5]) -> Result<u64, Box<HelperError>> {
    require(ctx, "bpf_set_hash_invalid", TC)?;
    clear_hash(ctx);
    ctx.packet.install(&mut ctx.memory);
    Ok(0)
}

/// `bpf_set_hash(ctx, hash)`: sets `skb->hash`.
pub fn set_hash(ctx: &mut HelperContext, a: &[u64; 5]) -> Result<u64, Box<HelperError>> {
    require(ctx, "bpf_set_hash", TC)?;
    ctx.packet.skb.hash = a[1] as u32;
    ctx.packet.skb.hash_valid = true;
    ctx.packet.install(&mut ctx.memory);
    Ok(0)
}

/// `sizeof(struct bpf_tunnel_key)` and the older layouts the kernel still accepts.
const TUNNEL_KEY_SIZE: usize = 44;
const TUNNEL_KEY_COMPAT: [usize; 4] = [28, 24, 22, 8];
/// `BPF_F_TUNINFO_IPV6`, `BPF_F_TUNINFO_FLAGS` (get) and the set flags.
const F_TUNINFO_IPV6: u64 = 1;
const F_TUNINFO_FLAGS: u64 = 1 << 4;
const F_ZERO_CSUM_TX: u64 = 1 << 1;
const F_DONT_FRAGMENT: u64 = 1 << 2;
const F_SEQ_NUMBER: u64 = 1 << 3;
const F_NO_TUNNEL_KEY: u64 = 1 << 4;
/// `IP_TUNNEL_*_BIT` positions of the `TUNNEL_*` flags.
const TUN_CSUM: u16 = 1 << 0;
const TUN_KEY: u16 = 1 << 2;
const TUN_SEQ: u16 = 1 << 3;
const TUN_DONT_FRAGMENT: u16 = 1 << 8;
const TUN_NOCACHE: u16 = 1 << 13;

fn u32_at(b: &[u8], at: usize) -> u32 {
    u32::from_ne_bytes([b[at], b[at + 1], b[at + 2], b[at + 3]])
}

/// `bpf_skb_set_tunnel_key(ctx, key, size, flags)`.
pub fn set_tunnel_key(ctx: &mut HelperContext, a: &[u64; 5]) -> Result<u64, Box<HelperError>> {
    const NAME: &str = "bpf_skb_set_tunnel_key";
    require(ctx, NAME, TC)?;
    let (from, size, flags) = (a[1], a[2] as u32 as usize, a[3]);
    if flags & !(F_TUNINFO_IPV6 | F_ZERO_CSUM_TX | F_DONT_FRAGMENT | F_SEQ_NUMBER | F_NO_TUNNEL_KEY)
        != 0
    {
        return Ok(neg(EINVAL));
    }
    if size != TUNNEL_KEY_SIZE && !TUNNEL_KEY_COMPAT.contains(&size) {
        return Ok(neg(EINVAL));
    }
    let mut key = [0u8; TUNNEL_KEY_SIZE];
    read_guest(ctx, NAME, from, &mut key[..size])?;
    let ipv6 = flags & F_TUNINFO_IPV6 != 0;
    let label = u32_at(&key, 24);
    let ext = u16::from_ne_bytes([key[22], key[23]]);
    if (!ipv6 && label != 0) || ext != 0 {
        return Ok(neg(EINVAL));
    }
    let mut flags_host = TUN_NOCACHE;
    if flags & F_DONT_FRAGMENT != 0 {
        flags_host |= TUN_DONT_FRAGMENT;
    }
    if flags & F_ZERO_CSUM_TX == 0 {
        flags_host |= TUN_CSUM;
    }
    if flags & F_SEQ_NUMBER != 0 {
        flags_host |= TUN_SEQ;
    }
    if flags & F_NO_TUNNEL_KEY == 0 {
        flags_host |= TUN_KEY;
    }
    let words = |at: usize| [0, 4, 8, 12].map(|i| u32_at(&key, at + i));
    let mut info = TunnelInfo {
        id: u64::from(u32_at(&key, 0)),
        ipv6,
        tos: key[20],
        ttl: key[21],
        flags_be: u16::from_ne_bytes(flags_host.to_be_bytes()),
        ..TunnelInfo::default()
    };
    if ipv6 {
        info.remote = words(4);
        info.local = words(28);
        info.label = label & 0x000f_ffff;
    } else {
        info.remote = [u32_at(&key, 4), 0, 0, 0];
        info.local = [u32_at(&key, 28), 0, 0, 0];
    }
    ctx.packet.tunnel = Some(info);
    Ok(0)
}

/// `bpf_skb_get_tunnel_key(ctx, key, size, flags)`: the key set earlier in the run, as
/// the kernel reports its transmit key (the remote address it set is reported as the
/// local one and the other way round).
pub fn get_tunnel_key(ctx: &mut HelperContext, a: &[u64; 5]) -> Result<u64, Box<HelperError>> {
    const NAME: &str = "bpf_skb_get_tunnel_key";
    require(ctx, NAME, TC)?;
    let (to, size, flags) = (a[1], a[2] as u32 as usize, a[3]);
    check_guest(ctx, NAME, to, size, Access::Write)?;
    let fail = |ctx: &HelperContext, e: i32| -> Result<u64, Box<HelperError>> {
        zero_guest(ctx, NAME, to, size)?;
        Ok(neg(e))
    };
    let Some(info) = ctx.packet.tunnel else {
        return fail(ctx, EINVAL);
    };
    if flags & !(F_TUNINFO_IPV6 | F_TUNINFO_FLAGS) != 0 {
        return fail(ctx, EINVAL);
    }
    if info.ipv6 != (flags & F_TUNINFO_IPV6 != 0) {
        return fail(ctx, EPROTO);
    }
    if size != TUNNEL_KEY_SIZE {
        let ok = match size {
            28 | 24 | 22 => true,
            8 => !info.ipv6,
            _ => false,
        };
        if !ok {
            return fail(ctx, EINVAL);
        }
    }
    let mut key = [0u8; TUNNEL_KEY_SIZE];
    key[0..4].copy_from_slice(&(info.id as u32).to_ne_bytes());
    key[20] = info.tos;
    key[21] = info.ttl;
    if flags & F_TUNINFO_FLAGS != 0 {
        key[22..24].copy_from_slice(&info.flags_be.to_ne_bytes());
    }
    // Set stored `remote` as the key's destination and `local` as its source; get reports
    // the source as remote.
    let (remote, local) = (info.local, info.remote);
    for i in 0..4 {
        key[4 + 4 * i..8 + 4 * i].copy_from_slice(&remote[i].to_ne_bytes());
        key[28 + 4 * i..32 + 4 * i].copy_from_slice(&local[i].to_ne_bytes());
    }
    key[24..28].copy_from_slice(&info.label.to_ne_bytes());
    write_guest(ctx, NAME, to, &key[..size])?;
    Ok(0)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::packet::PacketProgram;

    #[test]
    fn the_flow_hash_is_the_same_both_ways_and_never_zero() {
        let mut ctx = HelperContext::new(0, 1);
        let mut frame = vec![0u8; 14 + 20 + 8];
        frame[12] = 0x08;
        frame[14] = 0x45;
        frame[23] = 17;
        frame[26..30].copy_from_slice(&[10, 0, 0, 1]);
        frame[30..34].copy_from_slice(&[10, 0, 0, 2]);
        frame[34..38].copy_from_slice(&[0x30, 0x39, 0, 53]);
        let mut hash_of = |f: &[u8]| {
            ctx.packet
                .setup_skb(&mut ctx.memory, PacketProgram::Tc, f, 0, PROTO_IP, 1);
            flow_hash(&mut ctx)
        };
        let (h1, l4) = hash_of(&frame);
        let mut back = frame.clone();
        back[26..30].copy_from_slice(&[10, 0, 0, 2]);
        back[30..34].copy_from_slice(&[10, 0, 0, 1]);
        back[34..38].copy_from_slice(&[0, 53, 0x30, 0x39]);
        let (h2, _) = hash_of(&back);
        assert!(l4);
        assert_eq!(h1, h2);
        assert_ne!(h1, 0);
        let mut other = frame.clone();
        other[35] = 0x3a;
        assert_ne!(hash_of(&other).0, h1);
    }
}
