//! `detect`'s EVE output against what Suricata's own tooling accepts:
//! every line of real runs validated with Suricata's JSON schema, each
//! alert's Community ID against the spec's baseline captures (computed by
//! the spec's reference implementation, outside this crate), Suricata's
//! protocol names, and the alert fields Suricata gives the packet behind an
//! alert (direction, flow object, order, pcap_cnt, explanations).
//!
//! The schema and baseline come from `../shared/eve/` (tests skip with a
//! printed reason when it is absent).

#[path = "common/mod.rs"]
mod common;
#[path = "detect_support/mod.rs"]
mod dsupport;
#[path = "ingest_support/mod.rs"]
mod isupport;

use std::net::IpAddr;
use std::path::{Path, PathBuf};
use std::sync::atomic::AtomicBool;
use std::sync::Arc;
use std::time::Duration;

use gpu_nids::detect::eve::{proto_name, EveWriter};
use gpu_nids::detect::load_models;
use gpu_nids::detect::pipeline::{self, Model, PipelineOptions, Source};
use gpu_nids::detect::scorer::{Scorer, StreamSpec};
use gpu_nids::explain::Explanation;
use gpu_nids::gpu::Gpu;
use gpu_nids::ingest::{CaptureReader, ImageOptions};
use serde_json::Value;

use dsupport::*;

const DAY_NS: u64 = 86_400_000_000_000;

fn eve_dir() -> Option<PathBuf> {
    let d = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../shared/eve");
    if d.join("suricata-schema.json").is_file() {
        Some(d)
    } else {
        eprintln!(
            "skipping: EVE conformance material not found at {}",
            d.display()
        );
        None
    }
}

fn validator(dir: &Path) -> jsonschema::Validator {
    let s: Value =
        serde_json::from_slice(&std::fs::read(dir.join("suricata-schema.json")).unwrap()).unwrap();
    jsonschema::draft202012::new(&s).expect("Suricata's schema compiles as draft 2020-12")
}

/// Every line must be valid against the schema; the first errors are shown.
fn assert_valid(v: &jsonschema::Validator, text: &str, what: &str) {
    let mut bad = Vec::new();
    for (i, l) in text.lines().enumerate() {
        let j: Value = serde_json::from_str(l).unwrap();
        for e in v.iter_errors(&j) {
            bad.push(format!(
                "{what} line {}: {} at {}",
                i + 1,
                e,
                e.instance_path()
            ));
        }
    }
    assert!(
        bad.is_empty(),
        "{} schema errors, first: {:#?}",
        bad.len(),
        &bad[..bad.len().min(5)]
    );
}

fn opts() -> PipelineOptions {
    PipelineOptions {
        batch: 64,
        max_latency: Duration::from_millis(50),
        idle_timeout_ns: DAY_NS,
        stop: Arc::new(AtomicBool::new(false)),
        ..PipelineOptions::default()
    }
}

/// Runs the pipeline; the raw EVE text.
fn run_text(models: &mut [Model], reader: CaptureReader, o: &PipelineOptions) -> String {
    let rec = Recorder::default();
    let mut out = EveWriter::new(Box::new(rec.clone()));
    pipeline::run(
        common::gpu(),
        models,
        Source::Capture(Box::new(reader)),
        o,
        &mut out,
    )
    .unwrap();
    rec.assert_whole_lines();
    rec.text()
}

fn model(s: impl Scorer + 'static) -> Model {
    Model {
        scorer: Box::new(s),
        file: "test".into(),
    }
}

/// Images from every pair, however short, so every packet can alert.
fn every_pair() -> ConstScorer {
    ConstScorer {
        stream: StreamSpec::Images(ImageOptions {
            min_packets: 1,
            ..Default::default()
        }),
        ..ConstScorer::images()
    }
}

fn pcap_reader(p: &Path) -> CaptureReader {
    CaptureReader::open(&gpu_nids::ingest::InputSource::File(p.to_path_buf())).unwrap()
}

