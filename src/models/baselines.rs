//! The two baselines DOC-IDS is compared with (docs/MODELS.md §4), on the same 320-byte
//! flow samples, trained with MSE(x̂, x) and scored by the per-sample MSE:
//!
//! - AE: dense 320→128→64→32→64→128→320, ReLU between, sigmoid out.
//! - 1D-Conv AE: conv1d 1→32 k6 s2 (320→158), ReLU, conv1d 32→64 k6 s2 (158→77), ReLU;
//!   conv-transpose 64→32 k6 s2 (77→158), ReLU, conv-transpose 32→1 k6 s2 (158→320),
//!   sigmoid. No padding anywhere; both encoder strides divide exactly (320 − 6 and
//!   158 − 6 are even), so the transposes give back (77−1)·2 + 6 = 158 and
//!   (158−1)·2 + 6 = 320 with output_padding 0: the output is exactly 320 long.

use crate::gpu::{Batch, Buf, Gpu, GpuError};
use crate::models::params::{self, Layer, Param};
use crate::nn::conv1d::transpose::{self as convt, ConvT1dShape};
use crate::nn::conv1d::{self, Conv1dShape, ConvScratch};
use crate::nn::dense::{self, DenseShape};
use crate::nn::elementwise::{relu_backward, sigmoid_backward, sigmoid_forward};
use crate::nn::loss::{self, GradOut};
use crate::nn::matmul::MatmulVariant;
use crate::nn::Act;

pub const INPUT: usize = 320;
const DIMS: [usize; 7] = [INPUT, 128, 64, 32, 64, 128, INPUT];

#[derive(
    Clone, Copy, Debug, PartialEq, Eq, serde::Serialize, serde::Deserialize, clap::ValueEnum,
)]
#[serde(rename_all = "kebab-case")]
pub enum BaselineKind {
    /// Dense autoencoder.
    Ae,
    /// 1-D convolutional autoencoder.
    ConvAe,
}

impl BaselineKind {
    /// The checkpoint's "model" value.
    pub fn model_name(self) -> &'static str {
        match self {
            BaselineKind::Ae => "ae",
            BaselineKind::ConvAe => "conv-ae",
        }
    }
    pub fn from_model_name(s: &str) -> Option<Self> {
        match s {
            "ae" => Some(BaselineKind::Ae),
            "conv-ae" => Some(BaselineKind::ConvAe),
            _ => None,
        }
    }
    pub fn display(self) -> &'static str {
        match self {
            BaselineKind::Ae => "AE",
            BaselineKind::ConvAe => "1D-Conv AE",
        }
    }
}

pub fn layers(kind: BaselineKind) -> Vec<Layer> {
    match kind {
        BaselineKind::Ae => {
            let names = ["enc.0", "enc.2", "enc.4", "dec.0", "dec.2", "dec.4"];
            names
                .iter()
                .enumerate()
                .map(|(k, name)| Layer::Affine {
                    name,
                    shape: vec![DIMS[k + 1], DIMS[k]],
                    bias: DIMS[k + 1],
                })
                .collect()
        }
        BaselineKind::ConvAe => vec![
            Layer::Affine {
                name: "enc.0",
                shape: vec![32, 1, 6],
                bias: 32,
            },
            Layer::Affine {
                name: "enc.2",
                shape: vec![64, 32, 6],
                bias: 64,
            },
            // Conv-transpose weights are [C_in, C_out, k]; the bias has C_out values.
            Layer::Affine {
                name: "dec.0",
                shape: vec![64, 32, 6],
                bias: 32,
            },
            Layer::Affine {
                name: "dec.2",
                shape: vec![32, 1, 6],
                bias: 1,
            },
        ],
    }
}

pub struct Baseline {
    pub kind: BaselineKind,
    pub params: Vec<Param>,
}

impl Baseline {
    pub fn from_host(
        gpu: &Gpu,
        kind: BaselineKind,
        values: &[Vec<f32>],
    ) -> Result<Baseline, GpuError> {
        Ok(Baseline {
            kind,
            params: params::upload(gpu, &layers(kind), values)?,
        })
    }
    fn w(&self, i: usize) -> &Buf<f32> {
        &self.params[i].w
    }
    fn g(&self, i: usize) -> &Buf<f32> {
        &self.params[i].g
    }
}

/// The 1D-Conv AE's four layers at batch `n`.
#[derive(Clone, Copy, Debug)]
pub struct ConvShapes {
    pub e1: Conv1dShape,
    pub e2: Conv1dShape,
    pub d1: ConvT1dShape,
    pub d2: ConvT1dShape,
}

