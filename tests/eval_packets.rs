//! Per-packet ROC-AUC and the operating points of `eval`, on hand-computed examples.

use gpu_nids::eval::metrics::{
    operating_point, packet_scores, rates_at, roc_auc, weighted_roc_auc, WeightedScore,
};
use gpu_nids::eval::report::{build, PacketScores};
use gpu_nids::eval::threshold::fit;

fn close(a: f64, b: f64) -> bool {
    (a - b).abs() < 1e-12
}

#[test]
fn packet_auc_of_overlapping_samples_and_an_unsampled_packet() {
    // Samples: S0 (0.9) holds p0 p1; S1 (0.5) holds p1 p2 p3; S2 (0.2) holds p3.
    // p4 is in no sample. Malicious: p1, p3, p4.
    let members = [(0, 0), (0, 1), (1, 1), (1, 2), (1, 3), (2, 3)];
    let s = packet_scores(5, &members, &[0.9, 0.5, 0.2]);
    assert_eq!(s, vec![0.9, 0.9, 0.5, 0.5, f64::NEG_INFINITY]);
    let y = [false, true, false, true, true];
    // By hand, (positive, negative) pairs: p1~p0 tie ½, p1>p2 1, p3<p0 0,
    // p3~p2 tie ½, p4 below both 0 → 2 / 6.
    assert!(close(roc_auc(&s, &y).unwrap(), 1.0 / 3.0));
    // The same packets as weighted groups of equal score.
    let units = [
        WeightedScore {
            score: 0.9,
            benign: 1,
            malicious: 1,
        },
        WeightedScore {
            score: 0.5,
            benign: 1,
            malicious: 1,
        },
        WeightedScore {
            score: f64::NEG_INFINITY,
            benign: 0,
            malicious: 1,
        },
    ];
    assert!(close(weighted_roc_auc(&units).unwrap(), 1.0 / 3.0));
}

#[test]
fn weighted_auc_equals_the_expanded_list() {
    let units = [
        WeightedScore {
            score: 3.0,
            benign: 2,
            malicious: 5,
        },
        WeightedScore {
            score: 1.0,
            benign: 7,
            malicious: 0,
        },
        WeightedScore {
            score: 2.0,
            benign: 1,
            malicious: 3,
        },
        WeightedScore {
            score: 1.0,
            benign: 0,
            malicious: 2,
        },
        WeightedScore {
            score: f64::NEG_INFINITY,
            benign: 4,
            malicious: 1,
        },
    ];
    let (mut s, mut y) = (vec![], vec![]);
    for u in &units {
        for _ in 0..u.benign {
            s.push(u.score);
            y.push(false);
        }
        for _ in 0..u.malicious {
            s.push(u.score);
            y.push(true);
        }
    }
    assert!(close(
        weighted_roc_auc(&units).unwrap(),
        roc_auc(&s, &y).unwrap()
    ));
    assert_eq!(
        weighted_roc_auc(&[WeightedScore {
            score: 1.0,
            benign: 3,
            malicious: 0
        }]),
        None
    );
}

#[test]
fn operating_points_read_off_the_roc_curve() {
    let s = [0.9, 0.8, 0.7, 0.6, 0.5, 0.4];
    let y = [true, false, true, false, false, false];
    // One false positive in four allowed: "score > 0.6" flags 0.9, 0.8, 0.7.
    let p = operating_point(&s, &y, 0.25).unwrap();
    assert_eq!(p.threshold, 0.6);
    assert!(close(p.tpr, 1.0) && close(p.fpr, 0.25));
    assert_eq!(rates_at(&s, &y, p.threshold), (p.tpr, p.fpr));
    // None allowed: "score > 0.8" flags only 0.9.
    let p = operating_point(&s, &y, 0.0).unwrap();
    assert_eq!(p.threshold, 0.8);
    assert!(close(p.tpr, 0.5) && close(p.fpr, 0.0));
    assert!(operating_point(&s, &[false; 6], 0.1).is_none());
}

#[test]
fn report_carries_operating_points_and_per_packet_figures() {
    let scores = [5.0, 1.0, 4.0, 2.0];
    let labels = [true, false, true, false];
    let groups: Vec<String> = ["dos", "b", "scan", "b"].map(String::from).to_vec();
    let mut t = fit(&[1.0, 2.0, 3.0], 1e-3);
    t.value = 3.0;
    let packets = PacketScores {
        units: vec![
            WeightedScore {
                score: 5.0,
                benign: 1,
                malicious: 3,
            },
            WeightedScore {
                score: 1.0,
                benign: 10,
                malicious: 0,
            },
            WeightedScore {
                score: 4.0,
                benign: 0,
                malicious: 2,
            },
            WeightedScore {
                score: 2.0,
                benign: 10,
                malicious: 0,
            },
            // A scan packet in no sample.
            WeightedScore {
                score: f64::NEG_INFINITY,
                benign: 5,
                malicious: 1,
            },
        ],
        groups: ["dos", "b", "scan", "b", "scan"].map(String::from).to_vec(),
    };
    let r = build(
        "m",
        &scores,
        &labels,
        &groups,
        t,
        None,
        serde_json::Value::Null,
        Some(&packets),
    );
    assert_eq!(r.operating_points.len(), 3);
    assert_eq!(r.operating_points[0].target_fpr, None);
    assert_eq!(r.operating_points[0].threshold, 3.0);
    let p = r.packets.as_ref().unwrap();
    assert_eq!((p.benign, p.malicious, p.unsampled), (26, 6, 6));
    // dos: 3 packets at 5.0 against 26 benign: 25 below, 1 tied → (25 + ½) / 26.
    let dos = r.per_attack.iter().find(|a| a.attack == "dos").unwrap();
    assert_eq!(dos.packets, 3);
    assert!(close(dos.packet_roc_auc.unwrap(), 25.5 / 26.0));
    // scan: the 2 at 4.0 beat 25 benign (all but the one at 5.0); the unsampled one
    // ties with the 5 unsampled benign → (2·25 + ½·5) / (3·26).
    let scan = r.per_attack.iter().find(|a| a.attack == "scan").unwrap();
    assert_eq!(scan.packets, 3);
    assert!(close(
        scan.packet_roc_auc.unwrap(),
        (2.0 * 25.0 + 2.5) / 78.0
    ));
    let table = gpu_nids::eval::report::table(&r);
    assert!(table.contains("per packet"), "{table}");
    assert!(table.contains("at FPR ≤ 0.01"), "{table}");
}
