//! `gpu-nids detect` and `bench detect`: flags → the detect pipeline.

use std::path::PathBuf;
use std::sync::atomic::AtomicBool;
use std::sync::Arc;
use std::time::Duration;

use anyhow::{bail, Context, Result};
use clap::Args;

use super::gpu::GpuArgs;
use crate::detect::eve::EveWriter;
use crate::detect::pipeline::{self, Model, PipelineOptions, Source, Summary};
use crate::detect::{live, load_models, parse_duration, parse_finite, scorer};
use crate::ingest::{CaptureReader, InputSource};

#[derive(Args, Debug)]
#[command(
    after_help = "Examples:\n  gpu-nids detect -m vae.safetensors -r capture.pcap -o - 'not port 22'\n  tcpdump -w - -i eth0 | gpu-nids detect -m vae.safetensors -r - -l /var/log/gpu-nids\n  gpu-nids detect -m vae.safetensors -i eth0 -l /var/log/gpu-nids tcp"
)]
pub struct DetectArgs {
    /// Trained checkpoint (.safetensors); repeat to run several models over one pass of the packets.
    #[arg(short = 'm', long = "model", required = true)]
    pub models: Vec<PathBuf>,
    /// Read packets from a pcap or pcapng file, or `-` for standard input.
    #[arg(
        short = 'r',
        long = "read",
        conflicts_with = "interface",
        required_unless_present = "interface"
    )]
    pub read: Option<PathBuf>,
    /// Capture live from this interface (promiscuous; needs root or CAP_NET_RAW).
    #[arg(short = 'i', long = "interface")]
    pub interface: Option<String>,
    /// BPF filter expression, as tcpdump takes it (e.g. `tcp port 80`); live, it runs in the kernel.
    #[arg(trailing_var_arg = true, allow_hyphen_values = false)]
    pub filter: Vec<String>,
    /// Log directory: alerts and stats are appended to LOGDIR/eve.json.
    #[arg(short = 'l', long = "log-dir", conflicts_with = "output")]
    pub log_dir: Option<PathBuf>,
    /// EVE output: `-` for standard output (the default without -l), or a file to append to.
    #[arg(short = 'o', long = "output")]
    pub output: Option<String>,
    /// Largest GPU batch.
    #[arg(long, default_value_t = 256)]
    pub batch: usize,
    /// Launch a batch after at most this long (wall time) even if it is not full.
    #[arg(long, default_value = "100ms", value_parser = parse_duration)]
    pub max_latency: Duration,
    /// Score a pair's or flow's partial sample after this much packet time without packets.
    #[arg(long, default_value = "10s", value_parser = parse_duration)]
    pub idle_timeout: Duration,
    /// Write an `event_type: "stats"` line this often (0 = only at the end).
    #[arg(long, default_value = "10s", value_parser = parse_duration)]
    pub stats_interval: Duration,
    /// Alert threshold overriding the checkpoint's: once for all models, or once per -m in order.
    #[arg(long, value_parser = parse_finite)]
    pub threshold: Vec<f64>,
    /// Live capture: bytes kept per packet.
    #[arg(long, default_value_t = 65535)]
    pub snaplen: i32,
    /// Leave the explanation (`gpu_nids_fields`, `gpu_nids_packets`) out of alerts: saves a forward pass per alert.
    #[arg(long)]
    pub no_explain: bool,
    /// Explain at most one alert per model and host pair in this much packet time (0 = every alert); the pair's other alerts in it carry no explanation. A flood's hundreds of alerts would each cost DOC-IDS dozens of forward passes.
    #[arg(long, default_value = "10s", value_parser = parse_duration)]
    pub explain_interval: Duration,
    /// Write IPv6 addresses compressed (`2001:db8::1`) instead of in full, as Suricata's `ipv6-compress: yes`.
    #[arg(long)]
    pub ipv6_compress: bool,
    /// Hold alerts this long (packet time) to write them in timestamp order [default: with -r FILE, the idle timeout plus an eighth; stdin and live: 0, in the order samples complete].
    #[arg(long, value_parser = parse_duration)]
    pub reorder_window: Option<Duration>,
    /// No summary on stderr.
    #[arg(short, long)]
    pub quiet: bool,
    #[command(flatten)]
    pub gpu: GpuArgs,
}

