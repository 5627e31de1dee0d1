//! The detect pipeline through the library: alerts from real attack
//! captures checked field by field, several models over one pass, the
//! latency bound, idle flushing in packet time, bad packets, whole lines.
//!
//! Expected values (addresses, packet numbers, times, Community IDs) were
//! produced independently of this crate by a short Python script: a
//! pcap/IP parser, the docs/MODELS.md §1/§3 grouping rules, and a transcription
//! of the Community ID spec's reference implementation that reproduces the
//! spec's published vectors (tests/detect_community_id.rs).

#[path = "common/mod.rs"]
mod common;
#[path = "detect_support/mod.rs"]
mod dsupport;
#[path = "ingest_support/mod.rs"]
mod isupport;

use std::sync::atomic::AtomicBool;
use std::sync::Arc;
use std::time::{Duration, Instant};

use gpu_nids::detect::eve::EveWriter;
use gpu_nids::detect::pipeline::{self, Model, PipelineOptions, Source, Summary};
use gpu_nids::detect::{load_models, scorer::load_scorer};
use gpu_nids::ingest::CaptureReader;
use serde_json::{json, Value};

use dsupport::*;

const DAY_NS: u64 = 86_400_000_000_000;

fn opts() -> PipelineOptions {
    PipelineOptions {
        batch: 8,
        max_latency: Duration::from_millis(50),
        idle_timeout_ns: DAY_NS,
        stop: Arc::new(AtomicBool::new(false)),
        ..PipelineOptions::default()
    }
}

fn run(
    models: &mut [Model],
    reader: CaptureReader,
    o: &PipelineOptions,
) -> (Vec<Value>, Summary, Recorder) {
    let rec = Recorder::default();
    let mut out = EveWriter::new(Box::new(rec.clone()));
    let s = pipeline::run(
        common::gpu(),
        models,
        Source::Capture(Box::new(reader)),
        o,
        &mut out,
    )
    .unwrap();
    rec.assert_whole_lines();
    (parse_eve(&rec.text()), s, rec)
}

fn const_model(s: ConstScorer) -> Model {
    Model {
        scorer: Box::new(s),
        file: "test".into(),
    }
}

fn file_reader(rel: &str) -> Option<CaptureReader> {
    let d = isupport::data_dir()?;
    Some(CaptureReader::open(&gpu_nids::ingest::InputSource::File(d.join(rel))).unwrap())
}

/// Only the fields that identify an alert and its sample.
fn identity(a: &Value) -> Value {
    json!({
        "timestamp": a["timestamp"], "src_ip": a["src_ip"], "src_port": a.get("src_port"),
        "dest_ip": a["dest_ip"], "dest_port": a.get("dest_port"), "proto": a["proto"],
        "icmp_type": a.get("icmp_type"), "icmp_code": a.get("icmp_code"),
        "community_id": a["community_id"], "pcap_cnt": a["pcap_cnt"],
        "direction": a["direction"],
        "sample": gn(a, "sample"), "first_ts": gn(a, "first_ts"),
        "last_ts": gn(a, "last_ts"), "packets": gn_u64(a, "sample_packets"),
        "first_pcap_cnt": gn_u64(a, "first_pcap_cnt"),
    })
}

