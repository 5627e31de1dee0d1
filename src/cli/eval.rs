//! `gpu-nids eval`: any checkpoint on labelled test traffic — metrics, per-attack
//! and per-packet tables, pictures, the highest-scoring samples explained — and
//! `eval --compare` for several models side by side.

use std::path::{Path, PathBuf};

use anyhow::{Context, Result};
use clap::Args;

use super::CaptureArgs;
use crate::cli::gpu::GpuArgs;
use crate::data::Loaded;
use crate::eval::metrics::{pr_curve, roc_curve};
use crate::eval::report::{self, Report};
use crate::eval::scored::{
    compare_table, labels_and_groups, packet_scores, pick_threshold, top_anomaly_json, top_indices,
    write_top_anomalies, Scored,
};
use crate::eval::union::{table as union_table, union, ModelPackets};
use crate::gpu::Gpu;
use crate::models::registry::{self, Scorer};
use crate::models::SampleSpec;

#[derive(Args, Debug)]
pub struct EvalArgs {
    /// Trained checkpoint (VAE, DOC-IDS, AE or 1D-Conv AE: its metadata says which).
    #[arg(required_unless_present = "compare")]
    pub model: Option<PathBuf>,
    // [doc-ids] several models side by side.
    /// Evaluate these checkpoints side by side (each on its own samples of the same test
    /// inputs): one table and one ROC figure, plus each model's report in a subdirectory;
    /// with test captures, also per packet what any of them alerting gives (union.json).
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

pub fn eval(a: &EvalArgs) -> Result<()> {
    crate::util::output::check_dir_writable(&a.output)?;
    if !a.compare.is_empty() {
        return eval_compare(a);
    }
    let path = a
        .model
        .as_deref()
        .context("give a model checkpoint, or --compare A B …")?;
    let gpu = a.gpu.open()?;
    let (s, mut m, test) = scored(&gpu, a, path, false)?;
    let r = s.report();
    report::write(&a.output, &r, &s.scores, &s.labels, &s.groups)?;
    top_anomalies(&gpu, m.as_mut(), &test, &s.scores, a.top, &a.output)?;
    print!("{}", report::table(&r));
    println!("report: {}", a.output.display());
    Ok(())
}

/// A checkpoint's scores on the test inputs (its own kind of samples of them), with
/// the model and the test data (with each packet's sample, when `members`).
fn scored(
    gpu: &Gpu,
    a: &EvalArgs,
    path: &Path,
    members: bool,
) -> Result<(Scored, Box<dyn Scorer>, Loaded)> {
    let mut m = registry::load(gpu, path)?;
    let spec = m.spec().clone();
    let test = if members {
        a.capture.load_members(&a.test, &spec, a.quiet)?
    } else {
        a.capture.load(&a.test, &spec, a.quiet)?
    };
    let scores = registry::score_all(gpu, m.as_mut(), &test.set)?;
    let (labels, groups) = labels_and_groups(&test)?;
    let train_scores = if a.train.is_empty() {
        None
    } else {
        let mut c = a.capture.clone();
        c.labels = None;
        let train = c.load(&a.train, &spec, a.quiet)?;
        Some(registry::score_all(gpu, m.as_mut(), &train.set)?)
    };
    let s = Scored {
        name: format!("{} ({})", m.display(), path.display()),
        threshold: pick_threshold(m.threshold(), train_scores.as_deref(), a.threshold),
        packets: Some(packet_scores(&test, &scores, &groups)),
        scores,
        labels,
        groups,
        train_scores,
        samples: spec.to_json(),
    };
    Ok((s, m, test))
}

/// The highest-scoring samples, each with what drove its score (top_anomalies.json),
/// and for image models input | reconstruction | |difference| with those fields
/// beside each row (top_anomalies.png).
fn top_anomalies(
    gpu: &Gpu,
    m: &mut dyn Scorer,
    data: &Loaded,
    scores: &[f64],
    top: usize,
    dir: &Path,
) -> Result<()> {
    if top == 0 {
        return Ok(());
    }
    let idx = top_indices(scores, top);
    let len = data.set.sample_len;
    let explained = m.explain_many(
        gpu,
        &crate::data::samplers::gather(&data.set, &idx),
        idx.len(),
    )?;
    let mut entries = Vec::new();
    let mut notes = Vec::new();
    for (rank, (&i, e)) in idx.iter().zip(&explained).enumerate() {
        entries.push(top_anomaly_json(data, i, rank, scores[i], e.as_ref()));
        notes.push(anomaly_note(data, i, rank, scores[i], e.as_ref()));
    }
    std::fs::create_dir_all(dir)?;
    if let SampleSpec::Images(_) = m.spec() {
        let side = crate::ingest::IMAGE_SIDE;
        let mut inputs = Vec::with_capacity(idx.len() * len);
        let mut recon = Vec::with_capacity(idx.len() * len);
        for chunk in idx.chunks(registry::SMALL_BATCH) {
            let pixels = crate::data::samplers::gather(&data.set, chunk);
            match m.reconstructions(gpu, &pixels, chunk.len())? {
                Some(r) => recon.extend(r),
                None => break,
            }
            inputs.extend(pixels.iter().map(|&p| p as f32 / 255.0));
        }
        if recon.len() == inputs.len() && !inputs.is_empty() {
            let diff: Vec<f32> = inputs
                .iter()
                .zip(&recon)
                .map(|(x, r)| (x - r).abs())
                .collect();
            let rows: Vec<Vec<&[f32]>> = (0..idx.len())
                .map(|k| {
                    let r = k * len..(k + 1) * len;
                    vec![&inputs[r.clone()], &recon[r.clone()], &diff[r]]
                })
                .collect();
            crate::eval::plots::image_rows(&dir.join("top_anomalies.png"), &rows, side, 3, &notes)?;
        }
    }
    write_top_anomalies(dir, &entries)
}

/// The lines beside one top anomaly's picture.
fn anomaly_note(
    data: &Loaded,
    i: usize,
    rank: usize,
    score: f64,
    e: Option<&crate::explain::Explanation>,
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
    let Some(e) = e else {
        return lines;
    };
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

pub fn eval_compare(a: &EvalArgs) -> Result<()> {
    let gpu = a.gpu.open()?;
    let mut all: Vec<(String, Report, Scored)> = Vec::new();
    let mut tests = Vec::new();
    for path in &a.compare {
        let (s, mut m, test) = scored(&gpu, a, path, true)?;
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
        let dir = a.output.join(&dir_name);
        report::write(&dir, &r, &s.scores, &s.labels, &s.groups)?;
        top_anomalies(&gpu, m.as_mut(), &test, &s.scores, a.top, &dir)?;
        if !a.quiet {
            eprint!("{}", report::table(&r));
        }
        all.push((dir_name, r, s));
        tests.push(test);
    }
    let mut table = compare_table(&all.iter().map(|(_, r, _)| r).collect::<Vec<_>>());
    std::fs::create_dir_all(&a.output)?;
    // Per packet, any model alerting; test datasets (not captures) do not record which
    // sample each packet went to, so their comparison stops at the per-model table.
    let sides: Vec<ModelPackets> = all
        .iter()
        .zip(&tests)
        .map(|((d, _, s), test)| ModelPackets {
            name: d.clone(),
            test,
            scores: &s.scores,
            threshold: s.threshold.value,
        })
        .collect();
    match union(&sides) {
        Ok(u) => {
            table += &union_table(&u);
            crate::util::write_atomic(
                &a.output.join("union.json"),
                serde_json::to_string_pretty(&u)?.as_bytes(),
            )?;
        }
        Err(e) => eprintln!("no per-packet union of the models: {e:#}"),
    }
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
