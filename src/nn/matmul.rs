//! Strided, batched f32 matrix products on the GPU: the three a dense layer needs
//! (A·B, A·Bᵀ, Aᵀ·B) and the ones im2col convolutions need, from one kernel.

use bytemuck::{Pod, Zeroable};

use crate::gpu::{Batch, Gpu, GpuError, Kernel};

#[repr(C)]
#[derive(Clone, Copy, Debug, Default, Pod, Zeroable)]
pub struct MatmulParams {
    pub m: u32,
    pub n: u32,
    pub k: u32,
    pub batch: u32,
    pub a_rs: u32,
    pub a_cs: u32,
    pub b_rs: u32,
    pub b_cs: u32,
    pub a_bs: u32,
    pub b_bs: u32,
    pub c_bs: u32,
    pub c_rs: u32,
    pub a_off: u32,
    pub b_off: u32,
    pub c_off: u32,
    pub beta: f32,
}

/// Which operand is stored transposed.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Trans {
    /// C = A·B, A m×k, B k×n (row-major).
    None,
    /// C = A·Bᵀ, B stored n×k.
    B,
    /// C = Aᵀ·B, A stored k×m.
    A,
}

impl MatmulParams {
    /// Dense row-major operands, optionally transposed, one matrix (batch 1).
    pub fn dense(m: usize, n: usize, k: usize, t: Trans) -> Self {
        let (m, n, k) = (m as u32, n as u32, k as u32);
        let (a_rs, a_cs) = if t == Trans::A { (1, m) } else { (k, 1) };
        let (b_rs, b_cs) = if t == Trans::B { (1, k) } else { (n, 1) };
        MatmulParams {
            m,
            n,
            k,
            batch: 1,
            a_rs,
            a_cs,
            b_rs,
            b_cs,
            a_bs: m * k,
            b_bs: k * n,
            c_bs: m * n,
            c_rs: n,
            ..Default::default()
        }
    }

    pub fn with_beta(mut self, beta: f32) -> Self {
        self.beta = beta;
        self
    }

    pub fn flops(&self) -> f64 {
        2.0 * self.m as f64 * self.n as f64 * self.k as f64 * self.batch as f64
    }
}

/// The two kernel shapes; which is faster depends on the adapter.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum MatmulVariant {
    /// Shared-memory tiles, 64×64 per workgroup, 4×4 register block per thread.
    Tiled,
    /// No shared memory, 4×8 register block per invocation (fast on CPU adapters).
    Reg,
}

impl MatmulVariant {
    pub const ALL: [MatmulVariant; 2] = [MatmulVariant::Tiled, MatmulVariant::Reg];

    /// `GPU_NIDS_MATMUL=tiled|reg` overrides; otherwise software adapters get `Reg`.
    pub fn for_gpu(gpu: &Gpu) -> Self {
        match std::env::var("GPU_NIDS_MATMUL").as_deref() {
            Ok("tiled") => MatmulVariant::Tiled,
            Ok("reg") => MatmulVariant::Reg,
            _ if gpu.info.is_software() => MatmulVariant::Reg,
            _ => MatmulVariant::Tiled,
        }
    }

    pub fn name(self) -> &'static str {
        match self {
            MatmulVariant::Tiled => "tiled",
            MatmulVariant::Reg => "reg",
        }
    }

    fn kernel(self) -> Kernel {
        match self {
            MatmulVariant::Tiled => Kernel::new("matmul", "mm_tiled"),
            MatmulVariant::Reg => Kernel::new("matmul", "mm_reg"),
        }
    }

    fn groups(self, p: &MatmulParams) -> [u32; 3] {
        match self {
            MatmulVariant::Tiled => [p.n.div_ceil(64), p.m.div_ceil(64), p.batch],
            MatmulVariant::Reg => [p.n.div_ceil(64), p.m.div_ceil(32), p.batch],
        }
    }
}

/// True when B and C allow the vec4 kernel (see shaders/matmul_v4.wgsl).
pub fn vec4_ok(p: &MatmulParams) -> bool {
    p.b_cs == 1
        && [p.n, p.b_rs, p.b_bs, p.b_off, p.c_rs, p.c_bs, p.c_off]
            .iter()
            .all(|v| v % 4 == 0)
}

