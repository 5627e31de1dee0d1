//! Batch normalisation (PyTorch `BatchNorm1d`) over [n, c, l] per channel, statistics
//! over the n·l values of a channel; (N, F) data is l = 1 (shaders/batchnorm.wgsl).
//!
//! Training normalises with the batch's biased variance, saves the mean and inverse
//! std for the backward, and (optionally) moves the running mean and the running
//! *unbiased* variance by `momentum`, as PyTorch does. Eval uses the running values.

use bytemuck::{Pod, Zeroable};

use crate::gpu::{grid, Batch, Buf, Gpu, GpuError, Kernel};
use crate::nn::matmul::sg8;

const SHADER: &str = "batchnorm";
/// Invocations per workgroup (the shader's WG).
const WG: usize = 256;

/// PyTorch's defaults.
pub const EPS: f32 = 1e-5;
pub const MOMENTUM: f32 = 0.1;

#[derive(Clone, Copy, Debug, PartialEq)]
pub struct BatchNormShape {
    pub n: usize,
    pub c: usize,
    /// 1 for (N, F) data.
    pub l: usize,
    pub eps: f32,
    pub momentum: f32,
}

impl BatchNormShape {
    /// Over (N, C, L), PyTorch's ε and momentum.
    pub fn ncl(n: usize, c: usize, l: usize) -> Self {
        BatchNormShape {
            n,
            c,
            l,
            eps: EPS,
            momentum: MOMENTUM,
        }
    }
    /// Over (N, F).
    pub fn nf(n: usize, f: usize) -> Self {
        Self::ncl(n, f, 1)
    }
    pub fn len(&self) -> usize {
        self.n * self.c * self.l
    }
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }
    /// gamma, beta, running mean, running var, dgamma, dbeta: one value per channel.
    pub fn param_len(&self) -> usize {
        self.c
    }
    /// The saved batch statistics: mean [0, c), inverse std [c, 2c).
    pub fn saved_len(&self) -> usize {
        2 * self.c
    }
    pub fn check(&self) -> Result<(), GpuError> {
        if self.n == 0 || self.c == 0 || self.l == 0 || self.len() > u32::MAX as usize {
            return Err(GpuError::Launch(format!("batch_norm: bad shape {self:?}")));
        }
        Ok(())
    }
    fn check_train(&self) -> Result<(), GpuError> {
        self.check()?;
        if self.n * self.l < 2 {
            return Err(GpuError::Launch(format!(
                "batch_norm: training needs more than one value per channel (n·l = {})",
                self.n * self.l
            )));
        }
        Ok(())
    }
    /// Channels per workgroup: enough row lanes to cover n·l (up to the workgroup),
    /// the rest of the workgroup on further channels. For (N, F) at least 32 channels,
    /// so neighbouring invocations read neighbouring features.
    fn lanes(&self) -> usize {
        let rows = (self.n * self.l).next_power_of_two().min(WG);
        let lanes = WG / rows;
        if self.l == 1 {
            lanes.max(32)
        } else {
            lanes
        }
    }
    fn params(&self) -> BnParams {
        BnParams {
            n: self.n as u32,
            c: self.c as u32,
            l: self.l as u32,
            lanes: self.lanes() as u32,
            momentum: self.momentum,
            eps: self.eps,
            total: self.len() as u32,
            ..Default::default()
        }
    }
    fn channel_groups(&self) -> [u32; 3] {
        grid(self.c.div_ceil(self.lanes()) as u32)
    }
}

#[repr(C)]
#[derive(Clone, Copy, Debug, Default, Pod, Zeroable)]
struct BnParams {
    n: u32,
    c: u32,
    l: u32,
    lanes: u32,
    momentum: f32,
    eps: f32,
    update_running: u32,
    accumulate: u32,
    total: u32,
    _p0: u32,
    _p1: u32,
    _p2: u32,
}

