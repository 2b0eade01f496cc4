//! Tracing helpers: 177 `bpf_trace_vprintk`, 208 `bpf_ktime_get_tai_ns`, 174
//! `bpf_get_attach_cookie`.
//!
//! Deterministic like the other clock helpers: TAI time is the run's virtual clock plus a
//! fixed offset ([`TAI_OFFSET_NS`]), and the attach cookie is what the test set for the
//! program (0 by default).

use crate::context::HelperContext;
use crate::error::HelperError;
use crate::id::HelperId;
use crate::registry::{HelperFn, Registry};

/// `MAX_BPRINTF_VARARGS`: most arguments `bpf_trace_vprintk` takes.
pub const MAX_VPRINTK_ARGS: u64 = 12;
/// What `bpf_ktime_get_tai_ns` adds to the virtual clock: 2026-01-01 00:00:00 UTC in TAI
/// (37 leap seconds ahead of UTC), in nanoseconds.
pub const TAI_OFFSET_NS: u64 = (1_767_225_600 + 37) * 1_000_000_000;

/// Registers helpers 174, 177 and 208.
pub fn register(r: &mut Registry) {
    let all: [(HelperId, &'static str, HelperFn); 3] = [
        (
            HelperId::GET_ATTACH_COOKIE,
            "bpf_get_attach_cookie",
            get_attach_cookie,
        ),
        (HelperId::TRACE_VPRINTK, "bpf_trace_vprintk", trace_vprintk),
        (
            HelperId::KTIME_GET_TAI_NS,
            "bpf_ktime_get_tai_ns",
            ktime_get_tai_ns,
        ),
    ];
    for (id, name, f) in all {
        r.register_builtin(id, name, f, None)
            .expect("built-in ids are small");
    }
}

/// `bpf_trace_vprintk(fmt, fmt_size, data, data_len)`: `bpf_trace_printk` with the
/// arguments in an array of `data_len / 8` u64s (at most 12). `-EINVAL` when `data_len` is
/// not a multiple of 8, too long, or `data` is NULL with a length; otherwise as
/// `bpf_trace_printk`.
pub fn trace_vprintk(ctx: &mut HelperContext, a: &[u64; 5]) -> Result<u64, Box<HelperError>> {
    const NAME: &str = "bpf_trace_vprintk";
    const EINVAL: u64 = (-22i64) as u64;
    let (data, len) = (a[2], a[3]);
    if len % 8 != 0 || len > MAX_VPRINTK_ARGS * 8 || (len > 0 && data == 0) {
        return Ok(EINVAL);
    }
    let mut bytes = vec![0u8; len as usize];
    ctx.read_arg(NAME, data, &mut bytes)?;
    let args: Vec<u64> = bytes
        .chunks_exact(8)
        .map(|c| u64::from_le_bytes(c.try_into().expect("8 bytes")))
        .collect();
    crate::builtin::printk(ctx, NAME, a[0], a[1], &args)
}

/// `bpf_ktime_get_tai_ns()`: the virtual clock plus [`TAI_OFFSET_NS`].
pub fn ktime_get_tai_ns(ctx: &mut HelperContext, _: &[u64; 5]) -> Result<u64, Box<HelperError>> {
    Ok(ctx.now_ns().wrapping_add(TAI_OFFSET_NS))
}

/// `bpf_get_attach_cookie(ctx)`: the cookie set for the program (0 by default).
pub fn get_attach_cookie(ctx: &mut HelperContext, _: &[u64; 5]) -> Result<u64, Box<HelperError>> {
    Ok(ctx.attach_cookie())
}
