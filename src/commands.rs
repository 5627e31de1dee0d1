//! `gpu-nids train vae`, `score` and `eval`: argument structs and what they run.

use std::io::Write;
use std::path::PathBuf;

use anyhow::{bail, Context, Result};
use clap::{Args, ValueEnum};
use serde::{Deserialize, Serialize};

use crate::checkpoint::Checkpoint;
use crate::data::{load, Loaded};
use crate::eval::{plots, report};
use crate::gpu::cli::GpuArgs;
use crate::ingest::{IngestOptions, LabelRules, SampleKind, Side, SplitOptions};
use crate::models::vae::{Vae, VaeRun, PIXELS, SIDE};
use crate::train::{self, TrainOptions};

#[derive(Clone, Copy, Debug, PartialEq, Eq, ValueEnum, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Pair {
    /// A→B and B→A are two groups (docs/MODELS.md §1 default).
    Directional,
    /// A→B and B→A share one group.
    Undirected,
}

/// How traffic images are made; stored in the checkpoint so scoring repeats it.
#[derive(Clone, Debug, Serialize, Deserialize, PartialEq)]
pub struct ImageSpec {
    pub pair: Pair,
    pub min_packets: usize,
    pub mask_addresses: bool,
}

/// Options for turning captures into samples (datasets already carry theirs).
#[derive(Args, Clone, Debug)]
pub struct CaptureArgs {
    /// Labels CSV: attacker IPs per capture file (format in docs/INGEST.md, as assets/demo/labels.csv).
    #[arg(long)]
    pub labels: Option<PathBuf>,
    /// Keep only one side of the docs/MODELS.md §5 time split of each capture.
    #[arg(long, value_enum)]
    pub split: Option<Side>,
    /// Where the split falls, as a fraction of each capture's packets.
    #[arg(long, default_value_t = 0.7)]
    pub split_frac: f64,
}

impl CaptureArgs {
    fn options(&self, spec: &ImageSpec, quiet: bool) -> Result<IngestOptions> {
        if !(1..=64).contains(&spec.min_packets) {
            bail!(
                "--min-packets must be between 1 and 64, got {}",
                spec.min_packets
            );
        }
        let mut o = self.base_options(SampleKind::Images, quiet)?;
        o.image.undirected = spec.pair == Pair::Undirected;
        o.image.min_packets = spec.min_packets;
        o.image.mask_addresses = spec.mask_addresses;
        Ok(o)
    }

    // [doc-ids] shared by the image and flow models: labels, split, progress.
    /// Ingest options of `kind` with this capture's labels and split.
    pub fn base_options(&self, kind: SampleKind, quiet: bool) -> Result<IngestOptions> {
        if !(self.split_frac > 0.0 && self.split_frac < 1.0) {
            bail!(
                "--split-frac must be strictly between 0 and 1, got {}",
                self.split_frac
            );
        }
        let mut o = IngestOptions::new(kind);
        if let Some(p) = &self.labels {
            o.labels = Some(LabelRules::load(p)?);
            o.labels_file = Some(p.display().to_string());
        }
        o.split = self.split.map(|side| SplitOptions {
            side,
            frac: self.split_frac,
        });
        o.progress = !quiet;
        o.print_warnings = !quiet;
        Ok(o)
    }
}

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

/// The plateau rule's flags, shared by every model's `train` (docs/TRAINING.md).
#[derive(Args, Debug, Clone)]
pub struct UntilArgs {
    /// Upper bound on epochs when training until the validation loss stops improving.
    #[arg(long)]
    pub max_epochs: Option<usize>,
    /// Stop when the best validation loss has not improved for this many epochs.
    #[arg(long, default_value_t = crate::train::plateau::Plateau::default().patience)]
    pub patience: usize,
    /// Relative decrease of the validation loss that counts as an improvement.
    #[arg(long, default_value_t = crate::train::plateau::Plateau::default().min_rel)]
    pub min_improvement: f64,
    /// Optimizer steps before the plateau rule may stop training.
    #[arg(long, default_value_t = crate::train::plateau::Plateau::default().min_steps)]
    pub min_steps: u64,
    /// Start no epoch that would end past this much wall time (e.g. 90s, 10m, 1h).
    #[arg(long, value_parser = crate::train::plateau::parse_duration)]
    pub time_budget: Option<std::time::Duration>,
}

