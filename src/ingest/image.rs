//! Pair images (docs/MODELS.md §1): one 64-pixel row per packet (L3 + L4
//! headers, no payload, padded with 255), 64 rows per image per
//! (source IP, destination IP) group.

use super::parse::{Addr, ParsedPacket};
use super::sample::{PacketLabel, RowPacket, Sample, SampleMeta};
use super::table::{Group, GroupTable};

pub const IMAGE_SIDE: usize = 64;
pub const IMAGE_LEN: usize = IMAGE_SIDE * IMAGE_SIDE;
const PAD: u8 = 255;

/// Per-group state costs the 4 KiB image buffer plus about this much
/// (key, state, hash-table slot); used to size the default cap.
pub const IMAGE_GROUP_OVERHEAD: usize = 160;

#[derive(Clone, Debug, serde::Serialize, serde::Deserialize, PartialEq, Eq)]
pub struct ImageOptions {
    /// Merge A→B and B→A into one group.
    pub undirected: bool,
    /// A final partial image needs at least this many rows.
    pub min_packets: usize,
    /// Zero the IP address bytes in every row.
    pub mask_addresses: bool,
    /// Cap on the number of open pairs; the least recently seen are
    /// flushed (as if idle) when it is reached.
    pub max_groups: usize,
}

impl Default for ImageOptions {
    fn default() -> Self {
        ImageOptions {
            undirected: false,
            min_packets: 8,
            mask_addresses: false,
            max_groups: default_max_groups_images(),
        }
    }
}

/// Groups that fit in about 1 GiB at the worst case of a full buffer each.
pub fn default_max_groups_images() -> usize {
    (1usize << 30) / (IMAGE_LEN + IMAGE_GROUP_OVERHEAD)
}

/// Counts kept by a builder.
#[derive(Clone, Debug, Default, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct BuilderStats {
    pub ip_packets: u64,
    pub non_ip_packets: u64,
    /// Packets in groups dropped for being shorter than `min_packets`.
    pub unsampled_packets: u64,
    pub unsampled_malicious: u64,
    pub evicted_groups: u64,
    pub samples: u64,
    /// Groups opened (distinct pairs or flows when nothing was evicted).
    pub groups: u64,
    pub peak_groups: u64,
}

struct Pair {
    buf: Vec<u8>,
    rows: u32,
    malicious: u32,
    /// Class of the first packet, replaced by that of the first malicious one.
    class_id: u16,
    src: Addr,
    dst: Addr,
    first_ts: u64,
    last_ts: u64,
    first_packet: u64,
    last_packet: u64,
    last_seen: u64,
    /// The rows' packets, when tracked.
    row_packets: Vec<RowPacket>,
}

impl Group for Pair {
    fn last_seen(&self) -> u64 {
        self.last_seen
    }
    fn last_ts(&self) -> u64 {
        self.last_ts
    }
}

/// Streaming pair-image builder: feed packets in capture order.
pub struct ImageBuilder {
    opts: ImageOptions,
    table: GroupTable<[u8; 32], Pair>,
    file_index: u32,
    clock: u64,
    stats: BuilderStats,
    track_rows: bool,
    /// Row packets of the samples emitted since the last `take_rows`.
    rows_out: Vec<Vec<RowPacket>>,
}

impl ImageBuilder {
    pub fn new(opts: ImageOptions, file_index: u32) -> Self {
        ImageBuilder {
            table: GroupTable::new(opts.max_groups),
            opts,
            file_index,
            clock: 0,
            stats: BuilderStats::default(),
            track_rows: false,
            rows_out: Vec::new(),
        }
    }

    /// Keep each row's packet number, length and direction (`detect`).
    pub fn set_track_rows(&mut self, on: bool) {
        self.track_rows = on;
    }

    /// With row tracking: the row packets of every sample emitted since
    /// the last call, in the order the samples were emitted.
    pub fn take_rows(&mut self) -> Vec<Vec<RowPacket>> {
        std::mem::take(&mut self.rows_out)
    }

    pub fn stats(&self) -> &BuilderStats {
        &self.stats
    }
    pub fn open_groups(&self) -> usize {
        self.table.map.len()
    }

