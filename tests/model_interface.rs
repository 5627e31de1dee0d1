//! A new model needs no edit outside its own file: a two-layer dense autoencoder over
//! flow samples, defined here alone, is registered, then trained, checkpointed,
//! resumed (bit for bit) and scored through the crate's one training loop and
//! registry — the same path `train`, `score`, `eval` and `detect` take.

mod common;
use common::gpu;

use anyhow::Result;
use gpu_nids::checkpoint::Checkpoint;
use gpu_nids::data::samplers::{split_benign, synthetic_flows, EpochShuffle, HostBatch};
use gpu_nids::gpu::{Batch, Buf, Gpu};
use gpu_nids::ingest::SampleKind;
use gpu_nids::models::params::{self, Layer, Param};
use gpu_nids::models::registry::{self, Entry};
use gpu_nids::models::{FlowSpec, LossRead, Model, ModelRun, SampleSpec};
use gpu_nids::nn::dense::{self, DenseShape};
use gpu_nids::nn::elementwise::relu_backward;
use gpu_nids::nn::loss::{self, GradOut};
use gpu_nids::nn::matmul::MatmulVariant;
use gpu_nids::nn::reparam::NoiseKey;
use gpu_nids::nn::Act;
use gpu_nids::train::{fit, Job, TrainOptions, TrainState};

const INPUT: usize = 320;
const HIDDEN: usize = 16;
const KIND: &str = "tiny-ae";

/// x → ReLU(W₁x + b₁) → W₂h + b₂, loss and score the mean squared error to x.
struct TinyAe {
    params: Vec<Param>,
}

fn layers() -> Vec<Layer> {
    vec![
        Layer::Affine {
            name: "enc",
            shape: vec![HIDDEN, INPUT],
            bias: HIDDEN,
        },
        Layer::Affine {
            name: "dec",
            shape: vec![INPUT, HIDDEN],
            bias: INPUT,
        },
    ]
}

struct TinyRun {
    batch: usize,
    mm: MatmulVariant,
    x: Buf<f32>,
    h: Buf<f32>,
    y: Buf<f32>,
    gh: Buf<f32>,
    gy: Buf<f32>,
    scratch: Buf<f32>,
    loss_scratch: Buf<f32>,
    loss_out: Buf<f32>,
    loss_acc: Buf<f32>,
    scores: Buf<f32>,
}

impl TinyRun {
    fn shapes(&self, n: usize) -> [DenseShape; 2] {
        [
            DenseShape::new(n, INPUT, HIDDEN, self.mm),
            DenseShape::new(n, HIDDEN, INPUT, self.mm),
        ]
    }
    fn forward(&self, b: &mut Batch, m: &TinyAe, n: usize) -> Result<()> {
        let [s0, s1] = self.shapes(n);
        let ds = Some(self.scratch.raw());
        let w = |i: usize| m.params[i].w.raw();
        dense::forward(
            b,
            &s0,
            self.x.raw(),
            w(0),
            Some(w(1)),
            Act::Relu,
            self.h.raw(),
            ds,
        )?;
        dense::forward(
            b,
            &s1,
            self.h.raw(),
            w(2),
            Some(w(3)),
            Act::None,
            self.y.raw(),
            ds,
        )?;
        Ok(())
    }
}

impl Model for TinyAe {
    type Run = TinyRun;
    fn kind(&self) -> &'static str {
        KIND
    }
    fn display(&self) -> &'static str {
        "tiny AE"
    }
    fn params(&self) -> &[Param] {
        &self.params
    }
    fn tensor_specs(_: &Checkpoint, _: &str, _: &str) -> Result<Vec<(String, Vec<usize>)>> {
        Ok(params::specs(&layers()))
    }
    fn from_tensors(gpu: &Gpu, _: &Checkpoint, _: &str, values: Vec<Vec<f32>>) -> Result<Self> {
        Ok(TinyAe {
            params: params::upload(gpu, &layers(), &values)?,
        })
    }
    fn run(&self, gpu: &Gpu, batch: usize, _train: bool) -> Result<TinyRun> {
        let mm = MatmulVariant::for_gpu(gpu);
        let scratch = [
            DenseShape::new(batch, INPUT, HIDDEN, mm),
            DenseShape::new(batch, HIDDEN, INPUT, mm),
        ]
        .iter()
        .map(|s| s.scratch_len())
        .max()
        .unwrap()
        .max(1);
        Ok(TinyRun {
            batch,
            mm,
            x: gpu.zeros(batch * INPUT)?,
            h: gpu.zeros(batch * HIDDEN)?,
            y: gpu.zeros(batch * INPUT)?,
            gh: gpu.zeros(batch * HIDDEN)?,
            gy: gpu.zeros(batch * INPUT)?,
            scratch: gpu.zeros(scratch)?,
            loss_scratch: gpu.zeros(loss::SCRATCH_LEN)?,
            loss_out: gpu.zeros(1)?,
            loss_acc: gpu.zeros(2)?,
            scores: gpu.zeros(batch)?,
        })
    }
}

