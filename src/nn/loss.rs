//! Losses with gradients, reduced on the GPU, and per-sample anomaly scores.
//!
//! Every loss writes its value into `out[at]` (a small caller buffer the host reads every
//! few steps) and, when asked, its gradient. Gradients are `grad_scale · ∂value/∂input`:
//! pass the loss's weight in the total (and 1/batch for the VAE's summed terms).
//! Each loss needs a `scratch` buffer of at least `SCRATCH_LEN` f32 for the per-workgroup
//! partial sums; one buffer serves every loss of a step (dispatches run in order).

use bytemuck::{Pod, Zeroable};

use crate::gpu::{grid, Batch, GpuError, Kernel};

/// Partial sums a loss leaves for its final reduction (= the most pass-1 workgroups).
pub const SCRATCH_LEN: usize = 256;
const WG: usize = 256;

/// Where a gradient goes: overwrite, or add into what the buffer holds.
#[derive(Clone, Copy, Debug)]
pub struct GradOut<'a> {
    pub buf: &'a wgpu::Buffer,
    pub accumulate: bool,
}

impl<'a> GradOut<'a> {
    pub fn set(buf: &'a wgpu::Buffer) -> Self {
        GradOut {
            buf,
            accumulate: false,
        }
    }
    pub fn add(buf: &'a wgpu::Buffer) -> Self {
        GradOut {
            buf,
            accumulate: true,
        }
    }
}

#[repr(C)]
#[derive(Clone, Copy, Debug, Default, Pod, Zeroable)]
struct Params {
    n: u32,
    cols: u32,
    groups: u32,
    flags: u32,
    gmul: f32,
    value_scale: f32,
    out_at: u32,
    _pad: u32,
}
const WRITE_A: u32 = 1;
const ACC_A: u32 = 2;
const WRITE_B: u32 = 4;
const ACC_B: u32 = 8;

fn flags(ga: Option<GradOut>, gb: Option<GradOut>) -> u32 {
    let f = |g: Option<GradOut>, w, acc| match g {
        Some(g) if g.accumulate => w | acc,
        Some(_) => w,
        None => 0,
    };
    f(ga, WRITE_A, ACC_A) | f(gb, WRITE_B, ACC_B)
}

/// The inputs and outputs of one loss launch. Unused slots are bound to buffers of the
/// same access (inputs to `a`, outputs to `scratch`) so wgpu sees no read/write conflict.
struct Io<'a> {
    a: &'a wgpu::Buffer,
    b: Option<&'a wgpu::Buffer>,
    labels: Option<&'a wgpu::Buffer>,
    ga: Option<GradOut<'a>>,
    gb: Option<GradOut<'a>>,
    scratch: &'a wgpu::Buffer,
    out: &'a wgpu::Buffer,
}

impl<'a> Io<'a> {
    fn bufs(&self) -> [&'a wgpu::Buffer; 7] {
        [
            self.a,
            self.b.unwrap_or(self.a),
            self.labels.unwrap_or(self.a),
            self.ga.map_or(self.scratch, |g| g.buf),
            self.gb.map_or(self.scratch, |g| g.buf),
            self.scratch,
            self.out,
        ]
    }
}

/// Pass-1 entry over `items` parallel items, then `finish` into out[at].
#[allow(clippy::too_many_arguments)]
fn reduce(
    b: &mut Batch,
    entry: &'static str,
    n: usize,
    cols: usize,
    items: usize,
    gmul: f64,
    value_scale: f64,
    at: usize,
    io: Io,
) -> Result<(), GpuError> {
    let groups = items.div_ceil(WG).clamp(1, SCRATCH_LEN);
    let p = Params {
        n: n as u32,
        cols: cols as u32,
        groups: groups as u32,
        flags: flags(io.ga, io.gb),
        gmul: gmul as f32,
        value_scale: value_scale as f32,
        out_at: at as u32,
        _pad: 0,
    };
    let bufs = io.bufs();
    b.dispatch(Kernel::new("loss", entry), &p, &bufs, [groups as u32, 1, 1])?;
    b.dispatch(Kernel::new("loss", "finish"), &p, &bufs, [1, 1, 1])
}

