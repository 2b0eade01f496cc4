//! The Ethernet header as the kernel's skb test run sees it (`eth_type_trans` on the
//! loopback device, net/ethernet/eth.c): the protocol and packet type of a frame, and which
//! program types run with the L2 header pulled.

use crate::program_type::ProgramType;

/// `ETH_HLEN`: bytes of the Ethernet header.
pub const ETH_HLEN: usize = 14;

/// `ifindex` of the loopback device the kernel's skb test runs use.
pub const LOOPBACK_IFINDEX: u32 = 1;

/// `PACKET_HOST`: addressed to the device (the loopback device's address is all zeros).
pub const PACKET_HOST: u32 = 0;
/// `PACKET_MULTICAST`.
pub const PACKET_MULTICAST: u32 = 2;
/// `PACKET_OTHERHOST`.
pub const PACKET_OTHERHOST: u32 = 3;

/// What `eth_type_trans` derives from a frame's header.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct EthInfo {
    /// `skb->protocol`: the network-order 16-bit protocol as the `__u32` field of
    /// `struct __sk_buff` holds it (`htons(ETH_P_IP)` reads as 8 on little-endian hosts).
    pub protocol: u32,
    /// `skb->pkt_type` (`PACKET_*`) relative to the loopback device.
    pub pkt_type: u32,
}

impl EthInfo {
    /// `eth_type_trans` of `frame` (at least [`ETH_HLEN`] bytes; shorter frames give
    /// protocol 0) on the loopback device.
    pub fn of(frame: &[u8]) -> EthInfo {
        if frame.len() < ETH_HLEN {
            return EthInfo {
                protocol: 0,
                pkt_type: PACKET_HOST,
            };
        }
        let dst = &frame[..6];
        let pkt_type = if dst.iter().all(|&b| b == 0) {
            PACKET_HOST
        } else if dst[0] & 1 == 0 {
            PACKET_OTHERHOST
        } else {
            // The loopback device's broadcast address is all zeros too, so even
            // ff:ff:ff:ff:ff:ff is PACKET_MULTICAST there (checked against Linux 6.18).
            PACKET_MULTICAST
        };
        let proto = u16::from_be_bytes([frame[12], frame[13]]);
        // ETH_P_802_3_MIN: smaller values are 802.3 lengths.
        let host_order = if proto >= 0x0600 {
            proto
        } else if frame.get(14..16) == Some(&[0xff, 0xff]) {
            // Raw 802.3 (Novell IPX without LLC): ETH_P_802_3.
            0x0001
        } else {
            // ETH_P_802_2.
            0x0004
        };
        EthInfo {
            protocol: u32::from(u16::from_ne_bytes(host_order.to_be_bytes())),
            pkt_type,
        }
    }
}

/// The socket the kernel's skb test run attaches to the skb (`skb->sk`): its family and
/// addresses come from the frame's IPv4 or IPv6 header (`sk_daddr` = the packet's
/// destination, `sk_rcv_saddr` = its source), as `__sk_buff`'s `family`, `remote_ip4`,
/// `local_ip4`, `remote_ip6` and `local_ip6` show them.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct SockInfo {
    /// `AF_INET` (2), `AF_INET6` (10) or `AF_UNSPEC` (0).
    pub family: u32,
    /// `remote_ip4` (network order bytes).
    pub remote_ip4: [u8; 4],
    /// `local_ip4` (network order bytes).
    pub local_ip4: [u8; 4],
    /// `remote_ip6` (network order bytes).
    pub remote_ip6: [u8; 16],
    /// `local_ip6` (network order bytes).
    pub local_ip6: [u8; 16],
}

