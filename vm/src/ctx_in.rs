//! The kernel's checks of a test run's context (`ctx_in`) for packet programs, as
//! `net/bpf/test_run.c` makes them before the program runs: `bpf_ctx_init` (bytes past the
//! structure must be zero, else `E2BIG`), `xdp_md` for XDP (`data_meta` 0, `data` ≤
//! `data_end` ≤ the packet length — `data` is the metadata length, checked with the packet
//! sizes; a `data_end` short of the packet length makes the bytes past it fragments of a
//! multi-buffer packet —, no `egress_ifindex`, an existing
//! `ingress_ifindex` and `rx_queue_index`) and `__sk_buff` for skb programs (only `mark`,
//! `priority`, `ingress_ifindex`, `ifindex`, `cb`, `tstamp`, `wire_len`, `gso_segs`,
//! `gso_size` and `hwtstamp` may be set, within their limits; an `ifindex` above 1 must
//! name a device). Devices are the VM's [`Net`] interfaces (the loopback, ifindex 1, and
//! those added), each with one receive queue, as a veth or the loopback.

use bpfvm_helpers::fib::Net;

use crate::ctx_layout::{sk_buff, xdp_md, SK_BUFF_SIZE, XDP_MD_SIZE};
use crate::error::RunError;

const EINVAL: i32 = 22;
const E2BIG: i32 = 7;
const ENODEV: i32 = 19;

/// `GSO_LEGACY_MAX_SIZE`: the largest `wire_len` a test run takes.
const GSO_LEGACY_MAX_SIZE: u32 = 65_536;
/// `GSO_MAX_SEGS`.
const GSO_MAX_SEGS: u32 = 65_535;

fn bad(field: &'static str, reason: String, errno: i32) -> RunError {
    RunError::BadContext {
        field,
        reason,
        errno,
    }
}

fn get32(ctx: &[u8], off: usize) -> u32 {
    let mut b = [0u8; 4];
    for (i, x) in b.iter_mut().enumerate() {
        *x = ctx.get(off + i).copied().unwrap_or(0);
    }
    u32::from_le_bytes(b)
}

/// `BPF_XDP_DEVMAP` and `BPF_XDP_CPUMAP`: XDP programs a device or CPU map runs.
const BPF_XDP_DEVMAP: u32 = 33;
const BPF_XDP_CPUMAP: u32 = 35;

/// `bpf_prog_test_run_xdp` refuses XDP programs attached to a device or CPU map
/// (`EINVAL`): the kernel has no test run for them. bpfvm's [`crate::Vm::run`] still runs
/// them.
pub(crate) fn check_test_runnable(prog: &crate::Program) -> Result<(), RunError> {
    let attach = prog.expected_attach_type();
    if prog.prog_type() == crate::ProgramType::Xdp
        && matches!(attach, Some(BPF_XDP_DEVMAP | BPF_XDP_CPUMAP))
    {
        let map = if attach == Some(BPF_XDP_DEVMAP) {
            "device"
        } else {
            "CPU"
        };
        return Err(RunError::BadInput {
            reason: format!(
                "the kernel has no test run for an XDP program a {map} map runs (expected attach type {}); Vm::run runs it",
                attach.unwrap_or_default()
            ),
        });
    }
    Ok(())
}

/// `bpf_ctx_init`: a context longer than the structure is accepted only if the extra
/// bytes are zero (`bpf_check_uarg_tail_zero`), else `E2BIG`.
pub(crate) fn check_tail(ctx: &[u8], size: usize, what: &'static str) -> Result<(), RunError> {
    match ctx.get(size..) {
        Some(tail) if tail.iter().any(|&b| b != 0) => Err(bad(
            what,
            format!(
                "a context of {} bytes is longer than {what} ({size} bytes) and its extra bytes are not zero",
                ctx.len()
            ),
            E2BIG,
        )),
        _ => Ok(()),
    }
}

fn device_exists(net: &Net, ifindex: u32) -> bool {
    net.interfaces().iter().any(|i| i.ifindex == ifindex)
}

