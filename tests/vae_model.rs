//! Whole-model check (as llm.c checks GPT-2 against PyTorch): one VAE training step at
//! batch 2 on the GPU against a plain f64 CPU composition of the per-op references —
//! the loss and every parameter gradient.

mod common;
use common::{gpu, rand_vec, to_f64};
use gpu_nids::models::vae::{param_specs, Vae, VaeRun, LATENT, PIXELS};
use gpu_nids::nn::conv2d::{
    conv2d_backward_ref, conv2d_ref, conv_transpose2d_backward_ref, conv_transpose2d_ref,
    relu_backward_ref, Conv2dShape, ConvTranspose2dShape,
};
use gpu_nids::nn::dense::{backward_ref as dense_bwd, forward_ref as dense_fwd};
use gpu_nids::nn::loss::{bce_with_logits_ref, kl_normal_ref};
use gpu_nids::nn::reparam::{
    backward_ref as reparam_bwd, forward_ref as reparam_fwd, normal_ref, NoiseKey,
};
use gpu_nids::nn::{Act, Act as Activation};

const FLAT: usize = 8192;

fn conv(n: usize, c_in: usize, side: usize, c_out: usize) -> Conv2dShape {
    Conv2dShape {
        n,
        c_in,
        h: side,
        w: side,
        c_out,
        k: 4,
        stride: 2,
        pad: 1,
    }
}
fn convt(n: usize, c_in: usize, side: usize, c_out: usize) -> ConvTranspose2dShape {
    ConvTranspose2dShape {
        n,
        c_in,
        h: side,
        w: side,
        c_out,
        k: 4,
        stride: 2,
        pad: 1,
    }
}

/// (loss sums [BCE, KL], gradients of (ΣBCE + ΣKL)/n in param_specs order).
fn reference_step(p: &[Vec<f64>], x: &[f64], eps: &[f64], n: usize) -> ([f64; 2], Vec<Vec<f64>>) {
    let (e0, e1, e2) = (
        conv(n, 1, 64, 32),
        conv(n, 32, 32, 64),
        conv(n, 64, 16, 128),
    );
    let (d0, d1, d2) = (
        convt(n, 128, 8, 64),
        convt(n, 64, 16, 32),
        convt(n, 32, 32, 1),
    );
    let relu = Activation::Relu;
    // Forward.
    let c1 = conv2d_ref(&e0, relu, x, &p[0], Some(&p[1]));
    let c2 = conv2d_ref(&e1, relu, &c1, &p[2], Some(&p[3]));
    let h = conv2d_ref(&e2, relu, &c2, &p[4], Some(&p[5]));
    let mu = dense_fwd(n, FLAT, LATENT, &h, &p[6], Some(&p[7]), Act::None);
    let lv = dense_fwd(n, FLAT, LATENT, &h, &p[8], Some(&p[9]), Act::None);
    let z = reparam_fwd(&mu, &lv, eps);
    let a0 = dense_fwd(n, LATENT, FLAT, &z, &p[10], Some(&p[11]), Act::Relu);
    let a1 = conv_transpose2d_ref(&d0, relu, &a0, &p[12], Some(&p[13]));
    let a2 = conv_transpose2d_ref(&d1, relu, &a1, &p[14], Some(&p[15]));
    let logits = conv_transpose2d_ref(&d2, Activation::None, &a2, &p[16], Some(&p[17]));
    let (bce, g_logits) = bce_with_logits_ref(&logits, x);
    let (kl, kl_mu, kl_lv) = kl_normal_ref(&mu, &lv);
    let s = 1.0 / n as f64;
    let scale = |v: Vec<f64>| v.into_iter().map(|g| g * s).collect::<Vec<_>>();
    // Backward.
    let mut g: Vec<Vec<f64>> = vec![vec![]; 18];
    let (g_a2, w, b) = conv_transpose2d_backward_ref(&d2, &a2, &p[16], &scale(g_logits));
    (g[16], g[17]) = (w, b);
    let (g_a1, w, b) =
        conv_transpose2d_backward_ref(&d1, &a1, &p[14], &relu_backward_ref(relu, &a2, &g_a2));
    (g[14], g[15]) = (w, b);
    let (g_a0, w, b) =
        conv_transpose2d_backward_ref(&d0, &a0, &p[12], &relu_backward_ref(relu, &a1, &g_a1));
    (g[12], g[13]) = (w, b);
    let (g_z, w, b) = dense_bwd(
        n,
        LATENT,
        FLAT,
        &z,
        &p[10],
        &relu_backward_ref(relu, &a0, &g_a0),
    );
    (g[10], g[11]) = (w, b);
    let (rz_mu, rz_lv) = reparam_bwd(&g_z, &lv, eps);
    let g_mu: Vec<f64> = scale(kl_mu)
        .iter()
        .zip(&rz_mu)
        .map(|(a, b)| a + b)
        .collect();
    let g_lv: Vec<f64> = scale(kl_lv)
        .iter()
        .zip(&rz_lv)
        .map(|(a, b)| a + b)
        .collect();
    let (gh_mu, w, b) = dense_bwd(n, FLAT, LATENT, &h, &p[6], &g_mu);
    (g[6], g[7]) = (w, b);
    let (gh_lv, w, b) = dense_bwd(n, FLAT, LATENT, &h, &p[8], &g_lv);
    (g[8], g[9]) = (w, b);
    let g_h: Vec<f64> = gh_mu.iter().zip(&gh_lv).map(|(a, b)| a + b).collect();
    let (g_c2, w, b) = conv2d_backward_ref(&e2, &c2, &p[4], &relu_backward_ref(relu, &h, &g_h));
    (g[4], g[5]) = (w, b);
    let (g_c1, w, b) = conv2d_backward_ref(&e1, &c1, &p[2], &relu_backward_ref(relu, &c2, &g_c2));
    (g[2], g[3]) = (w, b);
    let (_, w, b) = conv2d_backward_ref(&e0, x, &p[0], &relu_backward_ref(relu, &c1, &g_c1));
    (g[0], g[1]) = (w, b);
    ([bce, kl], g)
}

