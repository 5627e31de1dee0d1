//! The traffic-image VAE of docs/MODELS.md §2, wired from the kernel library.
//!
//! encoder: conv 1→32→64→128 (k4 s2 p1, ReLU) → dense 8192→32 (μ), 8192→32 (log σ²)
//! decoder: dense 32→8192 (ReLU) → conv-transpose 128→64→32 (ReLU) → 32→1 (logits)
//! loss: (Σ BCE-with-logits + KL) / batch; score: Σ|x − σ(decoder(μ))|.
//!
//! A training batch larger than the adapter's storage-binding limit allows (the im2col
//! scratch of the 32→64 convolution is the largest buffer) is run as micro-batches
//! whose parameter gradients accumulate before one optimizer step.

use super::Param;
use crate::gpu::{Batch, Buf, Gpu, GpuError};
use crate::nn::conv2d::{
    conv2d_backward, conv2d_forward, conv_transpose2d_backward, conv_transpose2d_forward,
    Conv2dShape, ConvGrads, ConvTranspose2dShape, ConvWork, ScratchLens,
};
use crate::nn::dense::{self, DenseShape};
use crate::nn::elementwise::relu_backward;
use crate::nn::loss::{self, GradOut};
use crate::nn::matmul::MatmulVariant;
use crate::nn::reparam::{self, NoiseKey};
use crate::nn::Act;

pub const SIDE: usize = 64;
pub const PIXELS: usize = SIDE * SIDE;
pub const LATENT: usize = 32;
const FLAT: usize = 128 * 8 * 8;

/// Parameter tensors in a fixed order, with PyTorch-style names and shapes.
pub const PARAMS: [(&str, &[usize]); 18] = [
    ("enc.0.weight", &[32, 1, 4, 4]),
    ("enc.0.bias", &[32]),
    ("enc.2.weight", &[64, 32, 4, 4]),
    ("enc.2.bias", &[64]),
    ("enc.4.weight", &[128, 64, 4, 4]),
    ("enc.4.bias", &[128]),
    ("mu.weight", &[LATENT, FLAT]),
    ("mu.bias", &[LATENT]),
    ("logvar.weight", &[LATENT, FLAT]),
    ("logvar.bias", &[LATENT]),
    ("dec_in.weight", &[FLAT, LATENT]),
    ("dec_in.bias", &[FLAT]),
    ("dec.0.weight", &[128, 64, 4, 4]),
    ("dec.0.bias", &[64]),
    ("dec.2.weight", &[64, 32, 4, 4]),
    ("dec.2.bias", &[32]),
    ("dec.4.weight", &[32, 1, 4, 4]),
    ("dec.4.bias", &[1]),
];

/// (name, shape, fan_in) of every parameter tensor, for initialisation and checkpoints.
/// fan_in follows PyTorch: conv [out, in, k, k] → in·k·k; conv-transpose [in, out, k, k]
/// → out·k·k (PyTorch computes it from weight dim 1); linear [out, in] → in.
pub fn param_specs() -> Vec<(&'static str, Vec<usize>, usize)> {
    PARAMS
        .iter()
        .enumerate()
        .map(|(i, (n, s))| {
            // Each bias shares its weight's fan_in.
            let w = PARAMS[i - i % 2].1;
            let fan_in = w[1..].iter().product::<usize>();
            (*n, s.to_vec(), fan_in)
        })
        .collect()
}

/// Index of each tensor in `Vae::params`.
mod ix {
    pub const E0W: usize = 0;
    pub const E0B: usize = 1;
    pub const E1W: usize = 2;
    pub const E1B: usize = 3;
    pub const E2W: usize = 4;
    pub const E2B: usize = 5;
    pub const MUW: usize = 6;
    pub const MUB: usize = 7;
    pub const LVW: usize = 8;
    pub const LVB: usize = 9;
    pub const DIW: usize = 10;
    pub const DIB: usize = 11;
    pub const D0W: usize = 12;
    pub const D0B: usize = 13;
    pub const D1W: usize = 14;
    pub const D1B: usize = 15;
    pub const D2W: usize = 16;
    pub const D2B: usize = 17;
}

