//! The VAE training loop: shuffled batches, Adam on the GPU, progress, validation,
//! per-epoch checkpoints with optimizer state (so `--resume` continues bit for bit),
//! the alert threshold, and a loss-curve picture.

pub mod plateau;

use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use anyhow::{bail, Context, Result};
use serde::{Deserialize, Serialize};

use crate::checkpoint::Checkpoint;
use crate::eval::threshold::{self, Threshold};
use crate::gpu::{Buf, Gpu};
use crate::ingest::Samples;
use crate::models::vae::{self, LossParts, Vae, VaeRun, PIXELS};
use crate::nn::init::{self, HostRng};
use crate::nn::optim::{self, Adam};
use crate::nn::reparam::NoiseKey;
use plateau::Plateau;

#[derive(Clone, Debug, Serialize, Deserialize, PartialEq)]
pub struct TrainOptions {
    pub epochs: usize,
    pub batch: usize,
    pub lr: f64,
    pub seed: u64,
    /// Fraction of benign samples (the latest by time) held out for validation and
    /// for fitting the alert threshold.
    pub val_split: f64,
    /// Target false-positive rate of the alert threshold (docs/MODELS.md §7).
    pub alert_fpr: f64,
    /// Read the loss back every this many steps (each read waits for the GPU).
    pub log_every: usize,
    /// None: exactly `epochs` epochs, the last model kept (the paper's protocol). Some:
    /// train until the plateau rule stops it, at most `epochs`, keeping the model with
    /// the lowest validation loss.
    #[serde(default)]
    pub until_plateau: Option<Plateau>,
    /// No epoch starts that would end past this budget (measured by the slowest epoch).
    #[serde(default)]
    pub time_budget: Option<Duration>,
    /// Start the decoder's output bias at the logit of the training images' mean pixel
    /// (instead of PyTorch's default), so the first steps need not learn the mean image.
    #[serde(default)]
    pub output_bias_from_data: bool,
    /// How the alert threshold is cut from the validation scores (checkpoints written
    /// before the choice existed used the log-normal rule).
    #[serde(default = "threshold::legacy_rule")]
    pub threshold_rule: threshold::Rule,
    #[serde(skip)]
    pub quiet: bool,
}

impl Default for TrainOptions {
    fn default() -> Self {
        TrainOptions {
            epochs: 60,
            batch: 64,
            lr: 1e-3,
            seed: 0,
            val_split: 0.1,
            alert_fpr: 1e-3,
            log_every: 20,
            until_plateau: None,
            time_budget: None,
            output_bias_from_data: false,
            threshold_rule: threshold::Rule::default(),
            quiet: false,
        }
    }
}

/// Validation loss of each epoch in order, as the plateau rule reads it.
pub fn val_losses(history: &[EpochLog]) -> Vec<Option<f64>> {
    history.iter().map(|h| h.val_loss).collect()
}

/// Mean pixel intensity in (0, 1) of samples `idx`, and its logit: the output bias at
/// which the untrained decoder already predicts the mean image's brightness.
pub fn mean_pixel_logit(data: &dyn Samples, idx: &[usize]) -> f32 {
    let (mut sum, mut n) = (0u64, 0u64);
    for &i in idx {
        let s = data.sample(i);
        sum += s.iter().map(|&b| b as u64).sum::<u64>();
        n += s.len() as u64;
    }
    let p = (sum as f64 / (255.0 * n.max(1) as f64)).clamp(1e-4, 1.0 - 1e-4);
    (p / (1.0 - p)).ln() as f32
}

/// One line of the loss history.
#[derive(Clone, Debug, Serialize, Deserialize, PartialEq)]
pub struct EpochLog {
    pub epoch: usize,
    pub train_bce: f64,
    pub train_kl: f64,
    pub val_loss: Option<f64>,
    pub seconds: f64,
    pub samples_per_s: f64,
}

