//! The one training loop every model runs through ([`fit`]): resume, epochs of
//! batches gathered on the host while the GPU runs the previous step, the optimizer
//! step, NaN-checked loss reads, progress, validation, the plateau rule, a
//! checkpoint after every epoch (with optimizer state, so `--resume` continues bit
//! for bit), the alert threshold and the loss-curve picture.
//!
//! A model brings only what differs, in a [`Job`]: how a fresh model is made, where
//! its batches come from (`crate::data::samplers`), and any per-epoch measure of its
//! own; [`models`] has the jobs of the models this crate ships.

pub mod models;
pub mod optimizer;
pub mod options;
pub mod plateau;

use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use anyhow::{bail, Context, Result};

use crate::checkpoint::Checkpoint;
use crate::data::samplers::{gather, BatchSource};
use crate::eval::threshold::{self, Threshold};
use crate::gpu::Gpu;
use crate::ingest::Samples;
use crate::models::registry::Runs;
use crate::models::{Model, ModelRun, SampleSpec};
use crate::nn::reparam::NoiseKey;
use optimizer::OptState;
pub use options::{EpochLog, Optimizer, TrainOptions, TrainState};

/// Prefix of the current tensors in a checkpoint whose model tensors hold an
/// earlier, better epoch (the kept model).
pub const LAST: &str = "last.";

/// Name of DOC-IDS's per-epoch accuracy on held-out reference samples.
pub const REFERENCE_ACCURACY: &str = "reference accuracy";

/// A per-epoch measure of a model's own, computed on the current model.
pub type EpochMeasure<'a, M> = Box<dyn FnMut(&Gpu, &M) -> Result<Vec<(String, f64)>> + 'a>;

/// One training run: the model-specific parts the loop needs.
pub struct Job<'a, M: Model> {
    pub gpu: &'a Gpu,
    pub opts: &'a TrainOptions,
    /// The checkpoint written after every epoch.
    pub out: &'a Path,
    pub resume: Option<&'a Path>,
    /// The checkpoint "model" kind this run trains.
    pub kind: &'static str,
    /// How the samples were made (stored in the checkpoint).
    pub spec: SampleSpec,
    /// A freshly initialised model (not called when resuming).
    pub init: Box<dyn FnOnce() -> Result<M> + 'a>,
    /// Settings the checkpoint does not restore (e.g. DOC-IDS's loss weights).
    pub configure: Box<dyn Fn(&mut M) + 'a>,
    pub batches: &'a mut dyn BatchSource,
    /// The benign samples validated on and the threshold is fitted to: `val` of
    /// `data` (or `train` when nothing is held out).
    pub data: &'a dyn Samples,
    pub train: &'a [usize],
    pub val: &'a [usize],
    /// Extra state of a new run (DOC-IDS: classes and reference counts).
    pub fresh_state: TrainState,
    pub measure: Option<EpochMeasure<'a, M>>,
    /// First line on stderr (what is trained on what); the loop adds its schedule.
    pub intro: String,
}

pub struct Outcome {
    pub state: TrainState,
    pub threshold: Threshold,
    /// The kept model's scores of the samples the threshold was fitted to.
    pub val_scores: Vec<f64>,
}

/// The model with the best validation measure so far, under the plateau rule.
struct Kept {
    tensors: Checkpoint,
    val: f64,
    /// Whether the model on the GPU still is this one.
    current: bool,
}

fn kept_apart(k: &Option<Kept>) -> Option<&Checkpoint> {
    k.as_ref().filter(|k| !k.current).map(|k| &k.tensors)
}

/// Splits a checkpoint written with a kept model apart from the current one: (the
/// checkpoint as training stood, the kept model's tensors).
pub fn split_kept(mut c: Checkpoint) -> (Checkpoint, Option<Checkpoint>) {
    let last: Vec<String> = c
        .tensors
        .keys()
        .filter(|k| k.starts_with(LAST))
        .cloned()
        .collect();
    if last.is_empty() {
        return (c, None);
    }
    let mut kept = Checkpoint {
        meta: c.meta.clone(),
        ..Default::default()
    };
    for l in last {
        let name = l[LAST.len()..].to_string();
        let cur = c.tensors.remove(&l).expect("listed above");
        if let Some(best) = c.tensors.insert(name.clone(), cur) {
            kept.tensors.insert(name, best);
        }
    }
    (c, Some(kept))
}

