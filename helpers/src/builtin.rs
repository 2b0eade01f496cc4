//! The built-in helpers.
//!
//! | id | helper | behaviour in bpfvm |
//! |---|---|---|
//! | 1, 2, 3 | `map_lookup_elem`, `map_update_elem`, `map_delete_elem` | kernel semantics, through [`ProgramMap`] |
//! | 5, 125 | `ktime_get_ns`, `ktime_get_boot_ns` | a virtual clock per run, advancing on every read |
//! | 6 | `trace_printk` | formatted into the run's captured trace output |
//! | 7 | `get_prandom_u32` | a seeded PRNG per run |
//! | 8 | `get_smp_processor_id` | the simulated CPU; marked [`Inline::SmpProcessorId`], so the `interpreter` engine replaces the call by a load of the CPU number, as the kernel does on x86_64 |
//! | 46 | `get_socket_cookie` | tracing programs' form (a `struct sock *`): a cookie per socket address, given in order of first use (see [`crate::sock_cookie`]) |
//! | 81 | `get_local_storage` | the cgroup storage attached for the run's cgroup |
//! | 153, 154 | `per_cpu_ptr`, `this_cpu_ptr` | always NULL: these take per-CPU *kernel symbols* (ksyms), and bpfvm has none |
//! | 195 | `map_lookup_percpu_elem` | another CPU's copy, NULL for a CPU ≥ N |
//! | 164, 181 | `for_each_map_elem`, `loop` | callbacks into the program, run by the `interpreter` engine (see [`crate::callback`]) |

use crate::context::HelperContext;
use crate::error::HelperError;
use crate::id::HelperId;
use crate::maps::ProgramMap;
use crate::memory::map_handle_index;
use crate::registry::{HelperFn, Inline, Registry};

/// The signature of the built-in helpers: [`HelperFn`], arguments by reference and the
/// error boxed, so that the interpreter passes its register file and gets the result back
/// in registers.
pub type BuiltinFn = HelperFn;

/// Registers every built-in helper in `r`, as plain functions; `bpf_get_smp_processor_id`
/// is marked [`Inline::SmpProcessorId`]. The helpers of the other modules register
/// themselves at the end (each module's `register`).
pub fn register_all(r: &mut Registry) {
    let all: [(HelperId, &'static str, BuiltinFn); 12] = [
        (
            HelperId::MAP_LOOKUP_ELEM,
            "bpf_map_lookup_elem",
            map_lookup_elem,
        ),
        (
            HelperId::MAP_UPDATE_ELEM,
            "bpf_map_update_elem",
            map_update_elem,
        ),
        (
            HelperId::MAP_DELETE_ELEM,
            "bpf_map_delete_elem",
            map_delete_elem,
        ),
        (HelperId::KTIME_GET_NS, "bpf_ktime_get_ns", ktime_get_ns),
        (HelperId::TRACE_PRINTK, "bpf_trace_printk", trace_printk),
        (
            HelperId::GET_PRANDOM_U32,
            "bpf_get_prandom_u32",
            get_prandom_u32,
        ),
        (
            HelperId::GET_SMP_PROCESSOR_ID,
            "bpf_get_smp_processor_id",
            get_smp_processor_id,
        ),
        (
            HelperId::GET_LOCAL_STORAGE,
            "bpf_get_local_storage",
            get_local_storage,
        ),
        (
            HelperId::KTIME_GET_BOOT_NS,
            "bpf_ktime_get_boot_ns",
            ktime_get_ns,
        ),
        (HelperId::PER_CPU_PTR, "bpf_per_cpu_ptr", null_ksym_ptr),
        (HelperId::THIS_CPU_PTR, "bpf_this_cpu_ptr", null_ksym_ptr),
        (
            HelperId::MAP_LOOKUP_PERCPU_ELEM,
            "bpf_map_lookup_percpu_elem",
            map_lookup_percpu_elem,
        ),
    ];
    for (id, name, f) in all {
        let inline = (id == HelperId::GET_SMP_PROCESSOR_ID).then_some(Inline::SmpProcessorId);
        r.register_builtin(id, name, f, inline)
            .expect("built-in ids are small");
    }
    crate::callback::register(r);
    crate::events::register(r);
    crate::lock::register(r);
    crate::probe::register(r);
    crate::queue::register(r);
    crate::ringbuf::register(r);
    crate::dynptr::register(r);
    crate::task::register(r);
    crate::trace_task::register(r);
    crate::tracing::register(r);
    crate::btf_show::register(r);
    crate::net::register(r);
    crate::stack::register(r);
    crate::cgroup::register(r);
    crate::sock_cookie::register(r);
    crate::kfunc::register_builtins(r);
}

/// The map a handle argument (`(3 << 52) | index`) names, and its index; borrowed from the
/// context, so a call costs no reference-count traffic (unlike `HelperContext::map_arg`).
fn map_ref<'c>(
    ctx: &'c HelperContext,
    helper: &str,
    handle: u64,
) -> Result<(u32, &'c dyn ProgramMap), HelperError> {
    if let Some(idx) = map_handle_index(handle) {
        if let Some(m) = ctx.maps().get(idx as usize) {
            return Ok((idx, m.as_ref()));
        }
    }
    Err(HelperError::BadMap {
        helper: helper.to_string(),
        handle,
    })
}

