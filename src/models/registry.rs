//! Checkpoint → model. The one table that maps a checkpoint's "model" kind to the
//! type that loads it; `score`, `eval`, `detect` and `bench` go through it, so a new
//! model is one [`Model`] implementation plus one [`register`] call.

use std::collections::BTreeMap;
use std::path::Path;
use std::sync::RwLock;

use anyhow::{bail, Context, Result};

use super::{score_samples, Model, ModelRun, SampleSpec};
use crate::checkpoint::Checkpoint;
use crate::eval::threshold::Threshold;
use crate::explain::Explanation;
use crate::gpu::Gpu;
use crate::ingest::SampleKind;

/// A trained model ready to score: what `score`, `eval` and `detect` hold.
pub trait Scorer {
    /// The checkpoint's "model" kind (vae, doc-ids, ...).
    fn kind(&self) -> &str;
    /// Name in reports.
    fn display(&self) -> &str;
    /// Signature id of its alerts.
    fn signature_id(&self) -> u32;
    /// How its samples are made.
    fn spec(&self) -> &SampleSpec;
    /// The alert threshold fitted in training, if the checkpoint holds one.
    fn threshold(&self) -> Option<&Threshold>;
    /// Anomaly scores (higher = more anomalous) of `n` samples lying back to back
    /// in `samples`.
    fn score(&mut self, gpu: &Gpu, samples: &[u8], n: usize) -> Result<Vec<f32>>;
    /// What drove one sample's score, in header fields and packets; `None` when
    /// the model cannot say.
    fn explain(&mut self, gpu: &Gpu, sample: &[u8]) -> Result<Option<Explanation>>;
    /// [`Scorer::explain`] of `n` samples lying back to back, in as few passes as
    /// the model allows.
    fn explain_many(
        &mut self,
        gpu: &Gpu,
        samples: &[u8],
        n: usize,
    ) -> Result<Vec<Option<Explanation>>>;
    /// Reconstructions in [0, 1] of up to a few samples, for pictures (models that
    /// reconstruct their input).
    fn reconstructions(&mut self, gpu: &Gpu, samples: &[u8], n: usize) -> Result<Option<Vec<f32>>>;
}

/// Largest scoring batch; a smaller request runs at the next power of two (at least
/// [`SMALL_BATCH`]), so a lone sample sent on by detect's latency bound does not pay
/// for a full batch, and a partial batch wastes at most half its forward.
pub const SCORE_BATCH: usize = 256;
pub const SMALL_BATCH: usize = 4;
/// Samples explained per forward pass by byte-error models.
pub const EXPLAIN_CHUNK: usize = 32;

/// Scoring runs of one model, one per batch size: a request runs at the next power
/// of two (at least [`SMALL_BATCH`], at most [`SCORE_BATCH`] per pass).
pub struct Runs<M: Model> {
    runs: BTreeMap<usize, M::Run>,
}

impl<M: Model> Default for Runs<M> {
    fn default() -> Self {
        Runs {
            runs: BTreeMap::new(),
        }
    }
}

impl<M: Model> Runs<M> {
    /// The run for `n` samples (at most `SCORE_BATCH`).
    pub fn get(&mut self, gpu: &Gpu, m: &M, n: usize) -> Result<&M::Run> {
        let size = n.next_power_of_two().clamp(SMALL_BATCH, SCORE_BATCH);
        if let std::collections::btree_map::Entry::Vacant(e) = self.runs.entry(size) {
            e.insert(m.run(gpu, size, false)?);
        }
        Ok(&self.runs[&size])
    }

    /// Scores of `n` samples of `len` bytes lying back to back in `samples`.
    pub fn score(
        &mut self,
        gpu: &Gpu,
        m: &M,
        samples: &[u8],
        len: usize,
        n: usize,
    ) -> Result<Vec<f32>> {
        if samples.len() < n * len {
            bail!(
                "score: {n} samples of {len} bytes need {} bytes, got {}",
                n * len,
                samples.len()
            );
        }
        let mut out = Vec::with_capacity(n);
        for lo in (0..n).step_by(SCORE_BATCH) {
            let k = (n - lo).min(SCORE_BATCH);
            let run = self.get(gpu, m, k)?;
            out.extend(score_samples(
                gpu,
                m,
                run,
                &samples[lo * len..(lo + k) * len],
                len,
                k,
            )?);
        }
        Ok(out)
    }
}

/// A model with its sample spec, threshold and scoring runs.
pub struct Loaded<M: Model> {
    pub model: M,
    pub spec: SampleSpec,
    pub threshold: Option<Threshold>,
    pub runs: Runs<M>,
}