/// True when A is also readable as vec4 along k (shaders/matmul_v4a.wgsl, mm_v4a).
pub fn a_vec_k_ok(p: &MatmulParams) -> bool {
    vec4_ok(p) && p.a_cs == 1 && [p.k, p.a_rs, p.a_bs, p.a_off].iter().all(|v| v % 4 == 0)
}

/// True when A is also readable as vec4 along m (shaders/matmul_v4a.wgsl, mm_v4t).
pub fn a_vec_m_ok(p: &MatmulParams) -> bool {
    vec4_ok(p) && p.a_rs == 1 && [p.m, p.a_cs, p.a_bs, p.a_off].iter().all(|v| v % 4 == 0)
}

/// True when the subgroup kernels (shaders/matmul_sg*.wgsl) can run on `gpu`: subgroups
/// on and exactly 8 lanes wide, the width their workgroups assume.
pub fn sg8(gpu: &Gpu) -> bool {
    gpu.has_subgroups && gpu.info.subgroup_sizes == (8, 8)
}

/// True when both operands are contiguous along k (see shaders/matmul_nt.wgsl).
pub fn nt_ok(p: &MatmulParams) -> bool {
    p.a_cs == 1
        && p.b_rs == 1
        && [p.k, p.a_rs, p.a_bs, p.a_off, p.b_cs, p.b_bs, p.b_off]
            .iter()
            .all(|v| v % 4 == 0)
}

/// Register-block shapes of the vec4 kernel (shaders/matmul_v4.wgsl): rows × columns
/// per invocation. Which is fastest depends on the adapter and the product's shape.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum V4Block {
    /// 4×8 per invocation (mm_v4).
    R4C8,
    /// 8×8 (mm_v4_r8).
    R8C8,
    /// 16×8 (mm_v4_r16).
    R16C8,
    /// 8×8 with A read as vec4 along k (mm_v4a; `a_vec_k_ok`).
    A8,
    /// 8×8 with A stored transposed, read as vec4 along m (mm_v4t; `a_vec_m_ok`).
    T8,
    /// 16×8 per lane, A shared across an 8-lane subgroup by broadcasts (mm_sg; `sg_ok`).
    Sg16,
    /// The same with 32 rows per workgroup (mm_sg32): each B load feeds twice the fmas.
    Sg32,
    /// 64 rows per workgroup (mm_sg64): pays where B is large enough to leave the cache
    /// between row tiles, loses where m is small.
    Sg64,
    /// 16×8 per lane, A stored transposed and shared by broadcasts (mm_sg_t).
    SgT,
    /// The same with 32 rows per workgroup (mm_sg_t32).
    SgT32,
    /// A·Bᵀ with both operands contiguous along k, 4×4 dot products (mm_nt; `nt_ok`).
    Nt4,
    /// The same product, 8×4 per lane with A shared by subgroup broadcasts (mm_sg_nt).
    SgNt,
    /// The same with 16 rows per workgroup (mm_sg_nt16): each B load feeds twice the fmas.
    SgNt16,
    /// 32 rows per workgroup (mm_sg_nt32).
    SgNt32,
    /// Any strides, 4×8 per invocation (mm_reg), for layouts no vec4 form fits.
    Gen,
    /// Any strides, 16×8 per lane with A shared by subgroup broadcasts (mm_sg_g).
    SgG,
}

impl V4Block {
    pub const ALL: [V4Block; 16] = [
        V4Block::R4C8,
        V4Block::R8C8,
        V4Block::R16C8,
        V4Block::A8,
        V4Block::T8,
        V4Block::Sg16,
        V4Block::Sg32,
        V4Block::Sg64,
        V4Block::SgT,
        V4Block::SgT32,
        V4Block::Nt4,
        V4Block::SgNt,
        V4Block::SgNt16,
        V4Block::SgNt32,
        V4Block::Gen,
        V4Block::SgG,
    ];

