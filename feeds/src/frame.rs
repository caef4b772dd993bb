//! Frame peel: link layer → IPv4 → UDP, without copying.
//!
//! Handles Ethernet II with any stack of 802.1Q / 802.1ad (QinQ) tags, Linux cooked captures (SLL),
//! raw IPv4 link types, IPv4 options (IHL > 5) and the UDP length field. Anything else (ARP, IPv6,
//! TCP, IP fragments) is "other traffic": [`peel_udp`] says which, so the caller can count it and
//! move on. Hard-coding "payload at offset 42" is the classic way IEX parsers break; this does not.

/// Link-layer types as numbered in pcap / pcapng (`LINKTYPE_*`).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum LinkType {
    /// `LINKTYPE_ETHERNET` (1).
    Ethernet,
    /// `LINKTYPE_RAW` (101) or `LINKTYPE_IPV4` (228): the frame starts with the IP header.
    RawIpv4,
    /// `LINKTYPE_LINUX_SLL` (113): Linux "cooked" capture, 16-byte header.
    LinuxSll,
    /// Anything else; frames of this link type are not peeled.
    Other(u32),
}

impl LinkType {
    /// Maps a pcap link-type number.
    pub const fn from_raw(raw: u32) -> Self {
        match raw {
            1 => LinkType::Ethernet,
            101 | 228 => LinkType::RawIpv4,
            113 => LinkType::LinuxSll,
            other => LinkType::Other(other),
        }
    }
}

/// A UDP datagram found inside a frame.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct UdpDatagram<'a> {
    /// IPv4 source address, network order as in the header.
    pub src_ip: [u8; 4],
    /// IPv4 destination address (the multicast group for IEX feeds).
    pub dst_ip: [u8; 4],
    /// UDP source port.
    pub src_port: u16,
    /// UDP destination port.
    pub dst_port: u16,
    /// The payload as the UDP length declares it, cut short if the capture was.
    pub payload: &'a [u8],
    /// Byte offset of the payload inside the frame.
    pub payload_offset: usize,
    /// Payload bytes the UDP header promised but the frame does not hold (truncated capture).
    pub missing: usize,
}

/// Why a frame is not a UDP datagram over IPv4, or is a damaged one.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum FrameError {
    /// Not IPv4: the EtherType found after any VLAN tags (0x86dd for IPv6 on a raw link).
    NotIpv4 {
        /// The EtherType after all VLAN tags.
        ethertype: u16,
    },
    /// IPv4, but not UDP.
    NotUdp {
        /// IP protocol number.
        protocol: u8,
    },
    /// An IPv4 fragment (other than a whole datagram): IEX never fragments.
    Fragment,
    /// The link type is not one this peeler knows.
    UnsupportedLinkType(u32),
    /// The frame ends inside a header.
    Truncated {
        /// Which header.
        layer: Layer,
        /// Offset in the frame where the header starts.
        offset: usize,
    },
    /// A header field is impossible (IHL < 5, IPv4 version ≠ 4, UDP length < 8).
    Malformed {
        /// Which header.
        layer: Layer,
        /// Offset in the frame of that header.
        offset: usize,
    },
}

impl FrameError {
    /// Whether the frame is simply not IPv4/UDP (other traffic, to count and skip) rather than a
    /// damaged one (a fault, to report with its location).
    pub const fn is_other_traffic(&self) -> bool {
        matches!(
            self,
            FrameError::NotIpv4 { .. }
                | FrameError::NotUdp { .. }
                | FrameError::Fragment
                | FrameError::UnsupportedLinkType(_)
        )
    }
}

/// A protocol layer, for error reports.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Layer {
    /// Ethernet or SLL header, VLAN tags included.
    Link,
    /// IPv4 header.
    Ipv4,
    /// UDP header.
    Udp,
}

impl core::fmt::Display for FrameError {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        match self {
            FrameError::NotIpv4 { ethertype } => {
                write!(f, "not IPv4 (ethertype 0x{ethertype:04x})")
            }
            FrameError::NotUdp { protocol } => write!(f, "not UDP (ip protocol {protocol})"),
            FrameError::Fragment => f.write_str("IPv4 fragment"),
            FrameError::UnsupportedLinkType(t) => write!(f, "unsupported link type {t}"),
            FrameError::Truncated { layer, offset } => {
                write!(f, "frame ends inside the {layer:?} header at byte {offset}")
            }
            FrameError::Malformed { layer, offset } => {
                write!(f, "malformed {layer:?} header at byte {offset}")
            }
        }
    }
}

