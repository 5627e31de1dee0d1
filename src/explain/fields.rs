//! Names of the header field each byte of a sample row belongs to, decoded
//! from the row's own bytes: an image row starts at the IP header (docs/MODELS.md
//! §1), a flow row at the Ethernet header (§3). Pure byte work, no model.

/// Padding columns: 255 past an image row's headers, 0 past a flow row's frame.
pub const PAD: &str = "pad";

const ETH_IPV4: u16 = 0x0800;
const ETH_IPV6: u16 = 0x86dd;

/// Field names of an image row (L3 header, then L4 header, then 255s), one
/// per byte. A row of 255s only (no packet) is all [`PAD`].
pub fn image_row(row: &[u8]) -> Vec<&'static str> {
    let mut names = vec![PAD; row.len()];
    if row.iter().all(|&b| b == 255) {
        return names;
    }
    ip_and_l4(row, 0, None, &mut names);
    names
}

/// Field names of a flow row (the frame's first bytes, zero-padded), one
/// per byte, assuming an Ethernet frame (with any 802.1Q / 802.1ad tags).
/// A row of zeros only (a flow shorter than n packets) is all [`PAD`].
pub fn frame_row(row: &[u8]) -> Vec<&'static str> {
    let mut names = vec![PAD; row.len()];
    if row.iter().all(|&b| b == 0) {
        return names;
    }
    let mut set = |range: std::ops::Range<usize>, name: &'static str| {
        for n in names.iter_mut().take(range.end).skip(range.start) {
            *n = name;
        }
    };
    set(0..6, "eth.dst");
    set(6..12, "eth.src");
    let mut off = 12;
    let mut et = be16(row, off);
    while matches!(et, Some(0x8100 | 0x88a8 | 0x9100)) {
        set(off..off + 2, "vlan.tpid");
        set(off + 2..off + 4, "vlan.tci");
        off += 4;
        et = be16(row, off);
    }
    set(off..off + 2, "eth.type");
    let l3 = off + 2;
    let version = match et {
        Some(ETH_IPV4) => 4,
        Some(ETH_IPV6) => 6,
        _ => {
            set(l3..row.len(), "eth.payload");
            return trim_frame_padding(row, names);
        }
    };
    // The frame ends where the IP header says; bytes past it are the
    // Ethernet trailer or the sample's zero padding.
    let ip_end = match version {
        4 => be16(row, l3 + 2).map(|n| l3 + n as usize),
        _ => be16(row, l3 + 4).map(|n| l3 + 40 + n as usize),
    }
    // A length under the fixed header (0 from segmentation offload) says nothing.
    .filter(|&e| e >= l3 + if version == 4 { 20 } else { 40 });
    ip_and_l4(row, l3, Some(version), &mut names);
    let end = ip_end.unwrap_or(row.len()).min(row.len());
    for n in names.iter_mut().skip(end) {
        *n = PAD;
    }
    names
}

