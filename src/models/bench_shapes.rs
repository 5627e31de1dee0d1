//! The models' layer shapes for `bench ops` and the op tests, taken from
//! the models' own shape types (so each architecture is written once), one
//! list per op at a batch size.

use super::baselines::{self, ConvShapes};
use super::doc_ids;
use super::vae::{self, LATENT, PIXELS};
use crate::nn::batchnorm::BatchNormShape;
use crate::nn::conv1d::transpose::ConvT1dShape;
use crate::nn::conv1d::Conv1dShape;
use crate::nn::conv2d::ConvLayer;
use crate::nn::dense::DenseShape;
use crate::nn::loss::LossShape;
use crate::nn::matmul::MatmulVariant;
use crate::nn::pool1d::Pool1dShape;

/// The class count DOC-IDS's head has in the benchmarks (`bench train --profile`
/// uses the same).
pub const DOC_IDS_CLASSES: usize = 20;

fn vae(batch: usize, mm: MatmulVariant) -> vae::Shapes {
    vae::Shapes::new(batch, mm)
}

fn doc(batch: usize, mm: MatmulVariant) -> doc_ids::Shapes {
    doc_ids::Shapes::new(batch, DOC_IDS_CLASSES, mm)
}

/// The VAE's six convolution layers (docs/MODELS.md §2) at `batch`:
/// (name, layer, forward flops).
pub fn conv2d(batch: usize) -> Vec<(String, ConvLayer, f64)> {
    // The convolutions do not depend on the matmul shape.
    let s = vae(batch, MatmulVariant::Tiled);
    let conv = |l: crate::nn::conv2d::Conv2dShape| {
        (
            format!("conv2d {}→{} {}×{}", l.c_in, l.c_out, l.h, l.w),
            ConvLayer::Conv(l),
        )
    };
    let convt = |l: crate::nn::conv2d::ConvTranspose2dShape| {
        (
            format!("convT {}→{} {}×{}", l.c_in, l.c_out, l.h, l.w),
            ConvLayer::Transpose(l),
        )
    };
    [
        conv(s.e0),
        conv(s.e1),
        conv(s.e2),
        convt(s.d0),
        convt(s.d1),
        convt(s.d2),
    ]
    .into_iter()
    .map(|(name, l)| (name, l, l.flops()))
    .collect()
}

/// The dense shapes of the VAE and DOC-IDS at a batch size.
pub fn dense(batch: usize, mm: MatmulVariant) -> Vec<(String, DenseShape)> {
    let (v, d) = (vae(batch, mm), doc(batch, mm));
    let named = |what: &str, s: DenseShape| (format!("{what} {}→{}", s.d_in, s.d_out), s);
    vec![
        named("vae enc mu/logvar", v.mu),
        named("vae dec", v.dec_in),
        named("doc fc5", d.fc5),
        named("doc fc6", d.fc6),
        named("doc head", d.head),
        named("doc ae", d.ae[0]),
        named("doc ae", d.ae[1]),
        named("doc ae", d.ae[2]),
        named("doc ae", d.ae[3]),
    ]
}

/// "name c_in→c_out kK sS[ pP] (l→l_out)", as the 1D layers are listed.
fn conv1d_name(
    what: &str,
    (c_in, c_out, k, stride, pad): (usize, usize, usize, usize, usize),
    (l, l_out): (usize, usize),
) -> String {
    let pad = if pad > 0 {
        format!(" p{pad}")
    } else {
        String::new()
    };
    format!("{what} {c_in}→{c_out} k{k} s{stride}{pad} ({l}→{l_out})")
}

/// The DOC-IDS feature extractor's convolutions (docs/MODELS.md §4, Table 1)
/// and the 1D-Conv AE baseline's encoder, at batch `n`; see
/// [`conv_transpose1d`] for its decoder.
pub fn conv1d(n: usize) -> Vec<(String, Conv1dShape)> {
    let (d, c) = (doc(n, MatmulVariant::Tiled), ConvShapes::new(n));
    let named = |what: &str, s: Conv1dShape| {
        let name = conv1d_name(
            what,
            (s.c_in, s.c_out, s.k, s.stride, s.pad),
            (s.l, s.l_out()),
        );
        (name, s)
    };
    vec![
        named("doc-ids.conv1", d.conv1),
        named("doc-ids.conv2", d.conv2),
        named("convae.enc1", c.e1),
        named("convae.enc2", c.e2),
    ]
}

/// The 1D-Conv AE baseline's decoder (docs/MODELS.md §4) at batch `n`.
pub fn conv_transpose1d(n: usize) -> Vec<(String, ConvT1dShape)> {
    let c = ConvShapes::new(n);
    let named = |what: &str, s: ConvT1dShape| {
        let name = conv1d_name(
            what,
            (s.c_in, s.c_out, s.k, s.stride, s.pad),
            (s.l, s.l_out()),
        );
        (name, s)
    };
    vec![
        named("convae.dec1 convT", c.d1),
        named("convae.dec2 convT", c.d2),
    ]
}

/// DOC-IDS's two pools (docs/MODELS.md §4, Table 1) at batch `n`.
pub fn pool1d(n: usize) -> Vec<(String, Pool1dShape)> {
    let d = doc(n, MatmulVariant::Tiled);
    let named = |what: &str, s: Pool1dShape| (format!("{what} {}×{}→{}", s.c, s.l, s.l_out()), s);
    vec![
        named("doc-ids.pool1", d.pool1),
        named("doc-ids.pool2", d.pool2),
    ]
}

/// DOC-IDS's four batch-norms (docs/MODELS.md §4, Table 1) at batch `n`.
pub fn batchnorm(n: usize) -> Vec<(String, BatchNormShape)> {
    let d = doc(n, MatmulVariant::Tiled);
    d.bn.iter()
        .zip(doc_ids::NORMS)
        .map(|(s, (name, _))| {
            let size = if s.l > 1 {
                format!("{}×{}", s.c, s.l)
            } else {
                s.c.to_string()
            };
            (format!("doc-ids.{name} {size}"), *s)
        })
        .collect()
}

/// The loss and score shapes of the models at a batch size.
pub fn loss(batch: usize) -> Vec<(String, LossShape)> {
    let feat = doc_ids::FEAT;
    let classes = DOC_IDS_CLASSES;
    vec![
        (
            format!("vae bce {PIXELS} px"),
            LossShape::Bce { n: batch * PIXELS },
        ),
        (
            format!("vae kl {LATENT}"),
            LossShape::Kl { n: batch * LATENT },
        ),
        (
            "vae score l1".into(),
            LossShape::ScoreL1Sigmoid {
                rows: batch,
                cols: PIXELS,
            },
        ),
        (
            format!("doc l_D ce {classes}"),
            LossShape::SoftmaxCe {
                rows: batch,
                classes,
            },
        ),
        (
            format!("doc l_C {classes}"),
            LossShape::Compactness {
                n: batch,
                k: classes,
            },
        ),
        (
            format!("doc l_R mse {feat}"),
            LossShape::Mse { n: batch * feat },
        ),
        (
            format!("doc score mse {feat}"),
            LossShape::ScoreMse {
                rows: batch,
                cols: feat,
            },
        ),
        (
            format!("ae score mse {}", baselines::INPUT),
            LossShape::ScoreMse {
                rows: batch,
                cols: baselines::INPUT,
            },
        ),
    ]
}
