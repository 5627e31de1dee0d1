//! On-disk sample store: the format `gpu-nids ingest` writes, and its
//! writer. A dataset is a directory:
//!
//! - `header.json`: [`Header`] (kind, shape, counts, names, inputs, options);
//! - `samples.u8`: `count × sample_len` raw bytes, sample after sample;
//! - `labels.u8`: `count` bytes, 0 benign / 1 malicious;
//! - `meta.bin`: `count × 96`-byte little-endian [`SampleMeta`] records.
//!
//! A dataset is written under a temporary name beside its destination and
//! renamed into place, so a reader never sees half of one. The reader, in
//! the `data` module, memory-maps the three data files; `inspect` reads
//! from the maps, while train, score and eval load (`data::load`) copy
//! every sample, label and metadata record into one in-memory set.

use std::fs::{self, File};
use std::io::{BufWriter, Read, Seek, SeekFrom, Write};
use std::path::{Path, PathBuf};

use super::{
    IngestError, InputReport, Sample, SampleKind, SampleMeta, SampleSink, SampleUpdate, META_LEN,
};

pub const FORMAT: &str = "gpu-nids-dataset";
pub const VERSION: u32 = 1;
pub const HEADER_FILE: &str = "header.json";
pub const SAMPLES_FILE: &str = "samples.u8";
pub const LABELS_FILE: &str = "labels.u8";
pub const META_FILE: &str = "meta.bin";

#[derive(Debug, thiserror::Error)]
pub enum DatasetError {
    #[error("{path}: {source}")]
    Io {
        path: String,
        #[source]
        source: std::io::Error,
    },
    #[error("{path}: bad dataset header: {msg}")]
    Header { path: String, msg: String },
    #[error("{path}: holds {actual} bytes but the header promises {expected} (truncated or corrupt dataset)")]
    Size {
        path: String,
        expected: u64,
        actual: u64,
    },
    #[error("{path}: already exists and is not a gpu-nids dataset; refusing to replace it")]
    Exists { path: String },
}

pub(crate) fn io_err(p: &Path) -> impl FnOnce(std::io::Error) -> DatasetError + '_ {
    move |e| DatasetError::Io {
        path: p.display().to_string(),
        source: e,
    }
}

#[derive(Clone, Debug, Default, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct LabelCounts {
    pub benign: u64,
    pub malicious: u64,
}

#[derive(Clone, Debug, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct ClassCount {
    pub name: String,
    pub benign: u64,
    pub malicious: u64,
}

#[derive(Clone, Debug, PartialEq, serde::Serialize, serde::Deserialize)]
pub struct Header {
    pub format: String,
    pub version: u32,
    pub kind: SampleKind,
    /// Images [64, 64]; flows [n, l].
    pub sample_shape: Vec<usize>,
    pub sample_len: usize,
    pub count: u64,
    pub labels: LabelCounts,
    /// Attack/class names; `SampleMeta::class_id` indexes this.
    pub class_names: Vec<String>,
    pub class_counts: Vec<ClassCount>,
    pub inputs: Vec<InputReport>,
    /// Every ingest option, as given.
    pub options: serde_json::Value,
    pub meta_record_len: usize,
    pub created_by: String,
}

impl Header {
    /// Builds the header from the final labels and class ids.
    pub fn new(
        kind: SampleKind,
        sample_shape: Vec<usize>,
        labels: &[u8],
        class_ids: &[u16],
        class_names: Vec<String>,
        inputs: Vec<InputReport>,
        options: serde_json::Value,
    ) -> Self {
        let mut counts = LabelCounts::default();
        let mut cc: Vec<ClassCount> = class_names
            .iter()
            .map(|n| ClassCount {
                name: n.clone(),
                benign: 0,
                malicious: 0,
            })
            .collect();
        for (l, c) in labels.iter().zip(class_ids) {
            let slot = cc.get_mut(*c as usize);
            if *l != 0 {
                counts.malicious += 1;
                if let Some(s) = slot {
                    s.malicious += 1;
                }
            } else {
                counts.benign += 1;
                if let Some(s) = slot {
                    s.benign += 1;
                }
            }
        }
        Header {
            format: FORMAT.into(),
            version: VERSION,
            kind,
            sample_len: sample_shape.iter().product(),
            sample_shape,
            count: labels.len() as u64,
            labels: counts,
            class_names,
            class_counts: cc,
            inputs,
            options,
            meta_record_len: META_LEN,
            created_by: format!("gpu-nids {}", env!("CARGO_PKG_VERSION")),
        }
    }
}

