//! The running-sum kernel vs its reference, and Batch::clear ordering.

mod common;
use common::{assert_close, gpu, rand_vec, to_f32, to_f64};
use gpu_nids::nn::accum::{accumulate, accumulate_ref};

#[test]
fn accumulates_like_reference_across_submits() {
    let g = gpu();
    for (chunks, width) in [(1, 1), (3, 2), (5, 70)] {
        let src = rand_vec(chunks * width, width as u64);
        let init = rand_vec(width + 1, 7);
        let (gs, ga) = (g.upload(&src).unwrap(), g.upload(&init).unwrap());
        let mut want = to_f64(&init);
        for step in 0..3 {
            let mut b = g.batch();
            accumulate(&mut b, chunks, width, 4.0 + step as f32, gs.raw(), ga.raw()).unwrap();
            b.submit().unwrap();
            accumulate_ref(chunks, width, 4.0 + step as f64, &to_f64(&src), &mut want);
        }
        assert_close(
            &format!("accum {chunks}x{width}"),
            &g.read(&ga).unwrap(),
            &to_f32(&want),
            1e-5,
            1e-5,
        );
    }
}

#[test]
fn clear_is_ordered_between_dispatches() {
    // acc += src; clear(acc); acc += src  ⇒ acc == src (+ count).
    let g = gpu();
    let src = vec![1.5f32, -2.0];
    let (gs, ga) = (
        g.upload(&src).unwrap(),
        g.upload(&[9.0f32, 9.0, 9.0]).unwrap(),
    );
    let mut b = g.batch();
    accumulate(&mut b, 1, 2, 1.0, gs.raw(), ga.raw()).unwrap();
    b.clear(ga.raw());
    accumulate(&mut b, 1, 2, 1.0, gs.raw(), ga.raw()).unwrap();
    b.submit().unwrap();
    assert_eq!(g.read(&ga).unwrap(), vec![1.5, -2.0, 1.0]);
}
