//! Philox generator vs its CPU port and the Random123 known-answer vectors; normal
//! statistics; reparameterisation forward/backward vs f64 references and finite differences.

mod common;
use common::*;
use gpu_nids::gpu::Batch;
use gpu_nids::nn::loss::GradOut;
use gpu_nids::nn::reparam::{self, NoiseKey};

fn run(f: impl FnOnce(&mut Batch)) {
    let mut b = gpu().batch();
    f(&mut b);
    b.submit().unwrap();
}

fn normals(n: usize, key: NoiseKey) -> Vec<f32> {
    let g = gpu();
    let e = g.zeros::<f32>(n).unwrap();
    run(|b| reparam::normal(b, n, key, e.raw()).unwrap());
    g.read(&e).unwrap()
}

#[test]
fn philox_known_answers() {
    // Random123 kat_vectors, philox4x32_10.
    assert_eq!(
        reparam::philox4x32_10([0; 4], [0; 2]),
        [0x6627e8d5, 0xe169c58d, 0xbc57ac4c, 0x9b00dbd8]
    );
    assert_eq!(
        reparam::philox4x32_10([u32::MAX; 4], [u32::MAX; 2]),
        [0x408f276d, 0x41c83b0e, 0xa20bc7c6, 0x6d5451fd]
    );
    assert_eq!(
        reparam::philox4x32_10(
            [0x243f6a88, 0x85a308d3, 0x13198a2e, 0x03707344],
            [0xa4093822, 0x299f31d0]
        ),
        [0xd16cfe09, 0x94fdcceb, 0x5001e420, 0x24126ea1]
    );
}

#[test]
fn gpu_generator_equals_cpu_port() {
    let g = gpu();
    for key in [
        NoiseKey::new(0, 0),
        NoiseKey::new(0xDEAD_BEEF_1234_5678, 1 << 33),
        NoiseKey {
            seed: 7,
            step: 3,
            stream: 9,
        },
    ] {
        for n in [1usize, 5, 1001] {
            let bits = g.zeros::<u32>(n).unwrap();
            run(|b| reparam::philox_bits(b, n, key, bits.raw()).unwrap());
            assert_eq!(
                g.read(&bits).unwrap(),
                reparam::philox_bits_ref(n, key),
                "bits {key:?} n={n}"
            );
            // Floats: the same f32 operations, but WGSL does not make log/sqrt/cos/sin
            // correctly rounded (llvmpipe's cos near ±π/2 is ~1e-6 off the host libm, then
            // scaled by r ≤ 5.6), so the float part is held to 1e-5 absolute, not 1e-6.
            let got = normals(n, key);
            let want = reparam::normal_ref(n, key);
            let worst = got
                .iter()
                .zip(&want)
                .map(|(a, b)| (a - b).abs())
                .fold(0.0f32, f32::max);
            eprintln!("normals {key:?} n={n}: max |gpu − cpu| = {worst:e}");
            assert_close(&format!("normals {key:?} n={n}"), &got, &want, 1e-6, 1e-5);
        }
    }
}

fn corr(a: &[f32], b: &[f32]) -> f64 {
    let n = a.len() as f64;
    let (ma, mb) = (
        a.iter().map(|&v| v as f64).sum::<f64>() / n,
        b.iter().map(|&v| v as f64).sum::<f64>() / n,
    );
    let cov: f64 = a
        .iter()
        .zip(b)
        .map(|(&x, &y)| (x as f64 - ma) * (y as f64 - mb))
        .sum::<f64>()
        / n;
    let va: f64 = a.iter().map(|&x| (x as f64 - ma).powi(2)).sum::<f64>() / n;
    let vb: f64 = b.iter().map(|&y| (y as f64 - mb).powi(2)).sum::<f64>() / n;
    cov / (va * vb).sqrt()
}

