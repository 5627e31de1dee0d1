//! Whole-model check of DOC-IDS: one training step on the GPU against a plain f64 CPU
//! composition of the per-op references — the three loss terms, every parameter
//! gradient (batch-norm γ/β, the head through both passes, g through both passes and
//! through both arguments of l_R), the running statistics after the two train-mode
//! passes, and the eval-mode scores.
//!
//! Batch 4 + 4, not 2 + 2: batch-norm over (N, F) at N = 2 maps every feature to ±1
//! whatever the input (x̂ = ±(x₁ − x₂)/|x₁ − x₂|), so the gradient below bn5/bn6 is
//! analytically ~0 and the f32 result is pure cancellation noise — nothing to compare.

mod common;
use common::{gpu, rand_vec, to_f64};
use gpu_nids::models::doc_ids::{self, DocIds, DocRun, LossWeights, FEAT, INPUT};
use gpu_nids::models::params;
use gpu_nids::nn::batchnorm::{self as bn, BatchNormShape};
use gpu_nids::nn::conv1d::{self, Conv1dShape};
use gpu_nids::nn::dense::{backward_ref as dense_bwd, forward_ref as dense_fwd};
use gpu_nids::nn::elementwise::{relu_backward_ref, relu_ref};
use gpu_nids::nn::loss::{
    compactness_grad_ref, compactness_ref, mse_ref, score_mse_ref, softmax_ce_ref,
};
use gpu_nids::nn::pool1d::{max_backward_ref, max_forward_ref, Pool1dShape};
use gpu_nids::nn::{Act, Act as CAct};

const N: usize = 4;
const C: usize = 3;
const AE: [usize; 5] = [256, 128, 64, 128, 256];

struct Shapes {
    conv1: Conv1dShape,
    pool1: Pool1dShape,
    conv2: Conv1dShape,
    pool2: Pool1dShape,
    bn: [BatchNormShape; 4],
}

fn shapes(n: usize) -> Shapes {
    let conv = |c_in, l, c_out| Conv1dShape {
        n,
        c_in,
        l,
        c_out,
        k: 6,
        stride: 1,
        pad: 5,
        act: CAct::Relu,
    };
    Shapes {
        conv1: conv(1, INPUT, 32),
        pool1: Pool1dShape::k2(n, 32, 325),
        conv2: conv(32, 162, 64),
        pool2: Pool1dShape::k2(n, 64, 167),
        bn: [
            BatchNormShape::ncl(n, 32, 325),
            BatchNormShape::ncl(n, 64, 167),
            BatchNormShape::nf(n, 1024),
            BatchNormShape::nf(n, 256),
        ],
    }
}

/// Every intermediate of one pass through g and h_c.
struct Pass {
    x: Vec<f64>,
    c1: Vec<f64>,
    p1: Vec<f64>,
    arg1: Vec<u32>,
    c2: Vec<f64>,
    p2: Vec<f64>,
    arg2: Vec<u32>,
    f5: Vec<f64>,
    a5: Vec<f64>,
    f6: Vec<f64>,
    feat: Vec<f64>,
    logits: Vec<f64>,
}

/// `running`: Some((means, vars)) for eval mode; None for train mode (batch statistics).
fn forward(p: &[Vec<f64>], x: &[f64], n: usize, running: Option<&[Vec<f64>]>) -> Pass {
    let s = shapes(n);
    let norm = |k: usize, v: &[f64]| match running {
        None => bn::train_forward_ref(&s.bn[k], v, &p[2 + 4 * k], &p[3 + 4 * k]).0,
        Some(r) => bn::eval_forward_ref(
            &s.bn[k],
            v,
            &p[2 + 4 * k],
            &p[3 + 4 * k],
            &r[2 * k],
            &r[2 * k + 1],
        ),
    };
    let c1 = conv1d::forward_ref(&s.conv1, x, &p[0], &p[1]);
    let (p1, arg1) = max_forward_ref(&s.pool1, &norm(0, &c1));
    let c2 = conv1d::forward_ref(&s.conv2, &p1, &p[4], &p[5]);
    let (p2, arg2) = max_forward_ref(&s.pool2, &norm(1, &c2));
    let f5 = dense_fwd(n, 5312, 1024, &p2, &p[8], Some(&p[9]), Act::None);
    let a5 = relu_ref(&norm(2, &f5));
    let f6 = dense_fwd(n, 1024, 256, &a5, &p[12], Some(&p[13]), Act::None);
    let feat = norm(3, &f6);
    let logits = dense_fwd(n, 256, C, &feat, &p[16], Some(&p[17]), Act::None);
    Pass {
        x: x.to_vec(),
        c1,
        p1,
        arg1,
        c2,
        p2,
        arg2,
        f5,
        a5,
        f6,
        feat,
        logits,
    }
}

