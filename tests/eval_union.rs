//! Several models packet by packet (`eval --compare`'s union): which sample each packet
//! went to, on the real demo capture for both sample kinds, and the union's figures on a
//! hand-worked example.

use std::path::{Path, PathBuf};

use gpu_nids::data::{load, Loaded};
use gpu_nids::eval::union::{union, ModelPackets};
use gpu_nids::ingest::sample::NameTable;
use gpu_nids::ingest::{
    IngestOptions, InputReport, LabelRules, PacketMember, SampleKind, SampleSet, NO_SAMPLE,
};

fn demo(f: &str) -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("assets/demo")
        .join(f)
}

/// Every packet of the capture is listed once, and each sample holds exactly the
/// packets (and malicious packets) its metadata counts: an image its rows, a flow all of
/// its packets, also those after its n-th. Packets in no sample are the short pairs'
/// and the non-IP frames.
#[test]
fn each_packet_points_at_the_sample_holding_it() {
    for kind in [SampleKind::Images, SampleKind::Flows] {
        let mut o = IngestOptions::new(kind);
        o.labels = Some(LabelRules::load(&demo("labels.csv")).unwrap());
        o.track_members = true;
        let t = load(&[demo("test-attacks.pcap")], &o).unwrap();
        let r = &t.reports[0];
        assert_eq!(r.members.len() as u64, r.packets, "{kind:?}");
        assert!(r.members.windows(2).all(|w| w[0].number < w[1].number));
        let n = t.set.labels.len();
        let (mut packets, mut malicious) = (vec![0u32; n], vec![0u32; n]);
        let mut none = 0u64;
        for m in &r.members {
            if m.sample == NO_SAMPLE {
                none += 1;
                continue;
            }
            packets[m.sample as usize] += 1;
            malicious[m.sample as usize] += m.malicious as u32;
        }
        for (i, meta) in t.set.meta.iter().enumerate() {
            assert_eq!(
                (packets[i], malicious[i]),
                (meta.packets, meta.malicious_packets),
                "{kind:?} sample {i}"
            );
        }
        assert_eq!(none, r.unsampled_packets + r.non_ip_packets, "{kind:?}");
        assert_eq!(
            r.members.iter().filter(|m| m.malicious).count() as u64,
            r.malicious_packets
        );
        if kind == SampleKind::Flows {
            assert!(
                t.set.meta.iter().any(|m| m.packets > 4),
                "the demo has flows longer than a sample, whose late packets this checks"
            );
        }
    }
}

fn member(number: u64, sample: u32, malicious: bool, class_id: u16) -> PacketMember {
    PacketMember {
        number,
        sample,
        malicious,
        class_id,
    }
}

fn loaded(names: &NameTable, members: Vec<PacketMember>) -> Loaded {
    let mut set = SampleSet::new(1);
    set.names = names.clone();
    Loaded {
        set,
        files: vec!["t.pcap".into()],
        reports: vec![InputReport {
            path: "t.pcap".into(),
            members,
            ..Default::default()
        }],
    }
}

/// Packets 1–3 benign, 4–5 a flood, 6 a scan. Model A (threshold 10): samples {1,2,3}
/// score 5 and {4,5} score 20, packet 6 in none. Model B (threshold 2): {1,6} score 1,
/// {2,3,4,5} score 3. Per packet, score / threshold (the union's order): A .5 .5 .5 2 2
/// −∞, B .5 1.5 1.5 1.5 1.5 .5, union (max) .5 1.5 1.5 2 2 .5.
#[test]
fn union_of_two_models_by_hand() {
    let mut names = NameTable::new();
    let (b, flood, scan) = (
        names.intern("benign"),
        names.intern("flood"),
        names.intern("scan"),
    );
    let class = [b, b, b, flood, flood, scan];
    let a_sample = [0, 0, 0, 1, 1, NO_SAMPLE];
    let b_sample = [0, 1, 1, 1, 1, 0];
    let make = |samples: [u32; 6]| {
        (0..6)
            .map(|i| member(i as u64 + 1, samples[i], i >= 3, class[i]))
            .collect::<Vec<_>>()
    };
    let (ta, tb) = (
        loaded(&names, make(a_sample)),
        loaded(&names, make(b_sample)),
    );
    let u = union(&[
        ModelPackets {
            name: "a".into(),
            test: &ta,
            scores: &[5.0, 20.0],
            threshold: 10.0,
        },
        ModelPackets {
            name: "b".into(),
            test: &tb,
            scores: &[1.0, 3.0],
            threshold: 2.0,
        },
    ])
    .unwrap();
    let close = |x: f64, y: f64| (x - y).abs() < 1e-12;
    assert_eq!((u.benign_packets, u.malicious_packets), (3, 3));
    // A alerts on 4, 5; B on 2–5; any of them on 2–5.
    assert!(close(u.by_model[0].tpr, 2.0 / 3.0) && close(u.by_model[0].fpr, 0.0));
    assert!(close(u.by_model[1].tpr, 2.0 / 3.0) && close(u.by_model[1].fpr, 2.0 / 3.0));
    assert!(close(u.any.tpr, 2.0 / 3.0) && close(u.any.fpr, 2.0 / 3.0));
    // Malicious (2, 2, .5) against benign (.5, 1.5, 1.5): 6 wins and a tie of 9 pairs.
    assert!(close(u.any.roc_auc.unwrap(), 6.5 / 9.0), "{:?}", u.any);
    assert!(close(u.by_model[0].roc_auc.unwrap(), 6.0 / 9.0));
    assert!(close(u.by_model[1].roc_auc.unwrap(), 4.5 / 9.0));
    let names: Vec<&str> = u.per_attack.iter().map(|a| a.attack.as_str()).collect();
    assert_eq!(names, ["flood", "scan"]);
    let (f, s) = (&u.per_attack[0], &u.per_attack[1]);
    assert_eq!((f.packets, s.packets), (2, 1));
    assert!(close(f.detected, 1.0) && f.detected_by == [1.0, 1.0]);
    assert!(close(f.roc_auc.unwrap(), 1.0));
    assert!(close(s.detected, 0.0) && s.detected_by == [0.0, 0.0]);
    // The scan packet (.5) ties the lowest benign one and loses to the other two.
    assert!(close(s.roc_auc.unwrap(), 0.5 / 3.0));
}

#[test]
fn union_refuses_a_threshold_that_is_not_a_number() {
    let names = NameTable::new();
    let t = loaded(&names, vec![member(1, 0, false, 0)]);
    let m = |threshold| ModelPackets {
        name: "m".into(),
        test: &t,
        scores: &[1.0],
        threshold,
    };
    for bad in [f64::NAN, f64::INFINITY] {
        let e = union(&[m(1.0), m(bad)]).unwrap_err().to_string();
        assert!(e.contains("threshold"), "{e}");
    }
    // A threshold of 0 (alert on every positive score) still combines.
    assert_eq!(union(&[m(1.0), m(0.0)]).unwrap().by_model[1].fpr, 1.0);
}
