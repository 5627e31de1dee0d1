//! DOC-IDS (docs/MODELS.md §4, the paper's Table 1), wired from the kernel library.
//!
//! g: conv1d 1→32 k6 p5, ReLU, BN → max-pool 2 → conv1d 32→64 k6 p5, ReLU, BN →
//!    max-pool 2 → dense 5312→1024, BN, ReLU → dense 1024→256, BN  (= the feature)
//! h_c: dense 256→C;  AE: 256→128→64→128→256 (ReLU between, linear out).
//!
//! One training step runs g twice — on the reference batch and on the target batch,
//! each normalised by its own batch statistics, as two PyTorch calls of the same
//! module would — and back-propagates l_D + λ_C·l_C + λ_R·l_R through both passes in
//! one go: the reference pass writes the gradients of g and h_c, the target pass adds
//! to them. Both passes move the running statistics (reference first), as PyTorch's
//! two train-mode calls do; scoring uses those running statistics (eval mode).
//!
//! No micro-batching: batch-norm needs the whole batch's statistics, and at batch 256
//! the largest buffer (the im2col columns of conv2, 33 MB) is far below the portable
//! 128 MiB binding limit.

use crate::gpu::{Batch, Buf, Gpu, GpuError};
use crate::models::params::{self, Layer, Param};
use crate::nn::batchnorm::{self as bn, BatchNormShape};
use crate::nn::conv1d::{self, Conv1dShape, ConvScratch};
use crate::nn::dense::{self, DenseShape};
use crate::nn::elementwise::{relu_backward, relu_forward};
use crate::nn::loss::{self, GradOut};
use crate::nn::matmul::MatmulVariant;
use crate::nn::pool1d::{self, Pool1dShape};
use crate::nn::Act;

/// Input bytes per sample: 4 packets × 80 bytes (docs/MODELS.md §3).
pub const INPUT: usize = 320;
/// Width of the feature g(x).
pub const FEAT: usize = 256;
const C1: usize = 32;
const C2: usize = 64;
const L1: usize = 325;
const P1: usize = 162;
const L2: usize = 167;
const P2: usize = 83;
const FLAT: usize = C2 * P2;
const H5: usize = 1024;
const AE: [usize; 5] = [FEAT, 128, 64, 128, FEAT];

/// Weights of the loss terms: loss = l_D + lambda_c·l_C + lambda_r·l_R.
#[derive(Clone, Copy, Debug, PartialEq, serde::Serialize, serde::Deserialize)]
pub struct LossWeights {
    pub lambda_c: f64,
    pub lambda_r: f64,
}

impl Default for LossWeights {
    /// The paper's 1 · l_D + 0.1 · l_C + 10 · l_R.
    fn default() -> Self {
        LossWeights {
            lambda_c: 0.1,
            lambda_r: 10.0,
        }
    }
}

/// Layers in PyTorch naming; `classes` = C, the reference classes.
pub fn layers(classes: usize) -> Vec<Layer> {
    vec![
        Layer::Affine {
            name: "conv1",
            shape: vec![C1, 1, 6],
            bias: C1,
        },
        Layer::Norm { name: "bn1", c: C1 },
        Layer::Affine {
            name: "conv2",
            shape: vec![C2, C1, 6],
            bias: C2,
        },
        Layer::Norm { name: "bn2", c: C2 },
        Layer::Affine {
            name: "fc5",
            shape: vec![H5, FLAT],
            bias: H5,
        },
        Layer::Norm { name: "bn5", c: H5 },
        Layer::Affine {
            name: "fc6",
            shape: vec![FEAT, H5],
            bias: FEAT,
        },
        Layer::Norm {
            name: "bn6",
            c: FEAT,
        },
        Layer::Affine {
            name: "head",
            shape: vec![classes, FEAT],
            bias: classes,
        },
        Layer::Affine {
            name: "ae.0",
            shape: vec![AE[1], AE[0]],
            bias: AE[1],
        },
        Layer::Affine {
            name: "ae.2",
            shape: vec![AE[2], AE[1]],
            bias: AE[2],
        },
        Layer::Affine {
            name: "ae.4",
            shape: vec![AE[3], AE[2]],
            bias: AE[3],
        },
        Layer::Affine {
            name: "ae.6",
            shape: vec![AE[4], AE[3]],
            bias: AE[4],
        },
    ]
}

