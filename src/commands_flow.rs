//! `gpu-nids train doc-ids | ae | conv-ae`, the flow models' side of `eval` and `score`,
//! `eval --compare`, and `bench train`.

use std::path::{Path, PathBuf};
use std::time::Instant;

use anyhow::{bail, Context, Result};
use clap::{Args, ValueEnum};

use crate::checkpoint::Checkpoint;
use crate::commands::{attack_name, CaptureArgs, EvalArgs};
use crate::data::{load, Loaded};
use crate::eval::metrics::{pr_curve, roc_curve};
use crate::eval::report::{self, Report};
use crate::eval::threshold::{self, Threshold};
use crate::gpu::cli::GpuArgs;
use crate::gpu::Gpu;
use crate::ingest::{ClassSource, IngestOptions, SampleKind};
use crate::models::baselines::BaselineKind;
use crate::models::doc_ids::LossWeights;
use crate::train_flow::{self as tf, FlowSpec, FlowTrainOptions, LoadedFlow, Optimizer};

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
    pub until: crate::commands::UntilArgs,
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
    fn apply(&self, base: FlowTrainOptions, fixed: bool) -> Result<FlowTrainOptions> {
        let fixed = fixed || self.epochs.is_some();
        Ok(FlowTrainOptions {
            epochs: match (self.epochs, fixed) {
                (Some(e), _) => e,
                (None, true) => base.epochs,
                (None, false) => self
                    .until
                    .max_epochs
                    .unwrap_or(crate::commands::DEFAULT_MAX_EPOCHS),
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

/// Ingest options for flow samples made as `spec` says.
pub fn flow_options(capture: &CaptureArgs, spec: &FlowSpec, quiet: bool) -> Result<IngestOptions> {
    let mut o = capture.base_options(SampleKind::Flows, quiet)?;
    o.flow.n = spec.n;
    o.flow.l = spec.l;
    o.flow.anonymise = spec.anonymise;
    o.flow.max_groups = crate::ingest::flow::default_max_groups_flows(spec.n, spec.l);
    Ok(o)
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

fn report_training(
    out: &tf::FlowOutcome,
    output: &Path,
    title: &str,
    started: Instant,
) -> Result<()> {
    let curve = crate::train::loss_curve_path(output);
    tf::plot_loss_curve(&curve, title, &out.state.history)?;
    let t = &out.threshold;
    let o = &out.state.options;
    let kept = match &o.until_plateau {
        Some(r) => r
            .state(&tf::val_scores(&out.state.history))
            .map_or(String::new(), |s| {
                format!(
                    ", kept epoch {} (held-out score {:.6})",
                    s.best_epoch, s.best
                )
            }),
        None => String::new(),
    };
    println!(
        "trained {} epochs ({} steps) in {:.1}s{kept}: {} (loss curve {})\nalert threshold {:.6} ({:?} rule on {} validation scores for FPR {}; empirical quantile {:.6})",
        out.state.epoch, out.state.step, started.elapsed().as_secs_f64(), output.display(), curve.display(), t.value,
        o.threshold_rule, t.n, t.alert_fpr, t.empirical
    );
    Ok(())
}

pub fn train_doc_ids(a: &TrainDocIdsArgs) -> Result<()> {
    let base = match a.preset {
        Some(FlowPreset::Paper) => FlowTrainOptions::doc_ids_paper(),
        None => FlowTrainOptions::doc_ids_default(),
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
    let mut ro = flow_options(
        &CaptureArgs {
            labels: None,
            split: None,
            split_frac: 0.7,
        },
        &spec,
        a.train.quiet,
    )?;
    ro.class = ClassSource::FileStem;
    let mut reference = load(&reference_inputs(&a.reference)?, &ro)?.set;
    if let Some(k) = a.reference_per_class {
        reference = tf::limit_per_class(&reference, k, opts.seed);
    }
    let gpu = a.gpu.open()?;
    let started = Instant::now();
    let out = tf::train_doc_ids(
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
    let opts = a.train.apply(FlowTrainOptions::baseline_default(), false)?;
    let spec = FlowSpec::new(!a.train.keep_addresses);
    crate::util::output::check_file_output(&a.output, &a.inputs)?;
    if crate::checkpoint::nothing_to_resume(a.train.resume.as_deref(), opts.epochs)? {
        return Ok(());
    }
    let data = load(&a.inputs, &flow_options(&a.capture, &spec, a.train.quiet)?)?;
    let gpu = a.gpu.open()?;
    let started = Instant::now();
    let out = tf::train_baseline(
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

/// The "model" metadata of a checkpoint.
pub fn model_kind(path: &Path) -> Result<String> {
    Ok(Checkpoint::load(path)?
        .meta_str("model")
        .with_context(|| path.display().to_string())?
        .to_string())
}

/// Scores of every sample of a flow model's own samples of `inputs`.
pub fn score_flow_inputs(
    gpu: &Gpu,
    m: &LoadedFlow,
    inputs: &[PathBuf],
    capture: &CaptureArgs,
    quiet: bool,
) -> Result<(Vec<f64>, Loaded)> {
    let data = load(inputs, &flow_options(capture, &m.spec, quiet)?)?;
    let idx: Vec<usize> = (0..data.set.labels.len()).collect();
    Ok((tf::score_indices(gpu, &m.net, &data.set, &idx)?, data))
}

/// One model's test scores with what its report needs.
pub struct Scored {
    pub name: String,
    pub scores: Vec<f64>,
    pub labels: Vec<bool>,
    pub groups: Vec<String>,
    pub threshold: Threshold,
    pub train_scores: Option<Vec<f64>>,
    pub samples: serde_json::Value,
    /// The test packets scored as their samples, for the per-packet figures.
    pub packets: Option<report::PacketScores>,
}

impl Scored {
    pub fn report(&self) -> Report {
        report::build(
            &self.name,
            &self.scores,
            &self.labels,
            &self.groups,
            self.threshold.clone(),
            self.train_scores.as_deref(),
            self.samples.clone(),
            self.packets.as_ref(),
        )
    }
}

/// The checkpoint's threshold, else one fitted on the training scores; `--threshold` overrides the value.
pub fn pick_threshold(
    saved: Option<&Threshold>,
    train_scores: Option<&[f64]>,
    value: Option<f64>,
) -> Threshold {
    let mut t = saved
        .cloned()
        .unwrap_or_else(|| threshold::fit(train_scores.unwrap_or(&[]), 1e-3));
    if let Some(v) = value {
        t.value = v;
    }
    t
}

/// Every test packet with the score of its sample (docs/MODELS.md §5): a sample stands for
/// its packets (`packets`, `malicious_packets`; ingest puts each packet in at most one
/// sample), and each input's packets in no sample (pairs under `min_packets`, non-IP)
/// get the lowest score. Unsampled malicious packets count for the attack most of their
/// capture's malicious packets went to (with none, the capture's file stem, the name a
/// label rule gives by default).
pub fn packet_scores(test: &Loaded, scores: &[f64], groups: &[String]) -> report::PacketScores {
    use crate::eval::metrics::WeightedScore;
    let mut out = report::PacketScores::default();
    let mut main_attack: Vec<std::collections::BTreeMap<&str, u64>> =
        vec![Default::default(); test.reports.len()];
    for (i, (&score, g)) in scores.iter().zip(groups).enumerate() {
        let m = &test.set.meta[i];
        let malicious = m.malicious_packets.min(m.packets) as u64;
        out.units.push(WeightedScore {
            score,
            benign: m.packets as u64 - malicious,
            malicious,
        });
        out.groups.push(g.clone());
        if let Some(by) = main_attack.get_mut(m.file_index as usize) {
            if malicious > 0 {
                *by.entry(g.as_str()).or_default() += malicious;
            }
        }
    }
    for (f, r) in test.reports.iter().enumerate() {
        let malicious = r.unsampled_malicious.min(r.unsampled_packets);
        let benign = r.unsampled_packets - malicious + r.non_ip_packets;
        if benign + malicious == 0 {
            continue;
        }
        let group = main_attack[f]
            .iter()
            .max_by_key(|(_, &n)| n)
            .map(|(g, _)| g.to_string())
            // No malicious sample: the name a label rule gives by default, the file stem.
            .unwrap_or_else(|| {
                Path::new(&r.path)
                    .file_stem()
                    .map_or(r.path.clone(), |s| s.to_string_lossy().into_owned())
            });
        out.units.push(WeightedScore {
            score: f64::NEG_INFINITY,
            benign,
            malicious,
        });
        out.groups.push(group);
    }
    out
}

/// Test labels and per-attack groups of loaded test data; fails without malicious samples.
pub fn labels_and_groups(test: &Loaded) -> Result<(Vec<bool>, Vec<String>)> {
    let labels: Vec<bool> = test.set.labels.iter().map(|&l| l != 0).collect();
    if !labels.iter().any(|&l| l) {
        bail!("the test data holds no malicious samples: give attack captures with --labels, or labelled datasets");
    }
    let groups = (0..labels.len()).map(|i| attack_name(test, i)).collect();
    Ok((labels, groups))
}

/// A flow checkpoint's scores on the test inputs, with its model and test data.
fn flow_scored(gpu: &Gpu, a: &EvalArgs, path: &Path) -> Result<(Scored, LoadedFlow, Loaded)> {
    let m = tf::load_flow(gpu, path)?;
    let (scores, test) = score_flow_inputs(gpu, &m, &a.test, &a.capture, a.quiet)?;
    let (labels, groups) = labels_and_groups(&test)?;
    let train_scores = if a.train.is_empty() {
        None
    } else {
        let mut c = a.capture.clone();
        c.labels = None;
        Some(score_flow_inputs(gpu, &m, &a.train, &c, a.quiet)?.0)
    };
    let s = Scored {
        name: format!("{} ({})", m.net.display(), path.display()),
        threshold: pick_threshold(m.threshold.as_ref(), train_scores.as_deref(), a.threshold),
        packets: Some(packet_scores(&test, &scores, &groups)),
        scores,
        labels,
        groups,
        train_scores,
        samples: serde_json::to_value(&m.spec)?,
    };
    Ok((s, m, test))
}

/// `gpu-nids eval` for a flow-model checkpoint: the VAE's report.
pub fn eval_flow(gpu: &Gpu, a: &EvalArgs, path: &Path) -> Result<()> {
    let (s, m, test) = flow_scored(gpu, a, path)?;
    let r = s.report();
    report::write(&a.output, &r, &s.scores, &s.labels, &s.groups)?;
    flow_top_anomalies(gpu, m, &test, &s, a.top, &a.output)?;
    print!("{}", report::table(&r));
    println!("report: {}", a.output.display());
    Ok(())
}

/// top_anomalies.json for a flow model: its highest-scoring test flows, each
/// explained by occlusion (`FlowScorer::explain`).
fn flow_top_anomalies(
    gpu: &Gpu,
    m: LoadedFlow,
    test: &Loaded,
    s: &Scored,
    top: usize,
    dir: &Path,
) -> Result<()> {
    if top == 0 {
        return Ok(());
    }
    let kind = m.net.model_name().to_string();
    let mut scorer = crate::detect::scorer::FlowScorer::new(kind, m.net, m.spec, s.threshold.value);
    let len = test.set.sample_len;
    let mut entries = Vec::new();
    for (rank, i) in top_indices(&s.scores, top).into_iter().enumerate() {
        let e = crate::detect::scorer::Scorer::explain(
            &mut scorer,
            gpu,
            &test.set.data[i * len..(i + 1) * len],
        )?;
        entries.push(top_anomaly_json(test, i, rank, s.scores[i], e.as_ref()));
    }
    write_top_anomalies(dir, &entries)
}

/// Indices of the `top` highest scores, highest first.
pub fn top_indices(scores: &[f64], top: usize) -> Vec<usize> {
    let mut idx: Vec<usize> = (0..scores.len()).collect();
    idx.sort_by(|&a, &b| scores[b].total_cmp(&scores[a]));
    idx.truncate(top);
    idx
}

/// One of the highest-scoring test samples: where it is in the capture, its label,
/// and what drove its score.
pub fn top_anomaly_json(
    data: &Loaded,
    i: usize,
    rank: usize,
    score: f64,
    e: Option<&crate::explain::Explanation>,
) -> serde_json::Value {
    let m = &data.set.meta[i];
    serde_json::json!({
        "rank": rank + 1,
        "sample": i,
        "score": score,
        "label": if m.label != 0 { "malicious" } else { "benign" },
        "attack": attack_name(data, i),
        "file": data.file_of(i),
        "src_ip": m.src_ip().to_string(),
        "dest_ip": m.dst_ip().to_string(),
        "src_port": m.sport,
        "dest_port": m.dport,
        "proto": m.proto,
        "first_packet": m.first_packet,
        "packets": m.packets,
        "first_ts": crate::util::iso8601_us(m.first_ts_ns),
        "last_ts": crate::util::iso8601_us(m.last_ts_ns),
        "explain": e.map(|e| e.to_json()),
    })
}

/// top_anomalies.json in `dir`.
pub fn write_top_anomalies(dir: &Path, entries: &[serde_json::Value]) -> Result<()> {
    std::fs::create_dir_all(dir)?;
    crate::util::write_atomic(
        &dir.join("top_anomalies.json"),
        serde_json::to_string_pretty(entries)?.as_bytes(),
    )
}

/// Writes one compared model's top anomalies into its report directory.
type WriteTop<'a> = Box<dyn FnOnce(&Scored, &Path) -> Result<()> + 'a>;

pub fn eval_compare(a: &EvalArgs) -> Result<()> {
    let gpu = a.gpu.open()?;
    let mut all: Vec<(String, Report, Scored)> = Vec::new();
    for path in &a.compare {
        let vae = model_kind(path)? == crate::train::MODEL_KIND;
        let (s, explain_top): (Scored, WriteTop) = if vae {
            let (s, m, test) = crate::commands::vae_scored(&gpu, a, path)?;
            let gpu = &gpu;
            (
                s,
                Box::new(move |s: &Scored, dir: &Path| {
                    crate::commands::top_anomalies(gpu, &m, &test, &s.scores, a.top, dir)
                }),
            )
        } else {
            let (s, m, test) = flow_scored(&gpu, a, path)?;
            let gpu = &gpu;
            (
                s,
                Box::new(move |s: &Scored, dir: &Path| {
                    flow_top_anomalies(gpu, m, &test, s, a.top, dir)
                }),
            )
        };
        let r = s.report();
        let stem = path
            .file_stem()
            .map_or("model".into(), |s| s.to_string_lossy().into_owned());
        let mut dir_name = stem.clone();
        let mut k = 2;
        while all.iter().any(|(d, _, _)| *d == dir_name) {
            dir_name = format!("{stem}-{k}");
            k += 1;
        }
        report::write(
            &a.output.join(&dir_name),
            &r,
            &s.scores,
            &s.labels,
            &s.groups,
        )?;
        explain_top(&s, &a.output.join(&dir_name))?;
        if !a.quiet {
            eprint!("{}", report::table(&r));
        }
        all.push((dir_name, r, s));
    }
    let table = compare_table(&all.iter().map(|(_, r, _)| r).collect::<Vec<_>>());
    std::fs::create_dir_all(&a.output)?;
    crate::util::write_atomic(&a.output.join("compare.md"), table.as_bytes())?;
    let reports: Vec<&Report> = all.iter().map(|(_, r, _)| r).collect();
    crate::util::write_atomic(
        &a.output.join("compare.json"),
        serde_json::to_string_pretty(&reports)?.as_bytes(),
    )?;
    let f = |v: Option<f64>| v.map_or("-".into(), |x| format!("{x:.3}"));
    let roc: Vec<(String, Vec<(f64, f64)>)> = all
        .iter()
        .map(|(d, r, s)| {
            (
                format!("{d} (AUC {})", f(r.roc_auc)),
                roc_curve(&s.scores, &s.labels),
            )
        })
        .collect();
    crate::eval::plots::curves(
        &a.output.join("roc.png"),
        "ROC",
        "false-positive rate",
        "true-positive rate",
        &roc,
        true,
    )?;
    let pr: Vec<(String, Vec<(f64, f64)>)> = all
        .iter()
        .map(|(d, r, s)| {
            (
                format!("{d} (AP {})", f(r.pr_auc)),
                pr_curve(&s.scores, &s.labels),
            )
        })
        .collect();
    crate::eval::plots::curves(
        &a.output.join("pr.png"),
        "Precision-recall",
        "recall",
        "precision",
        &pr,
        false,
    )?;
    print!("{table}");
    println!("report: {}", a.output.display());
    Ok(())
}

/// Markdown table: overall ROC-AUC / PR-AUC per model, then per-attack ROC-AUC (and
/// sample counts, which differ between sample kinds).
pub fn compare_table(reports: &[&Report]) -> String {
    let f = |v: Option<f64>| v.map_or("-".into(), |x| format!("{x:.4}"));
    let mut s = String::from("| | ");
    s += &reports
        .iter()
        .map(|r| r.model.clone())
        .collect::<Vec<_>>()
        .join(" | ");
    s += " |\n|---|";
    s += &"---|".repeat(reports.len());
    s.push('\n');
    let row = |s: &mut String, name: &str, cells: Vec<String>| {
        *s += &format!("| {name} | {} |\n", cells.join(" | "));
    };
    row(
        &mut s,
        "benign / malicious test samples",
        reports
            .iter()
            .map(|r| format!("{} / {}", r.benign_test, r.malicious_test))
            .collect(),
    );
    row(
        &mut s,
        "**ROC-AUC**",
        reports
            .iter()
            .map(|r| format!("**{}**", f(r.roc_auc)))
            .collect(),
    );
    row(
        &mut s,
        "**PR-AUC**",
        reports
            .iter()
            .map(|r| format!("**{}**", f(r.pr_auc)))
            .collect(),
    );
    row(
        &mut s,
        "TPR / FPR at threshold",
        reports
            .iter()
            .map(|r| format!("{:.3} / {:.3}", r.tpr, r.fpr))
            .collect(),
    );
    row(
        &mut s,
        "**per-packet ROC-AUC**",
        reports
            .iter()
            .map(|r| format!("**{}**", f(r.packets.as_ref().and_then(|p| p.roc_auc))))
            .collect(),
    );
    for target in crate::eval::report::FPR_TARGETS {
        row(
            &mut s,
            &format!("TPR / FPR at FPR ≤ {target}"),
            reports
                .iter()
                .map(|r| {
                    r.operating_points
                        .iter()
                        .find(|p| p.target_fpr == Some(target))
                        .map_or("-".into(), |p| format!("{:.3} / {:.4}", p.tpr, p.fpr))
                })
                .collect(),
        );
    }
    let mut attacks: Vec<String> = reports
        .iter()
        .flat_map(|r| r.per_attack.iter().map(|a| a.attack.clone()))
        .collect();
    attacks.sort();
    attacks.dedup();
    for name in attacks {
        let cells = reports
            .iter()
            .map(|r| {
                r.per_attack
                    .iter()
                    .find(|a| a.attack == name)
                    .map_or("-".into(), |a| format!("{} ({})", f(a.roc_auc), a.samples))
            })
            .collect();
        row(&mut s, &format!("{name} ROC-AUC (samples)"), cells);
        let cells = reports
            .iter()
            .map(|r| {
                r.per_attack
                    .iter()
                    .find(|a| a.attack == name)
                    .map_or("-".into(), |a| {
                        format!("{} ({})", f(a.packet_roc_auc), a.packets)
                    })
            })
            .collect();
        row(
            &mut s,
            &format!("{name} per-packet ROC-AUC (packets)"),
            cells,
        );
    }
    s
}

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
    /// Also time one step (doc-ids, vae) kernel by kernel (GPU timestamps) and print where it goes.
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
        let (secs, per_step) = match a.model {
            BenchModel::DocIds => bench_doc_ids(&gpu, batch, a.warmup, a.steps)?,
            BenchModel::Ae => bench_baseline(&gpu, BaselineKind::Ae, batch, a.warmup, a.steps)?,
            BenchModel::ConvAe => {
                bench_baseline(&gpu, BaselineKind::ConvAe, batch, a.warmup, a.steps)?
            }
            BenchModel::Vae => bench_vae(&gpu, batch, a.warmup, a.steps)?,
        };
        let sps = a.steps as f64 / secs;
        println!(
            "{batch:>6}  {sps:>9.2}  {:>11.0}  {:>9.1}",
            sps * per_step as f64,
            1e3 / sps
        );
        if a.profile {
            match a.model {
                BenchModel::DocIds => profile_doc_ids(&gpu, batch)?,
                BenchModel::Vae => crate::bench::profile_vae(&gpu, batch)?,
                _ => println!("  (--profile covers doc-ids and vae)"),
            }
        }
    }
    Ok(())
}

/// Per-kernel GPU time of one DOC-IDS training step, summed by kernel entry point.
fn profile_doc_ids(gpu: &Gpu, batch: usize) -> Result<()> {
    use crate::models::doc_ids::{self, DocIds, DocRun};
    let classes = 20;
    let m = DocIds::from_host(
        gpu,
        classes,
        &crate::models::params::init(&doc_ids::layers(classes), 0),
        &doc_ids::init_running(),
    )?;
    let run = DocRun::new(gpu, batch, classes, LossWeights::default(), true)?;
    let data = tf::synthetic_flows(2 * batch, classes, 1);
    let labels: Vec<u32> = (0..batch).map(|i| (i % classes) as u32).collect();
    let half = batch * doc_ids::INPUT;
    run.upload_step(gpu, &data.data[..half], &labels, &data.data[half..2 * half]);
    let mut b = gpu.batch();
    run.forward_backward(&mut b, &m)?;
    let Some(times) = b.submit_timed()? else {
        println!("  (this adapter has no timestamp queries: no per-kernel profile)");
        return Ok(());
    };
    crate::bench::print_profile(&times);
    Ok(())
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

fn adam_state(
    gpu: &Gpu,
    lens: &[usize],
) -> Result<Vec<(crate::gpu::Buf<f32>, crate::gpu::Buf<f32>)>> {
    lens.iter()
        .map(|&l| Ok((gpu.zeros(l)?, gpu.zeros(l)?)))
        .collect()
}

fn bench_doc_ids(gpu: &Gpu, batch: usize, warmup: usize, steps: usize) -> Result<(f64, usize)> {
    use crate::models::doc_ids::{self, DocIds, DocRun};
    let classes = 20;
    let m = DocIds::from_host(
        gpu,
        classes,
        &crate::models::params::init(&doc_ids::layers(classes), 0),
        &doc_ids::init_running(),
    )?;
    let run = DocRun::new(gpu, batch, classes, LossWeights::default(), true)?;
    let data = tf::synthetic_flows(2 * batch, classes, 1);
    let labels: Vec<u32> = (0..batch).map(|i| (i % classes) as u32).collect();
    let moments = adam_state(gpu, &m.params.iter().map(|p| p.w.len()).collect::<Vec<_>>())?;
    let cfg = crate::nn::optim::Adam::default();
    let half = batch * doc_ids::INPUT;
    let secs = time_steps(gpu, warmup, steps, |t| {
        run.upload_step(gpu, &data.data[..half], &labels, &data.data[half..2 * half]);
        let mut b = gpu.batch();
        run.forward_backward(&mut b, &m)?;
        for (p, (mm, v)) in m.params.iter().zip(&moments) {
            crate::nn::optim::adam_step(
                &mut b,
                p.w.len(),
                &cfg,
                t,
                p.w.raw(),
                p.g.raw(),
                mm.raw(),
                v.raw(),
            )?;
        }
        Ok(b.submit()?)
    })?;
    Ok((secs, 2 * batch))
}

fn bench_baseline(
    gpu: &Gpu,
    kind: BaselineKind,
    batch: usize,
    warmup: usize,
    steps: usize,
) -> Result<(f64, usize)> {
    use crate::models::baselines::{self, Baseline, BaselineRun};
    let m = Baseline::from_host(
        gpu,
        kind,
        &crate::models::params::init(&baselines::layers(kind), 0),
    )?;
    let run = BaselineRun::new(gpu, kind, batch, true)?;
    let data = tf::synthetic_flows(batch, 4, 1);
    let moments = adam_state(gpu, &m.params.iter().map(|p| p.w.len()).collect::<Vec<_>>())?;
    let cfg = crate::nn::optim::Adam::default();
    let secs = time_steps(gpu, warmup, steps, |t| {
        run.upload(gpu, &data.data);
        let mut b = gpu.batch();
        run.forward_backward(&mut b, &m, batch)?;
        for (p, (mm, v)) in m.params.iter().zip(&moments) {
            crate::nn::optim::adam_step(
                &mut b,
                p.w.len(),
                &cfg,
                t,
                p.w.raw(),
                p.g.raw(),
                mm.raw(),
                v.raw(),
            )?;
        }
        Ok(b.submit()?)
    })?;
    Ok((secs, batch))
}

fn bench_vae(gpu: &Gpu, batch: usize, warmup: usize, steps: usize) -> Result<(f64, usize)> {
    use crate::models::vae::{Vae, VaeRun, PIXELS};
    use crate::nn::reparam::NoiseKey;
    let m = Vae::from_host(gpu, &crate::train::init_params(0))?;
    let run = VaeRun::new(gpu, batch, true)?;
    let mut rng = crate::nn::init::HostRng::new(1);
    let pixels: Vec<u8> = (0..batch * PIXELS)
        .map(|_| {
            if rng.next_u64() % 4 == 0 {
                (rng.next_u64() % 256) as u8
            } else {
                255
            }
        })
        .collect();
    let moments = adam_state(gpu, &m.params.iter().map(|p| p.w.len()).collect::<Vec<_>>())?;
    let cfg = crate::nn::optim::Adam::default();
    let secs = time_steps(gpu, warmup, steps, |t| {
        run.upload(gpu, &pixels);
        let mut b = gpu.batch();
        run.forward_backward(&mut b, &m, batch, NoiseKey::new(0, t))?;
        for (p, (mm, v)) in m.params.iter().zip(&moments) {
            crate::nn::optim::adam_step(
                &mut b,
                p.w.len(),
                &cfg,
                t,
                p.w.raw(),
                p.g.raw(),
                mm.raw(),
                v.raw(),
            )?;
        }
        Ok(b.submit()?)
    })?;
    Ok((secs, batch))
}
