//! Ingest on captures built in the test: every container and link type,
//! exact image rows and flow bytes, bad input, labels, split, dataset.

#[path = "ingest_support/mod.rs"]
mod support;

use gpu_nids::data::dataset::Dataset;
use gpu_nids::ingest::dataset::{DatasetWriter, Header};
use gpu_nids::ingest::{
    flow::FlowOptions, image::ImageOptions, labels::LabelRules, reader::ReadError, CaptureReader,
    FlowBuilder, ImageBuilder, IngestOptions, InputSource, LinkType, NameTable, PacketLabel,
    ParsedPacket, Sample, SampleKind, Samples, Side, SplitOptions,
};
use support::*;

fn frames(cap: Vec<u8>) -> Vec<(u64, LinkType, Vec<u8>, u64)> {
    let mut r = CaptureReader::from_bytes("mem", cap).unwrap();
    let mut v = Vec::new();
    while let Some(f) = r.next_frame().unwrap() {
        v.push((f.ts_ns, f.link, f.data.to_vec(), f.number));
    }
    v
}

fn parse(link: LinkType, data: &[u8]) -> ParsedPacket<'_> {
    parse_nth(link, data, 1)
}

/// As a reader numbers packets: builders order what they emit at the end by it.
fn parse_nth(link: LinkType, data: &[u8], number: u64) -> ParsedPacket<'_> {
    ParsedPacket::parse(&gpu_nids::ingest::Frame {
        ts_ns: 0,
        link,
        data,
        number,
        orig_len: data.len() as u32,
    })
}

/// The single image row a packet makes.
fn row(link: LinkType, data: &[u8], mask: bool) -> Vec<u8> {
    let mut b = ImageBuilder::new(
        ImageOptions {
            min_packets: 1,
            mask_addresses: mask,
            ..Default::default()
        },
        0,
    );
    let mut out = Vec::new();
    b.push(&parse(link, data), PacketLabel::default(), &mut out);
    b.finish(&mut out);
    assert_eq!(out.len(), 1);
    assert!(
        out[0].data[64..].iter().all(|&p| p == 255),
        "rows after the first are white"
    );
    out[0].data[..64].to_vec()
}

fn padded(mut v: Vec<u8>, len: usize, pad: u8) -> Vec<u8> {
    v.truncate(len);
    v.resize(len, pad);
    v
}

#[test]
fn classic_pcap_byte_orders_and_resolutions() {
    let f = eth_ipv4_tcp([10, 0, 0, 1], [10, 0, 0, 2], 1, 2, b"x");
    let ts = 1_500_000_000_123_456_789u64;
    for (big, nanos) in [(false, false), (true, false), (false, true), (true, true)] {
        let v = frames(pcap(
            1,
            &[(ts, f.clone()), (ts + 1000, f.clone())],
            big,
            nanos,
        ));
        assert_eq!(v.len(), 2);
        let want = if nanos { ts } else { ts / 1000 * 1000 };
        assert_eq!(v[0].0, want, "big={big} nanos={nanos}");
        assert_eq!((v[0].1, v[0].3, v[1].3), (LinkType::Ethernet, 1, 2));
        assert_eq!(v[1].2, f);
    }
}

#[test]
fn pcapng_interfaces_epb_spb_and_tsresol() {
    let eth = eth_ipv4_tcp([10, 0, 0, 1], [10, 0, 0, 2], 1, 2, b"hello");
    let raw = ipv6_udp_packet([1; 16], [2; 16], 53, 5353, b"q");
    let cap = pcapng(
        &[(1, None), (101, Some(9))],
        &[
            NgPacket::Epb(0, 1_000_000, eth.clone()),
            NgPacket::Epb(1, 2_000_000_007, raw.clone()),
            NgPacket::Spb(eth.clone()),
        ],
    );
    let v = frames(cap);
    assert_eq!(v.len(), 3);
    assert_eq!((v[0].0, v[0].1), (1_000_000_000, LinkType::Ethernet));
    assert_eq!((v[1].0, v[1].1), (2_000_000_007, LinkType::Raw));
    assert_eq!(v[1].2, raw);
    // SPB: no timestamp, keeps the previous one; padding cut by its length.
    assert_eq!((v[2].0, v[2].2.len()), (2_000_000_007, eth.len()));
    let p = parse(LinkType::Raw, &v[1].2);
    let ip = p.ip.unwrap();
    assert_eq!(
        (ip.version, ip.proto, ip.sport, ip.dport),
        (6, 17, 53, 5353)
    );
}

