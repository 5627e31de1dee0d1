//! Capture: the thread that reads packets (a file or stdin, or a live
//! interface), filters them and hands them on in chunks; and the decoder
//! counters of the packets the sample thread parses.

use std::sync::atomic::{AtomicBool, Ordering::Relaxed};
use std::sync::mpsc::SyncSender;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use anyhow::{Context, Result};

use super::counters::Counters;
use super::live::LiveCapture;
use crate::ingest::{CaptureReader, Frame, LinkType, ParsedPacket};

const CHUNK_PACKETS: usize = 256;
const CHUNK_BYTES: usize = 1 << 20;
/// A partly filled chunk goes on after this long, so a slow source does
/// not hold packets back.
const CHUNK_AGE: Duration = Duration::from_millis(1);
/// Chunks in flight between the capture and the sample thread.
pub(super) const PACKET_QUEUE: usize = 16;
/// Below this many buffered bytes the reader may block on its next frame.
const STARVED: usize = 64 << 10;
/// How often the threads look at the stop flag while idle.
pub(super) const POLL: Duration = Duration::from_millis(20);

/// Where packets come from.
pub enum Source {
    /// A pcap/pcapng file or stdin, opened by the caller.
    Capture(Box<CaptureReader>),
    /// A live interface (libpcap).
    Live(LiveCapture),
}

/// What the capture thread takes of the run's options.
pub(super) struct CaptureOptions {
    /// BPF filter expression (files: applied per frame; live: in the kernel).
    pub filter: Option<String>,
    /// Pace a file input at this many packets per second (benchmarks).
    pub rate_pps: Option<f64>,
    /// Set to stop capture.
    pub stop: Arc<AtomicBool>,
}

/// One packet inside a chunk's byte buffer.
pub(super) struct PktRef {
    pub off: u32,
    pub len: u32,
    pub orig_len: u32,
    pub ts_ns: u64,
    pub number: u64,
    pub link: LinkType,
}

/// Packets on their way to the sample thread, back to back in one buffer.
pub(super) struct PacketChunk {
    /// When its first packet was read.
    pub t: Instant,
    pub data: Vec<u8>,
    pub pkts: Vec<PktRef>,
}

impl PacketChunk {
    fn new() -> Self {
        PacketChunk {
            t: Instant::now(),
            data: Vec::with_capacity(64 << 10),
            pkts: Vec::with_capacity(CHUNK_PACKETS),
        }
    }
    fn push(&mut self, ts_ns: u64, number: u64, link: LinkType, data: &[u8], orig_len: u32) {
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

/// The capture thread's body: reads `source` until it ends, `opts.stop`
/// is set or the sample thread is gone; an input error is left in `err`.
pub(super) fn capture(
    source: Source,
    opts: &CaptureOptions,
    tx: SyncSender<PacketChunk>,
    c: &Counters,
    err: &Mutex<Option<String>>,
) {
    match source {
        Source::Capture(r) => capture_file(*r, opts, tx, c, err),
        Source::Live(l) => capture_live(l, opts, tx, c, err),
    }
}

fn capture_file(
    mut reader: CaptureReader,
    opts: &CaptureOptions,
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
    mut cap: LiveCapture,
    opts: &CaptureOptions,
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
        match cap.next_frame() {
            Ok(Some(f)) => {
                chunk.push(f.ts_ns, f.number, f.link, f.data, f.orig_len);
                c.packets_read.fetch_add(1, Relaxed);
            }
            Ok(None) => {
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
pub(super) fn count_decoded(c: &Counters, pkt: &ParsedPacket) {
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
