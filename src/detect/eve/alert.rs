//! The EVE alert of a sample over its model's threshold: which packet it
//! names, the flow it belongs to, its Community ID and gpu-nids' metadata.

use super::community_id::community_id_v1;
use super::{eve_timestamp, format_ip, proto_name, AlertEvent, AlertInfo, AlertMetadata, FlowInfo};
use crate::explain::Explanation;
use crate::ingest::flow::splitmix64;
use crate::ingest::parse::parse_ip;
use crate::ingest::sample::RowPacket;
use crate::ingest::{LinkType, SampleKind, SampleMeta};

/// What `explain` said, as alert metadata: at most this many of each.
pub const EXPLAIN_TOP: usize = 5;

/// How alerts are written: the interface name, the address form, and
/// whether packets come live (no `pcap_cnt`).
pub struct AlertContext<'a> {
    pub iface: Option<&'a str>,
    /// IPv6 compressed (`::`), not in Suricata's default full form.
    pub ipv6_compress: bool,
    pub live: bool,
}

/// The model that alerted.
pub struct AlertModel<'a> {
    /// Checkpoint "model" kind.
    pub kind: &'a str,
    /// The checkpoint file.
    pub file: &'a str,
    pub signature_id: u32,
    pub signature: String,
    pub threshold: f64,
}

/// The sample that alerted: its bytes, metadata and row packets.
pub struct AlertSample<'a> {
    pub kind: SampleKind,
    pub data: &'a [u8],
    pub meta: &'a SampleMeta,
    /// Its rows' packets; the last one completed it.
    pub rows: &'a [RowPacket],
    /// Link type of the packets (flow rows are frames).
    pub link: LinkType,
    /// Bytes per row of a flow sample (unused for images).
    pub flow_l: usize,
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

/// The EVE alert for one sample over its model's threshold. It describes
/// the sample's last packet (the one that completed it, or the last before
/// its group was flushed), as Suricata's alerts describe the packet that
/// triggered them.
pub fn alert_event(
    model: &AlertModel,
    sample: &AlertSample,
    score: f64,
    explanation: Option<&Explanation>,
    cx: &AlertContext,
) -> AlertEvent {
    let (kind, m, rows, flow_l) = (sample.kind, sample.meta, sample.rows, sample.flow_l);
    let ip = |a: std::net::IpAddr| format_ip(a, cx.ipv6_compress);
    let last_row = rows.len().saturating_sub(1);
    let trigger = rows.last().copied().unwrap_or(RowPacket {
        number: m.completed_by,
        len: 0,
        reverse: false,
        ports: None,
    });
    let (row, link) = match kind {
        SampleKind::Images => {
            let o = last_row * crate::ingest::IMAGE_SIDE;
            (
                sample.data.get(o..o + crate::ingest::IMAGE_SIDE),
                LinkType::Raw,
            )
        }
        SampleKind::Flows => (
            sample.data.get(last_row * flow_l..(last_row + 1) * flow_l),
            sample.link,
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
    for r in rows {
        if r.reverse {
            ptc += 1;
            btc += r.len as u64;
        } else {
            pts += 1;
            bts += r.len as u64;
        }
    }
    let mut md = AlertMetadata {
        gpu_nids_model: [model.kind.to_string()],
        gpu_nids_model_file: [model.file.to_string()],
        gpu_nids_sample: [match kind {
            SampleKind::Images => "image",
            SampleKind::Flows => "flow",
        }
        .into()],
        gpu_nids_score: [score.to_string()],
        gpu_nids_threshold: [model.threshold.to_string()],
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
            .filter_map(|&(r, _)| rows.get(r))
            .take(EXPLAIN_TOP)
            .map(|r| r.number.to_string())
            .collect();
    }
    AlertEvent {
        timestamp: eve_timestamp(m.last_ts_ns),
        flow_id: flow_id(kind, m),
        in_iface: cx.iface.map(str::to_string),
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
            signature_id: model.signature_id,
            rev: 1,
            signature: model.signature.clone(),
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
