//! 1-D convolution (PyTorch `Conv1d`, weight [C_out, C_in, k]) and, in [`transpose`],
//! transposed convolution (`ConvTranspose1d`, weight [C_in, C_out, k]), forward and
//! backward, as im2col / col2im kernels (shaders/conv1d.wgsl) around the shared matmul.
//!
//! Why im2col rather than a direct kernel: the three products a convolution needs
//! (W·col, Wᵀ·dy, dy·colᵀ) then run on the tuned, adapter-chosen matmul, and the
//! extra memory traffic is small at DOC-IDS sizes (the col buffer of its second conv
//! is 8 MB at batch 64). The weight gradient is computed per sample by one batched
//! matmul (parallel over the batch, which keeps a GPU busy where a single
//! [C_out × C_in·k] product with a 10⁴-long reduction would not) and the per-sample
//! partials are then summed.
//!
//! A conv1d's products run along the output length, which is rarely a multiple of 4
//! (325 and 167 in DOC-IDS), and the matmul's vec4 and subgroup forms need row widths
//! and strides that are. So the col buffer and the products' output-side rows
//! (`ConvScratch::padded`) are laid out `l_stride()` wide, zero beyond `l_out`: the
//! zeros add nothing to the weight gradient's reduction along the length, and the
//! padding columns of the other two products are never read back. The tensors a caller
//! sees keep the plain [n, c, l_out] layout.
//!
//! Layout NCL, row-major. An optional activation (ReLU or sigmoid) is fused into the
//! forward output; [`act_backward`] turns the gradient wrt the activated output into
//! the gradient wrt the pre-activation (`dz`), which the backward functions take.

use bytemuck::{Pod, Zeroable};

use crate::gpu::{grid, Batch, Buf, Gpu, GpuError, Kernel};
use crate::nn::matmul::{matmul, MatmulParams, MatmulVariant};
use crate::nn::Act;

const SHADER: &str = "conv1d";
/// Workgroup size of the element-wise entry points (the shader's @workgroup_size).
const WG: usize = 256;

/// `Conv1d(c_in, c_out, k, stride, padding=pad)` on an [n, c_in, l] input, then `act`.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Conv1dShape {
    pub n: usize,
    pub c_in: usize,
    pub l: usize,
    pub c_out: usize,
    pub k: usize,
    pub stride: usize,
    pub pad: usize,
    pub act: Act,
}

impl Conv1dShape {
    pub fn l_out(&self) -> usize {
        (self.l + 2 * self.pad - self.k) / self.stride + 1
    }
    pub fn in_len(&self) -> usize {
        self.n * self.c_in * self.l
    }
    pub fn out_len(&self) -> usize {
        self.n * self.c_out * self.l_out()
    }
    pub fn weight_len(&self) -> usize {
        self.c_out * self.c_in * self.k
    }
    pub fn bias_len(&self) -> usize {
        self.c_out
    }
    /// Row stride of the col buffer and of [`ConvScratch::padded`]: `l_out` rounded up
    /// to a multiple of 4 (the vec4 matmul forms' alignment).
    pub fn l_stride(&self) -> usize {
        self.l_out().next_multiple_of(4)
    }
    /// Elements of [`ConvScratch::col`] this shape needs: [n, c_in·k, l_stride].
    pub fn col_len(&self) -> usize {
        self.n * self.c_in * self.k * self.l_stride()
    }
    /// Elements of [`ConvScratch::padded`]: [n, c_out, l_stride].
    pub fn padded_len(&self) -> usize {
        self.n * self.c_out * self.l_stride()
    }
    /// Elements of [`ConvScratch::part`]: per-sample weight gradients (none at batch 1,
    /// where the matmul writes the gradient directly).
    pub fn part_len(&self) -> usize {
        if self.n > 1 {
            self.n * self.weight_len()
        } else {
            0
        }
    }
    /// Multiply-adds of the forward pass (the backward does twice this).
    pub fn flops(&self) -> f64 {
        2.0 * self.out_len() as f64 * (self.c_in * self.k) as f64
    }
    pub fn check(&self) -> Result<(), GpuError> {
        check_geometry("conv1d", self.n, self.c_in, self.c_out, self.k, self.stride)?;
        if self.l + 2 * self.pad < self.k {
            return Err(bad(format!(
                "conv1d: kernel {} longer than padded input {}",
                self.k,
                self.l + 2 * self.pad
            )));
        }
        check_u32(
            "conv1d",
            &[
                self.in_len(),
                self.out_len(),
                self.col_len(),
                self.part_len(),
                self.padded_len(),
            ],
        )
    }
}

