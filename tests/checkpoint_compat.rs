//! Checkpoints written before the models shared one training loop still load, score
//! and `--resume`. tests/fixtures/checkpoints-before-learner.json holds, for a VAE, a
//! DOC-IDS (with a kept model, so `last.*` tensors) and an AE checkpoint written by
//! that code (`train … --max-epochs 2` on assets/demo), the metadata verbatim and
//! every tensor's name and shape; the test rebuilds each file with deterministic
//! values in those tensors.

mod common;
use common::{gpu, rand_vec};

use gpu_nids::checkpoint::Checkpoint;
use gpu_nids::data::samplers::synthetic_flows;
use gpu_nids::ingest::{NameTable, Sample, SampleMeta, SampleSet};
use gpu_nids::models::baselines::BaselineKind;
use gpu_nids::models::registry;
use gpu_nids::models::{FlowSpec, ImageSpec};
use gpu_nids::train::{models as jobs, TrainOptions, TrainState};

fn fixture(name: &str) -> Checkpoint {
    let all: serde_json::Value =
        serde_json::from_str(include_str!("fixtures/checkpoints-before-learner.json")).unwrap();
    let f = &all[name];
    let mut c = Checkpoint::default();
    for (k, v) in f["meta"].as_object().unwrap() {
        if k != "format" {
            c.meta.insert(k.clone(), v.as_str().unwrap().to_string());
        }
    }
    for (i, (t, shape)) in f["tensors"].as_object().unwrap().iter().enumerate() {
        let shape: Vec<usize> = serde_json::from_value(shape.clone()).unwrap();
        let len = shape.iter().product();
        let values = if t.starts_with("adam.v.") || t.ends_with("running_var") {
            vec![1e-4; len]
        } else if t.starts_with("adam.m.") || t.ends_with("running_mean") {
            vec![0.0; len]
        } else {
            rand_vec(len, i as u64).iter().map(|v| 0.05 * v).collect()
        };
        c.insert(t.clone(), &shape, values);
    }
    c
}

/// The options of the run that wrote the fixture, to resume it with.
fn options(c: &Checkpoint, epochs: usize) -> TrainOptions {
    let st: TrainState = c.meta_json("train").unwrap();
    assert_eq!(st.epoch, 2);
    assert_eq!(st.history.len(), 2);
    TrainOptions {
        epochs,
        quiet: true,
        ..st.options
    }
}

fn images(n: usize) -> SampleSet {
    let mut set = SampleSet::new(4096);
    let noise = rand_vec(n * 4096, 7);
    for i in 0..n {
        let data = noise[i * 4096..(i + 1) * 4096]
            .iter()
            .enumerate()
            .map(|(j, v)| {
                if j % 64 < 40 {
                    (128.0 + 100.0 * v) as u8
                } else {
                    0
                }
            })
            .collect();
        let meta = SampleMeta {
            first_ts_ns: i as u64,
            ..Default::default()
        };
        set.push(Sample { data, meta });
    }
    set
}

/// Loads through the registry and scores finite values.
fn loads_and_scores(path: &std::path::Path, sample: &[u8]) {
    registry::read(path).unwrap();
    let mut m = registry::load(gpu(), path).unwrap();
    assert!(m.threshold().is_some());
    let s = m.score(gpu(), sample, 1).unwrap();
    assert!(s[0].is_finite(), "{s:?}");
}

#[test]
fn vae_checkpoint_of_the_earlier_loop_loads_and_resumes() {
    let dir = tempfile::tempdir().unwrap();
    let p = dir.path().join("vae.safetensors");
    let c = fixture("vae");
    c.save(&p).unwrap();
    let data = images(12);
    loads_and_scores(&p, &data.data[..4096]);
    let o = options(&c, 3);
    let out = jobs::train_vae(gpu(), &data, &o, &p, Some(&p), &ImageSpec::default()).unwrap();
    let h = &out.state.history;
    assert_eq!((out.state.epoch, h.len()), (3, 3));
    // The old entries read as today's: their terms, and the validation loss.
    assert!(
        h[0].term("BCE").is_some() && h[0].term("KL").is_some(),
        "{h:?}"
    );
    assert!(h[1].val.is_some());
    assert!(h[2].loss.is_finite());
    loads_and_scores(&p, &data.data[..4096]);
}

#[test]
fn doc_ids_checkpoint_with_a_kept_model_loads_and_resumes() {
    let dir = tempfile::tempdir().unwrap();
    let p = dir.path().join("doc.safetensors");
    let c = fixture("doc");
    assert!(c.tensors.keys().any(|k| k.starts_with("last.")));
    c.save(&p).unwrap();
    let target = synthetic_flows(40, 1, 2);
    loads_and_scores(&p, &target.data[..320]);
    // The run's reference classes, by name.
    let mut reference = synthetic_flows(100, 5, 1);
    reference.names = NameTable::from_names(
        ["dns", "ftp", "http", "icmp", "ssh"]
            .map(String::from)
            .to_vec(),
    );
    let o = options(&c, 3);
    let spec = FlowSpec::new(true);
    let out = jobs::train_doc_ids(gpu(), &reference, &target, &o, &p, Some(&p), &spec).unwrap();
    let h = &out.state.history;
    assert_eq!(h.len(), 3);
    assert!(h[0].term("l_D").is_some() && h[0].val.is_some(), "{h:?}");
    assert!(h[0].extra(gpu_nids::train::REFERENCE_ACCURACY).is_some());
    loads_and_scores(&p, &target.data[..320]);
}

#[test]
fn ae_checkpoint_of_the_earlier_loop_loads_and_resumes() {
    let dir = tempfile::tempdir().unwrap();
    let p = dir.path().join("ae.safetensors");
    let c = fixture("ae");
    c.save(&p).unwrap();
    let target = synthetic_flows(80, 2, 3);
    loads_and_scores(&p, &target.data[..320]);
    let o = options(&c, 3);
    let out = jobs::train_baseline(
        gpu(),
        BaselineKind::Ae,
        &target,
        &o,
        &p,
        Some(&p),
        &FlowSpec::new(true),
    )
    .unwrap();
    let h = &out.state.history;
    assert_eq!(h.len(), 3);
    assert!(h[0].term("MSE").is_some() && h[0].val.is_some(), "{h:?}");
    loads_and_scores(&p, &target.data[..320]);
}
