//! `gpu-nids bench train`: training throughput on synthetic data, and a per-kernel
//! profile of one step from GPU timestamps.

use std::collections::BTreeMap;
use std::time::Instant;

use anyhow::Result;
use clap::Args;

use crate::gpu::cli::GpuArgs;
use crate::models::vae::{Vae, VaeRun, PIXELS};
use crate::nn::optim::{adam_step, Adam};
use crate::nn::reparam::NoiseKey;

#[derive(Args, Debug)]
pub struct BenchTrainArgs {
    /// Model to time: vae.
    #[arg(long, default_value = "vae")]
    pub model: String,
    /// Batch sizes, comma-separated.
    #[arg(long, value_delimiter = ',', default_value = "64,256")]
    pub batch: Vec<usize>,
    /// Timed steps per batch size (after two warm-up steps).
    #[arg(long, default_value_t = 10)]
    pub steps: usize,
    /// Also print where one step's GPU time goes, per kernel (needs timestamp queries).
    #[arg(long)]
    pub profile: bool,
    #[command(flatten)]
    pub gpu: GpuArgs,
}

pub fn bench_train(a: &BenchTrainArgs) -> Result<()> {
    if a.model != "vae" {
        anyhow::bail!("bench train --model {}: only vae here", a.model);
    }
    let gpu = a.gpu.open()?;
    println!("VAE training step (forward + backward + Adam) on {} ({:?})", gpu.info.name, gpu.info.device_type);
    let cfg = Adam::default();
    for &batch in &a.batch {
        let model = Vae::from_host(&gpu, &crate::train::init_params(0))?;
        let moments: Vec<_> = model.params.iter().map(|p| Ok((gpu.zeros::<f32>(p.w.len())?, gpu.zeros::<f32>(p.w.len())?))).collect::<Result<_>>()?;
        let run = VaeRun::new(&gpu, batch, true)?;
        let pixels: Vec<u8> = (0..batch * PIXELS).map(|i| if (i * 2654435761) % 7 < 3 { (i % 251) as u8 } else { 255 }).collect();
        let record = |step: u64| -> Result<crate::gpu::Batch<'_>> {
            run.upload(&gpu, &pixels);
            let mut b = gpu.batch();
            run.forward_backward(&mut b, &model, batch, NoiseKey::new(0, step))?;
            for (p, (m, v)) in model.params.iter().zip(&moments) {
                adam_step(&mut b, p.w.len(), &cfg, step, p.w.raw(), p.g.raw(), m.raw(), v.raw())?;
            }
            Ok(b)
        };
        for s in 1..=2 {
            record(s)?.submit()?;
        }
        gpu.sync()?;
        let t0 = Instant::now();
        for s in 0..a.steps as u64 {
            record(3 + s)?.submit()?;
        }
        run.take_loss(&gpu)?;
        let secs = t0.elapsed().as_secs_f64() / a.steps.max(1) as f64;
        println!("batch {batch:>5} (micro-batch {:>3}): {:>9.2} ms/step  {:>10.1} samples/s", run.micro, secs * 1e3, batch as f64 / secs);
        if a.profile {
            match record(1000)?.submit_timed()? {
                Some(times) => print_profile(&times),
                None => println!("  (no timestamp queries on this adapter: no per-kernel profile)"),
            }
        }
    }
    Ok(())
}

fn print_profile(times: &[crate::gpu::KernelTime]) {
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
        println!("  {k:<26} {n:>6} {:>11.3} {:>6.1}%", ns * 1e-6, 100.0 * ns / total);
    }
    println!("  {:<26} {:>6} {:>11.3}", "all", times.len(), total * 1e-6);
}
