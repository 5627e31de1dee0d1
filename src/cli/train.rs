//! `gpu-nids train vae | doc-ids | ae | conv-ae`: flags → options → the model's
//! training job (`crate::train::models`) → a short report.

use std::path::{Path, PathBuf};
use std::time::Instant;

use anyhow::{bail, Result};
use clap::{Args, ValueEnum};

use super::{flow_options, CaptureArgs, UntilArgs};
use crate::cli::gpu::GpuArgs;
use crate::data::load;
use crate::data::samplers::{limit_per_class, split_benign};
use crate::eval::threshold;
use crate::ingest::ClassSource;
use crate::models::baselines::BaselineKind;
use crate::models::doc_ids::LossWeights;
use crate::models::{FlowSpec, ImageSpec, Pair, SampleSpec};
use crate::train::{self, models as jobs, Optimizer, Outcome, TrainOptions};

#[derive(Clone, Copy, Debug, PartialEq, Eq, ValueEnum)]
pub enum Preset {
    /// The paper's setting: batch 64, Adam lr 1e-3, 60 epochs.
    Paper,
}

#[derive(Args, Debug)]
pub struct TrainVaeArgs {
    /// Benign training traffic: dataset directories (`gpu-nids ingest --kind images`) or captures.
    #[arg(required = true)]
    pub inputs: Vec<PathBuf>,
    /// Checkpoint to write (safetensors), rewritten atomically after every epoch.
    #[arg(short, long)]
    pub output: PathBuf,
    /// Paper settings (batch 64, Adam 1e-3, exactly 60 epochs, PyTorch's initialisation);
    /// explicit flags still override.
    #[arg(long, value_enum)]
    pub preset: Option<Preset>,
    /// Train exactly this many epochs and keep the last model. Without it (and without
    /// --preset), training runs until the validation loss stops improving (docs/TRAINING.md).
    #[arg(long, conflicts_with = "max_epochs")]
    pub epochs: Option<usize>,
    #[command(flatten)]
    pub until: UntilArgs,
    /// Images per optimizer step. Default: 64, or fewer on small sets so an epoch has at
    /// least 16 steps (same compute per epoch), down to 8.
    #[arg(long)]
    pub batch: Option<usize>,
    /// The decoder's output bias at start: the logit of the training images' mean pixel
    /// (default), or PyTorch's default initialisation (the --preset paper choice).
    #[arg(long, value_enum)]
    pub init_output_bias: Option<OutputBiasInit>,
    #[arg(long)]
    pub lr: Option<f64>,
    #[arg(long, default_value_t = 0)]
    pub seed: u64,
    /// Fraction of the benign samples (latest by time) held out to validate and fit the alert threshold.
    #[arg(long, default_value_t = 0.1)]
    pub val_split: f64,
    /// False-positive rate the alert threshold is fitted for (docs/MODELS.md §7).
    #[arg(long, default_value_t = 1e-3)]
    pub alert_fpr: f64,
    /// How the alert threshold is cut from the validation scores (docs/THRESHOLD.md).
    #[arg(long, value_enum, default_value = "empirical")]
    pub threshold_rule: crate::eval::threshold::Rule,
    /// Continue from this checkpoint (same --batch, --seed, --lr) up to --epochs, or under
    /// the plateau rule up to --max-epochs.
    #[arg(long)]
    pub resume: Option<PathBuf>,
    /// Image grouping when training from captures.
    #[arg(long, value_enum, default_value = "directional")]
    pub pair: Pair,
    /// A final partial image needs at least this many packets.
    #[arg(long, default_value_t = 8)]
    pub min_packets: usize,
    /// Zero IP address bytes in the images so the model cannot learn hosts.
    #[arg(long)]
    pub mask_addresses: bool,
    #[command(flatten)]
    pub capture: CaptureArgs,
    /// Read the loss back every this many steps.
    #[arg(long, default_value_t = 20)]
    pub log_every: usize,
    /// No progress bars or per-epoch lines.
    #[arg(short, long)]
    pub quiet: bool,
    #[command(flatten)]
    pub gpu: GpuArgs,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, ValueEnum)]
pub enum OutputBiasInit {
    /// Logit of the training images' mean pixel intensity.
    MeanPixel,
    /// PyTorch's default, U(±1/√fan_in).
    Pytorch,
}

/// Default batch: 64, halved while an epoch of `n` samples would have fewer than 16
/// steps, but not below 8 (docs/TRAINING.md has the measurement).
pub fn small_set_batch(n: usize) -> usize {
    let mut b = 64;
    while b > 8 && n.div_ceil(b) < 16 {
        b /= 2;
    }
    b
}