/// Names of the four batch-norms, whose running statistics are `<bn>.running_mean`
/// and `<bn>.running_var` in checkpoints (PyTorch's buffer names).
pub const NORMS: [(&str, usize); 4] = [("bn1", C1), ("bn2", C2), ("bn5", H5), ("bn6", FEAT)];

/// Index of each tensor in `DocIds::params`.
pub mod ix {
    pub const CONV1: usize = 0;
    pub const BN1: usize = 2;
    pub const CONV2: usize = 4;
    pub const BN2: usize = 6;
    pub const FC5: usize = 8;
    pub const BN5: usize = 10;
    pub const FC6: usize = 12;
    pub const BN6: usize = 14;
    pub const HEAD: usize = 16;
    pub const AE: [usize; 4] = [18, 20, 22, 24];
}

/// Initial running statistics: mean 0, variance 1 per channel (PyTorch's), in
/// `NORMS` order, mean before variance.
pub fn init_running() -> Vec<Vec<f32>> {
    NORMS
        .iter()
        .flat_map(|&(_, c)| [vec![0.0; c], vec![1.0; c]])
        .collect()
}

pub struct DocIds {
    pub classes: usize,
    pub params: Vec<Param>,
    /// Running mean and variance of each batch-norm, in `NORMS` order.
    pub running: Vec<Buf<f32>>,
    /// Loss weights of training runs made by `Model::run`.
    pub weights: LossWeights,
}

impl DocIds {
    /// Upload parameters (in `params::specs(&layers(classes))` order) and running
    /// statistics (as `init_running`).
    pub fn from_host(
        gpu: &Gpu,
        classes: usize,
        values: &[Vec<f32>],
        running: &[Vec<f32>],
    ) -> Result<DocIds, GpuError> {
        assert_eq!(
            running.len(),
            2 * NORMS.len(),
            "DOC-IDS has {} running-statistic tensors",
            2 * NORMS.len()
        );
        Ok(DocIds {
            classes,
            params: params::upload(gpu, &layers(classes), values)?,
            running: running
                .iter()
                .map(|v| gpu.upload(v))
                .collect::<Result<_, _>>()?,
            weights: LossWeights::default(),
        })
    }

    pub fn running_names() -> Vec<(String, usize)> {
        NORMS
            .iter()
            .flat_map(|&(n, c)| {
                [
                    (format!("{n}.running_mean"), c),
                    (format!("{n}.running_var"), c),
                ]
            })
            .collect()
    }

    pub fn download_running(&self, gpu: &Gpu) -> Result<Vec<Vec<f32>>, GpuError> {
        self.running.iter().map(|b| gpu.read(b)).collect()
    }

    fn w(&self, i: usize) -> &Buf<f32> {
        &self.params[i].w
    }
    fn g(&self, i: usize) -> &Buf<f32> {
        &self.params[i].g
    }
    /// (running mean, running var) of batch-norm `k` (0..4).
    fn stats(&self, k: usize) -> (&Buf<f32>, &Buf<f32>) {
        (&self.running[2 * k], &self.running[2 * k + 1])
    }
}

/// Layer shapes at batch `n`.
#[derive(Clone, Copy, Debug)]
pub struct Shapes {
    pub n: usize,
    pub conv1: Conv1dShape,
    pub pool1: Pool1dShape,
    pub conv2: Conv1dShape,
    pub pool2: Pool1dShape,
    pub fc5: DenseShape,
    pub fc6: DenseShape,
    pub head: DenseShape,
    pub ae: [DenseShape; 4],
    pub bn: [BatchNormShape; 4],
}

impl Shapes {
    pub fn new(n: usize, classes: usize, mm: MatmulVariant) -> Shapes {
        let conv = |c_in, l, c_out| Conv1dShape {
            n,
            c_in,
            l,
            c_out,
            k: 6,
            stride: 1,
            pad: 5,
            act: Act::Relu,
        };
        let d = |i, o| DenseShape::new(n, i, o, mm);
        Shapes {
            n,
            conv1: conv(1, INPUT, C1),
            pool1: Pool1dShape::k2(n, C1, L1),
            conv2: conv(C1, P1, C2),
            pool2: Pool1dShape::k2(n, C2, L2),
            fc5: d(FLAT, H5),
            fc6: d(H5, FEAT),
            head: d(FEAT, classes),
            ae: [
                d(AE[0], AE[1]),
                d(AE[1], AE[2]),
                d(AE[2], AE[3]),
                d(AE[3], AE[4]),
            ],
            bn: [
                BatchNormShape::ncl(n, C1, L1),
                BatchNormShape::ncl(n, C2, L2),
                BatchNormShape::nf(n, H5),
                BatchNormShape::nf(n, FEAT),
            ],
        }
    }

