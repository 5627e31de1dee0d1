//! One model's scores on labelled test data and what is built from them: the
//! threshold in use, per-attack groups, per-packet scores, the highest-scoring
//! samples, and the side-by-side table of several models.

use std::path::Path;

use anyhow::{bail, Result};

use super::report::{self, Report};
use super::threshold::{self, Threshold};
use crate::data::Loaded;

/// One model's test scores with what its report needs.
pub struct Scored {
    pub name: String,
    pub scores: Vec<f64>,
    pub labels: Vec<bool>,
    pub groups: Vec<String>,
    pub threshold: Threshold,
    pub train_scores: Option<Vec<f64>>,
    pub samples: serde_json::Value,
    /// The test packets scored as their samples, for the per-packet figures.
    pub packets: Option<report::PacketScores>,
}

impl Scored {
    pub fn report(&self) -> Report {
        report::build(
            &self.name,
            &self.scores,
            &self.labels,
            &self.groups,
            self.threshold.clone(),
            self.train_scores.as_deref(),
            self.samples.clone(),
            self.packets.as_ref(),
        )
    }
}

/// The checkpoint's threshold, else one fitted on the training scores; `--threshold` overrides the value.
pub fn pick_threshold(
    saved: Option<&Threshold>,
    train_scores: Option<&[f64]>,
    value: Option<f64>,
) -> Threshold {
    let mut t = saved
        .cloned()
        .unwrap_or_else(|| threshold::fit(train_scores.unwrap_or(&[]), 1e-3));
    if let Some(v) = value {
        t.value = v;
    }
    t
}

/// Every test packet with the score of its sample (docs/MODELS.md §5): a sample stands for
/// its packets (`packets`, `malicious_packets`; ingest puts each packet in at most one
/// sample), and each input's packets in no sample (pairs under `min_packets`, non-IP)
/// get the lowest score. Unsampled malicious packets count for the attack most of their
/// capture's malicious packets went to (with none, the capture's file stem, the name a
/// label rule gives by default).
pub fn packet_scores(test: &Loaded, scores: &[f64], groups: &[String]) -> report::PacketScores {
    use crate::eval::metrics::WeightedScore;
    let mut out = report::PacketScores::default();
    let mut main_attack: Vec<std::collections::BTreeMap<&str, u64>> =
        vec![Default::default(); test.reports.len()];
    for (i, (&score, g)) in scores.iter().zip(groups).enumerate() {
        let m = &test.set.meta[i];
        let malicious = m.malicious_packets.min(m.packets) as u64;
        out.units.push(WeightedScore {
            score,
            benign: m.packets as u64 - malicious,
            malicious,
        });
        out.groups.push(g.clone());
        if let Some(by) = main_attack.get_mut(m.file_index as usize) {
            if malicious > 0 {
                *by.entry(g.as_str()).or_default() += malicious;
            }
        }
    }
    for (f, r) in test.reports.iter().enumerate() {
        let malicious = r.unsampled_malicious.min(r.unsampled_packets);
        let benign = r.unsampled_packets - malicious + r.non_ip_packets;
        if benign + malicious == 0 {
            continue;
        }
        let group = main_attack[f]
            .iter()
            .max_by_key(|(_, &n)| n)
            .map(|(g, _)| g.to_string())
            // No malicious sample: the name a label rule gives by default, the file stem.
            .unwrap_or_else(|| {
                Path::new(&r.path)
                    .file_stem()
                    .map_or(r.path.clone(), |s| s.to_string_lossy().into_owned())
            });
        out.units.push(WeightedScore {
            score: f64::NEG_INFINITY,
            benign,
            malicious,
        });
        out.groups.push(group);
    }
    out
}

/// Test labels and per-attack groups of loaded test data; fails without malicious samples.
pub fn labels_and_groups(test: &Loaded) -> Result<(Vec<bool>, Vec<String>)> {
    let labels: Vec<bool> = test.set.labels.iter().map(|&l| l != 0).collect();
    if !labels.iter().any(|&l| l) {
        bail!("the test data holds no malicious samples: give attack captures with --labels, or labelled datasets");
    }
    let groups = (0..labels.len()).map(|i| attack_name(test, i)).collect();
    Ok((labels, groups))
}

/// Group of a sample for the per-attack table (see [`crate::eval::union::attack_group`]).
pub fn attack_name(data: &Loaded, i: usize) -> String {
    crate::eval::union::attack_group(data.class_of(i), data.file_of(i))
}

/// Indices of the `top` highest scores, highest first.
pub fn top_indices(scores: &[f64], top: usize) -> Vec<usize> {
    let mut idx: Vec<usize> = (0..scores.len()).collect();
    idx.sort_by(|&a, &b| scores[b].total_cmp(&scores[a]));
    idx.truncate(top);
    idx
}

