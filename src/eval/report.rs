//! An evaluation report: overall and per-attack ROC-AUC / PR-AUC, the alert threshold
//! with the TPR/FPR it gives, as a table, metrics.json and pictures.

use std::collections::BTreeMap;
use std::path::Path;

use anyhow::Result;
use serde::{Deserialize, Serialize};

use super::metrics::{average_precision, pr_curve, quantile, rates_at, roc_auc, roc_curve};
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
    /// Ingest options the samples were made with (e.g. whether addresses were masked).
    pub samples: serde_json::Value,
}

/// `groups[i]`: the attack a malicious sample belongs to (ignored for benign ones).
pub fn build(
    model: &str,
    scores: &[f64],
    labels: &[bool],
    groups: &[String],
    threshold: Threshold,
    train_scores: Option<&[f64]>,
    samples: serde_json::Value,
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
    let per_attack = by_attack
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
            }
        })
        .collect();
    let (tpr, fpr) = rates_at(scores, labels, threshold.value);
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
        samples,
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
    s += &format!(
        "alert threshold {:.2} (log-normal fit, FPR target {}; empirical {:.2}{}) → TPR {:.4}, FPR {:.4}\n",
        r.threshold.value,
        r.threshold.alert_fpr,
        r.threshold.empirical,
        r.train_quantile.map_or(String::new(), |q| format!(", train-score quantile {q:.2}")),
        r.tpr,
        r.fpr
    );
    let w = r
        .per_attack
        .iter()
        .map(|a| a.attack.len())
        .max()
        .unwrap_or(6)
        .max(6);
    s += &format!(
        "{:<w$}  {:>7}  {:>7}  {:>7}  {:>8}\n",
        "attack", "samples", "ROC-AUC", "PR-AUC", "detected"
    );
    for a in &r.per_attack {
        s += &format!(
            "{:<w$}  {:>7}  {:>7}  {:>7}  {:>7.1}%\n",
            a.attack,
            a.samples,
            f(a.roc_auc),
            f(a.pr_auc),
            100.0 * a.detected
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