fn print_summary(s: &Summary, models: &[Model]) {
    eprintln!(
        "detect: {} packets ({} read{}{}), {} samples, {:.2}s{}",
        s.packets,
        s.packets_read,
        if s.filtered_out > 0 {
            format!(", {} filtered out", s.filtered_out)
        } else {
            String::new()
        },
        if s.kernel_drops > 0 {
            format!(", {} dropped by the kernel", s.kernel_drops)
        } else {
            String::new()
        },
        s.samples_built,
        s.wall_s,
        if s.stopped_by_signal {
            ", stopped by signal"
        } else {
            ""
        }
    );
    for (m, ms) in models.iter().zip(&s.models) {
        eprintln!(
            "  {} ({}): {} samples scored, {} alerts (threshold {:.4})",
            ms.kind,
            m.file,
            ms.samples,
            ms.alerts,
            m.scorer.threshold()
        );
    }
}

/// `--reorder-window`, or its default: a file is read faster than packet
/// time passes, so holding alerts until they can be written in timestamp
/// order costs it nothing; on stdin or a live interface the hold would
/// delay every alert, so they go out as samples complete.
fn reorder_window(a: &DetectArgs) -> u64 {
    match (a.reorder_window, &a.read) {
        (Some(w), _) => w.as_nanos() as u64,
        (None, Some(p)) if p.as_os_str() != "-" => {
            crate::detect::samples::ordering_window(a.idle_timeout.as_nanos() as u64)
        }
        _ => 0,
    }
}

pub fn run_detect(a: &DetectArgs) -> Result<()> {
    let stop = Arc::new(AtomicBool::new(false));
    for sig in [signal_hook::consts::SIGINT, signal_hook::consts::SIGTERM] {
        // A second signal while draining ends the process at once.
        signal_hook::flag::register_conditional_shutdown(sig, 1, stop.clone())
            .context("signal handler")?;
        signal_hook::flag::register(sig, stop.clone()).context("signal handler")?;
    }
    let filter = Some(a.filter.join(" ")).filter(|f| !f.trim().is_empty());
    if let Some(f) = &filter {
        crate::detect::capture::check_filter(f)?;
    }
    if a.batch == 0 {
        bail!("--batch must be at least 1");
    }
    if let Some(r) = a.read.as_ref().filter(|r| r.as_os_str() != "-") {
        let eve = match (&a.log_dir, a.output.as_deref()) {
            (Some(d), _) => Some(d.join("eve.json")),
            (None, Some(f)) if f != "-" => Some(std::path::PathBuf::from(f)),
            _ => None,
        };
        if let Some(o) = eve {
            crate::util::output::check_not_input(&o, std::slice::from_ref(r))?;
        }
    }
    let mut out = match (&a.log_dir, a.output.as_deref()) {
        (Some(d), _) => {
            let p = d.join("eve.json");
            EveWriter::append(&p).with_context(|| format!("opening {}", p.display()))?
        }
        (None, None | Some("-")) => EveWriter::stdout(),
        (None, Some(f)) => {
            EveWriter::append(std::path::Path::new(f)).with_context(|| format!("opening {f}"))?
        }
    };
    let gpu = a.gpu.open()?;
    let mut models = load_models(&gpu, &a.models, &a.threshold)?;
    let source = match (&a.read, &a.interface) {
        (Some(p), _) => {
            let input = if p.as_os_str() == "-" {
                InputSource::Stdin
            } else {
                InputSource::File(p.clone())
            };
            Source::Capture(Box::new(CaptureReader::open(&input)?))
        }
        (None, Some(i)) => {
            let l = live::LiveCapture::open(i, filter.as_deref(), a.snaplen)?;
            if !a.quiet {
                eprintln!(
                    "detect: capturing on {i}{}",
                    filter
                        .as_deref()
                        .map_or(String::new(), |f| format!(" (filter: {f})"))
                );
            }
            Source::Live(l)
        }
        (None, None) => bail!("give -r FILE, -r - or -i IFACE"),
    };
    let opts = PipelineOptions {
        batch: a.batch,
        max_latency: a.max_latency,
        idle_timeout_ns: a.idle_timeout.as_nanos() as u64,
        stats_interval: Some(a.stats_interval).filter(|d| !d.is_zero()),
        // Live, the kernel already applies the filter.
        filter: if a.read.is_some() { filter } else { None },
        stop,
        iface: a.interface.clone(),
        ipv6_compress: a.ipv6_compress,
        explain: !a.no_explain,
        explain_interval_ns: a.explain_interval.as_nanos() as u64,
        reorder_window_ns: reorder_window(a),
        ..PipelineOptions::default()
    };
    if !a.quiet {
        if let Some(p) = &a.read {
            eprintln!(
                "detect: reading {}",
                if p.as_os_str() == "-" {
                    "<stdin>".into()
                } else {
                    p.display().to_string()
                }
            );
        }
    }
    let s = pipeline::run(&gpu, &mut models, source, &opts, &mut out)?;
    if !a.quiet {
        print_summary(&s, &models);
    }
    if let Some(e) = s.input_error {
        bail!("input ended early: {e} (every sample built before it was scored and its alerts written)");
    }
    Ok(())
}