    fn dense_scratch(&self) -> usize {
        [
            self.fc5, self.fc6, self.head, self.ae[0], self.ae[1], self.ae[2], self.ae[3],
        ]
        .iter()
        .map(|s| s.scratch_len())
        .max()
        .unwrap_or(0)
        .max(1)
    }

    /// Forward flops of one pass of g, h_c and the AE (for throughput reports).
    pub fn flops_forward(&self) -> f64 {
        self.conv1.flops()
            + self.conv2.flops()
            + [self.fc5, self.fc6, self.head]
                .iter()
                .chain(&self.ae)
                .map(|s| s.flops_forward())
                .sum::<f64>()
    }
}

/// Activations of one pass through g and h_c, with the gradients that are specific to
/// it (the deeper gradients are shared scratch: the passes back-propagate in turn).
struct Branch {
    x: Buf<f32>,
    c1: Buf<f32>,
    b1: Buf<f32>,
    p1: Buf<f32>,
    arg1: Buf<u32>,
    c2: Buf<f32>,
    b2: Buf<f32>,
    p2: Buf<f32>,
    arg2: Buf<u32>,
    f5: Buf<f32>,
    a5: Buf<f32>,
    f6: Buf<f32>,
    feat: Buf<f32>,
    saved: [Buf<f32>; 4],
    logits: Buf<f32>,
    g_logits: Buf<f32>,
    g_feat: Buf<f32>,
}

impl Branch {
    fn new(gpu: &Gpu, s: &Shapes, classes: usize, train: bool) -> Result<Branch, GpuError> {
        let n = s.n;
        let z = |len: usize| gpu.zeros::<f32>(len);
        let g = |len: usize| gpu.zeros::<f32>(if train { len } else { 1 });
        Ok(Branch {
            x: z(n * INPUT)?,
            c1: z(s.conv1.out_len())?,
            b1: z(s.conv1.out_len())?,
            p1: z(s.pool1.out_len())?,
            arg1: gpu.zeros(s.pool1.arg_len())?,
            c2: z(s.conv2.out_len())?,
            b2: z(s.conv2.out_len())?,
            p2: z(s.pool2.out_len())?,
            arg2: gpu.zeros(s.pool2.arg_len())?,
            f5: z(n * H5)?,
            a5: z(n * H5)?,
            f6: z(n * FEAT)?,
            feat: z(n * FEAT)?,
            saved: [z(2 * C1)?, z(2 * C2)?, z(2 * H5)?, z(2 * FEAT)?],
            logits: z(n * classes)?,
            g_logits: g(n * classes)?,
            g_feat: g(n * FEAT)?,
        })
    }
}

/// Gradient scratch of g shared by the two passes' backward.
struct GScratch {
    g_f6: Buf<f32>,
    g_a5: Buf<f32>,
    g_f5: Buf<f32>,
    g_p2: Buf<f32>,
    g_b2: Buf<f32>,
    g_c2: Buf<f32>,
    dz2: Buf<f32>,
    g_p1: Buf<f32>,
    g_b1: Buf<f32>,
    g_c1: Buf<f32>,
    dz1: Buf<f32>,
}

/// Mean loss terms per step since the last read.
#[derive(Clone, Copy, Debug, Default, PartialEq)]
pub struct DocLoss {
    pub l_d: f64,
    pub l_c: f64,
    pub l_r: f64,
    pub steps: f64,
}

impl DocLoss {
    pub fn total(&self, w: &LossWeights) -> f64 {
        self.l_d + w.lambda_c * self.l_c + w.lambda_r * self.l_r
    }
}

