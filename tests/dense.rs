//! Dense forward (bias, ReLU, split-K) and backward (dx, dW, db, accumulate) vs f64
//! references at odd shapes; reference backward by finite differences.

mod common;
use common::*;
use gpu_nids::models::bench_shapes;
use gpu_nids::nn::dense::{self, DenseShape};
use gpu_nids::nn::matmul::MatmulVariant;
use gpu_nids::nn::Act;

// (n, in, out): batch 1, odd sizes, non-multiples of 64, and long reductions that split
// (2×1100→3 splits evenly, 3×1537→5 leaves a short last chunk).
const SHAPES: [(usize, usize, usize); 7] = [
    (1, 1, 1),
    (3, 7, 5),
    (2, 65, 33),
    (1, 130, 3),
    (5, 33, 70),
    (2, 1100, 3),
    (3, 1537, 5),
];

fn shape(n: usize, i: usize, o: usize, mm: MatmulVariant) -> DenseShape {
    DenseShape::new(n, i, o, mm)
}

#[test]
fn split_k_engages_for_long_reductions() {
    let s = shape(3, 1537, 5, MatmulVariant::Tiled);
    assert_eq!(s.forward_splits(), 3);
    assert!(s.scratch_len() >= 3 * s.out_len());
    let t = shape(3, 5, 1537, MatmulVariant::Tiled);
    assert!(t.backward_splits() > 1 && t.scratch_len() >= t.backward_splits() * t.in_len());
    assert_eq!(shape(64, 256, 128, MatmulVariant::Tiled).scratch_len(), 0);
    // The VAE's 8192→32 layer at batch 64 is the case split-K is for.
    assert!(shape(64, 8192, 32, MatmulVariant::Tiled).forward_splits() >= 8);
}

#[test]
fn forward_matches_reference() {
    let g = gpu();
    for mm in MatmulVariant::ALL {
        for &(n, di, d_o) in &SHAPES {
            let s = shape(n, di, d_o, mm);
            let x = rand_vec(s.in_len(), 1 + di as u64);
            let w = rand_vec(s.w_len(), 2 + d_o as u64);
            let bias = rand_vec(d_o, 3);
            let (gx, gw, gb) = (
                g.upload(&x).unwrap(),
                g.upload(&w).unwrap(),
                g.upload(&bias).unwrap(),
            );
            let scratch = g.zeros::<f32>(s.scratch_len().max(1)).unwrap();
            for use_bias in [false, true] {
                for act in [Act::None, Act::Relu] {
                    for split in [false, true] {
                        let gy = g.upload(&vec![f32::NAN; s.out_len()]).unwrap();
                        let mut b = g.batch();
                        let bias_buf = use_bias.then(|| gb.raw());
                        dense::forward(
                            &mut b,
                            &s,
                            gx.raw(),
                            gw.raw(),
                            bias_buf,
                            act,
                            gy.raw(),
                            split.then(|| scratch.raw()),
                        )
                        .unwrap();
                        b.submit().unwrap();
                        let want = dense::forward_ref(
                            n,
                            di,
                            d_o,
                            &to_f64(&x),
                            &to_f64(&w),
                            use_bias.then(|| to_f64(&bias)).as_deref(),
                            act,
                        );
                        let what =
                            format!("{mm:?} {n}x{di}->{d_o} bias {use_bias} {act:?} split {split}");
                        assert_close(&what, &g.read(&gy).unwrap(), &to_f32(&want), 1e-4, 1e-5);
                    }
                }
            }
        }
    }
}

