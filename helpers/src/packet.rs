//! The packet of a run as helpers see and change it: where its bytes lie in the packet
//! buffer, the `sk_buff` state the kernel keeps beside them (header offsets, protocol,
//! hash, tunnel metadata), and the rule that every packet pointer a program holds becomes
//! invalid when a helper changes the packet.
//!
//! # Layout, as the kernel's `BPF_PROG_TEST_RUN` lays it out
//!
//! - XDP: a page of [`PAGE_SIZE`] bytes starting with the room of a `struct xdp_frame`
//!   ([`XDP_FRAME_SIZE`]), the packet data at [`XDP_PACKET_HEADROOM`] with the metadata just
//!   before it, and the `skb_shared_info` ([`SKB_SHARED_INFO`]) reserved at the end:
//!   `bpf_xdp_adjust_head`, `_meta` and `_tail` move the packet inside those limits. That
//!   linear part holds at most [`XDP_LINEAR_MAX`] bytes of data; the rest of a longer packet
//!   goes into page fragments ([`crate::frags`]), which packet pointers do not reach.
//! - `__sk_buff` programs: the frame with room for [`SKB_MAX_LEN`] bytes on either side,
//!   so the resizing helpers never move bytes to make room (the kernel reallocates the
//!   buffer instead, which a program cannot observe).
//!
//! # Packet pointers
//!
//! The buffer is seen through a *window* of guest offsets in region 0 (see
//! [`PacketWindows`]). When a helper changes the packet (the kernel's
//! `bpf_helper_changes_pkt_data` list: the resizing helpers, `bpf_skb_store_bytes`,
//! `bpf_l3/l4_csum_replace`, ...), the window moves to fresh offsets and the context's
//! `data`, `data_end`, `data_meta` are rewritten: a pointer computed before the change
//! lies outside the packet's current offsets and faults ([`FaultTarget::StalePacket`]),
//! as the kernel's verifier refuses such an access. Accesses cost nothing more: they are
//! checked against the region as always.
//!
//! [`FaultTarget::StalePacket`]: crate::FaultTarget::StalePacket

use crate::frags::{Frags, TooManyFrags};
use crate::memory::{Memory, PacketWindows, PACKET_OFFSET, REGION_CTX, REGION_PACKET};

/// `PAGE_SIZE` of the kernel the test runs mirror (x86_64).
pub const PAGE_SIZE: usize = 4096;
/// `XDP_PACKET_HEADROOM`: where XDP packet data starts in its page.
pub const XDP_PACKET_HEADROOM: usize = 256;
/// `sizeof(struct xdp_frame)` (x86_64, Linux 6.18): the head of an XDP buffer that
/// `bpf_xdp_adjust_head` and `bpf_xdp_adjust_meta` may not reach.
pub const XDP_FRAME_SIZE: usize = 40;
/// `SKB_DATA_ALIGN(sizeof(struct skb_shared_info))` (x86_64): the tail of a buffer that
/// packet data may not reach.
pub const SKB_SHARED_INFO: usize = 320;
/// Largest XDP metadata: `xdp_metalen_invalid` allows a multiple of 4 up to 255.
pub const XDP_META_MAX: usize = 252;
/// `BPF_SKB_MAX_LEN` (`SKB_MAX_ALLOC`: four pages minus the `skb_shared_info`): the
/// longest packet the `__sk_buff` resizing helpers make.
pub const SKB_MAX_LEN: usize = 4 * PAGE_SIZE - SKB_SHARED_INFO;
/// `NET_SKB_PAD + NET_IP_ALIGN`: the headroom of the kernel's skb test run.
pub const SKB_HEADROOM: usize = 64;
/// `ETH_HLEN`.
pub const ETH_HLEN: usize = 14;
/// Most packet data (after the metadata) in the linear part of an XDP test run's buffer:
/// `PAGE_SIZE - XDP_PACKET_HEADROOM - SKB_DATA_ALIGN(sizeof(struct skb_shared_info))` =
/// 3,520 bytes (the metadata comes out of the headroom).
pub const XDP_LINEAR_MAX: usize = PAGE_SIZE - XDP_PACKET_HEADROOM - SKB_SHARED_INFO;

/// Room on either side of an `__sk_buff` packet in its buffer.
const SKB_ROOM: usize = SKB_MAX_LEN + SKB_HEADROOM;
/// Guest offsets a packet window may use: `PACKET_OFFSET .. 2^31` (an offset of 2^31 or
/// more reads as negative in fault messages).
const WINDOW_END: u64 = 1 << 31;

