//! End to end on tiny synthetic data: DOC-IDS and the baselines train a few steps,
//! write checkpoints that load back into the same scores (batch-norm running
//! statistics included), and a run resumed from an epoch-1 checkpoint ends bit for bit
//! where an uninterrupted one does.

mod common;
use common::gpu;
use gpu_nids::checkpoint::Checkpoint;
use gpu_nids::models::baselines::BaselineKind;
use gpu_nids::models::doc_ids::DocIds;
use gpu_nids::models::registry;
use gpu_nids::models::FlowSpec;
use gpu_nids::train::{Optimizer, TrainOptions as FlowTrainOptions};

mod tf {
    pub use gpu_nids::data::samplers::*;
    pub use gpu_nids::train::models::*;
}

fn doc_opts(epochs: usize) -> FlowTrainOptions {
    FlowTrainOptions {
        epochs,
        batch: 4,
        log_every: 1,
        quiet: true,
        ..FlowTrainOptions::doc_ids_default()
    }
}

/// Every tensor of two checkpoints, bit for bit.
fn assert_same_tensors(a: &Checkpoint, b: &Checkpoint) {
    assert_eq!(
        a.tensors.keys().collect::<Vec<_>>(),
        b.tensors.keys().collect::<Vec<_>>()
    );
    for (name, (shape, v)) in &a.tensors {
        let (s2, v2) = &b.tensors[name];
        assert_eq!(shape, s2, "{name}: shape");
        assert!(
            v.iter().zip(v2).all(|(x, y)| x.to_bits() == y.to_bits()),
            "{name}: resumed run differs from the uninterrupted one"
        );
    }
}

#[test]
fn doc_ids_trains_round_trips_and_resumes() {
    let g = gpu();
    let dir = tempfile::tempdir().unwrap();
    let reference = tf::synthetic_flows(30, 3, 1);
    let target = tf::synthetic_flows(24, 1, 2);
    let spec = FlowSpec::new(true);
    let full = dir.path().join("full.safetensors");
    let out = tf::train_doc_ids(g, &reference, &target, &doc_opts(2), &full, None, &spec).unwrap();
    assert_eq!(out.state.classes, vec!["class0", "class1", "class2"]);
    assert_eq!(out.state.history.len(), 2);
    assert_eq!(
        (out.state.ref_train_samples, out.state.ref_val_samples),
        (27, 3)
    );
    // 27 reference training samples at batch 4: 7 steps per epoch.
    assert_eq!(out.state.step, 14);
    for h in &out.state.history {
        let acc = h.extra(gpu_nids::train::REFERENCE_ACCURACY).unwrap();
        assert!(
            h.loss.is_finite()
                && h.term("l_D").unwrap() > 0.0
                && h.term("l_R").unwrap() > 0.0
                && (0.0..=1.0).contains(&acc),
            "{h:?}"
        );
    }
    assert!(out.threshold.value.is_finite() && out.threshold.value > 0.0);

    // The checkpoint holds the running statistics, moved away from their initial values,
    // Adam's moments and the threshold; loading it reproduces the validation scores.
    let c = Checkpoint::load(&full).unwrap();
    assert_eq!(c.meta_str("model").unwrap(), "doc-ids");
    assert!(c.meta.contains_key("threshold"));
    for (name, _) in DocIds::running_names() {
        let (_, v) = c.tensor(&name).unwrap();
        let init = if name.ends_with("mean") { 0.0 } else { 1.0 };
        assert!(v.iter().any(|&x| x != init), "{name} never moved");
    }
    assert!(c.tensor("adam.m.fc5.weight").is_ok() && c.tensor("adam.v.head.bias").is_ok());
    let mut loaded = registry::load(g, &full).unwrap();
    assert_eq!(
        loaded.spec(),
        &gpu_nids::models::SampleSpec::Flows(spec.clone())
    );
    // JSON metadata keeps the threshold to within f64 printing, not bit for bit.
    let t = loaded
        .threshold()
        .cloned()
        .expect("threshold in the checkpoint");
    assert!(
        (t.value - out.threshold.value).abs() <= 1e-12 * out.threshold.value
            && t.n == out.threshold.n
    );
    let (_, val) = tf::split_benign(&target, 0.1);
    let again = common::score_indices(loaded.as_mut(), &target, &val);
    assert_eq!(
        again, out.val_scores,
        "scores from the reloaded checkpoint differ"
    );

    // Stop after epoch 1, resume to 2: the same tensors as the uninterrupted run.
    let part = dir.path().join("part.safetensors");
    tf::train_doc_ids(g, &reference, &target, &doc_opts(1), &part, None, &spec).unwrap();
    let resumed = tf::train_doc_ids(
        g,
        &reference,
        &target,
        &doc_opts(2),
        &part,
        Some(&part),
        &spec,
    )
    .unwrap();
    assert_eq!(resumed.state.step, 14);
    assert_same_tensors(&c, &Checkpoint::load(&part).unwrap());
    assert_eq!(resumed.val_scores, out.val_scores);

    // A resume with other settings is refused rather than silently mixing runs.
    let mut other = doc_opts(3);
    other.lr = 1e-4;
    let err = tf::train_doc_ids(g, &reference, &target, &other, &part, Some(&part), &spec)
        .err()
        .expect("lr change must be refused");
    assert!(err.to_string().contains("--resume"), "{err}");
}