/// out[at] = Σ BCE(σ(logits), target) over `n` elements (summed, not averaged);
/// grad = grad_scale·(σ(l) − x).
#[allow(clippy::too_many_arguments)]
pub fn bce_with_logits(
    b: &mut Batch,
    n: usize,
    logits: &wgpu::Buffer,
    target: &wgpu::Buffer,
    grad: Option<GradOut>,
    grad_scale: f32,
    scratch: &wgpu::Buffer,
    out: &wgpu::Buffer,
    at: usize,
) -> Result<(), GpuError> {
    let io = Io {
        a: logits,
        b: Some(target),
        labels: None,
        ga: grad,
        gb: None,
        scratch,
        out,
    };
    reduce(b, "bce_logits", n, 0, n, grad_scale as f64, 1.0, at, io)
}

/// out[at] = KL(N(μ, e^logvar) ‖ N(0, I)) summed over `n` elements;
/// dμ = grad_scale·μ, dlogvar = grad_scale·½(e^logvar − 1).
#[allow(clippy::too_many_arguments)]
pub fn kl_normal(
    b: &mut Batch,
    n: usize,
    mu: &wgpu::Buffer,
    logvar: &wgpu::Buffer,
    dmu: Option<GradOut>,
    dlogvar: Option<GradOut>,
    grad_scale: f32,
    scratch: &wgpu::Buffer,
    out: &wgpu::Buffer,
    at: usize,
) -> Result<(), GpuError> {
    let io = Io {
        a: mu,
        b: Some(logvar),
        labels: None,
        ga: dmu,
        gb: dlogvar,
        scratch,
        out,
    };
    reduce(b, "kl_normal", n, 0, n, grad_scale as f64, 1.0, at, io)
}

#[derive(Clone, Copy, Debug)]
pub struct VaeLossShape {
    pub batch: usize,
    /// Pixels per image (4096).
    pub pixels: usize,
    pub latent: usize,
}

impl VaeLossShape {
    /// out[0] = Σ BCE, out[1] = Σ KL; the loss is (out[0] + out[1]) / batch.
    pub const OUT_LEN: usize = 2;
    pub fn loss(&self, out: &[f32]) -> f64 {
        (out[0] as f64 + out[1] as f64) / self.batch as f64
    }
}

/// The VAE loss (Σ BCE + Σ KL) / batch: sums into out[0] (BCE) and out[1] (KL), gradients
/// of the per-batch loss into dlogits, dμ, dlogvar (for dμ/dlogvar pass `GradOut::add` if
/// the reparameterisation backward has already written them, `set` if it runs after and
/// accumulates).
#[allow(clippy::too_many_arguments)]
pub fn vae_loss(
    b: &mut Batch,
    s: &VaeLossShape,
    logits: &wgpu::Buffer,
    x: &wgpu::Buffer,
    mu: &wgpu::Buffer,
    logvar: &wgpu::Buffer,
    dlogits: GradOut,
    dmu: GradOut,
    dlogvar: GradOut,
    scratch: &wgpu::Buffer,
    out: &wgpu::Buffer,
) -> Result<(), GpuError> {
    let scale = 1.0 / s.batch as f32;
    bce_with_logits(
        b,
        s.batch * s.pixels,
        logits,
        x,
        Some(dlogits),
        scale,
        scratch,
        out,
        0,
    )?;
    kl_normal(
        b,
        s.batch * s.latent,
        mu,
        logvar,
        Some(dmu),
        Some(dlogvar),
        scale,
        scratch,
        out,
        1,
    )
}

/// out[at] = mean over `rows` of −log softmax(logits_row)[label] with `classes` logits
/// per row and u32 labels; grad = grad_scale·(softmax − onehot)/rows. A label ≥ classes
/// makes the loss NaN.
#[allow(clippy::too_many_arguments)]
pub fn softmax_cross_entropy(
    b: &mut Batch,
    rows: usize,
    classes: usize,
    logits: &wgpu::Buffer,
    labels: &wgpu::Buffer,
    grad: Option<GradOut>,
    grad_scale: f32,
    scratch: &wgpu::Buffer,
    out: &wgpu::Buffer,
    at: usize,
) -> Result<(), GpuError> {
    let inv = 1.0 / rows.max(1) as f64;
    let io = Io {
        a: logits,
        b: None,
        labels: Some(labels),
        ga: grad,
        gb: None,
        scratch,
        out,
    };
    reduce(
        b,
        "softmax_ce",
        rows,
        classes,
        rows,
        grad_scale as f64 * inv,
        inv,
        at,
        io,
    )
}

