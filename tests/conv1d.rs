//! conv1d and conv-transpose1d on the GPU vs the f64 references (forward, fused
//! activation, activation backward, input / weight / bias gradients with and without
//! accumulation, both matmul variants and, for conv1d, every vec4 matmul block), and
//! the references' gradients vs central finite differences.

mod common;
use common::*;
use gpu_nids::gpu::{Buf, Gpu};
use gpu_nids::models::bench_shapes;
use gpu_nids::nn::conv1d::transpose::{self, ConvT1dShape};
use gpu_nids::nn::conv1d::{self, act_backward_ref, act_ref, Conv1dShape, ConvScratch};
use gpu_nids::nn::matmul::{MatmulVariant, V4Block};
use gpu_nids::nn::Act;

/// Argument order as PyTorch's constructor, for readable shape lists.
#[allow(clippy::too_many_arguments)]
fn conv(
    n: usize,
    c_in: usize,
    l: usize,
    c_out: usize,
    k: usize,
    stride: usize,
    pad: usize,
    act: Act,
) -> Conv1dShape {
    Conv1dShape {
        n,
        c_in,
        l,
        c_out,
        k,
        stride,
        pad,
        act,
    }
}

#[allow(clippy::too_many_arguments)]
fn convt(
    n: usize,
    c_in: usize,
    l: usize,
    c_out: usize,
    k: usize,
    stride: usize,
    pad: usize,
    out_pad: usize,
    act: Act,
) -> ConvT1dShape {
    ConvT1dShape {
        n,
        c_in,
        l,
        c_out,
        k,
        stride,
        pad,
        out_pad,
        act,
    }
}

/// Batch 1, odd lengths and channel counts, DOC-IDS's k6 s1 p5 and the baseline's k6 s2,
/// stride > kernel, a single output position, more than 64 channels (a second
/// matmul tile). The products run on rows padded to a multiple of 4, so most of these
/// output lengths (25, 22, 4·k + 1..3) leave padding columns that must stay out of the
/// results; the last four also have c_in·k and c_out multiples of 4, which the vec4
/// blocks reading W as vec4 (a8, t8, sg16, sgt) need.
fn conv_shapes() -> Vec<Conv1dShape> {
    vec![
        conv(1, 1, 20, 4, 6, 1, 5, Act::Relu),
        conv(2, 3, 17, 5, 6, 1, 5, Act::None),
        conv(3, 2, 21, 3, 6, 2, 0, Act::Sigmoid),
        conv(2, 4, 9, 7, 2, 3, 2, Act::None),
        conv(1, 2, 6, 3, 6, 1, 0, Act::Relu),
        conv(2, 33, 11, 65, 3, 1, 1, Act::None),
        // n·l_out > 256: every lane of the bias-gradient reduction holds data.
        conv(3, 1, 100, 2, 6, 1, 5, Act::Relu),
        conv(2, 4, 18, 8, 6, 1, 5, Act::Relu),
        conv(1, 8, 13, 4, 3, 2, 1, Act::Sigmoid),
        // l_out 69: more than one 64-column tile, the second one ragged.
        conv(3, 4, 70, 12, 2, 1, 0, Act::None),
        // DOC-IDS's second layer at a short length.
        conv(2, 32, 20, 64, 6, 1, 5, Act::Relu),
    ]
}

fn convt_shapes() -> Vec<ConvT1dShape> {
    vec![
        convt(1, 3, 7, 2, 6, 2, 0, 0, Act::Relu),
        convt(2, 4, 9, 1, 6, 2, 0, 0, Act::Sigmoid),
        convt(3, 2, 5, 3, 3, 1, 1, 0, Act::None),
        convt(2, 3, 4, 5, 2, 3, 1, 2, Act::None),
        convt(1, 33, 6, 65, 4, 2, 2, 1, Act::None),
        convt(2, 2, 70, 3, 6, 2, 0, 0, Act::Relu),
    ]
}

struct Outputs {
    y: Vec<f32>,
    dx: Vec<f32>,
    dw: Vec<f32>,
    db: Vec<f32>,
}

struct Inputs {
    x: Vec<f32>,
    w: Vec<f32>,
    bias: Vec<f32>,
    dz: Vec<f32>,
    /// Initial dw, db (what accumulation adds to).
    dw0: Vec<f32>,
    db0: Vec<f32>,
}

fn inputs(in_len: usize, w_len: usize, b_len: usize, out_len: usize, seed: u64) -> Inputs {
    Inputs {
        x: rand_vec(in_len, seed),
        w: rand_vec(w_len, seed + 1),
        bias: rand_vec(b_len, seed + 2),
        dz: rand_vec(out_len, seed + 3),
        dw0: rand_vec(w_len, seed + 4),
        db0: rand_vec(b_len, seed + 5),
    }
}

