//! What the packet helpers share: which program types the kernel lets call each of them,
//! the kernel's errno return values, and copies between the packet buffer and guest
//! memory. [`register`] registers every packet helper ([`crate::xdp`], [`crate::skb`],
//! [`crate::csum`], [`crate::redirect`], [`crate::fib`]).

use crate::context::HelperContext;
use crate::error::HelperError;
use crate::memory::Access;
use crate::packet::PacketProgram;
use crate::registry::{HelperFn, Registry};

/// A packet helper: its id, name, function and the program types the kernel lets call it.
#[derive(Debug, Clone, Copy)]
pub struct PacketHelper {
    /// The helper id (`BPF_FUNC_*`).
    pub id: u32,
    /// Its name (`bpf_xdp_adjust_head`).
    pub name: &'static str,
    /// The implementation.
    pub f: HelperFn,
    /// The program types that may call it (the kernel's `*_func_proto` tables).
    pub programs: &'static [PacketProgram],
}

/// Every packet helper of every module.
pub fn all() -> impl Iterator<Item = &'static PacketHelper> {
    crate::xdp::HELPERS
        .iter()
        .chain(crate::skb::HELPERS.iter())
        .chain(crate::csum::HELPERS.iter())
        .chain(crate::redirect::HELPERS.iter())
        .chain(crate::fib::HELPERS.iter())
}

/// The program types that may call packet helper `id`, or `None` if `id` is not one.
pub fn program_types(id: u32) -> Option<&'static [PacketProgram]> {
    all().find(|h| h.id == id).map(|h| h.programs)
}

/// Registers the packet helpers of every module in `r`.
pub fn register(r: &mut Registry) {
    crate::xdp::register(r);
    crate::skb::register(r);
    crate::csum::register(r);
    crate::redirect::register(r);
    crate::fib::register(r);
}

/// `-errno` as a helper's return value.
pub(crate) const fn neg(errno: i32) -> u64 {
    (-(errno as i64)) as u64
}

/// `ENOMEM`.
pub(crate) const ENOMEM: i32 = 12;
/// `EACCES`.
pub(crate) const EACCES: i32 = 13;
/// `EFAULT`.
pub(crate) const EFAULT: i32 = 14;
/// `EINVAL`.
pub(crate) const EINVAL: i32 = 22;
/// `EPROTO`.
pub(crate) const EPROTO: i32 = 71;
/// `EAFNOSUPPORT`.
pub(crate) const EAFNOSUPPORT: i32 = 97;
/// `EALREADY`.
pub(crate) const EALREADY: i32 = 114;
/// `ENOTSUPP` (the kernel-internal 524).
pub(crate) const ENOTSUPP: i32 = 524;
/// `ENODEV`.
pub(crate) const ENODEV: i32 = 19;

/// Program types that may call a helper, as the kernel's `*_func_proto` tables say.
pub(crate) const XDP: &[PacketProgram] = &[PacketProgram::Xdp];
/// tc (`sched_cls`, `sched_act`) only.
pub(crate) const TC: &[PacketProgram] = &[PacketProgram::Tc];
/// XDP and tc.
pub(crate) const XDP_TC: &[PacketProgram] = &[PacketProgram::Xdp, PacketProgram::Tc];
/// Every `__sk_buff` program type.
pub(crate) const SKB_ALL: &[PacketProgram] = &[
    PacketProgram::Tc,
    PacketProgram::SocketFilter,
    PacketProgram::CgroupSkb,
];
/// tc and cgroup_skb.
pub(crate) const TC_CGROUP: &[PacketProgram] = &[PacketProgram::Tc, PacketProgram::CgroupSkb];

/// The run's packet program type, if it is one of `allowed`; else the error the run ends
/// with (the kernel's verifier refuses the call at load time: "unknown func").
pub(crate) fn require(
    ctx: &HelperContext,
    helper: &str,
    allowed: &[PacketProgram],
) -> Result<PacketProgram, Box<HelperError>> {
    match ctx.packet.program() {
        Some(p) if allowed.contains(&p) => Ok(p),
        found => {
            let names: Vec<&str> = allowed.iter().map(|p| p.name()).collect();
            Err(Box::new(HelperError::Failed {
                helper: helper.to_string(),
                message: format!(
                    "not available to {} programs, only to {} (the kernel's verifier refuses the call: unknown func)",
                    found.map_or("non-packet", PacketProgram::name),
                    names.join(", ")
                ),
            }))
        }
    }
}

/// A memory fault of `helper` as its error.
fn fault(helper: &str, fault: crate::MemFault) -> Box<HelperError> {
    Box::new(HelperError::Memory {
        helper: helper.to_string(),
        fault: Box::new(fault),
    })
}

/// Bytes copied per step between the packet buffer and guest memory (a multiple of 8, so
/// checksums summed chunk by chunk equal one sum over the whole).
pub(crate) const CHUNK: usize = 256;