    /// Adds one packet; finished images (its group's 64th row, or groups
    /// evicted to stay under the cap) are appended to `out`.
    pub fn push(&mut self, pkt: &ParsedPacket, label: PacketLabel, out: &mut Vec<Sample>) {
        let Some(ip) = pkt.ip.as_ref() else {
            self.stats.non_ip_packets += 1;
            return;
        };
        self.stats.ip_packets += 1;
        self.clock += 1;
        let mut key = [0u8; 32];
        let (a, b) = if self.opts.undirected && ip.dst < ip.src {
            (&ip.dst, &ip.src)
        } else {
            (&ip.src, &ip.dst)
        };
        key[..16].copy_from_slice(a);
        key[16..].copy_from_slice(b);

        let clock = self.clock;
        let pair = if let Some(p) = self.table.map.get_mut(&key) {
            p
        } else {
            self.stats.groups += 1;
            if let Some((_, g)) = self.table.make_room() {
                self.close(g, out);
            }
            self.table.insert(
                key,
                Pair {
                    // Most pairs in a scan or flood never pass a few rows.
                    buf: Vec::with_capacity(8 * IMAGE_SIDE),
                    rows: 0,
                    malicious: 0,
                    class_id: label.class_id,
                    src: ip.src,
                    dst: ip.dst,
                    first_ts: pkt.ts_ns,
                    last_ts: pkt.ts_ns,
                    first_packet: pkt.number,
                    last_packet: pkt.number,
                    last_seen: clock,
                    row_packets: Vec::new(),
                },
            )
        };
        if pair.rows == 0 {
            pair.class_id = label.class_id;
            pair.src = ip.src;
            pair.dst = ip.dst;
            pair.first_ts = pkt.ts_ns;
            pair.first_packet = pkt.number;
        }
        if label.malicious && pair.malicious == 0 {
            pair.class_id = label.class_id;
        }
        pair.malicious += label.malicious as u32;
        pair.last_ts = pkt.ts_ns;
        pair.last_packet = pkt.number;
        pair.last_seen = clock;
        if self.track_rows {
            pair.row_packets.push(RowPacket {
                number: pkt.number,
                len: pkt.frame.len() as u32,
                reverse: ip.src != pair.src,
                ports: ip.ports(),
            });
        }

        // The row: IP header (with options / extension headers) and the
        // L4 header are contiguous in the frame.
        let start = pair.buf.len();
        pair.buf.resize(start + IMAGE_SIDE, PAD);
        let l3 = ip.l3_off as usize;
        let end = (l3 + ip.l3_len as usize + ip.l4_len as usize)
            .min(pkt.frame.len())
            .min(l3 + IMAGE_SIDE);
        if end > l3 {
            pair.buf[start..start + end - l3].copy_from_slice(&pkt.frame[l3..end]);
        }
        if self.opts.mask_addresses {
            let (s, e) = if ip.version == 4 { (12, 20) } else { (8, 40) };
            let e = e.min(end.saturating_sub(l3));
            if e > s {
                pair.buf[start + s..start + e].fill(0);
            }
        }
        pair.rows += 1;
        if pair.rows as usize == IMAGE_SIDE {
            let data = std::mem::replace(&mut pair.buf, Vec::with_capacity(IMAGE_LEN));
            let meta = Self::meta_of(pair, self.file_index);
            pair.rows = 0;
            pair.malicious = 0;
            self.stats.samples += 1;
            if self.track_rows {
                self.rows_out.push(std::mem::take(&mut pair.row_packets));
            }
            out.push(Sample { data, meta });
        }
        self.stats.peak_groups = self.stats.peak_groups.max(self.table.map.len() as u64);
        self.stats.evicted_groups = self.table.evicted;
    }

    fn meta_of(p: &Pair, file_index: u32) -> SampleMeta {
        SampleMeta {
            src: p.src,
            dst: p.dst,
            label: (p.malicious > 0) as u8,
            class_id: p.class_id,
            file_index,
            packets: p.rows,
            malicious_packets: p.malicious,
            first_ts_ns: p.first_ts,
            last_ts_ns: p.last_ts,
            first_packet: p.first_packet,
            completed_by: p.last_packet,
            ..Default::default()
        }
    }

    /// Emits a closing group's partial image if it has enough rows.
    fn close(&mut self, mut p: Pair, out: &mut Vec<Sample>) {
        if p.rows == 0 {
            return;
        }
        if (p.rows as usize) < self.opts.min_packets {
            self.stats.unsampled_packets += p.rows as u64;
            self.stats.unsampled_malicious += p.malicious as u64;
            return;
        }
        let meta = Self::meta_of(&p, self.file_index);
        p.buf.resize(IMAGE_LEN, PAD);
        self.stats.samples += 1;
        if self.track_rows {
            self.rows_out.push(std::mem::take(&mut p.row_packets));
        }
        out.push(Sample { data: p.buf, meta });
    }

    fn close_sorted(&mut self, mut groups: Vec<([u8; 32], Pair)>, out: &mut Vec<Sample>) {
        // Hash order is random; sort so that datasets repeat byte for byte.
        groups.sort_unstable_by_key(|(_, p)| p.first_packet);
        for (_, p) in groups {
            self.close(p, out);
        }
    }

    /// Flushes groups idle for longer than `idle_ns` at time `now_ns`
    /// (streaming mode).
    pub fn flush_idle(&mut self, now_ns: u64, idle_ns: u64, out: &mut Vec<Sample>) {
        let g = self.table.take_idle(now_ns, idle_ns);
        self.close_sorted(g, out);
    }

    /// Flushes every open group (end of input).
    pub fn finish(&mut self, out: &mut Vec<Sample>) {
        let g = self.table.take_all();
        self.close_sorted(g, out);
        self.stats.evicted_groups = self.table.evicted;
    }
}