/// The kind of program whose packet this is: it decides the context layout, which helpers
/// the kernel lets the program call, and what the resizing helpers do.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum PacketProgram {
    /// `BPF_PROG_TYPE_XDP` (`struct xdp_md`).
    Xdp,
    /// `BPF_PROG_TYPE_SCHED_CLS` / `SCHED_ACT`: `__sk_buff` with the L2 header.
    Tc,
    /// `BPF_PROG_TYPE_SOCKET_FILTER`: `__sk_buff` from the network header.
    SocketFilter,
    /// `BPF_PROG_TYPE_CGROUP_SKB`: `__sk_buff` from the network header.
    CgroupSkb,
}

impl PacketProgram {
    /// The program type's name (`tc` for `sched_cls` and `sched_act`).
    pub fn name(self) -> &'static str {
        match self {
            PacketProgram::Xdp => "xdp",
            PacketProgram::Tc => "tc",
            PacketProgram::SocketFilter => "socket_filter",
            PacketProgram::CgroupSkb => "cgroup_skb",
        }
    }

    /// Whether the context is `struct __sk_buff`.
    pub fn is_skb(self) -> bool {
        self != PacketProgram::Xdp
    }
}

/// Offsets of the context fields the packet helpers keep up to date (uapi layouts).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
struct CtxFields {
    data: usize,
    data_end: usize,
    data_meta: usize,
    /// `__sk_buff` only: `len`, `protocol`, `hash`.
    skb: Option<(usize, usize, usize)>,
}

/// `struct xdp_md`: `data`, `data_end`, `data_meta`.
const XDP_MD_FIELDS: CtxFields = CtxFields {
    data: 0,
    data_end: 4,
    data_meta: 8,
    skb: None,
};
/// `struct __sk_buff`: `data` 76, `data_end` 80, `data_meta` 140, `len` 0, `protocol` 16,
/// `hash` 68.
const SK_BUFF_FIELDS: CtxFields = CtxFields {
    data: 76,
    data_end: 80,
    data_meta: 140,
    skb: Some((0, 16, 68)),
};

/// The tunnel metadata `bpf_skb_set_tunnel_key` attaches (`struct ip_tunnel_info`, the
/// parts `bpf_skb_get_tunnel_key` reads back).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct TunnelInfo {
    /// `key.tun_id` (host order).
    pub id: u64,
    /// Whether the addresses are IPv6.
    pub ipv6: bool,
    /// Remote address (`remote_ipv4` in host order in the first word for IPv4).
    pub remote: [u32; 4],
    /// Local address.
    pub local: [u32; 4],
    /// `key.tos`.
    pub tos: u8,
    /// `key.ttl`.
    pub ttl: u8,
    /// IPv6 flow label (host order, 20 bits).
    pub label: u32,
    /// The `TUNNEL_*` flags as `bpf_skb_get_tunnel_key` reports them with
    /// `BPF_F_TUNINFO_FLAGS` (network order, as the `__be16` field holds them).
    pub flags_be: u16,
}

/// What the kernel keeps in the `sk_buff` beside the bytes.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub(crate) struct SkbState {
    /// Buffer offsets of the MAC, network and transport headers (`None`: not set).
    pub(crate) mac: Option<usize>,
    pub(crate) network: usize,
    pub(crate) transport: Option<usize>,
    /// `skb->protocol` as the `__sk_buff` field holds it (network order read natively).
    pub(crate) protocol: u16,
    /// `skb->hash`, and whether it is set (`l4_hash`/`sw_hash`).
    pub(crate) hash: u32,
    pub(crate) hash_valid: bool,
    /// `skb->encapsulation` (set by `bpf_skb_adjust_room` encapsulation).
    pub(crate) encapsulation: bool,
    /// Bytes of L2 header pulled before the run and pushed back (zeroed) in the output.
    pub(crate) pulled: usize,
    /// `ifindex` of the device the skb is on (`skb->dev`).
    pub(crate) ifindex: u32,
}

