//! Whole-model checks of the two baselines: one training step (forward, MSE, backward)
//! on the GPU against an f64 CPU composition of the per-op references — the loss and
//! every parameter gradient — and the per-sample scores.

mod common;
use common::{gpu, rand_vec, to_f64};
use gpu_nids::models::baselines::{self, Baseline, BaselineKind, BaselineRun, ConvShapes, INPUT};
use gpu_nids::models::params;
use gpu_nids::nn::conv1d::{self, transpose as convt};
use gpu_nids::nn::dense::{backward_ref as dense_bwd, forward_ref as dense_fwd};
use gpu_nids::nn::elementwise::{relu_backward_ref, sigmoid_backward_ref, sigmoid_ref};
use gpu_nids::nn::loss::{mse_ref, score_mse_ref};
use gpu_nids::nn::{Act, Act as CAct};

const N: usize = 3;
const DIMS: [usize; 7] = [320, 128, 64, 32, 64, 128, 320];

/// (reconstruction, loss, gradients in parameter order).
fn reference(kind: BaselineKind, p: &[Vec<f64>], x: &[f64]) -> (Vec<f64>, f64, Vec<Vec<f64>>) {
    let n = N;
    let mut g: Vec<Vec<f64>> = vec![vec![]; p.len()];
    match kind {
        BaselineKind::Ae => {
            let mut acts: Vec<Vec<f64>> = vec![];
            for k in 0..6 {
                let xin = if k == 0 { x } else { &acts[k - 1] };
                let act = if k < 5 { Act::Relu } else { Act::None };
                let y = dense_fwd(
                    n,
                    DIMS[k],
                    DIMS[k + 1],
                    xin,
                    &p[2 * k],
                    Some(&p[2 * k + 1]),
                    act,
                );
                acts.push(y);
            }
            let out = sigmoid_ref(&acts[5]);
            let (l, ga, _) = mse_ref(&out, x);
            let mut dy = sigmoid_backward_ref(&out, &ga);
            for k in (0..6).rev() {
                let xin = if k == 0 { x } else { &acts[k - 1] };
                let (dx, dw, db) = dense_bwd(n, DIMS[k], DIMS[k + 1], xin, &p[2 * k], &dy);
                (g[2 * k], g[2 * k + 1]) = (dw, db);
                if k > 0 {
                    dy = relu_backward_ref(&acts[k - 1], &dx);
                }
            }
            (out, l, g)
        }
        BaselineKind::ConvAe => {
            let s = ConvShapes::new(n);
            let e1 = conv1d::forward_ref(&s.e1, x, &p[0], &p[1]);
            let e2 = conv1d::forward_ref(&s.e2, &e1, &p[2], &p[3]);
            let d1 = convt::forward_ref(&s.d1, &e2, &p[4], &p[5]);
            let out = convt::forward_ref(&s.d2, &d1, &p[6], &p[7]);
            let (l, ga, _) = mse_ref(&out, x);
            let (g_d1, dw, db) = convt::backward_ref(
                &s.d2,
                &d1,
                &p[6],
                &conv1d::act_backward_ref(CAct::Sigmoid, &out, &ga),
            );
            (g[6], g[7]) = (dw, db);
            let (g_e2, dw, db) = convt::backward_ref(
                &s.d1,
                &e2,
                &p[4],
                &conv1d::act_backward_ref(CAct::Relu, &d1, &g_d1),
            );
            (g[4], g[5]) = (dw, db);
            let (g_e1, dw, db) = conv1d::backward_ref(
                &s.e2,
                &e1,
                &p[2],
                &conv1d::act_backward_ref(CAct::Relu, &e2, &g_e2),
            );
            (g[2], g[3]) = (dw, db);
            let (_, dw, db) = conv1d::backward_ref(
                &s.e1,
                x,
                &p[0],
                &conv1d::act_backward_ref(CAct::Relu, &e1, &g_e1),
            );
            (g[0], g[1]) = (dw, db);
            (out, l, g)
        }
    }
}

fn check(kind: BaselineKind) {
    let g = gpu();
    let host = params::init(&baselines::layers(kind), 5);
    let model = Baseline::from_host(g, kind, &host).unwrap();
    let run = BaselineRun::new(g, kind, N, true).unwrap();
    let r = rand_vec(N * INPUT, 9);
    let bytes: Vec<u8> = (0..N * INPUT)
        .map(|i| {
            if i % INPUT > 200 {
                0
            } else {
                ((r[i] + 1.0) * 127.5) as u8
            }
        })
        .collect();
    run.upload(g, &bytes);
    let mut b = g.batch();
    run.forward_backward(&mut b, &model, N).unwrap();
    b.submit().unwrap();
    let (loss, steps) = run.take_loss(g).unwrap();
    let grads = params::download_grads(g, &model.params).unwrap();

    let x: Vec<f64> = bytes
        .iter()
        .map(|&v| (v as f32 * (1.0f32 / 255.0)) as f64)
        .collect();
    let p: Vec<Vec<f64>> = host.iter().map(|v| to_f64(v)).collect();
    let (out, want_loss, want) = reference(kind, &p, &x);
    assert_eq!(steps, 1.0);
    assert!(
        (loss - want_loss).abs() <= 1e-4 * want_loss,
        "{kind:?} loss: GPU {loss} vs reference {want_loss}"
    );
    for ((name, _), (got, want_t)) in params::specs(&baselines::layers(kind))
        .iter()
        .zip(grads.iter().zip(&want))
    {
        let scale = want_t.iter().fold(0f64, |m, v| m.max(v.abs()));
        assert!(
            scale > 0.0,
            "{kind:?} {name}: reference gradient all zero (degenerate input)"
        );
        for (k, (&gv, &wv)) in got.iter().zip(want_t).enumerate() {
            let err = (gv as f64 - wv).abs();
            assert!(
                err <= 1e-3 * wv.abs() + 2e-4 * scale,
                "{kind:?} {name}[{k}]: GPU {gv} vs reference {wv} (tensor max |g| {scale})"
            );
        }
    }
    let score_run = BaselineRun::new(g, kind, N, false).unwrap();
    let n = score_run.upload(g, &bytes);
    let mut b = g.batch();
    score_run.score(&mut b, &model, n).unwrap();
    b.submit().unwrap();
    let scores = g.read(&score_run.scores).unwrap();
    let want_scores = score_mse_ref(N, INPUT, &out, &x);
    for (k, (&gv, &wv)) in scores.iter().zip(&want_scores).enumerate() {
        assert!(
            (gv as f64 - wv).abs() <= 1e-4 * wv,
            "{kind:?} score[{k}]: GPU {gv} vs reference {wv}"
        );
    }
    // The training loss is the mean of the per-sample scores (same MSE, before the update).
    let mean = want_scores.iter().sum::<f64>() / N as f64;
    assert!(
        (mean - want_loss).abs() <= 1e-12,
        "{kind:?}: mean score {mean} vs loss {want_loss}"
    );
}

#[test]
fn dense_ae_step_matches_f64_reference() {
    check(BaselineKind::Ae);
}

#[test]
fn conv_ae_step_matches_f64_reference() {
    check(BaselineKind::ConvAe);
}

#[test]
fn conv_ae_output_is_exactly_320_long() {
    let s = ConvShapes::new(2);
    assert_eq!(
        (s.e1.l_out(), s.e2.l_out(), s.d1.l_out(), s.d2.l_out()),
        (158, 77, 158, 320)
    );
    assert_eq!((s.d1.out_pad, s.d2.out_pad), (0, 0));
}