impl UntilArgs {
    /// The plateau rule, after checking the flags.
    pub fn plateau(&self) -> Result<crate::train::plateau::Plateau> {
        if !(self.min_improvement >= 0.0 && self.min_improvement < 1.0) {
            bail!(
                "--min-improvement must be in [0, 1), got {}",
                self.min_improvement
            );
        }
        Ok(crate::train::plateau::Plateau {
            patience: self.patience.max(1),
            min_rel: self.min_improvement,
            min_steps: self.min_steps,
        })
    }
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

pub fn train_vae(a: &TrainVaeArgs) -> Result<()> {
    // The paper's protocol is a fixed length; the preset pins it explicitly so a run
    // stays the paper's whatever the defaults become.
    let paper = a.preset == Some(Preset::Paper);
    let fixed = paper || a.epochs.is_some();
    let opts = TrainOptions {
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
    };
    if !(0.0..1.0).contains(&opts.val_split) {
        bail!("--val-split must be in [0, 1), got {}", opts.val_split);
    }
    if !(opts.alert_fpr > 0.0 && opts.alert_fpr < 1.0) {
        bail!(
            "--alert-fpr must be strictly between 0 and 1, got {}",
            opts.alert_fpr
        );
    }
    if !(opts.lr > 0.0 && opts.lr.is_finite()) {
        bail!("--lr must be positive, got {}", opts.lr);
    }
    let spec = ImageSpec {
        pair: a.pair,
        min_packets: a.min_packets,
        mask_addresses: a.mask_addresses,
    };
    crate::util::output::check_file_output(&a.output, &a.inputs)?;
    if crate::checkpoint::nothing_to_resume(a.resume.as_deref(), opts.epochs)? {
        return Ok(());
    }
    let data = load(&a.inputs, &a.capture.options(&spec, a.quiet)?)?;
    let mut opts = opts;
    if a.batch.is_none() && !paper {
        opts.batch = small_set_batch(train::split_benign(&data.set, opts.val_split).0.len());
    }
    let gpu = a.gpu.open()?;
    let started = std::time::Instant::now();
    let out = train::train_vae(
        &gpu,
        &data.set,
        &opts,
        &a.output,
        a.resume.as_deref(),
        &serde_json::to_value(&spec)?,
    )?;
    let curve = train::loss_curve_path(&a.output);
    train::plot_loss_curve(&curve, &out.state.history)?;
    let t = &out.threshold;
    let kept = match &opts.until_plateau {
        Some(r) => r
            .state(&train::val_losses(&out.state.history))
            .map_or(String::new(), |s| {
                format!(
                    ", kept epoch {} (validation loss {:.2})",
                    s.best_epoch, s.best
                )
            }),
        None => String::new(),
    };
    println!(
        "trained {} epochs ({} steps) in {:.1}s{kept}: {} (loss curve {})\nalert threshold {:.2} ({:?} rule on {} validation scores for FPR {}; log-normal {:.2}, empirical quantile {:.2})",
        out.state.epoch, out.state.step, started.elapsed().as_secs_f64(), a.output.display(), curve.display(), t.value,
        opts.threshold_rule, t.n, t.alert_fpr, crate::eval::threshold::lognormal_value(t), t.empirical
    );
    Ok(())
}

/// A VAE checkpoint on the GPU, with how its images are made and its threshold.
pub struct LoadedVae {
    pub model: Vae,
    pub spec: ImageSpec,
    pub threshold: Option<crate::eval::threshold::Threshold>,
}

pub fn load_vae(gpu: &crate::gpu::Gpu, path: &std::path::Path) -> Result<LoadedVae> {
    let c = Checkpoint::load_model(path)?;
    let origin = path.display().to_string();
    let params = train::params_from(&c, &origin)?;
    Ok(LoadedVae {
        model: Vae::from_host(gpu, &params)?,
        spec: c
            .meta_json("samples")
            .with_context(|| format!("{origin}: no image options"))?,
        threshold: c.meta_json("threshold").ok(),
    })
}

fn score_all(gpu: &crate::gpu::Gpu, m: &LoadedVae, data: &Loaded) -> Result<Vec<f64>> {
    let idx: Vec<usize> = (0..data.set.labels.len()).collect();
    let run = train::score_run(gpu, idx.len())?;
    train::score_indices(gpu, &m.model, &run, &data.set, &idx)
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, ValueEnum)]
pub enum ScoreFormat {
    Jsonl,
    Csv,
}