/// The packet of a run (see the module documentation). One lives in each
/// [`HelperContext`](crate::HelperContext); the VM sets it up before a run and reads the
/// output packet after it, helpers read and change it.
#[derive(Debug, Clone, Default)]
pub struct Packet {
    prog: Option<PacketProgram>,
    /// Bytes of the buffer in use.
    cap: usize,
    /// Buffer offsets of `data_meta`, `data` and `data_end`.
    meta: usize,
    data: usize,
    end: usize,
    /// Lowest `data_meta` and highest `data_end` the buffer allows.
    head_min: usize,
    tail_max: usize,
    /// Buffer bytes that may be non-zero (everything else is zero).
    dirty: (usize, usize),
    windows: PacketWindows,
    ctx: Option<CtxFields>,
    /// XDP: the fragments past the linear part (empty for a linear packet).
    pub(crate) frags: Frags,
    pub(crate) skb: SkbState,
    pub(crate) tunnel: Option<TunnelInfo>,
    /// The target the run's last redirect helper call set (cleared when a run begins).
    pub(crate) redirect: Option<crate::redirect::RedirectTarget>,
}

impl Packet {
    /// No packet.
    pub fn new() -> Packet {
        Packet::default()
    }

    /// The program kind whose packet this is, or `None` when the run has no packet.
    pub fn program(&self) -> Option<PacketProgram> {
        self.prog
    }

    /// Bytes between `data` and `data_end` (the linear part of an XDP packet).
    pub fn len(&self) -> usize {
        self.end - self.data
    }

    /// The packet's length with its fragments (`xdp_get_buff_len`): [`Packet::len`] plus
    /// the bytes of the XDP fragments.
    pub fn buff_len(&self) -> usize {
        self.len() + self.frags.len()
    }

    /// The fragments of a multi-buffer XDP packet (empty for a linear one).
    pub fn frags(&self) -> &Frags {
        &self.frags
    }

    /// Whether `data == data_end` (or there is no packet).
    pub fn is_empty(&self) -> bool {
        self.end == self.data
    }

    /// Bytes of metadata (`data - data_meta`).
    pub fn meta_len(&self) -> usize {
        self.data - self.meta
    }

    /// How many times helpers changed the packet since it was set up (each change moved
    /// the packet's window and invalidated the program's packet pointers).
    pub fn changes(&self) -> u64 {
        self.windows.changes
    }

    /// The guest addresses `(data_meta, data, data_end)` as the context holds them.
    pub fn pointers(&self) -> (u32, u32, u32) {
        let o = self.windows.origin(self.windows.current);
        let at = |x: usize| (o + x as u64) as u32;
        (at(self.meta), at(self.data), at(self.end))
    }

    /// Where the run's redirect helpers sent the packet: the target of the last
    /// `bpf_redirect*` call of the run (`None` if there was none, or a `bpf_redirect_map`
    /// found no element after it).
    pub fn redirect(&self) -> Option<crate::redirect::RedirectTarget> {
        self.redirect
    }

    /// Forgets the redirect target (a new run begins).
    #[inline]
    pub fn clear_redirect(&mut self) {
        self.redirect = None;
    }

    /// The tunnel metadata set by `bpf_skb_set_tunnel_key` during the run, if any.
    pub fn tunnel(&self) -> Option<TunnelInfo> {
        self.tunnel
    }

    /// Sets up the packet of an XDP run: `meta` then `data`, as the kernel's XDP test run
    /// lays them out (`data` at [`XDP_PACKET_HEADROOM`] in a [`PAGE_SIZE`] frame): the
    /// first `linear` bytes of `data` (at most [`XDP_LINEAR_MAX`]; more are cut to it) in
    /// the linear part, the rest in fragments. The metadata must be a multiple of 4 of at
    /// most [`XDP_META_MAX`] bytes (checked by the caller, as the test run does).
    /// `data_meta` gets guest offset [`PACKET_OFFSET`]. Fails when the rest needs more than
    /// [`MAX_SKB_FRAGS`](crate::frags::MAX_SKB_FRAGS) fragments (the packet is then linear
    /// and empty of fragments).
    pub fn setup_xdp(
        &mut self,
        mem: &mut Memory,
        meta: &[u8],
        data: &[u8],
        linear: usize,
    ) -> Result<(), TooManyFrags> {
        let (head, rest) = data.split_at(linear.min(XDP_LINEAR_MAX).min(data.len()));
        let filled = self.frags.fill(rest);
        let data_at = XDP_PACKET_HEADROOM.max(XDP_FRAME_SIZE + meta.len());
        let cap = PAGE_SIZE.max((data_at + head.len() + SKB_SHARED_INFO).next_multiple_of(8));
        let meta_at = data_at - meta.len();
        self.skb = SkbState::default();
        self.layout(
            mem,
            PacketProgram::Xdp,
            cap,
            (meta_at, data_at, data_at + head.len()),
            &[(meta_at, meta), (data_at, head)],
        );
        self.head_min = XDP_FRAME_SIZE;
        self.tail_max = cap - SKB_SHARED_INFO;
        filled
    }