    pub fn name(self) -> &'static str {
        match self {
            V4Block::R4C8 => "r4c8",
            V4Block::R8C8 => "r8c8",
            V4Block::R16C8 => "r16c8",
            V4Block::A8 => "a8",
            V4Block::T8 => "t8",
            V4Block::Sg16 => "sg16",
            V4Block::Sg32 => "sg32",
            V4Block::Sg64 => "sg64",
            V4Block::SgT => "sgt",
            V4Block::SgT32 => "sgt32",
            V4Block::Nt4 => "nt4",
            V4Block::SgNt => "sgnt",
            V4Block::SgNt16 => "sgnt16",
            V4Block::SgNt32 => "sgnt32",
            V4Block::Gen => "gen",
            V4Block::SgG => "sgg",
        }
    }

    pub fn from_name(s: &str) -> Option<Self> {
        V4Block::ALL.into_iter().find(|b| b.name() == s)
    }

    /// Whether the operands' layout allows this block (subgroup needs aside).
    pub fn fits_layout(self, p: &MatmulParams) -> bool {
        match self {
            V4Block::R4C8 | V4Block::R8C8 | V4Block::R16C8 => vec4_ok(p),
            V4Block::A8 | V4Block::Sg16 | V4Block::Sg32 | V4Block::Sg64 => a_vec_k_ok(p),
            V4Block::T8 => a_vec_m_ok(p),
            V4Block::SgT | V4Block::SgT32 => a_vec_m_ok(p) && p.k.is_multiple_of(4),
            V4Block::Nt4 | V4Block::SgNt | V4Block::SgNt16 | V4Block::SgNt32 => nt_ok(p),
            // Only where nothing better fits, so the tuner has fewer to time.
            V4Block::Gen | V4Block::SgG => !vec4_ok(p) && !nt_ok(p),
        }
    }

    /// Whether this block can compute `p` on `gpu`.
    pub fn fits(self, gpu: &Gpu, p: &MatmulParams) -> bool {
        self.fits_layout(p)
            && (!matches!(
                self,
                V4Block::Sg16
                    | V4Block::Sg32
                    | V4Block::Sg64
                    | V4Block::SgT
                    | V4Block::SgT32
                    | V4Block::SgNt
                    | V4Block::SgNt16
                    | V4Block::SgNt32
                    | V4Block::SgG
            ) || sg8(gpu))
    }

    /// The kernel and grid for `p`, which must satisfy `fits`.
    pub fn launch(self, p: &MatmulParams) -> (Kernel, [u32; 3]) {
        // (shader, entry, rows per workgroup, columns per workgroup)
        let (shader, entry, rows, cols) = match self {
            V4Block::R4C8 => ("matmul_v4", "mm_v4", 32, 64),
            V4Block::R8C8 => ("matmul_v4", "mm_v4_r8", 64, 64),
            V4Block::R16C8 => ("matmul_v4", "mm_v4_r16", 128, 64),
            V4Block::A8 => ("matmul_v4a", "mm_v4a", 64, 64),
            V4Block::T8 => ("matmul_v4a", "mm_v4t", 64, 64),
            V4Block::Sg16 => ("matmul_sg", "mm_sg", 16, 64),
            V4Block::Sg32 => ("matmul_sg32", "mm_sg32", 32, 64),
            V4Block::Sg64 => ("matmul_sg64", "mm_sg64", 64, 64),
            V4Block::SgT => ("matmul_sg_t", "mm_sg_t", 16, 64),
            V4Block::SgT32 => ("matmul_sg_t32", "mm_sg_t32", 32, 64),
            V4Block::Nt4 => ("matmul_nt", "mm_nt", 32, 32),
            V4Block::SgNt => ("matmul_sg_nt", "mm_sg_nt", 8, 32),
            V4Block::SgNt16 => ("matmul_sg_nt16", "mm_sg_nt16", 16, 32),
            V4Block::SgNt32 => ("matmul_sg_nt32", "mm_sg_nt32", 32, 32),
            V4Block::Gen => ("matmul", "mm_reg", 32, 64),
            V4Block::SgG => ("matmul_sg_g", "mm_sg_g", 16, 64),
        };
        (
            Kernel::new(shader, entry),
            [p.n.div_ceil(cols), p.m.div_ceil(rows), p.batch],
        )
    }

    /// `Gpu::matmul_v4`, else `GPU_NIDS_MATMUL_V4=<block name>`, overrides (where the
    /// block fits); otherwise the tuner's choice among the blocks that fit, for this
    /// shape class (the first, `R4C8`, when tuning is off).
    fn for_product(gpu: &Gpu, p: &MatmulParams) -> Result<Self, GpuError> {
        if let Some(b) = gpu
            .matmul_v4
            .clone()
            .or_else(|| std::env::var("GPU_NIDS_MATMUL_V4").ok())
            .and_then(|s| Self::from_name(&s))
            .filter(|b| b.fits(gpu, p))
        {
            return Ok(b);
        }
        let b2 = |x: u32| x.max(1).next_power_of_two();
        // The layout decides which blocks fit, so it is part of the class.
        let names: Vec<&str> = V4Block::ALL
            .iter()
            .filter(|b| b.fits(gpu, p))
            .map(|b| b.name())
            .collect();
        if names.is_empty() {
            return Ok(V4Block::R4C8); // none fits: `select_with` falls back to the generic kernel
        }
        // Which blocks fit is part of the class (it depends on the layout).
        let class = format!(
            "matmul {} m{} n{} k{}",
            names.join(","),
            b2(p.m),
            b2(p.n),
            b2(p.k)
        );
        let chosen = super::tune::choose(gpu, &class, &names, |name, first| {
            let block = Self::from_name(name).expect("candidate names are block names");
            time_product(gpu, block.launch(&sample(p)), p, first)
        })?;
        Ok(Self::from_name(chosen).expect("a candidate"))
    }
}