#[test]
fn link_types_all_reach_the_same_ip_packet() {
    let ip = ipv4_tcp_packet([192, 168, 1, 1], [192, 168, 1, 2], 4000, 443, b"data");
    let mut sll = vec![0, 0, 0, 1, 0, 6, 1, 2, 3, 4, 5, 6, 0, 0, 0x08, 0x00];
    sll.extend_from_slice(&ip);
    let mut sll2 = vec![
        0x08, 0x00, 0, 0, 0, 0, 0, 2, 0, 1, 0, 6, 1, 2, 3, 4, 5, 6, 0, 0,
    ];
    sll2.extend_from_slice(&ip);
    let mut null = 2u32.to_le_bytes().to_vec();
    null.extend_from_slice(&ip);
    let mut null_be = 2u32.to_be_bytes().to_vec();
    null_be.extend_from_slice(&ip);
    let mut lo = 2u32.to_be_bytes().to_vec();
    lo.extend_from_slice(&ip);
    let mut qinq = vec![0xaa; 12];
    qinq.extend_from_slice(&[0x88, 0xa8, 0, 10, 0x81, 0x00, 0, 20, 0x08, 0x00]);
    qinq.extend_from_slice(&ip);
    let cases: Vec<(u32, LinkType, Vec<u8>, usize)> = vec![
        (1, LinkType::Ethernet, ethernet(0x0800, &ip), 14),
        (1, LinkType::Ethernet, qinq, 22),
        (113, LinkType::LinuxSll, sll, 16),
        (276, LinkType::LinuxSll2, sll2, 20),
        (101, LinkType::Raw, ip.clone(), 0),
        (228, LinkType::Ipv4, ip.clone(), 0),
        (0, LinkType::Null, null, 4),
        (0, LinkType::Null, null_be, 4),
        (108, LinkType::Loop, lo, 4),
    ];
    let want_row = padded(ip[..40].to_vec(), 64, 255);
    for (lt, link, frame, l3) in cases {
        let v = frames(pcap_le_us(lt, &[(0, frame.clone())]));
        assert_eq!(v[0].1, link);
        let p = parse(link, &v[0].2);
        let info = p.ip.unwrap_or_else(|| panic!("{link:?}: not parsed as IP"));
        assert_eq!(
            (info.l3_off as usize, info.sport, info.dport),
            (l3, 4000, 443),
            "{link:?}"
        );
        assert_eq!(row(link, &frame, false), want_row, "{link:?}");
    }
}

#[test]
fn row_ipv4_options_tcp_options_and_masking() {
    // IPv4 with 4 option bytes (NOP×3, EOL) and TCP with MSS + SACK-permitted.
    let topt = [2, 4, 5, 0xb4, 4, 2, 1, 1];
    let t = tcp_header(1025, 22, &topt);
    let mut p = ipv4_header([1, 2, 3, 4], [5, 6, 7, 8], 6, t.len() + 3, &[1, 1, 1, 0], 0);
    p.extend_from_slice(&t);
    p.extend_from_slice(b"abc");
    let f = ethernet(0x0800, &p);
    // 24-byte IP header + 28-byte TCP header, no payload, white padding.
    let mut want = p[..52].to_vec();
    want.resize(64, 255);
    assert_eq!(row(LinkType::Ethernet, &f, false), want);
    let mut masked = want.clone();
    masked[12..20].fill(0);
    assert_eq!(row(LinkType::Ethernet, &f, true), masked);
}

