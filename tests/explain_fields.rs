//! Header-field names of image rows and flow rows, on hand-decoded packets,
//! and how weights and occlusion scores become an explanation.

use gpu_nids::explain::fields::{frame_row, image_row, PAD};
use gpu_nids::explain::{flow_occlusions, from_occlusions, Explanation};

/// IPv4 header of `ihl` words (options 0x01 NOP), protocol `proto`, total length `len`.
fn ipv4(ihl: u8, proto: u8, len: u16) -> Vec<u8> {
    let mut h = vec![
        0x40 | ihl,
        0x10,
        0,
        0,
        0x12,
        0x34,
        0x40,
        0x00,
        64,
        proto,
        0xab,
        0xcd,
        10,
        0,
        0,
        1,
        10,
        0,
        0,
        2,
    ];
    h[2..4].copy_from_slice(&len.to_be_bytes());
    h.resize(ihl as usize * 4, 0x01);
    h
}

/// TCP header with data offset `off` words (options NOP), SYN.
fn tcp(off: u8) -> Vec<u8> {
    let mut h = vec![
        0x30,
        0x39,
        0x00,
        0x50,
        0,
        0,
        0,
        1,
        0,
        0,
        0,
        0,
        off << 4,
        0x02,
        0xff,
        0xff,
        0x12,
        0x34,
        0,
        0,
    ];
    h.resize(off as usize * 4, 0x01);
    h
}

fn image(bytes: &[u8]) -> Vec<u8> {
    let mut r = bytes.to_vec();
    r.resize(64, 255);
    r
}

