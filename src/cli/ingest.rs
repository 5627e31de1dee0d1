//! `gpu-nids ingest` and `bench ingest`.

use std::io::Write;
use std::path::{Path, PathBuf};
use std::time::Instant;

use anyhow::{bail, Context, Result};

use crate::ingest::dataset::{DatasetWriter, Header};
use crate::ingest::{
    expand_inputs, ingest, split::Side, Builder, CaptureReader, ClassSource, IngestOptions,
    InputSource, LabelRules, NameTable, PacketLabel, ParsedPacket, SampleKind, SplitOptions,
};

#[derive(Clone, Copy, Debug, PartialEq, Eq, clap::ValueEnum)]
pub enum PairMode {
    /// A→B and B→A are two groups.
    Directional,
    /// A→B and B→A share one group.
    Undirected,
}

#[derive(clap::Args, Debug, Clone)]
pub struct IngestArgs {
    /// Sample kind: 64×64 pair images or n·l-byte flow samples.
    #[arg(long, value_enum)]
    pub kind: SampleKind,
    /// Captures: files, directories (every capture below, in path order), or `-` for stdin.
    #[arg(required = true)]
    pub inputs: Vec<PathBuf>,
    /// Dataset directory to write (replaced atomically if it holds a dataset).
    #[arg(short, long)]
    pub output: PathBuf,
    /// Images: group by directed (src, dst) or by unordered address pair.
    #[arg(long, value_enum, default_value = "directional")]
    pub pair: PairMode,
    /// Images: keep a final partial image with at least this many packets.
    #[arg(long, default_value_t = 8)]
    pub min_packets: usize,
    /// Images: zero IP address bytes.
    #[arg(long)]
    pub mask_addresses: bool,
    /// Flows: packets per sample (n).
    #[arg(long = "flow-packets", default_value_t = 4)]
    pub flow_packets: usize,
    /// Flows: bytes per packet from the start of the frame (l).
    #[arg(long = "flow-bytes", default_value_t = 80)]
    pub flow_bytes: usize,
    /// Flows: keep real MAC/IP addresses (anonymised by default).
    #[arg(long)]
    pub keep_addresses: bool,
    /// Label rules, CSV as assets/demo/labels.csv (file, attacker_ips, [category, attack, start, end]).
    #[arg(long)]
    pub labels: Option<PathBuf>,
    /// Class name for every input (reference sets).
    #[arg(long, conflicts_with = "class_from_filename")]
    pub class: Option<String>,
    /// Class name of each input = its file stem (Cridex.pcap → Cridex).
    #[arg(long)]
    pub class_from_filename: bool,
    /// Keep one side of the docs/MODELS.md §5 split (per capture, by flow start time).
    #[arg(long, value_enum)]
    pub split: Option<Side>,
    /// Fraction of each capture's packets (by count, in time order) before the split time.
    #[arg(long, default_value_t = 0.7)]
    pub split_frac: f64,
    /// Cap on open pairs/flows (default: about 1 GiB worth).
    #[arg(long)]
    pub max_groups: Option<usize>,
    /// No progress bar or summary.
    #[arg(short, long)]
    pub quiet: bool,
}

impl IngestArgs {
    pub fn options(&self) -> Result<IngestOptions> {
        let mut o = IngestOptions::new(self.kind);
        if !(1..=64).contains(&self.min_packets) {
            bail!(
                "--min-packets must be between 1 and 64, got {}",
                self.min_packets
            );
        }
        if self.flow_packets == 0
            || self.flow_bytes == 0
            || self
                .flow_packets
                .checked_mul(self.flow_bytes)
                .is_none_or(|nl| nl > 1 << 20)
        {
            bail!("--flow-packets and --flow-bytes must be positive (and n·l at most 1 MiB)");
        }
        if !(self.split_frac > 0.0 && self.split_frac < 1.0) {
            bail!(
                "--split-frac must be strictly between 0 and 1, got {}",
                self.split_frac
            );
        }
        o.image.undirected = self.pair == PairMode::Undirected;
        o.image.min_packets = self.min_packets;
        o.image.mask_addresses = self.mask_addresses;
        o.flow.n = self.flow_packets;
        o.flow.l = self.flow_bytes;
        o.flow.anonymise = !self.keep_addresses;
        o.flow.max_groups = crate::ingest::flow::default_max_groups_flows(o.flow.n, o.flow.l);
        if let Some(m) = self.max_groups {
            if m == 0 {
                bail!("--max-groups must be positive");
            }
            o.image.max_groups = m;
            o.flow.max_groups = m;
        }
        if let Some(p) = &self.labels {
            o.labels = Some(LabelRules::load(p)?);
            o.labels_file = Some(p.display().to_string());
        }
        o.class = match (&self.class, self.class_from_filename) {
            (Some(c), _) => ClassSource::Fixed(c.clone()),
            (None, true) => ClassSource::FileStem,
            (None, false) => ClassSource::Rules,
        };
        o.split = self.split.map(|side| SplitOptions {
            side,
            frac: self.split_frac,
        });
        o.progress = !self.quiet;
        o.print_warnings = true;
        Ok(o)
    }
}