#[test]
fn row_ipv6_udp_icmp_and_fragments() {
    let p6 = ipv6_udp_packet([0x20; 16], [0x30; 16], 1000, 53, b"payload");
    let want = padded(p6[..48].to_vec(), 64, 255);
    assert_eq!(row(LinkType::Ipv6, &p6, false), want);

    // ICMP echo request: 20-byte IP + 8 ICMP bytes.
    let icmp = [8u8, 0, 0xf7, 0xfe, 0x12, 0x34, 0, 1, b'p', b'i', b'n', b'g'];
    let mut p = ipv4_header([9, 9, 9, 9], [8, 8, 8, 8], 1, icmp.len(), &[], 0);
    p.extend_from_slice(&icmp);
    let info = parse(LinkType::Raw, &p).ip.unwrap();
    assert_eq!((info.icmp_type, info.icmp_id, info.l4_len), (8, 0x1234, 8));
    assert_eq!(
        row(LinkType::Raw, &p, false),
        padded(p[..28].to_vec(), 64, 255)
    );

    // Second fragment (offset 8×8 bytes): L3 header only, no ports.
    let mut frag = ipv4_header([1, 1, 1, 1], [2, 2, 2, 2], 17, 16, &[], 8);
    frag.extend_from_slice(&[0x55; 16]);
    let info = parse(LinkType::Raw, &frag).ip.unwrap();
    assert_eq!((info.has_l4, info.sport, info.l4_len), (false, 0, 0));
    assert_eq!(
        row(LinkType::Raw, &frag, false),
        padded(frag[..20].to_vec(), 64, 255)
    );
    // First fragment (MF set, offset 0) carries the UDP header.
    let mut first = ipv4_header([1, 1, 1, 1], [2, 2, 2, 2], 17, 16, &[], 0x2000);
    first.extend_from_slice(&udp_header(7, 9, 100));
    first.extend_from_slice(&[0; 8]);
    let info = parse(LinkType::Raw, &first).ip.unwrap();
    assert_eq!((info.has_l4, info.sport, info.dport), (true, 7, 9));

    // IPv6 with a hop-by-hop extension header before UDP.
    let mut h = p6.clone();
    h[6] = 0; // next header: hop-by-hop
    let mut ext = vec![17u8, 0, 1, 4, 0, 0, 0, 0];
    ext.extend_from_slice(&h[40..]);
    h.truncate(40);
    h.extend_from_slice(&ext);
    h[4..6].copy_from_slice(&((ext.len()) as u16).to_be_bytes());
    let info = parse(LinkType::Ipv6, &h).ip.unwrap();
    assert_eq!(
        (info.l3_len, info.proto, info.sport, info.dport),
        (48, 17, 1000, 53)
    );
}

#[test]
fn non_ip_frames_are_counted_and_skipped() {
    let arp = ethernet(0x0806, &[0; 28]);
    let p = parse(LinkType::Ethernet, &arp);
    assert!(p.ip.is_none());
    let mut b = ImageBuilder::new(ImageOptions::default(), 0);
    let mut out = Vec::new();
    b.push(&p, PacketLabel::default(), &mut out);
    assert_eq!((b.stats().non_ip_packets, b.stats().ip_packets), (1, 0));
}

fn pkt_frames(n: usize, reply_every: usize) -> Vec<Vec<u8>> {
    (0..n)
        .map(|i| {
            if reply_every > 0 && i % reply_every == 1 {
                eth_ipv4_tcp([10, 0, 0, 2], [10, 0, 0, 1], 80, 1234, &[i as u8])
            } else {
                eth_ipv4_tcp([10, 0, 0, 1], [10, 0, 0, 2], 1234, 80, &[i as u8])
            }
        })
        .collect()
}

fn run_images(frames: &[Vec<u8>], opts: ImageOptions) -> Vec<Sample> {
    let mut b = ImageBuilder::new(opts, 0);
    let mut out = Vec::new();
    for (i, f) in frames.iter().enumerate() {
        let mut p = parse(LinkType::Ethernet, f);
        p.number = i as u64 + 1;
        p.ts_ns = i as u64 * 1000;
        b.push(
            &p,
            PacketLabel {
                malicious: i == 70,
                class_id: 0,
            },
            &mut out,
        );
    }
    b.finish(&mut out);
    out
}

