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

/// True when both operands are contiguous along k (see shaders/matmul_nt.wgsl).
pub fn nt_ok(p: &MatmulParams) -> bool {
    p.a_cs == 1
        && p.b_rs == 1
        && [p.k, p.a_rs, p.a_bs, p.a_off, p.b_cs, p.b_bs, p.b_off]
            .iter()
            .all(|v| v % 4 == 0)
}

/// The kernel and workgroup grid that compute `p` with `variant`: the register-blocked
/// shape switches to its vec4 forms when the operands' layout allows.
pub fn select(variant: MatmulVariant, p: &MatmulParams) -> (Kernel, [u32; 3]) {
    if variant == MatmulVariant::Reg && std::env::var_os("GPU_NIDS_NO_VEC4").is_none() {
        if vec4_ok(p) {
            return (Kernel::new("matmul_v4", "mm_v4"), variant.groups(p));
        }
        if nt_ok(p) {
            return (
                Kernel::new("matmul_nt", "mm_nt"),
                [p.n.div_ceil(32), p.m.div_ceil(32), p.batch],
            );
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
    let (kernel, groups) = select(variant, p);
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