/// XDP: checks `ctx_in` (`struct xdp_md`) against a packet of `meta_len + data_len` bytes
/// (the kernel's `data_size_in`). Returns the metadata length the context asks for
/// (`ctx->data`), which is where the packet data starts, and `data_end`, where the linear
/// part ends (Linux 6.18 puts the bytes past it in fragments).
pub(crate) fn check_xdp(
    ctx: &[u8],
    total_len: usize,
    net: &Net,
) -> Result<(usize, usize), RunError> {
    check_tail(ctx, XDP_MD_SIZE, "struct xdp_md")?;
    let data = get32(ctx, xdp_md::DATA);
    let data_end = get32(ctx, xdp_md::DATA_END);
    let data_meta = get32(ctx, xdp_md::DATA_META);
    if data_meta != 0 {
        return Err(bad(
            "data_meta",
            format!("xdp_md.data_meta is {data_meta}; a test run's context must leave it 0 (no data before the metadata)"),
            EINVAL,
        ));
    }
    if data_end as usize > total_len {
        return Err(bad(
            "data_end",
            format!("xdp_md.data_end is {data_end} but the packet has only {total_len} bytes"),
            EINVAL,
        ));
    }
    if data > data_end {
        return Err(bad(
            "data",
            format!("xdp_md.data ({data}) is past data_end ({data_end})"),
            EINVAL,
        ));
    }
    let egress = get32(ctx, xdp_md::EGRESS_IFINDEX);
    if egress != 0 {
        return Err(bad(
            "egress_ifindex",
            format!("xdp_md.egress_ifindex is {egress}; a test run's context must leave it 0"),
            EINVAL,
        ));
    }
    let ingress = get32(ctx, xdp_md::INGRESS_IFINDEX);
    let queue = get32(ctx, xdp_md::RX_QUEUE_INDEX);
    if ingress == 0 && queue != 0 {
        return Err(bad(
            "rx_queue_index",
            format!("xdp_md.rx_queue_index is {queue} without an ingress_ifindex"),
            EINVAL,
        ));
    }
    if ingress != 0 {
        if !device_exists(net, ingress) {
            return Err(bad(
                "ingress_ifindex",
                format!(
                    "xdp_md.ingress_ifindex {ingress} names no device (add it to the vm's Net)"
                ),
                ENODEV,
            ));
        }
        if queue >= 1 {
            return Err(bad(
                "rx_queue_index",
                format!("xdp_md.rx_queue_index is {queue}; device {ingress} has 1 receive queue"),
                EINVAL,
            ));
        }
    }
    Ok((data as usize, data_end as usize))
}

/// The `__sk_buff` fields a test run's context may set (`convert___skb_to_skb`); every other
/// byte must be zero.
const SKB_ALLOWED: [(usize, usize, &str); 10] = [
    (sk_buff::MARK, 4, "mark"),
    (sk_buff::PRIORITY, 4, "priority"),
    (sk_buff::INGRESS_IFINDEX, 4, "ingress_ifindex"),
    (sk_buff::IFINDEX, 4, "ifindex"),
    (sk_buff::CB, 20, "cb"),
    (sk_buff::TSTAMP, 8, "tstamp"),
    (sk_buff::WIRE_LEN, 4, "wire_len"),
    (sk_buff::GSO_SEGS, 4, "gso_segs"),
    (sk_buff::GSO_SIZE, 4, "gso_size"),
    (sk_buff::HWTSTAMP, 8, "hwtstamp"),
];