impl<M: Model> Loaded<M> {
    pub fn new(model: M, spec: SampleSpec, threshold: Option<Threshold>) -> Self {
        Loaded {
            model,
            spec,
            threshold,
            runs: Runs::default(),
        }
    }

    /// The explanation of a score that is a sum of per-byte reconstruction errors.
    fn explain_errors(&self, sample: &[u8], recon: &[f32], kind: super::ByteError) -> Explanation {
        use crate::explain;
        let err: Vec<f64> = sample
            .iter()
            .zip(recon)
            .map(|(&x, &r)| kind.of(x, r))
            .collect();
        match &self.spec {
            SampleSpec::Images(_) => {
                let err: Vec<f32> = err.iter().map(|&e| e as f32).collect();
                Explanation::from_image_errors(
                    sample,
                    &err,
                    crate::ingest::IMAGE_SIDE,
                    explain::TOP,
                )
            }
            SampleSpec::Flows(f) => {
                let mut w = Vec::with_capacity(err.len());
                for (p, row) in sample.chunks(f.l).enumerate() {
                    let names = explain::fields::frame_row(row);
                    for (k, name) in names.into_iter().enumerate().take(row.len()) {
                        w.push((p, name, err[p * f.l + k]));
                    }
                }
                Explanation::from_weights(&w, explain::TOP)
            }
        }
    }

    /// Occlusion: each sample re-scored with each header field of each packet zeroed,
    /// and with each packet zeroed; what lowers the score drove it (when nothing does,
    /// the explanation is empty). Flow samples only. The occluded copies of several
    /// samples share scoring passes: one sample's copies (a few dozen) would leave most
    /// of a power-of-two batch empty.
    fn occlusions(
        &mut self,
        gpu: &Gpu,
        samples: &[u8],
        n: usize,
    ) -> Result<Vec<Option<Explanation>>> {
        use crate::explain;
        let SampleSpec::Flows(f) = &self.spec else {
            return Ok(vec![None; n]);
        };
        let (rows, row_len) = (f.n, f.l);
        let len = rows * row_len;
        let mut out = Vec::with_capacity(n);
        let mut pending: Vec<Vec<explain::Occlusion>> = Vec::new();
        let mut batch: Vec<u8> = Vec::new();
        let flush = |this: &mut Self,
                     pending: &mut Vec<Vec<explain::Occlusion>>,
                     batch: &mut Vec<u8>,
                     out: &mut Vec<Option<Explanation>>|
         -> Result<()> {
            let scores = this
                .runs
                .score(gpu, &this.model, batch, len, batch.len() / len)?;
            let mut at = 0;
            for occ in pending.drain(..) {
                let s: Vec<f64> = scores[at..at + occ.len() + 1]
                    .iter()
                    .map(|&v| f64::from(v))
                    .collect();
                at += occ.len() + 1;
                out.push(Some(explain::from_occlusions(
                    s[0],
                    &occ,
                    &s[1..],
                    explain::TOP,
                )));
            }
            batch.clear();
            Ok(())
        };
        for sample in samples[..n * len].chunks(len) {
            let occ = explain::flow_occlusions(sample, rows, row_len);
            batch.extend_from_slice(sample);
            for o in &occ {
                let start = batch.len();
                batch.extend_from_slice(sample);
                for &i in &o.bytes {
                    batch[start + i] = 0;
                }
            }
            pending.push(occ);
            if batch.len() >= SCORE_BATCH * len {
                flush(self, &mut pending, &mut batch, &mut out)?;
            }
        }
        if !pending.is_empty() {
            flush(self, &mut pending, &mut batch, &mut out)?;
        }
        Ok(out)
    }

    /// The checkpoint's model with its spec and threshold.
    pub fn from_checkpoint(gpu: &Gpu, c: &Checkpoint, origin: &str) -> Result<Self> {
        let kind = c.meta_str("model")?;
        let e = entry(kind).with_context(|| origin.to_string())?;
        let spec = SampleSpec::from_json(e.samples, c.meta_str("samples")?)
            .with_context(|| format!("{origin}: metadata field 'samples' is not valid"))?;
        Ok(Loaded::new(
            M::load(gpu, c, origin)?,
            spec,
            c.meta_json("threshold").ok(),
        ))
    }
}

impl<M: Model> Scorer for Loaded<M> {
    fn kind(&self) -> &str {
        self.model.kind()
    }
    fn display(&self) -> &str {
        self.model.display()
    }
    fn signature_id(&self) -> u32 {
        self.model.signature_id()
    }
    fn spec(&self) -> &SampleSpec {
        &self.spec
    }
    fn threshold(&self) -> Option<&Threshold> {
        self.threshold.as_ref()
    }
    fn score(&mut self, gpu: &Gpu, samples: &[u8], n: usize) -> Result<Vec<f32>> {
        self.runs
            .score(gpu, &self.model, samples, self.spec.sample_len(), n)
    }

