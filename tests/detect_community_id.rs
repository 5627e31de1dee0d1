//! Community ID v1 against the published test vectors of the spec
//! (corelight/community-id-spec, baseline/README.md tables and
//! baseline/baseline_{deflt,seed1}.json), plus cases the tables leave open.

use std::net::IpAddr;

use gpu_nids::detect::eve::community_id::{base64, community_id_v1, icmp_ports};

/// (proto, src, dst, src port or ICMP type, dst port or ICMP code, seed 0, seed 1).
type Vector = (
    u8,
    &'static str,
    &'static str,
    Option<(u16, u16)>,
    &'static str,
    &'static str,
);

const V6A: &str = "fe80:0001:0203:0405:0607:0809:0A0B:0C0D";
const V6B: &str = "fe80:1011:1213:1415:1617:1819:1A1B:1C1D";

/// The README tables (defaults and seed=1).
const TABLE: &[Vector] = &[
    (
        6,
        "1.2.3.4",
        "5.6.7.8",
        Some((1122, 3344)),
        "1:wCb3OG7yAFWelaUydu0D+125CLM=",
        "1:HhA1B+6CoLbiKPEs5nhNYN4XWfk=",
    ),
    (
        6,
        "5.6.7.8",
        "1.2.3.4",
        Some((3344, 1122)),
        "1:wCb3OG7yAFWelaUydu0D+125CLM=",
        "1:HhA1B+6CoLbiKPEs5nhNYN4XWfk=",
    ),
    (
        17,
        "1.2.3.4",
        "5.6.7.8",
        Some((1122, 3344)),
        "1:0Mu9InQx6z4ZiCZM/7HXi2WMhOg=",
        "1:OShq+iKDAMVouh/4bMxB9Sz4amw=",
    ),
    (
        17,
        "5.6.7.8",
        "1.2.3.4",
        Some((3344, 1122)),
        "1:0Mu9InQx6z4ZiCZM/7HXi2WMhOg=",
        "1:OShq+iKDAMVouh/4bMxB9Sz4amw=",
    ),
    (
        132,
        "1.2.3.4",
        "5.6.7.8",
        Some((1122, 3344)),
        "1:EKt4MsxuyaE6mL+hmrEkQ9csDD8=",
        "1:uitchpn5MMGAQKBJh7bIr/bAr7s=",
    ),
    (
        132,
        "5.6.7.8",
        "1.2.3.4",
        Some((3344, 1122)),
        "1:EKt4MsxuyaE6mL+hmrEkQ9csDD8=",
        "1:uitchpn5MMGAQKBJh7bIr/bAr7s=",
    ),
    (
        1,
        "1.2.3.4",
        "5.6.7.8",
        Some((8, 0)),
        "1:crodRHL2FEsHjbv3UkRrfbs4bZ0=",
        "1:9pr4ZGTICiuZoIh90RRYE2RyXpU=",
    ),
    (
        1,
        "5.6.7.8",
        "1.2.3.4",
        Some((0, 0)),
        "1:crodRHL2FEsHjbv3UkRrfbs4bZ0=",
        "1:9pr4ZGTICiuZoIh90RRYE2RyXpU=",
    ),
    (
        1,
        "1.2.3.4",
        "5.6.7.8",
        Some((11, 0)),
        "1:f/YiSyWqczrTgfUCZlBUnvHRcPk=",
        "1:1DD7cWGC/Yg91YGsQeni8du3pIA=",
    ),
    (
        58,
        V6A,
        V6B,
        Some((128, 0)),
        "1:0bf7hyMJUwt3fMED7z8LIfRpBeo=",
        "1:IO27GQzPuCtNnwFvjWALMHu5tJE=",
    ),
    (
        58,
        V6B,
        V6A,
        Some((129, 0)),
        "1:0bf7hyMJUwt3fMED7z8LIfRpBeo=",
        "1:IO27GQzPuCtNnwFvjWALMHu5tJE=",
    ),
    (
        58,
        V6A,
        V6B,
        Some((146, 0)),
        "1:fYC8+pz24E+EhANP1EZhpX0Dw10=",
        "1:Cv4IKJe56BNkF0MBW2YxQ3Nwc3s=",
    ),
    (
        46,
        "1.2.3.4",
        "5.6.7.8",
        None,
        "1:ikv3kmf89luf73WPz1jOs49S768=",
        "1:/buhqeOmaRCopOZFy9HnoJd5XW8=",
    ),
    (
        46,
        "5.6.7.8",
        "1.2.3.4",
        None,
        "1:ikv3kmf89luf73WPz1jOs49S768=",
        "1:/buhqeOmaRCopOZFy9HnoJd5XW8=",
    ),
    (
        46,
        V6A,
        V6B,
        None,
        "1:wQ/2mwrnXP4lmJcHdGL5ePjR+e0=",
        "1:j6EyyfBzL4vWKHFXgUqb5Az3OxM=",
    ),
    (
        46,
        V6B,
        V6A,
        None,
        "1:wQ/2mwrnXP4lmJcHdGL5ePjR+e0=",
        "1:j6EyyfBzL4vWKHFXgUqb5Az3OxM=",
    ),
];

