//! Batching and scoring: samples wait per model until a batch fills or
//! the oldest has waited long enough, go through the GPU together, and
//! their alerts are held until they can go out in timestamp order.

use std::cmp::Reverse;
use std::collections::{BinaryHeap, VecDeque};
use std::time::Instant;

use anyhow::{Context, Result};

use super::eve::alert::{alert_event, AlertContext, AlertModel, AlertSample};
use super::eve::EveWriter;
use super::scorer::{Scorer, StreamSpec};
use crate::gpu::Gpu;
use crate::ingest::sample::RowPacket;
use crate::ingest::{LinkType, SampleMeta};

/// A sample waiting for its model's next batch.
pub(super) struct PendingItem {
    pub seq: u64,
    pub meta: SampleMeta,
    pub rows: Vec<RowPacket>,
    pub link: LinkType,
    /// When it was completed.
    pub t: Instant,
}

/// Samples waiting for one model's next batch.
#[derive(Default)]
pub(super) struct Pending {
    pub data: Vec<u8>,
    pub items: Vec<PendingItem>,
    pub oldest: Option<Instant>,
    pub explained: ExplainLimiter,
}

/// Which alerts get an explanation: one per host pair (either direction) every
/// `interval` of packet time. A flood or scan raises hundreds of alerts of one pair
/// that an explanation each would describe alike, and explaining costs a model from one
/// to several dozen forward passes per alert (occlusion), far more than scoring.
/// Decided in sample order, so a file gives the same alerts explained on every run.
#[derive(Default)]
pub(super) struct ExplainLimiter {
    /// Host pair → packet time of its last explained alert.
    last: std::collections::HashMap<(crate::ingest::parse::Addr, crate::ingest::parse::Addr), u64>,
}

impl ExplainLimiter {
    /// Entries kept before the stale ones are dropped (bounds memory on a scan of many hosts).
    const PRUNE_AT: usize = 1 << 16;

    pub fn admit(&mut self, m: &SampleMeta, interval_ns: u64) -> bool {
        if interval_ns == 0 {
            return true;
        }
        let key = if m.src <= m.dst {
            (m.src, m.dst)
        } else {
            (m.dst, m.src)
        };
        let ts = m.last_ts_ns;
        if let Some(&t) = self.last.get(&key) {
            // An earlier timestamp (samples complete out of order) counts as within.
            if ts.saturating_sub(t) < interval_ns {
                return false;
            }
        }
        if self.last.len() >= Self::PRUNE_AT {
            self.last.retain(|_, t| ts.saturating_sub(*t) < interval_ns);
        }
        self.last.insert(key, ts);
        true
    }
}

/// Alerts scored but not yet written, held so that they go out in order
/// (docs/DETECT.md, "Order").
#[derive(Default)]
pub(super) struct Reorder {
    /// (timestamp, sample order, model) → the formatted line.
    held: BinaryHeap<Reverse<(u64, u64, usize, String)>>,
    /// (samples received so far, packet clock) per chunk from the sample
    /// thread, oldest first, until every model has scored past it.
    pub marks: VecDeque<(u64, u64)>,
    /// Packet clock up to which every sample has been scored.
    pub watermark: u64,
}

impl Reorder {
    /// Moves the watermark on: `scored` = every sample with a lower order
    /// number has been scored by every model.
    pub fn advance(&mut self, scored: u64) {
        while let Some(&(end, clock)) = self.marks.front() {
            if end > scored {
                break;
            }
            self.watermark = self.watermark.max(clock);
            self.marks.pop_front();
        }
    }

    /// Queues the alerts that may go out now, in order.
    pub fn release(&mut self, window: u64, out: &mut EveWriter) -> Result<()> {
        while let Some(Reverse((ts, ..))) = self.held.peek() {
            if ts.saturating_add(window) > self.watermark {
                break;
            }
            let Some(Reverse((_, _, _, line))) = self.held.pop() else {
                break;
            };
            out.push_line(&line)?;
        }
        Ok(())
    }
}

/// How the scoring loop treats a batch's alerts.
pub(super) struct ScoreContext<'a> {
    /// Ask the model what drove each alert's score.
    pub explain: bool,
    /// At most one explained alert per model and host pair in this much packet time
    /// (0: every alert), see [`ExplainLimiter`].
    pub explain_interval_ns: u64,
    /// Keep every sample's latency.
    pub record_latency: bool,
    pub alert: AlertContext<'a>,
}

/// What scoring one batch did.
#[derive(Default)]
pub(super) struct Scored {
    pub samples: u64,
    pub alerts: u64,
    /// Each sample's seconds from completion to its verdict (with
    /// `record_latency` only).
    pub latencies: Vec<f64>,
}

/// Scores one model's pending samples and queues their alerts.
#[allow(clippy::too_many_arguments)]
pub(super) fn score_pending(
    gpu: &Gpu,
    mi: usize,
    scorer: &mut dyn Scorer,
    file: &str,
    stream: &StreamSpec,
    p: &mut Pending,
    reorder: &mut Reorder,
    cx: &ScoreContext,
) -> Result<Scored> {
    let n = p.items.len();
    if n == 0 {
        return Ok(Scored::default());
    }
    let kind = stream.kind();
    let len = stream.sample_len();
    let flow_l = match stream {
        StreamSpec::Flows(f) => f.l,
        StreamSpec::Images(_) => 0,
    };
    let scores = scorer.score(gpu, &p.data, n)?;
    let thr = scorer.threshold();
    let mut out = Scored {
        samples: n as u64,
        ..Default::default()
    };
    let alerted: Vec<usize> = (0..n).filter(|&i| scores[i] as f64 > thr).collect();
    // One pass explains the batch's alerts the limiter admits.
    let chosen: Vec<usize> = if cx.explain {
        alerted
            .iter()
            .copied()
            .filter(|&i| p.explained.admit(&p.items[i].meta, cx.explain_interval_ns))
            .collect()
    } else {
        Vec::new()
    };
    let mut explained = vec![None; n];
    if !chosen.is_empty() {
        let mut data = Vec::with_capacity(chosen.len() * len);
        for &i in &chosen {
            data.extend_from_slice(&p.data[i * len..(i + 1) * len]);
        }
        let e = scorer
            .explain_many(gpu, &data, chosen.len())
            .context("explaining alerts")?;
        for (&i, e) in chosen.iter().zip(e) {
            explained[i] = e;
        }
    }
    let sig = scorer.signature();
    for &i in &alerted {
        let ex = &mut explained[i];
        let item = &p.items[i];
        let sc = scores[i] as f64;
        let data = &p.data[i * len..(i + 1) * len];
        let model = AlertModel {
            kind: scorer.kind(),
            file,
            signature_id: sig.signature_id,
            signature: sig.text.clone(),
            threshold: thr,
        };
        let sample = AlertSample {
            kind,
            data,
            meta: &item.meta,
            rows: &item.rows,
            link: item.link,
            flow_l,
        };
        let ev = alert_event(&model, &sample, sc, ex.take().as_ref(), &cx.alert);
        let line = serde_json::to_string(&ev).context("formatting an alert")?;
        reorder
            .held
            .push(Reverse((item.meta.last_ts_ns, item.seq, mi, line)));
        out.alerts += 1;
    }
    if cx.record_latency {
        let t = Instant::now();
        out.latencies
            .extend(p.items.iter().map(|x| (t - x.t).as_secs_f64()));
    }
    p.data.clear();
    p.items.clear();
    p.oldest = None;
    Ok(out)
}
