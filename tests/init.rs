//! PyTorch-default initialisation: fan_in rules (incl. conv-transpose), bounds, the
//! distribution's moments, seeding; the host RNG's reference outputs and uniformity.

use gpu_nids::nn::init::{self, HostRng};

#[test]
fn splitmix_and_xoshiro_reference_values() {
    // splitmix64 from state 0 (Vigna's reference implementation).
    let mut s = 0u64;
    assert_eq!(init::splitmix64(&mut s), 0xE220_A839_7B1D_CDAF);
    // Same seed, same stream; different seed, different stream.
    let a: Vec<u64> = {
        let mut r = HostRng::new(9);
        (0..8).map(|_| r.next_u64()).collect()
    };
    let b: Vec<u64> = {
        let mut r = HostRng::new(9);
        (0..8).map(|_| r.next_u64()).collect()
    };
    let c: Vec<u64> = {
        let mut r = HostRng::new(10);
        (0..8).map(|_| r.next_u64()).collect()
    };
    assert_eq!(a, b);
    assert_ne!(a, c);
}

#[test]
fn host_rng_is_uniform() {
    let mut r = HostRng::new(1);
    let n = 100_000;
    let v: Vec<f64> = (0..n).map(|_| r.next_f64()).collect();
    assert!(v.iter().all(|&x| (0.0..1.0).contains(&x)));
    let mean = v.iter().sum::<f64>() / n as f64;
    let var = v.iter().map(|x| (x - mean).powi(2)).sum::<f64>() / n as f64;
    assert!((mean - 0.5).abs() < 0.005, "mean {mean}");
    assert!((var - 1.0 / 12.0).abs() < 0.002, "variance {var}");
    let mut counts = [0usize; 7];
    for _ in 0..70_000 {
        counts[r.below(7) as usize] += 1;
    }
    assert!(
        counts.iter().all(|&c| (9_500..10_500).contains(&c)),
        "below(7) counts {counts:?}"
    );
}

#[test]
fn fan_in_follows_pytorch() {
    assert_eq!(init::fan_in(&[32, 8192]), 8192); // Linear [out, in]
    assert_eq!(init::fan_in(&[64, 32, 4, 4]), 512); // Conv2d [C_out, C_in, k, k]
    assert_eq!(init::fan_in(&[128, 64, 4, 4]), 1024); // ConvTranspose2d [C_in, C_out, k, k]: C_out·k²
    assert_eq!(init::fan_in(&[32, 1, 6]), 6); // Conv1d
                                              // a = √5 makes the kaiming bound exactly 1/√fan_in.
    assert!((init::kaiming_uniform_bound(5f64.sqrt(), 400) - 0.05).abs() < 1e-12);
}

fn check_uniform(what: &str, v: &[f32], bound: f64) {
    assert!(
        v.iter().all(|&x| (x as f64).abs() <= bound),
        "{what}: value outside ±{bound}"
    );
    let n = v.len() as f64;
    let mean = v.iter().map(|&x| x as f64).sum::<f64>() / n;
    let var = v.iter().map(|&x| (x as f64 - mean).powi(2)).sum::<f64>() / n;
    let want = bound * bound / 3.0;
    // ~5 standard errors of the sample mean and variance of U(−b, b).
    assert!(mean.abs() < 5.0 * (want / n).sqrt(), "{what}: mean {mean}");
    assert!(
        (var - want).abs() < 5.0 * want * (0.8 / n).sqrt(),
        "{what}: variance {var}, want {want}"
    );
}

#[test]
fn layers_have_pytorch_default_distributions() {
    let mut r = HostRng::new(0);
    let (w, b) = init::linear(&mut r, 8192, 32);
    assert_eq!((w.len(), b.len()), (32 * 8192, 32));
    check_uniform("linear weight", &w, 1.0 / 8192f64.sqrt());
    assert!(b.iter().all(|&x| (x as f64).abs() <= 1.0 / 8192f64.sqrt()));

    let (w, b) = init::conv(&mut r, &[64, 32, 4, 4]);
    assert_eq!((w.len(), b.len()), (64 * 32 * 16, 64));
    check_uniform("conv weight", &w, 1.0 / 512f64.sqrt());

    let (w, b) = init::conv_transpose(&mut r, &[128, 64, 4, 4]);
    assert_eq!((w.len(), b.len()), (128 * 64 * 16, 64));
    check_uniform("conv-transpose weight", &w, 1.0 / 1024f64.sqrt());
    check_uniform("conv-transpose bias", &b, 1.0 / 1024f64.sqrt());

    let (_, b) = init::linear(&mut r, 4, 5000);
    check_uniform("linear bias", &b, 0.5);
}

#[test]
fn initialisation_is_seeded() {
    let a = init::linear(&mut HostRng::new(3), 10, 4);
    let b = init::linear(&mut HostRng::new(3), 10, 4);
    let c = init::linear(&mut HostRng::new(4), 10, 4);
    assert_eq!(a, b);
    assert_ne!(a.0, c.0);
}
