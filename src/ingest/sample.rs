//! Samples, their metadata, and the in-memory sample set.

use super::parse::{addr_to_ip, Addr};

/// Fixed size of one metadata record on disk (little-endian fields, then
/// zero padding so that fields can be added without changing the stride).
pub const META_LEN: usize = 96;

/// The label of one packet: malicious or not, and the id of its attack or
/// class name in the [`NameTable`].
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct PacketLabel {
    pub malicious: bool,
    pub class_id: u16,
}

/// Scoring and alerting facts about one sample.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct SampleMeta {
    /// Group key: pair images use (src, dst) of the pair (undirected: of its
    /// first packet); flows the addresses and ports of their first packet.
    pub src: Addr,
    pub dst: Addr,
    pub sport: u16,
    pub dport: u16,
    /// IP protocol for flows; 0 for pair images (a pair mixes protocols).
    pub proto: u8,
    /// 0 benign, 1 malicious (any of its packets malicious).
    pub label: u8,
    /// Attack or class name id (index into the name table).
    pub class_id: u16,
    /// Index of the input capture.
    pub file_index: u32,
    /// Packets the sample stands for: an image's rows; a flow's packets
    /// up to the end of the input (not only the first n).
    pub packets: u32,
    pub malicious_packets: u32,
    pub first_ts_ns: u64,
    pub last_ts_ns: u64,
    /// Packet number (1-based, within its capture) of the first packet.
    pub first_packet: u64,
    /// Packet number that completed the sample (the 64th row, the n-th
    /// flow packet, or the last packet seen before a flush).
    pub completed_by: u64,
}

impl SampleMeta {
    pub fn src_ip(&self) -> std::net::IpAddr {
        addr_to_ip(&self.src)
    }
    pub fn dst_ip(&self) -> std::net::IpAddr {
        addr_to_ip(&self.dst)
    }

    pub fn to_bytes(&self) -> [u8; META_LEN] {
        let mut b = [0u8; META_LEN];
        b[0..16].copy_from_slice(&self.src);
        b[16..32].copy_from_slice(&self.dst);
        b[32..34].copy_from_slice(&self.sport.to_le_bytes());
        b[34..36].copy_from_slice(&self.dport.to_le_bytes());
        b[36] = self.proto;
        b[37] = self.label;
        b[38..40].copy_from_slice(&self.class_id.to_le_bytes());
        b[40..44].copy_from_slice(&self.file_index.to_le_bytes());
        b[44..48].copy_from_slice(&self.packets.to_le_bytes());
        b[48..52].copy_from_slice(&self.malicious_packets.to_le_bytes());
        b[56..64].copy_from_slice(&self.first_ts_ns.to_le_bytes());
        b[64..72].copy_from_slice(&self.last_ts_ns.to_le_bytes());
        b[72..80].copy_from_slice(&self.first_packet.to_le_bytes());
        b[80..88].copy_from_slice(&self.completed_by.to_le_bytes());
        b
    }

    /// Decodes a record; `b` must hold at least [`META_LEN`] bytes.
    pub fn from_bytes(b: &[u8]) -> Self {
        let u16_ = |i: usize| u16::from_le_bytes([b[i], b[i + 1]]);
        let u32_ = |i: usize| u32::from_le_bytes(b[i..i + 4].try_into().unwrap_or_default());
        let u64_ = |i: usize| u64::from_le_bytes(b[i..i + 8].try_into().unwrap_or_default());
        let mut src = [0u8; 16];
        let mut dst = [0u8; 16];
        src.copy_from_slice(&b[0..16]);
        dst.copy_from_slice(&b[16..32]);
        SampleMeta {
            src,
            dst,
            sport: u16_(32),
            dport: u16_(34),
            proto: b[36],
            label: b[37],
            class_id: u16_(38),
            file_index: u32_(40),
            packets: u32_(44),
            malicious_packets: u32_(48),
            first_ts_ns: u64_(56),
            last_ts_ns: u64_(64),
            first_packet: u64_(72),
            completed_by: u64_(80),
        }
    }
}