/// Key bytes copied out of guest memory; keys up to 64 bytes need no allocation.
struct KeyBuf {
    small: [u8; 64],
    large: Vec<u8>,
    len: usize,
}

impl KeyBuf {
    fn read(
        ctx: &HelperContext,
        helper: &str,
        addr: u64,
        len: usize,
    ) -> Result<KeyBuf, HelperError> {
        let mut k = KeyBuf {
            small: [0; 64],
            large: Vec::new(),
            len,
        };
        if len > k.small.len() {
            k.large = vec![0; len];
            ctx.read_arg(helper, addr, &mut k.large)?;
        } else {
            ctx.read_arg(helper, addr, &mut k.small[..len])?;
        }
        Ok(k)
    }

    fn bytes(&self) -> &[u8] {
        if self.len > self.small.len() {
            &self.large
        } else {
            &self.small[..self.len]
        }
    }
}

/// Calls `f` with the `len` key bytes at guest `addr`. Keys of 1, 2, 4 or 8 bytes are read
/// with one checked load into a local (the same region check as `read_arg`, the same bytes:
/// loads are little-endian); other sizes, and faults (reported exactly as `read_arg` does),
/// go through [`KeyBuf`].
pub(crate) fn with_key<R>(
    ctx: &HelperContext,
    helper: &str,
    addr: u64,
    len: usize,
    f: impl FnOnce(&[u8]) -> R,
) -> Result<R, HelperError> {
    if matches!(len, 1 | 2 | 4 | 8) {
        if let Ok(v) = ctx.memory.load(addr, len as u64) {
            return Ok(f(&v.to_le_bytes()[..len]));
        }
    }
    let key = KeyBuf::read(ctx, helper, addr, len)?;
    Ok(f(key.bytes()))
}

/// `bpf_map_lookup_elem(map, key)`: pointer to the value or NULL.
pub fn map_lookup_elem(ctx: &mut HelperContext, a: &[u64; 5]) -> Result<u64, Box<HelperError>> {
    const NAME: &str = "bpf_map_lookup_elem";
    let ctx: &HelperContext = ctx;
    let (idx, map) = map_ref(ctx, NAME, a[0])?;
    if map.is_map_of_maps() {
        return crate::inner_maps::lookup_inner(ctx, NAME, map, a[1]);
    }
    let found = with_key(ctx, NAME, a[1], map.key_size(), |key| {
        map.prog_lookup_slot(ctx.cpu(), key)
    })?;
    Ok(found.map_or(0, |p| ctx.value_addr(idx, p)))
}

/// `bpf_map_update_elem(map, key, value, flags)`: 0 or a negative errno.
pub fn map_update_elem(ctx: &mut HelperContext, a: &[u64; 5]) -> Result<u64, Box<HelperError>> {
    const NAME: &str = "bpf_map_update_elem";
    let ctx: &HelperContext = ctx;
    let (_, map) = map_ref(ctx, NAME, a[0])?;
    let key = KeyBuf::read(ctx, NAME, a[1], map.key_size())?;
    let value = KeyBuf::read(ctx, NAME, a[2], map.value_size())?;
    // Reading key and value was charged; the copy into the map costs as much again.
    ctx.charge_bytes(map.key_size() + map.value_size());
    Ok(
        match map.prog_update(ctx.cpu(), key.bytes(), value.bytes(), a[3]) {
            Ok(()) => 0,
            Err(errno) => (-(errno as i64)) as u64,
        },
    )
}

