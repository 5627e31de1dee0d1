//! Alerts and statistics as Suricata EVE JSON: one object per line, field
//! names and formats as Suricata writes them, so that what ingests
//! Suricata's eve.json (Filebeat's Suricata module, Splunk, Wazuh, jq)
//! takes these lines unchanged.
//!
//! This module holds the event types and the writer; [`alert`] and
//! [`stats`] map the detector's samples and counters onto them, and
//! [`community_id`] computes the flow hash alerts carry.

pub mod alert;
pub mod community_id;
pub mod stats;

use std::fs::{File, OpenOptions};
use std::io::{self, Write};
use std::net::IpAddr;
use std::path::Path;

use serde::Serialize;

/// Packet time as Suricata prints it: ISO 8601, microseconds, and the zone
/// offset without a colon (`2017-07-03T12:08:01.123456+0000`).
pub fn eve_timestamp(ts_ns: u64) -> String {
    let mut s = crate::util::iso8601_us(ts_ns);
    if s.ends_with("+00:00") {
        s.truncate(s.len() - 6);
        s.push_str("+0000");
    }
    s
}

/// Name of an IP protocol as Suricata's `proto` field gives it: its name
/// from Suricata's own table, or the decimal number where it has none.
pub fn proto_name(p: u8) -> String {
    match PROTO_NAMES[p as usize] {
        "" => p.to_string(),
        n => n.to_string(),
    }
}

/// Suricata's `proto` name for each IP protocol number, from its
/// `known_proto` table (IANA keywords); `""`: Suricata writes the number.
#[rustfmt::skip]
const PROTO_NAMES: [&str; 256] = [
    "HOPOPT", "ICMP", "IGMP", "GGP", "IP-in-IP", "ST", "TCP", "CBT", "EGP", "IGP", "BBN-RCC-MON",
    "NVP-II", "PUP", "ARGUS", "EMCON", "XNET", "CHAOS", "UDP", "MUX", "DCN-MEAS", "HMP", "PRM",
    "XNS-IDP", "TRUNK-1", "TRUNK-2", "LEAF-1", "LEAF-2", "RDP", "IRTP", "ISO-TP4", "NETBLT",
    "MFE-NSP", "MERIT-INP", "DCCP", "3PC", "IDPR", "XTP", "DDP", "IDPR-CMTP", "TP++", "IL", "IPv6",
    "SDRP", "IPv6-Route", "IPv6-Frag", "IDRP", "RSVP", "GRE", "DSR", "BNA", "ESP", "AH", "I-NLSP",
    "SwIPe", "NARP", "MOBILE", "TLSP", "SKIP", "IPv6-ICMP", "IPv6-NoNxt", "IPv6-Opts", "Any",
    "CFTP", "Any", "SAT-EXPAK", "KRYPTOLAN", "RVD", "IPPC", "Any", "SAT-MON", "VISA", "IPCU",
    "CPNX", "CPHB", "WSN", "PVP", "BR-SAT-MON", "SUN-ND", "WB-MON", "WB-EXPAK", "ISO-IP", "VMTP",
    "SECURE-VMTP", "VINES", "TTP", "NSFNET-IGP", "DGP", "TCF", "EIGRP", "OSPF", "Sprite-RPC",
    "LARP", "MTP", "AX.25", "OS", "MICP", "SCC-SP", "ETHERIP", "ENCAP", "Any", "GMTP", "IFMP",
    "PNNI", "PIM", "ARIS", "SCPS", "QNX", "A/N", "IPComp", "SNP", "Compaq-Peer", "IPX-in-IP",
    "VRRP", "PGM", "Any", "L2TP", "DDX", "IATP", "STP", "SRP", "UTI", "SMP", "SM", "PTP", "IS-IS",
    "FIRE", "CRTP", "CRUDP", "SSCOPMCE", "IPLT", "SPS", "PIPE", "SCTP", "FC", "RSVP-E2E-IGNORE",
    "Mobility", "UDPLite", "MPLS-in-IP", "manet", "HIP", "Shim6", "WESP", "ROHC", "Ethernet", "",
    "", "", "", "", "", "", "", "", "", "", "", "", "", "", "", "", "", "", "", "", "", "", "", "",
    "", "", "", "", "", "", "", "", "", "", "", "", "", "", "", "", "", "", "", "", "", "", "", "",
    "", "", "", "", "", "", "", "", "", "", "", "", "", "", "", "", "", "", "", "", "", "", "", "",
    "", "", "", "", "", "", "", "", "", "", "", "", "", "", "", "", "", "", "", "", "", "", "", "",
    "", "", "", "", "", "", "", "", "", "", "", "", "", "", "",
];

