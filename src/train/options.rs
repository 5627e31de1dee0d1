//! What a training run is told (options) and what it records (state, per-epoch log),
//! for every model alike; both are stored in the checkpoint under "train".

use std::time::Duration;

use serde::{Deserialize, Serialize};

use super::plateau::Plateau;
use crate::eval::threshold;
use crate::models::doc_ids::LossWeights;

#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize, clap::ValueEnum)]
#[serde(rename_all = "lowercase")]
pub enum Optimizer {
    /// Plain SGD (no momentum), L2 weight decay.
    Sgd,
    /// Adam, β (0.9, 0.999), ε 1e-8, L2 weight decay.
    Adam,
}

fn adam() -> Optimizer {
    Optimizer::Adam
}

fn ten_percent() -> f64 {
    0.1
}

#[derive(Clone, Debug, Serialize, Deserialize, PartialEq)]
pub struct TrainOptions {
    pub epochs: usize,
    pub batch: usize,
    #[serde(default = "adam")]
    pub optimizer: Optimizer,
    pub lr: f64,
    /// L2 weight decay (PyTorch's `weight_decay`), applied to every parameter.
    #[serde(default)]
    pub weight_decay: f64,
    pub seed: u64,
    /// Fraction of the benign (target) samples, the latest by time, held out to
    /// validate and to fit the alert threshold.
    pub val_split: f64,
    /// DOC-IDS: fraction of each reference class held out (seeded) for the
    /// per-epoch reference accuracy.
    #[serde(default = "ten_percent")]
    pub ref_val_split: f64,
    /// Target false-positive rate of the alert threshold (docs/THRESHOLD.md).
    pub alert_fpr: f64,
    /// DOC-IDS: weights of the loss terms.
    #[serde(default)]
    pub weights: LossWeights,
    /// Read the loss back every this many steps (each read waits for the GPU).
    pub log_every: usize,
    /// None: exactly `epochs` epochs, the last model kept (the papers' protocol).
    /// Some: train until the plateau rule stops it, at most `epochs`, keeping the
    /// model with the best validation measure (docs/TRAINING.md).
    #[serde(default)]
    pub until_plateau: Option<Plateau>,
    /// No epoch starts that would end past this budget (measured by the slowest epoch).
    #[serde(default)]
    pub time_budget: Option<Duration>,
    /// VAE: start the decoder's output bias at the logit of the training images'
    /// mean pixel (instead of PyTorch's default), so the first steps need not learn
    /// the mean image.
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
    /// The VAE's paper settings: Adam 1e-3, batch 64, 60 epochs.
    fn default() -> Self {
        TrainOptions {
            epochs: 60,
            batch: 64,
            optimizer: Optimizer::Adam,
            lr: 1e-3,
            weight_decay: 0.0,
            seed: 0,
            val_split: 0.1,
            ref_val_split: 0.1,
            alert_fpr: 1e-3,
            weights: LossWeights::default(),
            log_every: 20,
            until_plateau: None,
            time_budget: None,
            output_bias_from_data: false,
            threshold_rule: threshold::Rule::default(),
            quiet: false,
        }
    }
}

impl TrainOptions {
    /// DOC-IDS's faster default: Adam 1e-3, batch 64, 10 epochs (docs/DOC_IDS.md has
    /// the measurement against the paper's SGD).
    pub fn doc_ids_default() -> Self {
        TrainOptions {
            epochs: 10,
            ..Self::default()
        }
    }
    /// The paper's DOC-IDS setting: SGD lr 5e-5, weight decay 5e-4, no momentum,
    /// batch 64.
    pub fn doc_ids_paper() -> Self {
        TrainOptions {
            optimizer: Optimizer::Sgd,
            lr: 5e-5,
            weight_decay: 5e-4,
            epochs: 30,
            ..Self::doc_ids_default()
        }
    }
    /// The baselines: Adam 1e-3, batch 64 (docs/MODELS.md §4).
    pub fn baseline_default() -> Self {
        TrainOptions {
            epochs: 100,
            ..Self::default()
        }
    }
}

