//! Losses (value and gradient) and per-sample scores vs f64 references, at sizes below
//! one workgroup and above 256 workgroups (grid-stride path); reference gradients by
//! finite differences.

mod common;
use common::*;
use gpu_nids::gpu::{Batch, Buf};
use gpu_nids::models::bench_shapes;
use gpu_nids::nn::loss::{self, GradOut, VaeLossShape, SCRATCH_LEN};

const SIZES: [usize; 4] = [1, 37, 256 * 3 + 5, 256 * 256 + 1234];

struct Fix {
    scratch: Buf<f32>,
    out: Buf<f32>,
}

fn fix() -> Fix {
    let g = gpu();
    Fix {
        scratch: g.zeros(SCRATCH_LEN).unwrap(),
        out: g.upload(&[f32::NAN; 4]).unwrap(),
    }
}

fn run(f: impl FnOnce(&mut Batch)) {
    let mut b = gpu().batch();
    f(&mut b);
    b.submit().unwrap();
}

fn nan(n: usize) -> Buf<f32> {
    gpu().upload(&vec![f32::NAN; n]).unwrap()
}

/// Sums over many elements accumulate f32 rounding: allow 1e-4 relative of the sum of |terms|.
fn close_sum(what: &str, got: f32, want: f64, abs_terms: f64) {
    assert!(
        (got as f64 - want).abs() <= 1e-4 * abs_terms.max(want.abs()) + 1e-5,
        "{what}: got {got}, want {want}"
    );
}

#[test]
fn bce_with_logits_value_and_grad() {
    let g = gpu();
    let f = fix();
    for &n in &SIZES {
        let mut l: Vec<f32> = rand_vec(n, n as u64).iter().map(|v| v * 12.0).collect();
        if n > 2 {
            l[0] = 90.0; // exp(90) overflows f32: the stable form must not
            l[1] = -90.0;
        }
        let x: Vec<f32> = rand_vec(n, n as u64 + 1)
            .iter()
            .map(|v| 0.5 + 0.5 * v)
            .collect();
        let (gl, gx, gg) = (g.upload(&l).unwrap(), g.upload(&x).unwrap(), nan(n));
        let scale = 0.25;
        run(|b| {
            loss::bce_with_logits(
                b,
                n,
                gl.raw(),
                gx.raw(),
                Some(GradOut::set(gg.raw())),
                scale,
                f.scratch.raw(),
                f.out.raw(),
                2,
            )
            .unwrap()
        });
        let (v, grad) = loss::bce_with_logits_ref(&to_f64(&l), &to_f64(&x));
        close_sum(
            &format!("bce n={n}"),
            g.read(&f.out).unwrap()[2],
            v,
            v.abs(),
        );
        let want: Vec<f32> = grad.iter().map(|d| (d * scale as f64) as f32).collect();
        assert_close(
            &format!("bce grad n={n}"),
            &g.read(&gg).unwrap(),
            &want,
            1e-4,
            1e-6,
        );
        // Accumulate into the existing gradient; value only (no gradient) leaves it alone.
        run(|b| {
            loss::bce_with_logits(
                b,
                n,
                gl.raw(),
                gx.raw(),
                Some(GradOut::add(gg.raw())),
                scale,
                f.scratch.raw(),
                f.out.raw(),
                0,
            )
            .unwrap()
        });
        let twice: Vec<f32> = want.iter().map(|v| 2.0 * v).collect();
        assert_close(
            &format!("bce grad acc n={n}"),
            &g.read(&gg).unwrap(),
            &twice,
            1e-4,
            1e-6,
        );
        run(|b| {
            loss::bce_with_logits(
                b,
                n,
                gl.raw(),
                gx.raw(),
                None,
                scale,
                f.scratch.raw(),
                f.out.raw(),
                1,
            )
            .unwrap()
        });
        assert_close(
            &format!("bce no-grad n={n}"),
            &g.read(&gg).unwrap(),
            &twice,
            1e-4,
            1e-6,
        );
        close_sum(
            &format!("bce value-only n={n}"),
            g.read(&f.out).unwrap()[1],
            v,
            v.abs(),
        );
    }
}

