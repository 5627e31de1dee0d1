//! Sample building: the thread that parses the captured packets, feeds
//! them to one builder per sample stream, flushes idle groups on packet
//! time (live, on packet time plus the quiet wall time) and hands the
//! finished samples on, with its packet clock, to the scoring loop.

use std::sync::atomic::{AtomicBool, Ordering::Relaxed};
use std::sync::mpsc::{Receiver, RecvTimeoutError, SyncSender, TrySendError};
use std::sync::Arc;
use std::time::Instant;

use super::capture::{count_decoded, PacketChunk, POLL};
use super::counters::Counters;
use super::scorer::StreamSpec;
use crate::ingest::sample::RowPacket;
use crate::ingest::{
    Builder, FlowBuilder, Frame, ImageBuilder, LinkType, PacketLabel, ParsedPacket, SampleMeta,
};

/// Sample chunks in flight between the sample thread and the scoring loop.
pub(super) const SAMPLE_QUEUE: usize = 16;

/// A finished sample on its way to the scorers.
pub(super) struct SampleMsg {
    pub stream: usize,
    /// Emission order across all streams.
    pub seq: u64,
    pub data: Vec<u8>,
    pub meta: SampleMeta,
    /// Its rows' packets; the last one triggered it.
    pub rows: Vec<RowPacket>,
    /// Link type of the packets (flow rows are frames).
    pub link: LinkType,
    /// When the packet that completed it was read (or the flush ran).
    pub t: Instant,
}

/// What the sample thread hands on: the samples it emitted and its packet
/// clock after them (the latest packet time, or live the virtual time of
/// a quiet wire); sent with no samples too, so the clock moves on.
pub(super) struct SampleChunk {
    pub samples: Vec<SampleMsg>,
    pub clock: u64,
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
        let mut rows = self.builders[si].take_rows().into_iter();
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

/// The sample thread's body: builds samples of `streams` from the chunks
/// on `rx`, flushing groups idle for `idle` ns of packet time, until the
/// capture ends (or, once `stop` is set, until what it already handed
/// over is read), then closes every group.
pub(super) fn build_samples(
    streams: Vec<StreamSpec>,
    idle: u64,
    stop: Arc<AtomicBool>,
    live: bool,
    rx: Receiver<PacketChunk>,
    tx: SyncSender<SampleChunk>,
    c: Arc<Counters>,
) {
    let mut b = Building::new(&streams);
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
        if stop.load(Relaxed) {
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
