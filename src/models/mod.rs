//! The detectors. Each model keeps its explicit layer-by-layer forward and backward
//! (vae.rs, doc_ids.rs, baselines.rs); the two traits here go around them, so the
//! one training loop (`crate::train`), the registry and everything that scores
//! (`eval`, `detect`) treat every model alike:
//!
//! - [`Model`]: a model's parameters on the GPU, its persistent state, and how it
//!   is read from and written to a checkpoint;
//! - [`ModelRun`]: the buffers for one batch size: upload a host batch,
//!   forward+backward, score, read the loss terms.

pub mod baselines;
pub mod bench_shapes;
pub mod doc_ids;
pub mod params;
pub mod registry;
pub mod spec;
pub mod vae;

use anyhow::{bail, Result};

use crate::checkpoint::Checkpoint;
use crate::gpu::{Batch, Buf, Gpu};
use crate::nn::reparam::NoiseKey;
pub use params::Param;
pub use spec::{FlowSpec, ImageSpec, Pair, SampleSpec};

pub use crate::data::samplers::HostBatch;

/// Signature ids sit in the range Emerging Threats reserves for local rules
/// (1000000-1999999), so they clash with no published rule; the shipped models have
/// 1990001-1990004, any other model this one.
pub const UNLISTED_SIGNATURE: u32 = 1_990_099;

/// Mean loss terms of the steps since the last read.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct LossRead {
    /// The loss the optimizer minimises (weighted sum of the terms).
    pub total: f64,
    /// Named terms, in the model's order.
    pub terms: Vec<(&'static str, f64)>,
    /// What the means are over (samples or steps): the weight of this read when
    /// averaging an epoch.
    pub count: f64,
}

pub trait Model: Sized + 'static {
    type Run: ModelRun<Self>;

    /// The checkpoint's "model" value.
    fn kind(&self) -> &'static str;
    /// Name in reports, logs and alerts.
    fn display(&self) -> &'static str;
    /// Signature id of its alerts in `detect`'s EVE output.
    fn signature_id(&self) -> u32 {
        UNLISTED_SIGNATURE
    }
    fn params(&self) -> &[Param];
    /// Persistent tensors besides the parameters (name, shape, buffer), e.g.
    /// batch-norm running statistics.
    fn state(&self) -> Vec<(String, Vec<usize>, &Buf<f32>)> {
        Vec::new()
    }
    /// Names and shapes of the tensors a checkpoint of `kind` holds, parameters
    /// then state, as `from_tensors` takes them.
    fn tensor_specs(c: &Checkpoint, kind: &str, origin: &str) -> Result<Vec<(String, Vec<usize>)>>;
    /// The model from host tensors in `tensor_specs` order.
    fn from_tensors(gpu: &Gpu, c: &Checkpoint, kind: &str, values: Vec<Vec<f32>>) -> Result<Self>;
    /// Buffers for batches of up to `batch` samples (`train`: with gradients).
    fn run(&self, gpu: &Gpu, batch: usize, train: bool) -> Result<Self::Run>;
    /// True when the model's validation measure is its loss on held-out samples
    /// (`ModelRun::forward_loss`); otherwise it is their mean score.
    fn validates_by_loss(&self) -> bool {
        false
    }
    /// How each input byte's share of the score is computed from the
    /// reconstruction, when the score is a sum over bytes; `None`: the score is
    /// explained by occlusion.
    fn byte_error(&self) -> Option<ByteError> {
        None
    }

    /// Reads the model out of a checkpoint (tensors named and shaped as
    /// `tensor_specs` says, checked).
    fn load(gpu: &Gpu, c: &Checkpoint, origin: &str) -> Result<Self> {
        let kind = c.meta_str("model")?.to_string();
        let values = Self::tensor_specs(c, &kind, origin)?
            .iter()
            .map(|(name, shape)| {
                let Some((s, v)) = c.tensors.get(name) else {
                    bail!("{origin}: checkpoint has no tensor '{name}' (model {kind})");
                };
                if s != shape {
                    bail!("{origin}: tensor '{name}' has shape {s:?}, the {kind} model needs {shape:?}");
                }
                Ok(v.clone())
            })
            .collect::<Result<Vec<_>>>()?;
        Self::from_tensors(gpu, c, &kind, values)
    }

    /// Parameters and state read back, by name (what a checkpoint stores).
    fn snapshot(&self, gpu: &Gpu) -> Result<Checkpoint> {
        let mut c = Checkpoint::default();
        for p in self.params() {
            c.insert(p.name.clone(), &p.shape, gpu.read(&p.w)?);
        }
        for (name, shape, buf) in self.state() {
            c.insert(name, &shape, gpu.read(buf)?);
        }
        Ok(c)
    }
}