#[test]
fn every_line_of_a_demo_run_validates_against_suricatas_schema() {
    let Some(dir) = eve_dir() else { return };
    let v = validator(&dir);
    let demo = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("assets/demo/test-attacks.pcap");
    // Every image and flow alerts (constant fixture scorers), the flows
    // with an explanation, so every optional field shows up.
    let mut m = vec![
        model(ConstScorer::images()),
        model(Explaining(ConstScorer::flows())),
    ];
    // Every alert explained (not one per host pair and interval), so each is checked.
    let o = PipelineOptions {
        idle_timeout_ns: 10_000_000_000,
        stats_interval: Some(Duration::from_millis(1)),
        explain_interval_ns: 0,
        ..opts()
    };
    let text = run_text(&mut m, pcap_reader(&demo), &o);
    // And the real VAE scorer (fixture weights, threshold 0) on the first
    // 1000 packets: on a software GPU its forward pass is the slow part.
    let tmp = tempfile::tempdir().unwrap();
    let ck = tmp.path().join("vae.safetensors");
    write_vae_checkpoint(&ck, Some(0.0));
    let mut vae = load_models(common::gpu(), &[ck], &[]).unwrap();
    let prefix = pcap_prefix(&std::fs::read(&demo).unwrap(), 1000);
    let vae_text = run_text(
        &mut vae,
        CaptureReader::from_bytes("demo", prefix).unwrap(),
        &o,
    );
    let vae_alerts = alerts(&parse_eve(&vae_text));
    assert!(!vae_alerts.is_empty());
    assert!(vae_alerts.iter().all(|a| gn(a, "model") == "vae"));
    // The VAE explains its score: fields and packets ride in the alert.
    for a in &vae_alerts {
        let md = &a["alert"]["metadata"];
        assert!(
            md["gpu_nids_fields"]
                .as_array()
                .is_some_and(|f| !f.is_empty() && f.len() <= 5),
            "{a}"
        );
        let pk = md["gpu_nids_packets"].as_array().unwrap();
        assert!(!pk.is_empty() && pk.len() <= 5, "{a}");
        let first = gn_u64(a, "first_pcap_cnt");
        let last = a["pcap_cnt"].as_u64().unwrap();
        for p in pk {
            let n: u64 = p.as_str().unwrap().parse().unwrap();
            assert!(
                first <= n && n <= last,
                "packet {n} outside the sample {first}..={last}"
            );
        }
    }
    assert_valid(&v, &vae_text, "demo (VAE)");
    let ev = parse_eve(&text);
    let al = alerts(&ev);
    assert!(
        al.iter().any(|a| gn(a, "sample") == "image")
            && al.iter().any(|a| gn(a, "sample") == "flow")
    );
    assert!(al.iter().any(|a| a["direction"] == "to_client"));
    assert!(al
        .iter()
        .any(|a| a["alert"]["metadata"]["gpu_nids_fields"].is_array()));
    al.iter().for_each(assert_eve_alert);
    assert_valid(&v, &text, "demo");
    // Stats lines: timestamp first (as Suricata), no kernel counters for
    // a file, and nothing Suricata's schema does not name.
    for l in text
        .lines()
        .filter(|l| l.contains("\"event_type\":\"stats\""))
    {
        assert!(l.starts_with("{\"timestamp\":"), "{l}");
        assert!(!l.contains("\"capture\""), "{l}");
    }
    assert_eq!(ev.last().unwrap()["event_type"], "stats");
}

#[test]
fn the_schema_rejects_what_detect_used_to_write() {
    // The check above would pass vacuously if the validator accepted
    // anything: the old top-level `gpu_nids` object must be refused.
    let Some(dir) = eve_dir() else { return };
    let v = validator(&dir);
    let old = serde_json::json!({"timestamp": "2020-12-29T18:21:47.797621+0000",
        "event_type": "alert", "proto": "IP", "gpu_nids": {"score": 1.0}});
    assert!(!v.is_valid(&old));
    let stats = serde_json::json!({"timestamp": "2020-12-29T18:21:47.797621+0000",
        "event_type": "stats", "stats": {"decoder": {"non_ip": 1}}});
    assert!(!v.is_valid(&stats));
}

/// `timestamp | community_id | src dst proto sport dport` per packet.
struct Expected {
    ts: String,
    cid: Option<String>,
    src: Option<IpAddr>,
    dst: Option<IpAddr>,
    proto: Option<u8>,
}

