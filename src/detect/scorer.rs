//! What `detect` needs from a model: which samples it scores and how, and
//! its alert threshold. The VAE implements it here; the flow models
//! (checkpoint "model" = doc-ids, ae, conv-ae) plug in by implementing
//! [`Scorer`] and adding an arm to [`load_scorer`].

use std::path::Path;

use anyhow::{bail, Result};

use crate::checkpoint::Checkpoint;
use crate::commands::{load_vae, ImageSpec, Pair};
use crate::gpu::Gpu;
use crate::ingest::{FlowOptions, ImageOptions, SampleKind, IMAGE_LEN};
use crate::models::vae::{Vae, VaeRun};

/// How a model's samples are built from packets. Models with equal specs
/// share one builder (and so one copy of the grouping state).
#[derive(Clone, Debug, PartialEq)]
pub enum StreamSpec {
    Images(ImageOptions),
    Flows(FlowOptions),
}

impl StreamSpec {
    pub fn kind(&self) -> SampleKind {
        match self {
            StreamSpec::Images(_) => SampleKind::Images,
            StreamSpec::Flows(_) => SampleKind::Flows,
        }
    }
    pub fn sample_len(&self) -> usize {
        match self {
            StreamSpec::Images(_) => IMAGE_LEN,
            StreamSpec::Flows(f) => f.n * f.l,
        }
    }
}

/// The Suricata rule identity of a model's alerts.
#[derive(Clone, Debug, PartialEq)]
pub struct Signature {
    pub signature_id: u32,
    pub text: String,
}

/// Signature ids sit in the range Emerging Threats reserves for local
/// rules (1000000-1999999), so they clash with no published rule.
pub fn signature_for(kind: &str, samples: SampleKind) -> Signature {
    let (id, name) = match kind {
        "vae" => (1_990_001, "VAE"),
        "doc-ids" => (1_990_002, "DOC-IDS"),
        "ae" => (1_990_003, "AE"),
        "conv-ae" => (1_990_004, "1D-Conv AE"),
        _ => (1_990_099, kind),
    };
    let unit = match samples {
        SampleKind::Images => "pair image",
        SampleKind::Flows => "flow",
    };
    Signature {
        signature_id: id,
        text: format!("gpu-nids {name} anomaly: {unit}"),
    }
}

pub trait Scorer {
    /// The checkpoint's "model" kind (vae, doc-ids, ...).
    fn kind(&self) -> &str;
    /// How samples are built for this model.
    fn stream(&self) -> StreamSpec;
    fn sample_kind(&self) -> SampleKind {
        self.stream().kind()
    }
    /// Scores above this alert.
    fn threshold(&self) -> f64;
    fn set_threshold(&mut self, t: f64);
    fn signature(&self) -> Signature {
        signature_for(self.kind(), self.sample_kind())
    }
    /// Anomaly scores (higher = more anomalous) of `n` samples lying back
    /// to back in `samples`.
    fn score(&mut self, gpu: &Gpu, samples: &[u8], n: usize) -> Result<Vec<f32>>;
    /// What drove the score of one alerted sample; `None` when this model
    /// cannot say.
    fn explain(
        &mut self,
        _gpu: &Gpu,
        _sample: &[u8],
    ) -> Result<Option<crate::explain::Explanation>> {
        Ok(None)
    }
}

/// The traffic-image VAE (docs/MODELS.md §1-2, 7).
pub struct VaeScorer {
    model: Vae,
    spec: ImageSpec,
    threshold: f64,
    /// Runs at increasing batch sizes: a lone sample sent on by the latency
    /// bound goes through the smallest one instead of a full batch's forward.
    runs: Vec<VaeRun>,
}

/// The smallest run, for latency-bound partial batches.
const SMALL_BATCH: usize = 4;

impl VaeScorer {
    pub fn new(
        gpu: &Gpu,
        model: Vae,
        spec: ImageSpec,
        threshold: f64,
        batch: usize,
    ) -> Result<Self> {
        let batch = batch.max(1);
        // Doubling sizes from SMALL_BATCH: a partial batch wastes at most
        // half of the forward it runs (the kernels' shapes are fixed per run).
        let mut sizes = Vec::new();
        let mut b = SMALL_BATCH.min(batch);
        while b < batch {
            sizes.push(b);
            b *= 2;
        }
        sizes.push(batch);
        let runs = sizes
            .into_iter()
            .map(|b| VaeRun::new(gpu, b, false))
            .collect::<Result<_, _>>()?;
        let mut v = VaeScorer {
            model,
            spec,
            threshold,
            runs,
        };
        // Compile the kernels now, so that the first alert does not wait for it.
        v.score(gpu, &vec![255u8; IMAGE_LEN], 1)?;
        Ok(v)
    }
    pub fn image_options(&self) -> ImageOptions {
        ImageOptions {
            undirected: self.spec.pair == Pair::Undirected,
            min_packets: self.spec.min_packets,
            mask_addresses: self.spec.mask_addresses,
            ..ImageOptions::default()
        }
    }
}

