//! Test frames: Ethernet frames (optionally VLAN-tagged) carrying IPv4 or IPv6 and UDP, TCP
//! or an ICMP echo request, with every length and checksum filled in — the packets a test of
//! an XDP or tc program feeds to [`Input::packet`](crate::Input::packet).
//!
//! [`Frame`] covers the common cases in one line; the frames are serialised by the
//! [`etherparse`] crate (re-exported), whose `PacketBuilder` builds anything else.
//!
//! ```
//! use bpfvm::frame::Frame;
//!
//! // 14 (Ethernet) + 4 (VLAN) + 20 (IPv4) + 8 (UDP) + 5 bytes of payload.
//! let udp = Frame::udp4([10, 0, 0, 1], [10, 0, 0, 2], 5353, 53)
//!     .vlan(100)
//!     .payload(b"hello")
//!     .build()?;
//! assert_eq!(udp.len(), 51);
//! assert_eq!(&udp[12..14], &[0x81, 0x00]); // 802.1Q
//!
//! let syn = Frame::tcp6([0xfd; 16], [0xfe; 16], 40000, 443).syn().build()?;
//! assert_eq!(syn.len(), 14 + 40 + 20);
//! # Ok::<(), bpfvm::frame::FrameError>(())
//! ```

pub use etherparse;

use etherparse::{PacketBuilder, VlanId};

/// Source MAC address of frames unless [`Frame::macs`] says otherwise.
pub const SRC_MAC: [u8; 6] = [0x02, 0, 0, 0, 0, 0x01];
/// Destination MAC address of frames unless [`Frame::macs`] says otherwise.
pub const DST_MAC: [u8; 6] = [0x02, 0, 0, 0, 0, 0x02];
/// Time to live (hop limit) unless [`Frame::ttl`] says otherwise.
pub const DEFAULT_TTL: u8 = 64;

/// A frame that could not be built.
#[derive(Debug, thiserror::Error)]
pub enum FrameError {
    /// A VLAN id above 4095.
    #[error("VLAN id {0} does not fit in 12 bits (at most 4095)")]
    VlanId(u16),
    /// The payload does not fit in the IP or UDP length fields.
    #[error("frame not built: {0}")]
    Build(String),
}

/// The network layer of a [`Frame`].
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Network {
    V4 { src: [u8; 4], dst: [u8; 4] },
    V6 { src: [u8; 16], dst: [u8; 16] },
}

/// The transport layer of a [`Frame`].
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Transport {
    Udp { src: u16, dst: u16 },
    Tcp { src: u16, dst: u16, flags: TcpFlags },
    Echo { id: u16, seq: u16 },
}

/// TCP flags set on a frame.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
struct TcpFlags {
    syn: bool,
    fin: bool,
    rst: bool,
    psh: bool,
    ack: Option<u32>,
}

/// A test frame to build: Ethernet, an optional 802.1Q tag, IPv4 or IPv6, and UDP, TCP or
/// an ICMP (ICMPv6 over IPv6) echo request, then the payload. [`build`](Frame::build) fills
/// in lengths, EtherTypes and the IP, UDP, TCP and ICMP checksums.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Frame {
    src_mac: [u8; 6],
    dst_mac: [u8; 6],
    vlan: Option<u16>,
    ttl: u8,
    network: Network,
    transport: Transport,
    seq: u32,
    window: u16,
    payload: Vec<u8>,
}

impl Frame {
    fn new(network: Network, transport: Transport) -> Frame {
        Frame {
            src_mac: SRC_MAC,
            dst_mac: DST_MAC,
            vlan: None,
            ttl: DEFAULT_TTL,
            network,
            transport,
            seq: 0,
            window: 65535,
            payload: Vec::new(),
        }
    }

    /// A UDP datagram over IPv4.
    pub fn udp4(src: [u8; 4], dst: [u8; 4], sport: u16, dport: u16) -> Frame {
        Frame::new(
            Network::V4 { src, dst },
            Transport::Udp {
                src: sport,
                dst: dport,
            },
        )
    }

    /// A UDP datagram over IPv6.
    pub fn udp6(src: [u8; 16], dst: [u8; 16], sport: u16, dport: u16) -> Frame {
        Frame::new(
            Network::V6 { src, dst },
            Transport::Udp {
                src: sport,
                dst: dport,
            },
        )
    }

    /// A TCP segment over IPv4 (no flags until [`syn`](Frame::syn) etc.).
    pub fn tcp4(src: [u8; 4], dst: [u8; 4], sport: u16, dport: u16) -> Frame {
        Frame::new(
            Network::V4 { src, dst },
            Transport::Tcp {
                src: sport,
                dst: dport,
                flags: TcpFlags::default(),
            },
        )
    }

    /// A TCP segment over IPv6.
    pub fn tcp6(src: [u8; 16], dst: [u8; 16], sport: u16, dport: u16) -> Frame {
        Frame::new(
            Network::V6 { src, dst },
            Transport::Tcp {
                src: sport,
                dst: dport,
                flags: TcpFlags::default(),
            },
        )
    }

