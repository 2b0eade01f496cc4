//! The fixed frames every packet program of the corpus runs on, on both sides: IPv4 and
//! IPv6 TCP, UDP and ICMP, ARP, an 802.1Q-tagged frame, a full-size frame, a TTL-1 frame
//! and a bare Ethernet header (the shortest frame a test run takes).

use bpfvm::frame::Frame;

/// IPv6 address `2001:db8::last`.
fn v6(last: u8) -> [u8; 16] {
    let mut a = [0u8; 16];
    a[..4].copy_from_slice(&[0x20, 0x01, 0x0d, 0xb8]);
    a[15] = last;
    a
}

/// An ARP request for 10.0.0.2 from 10.0.0.1 (42 bytes).
fn arp_request() -> Vec<u8> {
    let mut f = vec![0xff; 6];
    f.extend_from_slice(&[0x02, 0, 0, 0, 0, 0x01]);
    f.extend_from_slice(&[0x08, 0x06]); // EtherType ARP
    f.extend_from_slice(&[0, 1, 0x08, 0, 6, 4, 0, 1]); // Ethernet/IPv4, request
    f.extend_from_slice(&[0x02, 0, 0, 0, 0, 0x01, 10, 0, 0, 1]);
    f.extend_from_slice(&[0, 0, 0, 0, 0, 0, 10, 0, 0, 2]);
    f
}

/// The frames, each with a name for messages, in the order they run.
pub fn frames() -> Vec<(&'static str, Vec<u8>)> {
    let a = [10, 0, 0, 1];
    let b = [10, 0, 0, 2];
    let built: [(&'static str, Frame); 9] = [
        ("tcp4 syn", Frame::tcp4(a, b, 40000, 80).syn()),
        ("udp4 dns", Frame::udp4(a, b, 5353, 53).payload(&[0xab; 32])),
        ("icmp4 echo", Frame::icmp4_echo(a, b, 7, 1)),
        (
            "tcp6 ack",
            Frame::tcp6(v6(1), v6(2), 40001, 443)
                .ack(1)
                .payload(b"GET / HTTP/1.1\r\n"),
        ),
        (
            "udp6",
            Frame::udp6(v6(1), v6(2), 4789, 4789).payload(&[1; 20]),
        ),
        ("icmp6 echo", Frame::icmp6_echo(v6(1), v6(2), 9, 2)),
        (
            "vlan udp4",
            Frame::udp4(a, b, 1000, 2000).vlan(100).payload(&[7; 10]),
        ),
        (
            "tcp4 1500",
            Frame::tcp4(a, b, 12345, 8080)
                .ack(7)
                .psh()
                .payload(&[0x5a; 1446]),
        ),
        (
            "udp4 ttl 1",
            Frame::udp4(b, a, 53, 5353).ttl(1).payload(&[3; 8]),
        ),
    ];
    let mut v: Vec<(&'static str, Vec<u8>)> = built
        .into_iter()
        .map(|(n, f)| (n, f.build().unwrap_or_default()))
        .collect();
    v.push(("arp request", arp_request()));
    let mut eth_only = vec![0x02, 0, 0, 0, 0, 0x02, 0x02, 0, 0, 0, 0, 0x01];
    eth_only.extend_from_slice(&[0x08, 0x00]);
    v.push(("ethernet header only", eth_only));
    v
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_frame_builds_with_its_size() {
        let f = frames();
        assert_eq!(f.len(), 11);
        let len = |name: &str| f.iter().find(|(n, _)| *n == name).unwrap().1.len();
        assert_eq!(len("tcp4 syn"), 14 + 20 + 20);
        assert_eq!(len("tcp4 1500"), 1500);
        assert_eq!(len("vlan udp4"), 18 + 20 + 8 + 10);
        assert_eq!(len("arp request"), 42);
        assert_eq!(len("ethernet header only"), 14);
        assert!(f.iter().all(|(_, b)| b.len() >= 14));
        // The VLAN tag is there: TPID 0x8100 then VID 100.
        let vlan = &f.iter().find(|(n, _)| *n == "vlan udp4").unwrap().1;
        assert_eq!(&vlan[12..16], &[0x81, 0x00, 0x00, 100]);
    }
}
