//! The training jobs of the models this crate ships: what each adds to the one loop
//! (`super::fit`) — its fresh initialisation, its batch source, its own per-epoch
//! measure.

use std::path::Path;

use anyhow::{bail, Result};

use super::{fit, Job, Outcome, TrainOptions, TrainState, REFERENCE_ACCURACY};
use crate::data::samplers::{
    gather, reference_classes, split_benign, split_reference, EpochShuffle, ReferenceAndTarget,
};
use crate::gpu::Gpu;
use crate::ingest::Samples;
use crate::models::baselines::{self, Baseline, BaselineKind};
use crate::models::doc_ids::{self, DocIds, DocRun, INPUT};
use crate::models::vae::{self, Vae, PIXELS};
use crate::models::{params, FlowSpec, ImageSpec, SampleSpec};

/// Mean pixel intensity in (0, 1) of samples `idx`, as a logit: the output bias at
/// which the untrained decoder already predicts the mean image's brightness.
pub fn mean_pixel_logit(data: &dyn Samples, idx: &[usize]) -> f32 {
    let (mut sum, mut n) = (0u64, 0u64);
    for &i in idx {
        let s = data.sample(i);
        sum += s.iter().map(|&b| b as u64).sum::<u64>();
        n += s.len() as u64;
    }
    let p = (sum as f64 / (255.0 * n.max(1) as f64)).clamp(1e-4, 1.0 - 1e-4);
    (p / (1.0 - p)).ln() as f32
}

fn fresh(o: &TrainOptions, train: usize, val: usize) -> TrainState {
    TrainState {
        options: o.clone(),
        epoch: 0,
        step: 0,
        history: vec![],
        classes: vec![],
        train_samples: train,
        val_samples: val,
        ref_train_samples: 0,
        ref_val_samples: 0,
    }
}

fn no_benign(data: &dyn Samples, what: &str) -> anyhow::Error {
    anyhow::anyhow!(
        "no benign {what} to train on ({} samples in the input, {} labelled malicious)",
        data.len(),
        data.labels().iter().filter(|&&l| l != 0).count()
    )
}

/// Trains the VAE on the benign samples of `data`, writing `out` each epoch.
pub fn train_vae(
    gpu: &Gpu,
    data: &dyn Samples,
    o: &TrainOptions,
    out: &Path,
    resume: Option<&Path>,
    spec: &ImageSpec,
) -> Result<Outcome> {
    if data.sample_len() != PIXELS {
        bail!("the VAE trains on 64×64 pair images; this input holds samples of {} bytes (use --kind images when ingesting)", data.sample_len());
    }
    let (train, val) = split_benign(data, o.val_split);
    if train.is_empty() {
        return Err(no_benign(data, "images"));
    }
    let mut batches = EpochShuffle::new(data, train.clone(), o.batch, o.seed);
    fit(Job {
        gpu,
        opts: o,
        out,
        resume,
        kind: vae::KIND,
        spec: SampleSpec::Images(spec.clone()),
        init: Box::new(|| {
            let mut p = vae::init_params(o.seed);
            if o.output_bias_from_data {
                let last = p.len() - 1;
                p[last] = vec![mean_pixel_logit(data, &train)];
            }
            Ok(Vae::from_host(gpu, &p)?)
        }),
        configure: Box::new(|_| {}),
        batches: &mut batches,
        data,
        train: &train,
        val: &val,
        fresh_state: fresh(o, train.len(), val.len()),
        measure: None,
        intro: format!(
            "training VAE on {} benign images ({} held out for validation)",
            train.len(),
            val.len()
        ),
    })
}

fn check_flows(what: &str, data: &dyn Samples) -> Result<()> {
    if data.sample_len() != INPUT {
        bail!("{what}: the flow models take 4×80-byte flow samples ({INPUT} bytes); this input holds samples of {} bytes (ingest with --kind flows)", data.sample_len());
    }
    Ok(())
}

/// Share of `idx` (with class ids `labels`) that h_c classifies right, in eval mode.
pub fn reference_accuracy(
    gpu: &Gpu,
    m: &DocIds,
    data: &dyn Samples,
    idx: &[usize],
    labels: &[u32],
) -> Result<f64> {
    let batch = crate::models::registry::SCORE_BATCH.min(idx.len().max(1));
    let run = DocRun::new(gpu, batch, m.classes, m.weights, false)?;
    let mut right = 0usize;
    for (ci, chunk) in idx.chunks(batch).enumerate() {
        let n = run.upload(gpu, &gather(data, chunk));
        let logits = run.classify(gpu, m, n)?;
        for (k, row) in logits.chunks(m.classes).enumerate() {
            let best = row
                .iter()
                .enumerate()
                .max_by(|a, b| a.1.total_cmp(b.1))
                .map_or(0, |(i, _)| i);
            right += (best as u32 == labels[ci * batch + k]) as usize;
        }
    }
    Ok(right as f64 / idx.len().max(1) as f64)
}

