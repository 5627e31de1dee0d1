//! 2-D convolution and transposed convolution (PyTorch semantics, NCHW, square kernels),
//! forward with bias and optional fused ReLU, and backward.
//!
//! Every product runs on the shared tiled matmul; shaders/conv2d.wgsl only moves data
//! (im2col, its adjoint col2im, a channel-major transpose) and reduces (bias gradients,
//! split-K partials). A transposed convolution is the adjoint of a convolution, so both
//! ops are expressed in the geometry of "the convolution" ([`Geom`]):
//!
//! | op | conv2d | conv-transpose2d |
//! |---|---|---|
//! | forward | im2col · W | Wᵀ · x, col2im |
//! | grad input | Wᵀ · dy, col2im | im2col · W |
//! | grad weight | dy · colᵀ | x · colᵀ(dy) |

use bytemuck::{Pod, Zeroable};

use crate::gpu::{grid, Batch, Buf, Gpu, GpuError, Kernel};
use crate::nn::matmul::{matmul, sg8, MatmulParams, MatmulVariant};
use crate::nn::Act;

/// conv2d: x [n, c_in, h, w] * weight [c_out, c_in, k, k] → y [n, c_out, ho, wo].
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Conv2dShape {
    pub n: usize,
    pub c_in: usize,
    pub h: usize,
    pub w: usize,
    pub c_out: usize,
    pub k: usize,
    pub stride: usize,
    pub pad: usize,
}

impl Conv2dShape {
    pub fn ho(&self) -> usize {
        (self.h + 2 * self.pad - self.k) / self.stride + 1
    }
    pub fn wo(&self) -> usize {
        (self.w + 2 * self.pad - self.k) / self.stride + 1
    }
    pub fn in_len(&self) -> usize {
        self.n * self.c_in * self.h * self.w
    }
    pub fn out_len(&self) -> usize {
        self.n * self.c_out * self.ho() * self.wo()
    }
    pub fn weight_len(&self) -> usize {
        self.c_out * self.c_in * self.k * self.k
    }
    pub fn bias_len(&self) -> usize {
        self.c_out
    }
    fn geom(&self) -> Geom {
        assert!(
            self.k >= 1 && self.stride >= 1,
            "{self:?}: kernel and stride must be ≥ 1"
        );
        assert!(
            self.h + 2 * self.pad >= self.k && self.w + 2 * self.pad >= self.k,
            "{self:?}: kernel larger than padded input"
        );
        Geom {
            n: self.n,
            ci: self.c_in,
            h: self.h,
            w: self.w,
            co: self.c_out,
            k: self.k,
            s: self.stride,
            p: self.pad,
            ho: self.ho(),
            wo: self.wo(),
        }
    }
    /// Scratch the forward and backward need (see [`ConvWork`]).
    pub fn scratch_lens(&self) -> ScratchLens {
        // The bias gradient sums dy: c_out rows of ho·wo per sample.
        self.geom().scratch_lens(self.c_out, self.ho() * self.wo())
    }
    /// Multiply-adds ×2 of the forward; each backward product (grad input, grad weight)
    /// costs the same again.
    pub fn flops(&self) -> f64 {
        self.geom().flops()
    }
}

/// conv-transpose2d (output_padding 0, dilation 1, groups 1): x [n, c_in, h, w] with
/// weight [c_in, c_out, k, k] → y [n, c_out, (h−1)·stride − 2·pad + k, …].
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct ConvTranspose2dShape {
    pub n: usize,
    pub c_in: usize,
    pub h: usize,
    pub w: usize,
    pub c_out: usize,
    pub k: usize,
    pub stride: usize,
    pub pad: usize,
}

impl ConvTranspose2dShape {
    pub fn ho(&self) -> usize {
        (self.h - 1) * self.stride + self.k - 2 * self.pad
    }
    pub fn wo(&self) -> usize {
        (self.w - 1) * self.stride + self.k - 2 * self.pad
    }
    pub fn in_len(&self) -> usize {
        self.n * self.c_in * self.h * self.w
    }
    pub fn out_len(&self) -> usize {
        self.n * self.c_out * self.ho() * self.wo()
    }
    pub fn weight_len(&self) -> usize {
        self.c_in * self.c_out * self.k * self.k
    }
    pub fn bias_len(&self) -> usize {
        self.c_out
    }
    /// The convolution whose adjoint this is: its input is our output and vice versa,
    /// and its [c_out, c_in, k, k] weight is our [c_in, c_out, k, k] weight, unchanged.
    fn geom(&self) -> Geom {
        assert!(
            self.k >= 1 && self.stride >= 1 && self.h >= 1 && self.w >= 1,
            "{self:?}: empty geometry"
        );
        assert!(
            (self.h - 1) * self.stride + self.k > 2 * self.pad,
            "{self:?}: padding leaves no output"
        );
        Geom {
            n: self.n,
            ci: self.c_out,
            h: self.ho(),
            w: self.wo(),
            co: self.c_in,
            k: self.k,
            s: self.stride,
            p: self.pad,
            ho: self.h,
            wo: self.w,
        }
    }
    pub fn scratch_lens(&self) -> ScratchLens {
        self.geom().scratch_lens(self.c_out, self.ho() * self.wo())
    }
    pub fn flops(&self) -> f64 {
        self.geom().flops()
    }
}

