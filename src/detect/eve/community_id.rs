//! Community ID v1 (corelight/community-id-spec): a flow hash that Zeek,
//! Suricata, Elastic and others compute identically, so an alert can be
//! joined with their records of the same flow.
//!
//! SHA-1 over seed (2 bytes, big-endian) ‖ source address ‖ destination
//! address ‖ protocol ‖ 0 ‖ source port ‖ destination port, with the
//! endpoints ordered so that the smaller (address, port) comes first, then
//! base64 with the prefix "1:". ICMP and ICMPv6 use type and code (or the
//! counterpart type of a request/response pair) as ports.

use std::net::IpAddr;

use sha1::{Digest, Sha1};

pub const PROTO_ICMP: u8 = 1;
pub const PROTO_TCP: u8 = 6;
pub const PROTO_UDP: u8 = 17;
pub const PROTO_ICMP6: u8 = 58;
pub const PROTO_SCTP: u8 = 132;

/// Counterpart of an ICMPv4 type that is half of a request/response pair.
/// The table is the reference implementation's (and Zeek's
/// `ICMP4_counterpart`): router solicitation maps to advertisement but not
/// back, so an advertisement counts as one-way.
fn icmp4_counterpart(t: u8) -> Option<u8> {
    Some(match t {
        8 => 0,
        0 => 8,
        13 => 14,
        14 => 13,
        15 => 16,
        16 => 15,
        10 => 9,
        17 => 18,
        18 => 17,
        _ => return None,
    })
}

fn icmp6_counterpart(t: u8) -> Option<u8> {
    Some(match t {
        128 => 129,
        129 => 128,
        133 => 134,
        134 => 133,
        135 => 136,
        136 => 135,
        130 => 131,
        131 => 130,
        139 => 140,
        140 => 139,
        144 => 145,
        145 => 144,
        _ => return None,
    })
}

/// ICMP type and code as the spec's port pair: (type, counterpart) for
/// request/response messages, else (type, code) and one-way.
pub fn icmp_ports(proto: u8, icmp_type: u8, icmp_code: u8) -> (u16, u16, bool) {
    let c = if proto == PROTO_ICMP6 {
        icmp6_counterpart(icmp_type)
    } else {
        icmp4_counterpart(icmp_type)
    };
    match c {
        Some(c) => (icmp_type as u16, c as u16, false),
        None => (icmp_type as u16, icmp_code as u16, true),
    }
}

fn addr_bytes(a: &IpAddr) -> Vec<u8> {
    match a {
        IpAddr::V4(v) => v.octets().to_vec(),
        IpAddr::V6(v) => v.octets().to_vec(),
    }
}

/// Community ID v1 of one flow. `ports`: TCP/UDP/SCTP ports, or for
/// ICMP/ICMPv6 the (type, code) of the packet, mapped here; `None` for
/// protocols without ports. Mixed address families are hashed as given
/// (no real flow has them).
pub fn community_id_v1(
    seed: u16,
    src: IpAddr,
    dst: IpAddr,
    proto: u8,
    ports: Option<(u16, u16)>,
) -> String {
    let (sa, da) = (addr_bytes(&src), addr_bytes(&dst));
    let (mut sp, mut dp, one_way) = match (proto, ports) {
        (PROTO_ICMP | PROTO_ICMP6, Some((t, c))) => icmp_ports(proto, t as u8, c as u8),
        (_, Some((s, d))) => (s, d, false),
        (_, None) => (0, 0, false),
    };
    let (mut a, mut b) = (sa, da);
    // One-way ICMP keeps its direction: its "ports" are not symmetric.
    if !one_way && (b < a || (a == b && dp < sp)) {
        std::mem::swap(&mut a, &mut b);
        std::mem::swap(&mut sp, &mut dp);
    }
    let mut h = Sha1::new();
    h.update(seed.to_be_bytes());
    h.update(&a);
    h.update(&b);
    h.update([proto, 0]);
    if ports.is_some() {
        h.update(sp.to_be_bytes());
        h.update(dp.to_be_bytes());
    }
    format!("1:{}", base64(&h.finalize()))
}

/// Standard base64 with padding (RFC 4648 §4); a 20-byte digest does not
/// justify a dependency.
pub fn base64(data: &[u8]) -> String {
    const T: &[u8; 64] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
    let mut s = String::with_capacity(data.len().div_ceil(3) * 4);
    for c in data.chunks(3) {
        let n = (c[0] as u32) << 16
            | (*c.get(1).unwrap_or(&0) as u32) << 8
            | *c.get(2).unwrap_or(&0) as u32;
        for i in 0..4 {
            if i <= c.len() {
                s.push(T[(n >> (18 - 6 * i) & 63) as usize] as char);
            } else {
                s.push('=');
            }
        }
    }
    s
}
