//! Seeded normal noise (Philox-4x32-10 + Box–Muller, counter-based) and the VAE
//! reparameterisation z = μ + ε·exp(½·logvar) with its backward.
//!
//! ε for element i at step t depends only on (seed, t, stream, i), so runs repeat and
//! the CPU port below reproduces the generator: the integer words bit for bit, the
//! normals to within the adapter's log/sin/cos accuracy.

use bytemuck::{Pod, Zeroable};

use crate::gpu::{grid, Batch, GpuError, Kernel};
use crate::nn::loss::GradOut;

/// Invocations per workgroup; each invocation makes one 4-word Philox block.
const WG: usize = 64;
/// Stream id of the reparameterisation noise (other users of the generator pick others).
pub const REPARAM_STREAM: u32 = 0;

#[repr(C)]
#[derive(Clone, Copy, Debug, Default, Pod, Zeroable)]
struct Params {
    n: u32,
    seed_lo: u32,
    seed_hi: u32,
    step_lo: u32,
    step_hi: u32,
    stream: u32,
    flags: u32,
    _pad: u32,
}

/// Where the noise comes from: seed, training step, stream.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct NoiseKey {
    pub seed: u64,
    pub step: u64,
    pub stream: u32,
}

impl NoiseKey {
    pub fn new(seed: u64, step: u64) -> Self {
        NoiseKey {
            seed,
            step,
            stream: REPARAM_STREAM,
        }
    }
}

fn launch(
    b: &mut Batch,
    entry: &'static str,
    n: usize,
    key: NoiseKey,
    flags: u32,
    bufs: [&wgpu::Buffer; 5],
) -> Result<(), GpuError> {
    if n == 0 {
        return Ok(());
    }
    let p = Params {
        n: n as u32,
        seed_lo: key.seed as u32,
        seed_hi: (key.seed >> 32) as u32,
        step_lo: key.step as u32,
        step_hi: (key.step >> 32) as u32,
        stream: key.stream,
        flags,
        _pad: 0,
    };
    let blocks = n.div_ceil(4);
    b.dispatch(
        Kernel::new("reparam", entry),
        &p,
        &bufs,
        grid(blocks.div_ceil(WG) as u32),
    )
}

/// eps[..n] = ε ~ N(0, 1) for `key`.
pub fn normal(b: &mut Batch, n: usize, key: NoiseKey, eps: &wgpu::Buffer) -> Result<(), GpuError> {
    launch(b, "normal", n, key, 0, [eps, eps, eps, eps, eps])
}

/// bits[..n] = the raw Philox words (u32) for `key`; for checking the generator.
pub fn philox_bits(
    b: &mut Batch,
    n: usize,
    key: NoiseKey,
    bits: &wgpu::Buffer,
) -> Result<(), GpuError> {
    launch(b, "philox_bits", n, key, 0, [bits, bits, bits, bits, bits])
}

/// z = μ + ε·exp(½·logvar) over `n` elements, writing ε (needed by `backward`) and z.
pub fn forward(
    b: &mut Batch,
    n: usize,
    key: NoiseKey,
    mu: &wgpu::Buffer,
    logvar: &wgpu::Buffer,
    eps: &wgpu::Buffer,
    z: &wgpu::Buffer,
) -> Result<(), GpuError> {
    launch(b, "reparam_fwd", n, key, 0, [mu, logvar, logvar, eps, z])
}

/// dμ = dz, dlogvar = dz·ε·½·exp(½·logvar); each overwrites or adds (the KL loss's
/// gradient may already be there).
pub fn backward(
    b: &mut Batch,
    n: usize,
    dz: &wgpu::Buffer,
    logvar: &wgpu::Buffer,
    eps: &wgpu::Buffer,
    dmu: GradOut,
    dlogvar: GradOut,
) -> Result<(), GpuError> {
    let flags = u32::from(dmu.accumulate) | (u32::from(dlogvar.accumulate) << 1);
    let key = NoiseKey::new(0, 0);
    launch(
        b,
        "reparam_bwd",
        n,
        key,
        flags,
        [dz, logvar, eps, dmu.buf, dlogvar.buf],
    )
}

// ---- CPU port of the generator and references ----

const M0: u32 = 0xD251_1F53;
const M1: u32 = 0xCD9E_8D57;
const W0: u32 = 0x9E37_79B9;
const W1: u32 = 0xBB67_AE85;

/// Philox-4x32-10 (Random123's philox4x32_R with R = 10).
pub fn philox4x32_10(ctr: [u32; 4], key: [u32; 2]) -> [u32; 4] {
    let (mut c, mut k) = (ctr, key);
    for _ in 0..10 {
        let p0 = M0 as u64 * c[0] as u64;
        let p1 = M1 as u64 * c[2] as u64;
        c = [
            (p1 >> 32) as u32 ^ c[1] ^ k[0],
            p1 as u32,
            (p0 >> 32) as u32 ^ c[3] ^ k[1],
            p0 as u32,
        ];
        k = [k[0].wrapping_add(W0), k[1].wrapping_add(W1)];
    }
    c
}

fn block_bits(key: NoiseKey, q: u32) -> [u32; 4] {
    philox4x32_10(
        [q, key.step as u32, (key.step >> 32) as u32, key.stream],
        [key.seed as u32, (key.seed >> 32) as u32],
    )
}

/// The words `philox_bits` writes.
pub fn philox_bits_ref(n: usize, key: NoiseKey) -> Vec<u32> {
    (0..n)
        .map(|i| block_bits(key, (i / 4) as u32)[i % 4])
        .collect()
}

/// The normals `normal` writes, computed in f32 with the same operations.
pub fn normal_ref(n: usize, key: NoiseKey) -> Vec<f32> {
    const INV_2_24: f32 = 1.0 / 16_777_216.0;
    let bm = |x: u32, y: u32| {
        let u1 = ((x >> 8) as f32 + 1.0) * INV_2_24;
        let u2 = (y >> 8) as f32 * INV_2_24;
        let r = (-2.0 * u1.ln()).sqrt();
        let t = std::f32::consts::TAU * (u2 - 0.5);
        [-r * t.cos(), -r * t.sin()]
    };
    (0..n)
        .map(|i| {
            let x = block_bits(key, (i / 4) as u32);
            let j = i % 4;
            let pair = bm(x[j & 2], x[(j & 2) + 1]);
            pair[j & 1]
        })
        .collect()
}

pub fn forward_ref(mu: &[f64], logvar: &[f64], eps: &[f64]) -> Vec<f64> {
    mu.iter()
        .zip(logvar)
        .zip(eps)
        .map(|((m, l), e)| m + e * (0.5 * l).exp())
        .collect()
}

/// (dμ, dlogvar) for upstream dz.
pub fn backward_ref(dz: &[f64], logvar: &[f64], eps: &[f64]) -> (Vec<f64>, Vec<f64>) {
    let dlv = dz
        .iter()
        .zip(logvar)
        .zip(eps)
        .map(|((d, l), e)| d * e * 0.5 * (0.5 * l).exp())
        .collect();
    (dz.to_vec(), dlv)
}
