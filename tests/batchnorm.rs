//! Batch-norm on the GPU vs the f64 reference over (N, C, L) and (N, F): training
//! forward with saved statistics and the running update, eval forward, backward with
//! and without accumulation, each kernel variant selected explicitly (the tree and column
//! kernels of `batchnorm.wgsl`, and with 8-lane subgroups `batchnorm_sg.wgsl`); the
//! reference backward vs central finite differences.

mod common;
use common::*;
use gpu_nids::models::bench_shapes;
use gpu_nids::nn::batchnorm::{self, BatchNormShape, BnVariant};

/// Covers one channel per workgroup (n·l ≥ 256), several (short rows), the (N, F)
/// layout with a partial last workgroup, and batch 1. (Not (N, F) at N = 2: there x̂ = ±1
/// up to ε and dx is pure cancellation, ill-conditioned in any f32 implementation.)
fn shapes() -> Vec<BatchNormShape> {
    vec![
        BatchNormShape::ncl(2, 3, 325),
        BatchNormShape::ncl(1, 5, 17),
        BatchNormShape::ncl(3, 7, 5),
        BatchNormShape::ncl(2, 70, 3),
        BatchNormShape::nf(3, 45),
        BatchNormShape::nf(5, 33),
        BatchNormShape::nf(300, 3),
    ]
}

struct Data {
    x: Vec<f32>,
    gamma: Vec<f32>,
    beta: Vec<f32>,
    rmean: Vec<f32>,
    rvar: Vec<f32>,
    dy: Vec<f32>,
    dgamma0: Vec<f32>,
    dbeta0: Vec<f32>,
}

fn data(s: &BatchNormShape, seed: u64) -> Data {
    // An offset and scale per channel so the statistics are not trivially 0 and 1/3;
    // every third channel with a variance near ε, so a wrong ε shows.
    let x = rand_vec(s.len(), seed)
        .iter()
        .enumerate()
        .map(|(i, v)| {
            let c = (i / s.l) % s.c;
            // (Small offsets there: a mean ≫ std loses the deviations to f32 rounding.)
            if c.is_multiple_of(3) {
                v * 0.003 + 0.002
            } else {
                v * (0.5 + c as f32 * 0.1) + c as f32 * 0.3 - 1.0
            }
        })
        .collect();
    let pos = |v: Vec<f32>| {
        v.iter()
            .map(|a| a.abs() * 1e-3 + 1e-5)
            .collect::<Vec<f32>>()
    };
    Data {
        x,
        gamma: rand_vec(s.c, seed + 1),
        beta: rand_vec(s.c, seed + 2),
        rmean: rand_vec(s.c, seed + 3),
        rvar: pos(rand_vec(s.c, seed + 4)),
        dy: rand_vec(s.len(), seed + 5),
        dgamma0: rand_vec(s.c, seed + 6),
        dbeta0: rand_vec(s.c, seed + 7),
    }
}

fn plus(want: &[f64], init: &[f32], acc: bool) -> Vec<f32> {
    want.iter()
        .zip(init)
        .map(|(&w, &i)| (w + if acc { i as f64 } else { 0.0 }) as f32)
        .collect()
}

