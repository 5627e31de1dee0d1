//! Dense (fully connected) layers: y = x·Wᵀ + b, W stored [out, in] as PyTorch does.
//!
//! The products go through the shared matmul. When a product has few output tiles but a
//! long reduction (8192→32: one 64×64 tile, k = 8192), a GPU would run it on one
//! workgroup; with a caller-provided scratch buffer the reduction is split into chunks
//! (split-K, the matmul's batch dimension) and a small epilogue kernel sums the partials,
//! adds the bias and applies the activation in the same pass.

use bytemuck::{Pod, Zeroable};

use crate::gpu::{grid, Batch, GpuError, Kernel};
use crate::nn::matmul::{matmul, MatmulParams, MatmulVariant, Trans};
use crate::nn::Act;

#[derive(Clone, Copy, Debug)]
pub struct DenseShape {
    /// Batch rows.
    pub n: usize,
    pub d_in: usize,
    pub d_out: usize,
    /// Matmul kernel shape for this adapter (`MatmulVariant::for_gpu`).
    pub mm: MatmulVariant,
}

/// Split-K only pays when the output has few tiles and each chunk keeps a long reduction.
const MIN_TILES: usize = 32;
const MIN_CHUNK: usize = 512;

/// How many k-chunks to split an m×n×k product into (1 = no split).
fn splits_for(m: usize, n: usize, k: usize) -> usize {
    let tiles = m.div_ceil(64) * n.div_ceil(64);
    if tiles >= MIN_TILES || k < 2 * MIN_CHUNK {
        return 1;
    }
    let s = (2 * MIN_TILES).div_ceil(tiles).min(k / MIN_CHUNK).max(1);
    // Equal chunks of kc, the last one shorter: recount so no chunk is empty.
    k.div_ceil(k.div_ceil(s))
}

impl DenseShape {
    pub fn new(n: usize, d_in: usize, d_out: usize, mm: MatmulVariant) -> Self {
        DenseShape { n, d_in, d_out, mm }
    }
    pub fn in_len(&self) -> usize {
        self.n * self.d_in
    }
    pub fn out_len(&self) -> usize {
        self.n * self.d_out
    }
    pub fn w_len(&self) -> usize {
        self.d_out * self.d_in
    }
    pub fn flops_forward(&self) -> f64 {
        2.0 * (self.n * self.d_in * self.d_out) as f64
    }
    /// Split-K factor of the forward product (k = d_in).
    pub fn forward_splits(&self) -> usize {
        splits_for(self.n, self.d_out, self.d_in)
    }
    /// Split-K factor of the input-gradient product (k = d_out).
    pub fn backward_splits(&self) -> usize {
        splits_for(self.n, self.d_in, self.d_out)
    }
    /// f32 elements of the optional scratch buffer that enables split-K (0: never used).
    pub fn scratch_len(&self) -> usize {
        let f = self.forward_splits();
        let b = self.backward_splits();
        let f = if f > 1 { f * self.out_len() } else { 0 };
        let b = if b > 1 { b * self.in_len() } else { 0 };
        f.max(b)
    }
}

#[repr(C)]
#[derive(Clone, Copy, Debug, Default, Pod, Zeroable)]
struct EpiParams {
    rows: u32,
    cols: u32,
    splits: u32,
    flags: u32,
}
const HAS_BIAS: u32 = 1;
const RELU: u32 = 2;
const ACCUMULATE: u32 = 4;

/// dst[m×n] (+)= A·B (+ bias, act) where `p` describes the whole product with k-strides
/// `a_k`/`b_k` (elements between consecutive k in A and B).
#[allow(clippy::too_many_arguments)]
fn product(
    b: &mut Batch,
    mm: MatmulVariant,
    p: MatmulParams,
    (a_k, b_k): (usize, usize),
    splits: usize,
    scratch: Option<&wgpu::Buffer>,
    (a, bm, dst): (&wgpu::Buffer, &wgpu::Buffer, &wgpu::Buffer),
    bias: Option<&wgpu::Buffer>,
    act: Act,
    accumulate: bool,
) -> Result<(), GpuError> {
    if act == Act::Sigmoid {
        return Err(GpuError::Launch(
            "dense: no sigmoid is fused into the epilogue (ReLU or none)".into(),
        ));
    }
    let (m, n, k) = (p.m as usize, p.n as usize, p.k as usize);
    if m == 0 || n == 0 {
        return Ok(());
    }
    let mut flags = if bias.is_some() { HAS_BIAS } else { 0 };
    if act == Act::Relu {
        flags |= RELU;
    }
    let epi = |b: &mut Batch, src: &wgpu::Buffer, splits: usize, flags: u32| {
        let e = EpiParams {
            rows: m as u32,
            cols: n as u32,
            splits: splits as u32,
            flags,
        };
        b.dispatch(
            Kernel::new("dense", "epilogue"),
            &e,
            &[src, bias.unwrap_or(dst), dst],
            grid((m * n).div_ceil(256) as u32),
        )
    };
    match scratch {
        Some(scr) if splits > 1 && k > 0 => {
            let kc = k.div_ceil(splits);
            let last = k - (splits - 1) * kc;
            let mut q = p;
            q.k = kc as u32;
            q.a_bs = (kc * a_k) as u32;
            q.b_bs = (kc * b_k) as u32;
            q.c_bs = (m * n) as u32;
            q.c_rs = n as u32;
            q.beta = 0.0;
            q.batch = if last == kc { splits } else { splits - 1 } as u32;
            matmul(b, mm, &q, a, bm, scr)?;
            if last != kc {
                let mut r = q;
                r.batch = 1;
                r.k = last as u32;
                r.a_off = p.a_off + ((splits - 1) * kc * a_k) as u32;
                r.b_off = p.b_off + ((splits - 1) * kc * b_k) as u32;
                r.c_off = ((splits - 1) * m * n) as u32;
                matmul(b, mm, &r, a, bm, scr)?;
            }
            if accumulate {
                flags |= ACCUMULATE;
            }
            epi(b, scr, splits, flags)
        }
        _ => {
            let q = p.with_beta(if accumulate { 1.0 } else { 0.0 });
            if k == 0 && !accumulate {
                // An empty reduction still defines the output (zero, then the bias).
                crate::nn::elementwise::fill(b, m * n, 0.0, dst)?;
            } else {
                matmul(b, mm, &q, a, bm, dst)?;
            }
            if flags != 0 {
                epi(b, dst, 0, flags)?;
            }
            Ok(())
        }
    }
}

