//! Context access rules per program type (the kernel's `*_is_valid_access`): which fields
//! of `struct __sk_buff`, `struct xdp_md`, `struct pt_regs` or a tracepoint record a
//! program may read or write, at which sizes, and what a load of a field gives (a scalar,
//! or a packet pointer for `data`/`data_meta`/`data_end`).

use crate::input::ProgType;
use crate::reg::{RegType, MAYBE_NULL};

/// `sizeof(struct __sk_buff)`.
pub const SK_BUFF_SIZE: i64 = 192;
/// `sizeof(struct xdp_md)`.
pub const XDP_MD_SIZE: i64 = 24;
/// `sizeof(struct pt_regs)` on x86_64.
pub const PT_REGS_SIZE: i64 = 168;
/// `PERF_MAX_TRACE_SIZE`.
pub const PERF_MAX_TRACE_SIZE: i64 = 2048;

/// Read or write.
#[derive(Clone, Copy, PartialEq, Eq, Debug)]
pub enum Access {
    /// A load.
    Read,
    /// A store.
    Write,
}

/// What a valid context load gives.
#[derive(Clone, Copy, PartialEq, Eq, Debug)]
pub struct Field {
    /// The type of the loaded register.
    pub ty: RegType,
    /// Its flags.
    pub flags: u8,
}

const SCALAR: Field = Field {
    ty: RegType::Scalar,
    flags: 0,
};

/// `struct __sk_buff` field offsets.
mod skb {
    pub const MARK: i64 = 8;
    pub const QUEUE_MAPPING: i64 = 12;
    pub const PRIORITY: i64 = 32;
    pub const TC_INDEX: i64 = 44;
    pub const CB: i64 = 48;
    pub const CB_END: i64 = 68;
    pub const TC_CLASSID: i64 = 72;
    pub const DATA: i64 = 76;
    pub const DATA_END: i64 = 80;
    pub const FAMILY: i64 = 88;
    pub const REMOTE_IP4: i64 = 92;
    pub const LOCAL_IP4: i64 = 96;
    pub const REMOTE_IP6: i64 = 100;
    pub const LOCAL_IP6: i64 = 116;
    pub const LOCAL_PORT_END: i64 = 140;
    pub const DATA_META: i64 = 140;
    pub const FLOW_KEYS: i64 = 144;
    pub const TSTAMP: i64 = 152;
    pub const WIRE_LEN: i64 = 160;
    pub const SK: i64 = 168;
    pub const TSTAMP_TYPE: i64 = 180;
    pub const HWTSTAMP: i64 = 184;
}

/// `off` lies in the field starting at `start` of `len` bytes (`bpf_ctx_range`).
fn within(off: i64, start: i64, len: i64) -> bool {
    (start..start + len).contains(&off)
}

/// `bpf_skb_is_valid_access`, the checks common to every `__sk_buff` program.
fn skb_common(off: i64, size: i64, t: Access, ldsx: bool) -> bool {
    use skb::*;
    if !(0..SK_BUFF_SIZE).contains(&off) || off % size != 0 {
        return false;
    }
    if within(off, CB, CB_END - CB) {
        return off + size <= CB_END;
    }
    if within(off, DATA, 4) || within(off, DATA_META, 4) || within(off, DATA_END, 4) {
        return !ldsx && size == 4;
    }
    if within(off, REMOTE_IP6, 16)
        || within(off, LOCAL_IP6, 16)
        || within(off, REMOTE_IP4, 4)
        || within(off, LOCAL_IP4, 4)
    {
        return size == 4;
    }
    if within(off, FLOW_KEYS, 8) {
        return false;
    }
    if within(off, HWTSTAMP, 8) {
        return t == Access::Read && size == 8;
    }
    if within(off, TSTAMP, 8) {
        return size == 8;
    }
    if within(off, SK, 8) {
        return t == Access::Read && size == 8;
    }
    if off == TSTAMP_TYPE || (TSTAMP_TYPE + 1..HWTSTAMP).contains(&off) {
        return false;
    }
    // Other fields are u32: whole writes, narrow reads of 1, 2 or 4 bytes.
    match t {
        Access::Write => size == 4,
        Access::Read => size <= 4 && size.count_ones() == 1,
    }
}

fn skb_load_type(off: i64) -> Field {
    if within(off, skb::SK, 8) {
        return Field {
            ty: RegType::SockCommon,
            flags: MAYBE_NULL,
        };
    }
    SCALAR
}