/// `bpf_map_delete_elem(map, key)`: 0 or a negative errno.
pub fn map_delete_elem(ctx: &mut HelperContext, a: &[u64; 5]) -> Result<u64, Box<HelperError>> {
    const NAME: &str = "bpf_map_delete_elem";
    let ctx: &HelperContext = ctx;
    let (_, map) = map_ref(ctx, NAME, a[0])?;
    let done = with_key(ctx, NAME, a[1], map.key_size(), |key| {
        map.prog_delete(ctx.cpu(), key)
    })?;
    Ok(match done {
        Ok(()) => 0,
        Err(errno) => (-(errno as i64)) as u64,
    })
}

/// `bpf_map_lookup_percpu_elem(map, key, cpu)`: pointer to `cpu`'s copy or NULL.
pub fn map_lookup_percpu_elem(
    ctx: &mut HelperContext,
    a: &[u64; 5],
) -> Result<u64, Box<HelperError>> {
    const NAME: &str = "bpf_map_lookup_percpu_elem";
    let ctx: &HelperContext = ctx;
    let (idx, map) = map_ref(ctx, NAME, a[0])?;
    let target = a[2];
    // The key is read (and a bad key pointer reported) before the CPU is checked.
    let found = with_key(ctx, NAME, a[1], map.key_size(), |key| {
        if target >= ctx.ncpus() as u64 {
            return None;
        }
        map.prog_lookup_percpu_slot(ctx.cpu(), key, target as u32)
    })?;
    Ok(found.map_or(0, |p| ctx.value_addr(idx, p)))
}

/// `bpf_get_local_storage(map, flags)`: the cgroup storage of the cgroup the run is for
/// (set per run, e.g. `Input::cgroup` in `bpfvm`). The kernel guarantees a storage exists, so
/// programs do not check for NULL: a run without one is an error rather than a NULL.
pub fn get_local_storage(ctx: &mut HelperContext, a: &[u64; 5]) -> Result<u64, Box<HelperError>> {
    const NAME: &str = "bpf_get_local_storage";
    let ctx: &HelperContext = ctx;
    let (idx, map) = map_ref(ctx, NAME, a[0])?;
    let fail = |message: String| HelperError::Failed {
        helper: NAME.to_string(),
        message,
    };
    if a[1] != 0 {
        return Err(fail(format!("flags {:#x} must be 0", a[1])).into());
    }
    let (cgroup_id, attach_type) = ctx
        .cgroup()
        .ok_or_else(|| fail("the run has no cgroup (set the input's cgroup)".to_string()))?;
    let p = map
        .prog_local_storage_slot(ctx.cpu(), cgroup_id, attach_type)
        .ok_or_else(|| {
            fail(format!(
                "no storage attached for cgroup {cgroup_id} attach type {attach_type}"
            ))
        })?;
    Ok(ctx.value_addr(idx, p))
}

/// `bpf_ktime_get_ns()` and `bpf_ktime_get_boot_ns()`: the run's virtual clock.
pub fn ktime_get_ns(ctx: &mut HelperContext, _: &[u64; 5]) -> Result<u64, Box<HelperError>> {
    Ok(ctx.now_ns())
}

/// `bpf_get_prandom_u32()`: the next value of the run's seeded generator.
pub fn get_prandom_u32(ctx: &mut HelperContext, _: &[u64; 5]) -> Result<u64, Box<HelperError>> {
    Ok(ctx.next_random() as u32 as u64)
}

/// `bpf_get_smp_processor_id()`: the simulated CPU.
pub fn get_smp_processor_id(
    ctx: &mut HelperContext,
    _: &[u64; 5],
) -> Result<u64, Box<HelperError>> {
    Ok(ctx.cpu() as u64)
}

/// `bpf_per_cpu_ptr` / `bpf_this_cpu_ptr`: NULL, since bpfvm has no per-CPU ksyms.
pub fn null_ksym_ptr(_: &mut HelperContext, _: &[u64; 5]) -> Result<u64, Box<HelperError>> {
    Ok(0)
}

