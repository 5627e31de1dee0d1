//! Training until the validation loss stops improving: the rule stops the VAE loop, the
//! checkpoint holds the model with the lowest validation loss, and --resume from a
//! checkpoint of that mode continues bit for bit.

mod common;
use common::gpu;
use gpu_nids::checkpoint::Checkpoint;
use gpu_nids::ingest::{Sample, SampleMeta, SampleSet};
use gpu_nids::models::ImageSpec;
use gpu_nids::train::models::train_vae;
use gpu_nids::train::plateau::Plateau;
use gpu_nids::train::{TrainOptions, LAST};

/// The VAE parameters of a checkpoint, in `param_specs` order.
fn params_from(c: &Checkpoint, _origin: &str) -> Option<Vec<Vec<f32>>> {
    gpu_nids::models::vae::param_specs()
        .iter()
        .map(|(n, _, _)| c.tensors.get(*n).map(|t| t.1.clone()))
        .collect()
}

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

/// 16 training images at batch 4: 4 steps an epoch. A high learning rate makes the
/// validation loss bounce, so the best epoch need not be the last.
fn opts(max_epochs: usize, rule: Option<Plateau>) -> TrainOptions {
    TrainOptions {
        epochs: max_epochs,
        batch: 4,
        lr: 1e-2,
        seed: 3,
        val_split: 0.2,
        log_every: 4,
        until_plateau: rule,
        output_bias_from_data: true,
        quiet: true,
        ..TrainOptions::default()
    }
}

fn rule() -> Plateau {
    Plateau {
        patience: 2,
        min_rel: 1e-2,
        min_steps: 12,
    }
}

#[test]
fn stops_on_a_plateau_keeps_the_best_and_resumes_bit_exact() {
    let g = gpu();
    let data = images(20);
    let dir = tempfile::tempdir().unwrap();
    let spec = ImageSpec::default();
    let (a, b, c) = (
        dir.path().join("a.st"),
        dir.path().join("b.st"),
        dir.path().join("c.st"),
    );
    let max = 8;
    let ra = train_vae(g, &data, &opts(max, Some(rule())), &a, None, &spec).unwrap();
    let losses: Vec<Option<f64>> = ra.state.history.iter().map(|h| h.val).collect();
    let epochs = ra.state.epoch;
    assert!(ra.state.step >= 12, "stopped before the minimum steps");
    if epochs < max {
        assert!(rule().should_stop(&losses, ra.state.step), "{losses:?}");
    }
    // Not a step earlier than the rule says.
    for e in 1..epochs {
        assert!(
            !rule().should_stop(&losses[..e], e as u64 * 4),
            "should have stopped after epoch {e}: {losses:?}"
        );
    }
    eprintln!("val losses {losses:?}: {epochs} epochs");

    // Bounded at 5 epochs: the checkpoint's model is the best epoch's, which a fixed run
    // of that length gives, and the current state rides along under `last.` when they differ.
    let bound = 5.min(epochs);
    let rc = train_vae(g, &data, &opts(bound, Some(rule())), &c, None, &spec).unwrap();
    let lc: Vec<Option<f64>> = rc.state.history.iter().map(|h| h.val).collect();
    assert_eq!(lc[..], losses[..bound]);
    let best = rule().state(&lc).unwrap().best_epoch;
    let cc = Checkpoint::load(&c).unwrap();
    train_vae(g, &data, &opts(best, None), &b, None, &spec).unwrap();
    let cb = Checkpoint::load(&b).unwrap();
    assert_eq!(
        params_from(&cc, "c").unwrap(),
        params_from(&cb, "b").unwrap()
    );
    let has_last = cc.tensors.keys().any(|k| k.starts_with(LAST));
    assert_eq!(
        has_last,
        best != bound,
        "last.* tensors only when the best is earlier (best {best})"
    );

    // Resumed to the first run's bound: the same file as the uninterrupted run.
    let rc = train_vae(g, &data, &opts(max, Some(rule())), &c, Some(&c), &spec).unwrap();
    assert_eq!(rc.state.epoch, epochs);
    assert_eq!(rc.state.step, ra.state.step);
    let (ca, cc) = (Checkpoint::load(&a).unwrap(), Checkpoint::load(&c).unwrap());
    assert_eq!(
        ca.tensors, cc.tensors,
        "resumed run differs from the uninterrupted one"
    );
    assert_eq!(ra.threshold, rc.threshold);
}
