//! Training loops of the flow models: DOC-IDS (reference + target batches each step)
//! and its AE / 1D-Conv AE baselines (target only). Shares with the VAE loop
//! (`crate::train`) the sample order, the time split of the benign samples, batch
//! gathering, progress bars and the alert threshold; adds SGD or Adam over a parameter
//! list, batch-norm running statistics in checkpoints, and a resumable class-balanced
//! reference sampler.

use std::path::Path;
use std::time::{Duration, Instant};

use anyhow::{bail, Context, Result};
use serde::{Deserialize, Serialize};

use crate::checkpoint::Checkpoint;
use crate::eval::threshold::{self, Threshold};
use crate::gpu::{Batch, Buf, Gpu};
use crate::ingest::Samples;
use crate::models::baselines::{self, Baseline, BaselineKind, BaselineRun};
use crate::models::doc_ids::{self, DocIds, DocLoss, DocRun, LossWeights, INPUT};
use crate::models::params::{self, Param};
use crate::nn::init::HostRng;
use crate::nn::optim::{self, Adam, Sgd};
use crate::train::plateau::{self, Plateau};
use crate::train::{epoch_order, gather, progress, split_benign};

pub const DOC_IDS: &str = "doc-ids";

#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize, clap::ValueEnum)]
#[serde(rename_all = "lowercase")]
pub enum Optimizer {
    /// Plain SGD (no momentum), L2 weight decay.
    Sgd,
    /// Adam, β (0.9, 0.999), ε 1e-8, L2 weight decay.
    Adam,
}

#[derive(Clone, Debug, Serialize, Deserialize, PartialEq)]
pub struct FlowTrainOptions {
    pub epochs: usize,
    pub batch: usize,
    pub optimizer: Optimizer,
    pub lr: f64,
    pub weight_decay: f64,
    pub seed: u64,
    /// Fraction of the benign target samples (the latest by time) held out to fit the
    /// alert threshold.
    pub val_split: f64,
    /// Fraction of each reference class held out (seeded) for the per-epoch accuracy.
    pub ref_val_split: f64,
    pub alert_fpr: f64,
    pub weights: LossWeights,
    /// Read the loss back every this many steps (each read waits for the GPU).
    pub log_every: usize,
    /// None: exactly `epochs` epochs, the last model kept. Some: train until the plateau
    /// rule stops it on the held-out benign score, at most `epochs`, keeping the model
    /// with the lowest one (docs/TRAINING.md).
    #[serde(default)]
    pub until_plateau: Option<Plateau>,
    /// No epoch starts that would end past this budget (measured by the slowest epoch).
    #[serde(default)]
    pub time_budget: Option<Duration>,
    /// How the alert threshold is cut from the validation scores (checkpoints written
    /// before the choice existed used the log-normal rule).
    #[serde(default = "threshold::legacy_rule")]
    pub threshold_rule: threshold::Rule,
    #[serde(skip)]
    pub quiet: bool,
}

impl FlowTrainOptions {
    /// DOC-IDS's faster default: Adam 1e-3, batch 64, 10 epochs (see docs/DOC_IDS.md for
    /// the measurement against the paper's SGD).
    pub fn doc_ids_default() -> Self {
        FlowTrainOptions {
            epochs: 10,
            batch: 64,
            optimizer: Optimizer::Adam,
            lr: 1e-3,
            weight_decay: 0.0,
            seed: 0,
            val_split: 0.1,
            ref_val_split: 0.1,
            alert_fpr: 1e-3,
            weights: LossWeights::default(),
            log_every: 20,
            until_plateau: None,
            time_budget: None,
            threshold_rule: threshold::Rule::default(),
            quiet: false,
        }
    }
    /// The paper's setting: SGD lr 5e-5, weight decay 5e-4, no momentum, batch 64.
    pub fn doc_ids_paper() -> Self {
        FlowTrainOptions {
            optimizer: Optimizer::Sgd,
            lr: 5e-5,
            weight_decay: 5e-4,
            epochs: 30,
            ..Self::doc_ids_default()
        }
    }
    /// The baselines: Adam 1e-3, batch 64 (docs/MODELS.md §4).
    pub fn baseline_default() -> Self {
        FlowTrainOptions {
            epochs: 100,
            ..Self::doc_ids_default()
        }
    }
}

/// One line of the loss history. DOC-IDS fills the three terms and the reference
/// accuracy; the baselines only `loss`.
#[derive(Clone, Debug, Serialize, Deserialize, PartialEq)]
pub struct FlowEpochLog {
    pub epoch: usize,
    pub loss: f64,
    pub l_d: Option<f64>,
    pub l_c: Option<f64>,
    pub l_r: Option<f64>,
    /// Accuracy of h_c on the held-out reference samples (eval mode).
    pub ref_accuracy: Option<f64>,
    /// Mean score of the held-out benign target samples.
    pub val_score: Option<f64>,
    pub seconds: f64,
    pub samples_per_s: f64,
}

#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct FlowTrainState {
    pub options: FlowTrainOptions,
    pub epoch: usize,
    /// Optimizer steps taken; with the seed it fixes every later batch, so a resumed
    /// run draws what an uninterrupted one would.
    pub step: u64,
    pub history: Vec<FlowEpochLog>,
    /// Reference classes in h_c's output order (DOC-IDS only).
    pub classes: Vec<String>,
    pub train_samples: usize,
    pub val_samples: usize,
    pub ref_train_samples: usize,
    pub ref_val_samples: usize,
}

/// How the flow samples were made; stored in the checkpoint so scoring repeats it.
#[derive(Clone, Debug, Serialize, Deserialize, PartialEq)]
pub struct FlowSpec {
    pub kind: String,
    pub n: usize,
    pub l: usize,
    pub anonymise: bool,
}