impl ConvShapes {
    pub fn new(n: usize) -> Self {
        let c = |c_in, l, c_out| Conv1dShape {
            n,
            c_in,
            l,
            c_out,
            k: 6,
            stride: 2,
            pad: 0,
            act: Act::Relu,
        };
        let t = |c_in, l, c_out, act| ConvT1dShape {
            n,
            c_in,
            l,
            c_out,
            k: 6,
            stride: 2,
            pad: 0,
            out_pad: 0,
            act,
        };
        let s = ConvShapes {
            e1: c(1, INPUT, 32),
            e2: c(32, 158, 64),
            d1: t(64, 77, 32, Act::Relu),
            d2: t(32, 158, 1, Act::Sigmoid),
        };
        debug_assert_eq!(
            (s.e1.l_out(), s.e2.l_out(), s.d1.l_out(), s.d2.l_out()),
            (158, 77, 158, INPUT)
        );
        s
    }
    fn col(&self) -> usize {
        [
            self.e1.col_len(),
            self.e2.col_len(),
            self.d1.col_len(),
            self.d2.col_len(),
        ]
        .into_iter()
        .max()
        .unwrap()
    }
    /// Only the conv1d layers use `ConvScratch::padded`.
    fn padded(&self) -> usize {
        self.e1.padded_len().max(self.e2.padded_len())
    }
    fn part(&self) -> usize {
        [
            self.e1.part_len(),
            self.e2.part_len(),
            self.d1.part_len(),
            self.d2.part_len(),
        ]
        .into_iter()
        .max()
        .unwrap()
    }
}

fn dense_shapes(n: usize, mm: MatmulVariant) -> [DenseShape; 6] {
    std::array::from_fn(|k| DenseShape::new(n, DIMS[k], DIMS[k + 1], mm))
}

/// Activations (acts[k]: output of layer k, the last one the reconstruction) and their
/// gradients; for the conv AE `dz` holds the pre-activation gradients.
pub struct BaselineRun {
    pub kind: BaselineKind,
    pub batch: usize,
    mm: MatmulVariant,
    x: Buf<f32>,
    acts: Vec<Buf<f32>>,
    grads: Vec<Buf<f32>>,
    dz: Vec<Buf<f32>>,
    conv: Option<ConvScratch>,
    dense_scratch: Buf<f32>,
    loss_scratch: Buf<f32>,
    loss_out: Buf<f32>,
    /// Running [Σ per-step MSE, steps].
    loss_acc: Buf<f32>,
    pub scores: Buf<f32>,
    train: bool,
}

impl BaselineRun {
    pub fn new(
        gpu: &Gpu,
        kind: BaselineKind,
        batch: usize,
        train: bool,
    ) -> Result<BaselineRun, GpuError> {
        let mm = MatmulVariant::for_gpu(gpu);
        let lens: Vec<usize> = match kind {
            BaselineKind::Ae => DIMS[1..].iter().map(|d| batch * d).collect(),
            BaselineKind::ConvAe => {
                let s = ConvShapes::new(batch);
                vec![
                    s.e1.out_len(),
                    s.e2.out_len(),
                    s.d1.out_len(),
                    s.d2.out_len(),
                ]
            }
        };
        let bufs = |on: bool| -> Result<Vec<Buf<f32>>, GpuError> {
            lens.iter()
                .map(|&l| gpu.zeros(if on { l } else { 1 }))
                .collect()
        };
        let conv = match kind {
            BaselineKind::ConvAe => {
                let s = ConvShapes::new(batch);
                Some(ConvScratch::new(
                    gpu,
                    s.col(),
                    if train { s.part().max(1) } else { 1 },
                    s.padded(),
                )?)
            }
            BaselineKind::Ae => None,
        };
        let ds = dense_shapes(batch, mm)
            .iter()
            .map(|s| s.scratch_len())
            .max()
            .unwrap_or(0)
            .max(1);
        Ok(BaselineRun {
            kind,
            batch,
            mm,
            x: gpu.zeros(batch * INPUT)?,
            acts: bufs(true)?,
            grads: bufs(train)?,
            dz: bufs(train && kind == BaselineKind::ConvAe)?,
            conv,
            dense_scratch: gpu.zeros(ds)?,
            loss_scratch: gpu.zeros(loss::SCRATCH_LEN)?,
            loss_out: gpu.zeros(1)?,
            loss_acc: gpu.zeros(2)?,
            scores: gpu.zeros(batch)?,
            train,
        })
    }

    /// Queue up to `batch` samples (u8, one after another); returns how many.
    pub fn upload(&self, gpu: &Gpu, samples: &[u8]) -> usize {
        let n = samples.len() / INPUT;
        assert!(
            n <= self.batch,
            "upload: {n} samples for a batch of {}",
            self.batch
        );
        gpu.write(&self.x, 0, &params::to_unit(samples));
        n
    }