/// AE activations [ae1, ae2, ae3, out].
fn ae_forward(p: &[Vec<f64>], feat: &[f64], n: usize) -> Vec<Vec<f64>> {
    let mut acts: Vec<Vec<f64>> = vec![];
    for k in 0..4 {
        let x = if k == 0 { feat } else { &acts[k - 1] };
        let act = if k < 3 { Act::Relu } else { Act::None };
        let y = dense_fwd(
            n,
            AE[k],
            AE[k + 1],
            x,
            &p[18 + 2 * k],
            Some(&p[19 + 2 * k]),
            act,
        );
        acts.push(y);
    }
    acts
}

fn add(acc: &mut [f64], v: &[f64]) {
    acc.iter_mut().zip(v).for_each(|(a, b)| *a += b);
}

/// Adds the gradients of g's parameters from `g_feat` through pass `f` into `g`.
fn backward_g(p: &[Vec<f64>], f: &Pass, g_feat: &[f64], n: usize, g: &mut [Vec<f64>]) {
    let s = shapes(n);
    let mut put = |i: usize, v: Vec<f64>| add(&mut g[i], &v);
    let (g_f6, dg, db) = bn::backward_ref(&s.bn[3], &f.f6, &p[14], g_feat);
    put(14, dg);
    put(15, db);
    let (g_a5, dw, db) = dense_bwd(n, 1024, 256, &f.a5, &p[12], &g_f6);
    put(12, dw);
    put(13, db);
    let (g_f5, dg, db) =
        bn::backward_ref(&s.bn[2], &f.f5, &p[10], &relu_backward_ref(&f.a5, &g_a5));
    put(10, dg);
    put(11, db);
    let (g_p2, dw, db) = dense_bwd(n, 5312, 1024, &f.p2, &p[8], &g_f5);
    put(8, dw);
    put(9, db);
    let (g_c2, dg, db) = bn::backward_ref(
        &s.bn[1],
        &f.c2,
        &p[6],
        &max_backward_ref(&s.pool2, &g_p2, &f.arg2),
    );
    put(6, dg);
    put(7, db);
    let (g_p1, dw, db) = conv1d::backward_ref(
        &s.conv2,
        &f.p1,
        &p[4],
        &conv1d::act_backward_ref(CAct::Relu, &f.c2, &g_c2),
    );
    put(4, dw);
    put(5, db);
    let (g_c1, dg, db) = bn::backward_ref(
        &s.bn[0],
        &f.c1,
        &p[2],
        &max_backward_ref(&s.pool1, &g_p1, &f.arg1),
    );
    put(2, dg);
    put(3, db);
    let (_, dw, db) = conv1d::backward_ref(
        &s.conv1,
        &f.x,
        &p[0],
        &conv1d::act_backward_ref(CAct::Relu, &f.c1, &g_c1),
    );
    put(0, dw);
    put(1, db);
}

struct Reference {
    terms: [f64; 3],
    grads: Vec<Vec<f64>>,
    running: Vec<Vec<f64>>,
}