impl FlowSpec {
    pub fn new(anonymise: bool) -> Self {
        FlowSpec {
            kind: "flows".into(),
            n: 4,
            l: 80,
            anonymise,
        }
    }
}

/// A trained flow model on the GPU.
pub enum FlowNet {
    Doc(DocIds),
    Base(Baseline),
}

impl FlowNet {
    pub fn params(&self) -> &[Param] {
        match self {
            FlowNet::Doc(m) => &m.params,
            FlowNet::Base(m) => &m.params,
        }
    }
    /// The checkpoint's "model" value.
    pub fn model_name(&self) -> &'static str {
        match self {
            FlowNet::Doc(_) => DOC_IDS,
            FlowNet::Base(m) => m.kind.model_name(),
        }
    }
    pub fn display(&self) -> &'static str {
        match self {
            FlowNet::Doc(_) => "DOC-IDS",
            FlowNet::Base(m) => m.kind.display(),
        }
    }
}

/// Optimizer state on the GPU: Adam's moments (none for momentum-free SGD).
struct OptState {
    kind: Optimizer,
    lr: f64,
    weight_decay: f64,
    m: Vec<Buf<f32>>,
    v: Vec<Buf<f32>>,
}

impl OptState {
    fn new(
        gpu: &Gpu,
        o: &FlowTrainOptions,
        params: &[Param],
        saved: Option<&Checkpoint>,
    ) -> Result<OptState> {
        let (mut m, mut v) = (vec![], vec![]);
        if o.optimizer == Optimizer::Adam {
            for p in params {
                match saved {
                    Some(c) => {
                        m.push(gpu.upload(&c.tensor(&format!("adam.m.{}", p.name))?.1)?);
                        v.push(gpu.upload(&c.tensor(&format!("adam.v.{}", p.name))?.1)?);
                    }
                    None => {
                        m.push(gpu.zeros(p.w.len())?);
                        v.push(gpu.zeros(p.w.len())?);
                    }
                }
            }
        }
        Ok(OptState {
            kind: o.optimizer,
            lr: o.lr,
            weight_decay: o.weight_decay,
            m,
            v,
        })
    }

    /// One update of every parameter; `t` is the 1-based step.
    fn step(&self, b: &mut Batch, params: &[Param], t: u64) -> Result<()> {
        for (i, p) in params.iter().enumerate() {
            match self.kind {
                Optimizer::Adam => {
                    let cfg = Adam {
                        lr: self.lr,
                        weight_decay: self.weight_decay,
                        ..Adam::default()
                    };
                    optim::adam_step(
                        b,
                        p.w.len(),
                        &cfg,
                        t,
                        p.w.raw(),
                        p.g.raw(),
                        self.m[i].raw(),
                        self.v[i].raw(),
                    )?
                }
                Optimizer::Sgd => {
                    let cfg = Sgd {
                        lr: self.lr,
                        weight_decay: self.weight_decay,
                        ..Sgd::default()
                    };
                    optim::sgd_step(b, p.w.len(), &cfg, t == 1, p.w.raw(), p.g.raw(), None)?
                }
            }
        }
        Ok(())
    }

    fn save(&self, gpu: &Gpu, params: &[Param], c: &mut Checkpoint) -> Result<()> {
        for (i, p) in params
            .iter()
            .enumerate()
            .filter(|_| self.kind == Optimizer::Adam)
        {
            c.insert(
                format!("adam.m.{}", p.name),
                &p.shape,
                gpu.read(&self.m[i])?,
            );
            c.insert(
                format!("adam.v.{}", p.name),
                &p.shape,
                gpu.read(&self.v[i])?,
            );
        }
        Ok(())
    }
}

/// The checkpoint of a model with its optimizer and training state.
fn checkpoint(
    gpu: &Gpu,
    net: &FlowNet,
    opt: Option<&OptState>,
    state: &FlowTrainState,
    thr: Option<&Threshold>,
    spec: &FlowSpec,
    kept: Option<&Checkpoint>,
) -> Result<Checkpoint> {
    let mut c = Checkpoint::default();
    for p in net.params() {
        c.insert(p.name.clone(), &p.shape, gpu.read(&p.w)?);
    }
    if let FlowNet::Doc(m) = net {
        for ((name, len), buf) in DocIds::running_names().into_iter().zip(&m.running) {
            c.insert(name, &[len], gpu.read(buf)?);
        }
    }
    if let Some(o) = opt {
        o.save(gpu, net.params(), &mut c)?;
    }
    c.meta.insert("model".into(), net.model_name().into());
    c.set_json("train", state);
    c.set_json("samples", spec);
    if let Some(t) = thr {
        c.set_json("threshold", t);
    }
    // The kept model is what scoring loads; the current one goes under `last.` for --resume.
    if let Some(k) = kept {
        for (name, (shape, values)) in &k.tensors {
            if let Some(cur) = c
                .tensors
                .insert(name.clone(), (shape.clone(), values.clone()))
            {
                c.tensors.insert(format!("{LAST}{name}"), cur);
            }
        }
    }
    Ok(c)
}

/// Prefix of the current parameters in a checkpoint whose model tensors hold an earlier,
/// better epoch.
pub const LAST: &str = crate::train::LAST;

/// The model tensors (parameters and batch-norm statistics) of `net`, read back.
fn snapshot(gpu: &Gpu, net: &FlowNet) -> Result<Checkpoint> {
    let mut c = Checkpoint::default();
    for p in net.params() {
        c.insert(p.name.clone(), &p.shape, gpu.read(&p.w)?);
    }
    if let FlowNet::Doc(m) = net {
        for ((name, len), buf) in DocIds::running_names().into_iter().zip(&m.running) {
            c.insert(name, &[len], gpu.read(buf)?);
        }
    }
    Ok(c)
}

