//! The streaming detector: a capture thread, a sample-building thread and
//! the scoring loop (on the caller's thread, which owns the GPU), joined by
//! bounded channels so a fast source waits (or, live, the kernel drops and
//! counts) instead of queueing without bound.
//!
//! ```text
//! capture ──chunks of ≤256 packets──▶ builders ──samples──▶ batches ──▶ GPU ──▶ EVE lines
//!   (16 chunks in flight)              (16 sample chunks in flight)
//! ```
//!
//! Each stage has its module: [`super::capture`], [`super::samples`],
//! `batch` (scoring) and the EVE mapping in [`super::eve`]; this one holds
//! the options, the summary and the wiring.

use std::sync::atomic::{AtomicBool, AtomicU64, Ordering::Relaxed};
use std::sync::mpsc::{sync_channel, RecvTimeoutError};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use anyhow::{Context, Result};

use super::batch::{score_pending, Pending, PendingItem, Reorder, ScoreContext, Scored};
use super::capture::{capture, CaptureOptions, PacketChunk, PACKET_QUEUE};
use super::counters::Counters;
use super::eve::alert::AlertContext;
use super::eve::stats::stats_event;
use super::eve::EveWriter;
use super::samples::{build_samples, SampleChunk, SAMPLE_QUEUE};
use super::scorer::{Scorer, StreamSpec};
use crate::gpu::Gpu;

pub use super::capture::Source;

#[derive(Clone, Debug)]
pub struct PipelineOptions {
    /// Largest GPU batch.
    pub batch: usize,
    /// A sample waits at most this long (wall time) for its batch to fill.
    pub max_latency: Duration,
    /// Groups idle this long (packet time) are flushed.
    pub idle_timeout_ns: u64,
    /// `event_type: "stats"` lines this often; `None`: only the final one.
    pub stats_interval: Option<Duration>,
    /// BPF filter expression (files: applied per frame; live: in the kernel).
    pub filter: Option<String>,
    /// Set (by a signal handler or a test) to stop capture and drain.
    pub stop: Arc<AtomicBool>,
    /// Pace a file input at this many packets per second (benchmarks).
    pub rate_pps: Option<f64>,
    /// Keep every sample's latency (benchmarks).
    pub record_latency: bool,
    /// Ask the model what drove each alert's score (one more forward pass
    /// per alert for the VAE and autoencoders, several for DOC-IDS).
    pub explain: bool,
    /// At most one explained alert per model and host pair in this much packet time;
    /// 0: every alert.
    pub explain_interval_ns: u64,
    /// Interface name for `in_iface`.
    pub iface: Option<String>,
    /// Write a final stats line when the run ends.
    pub final_stats: bool,
    /// Write IPv6 addresses compressed (`::`), not in Suricata's default
    /// full form.
    pub ipv6_compress: bool,
    /// Hold alerts until the sample builder's packet clock has passed
    /// their timestamp by this much, and write them in timestamp order
    /// (docs/DETECT.md, "Order"); 0: in the order samples were completed.
    pub reorder_window_ns: u64,
}

impl Default for PipelineOptions {
    fn default() -> Self {
        PipelineOptions {
            batch: 256,
            max_latency: Duration::from_millis(100),
            idle_timeout_ns: 10_000_000_000,
            stats_interval: None,
            filter: None,
            stop: Arc::new(AtomicBool::new(false)),
            rate_pps: None,
            record_latency: false,
            explain: true,
            explain_interval_ns: 10_000_000_000,
            iface: None,
            final_stats: true,
            ipv6_compress: false,
            reorder_window_ns: 0,
        }
    }
}

/// Per model: what happened in a run.
#[derive(Clone, Debug, Default)]
pub struct ModelSummary {
    pub kind: String,
    pub samples: u64,
    pub alerts: u64,
    pub batches: u64,
    /// Seconds from the packet that completed a sample (or the flush that
    /// emitted it) being read to its verdict's EVE lines being written;
    /// kept only with `record_latency`.
    pub latencies: Vec<f64>,
}