fn sk_filter(off: i64, size: i64, t: Access, ldsx: bool) -> Option<Field> {
    use skb::*;
    if within(off, TC_CLASSID, 4)
        || within(off, DATA, 4)
        || within(off, DATA_META, 4)
        || within(off, DATA_END, 4)
        || (FAMILY..LOCAL_PORT_END).contains(&off)
        || within(off, TSTAMP, 8)
        || within(off, WIRE_LEN, 4)
        || within(off, HWTSTAMP, 8)
    {
        return None;
    }
    if t == Access::Write && !within(off, CB, CB_END - CB) {
        return None;
    }
    skb_common(off, size, t, ldsx).then(|| skb_load_type(off))
}

fn cg_skb(off: i64, size: i64, t: Access, ldsx: bool) -> Option<Field> {
    use skb::*;
    if within(off, TC_CLASSID, 4) || within(off, DATA_META, 4) || within(off, WIRE_LEN, 4) {
        return None;
    }
    if t == Access::Write {
        let ok = within(off, MARK, 4)
            || within(off, PRIORITY, 4)
            || within(off, CB, CB_END - CB)
            || within(off, TSTAMP, 8);
        if !ok {
            return None;
        }
    }
    let mut f = skb_load_type(off);
    if within(off, DATA, 4) {
        f = Field {
            ty: RegType::Packet,
            flags: 0,
        };
    } else if within(off, DATA_END, 4) {
        f = Field {
            ty: RegType::PacketEnd,
            flags: 0,
        };
    }
    skb_common(off, size, t, ldsx).then_some(f)
}

fn tc(off: i64, size: i64, t: Access, ldsx: bool) -> Option<Field> {
    use skb::*;
    if t == Access::Write {
        let ok = within(off, MARK, 4)
            || within(off, TC_INDEX, 4)
            || within(off, PRIORITY, 4)
            || within(off, TC_CLASSID, 4)
            || within(off, CB, CB_END - CB)
            || within(off, TSTAMP, 8)
            || within(off, QUEUE_MAPPING, 4);
        if !ok {
            return None;
        }
    }
    let mut f = skb_load_type(off);
    if within(off, DATA, 4) {
        f = Field {
            ty: RegType::Packet,
            flags: 0,
        };
    } else if within(off, DATA_META, 4) {
        f = Field {
            ty: RegType::PacketMeta,
            flags: 0,
        };
    } else if within(off, DATA_END, 4) {
        f = Field {
            ty: RegType::PacketEnd,
            flags: 0,
        };
    } else if (FAMILY..LOCAL_PORT_END).contains(&off) {
        return None;
    } else if off == TSTAMP_TYPE {
        return (size == 1).then_some(SCALAR);
    }
    skb_common(off, size, t, ldsx).then_some(f)
}

/// `BPF_XDP_DEVMAP`: an XDP program run by a device map on the way out of a device.
pub const BPF_XDP_DEVMAP: u32 = 33;

/// `xdp_is_valid_access`; `devmap`: the program's expected attach type is
/// [`BPF_XDP_DEVMAP`], the one kind that may read `egress_ifindex`.
fn xdp(off: i64, size: i64, t: Access, ldsx: bool, devmap: bool) -> Option<Field> {
    const DATA: i64 = 0;
    const DATA_END: i64 = 4;
    const DATA_META: i64 = 8;
    const EGRESS_IFINDEX: i64 = 20;
    if off == EGRESS_IFINDEX && !devmap {
        return None;
    }
    if t == Access::Write {
        return None;
    }
    if ldsx && matches!(off, DATA | DATA_END | DATA_META) {
        return None;
    }
    let f = match off {
        DATA => Field {
            ty: RegType::Packet,
            flags: 0,
        },
        DATA_META => Field {
            ty: RegType::PacketMeta,
            flags: 0,
        },
        DATA_END => Field {
            ty: RegType::PacketEnd,
            flags: 0,
        },
        _ => SCALAR,
    };
    let ok = (0..XDP_MD_SIZE).contains(&off) && off % size == 0 && size == 4;
    ok.then_some(f)
}

fn kprobe(off: i64, size: i64) -> Option<Field> {
    let ok = (0..PT_REGS_SIZE).contains(&off) && off % size == 0 && off + size <= PT_REGS_SIZE;
    ok.then_some(SCALAR)
}

