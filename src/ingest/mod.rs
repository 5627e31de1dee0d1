//! Packet ingest: captures → parsed packets → pair images (docs/MODELS.md §1)
//! or flow samples (§3) with labels (§5), into a [`SampleSet`] in memory or
//! a dataset directory ([`dataset`], the format and its writer).
//!
//! Layers, each usable alone (the `detect` command feeds the builders
//! packet by packet):
//! - [`reader::CaptureReader`]: frames (timestamp, link type, bytes, number);
//! - [`parse::ParsedPacket`]: IP/L4 facts of a frame;
//! - [`image::ImageBuilder`], [`flow::FlowBuilder`]: streaming sample builders;
//! - [`labels`]: per-packet labels; [`split`]: the train/test split;
//! - [`ingest`]: the offline driver tying them together.

pub mod dataset;
pub mod flow;
pub mod image;
pub mod labels;
pub mod parse;
pub mod reader;
pub mod sample;
pub mod split;
mod table;

use std::path::Path;
use std::time::Instant;

pub use flow::{FlowBuilder, FlowKey, FlowOptions};
pub use image::{BuilderStats, ImageBuilder, ImageOptions, IMAGE_LEN, IMAGE_SIDE};
pub use labels::{LabelRule, LabelRules, PacketLabeler};
pub use parse::{IpInfo, ParsedPacket};
pub use reader::{expand_inputs, CaptureReader, Frame, InputSource, LinkType, ReadError};
pub use sample::{
    NameTable, PacketLabel, RowPacket, Sample, SampleMeta, SampleSet, SampleUpdate, Samples,
    META_LEN,
};
pub use split::{Side, SplitFilter};

#[derive(
    Clone, Copy, Debug, PartialEq, Eq, serde::Serialize, serde::Deserialize, clap::ValueEnum,
)]
#[serde(rename_all = "lowercase")]
pub enum SampleKind {
    /// 64×64 pair images (docs/MODELS.md §1).
    Images,
    /// n·l-byte flow samples (docs/MODELS.md §3).
    Flows,
}

/// Where a whole input's class name comes from.
#[derive(Clone, Debug, Default, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum ClassSource {
    /// Names come from label rules ("benign" or the attack name).
    #[default]
    Rules,
    /// Every input is this class.
    Fixed(String),
    /// Each input is the class named by its file stem (`Cridex.pcap` →
    /// "Cridex"), for the USTC-TFC2016 reference set.
    FileStem,
}

#[derive(Clone, Copy, Debug, PartialEq, serde::Serialize, serde::Deserialize)]
pub struct SplitOptions {
    pub side: Side,
    pub frac: f64,
}

#[derive(Clone, Debug, serde::Serialize)]
pub struct IngestOptions {
    pub kind: SampleKind,
    pub image: ImageOptions,
    pub flow: FlowOptions,
    #[serde(skip)]
    pub labels: Option<LabelRules>,
    /// Recorded in the dataset header.
    pub labels_file: Option<String>,
    pub class: ClassSource,
    pub split: Option<SplitOptions>,
    /// Show an indicatif bar on stderr.
    #[serde(skip)]
    pub progress: bool,
    /// Print warnings to stderr as they happen (they are always kept in
    /// the per-input reports).
    #[serde(skip)]
    pub print_warnings: bool,
    /// Record which sample each packet went to ([`InputReport::members`]).
    #[serde(skip)]
    pub track_members: bool,
}

impl IngestOptions {
    pub fn new(kind: SampleKind) -> Self {
        IngestOptions {
            kind,
            image: ImageOptions::default(),
            flow: FlowOptions::default(),
            labels: None,
            labels_file: None,
            class: ClassSource::Rules,
            split: None,
            progress: false,
            print_warnings: false,
            track_members: false,
        }
    }
    pub fn sample_len(&self) -> usize {
        match self.kind {
            SampleKind::Images => IMAGE_LEN,
            SampleKind::Flows => self.flow.n * self.flow.l,
        }
    }
    /// Images: [64, 64]; flows: [n, l].
    pub fn sample_shape(&self) -> Vec<usize> {
        match self.kind {
            SampleKind::Images => vec![IMAGE_SIDE, IMAGE_SIDE],
            SampleKind::Flows => vec![self.flow.n, self.flow.l],
        }
    }
}