/// Splits a checkpoint written with a kept model apart from the current one: (the
/// checkpoint as training stood, the kept model's tensors).
fn split_kept(mut c: Checkpoint) -> (Checkpoint, Option<Checkpoint>) {
    let last: Vec<String> = c
        .tensors
        .keys()
        .filter(|k| k.starts_with(LAST))
        .cloned()
        .collect();
    if last.is_empty() {
        return (c, None);
    }
    let mut kept = Checkpoint::default();
    for l in last {
        let name = l[LAST.len()..].to_string();
        let cur = c.tensors.remove(&l).expect("listed above");
        if let Some(best) = c.tensors.insert(name.clone(), cur) {
            kept.tensors.insert(name, best);
        }
    }
    (c, Some(kept))
}

/// The model with the lowest held-out score so far, under the plateau rule.
struct Kept {
    tensors: Checkpoint,
    val: f64,
    /// Whether the model on the GPU still is this one.
    current: bool,
}

impl Kept {
    /// State of the kept model on resuming (`saved`: the kept tensors of the checkpoint).
    fn resumed(
        o: &FlowTrainOptions,
        st: &FlowTrainState,
        c: &Checkpoint,
        saved: Option<Checkpoint>,
    ) -> Option<Kept> {
        let r = o.until_plateau.as_ref()?;
        match saved {
            Some(t) => Some(Kept {
                tensors: t,
                val: r
                    .state(&val_scores(&st.history))
                    .map_or(f64::INFINITY, |s| s.best),
                current: false,
            }),
            None if st.epoch > 0 => {
                let mut t = Checkpoint::default();
                t.tensors = c
                    .tensors
                    .iter()
                    .filter(|(k, _)| !k.starts_with("adam."))
                    .map(|(k, v)| (k.clone(), v.clone()))
                    .collect();
                Some(Kept {
                    tensors: t,
                    val: st
                        .history
                        .last()
                        .and_then(|h| h.val_score)
                        .unwrap_or(f64::INFINITY),
                    current: true,
                })
            }
            None => None,
        }
    }

    /// After an epoch with held-out score `val`: keep the current model if it is the best.
    fn update(
        kept: &mut Option<Kept>,
        gpu: &Gpu,
        net: &FlowNet,
        o: &FlowTrainOptions,
        val: Option<f64>,
    ) -> Result<()> {
        if o.until_plateau.is_none() {
            return Ok(());
        }
        match (kept.as_mut(), val.filter(|v| v.is_finite())) {
            (Some(k), Some(v)) if v >= k.val => k.current = false,
            (_, Some(v)) => {
                *kept = Some(Kept {
                    tensors: snapshot(gpu, net)?,
                    val: v,
                    current: true,
                })
            }
            (_, None) => *kept = None,
        }
        Ok(())
    }

    fn apart(k: &Option<Kept>) -> Option<&Checkpoint> {
        k.as_ref().filter(|k| !k.current).map(|k| &k.tensors)
    }
}

/// Held-out benign score of each epoch, as the plateau rule reads it.
pub fn val_scores(history: &[FlowEpochLog]) -> Vec<Option<f64>> {
    history.iter().map(|h| h.val_score).collect()
}

/// Why training ends before another epoch, if it does (the plateau rule or the budget).
fn stop_reason(
    o: &FlowTrainOptions,
    state: &FlowTrainState,
    started: Instant,
    slowest: Duration,
) -> Option<String> {
    plateau::stop_reason(
        o.until_plateau.as_ref(),
        plateau::HELD_OUT_SCORE,
        &val_scores(&state.history),
        state.step,
        o.time_budget,
        started,
        slowest,
    )
}

/// The plateau rule's state, for the per-epoch line.
fn rule_line(o: &FlowTrainOptions, state: &FlowTrainState) -> String {
    plateau::rule_line(
        o.until_plateau.as_ref(),
        &val_scores(&state.history),
        state.step,
    )
}

/// What the run will do, for the first line.
fn until_line(o: &FlowTrainOptions, first_epoch: usize) -> String {
    plateau::until_line(
        o.until_plateau.as_ref(),
        plateau::HELD_OUT_SCORE,
        o.epochs,
        o.time_budget,
        first_epoch,
    )
}

fn tensors(c: &Checkpoint, origin: &str, specs: &[(String, Vec<usize>)]) -> Result<Vec<Vec<f32>>> {
    specs
        .iter()
        .map(|(name, shape)| {
            let (s, v) = c.tensor(name).with_context(|| origin.to_string())?;
            if s != shape {
                bail!("{origin}: tensor {name} has shape {s:?}, expected {shape:?}");
            }
            Ok(v.clone())
        })
        .collect()
}

/// A flow model from a checkpoint (its "model" metadata says which).
pub fn net_from(gpu: &Gpu, c: &Checkpoint, origin: &str) -> Result<FlowNet> {
    let model = c.meta_str("model").with_context(|| origin.to_string())?;
    if model == DOC_IDS {
        let st: FlowTrainState = c.meta_json("train")?;
        let classes = st.classes.len();
        let values = tensors(c, origin, &params::specs(&doc_ids::layers(classes)))?;
        let rs: Vec<(String, Vec<usize>)> = DocIds::running_names()
            .into_iter()
            .map(|(n, l)| (n, vec![l]))
            .collect();
        let running = tensors(c, origin, &rs)?;
        return Ok(FlowNet::Doc(DocIds::from_host(
            gpu, classes, &values, &running,
        )?));
    }
    match BaselineKind::from_model_name(model) {
        Some(kind) => {
            let values = tensors(c, origin, &params::specs(&baselines::layers(kind)))?;
            Ok(FlowNet::Base(Baseline::from_host(gpu, kind, &values)?))
        }
        None => bail!(
            "{origin}: checkpoint holds model '{model}', not a flow model (doc-ids, ae, conv-ae)"
        ),
    }
}