/// Names of the ranges, in order, as (name, first byte, length).
fn runs(names: &[&'static str]) -> Vec<(&'static str, usize, usize)> {
    let mut out: Vec<(&'static str, usize, usize)> = Vec::new();
    for (i, &n) in names.iter().enumerate() {
        match out.last_mut() {
            Some(last) if last.0 == n => last.2 += 1,
            _ => out.push((n, i, 1)),
        }
    }
    out
}

#[test]
fn image_row_ipv4_tcp_with_options() {
    // 24-byte IP header (4 bytes of options), 32-byte TCP header (12 of options).
    let mut p = ipv4(6, 6, 24 + 32);
    p.extend(tcp(8));
    let names = image_row(&image(&p));
    assert_eq!(
        runs(&names),
        vec![
            ("ip.version_ihl", 0, 1),
            ("ip.tos", 1, 1),
            ("ip.len", 2, 2),
            ("ip.id", 4, 2),
            ("ip.flags_frag", 6, 2),
            ("ip.ttl", 8, 1),
            ("ip.proto", 9, 1),
            ("ip.checksum", 10, 2),
            ("ip.src", 12, 4),
            ("ip.dst", 16, 4),
            ("ip.options", 20, 4),
            ("tcp.sport", 24, 2),
            ("tcp.dport", 26, 2),
            ("tcp.seq", 28, 4),
            ("tcp.ack", 32, 4),
            ("tcp.offset", 36, 1),
            ("tcp.flags", 37, 1),
            ("tcp.window", 38, 2),
            ("tcp.checksum", 40, 2),
            ("tcp.urg", 42, 2),
            ("tcp.options", 44, 12),
            (PAD, 56, 8),
        ]
    );
}

#[test]
fn image_row_ipv6_udp() {
    let mut p = vec![0x60, 0, 0, 0, 0, 8, 17, 255];
    p.extend([0xfe; 16]);
    p.extend([0xfd; 16]);
    p.extend([0, 53, 0x30, 0x39, 0, 8, 0xaa, 0xbb]);
    let names = image_row(&image(&p));
    assert_eq!(
        runs(&names),
        vec![
            ("ipv6.version_class_flow", 0, 4),
            ("ipv6.payload_len", 4, 2),
            ("ipv6.next_header", 6, 1),
            ("ipv6.hop_limit", 7, 1),
            ("ipv6.src", 8, 16),
            ("ipv6.dst", 24, 16),
            ("udp.sport", 40, 2),
            ("udp.dport", 42, 2),
            ("udp.len", 44, 2),
            ("udp.checksum", 46, 2),
            (PAD, 48, 16),
        ]
    );
    // A hop-by-hop extension header (8 bytes) before UDP.
    let mut q = p[..40].to_vec();
    q[6] = 0;
    q.extend([17, 0, 0, 0, 0, 0, 0, 0]);
    q.extend(&p[40..]);
    let r = runs(&image_row(&image(&q)));
    assert!(r.contains(&("ipv6.ext", 40, 8)), "{r:?}");
    assert!(r.contains(&("udp.sport", 48, 2)), "{r:?}");
}

#[test]
fn image_row_icmp_and_a_missing_row() {
    let mut p = ipv4(5, 1, 28);
    p.extend([8, 0, 0xf7, 0xff, 0, 1, 0, 1]);
    let r = runs(&image_row(&image(&p)));
    assert_eq!(
        &r[10..],
        &[
            ("icmp.type", 20, 1),
            ("icmp.code", 21, 1),
            ("icmp.checksum", 22, 2),
            ("icmp.rest", 24, 4),
            (PAD, 28, 36),
        ]
    );
    assert!(image_row(&[255; 64]).iter().all(|&n| n == PAD));
}

#[test]
fn frame_row_ethernet_ipv4_tcp() {
    // 14 + 20 + 20 + 10 bytes of payload = 64; the sample row is 80, zero-padded.
    let mut f = vec![2, 0, 0, 0, 0, 1, 2, 0, 0, 0, 0, 2, 0x08, 0x00];
    f.extend(ipv4(5, 6, 50));
    f.extend(tcp(5));
    f.extend([0x41; 10]);
    f.resize(80, 0);
    let r = runs(&frame_row(&f));
    assert_eq!(
        &r[..3],
        &[("eth.dst", 0, 6), ("eth.src", 6, 6), ("eth.type", 12, 2)]
    );
    assert!(r.contains(&("ip.ttl", 22, 1)), "{r:?}");
    assert!(r.contains(&("tcp.flags", 14 + 20 + 13, 1)), "{r:?}");
    assert_eq!(&r[r.len() - 2..], &[("payload", 54, 10), (PAD, 64, 16)]);
    // The same behind an 802.1Q tag.
    let mut v = f[..12].to_vec();
    v.extend([0x81, 0x00, 0x00, 0x05]);
    v.extend(&f[12..76]);
    let r = runs(&frame_row(&v));
    assert_eq!(
        &r[2..5],
        &[
            ("vlan.tpid", 12, 2),
            ("vlan.tci", 14, 2),
            ("eth.type", 16, 2)
        ]
    );
    assert!(r.contains(&("ip.ttl", 26, 1)), "{r:?}");
    assert!(frame_row(&[0; 80]).iter().all(|&n| n == PAD));
}

#[test]
fn weights_become_shares_of_fields_and_packets() {
    let w = [
        (0, "ip.ttl", 3.0),
        (1, "ip.ttl", 1.0),
        (1, "tcp.flags", 2.0),
        (2, PAD, 4.0),
    ];
    let e = Explanation::from_weights(&w, 2);
    assert_eq!(
        e.fields,
        vec![("ip.ttl".to_string(), 0.4), (PAD.to_string(), 0.4)]
    );
    assert_eq!(e.packets, vec![(0, 0.3), (1, 0.3)]);
    let (f, p) = e.to_cells();
    assert_eq!(
        (f.as_str(), p.as_str()),
        ("ip.ttl:0.400;pad:0.400", "0:0.300;1:0.300")
    );
}

#[test]
fn occlusions_cover_nonzero_fields_and_whole_packets() {
    let mut f = vec![2, 0, 0, 0, 0, 1, 2, 0, 0, 0, 0, 2, 0x08, 0x00];
    f.extend(ipv4(5, 6, 40));
    f.extend(tcp(5));
    f.resize(80, 0);
    let mut sample = f.clone();
    sample.extend([0; 80]); // a flow of one packet, n = 2
    let occ = flow_occlusions(&sample, 2, 80);
    assert!(occ.iter().all(|o| o.packet == 0));
    let ttl = occ.iter().position(|o| o.field == Some("ip.ttl")).unwrap();
    assert_eq!(occ[ttl].bytes, vec![22]);
    // tcp.ack is all zero: zeroing it changes nothing, so it is not tried.
    assert!(!occ.iter().any(|o| o.field == Some("tcp.ack")));
    assert_eq!(occ.last().unwrap().field, None);
    // Zeroing ttl drops the score most; a raise counts as nothing.
    let mut scores = vec![10.0; occ.len()];
    scores[ttl] = 4.0;
    scores[0] = 12.0;
    *scores.last_mut().unwrap() = 1.0;
    let e = from_occlusions(10.0, &occ, &scores, 3);
    assert_eq!(e.fields, vec![("ip.ttl".to_string(), 1.0)]);
    assert_eq!(e.packets, vec![(0, 1.0)]);
}

#[test]
fn frame_row_ipv6_udp_and_an_ipv4_later_fragment() {
    let mut f = vec![2, 0, 0, 0, 0, 1, 2, 0, 0, 0, 0, 2, 0x86, 0xdd];
    f.extend([0x60, 0, 0, 0, 0, 12, 17, 64]);
    f.extend([0xfe; 32]);
    f.extend([0, 53, 0x30, 0x39, 0, 12, 0xaa, 0xbb, 1, 2, 3, 4]);
    f.resize(80, 0);
    let r = runs(&frame_row(&f));
    assert!(r.contains(&("ipv6.hop_limit", 21, 1)), "{r:?}");
    assert!(r.contains(&("udp.len", 58, 2)), "{r:?}");
    assert_eq!(&r[r.len() - 2..], &[("payload", 62, 4), (PAD, 66, 14)]);
    // A later IPv4 fragment: no L4 header, the image row ends with the IP header.
    let mut p = ipv4(5, 6, 40);
    p[6..8].copy_from_slice(&0x0010u16.to_be_bytes());
    p.extend([0x30; 20]);
    let r = runs(&image_row(&image(&p)));
    assert_eq!(r.last(), Some(&(PAD, 20, 44)), "{r:?}");
}