struct Bufs {
    x: Buf<f32>,
    w: Buf<f32>,
    bias: Buf<f32>,
    dz: Buf<f32>,
    y: Buf<f32>,
    dx: Buf<f32>,
    dw: Buf<f32>,
    db: Buf<f32>,
}

fn upload(g: &Gpu, i: &Inputs, out_len: usize) -> Bufs {
    Bufs {
        x: g.upload(&i.x).unwrap(),
        w: g.upload(&i.w).unwrap(),
        bias: g.upload(&i.bias).unwrap(),
        dz: g.upload(&i.dz).unwrap(),
        y: g.zeros(out_len).unwrap(),
        dx: g.upload(&vec![f32::NAN; i.x.len()]).unwrap(),
        dw: g.upload(&i.dw0).unwrap(),
        db: g.upload(&i.db0).unwrap(),
    }
}

fn read(g: &Gpu, b: &Bufs) -> Outputs {
    Outputs {
        y: g.read(&b.y).unwrap(),
        dx: g.read(&b.dx).unwrap(),
        dw: g.read(&b.dw).unwrap(),
        db: g.read(&b.db).unwrap(),
    }
}

/// Forward and all three gradients recorded in one batch sharing one scratch, as a
/// training step would.
fn run_conv(g: &Gpu, s: &Conv1dShape, i: &Inputs, acc: bool, mm: MatmulVariant) -> Outputs {
    let bufs = upload(g, i, s.out_len());
    let scratch = ConvScratch::new(g, s.col_len(), s.part_len(), s.padded_len()).unwrap();
    let mut b = g.batch();
    conv1d::forward(
        &mut b, s, &bufs.x, &bufs.w, &bufs.bias, &bufs.y, &scratch, mm,
    )
    .unwrap();
    conv1d::backward_input(&mut b, s, &bufs.w, &bufs.dz, &bufs.dx, &scratch, mm).unwrap();
    conv1d::backward_weight(&mut b, s, &bufs.x, &bufs.dz, &bufs.dw, acc, &scratch, mm).unwrap();
    conv1d::backward_bias(&mut b, s, &bufs.dz, &bufs.db, acc).unwrap();
    b.submit().unwrap();
    read(g, &bufs)
}

fn run_convt(s: &ConvT1dShape, i: &Inputs, acc: bool, mm: MatmulVariant) -> Outputs {
    let g = gpu();
    let bufs = upload(g, i, s.out_len());
    let scratch = ConvScratch::new(g, s.col_len(), s.part_len(), 0).unwrap();
    let mut b = g.batch();
    transpose::forward(
        &mut b, s, &bufs.x, &bufs.w, &bufs.bias, &bufs.y, &scratch, mm,
    )
    .unwrap();
    transpose::backward_input(&mut b, s, &bufs.w, &bufs.dz, &bufs.dx, &scratch, mm).unwrap();
    transpose::backward_weight(&mut b, s, &bufs.x, &bufs.dz, &bufs.dw, acc, &scratch, mm).unwrap();
    transpose::backward_bias(&mut b, s, &bufs.dz, &bufs.db, acc).unwrap();
    b.submit().unwrap();
    read(g, &bufs)
}

/// want + (acc ? init : 0)
fn plus(want: &[f64], init: &[f32], acc: bool) -> Vec<f32> {
    want.iter()
        .zip(init)
        .map(|(&w, &i)| (w + if acc { i as f64 } else { 0.0 }) as f32)
        .collect()
}

fn compare(
    what: &str,
    got: &Outputs,
    i: &Inputs,
    want: (Vec<f64>, Vec<f64>, Vec<f64>, Vec<f64>),
    acc: bool,
) {
    let (y, dx, dw, db) = want;
    assert_close(&format!("{what} y"), &got.y, &to_f32(&y), 1e-4, 1e-5);
    assert_close(&format!("{what} dx"), &got.dx, &to_f32(&dx), 1e-4, 1e-5);
    assert_close(
        &format!("{what} dw"),
        &got.dw,
        &plus(&dw, &i.dw0, acc),
        1e-4,
        1e-5,
    );
    assert_close(
        &format!("{what} db"),
        &got.db,
        &plus(&db, &i.db0, acc),
        1e-4,
        1e-5,
    );
}