#[test]
fn images_windows_min_packets_and_pair_modes() {
    // 140 packets one way: two full images, then 12 rows (≥ 8) padded.
    let out = run_images(&pkt_frames(140, 0), ImageOptions::default());
    assert_eq!(out.len(), 3);
    assert_eq!(
        (
            out[0].meta.packets,
            out[1].meta.packets,
            out[2].meta.packets
        ),
        (64, 64, 12)
    );
    assert_eq!(
        (
            out[0].meta.label,
            out[1].meta.label,
            out[1].meta.malicious_packets
        ),
        (0, 1, 1)
    );
    assert_eq!(
        (out[1].meta.first_packet, out[1].meta.completed_by),
        (65, 128)
    );
    assert!(out[2].data[12 * 64..].iter().all(|&p| p == 255));
    // 5 leftover rows < 8: dropped.
    assert_eq!(
        run_images(&pkt_frames(133, 0), ImageOptions::default()).len(),
        2
    );
    // Requests and replies: two directional pairs, one undirected.
    let f = pkt_frames(128, 2);
    assert_eq!(run_images(&f, ImageOptions::default()).len(), 2);
    let und = run_images(
        &f,
        ImageOptions {
            undirected: true,
            ..Default::default()
        },
    );
    assert_eq!(und.len(), 2);
    assert!(und.iter().all(|s| s.meta.packets == 64));
}

#[test]
fn image_table_cap_evicts_idle_pairs() {
    // 300 one-packet pairs through a 16-pair table: bounded, nothing kept.
    let mut b = ImageBuilder::new(
        ImageOptions {
            max_groups: 16,
            ..Default::default()
        },
        0,
    );
    let mut out = Vec::new();
    for i in 0..300u32 {
        let f = eth_ipv4_tcp((0x0a00_0000 + i).to_be_bytes(), [1, 1, 1, 1], 1, 2, &[]);
        b.push(
            &parse(LinkType::Ethernet, &f),
            PacketLabel::default(),
            &mut out,
        );
        assert!(b.open_groups() <= 16);
    }
    b.finish(&mut out);
    assert!(out.is_empty());
    assert!(b.stats().evicted_groups >= 284);
    assert_eq!(b.stats().unsampled_packets, 300);
}

#[test]
fn flow_bytes_exact_with_kept_addresses_and_label_patch() {
    let frames = pkt_frames(6, 2);
    let mut b = FlowBuilder::new(
        FlowOptions {
            anonymise: false,
            ..Default::default()
        },
        3,
    );
    let mut out = Vec::new();
    for (i, f) in frames.iter().enumerate() {
        let mut p = parse(LinkType::Ethernet, f);
        p.number = i as u64 + 1;
        // Only the 6th packet (after the sample is out) is malicious.
        b.push(
            &p,
            PacketLabel {
                malicious: i == 5,
                class_id: 2,
            },
            &mut out,
        );
    }
    assert_eq!(out.len(), 1, "emitted at the 4th packet");
    let s = &out[0];
    assert_eq!(s.data.len(), 320);
    for (k, frame) in frames.iter().enumerate().take(4) {
        assert_eq!(&s.data[k * 80..k * 80 + 55], &frame[..55]);
        assert!(s.data[k * 80 + 55..(k + 1) * 80].iter().all(|&x| x == 0));
    }
    assert_eq!(
        (s.meta.label, s.meta.completed_by, s.meta.file_index),
        (0, 4, 3)
    );
    assert_eq!((s.meta.sport, s.meta.dport, s.meta.proto), (1234, 80, 6));
    b.finish(&mut out);
    let up = b.take_updates();
    assert_eq!(up.len(), 1);
    assert_eq!(
        (
            up[0].seq,
            up[0].label,
            up[0].packets,
            up[0].malicious_packets
        ),
        (0, 1, 6, 1)
    );
}