impl ModelRun<TinyAe> for TinyRun {
    fn batch(&self) -> usize {
        self.batch
    }
    fn upload(&self, gpu: &Gpu, batch: &HostBatch) -> usize {
        gpu.write(&self.x, 0, &params::to_unit(&batch.samples));
        batch.n
    }
    fn forward_backward(&self, b: &mut Batch, m: &TinyAe, n: usize, _: NoiseKey) -> Result<()> {
        self.forward(b, m, n)?;
        loss::mse(
            b,
            n * INPUT,
            self.y.raw(),
            self.x.raw(),
            Some(GradOut::set(self.gy.raw())),
            None,
            1.0,
            self.loss_scratch.raw(),
            self.loss_out.raw(),
            0,
        )?;
        let [s0, s1] = self.shapes(n);
        let ds = Some(self.scratch.raw());
        let p = &m.params;
        dense::backward(
            b,
            &s1,
            self.h.raw(),
            p[2].w.raw(),
            self.gy.raw(),
            Some(self.gh.raw()),
            false,
            p[2].g.raw(),
            Some(p[3].g.raw()),
            false,
            ds,
        )?;
        relu_backward(b, n * HIDDEN, self.h.raw(), self.gh.raw(), self.gh.raw())?;
        dense::backward(
            b,
            &s0,
            self.x.raw(),
            p[0].w.raw(),
            self.gh.raw(),
            None,
            false,
            p[0].g.raw(),
            Some(p[1].g.raw()),
            false,
            ds,
        )?;
        gpu_nids::nn::accum::accumulate(b, 1, 1, 1.0, self.loss_out.raw(), self.loss_acc.raw())?;
        Ok(())
    }
    fn score(&self, b: &mut Batch, m: &TinyAe, n: usize) -> Result<()> {
        self.forward(b, m, n)?;
        Ok(loss::score_mse(
            b,
            n,
            INPUT,
            self.y.raw(),
            self.x.raw(),
            self.scores.raw(),
            0,
        )?)
    }
    fn score_buffer(&self) -> &Buf<f32> {
        &self.scores
    }
    fn take_loss(&self, gpu: &Gpu) -> Result<LossRead> {
        let v = gpu.read(&self.loss_acc)?;
        gpu.clear(&self.loss_acc);
        let mse = v[0] as f64 / (v[1] as f64).max(1.0);
        Ok(LossRead {
            total: mse,
            terms: vec![("MSE", mse)],
            count: v[1] as f64,
        })
    }
}

fn train(
    data: &dyn gpu_nids::ingest::Samples,
    epochs: usize,
    out: &std::path::Path,
    resume: Option<&std::path::Path>,
) -> gpu_nids::train::Outcome {
    let g = gpu();
    let o = TrainOptions {
        epochs,
        batch: 8,
        lr: 1e-2,
        log_every: 1,
        quiet: true,
        ..TrainOptions::baseline_default()
    };
    let (train, val) = split_benign(data, o.val_split);
    let mut batches = EpochShuffle::new(data, train.clone(), o.batch, o.seed);
    fit(Job {
        gpu: g,
        opts: &o,
        out,
        resume,
        kind: KIND,
        spec: SampleSpec::Flows(FlowSpec::new(true)),
        init: Box::new(|| {
            Ok(TinyAe {
                params: params::upload(g, &layers(), &params::init(&layers(), o.seed))?,
            })
        }),
        configure: Box::new(|_| {}),
        batches: &mut batches,
        data,
        train: &train,
        val: &val,
        fresh_state: TrainState {
            options: o.clone(),
            epoch: 0,
            step: 0,
            history: vec![],
            classes: vec![],
            train_samples: train.len(),
            val_samples: val.len(),
            ref_train_samples: 0,
            ref_val_samples: 0,
        },
        measure: None,
        intro: "training the tiny AE".into(),
    })
    .unwrap()
}

#[test]
fn a_model_defined_outside_the_crate_trains_resumes_and_scores() {
    registry::register(Entry::of::<TinyAe>(&[KIND], SampleKind::Flows, INPUT));
    let data = synthetic_flows(60, 2, 5);
    let dir = tempfile::tempdir().unwrap();

    // Three epochs straight: the loss falls and a threshold is fitted.
    let full = dir.path().join("full.safetensors");
    let out = train(&data, 3, &full, None);
    let h = &out.state.history;
    assert_eq!(h.len(), 3);
    assert!(h[2].loss < h[0].loss, "training loss did not fall: {h:?}");
    assert!(out.threshold.value.is_finite());

    // One epoch, then resumed to three: the same checkpoint, bit for bit.
    let part = dir.path().join("part.safetensors");
    train(&data, 1, &part, None);
    let resumed = train(&data, 3, &part, Some(&part));
    assert_eq!(resumed.state.step, out.state.step);
    let (a, b) = (
        Checkpoint::load(&full).unwrap(),
        Checkpoint::load(&part).unwrap(),
    );
    assert_eq!(
        a.tensors, b.tensors,
        "resumed run differs from the uninterrupted one"
    );
    assert!(a.tensors.contains_key("adam.m.enc.weight"));

    // The registry loads it like any shipped model: checked, with its spec and
    // threshold, and it scores the held-out samples as training did.
    let c = registry::read(&full).unwrap();
    assert_eq!(c.meta_str("model").unwrap(), KIND);
    let mut m = registry::load(gpu(), &full).unwrap();
    assert_eq!(m.kind(), KIND);
    assert_eq!(m.spec(), &SampleSpec::Flows(FlowSpec::new(true)));
    assert_eq!(m.threshold().map(|t| t.n), Some(out.threshold.n));
    let (_, val) = split_benign(&data, 0.1);
    assert_eq!(
        common::score_indices(m.as_mut(), &data, &val),
        out.val_scores
    );
    // No byte-wise errors declared: explained by occlusion of fields and packets.
    let e = m.explain(gpu(), &data.data[..INPUT]).unwrap();
    assert!(e.is_some());

    // A checkpoint whose tensor has the wrong shape is refused by name.
    let mut bad = c.clone();
    bad.tensors.get_mut("dec.bias").unwrap().0 = vec![3];
    bad.tensors.get_mut("dec.bias").unwrap().1 = vec![0.0; 3];
    let p = dir.path().join("bad.safetensors");
    bad.save(&p).unwrap();
    let err = format!("{:#}", registry::read(&p).unwrap_err());
    assert!(err.contains("dec.bias"), "{err}");
}