/// Removes a half-written dataset directory when SIGINT, SIGTERM or SIGHUP
/// ends the run (their default action would leave it behind), then exits
/// as the signal would have. Dropped, it stands down.
struct RemoveOnSignal {
    /// The directory to remove; the main thread holds the lock while it
    /// creates the directory, so that a signal meanwhile waits for it.
    tmp: std::sync::Arc<std::sync::Mutex<Option<PathBuf>>>,
    handle: signal_hook::iterator::Handle,
    thread: Option<std::thread::JoinHandle<()>>,
}

impl RemoveOnSignal {
    fn install() -> Result<Self> {
        use signal_hook::consts::{SIGHUP, SIGINT, SIGTERM};
        let mut signals = signal_hook::iterator::Signals::new([SIGINT, SIGTERM, SIGHUP])
            .context("installing signal handlers")?;
        let handle = signals.handle();
        let tmp = std::sync::Arc::new(std::sync::Mutex::new(None::<PathBuf>));
        let t = tmp.clone();
        let thread = std::thread::spawn(move || {
            if let Some(sig) = signals.forever().next() {
                let guard = t.lock().unwrap_or_else(|e| e.into_inner());
                if let Some(p) = guard.as_ref() {
                    let _ = std::fs::remove_dir_all(p);
                }
                eprintln!("interrupted by signal {sig}: the partial dataset was removed");
                std::process::exit(128 + sig);
            }
        });
        Ok(RemoveOnSignal {
            tmp,
            handle,
            thread: Some(thread),
        })
    }
}

impl Drop for RemoveOnSignal {
    fn drop(&mut self) {
        self.handle.close();
        if let Some(t) = self.thread.take() {
            let _ = t.join();
        }
    }
}

pub fn run_ingest(a: &IngestArgs) -> Result<()> {
    let opts = a.options()?;
    let inputs = expand_inputs(&a.inputs)?;
    if inputs.is_empty() {
        bail!("no captures found in {:?}", a.inputs);
    }
    let started = Instant::now();
    let cleanup = RemoveOnSignal::install()?;
    let mut writer = {
        let mut tmp = cleanup.tmp.lock().unwrap_or_else(|e| e.into_inner());
        let w = DatasetWriter::create(&a.output, opts.sample_len())?;
        *tmp = Some(w.temp_dir().to_path_buf());
        w
    };
    let mut names = NameTable::new();
    let reports = ingest(&inputs, &opts, &mut names, &mut writer)?;
    let header = Header::new(
        opts.kind,
        opts.sample_shape(),
        writer.labels(),
        writer.class_ids(),
        names.names().to_vec(),
        reports,
        serde_json::to_value(&opts)?,
    );
    writer.finish(&header)?;
    if !a.quiet {
        let packets: u64 = header.inputs.iter().map(|r| r.packets).sum();
        let secs = started.elapsed().as_secs_f64();
        eprintln!(
            "wrote {}: {} {} (benign {}, malicious {}) from {} capture(s), {} packets in {:.2} s",
            a.output.display(),
            header.count,
            match opts.kind {
                SampleKind::Images => "images",
                SampleKind::Flows => "flow samples",
            },
            header.labels.benign,
            header.labels.malicious,
            header.inputs.len(),
            packets,
            secs
        );
    }
    Ok(())
}

