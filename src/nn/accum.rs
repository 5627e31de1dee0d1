//! Running sums kept on the GPU (loss terms over many steps).

use bytemuck::{Pod, Zeroable};

use crate::gpu::{Batch, GpuError, Kernel};

#[repr(C)]
#[derive(Clone, Copy, Pod, Zeroable)]
struct Params {
    chunks: u32,
    width: u32,
    count: f32,
    _pad: u32,
}

/// acc[j] += Σ_c src[c·width + j] (j < width); acc[width] += count. `acc` holds width + 1.
pub fn accumulate(
    b: &mut Batch,
    chunks: usize,
    width: usize,
    count: f32,
    src: &wgpu::Buffer,
    acc: &wgpu::Buffer,
) -> Result<(), GpuError> {
    let p = Params {
        chunks: chunks as u32,
        width: width as u32,
        count,
        _pad: 0,
    };
    b.dispatch(
        Kernel::new("accum", "accumulate"),
        &p,
        &[src, acc],
        [(width as u32 + 1).div_ceil(64), 1, 1],
    )
}

/// CPU reference.
pub fn accumulate_ref(chunks: usize, width: usize, count: f64, src: &[f64], acc: &mut [f64]) {
    for j in 0..width {
        acc[j] += (0..chunks).map(|c| src[c * width + j]).sum::<f64>();
    }
    acc[width] += count;
}
