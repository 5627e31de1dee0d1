//! Elementwise maps: ReLU and sigmoid forward/backward (backward from the saved output),
//! `axpby` (scale, copy, accumulate) and `fill`.
//!
//! Every slot of the shader is writable, so the same buffer may be passed as input and
//! output (in-place ReLU, `dx = dy` in place).

use bytemuck::{Pod, Zeroable};

use crate::gpu::{grid, Batch, GpuError, Kernel};

/// Invocations per workgroup of every entry point in elementwise.wgsl.
const WG: usize = 256;

#[repr(C)]
#[derive(Clone, Copy, Debug, Default, Pod, Zeroable)]
struct Params {
    n: u32,
    alpha: f32,
    beta: f32,
    _pad: u32,
}

fn launch(
    b: &mut Batch,
    entry: &'static str,
    n: usize,
    alpha: f32,
    beta: f32,
    bufs: [&wgpu::Buffer; 3],
) -> Result<(), GpuError> {
    if n == 0 {
        return Ok(());
    }
    let p = Params {
        n: n as u32,
        alpha,
        beta,
        _pad: 0,
    };
    b.dispatch(
        Kernel::new("elementwise", entry),
        &p,
        &bufs,
        grid(n.div_ceil(WG) as u32),
    )
}

/// y = max(x, 0) over `n` elements; `x` and `y` may be the same buffer.
pub fn relu_forward(
    b: &mut Batch,
    n: usize,
    x: &wgpu::Buffer,
    y: &wgpu::Buffer,
) -> Result<(), GpuError> {
    launch(b, "relu_fwd", n, 0.0, 0.0, [x, y, y])
}

/// dx = dy·[y > 0] from the saved output `y`; `dx` may be `dy`.
pub fn relu_backward(
    b: &mut Batch,
    n: usize,
    y: &wgpu::Buffer,
    dy: &wgpu::Buffer,
    dx: &wgpu::Buffer,
) -> Result<(), GpuError> {
    launch(b, "relu_bwd", n, 0.0, 0.0, [y, dy, dx])
}

/// y = σ(x); `x` and `y` may be the same buffer.
pub fn sigmoid_forward(
    b: &mut Batch,
    n: usize,
    x: &wgpu::Buffer,
    y: &wgpu::Buffer,
) -> Result<(), GpuError> {
    launch(b, "sigmoid_fwd", n, 0.0, 0.0, [x, y, y])
}

/// dx = dy·y·(1 − y) from the saved output `y`; `dx` may be `dy`.
pub fn sigmoid_backward(
    b: &mut Batch,
    n: usize,
    y: &wgpu::Buffer,
    dy: &wgpu::Buffer,
    dx: &wgpu::Buffer,
) -> Result<(), GpuError> {
    launch(b, "sigmoid_bwd", n, 0.0, 0.0, [y, dy, dx])
}

/// y = alpha·x + beta·y. beta = 0 overwrites without reading y (a copy when alpha = 1);
/// `x` = `y` scales in place.
pub fn axpby(
    b: &mut Batch,
    n: usize,
    alpha: f32,
    x: &wgpu::Buffer,
    beta: f32,
    y: &wgpu::Buffer,
) -> Result<(), GpuError> {
    launch(b, "axpby", n, alpha, beta, [x, y, y])
}

/// dst = src.
pub fn copy(
    b: &mut Batch,
    n: usize,
    src: &wgpu::Buffer,
    dst: &wgpu::Buffer,
) -> Result<(), GpuError> {
    axpby(b, n, 1.0, src, 0.0, dst)
}

/// buf[..n] = value (gradient zeroing inside a batch, without a separate command encoder).
pub fn fill(b: &mut Batch, n: usize, value: f32, buf: &wgpu::Buffer) -> Result<(), GpuError> {
    launch(b, "fill", n, value, 0.0, [buf, buf, buf])
}

// ---- CPU references (f64) ----

pub fn relu_ref(x: &[f64]) -> Vec<f64> {
    x.iter().map(|&v| v.max(0.0)).collect()
}

pub fn relu_backward_ref(y: &[f64], dy: &[f64]) -> Vec<f64> {
    y.iter()
        .zip(dy)
        .map(|(&y, &d)| if y > 0.0 { d } else { 0.0 })
        .collect()
}

pub fn sigmoid_scalar(x: f64) -> f64 {
    if x >= 0.0 {
        1.0 / (1.0 + (-x).exp())
    } else {
        let e = x.exp();
        e / (1.0 + e)
    }
}

pub fn sigmoid_ref(x: &[f64]) -> Vec<f64> {
    x.iter().map(|&v| sigmoid_scalar(v)).collect()
}

pub fn sigmoid_backward_ref(y: &[f64], dy: &[f64]) -> Vec<f64> {
    y.iter().zip(dy).map(|(&y, &d)| d * y * (1.0 - y)).collect()
}

pub fn axpby_ref(alpha: f64, x: &[f64], beta: f64, y: &[f64]) -> Vec<f64> {
    x.iter()
        .zip(y)
        .map(|(&x, &y)| alpha * x + beta * y)
        .collect()
}