/// The six convolution layers and three dense layers at micro-batch `n`.
#[derive(Clone, Copy, Debug)]
pub struct Shapes {
    pub n: usize,
    pub e0: Conv2dShape,
    pub e1: Conv2dShape,
    pub e2: Conv2dShape,
    pub mu: DenseShape,
    pub dec_in: DenseShape,
    pub d0: ConvTranspose2dShape,
    pub d1: ConvTranspose2dShape,
    pub d2: ConvTranspose2dShape,
}

impl Shapes {
    pub fn new(n: usize, mm: MatmulVariant) -> Self {
        let conv = |c_in, side, c_out| Conv2dShape {
            n,
            c_in,
            h: side,
            w: side,
            c_out,
            k: 4,
            stride: 2,
            pad: 1,
        };
        let convt = |c_in, side, c_out| ConvTranspose2dShape {
            n,
            c_in,
            h: side,
            w: side,
            c_out,
            k: 4,
            stride: 2,
            pad: 1,
        };
        Shapes {
            n,
            e0: conv(1, 64, 32),
            e1: conv(32, 32, 64),
            e2: conv(64, 16, 128),
            mu: DenseShape::new(n, FLAT, LATENT, mm),
            dec_in: DenseShape::new(n, LATENT, FLAT, mm),
            d0: convt(128, 8, 64),
            d1: convt(64, 16, 32),
            d2: convt(32, 32, 1),
        }
    }

    fn scratch(&self) -> ScratchLens {
        [
            self.e0.scratch_lens(),
            self.e1.scratch_lens(),
            self.e2.scratch_lens(),
            self.d0.scratch_lens(),
            self.d1.scratch_lens(),
            self.d2.scratch_lens(),
        ]
        .into_iter()
        .fold(ScratchLens::default(), ScratchLens::max)
    }

    /// Largest single buffer (elements) this micro-batch needs.
    fn largest(&self) -> usize {
        let s = self.scratch();
        let dense = self.mu.scratch_len().max(self.dec_in.scratch_len());
        [s.col, s.tr, s.part, dense, self.e0.out_len()]
            .into_iter()
            .max()
            .unwrap()
    }

    /// Forward flops of one sample set of this size (for throughput reports).
    pub fn flops_forward(&self) -> f64 {
        self.e0.flops()
            + self.e1.flops()
            + self.e2.flops()
            + 2.0 * self.mu.flops_forward()
            + self.dec_in.flops_forward()
            + self.d0.flops()
            + self.d1.flops()
            + self.d2.flops()
    }
}

/// The largest micro-batch ≤ `batch` whose buffers fit the adapter's binding limit.
pub fn micro_batch(gpu: &Gpu, batch: usize) -> usize {
    let limit = gpu.limits.max_storage_buffer_binding_size as usize / 4;
    let mm = MatmulVariant::for_gpu(gpu);
    let mut m = batch.max(1);
    while m > 1 && Shapes::new(m, mm).largest() > limit {
        m = m.div_ceil(2);
    }
    m
}

pub struct Vae {
    pub params: Vec<Param>,
}

impl Vae {
    /// Upload parameters given as host tensors in `param_specs()` order.
    pub fn from_host(gpu: &Gpu, values: &[Vec<f32>]) -> Result<Vae, GpuError> {
        let specs = param_specs();
        assert_eq!(
            values.len(),
            specs.len(),
            "VAE expects {} parameter tensors",
            specs.len()
        );
        let params = specs
            .into_iter()
            .zip(values)
            .map(|((name, shape, _), v)| {
                assert_eq!(
                    v.len(),
                    shape.iter().product::<usize>(),
                    "{name}: wrong length"
                );
                Ok(Param {
                    name: name.to_string(),
                    w: gpu.upload(v)?,
                    g: gpu.zeros(v.len())?,
                    shape,
                })
            })
            .collect::<Result<_, GpuError>>()?;
        Ok(Vae { params })
    }

    pub fn download(&self, gpu: &Gpu) -> Result<Vec<Vec<f32>>, GpuError> {
        self.params.iter().map(|p| gpu.read(&p.w)).collect()
    }

    pub fn download_grads(&self, gpu: &Gpu) -> Result<Vec<Vec<f32>>, GpuError> {
        self.params.iter().map(|p| gpu.read(&p.g)).collect()
    }

