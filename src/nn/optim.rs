//! Adam and SGD steps over flat parameter buffers (PyTorch's update rules), and gradient
//! zeroing. A model keeps its parameters, gradients and optimizer state in buffers of
//! the same length; one dispatch updates all of them.

use bytemuck::{Pod, Zeroable};

use crate::gpu::{grid, Batch, GpuError, Kernel};

const WG: usize = 256;

#[repr(C)]
#[derive(Clone, Copy, Debug, Default, Pod, Zeroable)]
struct Params {
    n: u32,
    flags: u32,
    lr: f32,
    beta1: f32,
    beta2: f32,
    eps: f32,
    weight_decay: f32,
    step_size: f32,
    bc2_sqrt: f32,
    dampening: f32,
    _pad0: u32,
    _pad1: u32,
}

/// torch.optim.Adam hyper-parameters (L2 weight decay, no AMSGrad).
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct Adam {
    pub lr: f64,
    pub beta1: f64,
    pub beta2: f64,
    pub eps: f64,
    pub weight_decay: f64,
}

impl Default for Adam {
    /// PyTorch's defaults, which docs/MODELS.md uses: lr 1e-3, β (0.9, 0.999), ε 1e-8.
    fn default() -> Self {
        Adam {
            lr: 1e-3,
            beta1: 0.9,
            beta2: 0.999,
            eps: 1e-8,
            weight_decay: 0.0,
        }
    }
}

/// torch.optim.SGD hyper-parameters.
#[derive(Clone, Copy, Debug, PartialEq, Default)]
pub struct Sgd {
    pub lr: f64,
    pub momentum: f64,
    pub dampening: f64,
    pub weight_decay: f64,
    pub nesterov: bool,
}

/// One Adam step; `t` is the 1-based step count (bias correction). `m`, `v` start zeroed.
#[allow(clippy::too_many_arguments)]
pub fn adam_step(
    b: &mut Batch,
    n: usize,
    cfg: &Adam,
    t: u64,
    param: &wgpu::Buffer,
    grad: &wgpu::Buffer,
    m: &wgpu::Buffer,
    v: &wgpu::Buffer,
) -> Result<(), GpuError> {
    if n == 0 {
        return Ok(());
    }
    let t = t.max(1) as i32;
    let p = Params {
        n: n as u32,
        lr: cfg.lr as f32,
        beta1: cfg.beta1 as f32,
        beta2: cfg.beta2 as f32,
        eps: cfg.eps as f32,
        weight_decay: cfg.weight_decay as f32,
        step_size: (cfg.lr / (1.0 - cfg.beta1.powi(t))) as f32,
        bc2_sqrt: (1.0 - cfg.beta2.powi(t)).sqrt() as f32,
        ..Default::default()
    };
    let (kernel, per) = if n.is_multiple_of(4) {
        (Kernel::new("optim4", "adam4"), 4)
    } else {
        (Kernel::new("optim", "adam"), 1)
    };
    b.dispatch(
        kernel,
        &p,
        &[param, grad, m, v],
        grid(n.div_ceil(per * WG) as u32),
    )
}

/// One SGD step. `momentum_buf` (same length, any contents) is needed when
/// `cfg.momentum != 0`; `first` marks the first step, where PyTorch sets the buffer to the gradient.
#[allow(clippy::too_many_arguments)]
pub fn sgd_step(
    b: &mut Batch,
    n: usize,
    cfg: &Sgd,
    first: bool,
    param: &wgpu::Buffer,
    grad: &wgpu::Buffer,
    momentum_buf: Option<&wgpu::Buffer>,
) -> Result<(), GpuError> {
    if n == 0 {
        return Ok(());
    }
    let mut flags = 0;
    let mbuf = match momentum_buf {
        Some(m) if cfg.momentum != 0.0 => {
            flags |= 1 | if first { 2 } else { 0 } | if cfg.nesterov { 4 } else { 0 };
            m
        }
        None if cfg.momentum != 0.0 => {
            return Err(GpuError::Launch(
                "sgd_step: momentum needs a momentum buffer".into(),
            ))
        }
        _ => param,
    };
    let p = Params {
        n: n as u32,
        flags,
        lr: cfg.lr as f32,
        beta1: cfg.momentum as f32,
        weight_decay: cfg.weight_decay as f32,
        dampening: cfg.dampening as f32,
        ..Default::default()
    };
    b.dispatch(
        Kernel::new("optim", "sgd"),
        &p,
        &[param, grad, mbuf, mbuf],
        grid(n.div_ceil(WG) as u32),
    )
}

/// grad[..n] = 0 inside a batch.
pub fn zero(b: &mut Batch, n: usize, grad: &wgpu::Buffer) -> Result<(), GpuError> {
    crate::nn::elementwise::fill(b, n, 0.0, grad)
}

// ---- CPU references (f64), the formulas of torch/optim/adam.py and sgd.py ----

pub fn adam_ref(cfg: &Adam, t: u64, p: &mut [f64], g: &[f64], m: &mut [f64], v: &mut [f64]) {
    let t = t.max(1) as i32;
    let step_size = cfg.lr / (1.0 - cfg.beta1.powi(t));
    let bc2_sqrt = (1.0 - cfg.beta2.powi(t)).sqrt();
    for i in 0..p.len() {
        let g = g[i] + cfg.weight_decay * p[i];
        m[i] = cfg.beta1 * m[i] + (1.0 - cfg.beta1) * g;
        v[i] = cfg.beta2 * v[i] + (1.0 - cfg.beta2) * g * g;
        p[i] -= step_size * m[i] / (v[i].sqrt() / bc2_sqrt + cfg.eps);
    }
}

pub fn sgd_ref(cfg: &Sgd, first: bool, p: &mut [f64], g: &[f64], buf: &mut [f64]) {
    for i in 0..p.len() {
        let mut d = g[i] + cfg.weight_decay * p[i];
        if cfg.momentum != 0.0 {
            buf[i] = if first {
                d
            } else {
                cfg.momentum * buf[i] + (1.0 - cfg.dampening) * d
            };
            d = if cfg.nesterov {
                d + cfg.momentum * buf[i]
            } else {
                buf[i]
            };
        }
        p[i] -= cfg.lr * d;
    }
}