#[test]
fn trickbot_alerts_field_by_field_vae_and_flows_in_one_pass() {
    let Some(reader) = file_reader("attacks/malware/trickbot.pcap") else {
        return;
    };
    let dir = tempfile::tempdir().unwrap();
    let ck = dir.path().join("vae.safetensors");
    write_vae_checkpoint(&ck, Some(0.0));
    let mut models = load_models(common::gpu(), std::slice::from_ref(&ck), &[]).unwrap();
    models.push(const_model(ConstScorer::flows()));
    let (ev, s, _) = run(&mut models, reader, &opts());
    assert_eq!(s.packets, 74, "each packet is read once for both models");
    let al = alerts(&ev);
    for a in &al {
        assert_eve_alert(a);
    }
    let images: Vec<Value> = al
        .iter()
        .filter(|a| gn(a, "model") == "vae")
        .map(identity)
        .collect();
    let flows: Vec<Value> = al
        .iter()
        .filter(|a| gn(a, "model") == "test-const")
        .map(identity)
        .collect();
    let none = Value::Null;
    // Two directed pairs (28 and 46 packets): one partial image each at
    // the end, each alert describing the pair's last packet (73 and 74,
    // both of the one TCP connection).
    assert_eq!(
        images,
        vec![
            json!({"timestamp": "2020-12-29T18:21:55.947454+0000", "src_ip": "10.12.29.101", "src_port": 61318,
                "dest_ip": "82.118.225.196", "dest_port": 7080, "proto": "TCP", "icmp_type": none, "icmp_code": none,
                "community_id": "1:tGBsxEBO0b8ImFwucLjeQfUF2IQ=", "pcap_cnt": 73, "direction": "to_server",
                "sample": "image",
                "first_ts": "2020-12-29T18:21:47.551500+0000", "last_ts": "2020-12-29T18:21:55.947454+0000",
                "packets": 28, "first_pcap_cnt": 1}),
            json!({"timestamp": "2020-12-29T18:21:55.947521+0000", "src_ip": "82.118.225.196", "src_port": 7080,
                "dest_ip": "10.12.29.101", "dest_port": 61318, "proto": "TCP", "icmp_type": none, "icmp_code": none,
                "community_id": "1:tGBsxEBO0b8ImFwucLjeQfUF2IQ=", "pcap_cnt": 74, "direction": "to_server",
                "sample": "image",
                "first_ts": "2020-12-29T18:21:47.797175+0000", "last_ts": "2020-12-29T18:21:55.947521+0000",
                "packets": 46, "first_pcap_cnt": 2}),
        ]
    );
    // One TCP flow, its sample complete at its 4th packet; the flow's
    // packet count keeps growing only offline, so live it is 4.
    assert_eq!(
        flows,
        vec![
            json!({"timestamp": "2020-12-29T18:21:47.797621+0000", "src_ip": "10.12.29.101", "src_port": 61318,
            "dest_ip": "82.118.225.196", "dest_port": 7080, "proto": "TCP", "icmp_type": none, "icmp_code": none,
            "community_id": "1:tGBsxEBO0b8ImFwucLjeQfUF2IQ=", "pcap_cnt": 4, "direction": "to_server",
            "sample": "flow",
            "first_ts": "2020-12-29T18:21:47.551500+0000", "last_ts": "2020-12-29T18:21:47.797621+0000",
            "packets": 4, "first_pcap_cnt": 1})
        ]
    );
    let vae = al.iter().find(|a| gn(a, "model") == "vae").unwrap();
    assert_eq!(
        vae["alert"]["signature"],
        "gpu-nids VAE anomaly: pair image"
    );
    assert_eq!(gn_f64(vae, "threshold"), 0.0);
    assert!(gn_f64(vae, "score") > 0.0);
    // Flows of distinct samples get distinct flow ids.
    assert_ne!(al[0]["flow_id"], al[1]["flow_id"]);
    let stats: Vec<&Value> = ev.iter().filter(|v| v["event_type"] == "stats").collect();
    assert_eq!(stats.len(), 1, "one final stats line");
    let st = &stats[0]["stats"];
    assert_eq!(st["decoder"]["pkts"], 74);
    assert_eq!(st["detect"]["alert"], 3);
    assert_eq!(s.samples_built, 3);
}