    fn explain(&mut self, gpu: &Gpu, sample: &[u8]) -> Result<Option<Explanation>> {
        let len = self.spec.sample_len();
        let Some(sample) = sample.get(..len) else {
            bail!(
                "explain: a {} sample is {len} bytes, got {}",
                self.model.kind(),
                sample.len()
            );
        };
        Ok(self.explain_many(gpu, sample, 1)?.pop().flatten())
    }

    /// Byte-error models: one forward per [`EXPLAIN_CHUNK`] samples, each sample's
    /// per-byte errors mapped to its fields. The others: occlusion, one batch of
    /// occluded copies per sample.
    fn explain_many(
        &mut self,
        gpu: &Gpu,
        samples: &[u8],
        n: usize,
    ) -> Result<Vec<Option<Explanation>>> {
        let len = self.spec.sample_len();
        if samples.len() < n * len {
            bail!(
                "explain: {n} samples of {len} bytes need {} bytes, got {}",
                n * len,
                samples.len()
            );
        }
        let mut out = Vec::with_capacity(n);
        let Some(kind) = self.model.byte_error() else {
            return self.occlusions(gpu, samples, n);
        };
        for lo in (0..n).step_by(EXPLAIN_CHUNK) {
            let k = (n - lo).min(EXPLAIN_CHUNK);
            let chunk = &samples[lo * len..(lo + k) * len];
            let recon = self
                .reconstructions(gpu, chunk, k)?
                .context("a model scored by byte errors reconstructs its input")?;
            if recon.len() < k * len {
                // The run reconstructs in micro-batches and keeps only the last one.
                for s in chunk.chunks(len) {
                    let r = self
                        .reconstructions(gpu, s, 1)?
                        .context("a model scored by byte errors reconstructs its input")?;
                    out.push(Some(self.explain_errors(s, &r, kind)));
                }
                continue;
            }
            for (s, r) in chunk.chunks(len).zip(recon.chunks(len)) {
                out.push(Some(self.explain_errors(s, r, kind)));
            }
        }
        Ok(out)
    }

    fn reconstructions(&mut self, gpu: &Gpu, samples: &[u8], n: usize) -> Result<Option<Vec<f32>>> {
        let len = self.spec.sample_len();
        let run = self.runs.get(gpu, &self.model, n)?;
        if n > run.batch() {
            bail!("reconstructions: at most {} samples at once", run.batch());
        }
        let got = run.upload(
            gpu,
            &super::HostBatch::plain(samples[..n * len].to_vec(), n),
        );
        let mut b = gpu.batch();
        run.score(&mut b, &self.model, got)?;
        b.submit()?;
        Ok(run.reconstruction(gpu)?.map(|mut r| {
            r.truncate(n * len);
            r
        }))
    }
}

/// How to read one model kind out of a checkpoint.
#[derive(Clone, Copy)]
pub struct Entry {
    /// The checkpoint "model" values it loads.
    pub kinds: &'static [&'static str],
    pub samples: SampleKind,
    /// Input bytes per sample of the network.
    pub sample_len: usize,
    load: fn(&Gpu, &Checkpoint, &str) -> Result<Box<dyn Scorer>>,
    tensor_specs: fn(&Checkpoint, &str, &str) -> Result<TensorSpecs>,
}

/// Tensor names and shapes a checkpoint must hold.
type TensorSpecs = Vec<(String, Vec<usize>)>;

impl Entry {
    /// The entry of model type `M`, which loads checkpoints whose "model" is one of
    /// `kinds` and takes `sample_len`-byte samples of kind `samples`.
    pub fn of<M: Model>(
        kinds: &'static [&'static str],
        samples: SampleKind,
        sample_len: usize,
    ) -> Entry {
        Entry {
            kinds,
            samples,
            sample_len,
            load: |gpu, c, origin| Ok(Box::new(Loaded::<M>::from_checkpoint(gpu, c, origin)?)),
            tensor_specs: M::tensor_specs,
        }
    }
}

/// The models this crate ships.
fn builtin() -> [Entry; 3] {
    use super::{baselines::Baseline, doc_ids::DocIds, vae::Vae};
    let flow = super::doc_ids::INPUT;
    [
        Entry::of::<Vae>(
            &[super::vae::KIND],
            SampleKind::Images,
            crate::ingest::IMAGE_LEN,
        ),
        Entry::of::<DocIds>(&[super::doc_ids::KIND], SampleKind::Flows, flow),
        Entry::of::<Baseline>(&["ae", "conv-ae"], SampleKind::Flows, flow),
    ]
}

