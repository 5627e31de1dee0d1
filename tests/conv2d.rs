//! conv2d and conv-transpose2d on the GPU vs the f64 CPU references (forward and every
//! gradient, fused bias/ReLU, accumulate), and the references' gradients vs central
//! finite differences. Shapes include batch 1, odd and non-square sizes, and sizes that
//! take the split-K weight-gradient and two-level bias-gradient paths. im2col runs three
//! ways, each taken by some shapes below: kernel 4, stride 2, padding 1 with rows a
//! multiple of 4 wide through `im2col_k4s2` (`conv2d_s2.wgsl`; e.g. [2, 1, 96, 96, …]
//! with quads inside and at both edges of a row), other row widths that are multiples
//! of 4 through `im2col4` ([2, 3, 8, 8, 4, 3, 1, 1]), the rest through `conv2d.wgsl`'s.
//! col2im likewise: the k4 s2 p1 geometry through `col2im_k4s2`
//! (`conv2d_s2_col2im.wgsl`), other row widths that are multiples of 4 through `col2im4`
//! (`conv2d_v4.wgsl`), the rest through `conv2d.wgsl`'s. Planes that are multiples of 4
//! go channel-major through `to_channel_major4` (`conv2d_tr4.wgsl`), the others through
//! `conv2d.wgsl`'s; bias gradients run through both row sums, each selected explicitly:
//! the barrier tree (`conv2d.wgsl`) and, with 8-lane subgroups, `row_sum_sg`
//! (`conv2d_sg.wgsl`).

mod common;
use common::{assert_close, fd_check, gpu, rand_vec, to_f32, to_f64};
use gpu_nids::models::bench_shapes::conv2d as bench_shapes;
use gpu_nids::nn::conv2d::*;
use gpu_nids::nn::matmul::MatmulVariant;
use gpu_nids::nn::Act as Activation;

const REL: f64 = 1e-4;
const ABS: f64 = 1e-5;

/// [n, c_in, h, w, c_out, k, stride, pad]
fn conv(d: [usize; 8]) -> ConvLayer {
    let [n, c_in, h, w, c_out, k, stride, pad] = d;
    ConvLayer::Conv(Conv2dShape {
        n,
        c_in,
        h,
        w,
        c_out,
        k,
        stride,
        pad,
    })
}

fn convt(d: [usize; 8]) -> ConvLayer {
    let [n, c_in, h, w, c_out, k, stride, pad] = d;
    ConvLayer::Transpose(ConvTranspose2dShape {
        n,
        c_in,
        h,
        w,
        c_out,
        k,
        stride,
        pad,
    })
}

/// Small shapes of both kinds, with planes that are and are not multiples of 4 (the
/// vec4 to_channel_major4 and the scalar to_channel_major). [3, 2, 38, 38, …] and
/// [3, 2, 19, 19, …] have n·ho·wo > 1024 and not a multiple of the split length, so they
/// run the split-K (with a remainder part). Row sums: [3, 1, 128, 128, …] and
/// [3, 1, 32, 32, …] (rows of 3·4096) take both variants' two-level paths with a partial
/// last chunk (Tree: 8192 per chunk; Sg: 4096, padded to 4 chunks); for Sg also conv
/// [2, 1, 96, 96, …] and convT [3, 2, 19, 19, …] (padded chunks), and convT
/// [3, 2, 1, 1, …] with 2×2 output planes (one vec4 each, fewer than its 8 lanes).
fn shapes() -> Vec<ConvLayer> {
    vec![
        conv([1, 1, 8, 8, 2, 4, 2, 1]),
        conv([2, 3, 7, 9, 5, 3, 2, 1]),
        conv([3, 2, 5, 5, 3, 3, 1, 0]),
        conv([2, 3, 4, 3, 4, 1, 1, 0]),
        conv([2, 3, 8, 8, 4, 3, 1, 1]),
        conv([2, 16, 8, 8, 33, 4, 2, 1]),
        conv([3, 2, 38, 38, 3, 4, 2, 1]),
        conv([2, 1, 96, 96, 2, 4, 2, 1]),
        conv([3, 1, 128, 128, 1, 4, 2, 1]),
        convt([1, 2, 4, 4, 1, 4, 2, 1]),
        convt([2, 3, 3, 5, 4, 3, 2, 1]),
        convt([2, 2, 5, 5, 3, 3, 1, 0]),
        convt([2, 33, 4, 4, 16, 4, 2, 1]),
        convt([3, 2, 19, 19, 3, 4, 2, 1]),
        convt([3, 2, 1, 1, 3, 4, 2, 1]),
        convt([3, 1, 32, 32, 1, 4, 2, 1]),
    ]
}

