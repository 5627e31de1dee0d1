//! Command-line edge: parse, call the library, print. Errors become one line
//! on stderr and a non-zero exit code.

use anyhow::Result;
use clap::{Parser, Subcommand};
use gpu_nids::cli;

#[derive(Parser)]
#[command(
    name = "gpu-nids",
    version,
    about = "Packet-capture anomaly detectors (traffic-image VAE, DOC-IDS) trained and run on any GPU through wgpu",
    propagate_version = true
)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
    /// List every GPU adapter wgpu can see, its limits and features, and which one gpu-nids would use.
    Devices(gpu_nids::cli::gpu::DevicesArgs),
    /// Throughput benchmarks that print numbers (never pass/fail).
    #[command(subcommand)]
    Bench(BenchCommand),
    /// Turn captures into a dataset of pair images or flow samples (docs/MODELS.md §1, §3, §5).
    Ingest(gpu_nids::cli::ingest::IngestArgs),
    /// Print a dataset's header summary; --png N -o FILE draws samples.
    Inspect(gpu_nids::cli::inspect::InspectArgs),
    /// Train a detector on benign traffic (checkpoint written after every epoch).
    #[command(subcommand)]
    Train(TrainCommand),
    /// Score samples with a trained model: one line per sample (JSON lines or CSV).
    Score(cli::score::ScoreArgs),
    /// Evaluate a model on labelled test traffic: ROC-AUC, PR-AUC, per-attack table, pictures.
    Eval(cli::eval::EvalArgs),
    /// Run trained models over a capture file, stdin or a live interface; alerts as Suricata EVE JSON.
    Detect(gpu_nids::cli::detect::DetectArgs),
}

#[derive(Subcommand)]
enum TrainCommand {
    /// The traffic-image VAE (docs/MODELS.md §1-§2): 64×64 header images per address pair.
    Vae(cli::train::TrainVaeArgs),
    /// DOC-IDS (docs/MODELS.md §3-§4): conv feature extractor trained on a labelled reference set and the target's benign flows.
    DocIds(cli::train::TrainDocIdsArgs),
    /// Baseline dense autoencoder on flow samples (320→128→64→32→64→128→320).
    Ae(cli::train::TrainBaselineArgs),
    /// Baseline 1-D convolutional autoencoder on flow samples.
    ConvAe(cli::train::TrainBaselineArgs),
}

#[derive(Subcommand)]
enum BenchCommand {
    /// Tiled f32 matrix products (A·B, A·Bᵀ, Aᵀ·B): GFLOP/s per size on the chosen adapter.
    Matmul(gpu_nids::cli::gpu::BenchMatmulArgs),
    /// Ingest throughput (images, flows) against tcpdump on one capture; --gen-flood writes a flood capture.
    Ingest(gpu_nids::cli::ingest::BenchIngestArgs),
    /// Every kernel at the models' shapes (forward and backward): ms per call, GFLOP/s or GB/s.
    Ops(cli::bench::BenchOpsArgs),
    /// End-to-end detector throughput (packets/s, samples/s) and alert latency p50/p99 on one capture.
    Detect(gpu_nids::cli::detect::BenchDetectArgs),
    /// Training steps/s and samples/s of a model (--model vae|doc-ids|ae|conv-ae) on synthetic data.
    Train(cli::bench::BenchTrainArgs),
}

fn run(cli: Cli) -> Result<()> {
    match cli.command {
        Command::Devices(a) => gpu_nids::cli::gpu::devices(&a),
        Command::Bench(BenchCommand::Matmul(a)) => gpu_nids::cli::gpu::bench_matmul(&a),
        Command::Ingest(a) => gpu_nids::cli::ingest::run_ingest(&a),
        Command::Inspect(a) => gpu_nids::cli::inspect::run_inspect(&a),
        Command::Bench(BenchCommand::Ingest(a)) => gpu_nids::cli::ingest::run_bench_ingest(&a),
        Command::Bench(BenchCommand::Ops(a)) => cli::bench::bench_ops(&a),
        Command::Train(TrainCommand::Vae(a)) => cli::train::train_vae(&a),
        Command::Train(TrainCommand::DocIds(a)) => cli::train::train_doc_ids(&a),
        Command::Train(TrainCommand::Ae(a)) => {
            cli::train::train_baseline(gpu_nids::models::baselines::BaselineKind::Ae, &a)
        }
        Command::Train(TrainCommand::ConvAe(a)) => {
            cli::train::train_baseline(gpu_nids::models::baselines::BaselineKind::ConvAe, &a)
        }
        Command::Bench(BenchCommand::Train(a)) => cli::bench::bench_train(&a),
        Command::Score(a) => cli::score::score(&a),
        Command::Eval(a) => cli::eval::eval(&a),
        Command::Detect(a) => gpu_nids::cli::detect::run_detect(&a),
        Command::Bench(BenchCommand::Detect(a)) => gpu_nids::cli::detect::run_bench_detect(&a),
    }
}

/// Mesa's Vulkan drivers complain on every start without a private runtime directory
/// (common under sudo, cron and containers); give them one before any GPU code runs.
fn ensure_runtime_dir() {
    if std::env::var_os("XDG_RUNTIME_DIR").is_some_and(|d| std::path::Path::new(&d).is_dir()) {
        return;
    }
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt;
        let dir = std::env::temp_dir().join(format!("gpu-nids-xdg-{}", unsafe { libc::getuid() }));
        if std::fs::create_dir_all(&dir).is_ok()
            && std::fs::set_permissions(&dir, std::fs::Permissions::from_mode(0o700)).is_ok()
        {
            // Still single-threaded here, so changing the environment is sound.
            std::env::set_var("XDG_RUNTIME_DIR", &dir);
        }
    }
}

fn main() {
    ensure_runtime_dir();
    let cli = Cli::parse();
    if let Err(e) = run(cli) {
        eprintln!("error: {}", gpu_nids::util::error_line(&e));
        std::process::exit(1);
    }
}