/// Scratch for im2col columns, per-sample weight-gradient partials and a conv1d's
/// output-sized rows at the padded stride (its matmul output before the bias, or its
/// output gradient as the matmuls read it). One scratch can serve several layers
/// recorded in sequence: size it with the largest lengths.
pub struct ConvScratch {
    pub col: Buf<f32>,
    pub part: Buf<f32>,
    pub padded: Buf<f32>,
}

impl ConvScratch {
    pub fn new(
        gpu: &Gpu,
        col_len: usize,
        part_len: usize,
        padded_len: usize,
    ) -> Result<Self, GpuError> {
        Ok(ConvScratch {
            col: gpu.zeros(col_len)?,
            part: gpu.zeros(part_len)?,
            padded: gpu.zeros(padded_len)?,
        })
    }
    fn need(&self, col: usize, part: usize, padded: usize) -> Result<(), GpuError> {
        if self.col.len() < col || self.part.len() < part || self.padded.len() < padded {
            return Err(bad(format!(
                "conv scratch too small: col {} < {col}, part {} < {part} or padded {} < {padded}",
                self.col.len(),
                self.part.len(),
                self.padded.len()
            )));
        }
        Ok(())
    }
}

fn bad(msg: String) -> GpuError {
    GpuError::Launch(msg)
}

fn check_geometry(
    what: &str,
    n: usize,
    c_in: usize,
    c_out: usize,
    k: usize,
    stride: usize,
) -> Result<(), GpuError> {
    if n == 0 || c_in == 0 || c_out == 0 || k == 0 || stride == 0 {
        return Err(bad(format!(
            "{what}: n, channels, kernel and stride must be ≥ 1"
        )));
    }
    Ok(())
}

fn check_u32(what: &str, lens: &[usize]) -> Result<(), GpuError> {
    if lens.iter().any(|&x| x > u32::MAX as usize) {
        return Err(bad(format!("{what}: a buffer exceeds 2³² elements")));
    }
    Ok(())
}

#[repr(C)]
#[derive(Clone, Copy, Debug, Default, Pod, Zeroable)]
struct ColParams {
    n: u32,
    c: u32,
    l: u32,
    lc: u32,
    k: u32,
    stride: u32,
    pad: u32,
    act: u32,
    total: u32,
    has_bias: u32,
    accumulate: u32,
    rows: u32,
    lcs: u32,
    src_rs: u32,
    dst_rs: u32,
    /// Keeps the size a multiple of 16 bytes, as a uniform block's layout rounds it.
    _pad: u32,
}

/// The image ↔ col correspondence: image [n, c, l], col [n, c·k, lc] (rows `lcs` ≥ lc
/// apart, zero in between) with col[.., ch·k + kk, j] = image[.., ch, j·stride − pad + kk].
#[derive(Clone, Copy)]
struct Geom {
    n: usize,
    c: usize,
    l: usize,
    lc: usize,
    lcs: usize,
    k: usize,
    stride: usize,
    pad: usize,
}

impl Geom {
    fn params(&self, total: usize) -> ColParams {
        ColParams {
            n: self.n as u32,
            c: self.c as u32,
            l: self.l as u32,
            lc: self.lc as u32,
            lcs: self.lcs as u32,
            k: self.k as u32,
            stride: self.stride as u32,
            pad: self.pad as u32,
            total: total as u32,
            ..Default::default()
        }
    }
}

fn elementwise_groups(total: usize) -> [u32; 3] {
    grid(total.div_ceil(WG) as u32)
}