/// Which kernels run the training forward and backward. All compute the same thing;
/// they differ in how a channel's reduction is spread over invocations.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum BnVariant {
    /// Portable: 256-lane workgroups, a shared-memory tree per channel.
    Tree,
    /// Portable, (N, F) data only (l = 1): one invocation per channel looping over the
    /// rows, no barriers.
    Cols,
    /// One 8-lane workgroup per channel reduced by subgroupAdd (shaders/batchnorm_sg.wgsl);
    /// only where [`sg8`] holds.
    Sg,
}

/// Longest column [`BnVariant::Cols`] is picked for: one invocation walks it serially.
const COLS_MAX_N: usize = 4096;

impl BnVariant {
    pub const ALL: [BnVariant; 3] = [BnVariant::Tree, BnVariant::Cols, BnVariant::Sg];

    /// `Cols` for (N, F) data with n ≤ 4096, else `Sg` where the adapter has 8-lane
    /// subgroups, else `Tree`; `GPU_NIDS_BN=tree` forces `Tree` (for comparisons).
    pub fn for_shape(gpu: &Gpu, s: &BatchNormShape) -> Self {
        if std::env::var("GPU_NIDS_BN").is_ok_and(|v| v == "tree") {
            BnVariant::Tree
        } else if s.l == 1 && s.n <= COLS_MAX_N {
            BnVariant::Cols
        } else if sg8(gpu) {
            BnVariant::Sg
        } else {
            BnVariant::Tree
        }
    }

    /// Whether this variant can run `s` on `gpu`.
    pub fn supports(self, gpu: &Gpu, s: &BatchNormShape) -> bool {
        match self {
            BnVariant::Tree => true,
            BnVariant::Cols => s.l == 1,
            BnVariant::Sg => sg8(gpu),
        }
    }

    fn kernel(self, forward: bool) -> Kernel {
        match (self, forward) {
            (BnVariant::Tree, true) => Kernel::new(SHADER, "train_forward"),
            (BnVariant::Tree, false) => Kernel::new(SHADER, "backward"),
            (BnVariant::Cols, true) => Kernel::new(SHADER, "train_forward_cols"),
            (BnVariant::Cols, false) => Kernel::new(SHADER, "backward_cols"),
            (BnVariant::Sg, true) => Kernel::new("batchnorm_sg", "train_forward_sg"),
            (BnVariant::Sg, false) => Kernel::new("batchnorm_sg", "backward_sg"),
        }
    }

    fn groups(self, s: &BatchNormShape) -> [u32; 3] {
        match self {
            BnVariant::Tree => s.channel_groups(),
            BnVariant::Cols => grid(s.c.div_ceil(64) as u32),
            BnVariant::Sg => grid(s.c as u32),
        }
    }

    fn check(self, gpu: &Gpu, s: &BatchNormShape) -> Result<(), GpuError> {
        if self.supports(gpu, s) {
            Ok(())
        } else {
            Err(GpuError::Launch(format!(
                "batch_norm: variant {self:?} cannot run {s:?} here"
            )))
        }
    }
}

/// Training forward: y = γ·(x − mean)/√(var + ε) + β with batch statistics; writes
/// `saved` (≥ `saved_len()`) for [`backward`]; with `update_running`, moves the
/// running mean / unbiased variance by `momentum`.
#[allow(clippy::too_many_arguments)]
pub fn train_forward(
    b: &mut Batch,
    s: &BatchNormShape,
    x: &Buf<f32>,
    gamma: &Buf<f32>,
    beta: &Buf<f32>,
    y: &Buf<f32>,
    saved: &Buf<f32>,
    running_mean: &Buf<f32>,
    running_var: &Buf<f32>,
    update_running: bool,
) -> Result<(), GpuError> {
    let v = BnVariant::for_shape(b.gpu(), s);
    train_forward_with(
        b,
        v,
        s,
        x,
        gamma,
        beta,
        y,
        saved,
        running_mean,
        running_var,
        update_running,
    )
}