#[test]
fn flow_anonymisation_is_per_flow_consistent_and_repeatable() {
    let frames = pkt_frames(2, 2);
    let run = || {
        let mut b = FlowBuilder::new(FlowOptions::default(), 0);
        let mut out = Vec::new();
        for f in &frames {
            b.push(
                &parse(LinkType::Ethernet, f),
                PacketLabel::default(),
                &mut out,
            );
        }
        b.finish(&mut out);
        out
    };
    let a = run();
    assert_eq!(a.len(), 1);
    assert_eq!(a[0].data, run()[0].data, "seeded from the flow key");
    let d = &a[0].data;
    let (r0, r1) = (&d[0..80], &d[80..160]);
    // Addresses replaced, and the reply's are the request's swapped.
    assert_ne!(&r0[26..30], &frames[0][26..30]);
    assert_ne!(&r0[0..12], &frames[0][0..12]);
    assert_eq!((&r0[26..30], &r0[30..34]), (&r1[30..34], &r1[26..30]));
    assert_eq!((&r0[0..6], &r0[6..12]), (&r1[6..12], &r1[0..6]));
    // Everything else untouched.
    assert_eq!(&r0[12..26], &frames[0][12..26]);
    assert_eq!(&r0[34..55], &frames[0][34..55]);
    assert!(
        d[160..].iter().all(|&x| x == 0),
        "two packets, two zero rows"
    );
}

#[test]
fn icmp_echo_request_and_reply_share_a_flow() {
    let mk = |src: [u8; 4], dst: [u8; 4], t: u8| {
        let icmp = [t, 0, 0, 0, 0xab, 0xcd, 0, 1];
        let mut p = ipv4_header(src, dst, 1, 8, &[], 0);
        p.extend_from_slice(&icmp);
        p
    };
    let mut b = FlowBuilder::new(FlowOptions::default(), 0);
    let mut out = Vec::new();
    for (i, p) in [
        mk([1, 1, 1, 1], [2, 2, 2, 2], 8),
        mk([2, 2, 2, 2], [1, 1, 1, 1], 0),
        mk([2, 2, 2, 2], [1, 1, 1, 1], 3),
    ]
    .iter()
    .enumerate()
    {
        b.push(
            &parse_nth(LinkType::Raw, p, i as u64 + 1),
            PacketLabel::default(),
            &mut out,
        );
    }
    b.finish(&mut out);
    assert_eq!(out.len(), 2, "echo pair + one unreachable");
    assert_eq!(
        out.iter().map(|s| s.meta.packets).collect::<Vec<_>>(),
        vec![2, 1]
    );
}