fn im2col(b: &mut Batch, g: Geom, image: &Buf<f32>, col: &Buf<f32>) -> Result<(), GpuError> {
    let rows = g.n * g.c * g.k;
    let p = ColParams {
        rows: rows as u32,
        ..g.params(0)
    };
    // `aux` is unused here; bind the (read-only) source there too.
    b.run(
        Kernel::new(SHADER, "im2col"),
        &p,
        &[image, image, col],
        grid(rows as u32),
    )
}

fn col2im(
    b: &mut Batch,
    g: Geom,
    col: &Buf<f32>,
    bias: Option<&Buf<f32>>,
    act: Act,
    image: &Buf<f32>,
) -> Result<(), GpuError> {
    let total = g.n * g.c * g.l;
    let mut p = g.params(total);
    p.act = act.code();
    p.has_bias = bias.is_some() as u32;
    b.run(
        Kernel::new(SHADER, "col2im"),
        &p,
        &[col, bias.unwrap_or(col), image],
        elementwise_groups(total),
    )
}

/// `rows` rows of `l` values from row stride `src_rs` to `dst_rs` (zero beyond `l`),
/// with the bias (row r is channel r % c) and activation applied to the values.
fn bias_act(
    b: &mut Batch,
    (rows, c, l): (usize, usize, usize),
    (src, src_rs): (&Buf<f32>, usize),
    (dst, dst_rs): (&Buf<f32>, usize),
    bias: Option<&Buf<f32>>,
    act: Act,
) -> Result<(), GpuError> {
    let p = ColParams {
        c: c as u32,
        l: l as u32,
        act: act.code(),
        has_bias: bias.is_some() as u32,
        rows: rows as u32,
        src_rs: src_rs as u32,
        dst_rs: dst_rs as u32,
        ..Default::default()
    };
    b.run(
        Kernel::new(SHADER, "bias_act"),
        &p,
        &[src, bias.unwrap_or(src), dst],
        grid(rows as u32),
    )
}

/// db[c] (+)= Σ over n, l of dz[n, c, l]: one workgroup per channel.
fn channel_sum(
    b: &mut Batch,
    n: usize,
    c: usize,
    l: usize,
    dz: &Buf<f32>,
    db: &Buf<f32>,
    accumulate: bool,
) -> Result<(), GpuError> {
    let p = ColParams {
        n: n as u32,
        c: c as u32,
        l: l as u32,
        accumulate: accumulate as u32,
        ..Default::default()
    };
    b.run(
        Kernel::new(SHADER, "channel_sum"),
        &p,
        &[dz, dz, db],
        grid(c as u32),
    )
}

/// dw (+)= Σ_r part[r·total ..][..total].
fn batch_sum(
    b: &mut Batch,
    rows: usize,
    total: usize,
    part: &Buf<f32>,
    dw: &Buf<f32>,
    accumulate: bool,
) -> Result<(), GpuError> {
    let p = ColParams {
        rows: rows as u32,
        total: total as u32,
        accumulate: accumulate as u32,
        ..Default::default()
    };
    b.run(
        Kernel::new(SHADER, "batch_sum"),
        &p,
        &[part, part, dw],
        elementwise_groups(total),
    )
}

/// dz = dy · act'(y) over `len` elements, y the activated output the forward wrote.
/// Unneeded for `Act::None` (dz = dy there; it then copies).
pub fn act_backward(
    b: &mut Batch,
    act: Act,
    len: usize,
    y: &Buf<f32>,
    dy: &Buf<f32>,
    dz: &Buf<f32>,
) -> Result<(), GpuError> {
    for (what, buf) in [
        ("act_backward y", y),
        ("act_backward dy", dy),
        ("act_backward dz", dz),
    ] {
        buf.check_len(what, len)?;
    }
    check_u32("act_backward", &[len])?;
    let p = ColParams {
        act: act.code(),
        total: len as u32,
        ..Default::default()
    };
    b.run(
        Kernel::new(SHADER, "act_backward"),
        &p,
        &[dy, y, dz],
        elementwise_groups(len),
    )
}

