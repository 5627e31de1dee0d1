//! Ingest on the real labelled captures in ../shared/data (or
//! $GPU_NIDS_DATA). Skips, saying why, when they are absent.
//!
//! Pinned counts were produced once by tshark 4.x with
//! `-n -o ip.defragment:FALSE -o ipv6.defragment:FALSE -T fields -E occurrence=f`
//! (frame.number, ip/ipv6 src/dst, ip.proto, tcp/udp ports, icmp/icmpv6 type
//! and identifier) and a short script applying the docs/MODELS.md §3 flow key:
//! packets, non-IP frames, directed (src IP, dst IP) pairs, flows.

#[path = "ingest_support/mod.rs"]
mod support;

use gpu_nids::ingest::{
    image::ImageOptions, labels::LabelRules, CaptureReader, ImageBuilder, IngestOptions,
    InputSource, PacketLabel, ParsedPacket, SampleKind, Samples,
};
use support::{data_dir, hex};

const PINNED: &[(&str, u64, u64, u64, u64)] = &[
    // file, packets, non-IP, pairs, flows
    ("benign/teams.pcap", 1540, 42, 67, 83),
    (
        "attacks/scan/masscan_tcp_0_1000_20190821.pcap",
        1005,
        0,
        1,
        1001,
    ),
    ("benign/reddit.pcap", 1942, 0, 58, 60),
    ("ustc-tfc2016/raw/Tinba.pcap", 22000, 88, 10, 8509),
    ("attacks/scan/test12-icmp-portscan.pcap", 37, 0, 29, 26),
    ("cicids2017/monday-benign-sample.pcap", 6000, 0, 33, 189),
    ("attacks/exfiltration/icmp-tunnel.pcap", 961, 98, 2, 1),
    ("benign/wechat.pcap", 1672, 0, 44, 103),
];

#[test]
fn counts_match_tshark() {
    let Some(d) = data_dir() else { return };
    for &(file, packets, non_ip, pairs, flows) in PINNED {
        let input = vec![InputSource::File(d.join(file))];
        let (_, img) =
            gpu_nids::ingest::ingest_to_set(&input, &IngestOptions::new(SampleKind::Images))
                .unwrap();
        let (set, fl) =
            gpu_nids::ingest::ingest_to_set(&input, &IngestOptions::new(SampleKind::Flows))
                .unwrap();
        let (i, f) = (&img[0], &fl[0]);
        assert_eq!(
            (i.packets, i.non_ip_packets, i.groups, f.groups),
            (packets, non_ip, pairs, flows),
            "{file}"
        );
        assert_eq!(set.len() as u64, flows, "{file}: one sample per flow");
        let total: u64 = (0..set.len()).map(|k| set.meta(k).packets as u64).sum();
        assert_eq!(
            total,
            packets - non_ip,
            "{file}: flow packet counts cover every IP packet"
        );
    }
}

#[test]
fn labels_match_the_data_readme() {
    let Some(d) = data_dir() else { return };
    let rules = LabelRules::load(&d.join("labels.csv")).unwrap();
    // Malicious packet counts from data/README.md (tools/label_stats.py).
    for (file, malicious) in [
        ("ustc-tfc2016/raw/Tinba.pcap", 21911u64),
        ("attacks/malware/test-cc-capture-2.pcap", 589),
        ("attacks/web/log4j-webapp-exploit.pcap", 422),
        ("benign/teams.pcap", 0),
    ] {
        let mut o = IngestOptions::new(SampleKind::Images);
        o.labels = Some(rules.clone());
        let (set, rep) =
            gpu_nids::ingest::ingest_to_set(&[InputSource::File(d.join(file))], &o).unwrap();
        assert_eq!(rep[0].malicious_packets, malicious, "{file}");
        assert!(rep[0].warnings.is_empty(), "{file}: {:?}", rep[0].warnings);
        let bad = set.labels.iter().filter(|&&l| l == 1).count();
        assert_eq!(bad > 0, malicious > 0, "{file}");
    }
}

/// The image row of packet `number` of a real capture.
fn real_row(path: &std::path::Path, number: u64) -> Vec<u8> {
    let mut r = CaptureReader::open(&InputSource::File(path.to_path_buf())).unwrap();
    while let Some(f) = r.next_frame().unwrap() {
        if f.number == number {
            let mut b = ImageBuilder::new(
                ImageOptions {
                    min_packets: 1,
                    ..Default::default()
                },
                0,
            );
            let mut out = Vec::new();
            b.push(&ParsedPacket::parse(&f), PacketLabel::default(), &mut out);
            b.finish(&mut out);
            return out[0].data[..64].to_vec();
        }
    }
    panic!("no packet {number}");
}

fn with_white(h: &str) -> Vec<u8> {
    let mut v = hex(h);
    v.resize(64, 255);
    v
}

#[test]
fn rows_match_hand_decoded_packets() {
    let Some(d) = data_dir() else { return };
    // Frame 133: IPv4 (IHL 5) + TCP SYN with 12 option bytes (MSS, NOP,
    // WS, NOP, NOP, SACK-perm): 20 + 32 header bytes.
    assert_eq!(
        real_row(&d.join("cicids2017/monday-benign-sample.pcap"), 133),
        with_white(concat!(
            "450000346ccb40008006f89fc0a80a05c0a80a03",
            "c00500870fec9a0400000000800220004f3a0000020405b40103030801010402"
        ))
    );
    // Frame 1: IPv6 + TCP with 20 option bytes: 40 + 40 bytes, cut at 64.
    assert_eq!(
        real_row(&d.join("benign/reddit.pcap"), 1),
        hex(concat!(
            "60041a99002806402a01cb0120498b07991dec8528dff6292a0014504007080a",
            "000000000000200a9c5c01bb84a077c500000000a002fd2090250000020405a0"
        ))
    );
    // Frame 3: IPv4 + ICMP echo request: 20 + 8 bytes.
    assert_eq!(
        real_row(&d.join("attacks/exfiltration/icmp-tunnel.pcap"), 3),
        with_white("450000700000400040018434c0a89a83c0a89a8408000000feff0000")
    );
    // Frame 1: 802.1Q tag (VLAN 943), IPv4 + UDP: 20 + 8 bytes.
    assert_eq!(
        real_row(&d.join("attacks/scan/masscan_udp_0_1000_20190821.pcap"), 1),
        with_white("4500001cdbe10000fc11c8ddac1f0f66c67c980fc8ec027c00081a64")
    );
}

#[test]
fn whole_data_directory_ingests_and_splits() {
    let Some(d) = data_dir() else { return };
    let rules = LabelRules::load(&d.join("labels.csv")).unwrap();
    let inputs = gpu_nids::ingest::expand_inputs(&[d.join("benign")]).unwrap();
    assert_eq!(inputs.len(), 4);
    let mut o = IngestOptions::new(SampleKind::Flows);
    o.labels = Some(rules);
    let (all, _) = gpu_nids::ingest::ingest_to_set(&inputs, &o).unwrap();
    let mut sizes = 0;
    for side in [gpu_nids::ingest::Side::Train, gpu_nids::ingest::Side::Test] {
        o.split = Some(gpu_nids::ingest::SplitOptions { side, frac: 0.7 });
        let (s, rep) = gpu_nids::ingest::ingest_to_set(&inputs, &o).unwrap();
        assert!(rep.iter().all(|r| r.t_split_ns.is_some()));
        sizes += s.len();
    }
    // Whole flows go to one side, so the two sides partition the flows.
    assert_eq!(sizes, all.len());
}
