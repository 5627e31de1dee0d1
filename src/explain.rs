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
