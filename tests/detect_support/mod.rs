//! Helpers for the detect tests: deterministic checkpoints, a CPU scorer
//! for either sample kind, output recorders and EVE field checks.
#![allow(dead_code)]

use std::io::{Read, Write};
use std::path::Path;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use gpu_nids::checkpoint::Checkpoint;
use gpu_nids::detect::scorer::{Scorer, StreamSpec};
use gpu_nids::eval::threshold::Threshold;
use gpu_nids::gpu::Gpu;
use gpu_nids::models::{ImageSpec, Pair};
use serde_json::Value;

/// A VAE checkpoint with PyTorch-default initial weights (seed 0): scores
/// are deterministic without training, and a threshold of 0 makes every
/// image alert so that the alert fields can be checked.
pub fn write_vae_checkpoint(path: &Path, threshold: Option<f64>) {
    let mut c = Checkpoint::default();
    let params = gpu_nids::models::vae::init_params(0);
    for ((name, shape, _), v) in gpu_nids::models::vae::param_specs().into_iter().zip(params) {
        c.insert(name, &shape, v);
    }
    c.meta.insert("model".into(), "vae".into());
    c.set_json(
        "samples",
        &ImageSpec {
            pair: Pair::Directional,
            min_packets: 8,
            mask_addresses: false,
        },
    );
    if let Some(t) = threshold {
        c.set_json(
            "threshold",
            &Threshold {
                value: t,
                alert_fpr: 1e-3,
                ln_mean: 0.0,
                ln_std: 1.0,
                empirical: t,
                n: 2,
            },
        );
    }
    c.save(path).unwrap();
}

/// Scores every sample 1.0 on the CPU: stands in for a model of either
/// sample kind (the flow models plug in later) so that the pipeline's
/// sample building, batching and alert fields are tested on their own.
pub struct ConstScorer {
    pub stream: StreamSpec,
    pub threshold: f64,
    pub batches: Arc<Mutex<Vec<usize>>>,
}

impl ConstScorer {
    pub fn flows() -> Self {
        ConstScorer {
            stream: StreamSpec::Flows(Default::default()),
            threshold: 0.5,
            batches: Default::default(),
        }
    }
    pub fn images() -> Self {
        ConstScorer {
            stream: StreamSpec::Images(Default::default()),
            threshold: 0.5,
            batches: Default::default(),
        }
    }
}

impl Scorer for ConstScorer {
    fn kind(&self) -> &str {
        "test-const"
    }
    fn stream(&self) -> StreamSpec {
        self.stream.clone()
    }
    fn threshold(&self) -> f64 {
        self.threshold
    }
    fn set_threshold(&mut self, t: f64) {
        self.threshold = t;
    }
    fn score(&mut self, _gpu: &Gpu, samples: &[u8], n: usize) -> anyhow::Result<Vec<f32>> {
        assert_eq!(samples.len(), n * self.stream.sample_len());
        self.batches.lock().unwrap().push(n);
        Ok(vec![1.0; n])
    }
}

/// Every write call, with its time.
pub type Writes = Arc<Mutex<Vec<(Instant, Vec<u8>)>>>;

/// Records every write call separately, with its time.
#[derive(Clone, Default)]
pub struct Recorder(pub Writes);

