//! The optimizer over a model's parameters: SGD or Adam, its moments on the GPU,
//! and their place in checkpoints (`adam.m.<param>`, `adam.v.<param>`).

use anyhow::Result;

use super::options::{Optimizer, TrainOptions};
use crate::checkpoint::Checkpoint;
use crate::gpu::{Batch, Buf, Gpu};
use crate::models::Param;
use crate::nn::optim::{self, Adam, Sgd};

pub struct OptState {
    kind: Optimizer,
    lr: f64,
    weight_decay: f64,
    /// Adam's moments, one pair per parameter tensor (none for momentum-free SGD).
    m: Vec<Buf<f32>>,
    v: Vec<Buf<f32>>,
}

impl OptState {
    /// Zeroed moments, or those of `saved` when resuming.
    pub fn new(
        gpu: &Gpu,
        o: &TrainOptions,
        params: &[Param],
        saved: Option<&Checkpoint>,
    ) -> Result<OptState> {
        let (mut m, mut v) = (vec![], vec![]);
        if o.optimizer == Optimizer::Adam {
            for p in params {
                match saved {
                    Some(c) => {
                        m.push(gpu.upload(&c.tensor(&format!("adam.m.{}", p.name))?.1)?);
                        v.push(gpu.upload(&c.tensor(&format!("adam.v.{}", p.name))?.1)?);
                    }
                    None => {
                        m.push(gpu.zeros(p.w.len())?);
                        v.push(gpu.zeros(p.w.len())?);
                    }
                }
            }
        }
        Ok(OptState {
            kind: o.optimizer,
            lr: o.lr,
            weight_decay: o.weight_decay,
            m,
            v,
        })
    }

    /// Records one update of every parameter from its gradient; `t` is the 1-based step.
    pub fn step(&self, b: &mut Batch, params: &[Param], t: u64) -> Result<()> {
        for (i, p) in params.iter().enumerate() {
            match self.kind {
                Optimizer::Adam => {
                    let cfg = Adam {
                        lr: self.lr,
                        weight_decay: self.weight_decay,
                        ..Adam::default()
                    };
                    optim::adam_step(
                        b,
                        p.w.len(),
                        &cfg,
                        t,
                        p.w.raw(),
                        p.g.raw(),
                        self.m[i].raw(),
                        self.v[i].raw(),
                    )?
                }
                Optimizer::Sgd => {
                    let cfg = Sgd {
                        lr: self.lr,
                        weight_decay: self.weight_decay,
                        ..Sgd::default()
                    };
                    optim::sgd_step(b, p.w.len(), &cfg, t == 1, p.w.raw(), p.g.raw(), None)?
                }
            }
        }
        Ok(())
    }

    /// Adds the moments to a checkpoint.
    pub fn save(&self, gpu: &Gpu, params: &[Param], c: &mut Checkpoint) -> Result<()> {
        if self.kind != Optimizer::Adam {
            return Ok(());
        }
        for (i, p) in params.iter().enumerate() {
            c.insert(
                format!("adam.m.{}", p.name),
                &p.shape,
                gpu.read(&self.m[i])?,
            );
            c.insert(
                format!("adam.v.{}", p.name),
                &p.shape,
                gpu.read(&self.v[i])?,
            );
        }
        Ok(())
    }
}
