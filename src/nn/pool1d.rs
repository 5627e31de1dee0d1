//! 1-D max pooling (PyTorch `MaxPool1d(k, stride)`, no padding, floor mode) over NCL,
//! forward saving the argmax, backward routing gradients through it
//! (shaders/pool1d.wgsl).

use bytemuck::{Pod, Zeroable};

use crate::gpu::{grid, Batch, Buf, GpuError, Kernel};

const SHADER: &str = "pool1d";
/// Workgroup size of both entry points (the shader's @workgroup_size).
const WG: usize = 256;

/// Max pool with window `k` and step `stride` over [n, c, l].
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Pool1dShape {
    pub n: usize,
    pub c: usize,
    pub l: usize,
    pub k: usize,
    pub stride: usize,
}

impl Pool1dShape {
    /// DOC-IDS's `MaxPool1d(2)`: window 2, step 2.
    pub fn k2(n: usize, c: usize, l: usize) -> Self {
        Pool1dShape {
            n,
            c,
            l,
            k: 2,
            stride: 2,
        }
    }
    /// Window 2, step 2: the shape with its own kernels (shaders/pool1d.wgsl, `*_k2`).
    pub fn is_k2(&self) -> bool {
        self.k == 2 && self.stride == 2
    }
    /// floor((l − k) / stride) + 1, as PyTorch's default (ceil_mode = false).
    pub fn l_out(&self) -> usize {
        (self.l - self.k) / self.stride + 1
    }
    pub fn in_len(&self) -> usize {
        self.n * self.c * self.l
    }
    pub fn out_len(&self) -> usize {
        self.n * self.c * self.l_out()
    }
    /// Length of the u32 argmax buffer the forward writes and the backward reads.
    pub fn arg_len(&self) -> usize {
        self.out_len()
    }
    pub fn check(&self) -> Result<(), GpuError> {
        if self.n == 0 || self.c == 0 || self.k == 0 || self.stride == 0 || self.l < self.k {
            return Err(GpuError::Launch(format!("max_pool1d: bad shape {self:?}")));
        }
        if self.in_len() > u32::MAX as usize {
            return Err(GpuError::Launch(
                "max_pool1d: input exceeds 2³² elements".into(),
            ));
        }
        Ok(())
    }
    fn params(&self, total: usize) -> PoolParams {
        PoolParams {
            rows: (self.n * self.c) as u32,
            l: self.l as u32,
            lo: self.l_out() as u32,
            k: self.k as u32,
            stride: self.stride as u32,
            total: total as u32,
            ..Default::default()
        }
    }
}

#[repr(C)]
#[derive(Clone, Copy, Debug, Default, Pod, Zeroable)]
struct PoolParams {
    rows: u32,
    l: u32,
    lo: u32,
    k: u32,
    stride: u32,
    total: u32,
    _p0: u32,
    _p1: u32,
}

/// y [n, c, l_out] = max over each window of x [n, c, l]; arg [n, c, l_out] = the
/// winner's position within its row (first maximum on ties).
pub fn max_forward(
    b: &mut Batch,
    s: &Pool1dShape,
    x: &Buf<f32>,
    y: &Buf<f32>,
    arg: &Buf<u32>,
) -> Result<(), GpuError> {
    s.check()?;
    x.check_len("max_pool1d x", s.in_len())?;
    y.check_len("max_pool1d y", s.out_len())?;
    arg.check_len("max_pool1d arg", s.arg_len())?;
    let total = s.out_len();
    let (entry, groups) = if s.is_k2() {
        ("max_forward_k2", grid((s.n * s.c) as u32))
    } else {
        ("max_forward", grid(total.div_ceil(WG) as u32))
    };
    b.dispatch(
        Kernel::new(SHADER, entry),
        &s.params(total),
        &[x.raw(), y.raw(), arg.raw()],
        groups,
    )
}

/// dx [n, c, l] (overwritten) = dy routed to the saved argmax positions; positions that
/// won no window (including a tail the windows do not cover) get 0.
pub fn max_backward(
    b: &mut Batch,
    s: &Pool1dShape,
    dy: &Buf<f32>,
    arg: &Buf<u32>,
    dx: &Buf<f32>,
) -> Result<(), GpuError> {
    s.check()?;
    dy.check_len("max_pool1d dy", s.out_len())?;
    arg.check_len("max_pool1d arg", s.arg_len())?;
    dx.check_len("max_pool1d dx", s.in_len())?;
    let total = s.in_len();
    let (entry, groups) = if s.is_k2() {
        ("max_backward_k2", grid((s.n * s.c) as u32))
    } else {
        ("max_backward", grid(total.div_ceil(WG) as u32))
    };
    b.dispatch(
        Kernel::new(SHADER, entry),
        &s.params(total),
        &[dy.raw(), dx.raw(), arg.raw()],
        groups,
    )
}

/// CPU reference: (y, argmax within the row).
pub fn max_forward_ref(s: &Pool1dShape, x: &[f64]) -> (Vec<f64>, Vec<u32>) {
    let lo = s.l_out();
    let mut y = Vec::with_capacity(s.out_len());
    let mut arg = Vec::with_capacity(s.out_len());
    for row in 0..s.n * s.c {
        for j in 0..lo {
            let mut at = j * s.stride;
            for i in j * s.stride..j * s.stride + s.k {
                if x[row * s.l + i] > x[row * s.l + at] {
                    at = i;
                }
            }
            y.push(x[row * s.l + at]);
            arg.push(at as u32);
        }
    }
    (y, arg)
}

/// CPU reference: dx from dy and the saved argmax (scatter-add).
pub fn max_backward_ref(s: &Pool1dShape, dy: &[f64], arg: &[u32]) -> Vec<f64> {
    let lo = s.l_out();
    let mut dx = vec![0.0; s.in_len()];
    for row in 0..s.n * s.c {
        for j in 0..lo {
            dx[row * s.l + arg[row * lo + j] as usize] += dy[row * lo + j];
        }
    }
    dx
}
