//! Parameter tensors shared by the flow models (DOC-IDS and its baselines): PyTorch
//! names and shapes, seeded PyTorch-default initialisation, upload and download.

use crate::gpu::{Buf, Gpu, GpuError};
use crate::nn::init::{self, HostRng};

/// One parameter tensor and its gradient.
pub struct Param {
    pub name: String,
    pub shape: Vec<usize>,
    pub w: Buf<f32>,
    pub g: Buf<f32>,
}

/// How a model is built, layer by layer; the order fixes tensor order and RNG draws.
#[derive(Clone, Debug)]
pub enum Layer {
    /// Linear / conv / conv-transpose: `<name>.weight` of `shape`, `<name>.bias` of
    /// `bias` values; PyTorch's default (Kaiming-uniform) initialisation.
    Affine {
        name: &'static str,
        shape: Vec<usize>,
        bias: usize,
    },
    /// Batch-norm affine parameters: `<name>.weight` = 1, `<name>.bias` = 0 (PyTorch's
    /// init; no RNG draws, so adding a norm does not shift the other layers' values).
    Norm { name: &'static str, c: usize },
}

/// (name, shape) of every tensor of `layers`, in order.
pub fn specs(layers: &[Layer]) -> Vec<(String, Vec<usize>)> {
    let mut out = Vec::new();
    for l in layers {
        match l {
            Layer::Affine { name, shape, bias } => {
                out.push((format!("{name}.weight"), shape.clone()));
                out.push((format!("{name}.bias"), vec![*bias]));
            }
            Layer::Norm { name, c } => {
                out.push((format!("{name}.weight"), vec![*c]));
                out.push((format!("{name}.bias"), vec![*c]));
            }
        }
    }
    out
}

/// Initial host values for `seed`, in `specs` order.
pub fn init(layers: &[Layer], seed: u64) -> Vec<Vec<f32>> {
    let mut rng = HostRng::new(seed);
    let mut out = Vec::new();
    for l in layers {
        match l {
            Layer::Affine { shape, bias, .. } => {
                let (w, b) = init::layer(&mut rng, shape, *bias);
                out.push(w);
                out.push(b);
            }
            Layer::Norm { c, .. } => {
                out.push(vec![1.0; *c]);
                out.push(vec![0.0; *c]);
            }
        }
    }
    out
}

/// Upload host values (in `specs` order), each with a zeroed gradient.
pub fn upload(gpu: &Gpu, layers: &[Layer], values: &[Vec<f32>]) -> Result<Vec<Param>, GpuError> {
    let specs = specs(layers);
    assert_eq!(
        values.len(),
        specs.len(),
        "expected {} parameter tensors",
        specs.len()
    );
    specs
        .into_iter()
        .zip(values)
        .map(|((name, shape), v)| {
            assert_eq!(
                v.len(),
                shape.iter().product::<usize>(),
                "{name}: wrong length"
            );
            Ok(Param {
                name,
                w: gpu.upload(v)?,
                g: gpu.zeros(v.len())?,
                shape,
            })
        })
        .collect()
}

pub fn download(gpu: &Gpu, params: &[Param]) -> Result<Vec<Vec<f32>>, GpuError> {
    params.iter().map(|p| gpu.read(&p.w)).collect()
}

pub fn download_grads(gpu: &Gpu, params: &[Param]) -> Result<Vec<Vec<f32>>, GpuError> {
    params.iter().map(|p| gpu.read(&p.g)).collect()
}

/// u8 samples → f32 in [0, 1], the network input of every flow model.
pub fn to_unit(bytes: &[u8]) -> Vec<f32> {
    bytes.iter().map(|&p| p as f32 * (1.0 / 255.0)).collect()
}