fn expected(p: &Path) -> Vec<Expected> {
    std::fs::read_to_string(p)
        .unwrap()
        .lines()
        .map(|l| {
            let f: Vec<&str> = l.split(" | ").map(str::trim).collect();
            let t: Vec<&str> = f.get(2).map_or(vec![], |x| x.split_whitespace().collect());
            Expected {
                ts: f[0].to_string(),
                cid: f[1].starts_with("1:").then(|| f[1].to_string()),
                src: t.first().map(|x| x.parse().unwrap()),
                dst: t.get(1).map(|x| x.parse().unwrap()),
                proto: t.get(2).map(|x| x.parse().unwrap()),
            }
        })
        .collect()
}

/// "2017-07-14T02:41:50.000000+0000" → "1500000110.000000".
fn epoch(ts: &str) -> String {
    let (date, rest) = ts.split_once('T').unwrap();
    let d: Vec<i64> = date.split('-').map(|x| x.parse().unwrap()).collect();
    let (hms, frac) = rest.split_once('.').unwrap();
    let t: Vec<i64> = hms.split(':').map(|x| x.parse().unwrap()).collect();
    // Days from the civil date (Howard Hinnant's algorithm).
    let (y, m) = if d[1] <= 2 {
        (d[0] - 1, d[1] + 9)
    } else {
        (d[0], d[1] - 3)
    };
    let era = y.div_euclid(400);
    let yoe = y - era * 400;
    let doy = (153 * m + 2) / 5 + d[2] - 1;
    let doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
    let days = era * 146097 + doe - 719468;
    format!(
        "{}.{}",
        days * 86400 + t[0] * 3600 + t[1] * 60 + t[2],
        &frac[..6]
    )
}

#[test]
fn community_id_of_every_alert_matches_the_spec_baseline() {
    let Some(dir) = eve_dir() else { return };
    let v = validator(&dir);
    let mut pcaps: Vec<PathBuf> = std::fs::read_dir(dir.join("community-id/pcaps"))
        .unwrap()
        .map(|e| e.unwrap().path())
        .filter(|p| p.extension().is_some_and(|x| x == "pcap"))
        .collect();
    pcaps.sort();
    assert!(pcaps.len() >= 9, "{pcaps:?}");
    let mut checked = 0;
    let mut protos = std::collections::BTreeSet::new();
    for p in &pcaps {
        let name = p.file_stem().unwrap().to_str().unwrap();
        let exp = expected(&dir.join(format!("community-id/expected/{name}.txt")));
        // Every flow and every pair alerts: each alert names its packet.
        let mut m = vec![model(ConstScorer::flows()), model(every_pair())];
        let o = PipelineOptions {
            ipv6_compress: true,
            ..opts()
        };
        let text = run_text(&mut m, pcap_reader(p), &o);
        assert_valid(&v, &text, name);
        let ev = parse_eve(&text);
        for a in alerts(&ev) {
            let n = a["pcap_cnt"].as_u64().unwrap() as usize;
            let e = &exp[n - 1];
            let what = format!("{name} packet {n} ({} alert)", gn(&a, "sample"));
            assert_eq!(epoch(a["timestamp"].as_str().unwrap()), e.ts, "{what}");
            assert_eq!(a["community_id"].as_str(), e.cid.as_deref(), "{what}");
            let ip = |k: &str| a[k].as_str().unwrap().parse::<IpAddr>().unwrap();
            assert_eq!(
                (Some(ip("src_ip")), Some(ip("dest_ip"))),
                (e.src, e.dst),
                "{what}"
            );
            assert_eq!(a["proto"], proto_name(e.proto.unwrap()), "{what}");
            protos.insert(e.proto.unwrap());
            checked += 1;
        }
    }
    // TCP, UDP, SCTP, ICMP, ICMPv6 and RSVP (no ports) all took part.
    for p in [1, 6, 17, 46, 58, 132] {
        assert!(protos.contains(&p), "no alert of protocol {p}");
    }
    assert!(checked > 40, "{checked} alerts checked");
}