    fn w(&self, i: usize) -> &Buf<f32> {
        &self.params[i].w
    }
    fn g(&self, i: usize) -> &Buf<f32> {
        &self.params[i].g
    }
}

/// Gradient outputs of conv layer `wi` (weight; its bias follows at wi + 1).
fn conv_grads<'a>(
    m: &'a Vae,
    wi: usize,
    dx: Option<&'a Buf<f32>>,
    accumulate: bool,
) -> ConvGrads<'a> {
    ConvGrads {
        dx,
        dw: m.g(wi),
        db: Some(m.g(wi + 1)),
        accumulate,
    }
}

/// Activations and gradients of one micro-batch, reused by every micro-batch of a step.
struct Acts {
    c1: Buf<f32>,
    c2: Buf<f32>,
    h: Buf<f32>,
    mu: Buf<f32>,
    lv: Buf<f32>,
    eps: Buf<f32>,
    z: Buf<f32>,
    d0: Buf<f32>,
    d1: Buf<f32>,
    d2: Buf<f32>,
    logits: Buf<f32>,
    // Gradients (named after what they are the gradient of).
    g_logits: Buf<f32>,
    g_d2: Buf<f32>,
    g_d1: Buf<f32>,
    g_d0: Buf<f32>,
    g_z: Buf<f32>,
    g_mu: Buf<f32>,
    g_lv: Buf<f32>,
    g_h: Buf<f32>,
    g_c2: Buf<f32>,
    g_c1: Buf<f32>,
}

impl Acts {
    fn new(gpu: &Gpu, s: &Shapes, train: bool) -> Result<Acts, GpuError> {
        let n = s.n;
        let z = |len: usize| gpu.zeros::<f32>(len);
        // Gradient buffers are only needed for training; scoring gets 1-element stand-ins.
        let g = |len: usize| gpu.zeros::<f32>(if train { len } else { 1 });
        Ok(Acts {
            c1: z(s.e0.out_len())?,
            c2: z(s.e1.out_len())?,
            h: z(s.e2.out_len())?,
            mu: z(n * LATENT)?,
            lv: z(n * LATENT)?,
            eps: z(n * LATENT)?,
            z: z(n * LATENT)?,
            d0: z(n * FLAT)?,
            d1: z(s.d0.out_len())?,
            d2: z(s.d1.out_len())?,
            logits: z(s.d2.out_len())?,
            g_logits: g(s.d2.out_len())?,
            g_d2: g(s.d1.out_len())?,
            g_d1: g(s.d0.out_len())?,
            g_d0: g(n * FLAT)?,
            g_z: g(n * LATENT)?,
            g_mu: g(n * LATENT)?,
            g_lv: g(n * LATENT)?,
            g_h: g(s.e2.out_len())?,
            g_c2: g(s.e1.out_len())?,
            g_c1: g(s.e0.out_len())?,
        })
    }
}

/// Everything a step needs at one batch size: shapes, per-micro-batch input buffers,
/// activations, scratch, and the small loss buffers.
pub struct VaeRun {
    pub batch: usize,
    pub micro: usize,
    pub shapes: Shapes,
    /// One input buffer per micro-batch: queued writes land before the submit that uses
    /// them, so micro-batches of one step cannot share an input buffer.
    xs: Vec<Buf<f32>>,
    acts: Acts,
    work: ConvWork,
    dense_scratch: Buf<f32>,
    loss_scratch: Buf<f32>,
    /// [BCE sum, KL sum] per micro-batch of the last step.
    loss_out: Buf<f32>,
    /// Running [BCE sum, KL sum, samples] since the last `take_loss`.
    loss_acc: Buf<f32>,
    /// Per-sample scores of the last `score` call.
    pub scores: Buf<f32>,
    train: bool,
}

/// Mean loss terms per sample over the steps since the last read.
#[derive(Clone, Copy, Debug, Default, PartialEq)]
pub struct LossParts {
    pub bce: f64,
    pub kl: f64,
    pub samples: f64,
}

impl LossParts {
    pub fn total(&self) -> f64 {
        self.bce + self.kl
    }
}

