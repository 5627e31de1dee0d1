//! The streaming detector: a capture thread, a sample-building thread and
//! the scoring loop (on the caller's thread, which owns the GPU), joined by
//! bounded channels so a fast source waits (or, live, the kernel drops and
//! counts) instead of queueing without bound.
//!
//! ```text
//! capture ──chunks of ≤256 packets──▶ builders ──samples──▶ batches ──▶ GPU ──▶ EVE lines
//!   (16 chunks in flight)              (16 sample chunks in flight)
//! ```

use std::cmp::Reverse;
use std::collections::{BinaryHeap, VecDeque};
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering::Relaxed};
use std::sync::mpsc::{sync_channel, Receiver, RecvTimeoutError, SyncSender, TrySendError};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use anyhow::{Context, Result};

use super::community_id::community_id_v1;
use super::eve::{
    eve_timestamp, format_ip, proto_name, AlertEvent, AlertInfo, AlertMetadata, EveWriter,
    FlowInfo, StatsEvent,
};
use super::scorer::{Scorer, StreamSpec};
use crate::gpu::Gpu;
use crate::ingest::flow::splitmix64;
use crate::ingest::parse::parse_ip;
use crate::ingest::sample::RowPacket;
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
    /// Ask the model what drove each alert's score (one more forward pass
    /// per alert for the VAE and autoencoders, several for DOC-IDS).
    pub explain: bool,
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
            iface: None,
            final_stats: true,
            ipv6_compress: false,
            reorder_window_ns: 0,
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
    pub tcp: AtomicU64,
    pub udp: AtomicU64,
    pub sctp: AtomicU64,
    pub icmpv4: AtomicU64,
    pub icmpv6: AtomicU64,
    pub arp: AtomicU64,
    /// Frames of another ether type (skipped).
    pub unknown_ethertype: AtomicU64,
    /// Packets too short or malformed to decode, or whose processing
    /// panicked (skipped).
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
    /// Packets the BPF filter left out (files; live, the kernel drops them).
    pub filtered_out: u64,
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
    /// Emission order across all streams.
    seq: u64,
    data: Vec<u8>,
    meta: SampleMeta,
    /// Its rows' packets; the last one triggered it.
    rows: Vec<RowPacket>,
    /// Link type of the packets (flow rows are frames).
    link: LinkType,
    /// When the packet that completed it was read (or the flush ran).
    t: Instant,
}

/// What the sample thread hands on: the samples it emitted and its packet
/// clock after them (the latest packet time, or live the virtual time of
/// a quiet wire); sent with no samples too, so the clock moves on.
struct SampleChunk {
    samples: Vec<SampleMsg>,
    clock: u64,
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
    // pcap_cnt counts the packets that passed the filter, as Suricata's does.
    let mut passed = 0u64;
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
        passed += 1;
        chunk.push(f.ts_ns, passed, f.link, f.data, f.orig_len);
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

/// Decoder counters of one packet, by its protocols (Suricata's names).
fn count_decoded(c: &Counters, pkt: &ParsedPacket) {
    let Some(ip) = pkt.ip.as_ref() else {
        // Not decoded as IP: ARP, another ether type, or a frame too short
        // or malformed to be what its link header says.
        let et = match pkt.link {
            LinkType::Ethernet if pkt.frame.len() >= 14 => {
                Some(u16::from_be_bytes([pkt.frame[12], pkt.frame[13]]))
            }
            _ => None,
        };
        match et {
            Some(0x0806) => c.arp.fetch_add(1, Relaxed),
            Some(0x0800 | 0x86dd) | None => c.invalid.fetch_add(1, Relaxed),
            Some(_) => c.unknown_ethertype.fetch_add(1, Relaxed),
        };
        return;
    };
    if ip.version == 4 {
        c.ipv4.fetch_add(1, Relaxed);
    } else {
        c.ipv6.fetch_add(1, Relaxed);
    }
    match ip.proto {
        6 => c.tcp.fetch_add(1, Relaxed),
        17 => c.udp.fetch_add(1, Relaxed),
        132 => c.sctp.fetch_add(1, Relaxed),
        1 => c.icmpv4.fetch_add(1, Relaxed),
        58 => c.icmpv6.fetch_add(1, Relaxed),
        _ => 0,
    };
}

struct Building {
    builders: Vec<Builder>,
    next_seq: u64,
}

impl Building {
    fn new(streams: &[StreamSpec]) -> Self {
        let builders = streams
            .iter()
            .map(|s| match s {
                StreamSpec::Images(o) => {
                    let mut b = ImageBuilder::new(o.clone(), 0);
                    b.set_track_rows(true);
                    Builder::Images(b)
                }
                StreamSpec::Flows(o) => {
                    let mut b = FlowBuilder::new(o.clone(), 0);
                    b.set_track_updates(false);
                    b.set_track_rows(true);
                    Builder::Flows(b)
                }
            })
            .collect();
        Building {
            builders,
            next_seq: 0,
        }
    }

