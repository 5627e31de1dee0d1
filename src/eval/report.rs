//! An evaluation report: overall and per-attack ROC-AUC / PR-AUC per sample and per
//! packet, the alert threshold with the TPR/FPR it gives, the operating points at fixed
//! FPR targets, as a table, metrics.json and pictures.

use std::collections::BTreeMap;
use std::path::Path;

use anyhow::Result;
use serde::{Deserialize, Serialize};

use super::metrics::{
    average_precision, operating_point, pr_curve, quantile, rates_at, roc_auc, roc_curve,
    weighted_roc_auc, OperatingPoint, WeightedScore,
};
use super::plots;
use super::threshold::Threshold;

#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct AttackRow {
    pub attack: String,
    pub samples: usize,
    pub roc_auc: Option<f64>,
    pub pr_auc: Option<f64>,
    /// Share of this attack's samples above the alert threshold.
    pub detected: f64,
    /// This attack's malicious packets against every benign packet (docs/MODELS.md §5).
    #[serde(default)]
    pub packets: u64,
    #[serde(default)]
    pub packet_roc_auc: Option<f64>,
}

/// FPR targets of the operating points every report gives.
pub const FPR_TARGETS: [f64; 2] = [1e-2, 1e-3];

/// The packets of the test inputs, each scored as the sample it belongs to.
#[derive(Clone, Debug, Default)]
pub struct PacketScores {
    pub units: Vec<WeightedScore>,
    /// The attack each unit's malicious packets count for.
    pub groups: Vec<String>,
}

/// Per-packet figures (docs/MODELS.md §5): every packet scored as its sample,
/// packets in no sample at the lowest score.
#[derive(Clone, Debug, Default, Serialize, Deserialize)]
pub struct PacketReport {
    pub benign: u64,
    pub malicious: u64,
    /// Packets in no sample (too short a pair, non-IP), scored lowest.
    pub unsampled: u64,
    pub roc_auc: Option<f64>,
}

#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct Report {
    pub model: String,
    pub benign_test: usize,
    pub malicious_test: usize,
    pub roc_auc: Option<f64>,
    pub pr_auc: Option<f64>,
    pub threshold: Threshold,
    /// Empirical quantile of the benign training scores at 1 − alert_fpr, for comparison.
    pub train_quantile: Option<f64>,
    pub tpr: f64,
    pub fpr: f64,
    pub per_attack: Vec<AttackRow>,
    /// The alert threshold's point, then the best TPR at each of [`FPR_TARGETS`].
    #[serde(default)]
    pub operating_points: Vec<OperatingPoint>,
    #[serde(default)]
    pub packets: Option<PacketReport>,
    /// Ingest options the samples were made with (e.g. whether addresses were masked).
    pub samples: serde_json::Value,
}