/// Convolution geometry shared by both ops: input [n, ci, h, w], output [n, co, ho, wo].
#[derive(Clone, Copy, Debug)]
struct Geom {
    n: usize,
    ci: usize,
    h: usize,
    w: usize,
    co: usize,
    k: usize,
    s: usize,
    p: usize,
    ho: usize,
    wo: usize,
}

/// Split-K of the weight gradient: the reduction over n·ho·wo is long and the output
/// (co × ci·k·k) small, so one tile per workgroup would leave a GPU idle.
#[derive(Clone, Copy, Debug)]
struct SplitK {
    /// Reduction length of each part (the last may be shorter).
    len: usize,
    parts: usize,
}

/// Elements summed by one workgroup in the first level of a bias-gradient reduction.
const ROW_CHUNK: usize = 8192;
/// The same for the 8-lane subgroup kernel (row_sum_sg): a multiple of 4, long enough
/// that its loop, not the per-workgroup cost, dominates.
const SG_CHUNK: usize = 4096;
/// Split-K sizing: about one wave of workgroups on a large GPU, capped because more
/// parts only move work into `sum_slices` (each thread walks every part); parts shorter
/// than SPLIT_MIN_LEN are not worth a tile.
const SPLIT_TARGET_GROUPS: usize = 128;
const SPLIT_MAX_PARTS: usize = 32;
const SPLIT_MIN_LEN: usize = 256;

impl Geom {
    fn ck(&self) -> usize {
        self.ci * self.k * self.k
    }
    fn plane(&self) -> usize {
        self.ho * self.wo
    }
    fn np(&self) -> usize {
        self.n * self.plane()
    }
    fn flops(&self) -> f64 {
        2.0 * self.co as f64 * self.ck() as f64 * self.np() as f64
    }
    fn split_k(&self) -> SplitK {
        let np = self.np().max(1);
        let tiles = self.co.div_ceil(64) * self.ck().div_ceil(64);
        let want = (SPLIT_TARGET_GROUPS / tiles).clamp(1, SPLIT_MAX_PARTS);
        let s = want.min((np / SPLIT_MIN_LEN).max(1));
        let len = np.div_ceil(s);
        SplitK {
            len,
            parts: np.div_ceil(len),
        }
    }
    /// The bias gradient sums `bias_rows` channels of `bias_plane` pixels per sample.
    fn scratch_lens(&self, bias_rows: usize, bias_plane: usize) -> ScratchLens {
        let sk = self.split_k();
        let wpart = if sk.parts > 1 {
            sk.parts * self.co * self.ck()
        } else {
            0
        };
        let len = self.n * bias_plane;
        let bpart = RowSumVariant::ALL
            .iter()
            .map(|v| v.part_len(bias_rows, len))
            .max()
            .unwrap_or(0);
        ScratchLens {
            col: self.ck() * self.np(),
            tr: self.co * self.np(),
            part: wpart.max(bpart),
        }
    }
}

/// Element counts of the three scratch buffers a [`ConvWork`] holds.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct ScratchLens {
    /// im2col matrix, (ci·k·k) × (n·ho·wo) of the convolution geometry.
    pub col: usize,
    /// Channel-major copy of a gradient (backward only).
    pub tr: usize,
    /// Split-K and bias-reduction partial sums (backward only).
    pub part: usize,
}

impl ScratchLens {
    /// Big enough for both: one [`ConvWork`] can serve every layer of a model.
    pub fn max(self, o: ScratchLens) -> ScratchLens {
        ScratchLens {
            col: self.col.max(o.col),
            tr: self.tr.max(o.tr),
            part: self.part.max(o.part),
        }
    }
}

/// How bias gradients (row sums) are reduced.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum RowSumVariant {
    /// 256-lane workgroups with a shared-memory tree (conv2d.wgsl row_sum); any adapter.
    Tree,
    /// One 8-lane subgroup per workgroup, vec4 loads, subgroupAdd (conv2d_sg.wgsl); only
    /// where [`sg8`] holds, and only for rows whose layout is vec4-aligned (others fall
    /// back to `Tree`).
    Sg,
}

impl RowSumVariant {
    pub const ALL: [RowSumVariant; 2] = [RowSumVariant::Tree, RowSumVariant::Sg];

    /// `Sg` where the adapter has 8-lane subgroups, else `Tree`; `GPU_NIDS_ROWSUM=tree`
    /// forces `Tree` (for comparisons).
    pub fn for_gpu(gpu: &Gpu) -> Self {
        let tree = std::env::var("GPU_NIDS_ROWSUM").is_ok_and(|v| v == "tree");
        if sg8(gpu) && !tree {
            RowSumVariant::Sg
        } else {
            RowSumVariant::Tree
        }
    }

    /// Whether `gpu` can run this variant.
    pub fn available(self, gpu: &Gpu) -> bool {
        self == RowSumVariant::Tree || sg8(gpu)
    }

    fn kernel(self) -> Kernel {
        match self {
            RowSumVariant::Tree => Kernel::new("conv2d", "row_sum"),
            RowSumVariant::Sg => Kernel::new("conv2d_sg", "row_sum_sg"),
        }
    }

    /// Elements of a row each first-level workgroup sums.
    fn chunk(self) -> usize {
        match self {
            RowSumVariant::Tree => ROW_CHUNK,
            RowSumVariant::Sg => SG_CHUNK,
        }
    }