    fn forward(&self, b: &mut Batch, m: &Baseline, n: usize) -> Result<(), GpuError> {
        match self.kind {
            BaselineKind::Ae => {
                let ds = Some(self.dense_scratch.raw());
                let s = dense_shapes(n, self.mm);
                let mut x = &self.x;
                for (k, sk) in s.iter().enumerate() {
                    let act = if k < 5 { Act::Relu } else { Act::None };
                    dense::forward(
                        b,
                        sk,
                        x.raw(),
                        m.w(2 * k).raw(),
                        Some(m.w(2 * k + 1).raw()),
                        act,
                        self.acts[k].raw(),
                        ds,
                    )?;
                    x = &self.acts[k];
                }
                sigmoid_forward(b, n * INPUT, self.acts[5].raw(), self.acts[5].raw())
            }
            BaselineKind::ConvAe => {
                let (s, cs, mm, a) = (
                    ConvShapes::new(n),
                    self.conv.as_ref().unwrap(),
                    self.mm,
                    &self.acts,
                );
                conv1d::forward(b, &s.e1, &self.x, m.w(0), m.w(1), &a[0], cs, mm)?;
                conv1d::forward(b, &s.e2, &a[0], m.w(2), m.w(3), &a[1], cs, mm)?;
                convt::forward(b, &s.d1, &a[1], m.w(4), m.w(5), &a[2], cs, mm)?;
                convt::forward(b, &s.d2, &a[2], m.w(6), m.w(7), &a[3], cs, mm)
            }
        }
    }

    fn out(&self) -> &Buf<f32> {
        self.acts.last().unwrap()
    }

    /// The reconstructions x̂ (in [0, 1], 320 per sample) of the last `score`.
    pub fn reconstruction(&self, gpu: &Gpu) -> Result<Vec<f32>, GpuError> {
        gpu.read(self.out())
    }

    /// Record forward, loss (mean over the n·320 values of (x̂ − x)²) and backward for
    /// the `n` uploaded samples: afterwards every `Param::g` holds ∂loss/∂param.
    pub fn forward_backward(&self, b: &mut Batch, m: &Baseline, n: usize) -> Result<(), GpuError> {
        assert!(self.train, "forward_backward on a scoring run");
        self.forward(b, m, n)?;
        let g_out = self.grads.last().unwrap();
        loss::mse(
            b,
            n * INPUT,
            self.out().raw(),
            self.x.raw(),
            Some(GradOut::set(g_out.raw())),
            None,
            1.0,
            self.loss_scratch.raw(),
            self.loss_out.raw(),
            0,
        )?;
        match self.kind {
            BaselineKind::Ae => {
                let ds = Some(self.dense_scratch.raw());
                let s = dense_shapes(n, self.mm);
                sigmoid_backward(b, n * INPUT, self.out().raw(), g_out.raw(), g_out.raw())?;
                for k in (0..6).rev() {
                    let x = if k > 0 { &self.acts[k - 1] } else { &self.x };
                    let dx = (k > 0).then(|| self.grads[k - 1].raw());
                    dense::backward(
                        b,
                        &s[k],
                        x.raw(),
                        m.w(2 * k).raw(),
                        self.grads[k].raw(),
                        dx,
                        false,
                        m.g(2 * k).raw(),
                        Some(m.g(2 * k + 1).raw()),
                        false,
                        ds,
                    )?;
                    if k > 0 {
                        relu_backward(
                            b,
                            s[k].in_len(),
                            self.acts[k - 1].raw(),
                            self.grads[k - 1].raw(),
                            self.grads[k - 1].raw(),
                        )?;
                    }
                }
            }
            BaselineKind::ConvAe => {
                let (s, cs, mm) = (ConvShapes::new(n), self.conv.as_ref().unwrap(), self.mm);
                let (a, g, dz) = (&self.acts, &self.grads, &self.dz);
                conv1d::act_backward(b, Act::Sigmoid, s.d2.out_len(), &a[3], &g[3], &dz[3])?;
                convt::backward_weight(b, &s.d2, &a[2], &dz[3], m.g(6), false, cs, mm)?;
                convt::backward_bias(b, &s.d2, &dz[3], m.g(7), false)?;
                convt::backward_input(b, &s.d2, m.w(6), &dz[3], &g[2], cs, mm)?;
                conv1d::act_backward(b, Act::Relu, s.d1.out_len(), &a[2], &g[2], &dz[2])?;
                convt::backward_weight(b, &s.d1, &a[1], &dz[2], m.g(4), false, cs, mm)?;
                convt::backward_bias(b, &s.d1, &dz[2], m.g(5), false)?;
                convt::backward_input(b, &s.d1, m.w(4), &dz[2], &g[1], cs, mm)?;
                conv1d::act_backward(b, Act::Relu, s.e2.out_len(), &a[1], &g[1], &dz[1])?;
                conv1d::backward_weight(b, &s.e2, &a[0], &dz[1], m.g(2), false, cs, mm)?;
                conv1d::backward_bias(b, &s.e2, &dz[1], m.g(3), false)?;
                conv1d::backward_input(b, &s.e2, m.w(2), &dz[1], &g[0], cs, mm)?;
                conv1d::act_backward(b, Act::Relu, s.e1.out_len(), &a[0], &g[0], &dz[0])?;
                conv1d::backward_weight(b, &s.e1, &self.x, &dz[0], m.g(0), false, cs, mm)?;
                conv1d::backward_bias(b, &s.e1, &dz[0], m.g(1), false)?;
            }
        }
        crate::nn::accum::accumulate(b, 1, 1, 1.0, self.loss_out.raw(), self.loss_acc.raw())
    }