/// Per-sample product C[n] = A[n]·B[n] where each operand is described by
/// (row stride, column stride, batch stride), batch stride 0 = shared by all samples.
#[allow(clippy::too_many_arguments)]
fn bmm(
    b: &mut Batch,
    mm: MatmulVariant,
    (m, n, k, batch): (usize, usize, usize, usize),
    (a, a_rs, a_cs, a_bs): (&Buf<f32>, usize, usize, usize),
    (bb, b_rs, b_cs, b_bs): (&Buf<f32>, usize, usize, usize),
    (c, c_rs, c_bs): (&Buf<f32>, usize, usize),
    beta: f32,
) -> Result<(), GpuError> {
    let u = |x: usize| x as u32;
    let p = MatmulParams {
        m: u(m),
        n: u(n),
        k: u(k),
        batch: u(batch),
        a_rs: u(a_rs),
        a_cs: u(a_cs),
        b_rs: u(b_rs),
        b_cs: u(b_cs),
        a_bs: u(a_bs),
        b_bs: u(b_bs),
        c_bs: u(c_bs),
        c_rs: u(c_rs),
        beta,
        ..Default::default()
    };
    matmul(b, mm, &p, a.raw(), bb.raw(), c.raw())
}

impl Conv1dShape {
    fn geom(&self) -> Geom {
        Geom {
            n: self.n,
            c: self.c_in,
            l: self.l,
            lc: self.l_out(),
            lcs: self.l_stride(),
            k: self.k,
            stride: self.stride,
            pad: self.pad,
        }
    }
}

/// y = act(conv1d(x, w) + bias). x [n, c_in, l], w [c_out, c_in, k], bias [c_out],
/// y [n, c_out, l_out]. Uses `scratch.col` (≥ `col_len()`) and `scratch.padded`
/// (≥ `padded_len()`).
#[allow(clippy::too_many_arguments)]
pub fn forward(
    b: &mut Batch,
    s: &Conv1dShape,
    x: &Buf<f32>,
    w: &Buf<f32>,
    bias: &Buf<f32>,
    y: &Buf<f32>,
    scratch: &ConvScratch,
    mm: MatmulVariant,
) -> Result<(), GpuError> {
    s.check()?;
    scratch.need(s.col_len(), 0, s.padded_len())?;
    x.check_len("conv1d x", s.in_len())?;
    w.check_len("conv1d w", s.weight_len())?;
    bias.check_len("conv1d bias", s.bias_len())?;
    y.check_len("conv1d y", s.out_len())?;
    let (lo, ls, ck) = (s.l_out(), s.l_stride(), s.c_in * s.k);
    im2col(b, s.geom(), x, &scratch.col)?;
    // padded[n] = W [c_out, ck] · col[n] [ck, ls]
    bmm(
        b,
        mm,
        (s.c_out, ls, ck, s.n),
        (w, ck, 1, 0),
        (&scratch.col, ls, 1, ck * ls),
        (&scratch.padded, ls, s.c_out * ls),
        0.0,
    )?;
    bias_act(
        b,
        (s.n * s.c_out, s.c_out, lo),
        (&scratch.padded, ls),
        (y, lo),
        Some(bias),
        s.act,
    )
}

/// dz with rows `l_stride()` apart, as the backward products read it: dz itself where
/// that is its layout already, else a zero-padded copy in `scratch.padded`.
fn padded_dz<'a>(
    b: &mut Batch,
    s: &Conv1dShape,
    dz: &'a Buf<f32>,
    scratch: &'a ConvScratch,
) -> Result<&'a Buf<f32>, GpuError> {
    let (lo, ls) = (s.l_out(), s.l_stride());
    if lo == ls {
        return Ok(dz);
    }
    bias_act(
        b,
        (s.n * s.c_out, s.c_out, lo),
        (dz, lo),
        (&scratch.padded, ls),
        None,
        Act::None,
    )?;
    Ok(&scratch.padded)
}