/// Trains DOC-IDS: `reference` labelled by class (`class_names` / `class_id`),
/// `target` the benign traffic of the protected network. Writes `out` every epoch.
pub fn train_doc_ids(
    gpu: &Gpu,
    reference: &dyn Samples,
    target: &dyn Samples,
    o: &TrainOptions,
    out: &Path,
    resume: Option<&Path>,
    spec: &FlowSpec,
) -> Result<Outcome> {
    check_flows("reference", reference)?;
    check_flows("target", target)?;
    if o.batch < 2 {
        bail!("DOC-IDS needs --batch of at least 2 (batch-norm statistics and compactness)");
    }
    let (classes, labels) = reference_classes(reference);
    if classes.len() < 2 {
        bail!("the reference set holds {} class(es); DOC-IDS needs at least 2 (one capture file per class)", classes.len());
    }
    let (ref_train, ref_val) = split_reference(&labels, classes.len(), o.ref_val_split, o.seed);
    let (train, val) = split_benign(target, o.val_split);
    if train.is_empty() {
        return Err(no_benign(target, "target samples"));
    }
    let mut batches = ReferenceAndTarget::new(
        reference,
        &labels,
        classes.len(),
        &ref_train,
        target,
        &train,
        o.batch,
        o.seed,
    );
    let val_labels: Vec<u32> = ref_val.iter().map(|&i| labels[i]).collect();
    let k = classes.len();
    fit(Job {
        gpu,
        opts: o,
        out,
        resume,
        kind: doc_ids::KIND,
        spec: SampleSpec::Flows(spec.clone()),
        init: Box::new(|| {
            Ok(DocIds::from_host(
                gpu,
                k,
                &params::init(&doc_ids::layers(k), o.seed),
                &doc_ids::init_running(),
            )?)
        }),
        configure: Box::new(|m: &mut DocIds| m.weights = o.weights),
        batches: &mut batches,
        data: target,
        train: &train,
        val: &val,
        fresh_state: TrainState {
            classes: classes.clone(),
            ref_train_samples: ref_train.len(),
            ref_val_samples: ref_val.len(),
            ..fresh(o, train.len(), val.len())
        },
        measure: (!ref_val.is_empty()).then(|| -> super::EpochMeasure<DocIds> {
            Box::new(|gpu: &Gpu, m: &DocIds| {
                let acc = reference_accuracy(gpu, m, reference, &ref_val, &val_labels)?;
                Ok(vec![(REFERENCE_ACCURACY.to_string(), acc)])
            })
        }),
        intro: format!(
            "training DOC-IDS: {} reference samples in {} classes ({} held out), {} benign target samples ({} held out), reference + target batches",
            ref_train.len(),
            classes.len(),
            ref_val.len(),
            train.len(),
            val.len()
        ),
    })
}

/// Trains a baseline autoencoder on the benign samples of `target`.
pub fn train_baseline(
    gpu: &Gpu,
    kind: BaselineKind,
    target: &dyn Samples,
    o: &TrainOptions,
    out: &Path,
    resume: Option<&Path>,
    spec: &FlowSpec,
) -> Result<Outcome> {
    check_flows("target", target)?;
    let (train, val) = split_benign(target, o.val_split);
    if train.is_empty() {
        return Err(no_benign(target, "samples"));
    }
    let mut batches = EpochShuffle::new(target, train.clone(), o.batch.max(1), o.seed);
    fit(Job {
        gpu,
        opts: o,
        out,
        resume,
        kind: kind.model_name(),
        spec: SampleSpec::Flows(spec.clone()),
        init: Box::new(|| {
            Ok(Baseline::from_host(
                gpu,
                kind,
                &params::init(&baselines::layers(kind), o.seed),
            )?)
        }),
        configure: Box::new(|_| {}),
        batches: &mut batches,
        data: target,
        train: &train,
        val: &val,
        fresh_state: fresh(o, train.len(), val.len()),
        measure: None,
        intro: format!(
            "training {} on {} benign flow samples ({} held out)",
            kind.display(),
            train.len(),
            val.len()
        ),
    })
}