#[test]
fn training_forward_backward_and_running_update_match_reference() {
    let g = gpu();
    for (si, s) in shapes().iter().enumerate() {
        let d = data(s, 10 * si as u64);
        let (x, gamma, beta, dy) = (
            to_f64(&d.x),
            to_f64(&d.gamma),
            to_f64(&d.beta),
            to_f64(&d.dy),
        );
        let (wy, wmean, winv) = batchnorm::train_forward_ref(s, &x, &gamma, &beta);
        let (wrm, wrv) = batchnorm::running_update_ref(s, &x, &to_f64(&d.rmean), &to_f64(&d.rvar));
        let (wdx, wdg, wdb) = batchnorm::backward_ref(s, &x, &gamma, &dy);
        let cases = BnVariant::ALL
            .into_iter()
            .filter(|v| v.supports(g, s))
            .flat_map(|v| [(v, true, false), (v, false, true)]);
        for (v, update, acc) in cases {
            let gx = g.upload(&d.x).unwrap();
            let ggamma = g.upload(&d.gamma).unwrap();
            let gbeta = g.upload(&d.beta).unwrap();
            let gy = g.zeros::<f32>(s.len()).unwrap();
            let saved = g.zeros::<f32>(s.saved_len()).unwrap();
            let rm = g.upload(&d.rmean).unwrap();
            let rv = g.upload(&d.rvar).unwrap();
            let gdy = g.upload(&d.dy).unwrap();
            let gdx = g.upload(&vec![f32::NAN; s.len()]).unwrap();
            let dgamma = g.upload(&d.dgamma0).unwrap();
            let dbeta = g.upload(&d.dbeta0).unwrap();
            let mut b = g.batch();
            batchnorm::train_forward_with(
                &mut b, v, s, &gx, &ggamma, &gbeta, &gy, &saved, &rm, &rv, update,
            )
            .unwrap();
            batchnorm::backward_with(
                &mut b, v, s, &gx, &gdy, &ggamma, &saved, &gdx, &dgamma, &dbeta, acc,
            )
            .unwrap();
            b.submit().unwrap();
            let what = format!("{v:?} {s:?} update {update} acc {acc}");
            assert_close(
                &format!("{what} y"),
                &g.read(&gy).unwrap(),
                &to_f32(&wy),
                1e-4,
                1e-5,
            );
            let sv = g.read(&saved).unwrap();
            assert_close(
                &format!("{what} mean"),
                &sv[..s.c],
                &to_f32(&wmean),
                1e-4,
                1e-5,
            );
            assert_close(
                &format!("{what} inv std"),
                &sv[s.c..],
                &to_f32(&winv),
                1e-4,
                1e-5,
            );
            let (want_rm, want_rv) = if update {
                (to_f32(&wrm), to_f32(&wrv))
            } else {
                (d.rmean.clone(), d.rvar.clone())
            };
            assert_close(
                &format!("{what} running mean"),
                &g.read(&rm).unwrap(),
                &want_rm,
                1e-4,
                1e-5,
            );
            assert_close(
                &format!("{what} running var"),
                &g.read(&rv).unwrap(),
                &want_rv,
                1e-4,
                1e-5,
            );
            assert_close(
                &format!("{what} dx"),
                &g.read(&gdx).unwrap(),
                &to_f32(&wdx),
                1e-4,
                1e-5,
            );
            assert_close(
                &format!("{what} dgamma"),
                &g.read(&dgamma).unwrap(),
                &plus(&wdg, &d.dgamma0, acc),
                1e-4,
                1e-5,
            );
            assert_close(
                &format!("{what} dbeta"),
                &g.read(&dbeta).unwrap(),
                &plus(&wdb, &d.dbeta0, acc),
                1e-4,
                1e-5,
            );
        }
    }
}

#[test]
fn eval_forward_matches_reference() {
    let g = gpu();
    for (si, s) in shapes().iter().enumerate() {
        let d = data(s, 7 + si as u64);
        let want = batchnorm::eval_forward_ref(
            s,
            &to_f64(&d.x),
            &to_f64(&d.gamma),
            &to_f64(&d.beta),
            &to_f64(&d.rmean),
            &to_f64(&d.rvar),
        );
        let gx = g.upload(&d.x).unwrap();
        let (ggamma, gbeta) = (g.upload(&d.gamma).unwrap(), g.upload(&d.beta).unwrap());
        let (rm, rv) = (g.upload(&d.rmean).unwrap(), g.upload(&d.rvar).unwrap());
        let gy = g.zeros::<f32>(s.len()).unwrap();
        let mut b = g.batch();
        batchnorm::eval_forward(&mut b, s, &gx, &ggamma, &gbeta, &rm, &rv, &gy).unwrap();
        b.submit().unwrap();
        assert_close(
            &format!("{s:?} eval y"),
            &g.read(&gy).unwrap(),
            &to_f32(&want),
            1e-4,
            1e-5,
        );
    }
}

#[test]
fn reference_gradients_match_finite_differences() {
    for s in [
        BatchNormShape::ncl(2, 3, 5),
        BatchNormShape::nf(4, 3),
        BatchNormShape::ncl(1, 2, 6),
    ] {
        let d = data(&s, 33);
        let (x, gamma, beta) = (to_f64(&d.x), to_f64(&d.gamma), to_f64(&d.beta));
        let r = to_f64(&d.dy);
        let loss = |x: &[f64], gm: &[f64], bt: &[f64]| {
            batchnorm::train_forward_ref(&s, x, gm, bt)
                .0
                .iter()
                .zip(&r)
                .map(|(a, b)| a * b)
                .sum::<f64>()
        };
        let (dx, dg, db) = batchnorm::backward_ref(&s, &x, &gamma, &r);
        fd_check(
            &format!("{s:?} dx"),
            |v| loss(v, &gamma, &beta),
            &x,
            &dx,
            200,
        );
        fd_check(
            &format!("{s:?} dgamma"),
            |v| loss(&x, v, &beta),
            &gamma,
            &dg,
            200,
        );
        fd_check(
            &format!("{s:?} dbeta"),
            |v| loss(&x, &gamma, v),
            &beta,
            &db,
            200,
        );
    }
}

#[test]
fn one_value_per_channel_is_an_error_in_training() {
    let g = gpu();
    let s = BatchNormShape::nf(1, 4);
    let v = g.zeros::<f32>(8).unwrap();
    let mut b = g.batch();
    assert!(batchnorm::train_forward(&mut b, &s, &v, &v, &v, &v, &v, &v, &v, true).is_err());
    assert!(b.is_empty());
    let names: Vec<usize> = bench_shapes::batchnorm(64)
        .iter()
        .map(|(_, s)| s.c * s.l)
        .collect();
    assert_eq!(names, [32 * 325, 64 * 167, 1024, 256]);
}
