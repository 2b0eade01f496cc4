//! Context structures for packet programs: `struct xdp_md` and `struct __sk_buff` (uapi
//! layouts), with `data`/`data_end`/`data_meta` holding 32-bit guest addresses into region 0.

use bpfvm_helpers::memory::PACKET_OFFSET;

use crate::eth::{EthInfo, SockInfo, LOOPBACK_IFINDEX};
use crate::ProgramType;

/// Size of `struct xdp_md`.
pub const XDP_MD_SIZE: usize = 24;
/// Size of `struct __sk_buff`.
pub const SK_BUFF_SIZE: usize = 192;

/// Offsets of the `struct xdp_md` fields (all `__u32`).
pub mod xdp_md {
    /// `data`.
    pub const DATA: usize = 0;
    /// `data_end`.
    pub const DATA_END: usize = 4;
    /// `data_meta`.
    pub const DATA_META: usize = 8;
    /// `ingress_ifindex`.
    pub const INGRESS_IFINDEX: usize = 12;
    /// `rx_queue_index`.
    pub const RX_QUEUE_INDEX: usize = 16;
    /// `egress_ifindex`.
    pub const EGRESS_IFINDEX: usize = 20;
}

/// Offsets of the `struct __sk_buff` fields.
pub mod sk_buff {
    /// `len`.
    pub const LEN: usize = 0;
    /// `pkt_type`.
    pub const PKT_TYPE: usize = 4;
    /// `mark`.
    pub const MARK: usize = 8;
    /// `queue_mapping`.
    pub const QUEUE_MAPPING: usize = 12;
    /// `protocol`.
    pub const PROTOCOL: usize = 16;
    /// `vlan_present`.
    pub const VLAN_PRESENT: usize = 20;
    /// `vlan_tci`.
    pub const VLAN_TCI: usize = 24;
    /// `vlan_proto`.
    pub const VLAN_PROTO: usize = 28;
    /// `priority`.
    pub const PRIORITY: usize = 32;
    /// `ingress_ifindex`.
    pub const INGRESS_IFINDEX: usize = 36;
    /// `ifindex`.
    pub const IFINDEX: usize = 40;
    /// `tc_index`.
    pub const TC_INDEX: usize = 44;
    /// `cb[5]`.
    pub const CB: usize = 48;
    /// `hash`.
    pub const HASH: usize = 68;
    /// `tc_classid`.
    pub const TC_CLASSID: usize = 72;
    /// `data`.
    pub const DATA: usize = 76;
    /// `data_end`.
    pub const DATA_END: usize = 80;
    /// `napi_id`.
    pub const NAPI_ID: usize = 84;
    /// `family`.
    pub const FAMILY: usize = 88;
    /// `remote_ip4`.
    pub const REMOTE_IP4: usize = 92;
    /// `local_ip4`.
    pub const LOCAL_IP4: usize = 96;
    /// `remote_ip6[4]`.
    pub const REMOTE_IP6: usize = 100;
    /// `local_ip6[4]`.
    pub const LOCAL_IP6: usize = 116;
    /// `remote_port`.
    pub const REMOTE_PORT: usize = 132;
    /// `local_port`.
    pub const LOCAL_PORT: usize = 136;
    /// `data_meta`.
    pub const DATA_META: usize = 140;
    /// `flow_keys` (pointer, 8 bytes; always NULL here).
    pub const FLOW_KEYS: usize = 144;
    /// `tstamp` (`__u64`).
    pub const TSTAMP: usize = 152;
    /// `wire_len`.
    pub const WIRE_LEN: usize = 160;
    /// `gso_segs`.
    pub const GSO_SEGS: usize = 164;
    /// `sk` (pointer, 8 bytes; always NULL here).
    pub const SK: usize = 168;
    /// `gso_size`.
    pub const GSO_SIZE: usize = 176;
    /// `tstamp_type` (`__u8`).
    pub const TSTAMP_TYPE: usize = 180;
    /// `hwtstamp` (`__u64`).
    pub const HWTSTAMP: usize = 184;
}

fn put32(buf: &mut [u8], off: usize, v: u32) {
    buf[off..off + 4].copy_from_slice(&v.to_le_bytes());
}

fn get32(buf: &[u8], off: usize) -> u32 {
    u32::from_le_bytes([buf[off], buf[off + 1], buf[off + 2], buf[off + 3]])
}

/// Guest addresses of a packet with `meta_len` bytes of metadata and `len` bytes of data:
/// `(data_meta, data, data_end)`.
pub fn packet_pointers(meta_len: usize, len: usize) -> (u32, u32, u32) {
    let meta = PACKET_OFFSET;
    let data = meta + meta_len as u32;
    (meta, data, data + len as u32)
}