fn ref_forward(
    l: &ConvLayer,
    act: Activation,
    x: &[f64],
    w: &[f64],
    b: Option<&[f64]>,
) -> Vec<f64> {
    match l {
        ConvLayer::Conv(s) => conv2d_ref(s, act, x, w, b),
        ConvLayer::Transpose(s) => conv_transpose2d_ref(s, act, x, w, b),
    }
}

fn ref_backward(l: &ConvLayer, x: &[f64], w: &[f64], dy: &[f64]) -> (Vec<f64>, Vec<f64>, Vec<f64>) {
    match l {
        ConvLayer::Conv(s) => conv2d_backward_ref(s, x, w, dy),
        ConvLayer::Transpose(s) => conv_transpose2d_backward_ref(s, x, w, dy),
    }
}

fn inputs(l: &ConvLayer, seed: u64) -> (Vec<f32>, Vec<f32>, Vec<f32>) {
    (
        rand_vec(l.in_len(), seed),
        rand_vec(l.weight_len(), seed + 1),
        rand_vec(l.bias_len(), seed + 2),
    )
}

fn gpu_forward(
    l: &ConvLayer,
    act: Activation,
    x: &[f32],
    w: &[f32],
    bias: Option<&[f32]>,
    variant: MatmulVariant,
) -> Vec<f32> {
    let g = gpu();
    let mut work = ConvWork::new(g, l.scratch_lens()).unwrap();
    work.variant = variant;
    let (gx, gw) = (g.upload(x).unwrap(), g.upload(w).unwrap());
    let gb = bias.map(|b| g.upload(b).unwrap());
    // Garbage in y: the forward must overwrite it.
    let gy = g.upload(&rand_vec(l.out_len(), 77)).unwrap();
    let mut b = g.batch();
    l.forward(&mut b, act, &gx, &gw, gb.as_ref(), &gy, &work)
        .unwrap();
    b.submit().unwrap();
    g.read(&gy).unwrap()
}

#[test]
fn forward_matches_reference() {
    // Both matmul variants: the products use strides the matmul tests do not.
    for (i, (l, v)) in shapes()
        .iter()
        .zip(MatmulVariant::ALL.iter().cycle())
        .enumerate()
    {
        for (act, with_bias, variant) in [
            (Activation::None, true, *v),
            (Activation::Relu, true, *v),
            (Activation::Relu, false, other(*v)),
        ] {
            let (x, w, bias) = inputs(l, 10 * i as u64);
            let got = gpu_forward(l, act, &x, &w, with_bias.then_some(&bias[..]), variant);
            let b64 = to_f64(&bias);
            let want = ref_forward(
                l,
                act,
                &to_f64(&x),
                &to_f64(&w),
                with_bias.then_some(&b64[..]),
            );
            assert_close(
                &format!("forward {l:?} {act:?} bias {with_bias} {variant:?}"),
                &got,
                &to_f32(&want),
                REL,
                ABS,
            );
        }
    }
}

fn other(v: MatmulVariant) -> MatmulVariant {
    match v {
        MatmulVariant::Tiled => MatmulVariant::Reg,
        MatmulVariant::Reg => MatmulVariant::Tiled,
    }
}

struct BwdCase {
    variant: MatmulVariant,
    row_sum: RowSumVariant,
    act: Activation,
    accumulate: bool,
    with_dx: bool,
    with_db: bool,
}