fn reference_step(
    p: &[Vec<f64>],
    xr: &[f64],
    labels: &[u32],
    xt: &[f64],
    w: LossWeights,
) -> Reference {
    let n = N;
    let s = shapes(n);
    let (r, t) = (forward(p, xr, n, None), forward(p, xt, n, None));
    let ae = ae_forward(p, &t.feat, n);
    let (l_d, g_lr) = softmax_ce_ref(n, C, &r.logits, labels);
    let l_c = compactness_ref(n, C, &t.logits);
    let g_lt: Vec<f64> = compactness_grad_ref(n, C, &t.logits)
        .iter()
        .map(|g| g * w.lambda_c)
        .collect();
    let (l_r, ga, gb) = mse_ref(&ae[3], &t.feat);
    let mut grads: Vec<Vec<f64>> = p.iter().map(|v| vec![0.0; v.len()]).collect();
    // l_R: through its second argument, then back through the AE.
    let mut g_feat_t: Vec<f64> = gb.iter().map(|g| g * w.lambda_r).collect();
    let mut dy: Vec<f64> = ga.iter().map(|g| g * w.lambda_r).collect();
    for k in (0..4).rev() {
        let x = if k > 0 { &ae[k - 1] } else { &t.feat };
        let (dx, dw, db) = dense_bwd(n, AE[k], AE[k + 1], x, &p[18 + 2 * k], &dy);
        add(&mut grads[18 + 2 * k], &dw);
        add(&mut grads[19 + 2 * k], &db);
        dy = if k > 0 {
            relu_backward_ref(&ae[k - 1], &dx)
        } else {
            dx
        };
    }
    add(&mut g_feat_t, &dy);
    // h_c on both passes.
    let (g_feat_r, dw, db) = dense_bwd(n, 256, C, &r.feat, &p[16], &g_lr);
    add(&mut grads[16], &dw);
    add(&mut grads[17], &db);
    let (gf, dw, db) = dense_bwd(n, 256, C, &t.feat, &p[16], &g_lt);
    add(&mut grads[16], &dw);
    add(&mut grads[17], &db);
    add(&mut g_feat_t, &gf);
    backward_g(p, &r, &g_feat_r, n, &mut grads);
    backward_g(p, &t, &g_feat_t, n, &mut grads);
    // Running statistics: moved by the reference pass, then by the target pass.
    let mut running: Vec<Vec<f64>> = to_f64s(&doc_ids::init_running());
    for pass in [&r, &t] {
        for (k, x) in [&pass.c1, &pass.c2, &pass.f5, &pass.f6]
            .into_iter()
            .enumerate()
        {
            let (m, v) = bn::running_update_ref(&s.bn[k], x, &running[2 * k], &running[2 * k + 1]);
            running[2 * k] = m;
            running[2 * k + 1] = v;
        }
    }
    Reference {
        terms: [l_d, l_c, l_r],
        grads,
        running,
    }
}

fn to_f64s(v: &[Vec<f32>]) -> Vec<Vec<f64>> {
    v.iter().map(|x| to_f64(x)).collect()
}

/// Flow-like bytes: header-ish random values with zero padding after a per-sample length.
fn flow_bytes(n: usize, seed: u64) -> Vec<u8> {
    let r = rand_vec(n * INPUT, seed);
    (0..n * INPUT)
        .map(|i| {
            if i % INPUT >= 120 + 60 * (i / INPUT) {
                0
            } else {
                ((r[i] + 1.0) * 127.5) as u8
            }
        })
        .collect()
}

fn max_abs(v: &[f64]) -> f64 {
    v.iter().fold(0f64, |m, x| m.max(x.abs()))
}