#[test]
fn sctp_flows_are_keyed_by_ports() {
    let Some(dir) = eve_dir() else { return };
    let p = dir.join("community-id/pcaps/sctp.pcap");
    let mut m = vec![model(ConstScorer::flows())];
    let ev = parse_eve(&run_text(&mut m, pcap_reader(&p), &opts()));
    let al = alerts(&ev);
    assert!(!al.is_empty());
    for a in &al {
        assert_eq!(a["proto"], "SCTP");
        assert_eq!(
            (a["src_port"].as_u64(), a["dest_port"].as_u64()),
            (Some(7), Some(7))
        );
        assert_eq!(a["community_id"], "1:MP2EtRCAUIZvTw6MxJHLV7N7JDs=");
        assert_eq!(a["flow"]["src_port"], 7);
    }
}

#[test]
fn proto_names_are_suricatas_for_every_number() {
    let Some(dir) = eve_dir() else { return };
    let csv = std::fs::read_to_string(dir.join("proto-names.csv")).unwrap();
    let mut n = 0;
    for l in csv.lines().skip(1) {
        let (num, name) = l.split_once(',').unwrap();
        let num: u8 = num.parse().unwrap();
        let want = if name.is_empty() {
            num.to_string()
        } else {
            name.to_string()
        };
        assert_eq!(proto_name(num), want, "protocol {num}");
        n += 1;
    }
    assert_eq!(n, 256);
}

/// Client 10.9.0.1:40000 ↔ server 10.9.0.2:80; `dirs[i]`: packet i is a reply.
fn tcp_exchange(dirs: &[bool], t0: u64) -> Vec<(u64, Vec<u8>)> {
    let (c, s) = ([10, 9, 0, 1], [10, 9, 0, 2]);
    dirs.iter()
        .enumerate()
        .map(|(i, &reply)| {
            let payload = vec![0u8; i * 10];
            let f = if reply {
                isupport::eth_ipv4_tcp(s, c, 80, 40000, &payload)
            } else {
                isupport::eth_ipv4_tcp(c, s, 40000, 80, &payload)
            };
            (t0 + i as u64 * 1000, f)
        })
        .collect()
}

#[test]
fn alerts_describe_their_triggering_packet_with_direction_and_flow() {
    let t0 = 1_600_000_000_000_000_000u64;
    let recs = tcp_exchange(&[false, true, false, true], t0);
    let lens: Vec<u64> = recs.iter().map(|(_, f)| f.len() as u64).collect();
    let reader = CaptureReader::from_bytes("x", isupport::pcap_le_us(1, &recs)).unwrap();
    let mut m = vec![model(ConstScorer::flows())];
    let ev = parse_eve(&run_text(&mut m, reader, &opts()));
    let al = alerts(&ev);
    assert_eq!(al.len(), 1);
    let a = &al[0];
    // The 4th packet, a reply, completed the flow sample.
    assert_eq!(a["pcap_cnt"], 4);
    assert_eq!(
        (a["src_ip"].as_str(), a["src_port"].as_u64()),
        (Some("10.9.0.2"), Some(80))
    );
    assert_eq!(
        (a["dest_ip"].as_str(), a["dest_port"].as_u64()),
        (Some("10.9.0.1"), Some(40000))
    );
    assert_eq!(a["direction"], "to_client");
    let f = &a["flow"];
    assert_eq!(
        (f["src_ip"].as_str(), f["src_port"].as_u64()),
        (Some("10.9.0.1"), Some(40000))
    );
    assert_eq!(
        (f["dest_ip"].as_str(), f["dest_port"].as_u64()),
        (Some("10.9.0.2"), Some(80))
    );
    assert_eq!(
        (f["pkts_toserver"].as_u64(), f["pkts_toclient"].as_u64()),
        (Some(2), Some(2))
    );
    assert_eq!(f["bytes_toserver"].as_u64(), Some(lens[0] + lens[2]));
    assert_eq!(f["bytes_toclient"].as_u64(), Some(lens[1] + lens[3]));
    assert_eq!(f["start"], "2020-09-13T12:26:40.000000+0000");
    assert_eq!(a["timestamp"], "2020-09-13T12:26:40.000003+0000");
}

