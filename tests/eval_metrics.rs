//! Metrics against values scikit-learn gives for the same inputs, and the §7 threshold.

use gpu_nids::eval::metrics::{average_precision, quantile, rates_at, roc_auc, roc_curve};
use gpu_nids::eval::threshold::{fit, norm_ppf};

fn close(a: f64, b: f64, tol: f64) -> bool {
    (a - b).abs() <= tol
}

#[test]
fn roc_auc_and_ap_match_sklearn() {
    // sklearn: roc_auc_score([0,0,1,1],[.1,.4,.35,.8]) = 0.75; average_precision_score = 0.8333…
    let s = [0.1, 0.4, 0.35, 0.8];
    let y = [false, false, true, true];
    assert!(close(roc_auc(&s, &y).unwrap(), 0.75, 1e-12));
    assert!(close(
        average_precision(&s, &y).unwrap(),
        0.833_333_333_333,
        1e-9
    ));
    // Ties: roc_auc_score([0,1,0,1],[.5,.5,.2,.9]) = 0.875; AP = 0.8333…
    let s = [0.5, 0.5, 0.2, 0.9];
    let y = [false, true, false, true];
    assert!(close(roc_auc(&s, &y).unwrap(), 0.875, 1e-12));
    assert!(close(
        average_precision(&s, &y).unwrap(),
        0.833_333_333_333,
        1e-9
    ));
    // Perfect and inverted rankings; one class only.
    assert_eq!(roc_auc(&[1.0, 2.0], &[false, true]), Some(1.0));
    assert_eq!(roc_auc(&[2.0, 1.0], &[false, true]), Some(0.0));
    assert_eq!(roc_auc(&[1.0, 2.0], &[true, true]), None);
}

#[test]
fn roc_curve_ends_at_one_one() {
    let s = [0.3, 0.1, 0.7, 0.7, 0.2];
    let y = [true, false, true, false, false];
    let c = roc_curve(&s, &y);
    assert_eq!(c.first(), Some(&(0.0, 0.0)));
    assert_eq!(c.last(), Some(&(1.0, 1.0)));
    assert!(c.windows(2).all(|w| w[0].0 <= w[1].0 && w[0].1 <= w[1].1));
    assert_eq!(rates_at(&s, &y, 0.25), (1.0, 1.0 / 3.0));
}

#[test]
fn quantile_interpolates_like_numpy() {
    // numpy.quantile([1,2,3,4], 0.9) = 3.7
    assert!(close(quantile(&[4.0, 1.0, 3.0, 2.0], 0.9), 3.7, 1e-12));
}

#[test]
fn lognormal_threshold_recovers_its_distribution() {
    assert!(close(norm_ppf(0.999), 3.090_232_306_167_813, 1e-8));
    assert!(close(norm_ppf(0.5), 0.0, 1e-12));
    assert!(close(norm_ppf(0.025), -1.959_963_984_540_054, 1e-8));
    // Scores exp(N(1, 0.5²)) taken at evenly spaced quantiles: the fit gets μ≈1, σ≈0.5
    // and the threshold lands near exp(1 + 0.5·3.09).
    let n = 2000;
    let scores: Vec<f64> = (0..n)
        .map(|i| (1.0 + 0.5 * norm_ppf((i as f64 + 0.5) / n as f64)).exp())
        .collect();
    let t = fit(&scores, 1e-3);
    assert!(close(t.ln_mean, 1.0, 1e-3), "{t:?}");
    assert!(close(t.ln_std, 0.5, 0.01), "{t:?}");
    assert!(
        close(t.value, (1.0f64 + 0.5 * 3.090_232).exp(), 0.3),
        "{t:?}"
    );
    assert!(t.empirical > 0.0 && t.n == n);
}

/// `eval --compare`'s table gives, per attack and model, the share of that attack's
/// samples above the model's own threshold.
#[test]
fn compare_table_gives_each_models_detection_per_attack() {
    use gpu_nids::eval::report::build;
    use gpu_nids::eval::scored::compare_table;
    let labels = [false, false, false, true, true, true];
    let groups: Vec<String> = ["b", "b", "b", "flood", "flood", "scan"]
        .iter()
        .map(|s| s.to_string())
        .collect();
    let report = |name: &str, scores: &[f64], cut: f64| {
        let mut t = fit(&[1.0, 2.0, 3.0], 0.01);
        t.value = cut;
        build(
            name,
            scores,
            &labels,
            &groups,
            t,
            None,
            serde_json::Value::Null,
            None,
        )
    };
    // Model a alerts on both flood samples and not the scan; model b on the scan only.
    let a = report("a", &[1.0, 2.0, 3.0, 9.0, 8.0, 2.5], 5.0);
    let b = report("b", &[1.0, 2.0, 3.0, 2.0, 6.0, 9.0], 7.0);
    let t = compare_table(&[&a, &b]);
    assert!(
        t.contains("| flood detected at threshold | 100.0 % | 0.0 % |"),
        "{t}"
    );
    assert!(
        t.contains("| scan detected at threshold | 0.0 % | 100.0 % |"),
        "{t}"
    );
}