/// dx = conv1d's input gradient from dz (gradient wrt the pre-activation output).
/// Overwrites dx [n, c_in, l]. Uses `scratch.col` and `scratch.padded`.
#[allow(clippy::too_many_arguments)]
pub fn backward_input(
    b: &mut Batch,
    s: &Conv1dShape,
    w: &Buf<f32>,
    dz: &Buf<f32>,
    dx: &Buf<f32>,
    scratch: &ConvScratch,
    mm: MatmulVariant,
) -> Result<(), GpuError> {
    s.check()?;
    scratch.need(s.col_len(), 0, s.padded_len())?;
    w.check_len("conv1d w", s.weight_len())?;
    dz.check_len("conv1d dz", s.out_len())?;
    dx.check_len("conv1d dx", s.in_len())?;
    let (ls, ck) = (s.l_stride(), s.c_in * s.k);
    let dz = padded_dz(b, s, dz, scratch)?;
    // dcol[n] [ck, ls] = Wᵀ · dz[n]
    bmm(
        b,
        mm,
        (ck, ls, s.c_out, s.n),
        (w, 1, ck, 0),
        (dz, ls, 1, s.c_out * ls),
        (&scratch.col, ls, ck * ls),
        0.0,
    )?;
    col2im(b, s.geom(), &scratch.col, None, Act::None, dx)
}

/// dw (+)= Σ_n dz[n] · im2col(x[n])ᵀ; `accumulate` adds into dw instead of overwriting.
/// Uses `scratch.col`, `scratch.part` (≥ `part_len()`) and `scratch.padded`.
#[allow(clippy::too_many_arguments)]
pub fn backward_weight(
    b: &mut Batch,
    s: &Conv1dShape,
    x: &Buf<f32>,
    dz: &Buf<f32>,
    dw: &Buf<f32>,
    accumulate: bool,
    scratch: &ConvScratch,
    mm: MatmulVariant,
) -> Result<(), GpuError> {
    s.check()?;
    scratch.need(s.col_len(), s.part_len(), s.padded_len())?;
    x.check_len("conv1d x", s.in_len())?;
    dz.check_len("conv1d dz", s.out_len())?;
    dw.check_len("conv1d dw", s.weight_len())?;
    im2col(b, s.geom(), x, &scratch.col)?;
    let dz = padded_dz(b, s, dz, scratch)?;
    let rows = WeightRows {
        n: s.n,
        rows: s.c_out,
        cols: s.c_in * s.k,
        len: s.l_stride(),
    };
    weight_grad(b, mm, rows, dz, scratch, dw, accumulate)
}

/// The shape of a weight-gradient product: per sample, `rows`×`len` gradient rows
/// against the `cols`×`len` im2col matrix in scratch (`len` the row stride of both,
/// padding columns included: they hold zeros).
struct WeightRows {
    n: usize,
    rows: usize,
    cols: usize,
    len: usize,
}

/// dw[rows, cols] (+)= Σ_n a_n[rows, len] · col_nᵀ, with col_n the im2col matrix in
/// `scratch.col`. Both convolution kinds' weight gradients are this product; they
/// differ only in which tensor supplies the rows. At batch 1 it writes dw directly,
/// else one product per sample goes to `scratch.part` and a second pass sums them.
fn weight_grad(
    b: &mut Batch,
    mm: MatmulVariant,
    w: WeightRows,
    a: &Buf<f32>,
    scratch: &ConvScratch,
    dw: &Buf<f32>,
    accumulate: bool,
) -> Result<(), GpuError> {
    let WeightRows { n, rows, cols, len } = w;
    let a = (a, len, 1, rows * len);
    let bcol = (&scratch.col, 1, len, cols * len);
    if n == 1 {
        let beta = if accumulate { 1.0 } else { 0.0 };
        return bmm(b, mm, (rows, cols, len, 1), a, bcol, (dw, cols, 0), beta);
    }
    bmm(
        b,
        mm,
        (rows, cols, len, n),
        a,
        bcol,
        (&scratch.part, cols, rows * cols),
        0.0,
    )?;
    batch_sum(b, n, rows * cols, &scratch.part, dw, accumulate)
}

/// db (+)= Σ over n, l of dz.
pub fn backward_bias(
    b: &mut Batch,
    s: &Conv1dShape,
    dz: &Buf<f32>,
    db: &Buf<f32>,
    accumulate: bool,
) -> Result<(), GpuError> {
    s.check()?;
    dz.check_len("conv1d dz", s.out_len())?;
    db.check_len("conv1d db", s.bias_len())?;
    channel_sum(b, s.n, s.c_out, s.l_out(), dz, db, accumulate)
}