    /// First-level chunks per row: padded to a multiple of 4 for `Sg`, whose second
    /// level reads the partial sums as vec4s.
    fn nchunk(self, len: usize) -> usize {
        match self {
            RowSumVariant::Tree => len.div_ceil(ROW_CHUNK).max(1),
            RowSumVariant::Sg => match len.div_ceil(SG_CHUNK).max(1) {
                1 => 1,
                c => c.next_multiple_of(4),
            },
        }
    }

    /// Partial sums `rows` rows of `len` need in `ConvWork::part` (0: one level).
    fn part_len(self, rows: usize, len: usize) -> usize {
        match self.nchunk(len) {
            1 => 0,
            c => c * rows,
        }
    }
}

/// Scratch buffers plus the matmul variant; reusable across layers and steps (the
/// contents are dead between calls). Three separate buffers because one dispatch may
/// read one while writing another, which wgpu forbids within a single buffer.
pub struct ConvWork {
    pub variant: MatmulVariant,
    pub row_sum: RowSumVariant,
    col: Buf<f32>,
    tr: Buf<f32>,
    part: Buf<f32>,
}

impl ConvWork {
    pub fn new(gpu: &Gpu, lens: ScratchLens) -> Result<ConvWork, GpuError> {
        Ok(ConvWork {
            variant: MatmulVariant::for_gpu(gpu),
            row_sum: RowSumVariant::for_gpu(gpu),
            col: gpu.zeros(lens.col)?,
            tr: gpu.zeros(lens.tr)?,
            part: gpu.zeros(lens.part)?,
        })
    }

    fn check(&self, need: ScratchLens) -> Result<(), GpuError> {
        if self.col.len() < need.col || self.tr.len() < need.tr || self.part.len() < need.part {
            return Err(GpuError::Launch(format!(
                "conv scratch too small: need {need:?}, have col {} tr {} part {}",
                self.col.len(),
                self.tr.len(),
                self.part.len()
            )));
        }
        Ok(())
    }
}

/// Gradient outputs of a backward. `dx` is overwritten; `dw` and `db` are overwritten,
/// or added to when `accumulate`. `None` skips that gradient (e.g. dx of a first layer).
pub struct ConvGrads<'a> {
    pub dx: Option<&'a Buf<f32>>,
    pub dw: &'a Buf<f32>,
    pub db: Option<&'a Buf<f32>>,
    pub accumulate: bool,
}

/// The conv2d shaders fuse a ReLU or nothing.
fn check_act(act: Act) -> Result<(), GpuError> {
    if act == Act::Sigmoid {
        return Err(GpuError::Launch(
            "conv: no sigmoid is fused into conv2d (ReLU or none)".into(),
        ));
    }
    Ok(())
}

/// The forward output is needed as the ReLU mask of the backward.
fn relu_mask(act: Act, y: Option<&Buf<f32>>) -> Result<Option<&wgpu::Buffer>, GpuError> {
    check_act(act)?;
    match (act, y) {
        (Act::Relu, Some(y)) => Ok(Some(y.raw())),
        (Act::Relu, None) => Err(GpuError::Launch(
            "conv backward with ReLU needs the forward output y".into(),
        )),
        _ => Ok(None),
    }
}

/// Record y = act(conv2d(x, w) + bias).
#[allow(clippy::too_many_arguments)]
pub fn conv2d_forward(
    b: &mut Batch,
    s: &Conv2dShape,
    act: Act,
    x: &Buf<f32>,
    w: &Buf<f32>,
    bias: Option<&Buf<f32>>,
    y: &Buf<f32>,
    work: &ConvWork,
) -> Result<(), GpuError> {
    check_act(act)?;
    let g = s.geom();
    work.check(ScratchLens {
        col: g.ck() * g.np(),
        ..Default::default()
    })?;
    x.check_len("conv: x", s.in_len())?;
    w.check_len("conv: w", s.weight_len())?;
    y.check_len("conv: y", s.out_len())?;
    if let Some(bias) = bias {
        bias.check_len("conv: bias", s.bias_len())?;
    }
    im2col(b, &g, x.raw(), None, work.col.raw())?;
    matmul(
        b,
        work.variant,
        &gemm_w_col(&g),
        w.raw(),
        work.col.raw(),
        y.raw(),
    )?;
    bias_act(
        b,
        g.n,
        g.co,
        g.plane(),
        y.raw(),
        bias.map(|b| b.raw()),
        act,
        w.raw(),
    )
}