/// The name of the `__sk_buff` field at byte `off`.
fn sk_buff_field(off: usize) -> &'static str {
    const FIELDS: [(usize, &str); 37] = [
        (sk_buff::LEN, "len"),
        (sk_buff::PKT_TYPE, "pkt_type"),
        (sk_buff::MARK, "mark"),
        (sk_buff::QUEUE_MAPPING, "queue_mapping"),
        (sk_buff::PROTOCOL, "protocol"),
        (sk_buff::VLAN_PRESENT, "vlan_present"),
        (sk_buff::VLAN_TCI, "vlan_tci"),
        (sk_buff::VLAN_PROTO, "vlan_proto"),
        (sk_buff::PRIORITY, "priority"),
        (sk_buff::INGRESS_IFINDEX, "ingress_ifindex"),
        (sk_buff::IFINDEX, "ifindex"),
        (sk_buff::TC_INDEX, "tc_index"),
        (sk_buff::CB, "cb"),
        (sk_buff::HASH, "hash"),
        (sk_buff::TC_CLASSID, "tc_classid"),
        (sk_buff::DATA, "data"),
        (sk_buff::DATA_END, "data_end"),
        (sk_buff::NAPI_ID, "napi_id"),
        (sk_buff::FAMILY, "family"),
        (sk_buff::REMOTE_IP4, "remote_ip4"),
        (sk_buff::LOCAL_IP4, "local_ip4"),
        (sk_buff::REMOTE_IP6, "remote_ip6"),
        (sk_buff::LOCAL_IP6, "local_ip6"),
        (sk_buff::REMOTE_PORT, "remote_port"),
        (sk_buff::LOCAL_PORT, "local_port"),
        (sk_buff::DATA_META, "data_meta"),
        (sk_buff::FLOW_KEYS, "flow_keys"),
        (sk_buff::TSTAMP, "tstamp"),
        (sk_buff::WIRE_LEN, "wire_len"),
        (sk_buff::GSO_SEGS, "gso_segs"),
        (sk_buff::SK, "sk"),
        (sk_buff::GSO_SIZE, "gso_size"),
        (sk_buff::TSTAMP_TYPE, "tstamp_type"),
        (sk_buff::TSTAMP_TYPE + 1, "padding after tstamp_type"),
        (sk_buff::HWTSTAMP, "hwtstamp"),
        (SK_BUFF_SIZE, "past the structure"),
        (usize::MAX, "past the structure"),
    ];
    let i = FIELDS.partition_point(|(at, _)| *at <= off);
    FIELDS[i.saturating_sub(1)].1
}

/// skb programs: checks `ctx_in` (`struct __sk_buff`) for a packet whose `skb->len` is
/// `skb_len` when the context is converted (the L2 header pushed back for tc programs).
pub(crate) fn check_sk_buff(ctx: &[u8], skb_len: usize, net: &Net) -> Result<(), RunError> {
    check_tail(ctx, SK_BUFF_SIZE, "struct __sk_buff")?;
    let ifindex = get32(ctx, sk_buff::IFINDEX);
    if ifindex > 1 && !device_exists(net, ifindex) {
        return Err(bad(
            "ifindex",
            format!("__sk_buff.ifindex {ifindex} names no device (add it to the vm's Net)"),
            ENODEV,
        ));
    }
    let n = ctx.len().min(SK_BUFF_SIZE);
    if let Some(off) = (0..n).find(|&off| {
        ctx[off] != 0
            && !SKB_ALLOWED
                .iter()
                .any(|&(at, len, _)| (at..at + len).contains(&off))
    }) {
        let field = sk_buff_field(off);
        return Err(bad(
            field,
            format!(
                "__sk_buff.{field} (byte {off}) is set; a test run's context may set only {}",
                allowed_names()
            ),
            EINVAL,
        ));
    }
    let wire_len = get32(ctx, sk_buff::WIRE_LEN);
    if wire_len != 0 && ((wire_len as usize) < skb_len || wire_len > GSO_LEGACY_MAX_SIZE) {
        return Err(bad(
            "wire_len",
            format!("__sk_buff.wire_len ({wire_len}) must be 0, or from the packet length ({skb_len}) to {GSO_LEGACY_MAX_SIZE}"),
            EINVAL,
        ));
    }
    let gso_segs = get32(ctx, sk_buff::GSO_SEGS);
    if gso_segs > GSO_MAX_SEGS {
        return Err(bad(
            "gso_segs",
            format!("__sk_buff.gso_segs ({gso_segs}) is more than {GSO_MAX_SEGS}"),
            EINVAL,
        ));
    }
    Ok(())
}

fn allowed_names() -> String {
    SKB_ALLOWED
        .iter()
        .map(|(_, _, n)| *n)
        .collect::<Vec<_>>()
        .join(", ")
}

#[cfg(test)]
mod tests {
    use super::*;

