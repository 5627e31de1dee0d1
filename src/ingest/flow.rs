//! Flow samples (docs/MODELS.md §3): the first n packets of a bidirectional
//! flow, each its first l frame bytes zero-padded, addresses randomised
//! per flow unless asked to keep them.

use super::parse::{Addr, IpInfo, ParsedPacket};
use super::sample::{PacketLabel, RowPacket, Sample, SampleMeta, SampleUpdate};
use super::table::{Group, GroupTable};

/// Flow state costs its n·l sample buffer plus about this much at peak: a
/// ~190-byte hash slot at a load factor that can fall to one half after the
/// table doubles (old and new tables coexist while it grows), the allocator's
/// header and slack, and the eviction queue entry. Measured on a 5-million-flow
/// flood: 448 here let the process peak at 1.67 GiB (~1.3 kB per flow at the
/// 4×80 default), 192 at 2.1 GB; 1100 sizes the default cap for ~1 GiB.
pub const FLOW_GROUP_OVERHEAD: usize = 1100;

/// What separates one flow from another.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct FlowKey {
    /// Canonical order: (a, pa) ≤ (b, pb).
    pub a: Addr,
    pub b: Addr,
    pub pa: u16,
    pub pb: u16,
    pub proto: u8,
    pub kind: FlowKind,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum FlowKind {
    /// TCP/UDP/SCTP 5-tuple (ports 0 for non-first fragments).
    Ports,
    /// ICMP echo-like messages: addresses and identifier (in `pa`).
    IcmpQuery,
    /// Other ICMP messages: addresses and type (in `pa`).
    IcmpType,
    /// Any other IP protocol: addresses and protocol.
    Proto,
}

/// ICMPv4 types 0, 8, 13–18 and ICMPv6 128/129 carry an identifier that a
/// request and its reply share.
fn icmp_query(proto: u8, t: u8) -> bool {
    match proto {
        1 => matches!(t, 0 | 8 | 13..=18),
        58 => matches!(t, 128 | 129),
        _ => false,
    }
}

impl FlowKey {
    pub fn of(ip: &IpInfo) -> Self {
        let (kind, ps, pd) = match ip.proto {
            // SCTP by its ports too, as Suricata and the Community ID spec key it.
            6 | 17 | 132 => (FlowKind::Ports, ip.sport, ip.dport),
            1 | 58 if ip.has_l4 && icmp_query(ip.proto, ip.icmp_type) => {
                (FlowKind::IcmpQuery, ip.icmp_id, ip.icmp_id)
            }
            1 | 58 => (FlowKind::IcmpType, ip.icmp_type as u16, ip.icmp_type as u16),
            _ => (FlowKind::Proto, 0, 0),
        };
        let (a, pa, b, pb) = if (ip.src, ps) <= (ip.dst, pd) {
            (ip.src, ps, ip.dst, pd)
        } else {
            (ip.dst, pd, ip.src, ps)
        };
        FlowKey {
            a,
            b,
            pa,
            pb,
            proto: ip.proto,
            kind,
        }
    }

    /// Whether the packet's source is endpoint `a` of the key.
    fn src_is_a(&self, ip: &IpInfo) -> bool {
        match self.kind {
            FlowKind::Ports => (ip.src, ip.sport) == (self.a, self.pa),
            _ => ip.src == self.a,
        }
    }

    /// Deterministic per-flow seed (no process randomness: runs repeat).
    pub fn seed(&self) -> u64 {
        let mut h = 0x6a09_e667_f3bc_c908u64;
        let mut eat = |x: u64| h = splitmix64(h ^ x);
        for c in self.a.chunks(8).chain(self.b.chunks(8)) {
            eat(u64::from_le_bytes(c.try_into().unwrap_or_default()));
        }
        eat(((self.pa as u64) << 32)
            | ((self.pb as u64) << 16)
            | ((self.proto as u64) << 8)
            | self.kind as u64);
        h
    }
}

/// The splitmix64 finaliser: a cheap, well-mixed 64-bit hash step.
pub fn splitmix64(mut z: u64) -> u64 {
    z = z.wrapping_add(0x9e37_79b9_7f4a_7c15);
    z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
    z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
    z ^ (z >> 31)
}

/// Random replacement bytes for one endpoint of a flow: 16 address bytes
/// and 8 link-address bytes.
fn endpoint_bytes(seed: u64, endpoint: u64) -> [u8; 24] {
    let mut o = [0u8; 24];
    for (i, c) in o.chunks_mut(8).enumerate() {
        let r = splitmix64(seed ^ splitmix64(endpoint * 4 + i as u64 + 1));
        c.copy_from_slice(&r.to_le_bytes());
    }
    o
}

#[derive(Clone, Debug, serde::Serialize, serde::Deserialize, PartialEq, Eq)]
pub struct FlowOptions {
    /// Packets per sample.
    pub n: usize,
    /// Bytes per packet (from the start of the frame).
    pub l: usize,
    /// Replace MAC and IP address bytes by per-flow random bytes.
    pub anonymise: bool,
    /// Cap on tracked flows; the least recently seen are closed first.
    pub max_groups: usize,
}