/// DOC-IDS compactness (docs/MODELS.md §4) of h [n, k]:
/// l_C = n²/(n−1)² · 1/(n·k) · Σ_i ‖h_i − h̄‖² (n ≥ 2); grad = grad_scale·∂l_C/∂h.
#[allow(clippy::too_many_arguments)]
pub fn compactness(
    b: &mut Batch,
    n: usize,
    k: usize,
    h: &wgpu::Buffer,
    grad: Option<GradOut>,
    grad_scale: f32,
    scratch: &wgpu::Buffer,
    out: &wgpu::Buffer,
    at: usize,
) -> Result<(), GpuError> {
    let c = compactness_factor(n, k);
    let io = Io {
        a: h,
        b: None,
        labels: None,
        ga: grad,
        gb: None,
        scratch,
        out,
    };
    reduce(b, "compact", n, k, k, grad_scale as f64 * c, c, at, io)
}

fn compactness_factor(n: usize, k: usize) -> f64 {
    let nf = n as f64;
    nf * nf / ((nf - 1.0) * (nf - 1.0)) / (nf * k as f64)
}

/// out[at] = mean over `n` elements of (a − b)²; grads wrt both arguments
/// (ga = grad_scale·2(a − b)/n, gb = −ga), each optional and each overwrite or add.
#[allow(clippy::too_many_arguments)]
pub fn mse(
    b: &mut Batch,
    n: usize,
    a: &wgpu::Buffer,
    bb: &wgpu::Buffer,
    ga: Option<GradOut>,
    gb: Option<GradOut>,
    grad_scale: f32,
    scratch: &wgpu::Buffer,
    out: &wgpu::Buffer,
    at: usize,
) -> Result<(), GpuError> {
    let inv = 1.0 / n.max(1) as f64;
    let io = Io {
        a,
        b: Some(bb),
        labels: None,
        ga,
        gb,
        scratch,
        out,
    };
    reduce(b, "sq_diff", n, 0, n, grad_scale as f64 * inv, inv, at, io)
}

#[allow(clippy::too_many_arguments)]
fn score(
    b: &mut Batch,
    entry: &'static str,
    rows: usize,
    cols: usize,
    value_scale: f64,
    (a, bb): (&wgpu::Buffer, &wgpu::Buffer),
    scores: &wgpu::Buffer,
    at: usize,
) -> Result<(), GpuError> {
    if rows == 0 {
        return Ok(());
    }
    let p = Params {
        n: rows as u32,
        cols: cols as u32,
        value_scale: value_scale as f32,
        out_at: at as u32,
        ..Default::default()
    };
    // scores doubles as the (unwritten) gradient and partial slots: all writable.
    b.dispatch(
        Kernel::new("loss", entry),
        &p,
        &[a, bb, a, scores, scores, scores, scores],
        grid(rows as u32),
    )
}

/// scores[at + r] = Σ_j |x_rj − σ(logits_rj)| over `cols` elements of each of `rows`
/// samples (the VAE anomaly score).
pub fn score_l1_sigmoid(
    b: &mut Batch,
    rows: usize,
    cols: usize,
    logits: &wgpu::Buffer,
    x: &wgpu::Buffer,
    scores: &wgpu::Buffer,
    at: usize,
) -> Result<(), GpuError> {
    score(
        b,
        "score_l1_sigmoid",
        rows,
        cols,
        1.0,
        (logits, x),
        scores,
        at,
    )
}

/// scores[at + r] = mean_j (a_rj − b_rj)² per sample (DOC-IDS l_R and baseline scores).
pub fn score_mse(
    b: &mut Batch,
    rows: usize,
    cols: usize,
    a: &wgpu::Buffer,
    bb: &wgpu::Buffer,
    scores: &wgpu::Buffer,
    at: usize,
) -> Result<(), GpuError> {
    score(
        b,
        "score_sq_diff",
        rows,
        cols,
        1.0 / cols.max(1) as f64,
        (a, bb),
        scores,
        at,
    )
}

/// One loss launch to time in `bench ops`.
#[derive(Clone, Copy, Debug)]
pub enum LossShape {
    Bce { n: usize },
    Kl { n: usize },
    SoftmaxCe { rows: usize, classes: usize },
    Compactness { n: usize, k: usize },
    Mse { n: usize },
    ScoreL1Sigmoid { rows: usize, cols: usize },
    ScoreMse { rows: usize, cols: usize },
}