    fn xdp_md(data: u32, data_end: u32, ingress: u32, queue: u32) -> Vec<u8> {
        let mut c = vec![0u8; XDP_MD_SIZE];
        c[xdp_md::DATA..][..4].copy_from_slice(&data.to_le_bytes());
        c[xdp_md::DATA_END..][..4].copy_from_slice(&data_end.to_le_bytes());
        c[xdp_md::INGRESS_IFINDEX..][..4].copy_from_slice(&ingress.to_le_bytes());
        c[xdp_md::RX_QUEUE_INDEX..][..4].copy_from_slice(&queue.to_le_bytes());
        c
    }

    #[test]
    fn xdp_contexts_follow_the_kernel_rules() {
        let net = Net::new();
        assert_eq!(check_xdp(&xdp_md(0, 64, 0, 0), 64, &net).unwrap(), (0, 64));
        assert_eq!(check_xdp(&xdp_md(8, 64, 1, 0), 64, &net).unwrap(), (8, 64));
        // A short data_end: the rest of the packet goes into fragments.
        assert_eq!(check_xdp(&xdp_md(8, 20, 0, 0), 64, &net).unwrap(), (8, 20));
        assert_eq!(check_xdp(&xdp_md(0, 0, 0, 0), 64, &net).unwrap(), (0, 0));
        let errno = |c: &[u8]| check_xdp(c, 64, &net).unwrap_err().errno();
        assert_eq!(
            errno(&xdp_md(0, 68, 0, 0)),
            EINVAL,
            "data_end past the packet"
        );
        assert_eq!(errno(&xdp_md(8, 4, 0, 0)), EINVAL, "data past data_end");
        assert_eq!(errno(&xdp_md(0, 64, 0, 1)), EINVAL, "queue without device");
        assert_eq!(errno(&xdp_md(0, 64, 1, 1)), EINVAL, "no such queue");
        assert_eq!(errno(&xdp_md(0, 64, 77, 0)), ENODEV, "no such device");
        let mut c = xdp_md(0, 64, 0, 0);
        c[xdp_md::EGRESS_IFINDEX] = 1;
        assert_eq!(errno(&c), EINVAL, "egress");
        let mut c = xdp_md(0, 64, 0, 0);
        c[xdp_md::DATA_META] = 4;
        assert_eq!(errno(&c), EINVAL, "data_meta");
        let mut c = xdp_md(0, 64, 0, 0);
        c.extend_from_slice(&[0, 0, 0, 0]);
        assert!(check_xdp(&c, 64, &net).is_ok(), "a zero tail is accepted");
        c.push(1);
        assert_eq!(errno(&c), E2BIG, "a non-zero tail");
    }

    #[test]
    fn sk_buff_contexts_may_set_only_the_kernel_fields() {
        let net = Net::new();
        let mut c = vec![0u8; SK_BUFF_SIZE];
        for (at, len, _) in SKB_ALLOWED {
            if at != sk_buff::WIRE_LEN && at != sk_buff::IFINDEX && at != sk_buff::GSO_SEGS {
                c[at..at + len].fill(0x11);
            }
        }
        assert!(check_sk_buff(&c, 64, &net).is_ok());
        let mut bad_field = c.clone();
        bad_field[sk_buff::PROTOCOL] = 8;
        let e = check_sk_buff(&bad_field, 64, &net).unwrap_err();
        assert_eq!(e.errno(), EINVAL);
        assert!(e.to_string().contains("__sk_buff.protocol"), "{e}");
        let mut wl = c.clone();
        wl[sk_buff::WIRE_LEN..][..4].copy_from_slice(&63u32.to_le_bytes());
        assert_eq!(check_sk_buff(&wl, 64, &net).unwrap_err().errno(), EINVAL);
        wl[sk_buff::WIRE_LEN..][..4].copy_from_slice(&64u32.to_le_bytes());
        assert!(check_sk_buff(&wl, 64, &net).is_ok());
        let mut dev = c.clone();
        dev[sk_buff::IFINDEX] = 9;
        assert_eq!(check_sk_buff(&dev, 64, &net).unwrap_err().errno(), ENODEV);
        assert_eq!(
            sk_buff_field(sk_buff::TSTAMP_TYPE + 2),
            "padding after tstamp_type"
        );
        assert_eq!(sk_buff_field(sk_buff::REMOTE_IP6 + 5), "remote_ip6");
    }
}
