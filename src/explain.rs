//! Why an alert fired, in the terms a network engineer reads: which header
//! fields and which packets of the sample carried the score.
//!
//! A scorer that can explain returns one `Explanation` per alerted sample;
//! `detect` writes it into the alert (EVE `alert.metadata`), `score` into its
//! rows, `eval` beside the top-anomaly pictures.

/// The parts of one sample that drove its score, largest first.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct Explanation {
    /// Header fields by name (`ip.ttl`, `tcp.flags`, `udp.length`, ...) and
    /// their share of the score (0..1).
    pub fields: Vec<(String, f64)>,
    /// Packets by their row (image) or index (flow) within the sample, and
    /// their share of the score (0..1).
    pub packets: Vec<(usize, f64)>,
}

pub mod fields;

use std::collections::HashMap;

/// How many fields and packets an explanation lists.
pub const TOP: usize = 5;

impl Explanation {
    /// The largest parts of `weights` (packet, field, weight ≥ 0), each as
    /// its share of the total: fields summed over packets, packets summed
    /// over fields (padding counts for fields, not for packets).
    pub fn from_weights(weights: &[(usize, &str, f64)], top: usize) -> Explanation {
        let total: f64 = weights.iter().map(|w| w.2.max(0.0)).sum();
        if total <= 0.0 || !total.is_finite() {
            return Explanation::default();
        }
        let mut by_field: HashMap<&str, f64> = HashMap::new();
        let mut by_packet: HashMap<usize, f64> = HashMap::new();
        for &(p, name, w) in weights {
            let w = w.max(0.0);
            *by_field.entry(name).or_default() += w;
            if name != fields::PAD {
                *by_packet.entry(p).or_default() += w;
            }
        }
        let mut f: Vec<(String, f64)> = by_field
            .into_iter()
            .filter(|&(_, w)| w > 0.0)
            .map(|(n, w)| (n.to_string(), w / total))
            .collect();
        // Ties by name, so that equal inputs give equal output.
        f.sort_by(|a, b| b.1.total_cmp(&a.1).then_with(|| a.0.cmp(&b.0)));
        f.truncate(top);
        let mut p: Vec<(usize, f64)> = by_packet
            .into_iter()
            .filter(|&(_, w)| w > 0.0)
            .map(|(k, w)| (k, w / total))
            .collect();
        p.sort_by(|a, b| b.1.total_cmp(&a.1).then_with(|| a.0.cmp(&b.0)));
        p.truncate(top);
        Explanation {
            fields: f,
            packets: p,
        }
    }

    /// An image's score Σ|x − x̂| split over its pixels: `err` holds
    /// |x − x̂| per pixel, row after row (one row per packet).
    pub fn from_image_errors(image: &[u8], err: &[f32], side: usize, top: usize) -> Explanation {
        let mut w = Vec::with_capacity(image.len());
        for (r, (row, e)) in image.chunks(side).zip(err.chunks(side)).enumerate() {
            for (name, &v) in fields::image_row(row).into_iter().zip(e) {
                w.push((r, name, v as f64));
            }
        }
        Explanation::from_weights(&w, top)
    }

    /// `fields` as "name:share;…" and `packets` as "index:share;…" (CSV cells).
    pub fn to_cells(&self) -> (String, String) {
        let f = self
            .fields
            .iter()
            .map(|(n, s)| format!("{n}:{s:.3}"))
            .collect::<Vec<_>>()
            .join(";");
        let p = self
            .packets
            .iter()
            .map(|(k, s)| format!("{k}:{s:.3}"))
            .collect::<Vec<_>>()
            .join(";");
        (f, p)
    }

    /// `{"fields": [{"field", "share"}…], "packets": [{"packet", "share"}…]}`.
    pub fn to_json(&self) -> serde_json::Value {
        let r = |v: f64| (v * 1e4).round() / 1e4;
        serde_json::json!({
            "fields": self.fields.iter().map(|(n, s)| serde_json::json!({"field": n, "share": r(*s)})).collect::<Vec<_>>(),
            "packets": self.packets.iter().map(|(k, s)| serde_json::json!({"packet": k, "share": r(*s)})).collect::<Vec<_>>(),
        })
    }
}

/// One byte range of a flow sample to occlude: a header field of one
/// packet, or (field None) the whole packet.
#[derive(Clone, Debug, PartialEq)]
pub struct Occlusion {
    pub packet: usize,
    pub field: Option<&'static str>,
    /// Byte offsets within the sample.
    pub bytes: Vec<usize>,
}

/// The occlusions of a flow sample of `n` rows of `l` bytes: each field of
/// each packet (bytes that are all zero already are left out, zeroing them
/// changes nothing), and each packet's row as a whole. Zero is the value a
/// flow shorter than n packets has in its missing rows, so a zeroed packet
/// reads as "this packet absent".
pub fn flow_occlusions(sample: &[u8], n: usize, l: usize) -> Vec<Occlusion> {
    let mut out = Vec::new();
    for p in 0..n {
        let row = &sample[p * l..((p + 1) * l).min(sample.len())];
        if row.iter().all(|&b| b == 0) {
            continue;
        }
        let names = fields::frame_row(row);
        let mut order: Vec<&'static str> = Vec::new();
        let mut bytes: HashMap<&'static str, Vec<usize>> = HashMap::new();
        for (i, &name) in names.iter().enumerate() {
            if row[i] == 0 {
                continue;
            }
            let e = bytes.entry(name).or_default();
            if e.is_empty() {
                order.push(name);
            }
            e.push(p * l + i);
        }
        for name in order {
            out.push(Occlusion {
                packet: p,
                field: Some(name),
                bytes: bytes.remove(name).unwrap_or_default(),
            });
        }
        out.push(Occlusion {
            packet: p,
            field: None,
            bytes: (p * l..p * l + row.len()).collect(),
        });
    }
    out
}

/// The explanation from occlusion scores: `base` the sample's score,
/// `scores[k]` its score with `occ[k]` zeroed. A part weighs what zeroing
/// it lowers the score by (raising it says the part looked normal).
/// Field shares are of the summed field drops, packet shares of the summed
/// packet drops.
pub fn from_occlusions(base: f64, occ: &[Occlusion], scores: &[f64], top: usize) -> Explanation {
    let drop = |s: f64| (base - s).max(0.0);
    let fields: Vec<(usize, &str, f64)> = occ
        .iter()
        .zip(scores)
        .filter_map(|(o, &s)| o.field.map(|f| (o.packet, f, drop(s))))
        .collect();
    let packets: Vec<(usize, &str, f64)> = occ
        .iter()
        .zip(scores)
        .filter(|(o, _)| o.field.is_none())
        .map(|(o, &s)| (o.packet, "packet", drop(s)))
        .collect();
    Explanation {
        fields: Explanation::from_weights(&fields, top).fields,
        packets: Explanation::from_weights(&packets, top).packets,
    }
}