// ---- CPU references (f64): (value, gradient of the value) ----

pub fn bce_with_logits_ref(l: &[f64], x: &[f64]) -> (f64, Vec<f64>) {
    let sig = |v: f64| 1.0 / (1.0 + (-v).exp());
    let v = l
        .iter()
        .zip(x)
        .map(|(&l, &x)| l.max(0.0) - l * x + (-l.abs()).exp().ln_1p())
        .sum();
    (v, l.iter().zip(x).map(|(&l, &x)| sig(l) - x).collect())
}

pub fn kl_normal_ref(mu: &[f64], lv: &[f64]) -> (f64, Vec<f64>, Vec<f64>) {
    let v = mu
        .iter()
        .zip(lv)
        .map(|(&m, &l)| -0.5 * (1.0 + l - m * m - l.exp()))
        .sum();
    (
        v,
        mu.to_vec(),
        lv.iter().map(|&l| 0.5 * (l.exp() - 1.0)).collect(),
    )
}

pub fn softmax_ce_ref(rows: usize, classes: usize, l: &[f64], labels: &[u32]) -> (f64, Vec<f64>) {
    let mut v = 0.0;
    let mut g = vec![0.0; rows * classes];
    for r in 0..rows {
        let row = &l[r * classes..(r + 1) * classes];
        let mx = row.iter().cloned().fold(f64::NEG_INFINITY, f64::max);
        let z: f64 = row.iter().map(|&x| (x - mx).exp()).sum();
        let y = labels[r] as usize;
        v += mx + z.ln() - row[y];
        for j in 0..classes {
            g[r * classes + j] =
                ((row[j] - mx).exp() / z - if j == y { 1.0 } else { 0.0 }) / rows as f64;
        }
    }
    (v / rows as f64, g)
}

/// l_C written as the paper states it: 1/(n·k) Σ_i ‖h_i − m_i‖², m_i the mean of the
/// other n − 1 rows (the GPU uses the equivalent form around the full mean).
pub fn compactness_ref(n: usize, k: usize, h: &[f64]) -> f64 {
    let mut s = 0.0;
    for i in 0..n {
        for c in 0..k {
            let others: f64 = (0..n)
                .filter(|&j| j != i)
                .map(|j| h[j * k + c])
                .sum::<f64>()
                / (n - 1) as f64;
            s += (h[i * k + c] - others).powi(2);
        }
    }
    s / (n * k) as f64
}

/// ∂l_C/∂h via the full-mean form.
pub fn compactness_grad_ref(n: usize, k: usize, h: &[f64]) -> Vec<f64> {
    let c = compactness_factor(n, k);
    let mut g = vec![0.0; n * k];
    for col in 0..k {
        let m = (0..n).map(|i| h[i * k + col]).sum::<f64>() / n as f64;
        for i in 0..n {
            g[i * k + col] = c * 2.0 * (h[i * k + col] - m);
        }
    }
    g
}

pub fn mse_ref(a: &[f64], b: &[f64]) -> (f64, Vec<f64>, Vec<f64>) {
    let n = a.len() as f64;
    let v = a.iter().zip(b).map(|(x, y)| (x - y) * (x - y)).sum::<f64>() / n;
    let ga: Vec<f64> = a.iter().zip(b).map(|(x, y)| 2.0 * (x - y) / n).collect();
    let gb = ga.iter().map(|g| -g).collect();
    (v, ga, gb)
}

pub fn score_l1_sigmoid_ref(rows: usize, cols: usize, logits: &[f64], x: &[f64]) -> Vec<f64> {
    (0..rows)
        .map(|r| {
            (0..cols)
                .map(|j| (x[r * cols + j] - 1.0 / (1.0 + (-logits[r * cols + j]).exp())).abs())
                .sum()
        })
        .collect()
}

pub fn score_mse_ref(rows: usize, cols: usize, a: &[f64], b: &[f64]) -> Vec<f64> {
    (0..rows)
        .map(|r| {
            (0..cols)
                .map(|j| (a[r * cols + j] - b[r * cols + j]).powi(2))
                .sum::<f64>()
                / cols as f64
        })
        .collect()
}