/// Everything a step (or a scoring pass) needs at one batch size.
pub struct DocRun {
    pub batch: usize,
    pub classes: usize,
    pub mm: MatmulVariant,
    pub weights: LossWeights,
    /// The reference pass (training only; a 1-sample stand-in when scoring).
    refb: Branch,
    /// The target pass; also the one pass of scoring and classification.
    tgt: Branch,
    labels: Buf<u32>,
    ae: [Buf<f32>; 4],
    g_ae: [Buf<f32>; 4],
    gs: Option<GScratch>,
    conv: ConvScratch,
    dense_scratch: Buf<f32>,
    loss_scratch: Buf<f32>,
    /// [l_D, l_C, l_R] of the last step.
    loss_out: Buf<f32>,
    /// Running [Σ l_D, Σ l_C, Σ l_R, steps].
    loss_acc: Buf<f32>,
    /// Per-sample scores of the last `score` call.
    pub scores: Buf<f32>,
    train: bool,
}

impl DocRun {
    pub fn new(
        gpu: &Gpu,
        batch: usize,
        classes: usize,
        weights: LossWeights,
        train: bool,
    ) -> Result<DocRun, GpuError> {
        if train && batch < 2 {
            return Err(GpuError::Launch(
                "DOC-IDS training needs a batch of at least 2 (batch-norm statistics, compactness)"
                    .into(),
            ));
        }
        let mm = MatmulVariant::for_gpu(gpu);
        let s = Shapes::new(batch, classes, mm);
        let z = |len: usize| gpu.zeros::<f32>(len);
        let g = |len: usize| gpu.zeros::<f32>(if train { len } else { 1 });
        let one = Shapes::new(1, classes, mm);
        let gs = if train {
            Some(GScratch {
                g_f6: z(batch * FEAT)?,
                g_a5: z(batch * H5)?,
                g_f5: z(batch * H5)?,
                g_p2: z(s.pool2.out_len())?,
                g_b2: z(s.conv2.out_len())?,
                g_c2: z(s.conv2.out_len())?,
                dz2: z(s.conv2.out_len())?,
                g_p1: z(s.pool1.out_len())?,
                g_b1: z(s.conv1.out_len())?,
                g_c1: z(s.conv1.out_len())?,
                dz1: z(s.conv1.out_len())?,
            })
        } else {
            None
        };
        let (col, part) = if train {
            (
                s.conv1.col_len().max(s.conv2.col_len()),
                s.conv1.part_len().max(s.conv2.part_len()),
            )
        } else {
            (s.conv1.col_len().max(s.conv2.col_len()), 0)
        };
        let padded = s.conv1.padded_len().max(s.conv2.padded_len());
        Ok(DocRun {
            batch,
            classes,
            mm,
            weights,
            refb: Branch::new(gpu, if train { &s } else { &one }, classes, train)?,
            tgt: Branch::new(gpu, &s, classes, train)?,
            labels: gpu.zeros(batch)?,
            ae: [
                z(batch * AE[1])?,
                z(batch * AE[2])?,
                z(batch * AE[3])?,
                z(batch * AE[4])?,
            ],
            g_ae: [
                g(batch * AE[1])?,
                g(batch * AE[2])?,
                g(batch * AE[3])?,
                g(batch * AE[4])?,
            ],
            gs,
            conv: ConvScratch::new(gpu, col, part.max(1), padded)?,
            dense_scratch: z(s.dense_scratch())?,
            loss_scratch: z(loss::SCRATCH_LEN)?,
            loss_out: z(3)?,
            loss_acc: z(4)?,
            scores: z(batch)?,
            train,
        })
    }

    /// Queue one training step's inputs: `batch` reference samples with their class
    /// ids and `batch` target samples (u8, one sample after another).
    pub fn upload_step(&self, gpu: &Gpu, reference: &[u8], labels: &[u32], target: &[u8]) {
        let n = self.batch;
        assert!(self.train, "upload_step on a scoring run");
        assert_eq!(reference.len(), n * INPUT, "reference batch");
        assert_eq!(labels.len(), n, "reference labels");
        assert_eq!(target.len(), n * INPUT, "target batch");
        assert!(
            labels.iter().all(|&l| (l as usize) < self.classes),
            "reference label out of range"
        );
        gpu.write(&self.refb.x, 0, &params::to_unit(reference));
        gpu.write(&self.labels, 0, labels);
        gpu.write(&self.tgt.x, 0, &params::to_unit(target));
    }