#[test]
fn conv1d_forward_and_backward_match_reference() {
    for (si, s) in conv_shapes().iter().enumerate() {
        let i = inputs(
            s.in_len(),
            s.weight_len(),
            s.bias_len(),
            s.out_len(),
            10 * si as u64,
        );
        let (x, w, bias, dz) = (to_f64(&i.x), to_f64(&i.w), to_f64(&i.bias), to_f64(&i.dz));
        let y = conv1d::forward_ref(s, &x, &w, &bias);
        let (dx, dw, db) = conv1d::backward_ref(s, &x, &w, &dz);
        for mm in MatmulVariant::ALL {
            for acc in [false, true] {
                let got = run_conv(gpu(), s, &i, acc, mm);
                compare(
                    &format!("{s:?} {mm:?} acc {acc}"),
                    &got,
                    &i,
                    (y.clone(), dx.clone(), dw.clone(), db.clone()),
                    acc,
                );
            }
        }
    }
}

/// The same with each vec4 matmul block forced (`Gpu::matmul_v4`) wherever it fits
/// one of a layer's three products on the padded rows, instead of the default pick:
/// every block that can run a conv1d product is checked end to end.
#[test]
fn conv1d_matches_reference_with_every_matmul_block() {
    let gpus: Vec<(V4Block, Gpu)> = V4Block::ALL
        .into_iter()
        .map(|blk| {
            let mut g = new_gpu();
            g.matmul_v4 = Some(blk.name().to_string());
            (blk, g)
        })
        .collect();
    for (si, s) in conv_shapes().iter().enumerate() {
        let i = inputs(
            s.in_len(),
            s.weight_len(),
            s.bias_len(),
            s.out_len(),
            50 + 10 * si as u64,
        );
        let (x, w, bias, dz) = (to_f64(&i.x), to_f64(&i.w), to_f64(&i.bias), to_f64(&i.dz));
        let y = conv1d::forward_ref(s, &x, &w, &bias);
        let (dx, dw, db) = conv1d::backward_ref(s, &x, &w, &dz);
        for (blk, g) in &gpus {
            let acc = si % 2 == 1;
            let got = run_conv(g, s, &i, acc, MatmulVariant::Reg);
            compare(
                &format!("{s:?} block {} acc {acc}", blk.name()),
                &got,
                &i,
                (y.clone(), dx.clone(), dw.clone(), db.clone()),
                acc,
            );
        }
    }
}

#[test]
fn conv_transpose1d_forward_and_backward_match_reference() {
    for (si, s) in convt_shapes().iter().enumerate() {
        let i = inputs(
            s.in_len(),
            s.weight_len(),
            s.bias_len(),
            s.out_len(),
            100 + 10 * si as u64,
        );
        let (x, w, bias, dz) = (to_f64(&i.x), to_f64(&i.w), to_f64(&i.bias), to_f64(&i.dz));
        let y = transpose::forward_ref(s, &x, &w, &bias);
        let (dx, dw, db) = transpose::backward_ref(s, &x, &w, &dz);
        for mm in MatmulVariant::ALL {
            for acc in [false, true] {
                let got = run_convt(s, &i, acc, mm);
                compare(
                    &format!("{s:?} {mm:?} acc {acc}"),
                    &got,
                    &i,
                    (y.clone(), dx.clone(), dw.clone(), db.clone()),
                    acc,
                );
            }
        }
    }
}

#[test]
fn activation_backward_matches_reference() {
    let g = gpu();
    let n = 1000;
    for act in [Act::None, Act::Relu, Act::Sigmoid] {
        // y as the forward would produce it, with exact zeros for ReLU.
        let y: Vec<f64> = rand_vec(n, 7)
            .iter()
            .map(|&z| act_ref(act, z as f64))
            .collect();
        let dy = rand_vec(n, 8);
        let (gy, gdy, gdz) = (
            g.upload(&to_f32(&y)).unwrap(),
            g.upload(&dy).unwrap(),
            g.zeros::<f32>(n).unwrap(),
        );
        let mut b = g.batch();
        conv1d::act_backward(&mut b, act, n, &gy, &gdy, &gdz).unwrap();
        b.submit().unwrap();
        let want = act_backward_ref(act, &to_f64(&to_f32(&y)), &to_f64(&dy));
        assert_close(
            &format!("act_backward {act:?}"),
            &g.read(&gdz).unwrap(),
            &to_f32(&want),
            1e-4,
            1e-5,
        );
    }
}

/// (x, w, bias) → y, and (x, w, dz) → (dx, dw, db), over f64.
type LayerFn<'a> = &'a dyn Fn(&[f64], &[f64], &[f64]) -> Vec<f64>;
type LayerGrad<'a> = &'a dyn Fn(&[f64], &[f64], &[f64]) -> (Vec<f64>, Vec<f64>, Vec<f64>);

