//! Context access rules of the tracing program types (the kernel's `*_is_valid_access`):
//! `raw_tracepoint` (`raw_tp_prog_is_valid_access`), `tracing` (`tracing_prog_is_valid_access`
//! with `btf_ctx_access`), `perf_event` (`pe_prog_is_valid_access`) and `syscall`
//! (`syscall_prog_is_valid_access`).

use crate::ctx::{Access, Field};
use crate::input::TracingCtx;
use crate::reg::RegType;

/// `MAX_BPF_FUNC_ARGS`: the most arguments a traced function (or raw tracepoint) has.
pub const MAX_BPF_FUNC_ARGS: i64 = 12;
/// `sizeof(struct bpf_perf_event_data)` on x86_64: `regs` (168), `sample_period`, `addr`.
pub const PERF_EVENT_DATA_SIZE: i64 = 184;
const PERF_SAMPLE_PERIOD: i64 = 168;
const PERF_ADDR: i64 = 176;

const SCALAR: Field = Field {
    ty: RegType::Scalar,
    flags: 0,
};

/// `bpf_tracing_ctx_access`: a read inside `u64 args[MAX_BPF_FUNC_ARGS]`, aligned to its
/// size.
fn tracing_ctx_access(off: i64, size: i64, t: Access) -> bool {
    (0..8 * MAX_BPF_FUNC_ARGS).contains(&off) && t == Access::Read && off % size == 0
}

/// `raw_tp_prog_is_valid_access`.
pub fn raw_tp(off: i64, size: i64, t: Access) -> Option<Field> {
    tracing_ctx_access(off, size, t).then_some(SCALAR)
}

/// `tracing_prog_is_valid_access` and `btf_ctx_access`: slot `off / 8` must exist in the
/// attach target's prototype; a pointer to a struct loads as `PTR_TO_BTF_ID`.
pub fn tracing(c: TracingCtx, off: i64, size: i64, t: Access) -> Option<Field> {
    if !tracing_ctx_access(off, size, t) || off % 8 != 0 {
        return None;
    }
    let slot = off / 8;
    if slot >= i64::from(c.nr_slots) {
        return None;
    }
    if c.btf_ptr_slots & (1 << slot) != 0 {
        return Some(Field {
            ty: RegType::BtfId,
            flags: 0,
        });
    }
    Some(SCALAR)
}

/// `pe_prog_is_valid_access` (64-bit): `regs` by whole `long`s, `sample_period` and
/// `addr` also by narrower reads from their start.
pub fn perf_event(off: i64, size: i64, t: Access) -> Option<Field> {
    if !(0..PERF_EVENT_DATA_SIZE).contains(&off) || t != Access::Read || off % size != 0 {
        return None;
    }
    let narrow_ok = size <= 8 && size.count_ones() == 1;
    let ok = if (PERF_SAMPLE_PERIOD..PERF_SAMPLE_PERIOD + 8).contains(&off)
        || (PERF_ADDR..PERF_ADDR + 8).contains(&off)
    {
        narrow_ok
    } else {
        size == 8
    };
    ok.then_some(SCALAR)
}

/// `syscall_prog_is_valid_access`: any aligned read or write below `U16_MAX` (the
/// test run's `ctx_size_in` bounds it at run time).
pub fn syscall(off: i64, size: i64) -> Option<Field> {
    ((0..i64::from(u16::MAX)).contains(&off) && off % size == 0).then_some(SCALAR)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn raw_tp_reads_aligned_args_only() {
        assert!(raw_tp(0, 8, Access::Read).is_some());
        assert!(raw_tp(88, 8, Access::Read).is_some());
        assert!(raw_tp(96, 8, Access::Read).is_none(), "12 args at most");
        assert!(raw_tp(4, 4, Access::Read).is_some(), "narrow aligned read");
        assert!(raw_tp(4, 8, Access::Read).is_none());
        assert!(raw_tp(0, 8, Access::Write).is_none());
    }

    #[test]
    fn tracing_slots_follow_the_prototype() {
        let c = TracingCtx {
            nr_slots: 2,
            btf_ptr_slots: 0b01,
            known: true,
            ..Default::default()
        };
        assert_eq!(
            tracing(c, 0, 8, Access::Read).map(|f| f.ty),
            Some(RegType::BtfId)
        );
        assert_eq!(
            tracing(c, 8, 8, Access::Read).map(|f| f.ty),
            Some(RegType::Scalar)
        );
        assert!(tracing(c, 16, 8, Access::Read).is_none(), "no third slot");
        assert!(
            tracing(c, 4, 4, Access::Read).is_none(),
            "not a multiple of 8"
        );
        assert!(tracing(c, 0, 8, Access::Write).is_none());
    }

    #[test]
    fn perf_event_fields() {
        assert!(perf_event(0, 8, Access::Read).is_some());
        assert!(perf_event(0, 4, Access::Read).is_none(), "regs by longs");
        assert!(
            perf_event(168, 4, Access::Read).is_some(),
            "narrow sample_period"
        );
        assert!(perf_event(176, 1, Access::Read).is_some(), "narrow addr");
        assert!(perf_event(184, 8, Access::Read).is_none());
        assert!(perf_event(0, 8, Access::Write).is_none());
    }

    #[test]
    fn syscall_reads_and_writes() {
        assert!(syscall(0, 8).is_some() && syscall(4, 4).is_some());
        assert!(syscall(2, 4).is_none());
        assert!(syscall(65535, 1).is_none());
    }

    #[test]
    fn helpers_of_the_tracing_types() {
        use crate::helpers::allowed;
        use crate::input::{Privilege, ProgType};
        let root = Privilege::Root;
        let tracing = ProgType::Tracing(TracingCtx::default());
        for t in [ProgType::RawTracepoint, tracing, ProgType::PerfEvent] {
            for id in [45, 158, 173, 14, 25, 27, 67] {
                assert!(allowed(id, t, root), "{id} in {t:?}");
            }
        }
        assert!(
            allowed(119, ProgType::PerfEvent, root),
            "read_branch_records"
        );
        assert!(!allowed(119, ProgType::RawTracepoint, root));
        assert!(allowed(166, ProgType::Syscall, root), "sys_bpf");
        assert!(allowed(120, ProgType::Syscall, root) && !allowed(45, ProgType::Syscall, root));
    }
}