impl VaeRun {
    pub fn new(gpu: &Gpu, batch: usize, train: bool) -> Result<VaeRun, GpuError> {
        let micro = micro_batch(gpu, batch);
        let shapes = Shapes::new(micro, MatmulVariant::for_gpu(gpu));
        let chunks = batch.div_ceil(micro);
        Ok(VaeRun {
            batch,
            micro,
            shapes,
            xs: (0..chunks)
                .map(|_| gpu.zeros::<f32>(micro * PIXELS))
                .collect::<Result<_, _>>()?,
            acts: Acts::new(gpu, &shapes, train)?,
            work: ConvWork::new(gpu, shapes.scratch())?,
            dense_scratch: gpu.zeros(
                shapes
                    .mu
                    .scratch_len()
                    .max(shapes.dec_in.scratch_len())
                    .max(1),
            )?,
            loss_scratch: gpu.zeros(loss::SCRATCH_LEN)?,
            loss_out: gpu.zeros(2 * chunks)?,
            loss_acc: gpu.zeros(4)?,
            scores: gpu.zeros(chunks * micro)?,
            train,
        })
    }

    /// Queue the pixels (u8, one image after another) of up to `batch` samples. Missing
    /// samples of a last, short batch are zero images whose loss is not counted.
    pub fn upload(&self, gpu: &Gpu, pixels: &[u8]) -> usize {
        let n = pixels.len() / PIXELS;
        assert!(
            n <= self.batch,
            "upload: {n} samples for a batch of {}",
            self.batch
        );
        let mut f = vec![0f32; self.micro * PIXELS];
        for (c, x) in self.xs.iter().enumerate() {
            let lo = (c * self.micro).min(n);
            let hi = ((c + 1) * self.micro).min(n);
            f.iter_mut().for_each(|v| *v = 0.0);
            for (d, &p) in f.iter_mut().zip(&pixels[lo * PIXELS..hi * PIXELS]) {
                *d = p as f32 * (1.0 / 255.0);
            }
            gpu.write(x, 0, &f);
        }
        n
    }

