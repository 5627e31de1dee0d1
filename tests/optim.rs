//! Adam and SGD steps on the GPU vs the CPU reference of PyTorch's formulas, over several
//! steps with changing gradients; gradient zeroing.

mod common;
use common::*;
use gpu_nids::nn::optim::{self, Adam, Sgd};

// 1000 (and 4) take the four-per-invocation adam4 (shaders/optim4.wgsl), 1 and 255 the
// scalar kernel.
const SIZES: [usize; 4] = [1, 4, 255, 1000];

#[test]
fn adam_matches_reference_over_steps() {
    let g = gpu();
    let cfgs = [
        Adam::default(),
        Adam {
            lr: 3e-2,
            beta1: 0.8,
            beta2: 0.99,
            eps: 1e-6,
            weight_decay: 1e-2,
        },
    ];
    for cfg in cfgs {
        for &n in &SIZES {
            let p0 = rand_vec(n, n as u64);
            let (gp, gg, gm, gv) = (
                g.upload(&p0).unwrap(),
                g.zeros::<f32>(n).unwrap(),
                g.zeros::<f32>(n).unwrap(),
                g.zeros::<f32>(n).unwrap(),
            );
            let (mut p, mut m, mut v) = (to_f64(&p0), vec![0.0; n], vec![0.0; n]);
            for t in 1..=6u64 {
                let mut grad = rand_vec(n, 100 + t);
                if n > 1 {
                    grad[0] = 0.0; // a zero gradient: the update must stay finite
                }
                g.write(&gg, 0, &grad);
                let mut b = g.batch();
                optim::adam_step(&mut b, n, &cfg, t, gp.raw(), gg.raw(), gm.raw(), gv.raw())
                    .unwrap();
                b.submit().unwrap();
                optim::adam_ref(&cfg, t, &mut p, &to_f64(&grad), &mut m, &mut v);
            }
            let what = format!("adam {cfg:?} n={n}");
            assert_close(
                &format!("{what} param"),
                &g.read(&gp).unwrap(),
                &to_f32(&p),
                1e-4,
                1e-5,
            );
            assert_close(
                &format!("{what} m"),
                &g.read(&gm).unwrap(),
                &to_f32(&m),
                1e-4,
                1e-6,
            );
            assert_close(
                &format!("{what} v"),
                &g.read(&gv).unwrap(),
                &to_f32(&v),
                1e-4,
                1e-7,
            );
            // The parameters moved by about lr per step, not by nothing.
            let moved = g
                .read(&gp)
                .unwrap()
                .iter()
                .zip(&p0)
                .map(|(a, b)| (a - b).abs())
                .fold(0.0f32, f32::max);
            assert!(
                moved as f64 > cfg.lr,
                "{what}: parameters barely moved ({moved})"
            );
        }
    }
}

#[test]
fn sgd_matches_reference_over_steps() {
    let g = gpu();
    let cfgs = [
        Sgd {
            lr: 5e-2,
            weight_decay: 5e-4,
            ..Default::default()
        }, // the paper's setting, larger lr
        Sgd {
            lr: 1e-1,
            momentum: 0.9,
            ..Default::default()
        },
        Sgd {
            lr: 1e-1,
            momentum: 0.9,
            dampening: 0.1,
            weight_decay: 1e-2,
            nesterov: false,
        },
        Sgd {
            lr: 1e-1,
            momentum: 0.5,
            weight_decay: 1e-2,
            nesterov: true,
            ..Default::default()
        },
    ];
    for cfg in cfgs {
        for &n in &SIZES {
            let p0 = rand_vec(n, 7 + n as u64);
            let (gp, gg) = (g.upload(&p0).unwrap(), g.zeros::<f32>(n).unwrap());
            // Garbage in the momentum buffer: the first step must overwrite it.
            let gbuf = g.upload(&vec![f32::NAN; n]).unwrap();
            let (mut p, mut buf) = (to_f64(&p0), vec![0.0; n]);
            for t in 0..5u64 {
                let grad = rand_vec(n, 200 + t);
                g.write(&gg, 0, &grad);
                let mut b = g.batch();
                let mb = (cfg.momentum != 0.0).then(|| gbuf.raw());
                optim::sgd_step(&mut b, n, &cfg, t == 0, gp.raw(), gg.raw(), mb).unwrap();
                b.submit().unwrap();
                optim::sgd_ref(&cfg, t == 0, &mut p, &to_f64(&grad), &mut buf);
            }
            assert_close(
                &format!("sgd {cfg:?} n={n}"),
                &g.read(&gp).unwrap(),
                &to_f32(&p),
                1e-4,
                1e-5,
            );
        }
    }
    // Momentum without a buffer is an error, not a silent plain SGD.
    let buf = g.zeros::<f32>(4).unwrap();
    let mut b = g.batch();
    let cfg = Sgd {
        lr: 0.1,
        momentum: 0.9,
        ..Default::default()
    };
    assert!(optim::sgd_step(&mut b, 4, &cfg, true, buf.raw(), buf.raw(), None).is_err());
}

#[test]
fn zero_clears_gradients() {
    let g = gpu();
    let buf = g.upload(&rand_vec(300, 1)).unwrap();
    let mut b = g.batch();
    optim::zero(&mut b, 300, buf.raw()).unwrap();
    b.submit().unwrap();
    assert!(g.read(&buf).unwrap().iter().all(|&v| v == 0.0));
}