/// The checkpoint of `model` with its optimizer and training state. With a kept
/// model, its tensors are the model's (what scoring loads) and the current ones go
/// under `last.` (what `--resume` continues from).
fn checkpoint<M: Model>(
    gpu: &Gpu,
    model: &M,
    opt: &OptState,
    state: &TrainState,
    thr: Option<&Threshold>,
    spec: &SampleSpec,
    kept: Option<&Checkpoint>,
) -> Result<Checkpoint> {
    let mut c = model.snapshot(gpu)?;
    opt.save(gpu, model.params(), &mut c)?;
    c.meta.insert("model".into(), model.kind().into());
    c.set_json("train", state);
    c.set_json("samples", &spec.to_json());
    if let Some(t) = thr {
        c.set_json("threshold", t);
    }
    if let Some(k) = kept {
        for (name, t) in &k.tensors {
            if let Some(cur) = c.tensors.insert(name.clone(), t.clone()) {
                c.tensors.insert(format!("{LAST}{name}"), cur);
            }
        }
    }
    Ok(c)
}

fn check_options(o: &TrainOptions) -> Result<()> {
    if o.batch == 0 || o.epochs == 0 {
        bail!("--batch and --epochs must be positive");
    }
    check_rates(o)
}

/// The learning rate, weight decay, held-out fractions and alert FPR are in range: what
/// the command line checks before it loads any data.
pub fn check_rates(o: &TrainOptions) -> Result<()> {
    if !(o.lr > 0.0 && o.lr.is_finite()) {
        bail!("--lr must be positive, got {}", o.lr);
    }
    if !(o.weight_decay >= 0.0 && o.weight_decay.is_finite()) {
        bail!("--weight-decay must be ≥ 0, got {}", o.weight_decay);
    }
    for (flag, v) in [
        ("--val-split", o.val_split),
        ("--ref-val-split", o.ref_val_split),
    ] {
        if !(0.0..1.0).contains(&v) {
            bail!("{flag} must be in [0, 1), got {v}");
        }
    }
    if !(o.alert_fpr > 0.0 && o.alert_fpr < 1.0) {
        bail!(
            "--alert-fpr must be strictly between 0 and 1, got {}",
            o.alert_fpr
        );
    }
    Ok(())
}

/// Reads `--resume`'s checkpoint and checks it was written by a run of the same
/// model with the same step-defining settings: (checkpoint as training stood, its
/// state, the kept model's tensors).
fn resume_from(
    path: &Path,
    kind: &str,
    o: &TrainOptions,
    classes: &[String],
) -> Result<(Checkpoint, TrainState, Option<Checkpoint>)> {
    let (c, kept) = split_kept(Checkpoint::load(path)?);
    let origin = path.display().to_string();
    let saved = c.meta_str("model").with_context(|| origin.clone())?;
    if saved != kind {
        bail!("{origin}: --resume checkpoint holds model '{saved}', expected '{kind}'");
    }
    let mut st: TrainState = c.meta_json("train").with_context(|| origin.clone())?;
    let p = &st.options;
    if (
        p.batch,
        p.seed,
        p.optimizer,
        p.lr,
        p.weight_decay,
        p.weights,
    ) != (
        o.batch,
        o.seed,
        o.optimizer,
        o.lr,
        o.weight_decay,
        o.weights,
    ) {
        bail!(
            "{origin}: --resume needs the same --batch, --seed and --lr (and optimizer, weight decay, loss weights) as the run that wrote it (batch {}, seed {}, {:?} lr {}, weight decay {})",
            p.batch, p.seed, p.optimizer, p.lr, p.weight_decay
        );
    }
    if st.classes != classes {
        bail!(
            "{origin}: reference classes differ from the run that wrote it ({:?} vs {:?})",
            st.classes,
            classes
        );
    }
    // The stopping rule, length and threshold are this run's; the settings above fix
    // the steps.
    st.options.epochs = o.epochs;
    st.options.until_plateau = o.until_plateau.clone();
    st.options.time_budget = o.time_budget;
    st.options.threshold_rule = o.threshold_rule;
    st.options.alert_fpr = o.alert_fpr;
    st.options.log_every = o.log_every;
    st.options.quiet = o.quiet;
    Ok((c, st, kept))
}

