//! Frame → IP/L4 facts the sample builders need. Link layers are stripped
//! by hand (etherparse has no SLL2 or BSD-null slicer and the headers are
//! trivial); the IP layer and TCP header are sliced with etherparse's lax
//! parsers so that snapped frames still yield their headers.

use etherparse::{ip_number, LaxIpSlice, TcpHeaderSlice};

use super::reader::{Frame, LinkType};

pub const ETH_IPV4: u16 = 0x0800;
pub const ETH_IPV6: u16 = 0x86dd;

/// IP addresses are kept as 16 bytes; IPv4 as IPv4-mapped IPv6
/// (`::ffff:a.b.c.d`) so one key type serves both families.
pub type Addr = [u8; 16];

pub fn v4_mapped(a: [u8; 4]) -> Addr {
    let mut o = [0u8; 16];
    o[10] = 0xff;
    o[11] = 0xff;
    o[12..].copy_from_slice(&a);
    o
}

pub fn addr_to_ip(a: &Addr) -> std::net::IpAddr {
    std::net::Ipv6Addr::from(*a).to_canonical()
}

pub fn ip_to_addr(ip: std::net::IpAddr) -> Addr {
    match ip {
        std::net::IpAddr::V4(v) => v4_mapped(v.octets()),
        std::net::IpAddr::V6(v) => v.octets(),
    }
}

/// Byte range inside the frame (offset, length); length 0 means absent.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Span {
    pub off: u16,
    pub len: u16,
}

/// What an IP packet contributes to images and flows.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct IpInfo {
    pub version: u8,
    pub src: Addr,
    pub dst: Addr,
    /// Start of the IP header in the frame.
    pub l3_off: u32,
    /// IPv4 header with options, or IPv6 header with extension headers.
    pub l3_len: u32,
    /// TCP header with options, 8 for UDP/ICMP/ICMPv6, 0 when absent
    /// (non-first fragment, other protocol, SCTP); cut to the captured bytes.
    pub l4_len: u32,
    /// Transport protocol (after IPv6 extension headers).
    pub proto: u8,
    pub sport: u16,
    pub dport: u16,
    /// ICMP/ICMPv6 type and the identifier field (bytes 4..6).
    pub icmp_type: u8,
    pub icmp_id: u16,
    /// Whether an L4 header was found (first fragment or unfragmented).
    pub has_l4: bool,
    /// Source and destination link-layer address bytes in the frame, for
    /// anonymisation.
    pub mac_src: Span,
    pub mac_dst: Span,
}

impl IpInfo {
    pub fn addr_len(&self) -> usize {
        if self.version == 4 {
            4
        } else {
            16
        }
    }
    /// Source and destination port of a TCP, UDP or SCTP packet whose
    /// transport header was seen.
    pub fn ports(&self) -> Option<(u16, u16)> {
        (self.has_l4 && matches!(self.proto, 6 | 17 | 132)).then_some((self.sport, self.dport))
    }
    /// Frame offsets of the source and destination IP address bytes.
    pub fn addr_offsets(&self) -> (usize, usize) {
        let o = self.l3_off as usize;
        if self.version == 4 {
            (o + 12, o + 16)
        } else {
            (o + 8, o + 24)
        }
    }
}

/// A frame with its parse result. `ip == None`: not an IP packet (ARP,
/// LLC, malformed IP), counted and skipped by the builders.
#[derive(Clone, Copy, Debug)]
pub struct ParsedPacket<'a> {
    pub ts_ns: u64,
    pub number: u64,
    pub link: LinkType,
    pub frame: &'a [u8],
    pub ip: Option<IpInfo>,
}

impl<'a> ParsedPacket<'a> {
    pub fn parse(f: &Frame<'a>) -> Self {
        ParsedPacket {
            ts_ns: f.ts_ns,
            number: f.number,
            link: f.link,
            frame: f.data,
            ip: parse_ip(f.link, f.data),
        }
    }
}

/// Finds the IP header: (offset, ether type, source MAC, destination MAC).
fn strip_link(link: LinkType, d: &[u8]) -> Option<(usize, u16, Span, Span)> {
    let none = Span::default();
    let (mut off, mut et, smac, dmac) = match link {
        LinkType::Ethernet => {
            if d.len() < 14 {
                return None;
            }
            (
                14,
                u16::from_be_bytes([d[12], d[13]]),
                Span { off: 6, len: 6 },
                Span { off: 0, len: 6 },
            )
        }
        LinkType::LinuxSll => {
            if d.len() < 16 {
                return None;
            }
            let halen = u16::from_be_bytes([d[4], d[5]]).min(8);
            (
                16,
                u16::from_be_bytes([d[14], d[15]]),
                Span { off: 6, len: halen },
                none,
            )
        }
        LinkType::LinuxSll2 => {
            if d.len() < 20 {
                return None;
            }
            let halen = (d[11] as u16).min(8);
            (
                20,
                u16::from_be_bytes([d[0], d[1]]),
                Span {
                    off: 12,
                    len: halen,
                },
                none,
            )
        }
        LinkType::Raw => match d.first()? >> 4 {
            4 => (0, ETH_IPV4, none, none),
            6 => (0, ETH_IPV6, none, none),
            _ => return None,
        },
        LinkType::Ipv4 => (0, ETH_IPV4, none, none),
        LinkType::Ipv6 => (0, ETH_IPV6, none, none),
        LinkType::Null | LinkType::Loop => {
            if d.len() < 4 {
                return None;
            }
            let b = [d[0], d[1], d[2], d[3]];
            let mut af = if link == LinkType::Loop {
                u32::from_be_bytes(b)
            } else {
                u32::from_le_bytes(b)
            };
            // The writer's byte order is not recorded; AF values are small.
            if af > 0xffff {
                af = af.swap_bytes();
            }
            let et = match af {
                2 => ETH_IPV4,
                10 | 24 | 28 | 30 => ETH_IPV6,
                _ => return None,
            };
            (4, et, none, none)
        }
    };
    // 802.1Q, 802.1ad (QinQ) and the old 0x9100 QinQ tag.
    while matches!(et, 0x8100 | 0x88a8 | 0x9100) {
        if d.len() < off + 4 {
            return None;
        }
        et = u16::from_be_bytes([d[off + 2], d[off + 3]]);
        off += 4;
    }
    Some((off, et, smac, dmac))
}