/// One of the highest-scoring test samples: where it is in the capture, its label,
/// and what drove its score.
pub fn top_anomaly_json(
    data: &Loaded,
    i: usize,
    rank: usize,
    score: f64,
    e: Option<&crate::explain::Explanation>,
) -> serde_json::Value {
    let m = &data.set.meta[i];
    serde_json::json!({
        "rank": rank + 1,
        "sample": i,
        "score": score,
        "label": if m.label != 0 { "malicious" } else { "benign" },
        "attack": attack_name(data, i),
        "file": data.file_of(i),
        "src_ip": m.src_ip().to_string(),
        "dest_ip": m.dst_ip().to_string(),
        "src_port": m.sport,
        "dest_port": m.dport,
        "proto": m.proto,
        "first_packet": m.first_packet,
        "packets": m.packets,
        "first_ts": crate::util::iso8601_us(m.first_ts_ns),
        "last_ts": crate::util::iso8601_us(m.last_ts_ns),
        "explain": e.map(|e| e.to_json()),
    })
}

/// top_anomalies.json in `dir`.
pub fn write_top_anomalies(dir: &Path, entries: &[serde_json::Value]) -> Result<()> {
    std::fs::create_dir_all(dir)?;
    crate::util::write_atomic(
        &dir.join("top_anomalies.json"),
        serde_json::to_string_pretty(entries)?.as_bytes(),
    )
}

/// Markdown table: overall ROC-AUC / PR-AUC per model, then per attack its ROC-AUC (and
/// sample counts, which differ between sample kinds), per-packet ROC-AUC and the share of
/// its samples each model's threshold alerts on.
pub fn compare_table(reports: &[&Report]) -> String {
    let f = |v: Option<f64>| v.map_or("-".into(), |x| format!("{x:.4}"));
    let mut s = String::from("| | ");
    s += &reports
        .iter()
        .map(|r| r.model.clone())
        .collect::<Vec<_>>()
        .join(" | ");
    s += " |\n|---|";
    s += &"---|".repeat(reports.len());
    s.push('\n');
    let row = |s: &mut String, name: &str, cells: Vec<String>| {
        *s += &format!("| {name} | {} |\n", cells.join(" | "));
    };
    row(
        &mut s,
        "benign / malicious test samples",
        reports
            .iter()
            .map(|r| format!("{} / {}", r.benign_test, r.malicious_test))
            .collect(),
    );
    row(
        &mut s,
        "**ROC-AUC**",
        reports
            .iter()
            .map(|r| format!("**{}**", f(r.roc_auc)))
            .collect(),
    );
    row(
        &mut s,
        "**PR-AUC**",
        reports
            .iter()
            .map(|r| format!("**{}**", f(r.pr_auc)))
            .collect(),
    );
    row(
        &mut s,
        "TPR / FPR at threshold",
        reports
            .iter()
            .map(|r| format!("{:.3} / {:.3}", r.tpr, r.fpr))
            .collect(),
    );
    row(
        &mut s,
        "**per-packet ROC-AUC**",
        reports
            .iter()
            .map(|r| format!("**{}**", f(r.packets.as_ref().and_then(|p| p.roc_auc))))
            .collect(),
    );
    for target in crate::eval::report::FPR_TARGETS {
        row(
            &mut s,
            &format!("TPR / FPR at FPR ≤ {target}"),
            reports
                .iter()
                .map(|r| {
                    r.operating_points
                        .iter()
                        .find(|p| p.target_fpr == Some(target))
                        .map_or("-".into(), |p| format!("{:.3} / {:.4}", p.tpr, p.fpr))
                })
                .collect(),
        );
    }
    let mut attacks: Vec<String> = reports
        .iter()
        .flat_map(|r| r.per_attack.iter().map(|a| a.attack.clone()))
        .collect();
    attacks.sort();
    attacks.dedup();
    for name in attacks {
        // One cell per model: `cell` of its row for this attack, "-" without one.
        let cells = |cell: &dyn Fn(&crate::eval::report::AttackRow) -> String| -> Vec<String> {
            reports
                .iter()
                .map(|r| {
                    r.per_attack
                        .iter()
                        .find(|a| a.attack == name)
                        .map_or("-".into(), cell)
                })
                .collect()
        };
        row(
            &mut s,
            &format!("{name} ROC-AUC (samples)"),
            cells(&|a| format!("{} ({})", f(a.roc_auc), a.samples)),
        );
        row(
            &mut s,
            &format!("{name} per-packet ROC-AUC (packets)"),
            cells(&|a| format!("{} ({})", f(a.packet_roc_auc), a.packets)),
        );
        row(
            &mut s,
            &format!("{name} detected at threshold"),
            cells(&|a| format!("{:.1} %", 100.0 * a.detected)),
        );
    }
    s
}