/// y[n, out] = act(x[n, in]·Wᵀ + b). `bias` None: no bias. `scratch` (≥ `scratch_len()`
/// elements, contents irrelevant) enables split-K for long reductions; None is always correct.
#[allow(clippy::too_many_arguments)]
pub fn forward(
    b: &mut Batch,
    s: &DenseShape,
    x: &wgpu::Buffer,
    w: &wgpu::Buffer,
    bias: Option<&wgpu::Buffer>,
    act: Act,
    y: &wgpu::Buffer,
    scratch: Option<&wgpu::Buffer>,
) -> Result<(), GpuError> {
    let p = MatmulParams::dense(s.n, s.d_out, s.d_in, Trans::B);
    product(
        b,
        s.mm,
        p,
        (1, 1),
        s.forward_splits(),
        scratch,
        (x, w, y),
        bias,
        act,
        false,
    )
}

/// Gradients of y = x·Wᵀ + b given dy (already through the activation):
/// dx = dy·W (skipped when None; `dx_accumulate` adds into it),
/// dW = dyᵀ·x and db = Σ_n dy (`accumulate`: add into the existing gradients, else overwrite).
#[allow(clippy::too_many_arguments)]
pub fn backward(
    b: &mut Batch,
    s: &DenseShape,
    x: &wgpu::Buffer,
    w: &wgpu::Buffer,
    dy: &wgpu::Buffer,
    dx: Option<&wgpu::Buffer>,
    dx_accumulate: bool,
    dw: &wgpu::Buffer,
    db: Option<&wgpu::Buffer>,
    accumulate: bool,
    scratch: Option<&wgpu::Buffer>,
) -> Result<(), GpuError> {
    if let Some(dx) = dx {
        // dx[n, in] = dy[n, out]·W[out, in]
        let p = MatmulParams::dense(s.n, s.d_in, s.d_out, Trans::None);
        let ks = (1, s.d_in);
        product(
            b,
            s.mm,
            p,
            ks,
            s.backward_splits(),
            scratch,
            (dy, w, dx),
            None,
            Act::None,
            dx_accumulate,
        )?;
    }
    // dW[out, in] = dyᵀ·x, a reduction over the batch (short at training batch sizes).
    let p = MatmulParams::dense(s.d_out, s.d_in, s.n, Trans::A);
    product(
        b,
        s.mm,
        p,
        (s.d_out, s.d_in),
        1,
        None,
        (dy, x, dw),
        None,
        Act::None,
        accumulate,
    )?;
    if let Some(db) = db {
        bias_grad(b, s.n, s.d_out, dy, db, accumulate)?;
    }
    Ok(())
}

/// db[cols] (+)= Σ_rows dy[rows, cols]: a column sum, also usable for conv biases laid out (N·L, C).
pub fn bias_grad(
    b: &mut Batch,
    rows: usize,
    cols: usize,
    dy: &wgpu::Buffer,
    db: &wgpu::Buffer,
    accumulate: bool,
) -> Result<(), GpuError> {
    if cols == 0 {
        return Ok(());
    }
    let e = EpiParams {
        rows: rows as u32,
        cols: cols as u32,
        splits: 0,
        flags: if accumulate { ACCUMULATE } else { 0 },
    };
    b.dispatch(
        Kernel::new("dense", "bias_grad"),
        &e,
        &[dy, db, db],
        grid(cols.div_ceil(64) as u32),
    )
}

// ---- CPU references (f64) ----

/// y = act(x·Wᵀ + b) for x [n, d_in], W [d_out, d_in].
pub fn forward_ref(
    n: usize,
    d_in: usize,
    d_out: usize,
    x: &[f64],
    w: &[f64],
    bias: Option<&[f64]>,
    act: Act,
) -> Vec<f64> {
    debug_assert_ne!(act, Act::Sigmoid, "dense fuses no sigmoid");
    let mut y = vec![0.0; n * d_out];
    for i in 0..n {
        for o in 0..d_out {
            let mut s = bias.map_or(0.0, |b| b[o]);
            for k in 0..d_in {
                s += x[i * d_in + k] * w[o * d_in + k];
            }
            y[i * d_out + o] = if act == Act::Relu { s.max(0.0) } else { s };
        }
    }
    y
}

/// (dx, dW, db) for dy [n, d_out] (the gradient after the activation).
pub fn backward_ref(
    n: usize,
    d_in: usize,
    d_out: usize,
    x: &[f64],
    w: &[f64],
    dy: &[f64],
) -> (Vec<f64>, Vec<f64>, Vec<f64>) {
    let mut dx = vec![0.0; n * d_in];
    let mut dw = vec![0.0; d_out * d_in];
    let mut db = vec![0.0; d_out];
    for i in 0..n {
        for o in 0..d_out {
            let g = dy[i * d_out + o];
            db[o] += g;
            for k in 0..d_in {
                dx[i * d_in + k] += g * w[o * d_in + k];
                dw[o * d_in + k] += g * x[i * d_in + k];
            }
        }
    }
    (dx, dw, db)
}