impl Write for Recorder {
    fn write(&mut self, b: &[u8]) -> std::io::Result<usize> {
        self.0.lock().unwrap().push((Instant::now(), b.to_vec()));
        Ok(b.len())
    }
    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

impl Recorder {
    /// Every write call must carry whole lines only.
    pub fn assert_whole_lines(&self) {
        for (i, (_, w)) in self.0.lock().unwrap().iter().enumerate() {
            assert!(
                w.ends_with(b"\n"),
                "write {i} ends mid-line: {:?}",
                String::from_utf8_lossy(w)
            );
            for l in w.split(|&b| b == b'\n').filter(|l| !l.is_empty()) {
                serde_json::from_slice::<Value>(l)
                    .unwrap_or_else(|e| panic!("write {i}: line is not JSON ({e})"));
            }
        }
    }
    pub fn text(&self) -> String {
        let v = self.0.lock().unwrap();
        String::from_utf8(v.iter().flat_map(|(_, w)| w.clone()).collect()).unwrap()
    }
}

/// Parses EVE output; every line must be a JSON object.
pub fn parse_eve(text: &str) -> Vec<Value> {
    assert!(
        text.is_empty() || text.ends_with('\n'),
        "output ends mid-line"
    );
    text.lines()
        .map(|l| {
            let v: Value =
                serde_json::from_str(l).unwrap_or_else(|e| panic!("not JSON ({e}): {l}"));
            assert!(v.is_object(), "not an object: {l}");
            v
        })
        .collect()
}

pub fn alerts(ev: &[Value]) -> Vec<Value> {
    ev.iter()
        .filter(|v| v["event_type"] == "alert")
        .cloned()
        .collect()
}

/// The fields issue 10 asks of every alert, with their types and formats.
pub fn assert_eve_alert(a: &Value) {
    let ts = a["timestamp"].as_str().expect("timestamp");
    // 2020-12-29T18:21:55.947454+0000
    assert_eq!(ts.len(), 31, "timestamp {ts}");
    assert!(
        ts.as_bytes()[10] == b'T' && ts.as_bytes()[19] == b'.' && ts.ends_with("+0000"),
        "timestamp {ts}"
    );
    assert!(a["flow_id"].as_u64().expect("flow_id") < 1 << 53);
    assert_eq!(a["event_type"], "alert");
    a["src_ip"]
        .as_str()
        .expect("src_ip")
        .parse::<std::net::IpAddr>()
        .expect("src_ip");
    a["dest_ip"]
        .as_str()
        .expect("dest_ip")
        .parse::<std::net::IpAddr>()
        .expect("dest_ip");
    assert!(a["proto"].is_string());
    let cid = a["community_id"].as_str().expect("community_id");
    assert!(
        cid.starts_with("1:") && cid.len() == 30,
        "community_id {cid}"
    );
    assert!(a["pcap_cnt"].as_u64().expect("pcap_cnt") >= 1);
    let al = &a["alert"];
    assert_eq!(al["action"], "allowed");
    for k in ["gid", "signature_id", "rev", "severity"] {
        assert!(al[k].as_u64().is_some(), "alert.{k}");
    }
    assert!(al["signature"].as_str().unwrap().starts_with("gpu-nids "));
    assert!(al["category"].is_string());
    for k in [
        "model",
        "model_file",
        "sample",
        "score",
        "threshold",
        "first_ts",
        "last_ts",
        "sample_packets",
        "first_pcap_cnt",
    ] {
        assert!(!gn(a, k).is_empty(), "alert.metadata.gpu_nids_{k}");
    }
    assert!(gn_f64(a, "score").is_finite() && gn_f64(a, "threshold").is_finite());
    assert!(gn_u64(a, "sample_packets") >= 1);
    assert!(
        a["direction"] == "to_server" || a["direction"] == "to_client",
        "direction {}",
        a["direction"]
    );
    let f = &a["flow"];
    assert!(f["start"].is_string() && f["src_ip"].is_string() && f["dest_ip"].is_string());
    assert!(f["pkts_toserver"].as_u64().unwrap() + f["pkts_toclient"].as_u64().unwrap() >= 1);
    assert_ne!(a["proto"], "IP", "Suricata never writes proto IP");
    match gn(a, "sample").as_str() {
        "image" | "flow" => {
            if a["proto"] == "TCP" || a["proto"] == "UDP" || a["proto"] == "SCTP" {
                assert!(a["src_port"].is_u64() && a["dest_port"].is_u64(), "{a}");
            }
        }
        s => panic!("sample kind {s}"),
    }
}

/// `alert.metadata.gpu_nids_KEY[0]`, or "" when absent.
pub fn gn(a: &Value, key: &str) -> String {
    a["alert"]["metadata"][format!("gpu_nids_{key}")][0]
        .as_str()
        .unwrap_or_default()
        .to_string()
}

pub fn gn_u64(a: &Value, key: &str) -> u64 {
    gn(a, key)
        .parse()
        .unwrap_or_else(|_| panic!("gpu_nids_{key} is not a count: {a}"))
}

pub fn gn_f64(a: &Value, key: &str) -> f64 {
    gn(a, key)
        .parse()
        .unwrap_or_else(|_| panic!("gpu_nids_{key} is not a number: {a}"))
}

/// A reader that hands out `data` but stalls once at byte `at` for
/// `pause` (a slow pipe, a quiet link).
pub struct Stall {
    pub data: Vec<u8>,
    pub pos: usize,
    pub at: usize,
    pub pause: Duration,
    pub paused: bool,
}

impl Read for Stall {
    fn read(&mut self, buf: &mut [u8]) -> std::io::Result<usize> {
        if self.pos == self.at && !self.paused {
            self.paused = true;
            std::thread::sleep(self.pause);
        }
        let end = if self.pos < self.at {
            self.at
        } else {
            self.data.len()
        };
        let n = buf.len().min(end - self.pos);
        buf[..n].copy_from_slice(&self.data[self.pos..self.pos + n]);
        self.pos += n;
        Ok(n)
    }
}

/// Little-endian classic pcap: (frames read from the record headers).
pub fn pcap_records(bytes: &[u8]) -> Vec<(usize, usize)> {
    let mut o = 24;
    let mut out = Vec::new();
    while o + 16 <= bytes.len() {
        let incl = u32::from_le_bytes(bytes[o + 8..o + 12].try_into().unwrap()) as usize;
        out.push((o, o + 16 + incl));
        o += 16 + incl;
    }
    out
}

/// The first `n` packets of a classic pcap, as a pcap.
pub fn pcap_prefix(bytes: &[u8], n: usize) -> Vec<u8> {
    let recs = pcap_records(bytes);
    let end = if n == 0 { 24 } else { recs[n - 1].1 };
    bytes[..end].to_vec()
}