    fn chunks(&self, n: usize) -> impl Iterator<Item = (usize, usize)> + '_ {
        (0..n.div_ceil(self.micro)).map(move |c| (c, (n - c * self.micro).min(self.micro)))
    }

    /// Encoder and decoder of micro-batch `c`; `sample`: z = μ + ε·σ, else z = μ.
    fn forward(
        &self,
        b: &mut Batch,
        m: &Vae,
        c: usize,
        noise: Option<NoiseKey>,
    ) -> Result<(), GpuError> {
        let (s, a, w) = (&self.shapes, &self.acts, &self.work);
        conv2d_forward(
            b,
            &s.e0,
            Act::Relu,
            &self.xs[c],
            m.w(ix::E0W),
            Some(m.w(ix::E0B)),
            &a.c1,
            w,
        )?;
        conv2d_forward(
            b,
            &s.e1,
            Act::Relu,
            &a.c1,
            m.w(ix::E1W),
            Some(m.w(ix::E1B)),
            &a.c2,
            w,
        )?;
        conv2d_forward(
            b,
            &s.e2,
            Act::Relu,
            &a.c2,
            m.w(ix::E2W),
            Some(m.w(ix::E2B)),
            &a.h,
            w,
        )?;
        let ds = Some(self.dense_scratch.raw());
        dense::forward(
            b,
            &s.mu,
            a.h.raw(),
            m.w(ix::MUW).raw(),
            Some(m.w(ix::MUB).raw()),
            Act::None,
            a.mu.raw(),
            ds,
        )?;
        let z = match noise {
            Some(key) => {
                dense::forward(
                    b,
                    &s.mu,
                    a.h.raw(),
                    m.w(ix::LVW).raw(),
                    Some(m.w(ix::LVB).raw()),
                    Act::None,
                    a.lv.raw(),
                    ds,
                )?;
                reparam::forward(
                    b,
                    s.n * LATENT,
                    key,
                    a.mu.raw(),
                    a.lv.raw(),
                    a.eps.raw(),
                    a.z.raw(),
                )?;
                &a.z
            }
            None => &a.mu,
        };
        dense::forward(
            b,
            &s.dec_in,
            z.raw(),
            m.w(ix::DIW).raw(),
            Some(m.w(ix::DIB).raw()),
            Act::Relu,
            a.d0.raw(),
            ds,
        )?;
        conv_transpose2d_forward(
            b,
            &s.d0,
            Act::Relu,
            &a.d0,
            m.w(ix::D0W),
            Some(m.w(ix::D0B)),
            &a.d1,
            w,
        )?;
        conv_transpose2d_forward(
            b,
            &s.d1,
            Act::Relu,
            &a.d1,
            m.w(ix::D1W),
            Some(m.w(ix::D1B)),
            &a.d2,
            w,
        )?;
        conv_transpose2d_forward(
            b,
            &s.d2,
            Act::None,
            &a.d2,
            m.w(ix::D2W),
            Some(m.w(ix::D2B)),
            &a.logits,
            w,
        )
    }

    /// Loss sums of micro-batch `c` (its first `valid` samples) into loss_out, gradients
    /// of (Σ BCE + Σ KL)/`total` into g_logits, g_mu, g_lv when `grads`.
    fn loss(
        &self,
        b: &mut Batch,
        c: usize,
        valid: usize,
        total: usize,
        grads: bool,
    ) -> Result<(), GpuError> {
        let a = &self.acts;
        let scale = 1.0 / total as f32;
        let gl = grads.then(|| GradOut::set(a.g_logits.raw()));
        let (gm, gv) = (
            grads.then(|| GradOut::set(a.g_mu.raw())),
            grads.then(|| GradOut::set(a.g_lv.raw())),
        );
        loss::bce_with_logits(
            b,
            valid * PIXELS,
            a.logits.raw(),
            self.xs[c].raw(),
            gl,
            scale,
            self.loss_scratch.raw(),
            self.loss_out.raw(),
            2 * c,
        )?;
        loss::kl_normal(
            b,
            valid * LATENT,
            a.mu.raw(),
            a.lv.raw(),
            gm,
            gv,
            scale,
            self.loss_scratch.raw(),
            self.loss_out.raw(),
            2 * c + 1,
        )
    }

    fn backward(&self, b: &mut Batch, m: &Vae, c: usize) -> Result<(), GpuError> {
        let (s, a, w) = (&self.shapes, &self.acts, &self.work);
        let accumulate = c > 0;
        let grads = |wi, dx| conv_grads(m, wi, dx, accumulate);
        conv_transpose2d_backward(
            b,
            &s.d2,
            Act::None,
            &a.d2,
            m.w(ix::D2W),
            None,
            &a.g_logits,
            &grads(ix::D2W, Some(&a.g_d2)),
            w,
        )?;
        conv_transpose2d_backward(
            b,
            &s.d1,
            Act::Relu,
            &a.d1,
            m.w(ix::D1W),
            Some(&a.d2),
            &a.g_d2,
            &grads(ix::D1W, Some(&a.g_d1)),
            w,
        )?;
        conv_transpose2d_backward(
            b,
            &s.d0,
            Act::Relu,
            &a.d0,
            m.w(ix::D0W),
            Some(&a.d1),
            &a.g_d1,
            &grads(ix::D0W, Some(&a.g_d0)),
            w,
        )?;
        relu_backward(b, s.n * FLAT, a.d0.raw(), a.g_d0.raw(), a.g_d0.raw())?;
        let ds = Some(self.dense_scratch.raw());
        dense::backward(
            b,
            &s.dec_in,
            a.z.raw(),
            m.w(ix::DIW).raw(),
            a.g_d0.raw(),
            Some(a.g_z.raw()),
            false,
            m.g(ix::DIW).raw(),
            Some(m.g(ix::DIB).raw()),
            accumulate,
            ds,
        )?;
        // The KL gradient is already in g_mu / g_lv; the path through z adds to it.
        reparam::backward(
            b,
            s.n * LATENT,
            a.g_z.raw(),
            a.lv.raw(),
            a.eps.raw(),
            GradOut::add(a.g_mu.raw()),
            GradOut::add(a.g_lv.raw()),
        )?;
        dense::backward(
            b,
            &s.mu,
            a.h.raw(),
            m.w(ix::MUW).raw(),
            a.g_mu.raw(),
            Some(a.g_h.raw()),
            false,
            m.g(ix::MUW).raw(),
            Some(m.g(ix::MUB).raw()),
            accumulate,
            ds,
        )?;
        dense::backward(
            b,
            &s.mu,
            a.h.raw(),
            m.w(ix::LVW).raw(),
            a.g_lv.raw(),
            Some(a.g_h.raw()),
            true,
            m.g(ix::LVW).raw(),
            Some(m.g(ix::LVB).raw()),
            accumulate,
            ds,
        )?;
        conv2d_backward(
            b,
            &s.e2,
            Act::Relu,
            &a.c2,
            m.w(ix::E2W),
            Some(&a.h),
            &a.g_h,
            &grads(ix::E2W, Some(&a.g_c2)),
            w,
        )?;
        conv2d_backward(
            b,
            &s.e1,
            Act::Relu,
            &a.c1,
            m.w(ix::E1W),
            Some(&a.c2),
            &a.g_c2,
            &grads(ix::E1W, Some(&a.g_c1)),
            w,
        )?;
        conv2d_backward(
            b,
            &s.e0,
            Act::Relu,
            &self.xs[c],
            m.w(ix::E0W),
            Some(&a.c1),
            &a.g_c1,
            &grads(ix::E0W, None),
            w,
        )
    }

    /// Adds this step's loss sums to the running accumulator (no host sync).
    fn accumulate_loss(
        &self,
        b: &mut Batch,
        chunks: usize,
        samples: usize,
    ) -> Result<(), GpuError> {
        crate::nn::accum::accumulate(
            b,
            chunks,
            2,
            samples as f32,
            self.loss_out.raw(),
            self.loss_acc.raw(),
        )
    }

    /// Record forward + loss + backward for the `n` uploaded samples: afterwards every
    /// `Param::g` holds ∂loss/∂param of loss = (Σ BCE + Σ KL) / n.
    pub fn forward_backward(
        &self,
        b: &mut Batch,
        m: &Vae,
        n: usize,
        key: NoiseKey,
    ) -> Result<(), GpuError> {
        assert!(self.train, "forward_backward on a scoring run");
        let chunks: Vec<_> = self.chunks(n).collect();
        for &(c, valid) in &chunks {
            // Each micro-batch draws its own noise: a distinct stream per chunk.
            let key = NoiseKey {
                stream: key.stream + c as u32,
                ..key
            };
            self.forward(b, m, c, Some(key))?;
            if valid < self.micro {
                // Padding samples of a short last batch must not contribute gradients:
                // the loss writes only the valid samples' part of these.
                for g in [&self.acts.g_logits, &self.acts.g_mu, &self.acts.g_lv] {
                    b.clear(g.raw());
                }
            }
            self.loss(b, c, valid, n, true)?;
            self.backward(b, m, c)?;
        }
        self.accumulate_loss(b, chunks.len(), n)
    }

    /// Record forward + loss (no gradients), for validation loss.
    pub fn forward_loss(
        &self,
        b: &mut Batch,
        m: &Vae,
        n: usize,
        key: NoiseKey,
    ) -> Result<(), GpuError> {
        let chunks: Vec<_> = self.chunks(n).collect();
        for &(c, valid) in &chunks {
            let key = NoiseKey {
                stream: key.stream + c as u32,
                ..key
            };
            self.forward(b, m, c, Some(key))?;
            self.loss(b, c, valid, n, false)?;
        }
        self.accumulate_loss(b, chunks.len(), n)
    }

    /// Record the anomaly score Σ|x − σ(decoder(μ))| of the `n` uploaded samples into
    /// `scores[0..n]`.
    pub fn score(&self, b: &mut Batch, m: &Vae, n: usize) -> Result<(), GpuError> {
        for (c, valid) in self.chunks(n) {
            self.forward(b, m, c, None)?;
            loss::score_l1_sigmoid(
                b,
                valid,
                PIXELS,
                self.acts.logits.raw(),
                self.xs[c].raw(),
                self.scores.raw(),
                c * self.micro,
            )?;
        }
        Ok(())
    }

    /// Reconstructions σ(decoder(μ)) of the first micro-batch after `score` (for pictures).
    pub fn reconstruction(&self, gpu: &Gpu) -> Result<Vec<f32>, GpuError> {
        let l = gpu.read(&self.acts.logits)?;
        Ok(l.into_iter().map(|v| 1.0 / (1.0 + (-v).exp())).collect())
    }

    /// Read and reset the running loss: mean BCE and KL per sample.
    pub fn take_loss(&self, gpu: &Gpu) -> Result<LossParts, GpuError> {
        let v = gpu.read(&self.loss_acc)?;
        gpu.clear(&self.loss_acc);
        let samples = v[2] as f64;
        let d = samples.max(1.0);
        Ok(LossParts {
            bce: v[0] as f64 / d,
            kl: v[1] as f64 / d,
            samples,
        })
    }
}