/// `groups[i]`: the attack a malicious sample belongs to (ignored for benign ones).
#[allow(clippy::too_many_arguments)]
pub fn build(
    model: &str,
    scores: &[f64],
    labels: &[bool],
    groups: &[String],
    threshold: Threshold,
    train_scores: Option<&[f64]>,
    samples: serde_json::Value,
    packets: Option<&PacketScores>,
) -> Report {
    let benign: Vec<f64> = scores
        .iter()
        .zip(labels)
        .filter(|(_, &l)| !l)
        .map(|(&s, _)| s)
        .collect();
    let mut by_attack: BTreeMap<&str, Vec<f64>> = BTreeMap::new();
    for ((s, &l), g) in scores.iter().zip(labels).zip(groups) {
        if l {
            by_attack.entry(g).or_default().push(*s);
        }
    }
    let mut per_attack = by_attack
        .into_iter()
        .map(|(name, mal)| {
            let s: Vec<f64> = mal.iter().chain(&benign).copied().collect();
            let l: Vec<bool> = (0..s.len()).map(|i| i < mal.len()).collect();
            AttackRow {
                attack: name.to_string(),
                samples: mal.len(),
                roc_auc: roc_auc(&s, &l),
                pr_auc: average_precision(&s, &l),
                detected: mal.iter().filter(|&&v| v > threshold.value).count() as f64
                    / mal.len() as f64,
                packets: 0,
                packet_roc_auc: None,
            }
        })
        .collect::<Vec<_>>();
    let (tpr, fpr) = rates_at(scores, labels, threshold.value);
    let mut operating_points = vec![OperatingPoint {
        target_fpr: None,
        threshold: threshold.value,
        tpr,
        fpr,
    }];
    operating_points.extend(
        FPR_TARGETS
            .iter()
            .filter_map(|&t| operating_point(scores, labels, t)),
    );
    let packets = packets.map(|p| packet_report(p, &mut per_attack));
    Report {
        model: model.to_string(),
        benign_test: benign.len(),
        malicious_test: labels.iter().filter(|&&l| l).count(),
        roc_auc: roc_auc(scores, labels),
        pr_auc: average_precision(scores, labels),
        train_quantile: train_scores.map(|t| quantile(t, 1.0 - threshold.alert_fpr)),
        threshold,
        tpr,
        fpr,
        per_attack,
        operating_points,
        packets,
        samples,
    }
}

/// Overall per-packet figures; fills the per-attack packet columns.
fn packet_report(p: &PacketScores, per_attack: &mut Vec<AttackRow>) -> PacketReport {
    let benign: Vec<WeightedScore> = p
        .units
        .iter()
        .filter(|u| u.benign > 0)
        .map(|u| WeightedScore { malicious: 0, ..*u })
        .collect();
    let mut by_attack: BTreeMap<&str, Vec<WeightedScore>> = BTreeMap::new();
    for (u, g) in p.units.iter().zip(&p.groups) {
        if u.malicious > 0 {
            by_attack
                .entry(g)
                .or_default()
                .push(WeightedScore { benign: 0, ..*u });
        }
    }
    for (name, mal) in by_attack {
        let n: u64 = mal.iter().map(|u| u.malicious).sum();
        let all: Vec<WeightedScore> = mal.into_iter().chain(benign.iter().copied()).collect();
        let auc = weighted_roc_auc(&all);
        match per_attack.iter_mut().find(|a| a.attack == name) {
            Some(a) => {
                a.packets = n;
                a.packet_roc_auc = auc;
            }
            // Malicious packets only in no sample: the attack has no sample row.
            None => per_attack.push(AttackRow {
                attack: name.to_string(),
                samples: 0,
                roc_auc: None,
                pr_auc: None,
                detected: 0.0,
                packets: n,
                packet_roc_auc: auc,
            }),
        }
    }
    per_attack.sort_by(|a, b| a.attack.cmp(&b.attack));
    PacketReport {
        benign: p.units.iter().map(|u| u.benign).sum(),
        malicious: p.units.iter().map(|u| u.malicious).sum(),
        unsampled: p
            .units
            .iter()
            .filter(|u| u.score == f64::NEG_INFINITY)
            .map(|u| u.benign + u.malicious)
            .sum(),
        roc_auc: weighted_roc_auc(&p.units),
    }
}

fn f(v: Option<f64>) -> String {
    v.map_or("-".into(), |x| format!("{x:.4}"))
}

