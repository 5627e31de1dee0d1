//! `gpu-nids bench ops` (every kernel at the models' shapes) and per-kernel profiles of
//! a training step from GPU timestamps (used by `bench train --profile`).

use std::collections::BTreeMap;
use std::time::Instant;

use anyhow::Result;
use clap::Args;

use crate::cli::gpu::GpuArgs;

/// Kernel times summed by entry point, largest first.
pub fn print_profile(times: &[crate::gpu::KernelTime]) {
    let total: f64 = times.iter().map(|t| t.ns).sum();
    let mut by: BTreeMap<&str, (f64, usize)> = BTreeMap::new();
    for t in times {
        let e = by.entry(t.label).or_default();
        e.0 += t.ns;
        e.1 += 1;
    }
    let mut rows: Vec<_> = by.into_iter().collect();
    rows.sort_by(|a, b| b.1 .0.total_cmp(&a.1 .0));
    println!("  kernel                      calls    ms total   share");
    for (k, (ns, n)) in rows {
        println!(
            "  {k:<26} {n:>6} {:>11.3} {:>6.1}%",
            ns * 1e-6,
            100.0 * ns / total
        );
    }
    println!("  {:<26} {:>6} {:>11.3}", "all", times.len(), total * 1e-6);
}

#[derive(Args, Debug)]
pub struct BenchOpsArgs {
    /// Batch sizes, comma-separated.
    #[arg(long, value_delimiter = ',', default_value = "64,256")]
    pub batch: Vec<usize>,
    /// Timed calls per op (the best is reported).
    #[arg(long, default_value_t = 3)]
    pub iters: usize,
    #[command(flatten)]
    pub gpu: GpuArgs,
}

type Rec<'a> = Box<dyn Fn(&mut crate::gpu::Batch) -> Result<(), crate::gpu::GpuError> + 'a>;

/// Best time of one recorded op sequence: GPU timestamps summed over its kernels when
/// the adapter has them, else wall clock around submit + wait.
fn time_op(gpu: &crate::gpu::Gpu, iters: usize, rec: &Rec) -> Result<f64> {
    let mut b = gpu.batch();
    rec(&mut b)?;
    b.submit()?;
    gpu.sync()?;
    let mut best = f64::INFINITY;
    for _ in 0..iters.max(1) {
        let mut b = gpu.batch();
        rec(&mut b)?;
        let secs = if gpu.has_timestamps {
            b.submit_timed()?
                .unwrap_or_default()
                .iter()
                .map(|t| t.ns)
                .sum::<f64>()
                * 1e-9
        } else {
            let t0 = Instant::now();
            b.submit()?;
            gpu.sync()?;
            t0.elapsed().as_secs_f64()
        };
        best = best.min(secs);
    }
    Ok(best)
}

/// One table row: op name, per-call time, and GFLOP/s (compute-bound ops) or GB/s
/// (memory-bound ones, counting each f32 read or written once).
fn row(name: &str, secs: f64, flops: Option<f64>, bytes: Option<f64>) {
    let rate = match (flops, bytes) {
        (Some(f), _) => format!("{:>9.2} GFLOP/s", f / secs / 1e9),
        (None, Some(b)) => format!("{:>9.2} GB/s   ", b / secs / 1e9),
        _ => String::new(),
    };
    println!("  {name:<44} {:>10.3} ms  {rate}", secs * 1e3);
}

