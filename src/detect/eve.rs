//! Alerts and statistics as Suricata EVE JSON: one object per line, field
//! names and formats as Suricata writes them, so that what ingests
//! Suricata's eve.json (Filebeat's Suricata module, Splunk, Wazuh, jq)
//! takes these lines unchanged.

use std::fs::{File, OpenOptions};
use std::io::{self, Write};
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

/// Name of an IP protocol as Suricata's `proto` field gives it; numbers
/// without a name are printed as decimal strings, as Suricata does.
pub fn proto_name(p: u8) -> String {
    match p {
        0 => "IP",
        1 => "ICMP",
        2 => "IGMP",
        4 => "IPIP",
        6 => "TCP",
        17 => "UDP",
        41 => "IPv6",
        47 => "GRE",
        50 => "ESP",
        51 => "AH",
        58 => "IPv6-ICMP",
        132 => "SCTP",
        _ => return p.to_string(),
    }
    .to_string()
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
}

/// What gpu-nids adds beside Suricata's fields.
#[derive(Clone, Debug, Serialize, serde::Deserialize, PartialEq)]
pub struct GpuNidsInfo {
    /// Checkpoint "model" kind: vae, doc-ids, ae, conv-ae.
    pub model: String,
    /// The checkpoint file the alert came from.
    pub model_file: String,
    /// "image" (per address pair) or "flow".
    pub sample: String,
    pub score: f64,
    pub threshold: f64,
    pub first_ts: String,
    pub last_ts: String,
    pub packets: u32,
    /// Packet number of the sample's first packet (pcap_cnt is its last).
    pub first_pcap_cnt: u64,
}

#[derive(Clone, Debug, Serialize, serde::Deserialize, PartialEq)]
pub struct AlertEvent {
    pub timestamp: String,
    pub flow_id: u64,
    #[serde(skip_serializing_if = "Option::is_none", default)]
    pub in_iface: Option<String>,
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
    pub pcap_cnt: u64,
    pub alert: AlertInfo,
    pub gpu_nids: GpuNidsInfo,
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
