//! The alert threshold of docs/MODELS.md §7: a log-normal fitted to held-out benign scores,
//! cut at its 1 − alert_fpr quantile. With a few hundred samples an empirical 99.9th
//! percentile is just the maximum; the fitted tail extrapolates instead.

use serde::{Deserialize, Serialize};

use super::metrics::quantile;

#[derive(Clone, Debug, Serialize, Deserialize, PartialEq)]
pub struct Threshold {
    /// The threshold used for alerts.
    pub value: f64,
    /// Target false-positive rate it was fitted for.
    pub alert_fpr: f64,
    /// Parameters of the fitted log-normal (of ln score); NaN (written as null) when
    /// fewer than two positive scores allow no fit.
    #[serde(deserialize_with = "nan_if_null")]
    pub ln_mean: f64,
    #[serde(deserialize_with = "nan_if_null")]
    pub ln_std: f64,
    /// Empirical 1 − alert_fpr quantile of the same scores, reported beside it.
    pub empirical: f64,
    /// How many validation scores it was fitted on.
    pub n: usize,
}

/// JSON has no NaN: serde_json writes it as null, so null reads back as NaN.
fn nan_if_null<'de, D: serde::Deserializer<'de>>(d: D) -> Result<f64, D::Error> {
    Ok(Option::<f64>::deserialize(d)?.unwrap_or(f64::NAN))
}

/// Inverse of the standard normal CDF (Acklam's rational approximation, |rel err| < 1.2e-9).
pub fn norm_ppf(p: f64) -> f64 {
    const A: [f64; 6] = [
        -3.969683028665376e1,
        2.209460984245205e2,
        -2.759285104469687e2,
        1.38357751867269e2,
        -3.066479806614716e1,
        2.506628277459239,
    ];
    const B: [f64; 5] = [
        -5.447609879822406e1,
        1.615858368580409e2,
        -1.556989798598866e2,
        6.680131188771972e1,
        -1.328068155288572e1,
    ];
    const C: [f64; 6] = [
        -7.784894002430293e-3,
        -3.223964580411365e-1,
        -2.400758277161838,
        -2.549732539343734,
        4.374664141464968,
        2.938163982698783,
    ];
    const D: [f64; 4] = [
        7.784695709041462e-3,
        3.224671290700398e-1,
        2.445134137142996,
        3.754408661907416,
    ];
    let p = p.clamp(1e-300, 1.0 - 1e-16);
    let lo = 0.02425;
    if p < lo {
        let q = (-2.0 * p.ln()).sqrt();
        (((((C[0] * q + C[1]) * q + C[2]) * q + C[3]) * q + C[4]) * q + C[5])
            / ((((D[0] * q + D[1]) * q + D[2]) * q + D[3]) * q + 1.0)
    } else if p <= 1.0 - lo {
        let q = p - 0.5;
        let r = q * q;
        (((((A[0] * r + A[1]) * r + A[2]) * r + A[3]) * r + A[4]) * r + A[5]) * q
            / (((((B[0] * r + B[1]) * r + B[2]) * r + B[3]) * r + B[4]) * r + 1.0)
    } else {
        -norm_ppf(1.0 - p)
    }
}

/// Fit on benign validation scores. Non-positive or non-finite scores are left out of the
/// log-normal fit (they cannot come from one); fewer than two usable scores fall back to
/// the empirical quantile.
pub fn fit(scores: &[f64], alert_fpr: f64) -> Threshold {
    let logs: Vec<f64> = scores
        .iter()
        .filter(|s| s.is_finite() && **s > 0.0)
        .map(|s| s.ln())
        .collect();
    let empirical = quantile(scores, 1.0 - alert_fpr);
    if logs.len() < 2 {
        return Threshold {
            value: empirical,
            alert_fpr,
            ln_mean: f64::NAN,
            ln_std: f64::NAN,
            empirical,
            n: scores.len(),
        };
    }
    let n = logs.len() as f64;
    let mean = logs.iter().sum::<f64>() / n;
    let std = (logs.iter().map(|x| (x - mean).powi(2)).sum::<f64>() / (n - 1.0)).sqrt();
    Threshold {
        value: (mean + std * norm_ppf(1.0 - alert_fpr)).exp(),
        alert_fpr,
        ln_mean: mean,
        ln_std: std,
        empirical,
        n: scores.len(),
    }
}

/// How the alert threshold is cut from the benign validation scores (docs/THRESHOLD.md
/// has the comparison that chose the default).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize, Deserialize, clap::ValueEnum)]
#[serde(rename_all = "kebab-case")]
pub enum Rule {
    /// The empirical 1 − alert_fpr quantile of the validation scores: their maximum when
    /// there are fewer than 1/alert_fpr of them. Makes no assumption about the scores'
    /// shape, which for the VAE is far from log-normal.
    #[default]
    Empirical,
    /// MODELS.md §7: the 1 − alert_fpr quantile of a log-normal fitted to the scores
    /// (extrapolates past the largest score; the checkpoints of earlier versions used it).
    Lognormal,
}

/// The rule of checkpoints that do not name one.
pub fn legacy_rule() -> Rule {
    Rule::Lognormal
}

/// Fit by `rule`; the log-normal parameters and the empirical quantile are kept either way.
pub fn fit_with(rule: Rule, scores: &[f64], alert_fpr: f64) -> Threshold {
    let mut t = fit(scores, alert_fpr);
    if rule == Rule::Empirical {
        t.value = t.empirical;
    }
    t
}

/// The value the log-normal rule gives for a fitted threshold (NaN when it had too few
/// positive scores).
pub fn lognormal_value(t: &Threshold) -> f64 {
    (t.ln_mean + t.ln_std * norm_ppf(1.0 - t.alert_fpr)).exp()
}

/// How many validation scores a target FPR needs before an empirical quantile says
/// anything about it: about 1/fpr (one expected false alarm among them).
pub fn scores_needed(alert_fpr: f64) -> usize {
    (1.0 / alert_fpr).ceil() as usize
}

/// A one-line warning when `n` validation scores cannot support `alert_fpr`.
pub fn support_warning(rule: Rule, n: usize, alert_fpr: f64) -> Option<String> {
    let need = scores_needed(alert_fpr);
    if n >= need {
        return None;
    }
    let what = match rule {
        Rule::Empirical => format!(
            "the threshold is the largest of them, and new benign traffic like them exceeds it up to about 1 time in {}",
            n + 1
        ),
        Rule::Lognormal => "the threshold extrapolates a log-normal fit past them, as reliable as that shape is".into(),
    };
    Some(format!(
        "--alert-fpr {alert_fpr} needs about {need} benign validation scores and this run has {n}: {what} (give more benign traffic, a larger --val-split or a larger --alert-fpr)"
    ))
}
