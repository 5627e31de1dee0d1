//! `gpu-nids bench train`: training steps per second of any model on synthetic data,
//! through the same model interface and optimizer the training loop uses.

use std::time::Instant;

use anyhow::Result;
use clap::{Args, ValueEnum};

use crate::cli::gpu::GpuArgs;
use crate::data::samplers::{synthetic_flows, HostBatch};
use crate::gpu::Gpu;
use crate::models::baselines::{self, Baseline, BaselineKind};
use crate::models::doc_ids::{self, DocIds};
use crate::models::vae::{self, Vae, PIXELS};
use crate::models::{params, Model, ModelRun};
use crate::nn::reparam::NoiseKey;
use crate::train::optimizer::OptState;
use crate::train::TrainOptions;

pub use super::bench_ops::{bench_ops, BenchOpsArgs};

#[derive(Clone, Copy, Debug, PartialEq, Eq, ValueEnum)]
pub enum BenchModel {
    Vae,
    DocIds,
    Ae,
    ConvAe,
}

#[derive(Args, Debug)]
pub struct BenchTrainArgs {
    #[arg(long, value_enum, default_value = "doc-ids")]
    pub model: BenchModel,
    /// Batch sizes to time (DOC-IDS: per branch, so a step sees twice this many samples).
    #[arg(long, num_args = 1.., default_values_t = [64, 256])]
    pub batch: Vec<usize>,
    /// Timed steps per batch size (after `--warmup` untimed ones).
    #[arg(long, default_value_t = 20)]
    pub steps: usize,
    #[arg(long, default_value_t = 3)]
    pub warmup: usize,
    /// Also time one step kernel by kernel (GPU timestamps) and print where it goes.
    #[arg(long)]
    pub profile: bool,
    #[command(flatten)]
    pub gpu: GpuArgs,
}

/// Training steps per second on synthetic data (forward, backward and optimizer step,
/// nothing read back in between; one sync at the end).
pub fn bench_train(a: &BenchTrainArgs) -> Result<()> {
    let gpu = a.gpu.open()?;
    println!(
        "model {:?}: training-step throughput on synthetic data ({} timed steps after {} warm-up)",
        a.model, a.steps, a.warmup
    );
    println!(
        "{:>6}  {:>9}  {:>11}  {:>9}",
        "batch", "steps/s", "samples/s", "ms/step"
    );
    for &batch in &a.batch {
        let (secs, per_step, profile) = match a.model {
            BenchModel::Vae => bench_model(&gpu, &vae_model(&gpu)?, &vae_batch(batch), a)?,
            BenchModel::DocIds => {
                bench_model(&gpu, &doc_ids_model(&gpu)?, &doc_ids_batch(batch), a)?
            }
            BenchModel::Ae => bench_model(
                &gpu,
                &baseline(&gpu, BaselineKind::Ae)?,
                &flow_batch(batch),
                a,
            )?,
            BenchModel::ConvAe => bench_model(
                &gpu,
                &baseline(&gpu, BaselineKind::ConvAe)?,
                &flow_batch(batch),
                a,
            )?,
        };
        let sps = a.steps as f64 / secs;
        println!(
            "{batch:>6}  {sps:>9.2}  {:>11.0}  {:>9.1}",
            sps * per_step as f64,
            1e3 / sps
        );
        match profile {
            Some(Some(times)) => super::bench_ops::print_profile(&times),
            Some(None) => {
                println!("  (this adapter has no timestamp queries: no per-kernel profile)")
            }
            None => {}
        }
    }
    Ok(())
}

/// Classes of the synthetic DOC-IDS reference set (USTC-TFC2016 has 20).
const CLASSES: usize = 20;

fn vae_model(gpu: &Gpu) -> Result<Vae> {
    Ok(Vae::from_host(gpu, &vae::init_params(0))?)
}

fn doc_ids_model(gpu: &Gpu) -> Result<DocIds> {
    Ok(DocIds::from_host(
        gpu,
        CLASSES,
        &params::init(&doc_ids::layers(CLASSES), 0),
        &doc_ids::init_running(),
    )?)
}

fn baseline(gpu: &Gpu, kind: BaselineKind) -> Result<Baseline> {
    Ok(Baseline::from_host(
        gpu,
        kind,
        &params::init(&baselines::layers(kind), 0),
    )?)
}

/// Header-like images: a quarter of the pixels random, the rest white.
fn vae_batch(batch: usize) -> HostBatch {
    let mut rng = crate::nn::init::HostRng::new(1);
    let pixels: Vec<u8> = (0..batch * PIXELS)
        .map(|_| {
            if rng.next_u64().is_multiple_of(4) {
                (rng.next_u64() % 256) as u8
            } else {
                255
            }
        })
        .collect();
    HostBatch::plain(pixels, batch)
}

fn flow_batch(batch: usize) -> HostBatch {
    HostBatch::plain(synthetic_flows(batch, 4, 1).data, batch)
}

/// `batch` reference samples of every class in turn plus `batch` target samples.
fn doc_ids_batch(batch: usize) -> HostBatch {
    let data = synthetic_flows(2 * batch, CLASSES, 1);
    let half = batch * doc_ids::INPUT;
    HostBatch {
        samples: data.data[half..2 * half].to_vec(),
        n: batch,
        reference: Some((
            data.data[..half].to_vec(),
            (0..batch).map(|i| (i % CLASSES) as u32).collect(),
        )),
    }
}

/// One step's kernel times (`None`: the adapter has no timestamp queries).
type Profile = Option<Vec<crate::gpu::KernelTime>>;

/// Seconds of `a.steps` Adam steps of `m` on `batch` (after `a.warmup`), and the
/// samples one step trains on; with `--profile`, one more step kernel by kernel.
fn bench_model<M: Model>(
    gpu: &Gpu,
    m: &M,
    batch: &HostBatch,
    a: &BenchTrainArgs,
) -> Result<(f64, usize, Option<Profile>)> {
    let run = m.run(gpu, batch.n, true)?;
    let opt = OptState::new(gpu, &TrainOptions::default(), m.params(), None)?;
    let record = |t: u64| -> Result<crate::gpu::Batch> {
        let n = run.upload(gpu, batch);
        let mut b = gpu.batch();
        run.forward_backward(&mut b, m, n, NoiseKey::new(0, t))?;
        opt.step(&mut b, m.params(), t)?;
        Ok(b)
    };
    let secs = time_steps(gpu, a.warmup, a.steps, |t| Ok(record(t)?.submit()?))?;
    let profile = if a.profile {
        Some(record((a.warmup + a.steps) as u64 + 1)?.submit_timed()?)
    } else {
        None
    };
    Ok((secs, batch.samples_seen(), profile))
}

/// Runs `warmup` then `steps` calls of `step`, returning the seconds of the timed ones.
fn time_steps(
    gpu: &Gpu,
    warmup: usize,
    steps: usize,
    mut step: impl FnMut(u64) -> Result<()>,
) -> Result<f64> {
    for t in 0..warmup {
        step(t as u64 + 1)?;
    }
    gpu.sync()?;
    let started = Instant::now();
    for t in 0..steps {
        step((warmup + t) as u64 + 1)?;
    }
    gpu.sync()?;
    Ok(started.elapsed().as_secs_f64())
}
