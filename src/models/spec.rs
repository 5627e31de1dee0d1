//! How a model's samples are made from packets. A checkpoint stores its model's
//! spec under "samples", so scoring and detection build exactly the samples the
//! model was trained on.

use clap::ValueEnum;
use serde::{Deserialize, Serialize};

use crate::ingest::{FlowOptions, ImageOptions, SampleKind, IMAGE_LEN};

#[derive(Clone, Copy, Debug, PartialEq, Eq, ValueEnum, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Pair {
    /// A→B and B→A are two groups (docs/MODELS.md §1 default).
    Directional,
    /// A→B and B→A share one group.
    Undirected,
}

/// Traffic images: 64 packets' headers of one address pair (docs/MODELS.md §1).
#[derive(Clone, Debug, Serialize, Deserialize, PartialEq)]
pub struct ImageSpec {
    pub pair: Pair,
    pub min_packets: usize,
    pub mask_addresses: bool,
}

impl Default for ImageSpec {
    fn default() -> Self {
        ImageSpec {
            pair: Pair::Directional,
            min_packets: 8,
            mask_addresses: false,
        }
    }
}

/// Flow samples: the first `n` packets × `l` bytes of a 5-tuple flow (docs/MODELS.md §3).
#[derive(Clone, Debug, Serialize, Deserialize, PartialEq)]
pub struct FlowSpec {
    pub kind: String,
    pub n: usize,
    pub l: usize,
    pub anonymise: bool,
}

impl FlowSpec {
    pub fn new(anonymise: bool) -> Self {
        FlowSpec {
            kind: "flows".into(),
            n: 4,
            l: 80,
            anonymise,
        }
    }
}

/// Either kind of sample; serialised as the inner spec (the checkpoint's model
/// kind says which).
#[derive(Clone, Debug, PartialEq)]
pub enum SampleSpec {
    Images(ImageSpec),
    Flows(FlowSpec),
}

impl SampleSpec {
    pub fn kind(&self) -> SampleKind {
        match self {
            SampleSpec::Images(_) => SampleKind::Images,
            SampleSpec::Flows(_) => SampleKind::Flows,
        }
    }

    pub fn sample_len(&self) -> usize {
        match self {
            SampleSpec::Images(_) => IMAGE_LEN,
            SampleSpec::Flows(f) => f.n * f.l,
        }
    }

    pub fn to_json(&self) -> serde_json::Value {
        match self {
            SampleSpec::Images(s) => serde_json::to_value(s),
            SampleSpec::Flows(s) => serde_json::to_value(s),
        }
        .expect("sample specs serialise")
    }

    /// The spec of `kind` stored as `json`.
    pub fn from_json(kind: SampleKind, json: &str) -> serde_json::Result<SampleSpec> {
        Ok(match kind {
            SampleKind::Images => SampleSpec::Images(serde_json::from_str(json)?),
            SampleKind::Flows => SampleSpec::Flows(serde_json::from_str(json)?),
        })
    }

    pub fn image_options(s: &ImageSpec) -> ImageOptions {
        ImageOptions {
            undirected: s.pair == Pair::Undirected,
            min_packets: s.min_packets,
            mask_addresses: s.mask_addresses,
            ..ImageOptions::default()
        }
    }

    pub fn flow_options(s: &FlowSpec) -> FlowOptions {
        FlowOptions {
            n: s.n,
            l: s.l,
            anonymise: s.anonymise,
            max_groups: crate::ingest::flow::default_max_groups_flows(s.n, s.l),
        }
    }
}