impl Scorer for VaeScorer {
    fn kind(&self) -> &str {
        "vae"
    }
    fn stream(&self) -> StreamSpec {
        StreamSpec::Images(self.image_options())
    }
    fn threshold(&self) -> f64 {
        self.threshold
    }
    fn set_threshold(&mut self, t: f64) {
        self.threshold = t;
    }
    fn score(&mut self, gpu: &Gpu, samples: &[u8], n: usize) -> Result<Vec<f32>> {
        let mut out = Vec::with_capacity(n);
        let largest = self.runs.last().map_or(1, |r| r.batch);
        let mut done = 0;
        while done < n {
            let m = (n - done).min(largest);
            let run = self
                .runs
                .iter()
                .find(|r| r.batch >= m)
                .unwrap_or(&self.runs[self.runs.len() - 1]);
            run.upload(gpu, &samples[done * IMAGE_LEN..(done + m) * IMAGE_LEN]);
            let mut b = gpu.batch();
            run.score(&mut b, &self.model, m)?;
            b.submit()?;
            out.extend_from_slice(&gpu.read(&run.scores)?[..m]);
            done += m;
        }
        Ok(out)
    }
    /// The score Σ|x − x̂| is a sum over pixels, so each pixel's |x − x̂|
    /// is its exact part: rows are packets, columns header bytes.
    fn explain(&mut self, gpu: &Gpu, sample: &[u8]) -> Result<Option<crate::explain::Explanation>> {
        let Some(image) = sample.get(..IMAGE_LEN) else {
            bail!(
                "explain: a VAE sample is {IMAGE_LEN} bytes, got {}",
                sample.len()
            );
        };
        let run = &self.runs[0];
        run.upload(gpu, image);
        let mut b = gpu.batch();
        run.score(&mut b, &self.model, 1)?;
        b.submit()?;
        // One sample: it is the first (and only) micro-batch's first image.
        let recon = run.reconstruction(gpu)?;
        let err: Vec<f32> = image
            .iter()
            .zip(&recon[..IMAGE_LEN])
            .map(|(&x, &r)| (x as f32 / 255.0 - r).abs())
            .collect();
        Ok(Some(crate::explain::Explanation::from_image_errors(
            image,
            &err,
            crate::ingest::IMAGE_SIDE,
            crate::explain::TOP,
        )))
    }
}

/// A checkpoint ready for `detect`: its scorer and whether the threshold
/// came from the checkpoint.
pub struct LoadedScorer {
    pub scorer: Box<dyn Scorer>,
    pub path: String,
    pub has_threshold: bool,
}

/// Loads a checkpoint of any model kind `detect` can run. `threshold`
/// overrides the checkpoint's; a checkpoint without one needs it.
pub fn load_scorer(
    gpu: &Gpu,
    path: &Path,
    batch: usize,
    threshold: Option<f64>,
) -> Result<LoadedScorer> {
    let origin = path.display().to_string();
    let c = Checkpoint::load(path)?;
    let kind = c.meta.get("model").cloned().unwrap_or_else(|| "?".into());
    match kind.as_str() {
        "vae" => {
            let m = load_vae(gpu, path)?;
            let has = m.threshold.is_some();
            let t = match (threshold, &m.threshold) {
                (Some(t), _) => t,
                (None, Some(t)) => t.value,
                (None, None) => bail!("{origin}: the checkpoint holds no alert threshold (train to the end, or run `gpu-nids eval`); pass --threshold"),
            };
            Ok(LoadedScorer {
                scorer: Box::new(VaeScorer::new(gpu, m.model, m.spec, t, batch)?),
                path: origin,
                has_threshold: has,
            })
        }
        "doc-ids" | "ae" | "conv-ae" => {
            let m = crate::train_flow::load_flow(gpu, path)?;
            let has = m.threshold.is_some();
            let t = match (threshold, &m.threshold) {
                (Some(t), _) => t,
                (None, Some(t)) => t.value,
                (None, None) => bail!("{origin}: the checkpoint holds no alert threshold (train to the end, or run `gpu-nids eval`); pass --threshold"),
            };
            Ok(LoadedScorer {
                scorer: Box::new(FlowScorer { kind, net: m.net, spec: m.spec, threshold: t }),
                path: origin,
                has_threshold: has,
            })
        }
        other => bail!("{origin}: unknown model kind '{other}' in checkpoint metadata (expected vae, doc-ids, ae or conv-ae)"),
    }
}

