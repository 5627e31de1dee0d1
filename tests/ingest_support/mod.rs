//! Builders for small captures and frames used by the ingest tests.
#![allow(dead_code)]

use std::path::PathBuf;

/// The shared data directory, or `None` (with the reason printed) when the
/// real captures are not present.
pub fn data_dir() -> Option<PathBuf> {
    let d = std::env::var_os("GPU_NIDS_DATA")
        .map(PathBuf::from)
        .unwrap_or_else(|| PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../shared/data"));
    if d.join("labels.csv").is_file() {
        Some(d)
    } else {
        eprintln!(
            "skipping: real captures not found at {} (set GPU_NIDS_DATA)",
            d.display()
        );
        None
    }
}

pub fn hex(s: &str) -> Vec<u8> {
    (0..s.len())
        .step_by(2)
        .map(|i| u8::from_str_radix(&s[i..i + 2], 16).unwrap())
        .collect()
}

pub fn ipv4_header(
    src: [u8; 4],
    dst: [u8; 4],
    proto: u8,
    payload_len: usize,
    options: &[u8],
    frag: u16,
) -> Vec<u8> {
    let ihl = 5 + options.len() / 4;
    let mut h = vec![0u8; 20];
    h[0] = 0x40 | ihl as u8;
    h[2..4].copy_from_slice(&((ihl * 4 + payload_len) as u16).to_be_bytes());
    h[4..6].copy_from_slice(&0x1234u16.to_be_bytes());
    h[6..8].copy_from_slice(&frag.to_be_bytes());
    h[8] = 64;
    h[9] = proto;
    h[12..16].copy_from_slice(&src);
    h[16..20].copy_from_slice(&dst);
    h.extend_from_slice(options);
    h
}

pub fn tcp_header(sport: u16, dport: u16, options: &[u8]) -> Vec<u8> {
    let mut t = vec![0u8; 20];
    t[0..2].copy_from_slice(&sport.to_be_bytes());
    t[2..4].copy_from_slice(&dport.to_be_bytes());
    t[4..8].copy_from_slice(&7u32.to_be_bytes());
    t[12] = ((5 + options.len() / 4) as u8) << 4;
    t[13] = 0x02;
    t[14..16].copy_from_slice(&1024u16.to_be_bytes());
    t.extend_from_slice(options);
    t
}

pub fn udp_header(sport: u16, dport: u16, payload_len: usize) -> Vec<u8> {
    let mut u = vec![0u8; 8];
    u[0..2].copy_from_slice(&sport.to_be_bytes());
    u[2..4].copy_from_slice(&dport.to_be_bytes());
    u[4..6].copy_from_slice(&((8 + payload_len) as u16).to_be_bytes());
    u
}

pub fn ethernet(ethertype: u16, body: &[u8]) -> Vec<u8> {
    let mut f = vec![
        0xaa, 0xbb, 0xcc, 0xdd, 0xee, 0x01, 0x02, 0x11, 0x22, 0x33, 0x44, 0x55,
    ];
    f.extend_from_slice(&ethertype.to_be_bytes());
    f.extend_from_slice(body);
    f
}

pub fn ipv4_tcp_packet(
    src: [u8; 4],
    dst: [u8; 4],
    sport: u16,
    dport: u16,
    payload: &[u8],
) -> Vec<u8> {
    let t = tcp_header(sport, dport, &[]);
    let mut p = ipv4_header(src, dst, 6, t.len() + payload.len(), &[], 0);
    p.extend_from_slice(&t);
    p.extend_from_slice(payload);
    p
}

pub fn eth_ipv4_tcp(src: [u8; 4], dst: [u8; 4], sport: u16, dport: u16, payload: &[u8]) -> Vec<u8> {
    ethernet(0x0800, &ipv4_tcp_packet(src, dst, sport, dport, payload))
}

pub fn ipv6_udp_packet(
    src: [u8; 16],
    dst: [u8; 16],
    sport: u16,
    dport: u16,
    payload: &[u8],
) -> Vec<u8> {
    let mut h = vec![0u8; 40];
    h[0] = 0x60;
    h[4..6].copy_from_slice(&((8 + payload.len()) as u16).to_be_bytes());
    h[6] = 17;
    h[7] = 64;
    h[8..24].copy_from_slice(&src);
    h[24..40].copy_from_slice(&dst);
    h.extend_from_slice(&udp_header(sport, dport, payload.len()));
    h.extend_from_slice(payload);
    h
}

/// Classic pcap, little-endian, microseconds; records (ts ns, frame).
pub fn pcap_le_us(linktype: u32, recs: &[(u64, Vec<u8>)]) -> Vec<u8> {
    pcap(linktype, recs, false, false)
}

pub fn pcap(linktype: u32, recs: &[(u64, Vec<u8>)], big: bool, nanos: bool) -> Vec<u8> {
    let w32 = |v: u32| {
        if big {
            v.to_be_bytes()
        } else {
            v.to_le_bytes()
        }
    };
    let w16 = |v: u16| {
        if big {
            v.to_be_bytes()
        } else {
            v.to_le_bytes()
        }
    };
    let mut o = Vec::new();
    o.extend_from_slice(&w32(if nanos { 0xa1b2_3c4d } else { 0xa1b2_c3d4 }));
    o.extend_from_slice(&w16(2));
    o.extend_from_slice(&w16(4));
    o.extend_from_slice(&[0; 8]);
    o.extend_from_slice(&w32(65535));
    o.extend_from_slice(&w32(linktype));
    for (ts, f) in recs {
        let frac = if nanos {
            ts % 1_000_000_000
        } else {
            ts % 1_000_000_000 / 1000
        };
        o.extend_from_slice(&w32((ts / 1_000_000_000) as u32));
        o.extend_from_slice(&w32(frac as u32));
        o.extend_from_slice(&w32(f.len() as u32));
        o.extend_from_slice(&w32(f.len() as u32));
        o.extend_from_slice(f);
    }
    o
}

fn ng_block(t: u32, body: &[u8]) -> Vec<u8> {
    let pad = (4 - body.len() % 4) % 4;
    let len = (12 + body.len() + pad) as u32;
    let mut o = Vec::new();
    o.extend_from_slice(&t.to_le_bytes());
    o.extend_from_slice(&len.to_le_bytes());
    o.extend_from_slice(body);
    o.extend_from_slice(&vec![0; pad]);
    o.extend_from_slice(&len.to_le_bytes());
    o
}

pub enum NgPacket {
    /// Enhanced packet block: interface, raw timestamp units, frame.
    Epb(u32, u64, Vec<u8>),
    /// Simple packet block (interface 0, no timestamp).
    Spb(Vec<u8>),
}

/// Little-endian pcapng: interfaces as (linktype, tsresol option), then
/// packets.
pub fn pcapng(ifaces: &[(u16, Option<u8>)], pkts: &[NgPacket]) -> Vec<u8> {
    let mut shb = Vec::new();
    shb.extend_from_slice(&0x1a2b_3c4du32.to_le_bytes());
    shb.extend_from_slice(&1u16.to_le_bytes());
    shb.extend_from_slice(&0u16.to_le_bytes());
    shb.extend_from_slice(&(-1i64).to_le_bytes());
    let mut o = ng_block(0x0a0d_0d0a, &shb);
    for (lt, res) in ifaces {
        let mut b = Vec::new();
        b.extend_from_slice(&lt.to_le_bytes());
        b.extend_from_slice(&0u16.to_le_bytes());
        b.extend_from_slice(&65535u32.to_le_bytes());
        if let Some(r) = res {
            b.extend_from_slice(&9u16.to_le_bytes());
            b.extend_from_slice(&1u16.to_le_bytes());
            b.extend_from_slice(&[*r, 0, 0, 0]);
            b.extend_from_slice(&[0, 0, 0, 0]);
        }
        o.extend_from_slice(&ng_block(1, &b));
    }
    for p in pkts {
        match p {
            NgPacket::Epb(i, ts, f) => {
                let mut b = Vec::new();
                b.extend_from_slice(&i.to_le_bytes());
                b.extend_from_slice(&((ts >> 32) as u32).to_le_bytes());
                b.extend_from_slice(&(*ts as u32).to_le_bytes());
                b.extend_from_slice(&(f.len() as u32).to_le_bytes());
                b.extend_from_slice(&(f.len() as u32).to_le_bytes());
                b.extend_from_slice(f);
                b.extend_from_slice(&vec![0; (4 - f.len() % 4) % 4]);
                o.extend_from_slice(&ng_block(6, &b));
            }
            NgPacket::Spb(f) => {
                let mut b = Vec::new();
                b.extend_from_slice(&(f.len() as u32).to_le_bytes());
                b.extend_from_slice(f);
                o.extend_from_slice(&ng_block(3, &b));
            }
        }
    }
    o
}