impl Default for FlowOptions {
    fn default() -> Self {
        FlowOptions {
            n: 4,
            l: 80,
            anonymise: true,
            max_groups: default_max_groups_flows(4, 80),
        }
    }
}

/// Flows that fit in about 1 GiB with a full sample buffer each.
pub fn default_max_groups_flows(n: usize, l: usize) -> usize {
    (1usize << 30) / (n * l + FLOW_GROUP_OVERHEAD)
}

use super::image::BuilderStats;

struct Flow {
    /// The sample being filled; dropped once emitted.
    buf: Option<Box<[u8]>>,
    count: u32,
    malicious: u32,
    class_id: u16,
    /// Emission index once the sample is out.
    seq: Option<u64>,
    /// Packets or label changed since emission.
    dirty: bool,
    meta: SampleMeta,
    last_seen: u64,
    /// The sample's rows' packets, when tracked.
    rows: Vec<RowPacket>,
}

impl Group for Flow {
    fn last_seen(&self) -> u64 {
        self.last_seen
    }
    fn last_ts(&self) -> u64 {
        self.meta.last_ts_ns
    }
}

/// Streaming flow-sample builder. A sample is emitted at the flow's n-th
/// packet; later packets keep updating the flow's label and counts, and
/// when such a flow closes a [`SampleUpdate`] is queued (see
/// [`FlowBuilder::take_updates`]) so an offline writer can patch it.
pub struct FlowBuilder {
    opts: FlowOptions,
    table: GroupTable<FlowKey, Flow>,
    file_index: u32,
    clock: u64,
    next_seq: u64,
    updates: Vec<SampleUpdate>,
    track_updates: bool,
    stats: BuilderStats,
    track_rows: bool,
    /// Row packets of the samples emitted since the last `take_rows`.
    rows_out: Vec<Vec<RowPacket>>,
    track_late: bool,
    /// (emission index, packet number) of packets that joined a flow after its sample
    /// was emitted, since the last `take_late`.
    late: Vec<(u64, u64)>,
}