#[test]
fn backward_matches_reference() {
    let g = gpu();
    let mut shapes = SHAPES.to_vec();
    shapes.push((3, 5, 1537)); // dx reduction over d_out splits
    for mm in MatmulVariant::ALL {
        for &(n, di, d_o) in &shapes {
            let s = shape(n, di, d_o, mm);
            let x = rand_vec(s.in_len(), 5 + di as u64);
            let w = rand_vec(s.w_len(), 6 + d_o as u64);
            let dy = rand_vec(s.out_len(), 7);
            let (dx, dw, db) =
                dense::backward_ref(n, di, d_o, &to_f64(&x), &to_f64(&w), &to_f64(&dy));
            let (gx, gw, gdy) = (
                g.upload(&x).unwrap(),
                g.upload(&w).unwrap(),
                g.upload(&dy).unwrap(),
            );
            let scratch = g.zeros::<f32>(s.scratch_len().max(1)).unwrap();
            // Existing gradients, for the accumulate paths.
            let dx0 = rand_vec(s.in_len(), 8);
            let dw0 = rand_vec(s.w_len(), 9);
            let db0 = rand_vec(d_o, 10);
            for acc in [false, true] {
                for split in [false, true] {
                    let init = |v: &[f32]| {
                        if acc {
                            g.upload(v).unwrap()
                        } else {
                            g.upload(&vec![f32::NAN; v.len()]).unwrap()
                        }
                    };
                    let (gdx, gdw, gdb) = (init(&dx0), init(&dw0), init(&db0));
                    let mut b = g.batch();
                    dense::backward(
                        &mut b,
                        &s,
                        gx.raw(),
                        gw.raw(),
                        gdy.raw(),
                        Some(gdx.raw()),
                        acc,
                        gdw.raw(),
                        Some(gdb.raw()),
                        acc,
                        split.then(|| scratch.raw()),
                    )
                    .unwrap();
                    b.submit().unwrap();
                    let add = |want: &[f64], base: &[f32]| -> Vec<f32> {
                        want.iter()
                            .zip(base)
                            .map(|(w, b)| (w + if acc { *b as f64 } else { 0.0 }) as f32)
                            .collect()
                    };
                    let what = format!("{mm:?} {n}x{di}->{d_o} acc {acc} split {split}");
                    assert_close(
                        &format!("dx {what}"),
                        &g.read(&gdx).unwrap(),
                        &add(&dx, &dx0),
                        1e-4,
                        1e-5,
                    );
                    assert_close(
                        &format!("dW {what}"),
                        &g.read(&gdw).unwrap(),
                        &add(&dw, &dw0),
                        1e-4,
                        1e-5,
                    );
                    assert_close(
                        &format!("db {what}"),
                        &g.read(&gdb).unwrap(),
                        &add(&db, &db0),
                        1e-4,
                        1e-5,
                    );
                }
            }
        }
    }
}

#[test]
fn bias_grad_many_rows_and_columns() {
    // More rows than lanes and more columns than one workgroup covers.
    let g = gpu();
    let (rows, cols) = (37, 200);
    let dy = rand_vec(rows * cols, 21);
    let gdy = g.upload(&dy).unwrap();
    let gdb = g.zeros::<f32>(cols).unwrap();
    let mut b = g.batch();
    dense::bias_grad(&mut b, rows, cols, gdy.raw(), gdb.raw(), false).unwrap();
    b.submit().unwrap();
    let want: Vec<f32> = (0..cols)
        .map(|c| (0..rows).map(|r| dy[r * cols + c] as f64).sum::<f64>() as f32)
        .collect();
    assert_close("bias_grad", &g.read(&gdb).unwrap(), &want, 1e-4, 1e-5);
}

#[test]
fn reference_backward_matches_finite_differences() {
    let (n, di, d_o) = (3, 5, 4);
    let x = to_f64(&rand_vec(n * di, 31));
    let w = to_f64(&rand_vec(d_o * di, 32));
    let bias = to_f64(&rand_vec(d_o, 33));
    let r = to_f64(&rand_vec(n * d_o, 34)); // f = Σ r·y, so dy = r
    let dot = |y: Vec<f64>| y.iter().zip(&r).map(|(a, b)| a * b).sum::<f64>();
    let (dx, dw, db) = dense::backward_ref(n, di, d_o, &x, &w, &r);
    fd_check(
        "dense dx",
        |v| {
            dot(dense::forward_ref(
                n,
                di,
                d_o,
                v,
                &w,
                Some(&bias),
                Act::None,
            ))
        },
        &x,
        &dx,
        100,
    );
    fd_check(
        "dense dW",
        |v| {
            dot(dense::forward_ref(
                n,
                di,
                d_o,
                &x,
                v,
                Some(&bias),
                Act::None,
            ))
        },
        &w,
        &dw,
        100,
    );
    fd_check(
        "dense db",
        |v| dot(dense::forward_ref(n, di, d_o, &x, &w, Some(v), Act::None)),
        &bias,
        &db,
        100,
    );
}

#[test]
fn bench_shapes_cover_both_models() {
    let v = bench_shapes::dense(64, MatmulVariant::Tiled);
    assert!(v.iter().any(|(_, s)| s.d_in == 8192 && s.d_out == 32));
    assert!(v.iter().any(|(_, s)| s.d_in == 5312 && s.d_out == 1024));
    assert!(v.iter().all(|(_, s)| s.n == 64));
}
