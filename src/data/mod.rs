//! Inputs of train, score and eval: dataset directories written by `gpu-nids ingest`
//! and/or captures ingested on the fly, gathered into one in-memory sample set with the
//! names of the capture files the samples came from. A dataset is opened memory-mapped
//! ([`dataset::Dataset`]) and its samples, labels and metadata copied into that set.

pub mod dataset;
pub mod samplers;

use std::path::PathBuf;

use anyhow::{bail, Context, Result};

use crate::ingest::dataset::HEADER_FILE;
use crate::ingest::{expand_inputs, ingest_to_set, IngestOptions, NameTable, SampleSet, Samples};
use dataset::Dataset;

pub struct Loaded {
    pub set: SampleSet,
    /// Capture file of each `SampleMeta::file_index`.
    pub files: Vec<String>,
    /// What ingest counted in each of `files` (packets in no sample, ...).
    pub reports: Vec<crate::ingest::InputReport>,
}

impl Loaded {
    pub fn file_of(&self, i: usize) -> &str {
        self.files
            .get(self.set.meta[i].file_index as usize)
            .map_or("?", |s| s.as_str())
    }
    pub fn class_of(&self, i: usize) -> &str {
        self.set.names.get(self.set.meta[i].class_id).unwrap_or("")
    }
}

/// Append `src` to `dst`, renumbering file indices and class ids.
fn append(dst: &mut Loaded, src: &dyn Samples, mut reports: Vec<crate::ingest::InputReport>) {
    let file_base = dst.files.len() as u32;
    let names = src.class_names();
    let sample_base = dst.set.labels.len() as u32;
    for m in reports.iter_mut().flat_map(|r| r.members.iter_mut()) {
        if m.sample != crate::ingest::NO_SAMPLE {
            m.sample += sample_base;
        }
        if let Some(name) = names.get(m.class_id as usize) {
            m.class_id = dst.set.names.intern(name);
        }
    }
    dst.files.extend(reports.iter().map(|r| r.path.clone()));
    dst.reports.extend(reports);
    for i in 0..src.len() {
        let mut m = src.meta(i);
        m.file_index += file_base;
        if let Some(name) = names.get(m.class_id as usize) {
            m.class_id = dst.set.names.intern(name);
        }
        dst.set.data.extend_from_slice(src.sample(i));
        dst.set.labels.push(src.labels()[i]);
        dst.set.meta.push(m);
    }
}

/// Load every input: a directory holding header.json is a dataset (its kind must match
/// `opts.kind`); anything else is a capture, a directory of captures, or `-`.
pub fn load(inputs: &[PathBuf], opts: &IngestOptions) -> Result<Loaded> {
    let mut out = Loaded {
        set: SampleSet::new(opts.sample_len()),
        files: vec![],
        reports: vec![],
    };
    out.set.names = NameTable::new();
    let mut captures = Vec::new();
    for p in inputs {
        if p.is_dir() && p.join(HEADER_FILE).is_file() {
            let ds =
                Dataset::open(p).with_context(|| format!("opening dataset {}", p.display()))?;
            if ds.sample_len() != opts.sample_len() {
                bail!(
                    "{}: dataset of {:?} samples ({} bytes), this command needs {:?} ({} bytes)",
                    p.display(),
                    ds.header().kind,
                    ds.sample_len(),
                    opts.kind,
                    opts.sample_len()
                );
            }
            let reports = ds.header().inputs.clone();
            append(&mut out, &ds, reports);
        } else {
            captures.push(p.clone());
        }
    }
    if !captures.is_empty() {
        let sources = expand_inputs(&captures)?;
        if sources.is_empty() {
            bail!("no captures found in {captures:?}");
        }
        let (set, reports) = ingest_to_set(&sources, opts)?;
        append(&mut out, &set, reports);
    }
    if out.set.labels.is_empty() {
        bail!("no samples in {inputs:?} (captures too short for one sample, or empty)");
    }
    Ok(out)
}
