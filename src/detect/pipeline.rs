//! The streaming detector: a capture thread, a sample-building thread and
//! the scoring loop (on the caller's thread, which owns the GPU), joined by
//! bounded channels so a fast source waits (or, live, the kernel drops and
//! counts) instead of queueing without bound.
//!
//! ```text
//! capture ──chunks of ≤256 packets──▶ builders ──samples──▶ batches ──▶ GPU ──▶ EVE lines
//!   (16 chunks in flight)              (16 sample chunks in flight)
//! ```

use std::sync::atomic::{AtomicBool, AtomicU64, Ordering::Relaxed};
use std::sync::mpsc::{sync_channel, Receiver, RecvTimeoutError, SyncSender, TrySendError};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use anyhow::{Context, Result};

use super::community_id::community_id_v1;
use super::eve::{eve_timestamp, proto_name, AlertEvent, AlertInfo, EveWriter, GpuNidsInfo};
use super::scorer::{Scorer, StreamSpec};
use crate::gpu::Gpu;
use crate::ingest::flow::splitmix64;
use crate::ingest::parse::parse_ip;
use crate::ingest::{
    Builder, CaptureReader, FlowBuilder, Frame, ImageBuilder, LinkType, PacketLabel, ParsedPacket,
    SampleKind, SampleMeta,
};

const CHUNK_PACKETS: usize = 256;
const CHUNK_BYTES: usize = 1 << 20;
/// A partly filled chunk goes on after this long, so a slow source does
/// not hold packets back.
const CHUNK_AGE: Duration = Duration::from_millis(1);
const PACKET_QUEUE: usize = 16;
/// Below this many buffered bytes the reader may block on its next frame.
const STARVED: usize = 64 << 10;
const SAMPLE_QUEUE: usize = 16;
/// How often the threads look at the stop flag while idle.
const POLL: Duration = Duration::from_millis(20);

/// Where packets come from.
pub enum Source {
    /// A pcap/pcapng file or stdin, opened by the caller.
    Capture(Box<CaptureReader>),
    /// A live interface (libpcap).
    Live(super::live::LiveCapture),
}

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
    /// Interface name for `in_iface`.
    pub iface: Option<String>,
    /// Write a final stats line when the run ends.
    pub final_stats: bool,
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
            iface: None,
            final_stats: true,
        }
    }
}

/// Counters shared by the threads, read for stats lines.
#[derive(Default, Debug)]
pub struct Counters {
    pub packets_read: AtomicU64,
    pub filtered_out: AtomicU64,
    pub packets: AtomicU64,
    pub bytes: AtomicU64,
    pub ipv4: AtomicU64,
    pub ipv6: AtomicU64,
    pub non_ip: AtomicU64,
    /// Packets whose processing panicked (skipped).
    pub invalid: AtomicU64,
    pub samples_built: AtomicU64,
    pub groups_open: AtomicU64,
    pub groups_evicted: AtomicU64,
    pub queue_packets: AtomicU64,
    pub queue_samples: AtomicU64,
    pub kernel_packets: AtomicU64,
    pub kernel_drops: AtomicU64,
    pub kernel_ifdrops: AtomicU64,
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
}

/// One packet inside a chunk's byte buffer.
struct PktRef {
    off: u32,
    len: u32,
    orig_len: u32,
    ts_ns: u64,
    number: u64,
    link: LinkType,
}

pub(super) struct PacketChunk {
    t: Instant,
    data: Vec<u8>,
    pkts: Vec<PktRef>,
}

impl PacketChunk {
    fn new() -> Self {
        PacketChunk {
            t: Instant::now(),
            data: Vec::with_capacity(64 << 10),
            pkts: Vec::with_capacity(CHUNK_PACKETS),
        }
    }
    pub(super) fn push(
        &mut self,
        ts_ns: u64,
        number: u64,
        link: LinkType,
        data: &[u8],
        orig_len: u32,
    ) {
        if self.pkts.is_empty() {
            self.t = Instant::now();
        }
        self.pkts.push(PktRef {
            off: self.data.len() as u32,
            len: data.len() as u32,
            orig_len,
            ts_ns,
            number,
            link,
        });
        self.data.extend_from_slice(data);
    }
    fn due(&self) -> bool {
        self.pkts.len() >= CHUNK_PACKETS
            || self.data.len() >= CHUNK_BYTES
            || (!self.pkts.is_empty() && self.t.elapsed() >= CHUNK_AGE)
    }
}