/// Which rows of `score` say what drove their score.
#[derive(Clone, Copy, Debug, PartialEq, Eq, ValueEnum)]
pub enum ExplainRows {
    /// Rows above the alert threshold.
    Alerts,
    /// Every row (a DOC-IDS row costs about a hundred extra model passes).
    All,
    None,
}

#[derive(Args, Debug)]
pub struct ScoreArgs {
    /// Trained checkpoint.
    pub model: PathBuf,
    /// Dataset directories or captures to score.
    #[arg(required = true)]
    pub inputs: Vec<PathBuf>,
    #[arg(long, value_enum, default_value = "jsonl")]
    pub format: ScoreFormat,
    /// Output file (default: standard output).
    #[arg(short, long)]
    pub output: Option<PathBuf>,
    /// Rows that get the header fields and packets that drove their score (jsonl:
    /// "explain"; csv: explain_fields, explain_packets as "name:share;…").
    #[arg(long, value_enum, default_value = "alerts")]
    pub explain: ExplainRows,
    #[command(flatten)]
    pub capture: CaptureArgs,
    #[arg(short, long)]
    pub quiet: bool,
    #[command(flatten)]
    pub gpu: GpuArgs,
}

#[derive(Serialize)]
struct ScoreLine<'a> {
    src_ip: String,
    dest_ip: String,
    first_ts: String,
    last_ts: String,
    packets: u32,
    score: f64,
    alert: Option<bool>,
    label: Option<&'a str>,
    file: &'a str,
    #[serde(skip_serializing_if = "Option::is_none")]
    explain: Option<serde_json::Value>,
}

pub fn score(a: &ScoreArgs) -> Result<()> {
    use crate::detect::scorer::{FlowScorer, Scorer, VaeScorer};
    if let Some(o) = &a.output {
        crate::util::output::check_file_output(o, a.inputs.iter().chain([&a.model]))?;
    }
    let gpu = a.gpu.open()?;
    // [doc-ids] flow models score their own flow samples.
    let (scores, data, threshold, mut scorer): (_, _, _, Box<dyn Scorer>) =
        if crate::commands_flow::model_kind(&a.model)? == train::MODEL_KIND {
            let m = load_vae(&gpu, &a.model)?;
            let data = load(&a.inputs, &a.capture.options(&m.spec, a.quiet)?)?;
            let scores = score_all(&gpu, &m, &data)?;
            let t = m.threshold.as_ref().map_or(f64::INFINITY, |t| t.value);
            let scorer = VaeScorer::new(&gpu, m.model, m.spec, t, 1)?;
            (scores, data, m.threshold, Box::new(scorer))
        } else {
            let m = crate::train_flow::load_flow(&gpu, &a.model)?;
            let (scores, data) =
                crate::commands_flow::score_flow_inputs(&gpu, &m, &a.inputs, &a.capture, a.quiet)?;
            let t = m.threshold.as_ref().map_or(f64::INFINITY, |t| t.value);
            let kind = m.net.model_name().to_string();
            let scorer = FlowScorer::new(kind, m.net, m.spec, t);
            (scores, data, m.threshold, Box::new(scorer))
        };
    let labelled = a.capture.labels.is_some()
        || a.inputs
            .iter()
            .any(|p| p.join(crate::ingest::dataset::HEADER_FILE).is_file());
    let mut text = String::new();
    if a.format == ScoreFormat::Csv {
        text += "src_ip,dest_ip,first_ts,last_ts,packets,score,alert,label,file,explain_fields,explain_packets\n";
    }
    let len = data.set.sample_len;
    for (i, &s) in scores.iter().enumerate() {
        let meta = &data.set.meta[i];
        let alert = threshold.as_ref().map(|t| s > t.value);
        let explain = match a.explain {
            ExplainRows::All => true,
            ExplainRows::Alerts => alert == Some(true),
            ExplainRows::None => false,
        };
        let explanation = if explain {
            scorer.explain(&gpu, &data.set.data[i * len..(i + 1) * len])?
        } else {
            None
        };
        let line = ScoreLine {
            src_ip: meta.src_ip().to_string(),
            dest_ip: meta.dst_ip().to_string(),
            first_ts: crate::util::iso8601_us(meta.first_ts_ns),
            last_ts: crate::util::iso8601_us(meta.last_ts_ns),
            packets: meta.packets,
            score: s,
            alert,
            label: labelled.then(|| {
                if meta.label != 0 {
                    "malicious"
                } else {
                    "benign"
                }
            }),
            file: data.file_of(i),
            explain: explanation.as_ref().map(|e| e.to_json()),
        };
        match a.format {
            ScoreFormat::Jsonl => {
                text += &serde_json::to_string(&line)?;
                text.push('\n');
            }
            ScoreFormat::Csv => {
                let (fields, packets) = explanation
                    .as_ref()
                    .map(|e| e.to_cells())
                    .unwrap_or_default();
                text += &format!(
                    "{},{},{},{},{},{},{},{},{},{},{}\n",
                    line.src_ip,
                    line.dest_ip,
                    line.first_ts,
                    line.last_ts,
                    line.packets,
                    line.score,
                    line.alert.map_or(String::new(), |b| b.to_string()),
                    line.label.unwrap_or(""),
                    line.file.replace(',', "_"),
                    fields,
                    packets
                )
            }
        }
    }
    match &a.output {
        Some(p) => crate::util::write_atomic(p, text.as_bytes()),
        None => std::io::stdout()
            .lock()
            .write_all(text.as_bytes())
            .context("writing scores"),
    }
}