/// Upper bound on epochs for training until a plateau, when --max-epochs is not given.
pub const DEFAULT_MAX_EPOCHS: usize = 200;

/// The reference set the repository ships (made by scripts/make-reference.sh), used when
/// --reference is not given; relative to the current directory.
pub const DEFAULT_REFERENCE: &str = "assets/reference";

#[derive(Clone, Copy, Debug, PartialEq, Eq, ValueEnum)]
pub enum FlowPreset {
    /// The paper's setting: SGD lr 5e-5, weight decay 5e-4, no momentum, batch 64, 30 epochs.
    Paper,
}

/// Optimizer and schedule flags shared by the three flow models (unset: the model's default).
#[derive(Args, Debug, Clone)]
pub struct FlowTrainFlags {
    /// Train exactly this many epochs and keep the last model. Without it (and without
    /// --preset), training runs until the held-out benign score stops improving
    /// (docs/TRAINING.md).
    #[arg(long, conflicts_with = "max_epochs")]
    pub epochs: Option<usize>,
    #[command(flatten)]
    pub until: UntilArgs,
    /// How the alert threshold is cut from the validation scores (docs/THRESHOLD.md).
    #[arg(long, value_enum, default_value = "empirical")]
    pub threshold_rule: threshold::Rule,
    #[arg(long)]
    pub batch: Option<usize>,
    #[arg(long, value_enum)]
    pub optimizer: Option<Optimizer>,
    #[arg(long)]
    pub lr: Option<f64>,
    /// L2 weight decay (PyTorch's `weight_decay`), applied to every parameter.
    #[arg(long)]
    pub weight_decay: Option<f64>,
    #[arg(long, default_value_t = 0)]
    pub seed: u64,
    /// Fraction of the benign target samples (latest by time) held out to fit the alert threshold.
    #[arg(long, default_value_t = 0.1)]
    pub val_split: f64,
    /// False-positive rate the alert threshold is fitted for (docs/MODELS.md §7).
    #[arg(long, default_value_t = 1e-3)]
    pub alert_fpr: f64,
    /// Continue from this checkpoint (same batch, seed, optimizer, lr) up to --epochs.
    #[arg(long)]
    pub resume: Option<PathBuf>,
    /// Keep real MAC and IP addresses in the flow samples (anonymised by default, docs/MODELS.md §3).
    #[arg(long)]
    pub keep_addresses: bool,
    /// Read the loss back every this many steps.
    #[arg(long, default_value_t = 20)]
    pub log_every: usize,
    /// No progress bars or per-epoch lines.
    #[arg(short, long)]
    pub quiet: bool,
}

impl FlowTrainFlags {
    /// Options from `base` and these flags; `fixed`: a preset that pins the epoch count.
    fn apply(&self, base: TrainOptions, fixed: bool) -> Result<TrainOptions> {
        let fixed = fixed || self.epochs.is_some();
        Ok(TrainOptions {
            epochs: match (self.epochs, fixed) {
                (Some(e), _) => e,
                (None, true) => base.epochs,
                (None, false) => self.until.max_epochs.unwrap_or(DEFAULT_MAX_EPOCHS),
            },
            until_plateau: if fixed {
                None
            } else {
                Some(self.until.plateau()?)
            },
            time_budget: self.until.time_budget,
            threshold_rule: self.threshold_rule,
            batch: self.batch.unwrap_or(base.batch),
            optimizer: self.optimizer.unwrap_or(base.optimizer),
            lr: self.lr.unwrap_or(base.lr),
            weight_decay: self.weight_decay.unwrap_or(base.weight_decay),
            seed: self.seed,
            val_split: self.val_split,
            alert_fpr: self.alert_fpr,
            log_every: self.log_every,
            quiet: self.quiet,
            ..base
        })
    }
}