/// `p` with at most 4 matrices in the batch: enough to time, cheap to run.
fn sample(p: &MatmulParams) -> MatmulParams {
    MatmulParams {
        batch: p.batch.min(4),
        ..*p
    }
}

/// Elements an operand's strides reach, +1.
fn extent(off: u32, bs: u32, batch: u32, rows: u32, rs: u32, cols: u32, cs: u32) -> usize {
    let last = |n: u32, s: u32| n.saturating_sub(1) as usize * s as usize;
    off as usize + last(batch, bs) + last(rows, rs) + last(cols, cs) + 1
}

/// Cost (see `tune::run_cost`) of `launch` on scratch operands shaped like `p`, after one
/// warm-up run (which also compiles the kernel) when `warm_up`.
fn time_product(
    gpu: &Gpu,
    launch: (Kernel, [u32; 3]),
    p: &MatmulParams,
    warm_up: bool,
) -> Result<f64, GpuError> {
    let q = sample(p);
    let a = gpu.zeros::<f32>(extent(q.a_off, q.a_bs, q.batch, q.m, q.a_rs, q.k, q.a_cs))?;
    let b = gpu.zeros::<f32>(extent(q.b_off, q.b_bs, q.batch, q.k, q.b_rs, q.n, q.b_cs))?;
    let c = gpu.zeros::<f32>(extent(q.c_off, q.c_bs, q.batch, q.m, q.c_rs, q.n, 1))?;
    let rec = |bt: &mut Batch| bt.dispatch(launch.0, &q, &[a.raw(), b.raw(), c.raw()], launch.1);
    if warm_up {
        super::tune::run_cost(gpu, &rec)?;
    }
    super::tune::run_cost(gpu, &rec)
}

/// The kernel and workgroup grid that compute `p` with `variant`: the register-blocked
/// shape switches to its vec4 forms when the operands' layout allows (the first vec4
/// block; `matmul` lets the tuner pick among blocks).
pub fn select(variant: MatmulVariant, p: &MatmulParams) -> (Kernel, [u32; 3]) {
    select_with(variant, p, V4Block::R4C8)
}