/// An address as Suricata writes it. IPv6 by default in full, each group
/// four hex digits (Suricata's `ipv6-compress: no`); compressed (RFC 5952)
/// on request. IPv4 as a dotted quad either way.
pub fn format_ip(ip: IpAddr, compress_v6: bool) -> String {
    match ip {
        IpAddr::V6(v) if !compress_v6 => {
            let s = v.segments();
            format!(
                "{:04x}:{:04x}:{:04x}:{:04x}:{:04x}:{:04x}:{:04x}:{:04x}",
                s[0], s[1], s[2], s[3], s[4], s[5], s[6], s[7]
            )
        }
        _ => ip.to_string(),
    }
}

#[derive(Clone, Debug, Serialize, serde::Deserialize, PartialEq)]
pub struct AlertInfo {
    pub action: String,
    pub gid: u32,
    pub signature_id: u32,
    pub rev: u32,
    pub signature: String,
    pub category: String,
    pub severity: u32,
    /// What gpu-nids adds (model, score, explanation), as rule metadata.
    pub metadata: AlertMetadata,
}

/// gpu-nids' facts of an alert in the form of Suricata rule metadata (the
/// schema allows `alert.metadata` any key whose value is a list of
/// strings); the keys are stable, docs/DETECT.md lists them.
#[derive(Clone, Debug, Default, Serialize, serde::Deserialize, PartialEq)]
pub struct AlertMetadata {
    /// Checkpoint "model" kind: vae, doc-ids, ae, conv-ae.
    pub gpu_nids_model: [String; 1],
    /// The checkpoint file the alert came from.
    pub gpu_nids_model_file: [String; 1],
    /// "image" (per address pair) or "flow".
    pub gpu_nids_sample: [String; 1],
    pub gpu_nids_score: [String; 1],
    pub gpu_nids_threshold: [String; 1],
    /// Times of the sample's first and last packet.
    pub gpu_nids_first_ts: [String; 1],
    pub gpu_nids_last_ts: [String; 1],
    /// Packets in the sample.
    pub gpu_nids_sample_packets: [String; 1],
    /// Packet number of the sample's first packet.
    pub gpu_nids_first_pcap_cnt: [String; 1],
    /// With an explanation: the top header fields, largest share first.
    #[serde(skip_serializing_if = "Vec::is_empty", default)]
    pub gpu_nids_fields: Vec<String>,
    /// With an explanation: the top packets' numbers, largest share first.
    #[serde(skip_serializing_if = "Vec::is_empty", default)]
    pub gpu_nids_packets: Vec<String>,
}

/// The flow (or, for an image, the pair window) an alert belongs to, as
/// Suricata's alert `flow` object: counts up to the alerting packet.
#[derive(Clone, Debug, Serialize, serde::Deserialize, PartialEq)]
pub struct FlowInfo {
    pub pkts_toserver: u64,
    pub pkts_toclient: u64,
    pub bytes_toserver: u64,
    pub bytes_toclient: u64,
    /// Time of the flow's first packet.
    pub start: String,
    /// The flow's initiator (its first packet's source) and responder.
    pub src_ip: String,
    pub dest_ip: String,
    #[serde(skip_serializing_if = "Option::is_none", default)]
    pub src_port: Option<u16>,
    #[serde(skip_serializing_if = "Option::is_none", default)]
    pub dest_port: Option<u16>,
}