/// Record the conv2d backward. `dy` is the gradient wrt the (activated) output; with
/// `act = Relu`, `y` must be the forward output (the mask). `x` and `w` as in forward.
#[allow(clippy::too_many_arguments)]
pub fn conv2d_backward(
    b: &mut Batch,
    s: &Conv2dShape,
    act: Act,
    x: &Buf<f32>,
    w: &Buf<f32>,
    y: Option<&Buf<f32>>,
    dy: &Buf<f32>,
    grads: &ConvGrads,
    work: &ConvWork,
) -> Result<(), GpuError> {
    let g = s.geom();
    work.check(s.scratch_lens())?;
    x.check_len("conv: x", s.in_len())?;
    w.check_len("conv: w", s.weight_len())?;
    dy.check_len("conv: dy", s.out_len())?;
    grads.dw.check_len("conv: dw", s.weight_len())?;
    let mask = relu_mask(act, y)?;
    if let Some(m) = y.filter(|_| mask.is_some()) {
        m.check_len("conv: y", s.out_len())?;
    }
    // Masked dy, channel-major: feeds all three gradients as contiguous rows.
    to_channel_major(b, g.n, g.co, g.plane(), dy.raw(), mask, work.tr.raw())?;
    if let Some(db) = grads.db {
        db.check_len("conv: db", s.bias_len())?;
        let rows = RowLayout {
            rows: g.co,
            len: g.np(),
            seg: g.np(),
            seg_stride: 0,
            row_stride: g.np(),
        };
        row_sums(
            b,
            &rows,
            work.tr.raw(),
            None,
            db.raw(),
            grads.accumulate,
            work,
        )?;
    }
    im2col(b, &g, x.raw(), None, work.col.raw())?;
    weight_grad(b, &g, grads.dw.raw(), grads.accumulate, work)?;
    if let Some(dx) = grads.dx {
        dx.check_len("conv: dx", s.in_len())?;
        matmul(
            b,
            work.variant,
            &gemm_wt(&g, Layout::ChannelMajor),
            w.raw(),
            work.tr.raw(),
            work.col.raw(),
        )?;
        col2im(b, &g, work.col.raw(), None, Act::None, dx.raw())?;
    }
    Ok(())
}

/// Record y = act(conv_transpose2d(x, w) + bias).
#[allow(clippy::too_many_arguments)]
pub fn conv_transpose2d_forward(
    b: &mut Batch,
    s: &ConvTranspose2dShape,
    act: Act,
    x: &Buf<f32>,
    w: &Buf<f32>,
    bias: Option<&Buf<f32>>,
    y: &Buf<f32>,
    work: &ConvWork,
) -> Result<(), GpuError> {
    check_act(act)?;
    let g = s.geom();
    work.check(ScratchLens {
        col: g.ck() * g.np(),
        ..Default::default()
    })?;
    x.check_len("conv: x", s.in_len())?;
    w.check_len("conv: w", s.weight_len())?;
    y.check_len("conv: y", s.out_len())?;
    if let Some(bias) = bias {
        bias.check_len("conv: bias", s.bias_len())?;
    }
    matmul(
        b,
        work.variant,
        &gemm_wt(&g, Layout::Nchw),
        w.raw(),
        x.raw(),
        work.col.raw(),
    )?;
    col2im(b, &g, work.col.raw(), bias.map(|b| b.raw()), act, y.raw())
}

/// Record the conv-transpose2d backward; arguments as for [`conv2d_backward`].
#[allow(clippy::too_many_arguments)]
pub fn conv_transpose2d_backward(
    b: &mut Batch,
    s: &ConvTranspose2dShape,
    act: Act,
    x: &Buf<f32>,
    w: &Buf<f32>,
    y: Option<&Buf<f32>>,
    dy: &Buf<f32>,
    grads: &ConvGrads,
    work: &ConvWork,
) -> Result<(), GpuError> {
    let g = s.geom();
    work.check(s.scratch_lens())?;
    x.check_len("conv: x", s.in_len())?;
    w.check_len("conv: w", s.weight_len())?;
    dy.check_len("conv: dy", s.out_len())?;
    grads.dw.check_len("conv: dw", s.weight_len())?;
    let mask = relu_mask(act, y)?;
    if let Some(m) = y.filter(|_| mask.is_some()) {
        m.check_len("conv: y", s.out_len())?;
    }
    if let Some(db) = grads.db {
        db.check_len("conv: db", s.bias_len())?;
        // Our output channels are the convolution's input channels, NCHW.
        let plane = g.h * g.w;
        let rows = RowLayout {
            rows: g.ci,
            len: g.n * plane,
            seg: plane,
            seg_stride: g.ci * plane,
            row_stride: plane,
        };
        row_sums(b, &rows, dy.raw(), mask, db.raw(), grads.accumulate, work)?;
    }
    // The convolution's input is our (masked) dy, its output gradient is our x.
    im2col(b, &g, dy.raw(), mask, work.col.raw())?;
    if let Some(dx) = grads.dx {
        dx.check_len("conv: dx", s.in_len())?;
        matmul(
            b,
            work.variant,
            &gemm_w_col(&g),
            w.raw(),
            work.col.raw(),
            dx.raw(),
        )?;
    }
    to_channel_major(b, g.n, g.co, g.plane(), x.raw(), None, work.tr.raw())?;
    weight_grad(b, &g, grads.dw.raw(), grads.accumulate, work)
}

// ---- products ----

/// Where the convolution's output-side tensor lives for Wᵀ·(·).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Layout {
    /// [n, co, ho·wo]
    Nchw,
    /// [co, n·ho·wo]
    ChannelMajor,
}

/// out[b] (co × ho·wo, NCHW) = W (co × ci·k·k) · col[:, b·plane ..] for each sample b.
fn gemm_w_col(g: &Geom) -> MatmulParams {
    let (ck, plane, np) = (g.ck() as u32, g.plane() as u32, g.np() as u32);
    MatmulParams {
        m: g.co as u32,
        n: plane,
        k: ck,
        batch: g.n as u32,
        a_rs: ck,
        a_cs: 1,
        a_bs: 0,
        b_rs: np,
        b_cs: 1,
        b_bs: plane,
        c_rs: plane,
        c_bs: g.co as u32 * plane,
        ..Default::default()
    }
}