/// A finished sample on its way to the scorers.
struct SampleMsg {
    stream: usize,
    data: Vec<u8>,
    meta: SampleMeta,
    /// ICMP type and code of a flow's first packet (for EVE and Community ID).
    icmp: Option<(u8, u8)>,
    /// When the packet that completed it was read (or the flush ran).
    t: Instant,
}

/// Sends a chunk, waiting while the queue is full; false once the
/// receiver is gone.
fn send_chunk(tx: &SyncSender<PacketChunk>, chunk: PacketChunk, c: &Counters) -> bool {
    c.queue_packets.fetch_add(1, Relaxed);
    if tx.send(chunk).is_err() {
        c.queue_packets.fetch_sub(1, Relaxed);
        return false;
    }
    true
}

/// BPF filtering of frames read from files, compiled once per link type.
struct FileFilter {
    expr: String,
    progs: Vec<(LinkType, pcap::BpfProgram)>,
}

impl FileFilter {
    fn matches(&mut self, link: LinkType, data: &[u8]) -> Result<bool> {
        if !self.progs.iter().any(|(l, _)| *l == link) {
            let dead =
                pcap::Capture::dead(pcap::Linktype(link.linktype() as i32)).context("libpcap")?;
            let p = dead
                .compile(&self.expr, true)
                .with_context(|| format!("BPF filter '{}'", self.expr))?;
            self.progs.push((link, p));
        }
        Ok(self
            .progs
            .iter()
            .find(|(l, _)| *l == link)
            .map(|(_, p)| p.filter(data))
            .unwrap_or(true))
    }
}

/// Checks a filter expression before any thread starts, so a typo is one
/// clear error line rather than a silent empty run.
pub fn check_filter(expr: &str) -> Result<()> {
    let dead = pcap::Capture::dead(pcap::Linktype(1)).context("libpcap")?;
    dead.compile(expr, true)
        .with_context(|| format!("invalid BPF filter expression '{expr}'"))?;
    Ok(())
}

fn capture_file(
    mut reader: CaptureReader,
    opts: &PipelineOptions,
    tx: SyncSender<PacketChunk>,
    c: &Counters,
    err: &Mutex<Option<String>>,
) {
    let mut filter = opts.filter.clone().map(|expr| FileFilter {
        expr,
        progs: Vec::new(),
    });
    let mut chunk = PacketChunk::new();
    let started = Instant::now();
    let mut n = 0u64;
    loop {
        if opts.stop.load(Relaxed) {
            break;
        }
        let f: Frame = match reader.next_frame() {
            Ok(Some(f)) => f,
            Ok(None) => break,
            Err(e) => {
                *err.lock().unwrap_or_else(|p| p.into_inner()) = Some(e.to_string());
                break;
            }
        };
        c.packets_read.fetch_add(1, Relaxed);
        n += 1;
        if let Some(ff) = filter.as_mut() {
            match ff.matches(f.link, f.data) {
                Ok(true) => {}
                Ok(false) => {
                    c.filtered_out.fetch_add(1, Relaxed);
                    continue;
                }
                Err(e) => {
                    *err.lock().unwrap_or_else(|p| p.into_inner()) = Some(format!("{e:#}"));
                    break;
                }
            }
        }
        chunk.push(f.ts_ns, f.number, f.link, f.data, f.orig_len);
        if let Some(r) = opts.rate_pps {
            let due = Duration::from_secs_f64(n as f64 / r);
            let el = started.elapsed();
            if due > el {
                if !chunk.pkts.is_empty()
                    && !send_chunk(&tx, std::mem::replace(&mut chunk, PacketChunk::new()), c)
                {
                    return;
                }
                std::thread::sleep(due - el);
            }
        }
        // Little left in the reader's buffer: the next frame may wait on a
        // slow pipe, so what we hold goes on now.
        let starved = reader.buffered() < STARVED;
        if (chunk.due() || (starved && !chunk.pkts.is_empty()))
            && !send_chunk(&tx, std::mem::replace(&mut chunk, PacketChunk::new()), c)
        {
            return;
        }
    }
    for w in reader.take_warnings() {
        eprintln!("warning: {w}");
    }
    if !chunk.pkts.is_empty() {
        send_chunk(&tx, chunk, c);
    }
}

