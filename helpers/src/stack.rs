//! Call stacks: `bpf_get_stackid` (27) into a STACK_TRACE map and `bpf_get_stack` (67) into
//! program memory.
//!
//! A sandbox has no real call stack to walk, so each simulated CPU has a simulated one, a
//! [`CallStacks`]: the kernel stack of the code the program is attached to and the user
//! stack of the current task, innermost frame first, as `perf_callchain` gives them. The
//! host sets them (`bpfvm::Vm::set_call_stacks`, or [`HelperContext::set_call_stacks`]);
//! both are empty by default, and an empty stack behaves as in the kernel when the
//! callchain has no frames: `bpf_get_stackid` is `-EFAULT`, `bpf_get_stack` writes zeros and
//! returns 0. Stacks are cut to `sysctl_perf_event_max_stack` (127) frames.
//!
//! Flags (the kernel's): the low 8 bits are frames to skip (`BPF_F_SKIP_FIELD_MASK`),
//! `BPF_F_USER_STACK` picks the user stack; `bpf_get_stackid` also takes
//! `BPF_F_FAST_STACK_CMP` and `BPF_F_REUSE_STACKID`, `bpf_get_stack` takes
//! `BPF_F_USER_BUILD_ID` (with `BPF_F_USER_STACK`: 32-byte build-id records, every frame
//! `BPF_STACK_BUILD_ID_IP` since bpfvm has no binaries). Other bits are `-EINVAL`.
//!
//! ```
//! use std::sync::Arc;
//! use bpfvm_helpers::stack::CallStacks;
//! use bpfvm_helpers::{HelperContext, ProgramMap, Registry};
//! use bpfvm_maps::{Map, MapSpec, MapType};
//!
//! let registry = Registry::with_builtins();
//! let stacks = Arc::new(Map::create(MapSpec::new(MapType::StackTrace, 4, 8 * 8, 16), 1)?);
//! let mut ctx = HelperContext::new(0, 1);
//! ctx.set_maps(Arc::new([stacks.clone() as Arc<dyn ProgramMap>]));
//! let map_handle = 3 << 52; // map 0 of the program
//! // No stack yet: -EFAULT (14), as the kernel with an empty callchain.
//! assert_eq!(registry.call(27, &mut ctx, [0, map_handle, 0, 0, 0]).unwrap() as i64, -14);
//! ctx.set_call_stacks(CallStacks { kernel: vec![0xffff_ffff_8100_1000, 0xffff_ffff_8100_2000], user: vec![] });
//! let id = registry.call(27, &mut ctx, [0, map_handle, 0, 0, 0]).unwrap();
//! let mut value = [0u8; 64];
//! stacks.lookup(&(id as u32).to_ne_bytes(), &mut value, 0)?;
//! assert_eq!(u64::from_ne_bytes(value[..8].try_into().unwrap()), 0xffff_ffff_8100_1000);
//! # Ok::<(), bpfvm_maps::MapError>(())
//! ```

use bpfvm_maps::stack_trace::{
    build_id_records, BPF_F_FAST_STACK_CMP, BPF_F_REUSE_STACKID, BPF_F_SKIP_FIELD_MASK,
    BPF_F_USER_BUILD_ID, BPF_F_USER_STACK, BUILD_ID_RECORD, PERF_MAX_STACK,
};
use bpfvm_maps::MapError;

use crate::context::HelperContext;
use crate::error::HelperError;
use crate::id::HelperId;
use crate::registry::{HelperFn, Registry};

const EINVAL: i32 = 22;
const EFAULT: i32 = 14;

/// A simulated CPU's call stacks, innermost frame first.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct CallStacks {
    /// The kernel stack at the attach point (what `bpf_get_stackid(ctx, map, 0)` sees).
    pub kernel: Vec<u64>,
    /// The current task's user stack (`BPF_F_USER_STACK`).
    pub user: Vec<u64>,
}

impl HelperContext {
    /// Sets the CPU's simulated call stacks (see [`crate::stack`]).
    pub fn set_call_stacks(&mut self, stacks: CallStacks) {
        self.stacks = stacks;
    }

    /// The CPU's simulated call stacks.
    pub fn call_stacks(&self) -> &CallStacks {
        &self.stacks
    }