/// col (ci·k·k × n·ho·wo) = Wᵀ · t, t the output-side tensor in `layout`.
fn gemm_wt(g: &Geom, layout: Layout) -> MatmulParams {
    let (ck, plane, np) = (g.ck() as u32, g.plane() as u32, g.np() as u32);
    let base = MatmulParams {
        m: ck,
        k: g.co as u32,
        a_rs: 1,
        a_cs: ck,
        b_cs: 1,
        c_rs: np,
        ..Default::default()
    };
    match layout {
        // One product over the whole batch: wide n keeps every tile full.
        Layout::ChannelMajor => MatmulParams {
            n: np,
            batch: 1,
            b_rs: np,
            ..base
        },
        Layout::Nchw => MatmulParams {
            n: plane,
            batch: g.n as u32,
            b_rs: plane,
            b_bs: g.co as u32 * plane,
            c_bs: plane,
            ..base
        },
    }
}

/// dW (co × ci·k·k) = tr (co × n·ho·wo) · colᵀ, split along the reduction into parts
/// summed afterwards (or written straight to dw when one part suffices).
fn weight_grad(
    b: &mut Batch,
    g: &Geom,
    dw: &wgpu::Buffer,
    acc: bool,
    work: &ConvWork,
) -> Result<(), GpuError> {
    let (ck, np, co) = (g.ck() as u32, g.np() as u32, g.co as u32);
    let sk = g.split_k();
    let one = MatmulParams {
        m: co,
        n: ck,
        k: np,
        batch: 1,
        a_rs: np,
        a_cs: 1,
        b_rs: 1,
        b_cs: np,
        c_rs: ck,
        ..Default::default()
    };
    if sk.parts == 1 {
        let p = one.with_beta(if acc { 1.0 } else { 0.0 });
        return matmul(b, work.variant, &p, work.tr.raw(), work.col.raw(), dw);
    }
    let (len, elems) = (sk.len as u32, co * ck);
    let full = np / len;
    let split = MatmulParams {
        k: len,
        batch: full,
        a_bs: len,
        b_bs: len,
        c_bs: elems,
        ..one
    };
    matmul(
        b,
        work.variant,
        &split,
        work.tr.raw(),
        work.col.raw(),
        work.part.raw(),
    )?;
    let rest = np - full * len;
    if rest > 0 {
        let off = full * len;
        let tail = MatmulParams {
            k: rest,
            a_off: off,
            b_off: off,
            c_off: full * elems,
            ..one
        };
        matmul(
            b,
            work.variant,
            &tail,
            work.tr.raw(),
            work.col.raw(),
            work.part.raw(),
        )?;
    }
    let p = ConvParams {
        total: elems,
        rows: sk.parts as u32,
        flag: acc as u32,
        ..Default::default()
    };
    launch_1d(b, "sum_slices", &p, work.part.raw(), work.part.raw(), dw)
}

// ---- data movement and reductions (shaders/conv2d.wgsl) ----

/// Mirrors the WGSL `Params`; which fields an entry reads is documented there.
#[repr(C)]
#[derive(Clone, Copy, Debug, Default, Pod, Zeroable)]
struct ConvParams {
    n: u32,
    c: u32,
    h: u32,
    w: u32,
    ho: u32,
    wo: u32,
    k: u32,
    stride: u32,
    pad: u32,
    total: u32,
    act: u32,
    flag: u32,
    rows: u32,
    len: u32,
    seg: u32,
    seg_stride: u32,
    row_stride: u32,
    chunk: u32,
    nchunk: u32,
    spare: u32,
}

const WG: u32 = 256;

fn geom_params(g: &Geom, total: usize) -> ConvParams {
    ConvParams {
        n: g.n as u32,
        c: g.ci as u32,
        h: g.h as u32,
        w: g.w as u32,
        ho: g.ho as u32,
        wo: g.wo as u32,
        k: g.k as u32,
        stride: g.s as u32,
        pad: g.p as u32,
        total: total as u32,
        ..Default::default()
    }
}

/// One thread per element of `p.total`, 256 per workgroup.
fn launch_1d(
    b: &mut Batch,
    entry: &'static str,
    p: &ConvParams,
    src: &wgpu::Buffer,
    aux: &wgpu::Buffer,
    dst: &wgpu::Buffer,
) -> Result<(), GpuError> {
    if p.total == 0 {
        return Ok(());
    }
    b.dispatch(
        Kernel::new("conv2d", entry),
        p,
        &[src, aux, dst],
        grid(p.total.div_ceil(WG)),
    )
}

/// Kernel 4, stride 2, padding 1 (every VAE convolution) on rows a multiple of 4 wide
/// (so w = 2·wo): the geometry of shaders/conv2d_s2*.wgsl.
fn k4s2(g: &Geom) -> bool {
    g.k == 4 && g.s == 2 && g.p == 1 && g.w.is_multiple_of(4) && g.w == 2 * g.wo
}