#[test]
fn alerts_are_written_in_timestamp_order_within_the_reorder_window() {
    let t0 = 1_600_000_000_000_000_000u64;
    let s = 1_000_000_000u64;
    // A 2-packet flow that then falls silent (flushed after the idle
    // timeout, its alert carrying its last packet's time), then one
    // complete 4-packet flow per second for 30 s, each its own ports.
    let mut recs = tcp_exchange(&[false, true], t0);
    for i in 1..=30u64 {
        for j in 0..4u64 {
            let f = isupport::eth_ipv4_tcp([10, 8, 0, 1], [10, 8, 0, 2], 1000 + i as u16, 80, b"");
            recs.push((t0 + i * s + j * 1000, f));
        }
    }
    let bytes = isupport::pcap_le_us(1, &recs);
    let idle = 10 * s;
    let times = |window: u64| -> Vec<String> {
        let reader = CaptureReader::from_bytes("order", bytes.clone()).unwrap();
        let mut m = vec![model(ConstScorer::flows()), model(every_pair())];
        let o = PipelineOptions {
            idle_timeout_ns: idle,
            reorder_window_ns: window,
            batch: 4,
            ..opts()
        };
        let ev = parse_eve(&run_text(&mut m, reader, &o));
        alerts(&ev)
            .iter()
            .map(|a| a["timestamp"].as_str().unwrap().to_string())
            .collect()
    };
    let sorted = |v: &[String]| v.windows(2).all(|w| w[0] <= w[1]);
    // Without a window the flushed flow's alert comes after later ones.
    let plain = times(0);
    // 30 + 1 flows; images: one per direction of the first flow, two
    // (64 + 56 rows) of the 30 flows' pair.
    assert_eq!(plain.len(), 31 + 2 + 2);
    assert!(!sorted(&plain), "{plain:?}");
    // With the window `detect -r FILE` uses, all in timestamp order.
    let ordered = times(gpu_nids::detect::samples::ordering_window(idle));
    assert_eq!(ordered.len(), plain.len());
    assert!(sorted(&ordered), "{ordered:?}");
}

#[test]
fn pcap_cnt_counts_packets_that_passed_the_filter() {
    let t0 = 1_600_000_000_000_000_000u64;
    let mut recs = Vec::new();
    for i in 0..8u64 {
        // TCP and UDP alternate; the filter keeps the UDP ones.
        let f = if i % 2 == 0 {
            isupport::eth_ipv4_tcp([10, 7, 0, 1], [10, 7, 0, 2], 1234, 80, b"")
        } else {
            isupport::ethernet(0x0800, &{
                let mut p = isupport::ipv4_header([10, 7, 0, 1], [10, 7, 0, 2], 17, 8, &[], 0);
                p.extend_from_slice(&isupport::udp_header(53, 53, 0));
                p
            })
        };
        recs.push((t0 + i * 1000, f));
    }
    let reader = CaptureReader::from_bytes("f", isupport::pcap_le_us(1, &recs)).unwrap();
    let mut m = vec![model(ConstScorer::flows())];
    let o = PipelineOptions {
        filter: Some("udp".into()),
        ..opts()
    };
    let ev = parse_eve(&run_text(&mut m, reader, &o));
    let al = alerts(&ev);
    assert_eq!(al.len(), 1);
    assert_eq!(al[0]["proto"], "UDP");
    // The 4th UDP packet is the 8th in the file, the 4th through the filter.
    assert_eq!(al[0]["pcap_cnt"], 4);
    assert_eq!(gn(&al[0], "first_pcap_cnt"), "1");
}

/// A constant scorer that explains every sample the same way.
struct Explaining(ConstScorer);

impl Scorer for Explaining {
    fn kind(&self) -> &str {
        "test-explain"
    }
    fn stream(&self) -> StreamSpec {
        self.0.stream()
    }
    fn threshold(&self) -> f64 {
        self.0.threshold()
    }
    fn set_threshold(&mut self, t: f64) {
        self.0.set_threshold(t)
    }
    fn score(&mut self, gpu: &Gpu, samples: &[u8], n: usize) -> anyhow::Result<Vec<f32>> {
        self.0.score(gpu, samples, n)
    }
    fn explain(&mut self, _gpu: &Gpu, sample: &[u8]) -> anyhow::Result<Option<Explanation>> {
        assert_eq!(sample.len(), self.0.stream.sample_len(), "one sample");
        Ok(Some(Explanation {
            fields: [
                "tcp.flags",
                "ip.ttl",
                "tcp.window",
                "ip.len",
                "tcp.dport",
                "ip.id",
            ]
            .iter()
            .enumerate()
            .map(|(i, f)| (f.to_string(), 0.5 / (i + 1) as f64))
            .collect(),
            // Rows 3 and 0, and a row the sample does not have.
            packets: vec![(3, 0.6), (0, 0.3), (99, 0.1)],
        }))
    }
}