fn tracepoint(off: i64, size: i64, t: Access) -> Option<Field> {
    let ok = (8..PERF_MAX_TRACE_SIZE).contains(&off) && t == Access::Read && off % size == 0;
    ok.then_some(SCALAR)
}

/// Whether a program of type `ty` may access `size` bytes of its context at `off`, and
/// what a load gives (`is_valid_access`). `ldsx`: a sign-extending load.
pub fn check(
    ty: ProgType,
    attach: Option<u32>,
    off: i64,
    size: i64,
    t: Access,
    ldsx: bool,
) -> Option<Field> {
    if size <= 0 {
        return None;
    }
    match ty {
        ProgType::SocketFilter => sk_filter(off, size, t, ldsx),
        ProgType::CgroupSkb => cg_skb(off, size, t, ldsx),
        ProgType::SchedCls | ProgType::SchedAct => tc(off, size, t, ldsx),
        // The attach type only matters for XDP programs attached to device maps.
        ProgType::Xdp => xdp(off, size, t, ldsx, attach == Some(BPF_XDP_DEVMAP)),
        ProgType::Kprobe => kprobe(off, size),
        ProgType::Tracepoint => tracepoint(off, size, t),
        ProgType::PerfEvent => crate::ctx_trace::perf_event(off, size, t),
        ProgType::RawTracepoint => crate::ctx_trace::raw_tp(off, size, t),
        ProgType::Tracing(c) => crate::ctx_trace::tracing(c, off, size, t),
        ProgType::Syscall => crate::ctx_trace::syscall(off, size),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn xdp_fields() {
        let r = |off, size| check(ProgType::Xdp, None, off, size, Access::Read, false);
        assert_eq!(r(0, 4).map(|f| f.ty), Some(RegType::Packet));
        assert_eq!(r(4, 4).map(|f| f.ty), Some(RegType::PacketEnd));
        assert_eq!(r(8, 4).map(|f| f.ty), Some(RegType::PacketMeta));
        assert_eq!(r(12, 4).map(|f| f.ty), Some(RegType::Scalar));
        assert!(r(0, 8).is_none() && r(2, 2).is_none() && r(20, 4).is_none() && r(24, 4).is_none());
        assert!(check(ProgType::Xdp, None, 12, 4, Access::Write, false).is_none());
        // egress_ifindex: only for programs a device map runs, and only read.
        let devmap = Some(BPF_XDP_DEVMAP);
        let egress = check(ProgType::Xdp, devmap, 20, 4, Access::Read, false);
        assert_eq!(egress.map(|f| f.ty), Some(RegType::Scalar));
        assert!(check(ProgType::Xdp, devmap, 20, 4, Access::Write, false).is_none());
        assert!(check(ProgType::Xdp, devmap, 20, 2, Access::Read, false).is_none());
        assert!(check(ProgType::Xdp, Some(35), 20, 4, Access::Read, false).is_none());
    }

    #[test]
    fn skb_fields_per_type() {
        let r = |t, off, size| check(t, None, off, size, Access::Read, false).map(|f| f.ty);
        let w = |t, off, size| check(t, None, off, size, Access::Write, false).is_some();
        assert_eq!(r(ProgType::SchedCls, 76, 4), Some(RegType::Packet));
        assert_eq!(
            r(ProgType::SocketFilter, 76, 4),
            None,
            "socket filters have no data"
        );
        assert_eq!(
            r(ProgType::CgroupSkb, 140, 4),
            None,
            "cgroup_skb has no data_meta"
        );
        assert_eq!(
            r(ProgType::SchedCls, 0, 2),
            Some(RegType::Scalar),
            "narrow read of len"
        );
        assert_eq!(r(ProgType::SchedCls, 0, 8), None);
        assert!(w(ProgType::SchedCls, 8, 4) && !w(ProgType::SchedCls, 0, 4));
        assert!(w(ProgType::SocketFilter, 48, 4) && !w(ProgType::SocketFilter, 8, 4));
        assert!(w(ProgType::CgroupSkb, 8, 4) && !w(ProgType::CgroupSkb, 44, 4));
        assert_eq!(r(ProgType::SchedCls, 168, 8), Some(RegType::SockCommon));
        assert_eq!(r(ProgType::SchedCls, 66, 4), None, "cb[4] ends at 68");
    }
}