#[derive(clap::Args, Debug, Clone)]
pub struct BenchIngestArgs {
    /// Capture to measure (read once first so it sits in the page cache).
    pub file: Option<PathBuf>,
    /// Instead: write a SYN-flood capture of N one-packet flows to -o and exit.
    #[arg(long)]
    pub gen_flood: Option<u64>,
    /// Output for --gen-flood.
    #[arg(short, long)]
    pub output: Option<PathBuf>,
    /// Timed runs per measurement (the best is reported).
    #[arg(long, default_value_t = 3)]
    pub repeat: usize,
    /// Cap on open pairs/flows (default: about 1 GiB worth).
    #[arg(long)]
    pub max_groups: Option<usize>,
}

pub fn run_bench_ingest(a: &BenchIngestArgs) -> Result<()> {
    if let Some(n) = a.gen_flood {
        let out = a
            .output
            .as_ref()
            .context("--gen-flood needs -o FILE.pcap")?;
        let bytes = write_syn_flood(out, n)?;
        println!(
            "wrote {}: {n} packets, {n} one-packet flows, {bytes} bytes",
            out.display()
        );
        return Ok(());
    }
    let file = a
        .file
        .as_ref()
        .context("give a capture FILE (or --gen-flood N -o FILE)")?;
    let input = InputSource::File(file.clone());
    let size = std::fs::metadata(file)
        .with_context(|| file.display().to_string())?
        .len();
    // Warm the page cache.
    std::fs::read(file).with_context(|| file.display().to_string())?;
    let repeat = a.repeat.max(1);
    println!(
        "file {} ({} bytes), best of {repeat}, single thread",
        file.display(),
        size
    );

    let (packets, t_read) = best(repeat, || read_only(&input))?;
    report("read only", packets, size, t_read);
    let mut ours = 0.0;
    for kind in [SampleKind::Images, SampleKind::Flows] {
        let mut opts = IngestOptions::new(kind);
        if let Some(m) = a.max_groups {
            opts.image.max_groups = m;
            opts.flow.max_groups = m;
        }
        let mut samples = 0;
        let (p, t) = best(repeat, || {
            let (p, s) = build_only(&input, &opts)?;
            samples = s;
            Ok(p)
        })?;
        report(
            &format!("{kind:?} ({samples} samples)").to_lowercase(),
            p,
            size,
            t,
        );
        if kind == SampleKind::Images {
            ours = p as f64 / t;
        }
    }
    match external_reader(file, repeat) {
        Some((tool, t)) => {
            report(&format!("{tool} -r FILE -w /dev/null"), packets, size, t);
            println!("ratio images / {tool}: {:.2}×", ours / (packets as f64 / t));
        }
        None => println!("tcpdump/tshark not found: no external comparison"),
    }
    if let Some(hwm) = peak_rss_kib() {
        println!("peak RSS of this process: {:.1} MiB", hwm as f64 / 1024.0);
    }
    Ok(())
}

fn report(what: &str, packets: u64, bytes: u64, secs: f64) {
    println!(
        "{what:<40} {:>10.3} M packets/s {:>9.1} MB/s  ({packets} packets in {:.3} s)",
        packets as f64 / secs / 1e6,
        bytes as f64 / secs / 1e6,
        secs
    );
}

fn best(repeat: usize, mut f: impl FnMut() -> Result<u64>) -> Result<(u64, f64)> {
    let mut t = f64::INFINITY;
    let mut n = 0;
    for _ in 0..repeat {
        let s = Instant::now();
        n = f()?;
        t = t.min(s.elapsed().as_secs_f64());
    }
    Ok((n, t.max(1e-9)))
}

fn read_only(input: &InputSource) -> Result<u64> {
    let mut r = CaptureReader::open(input)?;
    let mut n = 0u64;
    let mut sink = 0usize;
    while let Some(f) = r.next_frame()? {
        n += 1;
        sink = sink.wrapping_add(f.data.len());
    }
    std::hint::black_box(sink);
    Ok(n)
}

/// Reader → parser → builder, samples counted and dropped (what ingest
/// costs before the disk).
fn build_only(input: &InputSource, opts: &IngestOptions) -> Result<(u64, u64)> {
    let mut r = CaptureReader::open(input)?;
    let mut b = Builder::new(opts, 0);
    let mut out = Vec::new();
    let (mut n, mut samples) = (0u64, 0u64);
    let label = PacketLabel::default();
    while let Some(f) = r.next_frame()? {
        n += 1;
        b.push(&ParsedPacket::parse(&f), label, &mut out);
        samples += out.len() as u64;
        out.clear();
    }
    b.finish(&mut out);
    samples += out.len() as u64;
    Ok((n, samples))
}

