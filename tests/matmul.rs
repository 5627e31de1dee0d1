//! Tiled and register-blocked matmul vs a CPU f64 reference, at sizes that are not
//! multiples of any tile, for all three operand layouts.

mod common;
use common::{assert_close, gpu, rand_vec};
use gpu_nids::nn::matmul::{matmul_host, matmul_ref, select, MatmulParams, MatmulVariant, Trans};

const SIZES: [(usize, usize, usize); 8] = [
    (1, 1, 1),
    (7, 7, 7),
    (1, 130, 65),
    (65, 1, 7),
    (65, 65, 65),
    (130, 65, 7),
    (33, 130, 130),
    (64, 64, 16),
];

fn check(variant: MatmulVariant, t: Trans, m: usize, n: usize, k: usize, beta: f32) {
    let p = MatmulParams::dense(m, n, k, t).with_beta(beta);
    let a = rand_vec(m * k, (m * 31 + k) as u64);
    let b = rand_vec(k * n, (n * 17 + k) as u64 + 5);
    let c0 = rand_vec(m * n, 99);
    let got = matmul_host(gpu(), variant, &p, &a, &b, &c0).unwrap();
    let mut want = c0.clone();
    matmul_ref(&p, &a, &b, &mut want);
    assert_close(
        &format!("{variant:?} {t:?} {m}x{n}x{k} beta {beta}"),
        &got,
        &want,
        1e-4,
        1e-5,
    );
}

#[test]
fn all_layouts_odd_sizes() {
    for v in MatmulVariant::ALL {
        for t in [Trans::None, Trans::B, Trans::A] {
            for &(m, n, k) in &SIZES {
                check(v, t, m, n, k, 0.0);
            }
        }
    }
}

#[test]
fn beta_accumulates() {
    for v in MatmulVariant::ALL {
        check(v, Trans::None, 65, 33, 20, 1.0);
        check(v, Trans::A, 7, 130, 9, 0.5);
    }
}

#[test]
fn batched_with_offsets() {
    // Two 9×11·11×5 products stored back to back after an offset: what im2col convolutions use.
    let (m, n, k, nb) = (9usize, 5usize, 11usize, 3usize);
    let mut p = MatmulParams::dense(m, n, k, Trans::None);
    p.batch = nb as u32;
    p.a_off = 3;
    p.c_off = 2;
    let a = rand_vec(3 + nb * m * k, 1);
    let b = rand_vec(nb * k * n, 2);
    let c0 = vec![0.0; 2 + nb * m * n];
    for v in MatmulVariant::ALL {
        let got = matmul_host(gpu(), v, &p, &a, &b, &c0).unwrap();
        let mut want = c0.clone();
        matmul_ref(&p, &a, &b, &mut want);
        assert_close(&format!("batched {v:?}"), &got, &want, 1e-4, 1e-5);
    }
}

#[test]
fn params_size_mismatch_is_an_error_not_a_panic() {
    let g = gpu();
    let buf = g.zeros::<f32>(4).unwrap();
    let mut b = g.batch();
    let err = b
        .dispatch(
            gpu_nids::gpu::Kernel::new("matmul", "mm_reg"),
            &[0u32; 3],
            &[buf.raw(), buf.raw(), buf.raw()],
            [1, 1, 1],
        )
        .unwrap_err();
    assert!(
        err.to_string().contains("12 bytes on the host but 64"),
        "{err}"
    );
}

/// The vec4 forms of the register-blocked kernel: B·C rows as vec4 (A·B with widths a
/// multiple of 4, including widths that are not a multiple of the 8-column block) and
/// the k-contiguous dot-product form (A·Bᵀ with k a multiple of 4).
#[test]
fn vec4_forms_are_selected_and_correct() {
    let cases = [
        (Trans::None, 1, 4, 1, ("matmul_v4", "mm_v4")),
        (Trans::None, 7, 12, 5, ("matmul_v4", "mm_v4")),
        (Trans::None, 33, 132, 65, ("matmul_v4", "mm_v4")),
        (Trans::A, 9, 20, 3, ("matmul_v4", "mm_v4")),
        (Trans::B, 1, 1, 4, ("matmul_nt", "mm_nt")),
        (Trans::B, 7, 5, 12, ("matmul_nt", "mm_nt")),
        (Trans::B, 65, 33, 132, ("matmul_nt", "mm_nt")),
        (Trans::B, 7, 5, 13, ("matmul", "mm_reg")),
        (Trans::None, 7, 13, 5, ("matmul", "mm_reg")),
    ];
    for (t, m, n, k, want) in cases {
        let p = MatmulParams::dense(m, n, k, t);
        let kernel = select(MatmulVariant::Reg, &p).0;
        assert_eq!((kernel.shader, kernel.entry), want, "{t:?} {m}x{n}x{k}");
        check(MatmulVariant::Reg, t, m, n, k, 0.0);
        check(MatmulVariant::Reg, t, m, n, k, 1.0);
    }
}