/// Scores of samples `idx` of `data` by model `m`.
pub fn score_indices<M: Model>(
    gpu: &Gpu,
    runs: &mut Runs<M>,
    m: &M,
    data: &dyn Samples,
    idx: &[usize],
) -> Result<Vec<f64>> {
    let mut out = Vec::with_capacity(idx.len());
    for chunk in idx.chunks(crate::models::registry::SCORE_BATCH) {
        let s = runs.score(gpu, m, &gather(data, chunk), data.sample_len(), chunk.len())?;
        out.extend(s.into_iter().map(f64::from));
    }
    Ok(out)
}

fn mean(v: &[f64]) -> Option<f64> {
    (!v.is_empty()).then(|| v.iter().sum::<f64>() / v.len() as f64)
}

/// A number for a log line: enough digits for losses near 1e-4 and near 1e4.
fn num(v: f64) -> String {
    if v.abs() >= 100.0 {
        format!("{v:.1}")
    } else if v.abs() >= 1.0 {
        format!("{v:.3}")
    } else {
        format!("{v:.5}")
    }
}

fn terms_line(terms: &[(impl AsRef<str>, f64)]) -> String {
    terms
        .iter()
        .map(|(n, v)| format!("{} {}", n.as_ref(), num(*v)))
        .collect::<Vec<_>>()
        .join(", ")
}