/// f = Σ r ⊙ act(layer(x, w, b)) for a fixed random r; analytic gradient = the reference
/// backward of act_backward_ref(r). Sigmoid and identity (ReLU's kink is not smooth).
fn fd_layer(
    what: &str,
    fwd: LayerFn,
    bwd: LayerGrad,
    act: Act,
    lens: (usize, usize, usize, usize),
) {
    let (in_len, w_len, b_len, out_len) = (lens.0, lens.1, lens.2, lens.3);
    let x = to_f64(&rand_vec(in_len, 21));
    let w = to_f64(&rand_vec(w_len, 22));
    let bias = to_f64(&rand_vec(b_len, 23));
    let r = to_f64(&rand_vec(out_len, 24));
    let loss = |x: &[f64], w: &[f64], b: &[f64]| {
        fwd(x, w, b).iter().zip(&r).map(|(a, b)| a * b).sum::<f64>()
    };
    let dz = act_backward_ref(act, &fwd(&x, &w, &bias), &r);
    let (dx, dw, db) = bwd(&x, &w, &dz);
    fd_check(&format!("{what} dx"), |v| loss(v, &w, &bias), &x, &dx, 200);
    fd_check(&format!("{what} dw"), |v| loss(&x, v, &bias), &w, &dw, 200);
    fd_check(&format!("{what} db"), |v| loss(&x, &w, v), &bias, &db, 200);
}

#[test]
fn conv1d_reference_gradients_match_finite_differences() {
    for s in [
        conv(2, 3, 11, 4, 6, 1, 5, Act::Sigmoid),
        conv(1, 2, 13, 3, 6, 2, 0, Act::None),
        conv(2, 2, 7, 3, 2, 3, 2, Act::None),
    ] {
        let lens = (s.in_len(), s.weight_len(), s.bias_len(), s.out_len());
        fd_layer(
            &format!("{s:?}"),
            &|x, w, b| conv1d::forward_ref(&s, x, w, b),
            &|x, w, dz| conv1d::backward_ref(&s, x, w, dz),
            s.act,
            lens,
        );
    }
}

#[test]
fn conv_transpose1d_reference_gradients_match_finite_differences() {
    for s in [
        convt(2, 3, 6, 2, 6, 2, 0, 0, Act::Sigmoid),
        convt(1, 2, 5, 3, 3, 1, 1, 0, Act::None),
        convt(2, 2, 4, 3, 2, 3, 1, 2, Act::None),
    ] {
        let lens = (s.in_len(), s.weight_len(), s.bias_len(), s.out_len());
        fd_layer(
            &format!("{s:?}"),
            &|x, w, b| transpose::forward_ref(&s, x, w, b),
            &|x, w, dz| transpose::backward_ref(&s, x, w, dz),
            s.act,
            lens,
        );
    }
}

#[test]
fn model_shapes_have_the_papers_lengths() {
    let l: Vec<usize> = bench_shapes::conv1d(64)
        .iter()
        .map(|(_, s)| s.l_out())
        .collect();
    assert_eq!(l, [325, 167, 158, 77]);
    let l: Vec<usize> = bench_shapes::conv_transpose1d(64)
        .iter()
        .map(|(_, s)| s.l_out())
        .collect();
    assert_eq!(l, [158, 320]);
}

#[test]
fn bad_shapes_and_small_buffers_are_errors() {
    let g = gpu();
    let s = conv(2, 3, 17, 5, 6, 1, 5, Act::None);
    let x = g.zeros::<f32>(s.in_len()).unwrap();
    let w = g.zeros::<f32>(s.weight_len()).unwrap();
    let bias = g.zeros::<f32>(s.bias_len()).unwrap();
    let y = g.zeros::<f32>(s.out_len()).unwrap();
    let small = ConvScratch::new(g, s.col_len() - 1, s.part_len(), s.padded_len()).unwrap();
    let mut b = g.batch();
    assert!(conv1d::forward(&mut b, &s, &x, &w, &bias, &y, &small, MatmulVariant::Reg).is_err());
    let small = ConvScratch::new(g, s.col_len(), s.part_len(), s.padded_len() - 1).unwrap();
    assert!(conv1d::forward(&mut b, &s, &x, &w, &bias, &y, &small, MatmulVariant::Reg).is_err());
    let ok = ConvScratch::new(g, s.col_len(), 0, s.padded_len()).unwrap();
    assert!(
        conv1d::backward_weight(&mut b, &s, &x, &y, &w, false, &ok, MatmulVariant::Reg).is_err()
    );
    let short_y = g.zeros::<f32>(s.out_len() - 1).unwrap();
    assert!(conv1d::forward(&mut b, &s, &x, &w, &bias, &short_y, &ok, MatmulVariant::Reg).is_err());
    let too_long_kernel = conv(1, 1, 3, 1, 6, 1, 1, Act::None);
    assert!(too_long_kernel.check().is_err());
    let bad_out_pad = convt(1, 1, 3, 1, 2, 2, 0, 2, Act::None);
    assert!(bad_out_pad.check().is_err());
    assert!(b.is_empty(), "nothing should have been recorded");
}
