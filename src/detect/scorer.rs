//! What `detect` needs from a model: which samples it scores and how, and
//! its alert threshold. Every trained model comes through the registry
//! ([`load_scorer`] → [`ModelScorer`]); tests and `bench detect` plug in
//! their own [`Scorer`]s.

use std::path::Path;

use anyhow::{bail, Result};

use crate::gpu::Gpu;
use crate::ingest::{FlowOptions, ImageOptions, SampleKind, IMAGE_LEN};
use crate::models::registry;
use crate::models::SampleSpec;

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

impl Signature {
    /// Alerts of a model named `name` over samples of kind `samples`.
    pub fn new(signature_id: u32, name: &str, samples: SampleKind) -> Signature {
        let unit = match samples {
            SampleKind::Images => "pair image",
            SampleKind::Flows => "flow",
        };
        Signature {
            signature_id,
            text: format!("gpu-nids {name} anomaly: {unit}"),
        }
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
    /// Scorers that are not a registered model alert under the unlisted id.
    fn signature(&self) -> Signature {
        Signature::new(
            crate::models::UNLISTED_SIGNATURE,
            self.kind(),
            self.sample_kind(),
        )
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
    /// [`Scorer::explain`] of `n` samples lying back to back (models batch it).
    fn explain_many(
        &mut self,
        gpu: &Gpu,
        samples: &[u8],
        n: usize,
    ) -> Result<Vec<Option<crate::explain::Explanation>>> {
        let len = self.stream().sample_len();
        samples[..n * len]
            .chunks(len)
            .map(|s| self.explain(gpu, s))
            .collect()
    }
}

/// A trained model from the registry with the threshold `detect` alerts at.
pub struct ModelScorer {
    model: Box<dyn registry::Scorer>,
    threshold: f64,
}

impl ModelScorer {
    /// Compiles the model's kernels at once, so that the first alert does not wait.
    pub fn new(gpu: &Gpu, mut model: Box<dyn registry::Scorer>, threshold: f64) -> Result<Self> {
        let len = model.spec().sample_len();
        model.score(gpu, &vec![0u8; len], 1)?;
        Ok(ModelScorer { model, threshold })
    }
}

impl Scorer for ModelScorer {
    fn kind(&self) -> &str {
        self.model.kind()
    }
    fn stream(&self) -> StreamSpec {
        match self.model.spec() {
            SampleSpec::Images(s) => StreamSpec::Images(SampleSpec::image_options(s)),
            SampleSpec::Flows(s) => StreamSpec::Flows(SampleSpec::flow_options(s)),
        }
    }
    fn threshold(&self) -> f64 {
        self.threshold
    }
    fn set_threshold(&mut self, t: f64) {
        self.threshold = t;
    }
    fn signature(&self) -> Signature {
        Signature::new(
            self.model.signature_id(),
            self.model.display(),
            self.sample_kind(),
        )
    }
    fn score(&mut self, gpu: &Gpu, samples: &[u8], n: usize) -> Result<Vec<f32>> {
        self.model.score(gpu, samples, n)
    }
    fn explain(&mut self, gpu: &Gpu, sample: &[u8]) -> Result<Option<crate::explain::Explanation>> {
        self.model.explain(gpu, sample)
    }
    fn explain_many(
        &mut self,
        gpu: &Gpu,
        samples: &[u8],
        n: usize,
    ) -> Result<Vec<Option<crate::explain::Explanation>>> {
        self.model.explain_many(gpu, samples, n)
    }
}

/// A checkpoint ready for `detect`: its scorer and whether the threshold
/// came from the checkpoint.
pub struct LoadedScorer {
    pub scorer: Box<dyn Scorer>,
    pub path: String,
    pub has_threshold: bool,
}

/// Loads a checkpoint of any registered model kind. `threshold` overrides the
/// checkpoint's; a checkpoint without one needs it.
pub fn load_scorer(gpu: &Gpu, path: &Path, threshold: Option<f64>) -> Result<LoadedScorer> {
    let origin = path.display().to_string();
    let model = registry::load(gpu, path)?;
    let has = model.threshold().is_some();
    let t = match (threshold, model.threshold()) {
        (Some(t), _) => t,
        (None, Some(t)) => t.value,
        (None, None) => bail!("{origin}: the checkpoint holds no alert threshold (train to the end, or run `gpu-nids eval`); pass --threshold"),
    };
    Ok(LoadedScorer {
        scorer: Box::new(ModelScorer::new(gpu, model, t)?),
        path: origin,
        has_threshold: has,
    })
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