#[test]
fn threshold_override_and_checkpoint_threshold() {
    let Some(reader) = file_reader("attacks/malware/trickbot.pcap") else {
        return;
    };
    let dir = tempfile::tempdir().unwrap();
    let ck = dir.path().join("vae.safetensors");
    // The checkpoint's threshold alerts on nothing; the override on everything.
    write_vae_checkpoint(&ck, Some(1e12));
    let mut m = load_models(common::gpu(), &[ck.clone(), ck.clone()], &[1e12, 0.0]).unwrap();
    let (ev, s, _) = run(&mut m, reader, &opts());
    let al = alerts(&ev);
    assert_eq!(s.models[0].samples, 2);
    assert_eq!(s.models[0].alerts, 0);
    assert_eq!(s.models[1].alerts, 2);
    assert!(al.iter().all(|a| gn_f64(a, "threshold") == 0.0));
    // The same image scores the same in both models (same weights).
    assert_eq!(s.models[0].samples, s.models[1].samples);
}

#[test]
fn icmp_flows_from_a_ping_sweep() {
    let Some(reader) = file_reader("attacks/scan/test12-icmp-portscan.pcap") else {
        return;
    };
    let mut m = vec![const_model(ConstScorer::flows())];
    let (ev, s, _) = run(&mut m, reader, &opts());
    let al = alerts(&ev);
    assert_eq!(s.packets, 37);
    assert_eq!(al.len(), 26, "one flow per (addresses, echo identifier)");
    for a in &al {
        assert_eve_alert(a);
        assert_eq!(a["proto"], "ICMP");
        assert!(a.get("src_port").is_none());
        assert_eq!(a["icmp_code"], 0);
    }
    let first = al.iter().find(|a| gn(a, "first_pcap_cnt") == "1").unwrap();
    // The alert describes packet 2, the echo reply that completed the flow.
    assert_eq!(
        identity(first),
        json!({"timestamp": "2022-09-24T21:23:16.401620+0000", "src_ip": "192.168.1.1", "src_port": null,
            "dest_ip": "192.168.1.109", "dest_port": null, "proto": "ICMP", "icmp_type": 0, "icmp_code": 0,
            "community_id": "1:4hC28ZXiLNVQR1HXIONZN8Os4Y8=", "pcap_cnt": 2, "direction": "to_client",
            "sample": "flow",
            "first_ts": "2022-09-24T21:23:16.398593+0000", "last_ts": "2022-09-24T21:23:16.401620+0000",
            "packets": 2, "first_pcap_cnt": 1})
    );
    let lone = al.iter().find(|a| gn(a, "first_pcap_cnt") == "6").unwrap();
    assert_eq!(lone["dest_ip"], "192.168.1.104");
    assert_eq!(lone["community_id"], "1:JSTbX1wOL2TqrnSAOJcrSBjeY+8=");
    assert_eq!(lone["pcap_cnt"], 6);
}

fn icmp4(src: [u8; 4], dst: [u8; 4], t: u8, code: u8, id: u16) -> Vec<u8> {
    let mut l4 = vec![t, code, 0, 0];
    l4.extend_from_slice(&id.to_be_bytes());
    l4.extend_from_slice(&[0, 1]);
    let mut p = isupport::ipv4_header(src, dst, 1, l4.len(), &[], 0);
    p.extend_from_slice(&l4);
    isupport::ethernet(0x0800, &p)
}

fn icmp6(src: [u8; 16], dst: [u8; 16], t: u8, id: u16) -> Vec<u8> {
    let mut h = vec![0u8; 40];
    h[0] = 0x60;
    h[4..6].copy_from_slice(&8u16.to_be_bytes());
    h[6] = 58;
    h[7] = 64;
    h[8..24].copy_from_slice(&src);
    h[24..40].copy_from_slice(&dst);
    h.extend_from_slice(&[t, 0, 0, 0]);
    h.extend_from_slice(&id.to_be_bytes());
    h.extend_from_slice(&[0, 1]);
    isupport::ethernet(0x86dd, &h)
}

fn v6(last: u8) -> [u8; 16] {
    let mut a = [0u8; 16];
    a[..4].copy_from_slice(&[0x20, 0x01, 0x0d, 0xb8]);
    a[15] = last;
    a
}