/// `select` with an explicit vec4 register block.
pub fn select_with(variant: MatmulVariant, p: &MatmulParams, block: V4Block) -> (Kernel, [u32; 3]) {
    if variant == MatmulVariant::Reg && std::env::var_os("GPU_NIDS_NO_VEC4").is_none() {
        if block.fits_layout(p) {
            return block.launch(p);
        }
        if vec4_ok(p) {
            return V4Block::R4C8.launch(p);
        }
        if nt_ok(p) {
            return V4Block::Nt4.launch(p);
        }
    }
    (variant.kernel(), variant.groups(p))
}

/// Record C = A·B (+ beta·C) with the strides in `p`.
pub fn matmul(
    batch: &mut Batch,
    variant: MatmulVariant,
    p: &MatmulParams,
    a: &wgpu::Buffer,
    b: &wgpu::Buffer,
    c: &wgpu::Buffer,
) -> Result<(), GpuError> {
    if p.m == 0 || p.n == 0 || p.batch == 0 {
        return Ok(());
    }
    let block = if variant == MatmulVariant::Reg {
        V4Block::for_product(batch.gpu(), p)?
    } else {
        V4Block::R4C8
    };
    let (kernel, groups) = select_with(variant, p, block);
    batch.dispatch(kernel, p, &[a, b, c], groups)
}

/// Record C = A·B (+ beta·C) with an explicit vec4 block (tests, benchmarks).
pub fn matmul_with(
    batch: &mut Batch,
    variant: MatmulVariant,
    block: V4Block,
    p: &MatmulParams,
    a: &wgpu::Buffer,
    b: &wgpu::Buffer,
    c: &wgpu::Buffer,
) -> Result<(), GpuError> {
    if p.m == 0 || p.n == 0 || p.batch == 0 {
        return Ok(());
    }
    let (kernel, groups) = select_with(variant, p, block);
    batch.dispatch(kernel, p, &[a, b, c], groups)
}

/// CPU reference in f64: same strides, same semantics.
pub fn matmul_ref(p: &MatmulParams, a: &[f32], b: &[f32], c: &mut [f32]) {
    for bi in 0..p.batch as usize {
        for i in 0..p.m as usize {
            for j in 0..p.n as usize {
                let mut s = 0f64;
                for k in 0..p.k as usize {
                    let ai = p.a_off as usize
                        + bi * p.a_bs as usize
                        + i * p.a_rs as usize
                        + k * p.a_cs as usize;
                    let bj = p.b_off as usize
                        + bi * p.b_bs as usize
                        + k * p.b_rs as usize
                        + j * p.b_cs as usize;
                    s += a[ai] as f64 * b[bj] as f64;
                }
                let ci = p.c_off as usize + bi * p.c_bs as usize + i * p.c_rs as usize + j;
                if p.beta != 0.0 {
                    s += p.beta as f64 * c[ci] as f64;
                }
                c[ci] = s as f32;
            }
        }
    }
}

/// `matmul_host` with an explicit vec4 block.
pub fn matmul_host_with(
    gpu: &Gpu,
    variant: MatmulVariant,
    block: V4Block,
    p: &MatmulParams,
    a: &[f32],
    b: &[f32],
    c_init: &[f32],
) -> Result<Vec<f32>, GpuError> {
    let (ga, gb, gc) = (gpu.upload(a)?, gpu.upload(b)?, gpu.upload(c_init)?);
    let mut batch = gpu.batch();
    matmul_with(&mut batch, variant, block, p, ga.raw(), gb.raw(), gc.raw())?;
    batch.submit()?;
    gpu.read(&gc)
}

/// Convenience for tests and benches: upload, run, read back.
pub fn matmul_host(
    gpu: &Gpu,
    variant: MatmulVariant,
    p: &MatmulParams,
    a: &[f32],
    b: &[f32],
    c_init: &[f32],
) -> Result<Vec<f32>, GpuError> {
    let (ga, gb, gc) = (gpu.upload(a)?, gpu.upload(b)?, gpu.upload(c_init)?);
    let mut batch = gpu.batch();
    matmul(&mut batch, variant, p, ga.raw(), gb.raw(), gc.raw())?;
    batch.submit()?;
    gpu.read(&gc)
}