    /// Queue up to `batch` samples for `score` or `classify`; returns how many.
    pub fn upload(&self, gpu: &Gpu, samples: &[u8]) -> usize {
        let n = samples.len() / INPUT;
        assert!(
            n <= self.batch,
            "upload: {n} samples for a batch of {}",
            self.batch
        );
        gpu.write(&self.tgt.x, 0, &params::to_unit(samples));
        n
    }

    /// g and h_c over `br`'s input at batch `s.n`: train mode (batch statistics, saved
    /// for the backward, running statistics moved) or eval mode (running statistics).
    fn forward_g(
        &self,
        b: &mut Batch,
        m: &DocIds,
        s: &Shapes,
        br: &Branch,
        train: bool,
    ) -> Result<(), GpuError> {
        let norm = |b: &mut Batch, k: usize, x: &Buf<f32>, y: &Buf<f32>| -> Result<(), GpuError> {
            let (gamma, beta) = (m.w(ix::BN1 + 4 * k), m.w(ix::BN1 + 4 * k + 1));
            let (rm, rv) = m.stats(k);
            if train {
                bn::train_forward(b, &s.bn[k], x, gamma, beta, y, &br.saved[k], rm, rv, true)
            } else {
                bn::eval_forward(b, &s.bn[k], x, gamma, beta, rm, rv, y)
            }
        };
        let ds = Some(self.dense_scratch.raw());
        conv1d::forward(
            b,
            &s.conv1,
            &br.x,
            m.w(ix::CONV1),
            m.w(ix::CONV1 + 1),
            &br.c1,
            &self.conv,
            self.mm,
        )?;
        norm(b, 0, &br.c1, &br.b1)?;
        pool1d::max_forward(b, &s.pool1, &br.b1, &br.p1, &br.arg1)?;
        conv1d::forward(
            b,
            &s.conv2,
            &br.p1,
            m.w(ix::CONV2),
            m.w(ix::CONV2 + 1),
            &br.c2,
            &self.conv,
            self.mm,
        )?;
        norm(b, 1, &br.c2, &br.b2)?;
        pool1d::max_forward(b, &s.pool2, &br.b2, &br.p2, &br.arg2)?;
        dense::forward(
            b,
            &s.fc5,
            br.p2.raw(),
            m.w(ix::FC5).raw(),
            Some(m.w(ix::FC5 + 1).raw()),
            Act::None,
            br.f5.raw(),
            ds,
        )?;
        norm(b, 2, &br.f5, &br.a5)?;
        relu_forward(b, s.n * H5, br.a5.raw(), br.a5.raw())?;
        dense::forward(
            b,
            &s.fc6,
            br.a5.raw(),
            m.w(ix::FC6).raw(),
            Some(m.w(ix::FC6 + 1).raw()),
            Act::None,
            br.f6.raw(),
            ds,
        )?;
        norm(b, 3, &br.f6, &br.feat)?;
        dense::forward(
            b,
            &s.head,
            br.feat.raw(),
            m.w(ix::HEAD).raw(),
            Some(m.w(ix::HEAD + 1).raw()),
            Act::None,
            br.logits.raw(),
            ds,
        )
    }

    /// The AE over the target pass's feature, into `ae[3]`.
    fn forward_ae(&self, b: &mut Batch, m: &DocIds, s: &Shapes) -> Result<(), GpuError> {
        let ds = Some(self.dense_scratch.raw());
        let mut x = &self.tgt.feat;
        for k in 0..4 {
            let act = if k < 3 { Act::Relu } else { Act::None };
            dense::forward(
                b,
                &s.ae[k],
                x.raw(),
                m.w(ix::AE[k]).raw(),
                Some(m.w(ix::AE[k] + 1).raw()),
                act,
                self.ae[k].raw(),
                ds,
            )?;
            x = &self.ae[k];
        }
        Ok(())
    }