#[derive(Args, Debug)]
pub struct TrainDocIdsArgs {
    /// Labelled reference traffic: one capture per class (class = file stem), directories of
    /// them (only their top level: USTC-TFC2016's raw/ is skipped), or flow datasets
    /// ingested with --class-from-filename. Default: assets/reference (the lab's services,
    /// one capture per class), relative to the current directory; docs/MODELS.md §9.
    #[arg(long, num_args = 1..)]
    pub reference: Vec<PathBuf>,
    /// Benign traffic of the protected network: captures or flow datasets.
    #[arg(long, num_args = 1.., required = true)]
    pub target: Vec<PathBuf>,
    /// Checkpoint to write (safetensors), rewritten atomically after every epoch.
    #[arg(short, long)]
    pub output: PathBuf,
    /// Paper settings (SGD lr 5e-5, weight decay 5e-4, batch 64); explicit flags still override.
    #[arg(long, value_enum)]
    pub preset: Option<FlowPreset>,
    /// Fraction of each reference class held out (seeded) for the per-epoch accuracy.
    #[arg(long, default_value_t = 0.1)]
    pub ref_val_split: f64,
    /// Use at most this many reference samples per class (seeded choice), for shorter
    /// epochs on a slow adapter; the default uses them all.
    #[arg(long)]
    pub reference_per_class: Option<usize>,
    /// Weight of the compactness loss l_C.
    #[arg(long, default_value_t = 0.1)]
    pub lambda_c: f64,
    /// Weight of the reconstruction loss l_R.
    #[arg(long, default_value_t = 10.0)]
    pub lambda_r: f64,
    #[command(flatten)]
    pub train: FlowTrainFlags,
    /// Labels and split of the target captures.
    #[command(flatten)]
    pub capture: CaptureArgs,
    #[command(flatten)]
    pub gpu: GpuArgs,
}

#[derive(Args, Debug)]
pub struct TrainBaselineArgs {
    /// Benign training traffic: captures or flow datasets (`gpu-nids ingest --kind flows`).
    #[arg(required = true)]
    pub inputs: Vec<PathBuf>,
    /// Checkpoint to write (safetensors), rewritten atomically after every epoch.
    #[arg(short, long)]
    pub output: PathBuf,
    #[command(flatten)]
    pub train: FlowTrainFlags,
    #[command(flatten)]
    pub capture: CaptureArgs,
    #[command(flatten)]
    pub gpu: GpuArgs,
}

/// Reference inputs: datasets as given; a capture directory contributes only its
/// top-level captures (one file per class), so USTC-TFC2016's raw/ and CSVs stay out.
pub fn reference_inputs(given: &[PathBuf]) -> Result<Vec<PathBuf>> {
    let given = if given.is_empty() {
        let d = PathBuf::from(DEFAULT_REFERENCE);
        if !d.is_dir() {
            bail!("no --reference given and the default reference set {DEFAULT_REFERENCE}/ is not in the current directory: run from the repository root, or pass --reference DIR (one capture per class, e.g. USTC-TFC2016; see README)");
        }
        vec![d]
    } else {
        given.to_vec()
    };
    let mut out = Vec::new();
    for p in given {
        if p.is_dir() && !p.join(crate::ingest::dataset::HEADER_FILE).is_file() {
            let files = crate::ingest::expand_inputs(std::slice::from_ref(&p))?;
            let top: Vec<PathBuf> = files
                .into_iter()
                .filter_map(|s| match s {
                    crate::ingest::InputSource::File(f) if f.parent() == Some(p.as_path()) => {
                        Some(f)
                    }
                    _ => None,
                })
                .collect();
            if top.is_empty() {
                bail!("{}: no capture files at its top level", p.display());
            }
            out.extend(top);
        } else {
            out.push(p);
        }
    }
    Ok(out)
}

/// Prints how training ended and where its outputs are.
fn report_training(out: &Outcome, output: &Path, title: &str, started: Instant) -> Result<()> {
    let curve = train::loss_curve_path(output);
    train::plot_loss_curve(&curve, title, &out.state.history)?;
    let t = &out.threshold;
    let o = &out.state.options;
    let kept = match &o.until_plateau {
        Some(r) => r
            .state(&out.state.val_history())
            .map_or(String::new(), |s| {
                format!(", kept epoch {} (validation {:.6})", s.best_epoch, s.best)
            }),
        None => String::new(),
    };
    println!(
        "trained {} epochs ({} steps) in {:.1}s{kept}: {} (loss curve {})\nalert threshold {:.6} ({:?} rule on {} validation scores for FPR {}; log-normal {:.6}, empirical quantile {:.6})",
        out.state.epoch, out.state.step, started.elapsed().as_secs_f64(), output.display(), curve.display(), t.value,
        o.threshold_rule, t.n, t.alert_fpr, threshold::lognormal_value(t), t.empirical
    );
    Ok(())
}