fn im2col(
    b: &mut Batch,
    g: &Geom,
    x: &wgpu::Buffer,
    mask: Option<&wgpu::Buffer>,
    col: &wgpu::Buffer,
) -> Result<(), GpuError> {
    let p = ConvParams {
        act: mask.is_some() as u32,
        ..geom_params(g, g.ck() * g.np())
    };
    if g.wo.is_multiple_of(4) && p.total > 0 {
        // One invocation per 4 outputs of a row (shaders/conv2d_v4.wgsl); for the VAE's
        // geometry, per 4 outputs of the 4 col rows (ci, kh, ·) from aligned vec4 loads
        // (shaders/conv2d_s2.wgsl).
        let (kernel, rows) = if k4s2(g) {
            (Kernel::new("conv2d_s2", "im2col_k4s2"), g.ci * 4)
        } else {
            (Kernel::new("conv2d_v4", "im2col4"), g.ck())
        };
        let quads = (g.ho * g.wo / 4) as u32;
        return b.dispatch(
            kernel,
            &p,
            &[x, mask.unwrap_or(x), col],
            [quads.div_ceil(8), g.n as u32, rows as u32],
        );
    }
    launch_1d(b, "im2col", &p, x, mask.unwrap_or(x), col)
}

fn col2im(
    b: &mut Batch,
    g: &Geom,
    col: &wgpu::Buffer,
    bias: Option<&wgpu::Buffer>,
    act: Act,
    out: &wgpu::Buffer,
) -> Result<(), GpuError> {
    let p = ConvParams {
        act: act.code(),
        flag: bias.is_some() as u32,
        ..geom_params(g, g.n * g.ci * g.h * g.w)
    };
    if g.w.is_multiple_of(4) && p.total > 0 {
        // One invocation per 4 outputs of a row (shaders/conv2d_v4.wgsl); for the VAE's
        // geometry, each pixel's 8 col entries from vec2 loads
        // (shaders/conv2d_s2_col2im.wgsl).
        let kernel = if k4s2(g) {
            Kernel::new("conv2d_s2_col2im", "col2im_k4s2")
        } else {
            Kernel::new("conv2d_v4", "col2im4")
        };
        let quads = (g.h * g.w / 4) as u32;
        return b.dispatch(
            kernel,
            &p,
            &[col, bias.unwrap_or(col), out],
            [quads.div_ceil(8), g.n as u32, g.ci as u32],
        );
    }
    launch_1d(b, "col2im", &p, col, bias.unwrap_or(col), out)
}

/// `other`: any buffer other than y, bound where the entry reads nothing.
#[allow(clippy::too_many_arguments)]
fn bias_act(
    b: &mut Batch,
    n: usize,
    c: usize,
    plane: usize,
    y: &wgpu::Buffer,
    bias: Option<&wgpu::Buffer>,
    act: Act,
    other: &wgpu::Buffer,
) -> Result<(), GpuError> {
    if bias.is_none() && act == Act::None {
        return Ok(());
    }
    let p = ConvParams {
        c: c as u32,
        h: plane as u32,
        w: 1,
        total: (n * c * plane) as u32,
        act: act.code(),
        flag: bias.is_some() as u32,
        ..Default::default()
    };
    let aux = bias.unwrap_or(other);
    launch_1d(b, "bias_act", &p, aux, aux, y)
}

fn to_channel_major(
    b: &mut Batch,
    n: usize,
    c: usize,
    plane: usize,
    src: &wgpu::Buffer,
    mask: Option<&wgpu::Buffer>,
    dst: &wgpu::Buffer,
) -> Result<(), GpuError> {
    let p = ConvParams {
        n: n as u32,
        c: c as u32,
        h: plane as u32,
        w: 1,
        total: (n * c * plane) as u32,
        act: mask.is_some() as u32,
        ..Default::default()
    };
    if plane.is_multiple_of(4) && p.total > 0 {
        // 4 vec4s per invocation, 32 per workgroup (shaders/conv2d_tr4.wgsl).
        let quads = (plane / 4) as u32;
        let groups = [quads.div_ceil(32), n as u32, c as u32];
        return b.dispatch(
            Kernel::new("conv2d_tr4", "to_channel_major4"),
            &p,
            &[src, mask.unwrap_or(src), dst],
            groups,
        );
    }
    launch_1d(b, "to_channel_major", &p, src, mask.unwrap_or(src), dst)
}

/// Rows to sum: element j of row r at r·row_stride + (j / seg)·seg_stride + j % seg.
struct RowLayout {
    rows: usize,
    len: usize,
    seg: usize,
    seg_stride: usize,
    row_stride: usize,
}

/// out[r] (+)= Σ_j row r, two levels (chunks of `RowSumVariant::chunk` into `work.part`,
/// then those) when rows are long, so long rows still spread over many workgroups.
fn row_sums(
    b: &mut Batch,
    l: &RowLayout,
    src: &wgpu::Buffer,
    mask: Option<&wgpu::Buffer>,
    out: &wgpu::Buffer,
    acc: bool,
    work: &ConvWork,
) -> Result<(), GpuError> {
    if l.rows == 0 {
        return Ok(());
    }
    let vec4 = [l.seg, l.seg_stride, l.row_stride, l.len]
        .iter()
        .all(|v| v % 4 == 0)
        && l.seg >= 4;
    // The subgroup kernel reads vec4s, so it needs a vec4-aligned layout.
    let v = match work.row_sum {
        RowSumVariant::Sg if vec4 => RowSumVariant::Sg,
        _ => RowSumVariant::Tree,
    };
    let nchunk = v.nchunk(l.len);
    let first = ConvParams {
        rows: l.rows as u32,
        len: l.len as u32,
        seg: l.seg.max(1) as u32,
        seg_stride: l.seg_stride as u32,
        row_stride: l.row_stride as u32,
        chunk: v.chunk() as u32,
        nchunk: nchunk as u32,
        act: mask.is_some() as u32,
        flag: (acc && nchunk == 1) as u32,
        ..Default::default()
    };
    let kernel = v.kernel();
    let aux = mask.unwrap_or(src);
    if nchunk == 1 {
        return b.dispatch(kernel, &first, &[src, aux, out], [1, l.rows as u32, 1]);
    }
    let part = work.part.raw();
    b.dispatch(
        kernel,
        &first,
        &[src, aux, part],
        [nchunk as u32, l.rows as u32, 1],
    )?;
    let n = nchunk as u32;
    let second = ConvParams {
        rows: l.rows as u32,
        len: n,
        seg: n,
        row_stride: n,
        chunk: n,
        nchunk: 1,
        flag: acc as u32,
        ..Default::default()
    };
    b.dispatch(kernel, &second, &[part, part, out], [1, l.rows as u32, 1])
}

