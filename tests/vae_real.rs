//! On real captures: a VAE trained for a few epochs on the CIC-IDS-2017 benign sample
//! (train side of the docs/MODELS.md §5 split) scores a real SYN flood and a real SYN scan
//! above the held-out benign images (ROC-AUC > 0.9). Skips when ../shared/data is absent.

mod common;
#[path = "ingest_support/mod.rs"]
mod support;

use common::gpu;
use gpu_nids::data::load;
use gpu_nids::eval::metrics::roc_auc;
use gpu_nids::ingest::{IngestOptions, LabelRules, SampleKind, Side, SplitOptions};
use gpu_nids::models::ImageSpec;
use gpu_nids::train::models::train_vae;
use gpu_nids::train::TrainOptions;

#[test]
fn trained_vae_separates_real_flood_and_scan_from_benign() {
    let Some(d) = support::data_dir() else { return };
    let g = gpu();
    let split = |side| {
        let mut o = IngestOptions::new(SampleKind::Images);
        o.split = Some(SplitOptions { side, frac: 0.7 });
        o
    };
    let benign = [d.join("cicids2017/monday-benign-sample.pcap")];
    let train = load(&benign, &split(Side::Train)).unwrap();
    let test = load(&benign, &split(Side::Test)).unwrap();
    let mut attack_opts = IngestOptions::new(SampleKind::Images);
    attack_opts.labels = Some(LabelRules::load(&d.join("labels.csv")).unwrap());
    let attacks = load(
        &[
            d.join("attacks/dos/CIC-DDoS-2019-SynFlood.pcap"),
            d.join("attacks/scan/synscan.pcap"),
        ],
        &attack_opts,
    )
    .unwrap();
    assert!(
        train.set.labels.len() >= 80 && test.set.labels.len() >= 15,
        "unexpected image counts"
    );

    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("vae.safetensors");
    let opts = TrainOptions {
        epochs: 4,
        batch: 16,
        seed: 0,
        val_split: 0.1,
        log_every: 4,
        quiet: true,
        ..TrainOptions::default()
    };
    let out = train_vae(g, &train.set, &opts, &path, None, &ImageSpec::default()).unwrap();
    let first = &out.state.history[0];
    let last = out.state.history.last().unwrap();
    assert!(
        last.loss < first.loss,
        "loss did not fall: {:?}",
        out.state.history
    );

    let mut model = gpu_nids::models::registry::load(g, &path).unwrap();
    let mut score = |set: &gpu_nids::ingest::SampleSet, idx: Vec<usize>| {
        common::score_indices(model.as_mut(), set, &idx)
    };
    let benign_scores = score(&test.set, (0..test.set.labels.len()).collect());
    for (name, pick) in [
        ("CIC-DDoS-2019-SynFlood", "SynFlood"),
        ("synscan", "synscan"),
    ] {
        let idx: Vec<usize> = (0..attacks.set.labels.len())
            .filter(|&i| attacks.file_of(i).contains(pick))
            .take(48)
            .collect();
        assert!(
            !idx.is_empty() && idx.iter().all(|&i| attacks.set.labels[i] == 1),
            "{name}: labelled images expected"
        );
        let mal = score(&attacks.set, idx);
        let s: Vec<f64> = mal.iter().chain(&benign_scores).copied().collect();
        let l: Vec<bool> = (0..s.len()).map(|i| i < mal.len()).collect();
        let auc = roc_auc(&s, &l).unwrap();
        eprintln!(
            "{name}: ROC-AUC {auc:.4} ({} attack images vs {} benign test images)",
            mal.len(),
            benign_scores.len()
        );
        assert!(
            auc > 0.9,
            "{name}: ROC-AUC {auc} (attack images should score above benign ones)"
        );
    }
}
