//! `bpf_map_push_elem` (87), `bpf_map_pop_elem` (88) and `bpf_map_peek_elem` (89) on QUEUE
//! and STACK maps (`bpfvm_maps::queue`): values are copied between the program's memory and
//! the map, never handed out by pointer.

use crate::context::HelperContext;
use crate::error::HelperError;
use crate::id::HelperId;
use crate::registry::Registry;

/// Registers helpers 87, 88 and 89.
pub fn register(r: &mut Registry) {
    let all: [(HelperId, &'static str, crate::registry::HelperFn); 3] = [
        (HelperId::MAP_PUSH_ELEM, "bpf_map_push_elem", map_push_elem),
        (HelperId::MAP_POP_ELEM, "bpf_map_pop_elem", map_pop_elem),
        (HelperId::MAP_PEEK_ELEM, "bpf_map_peek_elem", map_peek_elem),
    ];
    for (id, name, f) in all {
        r.register_builtin(id, name, f, None)
            .expect("built-in ids are small");
    }
}

fn neg(errno: i32) -> u64 {
    (-i64::from(errno)) as u64
}

/// `bpf_map_push_elem(map, value, flags)`: 0, or `-EINVAL` (bad flags, not a queue or
/// stack), `-E2BIG` (full without `BPF_EXIST`).
pub fn map_push_elem(ctx: &mut HelperContext, a: &[u64; 5]) -> Result<u64, Box<HelperError>> {
    const NAME: &str = "bpf_map_push_elem";
    let (_, map) = ctx.map_arg(NAME, a[0])?;
    let mut value = vec![0u8; map.value_size()];
    ctx.read_arg(NAME, a[1], &mut value)?;
    let Some(m) = map.as_map() else {
        return Ok(neg(bpfvm_maps::errno::EINVAL));
    };
    Ok(
        match m.prog_push(bpfvm_maps::CpuId(ctx.cpu()), &value, a[2]) {
            Ok(()) => 0,
            Err(e) => neg(e.errno()),
        },
    )
}

/// Pop (`delete`) or peek: the value is written to the program's buffer, zeroed when the
/// map is empty (`-ENOENT`), as the kernel does.
fn take(
    ctx: &mut HelperContext,
    name: &str,
    a: &[u64; 5],
    delete: bool,
) -> Result<u64, Box<HelperError>> {
    let (_, map) = ctx.map_arg(name, a[0])?;
    ctx.charge_bytes(map.value_size());
    let mut value = vec![0u8; map.value_size()];
    let errno = match map.as_map() {
        Some(m) => m
            .prog_pop(bpfvm_maps::CpuId(ctx.cpu()), &mut value, delete)
            .err()
            .map(|e| e.errno()),
        None => Some(bpfvm_maps::errno::EINVAL),
    };
    ctx.memory
        .write_bytes(a[1], &value)
        .map_err(|fault| HelperError::Memory {
            helper: name.to_string(),
            fault: Box::new(fault),
        })?;
    Ok(errno.map_or(0, neg))
}

/// `bpf_map_pop_elem(map, value)`: the oldest (queue) or newest (stack) value, removed.
pub fn map_pop_elem(ctx: &mut HelperContext, a: &[u64; 5]) -> Result<u64, Box<HelperError>> {
    take(ctx, "bpf_map_pop_elem", a, true)
}

/// `bpf_map_peek_elem(map, value)`: the value pop would return, left in the map.
pub fn map_peek_elem(ctx: &mut HelperContext, a: &[u64; 5]) -> Result<u64, Box<HelperError>> {
    take(ctx, "bpf_map_peek_elem", a, false)
}
