//! Ranking metrics for anomaly scores (higher score = more anomalous).

/// ROC-AUC by the Mann–Whitney statistic, ties counted as one half.
/// None when either class is empty.
pub fn roc_auc(scores: &[f64], labels: &[bool]) -> Option<f64> {
    let mut idx: Vec<usize> = (0..scores.len()).collect();
    idx.sort_by(|&a, &b| scores[a].total_cmp(&scores[b]));
    let (mut rank_sum, mut n_pos) = (0f64, 0usize);
    let mut i = 0;
    while i < idx.len() {
        let mut j = i;
        while j + 1 < idx.len() && scores[idx[j + 1]] == scores[idx[i]] {
            j += 1;
        }
        // Average 1-based rank of the tie group i..=j.
        let rank = (i + j) as f64 / 2.0 + 1.0;
        for &k in &idx[i..=j] {
            if labels[k] {
                rank_sum += rank;
                n_pos += 1;
            }
        }
        i = j + 1;
    }
    let n_neg = scores.len() - n_pos;
    if n_pos == 0 || n_neg == 0 {
        return None;
    }
    let u = rank_sum - (n_pos * (n_pos + 1)) as f64 / 2.0;
    Some(u / (n_pos as f64 * n_neg as f64))
}

/// Points of a curve at every distinct score threshold, from the highest down.
fn sweep(scores: &[f64], labels: &[bool]) -> Vec<(f64, usize, usize)> {
    let mut idx: Vec<usize> = (0..scores.len()).collect();
    idx.sort_by(|&a, &b| scores[b].total_cmp(&scores[a]));
    let (mut tp, mut fp) = (0, 0);
    let mut out = Vec::new();
    for (r, &k) in idx.iter().enumerate() {
        if labels[k] {
            tp += 1;
        } else {
            fp += 1;
        }
        let last_of_tie = r + 1 == idx.len() || scores[idx[r + 1]] != scores[k];
        if last_of_tie {
            out.push((scores[k], tp, fp));
        }
    }
    out
}

/// Average precision (area under the precision–recall step curve), as scikit-learn
/// computes it: Σ (R_i − R_{i−1}) · P_i over distinct thresholds.
pub fn average_precision(scores: &[f64], labels: &[bool]) -> Option<f64> {
    let n_pos = labels.iter().filter(|&&l| l).count();
    if n_pos == 0 {
        return None;
    }
    let mut ap = 0.0;
    let mut prev_recall = 0.0;
    for (_, tp, fp) in sweep(scores, labels) {
        let recall = tp as f64 / n_pos as f64;
        let precision = tp as f64 / (tp + fp) as f64;
        ap += (recall - prev_recall) * precision;
        prev_recall = recall;
    }
    Some(ap)
}

/// ROC curve as (FPR, TPR) points starting at (0, 0).
pub fn roc_curve(scores: &[f64], labels: &[bool]) -> Vec<(f64, f64)> {
    let n_pos = labels.iter().filter(|&&l| l).count().max(1) as f64;
    let n_neg = labels.iter().filter(|&&l| !l).count().max(1) as f64;
    let mut pts = vec![(0.0, 0.0)];
    pts.extend(
        sweep(scores, labels)
            .into_iter()
            .map(|(_, tp, fp)| (fp as f64 / n_neg, tp as f64 / n_pos)),
    );
    pts
}

/// Precision–recall curve as (recall, precision) points.
pub fn pr_curve(scores: &[f64], labels: &[bool]) -> Vec<(f64, f64)> {
    let n_pos = labels.iter().filter(|&&l| l).count().max(1) as f64;
    sweep(scores, labels)
        .into_iter()
        .map(|(_, tp, fp)| (tp as f64 / n_pos, tp as f64 / (tp + fp) as f64))
        .collect()
}

/// True- and false-positive rates of the rule "score > threshold".
pub fn rates_at(scores: &[f64], labels: &[bool], threshold: f64) -> (f64, f64) {
    let (mut tp, mut fp, mut p, mut n) = (0usize, 0usize, 0usize, 0usize);
    for (&s, &l) in scores.iter().zip(labels) {
        if l {
            p += 1;
            tp += (s > threshold) as usize;
        } else {
            n += 1;
            fp += (s > threshold) as usize;
        }
    }
    (tp as f64 / p.max(1) as f64, fp as f64 / n.max(1) as f64)
}