fn capture_live(
    mut cap: super::live::LiveCapture,
    opts: &PipelineOptions,
    tx: SyncSender<PacketChunk>,
    c: &Counters,
    err: &Mutex<Option<String>>,
) {
    let mut chunk = PacketChunk::new();
    let mut last_stats = Instant::now();
    loop {
        if opts.stop.load(Relaxed) {
            break;
        }
        match cap.next(&mut chunk) {
            Ok(true) => {
                c.packets_read.fetch_add(1, Relaxed);
            }
            Ok(false) => {
                // Nothing waiting: pass on what we have, then sleep in poll().
                if !chunk.pkts.is_empty()
                    && !send_chunk(&tx, std::mem::replace(&mut chunk, PacketChunk::new()), c)
                {
                    break;
                }
                if let Err(e) = cap.wait(POLL) {
                    *err.lock().unwrap_or_else(|p| p.into_inner()) = Some(format!("{e:#}"));
                    break;
                }
            }
            Err(e) => {
                *err.lock().unwrap_or_else(|p| p.into_inner()) = Some(format!("{e:#}"));
                break;
            }
        }
        if chunk.due() && !send_chunk(&tx, std::mem::replace(&mut chunk, PacketChunk::new()), c) {
            break;
        }
        if last_stats.elapsed() >= Duration::from_millis(500) {
            cap.update_stats(c);
            last_stats = Instant::now();
        }
    }
    cap.update_stats(c);
    if !chunk.pkts.is_empty() {
        send_chunk(&tx, chunk, c);
    }
}

/// ICMP type and code of the first packet in a flow sample's first row
/// (the row keeps every header byte but the anonymised addresses).
fn icmp_of_row(row: &[u8], link: LinkType) -> Option<(u8, u8)> {
    let ip = parse_ip(link, row)?;
    if !matches!(ip.proto, 1 | 58) {
        return None;
    }
    let o = (ip.l3_off + ip.l3_len) as usize;
    Some((*row.get(o)?, *row.get(o + 1)?))
}

fn wrap(
    kind: SampleKind,
    flow_l: usize,
    stream: usize,
    s: crate::ingest::Sample,
    t: Instant,
    link: LinkType,
    out: &mut Vec<SampleMsg>,
) {
    let icmp = if kind == SampleKind::Flows && matches!(s.meta.proto, 1 | 58) {
        icmp_of_row(&s.data[..flow_l.min(s.data.len())], link)
    } else {
        None
    };
    out.push(SampleMsg {
        stream,
        data: s.data,
        meta: s.meta,
        icmp,
        t,
    });
}

struct Building {
    builders: Vec<Builder>,
    kinds: Vec<SampleKind>,
    flow_l: Vec<usize>,
}

impl Building {
    fn new(streams: &[StreamSpec]) -> Self {
        let builders = streams
            .iter()
            .map(|s| match s {
                StreamSpec::Images(o) => Builder::Images(ImageBuilder::new(o.clone(), 0)),
                StreamSpec::Flows(o) => {
                    let mut b = FlowBuilder::new(o.clone(), 0);
                    b.set_track_updates(false);
                    Builder::Flows(b)
                }
            })
            .collect();
        Building {
            builders,
            kinds: streams.iter().map(|s| s.kind()).collect(),
            flow_l: streams
                .iter()
                .map(|s| if let StreamSpec::Flows(f) = s { f.l } else { 0 })
                .collect(),
        }
    }