    /// Back-propagate `br.g_feat` through g; `acc`: add to the parameter gradients.
    fn backward_g(
        &self,
        b: &mut Batch,
        m: &DocIds,
        s: &Shapes,
        br: &Branch,
        acc: bool,
    ) -> Result<(), GpuError> {
        let gs = self.gs.as_ref().expect("training run");
        let ds = Some(self.dense_scratch.raw());
        let (n, mm, cs) = (s.n, self.mm, &self.conv);
        let norm_bwd = |b: &mut Batch, k: usize, x: &Buf<f32>, dy: &Buf<f32>, dx: &Buf<f32>| {
            let p = ix::BN1 + 4 * k;
            bn::backward(
                b,
                &s.bn[k],
                x,
                dy,
                m.w(p),
                &br.saved[k],
                dx,
                m.g(p),
                m.g(p + 1),
                acc,
            )
        };
        norm_bwd(b, 3, &br.f6, &br.g_feat, &gs.g_f6)?;
        dense::backward(
            b,
            &s.fc6,
            br.a5.raw(),
            m.w(ix::FC6).raw(),
            gs.g_f6.raw(),
            Some(gs.g_a5.raw()),
            false,
            m.g(ix::FC6).raw(),
            Some(m.g(ix::FC6 + 1).raw()),
            acc,
            ds,
        )?;
        relu_backward(b, n * H5, br.a5.raw(), gs.g_a5.raw(), gs.g_a5.raw())?;
        norm_bwd(b, 2, &br.f5, &gs.g_a5, &gs.g_f5)?;
        dense::backward(
            b,
            &s.fc5,
            br.p2.raw(),
            m.w(ix::FC5).raw(),
            gs.g_f5.raw(),
            Some(gs.g_p2.raw()),
            false,
            m.g(ix::FC5).raw(),
            Some(m.g(ix::FC5 + 1).raw()),
            acc,
            ds,
        )?;
        pool1d::max_backward(b, &s.pool2, &gs.g_p2, &br.arg2, &gs.g_b2)?;
        norm_bwd(b, 1, &br.c2, &gs.g_b2, &gs.g_c2)?;
        // The ReLU sits between conv2 and its batch-norm: undo it before the conv backward.
        conv1d::act_backward(b, Act::Relu, s.conv2.out_len(), &br.c2, &gs.g_c2, &gs.dz2)?;
        conv1d::backward_weight(b, &s.conv2, &br.p1, &gs.dz2, m.g(ix::CONV2), acc, cs, mm)?;
        conv1d::backward_bias(b, &s.conv2, &gs.dz2, m.g(ix::CONV2 + 1), acc)?;
        conv1d::backward_input(b, &s.conv2, m.w(ix::CONV2), &gs.dz2, &gs.g_p1, cs, mm)?;
        pool1d::max_backward(b, &s.pool1, &gs.g_p1, &br.arg1, &gs.g_b1)?;
        norm_bwd(b, 0, &br.c1, &gs.g_b1, &gs.g_c1)?;
        conv1d::act_backward(b, Act::Relu, s.conv1.out_len(), &br.c1, &gs.g_c1, &gs.dz1)?;
        conv1d::backward_weight(b, &s.conv1, &br.x, &gs.dz1, m.g(ix::CONV1), acc, cs, mm)?;
        conv1d::backward_bias(b, &s.conv1, &gs.dz1, m.g(ix::CONV1 + 1), acc)
    }