#[test]
fn ipv6_and_one_way_icmp_flows() {
    let t0 = 1_700_000_000_000_000_000u64;
    let recs = vec![
        (
            t0,
            isupport::ethernet(
                0x86dd,
                &isupport::ipv6_udp_packet(v6(1), v6(2), 5353, 53, b"q"),
            ),
        ),
        (t0 + 1000, icmp6(v6(2), v6(1), 128, 7)),
        (t0 + 2000, icmp4([192, 0, 2, 9], [192, 0, 2, 1], 3, 3, 0)),
    ];
    let bytes = isupport::pcap_le_us(1, &recs);
    let reader = CaptureReader::from_bytes("synthetic", bytes).unwrap();
    let mut m = vec![const_model(ConstScorer::flows())];
    let (ev, _, _) = run(&mut m, reader, &opts());
    let al = alerts(&ev);
    assert_eq!(al.len(), 3);
    for a in &al {
        assert_eve_alert(a);
    }
    let by = |n: u64| al.iter().find(|a| a["pcap_cnt"] == n).unwrap();
    let udp = by(1);
    assert_eq!(
        (udp["src_ip"].as_str(), udp["dest_ip"].as_str()),
        // Written in full by default, as Suricata's `ipv6-compress: no`.
        (
            Some("2001:0db8:0000:0000:0000:0000:0000:0001"),
            Some("2001:0db8:0000:0000:0000:0000:0000:0002")
        )
    );
    assert_eq!(
        (
            udp["src_port"].as_u64(),
            udp["dest_port"].as_u64(),
            udp["proto"].as_str()
        ),
        (Some(5353), Some(53), Some("UDP"))
    );
    assert_eq!(udp["community_id"], "1:sEzqFsMvqwEs2PgSeOAwGpzkZJo=");
    assert_eq!(udp["timestamp"], "2023-11-14T22:13:20.000000+0000");
    let echo6 = by(2);
    assert_eq!(echo6["proto"], "IPv6-ICMP");
    assert_eq!(
        (echo6["icmp_type"].as_u64(), echo6["icmp_code"].as_u64()),
        (Some(128), Some(0))
    );
    assert_eq!(echo6["community_id"], "1:YDcnf7YthUKAbDNo6Cs3rX4jq4w=");
    assert_eq!(echo6["timestamp"], "2023-11-14T22:13:20.000001+0000");
    let unreach = by(3);
    assert_eq!(
        (unreach["icmp_type"].as_u64(), unreach["icmp_code"].as_u64()),
        (Some(3), Some(3))
    );
    assert_eq!(unreach["community_id"], "1:hX6UpgqTInfO1GVHEfvj/U+kMEc=");
}

fn pair_packets(src: [u8; 4], dst: [u8; 4], n: usize, t: u64, step: u64) -> Vec<(u64, Vec<u8>)> {
    (0..n)
        .map(|i| {
            (
                t + i as u64 * step,
                isupport::eth_ipv4_tcp(src, dst, 40000, 80, b""),
            )
        })
        .collect()
}