/// PyTorch-default initial parameters for `seed` (weights Kaiming-uniform, biases
/// U(±1/√fan_in)), layer by layer in `param_specs()` order.
pub fn init_params(seed: u64) -> Vec<Vec<f32>> {
    let mut rng = crate::nn::init::HostRng::new(seed);
    let specs = param_specs();
    let mut out = Vec::with_capacity(specs.len());
    for pair in specs.chunks(2) {
        let (w, b) = crate::nn::init::layer(&mut rng, &pair[0].1, pair[1].1[0]);
        out.push(w);
        out.push(b);
    }
    out
}

/// The checkpoint's "model" value of the VAE.
pub const KIND: &str = "vae";

impl super::Model for Vae {
    type Run = VaeRun;
    fn kind(&self) -> &'static str {
        KIND
    }
    fn display(&self) -> &'static str {
        "VAE"
    }
    fn signature_id(&self) -> u32 {
        1_990_001
    }
    fn params(&self) -> &[Param] {
        &self.params
    }
    fn tensor_specs(
        _c: &crate::checkpoint::Checkpoint,
        _kind: &str,
        _origin: &str,
    ) -> anyhow::Result<Vec<(String, Vec<usize>)>> {
        Ok(param_specs()
            .into_iter()
            .map(|(n, s, _)| (n.to_string(), s))
            .collect())
    }
    fn from_tensors(
        gpu: &Gpu,
        _c: &crate::checkpoint::Checkpoint,
        _kind: &str,
        values: Vec<Vec<f32>>,
    ) -> anyhow::Result<Self> {
        Ok(Vae::from_host(gpu, &values)?)
    }
    fn run(&self, gpu: &Gpu, batch: usize, train: bool) -> anyhow::Result<VaeRun> {
        Ok(VaeRun::new(gpu, batch, train)?)
    }
    fn validates_by_loss(&self) -> bool {
        true
    }
    /// The score Σ|x − x̂| is a sum over pixels, so each pixel's |x − x̂| is its
    /// exact part: rows are packets, columns header bytes.
    fn byte_error(&self) -> Option<super::ByteError> {
        Some(super::ByteError::Abs)
    }
}