    fn groups(&self) -> (u64, u64) {
        let mut open = 0;
        let mut ev = 0;
        for b in &self.builders {
            open += match b {
                Builder::Images(i) => i.open_groups(),
                Builder::Flows(f) => f.open_groups(),
            } as u64;
            ev += b.stats().evicted_groups;
        }
        (open, ev)
    }
}

fn build_samples(
    streams: Vec<StreamSpec>,
    opts: PipelineOptions,
    live: bool,
    rx: Receiver<PacketChunk>,
    tx: SyncSender<Vec<SampleMsg>>,
    c: Arc<Counters>,
) {
    let mut b = Building::new(&streams);
    let idle = opts.idle_timeout_ns;
    let flush_every = (idle / 8).max(1_000_000);
    let mut now_ts = 0u64;
    let mut next_flush = 0u64;
    let mut last_wall = Instant::now();
    let mut last_link = LinkType::Ethernet;
    let mut tmp = Vec::new();
    let mut out: Vec<SampleMsg> = Vec::new();
    let send = |out: &mut Vec<SampleMsg>| -> bool {
        if out.is_empty() {
            return true;
        }
        c.samples_built.fetch_add(out.len() as u64, Relaxed);
        c.queue_samples.fetch_add(1, Relaxed);
        let v = std::mem::take(out);
        match tx.try_send(v) {
            Ok(()) => true,
            Err(TrySendError::Full(v)) => tx.send(v).is_ok(),
            Err(TrySendError::Disconnected(_)) => false,
        }
    };
    let mut stopping = false;
    loop {
        let got = if stopping {
            // Take what the capture already handed over, then finish: a
            // capture blocked on a silent pipe must not hold up shutdown.
            match rx.try_recv() {
                Ok(ch) => Ok(ch),
                Err(_) => break,
            }
        } else {
            rx.recv_timeout(POLL)
        };
        let chunk = match got {
            Ok(ch) => {
                c.queue_packets.fetch_sub(1, Relaxed);
                Some(ch)
            }
            Err(RecvTimeoutError::Timeout) => None,
            Err(RecvTimeoutError::Disconnected) => break,
        };
        if let Some(ch) = chunk {
            for p in &ch.pkts {
                let frame = Frame {
                    ts_ns: p.ts_ns,
                    link: p.link,
                    data: &ch.data[p.off as usize..(p.off + p.len) as usize],
                    number: p.number,
                    orig_len: p.orig_len,
                };
                // Idle groups close before this packet joins one of them.
                now_ts = now_ts.max(p.ts_ns);
                if now_ts >= next_flush {
                    let t = Instant::now();
                    for si in 0..b.builders.len() {
                        b.builders[si].flush_idle(now_ts, idle, &mut tmp);
                        for s in tmp.drain(..) {
                            wrap(b.kinds[si], b.flow_l[si], si, s, t, p.link, &mut out);
                        }
                    }
                    next_flush = now_ts.saturating_add(flush_every);
                }
                last_link = p.link;
                c.packets.fetch_add(1, Relaxed);
                c.bytes.fetch_add(p.orig_len as u64, Relaxed);
                // A packet that trips a bug in a builder is skipped and
                // counted; the detector goes on.
                let res = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| {
                    let pkt = ParsedPacket::parse(&frame);
                    match pkt.ip.as_ref().map(|i| i.version) {
                        Some(4) => c.ipv4.fetch_add(1, Relaxed),
                        Some(_) => c.ipv6.fetch_add(1, Relaxed),
                        None => c.non_ip.fetch_add(1, Relaxed),
                    };
                    for (si, bl) in b.builders.iter_mut().enumerate() {
                        bl.push(&pkt, PacketLabel::default(), &mut tmp);
                        for s in tmp.drain(..) {
                            wrap(b.kinds[si], b.flow_l[si], si, s, ch.t, p.link, &mut out);
                        }
                    }
                }));
                if res.is_err() {
                    tmp.clear();
                    c.invalid.fetch_add(1, Relaxed);
                }
            }
            last_wall = Instant::now();
        } else if live && now_ts > 0 {
            // Live: packet time stands still while the wire is quiet, so
            // idle groups are judged on packet time plus the quiet wall time.
            let virt = now_ts + last_wall.elapsed().as_nanos() as u64;
            let t = Instant::now();
            for si in 0..b.builders.len() {
                b.builders[si].flush_idle(virt, idle, &mut tmp);
                for s in tmp.drain(..) {
                    wrap(b.kinds[si], b.flow_l[si], si, s, t, last_link, &mut out);
                }
            }
        }
        let (open, ev) = b.groups();
        c.groups_open.store(open, Relaxed);
        c.groups_evicted.store(ev, Relaxed);
        if !send(&mut out) {
            return;
        }
        if opts.stop.load(Relaxed) {
            stopping = true;
        }
    }
    let t = Instant::now();
    for si in 0..b.builders.len() {
        b.builders[si].finish(&mut tmp);
        for s in tmp.drain(..) {
            wrap(b.kinds[si], b.flow_l[si], si, s, t, last_link, &mut out);
        }
    }
    send(&mut out);
}