/// Transposed 1-D convolution with PyTorch's semantics.
pub mod transpose {
    use super::*;

    /// `ConvTranspose1d(c_in, c_out, k, stride, padding=pad, output_padding=out_pad)` on
    /// [n, c_in, l], then `act`. Output length (l − 1)·stride − 2·pad + k + out_pad.
    #[derive(Clone, Copy, Debug, PartialEq, Eq)]
    pub struct ConvT1dShape {
        pub n: usize,
        pub c_in: usize,
        pub l: usize,
        pub c_out: usize,
        pub k: usize,
        pub stride: usize,
        pub pad: usize,
        pub out_pad: usize,
        pub act: Act,
    }

    impl ConvT1dShape {
        pub fn l_out(&self) -> usize {
            ((self.l - 1) * self.stride + self.k + self.out_pad).saturating_sub(2 * self.pad)
        }
        pub fn in_len(&self) -> usize {
            self.n * self.c_in * self.l
        }
        pub fn out_len(&self) -> usize {
            self.n * self.c_out * self.l_out()
        }
        pub fn weight_len(&self) -> usize {
            self.c_in * self.c_out * self.k
        }
        pub fn bias_len(&self) -> usize {
            self.c_out
        }
        /// [n, c_out·k, l] columns.
        pub fn col_len(&self) -> usize {
            self.n * self.c_out * self.k * self.l
        }
        pub fn part_len(&self) -> usize {
            if self.n > 1 {
                self.n * self.weight_len()
            } else {
                0
            }
        }
        pub fn flops(&self) -> f64 {
            2.0 * self.in_len() as f64 * (self.c_out * self.k) as f64
        }
        pub fn check(&self) -> Result<(), GpuError> {
            check_geometry(
                "conv_transpose1d",
                self.n,
                self.c_in,
                self.c_out,
                self.k,
                self.stride,
            )?;
            if self.l == 0 || self.out_pad >= self.stride {
                return Err(bad(
                    "conv_transpose1d: need l ≥ 1 and out_pad < stride".into()
                ));
            }
            if (self.l - 1) * self.stride + self.k + self.out_pad <= 2 * self.pad {
                return Err(bad("conv_transpose1d: padding leaves no output".into()));
            }
            check_u32(
                "conv_transpose1d",
                &[
                    self.in_len(),
                    self.out_len(),
                    self.col_len(),
                    self.part_len(),
                ],
            )
        }
        /// The output is the image, the input length the col length.
        fn geom(&self) -> Geom {
            Geom {
                n: self.n,
                c: self.c_out,
                l: self.l_out(),
                lc: self.l,
                lcs: self.l,
                k: self.k,
                stride: self.stride,
                pad: self.pad,
            }
        }
    }

    /// y = act(conv_transpose1d(x, w) + bias). x [n, c_in, l], w [c_in, c_out, k],
    /// y [n, c_out, l_out]. Uses `scratch.col`.
    #[allow(clippy::too_many_arguments)]
    pub fn forward(
        b: &mut Batch,
        s: &ConvT1dShape,
        x: &Buf<f32>,
        w: &Buf<f32>,
        bias: &Buf<f32>,
        y: &Buf<f32>,
        scratch: &ConvScratch,
        mm: MatmulVariant,
    ) -> Result<(), GpuError> {
        s.check()?;
        scratch.need(s.col_len(), 0, 0)?;
        x.check_len("conv_transpose1d x", s.in_len())?;
        w.check_len("conv_transpose1d w", s.weight_len())?;
        bias.check_len("conv_transpose1d bias", s.bias_len())?;
        y.check_len("conv_transpose1d y", s.out_len())?;
        let (l, ok) = (s.l, s.c_out * s.k);
        // col[n] [ok, l] = Wᵀ (W as [c_in, ok]) · x[n] [c_in, l]
        bmm(
            b,
            mm,
            (ok, l, s.c_in, s.n),
            (w, 1, ok, 0),
            (x, l, 1, s.c_in * l),
            (&scratch.col, l, ok * l),
            0.0,
        )?;
        col2im(b, s.geom(), &scratch.col, Some(bias), s.act, y)
    }

