//! Flow models in `gpu-nids detect`: DOC-IDS and the AE baseline, trained briefly on
//! synthetic flows, score the flows of a real capture in one pass beside each other;
//! a damaged flow checkpoint is one clear error naming the file.

mod common;
#[path = "ingest_support/mod.rs"]
mod isupport;

use std::process::Command;

use gpu_nids::detect::scorer::load_scorer;
use gpu_nids::models::baselines::BaselineKind;
use gpu_nids::models::FlowSpec;
use gpu_nids::train::TrainOptions as FlowTrainOptions;
mod tf {
    pub use gpu_nids::data::samplers::*;
    pub use gpu_nids::train::models::*;
}

const BIN: &str = env!("CARGO_BIN_EXE_gpu-nids");

#[test]
fn doc_ids_and_ae_alert_on_flows_in_one_pass() {
    let Some(data) = isupport::data_dir() else {
        return;
    };
    let g = common::gpu();
    let dir = tempfile::tempdir().unwrap();
    let opts = FlowTrainOptions {
        epochs: 1,
        batch: 8,
        log_every: 1,
        quiet: true,
        ..FlowTrainOptions::doc_ids_default()
    };
    let spec = FlowSpec::new(true);
    let (doc, ae) = (
        dir.path().join("doc.safetensors"),
        dir.path().join("ae.safetensors"),
    );
    tf::train_doc_ids(
        g,
        &tf::synthetic_flows(24, 3, 1),
        &tf::synthetic_flows(24, 1, 2),
        &opts,
        &doc,
        None,
        &spec,
    )
    .unwrap();
    tf::train_baseline(
        g,
        BaselineKind::Ae,
        &tf::synthetic_flows(24, 1, 3),
        &opts,
        &ae,
        None,
        &spec,
    )
    .unwrap();
    for p in [&doc, &ae] {
        assert_eq!(
            load_scorer(g, p, None).unwrap().scorer.stream().kind(),
            gpu_nids::ingest::SampleKind::Flows
        );
    }

    // trickbot.pcap: one TCP connection, 74 packets. A threshold below every score
    // makes each model alert once on its one flow.
    let pcap = data.join("attacks/malware/trickbot.pcap");
    let out = Command::new(BIN)
        .args(["detect", "-m"])
        .arg(&doc)
        .arg("-m")
        .arg(&ae)
        .args(["--threshold=-1", "--threshold=-1", "-o", "-", "-r"])
        .arg(&pcap)
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let lines: Vec<serde_json::Value> = String::from_utf8(out.stdout)
        .unwrap()
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect();
    let alerts: Vec<&serde_json::Value> = lines
        .iter()
        .filter(|v| v["event_type"] == "alert")
        .collect();
    let models: Vec<&str> = alerts
        .iter()
        .map(|a| {
            a["alert"]["metadata"]["gpu_nids_model"][0]
                .as_str()
                .unwrap()
        })
        .collect();
    assert_eq!(alerts.len(), 2, "one flow alert per model: {alerts:?}");
    assert!(
        models.contains(&"doc-ids") && models.contains(&"ae"),
        "{models:?}"
    );
    for a in alerts {
        assert_eq!(a["proto"], "TCP");
        assert_eq!(a["alert"]["metadata"]["gpu_nids_sample"][0], "flow");
        assert!(a["src_port"].is_u64() && a["dest_port"].is_u64(), "{a}");
        assert!(a["community_id"].as_str().unwrap().starts_with("1:"));
        let score = a["alert"]["metadata"]["gpu_nids_score"][0]
            .as_str()
            .unwrap();
        assert!(score.parse::<f64>().unwrap() > -1.0);
        let ips = [
            a["src_ip"].as_str().unwrap(),
            a["dest_ip"].as_str().unwrap(),
        ];
        assert!(
            ips.contains(&"10.12.29.101") && ips.contains(&"82.118.225.196"),
            "{ips:?}"
        );
    }
}

#[test]
fn damaged_flow_checkpoints_are_clear_errors() {
    let dir = tempfile::tempdir().unwrap();
    for kind in ["doc-ids", "ae", "conv-ae"] {
        let p = dir.path().join(format!("{kind}.safetensors"));
        let mut c = gpu_nids::checkpoint::Checkpoint::default();
        c.insert("w", &[1], vec![0.0]);
        c.meta.insert("model".into(), kind.into());
        c.save(&p).unwrap();
        let e = format!("{:#}", load_scorer(common::gpu(), &p, None).err().unwrap());
        assert!(e.contains(&p.display().to_string()), "{e}");
    }
}
