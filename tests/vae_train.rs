//! The VAE training loop: same seed ⇒ same loss curve; --resume continues bit for bit;
//! a NaN loss stops with an error naming the steps and keeps the last good checkpoint.

mod common;
use common::gpu;
use gpu_nids::checkpoint::Checkpoint;
use gpu_nids::ingest::{Sample, SampleMeta, SampleSet};
use gpu_nids::models::ImageSpec;
use gpu_nids::train::models::train_vae;
use gpu_nids::train::TrainOptions;

/// Traffic-image-like samples: a few dark header rows per image, the rest white.
fn images(n: usize) -> SampleSet {
    let mut set = SampleSet::new(4096);
    for i in 0..n {
        let mut data = vec![255u8; 4096];
        for row in 0..(8 + i % 24) {
            for col in 0..40 {
                data[row * 64 + col] = ((row * 7 + col * 13 + i * 3) % 200) as u8;
            }
        }
        let meta = SampleMeta {
            first_ts_ns: i as u64 * 1_000_000,
            packets: 64,
            ..Default::default()
        };
        set.push(Sample { data, meta });
    }
    set
}

fn opts(epochs: usize) -> TrainOptions {
    TrainOptions {
        epochs,
        batch: 8,
        lr: 1e-3,
        seed: 5,
        val_split: 0.2,
        log_every: 2,
        quiet: true,
        ..TrainOptions::default()
    }
}

#[test]
fn same_seed_same_curve_and_resume_is_bit_exact() {
    let g = gpu();
    let data = images(20);
    let dir = tempfile::tempdir().unwrap();
    let spec = ImageSpec::default();
    let (a, b, c) = (
        dir.path().join("a.st"),
        dir.path().join("b.st"),
        dir.path().join("c.st"),
    );

    let ra = train_vae(g, &data, &opts(2), &a, None, &spec).unwrap();
    let rb = train_vae(g, &data, &opts(2), &b, None, &spec).unwrap();
    let curve = |r: &gpu_nids::train::Outcome| {
        r.state
            .history
            .iter()
            .map(|h| (h.term("BCE"), h.term("KL"), h.val))
            .collect::<Vec<_>>()
    };
    assert_eq!(
        curve(&ra),
        curve(&rb),
        "same seed, same adapter: the loss curve must repeat"
    );
    assert!(
        ra.state.history[1].term("BCE") < ra.state.history[0].term("BCE"),
        "loss should fall: {:?}",
        curve(&ra)
    );

    // One epoch, then resume to two: identical tensors (parameters and Adam state).
    train_vae(g, &data, &opts(1), &c, None, &spec).unwrap();
    let rc = train_vae(g, &data, &opts(2), &c, Some(&c), &spec).unwrap();
    assert_eq!(curve(&rc), curve(&ra));
    let (ca, cc) = (Checkpoint::load(&a).unwrap(), Checkpoint::load(&c).unwrap());
    assert_eq!(
        ca.tensors, cc.tensors,
        "resumed run differs from the uninterrupted one"
    );
    assert!(cc.meta.contains_key("threshold"));
    assert_eq!(ra.threshold, rc.threshold);

    // A different seed gives a different run.
    let mut o = opts(1);
    o.seed = 6;
    let rd = train_vae(g, &data, &o, &dir.path().join("d.st"), None, &spec).unwrap();
    assert_ne!(curve(&rd)[0], curve(&ra)[0]);
}

#[test]
fn nan_loss_stops_with_the_step_and_keeps_the_last_checkpoint() {
    let g = gpu();
    let data = images(20);
    let dir = tempfile::tempdir().unwrap();
    let spec = ImageSpec::default();
    let path = dir.path().join("m.st");
    train_vae(g, &data, &opts(1), &path, None, &spec).unwrap();
    let before = std::fs::read(&path).unwrap();
    // An absurd learning rate drives the weights to inf within a couple of steps.
    let mut o = opts(3);
    o.lr = 1e30;
    o.log_every = 1;
    let err = train_vae(g, &data, &o, &path, None, &spec)
        .err()
        .expect("training must fail")
        .to_string();
    assert!(
        err.contains("loss became") && err.contains("within steps") && err.contains("epoch 1"),
        "{err}"
    );
    assert_eq!(
        std::fs::read(&path).unwrap(),
        before,
        "the last good checkpoint must stay as it was"
    );
}

#[test]
fn resume_rejects_a_different_seed_and_other_model_kinds() {
    let g = gpu();
    let data = images(12);
    let dir = tempfile::tempdir().unwrap();
    let spec = ImageSpec::default();
    let path = dir.path().join("m.st");
    train_vae(g, &data, &opts(1), &path, None, &spec).unwrap();
    let mut o = opts(2);
    o.seed = 99;
    let err = train_vae(g, &data, &o, &dir.path().join("n.st"), Some(&path), &spec)
        .err()
        .unwrap()
        .to_string();
    assert!(err.contains("same --batch, --seed and --lr"), "{err}");
    let mut c = Checkpoint::load(&path).unwrap();
    c.meta.insert("model".into(), "doc-ids".into());
    let other = dir.path().join("o.st");
    c.save(&other).unwrap();
    let err = train_vae(
        g,
        &data,
        &opts(2),
        &dir.path().join("p.st"),
        Some(&other),
        &spec,
    )
    .err()
    .unwrap()
    .to_string();
    assert!(err.contains("expected 'vae'"), "{err}");
}