/// Training state that a checkpoint carries besides the tensors.
#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct TrainState {
    pub options: TrainOptions,
    /// Epochs completed.
    pub epoch: usize,
    /// Optimizer steps taken (Adam's t; also keys the reparameterisation noise).
    pub step: u64,
    pub history: Vec<EpochLog>,
    pub train_samples: usize,
    pub val_samples: usize,
}

/// The epoch's sample order: depends only on (seed, epoch), so a resumed run repeats it.
pub fn epoch_order(n: usize, seed: u64, epoch: usize) -> Vec<usize> {
    let mut order: Vec<usize> = (0..n).collect();
    let mut rng = HostRng::new(seed ^ (epoch as u64).wrapping_mul(0x9E37_79B9_7F4A_7C15));
    for i in (1..n).rev() {
        order.swap(i, (rng.next_u64() % (i as u64 + 1)) as usize);
    }
    order
}

/// Benign samples split by time: (train, validation) index lists.
pub fn split_benign(data: &dyn Samples, val_split: f64) -> (Vec<usize>, Vec<usize>) {
    let mut benign: Vec<usize> = (0..data.len()).filter(|&i| data.labels()[i] == 0).collect();
    benign.sort_by_key(|&i| (data.meta(i).first_ts_ns, i));
    let n_val =
        ((benign.len() as f64 * val_split).round() as usize).min(benign.len().saturating_sub(1));
    let val = benign.split_off(benign.len() - n_val);
    (benign, val)
}

pub(crate) fn gather(data: &dyn Samples, idx: &[usize]) -> Vec<u8> {
    let mut out = Vec::with_capacity(idx.len() * PIXELS);
    for &i in idx {
        out.extend_from_slice(data.sample(i));
    }
    out
}

/// Adam moment buffers, one pair per parameter tensor.
struct AdamState {
    m: Vec<Buf<f32>>,
    v: Vec<Buf<f32>>,
}

pub const MODEL_KIND: &str = "vae";

/// Prefix of the current parameters in a checkpoint whose model tensors hold an earlier,
/// better epoch.
pub const LAST: &str = "last.";

/// Build the checkpoint of the model, its optimizer state and training state.
/// The model tensors hold `best` when given (the kept model), and then the current
/// parameters go under `last.` so `--resume` continues from where training stood.
fn checkpoint(
    gpu: &Gpu,
    model: &Vae,
    adam: &AdamState,
    state: &TrainState,
    thr: Option<&Threshold>,
    sample_opts: &serde_json::Value,
    best: Option<&[Vec<f32>]>,
) -> Result<Checkpoint> {
    let mut c = Checkpoint::default();
    for (i, p) in model.params.iter().enumerate() {
        match best {
            Some(b) => {
                c.insert(p.name, &p.shape, b[i].clone());
                c.insert(format!("{LAST}{}", p.name), &p.shape, gpu.read(&p.w)?);
            }
            None => c.insert(p.name, &p.shape, gpu.read(&p.w)?),
        }
        c.insert(
            format!("adam.m.{}", p.name),
            &p.shape,
            gpu.read(&adam.m[i])?,
        );
        c.insert(
            format!("adam.v.{}", p.name),
            &p.shape,
            gpu.read(&adam.v[i])?,
        );
    }
    c.meta.insert("model".into(), MODEL_KIND.into());
    c.set_json("train", state);
    c.set_json("samples", sample_opts);
    if let Some(t) = thr {
        c.set_json("threshold", t);
    }
    Ok(c)
}

/// Model parameters of a checkpoint, in `param_specs()` order, with shapes checked.
pub fn params_from(c: &Checkpoint, origin: &str) -> Result<Vec<Vec<f32>>> {
    params_prefixed(c, origin, "")
}

fn params_prefixed(c: &Checkpoint, origin: &str, prefix: &str) -> Result<Vec<Vec<f32>>> {
    match c.meta.get("model").map(String::as_str) {
        Some(MODEL_KIND) => {}
        other => bail!(
            "{origin}: checkpoint holds model {:?}, expected '{MODEL_KIND}'",
            other.unwrap_or("?")
        ),
    }
    vae::param_specs()
        .into_iter()
        .map(|(name, shape, _)| {
            let name = format!("{prefix}{name}");
            let (s, v) = c.tensor(&name).with_context(|| origin.to_string())?;
            if *s != shape {
                bail!("{origin}: tensor {name} has shape {s:?}, expected {shape:?}");
            }
            Ok(v.clone())
        })
        .collect()
}