    /// dx [n, c_in, l] = W · im2col(dz[n]) (overwrites). Uses `scratch.col`.
    #[allow(clippy::too_many_arguments)]
    pub fn backward_input(
        b: &mut Batch,
        s: &ConvT1dShape,
        w: &Buf<f32>,
        dz: &Buf<f32>,
        dx: &Buf<f32>,
        scratch: &ConvScratch,
        mm: MatmulVariant,
    ) -> Result<(), GpuError> {
        s.check()?;
        scratch.need(s.col_len(), 0, 0)?;
        w.check_len("conv_transpose1d w", s.weight_len())?;
        dz.check_len("conv_transpose1d dz", s.out_len())?;
        dx.check_len("conv_transpose1d dx", s.in_len())?;
        let (l, ok) = (s.l, s.c_out * s.k);
        im2col(b, s.geom(), dz, &scratch.col)?;
        bmm(
            b,
            mm,
            (s.c_in, l, ok, s.n),
            (w, ok, 1, 0),
            (&scratch.col, l, 1, ok * l),
            (dx, l, s.c_in * l),
            0.0,
        )
    }

    /// dw (+)= Σ_n x[n] · im2col(dz[n])ᵀ. Uses `scratch.col` and `scratch.part`.
    #[allow(clippy::too_many_arguments)]
    pub fn backward_weight(
        b: &mut Batch,
        s: &ConvT1dShape,
        x: &Buf<f32>,
        dz: &Buf<f32>,
        dw: &Buf<f32>,
        accumulate: bool,
        scratch: &ConvScratch,
        mm: MatmulVariant,
    ) -> Result<(), GpuError> {
        s.check()?;
        scratch.need(s.col_len(), s.part_len(), 0)?;
        x.check_len("conv_transpose1d x", s.in_len())?;
        dz.check_len("conv_transpose1d dz", s.out_len())?;
        dw.check_len("conv_transpose1d dw", s.weight_len())?;
        // The convolution adjoint to this one has dz as its input and x as its output
        // gradient, so dW is the same product with their roles swapped.
        im2col(b, s.geom(), dz, &scratch.col)?;
        let rows = WeightRows {
            n: s.n,
            rows: s.c_in,
            cols: s.c_out * s.k,
            len: s.l,
        };
        weight_grad(b, mm, rows, x, scratch, dw, accumulate)
    }

    /// db (+)= Σ over n, l of dz.
    pub fn backward_bias(
        b: &mut Batch,
        s: &ConvT1dShape,
        dz: &Buf<f32>,
        db: &Buf<f32>,
        accumulate: bool,
    ) -> Result<(), GpuError> {
        s.check()?;
        dz.check_len("conv_transpose1d dz", s.out_len())?;
        db.check_len("conv_transpose1d db", s.bias_len())?;
        channel_sum(b, s.n, s.c_out, s.l_out(), dz, db, accumulate)
    }

    /// CPU reference (f64): act(conv_transpose1d(x, w) + bias).
    pub fn forward_ref(s: &ConvT1dShape, x: &[f64], w: &[f64], bias: &[f64]) -> Vec<f64> {
        let lo = s.l_out();
        let mut y = vec![0.0; s.out_len()];
        for n in 0..s.n {
            for co in 0..s.c_out {
                for j in 0..lo {
                    y[(n * s.c_out + co) * lo + j] = bias[co];
                }
            }
            for ci in 0..s.c_in {
                for i in 0..s.l {
                    let xv = x[(n * s.c_in + ci) * s.l + i];
                    for co in 0..s.c_out {
                        for kk in 0..s.k {
                            let j = (i * s.stride + kk) as isize - s.pad as isize;
                            if j >= 0 && (j as usize) < lo {
                                y[(n * s.c_out + co) * lo + j as usize] +=
                                    xv * w[(ci * s.c_out + co) * s.k + kk];
                            }
                        }
                    }
                }
            }
        }
        y.iter().map(|&v| act_ref(s.act, v)).collect()
    }