/// Empirical quantile with linear interpolation (numpy's default).
pub fn quantile(values: &[f64], q: f64) -> f64 {
    let mut v: Vec<f64> = values.iter().copied().filter(|x| x.is_finite()).collect();
    if v.is_empty() {
        return f64::NAN;
    }
    v.sort_by(f64::total_cmp);
    let pos = q.clamp(0.0, 1.0) * (v.len() - 1) as f64;
    let (lo, hi) = (pos.floor() as usize, pos.ceil() as usize);
    v[lo] + (v[hi] - v[lo]) * (pos - lo as f64)
}

/// Items sharing one score: `benign` negatives and `malicious` positives
/// (e.g. the packets of one sample, which all get the sample's score).
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct WeightedScore {
    pub score: f64,
    pub benign: u64,
    pub malicious: u64,
}

/// ROC-AUC of items given in weighted groups, ties counted as one half:
/// the same number `roc_auc` gives on the expanded list, without
/// expanding it (a capture has millions of packets, its samples thousands).
/// None when either class is empty.
pub fn weighted_roc_auc(units: &[WeightedScore]) -> Option<f64> {
    let mut idx: Vec<usize> = (0..units.len()).collect();
    idx.sort_by(|&a, &b| units[a].score.total_cmp(&units[b].score));
    let (mut neg_below, mut wins) = (0f64, 0f64);
    let mut i = 0;
    while i < idx.len() {
        let mut j = i;
        let (mut pos, mut neg) = (0f64, 0f64);
        while j < idx.len() && units[idx[j]].score.total_cmp(&units[idx[i]].score).is_eq() {
            pos += units[idx[j]].malicious as f64;
            neg += units[idx[j]].benign as f64;
            j += 1;
        }
        wins += pos * (neg_below + neg / 2.0);
        neg_below += neg;
        i = j;
    }
    let n_pos: f64 = units.iter().map(|u| u.malicious as f64).sum();
    let n_neg = neg_below;
    if n_pos == 0.0 || n_neg == 0.0 {
        return None;
    }
    Some(wins / (n_pos * n_neg))
}

/// The score of every packet when samples may share packets: the highest
/// score of the samples holding it, `f64::NEG_INFINITY` (the lowest) for a
/// packet in none. `members` lists (sample, packet) pairs.
pub fn packet_scores(n_packets: usize, members: &[(usize, usize)], scores: &[f64]) -> Vec<f64> {
    let mut out = vec![f64::NEG_INFINITY; n_packets];
    for &(s, p) in members {
        if let (Some(o), Some(&v)) = (out.get_mut(p), scores.get(s)) {
            if v > *o {
                *o = v;
            }
        }
    }
    out
}

/// One point of the ROC curve: the rule "score > threshold" and its rates.
#[derive(Clone, Debug, PartialEq, serde::Serialize, serde::Deserialize)]
pub struct OperatingPoint {
    /// The false-positive rate asked for; None for a given threshold.
    pub target_fpr: Option<f64>,
    pub threshold: f64,
    pub tpr: f64,
    pub fpr: f64,
}

/// The highest-TPR rule "score > t" whose FPR stays at or under `target`,
/// with t one of the scores (or the highest score when even the top one
/// is too many false positives, which flags nothing). None without both classes.
pub fn operating_point(scores: &[f64], labels: &[bool], target: f64) -> Option<OperatingPoint> {
    let n_pos = labels.iter().filter(|&&l| l).count();
    let n_neg = labels.len() - n_pos;
    if n_pos == 0 || n_neg == 0 {
        return None;
    }
    // Sweep point k counts the scores ≥ its score, i.e. "score > next lower
    // distinct score"; so threshold k+1's score gives point k's rates.
    let pts = sweep(scores, labels);
    let mut best = OperatingPoint {
        target_fpr: Some(target),
        threshold: pts[0].0,
        tpr: 0.0,
        fpr: 0.0,
    };
    for w in pts.windows(2) {
        let (_, tp, fp) = w[0];
        let fpr = fp as f64 / n_neg as f64;
        if fpr > target {
            break;
        }
        best = OperatingPoint {
            target_fpr: Some(target),
            threshold: w[1].0,
            tpr: tp as f64 / n_pos as f64,
            fpr,
        };
    }
    Some(best)
}