fn trim_frame_padding(row: &[u8], mut names: Vec<&'static str>) -> Vec<&'static str> {
    let end = row.iter().rposition(|&b| b != 0).map_or(0, |i| i + 1);
    for n in names.iter_mut().skip(end.max(14)) {
        *n = PAD;
    }
    names
}

fn be16(row: &[u8], i: usize) -> Option<u16> {
    Some(u16::from_be_bytes([*row.get(i)?, *row.get(i + 1)?]))
}

/// Names the IP header at `l3` and the L4 header after it; in an image row
/// (`version` None) the version comes from the row and bytes past the
/// headers stay [`PAD`]; in a frame they are `payload`.
fn ip_and_l4(row: &[u8], l3: usize, version: Option<u8>, names: &mut [&'static str]) {
    let len = names.len();
    let mut set = |start: usize, end: usize, name: &'static str| {
        for n in names.iter_mut().take(end.min(len)).skip(start.min(len)) {
            *n = name;
        }
    };
    let Some(&b0) = row.get(l3) else {
        return;
    };
    let in_frame = version.is_some();
    let (proto, l4) = match version.unwrap_or(b0 >> 4) {
        4 => {
            let ihl = ((b0 & 0x0f) as usize * 4).max(20);
            set(l3, l3 + 1, "ip.version_ihl");
            set(l3 + 1, l3 + 2, "ip.tos");
            set(l3 + 2, l3 + 4, "ip.len");
            set(l3 + 4, l3 + 6, "ip.id");
            set(l3 + 6, l3 + 8, "ip.flags_frag");
            set(l3 + 8, l3 + 9, "ip.ttl");
            set(l3 + 9, l3 + 10, "ip.proto");
            set(l3 + 10, l3 + 12, "ip.checksum");
            set(l3 + 12, l3 + 16, "ip.src");
            set(l3 + 16, l3 + 20, "ip.dst");
            set(l3 + 20, l3 + ihl, "ip.options");
            let frag_off = be16(row, l3 + 6).map_or(0, |v| v & 0x1fff);
            let proto = row.get(l3 + 9).copied();
            // A later fragment carries no L4 header.
            (if frag_off == 0 { proto } else { None }, l3 + ihl)
        }
        6 => {
            set(l3, l3 + 4, "ipv6.version_class_flow");
            set(l3 + 4, l3 + 6, "ipv6.payload_len");
            set(l3 + 6, l3 + 7, "ipv6.next_header");
            set(l3 + 7, l3 + 8, "ipv6.hop_limit");
            set(l3 + 8, l3 + 24, "ipv6.src");
            set(l3 + 24, l3 + 40, "ipv6.dst");
            let mut next = row.get(l3 + 6).copied();
            let mut off = l3 + 40;
            // Extension headers, as ingest counts them into the L3 header.
            loop {
                let ext_len = match next {
                    Some(0 | 43 | 60 | 135 | 139 | 140) => {
                        row.get(off + 1).map(|&b| (b as usize + 1) * 8)
                    }
                    Some(44) => Some(8),
                    Some(51) => row.get(off + 1).map(|&b| (b as usize + 2) * 4),
                    _ => break,
                };
                let Some(ext_len) = ext_len else {
                    next = None;
                    break;
                };
                let fragment = next == Some(44);
                set(off, off + ext_len, "ipv6.ext");
                if fragment && be16(row, off + 2).is_some_and(|v| v >> 3 != 0) {
                    next = None;
                    off += ext_len;
                    break;
                }
                next = row.get(off).copied();
                off += ext_len;
            }
            (next, off)
        }
        _ => {
            set(l3, len, if in_frame { "ip.unknown" } else { "l3.unknown" });
            return;
        }
    };
    let end = match proto {
        Some(6) => {
            let off = row
                .get(l4 + 12)
                .map_or(20, |&b| ((b >> 4) as usize * 4).max(20));
            set(l4, l4 + 2, "tcp.sport");
            set(l4 + 2, l4 + 4, "tcp.dport");
            set(l4 + 4, l4 + 8, "tcp.seq");
            set(l4 + 8, l4 + 12, "tcp.ack");
            set(l4 + 12, l4 + 13, "tcp.offset");
            set(l4 + 13, l4 + 14, "tcp.flags");
            set(l4 + 14, l4 + 16, "tcp.window");
            set(l4 + 16, l4 + 18, "tcp.checksum");
            set(l4 + 18, l4 + 20, "tcp.urg");
            set(l4 + 20, l4 + off, "tcp.options");
            l4 + off
        }
        Some(17) => {
            set(l4, l4 + 2, "udp.sport");
            set(l4 + 2, l4 + 4, "udp.dport");
            set(l4 + 4, l4 + 6, "udp.len");
            set(l4 + 6, l4 + 8, "udp.checksum");
            l4 + 8
        }
        Some(1) => {
            set(l4, l4 + 1, "icmp.type");
            set(l4 + 1, l4 + 2, "icmp.code");
            set(l4 + 2, l4 + 4, "icmp.checksum");
            set(l4 + 4, l4 + 8, "icmp.rest");
            l4 + 8
        }
        Some(58) => {
            set(l4, l4 + 1, "icmpv6.type");
            set(l4 + 1, l4 + 2, "icmpv6.code");
            set(l4 + 2, l4 + 4, "icmpv6.checksum");
            set(l4 + 4, l4 + 8, "icmpv6.rest");
            l4 + 8
        }
        // Other protocols: the image holds the L3 header only.
        _ => l4,
    };
    if in_frame {
        set(end, len, "payload");
    }
}