/// [`train_forward`] with the kernels chosen explicitly (tests, comparisons).
#[allow(clippy::too_many_arguments)]
pub fn train_forward_with(
    b: &mut Batch,
    v: BnVariant,
    s: &BatchNormShape,
    x: &Buf<f32>,
    gamma: &Buf<f32>,
    beta: &Buf<f32>,
    y: &Buf<f32>,
    saved: &Buf<f32>,
    running_mean: &Buf<f32>,
    running_var: &Buf<f32>,
    update_running: bool,
) -> Result<(), GpuError> {
    s.check_train()?;
    v.check(b.gpu(), s)?;
    x.check_len("batch_norm x", s.len())?;
    y.check_len("batch_norm y", s.len())?;
    saved.check_len("batch_norm saved", s.saved_len())?;
    for (what, buf) in [
        ("gamma", gamma),
        ("beta", beta),
        ("running_mean", running_mean),
        ("running_var", running_var),
    ] {
        buf.check_len(what, s.c)?;
    }
    let mut p = s.params();
    p.update_running = update_running as u32;
    // dy is unused by this entry: bind x (read-only) there.
    let bufs = [x, x, gamma, beta, y, saved, running_mean, running_var];
    b.run(v.kernel(true), &p, &bufs, v.groups(s))
}

/// Eval forward with the running statistics.
#[allow(clippy::too_many_arguments)]
pub fn eval_forward(
    b: &mut Batch,
    s: &BatchNormShape,
    x: &Buf<f32>,
    gamma: &Buf<f32>,
    beta: &Buf<f32>,
    running_mean: &Buf<f32>,
    running_var: &Buf<f32>,
    y: &Buf<f32>,
) -> Result<(), GpuError> {
    s.check()?;
    x.check_len("batch_norm x", s.len())?;
    y.check_len("batch_norm y", s.len())?;
    for (what, buf) in [
        ("gamma", gamma),
        ("beta", beta),
        ("running_mean", running_mean),
        ("running_var", running_var),
    ] {
        buf.check_len(what, s.c)?;
    }
    // dy and saved are unused by this entry: bind x (read-only) and y (read-write).
    let bufs = [x, x, gamma, beta, y, y, running_mean, running_var];
    b.run(
        Kernel::new(SHADER, "eval_forward"),
        &s.params(),
        &bufs,
        grid(s.len().div_ceil(WG) as u32),
    )
}

/// Backward of the training forward: dx (overwritten), dgamma and dbeta (added into
/// when `accumulate`), from the forward's input x and its `saved` statistics.
#[allow(clippy::too_many_arguments)]
pub fn backward(
    b: &mut Batch,
    s: &BatchNormShape,
    x: &Buf<f32>,
    dy: &Buf<f32>,
    gamma: &Buf<f32>,
    saved: &Buf<f32>,
    dx: &Buf<f32>,
    dgamma: &Buf<f32>,
    dbeta: &Buf<f32>,
    accumulate: bool,
) -> Result<(), GpuError> {
    let v = BnVariant::for_shape(b.gpu(), s);
    backward_with(b, v, s, x, dy, gamma, saved, dx, dgamma, dbeta, accumulate)
}

/// [`backward`] with the kernels chosen explicitly (tests, comparisons).
#[allow(clippy::too_many_arguments)]
pub fn backward_with(
    b: &mut Batch,
    v: BnVariant,
    s: &BatchNormShape,
    x: &Buf<f32>,
    dy: &Buf<f32>,
    gamma: &Buf<f32>,
    saved: &Buf<f32>,
    dx: &Buf<f32>,
    dgamma: &Buf<f32>,
    dbeta: &Buf<f32>,
    accumulate: bool,
) -> Result<(), GpuError> {
    s.check_train()?;
    v.check(b.gpu(), s)?;
    for (what, buf) in [
        ("batch_norm x", x),
        ("batch_norm dy", dy),
        ("batch_norm dx", dx),
    ] {
        buf.check_len(what, s.len())?;
    }
    saved.check_len("batch_norm saved", s.saved_len())?;
    for (what, buf) in [("gamma", gamma), ("dgamma", dgamma), ("dbeta", dbeta)] {
        buf.check_len(what, s.c)?;
    }
    let mut p = s.params();
    p.accumulate = accumulate as u32;
    // beta is unused by this entry: bind gamma (read-only) there.
    let bufs = [x, dy, gamma, gamma, dx, saved, dgamma, dbeta];
    b.run(v.kernel(false), &p, &bufs, v.groups(s))
}

