//! Shared test helpers: one GPU per test binary, opened with portable limits.
#![allow(dead_code)]

use std::sync::OnceLock;

use gpu_nids::gpu::{Gpu, GpuOptions, LimitsMode};

/// The test device, created once. Tests request `wgpu::Limits::default()` so a kernel
/// that needs more than a laptop GPU offers fails here.
pub fn gpu() -> &'static Gpu {
    static GPU: OnceLock<Gpu> = OnceLock::new();
    GPU.get_or_init(|| {
        let gpu = new_gpu();
        eprintln!(
            "test adapter: {} ({:?}, {:?})",
            gpu.info.name, gpu.info.backend, gpu.info.device_type
        );
        gpu
    })
}

/// A device of its own, opened as `gpu()`'s is, for a test that changes its settings.
pub fn new_gpu() -> Gpu {
    let mut opts = GpuOptions::from_env();
    opts.limits = LimitsMode::Portable;
    opts.tune = false;
    Gpu::new(&opts).unwrap_or_else(|e| panic!("test GPU: {e}"))
}

/// Deterministic pseudo-random values in [-1, 1) (splitmix64), so failures reproduce.
pub fn rand_vec(n: usize, seed: u64) -> Vec<f32> {
    let mut s = seed.wrapping_mul(0x9E37_79B9_7F4A_7C15).wrapping_add(1);
    (0..n)
        .map(|_| {
            s = s.wrapping_add(0x9E37_79B9_7F4A_7C15);
            let mut z = s;
            z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
            z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
            z ^= z >> 31;
            ((z >> 40) as f32 / (1u64 << 24) as f32) * 2.0 - 1.0
        })
        .collect()
}

/// |got − want| ≤ rel·|want| + abs for every element; panics naming the first miss.
pub fn assert_close(what: &str, got: &[f32], want: &[f32], rel: f64, abs: f64) {
    assert_eq!(got.len(), want.len(), "{what}: length");
    for (i, (&g, &w)) in got.iter().zip(want).enumerate() {
        let (g, w) = (g as f64, w as f64);
        assert!(
            (g - w).abs() <= rel * w.abs() + abs && g.is_finite(),
            "{what}: element {i}: got {g}, want {w} (tolerance {rel} rel + {abs} abs)"
        );
    }
}

/// Central finite differences of a scalar f64 function: checks that `analytic` (the
/// reference backward) is ∂f/∂x at `x`, within rel + abs tolerance. Checks every
/// coordinate when there are at most `max_coords`, else an evenly spaced subset.
pub fn fd_check(
    what: &str,
    f: impl Fn(&[f64]) -> f64,
    x: &[f64],
    analytic: &[f64],
    max_coords: usize,
) {
    assert_eq!(x.len(), analytic.len(), "{what}: gradient length");
    let step = (x.len() / max_coords.max(1)).max(1);
    let mut xp = x.to_vec();
    for i in (0..x.len()).step_by(step) {
        let h = 1e-6 * x[i].abs().max(1.0);
        xp[i] = x[i] + h;
        let fp = f(&xp);
        xp[i] = x[i] - h;
        let fm = f(&xp);
        xp[i] = x[i];
        let num = (fp - fm) / (2.0 * h);
        let a = analytic[i];
        assert!(
            (num - a).abs() <= 1e-5 * num.abs().max(a.abs()) + 1e-6,
            "{what}: d/dx[{i}]: finite difference {num}, analytic {a}"
        );
    }
}

/// f64 → f32 copy, for feeding reference inputs to the GPU.
pub fn to_f32(v: &[f64]) -> Vec<f32> {
    v.iter().map(|&x| x as f32).collect()
}

/// f32 → f64 copy.
pub fn to_f64(v: &[f32]) -> Vec<f64> {
    v.iter().map(|&x| x as f64).collect()
}

/// Scores of samples `idx` of `data` by a loaded model.
pub fn score_indices(
    scorer: &mut dyn gpu_nids::models::registry::Scorer,
    data: &dyn gpu_nids::ingest::Samples,
    idx: &[usize],
) -> Vec<f64> {
    let bytes = gpu_nids::data::samplers::gather(data, idx);
    scorer
        .score(gpu(), &bytes, idx.len())
        .unwrap()
        .into_iter()
        .map(f64::from)
        .collect()
}