    /// `get_perf_callchain(.., max_depth)`: the kernel or user stack, at most `max_depth`
    /// frames (and never more than 127).
    fn callchain(&self, user: bool, max_depth: u64) -> &[u64] {
        let s = if user {
            &self.stacks.user
        } else {
            &self.stacks.kernel
        };
        let n = (s.len() as u64).min(max_depth.min(u64::from(PERF_MAX_STACK)));
        &s[..n as usize]
    }
}

/// Registers helpers 27 and 67.
pub fn register(r: &mut Registry) {
    let all: [(HelperId, &'static str, HelperFn); 2] = [
        (HelperId(27), "bpf_get_stackid", get_stackid),
        (HelperId(67), "bpf_get_stack", get_stack),
    ];
    for (id, name, f) in all {
        r.register_builtin(id, name, f, None)
            .expect("built-in ids are small");
    }
}

fn neg(errno: i32) -> u64 {
    (-i64::from(errno)) as u64
}

/// `bpf_get_stackid(ctx, map, flags)`: the id of the current stack in STACK_TRACE `map`
/// (stored if new), or `-EINVAL` (flags), `-EFAULT` (no more frames than skipped),
/// `-EEXIST` (another stack holds the bucket, without `BPF_F_REUSE_STACKID`), `-ENOMEM`.
pub fn get_stackid(ctx: &mut HelperContext, a: &[u64; 5]) -> Result<u64, Box<HelperError>> {
    const NAME: &str = "bpf_get_stackid";
    let flags = a[2];
    let (_, map) = ctx.map_arg(NAME, a[1])?;
    let allowed =
        BPF_F_SKIP_FIELD_MASK | BPF_F_USER_STACK | BPF_F_FAST_STACK_CMP | BPF_F_REUSE_STACKID;
    if flags & !allowed != 0 {
        return Ok(neg(EINVAL));
    }
    let Some(m) = map.as_map() else {
        return Ok(neg(EINVAL));
    };
    let Ok(depth) = m.stack_trace_depth() else {
        return Ok(neg(EINVAL));
    };
    let skip = flags & BPF_F_SKIP_FIELD_MASK;
    let trace = ctx.callchain(flags & BPF_F_USER_STACK != 0, u64::from(depth) + skip);
    if trace.len() as u64 <= skip {
        return Ok(neg(EFAULT));
    }
    let ips = trace[skip as usize..].to_vec();
    ctx.charge_bytes(ips.len() * 8);
    Ok(match m.stack_trace_insert(&ips, flags) {
        Ok(id) => u64::from(id),
        Err(e) => neg(errno_of(&e)),
    })
}

fn errno_of(e: &MapError) -> i32 {
    e.errno()
}

/// `bpf_get_stack(ctx, buf, size, flags)`: the current stack into `size` bytes at `buf`
/// (zero-filled past it); returns the bytes written. On `-EINVAL` (flags, a size that is
/// not a multiple of the frame size) or `-EFAULT` (fewer frames than skipped) the buffer is
/// zeroed.
pub fn get_stack(ctx: &mut HelperContext, a: &[u64; 5]) -> Result<u64, Box<HelperError>> {
    const NAME: &str = "bpf_get_stack";
    let (buf, size, flags) = (a[1], a[2], a[3]);
    if size > 1 << 20 {
        return Err(Box::new(HelperError::Failed {
            helper: NAME.to_string(),
            message: format!("buffer size {size} is larger than any memory a program has"),
        }));
    }
    let user = flags & BPF_F_USER_STACK != 0;
    let build_id = flags & BPF_F_USER_BUILD_ID != 0;
    let elem = if build_id { BUILD_ID_RECORD as u64 } else { 8 };
    let mut out = vec![0u8; size as usize];
    let allowed = BPF_F_SKIP_FIELD_MASK | BPF_F_USER_STACK | BPF_F_USER_BUILD_ID;
    let ret = if flags & !allowed != 0 || (!user && build_id) || size % elem != 0 {
        neg(EINVAL)
    } else {
        let skip = flags & BPF_F_SKIP_FIELD_MASK;
        let trace = ctx.callchain(user, size / elem + skip);
        if (trace.len() as u64) < skip {
            neg(EFAULT)
        } else {
            let ips = &trace[skip as usize..];
            let bytes = if build_id {
                build_id_records(ips)
            } else {
                ips.iter().flat_map(|ip| ip.to_ne_bytes()).collect()
            };
            out[..bytes.len()].copy_from_slice(&bytes);
            bytes.len() as u64
        }
    };
    ctx.charge_bytes(out.len());
    ctx.memory
        .write_bytes(buf, &out)
        .map_err(|fault| HelperError::Memory {
            helper: NAME.to_string(),
            fault: Box::new(fault),
        })?;
    Ok(ret)
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::Arc;

    use bpfvm_maps::{Map, MapSpec, MapType};

    use crate::maps::ProgramMap;

    fn setup(vs: u32, max: u32) -> (HelperContext, Arc<Map>) {
        let m = Arc::new(Map::create(MapSpec::new(MapType::StackTrace, 4, vs, max), 1).unwrap());
        let mut ctx = HelperContext::new(0, 1);
        ctx.set_maps(Arc::new([m.clone() as Arc<dyn ProgramMap>]));
        (ctx, m)
    }

    const MAP: u64 = 3 << 52;

    fn stackid(ctx: &mut HelperContext, flags: u64) -> i64 {
        get_stackid(ctx, &[0, MAP, flags, 0, 0]).unwrap() as i64
    }

    #[test]
    fn stackid_flags_skip_and_collisions() {
        let (mut ctx, m) = setup(16, 1);
        assert_eq!(stackid(&mut ctx, 1 << 12), -22);
        assert_eq!(stackid(&mut ctx, 0), -14);
        ctx.set_call_stacks(CallStacks {
            kernel: vec![10, 20, 30],
            user: vec![7],
        });
        // skip 1, depth 2: frames 20, 30.
        let id = stackid(&mut ctx, 1);
        assert_eq!(id, 0);
        let mut v = [0u8; 16];
        m.lookup(&0u32.to_ne_bytes(), &mut v, 0).unwrap();
        assert_eq!(&v[..8], &20u64.to_ne_bytes());
        assert_eq!(&v[8..], &30u64.to_ne_bytes());
        // Skipping every frame: -EFAULT.
        assert_eq!(stackid(&mut ctx, 3), -14);
        // The user stack is another stack in the single bucket: -EEXIST, and with
        // REUSE_STACKID -ENOMEM (the only element is in use).
        assert_eq!(stackid(&mut ctx, BPF_F_USER_STACK), -17);
        assert_eq!(
            stackid(&mut ctx, BPF_F_USER_STACK | BPF_F_REUSE_STACKID),
            -12
        );
        // The same stack again: the same id.
        assert_eq!(stackid(&mut ctx, 1), 0);
    }

    #[test]
    fn get_stack_writes_and_zero_fills() {
        use crate::memory::{guest_addr, REGION_STACK};
        let mut ctx = HelperContext::new(0, 1);
        ctx.memory
            .set_owned_region(REGION_STACK, 0, 64, true)
            .fill(0xAA);
        let buf = guest_addr(REGION_STACK, 0);
        let call = |ctx: &mut HelperContext, size: u64, flags: u64| {
            get_stack(ctx, &[0, buf, size, flags, 0]).unwrap() as i64
        };
        assert_eq!(call(&mut ctx, 32, 0), 0, "no frames: nothing written");
        ctx.set_call_stacks(CallStacks {
            kernel: vec![1, 2, 3],
            user: vec![9],
        });
        assert_eq!(call(&mut ctx, 32, 0), 24);
        let mut b = [0u8; 32];
        ctx.memory.read_bytes(buf, &mut b).unwrap();
        assert_eq!(&b[16..24], &3u64.to_ne_bytes());
        assert_eq!(&b[24..], &[0; 8]);
        assert_eq!(call(&mut ctx, 16, 1), 16, "skip 1, cut to 2 frames");
        assert_eq!(call(&mut ctx, 12, 0), -22);
        assert_eq!(
            call(&mut ctx, 16, 4),
            -14,
            "more skipped than there are frames"
        );
        assert_eq!(call(&mut ctx, 16, 3), 0);
        assert_eq!(call(&mut ctx, 32, BPF_F_USER_BUILD_ID), -22);
        assert_eq!(
            call(&mut ctx, 32, BPF_F_USER_STACK | BPF_F_USER_BUILD_ID),
            32
        );
        ctx.memory.read_bytes(buf, &mut b).unwrap();
        assert_eq!(&b[..4], &2i32.to_ne_bytes());
        assert_eq!(&b[24..], &9u64.to_ne_bytes());
    }
}