/// CPU reference: per-channel batch mean and biased variance.
pub fn batch_stats_ref(s: &BatchNormShape, x: &[f64]) -> (Vec<f64>, Vec<f64>) {
    let m = (s.n * s.l) as f64;
    let mut mean = vec![0.0; s.c];
    let mut var = vec![0.0; s.c];
    let at = |n: usize, c: usize, i: usize| (n * s.c + c) * s.l + i;
    for c in 0..s.c {
        for n in 0..s.n {
            for i in 0..s.l {
                mean[c] += x[at(n, c, i)];
            }
        }
        mean[c] /= m;
        for n in 0..s.n {
            for i in 0..s.l {
                var[c] += (x[at(n, c, i)] - mean[c]).powi(2);
            }
        }
        var[c] /= m;
    }
    (mean, var)
}

/// CPU reference of the training forward: (y, mean, inverse std).
pub fn train_forward_ref(
    s: &BatchNormShape,
    x: &[f64],
    gamma: &[f64],
    beta: &[f64],
) -> (Vec<f64>, Vec<f64>, Vec<f64>) {
    let (mean, var) = batch_stats_ref(s, x);
    let inv: Vec<f64> = var
        .iter()
        .map(|v| 1.0 / (v + s.eps as f64).sqrt())
        .collect();
    let y = (0..s.len())
        .map(|i| {
            let c = (i / s.l) % s.c;
            gamma[c] * (x[i] - mean[c]) * inv[c] + beta[c]
        })
        .collect();
    (y, mean, inv)
}

/// CPU reference of the running-statistics update: (running mean, running var).
pub fn running_update_ref(
    s: &BatchNormShape,
    x: &[f64],
    rmean: &[f64],
    rvar: &[f64],
) -> (Vec<f64>, Vec<f64>) {
    let (mean, var) = batch_stats_ref(s, x);
    let m = (s.n * s.l) as f64;
    let mo = s.momentum as f64;
    let rm = (0..s.c)
        .map(|c| (1.0 - mo) * rmean[c] + mo * mean[c])
        .collect();
    let rv = (0..s.c)
        .map(|c| (1.0 - mo) * rvar[c] + mo * var[c] * m / (m - 1.0))
        .collect();
    (rm, rv)
}

/// CPU reference of the eval forward.
pub fn eval_forward_ref(
    s: &BatchNormShape,
    x: &[f64],
    gamma: &[f64],
    beta: &[f64],
    rmean: &[f64],
    rvar: &[f64],
) -> Vec<f64> {
    (0..s.len())
        .map(|i| {
            let c = (i / s.l) % s.c;
            gamma[c] * (x[i] - rmean[c]) / (rvar[c] + s.eps as f64).sqrt() + beta[c]
        })
        .collect()
}

/// CPU reference of the training backward: (dx, dgamma, dbeta).
pub fn backward_ref(
    s: &BatchNormShape,
    x: &[f64],
    gamma: &[f64],
    dy: &[f64],
) -> (Vec<f64>, Vec<f64>, Vec<f64>) {
    let (_, mean, inv) = train_forward_ref(s, x, gamma, &vec![0.0; s.c]);
    let m = (s.n * s.l) as f64;
    let xhat = |i: usize| (x[i] - mean[(i / s.l) % s.c]) * inv[(i / s.l) % s.c];
    let mut dgamma = vec![0.0; s.c];
    let mut dbeta = vec![0.0; s.c];
    for (i, &g) in dy.iter().enumerate().take(s.len()) {
        let c = (i / s.l) % s.c;
        dgamma[c] += g * xhat(i);
        dbeta[c] += g;
    }
    let dx = (0..s.len())
        .map(|i| {
            let c = (i / s.l) % s.c;
            gamma[c] * inv[c] * (dy[i] - dbeta[c] / m - xhat(i) * dgamma[c] / m)
        })
        .collect();
    (dx, dgamma, dbeta)
}