#[derive(Args, Debug)]
pub struct BenchDetectArgs {
    /// Capture to run through the detector (read once first so it sits in the page cache).
    pub file: PathBuf,
    /// Checkpoints to run (default: one untrained VAE, which costs the same per sample).
    #[arg(short = 'm', long = "model")]
    pub models: Vec<PathBuf>,
    #[arg(long, default_value_t = 256)]
    pub batch: usize,
    #[arg(long, default_value = "100ms", value_parser = parse_duration)]
    pub max_latency: Duration,
    #[arg(long, default_value = "10s", value_parser = parse_duration)]
    pub idle_timeout: Duration,
    /// Feed packets at this rate (packets/s) instead of as fast as possible, to measure latency below saturation.
    #[arg(long)]
    pub rate: Option<f64>,
    /// Alert threshold override (default for the untrained VAE: 0, every sample alerts, so alert output is in the cost).
    #[arg(long, value_parser = parse_finite)]
    pub threshold: Vec<f64>,
    /// No model: image and flow samples are built and every one "alerts" (EVE formatted), scored by nothing, to measure the pipeline's own ceiling.
    #[arg(long, conflicts_with = "models")]
    pub pipeline_only: bool,
    #[command(flatten)]
    pub gpu: GpuArgs,
}

fn percentile(sorted: &[f64], q: f64) -> f64 {
    if sorted.is_empty() {
        return f64::NAN;
    }
    let i = ((sorted.len() - 1) as f64 * q).round() as usize;
    sorted[i.min(sorted.len() - 1)]
}

pub fn run_bench_detect(a: &BenchDetectArgs) -> Result<()> {
    let bytes = std::fs::read(&a.file).with_context(|| format!("reading {}", a.file.display()))?;
    let size = bytes.len();
    drop(bytes);
    let gpu = a.gpu.open()?;
    let mut models = if a.pipeline_only {
        [
            scorer::StreamSpec::Images(Default::default()),
            scorer::StreamSpec::Flows(Default::default()),
        ]
        .into_iter()
        .map(|stream| Model {
            scorer: Box::new(scorer::NullScorer { stream }),
            file: "(none)".into(),
        })
        .collect()
    } else if a.models.is_empty() {
        use crate::models::{registry::Loaded, vae, SampleSpec};
        let vae = vae::Vae::from_host(&gpu, &vae::init_params(0))?;
        let vae = Loaded::new(vae, SampleSpec::Images(Default::default()), None);
        let t = a.threshold.first().copied().unwrap_or(0.0);
        vec![Model {
            scorer: Box::new(scorer::ModelScorer::new(&gpu, Box::new(vae), t)?),
            file: "(untrained VAE)".into(),
        }]
    } else {
        load_models(&gpu, &a.models, &a.threshold)?
    };
    let reader = CaptureReader::open(&InputSource::File(a.file.clone()))?;
    let opts = PipelineOptions {
        batch: a.batch,
        max_latency: a.max_latency,
        idle_timeout_ns: a.idle_timeout.as_nanos() as u64,
        rate_pps: a.rate,
        record_latency: true,
        final_stats: false,
        ..PipelineOptions::default()
    };
    let mut out = EveWriter::sink();
    let s = pipeline::run(
        &gpu,
        &mut models,
        Source::Capture(Box::new(reader)),
        &opts,
        &mut out,
    )?;
    if let Some(e) = &s.input_error {
        bail!("{e}");
    }
    println!(
        "bench detect: {} ({:.1} MB, {} packets) on {} ({:?}), batch {}, max latency {:?}{}",
        a.file.display(),
        size as f64 / 1e6,
        s.packets,
        gpu.info.name,
        gpu.info.backend,
        a.batch,
        a.max_latency,
        a.rate
            .map_or(String::new(), |r| format!(", paced at {r} packets/s"))
    );
    println!(
        "end to end: {:.0} packets/s, {:.0} samples/s ({} samples in {:.3} s)",
        s.packets as f64 / s.wall_s,
        s.samples_built as f64 / s.wall_s,
        s.samples_built,
        s.wall_s
    );
    for (m, ms) in models.iter().zip(&s.models) {
        let mut l = ms.latencies.clone();
        l.sort_by(f64::total_cmp);
        println!(
            "  {} ({}): {} samples in {} batches, {} alerts; alert latency p50 {:.1} ms, p99 {:.1} ms, max {:.1} ms",
            ms.kind,
            m.file,
            ms.samples,
            ms.batches,
            ms.alerts,
            percentile(&l, 0.5) * 1e3,
            percentile(&l, 0.99) * 1e3,
            l.last().copied().unwrap_or(f64::NAN) * 1e3
        );
    }
    Ok(())
}