/// A model in a run: its scorer and the checkpoint it came from.
pub struct Model {
    pub scorer: Box<dyn Scorer>,
    pub file: String,
}

/// A pending sample: its facts, ICMP type/code, and when it was completed.
type PendingItem = (SampleMeta, Option<(u8, u8)>, Instant);

/// Samples waiting for one model's next batch.
#[derive(Default)]
struct Pending {
    data: Vec<u8>,
    items: Vec<PendingItem>,
    oldest: Option<Instant>,
}

/// Suricata's flow_id is a 64-bit hash kept under 2^51 so that JSON
/// readers holding numbers as doubles read it exactly; one per flow (or
/// pair window), stable across its alerts.
fn flow_id(kind: SampleKind, m: &SampleMeta) -> u64 {
    let (mut a, mut b, mut pa, mut pb) = (m.src, m.dst, m.sport, m.dport);
    if kind == SampleKind::Flows && (b, pb) < (a, pa) {
        std::mem::swap(&mut a, &mut b);
        std::mem::swap(&mut pa, &mut pb);
    }
    let mut h = 0x243f_6a88_85a3_08d3u64 ^ kind as u64;
    for c in a.chunks(8).chain(b.chunks(8)) {
        h = splitmix64(h ^ u64::from_le_bytes(c.try_into().unwrap_or_default()));
    }
    h = splitmix64(h ^ ((pa as u64) << 24 | (pb as u64) << 8 | m.proto as u64));
    h = splitmix64(h ^ m.first_ts_ns);
    h & ((1 << 51) - 1)
}