#[test]
fn kl_and_vae_loss() {
    let g = gpu();
    let f = fix();
    for &n in &SIZES[..3] {
        let mu = rand_vec(n, 5 + n as u64);
        let lv: Vec<f32> = rand_vec(n, 6 + n as u64).iter().map(|v| 3.0 * v).collect();
        let (gm, gl, dm, dl) = (
            g.upload(&mu).unwrap(),
            g.upload(&lv).unwrap(),
            nan(n),
            nan(n),
        );
        run(|b| {
            loss::kl_normal(
                b,
                n,
                gm.raw(),
                gl.raw(),
                Some(GradOut::set(dm.raw())),
                Some(GradOut::set(dl.raw())),
                0.5,
                f.scratch.raw(),
                f.out.raw(),
                3,
            )
            .unwrap()
        });
        let (v, gmu, glv) = loss::kl_normal_ref(&to_f64(&mu), &to_f64(&lv));
        close_sum(&format!("kl n={n}"), g.read(&f.out).unwrap()[3], v, v.abs());
        let half = |v: &[f64]| v.iter().map(|x| (x * 0.5) as f32).collect::<Vec<_>>();
        assert_close(
            &format!("kl dmu n={n}"),
            &g.read(&dm).unwrap(),
            &half(&gmu),
            1e-4,
            1e-6,
        );
        assert_close(
            &format!("kl dlogvar n={n}"),
            &g.read(&dl).unwrap(),
            &half(&glv),
            1e-4,
            1e-6,
        );
    }
    // The VAE loss: batch 3, 50 pixels, 4 latents; KL grads added to what reparam wrote.
    let s = VaeLossShape {
        batch: 3,
        pixels: 50,
        latent: 4,
    };
    let l = rand_vec(150, 1).iter().map(|v| v * 5.0).collect::<Vec<_>>();
    let x = rand_vec(150, 2)
        .iter()
        .map(|v| 0.5 + 0.5 * v)
        .collect::<Vec<_>>();
    let mu = rand_vec(12, 3);
    let lv = rand_vec(12, 4);
    let pre = rand_vec(12, 5);
    let (gl, gx, gm, glv) = (
        g.upload(&l).unwrap(),
        g.upload(&x).unwrap(),
        g.upload(&mu).unwrap(),
        g.upload(&lv).unwrap(),
    );
    let (dlog, dm, dlv) = (nan(150), g.upload(&pre).unwrap(), g.upload(&pre).unwrap());
    run(|b| {
        loss::vae_loss(
            b,
            &s,
            gl.raw(),
            gx.raw(),
            gm.raw(),
            glv.raw(),
            GradOut::set(dlog.raw()),
            GradOut::add(dm.raw()),
            GradOut::add(dlv.raw()),
            f.scratch.raw(),
            f.out.raw(),
        )
        .unwrap()
    });
    let out = g.read(&f.out).unwrap();
    let (bce, gb) = loss::bce_with_logits_ref(&to_f64(&l), &to_f64(&x));
    let (kl, gmu, gkl) = loss::kl_normal_ref(&to_f64(&mu), &to_f64(&lv));
    close_sum("vae bce", out[0], bce, bce);
    close_sum("vae kl", out[1], kl, kl);
    close_sum(
        "vae total",
        s.loss(&out) as f32,
        (bce + kl) / 3.0,
        (bce + kl) / 3.0,
    );
    let third = |v: &[f64], base: Option<&[f32]>| -> Vec<f32> {
        v.iter()
            .enumerate()
            .map(|(i, g)| (g / 3.0 + base.map_or(0.0, |b| b[i] as f64)) as f32)
            .collect()
    };
    assert_close(
        "vae dlogits",
        &g.read(&dlog).unwrap(),
        &third(&gb, None),
        1e-4,
        1e-6,
    );
    assert_close(
        "vae dmu",
        &g.read(&dm).unwrap(),
        &third(&gmu, Some(&pre)),
        1e-4,
        1e-6,
    );
    assert_close(
        "vae dlogvar",
        &g.read(&dlv).unwrap(),
        &third(&gkl, Some(&pre)),
        1e-4,
        1e-6,
    );
}

