//! When to stop training: the plateau rule of docs/TRAINING.md, shared by every model.
//!
//! An epoch *improves* when its validation loss is below the reference best by more than
//! `min_rel` of it; the reference moves only on improvements, so a slow creep of tiny
//! gains still counts as a plateau. Training stops once `patience` epochs in a row have
//! not improved, but never before `min_steps` optimizer steps: on a set of a few hundred
//! samples an epoch is a handful of steps, and early epochs can stall before the model
//! has learned even the mean image. The checkpoint kept is the lowest validation loss
//! seen (any decrease), which is not the same as the plateau's reference.
//!
//! The state is a pure function of the loss history, so a resumed run recomputes it
//! from the checkpoint and stops where an uninterrupted one would.

use std::time::{Duration, Instant};

use serde::{Deserialize, Serialize};

#[derive(Clone, Debug, Serialize, Deserialize, PartialEq)]
pub struct Plateau {
    /// Epochs without an improvement after which training stops.
    pub patience: usize,
    /// Relative decrease of the validation loss that counts as an improvement.
    pub min_rel: f64,
    /// Optimizer steps before the rule may stop training.
    pub min_steps: u64,
}

impl Default for Plateau {
    fn default() -> Self {
        Plateau {
            patience: 5,
            min_rel: 1e-3,
            min_steps: 200,
        }
    }
}

/// Where the rule stands after some epochs.
#[derive(Clone, Debug, PartialEq)]
pub struct PlateauState {
    /// Epoch (1-based) with the lowest validation loss, and that loss.
    pub best_epoch: usize,
    pub best: f64,
    /// Epochs since the last improvement by more than `min_rel`.
    pub stale: usize,
}

impl Plateau {
    /// The state after `losses` (validation loss of epochs 1, 2, …; None where an epoch
    /// had none). None until some epoch has a finite loss.
    pub fn state(&self, losses: &[Option<f64>]) -> Option<PlateauState> {
        let mut st: Option<PlateauState> = None;
        let mut reference = f64::INFINITY;
        for (i, l) in losses.iter().enumerate() {
            let epoch = i + 1;
            let Some(s) = st.as_mut() else {
                if let Some(v) = l.filter(|v| v.is_finite()) {
                    reference = v;
                    st = Some(PlateauState {
                        best_epoch: epoch,
                        best: v,
                        stale: 0,
                    });
                }
                continue;
            };
            match l.filter(|v| v.is_finite()) {
                Some(v) => {
                    if v < s.best {
                        s.best = v;
                        s.best_epoch = epoch;
                    }
                    if v < reference - self.min_rel * reference.abs() {
                        reference = v;
                        s.stale = 0;
                    } else {
                        s.stale += 1;
                    }
                }
                None => s.stale += 1,
            }
        }
        st
    }

    /// Whether to stop after these epochs, `steps` optimizer steps in all.
    pub fn should_stop(&self, losses: &[Option<f64>], steps: u64) -> bool {
        steps >= self.min_steps
            && self
                .state(losses)
                .is_some_and(|s| s.stale >= self.patience.max(1))
    }

    /// One line for the progress output.
    pub fn describe(&self, losses: &[Option<f64>], steps: u64) -> String {
        match self.state(losses) {
            None => "no validation loss yet".into(),
            Some(s) => format!(
                "best {} at epoch {}, {}/{} epochs without a {:.1e} gain{}",
                // Losses of thousands (VAE) and MSEs of hundredths (flow models).
                if s.best.abs() >= 10.0 {
                    format!("{:.2}", s.best)
                } else {
                    format!("{:.3e}", s.best)
                },
                s.best_epoch,
                s.stale,
                self.patience,
                self.min_rel,
                if steps < self.min_steps {
                    format!(", step {steps}/{} before it may stop", self.min_steps)
                } else {
                    String::new()
                }
            ),
        }
    }
}

/// A wall-time budget: another epoch starts only if one more epoch as long as the
/// slowest so far still fits.
pub fn fits_budget(budget: Option<Duration>, elapsed: Duration, slowest_epoch: Duration) -> bool {
    budget.is_none_or(|b| elapsed + slowest_epoch <= b)
}

/// What the plateau rule watches, in the words of the run's messages: the VAE's
/// validation loss, the flow models' held-out benign score.
pub const VAL_LOSS: &str = "the validation loss";
pub const HELD_OUT_SCORE: &str = "the held-out benign score";

/// Why training ends before another epoch, if it does: the plateau rule over `values`
/// (the watched value of each epoch so far, named `what`), or the wall-time budget.
pub fn stop_reason(
    rule: Option<&Plateau>,
    what: &str,
    values: &[Option<f64>],
    step: u64,
    budget: Option<Duration>,
    started: Instant,
    slowest_epoch: Duration,
) -> Option<String> {
    if rule.is_some_and(|r| r.should_stop(values, step)) {
        return Some(format!("{what} stopped improving"));
    }
    if !fits_budget(budget, started.elapsed(), slowest_epoch) {
        return Some("the --time-budget would be exceeded by another epoch".into());
    }
    None
}

/// The rule's state for the per-epoch line (empty without a rule).
pub fn rule_line(rule: Option<&Plateau>, values: &[Option<f64>], step: u64) -> String {
    rule.map_or(String::new(), |r| {
        format!("  [{}]", r.describe(values, step))
    })
}

/// What the run will do, for its first line.
pub fn until_line(
    rule: Option<&Plateau>,
    what: &str,
    max_epochs: usize,
    budget: Option<Duration>,
    first_epoch: usize,
) -> String {
    match rule {
        Some(r) => format!(
            "until {what} has not improved by {:.1e} for {} epochs (at least {} steps, at most {max_epochs} epochs{})",
            r.min_rel,
            r.patience,
            r.min_steps,
            budget.map_or(String::new(), |b| format!(", {:.0}s", b.as_secs_f64()))
        ),
        None => format!("epochs {first_epoch}..{max_epochs}"),
    }
}

/// A `--time-budget`: the project's one duration syntax (crate::util::duration),
/// and more than zero, since a zero budget could train nothing.
pub fn parse_duration(s: &str) -> Result<Duration, String> {
    match crate::util::duration::parse_duration(s)? {
        d if d.is_zero() => Err(format!(
            "'{s}' is not a positive duration (e.g. 90s, 10m, 1h)"
        )),
        d => Ok(d),
    }
}