    /// An ICMP echo request over IPv4.
    pub fn icmp4_echo(src: [u8; 4], dst: [u8; 4], id: u16, seq: u16) -> Frame {
        Frame::new(Network::V4 { src, dst }, Transport::Echo { id, seq })
    }

    /// An ICMPv6 echo request over IPv6.
    pub fn icmp6_echo(src: [u8; 16], dst: [u8; 16], id: u16, seq: u16) -> Frame {
        Frame::new(Network::V6 { src, dst }, Transport::Echo { id, seq })
    }

    /// Source and destination MAC addresses.
    pub fn macs(mut self, src: [u8; 6], dst: [u8; 6]) -> Frame {
        self.src_mac = src;
        self.dst_mac = dst;
        self
    }

    /// An 802.1Q tag with VLAN id `id` (0..=4095) between the MAC addresses and the EtherType.
    pub fn vlan(mut self, id: u16) -> Frame {
        self.vlan = Some(id);
        self
    }

    /// IPv4 time to live, or IPv6 hop limit.
    pub fn ttl(mut self, ttl: u8) -> Frame {
        self.ttl = ttl;
        self
    }

    /// The bytes after the transport header.
    pub fn payload(mut self, payload: &[u8]) -> Frame {
        self.payload = payload.to_vec();
        self
    }

    /// TCP: sequence number and window.
    pub fn seq_window(mut self, seq: u32, window: u16) -> Frame {
        self.seq = seq;
        self.window = window;
        self
    }

    fn tcp_flag(mut self, set: impl FnOnce(&mut TcpFlags)) -> Frame {
        if let Transport::Tcp { flags, .. } = &mut self.transport {
            set(flags);
        }
        self
    }

    /// TCP: the SYN flag (no effect on other transports).
    pub fn syn(self) -> Frame {
        self.tcp_flag(|f| f.syn = true)
    }

    /// TCP: the FIN flag.
    pub fn fin(self) -> Frame {
        self.tcp_flag(|f| f.fin = true)
    }

    /// TCP: the RST flag.
    pub fn rst(self) -> Frame {
        self.tcp_flag(|f| f.rst = true)
    }

    /// TCP: the PSH flag.
    pub fn psh(self) -> Frame {
        self.tcp_flag(|f| f.psh = true)
    }

    /// TCP: the ACK flag with acknowledgment number `ack`.
    pub fn ack(self, ack: u32) -> Frame {
        self.tcp_flag(|f| f.ack = Some(ack))
    }

    /// The frame's bytes, checksums included.
    pub fn build(&self) -> Result<Vec<u8>, FrameError> {
        let eth = PacketBuilder::ethernet2(self.src_mac, self.dst_mac);
        let mut out = Vec::new();
        let written = match self.vlan {
            Some(id) => {
                let id = VlanId::try_new(id).map_err(|_| FrameError::VlanId(id))?;
                self.write_network(eth.single_vlan(id), &mut out)
            }
            None => self.write_network(eth, &mut out),
        };
        written.map_err(|e| FrameError::Build(e.to_string()))?;
        Ok(out)
    }

    fn write_network<S: NetworkStep>(
        &self,
        step: S,
        out: &mut Vec<u8>,
    ) -> Result<(), etherparse::err::packet::BuildWriteError> {
        let (seq, window, payload) = (self.seq, self.window, &self.payload[..]);
        match (self.network, self.transport) {
            (Network::V4 { src, dst }, t) => {
                let ip = step.ipv4(src, dst, self.ttl);
                match t {
                    Transport::Udp { src, dst } => ip.udp(src, dst).write(out, payload),
                    Transport::Echo { id, seq } => {
                        ip.icmpv4_echo_request(id, seq).write(out, payload)
                    }
                    Transport::Tcp { src, dst, flags } => {
                        with_flags(ip.tcp(src, dst, seq, window), flags).write(out, payload)
                    }
                }
            }
            (Network::V6 { src, dst }, t) => {
                let ip = step.ipv6(src, dst, self.ttl);
                match t {
                    Transport::Udp { src, dst } => ip.udp(src, dst).write(out, payload),
                    Transport::Echo { id, seq } => {
                        ip.icmpv6_echo_request(id, seq).write(out, payload)
                    }
                    Transport::Tcp { src, dst, flags } => {
                        with_flags(ip.tcp(src, dst, seq, window), flags).write(out, payload)
                    }
                }
            }
        }
    }
}

type IpStep = etherparse::PacketBuilderStep<etherparse::IpHeaders>;
type TcpStep = etherparse::PacketBuilderStep<etherparse::TcpHeader>;

/// The builder steps after which an IP header comes (Ethernet, or Ethernet and VLAN).
trait NetworkStep {
    fn ipv4(self, src: [u8; 4], dst: [u8; 4], ttl: u8) -> IpStep;
    fn ipv6(self, src: [u8; 16], dst: [u8; 16], hop_limit: u8) -> IpStep;
}