impl FlowBuilder {
    pub fn new(opts: FlowOptions, file_index: u32) -> Self {
        FlowBuilder {
            table: GroupTable::new(opts.max_groups),
            opts,
            file_index,
            clock: 0,
            next_seq: 0,
            updates: Vec::new(),
            track_updates: true,
            stats: BuilderStats::default(),
            track_rows: false,
            rows_out: Vec::new(),
            track_late: false,
            late: Vec::new(),
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

    /// Keep the packet numbers of packets past a flow's n-th (per-packet evaluation:
    /// a flow sample stands for all of its packets).
    pub fn set_track_late(&mut self, on: bool) {
        self.track_late = on;
    }

    /// With late tracking: (emission index, packet number) of every packet that joined
    /// an already emitted flow since the last call.
    pub fn take_late(&mut self) -> Vec<(u64, u64)> {
        std::mem::take(&mut self.late)
    }

    /// Live detection has no use for late label changes; turning them off
    /// keeps the update queue from growing.
    pub fn set_track_updates(&mut self, on: bool) {
        self.track_updates = on;
    }

    pub fn sample_len(&self) -> usize {
        self.opts.n * self.opts.l
    }
    pub fn stats(&self) -> &BuilderStats {
        &self.stats
    }
    pub fn open_groups(&self) -> usize {
        self.table.map.len()
    }

    /// Label/count changes of already emitted samples, by emission index.
    pub fn take_updates(&mut self) -> Vec<SampleUpdate> {
        std::mem::take(&mut self.updates)
    }

    /// Adds one packet; a sample completed by it (n-th packet) or emitted
    /// by eviction is appended to `out`.
    pub fn push(&mut self, pkt: &ParsedPacket, label: PacketLabel, out: &mut Vec<Sample>) {
        let Some(ip) = pkt.ip.as_ref() else {
            self.stats.non_ip_packets += 1;
            return;
        };
        self.stats.ip_packets += 1;
        self.clock += 1;
        let key = FlowKey::of(ip);
        let clock = self.clock;
        let file_index = self.file_index;
        let (n, l) = (self.opts.n, self.opts.l);
        let flow = if let Some(f) = self.table.map.get_mut(&key) {
            f
        } else {
            self.stats.groups += 1;
            if let Some((_, g)) = self.table.make_room() {
                self.close(g, out);
            }
            self.table.insert(
                key,
                Flow {
                    buf: Some(vec![0u8; n * l].into_boxed_slice()),
                    count: 0,
                    malicious: 0,
                    class_id: label.class_id,
                    seq: None,
                    dirty: false,
                    meta: SampleMeta {
                        src: ip.src,
                        dst: ip.dst,
                        sport: if key.kind == FlowKind::Ports {
                            ip.sport
                        } else {
                            key.pa
                        },
                        dport: if key.kind == FlowKind::Ports {
                            ip.dport
                        } else {
                            key.pb
                        },
                        proto: ip.proto,
                        file_index,
                        first_ts_ns: pkt.ts_ns,
                        first_packet: pkt.number,
                        ..Default::default()
                    },
                    last_seen: clock,
                    rows: Vec::new(),
                },
            )
        };
        flow.last_seen = clock;
        flow.count = flow.count.saturating_add(1);
        if label.malicious {
            if flow.malicious == 0 {
                flow.class_id = label.class_id;
                flow.dirty = true;
            }
            flow.malicious += 1;
        }
        flow.meta.last_ts_ns = pkt.ts_ns;
        if let Some(buf) = flow.buf.as_mut() {
            let row = (flow.count - 1) as usize;
            let dst = &mut buf[row * l..(row + 1) * l];
            let m = pkt.frame.len().min(l);
            dst[..m].copy_from_slice(&pkt.frame[..m]);
            if self.opts.anonymise {
                anonymise(dst, ip, &key, key.seed());
            }
            flow.meta.completed_by = pkt.number;
            if self.track_rows {
                let m = &flow.meta;
                let reverse = if key.kind == FlowKind::Ports {
                    (ip.src, ip.sport) != (m.src, m.sport)
                } else {
                    ip.src != m.src
                };
                flow.rows.push(RowPacket {
                    number: pkt.number,
                    len: pkt.frame.len() as u32,
                    reverse,
                    ports: ip.ports(),
                });
            }
            if flow.count as usize == n {
                let data = flow.buf.take().map(|b| b.into_vec()).unwrap_or_default();
                flow.seq = Some(self.next_seq);
                flow.dirty = false;
                self.next_seq += 1;
                self.stats.samples += 1;
                if self.track_rows {
                    self.rows_out.push(std::mem::take(&mut flow.rows));
                }
                out.push(Sample {
                    data,
                    meta: Self::meta_of(flow),
                });
            }
        } else {
            flow.dirty = true;
            if let (true, Some(seq)) = (self.track_late, flow.seq) {
                self.late.push((seq, pkt.number));
            }
        }
        self.stats.peak_groups = self.stats.peak_groups.max(self.table.map.len() as u64);
        self.stats.evicted_groups = self.table.evicted;
    }

    fn meta_of(f: &Flow) -> SampleMeta {
        SampleMeta {
            label: (f.malicious > 0) as u8,
            class_id: f.class_id,
            packets: f.count,
            malicious_packets: f.malicious,
            ..f.meta
        }
    }

    fn close(&mut self, mut f: Flow, out: &mut Vec<Sample>) {
        if let Some(buf) = f.buf.take() {
            // Fewer than n packets: the rest of the sample stays zero.
            self.next_seq += 1;
            self.stats.samples += 1;
            if self.track_rows {
                self.rows_out.push(std::mem::take(&mut f.rows));
            }
            out.push(Sample {
                data: buf.into_vec(),
                meta: Self::meta_of(&f),
            });
        } else if f.dirty && self.track_updates {
            let m = Self::meta_of(&f);
            self.updates.push(SampleUpdate {
                seq: f.seq.unwrap_or(0),
                label: m.label,
                class_id: m.class_id,
                packets: m.packets,
                malicious_packets: m.malicious_packets,
                last_ts_ns: m.last_ts_ns,
            });
        }
    }

    fn close_sorted(&mut self, mut flows: Vec<(FlowKey, Flow)>, out: &mut Vec<Sample>) {
        flows.sort_unstable_by_key(|(_, f)| f.meta.first_packet);
        for (_, f) in flows {
            self.close(f, out);
        }
    }

    /// Closes flows idle for longer than `idle_ns` at `now_ns`.
    pub fn flush_idle(&mut self, now_ns: u64, idle_ns: u64, out: &mut Vec<Sample>) {
        let g = self.table.take_idle(now_ns, idle_ns);
        self.close_sorted(g, out);
    }

    /// Closes every flow (end of input): short flows are emitted padded,
    /// long ones queue their final label as an update.
    pub fn finish(&mut self, out: &mut Vec<Sample>) {
        let g = self.table.take_all();
        self.close_sorted(g, out);
        self.stats.evicted_groups = self.table.evicted;
    }
}

/// Overwrites the link and IP address bytes inside one packet's row with
/// the flow's random bytes for the endpoint that owns each address, so a
/// reply swaps them just as the real addresses swap.
fn anonymise(row: &mut [u8], ip: &IpInfo, key: &FlowKey, seed: u64) {
    let src_a = key.src_is_a(ip);
    let (es, ed) = if src_a { (0, 1) } else { (1, 0) };
    let rs = endpoint_bytes(seed, es);
    let rd = endpoint_bytes(seed, ed);
    let mut put = |off: usize, bytes: &[u8]| {
        if off < row.len() {
            let n = bytes.len().min(row.len() - off);
            row[off..off + n].copy_from_slice(&bytes[..n]);
        }
    };
    let (so, dof) = ip.addr_offsets();
    let al = ip.addr_len();
    put(so, &rs[..al]);
    put(dof, &rd[..al]);
    if ip.mac_src.len > 0 {
        put(
            ip.mac_src.off as usize,
            &rs[16..16 + ip.mac_src.len as usize],
        );
    }
    if ip.mac_dst.len > 0 {
        put(
            ip.mac_dst.off as usize,
            &rd[16..16 + ip.mac_dst.len as usize],
        );
    }
}