#[test]
fn bad_inputs_give_clear_errors() {
    let f = eth_ipv4_tcp([10, 0, 0, 1], [10, 0, 0, 2], 1, 2, b"x");
    // Truncated last record: warning with the count, earlier packets kept.
    let mut cap = pcap_le_us(1, &[(0, f.clone()), (1, f.clone()), (2, f.clone())]);
    cap.truncate(cap.len() - 10);
    let mut r = CaptureReader::from_bytes("t.pcap", cap).unwrap();
    let mut n = 0;
    while r.next_frame().unwrap().is_some() {
        n += 1;
    }
    assert_eq!(n, 2);
    let w = r.take_warnings();
    assert!(
        w[0].contains("truncated") && w[0].contains("read 2 packets"),
        "{w:?}"
    );

    // Corrupt record length: error with file and byte offset.
    let mut cap = pcap_le_us(1, &[(0, f.clone()), (1, f.clone())]);
    let off = 24 + 16 + f.len();
    cap[off + 8..off + 12].copy_from_slice(&0x7fff_ffffu32.to_le_bytes());
    let mut r = CaptureReader::from_bytes("c.pcap", cap).unwrap();
    r.next_frame().unwrap();
    let e = r.next_frame().unwrap_err().to_string();
    assert!(
        e.contains("c.pcap") && e.contains(&format!("byte offset {off}")),
        "{e}"
    );

    // Unknown link type, named.
    let e = CaptureReader::from_bytes("u.pcap", pcap_le_us(147, &[]))
        .err()
        .unwrap();
    assert!(
        matches!(e, ReadError::UnknownLinkType { linktype: 147, .. }),
        "{e}"
    );
    assert!(e.to_string().contains("147"));
    // Not a capture / empty file / header only.
    assert!(matches!(
        CaptureReader::from_bytes("x", b"hello world, not pcap".to_vec()),
        Err(ReadError::NotACapture { .. })
    ));
    assert!(matches!(
        CaptureReader::from_bytes("e", vec![]),
        Err(ReadError::Empty { .. })
    ));
    let mut r = CaptureReader::from_bytes("h", pcap_le_us(1, &[])).unwrap();
    assert!(r.next_frame().unwrap().is_none());
    assert!(r.take_warnings()[0].contains("no packets"));
    // Corrupt pcapng block length.
    let mut ng = pcapng(&[(1, None)], &[NgPacket::Epb(0, 0, f.clone())]);
    let epb = ng.len() - (32 + f.len() + 2);
    ng[epb + 4..epb + 8].copy_from_slice(&13u32.to_le_bytes());
    let mut r = CaptureReader::from_bytes("n.pcapng", ng).unwrap();
    let e = r.next_frame().unwrap_err().to_string();
    assert!(e.contains("n.pcapng") && e.contains("byte offset"), "{e}");
}

fn write_file(dir: &std::path::Path, name: &str, bytes: &[u8]) -> std::path::PathBuf {
    let p = dir.join(name);
    std::fs::write(&p, bytes).unwrap();
    p
}

#[test]
fn labels_split_and_dataset_roundtrip() {
    let tmp = tempfile::tempdir().unwrap();
    // 10 flows of 10 packets, flow k starting at time k; attacker 10.0.0.9.
    let mut recs = Vec::new();
    for k in 0..10u8 {
        for j in 0..10u64 {
            let f = eth_ipv4_tcp([10, 0, 0, k], [10, 9, 9, 9], 1000 + k as u16, 80, &[]);
            recs.push(((k as u64) * 1_000_000_000 + j * 1000, f));
        }
    }
    let cap = write_file(tmp.path(), "cap.pcap", &pcap_le_us(1, &recs));
    let rules = LabelRules::parse(
        "file,attacker_ips,victim_ips,category\nx/cap.pcap,10.0.0.9,,scan\n",
        "l.csv",
    )
    .unwrap();
    let mut opts = IngestOptions::new(SampleKind::Flows);
    opts.labels = Some(rules);
    let inputs = vec![InputSource::File(cap.clone())];
    let (set, rep) = gpu_nids::ingest::ingest_to_set(&inputs, &opts).unwrap();
    assert!(
        rep[0].warnings[0].contains("no rule"),
        "x/cap.pcap does not name tmp/cap.pcap"
    );
    assert_eq!(set.labels.iter().filter(|&&l| l == 1).count(), 0);

    let rules = LabelRules::parse("file,attacker_ips\ncap.pcap,10.0.0.9\n", "l.csv").unwrap();
    opts.labels = Some(rules);
    let (set, _) = gpu_nids::ingest::ingest_to_set(&inputs, &opts).unwrap();
    assert_eq!(set.len(), 10);
    assert_eq!(set.labels.iter().filter(|&&l| l == 1).count(), 1);
    let bad = (0..10).find(|&i| set.labels[i] == 1).unwrap();
    assert_eq!(set.class_names()[set.meta(bad).class_id as usize], "cap");
    assert_eq!(set.meta(bad).packets, 10);

    // Split at 70 %: packet 70 of 100 is the first of flow 7.
    opts.split = Some(SplitOptions {
        side: Side::Train,
        frac: 0.7,
    });
    let (train, rep) = gpu_nids::ingest::ingest_to_set(&inputs, &opts).unwrap();
    assert_eq!((train.len(), rep[0].t_split_ns), (7, Some(7_000_000_000)));
    opts.split = Some(SplitOptions {
        side: Side::Test,
        frac: 0.7,
    });
    let (test, rep) = gpu_nids::ingest::ingest_to_set(&inputs, &opts).unwrap();
    assert_eq!((test.len(), rep[0].other_side_packets), (3, 70));

    // Dataset on disk: same bytes back, memory-mapped.
    let dir = tmp.path().join("ds");
    let mut w = DatasetWriter::create(&dir, 320).unwrap();
    let mut names = NameTable::new();
    opts.split = None;
    let reports = gpu_nids::ingest::ingest(&inputs, &opts, &mut names, &mut w).unwrap();
    let h = Header::new(
        SampleKind::Flows,
        vec![4, 80],
        w.labels(),
        w.class_ids(),
        names.names().to_vec(),
        reports,
        serde_json::to_value(&opts).unwrap(),
    );
    w.finish(&h).unwrap();
    let ds = Dataset::open(&dir).unwrap();
    assert_eq!(
        (ds.len(), ds.sample_len(), ds.labels()),
        (10, 320, &set.labels[..])
    );
    assert_eq!(ds.data(), &set.data[..]);
    for i in 0..10 {
        assert_eq!(ds.meta(i), set.meta(i));
    }
    assert_eq!(ds.header().labels.malicious, 1);
    assert!(ds.header().inputs[0].sha256.as_ref().unwrap().len() == 64);
    drop(ds);
    // Truncated data file → clear error.
    let f = std::fs::OpenOptions::new()
        .write(true)
        .open(dir.join("samples.u8"))
        .unwrap();
    f.set_len(100).unwrap();
    let e = Dataset::open(&dir).err().unwrap().to_string();
    assert!(e.contains("samples.u8") && e.contains("truncated"), "{e}");
    // No temporary directories left behind.
    let left: Vec<_> = std::fs::read_dir(tmp.path())
        .unwrap()
        .map(|e| e.unwrap().file_name())
        .collect();
    assert!(
        left.iter().all(|n| !n.to_string_lossy().contains(".tmp-")),
        "{left:?}"
    );
}