/// A byte's share of a reconstruction score, x and x̂ in [0, 1].
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum ByteError {
    /// |x − x̂| (the VAE's Σ|x − x̂|).
    Abs,
    /// (x − x̂)² (the autoencoders' mean squared error).
    Squared,
}

impl ByteError {
    pub fn of(self, x: u8, r: f32) -> f64 {
        let d = x as f64 / 255.0 - r as f64;
        match self {
            ByteError::Abs => d.abs(),
            ByteError::Squared => d * d,
        }
    }
}

/// A model's buffers for one batch size.
pub trait ModelRun<M> {
    /// Largest batch this run takes.
    fn batch(&self) -> usize;
    /// Copies a host batch to the GPU; returns how many samples it holds.
    fn upload(&self, gpu: &Gpu, batch: &HostBatch) -> usize;
    /// Records forward, loss and backward of the uploaded batch: afterwards every
    /// `Param::g` holds the loss gradient. `key` seeds any noise the model draws.
    fn forward_backward(&self, b: &mut Batch, m: &M, n: usize, key: NoiseKey) -> Result<()>;
    /// Records forward and loss without gradients (validation loss).
    fn forward_loss(&self, _b: &mut Batch, _m: &M, _n: usize, _key: NoiseKey) -> Result<()> {
        bail!("this model validates by score, not by loss")
    }
    /// Records the anomaly scores of the `n` uploaded samples.
    fn score(&self, b: &mut Batch, m: &M, n: usize) -> Result<()>;
    /// Where `score` records the scores.
    fn score_buffer(&self) -> &Buf<f32>;
    /// Reads the scores recorded by `score`.
    fn scores(&self, gpu: &Gpu, n: usize) -> Result<Vec<f32>> {
        let mut s = gpu.read(self.score_buffer())?;
        s.truncate(n);
        Ok(s)
    }
    /// Reconstructions in [0, 1] of the samples of the last `score`, where the model
    /// reconstructs its input.
    fn reconstruction(&self, _gpu: &Gpu) -> Result<Option<Vec<f32>>> {
        Ok(None)
    }
    /// Reads and resets the loss accumulated since the last read.
    fn take_loss(&self, gpu: &Gpu) -> Result<LossRead>;
}

/// Scores of `n` samples of `len` bytes lying back to back in `samples`, through
/// `run` in chunks of its batch.
pub fn score_samples<M: Model>(
    gpu: &Gpu,
    m: &M,
    run: &M::Run,
    samples: &[u8],
    len: usize,
    n: usize,
) -> Result<Vec<f32>> {
    let mut out = Vec::with_capacity(n);
    let mut done = 0;
    while done < n {
        let k = (n - done).min(run.batch());
        let chunk = samples[done * len..(done + k) * len].to_vec();
        let got = run.upload(gpu, &HostBatch::plain(chunk, k));
        let mut b = gpu.batch();
        run.score(&mut b, m, got)?;
        b.submit()?;
        out.extend(run.scores(gpu, got)?);
        done += k;
    }
    Ok(out)
}