const ETHERTYPE_IPV4: u16 = 0x0800;
const ETHERTYPE_VLAN: u16 = 0x8100;
const ETHERTYPE_QINQ: u16 = 0x88a8;
const ETHERTYPE_QINQ_OLD: u16 = 0x9100;
const IPPROTO_UDP: u8 = 17;

#[inline]
fn be16(b: &[u8], at: usize) -> Option<u16> {
    Some(u16::from_be_bytes([*b.get(at)?, *b.get(at + 1)?]))
}

/// Finds the UDP payload in one captured frame.
///
/// The payload is limited by the UDP length field, so Ethernet padding never leaks into it; when
/// the frame was cut short by the capture's snap length, `missing` says how much is absent.
#[inline]
pub fn peel_udp(link: LinkType, frame: &[u8]) -> Result<UdpDatagram<'_>, FrameError> {
    let ip_at = match link {
        LinkType::Ethernet => {
            let mut at = 12;
            let mut ethertype = be16(frame, at).ok_or(FrameError::Truncated { layer: Layer::Link, offset: 0 })?;
            while matches!(ethertype, ETHERTYPE_VLAN | ETHERTYPE_QINQ | ETHERTYPE_QINQ_OLD) {
                at += 4;
                ethertype = be16(frame, at).ok_or(FrameError::Truncated { layer: Layer::Link, offset: at - 4 })?;
            }
            if ethertype != ETHERTYPE_IPV4 {
                return Err(FrameError::NotIpv4 { ethertype });
            }
            at + 2
        }
        LinkType::LinuxSll => {
            let ethertype = be16(frame, 14).ok_or(FrameError::Truncated { layer: Layer::Link, offset: 0 })?;
            if ethertype != ETHERTYPE_IPV4 {
                return Err(FrameError::NotIpv4 { ethertype });
            }
            16
        }
        LinkType::RawIpv4 => 0,
        LinkType::Other(t) => return Err(FrameError::UnsupportedLinkType(t)),
    };
    let ip = frame.get(ip_at..).unwrap_or(&[]);
    if ip.len() < 20 {
        return Err(FrameError::Truncated { layer: Layer::Ipv4, offset: ip_at });
    }
    let (version, ihl) = (ip[0] >> 4, usize::from(ip[0] & 0x0f) * 4);
    if version == 6 && link == LinkType::RawIpv4 {
        // LINKTYPE_RAW carries IPv6 too: other traffic, not a broken IPv4 header.
        return Err(FrameError::NotIpv4 { ethertype: 0x86dd });
    }
    if version != 4 || ihl < 20 {
        return Err(FrameError::Malformed { layer: Layer::Ipv4, offset: ip_at });
    }
    if ip.len() < ihl {
        return Err(FrameError::Truncated { layer: Layer::Ipv4, offset: ip_at });
    }
    let flags_fragment = u16::from_be_bytes([ip[6], ip[7]]);
    if flags_fragment & 0x3fff != 0 {
        // More-fragments set, or a non-zero fragment offset.
        return Err(FrameError::Fragment);
    }
    if ip[9] != IPPROTO_UDP {
        return Err(FrameError::NotUdp { protocol: ip[9] });
    }
    let src_ip = [ip[12], ip[13], ip[14], ip[15]];
    let dst_ip = [ip[16], ip[17], ip[18], ip[19]];
    let udp_at = ip_at + ihl;
    let udp = &frame[udp_at..];
    if udp.len() < 8 {
        return Err(FrameError::Truncated { layer: Layer::Udp, offset: udp_at });
    }
    let udp_len = usize::from(u16::from_be_bytes([udp[4], udp[5]]));
    if udp_len < 8 {
        return Err(FrameError::Malformed { layer: Layer::Udp, offset: udp_at });
    }
    let want = udp_len - 8;
    let have = udp.len() - 8;
    let take = want.min(have);
    Ok(UdpDatagram {
        src_ip,
        dst_ip,
        src_port: u16::from_be_bytes([udp[0], udp[1]]),
        dst_port: u16::from_be_bytes([udp[2], udp[3]]),
        payload: &udp[8..8 + take],
        payload_offset: udp_at + 8,
        missing: want - take,
    })
}

