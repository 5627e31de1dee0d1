//! Several models over the same packets, as `detect -m A -m B` runs them: a packet is
//! alerted when any model alerts on a sample holding it. Models with different sample
//! units (pair images, flows) meet at the packet (docs/MODELS.md §5), so this works
//! per packet, from the sample each packet went to in each model's ingest
//! ([`crate::ingest::PacketMember`]).
//!
//! The ranking score of a packet is the largest over the models of (score − threshold) /
//! threshold: how far past its own alert threshold, relative to it, the most alarmed
//! model is (with a threshold ≤ 0, e.g. `--threshold 0`, score − threshold). It is above 0
//! exactly when some model alerts, so the union's ROC curve passes through the alerting
//! rule.

use anyhow::{bail, Result};
use serde::{Deserialize, Serialize};

use super::metrics::roc_auc;
use crate::data::Loaded;
use crate::ingest::{PacketMember, NO_SAMPLE};

/// One model's side: its test data (ingested with members tracked), its scores of that
/// data's samples, and its alert threshold.
pub struct ModelPackets<'a> {
    pub name: String,
    pub test: &'a Loaded,
    pub scores: &'a [f64],
    pub threshold: f64,
}

/// Per-packet figures of one model, or of any model alerting.
#[derive(Clone, Debug, Serialize, Deserialize, PartialEq)]
pub struct Rates {
    pub tpr: f64,
    pub fpr: f64,
    pub roc_auc: Option<f64>,
}

#[derive(Clone, Debug, Serialize, Deserialize, PartialEq)]
pub struct UnionAttack {
    pub attack: String,
    pub packets: u64,
    /// This attack's packets against every benign packet, ranked by the union score.
    pub roc_auc: Option<f64>,
    /// Share of its packets some model alerts on.
    pub detected: f64,
    /// Share of its packets each model alerts on, in `UnionReport::models` order.
    pub detected_by: Vec<f64>,
}

#[derive(Clone, Debug, Serialize, Deserialize, PartialEq)]
pub struct UnionReport {
    pub models: Vec<String>,
    pub benign_packets: u64,
    pub malicious_packets: u64,
    /// Packets some model alerts on; ranked by the union score.
    pub any: Rates,
    /// Packets each model alerts on.
    pub by_model: Vec<Rates>,
    pub per_attack: Vec<UnionAttack>,
}

/// The per-packet union of `models`, which must have read the same test captures.
pub fn union(models: &[ModelPackets]) -> Result<UnionReport> {
    let Some(first) = models.first() else {
        bail!("no models to combine");
    };
    for m in models {
        if !m.threshold.is_finite() {
            bail!(
                "{}: its alert threshold {} is not a number, so its alerts cannot be combined with other models'",
                m.name,
                m.threshold
            );
        }
        if m.test.reports.len() != first.test.reports.len() {
            bail!("{}: read other test inputs than {}", m.name, first.name);
        }
        if m.test.reports.iter().all(|r| r.members.is_empty()) {
            bail!("{}: its test data was not ingested from captures here (datasets do not record which sample each packet went to)", m.name);
        }
    }
    let names = &first.test.set.names;
    let k = models.len();
    // Per packet: label, attack group, each model's score of the sample holding it.
    let (mut labels, mut groups, mut raw) = (Vec::new(), Vec::new(), Vec::new());
    for (f, report) in first.test.reports.iter().enumerate() {
        for p in &report.members {
            labels.push(p.malicious);
            groups.push(if p.malicious {
                attack_group(names.get(p.class_id).unwrap_or(""), &report.path)
            } else {
                String::new()
            });
            for m in models {
                raw.push(packet_score(m, &m.test.reports[f].members, p.number));
            }
        }
    }
    let alerted = |i: usize, j: usize| raw[i * k + j] > models[j].threshold;
    let any = |i: usize| (0..k).any(|j| alerted(i, j));
    let excess = |i: usize, j: usize| {
        let t = models[j].threshold;
        (raw[i * k + j] - t) / if t > 0.0 { t } else { 1.0 }
    };
    let ranked = |j: usize| -> Vec<f64> { (0..labels.len()).map(|i| excess(i, j)).collect() };
    let combined: Vec<f64> = (0..labels.len())
        .map(|i| {
            (0..k)
                .map(|j| excess(i, j))
                .fold(f64::NEG_INFINITY, f64::max)
        })
        .collect();
    let rates = |hit: &dyn Fn(usize) -> bool, rank: &[f64]| {
        let (mut tp, mut fp, mut p, mut n) = (0u64, 0u64, 0u64, 0u64);
        for (i, &l) in labels.iter().enumerate() {
            let a = hit(i) as u64;
            if l {
                p += 1;
                tp += a;
            } else {
                n += 1;
                fp += a;
            }
        }
        Rates {
            tpr: tp as f64 / p.max(1) as f64,
            fpr: fp as f64 / n.max(1) as f64,
            roc_auc: roc_auc(rank, &labels),
        }
    };
    let mut attacks: Vec<&String> = groups.iter().filter(|g| !g.is_empty()).collect();
    attacks.sort();
    attacks.dedup();
    let per_attack = attacks
        .into_iter()
        .map(|a| {
            let keep: Vec<usize> = (0..labels.len())
                .filter(|&i| !labels[i] || groups[i] == *a)
                .collect();
            let mine: Vec<usize> = keep.iter().copied().filter(|&i| labels[i]).collect();
            let share = |hit: &dyn Fn(usize) -> bool| {
                mine.iter().filter(|&&i| hit(i)).count() as f64 / mine.len().max(1) as f64
            };
            UnionAttack {
                attack: a.clone(),
                packets: mine.len() as u64,
                roc_auc: roc_auc(
                    &keep.iter().map(|&i| combined[i]).collect::<Vec<_>>(),
                    &keep.iter().map(|&i| labels[i]).collect::<Vec<_>>(),
                ),
                detected: share(&any),
                detected_by: (0..k).map(|j| share(&|i| alerted(i, j))).collect(),
            }
        })
        .collect();
    let malicious = labels.iter().filter(|&&l| l).count() as u64;
    Ok(UnionReport {
        models: models.iter().map(|m| m.name.clone()).collect(),
        benign_packets: labels.len() as u64 - malicious,
        malicious_packets: malicious,
        any: rates(&any, &combined),
        by_model: (0..k)
            .map(|j| rates(&|i| alerted(i, j), &ranked(j)))
            .collect(),
        per_attack,
    })
}