    /// Sets up the packet of an `__sk_buff` run from an Ethernet `frame`: tc programs see
    /// all of it, the others (`pulled` = 14) see it from the network header, the L2 header
    /// staying in front of `data` as the kernel's `eth_type_trans` leaves it. `protocol` is
    /// `skb->protocol` as the context's field holds it, `ifindex` the device. `data` gets
    /// guest offset [`PACKET_OFFSET`].
    pub fn setup_skb(
        &mut self,
        mem: &mut Memory,
        prog: PacketProgram,
        frame: &[u8],
        pulled: usize,
        protocol: u16,
        ifindex: u32,
    ) {
        let pulled = pulled.min(frame.len());
        self.frags.clear();
        let cap = (2 * SKB_ROOM + frame.len()).next_multiple_of(8);
        let mac = SKB_ROOM - pulled;
        self.skb = SkbState {
            mac: Some(mac),
            network: mac + ETH_HLEN.min(frame.len()),
            transport: None,
            protocol,
            hash: 0,
            hash_valid: false,
            encapsulation: false,
            pulled,
            ifindex,
        };
        // `data_meta == data`: skb test runs have no metadata.
        let end = mac + frame.len();
        self.layout(mem, prog, cap, (SKB_ROOM, SKB_ROOM, end), &[(mac, frame)]);
        self.head_min = 0;
        self.tail_max = cap;
    }

    /// Zeroes what the last packet left in the buffer (of `cap` bytes), copies `parts` to
    /// their buffer offsets, sets `data_meta`, `data`, `data_end` to `bounds` and shows the
    /// packet with `data_meta` at [`PACKET_OFFSET`].
    fn layout(
        &mut self,
        mem: &mut Memory,
        prog: PacketProgram,
        cap: usize,
        bounds: (usize, usize, usize),
        parts: &[(usize, &[u8])],
    ) {
        let buf = mem.reserve_owned(REGION_PACKET, cap);
        let (lo, hi) = self.dirty;
        let n = buf.len();
        if lo < hi {
            buf[lo.min(n)..hi.min(n)].fill(0);
        }
        let mut dirty = (bounds.0, bounds.2);
        for &(at, bytes) in parts {
            buf[at..at + bytes.len()].copy_from_slice(bytes);
            dirty = (dirty.0.min(at), dirty.1.max(at + bytes.len()));
        }
        self.prog = Some(prog);
        self.cap = cap;
        (self.meta, self.data, self.end) = bounds;
        self.dirty = dirty;
        let first = u64::from(PACKET_OFFSET) - bounds.0 as u64;
        let stride = (cap.next_multiple_of(PAGE_SIZE) + PAGE_SIZE) as u64;
        self.windows = PacketWindows {
            first: first as u32,
            stride: stride as u32,
            cap: cap as u32,
            current: 0,
            wrapped: false,
            changes: 0,
        };
        self.ctx = Some(if prog.is_skb() {
            SK_BUFF_FIELDS
        } else {
            XDP_MD_FIELDS
        });
        self.tunnel = None;
        self.install(mem);
    }

    /// Removes the packet (a run of a program type without one).
    pub fn clear(&mut self, mem: &mut Memory) {
        self.prog = None;
        self.ctx = None;
        self.meta = 0;
        self.data = 0;
        self.end = 0;
        self.tunnel = None;
        self.frags.clear();
        mem.set_owned_view(REGION_PACKET, 0, 0, PACKET_OFFSET);
        mem.set_packet_windows(PacketWindows::default());
    }