    /// Record per-sample scores (mean over 320 values of (x̂ − x)²) of the `n` uploaded
    /// samples into `scores[0..n]`.
    pub fn score(&self, b: &mut Batch, m: &Baseline, n: usize) -> Result<(), GpuError> {
        self.forward(b, m, n)?;
        loss::score_mse(
            b,
            n,
            INPUT,
            self.out().raw(),
            self.x.raw(),
            self.scores.raw(),
            0,
        )
    }

    /// Read and reset the running loss: (mean MSE per step, steps).
    pub fn take_loss(&self, gpu: &Gpu) -> Result<(f64, f64), GpuError> {
        let v = gpu.read(&self.loss_acc)?;
        gpu.clear(&self.loss_acc);
        Ok((v[0] as f64 / (v[1] as f64).max(1.0), v[1] as f64))
    }
}

impl super::Model for Baseline {
    type Run = BaselineRun;
    fn kind(&self) -> &'static str {
        self.kind.model_name()
    }
    fn display(&self) -> &'static str {
        self.kind.display()
    }
    fn signature_id(&self) -> u32 {
        match self.kind {
            BaselineKind::Ae => 1_990_003,
            BaselineKind::ConvAe => 1_990_004,
        }
    }
    fn params(&self) -> &[Param] {
        &self.params
    }
    fn tensor_specs(
        _c: &crate::checkpoint::Checkpoint,
        kind: &str,
        origin: &str,
    ) -> anyhow::Result<Vec<(String, Vec<usize>)>> {
        match BaselineKind::from_model_name(kind) {
            Some(k) => Ok(params::specs(&layers(k))),
            None => anyhow::bail!("{origin}: '{kind}' is not a baseline autoencoder"),
        }
    }
    fn from_tensors(
        gpu: &Gpu,
        _c: &crate::checkpoint::Checkpoint,
        kind: &str,
        values: Vec<Vec<f32>>,
    ) -> anyhow::Result<Self> {
        let k = BaselineKind::from_model_name(kind)
            .ok_or_else(|| anyhow::anyhow!("'{kind}' is not a baseline autoencoder"))?;
        Ok(Baseline::from_host(gpu, k, &values)?)
    }
    fn run(&self, gpu: &Gpu, batch: usize, train: bool) -> anyhow::Result<BaselineRun> {
        Ok(BaselineRun::new(gpu, self.kind, batch, train)?)
    }
    /// The score, the mean of (x̂ − x)² over the bytes, splits exactly over bytes.
    fn byte_error(&self) -> Option<super::ByteError> {
        Some(super::ByteError::Squared)
    }
}

impl super::ModelRun<Baseline> for BaselineRun {
    fn batch(&self) -> usize {
        self.batch
    }
    fn upload(&self, gpu: &Gpu, batch: &super::HostBatch) -> usize {
        BaselineRun::upload(self, gpu, &batch.samples)
    }
    fn forward_backward(
        &self,
        b: &mut Batch,
        m: &Baseline,
        n: usize,
        _key: crate::nn::reparam::NoiseKey,
    ) -> anyhow::Result<()> {
        Ok(BaselineRun::forward_backward(self, b, m, n)?)
    }
    fn score(&self, b: &mut Batch, m: &Baseline, n: usize) -> anyhow::Result<()> {
        Ok(BaselineRun::score(self, b, m, n)?)
    }
    fn score_buffer(&self) -> &Buf<f32> {
        &self.scores
    }
    fn reconstruction(&self, gpu: &Gpu) -> anyhow::Result<Option<Vec<f32>>> {
        Ok(Some(BaselineRun::reconstruction(self, gpu)?))
    }
    fn take_loss(&self, gpu: &Gpu) -> anyhow::Result<super::LossRead> {
        let (l, k) = BaselineRun::take_loss(self, gpu)?;
        Ok(super::LossRead {
            total: l,
            terms: vec![("MSE", l)],
            count: k,
        })
    }
}