impl NetworkStep for etherparse::PacketBuilderStep<etherparse::Ethernet2Header> {
    fn ipv4(self, src: [u8; 4], dst: [u8; 4], ttl: u8) -> IpStep {
        self.ipv4(src, dst, ttl)
    }
    fn ipv6(self, src: [u8; 16], dst: [u8; 16], hop_limit: u8) -> IpStep {
        self.ipv6(src, dst, hop_limit)
    }
}

impl NetworkStep for etherparse::PacketBuilderStep<etherparse::VlanHeader> {
    fn ipv4(self, src: [u8; 4], dst: [u8; 4], ttl: u8) -> IpStep {
        self.ipv4(src, dst, ttl)
    }
    fn ipv6(self, src: [u8; 16], dst: [u8; 16], hop_limit: u8) -> IpStep {
        self.ipv6(src, dst, hop_limit)
    }
}

fn with_flags(mut tcp: TcpStep, f: TcpFlags) -> TcpStep {
    if f.syn {
        tcp = tcp.syn();
    }
    if f.fin {
        tcp = tcp.fin();
    }
    if f.rst {
        tcp = tcp.rst();
    }
    if f.psh {
        tcp = tcp.psh();
    }
    if let Some(ack) = f.ack {
        tcp = tcp.ack(ack);
    }
    tcp
}

#[cfg(test)]
mod tests {
    use super::*;
    use etherparse::{NetSlice, SlicedPacket, TransportSlice};

    /// The one's-complement sum of `bytes` folded to 16 bits (0xffff when a checksum is right).
    fn ones_sum(bytes: &[u8]) -> u16 {
        let mut sum: u32 = bytes
            .chunks(2)
            .map(|c| u32::from(u16::from_be_bytes([c[0], *c.get(1).unwrap_or(&0)])))
            .sum();
        while sum > 0xffff {
            sum = (sum & 0xffff) + (sum >> 16);
        }
        sum as u16
    }

    #[test]
    fn a_udp4_frame_has_right_lengths_and_checksums() {
        let f = Frame::udp4([10, 0, 0, 1], [10, 0, 0, 2], 1000, 53)
            .payload(&[1, 2, 3])
            .build()
            .unwrap();
        assert_eq!(f.len(), 14 + 20 + 8 + 3);
        assert_eq!(&f[0..6], &DST_MAC);
        assert_eq!(&f[6..12], &SRC_MAC);
        assert_eq!(&f[12..14], &[0x08, 0x00]);
        assert_eq!(ones_sum(&f[14..34]), 0xffff, "IPv4 header checksum");
        assert_eq!(f[14 + 8], DEFAULT_TTL);
        assert_eq!(f[14 + 9], 17);
        // UDP checksum over the pseudo-header, header and payload.
        let mut pseudo = Vec::new();
        pseudo.extend_from_slice(&f[26..34]);
        pseudo.extend_from_slice(&[0, 17, 0, 11]);
        pseudo.extend_from_slice(&f[34..]);
        assert_eq!(ones_sum(&pseudo), 0xffff, "UDP checksum");
    }

    #[test]
    fn every_shape_parses_back() {
        let v4 = ([192, 168, 0, 1], [192, 168, 0, 2]);
        let v6 = ([0x20; 16], [0x21; 16]);
        let frames = [
            Frame::udp4(v4.0, v4.1, 1, 2),
            Frame::udp6(v6.0, v6.1, 1, 2).vlan(7),
            Frame::tcp4(v4.0, v4.1, 3, 4).syn().ack(9),
            Frame::tcp6(v6.0, v6.1, 3, 4).fin().rst().psh(),
            Frame::icmp4_echo(v4.0, v4.1, 5, 6).vlan(4095),
            Frame::icmp6_echo(v6.0, v6.1, 5, 6).ttl(1),
        ];
        for f in frames {
            let bytes = f.payload(b"xyz").build().unwrap();
            let p = SlicedPacket::from_ethernet(&bytes).unwrap();
            assert!(matches!(p.net, Some(NetSlice::Ipv4(_) | NetSlice::Ipv6(_))));
            assert!(matches!(
                p.transport,
                Some(
                    TransportSlice::Udp(_)
                        | TransportSlice::Tcp(_)
                        | TransportSlice::Icmpv4(_)
                        | TransportSlice::Icmpv6(_)
                )
            ));
        }
        let syn = Frame::tcp4(v4.0, v4.1, 3, 4).syn().build().unwrap();
        let sliced = SlicedPacket::from_ethernet(&syn).unwrap();
        match sliced.transport {
            Some(TransportSlice::Tcp(t)) => assert!(t.syn() && !t.ack()),
            other => panic!("{other:?}"),
        };
    }

    #[test]
    fn bad_vlan_ids_and_oversized_payloads_are_errors() {
        let f = Frame::udp4([1; 4], [2; 4], 1, 2);
        assert!(matches!(
            f.clone().vlan(4096).build(),
            Err(FrameError::VlanId(4096))
        ));
        let big = f.payload(&vec![0; 70_000]).build().unwrap_err();
        assert!(big.to_string().contains("frame not built"), "{big}");
    }
}