/// The table printed to the terminal.
pub fn table(r: &Report) -> String {
    let mut s = String::new();
    s += &format!(
        "model {}: {} benign and {} malicious test samples\n",
        r.model, r.benign_test, r.malicious_test
    );
    s += &format!(
        "ROC-AUC {}   PR-AUC (average precision) {}\n",
        f(r.roc_auc),
        f(r.pr_auc)
    );
    if let Some(p) = &r.packets {
        s += &format!(
            "per packet: {} benign and {} malicious ({} in no sample, scored lowest), ROC-AUC {}\n",
            p.benign,
            p.malicious,
            p.unsampled,
            f(p.roc_auc)
        );
    }
    // The threshold does not record its rule; the empirical rule's value is the
    // empirical quantile itself, so the two rules are told apart by value.
    let lognormal = crate::eval::threshold::lognormal_value(&r.threshold);
    let (rule, other) = if r.threshold.value == r.threshold.empirical {
        (
            "empirical quantile",
            format!("log-normal fit {lognormal:.2}"),
        )
    } else {
        (
            "log-normal fit",
            format!("empirical {:.2}", r.threshold.empirical),
        )
    };
    s += &format!(
        "alert threshold {:.2} ({rule}, FPR target {}; {other}{}) → TPR {:.4}, FPR {:.4}\n",
        r.threshold.value,
        r.threshold.alert_fpr,
        r.train_quantile
            .map_or(String::new(), |q| format!(", train-score quantile {q:.2}")),
        r.tpr,
        r.fpr
    );
    for p in r.operating_points.iter().filter(|p| p.target_fpr.is_some()) {
        s += &format!(
            "at FPR ≤ {}: threshold {:.4} → TPR {:.4}, FPR {:.4}\n",
            p.target_fpr.unwrap_or_default(),
            p.threshold,
            p.tpr,
            p.fpr
        );
    }
    let w = r
        .per_attack
        .iter()
        .map(|a| a.attack.len())
        .max()
        .unwrap_or(6)
        .max(6);
    s += &format!(
        "{:<w$}  {:>7}  {:>7}  {:>7}  {:>8}  {:>9}  {:>10}\n",
        "attack", "samples", "ROC-AUC", "PR-AUC", "detected", "packets", "pkt ROC-AUC"
    );
    for a in &r.per_attack {
        s += &format!(
            "{:<w$}  {:>7}  {:>7}  {:>7}  {:>7.1}%  {:>9}  {:>10}\n",
            a.attack,
            a.samples,
            f(a.roc_auc),
            f(a.pr_auc),
            100.0 * a.detected,
            a.packets,
            f(a.packet_roc_auc)
        );
    }
    s
}

/// metrics.json, roc.png, pr.png and scores.png into `dir`.
pub fn write(
    dir: &Path,
    r: &Report,
    scores: &[f64],
    labels: &[bool],
    groups: &[String],
) -> Result<()> {
    std::fs::create_dir_all(dir)?;
    crate::util::write_atomic(
        &dir.join("metrics.json"),
        serde_json::to_string_pretty(r)?.as_bytes(),
    )?;
    plots::curves(
        &dir.join("roc.png"),
        &format!("ROC, {} (AUC {})", r.model, f(r.roc_auc)),
        "false-positive rate",
        "true-positive rate",
        &[(r.model.clone(), roc_curve(scores, labels))],
        true,
    )?;
    plots::curves(
        &dir.join("pr.png"),
        &format!("Precision-recall, {} (AP {})", r.model, f(r.pr_auc)),
        "recall",
        "precision",
        &[(r.model.clone(), pr_curve(scores, labels))],
        false,
    )?;
    let mut classes: Vec<(String, Vec<f64>)> = vec![(
        "benign".into(),
        scores
            .iter()
            .zip(labels)
            .filter(|(_, &l)| !l)
            .map(|(&s, _)| s)
            .collect(),
    )];
    let mut by: BTreeMap<&str, Vec<f64>> = BTreeMap::new();
    for ((s, &l), g) in scores.iter().zip(labels).zip(groups) {
        if l {
            by.entry(g.as_str()).or_default().push(*s);
        }
    }
    classes.extend(by.into_iter().map(|(k, v)| (k.to_string(), v)));
    plots::score_histogram(
        &dir.join("scores.png"),
        &format!("Scores by class, {}", r.model),
        &classes,
        Some(r.threshold.value),
    )
}
