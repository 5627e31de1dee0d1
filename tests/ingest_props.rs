//! No input makes the reader, parser or builders panic: random bytes and
//! mutations of valid captures (bounded case count to stay fast).

#[path = "ingest_support/mod.rs"]
mod support;

use gpu_nids::ingest::{
    flow::FlowOptions, image::ImageOptions, CaptureReader, FlowBuilder, ImageBuilder, PacketLabel,
    ParsedPacket,
};
use proptest::prelude::*;
use support::*;

/// Reads everything; errors are fine, panics are not. Returns frames read.
fn drain(bytes: Vec<u8>) -> usize {
    let Ok(mut r) = CaptureReader::from_bytes("fuzz", bytes) else {
        return 0;
    };
    let mut img = ImageBuilder::new(
        ImageOptions {
            min_packets: 1,
            max_groups: 4,
            ..Default::default()
        },
        0,
    );
    let mut fl = FlowBuilder::new(
        FlowOptions {
            max_groups: 4,
            ..Default::default()
        },
        0,
    );
    let mut out = Vec::new();
    let mut n = 0;
    while let Ok(Some(f)) = r.next_frame() {
        n += 1;
        let p = ParsedPacket::parse(&f);
        img.push(&p, PacketLabel::default(), &mut out);
        fl.push(&p, PacketLabel::default(), &mut out);
        if n > 10_000 {
            break;
        }
    }
    img.finish(&mut out);
    fl.finish(&mut out);
    assert!(out
        .iter()
        .all(|s| s.data.len() == 4096 || s.data.len() == 320));
    n
}

fn seeds() -> Vec<Vec<u8>> {
    let tcp = eth_ipv4_tcp([10, 0, 0, 1], [10, 0, 0, 2], 1, 2, b"abc");
    let v6 = ipv6_udp_packet([1; 16], [2; 16], 3, 4, b"x");
    let mut vlan = vec![0u8; 12];
    vlan.extend_from_slice(&[0x81, 0, 0, 5, 0x86, 0xdd]);
    vlan.extend_from_slice(&v6);
    vec![
        pcap_le_us(1, &[(0, tcp.clone()), (5, vlan.clone()), (9, tcp.clone())]),
        pcap(101, &[(0, v6.clone()), (1, v6.clone())], true, true),
        pcap(
            113,
            &[(0, [vec![0; 14], vec![0x08, 0], tcp[14..].to_vec()].concat())],
            false,
            false,
        ),
        pcapng(
            &[(1, Some(9)), (229, None)],
            &[
                NgPacket::Epb(0, 7, tcp.clone()),
                NgPacket::Epb(1, 8, v6.clone()),
                NgPacket::Spb(vlan),
            ],
        ),
    ]
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 400, ..ProptestConfig::default() })]

    #[test]
    fn random_bytes_never_panic(bytes in proptest::collection::vec(any::<u8>(), 0..512)) {
        drain(bytes);
    }

    #[test]
    fn random_bytes_after_a_valid_header_never_panic(lt in prop::sample::select(vec![0u32, 1, 12, 101, 108, 113, 228, 229, 276]), body in proptest::collection::vec(any::<u8>(), 0..600)) {
        let mut b = pcap_le_us(lt, &[]);
        b.extend_from_slice(&body);
        drain(b);
    }

    #[test]
    fn mutated_captures_never_panic(which in 0usize..4, edits in proptest::collection::vec((any::<prop::sample::Index>(), any::<u8>()), 1..12), cut in any::<prop::sample::Index>()) {
        let mut b = seeds()[which].clone();
        for (i, v) in edits {
            let k = i.index(b.len());
            b[k] = v;
        }
        let keep = cut.index(b.len() + 1);
        if keep > b.len() / 2 {
            b.truncate(keep);
        }
        drain(b);
    }
}

#[test]
fn unmutated_seeds_read_fully() {
    let want = [3, 2, 1, 3];
    for (s, n) in seeds().into_iter().zip(want) {
        assert_eq!(drain(s), n);
    }
}