/// baseline_deflt.json and baseline_seed1.json (tuples from the spec's
/// pcaps; for ICMP the "ports" are type and code as on the wire).
const BASELINE: &[Vector] = &[
    (
        58,
        "fe80::200:86ff:fe05:80da",
        "fe80::260:97ff:fe07:69ea",
        Some((135, 0)),
        "1:dGHyGvjMfljg6Bppwm3bg0LO8TY=",
        "1:kHa1FhMYIT6Ym2Vm2AOtoOARDzY=",
    ),
    (
        58,
        "fe80::260:97ff:fe07:69ea",
        "fe80::200:86ff:fe05:80da",
        Some((136, 0)),
        "1:dGHyGvjMfljg6Bppwm3bg0LO8TY=",
        "1:kHa1FhMYIT6Ym2Vm2AOtoOARDzY=",
    ),
    (
        58,
        "fe80::260:97ff:fe07:69ea",
        "fe80::200:86ff:fe05:80da",
        Some((135, 0)),
        "1:zavyT/cezQr1fmImYCwYnMXbgck=",
        "1:2hSqmsDZ2kdcY9kbiUzOEBic0iM=",
    ),
    (
        58,
        "fe80::200:86ff:fe05:80da",
        "fe80::260:97ff:fe07:69ea",
        Some((136, 0)),
        "1:zavyT/cezQr1fmImYCwYnMXbgck=",
        "1:2hSqmsDZ2kdcY9kbiUzOEBic0iM=",
    ),
    (
        58,
        "3ffe:501:1800:2345::2",
        "3ffe:507:0:1:200:86ff:fe05:80da",
        Some((3, 0)),
        "1:2ObVBgIn28oZvibYZhZMBgh7WdQ=",
        "1:lVEtCZpYu84Xqaa++3lXFyuu2n4=",
    ),
    (
        58,
        "3ffe:501:410:0:2c0:dfff:fe47:33e",
        "3ffe:507:0:1:200:86ff:fe05:80da",
        Some((1, 4)),
        "1:hLZd0XGWojozrvxqE0dWB1iM6R0=",
        "1:W8MHwXpWzpoSTD+cGcaJr4u0ys8=",
    ),
    (
        58,
        "3ffe:507:0:1:200:86ff:fe05:80da",
        "3ffe:501:0:1001::2",
        Some((128, 0)),
        "1:+TW+HtLHvV1xnGhV1lv7XoJrqQg=",
        "1:GfZxjAkDk2MkegpBYHV6tadtFXQ=",
    ),
    (
        58,
        "3ffe:501:0:1001::2",
        "3ffe:507:0:1:200:86ff:fe05:80da",
        Some((129, 0)),
        "1:+TW+HtLHvV1xnGhV1lv7XoJrqQg=",
        "1:GfZxjAkDk2MkegpBYHV6tadtFXQ=",
    ),
    (
        58,
        "fe80::200:86ff:fe05:80da",
        "ff02::2",
        Some((133, 0)),
        "1:hO+sN4H+MG5MY/8hIrXPqc4ZQz0=",
        "1:L7Ka0ZMYu+J3bL4ulW2PrqyXNo8=",
    ),
    (
        58,
        "fe80::260:97ff:fe07:69ea",
        "ff02::1",
        Some((134, 0)),
        "1:pkvHqCL88/tg1k4cPigmZXUtL00=",
        "1:K/ee5UCqAMAQXDorP5nSa2CGLjc=",
    ),
    (
        1,
        "192.168.0.89",
        "192.168.0.1",
        Some((8, 0)),
        "1:X0snYXpgwiv9TZtqg64sgzUn6Dk=",
        "1:03g6IloqVBdcZlPyX8r0hgoE7kA=",
    ),
    (
        1,
        "192.168.0.1",
        "192.168.0.89",
        Some((0, 0)),
        "1:X0snYXpgwiv9TZtqg64sgzUn6Dk=",
        "1:03g6IloqVBdcZlPyX8r0hgoE7kA=",
    ),
    (
        1,
        "10.0.0.1",
        "10.0.0.2",
        Some((11, 0)),
        "1:YHxtAirCG//0OzkcVAukqKQN9xM=",
        "1:XjUibYHaafLQ3pxQeiMI8g25q20=",
    ),
    (
        6,
        "2001:470:e5bf:dead:4957:2174:e82c:4887",
        "2607:f8b0:400c:c03::1a",
        Some((63943, 25)),
        "1:/qFaeAR+gFe1KYjMzVDsMv+wgU4=",
        "1:eJYTW6AOzFLlSUoESovMjnu7rMw=",
    ),
    (
        6,
        "2607:f8b0:400c:c03::1a",
        "2001:470:e5bf:dead:4957:2174:e82c:4887",
        Some((25, 63943)),
        "1:/qFaeAR+gFe1KYjMzVDsMv+wgU4=",
        "1:eJYTW6AOzFLlSUoESovMjnu7rMw=",
    ),
    (
        132,
        "192.168.170.8",
        "192.168.170.56",
        Some((7, 7)),
        "1:MP2EtRCAUIZvTw6MxJHLV7N7JDs=",
        "1:5w3ZRjeKBzqT3zsaEECDGjUbYeg=",
    ),
    (
        132,
        "192.168.170.56",
        "192.168.170.8",
        Some((7, 7)),
        "1:MP2EtRCAUIZvTw6MxJHLV7N7JDs=",
        "1:5w3ZRjeKBzqT3zsaEECDGjUbYeg=",
    ),
    (
        6,
        "128.232.110.120",
        "66.35.250.204",
        Some((34855, 80)),
        "1:LQU9qZlK+B5F3KDmev6m5PMibrg=",
        "1:3V71V58M3Ksw/yuFALMcW0LAHvc=",
    ),
    (
        6,
        "66.35.250.204",
        "128.232.110.120",
        Some((80, 34855)),
        "1:LQU9qZlK+B5F3KDmev6m5PMibrg=",
        "1:3V71V58M3Ksw/yuFALMcW0LAHvc=",
    ),
    (
        17,
        "192.168.1.52",
        "8.8.8.8",
        Some((54585, 53)),
        "1:d/FP5EW3wiY1vCndhwleRRKHowQ=",
        "1:Q9We8WO3piVF8yEQBNJF4uiSVrI=",
    ),
    (
        17,
        "8.8.8.8",
        "192.168.1.52",
        Some((53, 54585)),
        "1:d/FP5EW3wiY1vCndhwleRRKHowQ=",
        "1:Q9We8WO3piVF8yEQBNJF4uiSVrI=",
    ),
    (
        46,
        "10.1.12.1",
        "10.1.12.2",
        None,
        "1:KHlLkgoJW7ifUTyTSgyVfkFHzKw=",
        "1:rYir8gphR31noO9iDRQmF/BteEI=",
    ),
    (
        46,
        "10.1.12.2",
        "10.1.12.1",
        None,
        "1:KHlLkgoJW7ifUTyTSgyVfkFHzKw=",
        "1:rYir8gphR31noO9iDRQmF/BteEI=",
    ),
];