/// Streams samples into a temporary directory; [`DatasetWriter::finish`]
/// renames it into place. Dropped unfinished, it removes its files.
pub struct DatasetWriter {
    /// Where the dataset goes (a symlink's target: the link stays).
    dir: PathBuf,
    /// The path the user gave, for messages (never the hidden temporary).
    shown: PathBuf,
    tmp: PathBuf,
    sample_len: usize,
    samples: BufWriter<File>,
    meta: BufWriter<File>,
    labels: Vec<u8>,
    class_ids: Vec<u16>,
    /// Meta patches applied at finish (the records may still be buffered).
    updates: Vec<(u64, SampleUpdate)>,
    done: bool,
}

impl DatasetWriter {
    pub fn create(shown: &Path, sample_len: usize) -> Result<Self, DatasetError> {
        let dir = &match crate::util::output::resolve(shown) {
            Ok(crate::util::output::Target::File(p) | crate::util::output::Target::Dir(p)) => p,
            _ => {
                return Err(DatasetError::Exists {
                    path: shown.display().to_string(),
                })
            }
        };
        if dir.exists() && !dir.join(HEADER_FILE).is_file() {
            return Err(DatasetError::Exists {
                path: shown.display().to_string(),
            });
        }
        let parent = match dir.parent() {
            Some(p) if !p.as_os_str().is_empty() => p.to_path_buf(),
            _ => PathBuf::from("."),
        };
        fs::create_dir_all(&parent).map_err(io_err(&parent))?;
        let user = |name: &str| shown.join(name);
        let base = dir
            .file_name()
            .map(|s| s.to_string_lossy().into_owned())
            .unwrap_or_else(|| "dataset".into());
        // A run killed by a signal leaves its temporary directory behind.
        crate::util::output::remove_stale_temps(&parent, &base);
        let nonce = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map(|d| d.subsec_nanos())
            .unwrap_or(0);
        let tmp = parent.join(format!(".{base}.tmp-{}-{nonce:08x}", std::process::id()));
        fs::create_dir(&tmp).map_err(io_err(shown))?;
        let open = |name: &str| -> Result<BufWriter<File>, DatasetError> {
            let p = tmp.join(name);
            Ok(BufWriter::with_capacity(
                1 << 20,
                File::create(&p).map_err(io_err(&user(name)))?,
            ))
        };
        let w = DatasetWriter {
            samples: open(SAMPLES_FILE)?,
            meta: open(META_FILE)?,
            dir: dir.to_path_buf(),
            shown: shown.to_path_buf(),
            tmp,
            sample_len,
            labels: Vec::new(),
            class_ids: Vec::new(),
            updates: Vec::new(),
            done: false,
        };
        Ok(w)
    }

    pub fn labels(&self) -> &[u8] {
        &self.labels
    }
    /// The hidden directory the dataset is written in until `finish`.
    pub fn temp_dir(&self) -> &Path {
        &self.tmp
    }
    pub fn class_ids(&self) -> &[u16] {
        &self.class_ids
    }

    fn write_err(&self, name: &str) -> impl FnOnce(std::io::Error) -> DatasetError {
        let p = self.shown.join(name).display().to_string();
        move |e| DatasetError::Io { path: p, source: e }
    }

