//! The command line: argument structs and what each subcommand runs. Everything
//! here parses, calls the library, and prints; nothing below `cli` imports it.
//!
//! - [`train`]: `train vae | doc-ids | ae | conv-ae`;
//! - [`score`], [`eval`]: any checkpoint, through the model registry;
//! - [`bench`]: `bench train` and `bench ops`;
//! - [`ingest`], [`inspect`], [`gpu`] (devices, bench matmul), [`detect`], [`bench_ops`]:
//!   the other subcommands.

pub mod bench;
pub mod bench_ops;
pub mod detect;
pub mod eval;
pub mod gpu;
pub mod ingest;
pub mod inspect;
pub mod score;
pub mod train;

use std::path::PathBuf;

use anyhow::{bail, Result};
use clap::Args;

use crate::data::{load, Loaded};
use crate::ingest::{IngestOptions, LabelRules, SampleKind, Side, SplitOptions};
use crate::models::SampleSpec;

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

impl Default for CaptureArgs {
    fn default() -> Self {
        CaptureArgs {
            labels: None,
            split: None,
            split_frac: 0.7,
        }
    }
}

impl CaptureArgs {
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

    /// Ingest options that build the samples `spec` describes.
    pub fn options(&self, spec: &SampleSpec, quiet: bool) -> Result<IngestOptions> {
        let mut o = self.base_options(spec.kind(), quiet)?;
        match spec {
            SampleSpec::Images(s) => {
                if !(1..=64).contains(&s.min_packets) {
                    bail!(
                        "--min-packets must be between 1 and 64, got {}",
                        s.min_packets
                    );
                }
                o.image = SampleSpec::image_options(s);
            }
            SampleSpec::Flows(s) => o.flow = SampleSpec::flow_options(s),
        }
        Ok(o)
    }

    /// `inputs` (datasets or captures) as samples of `spec`.
    pub fn load(&self, inputs: &[PathBuf], spec: &SampleSpec, quiet: bool) -> Result<Loaded> {
        load(inputs, &self.options(spec, quiet)?)
    }

    /// As [`CaptureArgs::load`], also recording the sample each packet of a capture went
    /// to (`InputReport::members`), for models compared packet by packet.
    pub fn load_members(
        &self,
        inputs: &[PathBuf],
        spec: &SampleSpec,
        quiet: bool,
    ) -> Result<Loaded> {
        let mut o = self.options(spec, quiet)?;
        o.track_members = true;
        load(inputs, &o)
    }
}

/// Flow-sample ingest options for `spec` with this capture's labels and split.
pub fn flow_options(
    capture: &CaptureArgs,
    spec: &crate::models::FlowSpec,
    quiet: bool,
) -> Result<IngestOptions> {
    capture.options(&SampleSpec::Flows(spec.clone()), quiet)
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