fn ip(s: &str) -> IpAddr {
    s.parse().unwrap()
}

fn check(vectors: &[Vector], what: &str) {
    for (i, &(proto, s, d, ports, seed0, seed1)) in vectors.iter().enumerate() {
        for (seed, want) in [(0u16, seed0), (1, seed1)] {
            let got = community_id_v1(seed, ip(s), ip(d), proto, ports);
            assert_eq!(
                got, want,
                "{what} vector {i} (proto {proto} {s} -> {d} {ports:?}, seed {seed})"
            );
        }
    }
}

#[test]
fn spec_tables() {
    check(TABLE, "README table");
}

#[test]
fn spec_baseline_json() {
    check(BASELINE, "baseline json");
}

/// Cases the tables do not cover, pinned from a Python transcription of
/// the spec's reference implementation (community-id.py), which
/// reproduces every vector above.
#[test]
fn one_way_icmp_keeps_direction_and_counterparts() {
    // One-way ICMP (time exceeded) from the larger address is not
    // reordered, so the two directions differ.
    let fwd = community_id_v1(0, ip("10.0.0.1"), ip("10.0.0.2"), 1, Some((11, 0)));
    let rev = community_id_v1(0, ip("10.0.0.2"), ip("10.0.0.1"), 1, Some((11, 0)));
    assert_eq!(fwd, "1:YHxtAirCG//0OzkcVAukqKQN9xM=");
    assert_eq!(rev, "1:c5iqfdGYsNWhMJVcYXWPNWbpnKs=");
    // The v4 table maps router solicitation to advertisement but not back.
    assert_eq!(icmp_ports(1, 10, 0), (10, 9, false));
    assert_eq!(icmp_ports(1, 9, 0), (9, 0, true));
    assert_eq!(
        community_id_v1(0, ip("10.0.0.2"), ip("10.0.0.1"), 1, Some((9, 0))),
        "1:3obrucYDvnrHD+g3FRQLiXyK5wA="
    );
    assert_eq!(
        community_id_v1(0, ip("10.0.0.1"), ip("10.0.0.2"), 1, Some((10, 0))),
        "1:qhJTvE/Qez7ZPSOGlcKJAzRpSO0="
    );
    // ICMPv6 multicast listener query/report and node information pairs.
    assert_eq!(icmp_ports(58, 130, 0), (130, 131, false));
    assert_eq!(icmp_ports(58, 140, 2), (140, 139, false));
    assert_eq!(icmp_ports(58, 1, 3), (1, 3, true));
    // The code of a two-way message does not enter the hash.
    assert_eq!(
        community_id_v1(0, ip(V6A), ip(V6B), 58, Some((128, 7))),
        "1:0bf7hyMJUwt3fMED7z8LIfRpBeo="
    );
}

#[test]
fn base64_rfc4648_vectors() {
    for (i, o) in [
        ("", ""),
        ("f", "Zg=="),
        ("fo", "Zm8="),
        ("foo", "Zm9v"),
        ("foob", "Zm9vYg=="),
        ("fooba", "Zm9vYmE="),
        ("foobar", "Zm9vYmFy"),
    ] {
        assert_eq!(base64(i.as_bytes()), o);
    }
    assert_eq!(base64(&[0xfb, 0xff, 0xbf]), "+/+/");
}