    /// Moves the samples builder `si` just emitted (in `tmp`) to `out`,
    /// each with its row packets.
    fn wrap(
        &mut self,
        si: usize,
        tmp: &mut Vec<crate::ingest::Sample>,
        t: Instant,
        link: LinkType,
        out: &mut Vec<SampleMsg>,
    ) {
        if tmp.is_empty() {
            return;
        }
        let mut rows = match &mut self.builders[si] {
            Builder::Images(b) => b.take_rows(),
            Builder::Flows(b) => b.take_rows(),
        }
        .into_iter();
        for s in tmp.drain(..) {
            out.push(SampleMsg {
                stream: si,
                seq: self.next_seq,
                data: s.data,
                meta: s.meta,
                rows: rows.next().unwrap_or_default(),
                link,
                t,
            });
            self.next_seq += 1;
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
    tx: SyncSender<SampleChunk>,
    c: Arc<Counters>,
) {
    let mut b = Building::new(&streams);
    let idle = opts.idle_timeout_ns;
    let flush_every = flush_interval(idle);
    let mut now_ts = 0u64;
    let mut next_flush = 0u64;
    let mut last_wall = Instant::now();
    let mut last_link = LinkType::Ethernet;
    let mut tmp = Vec::new();
    let mut out: Vec<SampleMsg> = Vec::new();
    let mut sent_clock = 0u64;
    // Samples wait for room; a chunk with none only moves the clock on,
    // so it is dropped when the queue is full (the next one carries it).
    let send = |out: &mut Vec<SampleMsg>, clock: u64, sent_clock: &mut u64| -> bool {
        if out.is_empty() && clock == *sent_clock {
            return true;
        }
        let n = out.len() as u64;
        let msg = SampleChunk {
            samples: std::mem::take(out),
            clock,
        };
        c.queue_samples.fetch_add(1, Relaxed);
        let ok = match tx.try_send(msg) {
            Ok(()) => true,
            Err(TrySendError::Full(m)) if n > 0 => tx.send(m).is_ok(),
            Err(TrySendError::Full(_)) => {
                c.queue_samples.fetch_sub(1, Relaxed);
                return true;
            }
            Err(TrySendError::Disconnected(_)) => false,
        };
        if ok {
            c.samples_built.fetch_add(n, Relaxed);
            *sent_clock = clock;
        }
        ok
    };
    let mut stopping = false;
    let mut clock = 0u64;
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
                        b.wrap(si, &mut tmp, t, p.link, &mut out);
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
                    count_decoded(&c, &pkt);
                    for si in 0..b.builders.len() {
                        b.builders[si].push(&pkt, PacketLabel::default(), &mut tmp);
                        b.wrap(si, &mut tmp, ch.t, p.link, &mut out);
                    }
                }));
                if res.is_err() {
                    tmp.clear();
                    c.invalid.fetch_add(1, Relaxed);
                }
            }
            last_wall = Instant::now();
            clock = now_ts;
        } else if live && now_ts > 0 {
            // Live: packet time stands still while the wire is quiet, so
            // idle groups are judged on packet time plus the quiet wall time.
            let virt = now_ts + last_wall.elapsed().as_nanos() as u64;
            let t = Instant::now();
            for si in 0..b.builders.len() {
                b.builders[si].flush_idle(virt, idle, &mut tmp);
                b.wrap(si, &mut tmp, t, last_link, &mut out);
            }
            clock = clock.max(virt);
        }
        let (open, ev) = b.groups();
        c.groups_open.store(open, Relaxed);
        c.groups_evicted.store(ev, Relaxed);
        if !send(&mut out, clock, &mut sent_clock) {
            return;
        }
        if opts.stop.load(Relaxed) {
            stopping = true;
        }
    }
    let t = Instant::now();
    for si in 0..b.builders.len() {
        b.builders[si].finish(&mut tmp);
        b.wrap(si, &mut tmp, t, last_link, &mut out);
    }
    // Every group is closed now: the final stats line says so.
    let (open, ev) = b.groups();
    c.groups_open.store(open, Relaxed);
    c.groups_evicted.store(ev, Relaxed);
    // The end: everything may go out.
    send(&mut out, u64::MAX, &mut sent_clock);
}

