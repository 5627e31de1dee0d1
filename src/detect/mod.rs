//! `detect`: trained models over packets, file or live, with alerts in
//! Suricata's EVE JSON (docs/DETECT.md). Stage by stage:
//!
//! - [`capture`]: packets from a file, stdin or a live interface ([`live`]);
//! - [`samples`]: pair images and flow samples built as packets arrive;
//! - `batch`: samples batched to the models and scored;
//! - [`eve`]: alert and stats lines (with Community ID), written whole;
//! - [`pipeline`]: the threads and queues that join them;
//! - [`scorer`]: what a model is to the pipeline (models come from the registry).

mod batch;
pub mod capture;
pub mod counters;
pub mod eve;
pub mod live;
pub mod pipeline;
pub mod samples;
pub mod scorer;

use std::path::PathBuf;

use anyhow::{bail, Result};

use pipeline::Model;

pub use crate::util::duration::{parse_duration, parse_finite};

/// The per-model threshold overrides (`--threshold` once, or once per model).
pub fn thresholds(given: &[f64], models: usize) -> Result<Vec<Option<f64>>> {
    match given.len() {
        0 => Ok(vec![None; models]),
        1 => Ok(vec![Some(given[0]); models]),
        n if n == models => Ok(given.iter().map(|&t| Some(t)).collect()),
        n => bail!(
            "--threshold given {n} times for {models} models: give it once for all, or once per -m"
        ),
    }
}

/// Loads every checkpoint for `detect` (threshold overrides applied).
pub fn load_models(gpu: &crate::gpu::Gpu, paths: &[PathBuf], thr: &[f64]) -> Result<Vec<Model>> {
    let thr = thresholds(thr, paths.len())?;
    paths
        .iter()
        .zip(thr)
        .map(|(p, t)| {
            let l = scorer::load_scorer(gpu, p, t)?;
            Ok(Model {
                scorer: l.scorer,
                file: l.path,
            })
        })
        .collect()
}