/// PyTorch-default initial parameters for `seed` (weights Kaiming-uniform, biases
/// U(±1/√fan_in)), layer by layer in `param_specs()` order.
pub fn init_params(seed: u64) -> Vec<Vec<f32>> {
    let mut rng = HostRng::new(seed);
    let specs = vae::param_specs();
    let mut out = Vec::with_capacity(specs.len());
    for pair in specs.chunks(2) {
        let (w, b) = init::layer(&mut rng, &pair[0].1, pair[1].1[0]);
        out.push(w);
        out.push(b);
    }
    out
}

pub struct TrainOutcome {
    pub state: TrainState,
    pub threshold: Threshold,
    pub val_scores: Vec<f64>,
}

/// A scoring run sized for `n` samples: the forward pass always computes a whole
/// micro-batch, so a small set should not pay for a large one.
pub fn score_run(gpu: &Gpu, n: usize) -> Result<VaeRun> {
    Ok(VaeRun::new(gpu, n.clamp(1, 256), false)?)
}

/// Score samples `idx` of `data` with a model (Σ|x − x̂|, x̂ decoded from μ).
pub fn score_indices(
    gpu: &Gpu,
    model: &Vae,
    run: &VaeRun,
    data: &dyn Samples,
    idx: &[usize],
) -> Result<Vec<f64>> {
    let mut out = Vec::with_capacity(idx.len());
    for chunk in idx.chunks(run.batch) {
        let n = run.upload(gpu, &gather(data, chunk));
        let mut b = gpu.batch();
        run.score(&mut b, model, n)?;
        b.submit()?;
        let s = gpu.read(&run.scores)?;
        out.extend(s[..n].iter().map(|&v| v as f64));
    }
    Ok(out)
}