#[test]
fn one_step_matches_f64_reference_at_batch_2() {
    let g = gpu();
    let n = 2;
    // PyTorch-like scale: U(−1/√fan_in, 1/√fan_in).
    let params: Vec<Vec<f32>> = param_specs()
        .iter()
        .enumerate()
        .map(|(i, (_, shape, fan_in))| {
            let bound = 1.0 / (*fan_in as f32).sqrt();
            rand_vec(shape.iter().product(), 100 + i as u64)
                .into_iter()
                .map(|v| v * bound)
                .collect()
        })
        .collect();
    // Traffic-image-like input: white padding with some dark header bytes.
    let pixels: Vec<u8> = rand_vec(n * PIXELS, 7)
        .iter()
        .map(|v| {
            if *v > 0.3 {
                255
            } else {
                ((v + 1.0) * 150.0) as u8
            }
        })
        .collect();
    let model = Vae::from_host(g, &params).unwrap();
    let run = VaeRun::new(g, n, true).unwrap();
    run.upload(g, &pixels);
    let key = NoiseKey::new(42, 3);
    let mut b = g.batch();
    run.forward_backward(&mut b, &model, n, key).unwrap();
    b.submit().unwrap();
    let loss = run.take_loss(g).unwrap();
    let grads = model.download_grads(g).unwrap();

    let x: Vec<f64> = pixels.iter().map(|&p| p as f64 / 255.0).collect();
    let eps = to_f64(&normal_ref(n * LATENT, key));
    let p64: Vec<Vec<f64>> = params.iter().map(|v| to_f64(v)).collect();
    let ([bce, kl], want) = reference_step(&p64, &x, &eps, n);

    assert!(
        (loss.bce - bce / n as f64).abs() <= 1e-4 * bce.abs() / n as f64,
        "BCE per sample: GPU {} vs reference {}",
        loss.bce,
        bce / n as f64
    );
    assert!(
        (loss.kl - kl / n as f64).abs() <= 1e-3 * (kl.abs() / n as f64) + 1e-5,
        "KL per sample: GPU {} vs reference {}",
        loss.kl,
        kl / n as f64
    );
    // Gradients come out of f32 reductions of up to 8192 terms (and f32 exp/log in the
    // losses), so each tensor is compared relative to its own largest entry.
    for ((name, _, _), (got, want)) in param_specs().iter().zip(grads.iter().zip(&want)) {
        let scale = want.iter().fold(0f64, |m, v| m.max(v.abs()));
        assert!(
            scale > 0.0,
            "{name}: reference gradient is all zero (test input too degenerate)"
        );
        for (i, (&g, &w)) in got.iter().zip(want).enumerate() {
            let err = (g as f64 - w).abs();
            assert!(
                err <= 1e-3 * w.abs() + 2e-4 * scale,
                "{name}[{i}]: GPU {g} vs reference {w} (tensor max |g| {scale})"
            );
        }
    }
}