/// What happened to one input.
#[derive(Clone, Debug, Default, PartialEq, serde::Serialize, serde::Deserialize)]
pub struct InputReport {
    pub path: String,
    pub size: Option<u64>,
    pub sha256: Option<String>,
    pub packets: u64,
    pub ip_packets: u64,
    pub non_ip_packets: u64,
    pub malicious_packets: u64,
    /// Packets left out because they belong to the other split side.
    pub other_side_packets: u64,
    pub samples: u64,
    /// Packets in pairs too short for an image (they get the lowest score
    /// in per-packet evaluation).
    pub unsampled_packets: u64,
    pub unsampled_malicious: u64,
    /// Pairs or flows opened.
    pub groups: u64,
    pub evicted_groups: u64,
    pub peak_groups: u64,
    pub t_split_ns: Option<u64>,
    pub label_rules: usize,
    pub warnings: Vec<String>,
    /// With `IngestOptions::track_members`: every packet of this input's split side,
    /// in capture order, with the sample it went to. Not written to datasets.
    #[serde(skip)]
    pub members: Vec<PacketMember>,
}

/// One packet as per-packet evaluation sees it (docs/MODELS.md §5).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct PacketMember {
    /// Packet number within its capture (1-based).
    pub number: u64,
    /// Index of the sample the packet belongs to in the ingested set, or [`NO_SAMPLE`]
    /// (a pair too short for an image, a non-IP frame).
    pub sample: u32,
    pub malicious: bool,
    /// The packet's label name (attack or class) in the set's name table.
    pub class_id: u16,
}

pub const NO_SAMPLE: u32 = u32::MAX;

/// Sets the sample of the packets `numbers` (ascending within `members`).
fn assign(members: &mut [PacketMember], numbers: impl Iterator<Item = u64>, sample: u64) {
    for n in numbers {
        if let Ok(i) = members.binary_search_by_key(&n, |m| m.number) {
            members[i].sample = u32::try_from(sample).unwrap_or(NO_SAMPLE);
        }
    }
}