#[test]
fn normals_have_the_right_statistics() {
    let n = 100_000;
    let key = NoiseKey::new(42, 7);
    let e = normals(n, key);
    let mean = e.iter().map(|&v| v as f64).sum::<f64>() / n as f64;
    let var = e.iter().map(|&v| (v as f64 - mean).powi(2)).sum::<f64>() / n as f64;
    // Standard errors at 1e5 samples: mean 0.0032, variance 0.0045; allow ~5σ.
    assert!(mean.abs() < 0.016, "mean {mean}");
    assert!((var - 1.0).abs() < 0.025, "variance {var}");
    let within1 = e.iter().filter(|v| v.abs() < 1.0).count() as f64 / n as f64;
    assert!((within1 - 0.6827).abs() < 0.008, "P(|z|<1) = {within1}");
    let kurt = e.iter().map(|&v| (v as f64 - mean).powi(4)).sum::<f64>() / n as f64 / (var * var);
    assert!((kurt - 3.0).abs() < 0.1, "kurtosis {kurt}");
    assert!(e.iter().all(|v| v.is_finite()));
    // Neighbouring indices (both within a Box–Muller pair and across blocks), and steps.
    let c1 = corr(&e[..n - 1], &e[1..]);
    let c4 = corr(&e[..n - 4], &e[4..]);
    assert!(
        c1.abs() < 0.016 && c4.abs() < 0.016,
        "lag-1 {c1}, lag-4 {c4}"
    );
    let next = normals(n, NoiseKey::new(42, 8));
    let cs = corr(&e, &next);
    assert!(cs.abs() < 0.016, "consecutive steps correlate: {cs}");
    let other_seed = normals(n, NoiseKey::new(43, 7));
    assert!(corr(&e, &other_seed).abs() < 0.016);
    // Same key, same noise.
    assert_eq!(normals(n, key), e, "not repeatable");
}

#[test]
fn reparam_forward_backward() {
    let g = gpu();
    for n in [1usize, 6, 32 * 3, 1031] {
        let key = NoiseKey::new(5, n as u64);
        let mu = rand_vec(n, 1 + n as u64);
        let lv: Vec<f32> = rand_vec(n, 2 + n as u64).iter().map(|v| 2.0 * v).collect();
        let dz = rand_vec(n, 3 + n as u64);
        let (gm, gl, ge, gz, gdz) = (
            g.upload(&mu).unwrap(),
            g.upload(&lv).unwrap(),
            g.zeros::<f32>(n).unwrap(),
            g.zeros::<f32>(n).unwrap(),
            g.upload(&dz).unwrap(),
        );
        run(|b| reparam::forward(b, n, key, gm.raw(), gl.raw(), ge.raw(), gz.raw()).unwrap());
        let eps = g.read(&ge).unwrap();
        assert_eq!(eps, normals(n, key), "saved ε is the key's noise");
        let z = reparam::forward_ref(&to_f64(&mu), &to_f64(&lv), &to_f64(&eps));
        assert_close(
            &format!("z n={n}"),
            &g.read(&gz).unwrap(),
            &to_f32(&z),
            1e-4,
            1e-5,
        );

        let (dmu, dlv) = reparam::backward_ref(&to_f64(&dz), &to_f64(&lv), &to_f64(&eps));
        let pre = rand_vec(n, 9);
        for acc in [false, true] {
            let init = if acc { pre.clone() } else { vec![f32::NAN; n] };
            let (gdm, gdl) = (g.upload(&init).unwrap(), g.upload(&init).unwrap());
            let out = |buf| {
                if acc {
                    GradOut::add(buf)
                } else {
                    GradOut::set(buf)
                }
            };
            run(|b| {
                reparam::backward(
                    b,
                    n,
                    gdz.raw(),
                    gl.raw(),
                    ge.raw(),
                    out(gdm.raw()),
                    out(gdl.raw()),
                )
                .unwrap()
            });
            let plus = |v: &[f64]| -> Vec<f32> {
                v.iter()
                    .zip(&pre)
                    .map(|(a, p)| (a + if acc { *p as f64 } else { 0.0 }) as f32)
                    .collect()
            };
            assert_close(
                &format!("dmu n={n} acc {acc}"),
                &g.read(&gdm).unwrap(),
                &plus(&dmu),
                1e-4,
                1e-5,
            );
            assert_close(
                &format!("dlogvar n={n} acc {acc}"),
                &g.read(&gdl).unwrap(),
                &plus(&dlv),
                1e-4,
                1e-5,
            );
        }
    }
}

#[test]
fn reference_backward_matches_finite_differences() {
    let (mu, lv, eps, r) = (
        to_f64(&rand_vec(9, 1)),
        to_f64(&rand_vec(9, 2)),
        to_f64(&rand_vec(9, 3)),
        to_f64(&rand_vec(9, 4)),
    );
    let dot = |z: Vec<f64>| z.iter().zip(&r).map(|(a, b)| a * b).sum::<f64>();
    let (dmu, dlv) = reparam::backward_ref(&r, &lv, &eps);
    fd_check(
        "reparam dmu",
        |v| dot(reparam::forward_ref(v, &lv, &eps)),
        &mu,
        &dmu,
        100,
    );
    fd_check(
        "reparam dlogvar",
        |v| dot(reparam::forward_ref(&mu, v, &eps)),
        &lv,
        &dlv,
        100,
    );
}