/// Train a VAE on the benign samples of `data`, writing `out` each epoch.
pub fn train_vae(
    gpu: &Gpu,
    data: &dyn Samples,
    opts: &TrainOptions,
    out: &Path,
    resume: Option<&Path>,
    sample_opts: &serde_json::Value,
) -> Result<TrainOutcome> {
    if data.sample_len() != PIXELS {
        bail!("the VAE trains on 64×64 pair images; this input holds samples of {} bytes (use --kind images when ingesting)", data.sample_len());
    }
    if opts.batch == 0 || opts.epochs == 0 {
        bail!("--batch and --epochs must be positive");
    }
    let (train_idx, val_idx) = split_benign(data, opts.val_split);
    if train_idx.is_empty() {
        bail!(
            "no benign images to train on ({} samples in the input, {} labelled malicious)",
            data.len(),
            data.labels().iter().filter(|&&l| l != 0).count()
        );
    }
    let (params, mut state, adam_host, saved_best) = match resume {
        Some(p) => {
            let c = Checkpoint::load(p)?;
            let origin = p.display().to_string();
            let saved = params_from(&c, &origin)?;
            let st: TrainState = c.meta_json("train")?;
            if st.options.batch != opts.batch
                || st.options.seed != opts.seed
                || st.options.lr != opts.lr
            {
                bail!("{origin}: --resume needs the same --batch, --seed and --lr as the run that wrote it (batch {}, seed {}, lr {})", st.options.batch, st.options.seed, st.options.lr);
            }
            let moments = |pre: &str| -> Result<Vec<Vec<f32>>> {
                vae::param_specs()
                    .iter()
                    .map(|(n, _, _)| Ok(c.tensor(&format!("{pre}.{n}"))?.1.clone()))
                    .collect()
            };
            let adam = (moments("adam.m")?, moments("adam.v")?);
            let mut st = st;
            // The stopping rule and length are this run's; batch, seed and lr fix the steps.
            st.options.epochs = opts.epochs;
            st.options.until_plateau = opts.until_plateau.clone();
            st.options.time_budget = opts.time_budget;
            st.options.threshold_rule = opts.threshold_rule;
            st.options.alert_fpr = opts.alert_fpr;
            let has_last = c.tensors.keys().any(|k| k.starts_with(LAST));
            if has_last {
                let current = params_prefixed(&c, &origin, LAST)?;
                (current, st, Some(adam), Some(saved))
            } else {
                (saved, st, Some(adam), None)
            }
        }
        None => {
            let mut params = init_params(opts.seed);
            if opts.output_bias_from_data {
                let last = params.len() - 1;
                params[last] = vec![mean_pixel_logit(data, &train_idx)];
            }
            (
                params,
                TrainState {
                    options: opts.clone(),
                    epoch: 0,
                    step: 0,
                    history: vec![],
                    train_samples: train_idx.len(),
                    val_samples: val_idx.len(),
                },
                None,
                None,
            )
        }
    };
    let rule = state.options.until_plateau.clone();
    // The model with the lowest validation loss so far, under the plateau rule.
    let mut kept: Option<Kept> = match (&rule, saved_best) {
        (None, _) => None,
        (Some(r), Some(b)) => Some(Kept {
            params: b,
            val: r
                .state(&val_losses(&state.history))
                .map_or(f64::INFINITY, |s| s.best),
            current: false,
        }),
        (Some(_), None) if state.epoch > 0 => Some(Kept {
            params: params.clone(),
            val: state
                .history
                .last()
                .and_then(|h| h.val_loss)
                .unwrap_or(f64::INFINITY),
            current: true,
        }),
        (Some(_), None) => None,
    };
    let model = Vae::from_host(gpu, &params)?;
    let adam = match adam_host {
        Some((m, v)) => AdamState {
            m: m.iter().map(|x| gpu.upload(x)).collect::<Result<_, _>>()?,
            v: v.iter().map(|x| gpu.upload(x)).collect::<Result<_, _>>()?,
        },
        None => AdamState {
            m: model
                .params
                .iter()
                .map(|p| gpu.zeros(p.w.len()))
                .collect::<Result<_, _>>()?,
            v: model
                .params
                .iter()
                .map(|p| gpu.zeros(p.w.len()))
                .collect::<Result<_, _>>()?,
        },
    };
    let run = VaeRun::new(gpu, opts.batch, true)?;
    let adam_cfg = Adam {
        lr: opts.lr,
        beta1: 0.9,
        beta2: 0.999,
        eps: 1e-8,
        weight_decay: 0.0,
    };
    let steps_per_epoch = train_idx.len().div_ceil(opts.batch);
    if !opts.quiet {
        let until = plateau::until_line(
            rule.as_ref(),
            plateau::VAL_LOSS,
            opts.epochs,
            opts.time_budget,
            state.epoch + 1,
        );
        eprintln!(
            "training VAE on {} benign images ({} held out for validation), batch {} (micro-batch {}), {} steps/epoch, {until}",
            train_idx.len(), val_idx.len(), opts.batch, run.micro, steps_per_epoch
        );
        if rule.is_some() && val_idx.is_empty() {
            eprintln!("warning: no validation images (--val-split 0): the plateau rule cannot stop training, which runs all {} epochs", opts.epochs);
        }
    }
    let run_started = Instant::now();
    let mut slowest = Duration::ZERO;
    let mut stopped = None;
    while state.epoch < opts.epochs {
        stopped = plateau::stop_reason(
            rule.as_ref(),
            plateau::VAL_LOSS,
            &val_losses(&state.history),
            state.step,
            opts.time_budget,
            run_started,
            slowest,
        );
        if stopped.is_some() {
            break;
        }
        let epoch = state.epoch + 1;
        let started = Instant::now();
        let bar = progress(opts.quiet, steps_per_epoch as u64, epoch, opts.epochs);
        let order = epoch_order(train_idx.len(), opts.seed, epoch);
        let mut sums = LossParts::default();
        let batches: Vec<Vec<usize>> = order
            .chunks(opts.batch)
            .map(|c| c.iter().map(|&k| train_idx[k]).collect())
            .collect();
        let mut pending = gather(data, &batches[0]);
        let mut read_after = state.step;
        for si in 0..batches.len() {
            let n = run.upload(gpu, &pending);
            state.step += 1;
            let mut b = gpu.batch();
            run.forward_backward(&mut b, &model, n, NoiseKey::new(opts.seed, state.step))?;
            for (i, p) in model.params.iter().enumerate() {
                optim::adam_step(
                    &mut b,
                    p.w.len(),
                    &adam_cfg,
                    state.step,
                    p.w.raw(),
                    p.g.raw(),
                    adam.m[i].raw(),
                    adam.v[i].raw(),
                )?;
            }
            b.submit()?;
            // Gather the next batch on the host while the GPU runs this one.
            if let Some(next) = batches.get(si + 1) {
                pending = gather(data, next);
            }
            if (si + 1) % opts.log_every.max(1) == 0 || si + 1 == batches.len() {
                let l = run.take_loss(gpu)?;
                if !l.total().is_finite() {
                    bail!(
                        "loss became {} (BCE {}, KL {}) in epoch {epoch}, within steps {}..={}; {}",
                        l.total(),
                        l.bce,
                        l.kl,
                        read_after + 1,
                        state.step,
                        crate::checkpoint::last_good(out, state.epoch)
                    );
                }
                read_after = state.step;
                sums.bce += l.bce * l.samples;
                sums.kl += l.kl * l.samples;
                sums.samples += l.samples;
                if let Some(bar) = &bar {
                    bar.set_position(si as u64 + 1);
                    let secs = started.elapsed().as_secs_f64();
                    bar.set_message(format!(
                        "loss {:.1} (BCE {:.1} + KL {:.2})  {:.0} samples/s",
                        l.total(),
                        l.bce,
                        l.kl,
                        sums.samples / secs
                    ));
                }
            }
        }
        let seconds = started.elapsed().as_secs_f64();
        slowest = slowest.max(started.elapsed());
        if let Some(bar) = bar {
            bar.finish_and_clear();
        }
        let val_loss = if val_idx.is_empty() {
            None
        } else {
            Some(validation_loss(
                gpu, &model, &run, data, &val_idx, opts.seed,
            )?)
        };
        let d = sums.samples.max(1.0);
        let log = EpochLog {
            epoch,
            train_bce: sums.bce / d,
            train_kl: sums.kl / d,
            val_loss,
            seconds,
            samples_per_s: sums.samples / seconds,
        };
        state.history.push(log);
        state.epoch = epoch;
        let log = &state.history[epoch - 1];
        if !opts.quiet {
            let rule_state =
                plateau::rule_line(rule.as_ref(), &val_losses(&state.history), state.step);
            eprintln!(
                "epoch {epoch:>3}/{}  train loss {:.2} (BCE {:.2}, KL {:.2})  val loss {}  {:.1}s, {:.0} samples/s{rule_state}",
                opts.epochs, log.train_bce + log.train_kl, log.train_bce, log.train_kl,
                val_loss.map_or("-".to_string(), |v| format!("{v:.2}")), seconds, log.samples_per_s
            );
        }
        if rule.is_some() {
            match (&mut kept, val_loss) {
                (Some(k), Some(v)) if v >= k.val => k.current = false,
                (_, Some(v)) => {
                    kept = Some(Kept {
                        params: model
                            .params
                            .iter()
                            .map(|p| gpu.read(&p.w))
                            .collect::<Result<_, _>>()?,
                        val: v,
                        current: true,
                    })
                }
                // Without validation the current model is the one kept.
                (_, None) => kept = None,
            }
        }
        checkpoint(
            gpu,
            &model,
            &adam,
            &state,
            None,
            sample_opts,
            kept_apart(&kept),
        )?
        .save(out)?;
    }
    if let (Some(why), false) = (stopped, opts.quiet) {
        eprintln!(
            "stopped after epoch {} ({} steps): {why}",
            state.epoch, state.step
        );
    }
    // Also reached when resuming at or past the last epoch: the saved model is refitted.
    let fit_on = if val_idx.is_empty() {
        &train_idx
    } else {
        &val_idx
    };
    let kept_model;
    let scorer = match kept_apart(&kept) {
        Some(b) => {
            kept_model = Vae::from_host(gpu, b)?;
            &kept_model
        }
        None => &model,
    };
    let val_scores = score_indices(gpu, scorer, &score_run(gpu, fit_on.len())?, data, fit_on)?;
    let threshold = threshold::fit_with(opts.threshold_rule, &val_scores, opts.alert_fpr);
    if !opts.quiet {
        if let Some(w) =
            threshold::support_warning(opts.threshold_rule, val_scores.len(), opts.alert_fpr)
        {
            eprintln!("warning: {w}");
        }
    }
    checkpoint(
        gpu,
        &model,
        &adam,
        &state,
        Some(&threshold),
        sample_opts,
        kept_apart(&kept),
    )?
    .save(out)?;
    Ok(TrainOutcome {
        state,
        threshold,
        val_scores,
    })
}

