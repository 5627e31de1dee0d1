//! The per-adapter kernel choice: the first run of a shape class times the
//! candidates and writes the winner to the cache; a later process reads it back
//! instead of timing again, and the chosen kernel still matches the reference; choices
//! timed on other kernels are not used and are dropped.
//! (Which kernel wins is machine-dependent, so only the bookkeeping is asserted, and
//! the pick itself on made-up timings.)

use gpu_nids::gpu::{Gpu, GpuOptions, LimitsMode};
use gpu_nids::nn::matmul::{matmul_host, matmul_ref, MatmulParams, MatmulVariant, Trans};
use gpu_nids::nn::tune::fastest;

fn product(gpu: &Gpu) -> (Vec<f32>, Vec<f32>) {
    let (m, n, k) = (24, 40, 16);
    let p = MatmulParams::dense(m, n, k, Trans::None);
    let a: Vec<f32> = (0..m * k)
        .map(|i| ((i * 7) % 13) as f32 / 13.0 - 0.5)
        .collect();
    let b: Vec<f32> = (0..k * n)
        .map(|i| ((i * 5) % 11) as f32 / 11.0 - 0.5)
        .collect();
    let c0 = vec![0.0; m * n];
    let got = matmul_host(gpu, MatmulVariant::Reg, &p, &a, &b, &c0).unwrap();
    let mut want = c0;
    matmul_ref(&p, &a, &b, &mut want);
    (got, want)
}

#[test]
fn first_run_writes_the_choice_and_the_cache_is_read_back() {
    let dir = tempfile::tempdir().unwrap();
    // The other test here touches no environment, so the environment is ours.
    std::env::set_var("XDG_CACHE_HOME", dir.path());
    std::env::remove_var("GPU_NIDS_TUNE");
    std::env::remove_var("GPU_NIDS_MATMUL_V4");
    let mut opts = GpuOptions::from_env();
    opts.limits = LimitsMode::Portable;
    opts.tune = true;
    let gpu = Gpu::new(&opts).unwrap();
    // Choices timed on other kernels: one of a build whose shaders differed, one in the
    // format before the kernels' fingerprint was part of the key.
    let cache = dir.path().join("gpu-nids").join("tune.tsv");
    std::fs::create_dir_all(cache.parent().unwrap()).unwrap();
    let stale = [
        format!(
            "{}\tdrv x\tkernels 0000000000000000\tmatmul old class\tr4c8",
            gpu.info.name
        ),
        format!("{}\tdrv x\tmatmul old class\tr4c8", gpu.info.name),
    ];
    std::fs::write(&cache, stale.join("\n") + "\n").unwrap();
    let (got, want) = product(&gpu);
    for (g, w) in got.iter().zip(&want) {
        assert!((g - w).abs() <= 1e-4 * w.abs() + 1e-5, "{g} vs {w}");
    }
    let text = std::fs::read_to_string(&cache).expect("the tuner wrote its cache");
    assert!(
        !text.contains("old class"),
        "choices of other kernels are dropped: {text}"
    );
    let lines: Vec<&str> = text.lines().collect();
    assert!(!lines.is_empty(), "cache has no entries");
    for l in &lines {
        let cols: Vec<&str> = l.split('\t').collect();
        assert_eq!(
            cols.len(),
            5,
            "adapter, driver, kernels, class, choice: {l:?}"
        );
        assert!(cols[0].contains(&gpu.info.name), "{l:?} names the adapter");
        assert!(cols[2].starts_with("kernels "), "{l:?} names the kernels");
    }
    // A second run of the same shapes reads the file and writes nothing new.
    let before = std::fs::metadata(&cache).unwrap().modified().unwrap();
    let (got2, _) = product(&gpu);
    assert_eq!(got, got2, "the cached choice computes the same product");
    assert_eq!(
        std::fs::metadata(&cache).unwrap().modified().unwrap(),
        before
    );
}

/// Each candidate is timed once; those within 1.5× of the best are timed again (in
/// reverse order) and keep their faster time, so one slow sample does not lose a
/// close candidate the race, and far slower ones cost no second run.
#[test]
fn fastest_retimes_the_close_candidates_and_keeps_their_better_time() {
    // Candidate 1 is slowed in round one (a neighbour's burst) but fastest at heart;
    // candidate 3 is far behind and is not run again.
    let rounds = [[5.0, 7.0, 6.0, 20.0], [5.0, 3.0, 6.0, 1.0]];
    let mut calls = Vec::new();
    let win = fastest(4, |i, first| {
        let round = calls.iter().filter(|&&(c, _)| c == i).count();
        calls.push((i, first));
        Ok(rounds[round][i])
    })
    .unwrap();
    assert_eq!(win, 1);
    // Each candidate's first run is flagged, so the caller warms up once per candidate.
    let t = true;
    let f = false;
    assert_eq!(
        calls,
        [(0, t), (1, t), (2, t), (3, t), (2, f), (1, f), (0, f)]
    );
    assert_eq!(fastest(1, |_, _| Ok(1.0)).unwrap(), 0);
}