/// `bpf_trace_printk(fmt, fmt_size, a1, a2, a3)`: formats into the run's trace output and
/// returns the number of bytes written, or `-EINVAL` for a bad format (as the kernel does).
///
/// Supported conversions: `%d %i %u %x %X %ld %li %lu %lx %lld %lli %llu %llx %s %c %%`, and `%p`
/// with the kernel's modifiers (`%px %pK %ps %pS %pB %pks %pus %pI4 %pi4 %pI6 %pi6`; see
/// [`crate::printk`]).
pub fn trace_printk(ctx: &mut HelperContext, a: &[u64; 5]) -> Result<u64, Box<HelperError>> {
    printk(ctx, "bpf_trace_printk", a[0], a[1], &[a[2], a[3], a[4]])
}

/// The formatter of `bpf_trace_printk` and `bpf_trace_vprintk` (177): the format of
/// `fmt_size` bytes at `fmt_addr` with `args`, into the trace output.
pub(crate) fn printk(
    ctx: &mut HelperContext,
    name: &str,
    fmt_addr: u64,
    fmt_size: u64,
    args: &[u64],
) -> Result<u64, Box<HelperError>> {
    const EINVAL: u64 = (-22i64) as u64;
    let size = fmt_size as usize;
    if size == 0 || size > 1024 {
        return Ok(EINVAL);
    }
    let mut fmt = vec![0u8; size];
    ctx.read_arg(name, fmt_addr, &mut fmt)?;
    let mut strings = 0usize;
    let reader: &HelperContext = ctx;
    let formatted = crate::printk::format(
        &fmt,
        args,
        |addr| {
            strings += 1;
            crate::probe::printk_string(reader, addr, crate::printk::MAX_STRING)
        },
        |addr, len| crate::probe::printk_bytes(reader, addr, len),
    );
    ctx.charge_bytes(strings * crate::printk::MAX_STRING);
    let Ok(out) = formatted else {
        return Ok(EINVAL);
    };
    ctx.charge_bytes(out.text.len());
    ctx.trace_write(&out.text);
    Ok(out.len as u64)
}

#[cfg(test)]
#[allow(unsafe_code)] // builds a test region over a local buffer
mod tests {
    use super::*;
    use crate::memory::{guest_addr, Region, REGION_STACK};

    const STR: u64 = 0xdead_0000;

    fn run_printk(fmt: &[u8], args: [u64; 3]) -> (u64, String) {
        let mut buf = vec![0u64; 32];
        let bytes: Vec<u8> = fmt.iter().copied().chain([0u8]).collect();
        let mut ctx = HelperContext::new(3, 4);
        // SAFETY: `buf` outlives `ctx`.
        let r = unsafe { Region::new(buf.as_mut_ptr().cast(), 0, 256, true) };
        // SAFETY: `buf` outlives `ctx`.
        unsafe { ctx.memory.set_region(REGION_STACK, r) };
        let a = guest_addr(REGION_STACK, 0);
        ctx.memory.write_bytes(a, &bytes).unwrap();
        ctx.memory.write_bytes(a + 128, b"hi\0").unwrap();
        let args = args.map(|v| if v == STR { a + 128 } else { v });
        let n = trace_printk(
            &mut ctx,
            &[a, bytes.len() as u64, args[0], args[1], args[2]],
        )
        .unwrap();
        (n, String::from_utf8(ctx.take_trace()).unwrap())
    }

    #[test]
    fn the_trace_is_capped_and_helper_work_is_counted() {
        use crate::context::{HELPER_BYTES_PER_INSN, TRACE_CAPACITY};
        let mut ctx = HelperContext::new(0, 1);
        let line = [b'x'; 1000];
        for _ in 0..100 {
            ctx.trace_write(&line);
        }
        let kept = TRACE_CAPACITY / 1000 * 1000;
        assert_eq!(ctx.trace().len(), kept, "whole writes up to 64 KiB");
        assert_eq!(ctx.trace_dropped(), (100_000 - kept) as u64);
        ctx.clear_trace();
        assert_eq!((ctx.trace().len(), ctx.trace_dropped()), (0, 0));
        // One instruction per 64 bytes; small copies are free.
        ctx.charge_bytes(HELPER_BYTES_PER_INSN - 1);
        assert_eq!(ctx.pending_work(), 0);
        ctx.charge_bytes(10 * HELPER_BYTES_PER_INSN);
        ctx.charge_work(5);
        assert_eq!(ctx.take_work(), 15);
        assert_eq!(ctx.pending_work(), 0);
        // A new run starts with no work.
        ctx.charge_work(7);
        ctx.begin_run(0, 0);
        assert_eq!(ctx.pending_work(), 0);
    }