/// A snapshot of the model with the lowest validation loss.
struct Kept {
    params: Vec<Vec<f32>>,
    val: f64,
    /// Whether the model on the GPU still is this one.
    current: bool,
}

/// The kept parameters when they are not the current ones.
fn kept_apart(k: &Option<Kept>) -> Option<&[Vec<f32>]> {
    k.as_ref()
        .filter(|k| !k.current)
        .map(|k| k.params.as_slice())
}

fn validation_loss(
    gpu: &Gpu,
    model: &Vae,
    run: &VaeRun,
    data: &dyn Samples,
    val: &[usize],
    seed: u64,
) -> Result<f64> {
    run.take_loss(gpu)?;
    // Fixed noise for validation, so the curve compares like with like across epochs.
    for (i, chunk) in val.chunks(run.batch).enumerate() {
        let n = run.upload(gpu, &gather(data, chunk));
        let mut b = gpu.batch();
        run.forward_loss(
            &mut b,
            model,
            n,
            NoiseKey {
                seed,
                step: u64::MAX - i as u64,
                stream: 1 << 20,
            },
        )?;
        b.submit()?;
    }
    Ok(run.take_loss(gpu)?.total())
}

pub(crate) fn progress(
    quiet: bool,
    steps: u64,
    epoch: usize,
    epochs: usize,
) -> Option<indicatif::ProgressBar> {
    if quiet {
        return None;
    }
    let bar = indicatif::ProgressBar::new(steps);
    bar.set_style(
        indicatif::ProgressStyle::with_template(
            "epoch {prefix} [{bar:30}] {pos}/{len} steps  {msg}  ETA {eta}",
        )
        .unwrap_or_else(|_| indicatif::ProgressStyle::default_bar())
        .progress_chars("=> "),
    );
    bar.set_prefix(format!("{epoch}/{epochs}"));
    Some(bar)
}

/// Default path of the loss-curve picture for a checkpoint path.
pub fn loss_curve_path(model: &Path) -> PathBuf {
    model.with_extension("loss.png")
}

/// Loss history as a PNG: train and validation loss per epoch.
pub fn plot_loss_curve(path: &Path, history: &[EpochLog]) -> Result<()> {
    let train: Vec<(f64, f64)> = history
        .iter()
        .map(|h| (h.epoch as f64, h.train_bce + h.train_kl))
        .collect();
    let val: Vec<(f64, f64)> = history
        .iter()
        .filter_map(|h| h.val_loss.map(|v| (h.epoch as f64, v)))
        .collect();
    let mut series = vec![("train".to_string(), train)];
    if !val.is_empty() {
        series.push(("validation".to_string(), val));
    }
    crate::eval::plots::lines(
        path,
        "VAE loss per sample",
        "epoch",
        "loss (BCE + KL)",
        &series,
    )
}