#[test]
fn softmax_cross_entropy_value_and_grad() {
    let g = gpu();
    let f = fix();
    for &(rows, classes) in &[
        (1usize, 1usize),
        (1, 20),
        (3, 7),
        (64, 20),
        (300, 5),
        (256 * 257, 3),
    ] {
        let l: Vec<f32> = rand_vec(rows * classes, rows as u64)
            .iter()
            .map(|v| v * 20.0)
            .collect();
        let labels: Vec<u32> = (0..rows).map(|r| ((r * 7 + 3) % classes) as u32).collect();
        let (gl, glab, gg) = (
            g.upload(&l).unwrap(),
            g.upload(&labels).unwrap(),
            nan(rows * classes),
        );
        run(|b| {
            loss::softmax_cross_entropy(
                b,
                rows,
                classes,
                gl.raw(),
                glab.raw(),
                Some(GradOut::set(gg.raw())),
                2.0,
                f.scratch.raw(),
                f.out.raw(),
                0,
            )
            .unwrap()
        });
        let (v, grad) = loss::softmax_ce_ref(rows, classes, &to_f64(&l), &labels);
        close_sum(
            &format!("ce {rows}x{classes}"),
            g.read(&f.out).unwrap()[0],
            v,
            v.abs(),
        );
        let want: Vec<f32> = grad.iter().map(|d| (2.0 * d) as f32).collect();
        assert_close(
            &format!("ce grad {rows}x{classes}"),
            &g.read(&gg).unwrap(),
            &want,
            1e-4,
            1e-6 / rows as f64,
        );
    }
    // A label out of range poisons the loss instead of reading past the row.
    let (gl, glab) = (
        g.upload(&[0.0f32; 6]).unwrap(),
        g.upload(&[1u32, 3]).unwrap(),
    );
    run(|b| {
        loss::softmax_cross_entropy(
            b,
            2,
            3,
            gl.raw(),
            glab.raw(),
            None,
            1.0,
            f.scratch.raw(),
            f.out.raw(),
            0,
        )
        .unwrap()
    });
    assert!(
        g.read(&f.out).unwrap()[0].is_nan(),
        "bad label must give NaN"
    );
}

#[test]
fn compactness_value_and_grad() {
    let g = gpu();
    let f = fix();
    for &(n, k) in &[(2usize, 1usize), (3, 5), (64, 20), (7, 300)] {
        let h = rand_vec(n * k, (n * k) as u64);
        let (gh, gg) = (g.upload(&h).unwrap(), nan(n * k));
        run(|b| {
            loss::compactness(
                b,
                n,
                k,
                gh.raw(),
                Some(GradOut::set(gg.raw())),
                0.1,
                f.scratch.raw(),
                f.out.raw(),
                1,
            )
            .unwrap()
        });
        // The reference is the paper's leave-one-out form; the GPU uses the full-mean form.
        let v = loss::compactness_ref(n, k, &to_f64(&h));
        close_sum(&format!("l_C {n}x{k}"), g.read(&f.out).unwrap()[1], v, v);
        let want: Vec<f32> = loss::compactness_grad_ref(n, k, &to_f64(&h))
            .iter()
            .map(|d| (0.1 * d) as f32)
            .collect();
        assert_close(
            &format!("l_C grad {n}x{k}"),
            &g.read(&gg).unwrap(),
            &want,
            1e-4,
            1e-7,
        );
    }
}

#[test]
fn mse_grads_wrt_both_arguments() {
    let g = gpu();
    let f = fix();
    for &n in &SIZES {
        let a = rand_vec(n, 40 + n as u64);
        let bv = rand_vec(n, 41 + n as u64);
        let pre = rand_vec(n, 42);
        let (ga_, gb_, dga, dgb) = (
            g.upload(&a).unwrap(),
            g.upload(&bv).unwrap(),
            nan(n),
            g.upload(&pre).unwrap(),
        );
        run(|b| {
            loss::mse(
                b,
                n,
                ga_.raw(),
                gb_.raw(),
                Some(GradOut::set(dga.raw())),
                Some(GradOut::add(dgb.raw())),
                10.0,
                f.scratch.raw(),
                f.out.raw(),
                2,
            )
            .unwrap()
        });
        let (v, da, db) = loss::mse_ref(&to_f64(&a), &to_f64(&bv));
        close_sum(&format!("mse n={n}"), g.read(&f.out).unwrap()[2], v, v);
        let want_a: Vec<f32> = da.iter().map(|d| (10.0 * d) as f32).collect();
        let want_b: Vec<f32> = db
            .iter()
            .zip(&pre)
            .map(|(d, p)| (10.0 * d + *p as f64) as f32)
            .collect();
        let abs = 1e-5 / n as f64;
        assert_close(
            &format!("mse da n={n}"),
            &g.read(&dga).unwrap(),
            &want_a,
            1e-4,
            abs,
        );
        assert_close(
            &format!("mse db (accumulated) n={n}"),
            &g.read(&dgb).unwrap(),
            &want_b,
            1e-4,
            1e-5,
        );
    }
}