    pub fn push_sample(&mut self, s: &Sample) -> Result<(), DatasetError> {
        if s.data.len() != self.sample_len {
            return Err(DatasetError::Header {
                path: self.shown.display().to_string(),
                msg: format!(
                    "sample of {} bytes, dataset holds {}-byte samples",
                    s.data.len(),
                    self.sample_len
                ),
            });
        }
        self.samples
            .write_all(&s.data)
            .map_err(self.write_err(SAMPLES_FILE))?;
        self.meta
            .write_all(&s.meta.to_bytes())
            .map_err(self.write_err(META_FILE))?;
        self.labels.push(s.meta.label);
        self.class_ids.push(s.meta.class_id);
        Ok(())
    }

    pub fn update_sample(&mut self, index: u64, u: &SampleUpdate) {
        if let Some(l) = self.labels.get_mut(index as usize) {
            *l = u.label;
            self.class_ids[index as usize] = u.class_id;
            self.updates.push((index, *u));
        }
    }

    /// Writes labels, patches metadata, writes `header` and renames the
    /// directory into place (replacing an older dataset there).
    pub fn finish(mut self, header: &Header) -> Result<(), DatasetError> {
        self.samples.flush().map_err(self.write_err(SAMPLES_FILE))?;
        self.meta.flush().map_err(self.write_err(META_FILE))?;
        let mp = self.tmp.join(META_FILE);
        let shown_meta = self.shown.join(META_FILE);
        let e_meta = || io_err(&shown_meta);
        let mut f = fs::OpenOptions::new()
            .read(true)
            .write(true)
            .open(&mp)
            .map_err(e_meta())?;
        for (i, u) in &self.updates {
            let off = *i * META_LEN as u64;
            let mut rec = [0u8; META_LEN];
            f.seek(SeekFrom::Start(off)).map_err(e_meta())?;
            f.read_exact(&mut rec).map_err(e_meta())?;
            let mut m = SampleMeta::from_bytes(&rec);
            u.apply(&mut m);
            f.seek(SeekFrom::Start(off)).map_err(e_meta())?;
            f.write_all(&m.to_bytes()).map_err(e_meta())?;
        }
        f.sync_all().map_err(e_meta())?;
        self.samples
            .get_ref()
            .sync_all()
            .map_err(self.write_err(SAMPLES_FILE))?;
        let lp = self.tmp.join(LABELS_FILE);
        fs::write(&lp, &self.labels).map_err(io_err(&self.shown.join(LABELS_FILE)))?;
        let hp = self.tmp.join(HEADER_FILE);
        let json = serde_json::to_vec_pretty(header).map_err(|e| DatasetError::Header {
            path: self.shown.join(HEADER_FILE).display().to_string(),
            msg: e.to_string(),
        })?;
        fs::write(&hp, json).map_err(io_err(&self.shown.join(HEADER_FILE)))?;
        if self.dir.exists() {
            // Replace an old dataset: move it aside first so the new one
            // appears by a single rename.
            let old = self.tmp.with_extension("old");
            fs::rename(&self.dir, &old).map_err(io_err(&self.shown))?;
            fs::rename(&self.tmp, &self.dir).map_err(io_err(&self.shown))?;
            let _ = fs::remove_dir_all(&old);
        } else {
            fs::rename(&self.tmp, &self.dir).map_err(io_err(&self.shown))?;
        }
        self.done = true;
        Ok(())
    }
}

impl Drop for DatasetWriter {
    fn drop(&mut self) {
        if !self.done {
            let _ = fs::remove_dir_all(&self.tmp);
        }
    }
}

impl SampleSink for DatasetWriter {
    fn push(&mut self, s: Sample) -> Result<(), IngestError> {
        Ok(self.push_sample(&s)?)
    }
    fn update(&mut self, index: u64, u: &SampleUpdate) -> Result<(), IngestError> {
        self.update_sample(index, u);
        Ok(())
    }
    fn count(&self) -> u64 {
        self.labels.len() as u64
    }
}