static REGISTERED: RwLock<Vec<Entry>> = RwLock::new(Vec::new());

/// Adds a model kind (e.g. one defined outside this crate) to the table.
pub fn register(e: Entry) {
    REGISTERED.write().expect("registry lock").push(e);
}

/// Every known model kind, for messages.
pub fn kinds() -> Vec<&'static str> {
    let extra = REGISTERED.read().expect("registry lock");
    builtin()
        .iter()
        .chain(extra.iter())
        .flat_map(|e| e.kinds.iter().copied())
        .collect()
}

/// The entry that loads checkpoints of `kind`.
pub fn entry(kind: &str) -> Result<Entry> {
    let extra = REGISTERED.read().expect("registry lock");
    if let Some(e) = builtin()
        .iter()
        .chain(extra.iter())
        .find(|e| e.kinds.contains(&kind))
    {
        return Ok(*e);
    }
    bail!(
        "metadata field 'model' is '{kind}' (expected {})",
        kinds().join(", ")
    )
}

/// Checks what a checkpoint's metadata says against the model it names: the kind,
/// the sample options (they must produce the network's input), the alert threshold
/// (finite) and every tensor's shape. A model is only built from a checkpoint that
/// passes.
pub fn validate(c: &Checkpoint, origin: &str) -> Result<Entry> {
    let Some(model) = c.meta.get("model") else {
        bail!("{origin}: checkpoint metadata has no 'model' field");
    };
    let e = entry(model).with_context(|| origin.to_string())?;
    let json = c.meta_str("samples").with_context(|| origin.to_string())?;
    match SampleSpec::from_json(e.samples, json)
        .with_context(|| format!("{origin}: metadata field 'samples' is not valid"))?
    {
        SampleSpec::Images(s) => {
            let side = crate::ingest::IMAGE_SIDE;
            if !(1..=side).contains(&s.min_packets) {
                bail!(
                    "{origin}: metadata field 'samples': min_packets {} is outside 1..={side}",
                    s.min_packets
                );
            }
        }
        SampleSpec::Flows(s) => {
            if s.kind != "flows" || s.n.checked_mul(s.l) != Some(e.sample_len) {
                bail!(
                    "{origin}: metadata field 'samples' says {} of {} packets × {} bytes; the {model} network takes flows of {} bytes",
                    s.kind, s.n, s.l, e.sample_len
                );
            }
        }
    }
    if c.meta.contains_key("threshold") {
        let t: Threshold = c.meta_field(origin, "threshold")?;
        if !t.value.is_finite() || t.value < 0.0 {
            bail!(
                "{origin}: metadata field 'threshold': value {} is not a finite non-negative score",
                t.value
            );
        }
    }
    for (name, shape) in (e.tensor_specs)(c, model, origin)? {
        let Some((s, _)) = c.tensors.get(&name) else {
            bail!("{origin}: checkpoint has no tensor '{name}' (model {model})");
        };
        if *s != shape {
            bail!("{origin}: tensor '{name}' has shape {s:?}, the {model} model needs {shape:?}");
        }
    }
    Ok(e)
}

/// Reads a checkpoint and checks it ([`validate`]): what every command that builds a
/// model from a file calls.
pub fn read(path: &Path) -> Result<Checkpoint> {
    let c = Checkpoint::load(path)?;
    validate(&c, &path.display().to_string())?;
    Ok(c)
}

/// The model of the checkpoint at `path`, ready to score.
pub fn load(gpu: &Gpu, path: &Path) -> Result<Box<dyn Scorer>> {
    let origin = path.display().to_string();
    let c = Checkpoint::load(path)?;
    let e = validate(&c, &origin)?;
    (e.load)(gpu, &c, &origin).with_context(|| format!("loading model {origin}"))
}

/// Scores of every sample of `data`, in order.
pub fn score_all(
    gpu: &Gpu,
    scorer: &mut dyn Scorer,
    data: &dyn crate::ingest::Samples,
) -> Result<Vec<f64>> {
    let mut out = Vec::with_capacity(data.len());
    let idx: Vec<usize> = (0..data.len()).collect();
    for chunk in idx.chunks(SCORE_BATCH) {
        let bytes = crate::data::samplers::gather(data, chunk);
        out.extend(
            scorer
                .score(gpu, &bytes, chunk.len())?
                .into_iter()
                .map(f64::from),
        );
    }
    Ok(out)
}
