//! `gpu-nids score`: one line per sample (JSON lines or CSV) from any checkpoint,
//! with what drove the score of the rows asked for.

use std::io::Write;
use std::path::PathBuf;

use anyhow::{Context, Result};
use clap::{Args, ValueEnum};
use serde::Serialize;

use super::CaptureArgs;
use crate::cli::gpu::GpuArgs;
use crate::models::registry;

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
    if let Some(o) = &a.output {
        crate::util::output::check_file_output(o, a.inputs.iter().chain([&a.model]))?;
    }
    let gpu = a.gpu.open()?;
    let mut scorer = registry::load(&gpu, &a.model)?;
    let data = a.capture.load(&a.inputs, &scorer.spec().clone(), a.quiet)?;
    let scores = registry::score_all(&gpu, scorer.as_mut(), &data.set)?;
    let threshold = scorer.threshold().cloned();
    let labelled = a.capture.labels.is_some()
        || a.inputs
            .iter()
            .any(|p| p.join(crate::ingest::dataset::HEADER_FILE).is_file());
    let mut text = String::new();
    if a.format == ScoreFormat::Csv {
        text += "src_ip,dest_ip,first_ts,last_ts,packets,score,alert,label,file,explain_fields,explain_packets\n";
    }
    let len = data.set.sample_len;
    let alerts: Vec<Option<bool>> = scores
        .iter()
        .map(|&s| threshold.as_ref().map(|t| s > t.value))
        .collect();
    // All rows to explain go through the model together: an occlusion explanation
    // alone fills a few percent of a scoring batch.
    let chosen: Vec<usize> = (0..scores.len())
        .filter(|&i| match a.explain {
            ExplainRows::All => true,
            ExplainRows::Alerts => alerts[i] == Some(true),
            ExplainRows::None => false,
        })
        .collect();
    let mut picked = Vec::with_capacity(chosen.len() * len);
    for &i in &chosen {
        picked.extend_from_slice(&data.set.data[i * len..(i + 1) * len]);
    }
    let mut explanations: Vec<Option<crate::explain::Explanation>> = vec![None; scores.len()];
    for (&i, e) in chosen
        .iter()
        .zip(scorer.explain_many(&gpu, &picked, chosen.len())?)
    {
        explanations[i] = e;
    }
    for (i, (&s, explanation)) in scores.iter().zip(explanations).enumerate() {
        let meta = &data.set.meta[i];
        let alert = alerts[i];
        let line = ScoreLine {
            src_ip: meta.src_ip().to_string(),
            dest_ip: meta.dst_ip().to_string(),
            first_ts: crate::util::iso8601_us(meta.first_ts_ns),
            last_ts: crate::util::iso8601_us(meta.last_ts_ns),
            packets: meta.packets,
            score: s,
            alert,
            label: labelled.then_some(if meta.label != 0 {
                "malicious"
            } else {
                "benign"
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