/// Parses the IP and L4 headers of a frame. Never panics on any input.
/// Whether the IPv6 extension headers `exts` (first of type `next`) hold
/// no fragment header or one at offset 0. Walked here with bounds checks:
/// etherparse 0.19's extension iterator reads past the end of a lax slice
/// whose last header names a next extension that was cut off (found by
/// fuzzing: fuzz/regressions/builders/).
fn v6_first_fragment(mut next: u8, mut exts: &[u8]) -> bool {
    const HOP_BY_HOP: u8 = 0;
    const ROUTE: u8 = 43;
    const FRAG: u8 = 44;
    const AUTH: u8 = 51;
    const DEST_OPTIONS: u8 = 60;
    let mut first = true;
    while exts.len() >= 8 {
        let len = match next {
            HOP_BY_HOP | ROUTE | DEST_OPTIONS => (exts[1] as usize + 1) * 8,
            FRAG => {
                first = u16::from_be_bytes([exts[2], exts[3]]) >> 3 == 0;
                8
            }
            AUTH => (exts[1] as usize + 2) * 4,
            _ => break,
        };
        next = exts[0];
        exts = exts.get(len..).unwrap_or(&[]);
    }
    first
}

pub fn parse_ip(link: LinkType, d: &[u8]) -> Option<IpInfo> {
    let (l3_off, et, mac_src, mac_dst) = strip_link(link, d)?;
    if et != ETH_IPV4 && et != ETH_IPV6 {
        return None;
    }
    let l3 = &d[l3_off..];
    let (ip, _) = LaxIpSlice::from_slice(l3).ok()?;
    let base = l3.as_ptr() as usize;
    let (version, src, dst, l3_len, first_fragment) = match &ip {
        LaxIpSlice::Ipv4(v4) => {
            let h = v4.header();
            let first = h.fragments_offset().value() == 0;
            let src = v4_mapped(h.source());
            let dst = v4_mapped(h.destination());
            (4u8, src, dst, h.slice().len(), first)
        }
        LaxIpSlice::Ipv6(v6) => {
            let h = v6.header();
            let first = v6_first_fragment(h.next_header().0, v6.extensions().slice());
            let hdr_and_ext = v6.payload().payload.as_ptr() as usize - base;
            (6u8, h.source(), h.destination(), hdr_and_ext, first)
        }
    };
    let payload = ip.payload();
    let proto = payload.ip_number.0;
    // The lax slicer ends the payload at the IP length (dropping an
    // Ethernet FCS trailer) or at the snap length.
    let l4 = if first_fragment {
        payload.payload
    } else {
        &[][..]
    };
    let mut info = IpInfo {
        version,
        src,
        dst,
        l3_off: l3_off as u32,
        l3_len: l3_len as u32,
        l4_len: 0,
        proto,
        sport: 0,
        dport: 0,
        icmp_type: 0,
        icmp_id: 0,
        has_l4: false,
        mac_src,
        mac_dst,
    };
    if !first_fragment {
        return Some(info);
    }
    match proto {
        p if p == ip_number::TCP.0 => {
            info.l4_len = match TcpHeaderSlice::from_slice(l4) {
                Ok(t) => t.slice().len(),
                // Snapped inside the options: keep what was captured.
                Err(_) if l4.len() >= 13 => {
                    ((l4[12] >> 4) as usize * 4).clamp(20, 60).min(l4.len())
                }
                Err(_) => l4.len().min(20),
            } as u32;
            ports(&mut info, l4);
        }
        p if p == ip_number::UDP.0 => {
            info.l4_len = l4.len().min(8) as u32;
            ports(&mut info, l4);
        }
        // SCTP's common header starts with the ports, which key its flows;
        // image rows keep only its L3 header (MODELS.md §1), so l4_len stays 0.
        p if p == ip_number::SCTP.0 => ports(&mut info, l4),
        p if p == ip_number::ICMP.0 || p == ip_number::IPV6_ICMP.0 => {
            info.l4_len = l4.len().min(8) as u32;
            if !l4.is_empty() {
                info.has_l4 = true;
                info.icmp_type = l4[0];
            }
            if l4.len() >= 6 {
                info.icmp_id = u16::from_be_bytes([l4[4], l4[5]]);
            }
        }
        _ => {}
    }
    Some(info)
}

fn ports(info: &mut IpInfo, l4: &[u8]) {
    if l4.len() >= 4 {
        info.has_l4 = true;
        info.sport = u16::from_be_bytes([l4[0], l4[1]]);
        info.dport = u16::from_be_bytes([l4[2], l4[3]]);
    }
}