/// How often (packet time) idle groups are looked for.
fn flush_interval(idle_ns: u64) -> u64 {
    (idle_ns / 8).max(1_000_000)
}

/// The reorder window that puts every alert in timestamp order (but those
/// of groups closed early to stay under the group cap): an idle-flushed
/// sample's last packet is at most the idle timeout plus one flush
/// interval older than the packet clock when it is emitted.
pub fn ordering_window(idle_ns: u64) -> u64 {
    idle_ns.saturating_add(flush_interval(idle_ns))
}

/// A model in a run: its scorer and the checkpoint it came from.
pub struct Model {
    pub scorer: Box<dyn Scorer>,
    pub file: String,
}

/// A sample waiting for its model's next batch.
struct PendingItem {
    seq: u64,
    meta: SampleMeta,
    rows: Vec<RowPacket>,
    link: LinkType,
    /// When it was completed.
    t: Instant,
}

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

/// What a sample's row says of its packet: protocol, and ICMP type and
/// code. A flow row is the frame's first bytes; an image row the IP and
/// transport headers (cut at 64 bytes, padded).
#[derive(Clone, Copy, Debug, Default, PartialEq)]
struct RowFacts {
    proto: Option<u8>,
    icmp: Option<(u8, u8)>,
}

fn row_facts(row: &[u8], link: LinkType) -> RowFacts {
    let Some(ip) = parse_ip(link, row) else {
        // An image row cut inside IPv6 extension headers: the protocol
        // field of the fixed header still names the next header.
        let proto = match (link, row.first().map(|b| b >> 4)) {
            (LinkType::Raw, Some(4)) => row.get(9).copied(),
            (LinkType::Raw, Some(6)) => row.get(6).copied(),
            _ => None,
        };
        return RowFacts {
            proto,
            ..Default::default()
        };
    };
    let l4 = (ip.l3_off + ip.l3_len) as usize;
    RowFacts {
        proto: Some(ip.proto),
        icmp: match (ip.proto, row.get(l4), row.get(l4 + 1)) {
            (1 | 58, Some(&t), Some(&c)) => Some((t, c)),
            _ => None,
        },
    }
}

/// What `explain` said, as alert metadata: at most this many of each.
const EXPLAIN_TOP: usize = 5;

/// Where the scoring loop is: which options, and whether packets come
/// live (no `pcap_cnt`).
struct AlertContext<'a> {
    opts: &'a PipelineOptions,
    live: bool,
}