/// One epoch of the loss history.
#[derive(Clone, Debug, Serialize, Deserialize, PartialEq)]
#[serde(from = "AnyEpochLog")]
pub struct EpochLog {
    pub epoch: usize,
    /// Mean training loss (what the optimizer minimises).
    pub loss: f64,
    /// Its named terms (VAE: BCE, KL; DOC-IDS: l_D, l_C, l_R; baselines: MSE).
    pub terms: Vec<(String, f64)>,
    /// The validation measure the plateau rule reads: the VAE's validation loss, the
    /// flow models' mean held-out benign score.
    pub val: Option<f64>,
    /// Model-specific measures (DOC-IDS: "reference accuracy").
    #[serde(default)]
    pub extras: Vec<(String, f64)>,
    pub seconds: f64,
    pub samples_per_s: f64,
}

impl EpochLog {
    pub fn term(&self, name: &str) -> Option<f64> {
        self.terms.iter().find(|(n, _)| n == name).map(|t| t.1)
    }
    pub fn extra(&self, name: &str) -> Option<f64> {
        self.extras.iter().find(|(n, _)| n == name).map(|t| t.1)
    }
}

/// What a checkpoint's history may hold: today's entries, or those written before
/// the models shared one training loop (so those checkpoints still resume).
#[derive(Deserialize)]
#[serde(untagged)]
enum AnyEpochLog {
    Now {
        epoch: usize,
        loss: f64,
        terms: Vec<(String, f64)>,
        val: Option<f64>,
        #[serde(default)]
        extras: Vec<(String, f64)>,
        seconds: f64,
        samples_per_s: f64,
    },
    Vae {
        epoch: usize,
        train_bce: f64,
        train_kl: f64,
        val_loss: Option<f64>,
        seconds: f64,
        samples_per_s: f64,
    },
    Flow {
        epoch: usize,
        loss: f64,
        l_d: Option<f64>,
        l_c: Option<f64>,
        l_r: Option<f64>,
        ref_accuracy: Option<f64>,
        val_score: Option<f64>,
        seconds: f64,
        samples_per_s: f64,
    },
}

impl From<AnyEpochLog> for EpochLog {
    fn from(l: AnyEpochLog) -> Self {
        match l {
            AnyEpochLog::Now {
                epoch,
                loss,
                terms,
                val,
                extras,
                seconds,
                samples_per_s,
            } => EpochLog {
                epoch,
                loss,
                terms,
                val,
                extras,
                seconds,
                samples_per_s,
            },
            AnyEpochLog::Vae {
                epoch,
                train_bce,
                train_kl,
                val_loss,
                seconds,
                samples_per_s,
            } => EpochLog {
                epoch,
                loss: train_bce + train_kl,
                terms: vec![("BCE".into(), train_bce), ("KL".into(), train_kl)],
                val: val_loss,
                extras: vec![],
                seconds,
                samples_per_s,
            },
            AnyEpochLog::Flow {
                epoch,
                loss,
                l_d,
                l_c,
                l_r,
                ref_accuracy,
                val_score,
                seconds,
                samples_per_s,
            } => {
                let terms = match (l_d, l_c, l_r) {
                    (Some(d), Some(c), Some(r)) => {
                        vec![("l_D".into(), d), ("l_C".into(), c), ("l_R".into(), r)]
                    }
                    _ => vec![("MSE".into(), loss)],
                };
                EpochLog {
                    epoch,
                    loss,
                    terms,
                    val: val_score,
                    extras: ref_accuracy
                        .map(|a| vec![(super::REFERENCE_ACCURACY.into(), a)])
                        .unwrap_or_default(),
                    seconds,
                    samples_per_s,
                }
            }
        }
    }
}

/// Training state that a checkpoint carries besides the tensors.
#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct TrainState {
    pub options: TrainOptions,
    /// Epochs completed.
    pub epoch: usize,
    /// Optimizer steps taken; with the seed it fixes every later batch (and the
    /// VAE's noise), so a resumed run draws what an uninterrupted one would.
    pub step: u64,
    pub history: Vec<EpochLog>,
    /// DOC-IDS: reference classes in the head's output order.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub classes: Vec<String>,
    pub train_samples: usize,
    pub val_samples: usize,
    #[serde(default)]
    pub ref_train_samples: usize,
    #[serde(default)]
    pub ref_val_samples: usize,
}

impl TrainState {
    /// Validation measure of each epoch in order, as the plateau rule reads it.
    pub fn val_history(&self) -> Vec<Option<f64>> {
        self.history.iter().map(|h| h.val).collect()
    }
}