    /// The packet after the run as `BPF_PROG_TEST_RUN` reports it in `data_out`: XDP from
    /// `data_meta` to `data_end` (metadata included) followed by the fragments;
    /// `__sk_buff` from `data` to `data_end`, behind the zeroed L2 header for the program
    /// types that run without it.
    pub fn output(&self, mem: &mut Memory) -> Vec<u8> {
        let Some(prog) = self.prog else {
            return Vec::new();
        };
        let Some(buf) = mem.owned_bytes_mut(REGION_PACKET) else {
            return Vec::new();
        };
        if prog.is_skb() {
            let mut out = vec![0; self.skb.pulled + self.len()];
            out[self.skb.pulled..].copy_from_slice(&buf[self.data..self.end]);
            out
        } else {
            let mut out = buf[self.meta..self.end].to_vec();
            self.frags.append_to(&mut out);
            out
        }
    }

    /// The packet bytes `data .. data_end` (the linear part of an XDP packet).
    pub fn bytes<'m>(&self, mem: &'m mut Memory) -> &'m mut [u8] {
        match mem.owned_bytes_mut(REGION_PACKET) {
            Some(buf) if self.prog.is_some() => &mut buf[self.data..self.end],
            _ => &mut [],
        }
    }

    /// Copies the packet bytes at `off` from `data` into `out`, across the linear part and
    /// the XDP fragments (`bpf_xdp_copy_buf`). The caller checked that
    /// `off + out.len() <= self.buff_len()`.
    pub(crate) fn read_at(&self, mem: &mut Memory, off: usize, out: &mut [u8]) {
        let linear = self.len();
        let head = linear.saturating_sub(off).min(out.len());
        if head > 0 {
            let at = self.data + off;
            out[..head].copy_from_slice(&self.buffer(mem)[at..at + head]);
        }
        if head < out.len() {
            self.frags.read(off + head - linear, &mut out[head..]);
        }
    }

    /// Copies `src` into the packet at `off` from `data`, across the linear part and the
    /// XDP fragments. The caller checked that `off + src.len() <= self.buff_len()`.
    pub(crate) fn write_at(&mut self, mem: &mut Memory, off: usize, src: &[u8]) {
        let linear = self.len();
        let head = linear.saturating_sub(off).min(src.len());
        if head > 0 {
            let at = self.data + off;
            self.buffer(mem)[at..at + head].copy_from_slice(&src[..head]);
            self.touch(at, at + head);
        }
        if head < src.len() {
            self.frags.write(off + head - linear, &src[head..]);
        }
    }

    /// The whole buffer.
    pub(crate) fn buffer<'m>(&self, mem: &'m mut Memory) -> &'m mut [u8] {
        mem.owned_bytes_mut(REGION_PACKET).unwrap_or_default()
    }

    /// Buffer offset of `data`.
    pub(crate) fn data_off(&self) -> usize {
        self.data
    }

    /// Buffer offset of `data_end`.
    pub(crate) fn end_off(&self) -> usize {
        self.end
    }

    /// Buffer offset of `data_meta`.
    pub(crate) fn meta_off(&self) -> usize {
        self.meta
    }

    /// Lowest buffer offset the packet may grow to.
    pub(crate) fn head_min(&self) -> usize {
        self.head_min
    }

    /// Highest buffer offset `data_end` may reach.
    pub(crate) fn tail_max(&self) -> usize {
        self.tail_max
    }

    /// Moves `data_meta`, `data` and `data_end` to new buffer offsets (the caller checked
    /// them against [`Packet::head_min`] and [`Packet::tail_max`]; bytes they newly expose
    /// must be written by the caller) and invalidates the program's packet pointers.
    pub(crate) fn set_bounds(&mut self, mem: &mut Memory, meta: usize, data: usize, end: usize) {
        debug_assert!(self.head_min <= meta && meta <= data && data <= end && end <= self.cap);
        self.meta = meta;
        self.data = data;
        self.end = end;
        self.dirty = (self.dirty.0.min(meta), self.dirty.1.max(end));
        self.invalidate(mem);
    }

    /// Marks buffer bytes `lo .. hi` as possibly non-zero (the caller wrote them).
    pub(crate) fn touch(&mut self, lo: usize, hi: usize) {
        self.dirty = (self.dirty.0.min(lo), self.dirty.1.max(hi));
    }

    /// Invalidates every packet pointer the program holds: the packet moves to the next
    /// window of guest offsets and the context's pointers follow it.
    pub fn invalidate(&mut self, mem: &mut Memory) {
        let w = &mut self.windows;
        let next = w.current + 1;
        if w.origin(next) + w.cap as u64 <= WINDOW_END {
            w.current = next;
        } else {
            w.current = 0;
            w.wrapped = true;
        }
        w.changes += 1;
        self.install(mem);
    }

    /// Installs the region over `data_meta .. data_end` in the current window and writes
    /// the context's pointer fields (and, for `__sk_buff`, `len`, `protocol` and `hash`).
    pub(crate) fn install(&mut self, mem: &mut Memory) {
        let (meta, data, end) = self.pointers();
        mem.set_owned_view(REGION_PACKET, self.meta, self.end - self.meta, meta);
        mem.set_packet_windows(self.windows);
        let Some(f) = self.ctx else {
            return;
        };
        let Some(ctx) = mem.owned_bytes_mut(REGION_CTX) else {
            return;
        };
        let mut put = |off: usize, v: u32| {
            if let Some(b) = ctx.get_mut(off..off + 4) {
                b.copy_from_slice(&v.to_le_bytes());
            }
        };
        put(f.data, data);
        put(f.data_end, end);
        put(f.data_meta, meta);
        if let Some((len, protocol, hash)) = f.skb {
            put(len, (self.end - self.data) as u32);
            put(protocol, u32::from(self.skb.protocol));
            put(hash, self.skb.hash);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::fault::FaultTarget;
    use crate::memory::guest_addr;

    fn ctx_mem(len: usize) -> Memory {
        let mut m = Memory::new();
        m.set_owned_region(REGION_CTX, 0, len, true).fill(0);
        m
    }

    fn ctx_u32(m: &mut Memory, off: usize) -> u32 {
        let c = m.owned_bytes_mut(REGION_CTX).unwrap();
        u32::from_le_bytes(c[off..off + 4].try_into().unwrap())
    }

    #[test]
    fn xdp_packets_start_at_the_packet_offset_with_the_kernels_headroom() {
        let mut m = ctx_mem(24);
        let mut p = Packet::new();
        p.setup_xdp(&mut m, &[1, 2, 3, 4], &[9; 60], 60).unwrap();
        assert_eq!(
            p.pointers(),
            (PACKET_OFFSET, PACKET_OFFSET + 4, PACKET_OFFSET + 64)
        );
        assert_eq!(p.data_off(), XDP_PACKET_HEADROOM);
        assert_eq!(p.tail_max(), PAGE_SIZE - SKB_SHARED_INFO);
        assert_eq!(m.load(u64::from(PACKET_OFFSET), 1).unwrap(), 1);
        assert_eq!(m.load(u64::from(PACKET_OFFSET) + 63, 1).unwrap(), 9);
        assert!(m.load(u64::from(PACKET_OFFSET) + 64, 1).is_err());
        assert_eq!(ctx_u32(&mut m, 0), PACKET_OFFSET + 4);
        assert_eq!(p.output(&mut m), [&[1, 2, 3, 4][..], &[9; 60]].concat());
    }

    #[test]
    fn long_xdp_packets_keep_the_kernels_linear_part_and_the_rest_in_fragments() {
        let mut m = ctx_mem(24);
        let mut p = Packet::new();
        let data: Vec<u8> = (0..8000).map(|i| (i % 251) as u8).collect();
        p.setup_xdp(&mut m, &[5; 8], &data, data.len()).unwrap();
        assert_eq!(p.len(), XDP_LINEAR_MAX);
        assert_eq!(p.buff_len(), 8000);
        assert_eq!(
            p.frags().sizes().collect::<Vec<_>>(),
            [4096, 8000 - 3520 - 4096]
        );
        assert_eq!(p.tail_max(), PAGE_SIZE - SKB_SHARED_INFO);
        let (_, d, e) = p.pointers();
        assert_eq!(e - d, 3520);
        assert!(
            m.load(u64::from(e), 1).is_err(),
            "fragments are not packet memory"
        );
        assert_eq!(p.output(&mut m), [&[5; 8][..], &data].concat());
        // A shorter linear part (ctx_in's data_end), then a linear packet again.
        p.setup_xdp(&mut m, &[], &data[..100], 20).unwrap();
        assert_eq!((p.len(), p.buff_len()), (20, 100));
        assert_eq!(p.output(&mut m), &data[..100]);
        p.setup_xdp(&mut m, &[], &data[..64], 64).unwrap();
        assert!(p.frags().is_empty());
        // More than 17 fragments: refused, and the packet keeps none.
        let huge = vec![0u8; XDP_LINEAR_MAX + 17 * PAGE_SIZE + 1];
        let e = p.setup_xdp(&mut m, &[], &huge, huge.len()).unwrap_err();
        assert_eq!(e.needed, 18);
        assert!(p.frags().is_empty());
        // An skb packet has no fragments.
        p.setup_xdp(&mut m, &[], &data, data.len()).unwrap();
        p.setup_skb(&mut m, PacketProgram::Tc, &[1; 60], 0, 8, 1);
        assert_eq!(p.buff_len(), 60);
    }

    #[test]
    fn an_invalidated_pointer_faults_and_says_why() {
        let mut m = ctx_mem(24);
        let mut p = Packet::new();
        p.setup_xdp(&mut m, &[], &[7; 64], 64).unwrap();
        let old = u64::from(p.pointers().1);
        assert_eq!(m.load(old, 4).unwrap(), 0x0707_0707);
        p.invalidate(&mut m);
        let new = u64::from(p.pointers().1);
        assert_ne!(old, new);
        assert_eq!(ctx_u32(&mut m, 0) as u64, new);
        assert_eq!(m.load(new, 4).unwrap(), 0x0707_0707);
        let e = m.load(old, 4).unwrap_err();
        assert_eq!(e.target, FaultTarget::StalePacket { changes_ago: 1 });
        assert!(
            e.to_string().contains("before the packet was changed"),
            "{e}"
        );
        // Just past data_end is an ordinary out-of-bounds packet access.
        let e = m.load(new + 64, 1).unwrap_err();
        assert_eq!(
            e.target,
            FaultTarget::Packet {
                offset: 64,
                len: 64
            }
        );
        p.invalidate(&mut m);
        assert_eq!(
            m.load(old, 1).unwrap_err().target,
            FaultTarget::StalePacket { changes_ago: 2 }
        );
        assert_eq!(p.changes(), 2);
    }

    #[test]
    // 300,000 packet moves: minutes under Miri; the window arithmetic has no unsafe code.
    #[cfg_attr(miri, ignore)]
    fn windows_wrap_round_inside_31_bits() {
        let mut m = ctx_mem(24);
        let mut p = Packet::new();
        p.setup_xdp(&mut m, &[], &[1; 64], 64).unwrap();
        let mut seen_wrap = false;
        for _ in 0..300_000 {
            p.invalidate(&mut m);
            let (meta, _, end) = p.pointers();
            assert!(meta >= PACKET_OFFSET - XDP_PACKET_HEADROOM as u32);
            assert!(u64::from(end) < WINDOW_END);
            seen_wrap |= p.windows.wrapped;
        }
        assert!(seen_wrap);
        let d = u64::from(p.pointers().1);
        assert_eq!(m.load(d, 1).unwrap(), 1);
    }

    #[test]
    fn a_new_setup_zeroes_what_the_last_packet_left() {
        let mut m = ctx_mem(192);
        let mut p = Packet::new();
        p.setup_skb(&mut m, PacketProgram::Tc, &[0xaa; 100], 0, 8, 1);
        assert_eq!(ctx_u32(&mut m, 0), 100);
        let buf = p.buffer(&mut m);
        buf[SKB_ROOM - 50..SKB_ROOM].fill(0xee);
        p.touch(SKB_ROOM - 50, SKB_ROOM);
        p.setup_skb(&mut m, PacketProgram::Tc, &[1; 20], 0, 8, 1);
        let buf = p.buffer(&mut m);
        assert!(buf[..SKB_ROOM].iter().all(|&b| b == 0));
        assert!(buf[SKB_ROOM + 20..].iter().all(|&b| b == 0));
        assert_eq!(p.output(&mut m), vec![1; 20]);
        let _ = guest_addr(REGION_PACKET, 0);
    }

    #[test]
    fn skb_programs_without_l2_keep_the_header_in_front() {
        let mut m = ctx_mem(192);
        let mut p = Packet::new();
        let frame: Vec<u8> = (0..40).collect();
        p.setup_skb(&mut m, PacketProgram::SocketFilter, &frame, ETH_HLEN, 8, 1);
        assert_eq!(p.len(), 26);
        assert_eq!(p.skb.mac, Some(p.data_off() - ETH_HLEN));
        assert_eq!(p.skb.network, p.data_off());
        let out = p.output(&mut m);
        assert_eq!(&out[..14], &[0; 14]);
        assert_eq!(&out[14..], &frame[14..]);
        assert_eq!(p.buffer(&mut m)[p.data_off() - 1], 13);
    }
}