/// Fills `buf` (`XDP_MD_SIZE` bytes) as `struct xdp_md`: the caller's `ctx_in` first (the
/// kernel accepts `ingress_ifindex` and `rx_queue_index` from user space), then the pointers.
pub(crate) fn fill_xdp_md(buf: &mut [u8], ctx_in: &[u8], meta_len: usize, len: usize) {
    buf.fill(0);
    let n = ctx_in.len().min(buf.len());
    buf[..n].copy_from_slice(&ctx_in[..n]);
    let (meta, data, end) = packet_pointers(meta_len, len);
    put32(buf, xdp_md::DATA, data);
    put32(buf, xdp_md::DATA_END, end);
    put32(buf, xdp_md::DATA_META, meta);
}

/// Fills `buf` (`SK_BUFF_SIZE` bytes) as `struct __sk_buff`: the caller's `ctx_in` first,
/// then `len`, `wire_len` (when `ctx_in` is given), what `eth_type_trans` set (`protocol`, `pkt_type`, and `ifindex`
/// 1, the loopback device, unless `ctx_in` names another), the test run's socket
/// (`family` and addresses from the IP header), the packet pointers and NULL
/// `flow_keys`/`sk`.
pub(crate) fn fill_sk_buff(
    buf: &mut [u8],
    ctx_in: &[u8],
    meta_len: usize,
    len: usize,
    eth: EthInfo,
    sock: &SockInfo,
) {
    buf.fill(0);
    let n = ctx_in.len().min(buf.len());
    buf[..n].copy_from_slice(&ctx_in[..n]);
    let (meta, data, end) = packet_pointers(meta_len, len);
    put32(buf, sk_buff::LEN, len as u32);
    put32(buf, sk_buff::PROTOCOL, eth.protocol);
    put32(buf, sk_buff::PKT_TYPE, eth.pkt_type);
    if get32(buf, sk_buff::IFINDEX) == 0 {
        put32(buf, sk_buff::IFINDEX, LOOPBACK_IFINDEX);
    }
    put32(buf, sk_buff::FAMILY, sock.family);
    buf[sk_buff::REMOTE_IP4..sk_buff::REMOTE_IP4 + 4].copy_from_slice(&sock.remote_ip4);
    buf[sk_buff::LOCAL_IP4..sk_buff::LOCAL_IP4 + 4].copy_from_slice(&sock.local_ip4);
    buf[sk_buff::REMOTE_IP6..sk_buff::REMOTE_IP6 + 16].copy_from_slice(&sock.remote_ip6);
    buf[sk_buff::LOCAL_IP6..sk_buff::LOCAL_IP6 + 16].copy_from_slice(&sock.local_ip6);
    // The kernel sets wire_len (cb->pkt_len) only when a context is passed in.
    if !ctx_in.is_empty() && get32(buf, sk_buff::WIRE_LEN) == 0 {
        put32(buf, sk_buff::WIRE_LEN, len as u32);
    }
    put32(buf, sk_buff::DATA, data);
    put32(buf, sk_buff::DATA_END, end);
    put32(buf, sk_buff::DATA_META, meta);
    buf[sk_buff::FLOW_KEYS..sk_buff::FLOW_KEYS + 8].fill(0);
    buf[sk_buff::SK..sk_buff::SK + 8].fill(0);
}

/// `ctx_out` as the kernel's `BPF_PROG_TEST_RUN` reports it, from `ctx`, the context after
/// the last run, and the caller's `ctx_in`:
/// - `__sk_buff` programs (`convert_skb_to___skb`): `ctx_in`, zero-padded to
///   [`SK_BUFF_SIZE`], with `mark`, `priority`, `ingress_ifindex`, `ifindex`, `tstamp`,
///   `cb[]`, `wire_len`, `gso_segs` and `hwtstamp` as the run left them; the fields bpfvm
///   fills for the program (`len`, `protocol`, packet pointers, socket addresses, ...) are
///   not reported, as in the kernel;
/// - XDP (`xdp_convert_buff_to_md`): the context with `data` and `data_end` as offsets
///   from `data_meta`, and `data_meta` 0 (the form `ctx_in` takes);
/// - other program types: the context bytes as they are.
pub fn test_run_ctx_out(t: ProgramType, ctx: &[u8], ctx_in: &[u8]) -> Vec<u8> {
    if t.uses_sk_buff() && ctx.len() == SK_BUFF_SIZE {
        let mut out = vec![0; SK_BUFF_SIZE];
        let n = ctx_in.len().min(SK_BUFF_SIZE);
        out[..n].copy_from_slice(&ctx_in[..n]);
        for (off, len) in SK_BUFF_REPORTED {
            out[off..off + len].copy_from_slice(&ctx[off..off + len]);
        }
        out
    } else if t == ProgramType::Xdp && ctx.len() == XDP_MD_SIZE {
        let mut out = ctx.to_vec();
        let meta = get32(ctx, xdp_md::DATA_META);
        put32(
            &mut out,
            xdp_md::DATA,
            get32(ctx, xdp_md::DATA).wrapping_sub(meta),
        );
        put32(
            &mut out,
            xdp_md::DATA_END,
            get32(ctx, xdp_md::DATA_END).wrapping_sub(meta),
        );
        put32(&mut out, xdp_md::DATA_META, 0);
        out
    } else {
        ctx.to_vec()
    }
}