/// The model's loss on `val` with fixed noise, so the curve compares like with like
/// across epochs.
fn validation_loss<M: Model>(
    gpu: &Gpu,
    model: &M,
    run: &M::Run,
    data: &dyn Samples,
    val: &[usize],
    seed: u64,
) -> Result<f64> {
    run.take_loss(gpu)?;
    for (i, chunk) in val.chunks(run.batch()).enumerate() {
        let n = run.upload(
            gpu,
            &crate::data::samplers::HostBatch::plain(gather(data, chunk), chunk.len()),
        );
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
    Ok(run.take_loss(gpu)?.total)
}

/// Trains `job`'s model, writing its checkpoint after every epoch.
pub fn fit<M: Model>(mut job: Job<'_, M>) -> Result<Outcome> {
    let (gpu, o) = (job.gpu, job.opts);
    check_options(o)?;
    if job.train.is_empty() {
        bail!("no benign samples to train on");
    }
    let (mut model, mut state, saved, kept_tensors) = match job.resume {
        Some(p) => {
            let (c, st, kept) = resume_from(p, job.kind, o, &job.fresh_state.classes)?;
            let m = M::load(gpu, &c, &p.display().to_string())?;
            (m, st, Some(c), kept)
        }
        None => {
            let st = TrainState {
                options: o.clone(),
                ..job.fresh_state.clone()
            };
            ((job.init)()?, st, None, None)
        }
    };
    (job.configure)(&mut model);
    let rule = state.options.until_plateau.clone();
    let by_loss = model.validates_by_loss();
    let measure_name = if by_loss {
        plateau::VAL_LOSS
    } else {
        plateau::HELD_OUT_SCORE
    };
    let mut kept: Option<Kept> = match (&rule, kept_tensors) {
        (None, _) => None,
        (Some(r), Some(t)) => Some(Kept {
            tensors: t,
            val: r
                .state(&state.val_history())
                .map_or(f64::INFINITY, |s| s.best),
            current: false,
        }),
        (Some(_), None) if state.epoch > 0 => Some(Kept {
            tensors: model.snapshot(gpu)?,
            val: state
                .history
                .last()
                .and_then(|h| h.val)
                .unwrap_or(f64::INFINITY),
            current: true,
        }),
        (Some(_), None) => None,
    };
    let opt = OptState::new(gpu, &state.options, model.params(), saved.as_ref())?;
    let run = model.run(gpu, o.batch, true)?;
    let mut runs: Runs<M> = Runs::default();
    let steps_per_epoch = job.batches.steps_per_epoch();
    if !o.quiet {
        let until = plateau::until_line(
            rule.as_ref(),
            measure_name,
            o.epochs,
            o.time_budget,
            state.epoch + 1,
        );
        eprintln!(
            "{}; batch {}, {:?} lr {}{}, {steps_per_epoch} steps/epoch, {until}",
            job.intro,
            o.batch,
            o.optimizer,
            o.lr,
            if o.weight_decay > 0.0 {
                format!(" weight decay {}", o.weight_decay)
            } else {
                String::new()
            }
        );
        if rule.is_some() && job.val.is_empty() {
            eprintln!("warning: nothing held out for validation (--val-split 0): the plateau rule cannot stop training, which runs all {} epochs", o.epochs);
        }
    }
    let run_started = Instant::now();
    let (mut slowest, mut stopped) = (Duration::ZERO, None);
    while state.epoch < o.epochs {
        stopped = plateau::stop_reason(
            rule.as_ref(),
            measure_name,
            &state.val_history(),
            state.step,
            o.time_budget,
            run_started,
            slowest,
        );
        if stopped.is_some() {
            break;
        }
        let epoch = state.epoch + 1;
        let started = Instant::now();
        let bar = progress(o.quiet, steps_per_epoch as u64, epoch, o.epochs);
        let (mut total, mut terms, mut count, mut seen) = (0.0, Vec::new(), 0.0, 0usize);
        let mut read_after = state.step;
        let mut pending = job.batches.batch(epoch, 0, state.step);
        for k in 0..steps_per_epoch {
            let n = run.upload(gpu, &pending);
            seen += pending.samples_seen();
            state.step += 1;
            let mut b = gpu.batch();
            run.forward_backward(&mut b, &model, n, NoiseKey::new(o.seed, state.step))?;
            opt.step(&mut b, model.params(), state.step)?;
            b.submit()?;
            // Gather the next batch on the host while the GPU runs this one.
            if k + 1 < steps_per_epoch {
                pending = job.batches.batch(epoch, k + 1, state.step);
            }
            if (k + 1) % o.log_every.max(1) == 0 || k + 1 == steps_per_epoch {
                let l = run.take_loss(gpu)?;
                if !l.total.is_finite() {
                    bail!(
                        "loss became {} ({}) in epoch {epoch}, within steps {}..={}; {}",
                        l.total,
                        terms_line(&l.terms),
                        read_after + 1,
                        state.step,
                        crate::checkpoint::last_good(job.out, state.epoch)
                    );
                }
                read_after = state.step;
                total += l.total * l.count;
                count += l.count;
                if terms.is_empty() {
                    terms = l.terms.iter().map(|(n, _)| (n.to_string(), 0.0)).collect();
                }
                for (acc, (_, v)) in terms.iter_mut().zip(&l.terms) {
                    acc.1 += v * l.count;
                }
                if let Some(bar) = &bar {
                    bar.set_position(k as u64 + 1);
                    let rate = seen as f64 / started.elapsed().as_secs_f64();
                    bar.set_message(format!(
                        "loss {} ({})  {rate:.0} samples/s",
                        num(l.total),
                        terms_line(&l.terms)
                    ));
                }
            }
        }
        let seconds = started.elapsed().as_secs_f64();
        slowest = slowest.max(started.elapsed());
        if let Some(bar) = bar {
            bar.finish_and_clear();
        }
        let d = count.max(1.0);
        terms.iter_mut().for_each(|t| t.1 /= d);
        let val = if job.val.is_empty() {
            None
        } else if by_loss {
            Some(validation_loss(
                gpu, &model, &run, job.data, job.val, o.seed,
            )?)
        } else {
            mean(&score_indices(gpu, &mut runs, &model, job.data, job.val)?)
                .filter(|v| v.is_finite())
        };
        let extras = match &mut job.measure {
            Some(f) => f(gpu, &model)?,
            None => vec![],
        };
        state.history.push(EpochLog {
            epoch,
            loss: total / d,
            terms,
            val,
            extras,
            seconds,
            samples_per_s: seen as f64 / seconds,
        });
        state.epoch = epoch;
        let log = &state.history[epoch - 1];
        if !o.quiet {
            let extras: String = log
                .extras
                .iter()
                .map(|(n, v)| format!("  {n} {}", num(*v)))
                .collect();
            eprintln!(
                "epoch {epoch:>3}/{}  train loss {} ({}){extras}  {} {}  {:.1}s, {:.0} samples/s{}",
                o.epochs,
                num(log.loss),
                terms_line(&log.terms),
                if by_loss { "val loss" } else { "val score" },
                val.map_or("-".to_string(), num),
                seconds,
                log.samples_per_s,
                plateau::rule_line(rule.as_ref(), &state.val_history(), state.step)
            );
        }
        if rule.is_some() {
            match (&mut kept, val) {
                (Some(k), Some(v)) if v >= k.val => k.current = false,
                (_, Some(v)) => {
                    kept = Some(Kept {
                        tensors: model.snapshot(gpu)?,
                        val: v,
                        current: true,
                    })
                }
                // Without validation the current model is the one kept.
                (_, None) => kept = None,
            }
        }
        // The threshold is fitted once, after the last epoch; earlier checkpoints carry none.
        checkpoint(
            gpu,
            &model,
            &opt,
            &state,
            None,
            &job.spec,
            kept_apart(&kept),
        )?
        .save(job.out)?;
    }
    if let (Some(why), false) = (stopped, o.quiet) {
        eprintln!(
            "stopped after epoch {} ({} steps): {why}",
            state.epoch, state.step
        );
    }
    // Also reached when resuming at or past the last epoch: the saved model is refitted.
    let fit_on = if job.val.is_empty() {
        job.train
    } else {
        job.val
    };
    let kept_model = match kept_apart(&kept) {
        Some(k) => {
            let mut c = k.clone();
            c.meta.insert("model".into(), model.kind().into());
            c.set_json("train", &state);
            Some(M::load(gpu, &c, "the kept model")?)
        }
        None => None,
    };
    let val_scores = score_indices(
        gpu,
        &mut runs,
        kept_model.as_ref().unwrap_or(&model),
        job.data,
        fit_on,
    )?;
    let t = threshold::fit_with(o.threshold_rule, &val_scores, o.alert_fpr);
    if !o.quiet {
        if let Some(w) = threshold::support_warning(o.threshold_rule, val_scores.len(), o.alert_fpr)
        {
            eprintln!("warning: {w}");
        }
    }
    checkpoint(
        gpu,
        &model,
        &opt,
        &state,
        Some(&t),
        &job.spec,
        kept_apart(&kept),
    )?
    .save(job.out)?;
    Ok(Outcome {
        state,
        threshold: t,
        val_scores,
    })
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

/// Loss history as a PNG: training loss, its terms, the validation measure and any
/// model-specific measure, per epoch.
pub fn plot_loss_curve(path: &Path, title: &str, history: &[EpochLog]) -> Result<()> {
    let pick = |f: &dyn Fn(&EpochLog) -> Option<f64>| -> Vec<(f64, f64)> {
        history
            .iter()
            .filter_map(|h| f(h).map(|v| (h.epoch as f64, v)))
            .collect()
    };
    let mut series = vec![("train".to_string(), pick(&|h| Some(h.loss)))];
    let names = |f: &dyn Fn(&EpochLog) -> Vec<String>| -> Vec<String> {
        history.first().map(f).unwrap_or_default()
    };
    let terms = names(&|h| h.terms.iter().map(|t| t.0.clone()).collect());
    if terms.len() > 1 {
        for t in terms {
            series.push((t.clone(), pick(&|h| h.term(&t))));
        }
    }
    let val = pick(&|h| h.val);
    if !val.is_empty() {
        series.push(("validation".to_string(), val));
    }
    for x in names(&|h| h.extras.iter().map(|t| t.0.clone()).collect()) {
        series.push((x.clone(), pick(&|h| h.extra(&x))));
    }
    crate::eval::plots::lines(path, title, "epoch", "loss", &series)
}
