//! Perf event output: 25 `bpf_perf_event_output` and 121 `bpf_xdp_output` into a
//! PERF_EVENT_ARRAY (`bpfvm_maps::perf`), as the kernel's `bpf_xdp_event_output` /
//! `bpf_skb_event_output` (programs with a packet) and `bpf_perf_event_output` (others).
//!
//! `flags` holds the array index in its low 32 bits (`BPF_F_CURRENT_CPU`: the CPU the program
//! runs on) and, for programs with a packet, in bits 32..51 (`BPF_F_CTXLEN_MASK`) the number
//! of packet bytes to append to the sample (for a multi-buffer XDP packet, up to its whole
//! length, fragments included). Errors come back to the program as the kernel's:
//! `-EINVAL` for other flag bits, `-EFAULT` for more packet bytes than the packet has,
//! `-E2BIG` for an index past `max_entries`, `-ENOENT` for an index without an event,
//! `-EOPNOTSUPP` for an event of another CPU, `-ENOSPC` when the event's buffer is full.

use crate::context::{HelperContext, PacketCtx};
use crate::error::HelperError;
use crate::id::HelperId;
use crate::registry::Registry;

/// `BPF_F_INDEX_MASK`.
pub const INDEX_MASK: u64 = 0xffff_ffff;
/// `BPF_F_CTXLEN_MASK`: packet bytes to append, in bits 32..51.
pub const CTXLEN_MASK: u64 = 0xf_ffff << 32;

/// Registers helpers 25 and 121.
pub fn register(r: &mut Registry) {
    r.register_builtin(
        HelperId::PERF_EVENT_OUTPUT,
        "bpf_perf_event_output",
        perf_event_output,
        None,
    )
    .expect("built-in ids are small");
    r.register_builtin(HelperId::XDP_OUTPUT, "bpf_xdp_output", xdp_output, None)
        .expect("built-in ids are small");
}

fn neg(errno: i32) -> u64 {
    (-i64::from(errno)) as u64
}

/// The packet's `data` and `data_end` (guest addresses) from the program's context.
fn packet_bounds(ctx: &HelperContext, kind: PacketCtx) -> Option<(u64, u64)> {
    let (data, end) = match kind {
        PacketCtx::None => return None,
        PacketCtx::Xdp => (0, 4),
        PacketCtx::SkBuff => (76, 80),
    };
    let base = crate::memory::guest_addr(crate::memory::REGION_CTX, 0);
    let field = |off: u64| ctx.memory.load_guest(base + off, 4).ok();
    let pkt = |v: u64| crate::memory::guest_addr(crate::memory::REGION_PACKET, v as u32);
    Some((pkt(field(data)?), pkt(field(end)?)))
}

fn output(ctx: &mut HelperContext, name: &str, a: &[u64; 5]) -> Result<u64, Box<HelperError>> {
    let (_, map) = ctx.map_arg(name, a[1])?;
    let flags = a[2];
    let packet = packet_bounds(ctx, ctx.packet_ctx());
    let allowed = if packet.is_some() {
        INDEX_MASK | CTXLEN_MASK
    } else {
        INDEX_MASK
    };
    if flags & !allowed != 0 {
        return Ok(neg(bpfvm_maps::errno::EINVAL));
    }
    let ctx_len = (flags & CTXLEN_MASK) >> 32;
    let mut tail = Vec::new();
    if ctx.packet_ctx() == PacketCtx::Xdp && !ctx.packet.frags().is_empty() {
        // A multi-buffer XDP packet: up to its whole length, fragments included
        // (`bpf_xdp_copy`).
        if ctx_len > ctx.packet.buff_len() as u64 {
            return Ok(neg(bpfvm_maps::errno::EFAULT));
        }
        tail = vec![0u8; ctx_len as usize];
        ctx.charge_bytes(tail.len());
        ctx.packet.read_at(&mut ctx.memory, 0, &mut tail);
    } else if let Some((data, end)) = packet {
        if ctx_len > end.saturating_sub(data) {
            return Ok(neg(bpfvm_maps::errno::EFAULT));
        }
        tail = vec![0u8; ctx_len as usize];
        ctx.read_arg(name, data, &mut tail)?;
    }
    let Some(m) = map
        .as_map()
        .filter(|m| m.map_type() == bpfvm_maps::MapType::PerfEventArray)
    else {
        return Err(Box::new(HelperError::Failed {
            helper: name.to_string(),
            message: format!("map {:?} is not a perf event array", map.name()),
        }));
    };
    // The sample's own bytes: `size` bytes at `data`, checked as a whole before anything is
    // allocated (the verifier bounds `size` by the memory `data` points to).
    let size = a[4];
    if size > u64::from(u32::MAX) {
        return Err(Box::new(HelperError::Failed {
            helper: name.to_string(),
            message: format!("sample size {size} is larger than any memory a program has"),
        }));
    }
    if size > 0 {
        if let Err(fault) = ctx.memory.translate(a[3], size, crate::Access::Read) {
            return Err(Box::new(HelperError::Memory {
                helper: name.to_string(),
                fault: Box::new(fault),
            }));
        }
    }
    let mut data = vec![0u8; size as usize];
    ctx.read_arg(name, a[3], &mut data)?;
    Ok(
        match m.perf_output_parts(
            bpfvm_maps::CpuId(ctx.cpu()),
            flags & INDEX_MASK,
            &[&data, &tail],
        ) {
            Ok(()) => 0,
            Err(e) => neg(e.errno()),
        },
    )
}

/// `bpf_perf_event_output(ctx, map, flags, data, size)`: a sample of `size` bytes at `data`
/// (plus packet bytes, see the module docs) into the event at the index `flags` names.
pub fn perf_event_output(ctx: &mut HelperContext, a: &[u64; 5]) -> Result<u64, Box<HelperError>> {
    output(ctx, "bpf_perf_event_output", a)
}

/// `bpf_xdp_output(ctx, map, flags, data, size)`: the same for an XDP packet (the kernel
/// offers it to tracing programs attached to XDP functions; bpfvm to any program with an
/// XDP context).
pub fn xdp_output(ctx: &mut HelperContext, a: &[u64; 5]) -> Result<u64, Box<HelperError>> {
    output(ctx, "bpf_xdp_output", a)
}
