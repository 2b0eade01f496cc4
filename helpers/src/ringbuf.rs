//! Ring buffer helpers on RINGBUF maps (`bpfvm_maps::ringbuf`): 130 `bpf_ringbuf_output`,
//! 131 `bpf_ringbuf_reserve`, 132 `bpf_ringbuf_submit`, 133 `bpf_ringbuf_discard`, 134
//! `bpf_ringbuf_query`.
//!
//! A reservation is memory the program writes directly, so it is confined like every other
//! object: it gets a dynamic region of its own ([`Memory::install_ringbuf_object`]), so an
//! access past its `size` bytes faults, and submitting or discarding it removes the region,
//! so a later access through the old pointer faults too (the verifier forbids both). A run
//! that ends with a reservation still held is an error; the record is discarded (see
//! [`crate::held`]).
//!
//! [`Memory::install_ringbuf_object`]: crate::Memory::install_ringbuf_object

use bpfvm_maps::flags::BPF_ANY;

use crate::context::HelperContext;
use crate::error::HelperError;
use crate::held::Reserved;
use crate::id::HelperId;
use crate::registry::{HelperFn, Registry};

/// `BPF_RB_NO_WAKEUP`.
pub const RB_NO_WAKEUP: u64 = 1;
/// `BPF_RB_FORCE_WAKEUP`.
pub const RB_FORCE_WAKEUP: u64 = 2;
/// `EINVAL`, negated.
const EINVAL: u64 = (-22i64) as u64;
/// `EAGAIN`, negated.
const EAGAIN: u64 = (-11i64) as u64;

/// Registers helpers 130 to 134.
pub fn register(r: &mut Registry) {
    let all: [(HelperId, &'static str, HelperFn); 5] = [
        (
            HelperId::RINGBUF_OUTPUT,
            "bpf_ringbuf_output",
            ringbuf_output,
        ),
        (
            HelperId::RINGBUF_RESERVE,
            "bpf_ringbuf_reserve",
            ringbuf_reserve,
        ),
        (
            HelperId::RINGBUF_SUBMIT,
            "bpf_ringbuf_submit",
            ringbuf_submit,
        ),
        (
            HelperId::RINGBUF_DISCARD,
            "bpf_ringbuf_discard",
            ringbuf_discard,
        ),
        (HelperId::RINGBUF_QUERY, "bpf_ringbuf_query", ringbuf_query),
    ];
    for (id, name, f) in all {
        r.register_builtin(id, name, f, None)
            .expect("built-in ids are small");
    }
}

fn fail(helper: &str, message: String) -> Box<HelperError> {
    Box::new(HelperError::Failed {
        helper: helper.to_string(),
        message,
    })
}

/// The ring buffer a map argument names, or an error (the verifier accepts only RINGBUF
/// maps for these helpers).
pub(crate) fn ring(
    ctx: &HelperContext,
    helper: &str,
    handle: u64,
) -> Result<std::sync::Arc<dyn crate::ProgramMap>, Box<HelperError>> {
    let (_, map) = ctx.map_arg(helper, handle)?;
    if map.as_map().is_some_and(|m| m.ringbuf_data().is_some()) {
        Ok(map)
    } else {
        Err(fail(
            helper,
            format!("map {:?} is not a ring buffer", map.name()),
        ))
    }
}

/// `bpf_ringbuf_output(map, data, size, flags)`: copies `size` bytes into a new record and
/// submits it. 0, `-EINVAL` for flags other than the wakeup flags, `-EAGAIN` when the
/// record does not fit.
pub fn ringbuf_output(ctx: &mut HelperContext, a: &[u64; 5]) -> Result<u64, Box<HelperError>> {
    const NAME: &str = "bpf_ringbuf_output";
    let map = ring(ctx, NAME, a[0])?;
    if a[3] & !(RB_NO_WAKEUP | RB_FORCE_WAKEUP) != 0 {
        return Ok(EINVAL);
    }
    let size = a[2];
    let m = map.as_map().expect("checked by ring()");
    let Some(record) = m.ringbuf_reserve(size) else {
        return Ok(EAGAIN);
    };
    // A record fits the ring (at most 1 GiB), so `size` fits in memory.
    let mut data = vec![0u8; record.size as usize];
    if let Err(e) = ctx.read_arg(NAME, a[1], &mut data) {
        m.ringbuf_commit(&record, true);
        return Err(Box::new(e));
    }
    m.ringbuf_write(&record, 0, &data);
    m.ringbuf_commit(&record, false);
    Ok(0)
}

/// `bpf_ringbuf_reserve(map, size, flags)`: the address of `size` bytes the program may
/// write, or NULL (flags not 0, or the record does not fit).
pub fn ringbuf_reserve(ctx: &mut HelperContext, a: &[u64; 5]) -> Result<u64, Box<HelperError>> {
    const NAME: &str = "bpf_ringbuf_reserve";
    let map = ring(ctx, NAME, a[0])?;
    if a[2] != BPF_ANY {
        return Ok(0);
    }
    let m = map.as_map().expect("checked by ring()");
    let Some(record) = m.ringbuf_reserve(a[1]) else {
        return Ok(0);
    };
    let Some(addr) = ctx
        .memory
        .install_ringbuf_object(&map, record.offset, record.size as usize)
    else {
        m.ringbuf_commit(&record, true);
        return Err(fail(
            NAME,
            format!(
                "more than {} ring buffer reservations held at once",
                crate::memory::DYNAMIC_REGIONS
            ),
        ));
    };
    ctx.held.reservations.push(Reserved { map, record, addr });
    Ok(addr)
}

/// Submit or discard the reservation at `addr`.
pub(crate) fn commit(
    ctx: &mut HelperContext,
    name: &str,
    addr: u64,
    discard: bool,
) -> Result<u64, Box<HelperError>> {
    let Some(i) = ctx.held.reservations.iter().position(|r| r.addr == addr) else {
        return Err(fail(
            name,
            format!(
                "{addr:#x} is not a ring buffer reservation this run holds (the verifier accepts only the pointer bpf_ringbuf_reserve returned, once)"
            ),
        ));
    };
    let r = ctx.held.reservations.swap_remove(i);
    ctx.memory.remove_object(r.addr);
    r.commit(discard);
    Ok(0)
}

/// `bpf_ringbuf_submit(data, flags)`: the record becomes visible to the consumer.
pub fn ringbuf_submit(ctx: &mut HelperContext, a: &[u64; 5]) -> Result<u64, Box<HelperError>> {
    commit(ctx, "bpf_ringbuf_submit", a[0], false)
}

/// `bpf_ringbuf_discard(data, flags)`: the record is skipped by the consumer.
pub fn ringbuf_discard(ctx: &mut HelperContext, a: &[u64; 5]) -> Result<u64, Box<HelperError>> {
    commit(ctx, "bpf_ringbuf_discard", a[0], true)
}

/// `bpf_ringbuf_query(map, flags)`: available data, ring size, consumer or producer
/// position (`BPF_RB_*`), 0 for other flags.
pub fn ringbuf_query(ctx: &mut HelperContext, a: &[u64; 5]) -> Result<u64, Box<HelperError>> {
    let map = ring(ctx, "bpf_ringbuf_query", a[0])?;
    Ok(map.as_map().map_or(0, |m| m.ringbuf_query(a[1])))
}