/// `(offset, length)` of the `__sk_buff` fields the kernel copies back into `ctx_out`.
const SK_BUFF_REPORTED: [(usize, usize); 9] = [
    (sk_buff::MARK, 4),
    (sk_buff::PRIORITY, 4),
    (sk_buff::INGRESS_IFINDEX, 4),
    (sk_buff::IFINDEX, 4),
    (sk_buff::CB, 20),
    (sk_buff::TSTAMP, 8),
    (sk_buff::WIRE_LEN, 4),
    (sk_buff::GSO_SEGS, 4),
    (sk_buff::HWTSTAMP, 8),
];

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn xdp_md_points_into_the_packet_region() {
        let mut b = [0u8; XDP_MD_SIZE];
        fill_xdp_md(
            &mut b,
            &[0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 7, 0, 0, 0],
            4,
            60,
        );
        let f = |o: usize| u32::from_le_bytes(b[o..o + 4].try_into().unwrap());
        assert_eq!(f(xdp_md::DATA_META), PACKET_OFFSET);
        assert_eq!(f(xdp_md::DATA), PACKET_OFFSET + 4);
        assert_eq!(f(xdp_md::DATA_END), PACKET_OFFSET + 64);
        assert_eq!(f(xdp_md::INGRESS_IFINDEX), 7);
    }

    #[test]
    fn test_run_ctx_out_reports_what_the_kernel_reports() {
        let eth = EthInfo {
            protocol: 8,
            pkt_type: 0,
        };
        let mut ctx = [0u8; SK_BUFF_SIZE];
        let mut ctx_in = vec![0u8; 12];
        ctx_in[sk_buff::MARK] = 9;
        fill_sk_buff(&mut ctx, &ctx_in, 0, 60, eth, &SockInfo::default());
        ctx[sk_buff::CB] = 5;
        let out = test_run_ctx_out(ProgramType::SchedCls, &ctx, &ctx_in);
        let f = |o: usize| u32::from_le_bytes(out[o..o + 4].try_into().unwrap());
        assert_eq!(out.len(), SK_BUFF_SIZE);
        assert_eq!(
            (f(sk_buff::MARK), f(sk_buff::CB), f(sk_buff::IFINDEX)),
            (9, 5, 1)
        );
        assert_eq!((f(sk_buff::WIRE_LEN), f(sk_buff::LEN)), (60, 0));
        assert_eq!((f(sk_buff::DATA), f(sk_buff::PROTOCOL)), (0, 0));

        let mut xdp = [0u8; XDP_MD_SIZE];
        fill_xdp_md(&mut xdp, &[0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 1], 4, 60);
        let out = test_run_ctx_out(ProgramType::Xdp, &xdp, &[]);
        let f = |o: usize| u32::from_le_bytes(out[o..o + 4].try_into().unwrap());
        assert_eq!(f(xdp_md::DATA_META), 0);
        assert_eq!(f(xdp_md::DATA), 4);
        assert_eq!(f(xdp_md::DATA_END), 64);
        assert_eq!(f(xdp_md::INGRESS_IFINDEX), 1);

        let raw = [1u8, 2, 3];
        assert_eq!(test_run_ctx_out(ProgramType::Unspecified, &raw, &raw), raw);
    }

    #[test]
    fn sk_buff_has_the_uapi_layout() {
        let mut b = [0u8; SK_BUFF_SIZE];
        let eth = EthInfo {
            protocol: 8,
            pkt_type: 3,
        };
        fill_sk_buff(&mut b, &[0; 4], 0, 100, eth, &SockInfo::default());
        let f = |o: usize| u32::from_le_bytes(b[o..o + 4].try_into().unwrap());
        assert_eq!(f(sk_buff::LEN), 100);
        assert_eq!(f(sk_buff::DATA), PACKET_OFFSET);
        assert_eq!(f(sk_buff::DATA_END), PACKET_OFFSET + 100);
        assert_eq!(f(sk_buff::DATA_META), PACKET_OFFSET);
        assert_eq!(f(sk_buff::WIRE_LEN), 100);
        assert_eq!(f(sk_buff::PROTOCOL), 8);
        assert_eq!(f(sk_buff::PKT_TYPE), 3);
        assert_eq!(f(sk_buff::IFINDEX), 1);
    }
}