#[test]
fn idle_pairs_are_flushed_in_packet_time() {
    let t0 = 1_600_000_000_000_000_000u64;
    let s = 1_000_000_000u64;
    let (a, b, c, d) = ([10, 0, 0, 1], [10, 0, 0, 2], [10, 0, 0, 3], [10, 0, 0, 4]);
    let mut recs = pair_packets(a, b, 10, t0, 1000);
    // 5 packets of another pair: under min_packets, dropped when idle.
    recs.extend(pair_packets(c, d, 5, t0 + s, 1000));
    // The first pair comes back after 20 s of silence: a new window.
    recs.extend(pair_packets(a, b, 10, t0 + 21 * s, 1000));
    let reader = CaptureReader::from_bytes("idle", isupport::pcap_le_us(1, &recs)).unwrap();
    let mut m = vec![const_model(ConstScorer::images())];
    let o = PipelineOptions {
        idle_timeout_ns: 10 * s,
        ..opts()
    };
    let (ev, _, _) = run(&mut m, reader, &o);
    let al = alerts(&ev);
    let got: Vec<(u64, u64, u64)> = al
        .iter()
        .map(|a| {
            (
                gn_u64(a, "first_pcap_cnt"),
                a["pcap_cnt"].as_u64().unwrap(),
                gn_u64(a, "sample_packets"),
            )
        })
        .collect();
    assert_eq!(got, vec![(1, 10, 10), (16, 25, 10)]);
    // Without idle flushing the pair would make one 20-row image.
    let reader = CaptureReader::from_bytes("idle", isupport::pcap_le_us(1, &recs)).unwrap();
    let (ev, _, _) = run(&mut m, reader, &opts());
    assert_eq!(alerts(&ev).len(), 1);
    assert_eq!(gn(&alerts(&ev)[0], "sample_packets"), "20");
}

#[test]
fn a_lone_sample_is_not_held_back_for_a_full_batch() {
    let t0 = 1_600_000_000_000_000_000u64;
    // One flow completes at its 4th packet; then the source stalls 3 s.
    let mut recs: Vec<(u64, Vec<u8>)> = pair_packets([10, 1, 0, 1], [10, 1, 0, 2], 4, t0, 1000);
    let first_len = isupport::pcap_le_us(1, &recs).len();
    recs.extend(pair_packets(
        [10, 1, 0, 3],
        [10, 1, 0, 4],
        4,
        t0 + 5000,
        1000,
    ));
    let bytes = isupport::pcap_le_us(1, &recs);
    let stall = Stall {
        data: bytes,
        pos: 0,
        at: first_len,
        pause: Duration::from_secs(3),
        paused: false,
    };
    let reader = CaptureReader::from_reader("stall".into(), Box::new(stall), None).unwrap();
    let scorer = ConstScorer::flows();
    let batches = scorer.batches.clone();
    let mut m = vec![const_model(scorer)];
    let o = PipelineOptions {
        batch: 256,
        max_latency: Duration::from_millis(100),
        ..opts()
    };
    let started = Instant::now();
    let (ev, _, rec) = run(&mut m, reader, &o);
    assert_eq!(alerts(&ev).len(), 2);
    let writes = rec.0.lock().unwrap();
    let first_alert = writes
        .iter()
        .find(|(_, w)| {
            w.starts_with(b"{\"timestamp\"") && String::from_utf8_lossy(w).contains("\"alert\"")
        })
        .unwrap();
    let after = first_alert.0 - started;
    assert!(
        after < Duration::from_millis(2000),
        "first alert written after {after:?}, while the source was stalled"
    );
    assert_eq!(
        batches.lock().unwrap()[0],
        1,
        "the first batch went out with one sample"
    );
}

#[test]
fn bad_packets_are_counted_and_skipped() {
    let t0 = 1_600_000_000_000_000_000u64;
    let mut recs = Vec::new();
    let good = pair_packets([10, 2, 0, 1], [10, 2, 0, 2], 8, t0, 1000);
    for (i, g) in good.into_iter().enumerate() {
        recs.push(g);
        let bad = match i % 4 {
            // IPv4 ethertype with a truncated header.
            0 => isupport::ethernet(0x0800, &[0x45, 0, 0]),
            // IPv4 header claiming a 60-byte header in a 20-byte packet.
            1 => isupport::ethernet(0x0800, &{
                let mut h = isupport::ipv4_header([1, 1, 1, 1], [2, 2, 2, 2], 6, 0, &[], 0);
                h[0] = 0x4f;
                h
            }),
            // A 3-byte frame.
            2 => vec![1, 2, 3],
            // IPv6 ethertype with garbage.
            _ => isupport::ethernet(0x86dd, &[0xff; 7]),
        };
        recs.push((t0 + 1, bad));
    }
    let reader = CaptureReader::from_bytes("bad", isupport::pcap_le_us(1, &recs)).unwrap();
    let mut m = vec![
        const_model(ConstScorer::images()),
        const_model(ConstScorer::flows()),
    ];
    let (ev, s, _) = run(&mut m, reader, &opts());
    assert_eq!(s.packets, 16);
    let st = &ev
        .iter()
        .rev()
        .find(|v| v["event_type"] == "stats")
        .unwrap()["stats"]["decoder"];
    assert_eq!(st["pkts"], 16);
    // Malformed or truncated IP, and a frame too short for Ethernet.
    assert_eq!(st["invalid"], 8);
    // One image and one flow from the good packets.
    assert_eq!(alerts(&ev).len(), 2);
}