#[test]
fn per_sample_scores() {
    let g = gpu();
    for &(rows, cols) in &[(1usize, 1usize), (3, 4096), (5, 256), (2, 300), (70, 33)] {
        let l: Vec<f32> = rand_vec(rows * cols, 50).iter().map(|v| v * 6.0).collect();
        let x: Vec<f32> = rand_vec(rows * cols, 51)
            .iter()
            .map(|v| 0.5 + 0.5 * v)
            .collect();
        let (gl, gx) = (g.upload(&l).unwrap(), g.upload(&x).unwrap());
        let scores = nan(rows + 2);
        run(|b| {
            loss::score_mse(b, rows, cols, gl.raw(), gx.raw(), scores.raw(), 0).unwrap();
            loss::score_l1_sigmoid(b, rows, cols, gl.raw(), gx.raw(), scores.raw(), 2).unwrap();
        });
        let got = g.read(&scores).unwrap();
        // score_mse wrote [0, rows), then score_l1 overwrote [2, rows+2): check the last writer.
        let l1 = loss::score_l1_sigmoid_ref(rows, cols, &to_f64(&l), &to_f64(&x));
        assert_close(
            &format!("l1 score {rows}x{cols}"),
            &got[2..],
            &to_f32(&l1),
            1e-4,
            1e-5,
        );
        let mse = loss::score_mse_ref(rows, cols, &to_f64(&l), &to_f64(&x));
        let keep = rows.min(2);
        assert_close(
            &format!("mse score {rows}x{cols}"),
            &got[..keep],
            &to_f32(&mse[..keep]),
            1e-4,
            1e-5,
        );
        let alone = nan(rows);
        run(|b| loss::score_mse(b, rows, cols, gl.raw(), gx.raw(), alone.raw(), 0).unwrap());
        assert_close(
            &format!("mse score alone {rows}x{cols}"),
            &g.read(&alone).unwrap(),
            &to_f32(&mse),
            1e-4,
            1e-5,
        );
    }
}

#[test]
fn reference_gradients_match_finite_differences() {
    let l = to_f64(&rand_vec(12, 60))
        .iter()
        .map(|v| v * 4.0)
        .collect::<Vec<_>>();
    let x = to_f64(&rand_vec(12, 61))
        .iter()
        .map(|v| 0.5 + 0.5 * v)
        .collect::<Vec<_>>();
    let (_, g) = loss::bce_with_logits_ref(&l, &x);
    fd_check(
        "bce dl",
        |v| loss::bce_with_logits_ref(v, &x).0,
        &l,
        &g,
        100,
    );

    let (mu, lv) = (to_f64(&rand_vec(8, 62)), to_f64(&rand_vec(8, 63)));
    let (_, gm, gl) = loss::kl_normal_ref(&mu, &lv);
    fd_check("kl dmu", |v| loss::kl_normal_ref(v, &lv).0, &mu, &gm, 100);
    fd_check(
        "kl dlogvar",
        |v| loss::kl_normal_ref(&mu, v).0,
        &lv,
        &gl,
        100,
    );

    let (rows, classes) = (3, 5);
    let lc = to_f64(&rand_vec(rows * classes, 64))
        .iter()
        .map(|v| v * 3.0)
        .collect::<Vec<_>>();
    let labels = [4u32, 0, 2];
    let (_, gc) = loss::softmax_ce_ref(rows, classes, &lc, &labels);
    fd_check(
        "ce dlogits",
        |v| loss::softmax_ce_ref(rows, classes, v, &labels).0,
        &lc,
        &gc,
        100,
    );

    let (n, k) = (4, 3);
    let h = to_f64(&rand_vec(n * k, 65));
    let gh = loss::compactness_grad_ref(n, k, &h);
    fd_check(
        "l_C dh (leave-one-out form)",
        |v| loss::compactness_ref(n, k, v),
        &h,
        &gh,
        100,
    );

    let (a, b) = (to_f64(&rand_vec(10, 66)), to_f64(&rand_vec(10, 67)));
    let (_, ga, gb) = loss::mse_ref(&a, &b);
    fd_check("mse da", |v| loss::mse_ref(v, &b).0, &a, &ga, 100);
    fd_check("mse db", |v| loss::mse_ref(&a, v).0, &b, &gb, 100);
}

#[test]
fn bench_shapes_listed() {
    assert!(bench_shapes::loss(64).len() >= 7);
}