#[test]
fn explanations_go_into_alert_metadata() {
    let t0 = 1_600_000_000_000_000_000u64;
    // Two packets of another flow first, so row numbers and packet
    // numbers differ.
    let mut recs = tcp_exchange(&[false, false], t0);
    for (i, r) in [false, true, false, true].iter().enumerate() {
        let (a, b) = ([10, 6, 0, 1], [10, 6, 0, 2]);
        let f = if *r {
            isupport::eth_ipv4_tcp(b, a, 80, 5555, b"")
        } else {
            isupport::eth_ipv4_tcp(a, b, 5555, 80, b"")
        };
        recs.push((t0 + 10_000 + i as u64, f));
    }
    let reader = CaptureReader::from_bytes("x", isupport::pcap_le_us(1, &recs)).unwrap();
    let mut m = vec![model(Explaining(ConstScorer::flows()))];
    let ev = parse_eve(&run_text(&mut m, reader, &opts()));
    let al = alerts(&ev);
    let a = al.iter().find(|a| a["src_port"] == 80).unwrap();
    let md = &a["alert"]["metadata"];
    assert_eq!(
        md["gpu_nids_fields"],
        serde_json::json!(["tcp.flags", "ip.ttl", "tcp.window", "ip.len", "tcp.dport"])
    );
    // Rows 3 and 0 of the flow are packets 6 and 3 of the capture.
    assert_eq!(md["gpu_nids_packets"], serde_json::json!(["6", "3"]));
    if let Some(dir) = eve_dir() {
        let v = validator(&dir);
        for a in &al {
            assert!(v.is_valid(a), "{a}");
        }
    }
    // `detect --no-explain`: no explanation asked for, none written.
    let reader = CaptureReader::from_bytes("x", isupport::pcap_le_us(1, &recs)).unwrap();
    let mut m = vec![model(Explaining(ConstScorer::flows()))];
    let o = PipelineOptions {
        explain: false,
        ..opts()
    };
    let ev = parse_eve(&run_text(&mut m, reader, &o));
    for a in alerts(&ev) {
        let md = &a["alert"]["metadata"];
        assert!(md.get("gpu_nids_fields").is_none() && md.get("gpu_nids_packets").is_none());
    }
}

/// `detect --explain-interval`: one explained alert per host pair (either direction) in
/// the interval of packet time; another pair, or the same pair past the interval, gets
/// its own; 0 explains every alert.
#[test]
fn explanations_are_limited_per_host_pair_and_interval() {
    let t0 = 1_600_000_000_000_000_000u64;
    let s = 1_000_000_000u64;
    let mut recs = Vec::new();
    // (time, client port, reply from the server first, other pair)
    let flows = [
        (0, 5000, false, false),
        (s / 10, 5001, true, false),
        (2 * s / 10, 5002, false, false),
        (3 * s / 10, 5003, false, true),
        (12 * s, 5004, false, false),
    ];
    for (t, port, reply_first, other) in flows {
        let (a, b) = if other {
            ([10, 7, 0, 3], [10, 7, 0, 2])
        } else {
            ([10, 7, 0, 1], [10, 7, 0, 2])
        };
        for i in 0..4u64 {
            let reply = (i % 2 == 0) == reply_first;
            let f = if reply {
                isupport::eth_ipv4_tcp(b, a, 80, port, b"")
            } else {
                isupport::eth_ipv4_tcp(a, b, port, 80, b"")
            };
            recs.push((t0 + t + i * 1000, f));
        }
    }
    let run = |interval_ns: u64| {
        let reader = CaptureReader::from_bytes("x", isupport::pcap_le_us(1, &recs)).unwrap();
        let mut m = vec![model(Explaining(ConstScorer::flows()))];
        let o = PipelineOptions {
            explain_interval_ns: interval_ns,
            ..opts()
        };
        let ev = parse_eve(&run_text(&mut m, reader, &o));
        let mut ports: Vec<(u64, bool)> = alerts(&ev)
            .iter()
            .map(|a| {
                let port = if a["src_port"] == 80 {
                    &a["dest_port"]
                } else {
                    &a["src_port"]
                };
                let md = &a["alert"]["metadata"];
                (port.as_u64().unwrap(), md.get("gpu_nids_fields").is_some())
            })
            .collect();
        ports.sort();
        ports
    };
    assert_eq!(
        run(10 * s),
        [
            (5000, true),
            (5001, false),
            (5002, false),
            (5003, true),
            (5004, true)
        ]
    );
    assert!(run(0).iter().all(|&(_, explained)| explained));
}