    /// CPU reference (f64) of the gradients (dx, dw, db) from dz, the gradient wrt the
    /// pre-activation output.
    pub fn backward_ref(
        s: &ConvT1dShape,
        x: &[f64],
        w: &[f64],
        dz: &[f64],
    ) -> (Vec<f64>, Vec<f64>, Vec<f64>) {
        let lo = s.l_out();
        let mut dx = vec![0.0; s.in_len()];
        let mut dw = vec![0.0; s.weight_len()];
        let mut db = vec![0.0; s.bias_len()];
        for n in 0..s.n {
            for co in 0..s.c_out {
                for j in 0..lo {
                    db[co] += dz[(n * s.c_out + co) * lo + j];
                }
            }
            for ci in 0..s.c_in {
                for i in 0..s.l {
                    let xi = (n * s.c_in + ci) * s.l + i;
                    for co in 0..s.c_out {
                        for kk in 0..s.k {
                            let j = (i * s.stride + kk) as isize - s.pad as isize;
                            if j >= 0 && (j as usize) < lo {
                                let g = dz[(n * s.c_out + co) * lo + j as usize];
                                let wi = (ci * s.c_out + co) * s.k + kk;
                                dx[xi] += g * w[wi];
                                dw[wi] += g * x[xi];
                            }
                        }
                    }
                }
            }
        }
        (dx, dw, db)
    }
}

/// The activation in f64.
pub fn act_ref(act: Act, v: f64) -> f64 {
    match act {
        Act::None => v,
        Act::Relu => v.max(0.0),
        Act::Sigmoid => 1.0 / (1.0 + (-v).exp()),
    }
}

/// dz = dy · act'(z) expressed through y = act(z), as the GPU computes it.
pub fn act_backward_ref(act: Act, y: &[f64], dy: &[f64]) -> Vec<f64> {
    y.iter()
        .zip(dy)
        .map(|(&y, &g)| match act {
            Act::None => g,
            Act::Relu => {
                if y > 0.0 {
                    g
                } else {
                    0.0
                }
            }
            Act::Sigmoid => g * y * (1.0 - y),
        })
        .collect()
}

/// CPU reference (f64): act(conv1d(x, w) + bias).
pub fn forward_ref(s: &Conv1dShape, x: &[f64], w: &[f64], bias: &[f64]) -> Vec<f64> {
    let lo = s.l_out();
    let mut y = vec![0.0; s.out_len()];
    for n in 0..s.n {
        for co in 0..s.c_out {
            for j in 0..lo {
                let mut acc = bias[co];
                for ci in 0..s.c_in {
                    for kk in 0..s.k {
                        let i = (j * s.stride + kk) as isize - s.pad as isize;
                        if i >= 0 && (i as usize) < s.l {
                            acc += w[(co * s.c_in + ci) * s.k + kk]
                                * x[(n * s.c_in + ci) * s.l + i as usize];
                        }
                    }
                }
                y[(n * s.c_out + co) * lo + j] = act_ref(s.act, acc);
            }
        }
    }
    y
}

/// CPU reference (f64) of the gradients (dx, dw, db) from dz, the gradient wrt the
/// pre-activation output.
pub fn backward_ref(
    s: &Conv1dShape,
    x: &[f64],
    w: &[f64],
    dz: &[f64],
) -> (Vec<f64>, Vec<f64>, Vec<f64>) {
    let lo = s.l_out();
    let mut dx = vec![0.0; s.in_len()];
    let mut dw = vec![0.0; s.weight_len()];
    let mut db = vec![0.0; s.bias_len()];
    for n in 0..s.n {
        for co in 0..s.c_out {
            for j in 0..lo {
                let g = dz[(n * s.c_out + co) * lo + j];
                db[co] += g;
                for ci in 0..s.c_in {
                    for kk in 0..s.k {
                        let i = (j * s.stride + kk) as isize - s.pad as isize;
                        if i >= 0 && (i as usize) < s.l {
                            let xi = (n * s.c_in + ci) * s.l + i as usize;
                            let wi = (co * s.c_in + ci) * s.k + kk;
                            dx[xi] += g * w[wi];
                            dw[wi] += g * x[xi];
                        }
                    }
                }
            }
        }
    }
    (dx, dw, db)
}