fn check_backward(l: &ConvLayer, seed: u64, c: &BwdCase) {
    let g = gpu();
    let (x, w, bias) = inputs(l, seed);
    let (x64, w64) = (to_f64(&x), to_f64(&w));
    // The forward output as f32 is both the GPU's mask and the reference's, so the two
    // agree on which outputs are clipped.
    let y = to_f32(&ref_forward(l, c.act, &x64, &w64, Some(&to_f64(&bias))));
    let dy = rand_vec(l.out_len(), seed + 3);
    let dw0 = rand_vec(l.weight_len(), seed + 4);
    let db0 = rand_vec(l.bias_len(), seed + 5);

    let mut work = ConvWork::new(g, l.scratch_lens()).unwrap();
    work.variant = c.variant;
    work.row_sum = c.row_sum;
    let (gx, gw, gy, gdy) = (
        g.upload(&x).unwrap(),
        g.upload(&w).unwrap(),
        g.upload(&y).unwrap(),
        g.upload(&dy).unwrap(),
    );
    let gdx = g.upload(&rand_vec(l.in_len(), seed + 6)).unwrap();
    let (gdw, gdb) = (g.upload(&dw0).unwrap(), g.upload(&db0).unwrap());
    let grads = ConvGrads {
        dx: c.with_dx.then_some(&gdx),
        dw: &gdw,
        db: c.with_db.then_some(&gdb),
        accumulate: c.accumulate,
    };
    let mut b = g.batch();
    let ymask = (c.act == Activation::Relu).then_some(&gy);
    l.backward(&mut b, c.act, &gx, &gw, ymask, &gdy, &grads, &work)
        .unwrap();
    b.submit().unwrap();

    let dpre = relu_backward_ref(c.act, &to_f64(&y), &to_f64(&dy));
    let (dx, mut dw, mut db) = ref_backward(l, &x64, &w64, &dpre);
    if c.accumulate {
        dw.iter_mut().zip(&dw0).for_each(|(d, &o)| *d += o as f64);
        db.iter_mut().zip(&db0).for_each(|(d, &o)| *d += o as f64);
    }
    let what = format!(
        "{l:?} {:?} acc {} {:?} {:?}",
        c.act, c.accumulate, c.variant, c.row_sum
    );
    assert_close(
        &format!("dw {what}"),
        &g.read(&gdw).unwrap(),
        &to_f32(&dw),
        REL,
        ABS,
    );
    if c.with_dx {
        assert_close(
            &format!("dx {what}"),
            &g.read(&gdx).unwrap(),
            &to_f32(&dx),
            REL,
            ABS,
        );
    }
    let db_got = g.read(&gdb).unwrap();
    if c.with_db {
        assert_close(&format!("db {what}"), &db_got, &to_f32(&db), REL, ABS);
    } else {
        assert_eq!(db_got, db0, "db {what}: untouched when not asked for");
    }
}

/// RowSumVariant::ALL[i], or Tree where the adapter cannot run it (no 8-lane subgroups).
fn row_sum_variant(i: usize) -> RowSumVariant {
    let v = RowSumVariant::ALL[i];
    if v.available(gpu()) {
        v
    } else {
        eprintln!("{v:?} row sums unavailable on this adapter: testing Tree instead");
        RowSumVariant::Tree
    }
}

#[test]
fn backward_matches_reference() {
    for (i, l) in shapes().iter().enumerate() {
        let seed = 100 + 10 * i as u64;
        for (vi, variant) in MatmulVariant::ALL.into_iter().enumerate() {
            for (ai, (act, accumulate)) in [(Activation::None, false), (Activation::Relu, true)]
                .into_iter()
                .enumerate()
            {
                // Each shape runs both row-sum variants, each with and without mask and
                // accumulation.
                let case = BwdCase {
                    variant,
                    row_sum: row_sum_variant((vi + ai) % 2),
                    act,
                    accumulate,
                    with_dx: true,
                    with_db: true,
                };
                check_backward(l, seed, &case);
            }
        }
    }
}

#[test]
fn backward_optional_gradients() {
    for l in [
        conv([2, 3, 7, 9, 5, 3, 2, 1]),
        convt([2, 3, 3, 5, 4, 3, 2, 1]),
    ] {
        check_backward(
            &l,
            5,
            &BwdCase {
                variant: MatmulVariant::Tiled,
                row_sum: RowSumVariant::Tree,
                act: Activation::Relu,
                accumulate: false,
                with_dx: false,
                with_db: false,
            },
        );
        check_backward(
            &l,
            6,
            &BwdCase {
                variant: MatmulVariant::Reg,
                row_sum: row_sum_variant(1),
                act: Activation::None,
                accumulate: true,
                with_dx: false,
                with_db: true,
            },
        );
    }
}

