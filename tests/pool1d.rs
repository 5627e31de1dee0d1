//! Max-pool1d on the GPU vs the f64 reference: output, saved argmax, and the gradient
//! routed through it (non-overlapping k2 s2 as DOC-IDS, which has its own kernels, and
//! the general kernels' overlapping and gapped windows, ties); the reference gradient vs
//! central finite differences.

mod common;
use common::*;
use gpu_nids::models::bench_shapes;
use gpu_nids::nn::pool1d::{self, Pool1dShape};

fn shape(n: usize, c: usize, l: usize, k: usize, stride: usize) -> Pool1dShape {
    Pool1dShape { n, c, l, k, stride }
}

fn shapes() -> Vec<Pool1dShape> {
    vec![
        Pool1dShape::k2(1, 1, 2),
        Pool1dShape::k2(1, 3, 25), // odd: the last element belongs to no window
        Pool1dShape::k2(2, 5, 17),
        Pool1dShape::k2(3, 32, 65),
        Pool1dShape::k2(2, 3, 300), // rows longer than a workgroup's 64 lanes
        shape(1, 2, 12, 2, 1),      // window 2 with another step: the general kernels
        shape(2, 3, 20, 3, 2),      // overlapping windows
        shape(2, 2, 19, 2, 3),      // gaps between windows
        shape(1, 4, 9, 9, 1),
    ]
}

fn run(s: &Pool1dShape, x: &[f32], dy: &[f32]) -> (Vec<f32>, Vec<u32>, Vec<f32>) {
    let g = gpu();
    let gx = g.upload(x).unwrap();
    let gy = g.zeros::<f32>(s.out_len()).unwrap();
    let arg = g.upload(&vec![u32::MAX; s.arg_len()]).unwrap();
    let gdy = g.upload(dy).unwrap();
    let gdx = g.upload(&vec![f32::NAN; s.in_len()]).unwrap();
    let mut b = g.batch();
    pool1d::max_forward(&mut b, s, &gx, &gy, &arg).unwrap();
    pool1d::max_backward(&mut b, s, &gdy, &arg, &gdx).unwrap();
    b.submit().unwrap();
    (
        g.read(&gy).unwrap(),
        g.read(&arg).unwrap(),
        g.read(&gdx).unwrap(),
    )
}

fn check(s: &Pool1dShape, x: &[f32], seed: u64) {
    let dy = rand_vec(s.out_len(), seed);
    let (y, arg, dx) = run(s, x, &dy);
    let (wy, warg) = pool1d::max_forward_ref(s, &to_f64(x));
    assert_close(&format!("{s:?} y"), &y, &to_f32(&wy), 1e-6, 0.0);
    assert_eq!(arg, warg, "{s:?} argmax");
    let wdx = pool1d::max_backward_ref(s, &to_f64(&dy), &warg);
    assert_close(&format!("{s:?} dx"), &dx, &to_f32(&wdx), 1e-5, 1e-6);
}

#[test]
fn max_pool_forward_and_backward_match_reference() {
    for (i, s) in shapes().iter().enumerate() {
        check(s, &rand_vec(s.in_len(), i as u64), 50 + i as u64);
    }
}

#[test]
fn ties_pick_the_first_maximum() {
    // Quantised values: many equal neighbours (ReLU outputs are often exactly 0).
    for s in [Pool1dShape::k2(2, 3, 21), shape(1, 2, 16, 3, 2)] {
        let x: Vec<f32> = rand_vec(s.in_len(), 3)
            .iter()
            .map(|v| (v * 2.0).round().max(0.0))
            .collect();
        check(&s, &x, 4);
    }
}

#[test]
fn reference_gradient_matches_finite_differences() {
    for s in [
        Pool1dShape::k2(2, 3, 11),
        shape(1, 2, 14, 3, 2),
        shape(1, 2, 13, 2, 3),
    ] {
        // Distinct values, so the max is differentiable at x.
        let x = to_f64(&rand_vec(s.in_len(), 9));
        let r = to_f64(&rand_vec(s.out_len(), 10));
        let loss = |x: &[f64]| {
            pool1d::max_forward_ref(&s, x)
                .0
                .iter()
                .zip(&r)
                .map(|(a, b)| a * b)
                .sum::<f64>()
        };
        let (_, arg) = pool1d::max_forward_ref(&s, &x);
        let dx = pool1d::max_backward_ref(&s, &r, &arg);
        fd_check(&format!("{s:?} dx"), loss, &x, &dx, 200);
    }
}

#[test]
fn model_shapes_have_the_papers_lengths() {
    let l: Vec<usize> = bench_shapes::pool1d(64)
        .iter()
        .map(|(_, s)| s.l_out())
        .collect();
    assert_eq!(l, [162, 83]);
    assert!(shape(1, 1, 1, 2, 2).check().is_err());
}