pub fn bench_ops(a: &BenchOpsArgs) -> Result<()> {
    use crate::models::bench_shapes as shapes;
    use crate::nn::{batchnorm, conv1d, conv2d, dense, loss, pool1d};
    let gpu = a.gpu.open()?;
    let mm = crate::nn::matmul::MatmulVariant::for_gpu(&gpu);
    let timer = if gpu.has_timestamps {
        "GPU timestamps"
    } else {
        "wall clock"
    };
    println!(
        "ops at the models' shapes on {} ({:?}); {timer}; matmul shape {}",
        gpu.info.name,
        gpu.info.device_type,
        mm.name()
    );
    let f4 = |n: usize| n as f64 * 4.0;
    for &n in &a.batch {
        println!("batch {n}");
        for (name, layer, flops) in shapes::conv2d(n) {
            let work = conv2d::ConvWork::new(&gpu, layer.scratch_lens())?;
            let (x, w, bias, y) = (
                gpu.zeros(layer.in_len())?,
                gpu.zeros(layer.weight_len())?,
                gpu.zeros(layer.bias_len())?,
                gpu.zeros(layer.out_len())?,
            );
            let (dx, dw, db) = (
                gpu.zeros(layer.in_len())?,
                gpu.zeros(layer.weight_len())?,
                gpu.zeros(layer.bias_len())?,
            );
            let fwd: Rec = Box::new(|b| {
                layer.forward(b, crate::nn::Act::Relu, &x, &w, Some(&bias), &y, &work)
            });
            row(
                &format!("{name} fwd"),
                time_op(&gpu, a.iters, &fwd)?,
                Some(flops),
                None,
            );
            let grads = conv2d::ConvGrads {
                dx: Some(&dx),
                dw: &dw,
                db: Some(&db),
                accumulate: false,
            };
            let bwd: Rec = Box::new(|b| {
                layer.backward(b, crate::nn::Act::Relu, &x, &w, Some(&y), &y, &grads, &work)
            });
            row(
                &format!("{name} bwd"),
                time_op(&gpu, a.iters, &bwd)?,
                Some(2.0 * flops),
                None,
            );
        }
        for (name, s) in shapes::dense(n, mm) {
            let (x, w, bias, y) = (
                gpu.zeros::<f32>(s.in_len())?,
                gpu.zeros::<f32>(s.w_len())?,
                gpu.zeros::<f32>(s.d_out)?,
                gpu.zeros::<f32>(s.out_len())?,
            );
            let (dx, dw, db, scratch) = (
                gpu.zeros::<f32>(s.in_len())?,
                gpu.zeros::<f32>(s.w_len())?,
                gpu.zeros::<f32>(s.d_out)?,
                gpu.zeros::<f32>(s.scratch_len().max(1))?,
            );
            let fwd: Rec = Box::new(|b| {
                dense::forward(
                    b,
                    &s,
                    x.raw(),
                    w.raw(),
                    Some(bias.raw()),
                    crate::nn::Act::Relu,
                    y.raw(),
                    Some(scratch.raw()),
                )
            });
            row(
                &format!("dense {name} fwd"),
                time_op(&gpu, a.iters, &fwd)?,
                Some(s.flops_forward()),
                None,
            );
            let bwd: Rec = Box::new(|b| {
                dense::backward(
                    b,
                    &s,
                    x.raw(),
                    w.raw(),
                    y.raw(),
                    Some(dx.raw()),
                    false,
                    dw.raw(),
                    Some(db.raw()),
                    false,
                    Some(scratch.raw()),
                )
            });
            row(
                &format!("dense {name} bwd"),
                time_op(&gpu, a.iters, &bwd)?,
                Some(2.0 * s.flops_forward()),
                None,
            );
        }
        for (name, s) in shapes::conv1d(n) {
            let scratch =
                conv1d::ConvScratch::new(&gpu, s.col_len(), s.part_len(), s.padded_len())?;
            let (x, w, bias, y) = (
                gpu.zeros(s.in_len())?,
                gpu.zeros(s.weight_len())?,
                gpu.zeros(s.bias_len())?,
                gpu.zeros(s.out_len())?,
            );
            let (dx, dw, db) = (
                gpu.zeros(s.in_len())?,
                gpu.zeros(s.weight_len())?,
                gpu.zeros(s.bias_len())?,
            );
            let fwd: Rec = Box::new(|b| conv1d::forward(b, &s, &x, &w, &bias, &y, &scratch, mm));
            row(
                &format!("conv1d {name} fwd"),
                time_op(&gpu, a.iters, &fwd)?,
                Some(s.flops()),
                None,
            );
            let bwd: Rec = Box::new(|b| {
                conv1d::backward_bias(b, &s, &y, &db, false)?;
                conv1d::backward_weight(b, &s, &x, &y, &dw, false, &scratch, mm)?;
                conv1d::backward_input(b, &s, &w, &y, &dx, &scratch, mm)
            });
            row(
                &format!("conv1d {name} bwd"),
                time_op(&gpu, a.iters, &bwd)?,
                Some(2.0 * s.flops()),
                None,
            );
        }
        for (name, s) in shapes::pool1d(n) {
            let (x, y, arg, dx) = (
                gpu.zeros::<f32>(s.in_len())?,
                gpu.zeros::<f32>(s.out_len())?,
                gpu.zeros::<u32>(s.arg_len())?,
                gpu.zeros::<f32>(s.in_len())?,
            );
            let fwd: Rec = Box::new(|b| pool1d::max_forward(b, &s, &x, &y, &arg));
            row(
                &format!("{name} fwd"),
                time_op(&gpu, a.iters, &fwd)?,
                None,
                Some(f4(s.in_len() + 2 * s.out_len())),
            );
            let bwd: Rec = Box::new(|b| pool1d::max_backward(b, &s, &y, &arg, &dx));
            row(
                &format!("{name} bwd"),
                time_op(&gpu, a.iters, &bwd)?,
                None,
                Some(f4(s.in_len() + 2 * s.out_len())),
            );
        }
        for (name, s) in shapes::batchnorm(n) {
            let (x, y, dx) = (
                gpu.zeros::<f32>(s.len())?,
                gpu.zeros::<f32>(s.len())?,
                gpu.zeros::<f32>(s.len())?,
            );
            let (g, bt, saved) = (
                gpu.upload(&vec![1f32; s.param_len()])?,
                gpu.zeros::<f32>(s.param_len())?,
                gpu.zeros::<f32>(s.saved_len())?,
            );
            let (rm, rv, dg, dbt) = (
                gpu.zeros::<f32>(s.param_len())?,
                gpu.zeros::<f32>(s.param_len())?,
                gpu.zeros::<f32>(s.param_len())?,
                gpu.zeros::<f32>(s.param_len())?,
            );
            let fwd: Rec = Box::new(|b| {
                batchnorm::train_forward(b, &s, &x, &g, &bt, &y, &saved, &rm, &rv, true)
            });
            row(
                &format!("{name} train fwd"),
                time_op(&gpu, a.iters, &fwd)?,
                None,
                Some(f4(2 * s.len())),
            );
            let bwd: Rec =
                Box::new(|b| batchnorm::backward(b, &s, &x, &y, &g, &saved, &dx, &dg, &dbt, false));
            row(
                &format!("{name} bwd"),
                time_op(&gpu, a.iters, &bwd)?,
                None,
                Some(f4(3 * s.len())),
            );
        }
        let (scratch, out) = (gpu.zeros::<f32>(loss::SCRATCH_LEN)?, gpu.zeros::<f32>(4)?);
        for (name, s) in shapes::loss(n) {
            use loss::{GradOut, LossShape as L};
            let len = match s {
                L::Bce { n } | L::Kl { n } | L::Mse { n } => n,
                L::SoftmaxCe { rows, classes } => rows * classes,
                L::Compactness { n, k } => n * k,
                L::ScoreL1Sigmoid { rows, cols } | L::ScoreMse { rows, cols } => rows * cols,
            };
            let (p, q, gp, gq, labels) = (
                gpu.zeros::<f32>(len)?,
                gpu.zeros::<f32>(len)?,
                gpu.zeros::<f32>(len)?,
                gpu.zeros::<f32>(len)?,
                gpu.zeros::<u32>(len)?,
            );
            let (p, q, gp, gq, labels, scratch, out) = (
                p.raw(),
                q.raw(),
                gp.raw(),
                gq.raw(),
                labels.raw(),
                scratch.raw(),
                out.raw(),
            );
            let rec: Rec = Box::new(move |b| match s {
                L::Bce { n } => {
                    loss::bce_with_logits(b, n, p, q, Some(GradOut::set(gp)), 1.0, scratch, out, 0)
                }
                L::Kl { n } => loss::kl_normal(
                    b,
                    n,
                    p,
                    q,
                    Some(GradOut::set(gp)),
                    Some(GradOut::set(gq)),
                    1.0,
                    scratch,
                    out,
                    0,
                ),
                L::Mse { n } => loss::mse(
                    b,
                    n,
                    p,
                    q,
                    Some(GradOut::set(gp)),
                    Some(GradOut::set(gq)),
                    1.0,
                    scratch,
                    out,
                    0,
                ),
                L::SoftmaxCe { rows, classes } => loss::softmax_cross_entropy(
                    b,
                    rows,
                    classes,
                    p,
                    labels,
                    Some(GradOut::set(gp)),
                    1.0,
                    scratch,
                    out,
                    0,
                ),
                L::Compactness { n, k } => {
                    loss::compactness(b, n, k, p, Some(GradOut::set(gp)), 1.0, scratch, out, 0)
                }
                L::ScoreL1Sigmoid { rows, cols } => {
                    loss::score_l1_sigmoid(b, rows, cols, p, q, gp, 0)
                }
                L::ScoreMse { rows, cols } => loss::score_mse(b, rows, cols, p, q, gp, 0),
            });
            row(
                &format!("loss {name}"),
                time_op(&gpu, a.iters, &rec)?,
                None,
                Some(f4(3 * len)),
            );
        }
    }
    Ok(())
}