/// DOC-IDS and the two autoencoder baselines over flow samples (docs/MODELS.md §3-4):
/// score = reconstruction error, with batch-norm in eval mode.
pub struct FlowScorer {
    kind: String,
    net: crate::train_flow::FlowNet,
    spec: crate::train_flow::FlowSpec,
    threshold: f64,
}

impl FlowScorer {
    pub fn new(
        kind: String,
        net: crate::train_flow::FlowNet,
        spec: crate::train_flow::FlowSpec,
        threshold: f64,
    ) -> Self {
        FlowScorer {
            kind,
            net,
            spec,
            threshold,
        }
    }
}

impl Scorer for FlowScorer {
    fn kind(&self) -> &str {
        &self.kind
    }
    fn stream(&self) -> StreamSpec {
        StreamSpec::Flows(FlowOptions {
            n: self.spec.n,
            l: self.spec.l,
            anonymise: self.spec.anonymise,
            ..FlowOptions::default()
        })
    }
    fn threshold(&self) -> f64 {
        self.threshold
    }
    fn set_threshold(&mut self, t: f64) {
        self.threshold = t;
    }
    fn score(&mut self, gpu: &Gpu, samples: &[u8], n: usize) -> Result<Vec<f32>> {
        let len = self.spec.n * self.spec.l;
        let mut set = crate::ingest::SampleSet::new(len);
        set.data.extend_from_slice(&samples[..n * len]);
        set.labels.resize(n, 0);
        set.meta.resize(n, Default::default());
        let idx: Vec<usize> = (0..n).collect();
        let scores = crate::train_flow::score_indices(gpu, &self.net, &set, &idx)?;
        Ok(scores.into_iter().map(|v| v as f32).collect())
    }
    /// The autoencoders' score, the mean of (x̂ − x)² over the bytes, splits
    /// exactly over bytes, as the VAE's does. DOC-IDS scores the
    /// reconstruction of features, not bytes, so it is explained by
    /// occlusion: the sample re-scored with each header field of each packet
    /// zeroed, and with each packet zeroed, in one batch; what lowers the
    /// score drove it (when nothing does, the explanation is empty).
    fn explain(&mut self, gpu: &Gpu, sample: &[u8]) -> Result<Option<crate::explain::Explanation>> {
        let (n, l) = (self.spec.n, self.spec.l);
        let Some(sample) = sample.get(..n * l) else {
            bail!(
                "explain: a {} sample is {} bytes, got {}",
                self.kind,
                n * l,
                sample.len()
            );
        };
        if let crate::train_flow::FlowNet::Base(m) = &self.net {
            let run = crate::models::baselines::BaselineRun::new(gpu, m.kind, 1, false)?;
            run.upload(gpu, sample);
            let mut b = gpu.batch();
            run.score(&mut b, m, 1)?;
            b.submit()?;
            let recon = run.reconstruction(gpu)?;
            let mut w = Vec::with_capacity(n * l);
            for (p, row) in sample.chunks(l).enumerate() {
                let names = crate::explain::fields::frame_row(row);
                for (k, (&x, name)) in row.iter().zip(names).enumerate() {
                    let d = x as f64 / 255.0 - recon[p * l + k] as f64;
                    w.push((p, name, d * d));
                }
            }
            return Ok(Some(crate::explain::Explanation::from_weights(
                &w,
                crate::explain::TOP,
            )));
        }
        let occ = crate::explain::flow_occlusions(sample, n, l);
        let mut batch = Vec::with_capacity((occ.len() + 1) * n * l);
        batch.extend_from_slice(sample);
        for o in &occ {
            let start = batch.len();
            batch.extend_from_slice(sample);
            for &i in &o.bytes {
                batch[start + i] = 0;
            }
        }
        let scores = self.score(gpu, &batch, occ.len() + 1)?;
        let scores: Vec<f64> = scores.into_iter().map(f64::from).collect();
        Ok(Some(crate::explain::from_occlusions(
            scores[0],
            &occ,
            &scores[1..],
            crate::explain::TOP,
        )))
    }
}

/// Scores nothing: every sample gets 0 against a threshold of -1, so every
/// sample alerts. `bench detect --pipeline-only` runs it to measure capture,
/// sample building and EVE output without a model's cost.
pub struct NullScorer {
    pub stream: StreamSpec,
}

impl Scorer for NullScorer {
    fn kind(&self) -> &str {
        match self.stream {
            StreamSpec::Images(_) => "null-images",
            StreamSpec::Flows(_) => "null-flows",
        }
    }
    fn stream(&self) -> StreamSpec {
        self.stream.clone()
    }
    fn threshold(&self) -> f64 {
        -1.0
    }
    fn set_threshold(&mut self, _t: f64) {}
    fn score(&mut self, _gpu: &Gpu, _samples: &[u8], n: usize) -> Result<Vec<f32>> {
        Ok(vec![0.0; n])
    }
}