#[test]
fn stop_flag_drains_and_scores_what_was_built() {
    let t0 = 1_600_000_000_000_000_000u64;
    let mut recs = pair_packets([10, 3, 0, 1], [10, 3, 0, 2], 12, t0, 1000);
    let first_len = isupport::pcap_le_us(1, &recs).len();
    recs.extend(pair_packets(
        [10, 3, 0, 3],
        [10, 3, 0, 4],
        12,
        t0 + 5000,
        1000,
    ));
    let bytes = isupport::pcap_le_us(1, &recs);
    // The source stalls for a minute after the first pair; the stop flag
    // must end the run without waiting for it.
    let stall = Stall {
        data: bytes,
        pos: 0,
        at: first_len,
        pause: Duration::from_secs(60),
        paused: false,
    };
    let reader = CaptureReader::from_reader("stall".into(), Box::new(stall), None).unwrap();
    let o = opts();
    let stop = o.stop.clone();
    std::thread::spawn(move || {
        std::thread::sleep(Duration::from_millis(500));
        stop.store(true, std::sync::atomic::Ordering::Relaxed);
    });
    let started = Instant::now();
    let mut m = vec![const_model(ConstScorer::images())];
    let (ev, s, _) = run(&mut m, reader, &o);
    assert!(started.elapsed() < Duration::from_secs(10));
    assert!(s.stopped_by_signal);
    assert_eq!(s.packets, 12);
    let al = alerts(&ev);
    assert_eq!(
        al.len(),
        1,
        "the pending partial image is flushed and scored"
    );
    assert_eq!(gn(&al[0], "sample_packets"), "12");
}

#[test]
fn checkpoints_without_threshold_or_with_bad_threshold_lists_are_clear_errors() {
    let dir = tempfile::tempdir().unwrap();
    let p = dir.path().join("nothr.safetensors");
    write_vae_checkpoint(&p, None);
    let e = load_scorer(common::gpu(), &p, None)
        .err()
        .unwrap()
        .to_string();
    assert!(
        e.contains("no alert threshold") && e.contains("--threshold"),
        "{e}"
    );
    assert!(load_scorer(common::gpu(), &p, Some(5.0)).is_ok());
    let e = load_models(common::gpu(), &[p.clone(), p.clone()], &[1.0, 2.0, 3.0])
        .err()
        .unwrap()
        .to_string();
    assert!(e.contains("--threshold given 3 times for 2 models"), "{e}");
}

#[test]
fn eve_writer_hands_out_whole_lines_only() {
    let rec = Recorder::default();
    let mut w = EveWriter::new(Box::new(rec.clone()));
    for i in 0..50 {
        w.push(&json!({"event_type": "alert", "i": i, "text": "x".repeat(i * 100)}))
            .unwrap();
        if i % 7 == 0 {
            w.flush_lines().unwrap();
        }
    }
    // Nothing is written between flushes, not even a full line.
    let before = rec.0.lock().unwrap().len();
    w.push(&json!({"event_type": "stats"})).unwrap();
    assert_eq!(rec.0.lock().unwrap().len(), before);
    w.flush_lines().unwrap();
    rec.assert_whole_lines();
    assert_eq!(parse_eve(&rec.text()).len(), 51);
}