/// Checks that guest `addr .. addr + len` may be accessed with `access` (all bytes, before
/// anything is copied).
pub(crate) fn check_guest(
    ctx: &HelperContext,
    helper: &str,
    addr: u64,
    len: usize,
    access: Access,
) -> Result<(), Box<HelperError>> {
    if len == 0 {
        return Ok(());
    }
    ctx.memory
        .translate(addr, len as u64, access)
        .map(|_| ())
        .map_err(|f| fault(helper, f))
}

/// Copies `len` bytes of the packet buffer from buffer offset `at` to guest `dst`.
pub(crate) fn packet_to_guest(
    ctx: &mut HelperContext,
    helper: &str,
    at: usize,
    dst: u64,
    len: usize,
) -> Result<(), Box<HelperError>> {
    check_guest(ctx, helper, dst, len, Access::Write)?;
    ctx.charge_bytes(len);
    let mut tmp = [0u8; CHUNK];
    let mut done = 0;
    while done < len {
        let n = CHUNK.min(len - done);
        let buf = ctx.packet.buffer(&mut ctx.memory);
        tmp[..n].copy_from_slice(&buf[at + done..at + done + n]);
        ctx.memory
            .write_bytes(dst + done as u64, &tmp[..n])
            .map_err(|f| fault(helper, f))?;
        done += n;
    }
    Ok(())
}

/// Copies `len` bytes from guest `src` into the packet buffer at buffer offset `at`.
pub(crate) fn guest_to_packet(
    ctx: &mut HelperContext,
    helper: &str,
    src: u64,
    at: usize,
    len: usize,
) -> Result<(), Box<HelperError>> {
    check_guest(ctx, helper, src, len, Access::Read)?;
    ctx.charge_bytes(len);
    let mut tmp = [0u8; CHUNK];
    let mut done = 0;
    while done < len {
        let n = CHUNK.min(len - done);
        ctx.memory
            .read_bytes(src + done as u64, &mut tmp[..n])
            .map_err(|f| fault(helper, f))?;
        let buf = ctx.packet.buffer(&mut ctx.memory);
        buf[at + done..at + done + n].copy_from_slice(&tmp[..n]);
        done += n;
    }
    ctx.packet.touch(at, at + len);
    Ok(())
}

/// Writes `len` zero bytes to guest `dst` (what the kernel's helpers do to their output
/// buffer on failure).
pub(crate) fn zero_guest(
    ctx: &HelperContext,
    helper: &str,
    dst: u64,
    len: usize,
) -> Result<(), Box<HelperError>> {
    check_guest(ctx, helper, dst, len, Access::Write)?;
    ctx.charge_bytes(len);
    let zeros = [0u8; CHUNK];
    let mut done = 0;
    while done < len {
        let n = CHUNK.min(len - done);
        ctx.memory
            .write_bytes(dst + done as u64, &zeros[..n])
            .map_err(|f| fault(helper, f))?;
        done += n;
    }
    Ok(())
}

/// Reads `out.len()` guest bytes at `addr` (a helper's pointer argument).
pub(crate) fn read_guest(
    ctx: &HelperContext,
    helper: &str,
    addr: u64,
    out: &mut [u8],
) -> Result<(), Box<HelperError>> {
    ctx.read_arg(helper, addr, out).map_err(Box::new)
}

/// Writes `bytes` to guest memory at `addr` (a helper's output argument).
pub(crate) fn write_guest(
    ctx: &HelperContext,
    helper: &str,
    addr: u64,
    bytes: &[u8],
) -> Result<(), Box<HelperError>> {
    ctx.charge_bytes(bytes.len());
    ctx.memory
        .write_bytes(addr, bytes)
        .map_err(|f| fault(helper, f))
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Each helper refuses exactly the program types its table leaves out.
    #[test]
    fn helpers_refuse_the_program_types_their_table_leaves_out() {
        let kinds = [
            Some(PacketProgram::Xdp),
            Some(PacketProgram::Tc),
            Some(PacketProgram::SocketFilter),
            Some(PacketProgram::CgroupSkb),
            None,
        ];
        let frame = [0u8; 60];
        for h in all() {
            for kind in kinds {
                let mut ctx = HelperContext::new(0, 1);
                let c = &mut ctx;
                match kind {
                    Some(PacketProgram::Xdp) => c
                        .packet
                        .setup_xdp(&mut c.memory, &[], &frame, frame.len())
                        .unwrap(),
                    Some(k) => c.packet.setup_skb(&mut c.memory, k, &frame, 0, 8, 1),
                    None => c.packet.clear(&mut c.memory),
                }
                let refused = match (h.f)(&mut ctx, &[0; 5]) {
                    Err(e) => e.to_string().contains("not available to"),
                    Ok(_) => false,
                };
                let allowed = kind.is_some_and(|k| h.programs.contains(&k));
                assert_eq!(refused, !allowed, "{} for {kind:?}", h.name);
            }
        }
    }
}