pub fn train_vae(a: &TrainVaeArgs) -> Result<()> {
    // The paper's protocol is a fixed length; the preset pins it explicitly so a run
    // stays the paper's whatever the defaults become.
    let paper = a.preset == Some(Preset::Paper);
    let fixed = paper || a.epochs.is_some();
    let mut opts = TrainOptions {
        epochs: match (a.epochs, fixed) {
            (Some(e), _) => e,
            (None, true) => 60,
            (None, false) => a.until.max_epochs.unwrap_or(DEFAULT_MAX_EPOCHS),
        },
        batch: a.batch.unwrap_or(64),
        lr: a.lr.unwrap_or(1e-3),
        seed: a.seed,
        val_split: a.val_split,
        alert_fpr: a.alert_fpr,
        log_every: a.log_every,
        until_plateau: if fixed {
            None
        } else {
            Some(a.until.plateau()?)
        },
        time_budget: a.until.time_budget,
        output_bias_from_data: a.init_output_bias.unwrap_or(if paper {
            OutputBiasInit::Pytorch
        } else {
            OutputBiasInit::MeanPixel
        }) == OutputBiasInit::MeanPixel,
        threshold_rule: a.threshold_rule,
        quiet: a.quiet,
        ..TrainOptions::default()
    };
    train::check_rates(&opts)?;
    let spec = ImageSpec {
        pair: a.pair,
        min_packets: a.min_packets,
        mask_addresses: a.mask_addresses,
    };
    crate::util::output::check_file_output(&a.output, &a.inputs)?;
    if crate::checkpoint::nothing_to_resume(a.resume.as_deref(), opts.epochs)? {
        return Ok(());
    }
    let data = a
        .capture
        .load(&a.inputs, &SampleSpec::Images(spec.clone()), a.quiet)?;
    if a.batch.is_none() && !paper {
        opts.batch = small_set_batch(split_benign(&data.set, opts.val_split).0.len());
    }
    let gpu = a.gpu.open()?;
    let started = Instant::now();
    let out = jobs::train_vae(
        &gpu,
        &data.set,
        &opts,
        &a.output,
        a.resume.as_deref(),
        &spec,
    )?;
    report_training(&out, &a.output, "VAE loss per sample", started)
}

pub fn train_doc_ids(a: &TrainDocIdsArgs) -> Result<()> {
    let base = match a.preset {
        Some(FlowPreset::Paper) => TrainOptions::doc_ids_paper(),
        None => TrainOptions::doc_ids_default(),
    };
    let mut opts = a.train.apply(base, a.preset.is_some())?;
    opts.ref_val_split = a.ref_val_split;
    opts.weights = LossWeights {
        lambda_c: a.lambda_c,
        lambda_r: a.lambda_r,
    };
    let spec = FlowSpec::new(!a.train.keep_addresses);
    crate::util::output::check_file_output(&a.output, a.target.iter().chain(&a.reference))?;
    if crate::checkpoint::nothing_to_resume(a.train.resume.as_deref(), opts.epochs)? {
        return Ok(());
    }
    let target = load(&a.target, &flow_options(&a.capture, &spec, a.train.quiet)?)?;
    let mut ro = flow_options(&CaptureArgs::default(), &spec, a.train.quiet)?;
    ro.class = ClassSource::FileStem;
    let mut reference = load(&reference_inputs(&a.reference)?, &ro)?.set;
    if let Some(k) = a.reference_per_class {
        reference = limit_per_class(&reference, k, opts.seed);
    }
    let gpu = a.gpu.open()?;
    let started = Instant::now();
    let out = jobs::train_doc_ids(
        &gpu,
        &reference,
        &target.set,
        &opts,
        &a.output,
        a.train.resume.as_deref(),
        &spec,
    )?;
    report_training(&out, &a.output, "DOC-IDS loss per step", started)
}

pub fn train_baseline(kind: BaselineKind, a: &TrainBaselineArgs) -> Result<()> {
    let opts = a.train.apply(TrainOptions::baseline_default(), false)?;
    let spec = FlowSpec::new(!a.train.keep_addresses);
    crate::util::output::check_file_output(&a.output, &a.inputs)?;
    if crate::checkpoint::nothing_to_resume(a.train.resume.as_deref(), opts.epochs)? {
        return Ok(());
    }
    let data = load(&a.inputs, &flow_options(&a.capture, &spec, a.train.quiet)?)?;
    let gpu = a.gpu.open()?;
    let started = Instant::now();
    let out = jobs::train_baseline(
        &gpu,
        kind,
        &data.set,
        &opts,
        &a.output,
        a.train.resume.as_deref(),
        &spec,
    )?;
    report_training(
        &out,
        &a.output,
        &format!("{} reconstruction MSE", kind.display()),
        started,
    )
}
