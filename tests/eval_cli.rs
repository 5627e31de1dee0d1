//! `gpu-nids eval` and `score` end to end on a synthetic capture with a tiny AE:
//! per-packet figures, operating points and explained top anomalies in the report,
//! explanations in score's rows.

mod common;
#[path = "ingest_support/mod.rs"]
mod isupport;

use std::process::Command;

use gpu_nids::models::baselines::BaselineKind;
use gpu_nids::models::FlowSpec;
use gpu_nids::train::TrainOptions as FlowTrainOptions;
mod tf {
    pub use gpu_nids::data::samplers::*;
    pub use gpu_nids::train::models::*;
}
use isupport::{eth_ipv4_tcp, ethernet, pcap_le_us};

const BIN: &str = env!("CARGO_BIN_EXE_gpu-nids");

/// 3 benign flows of 4 packets, 2 attacker flows of 5, one ARP frame (in no sample).
fn capture() -> Vec<u8> {
    let mut recs = Vec::new();
    let mut t = 1_000_000_000u64;
    let mut push = |f: Vec<u8>| {
        t += 1_000_000;
        recs.push((t, f));
    };
    for k in 0..3u16 {
        for _ in 0..4 {
            push(eth_ipv4_tcp(
                [10, 0, 0, 1],
                [10, 0, 0, 2],
                40000 + k,
                80,
                b"GET /",
            ));
        }
    }
    push(ethernet(0x0806, &[0u8; 28]));
    for k in 0..2u16 {
        for _ in 0..5 {
            push(eth_ipv4_tcp(
                [10, 0, 0, 66],
                [10, 0, 0, 2],
                50000 + k,
                22,
                &[0x41; 40],
            ));
        }
    }
    pcap_le_us(1, &recs)
}

#[test]
fn eval_and_score_report_packets_operating_points_and_explanations() {
    let g = common::gpu();
    let dir = tempfile::tempdir().unwrap();
    let ckpt = dir.path().join("ae.safetensors");
    let opts = FlowTrainOptions {
        epochs: 1,
        batch: 8,
        log_every: 1,
        quiet: true,
        ..FlowTrainOptions::baseline_default()
    };
    tf::train_baseline(
        g,
        BaselineKind::Ae,
        &tf::synthetic_flows(24, 1, 3),
        &opts,
        &ckpt,
        None,
        &FlowSpec::new(false),
    )
    .unwrap();
    let pcap = dir.path().join("t.pcap");
    std::fs::write(&pcap, capture()).unwrap();
    let labels = dir.path().join("labels.csv");
    std::fs::write(
        &labels,
        "file,attacker_ips,victim_ips,category,source_repo,source_path,notes\nt.pcap,10.0.0.66,,scan,,,\n",
    )
    .unwrap();

    let report = dir.path().join("report");
    let out = Command::new(BIN)
        .arg("eval")
        .arg(&ckpt)
        .arg("--test")
        .arg(&pcap)
        .arg("--labels")
        .arg(&labels)
        .args(["--threshold", "0", "--top", "3", "-q", "-o"])
        .arg(&report)
        .output()
        .unwrap();
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(
        out.status.success(),
        "{stdout}{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(
        stdout.contains("per packet: 13 benign and 10 malicious (1 in no sample"),
        "{stdout}"
    );
    let m: serde_json::Value =
        serde_json::from_slice(&std::fs::read(report.join("metrics.json")).unwrap()).unwrap();
    let p = &m["packets"];
    assert_eq!(
        (p["benign"].as_u64(), p["malicious"].as_u64()),
        (Some(13), Some(10))
    );
    assert_eq!(p["unsampled"].as_u64(), Some(1));
    assert!(p["roc_auc"].is_f64(), "{p}");
    let ops = m["operating_points"].as_array().unwrap();
    assert_eq!(ops.len(), 3, "{ops:?}");
    assert!(ops[0]["target_fpr"].is_null() && ops[0]["threshold"].as_f64() == Some(0.0));
    assert_eq!(ops[1]["target_fpr"].as_f64(), Some(0.01));
    let attack = &m["per_attack"][0];
    assert_eq!(attack["packets"].as_u64(), Some(10), "{attack}");
    let top: Vec<serde_json::Value> =
        serde_json::from_slice(&std::fs::read(report.join("top_anomalies.json")).unwrap()).unwrap();
    assert_eq!(top.len(), 3);
    assert!(top.iter().all(|t| t["explain"]["fields"].is_array()));
    assert!(
        top.iter()
            .any(|t| !t["explain"]["fields"].as_array().unwrap().is_empty()),
        "{top:?}"
    );

    // Two models packet by packet: with threshold 0 every sampled packet alerts, the
    // ARP frame (in no sample) does not; each model's per-packet ROC-AUC from the packets'
    // samples equals the one eval computed from sample counts.
    let twin = dir.path().join("twin.safetensors");
    std::fs::copy(&ckpt, &twin).unwrap();
    let cmp = dir.path().join("cmp");
    let out = Command::new(BIN)
        .arg("eval")
        .arg("--compare")
        .args([&ckpt, &twin])
        .arg("--test")
        .arg(&pcap)
        .arg("--labels")
        .arg(&labels)
        .args(["--threshold", "0", "--top", "0", "-q", "-o"])
        .arg(&cmp)
        .output()
        .unwrap();
    let table = String::from_utf8_lossy(&out.stdout);
    assert!(
        out.status.success(),
        "{table}{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(table.contains("| ae | twin | any model |"), "{table}");
    let u: serde_json::Value =
        serde_json::from_slice(&std::fs::read(cmp.join("union.json")).unwrap()).unwrap();
    assert_eq!(
        (
            u["benign_packets"].as_u64(),
            u["malicious_packets"].as_u64()
        ),
        (Some(13), Some(10))
    );
    assert_eq!(u["any"]["tpr"].as_f64(), Some(1.0), "{u}");
    assert_eq!(u["any"]["fpr"].as_f64(), Some(12.0 / 13.0), "{u}");
    let auc = p["roc_auc"].as_f64().unwrap();
    for m in u["by_model"].as_array().unwrap() {
        assert!(
            (m["roc_auc"].as_f64().unwrap() - auc).abs() < 1e-12,
            "{u} vs {auc}"
        );
    }
    assert_eq!(u["per_attack"][0]["packets"].as_u64(), Some(10), "{u}");

    let out = Command::new(BIN)
        .arg("score")
        .arg(&ckpt)
        .arg(&pcap)
        .args(["--format", "csv", "--explain", "all", "-q"])
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let csv = String::from_utf8(out.stdout).unwrap();
    let lines: Vec<&str> = csv.lines().collect();
    assert!(
        lines[0].ends_with(",explain_fields,explain_packets"),
        "{csv}"
    );
    assert_eq!(lines.len(), 6, "{csv}");
    assert!(lines.iter().all(|l| l.split(',').count() == 11), "{csv}");
    let out = Command::new(BIN)
        .arg("score")
        .arg(&ckpt)
        .arg(&pcap)
        .args(["--explain", "all", "-q"])
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    for l in String::from_utf8(out.stdout).unwrap().lines() {
        let v: serde_json::Value = serde_json::from_str(l).unwrap();
        assert!(v["explain"]["packets"].is_array(), "{v}");
    }
}