#[test]
fn baselines_train_round_trip_and_resume() {
    let g = gpu();
    let dir = tempfile::tempdir().unwrap();
    let target = tf::synthetic_flows(40, 2, 3);
    let spec = FlowSpec::new(false);
    for (kind, optimizer) in [
        (BaselineKind::Ae, Optimizer::Sgd),
        (BaselineKind::ConvAe, Optimizer::Adam),
    ] {
        let o = |epochs| FlowTrainOptions {
            epochs,
            batch: 16,
            optimizer,
            lr: 1e-2,
            log_every: 1,
            quiet: true,
            ..FlowTrainOptions::baseline_default()
        };
        let full = dir.path().join(format!("{kind:?}-full.safetensors"));
        let out = tf::train_baseline(g, kind, &target, &o(3), &full, None, &spec).unwrap();
        // 36 training samples at batch 16: 3 steps per epoch, the last one short.
        assert_eq!(out.state.step, 9, "{kind:?}");
        let h = &out.state.history;
        assert!(
            h.iter().all(|e| e.loss.is_finite() && e.loss > 0.0),
            "{kind:?}: {h:?}"
        );
        if optimizer == Optimizer::Adam {
            assert!(
                h[2].loss < h[0].loss,
                "{kind:?}: training loss did not fall: {h:?}"
            );
        }
        let c = Checkpoint::load(&full).unwrap();
        assert_eq!(c.meta_str("model").unwrap(), kind.model_name());
        assert_eq!(
            c.tensor("adam.m.enc.0.weight").is_ok(),
            optimizer == Optimizer::Adam
        );
        let mut loaded = registry::load(g, &full).unwrap();
        let (_, val) = tf::split_benign(&target, 0.1);
        assert_eq!(
            common::score_indices(loaded.as_mut(), &target, &val),
            out.val_scores,
            "{kind:?}"
        );

        let part = dir.path().join(format!("{kind:?}-part.safetensors"));
        tf::train_baseline(g, kind, &target, &o(1), &part, None, &spec).unwrap();
        tf::train_baseline(g, kind, &target, &o(3), &part, Some(&part), &spec).unwrap();
        assert_same_tensors(&c, &Checkpoint::load(&part).unwrap());
    }
}

#[test]
fn class_balanced_split_and_reference_classes() {
    let reference = tf::synthetic_flows(50, 5, 4);
    let (classes, labels) = tf::reference_classes(&reference);
    assert_eq!(classes.len(), 5);
    let (train, val) = tf::split_reference(&labels, 5, 0.2, 0);
    assert_eq!((train.len(), val.len()), (40, 10));
    for c in 0..5u32 {
        assert_eq!(
            val.iter().filter(|&&i| labels[i] == c).count(),
            2,
            "class {c}: held-out share"
        );
    }
    // Seeded: the same seed gives the same split, another seed another one.
    assert_eq!(tf::split_reference(&labels, 5, 0.2, 0).1, val);
    assert_ne!(tf::split_reference(&labels, 5, 0.2, 1).1, val);
}