/// The EVE alert for one sample over its model's threshold. It describes
/// the sample's last packet (the one that completed it, or the last before
/// its group was flushed), as Suricata's alerts describe the packet that
/// triggered them.
#[allow(clippy::too_many_arguments)]
fn alert_event(
    model: &Model,
    kind: SampleKind,
    item: &PendingItem,
    sample: &[u8],
    flow_l: usize,
    score: f64,
    explanation: Option<&crate::explain::Explanation>,
    cx: &AlertContext,
) -> AlertEvent {
    let m = &item.meta;
    let ip = |a: std::net::IpAddr| format_ip(a, cx.opts.ipv6_compress);
    let last_row = item.rows.len().saturating_sub(1);
    let trigger = item.rows.last().copied().unwrap_or(RowPacket {
        number: m.completed_by,
        len: 0,
        reverse: false,
        ports: None,
    });
    let (row, link) = match kind {
        SampleKind::Images => {
            let o = last_row * crate::ingest::IMAGE_SIDE;
            (sample.get(o..o + crate::ingest::IMAGE_SIDE), LinkType::Raw)
        }
        SampleKind::Flows => (
            sample.get(last_row * flow_l..(last_row + 1) * flow_l),
            item.link,
        ),
    };
    let facts = row.map(|r| row_facts(r, link)).unwrap_or_default();
    let (fsrc, fdst) = (m.src_ip(), m.dst_ip());
    let (src, dst) = if trigger.reverse {
        (fdst, fsrc)
    } else {
        (fsrc, fdst)
    };
    // A flow's protocol and ports are its key's; an image's are those of
    // the packet behind the alert (a pair mixes protocols).
    let (proto, flow_ports, ports) = match kind {
        SampleKind::Flows => {
            let fp = matches!(m.proto, 6 | 17 | 132).then_some((m.sport, m.dport));
            let p = fp.map(|(s, d)| if trigger.reverse { (d, s) } else { (s, d) });
            (m.proto, fp, p)
        }
        SampleKind::Images => (facts.proto.unwrap_or(0), None, trigger.ports),
    };
    let icmp = if matches!(proto, 1 | 58) {
        facts.icmp
    } else {
        None
    };
    let cid_ports = ports.or(icmp.map(|(t, c)| (t as u16, c as u16)));
    let cid = community_id_v1(0, src, dst, proto, cid_ports);
    let (mut pts, mut ptc, mut bts, mut btc) = (0u64, 0u64, 0u64, 0u64);
    for r in &item.rows {
        if r.reverse {
            ptc += 1;
            btc += r.len as u64;
        } else {
            pts += 1;
            bts += r.len as u64;
        }
    }
    let sig = model.scorer.signature();
    let mut md = AlertMetadata {
        gpu_nids_model: [model.scorer.kind().to_string()],
        gpu_nids_model_file: [model.file.clone()],
        gpu_nids_sample: [match kind {
            SampleKind::Images => "image",
            SampleKind::Flows => "flow",
        }
        .into()],
        gpu_nids_score: [score.to_string()],
        gpu_nids_threshold: [model.scorer.threshold().to_string()],
        gpu_nids_first_ts: [eve_timestamp(m.first_ts_ns)],
        gpu_nids_last_ts: [eve_timestamp(m.last_ts_ns)],
        gpu_nids_sample_packets: [m.packets.to_string()],
        gpu_nids_first_pcap_cnt: [m.first_packet.to_string()],
        ..Default::default()
    };
    if let Some(e) = explanation {
        md.gpu_nids_fields = e
            .fields
            .iter()
            .take(EXPLAIN_TOP)
            .map(|(f, _)| f.clone())
            .collect();
        // A row the sample does not have names no packet.
        md.gpu_nids_packets = e
            .packets
            .iter()
            .filter_map(|&(r, _)| item.rows.get(r))
            .take(EXPLAIN_TOP)
            .map(|r| r.number.to_string())
            .collect();
    }
    AlertEvent {
        timestamp: eve_timestamp(m.last_ts_ns),
        flow_id: flow_id(kind, m),
        in_iface: cx.opts.iface.clone(),
        pcap_cnt: (!cx.live).then_some(trigger.number),
        event_type: "alert".into(),
        src_ip: ip(src),
        src_port: ports.map(|p| p.0),
        dest_ip: ip(dst),
        dest_port: ports.map(|p| p.1),
        proto: proto_name(proto),
        icmp_type: icmp.map(|x| x.0),
        icmp_code: icmp.map(|x| x.1),
        community_id: cid,
        alert: AlertInfo {
            action: "allowed".into(),
            gid: 1,
            signature_id: sig.signature_id,
            rev: 1,
            signature: sig.text,
            category: "Potentially Bad Traffic".into(),
            severity: 2,
            metadata: md,
        },
        direction: if trigger.reverse {
            "to_client"
        } else {
            "to_server"
        }
        .into(),
        flow: FlowInfo {
            pkts_toserver: pts,
            pkts_toclient: ptc,
            bytes_toserver: bts,
            bytes_toclient: btc,
            start: eve_timestamp(m.first_ts_ns),
            src_ip: ip(fsrc),
            dest_ip: ip(fdst),
            src_port: flow_ports.map(|p| p.0),
            dest_port: flow_ports.map(|p| p.1),
        },
    }
}

fn now_ns() -> u64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_nanos() as u64)
        .unwrap_or(0)
}