#[derive(Debug, thiserror::Error)]
pub enum IngestError {
    #[error(transparent)]
    Read(#[from] ReadError),
    #[error(transparent)]
    Labels(#[from] labels::LabelError),
    #[error(transparent)]
    Dataset(#[from] dataset::DatasetError),
    #[error("{0}")]
    Input(String),
}

/// Receives samples in order; `update` patches an already received one
/// (a flow whose label changed after its n-th packet).
pub trait SampleSink {
    fn push(&mut self, s: Sample) -> Result<(), IngestError>;
    fn update(&mut self, index: u64, u: &SampleUpdate) -> Result<(), IngestError>;
    fn count(&self) -> u64;
}

impl SampleSink for SampleSet {
    fn push(&mut self, s: Sample) -> Result<(), IngestError> {
        SampleSet::push(self, s);
        Ok(())
    }
    fn update(&mut self, index: u64, u: &SampleUpdate) -> Result<(), IngestError> {
        let i = index as usize;
        if let Some(m) = self.meta.get_mut(i) {
            u.apply(m);
            self.labels[i] = u.label;
        }
        Ok(())
    }
    fn count(&self) -> u64 {
        self.labels.len() as u64
    }
}

/// Either builder behind one interface.
pub enum Builder {
    Images(ImageBuilder),
    Flows(FlowBuilder),
}

impl Builder {
    pub fn new(opts: &IngestOptions, file_index: u32) -> Self {
        match opts.kind {
            SampleKind::Images => {
                Builder::Images(ImageBuilder::new(opts.image.clone(), file_index))
            }
            SampleKind::Flows => Builder::Flows(FlowBuilder::new(opts.flow.clone(), file_index)),
        }
    }
    #[inline]
    pub fn push(&mut self, pkt: &ParsedPacket, label: PacketLabel, out: &mut Vec<Sample>) {
        match self {
            Builder::Images(b) => b.push(pkt, label, out),
            Builder::Flows(b) => b.push(pkt, label, out),
        }
    }
    pub fn flush_idle(&mut self, now_ns: u64, idle_ns: u64, out: &mut Vec<Sample>) {
        match self {
            Builder::Images(b) => b.flush_idle(now_ns, idle_ns, out),
            Builder::Flows(b) => b.flush_idle(now_ns, idle_ns, out),
        }
    }
    pub fn finish(&mut self, out: &mut Vec<Sample>) {
        match self {
            Builder::Images(b) => b.finish(out),
            Builder::Flows(b) => b.finish(out),
        }
    }
    pub fn take_updates(&mut self) -> Vec<SampleUpdate> {
        match self {
            Builder::Images(_) => Vec::new(),
            Builder::Flows(b) => b.take_updates(),
        }
    }
    /// Keep every sample's packets: its rows, and a flow's packets after its n-th.
    pub fn set_track_members(&mut self, on: bool) {
        match self {
            Builder::Images(b) => b.set_track_rows(on),
            Builder::Flows(b) => {
                b.set_track_rows(on);
                b.set_track_late(on);
            }
        }
    }
    pub fn take_rows(&mut self) -> Vec<Vec<RowPacket>> {
        match self {
            Builder::Images(b) => b.take_rows(),
            Builder::Flows(b) => b.take_rows(),
        }
    }
    pub fn take_late(&mut self) -> Vec<(u64, u64)> {
        match self {
            Builder::Images(_) => Vec::new(),
            Builder::Flows(b) => b.take_late(),
        }
    }
    pub fn stats(&self) -> &BuilderStats {
        match self {
            Builder::Images(b) => b.stats(),
            Builder::Flows(b) => b.stats(),
        }
    }
}

fn file_stem(input: &InputSource) -> String {
    match input {
        InputSource::File(p) => Path::new(p)
            .file_stem()
            .map(|s| s.to_string_lossy().into_owned())
            .unwrap_or_default(),
        InputSource::Stdin => "stdin".into(),
    }
}

/// Reads every input in order and sends its samples to `sink`. Names of
/// attacks and classes are interned in `names`.
pub fn ingest(
    inputs: &[InputSource],
    opts: &IngestOptions,
    names: &mut NameTable,
    sink: &mut dyn SampleSink,
) -> Result<Vec<InputReport>, IngestError> {
    if inputs.is_empty() {
        return Err(IngestError::Input("no input captures".into()));
    }
    if inputs.iter().filter(|i| **i == InputSource::Stdin).count() > 1 {
        return Err(IngestError::Input(
            "stdin (`-`) given more than once".into(),
        ));
    }
    let total_bytes: u64 = inputs
        .iter()
        .map(|i| match i {
            InputSource::File(p) => std::fs::metadata(p).map(|m| m.len()).unwrap_or(0),
            InputSource::Stdin => 0,
        })
        .sum();
    let bar = progress_bar(
        opts.progress,
        total_bytes,
        inputs.contains(&InputSource::Stdin),
    );
    let started = Instant::now();
    let mut done_bytes = 0u64;
    let mut done_packets = 0u64;
    let mut reports = Vec::with_capacity(inputs.len());
    for (fi, input) in inputs.iter().enumerate() {
        let name = input.display();
        let mut rep = InputReport {
            path: name.clone(),
            ..Default::default()
        };
        let warn = |rep: &mut InputReport, w: String| {
            if opts.print_warnings {
                match &bar {
                    Some(b) => b.suspend(|| eprintln!("warning: {w}")),
                    None => eprintln!("warning: {w}"),
                }
            }
            rep.warnings.push(w);
        };
        let rules = opts
            .labels
            .as_ref()
            .map(|l| l.for_input(&name))
            .unwrap_or_default();
        rep.label_rules = rules.len();
        if opts.labels.is_some() && rules.is_empty() {
            warn(&mut rep, format!("{name}: no rule in the labels file names this capture; all its packets are benign"));
        }
        let class = match &opts.class {
            ClassSource::Rules => None,
            ClassSource::Fixed(c) => Some(c.clone()),
            ClassSource::FileStem => Some(file_stem(input)),
        };
        let labeler = PacketLabeler::new(&rules, class.as_deref(), names);
        let mut filter = match opts.split {
            None => None,
            Some(s) => {
                if *input == InputSource::Stdin {
                    return Err(IngestError::Input(
                        "--split reads each capture twice (to find its split time), so it cannot read stdin".into(),
                    ));
                }
                let t = split::split_time(input, s.frac)?;
                rep.t_split_ns = t;
                t.map(|t| (SplitFilter::new(t, opts.flow.max_groups), s.side))
            }
        };
        let mut reader = CaptureReader::open(input)?;
        reader.enable_sha256();
        rep.size = reader.total_size();
        let mut builder = Builder::new(opts, fi as u32);
        builder.set_track_members(opts.track_members);
        let base = sink.count();
        let mut out = Vec::new();
        let mut members = Vec::new();
        // Samples go to the sink in emission order; with members tracked, each
        // sample's packets are pointed at its index there.
        let mut emit = |builder: &mut Builder,
                        out: &mut Vec<Sample>,
                        members: &mut Vec<PacketMember>|
         -> Result<(), IngestError> {
            if opts.track_members {
                for (k, rows) in builder.take_rows().iter().enumerate() {
                    assign(
                        members,
                        rows.iter().map(|r| r.number),
                        sink.count() + k as u64,
                    );
                }
                for (seq, n) in builder.take_late() {
                    assign(members, std::iter::once(n), base + seq);
                }
            }
            for s in out.drain(..) {
                sink.push(s)?;
            }
            Ok(())
        };
        while let Some(frame) = reader.next_frame()? {
            let pkt = ParsedPacket::parse(&frame);
            rep.packets += 1;
            if let Some((f, side)) = filter.as_mut() {
                if f.side(&pkt) != *side {
                    rep.other_side_packets += 1;
                    continue;
                }
            }
            let label = labeler.label(&pkt);
            rep.malicious_packets += label.malicious as u64;
            if opts.track_members {
                members.push(PacketMember {
                    number: pkt.number,
                    sample: NO_SAMPLE,
                    malicious: label.malicious,
                    class_id: label.class_id,
                });
            }
            builder.push(&pkt, label, &mut out);
            emit(&mut builder, &mut out, &mut members)?;
            if rep.packets & 0xffff == 0 {
                if let Some(b) = &bar {
                    b.set_position(done_bytes + reader.bytes_read());
                    let p = done_packets + rep.packets;
                    let secs = started.elapsed().as_secs_f64().max(1e-9);
                    b.set_message(format!(
                        "{p} packets, {:.2} M packets/s",
                        p as f64 / secs / 1e6
                    ));
                }
            }
        }
        builder.finish(&mut out);
        emit(&mut builder, &mut out, &mut members)?;
        rep.members = members;
        for u in builder.take_updates() {
            sink.update(base + u.seq, &u)?;
        }
        for w in reader.take_warnings() {
            warn(&mut rep, w);
        }
        let st = builder.stats();
        rep.ip_packets = st.ip_packets;
        rep.non_ip_packets = st.non_ip_packets;
        rep.samples = sink.count() - base;
        rep.unsampled_packets = st.unsampled_packets;
        rep.unsampled_malicious = st.unsampled_malicious;
        rep.groups = st.groups;
        rep.evicted_groups = st.evicted_groups;
        rep.peak_groups = st.peak_groups;
        rep.sha256 = reader.sha256_hex();
        done_bytes += reader.bytes_read();
        done_packets += rep.packets;
        reports.push(rep);
    }
    if let Some(b) = bar {
        b.finish_and_clear();
    }
    Ok(reports)
}

/// Ingests into memory: what `train` uses when handed captures.
pub fn ingest_to_set(
    inputs: &[InputSource],
    opts: &IngestOptions,
) -> Result<(SampleSet, Vec<InputReport>), IngestError> {
    let mut set = SampleSet::new(opts.sample_len());
    let mut names = NameTable::new();
    let reports = ingest(inputs, opts, &mut names, &mut set)?;
    set.names = names;
    Ok((set, reports))
}

/// A bar only for inputs worth watching (over 32 MB, or stdin).
fn progress_bar(on: bool, total: u64, stdin: bool) -> Option<indicatif::ProgressBar> {
    if !on || (!stdin && total < 32 << 20) {
        return None;
    }
    let b = if stdin {
        indicatif::ProgressBar::new_spinner()
    } else {
        indicatif::ProgressBar::new(total)
    };
    let style = indicatif::ProgressStyle::with_template(
        "{spinner} [{elapsed_precise}] {wide_bar} {bytes}/{total_bytes} {binary_bytes_per_sec} {msg}",
    )
    .unwrap_or_else(|_| indicatif::ProgressStyle::default_bar());
    b.set_style(style);
    Some(b)
}