impl SockInfo {
    /// The socket of a test run with `frame` (an Ethernet frame).
    pub fn of(frame: &[u8]) -> SockInfo {
        let mut s = SockInfo::default();
        let l3 = frame.get(ETH_HLEN..).unwrap_or(&[]);
        match frame.get(12..14) {
            Some([0x08, 0x00]) if l3.len() >= 20 => {
                s.family = 2;
                s.local_ip4.copy_from_slice(&l3[12..16]);
                s.remote_ip4.copy_from_slice(&l3[16..20]);
            }
            Some([0x86, 0xdd]) if l3.len() >= 40 => {
                s.family = 10;
                s.local_ip6.copy_from_slice(&l3[8..24]);
                s.remote_ip6.copy_from_slice(&l3[24..40]);
            }
            _ => {}
        }
        s
    }
}

/// The smallest frame the kernel's skb test run accepts with this header: the L2 header,
/// plus a whole IPv4 (20) or IPv6 (40) header for those EtherTypes (smaller: EINVAL).
pub fn min_frame_len(frame: &[u8]) -> usize {
    match frame.get(12..14) {
        Some([0x08, 0x00]) => ETH_HLEN + 20,
        Some([0x86, 0xdd]) => ETH_HLEN + 40,
        _ => ETH_HLEN,
    }
}

/// Whether programs of type `t` see the L2 header in a test run (`SCHED_CLS`, `SCHED_ACT`).
/// For the other skb types the kernel pulls it before the run (`data` and `len` start at
/// the network header) and pushes back 14 zero bytes afterwards.
pub fn sees_l2_header(t: ProgramType) -> bool {
    matches!(t, ProgramType::SchedCls | ProgramType::SchedAct)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn frame(dst: [u8; 6], proto: u16, payload: &[u8]) -> Vec<u8> {
        let mut f = dst.to_vec();
        f.extend([2, 0, 0, 0, 0, 1]);
        f.extend(proto.to_be_bytes());
        f.extend(payload);
        f
    }

    #[test]
    fn protocol_is_the_ethertype_in_network_order() {
        let ip = EthInfo::of(&frame([0; 6], 0x0800, &[0x45, 0]));
        assert_eq!(ip.protocol.to_ne_bytes()[..2], [0x08, 0x00]);
        assert_eq!(ip.pkt_type, PACKET_HOST);
        let llc = EthInfo::of(&frame([0; 6], 46, &[0xaa, 0xaa]));
        assert_eq!(llc.protocol.to_ne_bytes()[..2], [0x00, 0x04]);
        let raw = EthInfo::of(&frame([0; 6], 46, &[0xff, 0xff]));
        assert_eq!(raw.protocol.to_ne_bytes()[..2], [0x00, 0x01]);
    }

    #[test]
    fn the_socket_takes_the_ip_addresses() {
        let mut ip = vec![0u8; 20];
        ip[12..16].copy_from_slice(&[10, 0, 0, 1]);
        ip[16..20].copy_from_slice(&[10, 0, 0, 2]);
        let s = SockInfo::of(&frame([0; 6], 0x0800, &ip));
        assert_eq!(s.family, 2);
        assert_eq!(s.local_ip4, [10, 0, 0, 1]);
        assert_eq!(s.remote_ip4, [10, 0, 0, 2]);
        assert_eq!(SockInfo::of(&frame([0; 6], 0x0806, &ip)).family, 0);
        let mut ip6 = vec![0u8; 40];
        ip6[8] = 0xfe;
        ip6[24] = 0xff;
        let s = SockInfo::of(&frame([0; 6], 0x86dd, &ip6));
        assert_eq!(
            (s.family, s.local_ip6[0], s.remote_ip6[0]),
            (10, 0xfe, 0xff)
        );
    }

    #[test]
    fn packet_type_follows_the_destination() {
        let t = |dst| EthInfo::of(&frame(dst, 0x0800, &[])).pkt_type;
        assert_eq!(t([0xff; 6]), PACKET_MULTICAST);
        assert_eq!(t([1, 0, 0x5e, 0, 0, 1]), PACKET_MULTICAST);
        assert_eq!(t([2, 0, 0, 0, 0, 9]), PACKET_OTHERHOST);
        assert_eq!(t([0; 6]), PACKET_HOST);
    }
}