#[derive(Args, Debug)]
pub struct EvalArgs {
    /// Trained checkpoint (VAE, DOC-IDS, AE or 1D-Conv AE: its metadata says which).
    #[arg(required_unless_present = "compare")]
    pub model: Option<PathBuf>,
    // [doc-ids] several models side by side.
    /// Evaluate these checkpoints side by side (each on its own samples of the same test
    /// inputs): one table and one ROC figure, plus each model's report in a subdirectory.
    #[arg(long, num_args = 2.., conflicts_with = "model")]
    pub compare: Vec<PathBuf>,
    /// Benign training data, to report the training-score quantile beside the threshold.
    #[arg(long, num_args = 1..)]
    pub train: Vec<PathBuf>,
    /// Test data: benign and attack captures or datasets, labelled.
    #[arg(long, num_args = 1.., required = true)]
    pub test: Vec<PathBuf>,
    /// Report directory: metrics.json, roc.png, pr.png, scores.png, top_anomalies.png.
    #[arg(short, long)]
    pub output: PathBuf,
    /// Alert threshold to evaluate instead of the checkpoint's.
    #[arg(long, value_parser = crate::util::duration::parse_finite)]
    pub threshold: Option<f64>,
    /// How many of the highest-scoring test images to show with their reconstructions.
    #[arg(long, default_value_t = 6)]
    pub top: usize,
    #[command(flatten)]
    pub capture: CaptureArgs,
    #[arg(short, long)]
    pub quiet: bool,
    #[command(flatten)]
    pub gpu: GpuArgs,
}

/// Group of a sample for the per-attack table: the attack its label names (a time
/// window's attack name, or the capture's stem), else its capture file.
pub(crate) fn attack_name(data: &Loaded, i: usize) -> String {
    match data.class_of(i) {
        "" | "benign" => {
            let parts: Vec<&str> = data.file_of(i).rsplit(['/', '\\']).take(2).collect();
            parts.into_iter().rev().collect::<Vec<_>>().join("/")
        }
        name => name.to_string(),
    }
}

pub fn eval(a: &EvalArgs) -> Result<()> {
    crate::util::output::check_dir_writable(&a.output)?;
    // [doc-ids] dispatch on the checkpoint's model.
    if !a.compare.is_empty() {
        return crate::commands_flow::eval_compare(a);
    }
    let path = a
        .model
        .as_deref()
        .context("give a model checkpoint, or --compare A B …")?;
    let gpu = a.gpu.open()?;
    if crate::commands_flow::model_kind(path)? != train::MODEL_KIND {
        return crate::commands_flow::eval_flow(&gpu, a, path);
    }
    let (s, m, test) = vae_scored(&gpu, a, path)?;
    let r = s.report();
    report::write(&a.output, &r, &s.scores, &s.labels, &s.groups)?;
    top_anomalies(&gpu, &m, &test, &s.scores, a.top, &a.output)?;
    print!("{}", report::table(&r));
    println!("report: {}", a.output.display());
    Ok(())
}