/// The score of the sample holding packet `number` in `m`; the lowest value for a packet
/// in none of its samples.
fn packet_score(m: &ModelPackets, members: &[PacketMember], number: u64) -> f64 {
    members
        .binary_search_by_key(&number, |p| p.number)
        .ok()
        .map(|i| members[i].sample)
        .filter(|&s| s != NO_SAMPLE)
        .and_then(|s| m.scores.get(s as usize))
        .map_or(f64::NEG_INFINITY, |&s| s)
}

/// The per-attack group of a malicious packet or sample: the attack its label names (a
/// time window's attack name, or the capture's stem), else its capture file.
pub fn attack_group(class: &str, file: &str) -> String {
    match class {
        "" | "benign" => {
            let parts: Vec<&str> = file.rsplit(['/', '\\']).take(2).collect();
            parts.into_iter().rev().collect::<Vec<_>>().join("/")
        }
        name => name.to_string(),
    }
}

/// Markdown rows for `eval --compare`'s table: per packet, each model and any of them.
pub fn table(u: &UnionReport) -> String {
    let f = |v: Option<f64>| v.map_or("-".into(), |x| format!("{x:.4}"));
    let pct = |v: f64| format!("{:.1} %", 100.0 * v);
    let mut s = format!(
        "\nPer packet ({} benign, {} malicious), each model at its own threshold and any of them alerting (what `detect` with every -m gives); the union ranks a packet by the largest (score − threshold) / threshold:\n\n| | {} | any model |\n|---|{}---|\n",
        u.benign_packets,
        u.malicious_packets,
        u.models.join(" | "),
        "---|".repeat(u.models.len())
    );
    let mut row = |name: &str, cells: Vec<String>| {
        s += &format!("| {name} | {} |\n", cells.join(" | "));
    };
    let mut tf: Vec<String> = u
        .by_model
        .iter()
        .map(|r| format!("{:.3} / {:.4}", r.tpr, r.fpr))
        .collect();
    tf.push(format!("**{:.3} / {:.4}**", u.any.tpr, u.any.fpr));
    row("TPR / FPR per packet", tf);
    let mut auc: Vec<String> = u.by_model.iter().map(|r| f(r.roc_auc)).collect();
    auc.push(format!("**{}**", f(u.any.roc_auc)));
    row("per-packet ROC-AUC", auc);
    for a in &u.per_attack {
        let mut cells: Vec<String> = a.detected_by.iter().map(|&d| pct(d)).collect();
        cells.push(format!("{} (ROC-AUC {})", pct(a.detected), f(a.roc_auc)));
        row(
            &format!("{} packets detected ({})", a.attack, a.packets),
            cells,
        );
    }
    s
}