    /// Record one training step's forward, losses and backward for the uploaded
    /// batches: afterwards every `Param::g` holds ∂loss/∂param of
    /// loss = l_D + λ_C·l_C + λ_R·l_R, and the running statistics have moved twice.
    pub fn forward_backward(&self, b: &mut Batch, m: &DocIds) -> Result<(), GpuError> {
        assert!(self.train, "forward_backward on a scoring run");
        let s = Shapes::new(self.batch, self.classes, self.mm);
        let (n, c) = (s.n, self.classes);
        let (r, t) = (&self.refb, &self.tgt);
        let (sc, out) = (self.loss_scratch.raw(), self.loss_out.raw());
        let ds = Some(self.dense_scratch.raw());
        self.forward_g(b, m, &s, r, true)?;
        self.forward_g(b, m, &s, t, true)?;
        self.forward_ae(b, m, &s)?;
        loss::softmax_cross_entropy(
            b,
            n,
            c,
            r.logits.raw(),
            self.labels.raw(),
            Some(GradOut::set(r.g_logits.raw())),
            1.0,
            sc,
            out,
            0,
        )?;
        loss::compactness(
            b,
            n,
            c,
            t.logits.raw(),
            Some(GradOut::set(t.g_logits.raw())),
            self.weights.lambda_c as f32,
            sc,
            out,
            1,
        )?;
        // l_R's gradient reaches g twice: directly through its second argument (written
        // here) and through the AE (added below).
        let (ga, gb) = (
            GradOut::set(self.g_ae[3].raw()),
            GradOut::set(t.g_feat.raw()),
        );
        loss::mse(
            b,
            n * FEAT,
            self.ae[3].raw(),
            t.feat.raw(),
            Some(ga),
            Some(gb),
            self.weights.lambda_r as f32,
            sc,
            out,
            2,
        )?;
        for k in (0..4).rev() {
            let (x, dx, dx_acc) = if k > 0 {
                (&self.ae[k - 1], &self.g_ae[k - 1], false)
            } else {
                (&t.feat, &t.g_feat, true)
            };
            dense::backward(
                b,
                &s.ae[k],
                x.raw(),
                m.w(ix::AE[k]).raw(),
                self.g_ae[k].raw(),
                Some(dx.raw()),
                dx_acc,
                m.g(ix::AE[k]).raw(),
                Some(m.g(ix::AE[k] + 1).raw()),
                false,
                ds,
            )?;
            if k > 0 {
                relu_backward(
                    b,
                    n * AE[k],
                    self.ae[k - 1].raw(),
                    self.g_ae[k - 1].raw(),
                    self.g_ae[k - 1].raw(),
                )?;
            }
        }
        let (hw, hg, hb) = (
            m.w(ix::HEAD).raw(),
            m.g(ix::HEAD).raw(),
            m.g(ix::HEAD + 1).raw(),
        );
        dense::backward(
            b,
            &s.head,
            r.feat.raw(),
            hw,
            r.g_logits.raw(),
            Some(r.g_feat.raw()),
            false,
            hg,
            Some(hb),
            false,
            ds,
        )?;
        dense::backward(
            b,
            &s.head,
            t.feat.raw(),
            hw,
            t.g_logits.raw(),
            Some(t.g_feat.raw()),
            true,
            hg,
            Some(hb),
            true,
            ds,
        )?;
        self.backward_g(b, m, &s, r, false)?;
        self.backward_g(b, m, &s, t, true)?;
        crate::nn::accum::accumulate(b, 1, 3, 1.0, self.loss_out.raw(), self.loss_acc.raw())
    }

    /// Record eval-mode scores (l_R per sample: mean over the 256 features of
    /// (AE(g(x)) − g(x))²) of the `n` uploaded samples into `scores[0..n]`.
    pub fn score(&self, b: &mut Batch, m: &DocIds, n: usize) -> Result<(), GpuError> {
        let s = Shapes::new(n, self.classes, self.mm);
        self.forward_g(b, m, &s, &self.tgt, false)?;
        self.forward_ae(b, m, &s)?;
        loss::score_mse(
            b,
            n,
            FEAT,
            self.ae[3].raw(),
            self.tgt.feat.raw(),
            self.scores.raw(),
            0,
        )
    }

    /// Eval-mode class logits [n, C] of the `n` uploaded samples (held-out accuracy).
    pub fn classify(&self, gpu: &Gpu, m: &DocIds, n: usize) -> Result<Vec<f32>, GpuError> {
        let s = Shapes::new(n, self.classes, self.mm);
        let mut b = gpu.batch();
        self.forward_g(&mut b, m, &s, &self.tgt, false)?;
        b.submit()?;
        let mut l = gpu.read(&self.tgt.logits)?;
        l.truncate(n * self.classes);
        Ok(l)
    }

    /// Eval-mode features g(x) of the `n` samples uploaded and scored last.
    pub fn features(&self, gpu: &Gpu, n: usize) -> Result<Vec<f32>, GpuError> {
        let mut f = gpu.read(&self.tgt.feat)?;
        f.truncate(n * FEAT);
        Ok(f)
    }

    /// Read and reset the running loss: mean l_D, l_C, l_R per step.
    pub fn take_loss(&self, gpu: &Gpu) -> Result<DocLoss, GpuError> {
        let v = gpu.read(&self.loss_acc)?;
        gpu.clear(&self.loss_acc);
        let steps = v[3] as f64;
        let d = steps.max(1.0);
        Ok(DocLoss {
            l_d: v[0] as f64 / d,
            l_c: v[1] as f64 / d,
            l_r: v[2] as f64 / d,
            steps,
        })
    }
}