// ---- benchmark shapes ----

/// A VAE convolution layer, either kind, so benchmarks can run them uniformly.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum ConvLayer {
    Conv(Conv2dShape),
    Transpose(ConvTranspose2dShape),
}

impl ConvLayer {
    pub fn in_len(&self) -> usize {
        match self {
            ConvLayer::Conv(s) => s.in_len(),
            ConvLayer::Transpose(s) => s.in_len(),
        }
    }
    pub fn out_len(&self) -> usize {
        match self {
            ConvLayer::Conv(s) => s.out_len(),
            ConvLayer::Transpose(s) => s.out_len(),
        }
    }
    pub fn weight_len(&self) -> usize {
        match self {
            ConvLayer::Conv(s) => s.weight_len(),
            ConvLayer::Transpose(s) => s.weight_len(),
        }
    }
    pub fn bias_len(&self) -> usize {
        match self {
            ConvLayer::Conv(s) => s.bias_len(),
            ConvLayer::Transpose(s) => s.bias_len(),
        }
    }
    pub fn scratch_lens(&self) -> ScratchLens {
        match self {
            ConvLayer::Conv(s) => s.scratch_lens(),
            ConvLayer::Transpose(s) => s.scratch_lens(),
        }
    }
    /// Forward flops; a backward with dx and dw is twice this.
    pub fn flops(&self) -> f64 {
        match self {
            ConvLayer::Conv(s) => s.flops(),
            ConvLayer::Transpose(s) => s.flops(),
        }
    }
    #[allow(clippy::too_many_arguments)]
    pub fn forward(
        &self,
        b: &mut Batch,
        act: Act,
        x: &Buf<f32>,
        w: &Buf<f32>,
        bias: Option<&Buf<f32>>,
        y: &Buf<f32>,
        work: &ConvWork,
    ) -> Result<(), GpuError> {
        match self {
            ConvLayer::Conv(s) => conv2d_forward(b, s, act, x, w, bias, y, work),
            ConvLayer::Transpose(s) => conv_transpose2d_forward(b, s, act, x, w, bias, y, work),
        }
    }
    #[allow(clippy::too_many_arguments)]
    pub fn backward(
        &self,
        b: &mut Batch,
        act: Act,
        x: &Buf<f32>,
        w: &Buf<f32>,
        y: Option<&Buf<f32>>,
        dy: &Buf<f32>,
        grads: &ConvGrads,
        work: &ConvWork,
    ) -> Result<(), GpuError> {
        match self {
            ConvLayer::Conv(s) => conv2d_backward(b, s, act, x, w, y, dy, grads, work),
            ConvLayer::Transpose(s) => {
                conv_transpose2d_backward(b, s, act, x, w, y, dy, grads, work)
            }
        }
    }
}

// ---- CPU references (f64, direct definitions, independent of the GPU formulation) ----

/// y = act(conv2d(x, w) + bias), PyTorch semantics.
pub fn conv2d_ref(
    s: &Conv2dShape,
    act: Act,
    x: &[f64],
    w: &[f64],
    bias: Option<&[f64]>,
) -> Vec<f64> {
    let (ho, wo, k) = (s.ho(), s.wo(), s.k);
    let mut y = vec![0.0; s.out_len()];
    for n in 0..s.n {
        for co in 0..s.c_out {
            for oh in 0..ho {
                for ow in 0..wo {
                    let mut acc = bias.map_or(0.0, |b| b[co]);
                    for ci in 0..s.c_in {
                        for kh in 0..k {
                            for kw in 0..k {
                                let ih = (oh * s.stride + kh) as isize - s.pad as isize;
                                let iw = (ow * s.stride + kw) as isize - s.pad as isize;
                                if ih < 0 || iw < 0 || ih >= s.h as isize || iw >= s.w as isize {
                                    continue;
                                }
                                let xi =
                                    ((n * s.c_in + ci) * s.h + ih as usize) * s.w + iw as usize;
                                acc += x[xi] * w[((co * s.c_in + ci) * k + kh) * k + kw];
                            }
                        }
                    }
                    y[((n * s.c_out + co) * ho + oh) * wo + ow] = apply_act_ref(act, acc);
                }
            }
        }
    }
    y
}