/// f = Σ act(layer(x, w, b))·r; the reference backward (through relu_backward_ref)
/// must be its gradient in x, w and b.
fn fd_layer(l: &ConvLayer, act: Activation, seed: u64) {
    let (x, w, b) = inputs(l, seed);
    let (x, w, b) = (to_f64(&x), to_f64(&w), to_f64(&b));
    let r = to_f64(&rand_vec(l.out_len(), seed + 9));
    let f = |x: &[f64], w: &[f64], b: &[f64]| -> f64 {
        ref_forward(l, act, x, w, Some(b))
            .iter()
            .zip(&r)
            .map(|(y, r)| y * r)
            .sum()
    };
    let y = ref_forward(l, act, &x, &w, Some(&b));
    let (dx, dw, db) = ref_backward(l, &x, &w, &relu_backward_ref(act, &y, &r));
    let what = format!("{l:?} {act:?}");
    fd_check(&format!("dx {what}"), |v| f(v, &w, &b), &x, &dx, 200);
    fd_check(&format!("dw {what}"), |v| f(&x, v, &b), &w, &dw, 200);
    fd_check(&format!("db {what}"), |v| f(&x, &w, v), &b, &db, 200);
}

#[test]
fn reference_gradients_match_finite_differences() {
    let small = [
        conv([1, 1, 6, 6, 2, 4, 2, 1]),
        conv([2, 3, 7, 5, 2, 3, 2, 1]),
        conv([2, 2, 4, 4, 3, 3, 1, 0]),
        convt([1, 2, 3, 3, 1, 4, 2, 1]),
        convt([2, 3, 3, 4, 2, 3, 2, 1]),
        convt([2, 2, 3, 3, 3, 3, 1, 0]),
    ];
    for (i, l) in small.iter().enumerate() {
        fd_layer(l, Activation::None, 300 + i as u64);
        fd_layer(l, Activation::Relu, 400 + i as u64);
    }
}

#[test]
fn vae_shapes_chain() {
    let layers = bench_shapes(2);
    assert_eq!(layers.len(), 6);
    // Each layer's output is the next one's input (the dense bottleneck aside).
    assert_eq!(layers[0].1.in_len(), 2 * 64 * 64);
    assert_eq!(layers[0].1.out_len(), layers[1].1.in_len());
    assert_eq!(layers[1].1.out_len(), layers[2].1.in_len());
    assert_eq!(layers[2].1.out_len(), 2 * 8192);
    assert_eq!(layers[3].1.in_len(), 2 * 8192);
    assert_eq!(layers[3].1.out_len(), layers[4].1.in_len());
    assert_eq!(layers[4].1.out_len(), layers[5].1.in_len());
    assert_eq!(layers[5].1.out_len(), 2 * 64 * 64);
    // conv2d 32→64 on 32×32: 2·64·(32·16)·(16·16) per sample.
    assert_eq!(layers[1].2, 2.0 * 2.0 * 64.0 * 512.0 * 256.0);
}

#[test]
fn bad_arguments_are_errors() {
    let g = gpu();
    let s = Conv2dShape {
        n: 1,
        c_in: 2,
        h: 6,
        w: 6,
        c_out: 3,
        k: 3,
        stride: 1,
        pad: 1,
    };
    let small = ConvWork::new(g, ScratchLens::default()).unwrap();
    let x = g.zeros::<f32>(s.in_len()).unwrap();
    let w = g.zeros::<f32>(s.weight_len()).unwrap();
    let y = g.zeros::<f32>(s.out_len()).unwrap();
    let mut b = g.batch();
    let e = conv2d_forward(&mut b, &s, Activation::None, &x, &w, None, &y, &small).unwrap_err();
    assert!(e.to_string().contains("scratch"), "{e}");
    let work = ConvWork::new(g, s.scratch_lens()).unwrap();
    let grads = ConvGrads {
        dx: None,
        dw: &w,
        db: None,
        accumulate: false,
    };
    let e = conv2d_backward(
        &mut b,
        &s,
        Activation::Relu,
        &x,
        &w,
        None,
        &y,
        &grads,
        &work,
    )
    .unwrap_err();
    assert!(e.to_string().contains("forward output"), "{e}");
    let e = conv2d_forward(&mut b, &s, Activation::None, &w, &w, None, &y, &work).unwrap_err();
    assert!(e.to_string().contains("x has"), "{e}");
}