/// Writes an Ethernet II + IPv4 + UDP frame around `payload` into `out` (cleared first).
///
/// For tests, fault injection and fuzz seeds. `vlans` adds that many 802.1Q tags (the outer one as
/// 802.1ad when there are two or more, as QinQ does); `ip_options` adds that many 4-byte words of
/// IPv4 options (NOPs).
#[cfg(feature = "std")]
pub fn write_udp_frame(out: &mut Vec<u8>, dst: ([u8; 4], u16), vlans: usize, ip_options: usize, payload: &[u8]) {
    out.clear();
    out.extend_from_slice(&[0x01, 0x00, 0x5e, dst.0[1] & 0x7f, dst.0[2], dst.0[3]]);
    out.extend_from_slice(&[0x02, 0, 0, 0, 0, 1]);
    for i in 0..vlans {
        let tpid = if vlans >= 2 && i == 0 { ETHERTYPE_QINQ } else { ETHERTYPE_VLAN };
        out.extend_from_slice(&tpid.to_be_bytes());
        out.extend_from_slice(&(100 + i as u16).to_be_bytes());
    }
    out.extend_from_slice(&ETHERTYPE_IPV4.to_be_bytes());
    let ihl = 5 + ip_options;
    let total = (ihl * 4 + 8 + payload.len()) as u16;
    out.push(0x40 | ihl as u8);
    out.push(0);
    out.extend_from_slice(&total.to_be_bytes());
    out.extend_from_slice(&[0, 0, 0x40, 0, 64, IPPROTO_UDP, 0, 0]);
    out.extend_from_slice(&[10, 0, 0, 1]);
    out.extend_from_slice(&dst.0);
    out.extend(core::iter::repeat_n(1u8, ip_options * 4));
    out.extend_from_slice(&40000u16.to_be_bytes());
    out.extend_from_slice(&dst.1.to_be_bytes());
    out.extend_from_slice(&((8 + payload.len()) as u16).to_be_bytes());
    out.extend_from_slice(&[0, 0]);
    out.extend_from_slice(payload);
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn plain_vlan_qinq_and_options_all_find_the_payload() {
        let payload = b"hello iex";
        let mut frame = Vec::new();
        for vlans in 0..3 {
            for opts in [0, 1, 10] {
                write_udp_frame(&mut frame, ([233, 215, 21, 4], 10378), vlans, opts, payload);
                let d = peel_udp(LinkType::Ethernet, &frame).unwrap();
                assert_eq!(d.payload, payload, "vlans {vlans} options {opts}");
                assert_eq!(d.dst_ip, [233, 215, 21, 4]);
                assert_eq!(d.dst_port, 10378);
                assert_eq!(d.missing, 0);
            }
        }
    }

    #[test]
    fn ethernet_padding_is_not_payload_and_truncation_is_reported() {
        let mut frame = Vec::new();
        write_udp_frame(&mut frame, ([1, 2, 3, 4], 5), 0, 0, b"ab");
        frame.extend_from_slice(&[0; 10]); // padding to the 60-byte minimum
        assert_eq!(peel_udp(LinkType::Ethernet, &frame).unwrap().payload, b"ab");
        write_udp_frame(&mut frame, ([1, 2, 3, 4], 5), 0, 0, b"abcdef");
        frame.truncate(frame.len() - 4);
        let d = peel_udp(LinkType::Ethernet, &frame).unwrap();
        assert_eq!((d.payload, d.missing), (&b"ab"[..], 4));
    }

    #[test]
    fn other_traffic_is_named() {
        let mut frame = Vec::new();
        write_udp_frame(&mut frame, ([1, 2, 3, 4], 5), 1, 0, b"x");
        frame[16] = 0x86; // inner ethertype -> IPv6
        frame[17] = 0xdd;
        assert_eq!(peel_udp(LinkType::Ethernet, &frame), Err(FrameError::NotIpv4 { ethertype: 0x86dd }));
        write_udp_frame(&mut frame, ([1, 2, 3, 4], 5), 0, 0, b"x");
        frame[23] = 6; // TCP
        assert_eq!(peel_udp(LinkType::Ethernet, &frame), Err(FrameError::NotUdp { protocol: 6 }));
        frame[23] = 17;
        frame[20] = 0x20; // more fragments
        assert_eq!(peel_udp(LinkType::Ethernet, &frame), Err(FrameError::Fragment));
        for cut in 0..frame.len() - 1 {
            let _ = peel_udp(LinkType::Ethernet, &frame[..cut]); // never panics
        }
        assert!(matches!(peel_udp(LinkType::Ethernet, &frame[..30]), Err(FrameError::Truncated { .. })));
    }
}