/// A VAE checkpoint's scores on the test inputs, with its model and test data.
pub(crate) fn vae_scored(
    gpu: &crate::gpu::Gpu,
    a: &EvalArgs,
    path: &std::path::Path,
) -> Result<(crate::commands_flow::Scored, LoadedVae, Loaded)> {
    let m = load_vae(gpu, path)?;
    let opts = a.capture.options(&m.spec, a.quiet)?;
    let test = load(&a.test, &opts)?;
    let scores = score_all(gpu, &m, &test)?;
    let (labels, groups) = crate::commands_flow::labels_and_groups(&test)?;
    let train_scores = if a.train.is_empty() {
        None
    } else {
        let mut o = opts.clone();
        o.labels = None;
        Some(score_all(gpu, &m, &load(&a.train, &o)?)?)
    };
    let threshold = crate::commands_flow::pick_threshold(
        m.threshold.as_ref(),
        train_scores.as_deref(),
        a.threshold,
    );
    let packets = crate::commands_flow::packet_scores(&test, &scores, &groups);
    let s = crate::commands_flow::Scored {
        name: format!("vae ({})", path.display()),
        packets: Some(packets),
        scores,
        labels,
        groups,
        threshold,
        train_scores,
        samples: serde_json::to_value(&m.spec)?,
    };
    Ok((s, m, test))
}

/// Input | reconstruction | |difference| for the highest-scoring samples, with the
/// header fields and rows that drove each score beside it (top_anomalies.png), and the
/// same as top_anomalies.json.
pub(crate) fn top_anomalies(
    gpu: &crate::gpu::Gpu,
    m: &LoadedVae,
    data: &Loaded,
    scores: &[f64],
    top: usize,
    dir: &std::path::Path,
) -> Result<()> {
    if top == 0 {
        return Ok(());
    }
    let idx = crate::commands_flow::top_indices(scores, top);
    let run = VaeRun::new(gpu, idx.len(), false)?;
    let mut pixels = Vec::new();
    for &i in &idx {
        pixels.extend_from_slice(&data.set.data[i * PIXELS..(i + 1) * PIXELS]);
    }
    run.upload(gpu, &pixels);
    let mut b = gpu.batch();
    run.score(&mut b, &m.model, idx.len())?;
    b.submit()?;
    // The reconstruction buffer holds the last micro-batch; at this size there is one.
    let recon = run.reconstruction(gpu)?;
    let inputs: Vec<f32> = pixels.iter().map(|&p| p as f32 / 255.0).collect();
    let diff: Vec<f32> = inputs
        .iter()
        .zip(&recon)
        .map(|(x, r)| (x - r).abs())
        .collect();
    let rows: Vec<Vec<&[f32]>> = (0..idx.len())
        .map(|k| {
            let r = k * PIXELS..(k + 1) * PIXELS;
            vec![&inputs[r.clone()], &recon[r.clone()], &diff[r]]
        })
        .collect();
    let mut notes = Vec::new();
    let mut entries = Vec::new();
    for (k, &i) in idx.iter().enumerate() {
        let r = k * PIXELS..(k + 1) * PIXELS;
        let e = crate::explain::Explanation::from_image_errors(
            &pixels[r.clone()],
            &diff[r],
            SIDE,
            crate::explain::TOP,
        );
        notes.push(anomaly_note(data, i, k, scores[i], &e));
        entries.push(crate::commands_flow::top_anomaly_json(
            data,
            i,
            k,
            scores[i],
            Some(&e),
        ));
    }
    std::fs::create_dir_all(dir)?;
    plots::image_rows(&dir.join("top_anomalies.png"), &rows, SIDE, 3, &notes)?;
    crate::commands_flow::write_top_anomalies(dir, &entries)
}

/// The lines beside one top anomaly's picture.
fn anomaly_note(
    data: &Loaded,
    i: usize,
    rank: usize,
    score: f64,
    e: &crate::explain::Explanation,
) -> Vec<String> {
    let m = &data.set.meta[i];
    let mut lines = vec![
        format!(
            "#{} score {:.1} ({})",
            rank + 1,
            score,
            if m.label != 0 { "malicious" } else { "benign" }
        ),
        format!("{} > {}", m.src_ip(), m.dst_ip()),
    ];
    lines.extend(
        e.fields
            .iter()
            .map(|(f, v)| format!("{f}  {:.0}%", 100.0 * v)),
    );
    // Three fit the note's width.
    let rows: Vec<String> = e
        .packets
        .iter()
        .take(3)
        .map(|(r, v)| format!("{r} ({:.0}%)", 100.0 * v))
        .collect();
    if !rows.is_empty() {
        lines.push(format!("rows {}", rows.join(", ")));
    }
    lines
}