/// One alert: the fields describe the packet that triggered it (the last
/// packet of the sample), as Suricata's alerts describe theirs.
#[derive(Clone, Debug, Serialize, serde::Deserialize, PartialEq)]
pub struct AlertEvent {
    pub timestamp: String,
    pub flow_id: u64,
    #[serde(skip_serializing_if = "Option::is_none", default)]
    pub in_iface: Option<String>,
    /// Packets read from a file or stdin only (Suricata leaves it out live).
    #[serde(skip_serializing_if = "Option::is_none", default)]
    pub pcap_cnt: Option<u64>,
    pub event_type: String,
    pub src_ip: String,
    #[serde(skip_serializing_if = "Option::is_none", default)]
    pub src_port: Option<u16>,
    pub dest_ip: String,
    #[serde(skip_serializing_if = "Option::is_none", default)]
    pub dest_port: Option<u16>,
    pub proto: String,
    #[serde(skip_serializing_if = "Option::is_none", default)]
    pub icmp_type: Option<u8>,
    #[serde(skip_serializing_if = "Option::is_none", default)]
    pub icmp_code: Option<u8>,
    pub community_id: String,
    pub alert: AlertInfo,
    /// "to_server" when the packet goes the flow's way, else "to_client".
    pub direction: String,
    pub flow: FlowInfo,
}

/// A stats line, `timestamp` first as Suricata writes it.
#[derive(Clone, Debug, Serialize)]
pub struct StatsEvent {
    pub timestamp: String,
    pub event_type: &'static str,
    pub stats: serde_json::Value,
}

/// Where EVE lines go. Lines are only ever handed to the OS whole: each
/// call writes complete lines with one `write_all` on an unbuffered
/// handle, so a reader following the file (tail -f, Filebeat) never sees
/// a line cut where a buffer happened to fill, and a kill between calls
/// leaves only whole lines behind.
pub struct EveWriter {
    out: Box<dyn Write + Send>,
    buf: Vec<u8>,
    pub lines: u64,
}

impl EveWriter {
    pub fn new(out: Box<dyn Write + Send>) -> Self {
        EveWriter {
            out,
            buf: Vec::with_capacity(64 << 10),
            lines: 0,
        }
    }
    pub fn stdout() -> Self {
        Self::new(Box::new(io::stdout()))
    }
    /// Appends to `path` (as Suricata does with its eve.json).
    pub fn append(path: &Path) -> io::Result<Self> {
        if let Some(d) = path.parent().filter(|d| !d.as_os_str().is_empty()) {
            std::fs::create_dir_all(d)?;
        }
        let f: File = OpenOptions::new().create(true).append(true).open(path)?;
        Ok(Self::new(Box::new(f)))
    }
    pub fn sink() -> Self {
        Self::new(Box::new(io::sink()))
    }

    /// Queues one event as a line; nothing reaches the output before
    /// [`EveWriter::flush_lines`].
    pub fn push<T: Serialize>(&mut self, ev: &T) -> io::Result<()> {
        serde_json::to_writer(&mut self.buf, ev).map_err(io::Error::other)?;
        self.buf.push(b'\n');
        self.lines += 1;
        Ok(())
    }

    /// Queues one already formatted event (one line of JSON, no newline).
    pub fn push_line(&mut self, line: &str) -> io::Result<()> {
        self.buf.extend_from_slice(line.as_bytes());
        self.buf.push(b'\n');
        self.lines += 1;
        Ok(())
    }

    /// Hands every queued line to the output in one write.
    pub fn flush_lines(&mut self) -> io::Result<()> {
        if !self.buf.is_empty() {
            self.out.write_all(&self.buf)?;
            self.out.flush()?;
            self.buf.clear();
        }
        Ok(())
    }
}