/// (dx, dw, db) of conv2d given dy wrt the pre-activation output (see [`relu_backward_ref`]).
pub fn conv2d_backward_ref(
    s: &Conv2dShape,
    x: &[f64],
    w: &[f64],
    dy: &[f64],
) -> (Vec<f64>, Vec<f64>, Vec<f64>) {
    let (ho, wo, k) = (s.ho(), s.wo(), s.k);
    let mut dx = vec![0.0; s.in_len()];
    let mut dw = vec![0.0; s.weight_len()];
    let mut db = vec![0.0; s.c_out];
    for n in 0..s.n {
        for co in 0..s.c_out {
            for oh in 0..ho {
                for ow in 0..wo {
                    let g = dy[((n * s.c_out + co) * ho + oh) * wo + ow];
                    db[co] += g;
                    for ci in 0..s.c_in {
                        for kh in 0..k {
                            for kw in 0..k {
                                let ih = (oh * s.stride + kh) as isize - s.pad as isize;
                                let iw = (ow * s.stride + kw) as isize - s.pad as isize;
                                if ih < 0 || iw < 0 || ih >= s.h as isize || iw >= s.w as isize {
                                    continue;
                                }
                                let xi =
                                    ((n * s.c_in + ci) * s.h + ih as usize) * s.w + iw as usize;
                                let wi = ((co * s.c_in + ci) * k + kh) * k + kw;
                                dx[xi] += g * w[wi];
                                dw[wi] += g * x[xi];
                            }
                        }
                    }
                }
            }
        }
    }
    (dx, dw, db)
}

/// y = act(conv_transpose2d(x, w) + bias): each input pixel scatters x·w into the output.
pub fn conv_transpose2d_ref(
    s: &ConvTranspose2dShape,
    act: Act,
    x: &[f64],
    w: &[f64],
    bias: Option<&[f64]>,
) -> Vec<f64> {
    let (ho, wo, k) = (s.ho(), s.wo(), s.k);
    let mut y = vec![0.0; s.out_len()];
    for n in 0..s.n {
        for co in 0..s.c_out {
            let b = bias.map_or(0.0, |b| b[co]);
            y[(n * s.c_out + co) * ho * wo..][..ho * wo]
                .iter_mut()
                .for_each(|v| *v = b);
        }
        for ci in 0..s.c_in {
            for ih in 0..s.h {
                for iw in 0..s.w {
                    let xv = x[((n * s.c_in + ci) * s.h + ih) * s.w + iw];
                    for (co, kh, kw, oh, ow) in transpose_taps(s, ih, iw) {
                        y[((n * s.c_out + co) * ho + oh) * wo + ow] +=
                            xv * w[((ci * s.c_out + co) * k + kh) * k + kw];
                    }
                }
            }
        }
    }
    y.iter_mut().for_each(|v| *v = apply_act_ref(act, *v));
    y
}

/// (dx, dw, db) of conv_transpose2d given dy wrt the pre-activation output.
pub fn conv_transpose2d_backward_ref(
    s: &ConvTranspose2dShape,
    x: &[f64],
    w: &[f64],
    dy: &[f64],
) -> (Vec<f64>, Vec<f64>, Vec<f64>) {
    let (ho, wo, k) = (s.ho(), s.wo(), s.k);
    let mut dx = vec![0.0; s.in_len()];
    let mut dw = vec![0.0; s.weight_len()];
    let mut db = vec![0.0; s.c_out];
    for n in 0..s.n {
        for co in 0..s.c_out {
            db[co] += dy[(n * s.c_out + co) * ho * wo..][..ho * wo]
                .iter()
                .sum::<f64>();
        }
        for ci in 0..s.c_in {
            for ih in 0..s.h {
                for iw in 0..s.w {
                    let xi = ((n * s.c_in + ci) * s.h + ih) * s.w + iw;
                    for (co, kh, kw, oh, ow) in transpose_taps(s, ih, iw) {
                        let g = dy[((n * s.c_out + co) * ho + oh) * wo + ow];
                        let wi = ((ci * s.c_out + co) * k + kh) * k + kw;
                        dx[xi] += g * w[wi];
                        dw[wi] += g * x[xi];
                    }
                }
            }
        }
    }
    (dx, dw, db)
}

/// (co, kh, kw, oh, ow) for every output an input pixel (ih, iw) reaches.
fn transpose_taps(
    s: &ConvTranspose2dShape,
    ih: usize,
    iw: usize,
) -> Vec<(usize, usize, usize, usize, usize)> {
    let (ho, wo) = (s.ho() as isize, s.wo() as isize);
    let mut v = Vec::new();
    for co in 0..s.c_out {
        for kh in 0..s.k {
            for kw in 0..s.k {
                let oh = (ih * s.stride + kh) as isize - s.pad as isize;
                let ow = (iw * s.stride + kw) as isize - s.pad as isize;
                if oh >= 0 && ow >= 0 && oh < ho && ow < wo {
                    v.push((co, kh, kw, oh as usize, ow as usize));
                }
            }
        }
    }
    v
}

fn apply_act_ref(act: Act, v: f64) -> f64 {
    match act {
        Act::None => v,
        Act::Relu => v.max(0.0),
        Act::Sigmoid => unreachable!("conv2d fuses no sigmoid"),
    }
}

/// Gradient wrt the pre-activation output, given the activated output y and dy wrt it.
pub fn relu_backward_ref(act: Act, y: &[f64], dy: &[f64]) -> Vec<f64> {
    match act {
        Act::None => dy.to_vec(),
        Act::Relu => y
            .iter()
            .zip(dy)
            .map(|(&y, &g)| if y > 0.0 { g } else { 0.0 })
            .collect(),
        Act::Sigmoid => unreachable!("conv2d fuses no sigmoid"),
    }
}