/// The EVE alert for one sample over its model's threshold.
pub(super) fn alert_event(
    model: &Model,
    kind: SampleKind,
    m: &SampleMeta,
    icmp: Option<(u8, u8)>,
    score: f64,
    iface: Option<&str>,
) -> AlertEvent {
    let (src, dst) = (m.src_ip(), m.dst_ip());
    let mut ev_ports = None;
    let mut icmp_tc = None;
    let (proto, cid) = match kind {
        // A pair image spans every protocol and flow between two hosts; it
        // gets proto "IP" (the pseudo-protocol 0 of /etc/protocols) and the
        // Community ID of that address pair with protocol 0 and no ports:
        // the same for every image of the pair in either direction, and
        // never equal to a real flow's ID.
        SampleKind::Images => ("IP".to_string(), community_id_v1(0, src, dst, 0, None)),
        SampleKind::Flows => {
            let p = m.proto;
            let cid = match p {
                6 | 17 => {
                    ev_ports = Some((m.sport, m.dport));
                    community_id_v1(0, src, dst, p, Some((m.sport, m.dport)))
                }
                1 | 58 => {
                    icmp_tc = icmp;
                    community_id_v1(0, src, dst, p, icmp.map(|(t, c)| (t as u16, c as u16)))
                }
                _ => community_id_v1(0, src, dst, p, None),
            };
            (proto_name(p), cid)
        }
    };
    let sig = model.scorer.signature();
    AlertEvent {
        timestamp: eve_timestamp(m.last_ts_ns),
        flow_id: flow_id(kind, m),
        in_iface: iface.map(str::to_string),
        event_type: "alert".into(),
        src_ip: src.to_string(),
        src_port: ev_ports.map(|p| p.0),
        dest_ip: dst.to_string(),
        dest_port: ev_ports.map(|p| p.1),
        proto,
        icmp_type: icmp_tc.map(|x| x.0),
        icmp_code: icmp_tc.map(|x| x.1),
        community_id: cid,
        pcap_cnt: m.completed_by,
        alert: AlertInfo {
            action: "allowed".into(),
            gid: 1,
            signature_id: sig.signature_id,
            rev: 1,
            signature: sig.text,
            category: "Potentially Bad Traffic".into(),
            severity: 2,
        },
        gpu_nids: GpuNidsInfo {
            model: model.scorer.kind().to_string(),
            model_file: model.file.clone(),
            sample: match kind {
                SampleKind::Images => "image",
                SampleKind::Flows => "flow",
            }
            .into(),
            score,
            threshold: model.scorer.threshold(),
            first_ts: eve_timestamp(m.first_ts_ns),
            last_ts: eve_timestamp(m.last_ts_ns),
            packets: m.packets,
            first_pcap_cnt: m.first_packet,
        },
    }
}

fn now_ns() -> u64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_nanos() as u64)
        .unwrap_or(0)
}

fn stats_event(
    c: &Counters,
    models: &[Model],
    summ: &[ModelSummary],
    pending: &[Pending],
    started: Instant,
) -> serde_json::Value {
    let l = |a: &AtomicU64| a.load(Relaxed);
    let alerts: u64 = summ.iter().map(|s| s.alerts).sum();
    serde_json::json!({
        "timestamp": eve_timestamp(now_ns()),
        "event_type": "stats",
        "stats": {
            "uptime": started.elapsed().as_secs(),
            "capture": {
                "kernel_packets": l(&c.kernel_packets),
                "kernel_drops": l(&c.kernel_drops),
                "kernel_ifdrops": l(&c.kernel_ifdrops),
            },
            "decoder": {
                "pkts": l(&c.packets),
                "bytes": l(&c.bytes),
                "ipv4": l(&c.ipv4),
                "ipv6": l(&c.ipv6),
                "non_ip": l(&c.non_ip),
                "invalid": l(&c.invalid),
            },
            "detect": { "alert": alerts },
            "gpu_nids": {
                "packets_read": l(&c.packets_read),
                "filtered_out": l(&c.filtered_out),
                "samples_built": l(&c.samples_built),
                "groups_open": l(&c.groups_open),
                "groups_evicted": l(&c.groups_evicted),
                "queues": {
                    "packet_chunks": l(&c.queue_packets),
                    "sample_chunks": l(&c.queue_samples),
                    "pending_samples": pending.iter().map(|p| p.items.len()).sum::<usize>(),
                },
                "models": models.iter().zip(summ).map(|(m, s)| serde_json::json!({
                    "model": m.scorer.kind(),
                    "file": m.file,
                    "samples_scored": s.samples,
                    "alerts": s.alerts,
                    "batches": s.batches,
                })).collect::<Vec<_>>(),
            },
        },
    })
}