/// A stats line in Suricata's counter names only (its schema allows no
/// others); what has no Suricata name is in the end-of-run summary.
fn stats_event(c: &Counters, summ: &[ModelSummary], live: bool, started: Instant) -> StatsEvent {
    let l = |a: &AtomicU64| a.load(Relaxed);
    let alerts: u64 = summ.iter().map(|s| s.alerts).sum();
    let mut stats = serde_json::json!({
        "uptime": started.elapsed().as_secs(),
        "decoder": {
            "pkts": l(&c.packets),
            "bytes": l(&c.bytes),
            "ipv4": l(&c.ipv4),
            "ipv6": l(&c.ipv6),
            "tcp": l(&c.tcp),
            "udp": l(&c.udp),
            "sctp": l(&c.sctp),
            "icmpv4": l(&c.icmpv4),
            "icmpv6": l(&c.icmpv6),
            "arp": l(&c.arp),
            "unknown_ethertype": l(&c.unknown_ethertype),
            "invalid": l(&c.invalid),
        },
        // Open pairs and flows, and those closed early to stay under the cap.
        "flow": {
            "active": l(&c.groups_open),
            "memcap": l(&c.groups_evicted),
        },
        "detect": { "alert": alerts },
    });
    // Kernel counters exist only for a live interface; Suricata writes
    // none when it reads a file.
    if live {
        stats["capture"] = serde_json::json!({
            "kernel_packets": l(&c.kernel_packets),
            "kernel_drops": l(&c.kernel_drops),
            "kernel_ifdrops": l(&c.kernel_ifdrops),
        });
    }
    StatsEvent {
        timestamp: eve_timestamp(now_ns()),
        event_type: "stats",
        stats,
    }
}

/// Alerts scored but not yet written, held so that they go out in order
/// (docs/DETECT.md, "Order").
#[derive(Default)]
struct Reorder {
    /// (timestamp, sample order, model) → the formatted line.
    held: BinaryHeap<Reverse<(u64, u64, usize, String)>>,
    /// (samples received so far, packet clock) per chunk from the sample
    /// thread, oldest first, until every model has scored past it.
    marks: VecDeque<(u64, u64)>,
    /// Packet clock up to which every sample has been scored.
    watermark: u64,
}

impl Reorder {
    /// Moves the watermark on: `scored` = every sample with a lower order
    /// number has been scored by every model.
    fn advance(&mut self, scored: u64) {
        while let Some(&(end, clock)) = self.marks.front() {
            if end > scored {
                break;
            }
            self.watermark = self.watermark.max(clock);
            self.marks.pop_front();
        }
    }

    /// Queues the alerts that may go out now, in order.
    fn release(&mut self, window: u64, out: &mut EveWriter) -> Result<()> {
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

/// Scores one model's pending samples and queues their alerts.
#[allow(clippy::too_many_arguments)]
fn score_pending(
    gpu: &Gpu,
    mi: usize,
    model: &mut Model,
    stream: &StreamSpec,
    p: &mut Pending,
    s: &mut ModelSummary,
    reorder: &mut Reorder,
    cx: &AlertContext,
) -> Result<()> {
    let n = p.items.len();
    if n == 0 {
        return Ok(());
    }
    let kind = stream.kind();
    let len = stream.sample_len();
    let flow_l = match stream {
        StreamSpec::Flows(f) => f.l,
        StreamSpec::Images(_) => 0,
    };
    let scores = model.scorer.score(gpu, &p.data, n)?;
    let thr = model.scorer.threshold();
    for (i, item) in p.items.iter().enumerate() {
        let sc = scores[i] as f64;
        if sc > thr {
            let sample = &p.data[i * len..(i + 1) * len];
            let ex = if cx.opts.explain {
                model
                    .scorer
                    .explain(gpu, sample)
                    .context("explaining an alert")?
            } else {
                None
            };
            let ev = alert_event(model, kind, item, sample, flow_l, sc, ex.as_ref(), cx);
            let line = serde_json::to_string(&ev).context("formatting an alert")?;
            reorder
                .held
                .push(Reverse((item.meta.last_ts_ns, item.seq, mi, line)));
            s.alerts += 1;
        }
    }
    if cx.opts.record_latency {
        let t = Instant::now();
        s.latencies
            .extend(p.items.iter().map(|x| (t - x.t).as_secs_f64()));
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
    let counters = Arc::new(Counters::default());
    let err = Arc::new(Mutex::new(None::<String>));
    let (ptx, prx) = sync_channel::<PacketChunk>(PACKET_QUEUE);
    let (stx, srx) = sync_channel::<SampleChunk>(SAMPLE_QUEUE);
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
    let cx = AlertContext { opts, live };
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
                                score_pending(
                                    gpu,
                                    mi,
                                    &mut models[mi],
                                    &streams[model_stream[mi]],
                                    p,
                                    &mut summ[mi],
                                    &mut reorder,
                                    &cx,
                                )?;
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
                        score_pending(
                            gpu,
                            mi,
                            &mut models[mi],
                            &streams[model_stream[mi]],
                            &mut pending[mi],
                            &mut summ[mi],
                            &mut reorder,
                            &cx,
                        )?;
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
                    out.push(&stats_event(&counters, &summ, live, started))?;
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
        out.push(&stats_event(&counters, &summ, live, started))?;
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