#[test]
fn cli_ingest_and_inspect_write_dataset_and_png() {
    let tmp = tempfile::tempdir().unwrap();
    let recs: Vec<_> = pkt_frames(200, 3)
        .into_iter()
        .enumerate()
        .map(|(i, f)| (i as u64 * 1000, f))
        .collect();
    let cap = write_file(tmp.path(), "a.pcap", &pcap_le_us(1, &recs));
    let out = tmp.path().join("img");
    let args = gpu_nids::cli::ingest::IngestArgs {
        kind: SampleKind::Images,
        inputs: vec![tmp.path().to_path_buf()],
        output: out.clone(),
        pair: gpu_nids::cli::ingest::PairMode::Directional,
        min_packets: 8,
        mask_addresses: false,
        flow_packets: 4,
        flow_bytes: 80,
        keep_addresses: false,
        labels: None,
        class: Some("web".into()),
        class_from_filename: false,
        split: None,
        split_frac: 0.7,
        max_groups: None,
        quiet: true,
    };
    gpu_nids::cli::ingest::run_ingest(&args).unwrap();
    // Run twice: the second replaces the first atomically.
    gpu_nids::cli::ingest::run_ingest(&args).unwrap();
    let ds = Dataset::open(&out).unwrap();
    assert_eq!(
        ds.header().inputs.len(),
        1,
        "the directory holds one capture"
    );
    assert_eq!(ds.header().inputs[0].path, cap.display().to_string());
    assert_eq!(ds.class_names(), &["web".to_string()]);
    assert_eq!(ds.len(), 3);
    let png = tmp.path().join("x.png");
    gpu_nids::cli::inspect::run_inspect(&gpu_nids::cli::inspect::InspectArgs {
        dir: out,
        png: Some(3),
        first: 0,
        output: Some(png.clone()),
    })
    .unwrap();
    assert_eq!(&std::fs::read(&png).unwrap()[1..4], b"PNG");
}