/// Scores one model's pending samples and writes their alerts.
fn score_pending(
    gpu: &Gpu,
    model: &mut Model,
    kind: SampleKind,
    p: &mut Pending,
    s: &mut ModelSummary,
    out: &mut EveWriter,
    opts: &PipelineOptions,
) -> Result<()> {
    let n = p.items.len();
    if n == 0 {
        return Ok(());
    }
    let scores = model.scorer.score(gpu, &p.data, n)?;
    let thr = model.scorer.threshold();
    for (i, (meta, icmp, _)) in p.items.iter().enumerate() {
        let sc = scores[i] as f64;
        if sc > thr {
            out.push(&alert_event(
                model,
                kind,
                meta,
                *icmp,
                sc,
                opts.iface.as_deref(),
            ))
            .context("formatting an alert")?;
            s.alerts += 1;
        }
    }
    out.flush_lines().context("writing alerts")?;
    if opts.record_latency {
        let t = Instant::now();
        s.latencies
            .extend(p.items.iter().map(|x| (t - x.2).as_secs_f64()));
    }
    s.samples += n as u64;
    s.batches += 1;
    p.data.clear();
    p.items.clear();
    p.oldest = None;
    Ok(())
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
    let kinds: Vec<SampleKind> = model_stream.iter().map(|&i| streams[i].kind()).collect();
    let counters = Arc::new(Counters::default());
    let err = Arc::new(Mutex::new(None::<String>));
    let (ptx, prx) = sync_channel::<PacketChunk>(PACKET_QUEUE);
    let (stx, srx) = sync_channel::<Vec<SampleMsg>>(SAMPLE_QUEUE);
    let live = matches!(source, Source::Live(_));
    let started = Instant::now();
    {
        let (o, c, e) = (opts.clone(), counters.clone(), err.clone());
        // Not joined: a capture blocked reading a silent pipe must not
        // keep a stopped detector alive; it ends when its channel closes
        // or the process exits.
        std::thread::Builder::new()
            .name("gpu-nids-capture".into())
            .spawn(move || match source {
                Source::Capture(r) => capture_file(*r, &o, ptx, &c, &e),
                Source::Live(l) => capture_live(l, &o, ptx, &c, &e),
            })
            .context("starting the capture thread")?;
    }
    let builder = {
        let (st, o, c) = (streams.clone(), opts.clone(), counters.clone());
        std::thread::Builder::new()
            .name("gpu-nids-build".into())
            .spawn(move || build_samples(st, o, live, prx, stx, c))
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
                Ok(v) => {
                    counters.queue_samples.fetch_sub(1, Relaxed);
                    for s in v {
                        for mi in 0..models.len() {
                            if model_stream[mi] != s.stream {
                                continue;
                            }
                            let p = &mut pending[mi];
                            p.data.extend_from_slice(&s.data);
                            p.items.push((s.meta, s.icmp, s.t));
                            p.oldest.get_or_insert(s.t);
                            if p.items.len() >= batch {
                                score_pending(
                                    gpu,
                                    &mut models[mi],
                                    kinds[mi],
                                    p,
                                    &mut summ[mi],
                                    out,
                                    opts,
                                )?;
                            }
                        }
                    }
                    false
                }
                Err(RecvTimeoutError::Timeout) => false,
                Err(RecvTimeoutError::Disconnected) => true,
            };
            let now = Instant::now();
            for mi in 0..models.len() {
                if let Some(o) = pending[mi].oldest {
                    if done || now >= o + opts.max_latency {
                        score_pending(
                            gpu,
                            &mut models[mi],
                            kinds[mi],
                            &mut pending[mi],
                            &mut summ[mi],
                            out,
                            opts,
                        )?;
                    }
                }
            }
            if let (Some(ns), Some(iv)) = (next_stats, opts.stats_interval) {
                if now >= ns {
                    out.push(&stats_event(&counters, models, &summ, &pending, started))?;
                    out.flush_lines()?;
                    next_stats = Some((ns + iv).max(now));
                }
            }
            if done {
                return Ok(());
            }
        }
    })();
    // On a scoring error the channels close and both threads wind down.
    drop(srx);
    let _ = builder.join();
    result?;
    if opts.final_stats {
        out.push(&stats_event(&counters, models, &summ, &pending, started))?;
        out.flush_lines()?;
    }
    let l = |a: &AtomicU64| a.load(Relaxed);
    let input_error = err.lock().unwrap_or_else(|p| p.into_inner()).clone();
    Ok(Summary {
        packets: l(&counters.packets),
        packets_read: l(&counters.packets_read),
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