#[derive(Clone, Debug, Default)]
pub struct Summary {
    pub packets: u64,
    pub packets_read: u64,
    pub bytes: u64,
    pub samples_built: u64,
    pub kernel_drops: u64,
    pub invalid: u64,
    pub models: Vec<ModelSummary>,
    pub wall_s: f64,
    /// A capture error that ended the input early (after which the run
    /// still flushed and scored everything).
    pub input_error: Option<String>,
    pub stopped_by_signal: bool,
    /// Packets the BPF filter left out (files; live, the kernel drops them).
    pub filtered_out: u64,
}

/// Every model's alerts.
fn alerts(summ: &[ModelSummary]) -> u64 {
    summ.iter().map(|s| s.alerts).sum()
}

impl ModelSummary {
    /// Counts one scored batch.
    fn add(&mut self, b: Scored) {
        if b.samples == 0 {
            return;
        }
        self.samples += b.samples;
        self.alerts += b.alerts;
        self.batches += 1;
        self.latencies.extend(b.latencies);
    }
}

/// A model in a run: its scorer and the checkpoint it came from.
pub struct Model {
    pub scorer: Box<dyn Scorer>,
    pub file: String,
}

/// Runs the detector until the input ends or `opts.stop` is set: every
/// sample built is scored and every alert written before it returns.
pub fn run(
    gpu: &Gpu,
    models: &mut [Model],
    source: Source,
    opts: &PipelineOptions,
    out: &mut EveWriter,
) -> Result<Summary> {
    anyhow::ensure!(!models.is_empty(), "no model to run");
    let mut streams: Vec<StreamSpec> = Vec::new();
    let mut model_stream = Vec::new();
    for m in models.iter() {
        let s = m.scorer.stream();
        let i = match streams.iter().position(|x| *x == s) {
            Some(i) => i,
            None => {
                streams.push(s);
                streams.len() - 1
            }
        };
        model_stream.push(i);
    }
    let counters = Arc::new(Counters::default());
    let err = Arc::new(Mutex::new(None::<String>));
    let (ptx, prx) = sync_channel::<PacketChunk>(PACKET_QUEUE);
    let (stx, srx) = sync_channel::<SampleChunk>(SAMPLE_QUEUE);
    let live = matches!(source, Source::Live(_));
    let started = Instant::now();
    {
        let o = CaptureOptions {
            filter: opts.filter.clone(),
            rate_pps: opts.rate_pps,
            stop: opts.stop.clone(),
        };
        let (c, e) = (counters.clone(), err.clone());
        // Not joined: a capture blocked reading a silent pipe must not
        // keep a stopped detector alive; it ends when its channel closes
        // or the process exits.
        std::thread::Builder::new()
            .name("gpu-nids-capture".into())
            .spawn(move || capture(source, &o, ptx, &c, &e))
            .context("starting the capture thread")?;
    }
    let builder = {
        let (st, c) = (streams.clone(), counters.clone());
        let (idle, stop) = (opts.idle_timeout_ns, opts.stop.clone());
        std::thread::Builder::new()
            .name("gpu-nids-build".into())
            .spawn(move || build_samples(st, idle, stop, live, prx, stx, c))
            .context("starting the sample thread")?
    };

    let mut pending: Vec<Pending> = models.iter().map(|_| Pending::default()).collect();
    let mut summ: Vec<ModelSummary> = models
        .iter()
        .map(|m| ModelSummary {
            kind: m.scorer.kind().to_string(),
            ..Default::default()
        })
        .collect();
    let cx = ScoreContext {
        explain: opts.explain,
        explain_interval_ns: opts.explain_interval_ns,
        record_latency: opts.record_latency,
        alert: AlertContext {
            iface: opts.iface.as_deref(),
            ipv6_compress: opts.ipv6_compress,
            live,
        },
    };
    let mut reorder = Reorder::default();
    // Samples received so far (their order numbers are 0..received).
    let mut received = 0u64;
    let batch = opts.batch.max(1);
    let mut next_stats = opts
        .stats_interval
        .filter(|d| !d.is_zero())
        .map(|d| started + d);
    let result = (|| -> Result<()> {
        loop {
            let now = Instant::now();
            let mut deadline = next_stats;
            for p in &pending {
                if let Some(o) = p.oldest {
                    let d = o + opts.max_latency;
                    deadline = Some(deadline.map_or(d, |x| x.min(d)));
                }
            }
            let wait = deadline.map_or(Duration::from_secs(3600), |d| {
                d.saturating_duration_since(now)
            });
            let done = match srx.recv_timeout(wait) {
                Ok(chunk) => {
                    counters.queue_samples.fetch_sub(1, Relaxed);
                    for s in chunk.samples {
                        received = received.max(s.seq + 1);
                        for mi in 0..models.len() {
                            if model_stream[mi] != s.stream {
                                continue;
                            }
                            let p = &mut pending[mi];
                            p.data.extend_from_slice(&s.data);
                            p.oldest.get_or_insert(s.t);
                            p.items.push(PendingItem {
                                seq: s.seq,
                                meta: s.meta,
                                rows: s.rows.clone(),
                                link: s.link,
                                t: s.t,
                            });
                            if p.items.len() >= batch {
                                let m = &mut models[mi];
                                summ[mi].add(score_pending(
                                    gpu,
                                    mi,
                                    m.scorer.as_mut(),
                                    &m.file,
                                    &streams[model_stream[mi]],
                                    p,
                                    &mut reorder,
                                    &cx,
                                )?);
                            }
                        }
                    }
                    reorder.marks.push_back((received, chunk.clock));
                    false
                }
                Err(RecvTimeoutError::Timeout) => false,
                Err(RecvTimeoutError::Disconnected) => true,
            };
            let now = Instant::now();
            for mi in 0..models.len() {
                if let Some(o) = pending[mi].oldest {
                    if done || now >= o + opts.max_latency {
                        let m = &mut models[mi];
                        summ[mi].add(score_pending(
                            gpu,
                            mi,
                            m.scorer.as_mut(),
                            &m.file,
                            &streams[model_stream[mi]],
                            &mut pending[mi],
                            &mut reorder,
                            &cx,
                        )?);
                    }
                }
            }
            // Every sample below the oldest one still pending has been
            // scored by every model.
            let scored = pending
                .iter()
                .filter_map(|p| p.items.first().map(|i| i.seq))
                .min()
                .unwrap_or(received);
            reorder.advance(scored);
            if done {
                reorder.watermark = u64::MAX;
            }
            reorder.release(opts.reorder_window_ns, out)?;
            out.flush_lines().context("writing alerts")?;
            if done {
                // The final stats line follows; a periodic one now would
                // only repeat it.
                return Ok(());
            }
            if let (Some(ns), Some(iv)) = (next_stats, opts.stats_interval) {
                if now >= ns {
                    out.push(&stats_event(&counters, alerts(&summ), live, started))?;
                    out.flush_lines()?;
                    next_stats = Some((ns + iv).max(now));
                }
            }
        }
    })();
    // On a scoring error the channels close and both threads wind down.
    drop(srx);
    let _ = builder.join();
    result?;
    if opts.final_stats {
        out.push(&stats_event(&counters, alerts(&summ), live, started))?;
        out.flush_lines()?;
    }
    let l = |a: &AtomicU64| a.load(Relaxed);
    let input_error = err.lock().unwrap_or_else(|p| p.into_inner()).clone();
    Ok(Summary {
        packets: l(&counters.packets),
        packets_read: l(&counters.packets_read),
        filtered_out: l(&counters.filtered_out),
        bytes: l(&counters.bytes),
        samples_built: l(&counters.samples_built),
        kernel_drops: l(&counters.kernel_drops),
        invalid: l(&counters.invalid),
        models: summ,
        wall_s: started.elapsed().as_secs_f64(),
        input_error,
        stopped_by_signal: opts.stop.load(Relaxed),
    })
}