    #[test]
    fn trace_printk_formats_like_the_kernel() {
        let (n, s) = run_printk(b"v=%d u=%u x=%x", [(-5i64) as u64, 7, 255]);
        assert_eq!(s, "v=-5 u=7 x=ff");
        assert_eq!(n, s.len() as u64);
        let (_, s) = run_printk(b"%lld %llu %llx", [(-1i64) as u64, u64::MAX - 1, 0xabc]);
        assert_eq!(s, format!("-1 {} abc", u64::MAX - 1));
        let (_, s) = run_printk(b"%s|%c|%px|%%", [STR, b'Z' as u64, 0x10]);
        assert_eq!(s, "hi|Z|0000000000000010|%");
        let (n, _) = run_printk(b"%d %d %d %d", [1, 2, 3]);
        assert_eq!(n, (-22i64) as u64);
        let (n, _) = run_printk(b"%q", [1, 2, 3]);
        assert_eq!(n, (-22i64) as u64);
    }

    #[test]
    fn clock_and_prng_are_deterministic_per_seed() {
        let mut a = HelperContext::new(0, 1);
        let mut b = HelperContext::new(0, 1);
        a.begin_run(100, 42);
        b.begin_run(100, 42);
        assert_eq!(ktime_get_ns(&mut a, &[0; 5]), Ok(100));
        assert_eq!(ktime_get_ns(&mut a, &[0; 5]), Ok(1100));
        let x: Vec<u64> = (0..4)
            .map(|_| get_prandom_u32(&mut a, &[0; 5]).unwrap())
            .collect();
        let y: Vec<u64> = (0..4)
            .map(|_| get_prandom_u32(&mut b, &[0; 5]).unwrap())
            .collect();
        assert_eq!(x, y);
        assert!(x.iter().all(|v| *v <= u32::MAX as u64));
        assert_eq!(
            get_smp_processor_id(&mut HelperContext::new(3, 4), &[0; 5]),
            Ok(3)
        );
    }

    #[test]
    fn keys_read_by_one_load_match_the_byte_copy() {
        let mut buf = vec![0u64; 4];
        let mut ctx = HelperContext::new(0, 1);
        // SAFETY: `buf` outlives `ctx`.
        let r = unsafe { Region::new(buf.as_mut_ptr().cast(), 0, 32, true) };
        // SAFETY: `buf` outlives `ctx`.
        unsafe { ctx.memory.set_region(REGION_STACK, r) };
        let base = guest_addr(REGION_STACK, 0);
        let bytes: Vec<u8> = (1..=32).collect();
        ctx.memory.write_bytes(base, &bytes).unwrap();
        for len in [1usize, 2, 3, 4, 8, 12] {
            for off in [0u64, 1, 3, 8, 32 - len as u64] {
                let at = off as usize;
                let k = with_key(&ctx, "t", base + off, len, |k| k.to_vec()).unwrap();
                assert_eq!(k, &bytes[at..at + len], "len {len} off {off}");
                let k = KeyBuf::read(&ctx, "t", base + off, len).unwrap();
                assert_eq!(k.bytes(), &bytes[at..at + len], "len {len} off {off}");
            }
            // Past the end: the same error as the byte copy reports.
            let addr = base + 32 - len as u64 + 1;
            let e = with_key(&ctx, "t", addr, len, |_| ()).unwrap_err();
            let mut out = vec![0; len];
            assert_eq!(e, ctx.read_arg("t", addr, &mut out).unwrap_err());
            assert!(matches!(e, HelperError::Memory { .. }));
        }
    }

    #[test]
    fn bad_map_handles_are_errors() {
        let mut ctx = HelperContext::new(0, 1);
        let e = map_lookup_elem(&mut ctx, &[0x1234, 0, 0, 0, 0]).unwrap_err();
        assert!(matches!(*e, HelperError::BadMap { .. }));
        assert!(e.to_string().contains("bpf_map_lookup_elem"));
    }
}