impl super::ModelRun<Vae> for VaeRun {
    fn batch(&self) -> usize {
        self.batch
    }
    fn upload(&self, gpu: &Gpu, batch: &super::HostBatch) -> usize {
        VaeRun::upload(self, gpu, &batch.samples)
    }
    fn forward_backward(
        &self,
        b: &mut Batch,
        m: &Vae,
        n: usize,
        key: NoiseKey,
    ) -> anyhow::Result<()> {
        Ok(VaeRun::forward_backward(self, b, m, n, key)?)
    }
    fn forward_loss(&self, b: &mut Batch, m: &Vae, n: usize, key: NoiseKey) -> anyhow::Result<()> {
        Ok(VaeRun::forward_loss(self, b, m, n, key)?)
    }
    fn score(&self, b: &mut Batch, m: &Vae, n: usize) -> anyhow::Result<()> {
        Ok(VaeRun::score(self, b, m, n)?)
    }
    fn score_buffer(&self) -> &Buf<f32> {
        &self.scores
    }
    fn reconstruction(&self, gpu: &Gpu) -> anyhow::Result<Option<Vec<f32>>> {
        Ok(Some(VaeRun::reconstruction(self, gpu)?))
    }
    fn take_loss(&self, gpu: &Gpu) -> anyhow::Result<super::LossRead> {
        let l = VaeRun::take_loss(self, gpu)?;
        Ok(super::LossRead {
            total: l.total(),
            terms: vec![("BCE", l.bce), ("KL", l.kl)],
            count: l.samples,
        })
    }
}