/// The checkpoint's "model" value of DOC-IDS.
pub const KIND: &str = "doc-ids";

/// Reference classes of a DOC-IDS checkpoint (its training state lists them).
pub fn checkpoint_classes(
    c: &crate::checkpoint::Checkpoint,
    origin: &str,
) -> anyhow::Result<usize> {
    #[derive(serde::Deserialize)]
    struct Classes {
        classes: Vec<String>,
    }
    let st: Classes = c.meta_field(origin, "train")?;
    let k = st.classes.len();
    if !(1..=crate::checkpoint::MAX_CLASSES).contains(&k) {
        anyhow::bail!(
            "{origin}: metadata field 'train': {k} reference classes (expected 1..={})",
            crate::checkpoint::MAX_CLASSES
        );
    }
    Ok(k)
}

impl super::Model for DocIds {
    type Run = DocRun;
    fn kind(&self) -> &'static str {
        KIND
    }
    fn display(&self) -> &'static str {
        "DOC-IDS"
    }
    fn signature_id(&self) -> u32 {
        1_990_002
    }
    fn params(&self) -> &[Param] {
        &self.params
    }
    fn state(&self) -> Vec<(String, Vec<usize>, &Buf<f32>)> {
        DocIds::running_names()
            .into_iter()
            .zip(&self.running)
            .map(|((n, l), b)| (n, vec![l], b))
            .collect()
    }
    fn tensor_specs(
        c: &crate::checkpoint::Checkpoint,
        _kind: &str,
        origin: &str,
    ) -> anyhow::Result<Vec<(String, Vec<usize>)>> {
        let mut v = params::specs(&layers(checkpoint_classes(c, origin)?));
        v.extend(
            DocIds::running_names()
                .into_iter()
                .map(|(n, l)| (n, vec![l])),
        );
        Ok(v)
    }
    fn from_tensors(
        gpu: &Gpu,
        _c: &crate::checkpoint::Checkpoint,
        _kind: &str,
        mut values: Vec<Vec<f32>>,
    ) -> anyhow::Result<Self> {
        // The head's weight is [C, FEAT].
        let classes = values[ix::HEAD].len() / FEAT;
        let running = values.split_off(values.len() - 2 * NORMS.len());
        Ok(DocIds::from_host(gpu, classes, &values, &running)?)
    }
    fn run(&self, gpu: &Gpu, batch: usize, train: bool) -> anyhow::Result<DocRun> {
        Ok(DocRun::new(gpu, batch, self.classes, self.weights, train)?)
    }
}

impl super::ModelRun<DocIds> for DocRun {
    fn batch(&self) -> usize {
        self.batch
    }
    /// A training batch carries `batch` reference samples with their classes and
    /// `batch` target samples; a scoring batch only samples.
    fn upload(&self, gpu: &Gpu, batch: &super::HostBatch) -> usize {
        match &batch.reference {
            Some((reference, labels)) => {
                self.upload_step(gpu, reference, labels, &batch.samples);
                batch.n
            }
            None => DocRun::upload(self, gpu, &batch.samples),
        }
    }
    fn forward_backward(
        &self,
        b: &mut Batch,
        m: &DocIds,
        _n: usize,
        _key: crate::nn::reparam::NoiseKey,
    ) -> anyhow::Result<()> {
        Ok(DocRun::forward_backward(self, b, m)?)
    }
    fn score(&self, b: &mut Batch, m: &DocIds, n: usize) -> anyhow::Result<()> {
        Ok(DocRun::score(self, b, m, n)?)
    }
    fn score_buffer(&self) -> &Buf<f32> {
        &self.scores
    }
    fn take_loss(&self, gpu: &Gpu) -> anyhow::Result<super::LossRead> {
        let l = DocRun::take_loss(self, gpu)?;
        Ok(super::LossRead {
            total: l.total(&self.weights),
            terms: vec![("l_D", l.l_d), ("l_C", l.l_c), ("l_R", l.l_r)],
            count: l.steps,
        })
    }
}