#[test]
fn one_step_matches_f64_reference_at_batch_4_plus_4() {
    let g = gpu();
    // PyTorch-default init, but batch-norm γ/β perturbed away from 1/0 so their
    // gradients' paths are exercised with non-trivial values.
    let mut host = params::init(&doc_ids::layers(C), 11);
    for k in 0..4 {
        let i = 2 + 4 * k;
        let len = host[i].len();
        host[i] = rand_vec(len, 50 + k as u64)
            .iter()
            .map(|v| 1.0 + 0.3 * v)
            .collect();
        host[i + 1] = rand_vec(len, 60 + k as u64)
            .iter()
            .map(|v| 0.2 * v)
            .collect();
    }
    let w = LossWeights::default();
    let model = DocIds::from_host(g, C, &host, &doc_ids::init_running()).unwrap();
    let run = DocRun::new(g, N, C, w, true).unwrap();
    let (xr, xt) = (flow_bytes(N, 1), flow_bytes(N, 2));
    let labels: Vec<u32> = vec![0, 2, 1, 2];
    run.upload_step(g, &xr, &labels, &xt);
    let mut b = g.batch();
    run.forward_backward(&mut b, &model).unwrap();
    b.submit().unwrap();
    let loss = run.take_loss(g).unwrap();
    let grads = params::download_grads(g, &model.params).unwrap();
    let running = model.download_running(g).unwrap();

    let p = to_f64s(&host);
    let unit = |x: &[u8]| {
        x.iter()
            .map(|&v| (v as f32 * (1.0f32 / 255.0)) as f64)
            .collect::<Vec<f64>>()
    };
    let want = reference_step(&p, &unit(&xr), &labels, &unit(&xt), w);

    assert_eq!(loss.steps, 1.0);
    for (name, got, want) in [
        ("l_D", loss.l_d, want.terms[0]),
        ("l_C", loss.l_c, want.terms[1]),
        ("l_R", loss.l_r, want.terms[2]),
    ] {
        assert!(
            (got - want).abs() <= 1e-4 * want.abs() + 1e-6,
            "{name}: GPU {got} vs reference {want}"
        );
    }
    assert!(
        want.terms.iter().all(|&t| t > 1e-3),
        "degenerate test input: loss terms {:?}",
        want.terms
    );
    let specs = params::specs(&doc_ids::layers(C));
    let global = want.grads.iter().map(|v| max_abs(v)).fold(0.0, f64::max);
    for (i, ((name, _), (got, want_t))) in
        specs.iter().zip(grads.iter().zip(&want.grads)).enumerate()
    {
        let scale = max_abs(want_t);
        if scale < 1e-9 * global {
            // fc5.bias and fc6.bias feed a batch-norm, which removes any per-feature
            // constant: their gradient is exactly 0, so the GPU's must be rounding noise
            // next to its layer's weight gradient.
            let weight_scale = max_abs(&want.grads[i - 1]);
            let got_max = got.iter().fold(0f32, |m, v| m.max(v.abs())) as f64;
            assert!(name.ends_with(".bias") && got_max <= 1e-4 * weight_scale, "{name}: reference gradient ~0, GPU max |g| {got_max} (weight-gradient scale {weight_scale})");
            continue;
        }
        for (k, (&gv, &wv)) in got.iter().zip(want_t).enumerate() {
            let err = (gv as f64 - wv).abs();
            assert!(
                err <= 2e-3 * wv.abs() + 5e-4 * scale,
                "{name}[{k}]: GPU {gv} vs reference {wv} (tensor max |g| {scale})"
            );
        }
    }
    for ((name, _), (got, want_r)) in DocIds::running_names()
        .iter()
        .zip(running.iter().zip(&want.running))
    {
        for (k, (&gv, &wv)) in got.iter().zip(want_r).enumerate() {
            assert!(
                (gv as f64 - wv).abs() <= 1e-4 * wv.abs() + 1e-6,
                "{name}[{k}]: GPU {gv} vs reference {wv}"
            );
        }
    }

    // Eval mode: the running statistics the step left, scores = per-sample l_R.
    let score_run = DocRun::new(g, N, C, w, false).unwrap();
    let n = score_run.upload(g, &xt);
    let mut b = g.batch();
    score_run.score(&mut b, &model, n).unwrap();
    b.submit().unwrap();
    let scores = g.read(&score_run.scores).unwrap();
    let ev = forward(&p, &unit(&xt), N, Some(&want.running));
    let ae = ae_forward(&p, &ev.feat, N);
    let want_scores = score_mse_ref(N, FEAT, &ae[3], &ev.feat);
    for (k, (&gv, &wv)) in scores.iter().zip(&want_scores).enumerate() {
        assert!(
            (gv as f64 - wv).abs() <= 1e-3 * wv.abs() + 1e-7,
            "score[{k}]: GPU {gv} vs reference {wv}"
        );
    }
    // Eval-mode scores differ from the train-mode l_R: they use the running statistics.
    let train_mode: f64 = want.terms[2];
    let eval_mean = want_scores.iter().sum::<f64>() / N as f64;
    assert!(
        (eval_mean - train_mode).abs() > 1e-6,
        "eval-mode scores equal the train-mode l_R: running statistics unused?"
    );
}
