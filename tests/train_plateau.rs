//! The stopping rule, the minimum-steps rule, the small-set batch and the threshold's
//! support warning: pure functions, no GPU.

use gpu_nids::cli::train::small_set_batch;
use gpu_nids::eval::threshold::{fit_with, support_warning, Rule};
use gpu_nids::train::plateau::{fits_budget, parse_duration, Plateau};
use std::time::Duration;

fn rule(patience: usize, min_steps: u64) -> Plateau {
    Plateau {
        patience,
        min_rel: 1e-3,
        min_steps,
    }
}

fn some(v: &[f64]) -> Vec<Option<f64>> {
    v.iter().map(|&x| Some(x)).collect()
}

/// The first epoch count after which the rule says stop, steps_per_epoch steps each.
fn stops_after(r: &Plateau, curve: &[f64], steps_per_epoch: u64) -> Option<usize> {
    (1..=curve.len()).find(|&e| r.should_stop(&some(&curve[..e]), e as u64 * steps_per_epoch))
}

#[test]
fn stops_once_patience_epochs_pass_without_a_relative_gain() {
    // Falls to 100 at epoch 4, then creeps, never 1e-3 below that reference in all.
    let curve = [
        400.0, 200.0, 120.0, 100.0, 99.97, 99.95, 99.93, 99.92, 99.91,
    ];
    let r = rule(3, 0);
    assert_eq!(stops_after(&r, &curve, 10), Some(7));
    // The creep still counts for which model is kept.
    let s = r.state(&some(&curve[..7])).unwrap();
    assert_eq!((s.best_epoch, s.best, s.stale), (7, 99.93, 3));
}

#[test]
fn a_real_gain_resets_the_count_and_a_bump_does_not_stop_early() {
    // A worse epoch, then a gain of more than 1e-3: the count starts again.
    let curve = [
        300.0, 200.0, 210.0, 205.0, 150.0, 151.0, 152.0, 149.9, 150.5,
    ];
    let r = rule(3, 0);
    assert_eq!(stops_after(&r, &curve, 10), Some(8));
    let s = r.state(&some(&curve[..8])).unwrap();
    assert_eq!(
        s.best_epoch, 8,
        "149.9 < 150 is the lowest, kept though below 1e-3"
    );
    assert_eq!(s.stale, 3);
    // Still falling steadily: never stops.
    let falling: Vec<f64> = (0..50).map(|i| 1000.0 * 0.98f64.powi(i)).collect();
    assert_eq!(stops_after(&r, &falling, 10), None);
}

#[test]
fn no_stop_before_the_minimum_steps() {
    let flat = [100.0; 30];
    // 3 steps an epoch (152 images at batch 64): 200 steps is epoch 67, beyond the curve.
    assert_eq!(stops_after(&rule(5, 200), &flat, 3), None);
    // 19 steps an epoch: step 200 falls in epoch 11, after the patience ran out at 6.
    assert_eq!(stops_after(&rule(5, 200), &flat, 19), Some(11));
    assert_eq!(stops_after(&rule(5, 0), &flat, 19), Some(6));
}

#[test]
fn epochs_without_validation_count_as_stale_and_none_first_waits() {
    let r = rule(2, 0);
    assert!(r.state(&[None, None]).is_none());
    assert!(!r.should_stop(&[None, None, None], 100));
    assert!(r.should_stop(&[None, Some(5.0), None, Some(f64::NAN)], 100));
}

#[test]
fn time_budget_and_durations() {
    let b = Some(Duration::from_secs(60));
    assert!(fits_budget(
        b,
        Duration::from_secs(30),
        Duration::from_secs(30)
    ));
    assert!(!fits_budget(
        b,
        Duration::from_secs(31),
        Duration::from_secs(30)
    ));
    assert!(fits_budget(
        None,
        Duration::from_secs(1 << 20),
        Duration::from_secs(1)
    ));
    assert_eq!(parse_duration("10m"), Ok(Duration::from_secs(600)));
    assert_eq!(parse_duration("1.5h"), Ok(Duration::from_secs(5400)));
    assert_eq!(parse_duration("90"), Ok(Duration::from_secs(90)));
    assert!(parse_duration("10 parsecs").is_err());
    assert!(parse_duration("0s").is_err());
}

#[test]
fn small_sets_get_a_smaller_batch() {
    assert_eq!(small_set_batch(152), 8);
    assert_eq!(small_set_batch(300), 16);
    assert_eq!(small_set_batch(600), 32);
    assert_eq!(small_set_batch(1024), 64);
    assert_eq!(small_set_batch(100_000), 64);
    assert_eq!(small_set_batch(3), 8);
}

#[test]
fn the_warning_fires_when_validation_cannot_support_the_fpr() {
    let w = support_warning(Rule::Empirical, 17, 1e-3).expect("17 scores for 1e-3");
    assert!(w.contains("1000") && w.contains("17"), "{w}");
    assert!(!w.contains('\n'), "one line: {w}");
    assert!(support_warning(Rule::Lognormal, 17, 1e-3).is_some());
    assert!(support_warning(Rule::Empirical, 1000, 1e-3).is_none());
    assert!(support_warning(Rule::Empirical, 100, 0.01).is_none());
}

#[test]
fn rules_cut_where_they_say() {
    let scores: Vec<f64> = (1..=17).map(|i| 100.0 + i as f64).collect();
    let e = fit_with(Rule::Empirical, &scores, 1e-3);
    assert!((e.value - 116.984).abs() < 0.01, "{}", e.value);
    let l = fit_with(Rule::Lognormal, &scores, 1e-3);
    assert!(l.value > 117.0, "the log-normal extrapolates: {}", l.value);
    assert_eq!((e.ln_mean, e.empirical), (l.ln_mean, l.empirical));
}

#[test]
fn a_threshold_without_a_lognormal_fit_survives_its_checkpoint() {
    // One validation score: no log-normal fit (NaN), which JSON writes as null.
    let t = gpu_nids::eval::threshold::fit(&[3.0], 1e-3);
    assert!(t.ln_std.is_nan());
    let back: gpu_nids::eval::threshold::Threshold =
        serde_json::from_str(&serde_json::to_string(&t).unwrap()).unwrap();
    assert!(back.ln_mean.is_nan() && back.ln_std.is_nan());
    assert_eq!(back.value, t.value);
}