/// One packet of a sample, in row order. Kept only when a builder is asked
/// to (`detect`): it names the packet behind an alert and maps a row of an
/// explanation to its packet number.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct RowPacket {
    /// Packet number, as [`SampleMeta::first_packet`].
    pub number: u64,
    /// Captured length (what Suricata's flow byte counters add up).
    pub len: u32,
    /// Sent by the sample's `dst` (a reply), not its `src`.
    pub reverse: bool,
    /// Source and destination port (TCP, UDP, SCTP with its header seen):
    /// an image row leaves the SCTP header out.
    pub ports: Option<(u16, u16)>,
}

/// One finished sample: `data` is 4096 bytes for an image, n·l for a flow.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Sample {
    pub data: Vec<u8>,
    pub meta: SampleMeta,
}

/// A flow whose label or packet count changed after its sample was
/// emitted (the flow's label covers all of its packets). `seq` is the
/// emission index within the builder that produced it.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct SampleUpdate {
    pub seq: u64,
    pub label: u8,
    pub class_id: u16,
    pub packets: u32,
    pub malicious_packets: u32,
    pub last_ts_ns: u64,
}

impl SampleUpdate {
    pub fn apply(&self, m: &mut SampleMeta) {
        m.label = self.label;
        m.class_id = self.class_id;
        m.packets = self.packets;
        m.malicious_packets = self.malicious_packets;
        m.last_ts_ns = self.last_ts_ns;
    }
}

/// Interned attack/class names; ids are stable in insertion order.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct NameTable {
    names: Vec<String>,
}

impl NameTable {
    pub fn new() -> Self {
        Self::default()
    }
    pub fn from_names(names: Vec<String>) -> Self {
        NameTable { names }
    }
    pub fn intern(&mut self, name: &str) -> u16 {
        if let Some(i) = self.names.iter().position(|n| n == name) {
            return i as u16;
        }
        self.names.push(name.to_string());
        (self.names.len() - 1) as u16
    }
    pub fn get(&self, id: u16) -> Option<&str> {
        self.names.get(id as usize).map(|s| s.as_str())
    }
    pub fn names(&self) -> &[String] {
        &self.names
    }
}

/// Read access shared by the in-memory [`SampleSet`] and a memory-mapped
/// dataset (the data module's `Dataset`), so either can be loaded.
pub trait Samples {
    fn len(&self) -> usize;
    fn is_empty(&self) -> bool {
        self.len() == 0
    }
    fn sample_len(&self) -> usize;
    fn sample(&self, i: usize) -> &[u8];
    /// All samples back to back (`len() * sample_len()` bytes).
    fn data(&self) -> &[u8];
    fn labels(&self) -> &[u8];
    fn meta(&self, i: usize) -> SampleMeta;
    fn class_names(&self) -> &[String];
}

/// Samples held in memory: what `ingest` produces when training is given
/// captures instead of a dataset directory.
#[derive(Clone, Debug, Default)]
pub struct SampleSet {
    pub sample_len: usize,
    pub data: Vec<u8>,
    pub labels: Vec<u8>,
    pub meta: Vec<SampleMeta>,
    pub names: NameTable,
}

impl SampleSet {
    pub fn new(sample_len: usize) -> Self {
        SampleSet {
            sample_len,
            ..Default::default()
        }
    }
    pub fn push(&mut self, s: Sample) {
        debug_assert_eq!(s.data.len(), self.sample_len);
        self.data.extend_from_slice(&s.data);
        self.labels.push(s.meta.label);
        self.meta.push(s.meta);
    }
}

impl Samples for SampleSet {
    fn len(&self) -> usize {
        self.labels.len()
    }
    fn sample_len(&self) -> usize {
        self.sample_len
    }
    fn sample(&self, i: usize) -> &[u8] {
        &self.data[i * self.sample_len..(i + 1) * self.sample_len]
    }
    fn data(&self) -> &[u8] {
        &self.data
    }
    fn labels(&self) -> &[u8] {
        &self.labels
    }
    fn meta(&self, i: usize) -> SampleMeta {
        self.meta[i]
    }
    fn class_names(&self) -> &[String] {
        self.names.names()
    }
}