/// An SCTP packet (common header only) between two fixed hosts.
fn sctp(sport: u16, dport: u16, reply: bool) -> Vec<u8> {
    let (a, b) = ([10, 5, 0, 1], [10, 5, 0, 2]);
    let (s, d) = if reply { (b, a) } else { (a, b) };
    let mut p = isupport::ipv4_header(s, d, 132, 12, &[], 0);
    p.extend_from_slice(&sport.to_be_bytes());
    p.extend_from_slice(&dport.to_be_bytes());
    p.extend_from_slice(&[0; 8]);
    isupport::ethernet(0x0800, &p)
}

#[test]
fn sctp_associations_between_two_hosts_are_separate_flows() {
    use gpu_nids::ingest::{FlowBuilder, Frame, LinkType, PacketLabel, ParsedPacket};
    // Two associations (ports 5000 and 6000 to 38412) interleaved, with
    // replies: two flows, as TCP connections would be.
    let frames = [
        sctp(5000, 38412, false),
        sctp(6000, 38412, false),
        sctp(38412, 5000, true),
        sctp(38412, 6000, true),
    ];
    let mut b = FlowBuilder::new(
        gpu_nids::ingest::FlowOptions {
            n: 2,
            ..Default::default()
        },
        0,
    );
    let mut out = Vec::new();
    for (i, f) in frames.iter().enumerate() {
        let frame = Frame {
            ts_ns: i as u64,
            link: LinkType::Ethernet,
            data: f,
            number: i as u64 + 1,
            orig_len: f.len() as u32,
        };
        b.push(
            &ParsedPacket::parse(&frame),
            PacketLabel::default(),
            &mut out,
        );
    }
    b.finish(&mut out);
    let flows: Vec<(u16, u16, u64, u64)> = out
        .iter()
        .map(|s| {
            (
                s.meta.sport,
                s.meta.dport,
                s.meta.first_packet,
                s.meta.completed_by,
            )
        })
        .collect();
    assert_eq!(flows, vec![(5000, 38412, 1, 3), (6000, 38412, 2, 4)]);
}

#[test]
fn ipv6_addresses_in_full_by_default_compressed_on_request() {
    let t0 = 1_700_000_000_000_000_000u64;
    let (a, b) = (
        [0x20, 0x01, 0x0d, 0xb8, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 1],
        [0x20, 0x01, 0x0d, 0xb8, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 2],
    );
    let recs: Vec<(u64, Vec<u8>)> = (0..4)
        .map(|i| {
            let p = isupport::ipv6_udp_packet(a, b, 5353, 53, b"q");
            (t0 + i, isupport::ethernet(0x86dd, &p))
        })
        .collect();
    let bytes = isupport::pcap_le_us(1, &recs);
    for (compress, src, dst) in [
        (
            false,
            "2001:0db8:0000:0000:0000:0000:0000:0001",
            "2001:0db8:0000:0000:0000:0000:0000:0002",
        ),
        (true, "2001:db8::1", "2001:db8::2"),
    ] {
        let reader = CaptureReader::from_bytes("v6", bytes.clone()).unwrap();
        let mut m = vec![model(ConstScorer::flows())];
        let o = PipelineOptions {
            ipv6_compress: compress,
            ..opts()
        };
        let ev = parse_eve(&run_text(&mut m, reader, &o));
        let al = alerts(&ev);
        assert_eq!(al.len(), 1);
        assert_eq!(
            (al[0]["src_ip"].as_str(), al[0]["dest_ip"].as_str()),
            (Some(src), Some(dst))
        );
        assert_eq!(al[0]["flow"]["src_ip"], src);
    }
}