fn external_reader(file: &Path, repeat: usize) -> Option<(&'static str, f64)> {
    for tool in ["tcpdump", "tshark"] {
        let mut t = f64::INFINITY;
        for _ in 0..repeat {
            let s = Instant::now();
            let ok = std::process::Command::new(tool)
                .arg("-r")
                .arg(file)
                .args(["-w", "/dev/null"])
                .stdout(std::process::Stdio::null())
                .stderr(std::process::Stdio::null())
                .status()
                .map(|st| st.success())
                .unwrap_or(false);
            if !ok {
                t = f64::INFINITY;
                break;
            }
            t = t.min(s.elapsed().as_secs_f64());
        }
        if t.is_finite() {
            return Some((tool, t));
        }
    }
    None
}

/// VmHWM from /proc (Linux); `None` elsewhere.
pub fn peak_rss_kib() -> Option<u64> {
    let s = std::fs::read_to_string("/proc/self/status").ok()?;
    let l = s.lines().find(|l| l.starts_with("VmHWM:"))?;
    l.split_whitespace().nth(1)?.parse().ok()
}

/// A classic pcap of `n` TCP SYNs, each from its own source address and
/// port to one victim: n one-packet flows and n one-packet pairs.
pub fn write_syn_flood(path: &Path, n: u64) -> Result<u64> {
    let f = std::fs::File::create(path).with_context(|| path.display().to_string())?;
    let mut w = std::io::BufWriter::with_capacity(1 << 20, f);
    let mut hdr = Vec::with_capacity(24);
    hdr.extend_from_slice(&0xa1b2_c3d4u32.to_le_bytes());
    hdr.extend_from_slice(&2u16.to_le_bytes());
    hdr.extend_from_slice(&4u16.to_le_bytes());
    hdr.extend_from_slice(&[0; 8]);
    hdr.extend_from_slice(&65535u32.to_le_bytes());
    hdr.extend_from_slice(&1u32.to_le_bytes());
    w.write_all(&hdr)?;
    let mut frame = [0u8; 54];
    frame[0..6].copy_from_slice(&[0x02, 0, 0, 0, 0, 1]);
    frame[6..12].copy_from_slice(&[0x02, 0, 0, 0, 0, 2]);
    frame[12..14].copy_from_slice(&[0x08, 0x00]);
    let ip = &mut frame[14..34];
    ip[0] = 0x45;
    ip[2..4].copy_from_slice(&40u16.to_be_bytes());
    ip[8] = 64;
    ip[9] = 6;
    ip[16..20].copy_from_slice(&[192, 168, 50, 4]);
    let tcp = &mut frame[34..54];
    tcp[2..4].copy_from_slice(&80u16.to_be_bytes());
    tcp[12] = 0x50;
    tcp[13] = 0x02;
    tcp[14..16].copy_from_slice(&1024u16.to_be_bytes());
    let t0 = 1_700_000_000u64 * 1_000_000;
    for i in 0..n {
        // 10.0.0.0/8 holds 16.7 M sources; the port varies too so flows stay
        // distinct beyond that.
        let src = 0x0a00_0000u32 | (i as u32 & 0x00ff_ffff);
        frame[26..30].copy_from_slice(&src.to_be_bytes());
        frame[34..36].copy_from_slice(&(1024 + (i >> 24) as u16).to_be_bytes());
        frame[38..42].copy_from_slice(&(i as u32).to_be_bytes());
        let us = t0 + i; // 1 M packets/s
        let mut rec = [0u8; 16];
        rec[0..4].copy_from_slice(&((us / 1_000_000) as u32).to_le_bytes());
        rec[4..8].copy_from_slice(&((us % 1_000_000) as u32).to_le_bytes());
        rec[8..12].copy_from_slice(&54u32.to_le_bytes());
        rec[12..16].copy_from_slice(&54u32.to_le_bytes());
        w.write_all(&rec)?;
        w.write_all(&frame)?;
    }
    w.flush()?;
    Ok(24 + n * 70)
}