/// A flow-model checkpoint on the GPU, with how its samples are made and its threshold.
pub struct LoadedFlow {
    pub net: FlowNet,
    pub spec: FlowSpec,
    pub threshold: Option<Threshold>,
    pub state: FlowTrainState,
}

pub fn load_flow(gpu: &Gpu, path: &Path) -> Result<LoadedFlow> {
    let origin = path.display().to_string();
    load_flow_inner(gpu, path, &origin).with_context(|| format!("loading flow model {origin}"))
}

fn load_flow_inner(gpu: &Gpu, path: &Path, origin: &str) -> Result<LoadedFlow> {
    let c = Checkpoint::load_model(path)?;
    let origin = origin.to_string();
    Ok(LoadedFlow {
        net: net_from(gpu, &c, &origin)?,
        spec: c
            .meta_json("samples")
            .with_context(|| format!("{origin}: no sample options"))?,
        threshold: c.meta_json("threshold").ok(),
        state: c.meta_json("train")?,
    })
}

/// Batch size of scoring passes.
pub const SCORE_BATCH: usize = 256;

/// Scores of samples `idx` of `data` (DOC-IDS: l_R in eval mode; baselines: MSE).
pub fn score_indices(
    gpu: &Gpu,
    net: &FlowNet,
    data: &dyn Samples,
    idx: &[usize],
) -> Result<Vec<f64>> {
    let mut out = Vec::with_capacity(idx.len());
    let batch = SCORE_BATCH.min(idx.len().max(1));
    match net {
        FlowNet::Doc(m) => {
            let run = DocRun::new(gpu, batch, m.classes, LossWeights::default(), false)?;
            for chunk in idx.chunks(batch) {
                let n = run.upload(gpu, &gather(data, chunk));
                let mut b = gpu.batch();
                run.score(&mut b, m, n)?;
                b.submit()?;
                out.extend(gpu.read(&run.scores)?[..n].iter().map(|&v| v as f64));
            }
        }
        FlowNet::Base(m) => {
            let run = BaselineRun::new(gpu, m.kind, batch, false)?;
            for chunk in idx.chunks(batch) {
                let n = run.upload(gpu, &gather(data, chunk));
                let mut b = gpu.batch();
                run.score(&mut b, m, n)?;
                b.submit()?;
                out.extend(gpu.read(&run.scores)?[..n].iter().map(|&v| v as f64));
            }
        }
    }
    Ok(out)
}

