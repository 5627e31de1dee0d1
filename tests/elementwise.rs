//! ReLU / sigmoid forward and backward, axpby and fill vs f64 references, in place and
//! out of place, at sizes around the workgroup size; reference backwards by finite differences.

mod common;
use common::*;
use gpu_nids::nn::elementwise as ew;

const SIZES: [usize; 6] = [1, 7, 255, 256, 257, 1000];

fn run(f: impl FnOnce(&mut gpu_nids::gpu::Batch)) {
    let mut b = gpu().batch();
    f(&mut b);
    b.submit().unwrap();
}

#[test]
fn relu_forward_backward() {
    let g = gpu();
    for &n in &SIZES {
        let x = rand_vec(n, n as u64);
        let dy = rand_vec(n, n as u64 + 7);
        let (gx, gy, gdy, gdx) = (
            g.upload(&x).unwrap(),
            g.zeros::<f32>(n).unwrap(),
            g.upload(&dy).unwrap(),
            g.zeros::<f32>(n).unwrap(),
        );
        run(|b| {
            ew::relu_forward(b, n, gx.raw(), gy.raw()).unwrap();
            ew::relu_backward(b, n, gy.raw(), gdy.raw(), gdx.raw()).unwrap();
        });
        let y = ew::relu_ref(&to_f64(&x));
        assert_close(
            &format!("relu fwd n={n}"),
            &g.read(&gy).unwrap(),
            &to_f32(&y),
            1e-4,
            1e-5,
        );
        let dx = ew::relu_backward_ref(&y, &to_f64(&dy));
        assert_close(
            &format!("relu bwd n={n}"),
            &g.read(&gdx).unwrap(),
            &to_f32(&dx),
            1e-4,
            1e-5,
        );
        // In place: x ← relu(x), then dy ← dy·[y>0].
        run(|b| {
            ew::relu_forward(b, n, gx.raw(), gx.raw()).unwrap();
            ew::relu_backward(b, n, gx.raw(), gdy.raw(), gdy.raw()).unwrap();
        });
        assert_close(
            &format!("relu fwd in place n={n}"),
            &g.read(&gx).unwrap(),
            &to_f32(&y),
            1e-4,
            1e-5,
        );
        assert_close(
            &format!("relu bwd in place n={n}"),
            &g.read(&gdy).unwrap(),
            &to_f32(&dx),
            1e-4,
            1e-5,
        );
    }
}

#[test]
fn sigmoid_forward_backward() {
    let g = gpu();
    for &n in &SIZES {
        // Wide range, including logits where a naive 1/(1+e^-x) overflows.
        let mut x: Vec<f32> = rand_vec(n, n as u64 + 1).iter().map(|v| v * 30.0).collect();
        if n > 2 {
            x[0] = -100.0;
            x[1] = 100.0;
        }
        let dy = rand_vec(n, n as u64 + 2);
        let (gx, gy, gdy, gdx) = (
            g.upload(&x).unwrap(),
            g.zeros::<f32>(n).unwrap(),
            g.upload(&dy).unwrap(),
            g.zeros::<f32>(n).unwrap(),
        );
        run(|b| {
            ew::sigmoid_forward(b, n, gx.raw(), gy.raw()).unwrap();
            ew::sigmoid_backward(b, n, gy.raw(), gdy.raw(), gdx.raw()).unwrap();
        });
        let y = ew::sigmoid_ref(&to_f64(&x));
        let got_y = g.read(&gy).unwrap();
        assert_close(
            &format!("sigmoid fwd n={n}"),
            &got_y,
            &to_f32(&y),
            1e-4,
            1e-6,
        );
        // Backward from the GPU's saved output, as the model uses it.
        let dx = ew::sigmoid_backward_ref(&to_f64(&got_y), &to_f64(&dy));
        assert_close(
            &format!("sigmoid bwd n={n}"),
            &g.read(&gdx).unwrap(),
            &to_f32(&dx),
            1e-4,
            1e-6,
        );
        run(|b| ew::sigmoid_forward(b, n, gx.raw(), gx.raw()).unwrap());
        assert_close(
            &format!("sigmoid in place n={n}"),
            &g.read(&gx).unwrap(),
            &to_f32(&y),
            1e-4,
            1e-6,
        );
    }
}

#[test]
fn axpby_copy_fill() {
    let g = gpu();
    for &n in &SIZES {
        let x = rand_vec(n, 3 + n as u64);
        let y0 = rand_vec(n, 4 + n as u64);
        let (gx, gy) = (g.upload(&x).unwrap(), g.upload(&y0).unwrap());
        run(|b| ew::axpby(b, n, 0.5, gx.raw(), -2.0, gy.raw()).unwrap());
        let want = ew::axpby_ref(0.5, &to_f64(&x), -2.0, &to_f64(&y0));
        assert_close(
            &format!("axpby n={n}"),
            &g.read(&gy).unwrap(),
            &to_f32(&want),
            1e-4,
            1e-5,
        );
        // beta = 0 must not read y: poison it with NaN first.
        g.write(&gy, 0, &vec![f32::NAN; n]);
        run(|b| ew::copy(b, n, gx.raw(), gy.raw()).unwrap());
        assert_eq!(g.read(&gy).unwrap(), x, "copy n={n}");
        run(|b| ew::axpby(b, n, 3.0, gy.raw(), 0.0, gy.raw()).unwrap());
        let want: Vec<f32> = x.iter().map(|v| 3.0 * v).collect();
        assert_close(
            &format!("scale in place n={n}"),
            &g.read(&gy).unwrap(),
            &want,
            1e-6,
            0.0,
        );
        run(|b| ew::fill(b, n, 0.25, gy.raw()).unwrap());
        assert!(
            g.read(&gy).unwrap().iter().all(|&v| v == 0.25),
            "fill n={n}"
        );
    }
}

#[test]
fn fill_beyond_one_grid_row() {
    // More than 65535 workgroups of 256: the (x, y) grid split must cover every element.
    let g = gpu();
    let n = 65535 * 256 + 300;
    let buf = g.zeros::<f32>(n).unwrap();
    run(|b| ew::fill(b, n - 1, 1.0, buf.raw()).unwrap());
    let v = g.read(&buf).unwrap();
    assert!(
        v[..n - 1].iter().all(|&x| x == 1.0),
        "an element was missed"
    );
    assert_eq!(v[n - 1], 0.0, "wrote past n");
}

#[test]
fn reference_backwards_match_finite_differences() {
    // f(x) = Σ r·act(x); away from 0 for ReLU's kink.
    let x: Vec<f64> = to_f64(&rand_vec(40, 11))
        .iter()
        .map(|v| if v.abs() < 0.05 { 0.3 } else { v * 4.0 })
        .collect();
    let r = to_f64(&rand_vec(40, 12));
    let f_relu = |x: &[f64]| {
        ew::relu_ref(x)
            .iter()
            .zip(&r)
            .map(|(a, b)| a * b)
            .sum::<f64>()
    };
    fd_check(
        "relu",
        f_relu,
        &x,
        &ew::relu_backward_ref(&ew::relu_ref(&x), &r),
        100,
    );
    let f_sig = |x: &[f64]| {
        ew::sigmoid_ref(x)
            .iter()
            .zip(&r)
            .map(|(a, b)| a * b)
            .sum::<f64>()
    };
    fd_check(
        "sigmoid",
        f_sig,
        &x,
        &ew::sigmoid_backward_ref(&ew::sigmoid_ref(&x), &r),
        100,
    );
}