/// Share of `idx` (with class ids `labels`) that h_c classifies right, in eval mode.
pub fn reference_accuracy(
    gpu: &Gpu,
    m: &DocIds,
    data: &dyn Samples,
    idx: &[usize],
    labels: &[u32],
) -> Result<f64> {
    let batch = SCORE_BATCH.min(idx.len().max(1));
    let run = DocRun::new(gpu, batch, m.classes, LossWeights::default(), false)?;
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

/// Reference classes and each sample's class id: names sorted, so the head's output
/// order does not depend on input order.
pub fn reference_classes(data: &dyn Samples) -> (Vec<String>, Vec<u32>) {
    let names = data.class_names();
    let mut used: Vec<String> = (0..data.len())
        .map(|i| {
            names
                .get(data.meta(i).class_id as usize)
                .cloned()
                .unwrap_or_default()
        })
        .collect();
    let per_sample = used.clone();
    used.sort();
    used.dedup();
    let ids = per_sample
        .iter()
        .map(|n| used.binary_search(n).unwrap() as u32)
        .collect();
    (used, ids)
}

/// At most `limit` samples per class (a seeded choice, kept in input order): a smaller
/// reference set, hence shorter epochs, where the adapter is slow.
pub fn limit_per_class(data: &dyn Samples, limit: usize, seed: u64) -> crate::ingest::SampleSet {
    let (classes, labels) = reference_classes(data);
    let mut keep = vec![];
    for c in 0..classes.len() {
        let idx: Vec<usize> = (0..labels.len())
            .filter(|&i| labels[i] == c as u32)
            .collect();
        keep.extend(
            epoch_order(idx.len(), seed ^ 0x11_4117, c)
                .into_iter()
                .take(limit)
                .map(|k| idx[k]),
        );
    }
    keep.sort_unstable();
    let mut out = crate::ingest::SampleSet::new(data.sample_len());
    out.names = crate::ingest::NameTable::from_names(data.class_names().to_vec());
    for i in keep {
        out.push(crate::ingest::Sample {
            data: data.sample(i).to_vec(),
            meta: data.meta(i),
        });
    }
    out
}

/// Per class, a seeded `frac` of its samples held out: (train, held-out) index lists.
pub fn split_reference(
    labels: &[u32],
    classes: usize,
    frac: f64,
    seed: u64,
) -> (Vec<usize>, Vec<usize>) {
    let (mut train, mut val) = (vec![], vec![]);
    for c in 0..classes {
        let idx: Vec<usize> = (0..labels.len())
            .filter(|&i| labels[i] == c as u32)
            .collect();
        let order = epoch_order(idx.len(), seed ^ 0x5EE_D0FC_1A55, c);
        let n_val = ((idx.len() as f64 * frac).round() as usize).min(idx.len().saturating_sub(1));
        for (k, &o) in order.iter().enumerate() {
            if k < n_val {
                val.push(idx[o]);
            } else {
                train.push(idx[o]);
            }
        }
    }
    train.sort_unstable();
    val.sort_unstable();
    (train, val)
}

/// Cyclic passes over `items`, reshuffled every pass; draw `t` is a pure function of
/// (seed, t), so a resumed run continues the same sequence.
struct Cyclic {
    items: Vec<usize>,
    seed: u64,
    pass: Option<(usize, Vec<usize>)>,
}

impl Cyclic {
    fn new(items: Vec<usize>, seed: u64) -> Self {
        Cyclic {
            items,
            seed,
            pass: None,
        }
    }
    fn draw(&mut self, t: u64) -> usize {
        let len = self.items.len();
        let pass = (t / len as u64) as usize;
        if self.pass.as_ref().map(|p| p.0) != Some(pass) {
            self.pass = Some((pass, epoch_order(len, self.seed, pass)));
        }
        self.items[self.pass.as_ref().unwrap().1[(t % len as u64) as usize]]
    }
}

/// Class-balanced reference batches: global slot t goes to class order_b[t mod C] of
/// block b = t / C (each block of C slots holds every class once, in a shuffled
/// order), and within a class to the next sample of its own reshuffled cyclic pass.
struct BalancedSampler {
    classes: Vec<Cyclic>,
    seed: u64,
    block: Option<(u64, Vec<usize>)>,
}

impl BalancedSampler {
    fn new(train: &[usize], labels: &[u32], classes: usize, seed: u64) -> Self {
        let per = (0..classes)
            .map(|c| {
                Cyclic::new(
                    train
                        .iter()
                        .copied()
                        .filter(|&i| labels[i] == c as u32)
                        .collect(),
                    seed ^ (c as u64 + 1).wrapping_mul(0xA24B_AED4_963E_E407),
                )
            })
            .collect();
        BalancedSampler {
            classes: per,
            seed: seed ^ 0xC1A_55E5,
            block: None,
        }
    }
    fn draw(&mut self, t: u64) -> usize {
        let c = self.classes.len() as u64;
        let block = t / c;
        if self.block.as_ref().map(|b| b.0) != Some(block) {
            self.block = Some((block, epoch_order(c as usize, self.seed, block as usize)));
        }
        let class = self.block.as_ref().unwrap().1[(t % c) as usize];
        self.classes[class].draw(block)
    }
}

pub struct FlowOutcome {
    pub state: FlowTrainState,
    pub threshold: Threshold,
    pub val_scores: Vec<f64>,
}

fn check_options(o: &FlowTrainOptions) -> Result<()> {
    if o.batch == 0 || o.epochs == 0 {
        bail!("--batch and --epochs must be positive");
    }
    if !(o.lr > 0.0 && o.lr.is_finite()) {
        bail!("--lr must be positive, got {}", o.lr);
    }
    if !(o.weight_decay >= 0.0 && o.weight_decay.is_finite()) {
        bail!("--weight-decay must be ≥ 0, got {}", o.weight_decay);
    }
    if !(0.0..1.0).contains(&o.val_split) || !(0.0..1.0).contains(&o.ref_val_split) {
        bail!("--val-split and --ref-val-split must be in [0, 1)");
    }
    if !(o.alert_fpr > 0.0 && o.alert_fpr < 1.0) {
        bail!(
            "--alert-fpr must be strictly between 0 and 1, got {}",
            o.alert_fpr
        );
    }
    Ok(())
}

fn check_len(what: &str, data: &dyn Samples) -> Result<()> {
    if data.sample_len() != INPUT {
        bail!("{what}: the flow models take 4×80-byte flow samples ({INPUT} bytes); this input holds samples of {} bytes (ingest with --kind flows)", data.sample_len());
    }
    Ok(())
}

/// Loads `resume` and checks it was written by a run with the same settings.
fn resume_from(
    path: &Path,
    model: &str,
    o: &FlowTrainOptions,
) -> Result<(Checkpoint, FlowTrainState, Option<Kept>)> {
    let (c, kept) = split_kept(Checkpoint::load(path)?);
    let origin = path.display().to_string();
    let kind = c.meta_str("model")?;
    if kind != model {
        bail!("{origin}: --resume checkpoint holds model '{kind}', this run trains '{model}'");
    }
    let mut st: FlowTrainState = c.meta_json("train")?;
    let p = &st.options;
    if (
        p.batch,
        p.seed,
        p.optimizer,
        p.lr,
        p.weight_decay,
        p.weights,
    ) != (
        o.batch,
        o.seed,
        o.optimizer,
        o.lr,
        o.weight_decay,
        o.weights,
    ) {
        bail!(
            "{origin}: --resume needs the settings of the run that wrote it (batch {}, seed {}, {:?} lr {} weight decay {})",
            p.batch, p.seed, p.optimizer, p.lr, p.weight_decay
        );
    }
    // The stopping rule and length are this run's; the settings above fix the steps.
    st.options.epochs = o.epochs;
    st.options.until_plateau = o.until_plateau.clone();
    st.options.time_budget = o.time_budget;
    st.options.threshold_rule = o.threshold_rule;
    st.options.alert_fpr = o.alert_fpr;
    let kept = Kept::resumed(o, &st, &c, kept);
    Ok((c, st, kept))
}

/// Score the held-out benign samples (or the training ones when none are held out),
/// fit the threshold and write the final checkpoint.
#[allow(clippy::too_many_arguments)]
fn finish(
    gpu: &Gpu,
    net: &FlowNet,
    opt: &OptState,
    state: &FlowTrainState,
    target: &dyn Samples,
    train_idx: &[usize],
    val_idx: &[usize],
    spec: &FlowSpec,
    out: &Path,
    kept: &Option<Kept>,
    stopped: Option<&str>,
) -> Result<FlowOutcome> {
    let o = &state.options;
    if let (Some(why), false) = (stopped, o.quiet) {
        eprintln!(
            "stopped after epoch {} ({} steps): {why}",
            state.epoch, state.step
        );
    }
    let fit_on = if val_idx.is_empty() {
        train_idx
    } else {
        val_idx
    };
    let kept_net = match Kept::apart(kept) {
        Some(k) => {
            let mut c = k.clone();
            c.meta.insert("model".into(), net.model_name().into());
            c.set_json("train", state);
            Some(net_from(gpu, &c, "the kept model")?)
        }
        None => None,
    };
    let val_scores = score_indices(gpu, kept_net.as_ref().unwrap_or(net), target, fit_on)?;
    let t = threshold::fit_with(o.threshold_rule, &val_scores, o.alert_fpr);
    if !o.quiet {
        if let Some(w) = threshold::support_warning(o.threshold_rule, val_scores.len(), o.alert_fpr)
        {
            eprintln!("warning: {w}");
        }
    }
    checkpoint(
        gpu,
        net,
        Some(opt),
        state,
        Some(&t),
        spec,
        Kept::apart(kept),
    )?
    .save(out)?;
    Ok(FlowOutcome {
        state: state.clone(),
        threshold: t,
        val_scores,
    })
}

fn mean(v: &[f64]) -> Option<f64> {
    (!v.is_empty()).then(|| v.iter().sum::<f64>() / v.len() as f64)
}

/// Train DOC-IDS: `reference` labelled by class (`class_names` / `class_id`), `target`
/// the benign traffic of the protected network. Writes `out` after every epoch.
pub fn train_doc_ids(
    gpu: &Gpu,
    reference: &dyn Samples,
    target: &dyn Samples,
    o: &FlowTrainOptions,
    out: &Path,
    resume: Option<&Path>,
    spec: &FlowSpec,
) -> Result<FlowOutcome> {
    check_options(o)?;
    check_len("reference", reference)?;
    check_len("target", target)?;
    if o.batch < 2 {
        bail!("DOC-IDS needs --batch of at least 2 (batch-norm statistics and compactness)");
    }
    let (classes, labels) = reference_classes(reference);
    if classes.len() < 2 {
        bail!("the reference set holds {} class(es); DOC-IDS needs at least 2 (one capture file per class)", classes.len());
    }
    let (ref_train, ref_val) = split_reference(&labels, classes.len(), o.ref_val_split, o.seed);
    let (tgt_train, tgt_val) = split_benign(target, o.val_split);
    if tgt_train.is_empty() {
        bail!(
            "no benign target samples to train on ({} samples, all labelled malicious)",
            target.len()
        );
    }
    let (saved, mut state, mut kept) = match resume {
        Some(p) => {
            let (c, st, kept) = resume_from(p, DOC_IDS, o)?;
            if st.classes != classes {
                bail!(
                    "{}: reference classes differ from the run that wrote it ({:?} vs {:?})",
                    p.display(),
                    st.classes,
                    classes
                );
            }
            (Some(c), st, kept)
        }
        None => (
            None,
            FlowTrainState {
                options: o.clone(),
                epoch: 0,
                step: 0,
                history: vec![],
                classes: classes.clone(),
                train_samples: tgt_train.len(),
                val_samples: tgt_val.len(),
                ref_train_samples: ref_train.len(),
                ref_val_samples: ref_val.len(),
            },
            None,
        ),
    };
    let net = match &saved {
        Some(c) => net_from(gpu, c, "resume")?,
        None => FlowNet::Doc(DocIds::from_host(
            gpu,
            classes.len(),
            &params::init(&doc_ids::layers(classes.len()), o.seed),
            &doc_ids::init_running(),
        )?),
    };
    let FlowNet::Doc(model) = &net else {
        unreachable!("net_from checked the model kind")
    };
    let opt = OptState::new(gpu, o, &model.params, saved.as_ref())?;
    let run = DocRun::new(gpu, o.batch, classes.len(), o.weights, true)?;
    let mut ref_sampler = BalancedSampler::new(&ref_train, &labels, classes.len(), o.seed);
    let mut tgt_sampler = Cyclic::new(tgt_train.clone(), o.seed ^ 0x7A_56E7);
    let steps_per_epoch = ref_train.len().div_ceil(o.batch);
    if !o.quiet {
        eprintln!(
            "training DOC-IDS: {} reference samples in {} classes ({} held out), {} benign target samples ({} held out); batch {}+{}, {:?} lr {} wd {}, {} steps/epoch, {}",
            ref_train.len(), classes.len(), ref_val.len(), tgt_train.len(), tgt_val.len(), o.batch, o.batch, o.optimizer, o.lr, o.weight_decay, steps_per_epoch, until_line(o, state.epoch + 1)
        );
    }
    let n = o.batch as u64;
    let next_batch = |rs: &mut BalancedSampler, ts: &mut Cyclic, step: u64| {
        let ri: Vec<usize> = (0..n).map(|k| rs.draw(step * n + k)).collect();
        let ti: Vec<usize> = (0..n).map(|k| ts.draw(step * n + k)).collect();
        let rl: Vec<u32> = ri.iter().map(|&i| labels[i]).collect();
        (gather(reference, &ri), rl, gather(target, &ti))
    };
    let run_started = Instant::now();
    let (mut slowest, mut stopped) = (Duration::ZERO, None);
    while state.epoch < o.epochs {
        stopped = stop_reason(o, &state, run_started, slowest);
        if stopped.is_some() {
            break;
        }
        let epoch = state.epoch + 1;
        let started = Instant::now();
        let bar = progress(o.quiet, steps_per_epoch as u64, epoch, o.epochs);
        let mut sums = DocLoss::default();
        let mut read_after = state.step;
        let mut pending = next_batch(&mut ref_sampler, &mut tgt_sampler, state.step);
        for si in 0..steps_per_epoch {
            run.upload_step(gpu, &pending.0, &pending.1, &pending.2);
            state.step += 1;
            let mut b = gpu.batch();
            run.forward_backward(&mut b, model)?;
            opt.step(&mut b, &model.params, state.step)?;
            b.submit()?;
            // Gather the next batches on the host while the GPU runs this step.
            pending = next_batch(&mut ref_sampler, &mut tgt_sampler, state.step);
            if (si + 1) % o.log_every.max(1) == 0 || si + 1 == steps_per_epoch {
                let l = run.take_loss(gpu)?;
                let total = l.total(&o.weights);
                if !total.is_finite() {
                    bail!(
                        "loss became {total} (l_D {}, l_C {}, l_R {}) in epoch {epoch}, within steps {}..={}; {}",
                        l.l_d, l.l_c, l.l_r, read_after + 1, state.step, crate::checkpoint::last_good(out, state.epoch)
                    );
                }
                read_after = state.step;
                sums.l_d += l.l_d * l.steps;
                sums.l_c += l.l_c * l.steps;
                sums.l_r += l.l_r * l.steps;
                sums.steps += l.steps;
                if let Some(bar) = &bar {
                    bar.set_position(si as u64 + 1);
                    let rate = sums.steps * 2.0 * o.batch as f64 / started.elapsed().as_secs_f64();
                    bar.set_message(format!("loss {total:.4} = l_D {:.4} + {}·l_C {:.4} + {}·l_R {:.5}  {rate:.0} samples/s", l.l_d, o.weights.lambda_c, l.l_c, o.weights.lambda_r, l.l_r));
                }
            }
        }
        let seconds = started.elapsed().as_secs_f64();
        slowest = slowest.max(started.elapsed());
        if let Some(bar) = bar {
            bar.finish_and_clear();
        }
        let d = sums.steps.max(1.0);
        let mean_l = DocLoss {
            l_d: sums.l_d / d,
            l_c: sums.l_c / d,
            l_r: sums.l_r / d,
            steps: sums.steps,
        };
        let acc = if ref_val.is_empty() {
            None
        } else {
            let val_labels: Vec<u32> = ref_val.iter().map(|&i| labels[i]).collect();
            Some(reference_accuracy(
                gpu,
                model,
                reference,
                &ref_val,
                &val_labels,
            )?)
        };
        let val_score = mean(&score_indices(gpu, &net, target, &tgt_val)?);
        let log = FlowEpochLog {
            epoch,
            loss: mean_l.total(&o.weights),
            l_d: Some(mean_l.l_d),
            l_c: Some(mean_l.l_c),
            l_r: Some(mean_l.l_r),
            ref_accuracy: acc,
            val_score,
            seconds,
            samples_per_s: sums.steps * 2.0 * o.batch as f64 / seconds,
        };
        let samples_per_s = log.samples_per_s;
        state.history.push(log);
        state.epoch = epoch;
        if !o.quiet {
            eprintln!(
                "epoch {epoch:>3}/{}  loss {:.4} (l_D {:.4}, l_C {:.4}, l_R {:.5})  reference accuracy {}  val l_R {}  {:.1}s, {:.0} samples/s{}",
                o.epochs, state.history[epoch - 1].loss, mean_l.l_d, mean_l.l_c, mean_l.l_r,
                acc.map_or("-".into(), |a| format!("{:.2}%", 100.0 * a)),
                val_score.map_or("-".into(), |v| format!("{v:.5}")),
                seconds, samples_per_s, rule_line(o, &state)
            );
        }
        Kept::update(&mut kept, gpu, &net, o, val_score)?;
        // The threshold is fitted once, after the last epoch; earlier checkpoints carry none.
        checkpoint(
            gpu,
            &net,
            Some(&opt),
            &state,
            None,
            spec,
            Kept::apart(&kept),
        )?
        .save(out)?;
    }
    finish(
        gpu,
        &net,
        &opt,
        &state,
        target,
        &tgt_train,
        &tgt_val,
        spec,
        out,
        &kept,
        stopped.as_deref(),
    )
}

/// Train a baseline autoencoder on the benign samples of `target`.
pub fn train_baseline(
    gpu: &Gpu,
    kind: BaselineKind,
    target: &dyn Samples,
    o: &FlowTrainOptions,
    out: &Path,
    resume: Option<&Path>,
    spec: &FlowSpec,
) -> Result<FlowOutcome> {
    check_options(o)?;
    check_len("target", target)?;
    let (train_idx, val_idx) = split_benign(target, o.val_split);
    if train_idx.is_empty() {
        bail!(
            "no benign samples to train on ({} samples, all labelled malicious)",
            target.len()
        );
    }
    let (saved, mut state, mut kept) = match resume {
        Some(p) => resume_from(p, kind.model_name(), o).map(|(c, st, k)| (Some(c), st, k))?,
        None => (
            None,
            FlowTrainState {
                options: o.clone(),
                epoch: 0,
                step: 0,
                history: vec![],
                classes: vec![],
                train_samples: train_idx.len(),
                val_samples: val_idx.len(),
                ref_train_samples: 0,
                ref_val_samples: 0,
            },
            None,
        ),
    };
    let net = match &saved {
        Some(c) => net_from(gpu, c, "resume")?,
        None => FlowNet::Base(Baseline::from_host(
            gpu,
            kind,
            &params::init(&baselines::layers(kind), o.seed),
        )?),
    };
    let FlowNet::Base(model) = &net else {
        unreachable!("resume_from checked the model kind")
    };
    let opt = OptState::new(gpu, o, &model.params, saved.as_ref())?;
    let run = BaselineRun::new(gpu, kind, o.batch, true)?;
    let steps_per_epoch = train_idx.len().div_ceil(o.batch);
    if !o.quiet {
        eprintln!(
            "training {} on {} benign flow samples ({} held out), batch {}, {:?} lr {}, {} steps/epoch, {}",
            kind.display(), train_idx.len(), val_idx.len(), o.batch, o.optimizer, o.lr, steps_per_epoch, until_line(o, state.epoch + 1)
        );
    }
    let run_started = Instant::now();
    let (mut slowest, mut stopped) = (Duration::ZERO, None);
    while state.epoch < o.epochs {
        stopped = stop_reason(o, &state, run_started, slowest);
        if stopped.is_some() {
            break;
        }
        let epoch = state.epoch + 1;
        let started = Instant::now();
        let bar = progress(o.quiet, steps_per_epoch as u64, epoch, o.epochs);
        let order = epoch_order(train_idx.len(), o.seed, epoch);
        let batches: Vec<Vec<usize>> = order
            .chunks(o.batch)
            .map(|c| c.iter().map(|&k| train_idx[k]).collect())
            .collect();
        let (mut sum, mut steps) = (0.0, 0.0);
        let mut pending = gather(target, &batches[0]);
        for si in 0..batches.len() {
            let n = run.upload(gpu, &pending);
            state.step += 1;
            let mut b = gpu.batch();
            run.forward_backward(&mut b, model, n)?;
            opt.step(&mut b, &model.params, state.step)?;
            b.submit()?;
            if let Some(next) = batches.get(si + 1) {
                pending = gather(target, next);
            }
            if (si + 1) % o.log_every.max(1) == 0 || si + 1 == batches.len() {
                let (l, k) = run.take_loss(gpu)?;
                if !l.is_finite() {
                    bail!(
                        "loss became {l} in epoch {epoch}; {}",
                        crate::checkpoint::last_good(out, state.epoch)
                    );
                }
                sum += l * k;
                steps += k;
                if let Some(bar) = &bar {
                    bar.set_position(si as u64 + 1);
                    bar.set_message(format!("MSE {l:.5}"));
                }
            }
        }
        let seconds = started.elapsed().as_secs_f64();
        slowest = slowest.max(started.elapsed());
        if let Some(bar) = bar {
            bar.finish_and_clear();
        }
        let val_score = mean(&score_indices(gpu, &net, target, &val_idx)?);
        let log = FlowEpochLog {
            epoch,
            loss: sum / steps.max(1.0),
            l_d: None,
            l_c: None,
            l_r: None,
            ref_accuracy: None,
            val_score,
            seconds,
            samples_per_s: train_idx.len() as f64 / seconds,
        };
        let (loss, samples_per_s) = (log.loss, log.samples_per_s);
        state.history.push(log);
        state.epoch = epoch;
        if !o.quiet {
            eprintln!(
                "epoch {epoch:>3}/{}  train MSE {:.5}  val MSE {}  {:.2}s, {:.0} samples/s{}",
                o.epochs,
                loss,
                val_score.map_or("-".into(), |v| format!("{v:.5}")),
                seconds,
                samples_per_s,
                rule_line(o, &state)
            );
        }
        Kept::update(&mut kept, gpu, &net, o, val_score)?;
        checkpoint(
            gpu,
            &net,
            Some(&opt),
            &state,
            None,
            spec,
            Kept::apart(&kept),
        )?
        .save(out)?;
    }
    finish(
        gpu,
        &net,
        &opt,
        &state,
        target,
        &train_idx,
        &val_idx,
        spec,
        out,
        &kept,
        stopped.as_deref(),
    )
}

/// Loss history as a PNG: total training loss and, for DOC-IDS, each term.
pub fn plot_loss_curve(path: &Path, title: &str, history: &[FlowEpochLog]) -> Result<()> {
    let pick = |f: &dyn Fn(&FlowEpochLog) -> Option<f64>| -> Vec<(f64, f64)> {
        history
            .iter()
            .filter_map(|h| f(h).map(|v| (h.epoch as f64, v)))
            .collect()
    };
    let mut series = vec![("loss".to_string(), pick(&|h| Some(h.loss)))];
    for (name, s) in [
        ("l_D", pick(&|h| h.l_d)),
        ("l_C", pick(&|h| h.l_c)),
        ("l_R", pick(&|h| h.l_r)),
        ("reference accuracy", pick(&|h| h.ref_accuracy)),
    ] {
        if !s.is_empty() {
            series.push((name.to_string(), s));
        }
    }
    crate::eval::plots::lines(path, title, "epoch", "loss", &series)
}

/// A seeded synthetic flow sample set (random header-like bytes per class), for
/// benchmarks and tests that need data without captures.
pub fn synthetic_flows(n: usize, classes: usize, seed: u64) -> crate::ingest::SampleSet {
    let mut set = crate::ingest::SampleSet::new(INPUT);
    let mut rng = HostRng::new(seed);
    for c in 0..classes {
        set.names.intern(&format!("class{c}"));
    }
    for i in 0..n {
        let c = i % classes.max(1);
        // A class-specific byte pattern plus noise, and zero padding like short flows.
        let data: Vec<u8> = (0..INPUT)
            .map(|j| {
                if j >= 80 * (1 + c % 4) {
                    0
                } else {
                    ((j * (c + 3) + (rng.next_u64() % 32) as usize) % 256) as u8
                }
            })
            .collect();
        let meta = crate::ingest::SampleMeta {
            class_id: c as u16,
            first_ts_ns: i as u64 * 1000,
            ..Default::default()
        };
        set.push(crate::ingest::Sample { data, meta });
    }
    set
}
