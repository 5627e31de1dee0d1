//! Reading a dataset directory (the format is `ingest::dataset`'s): the
//! header checked and the three data files memory-mapped, served as
//! [`Samples`] straight from the maps.

use std::fs::{self, File};
use std::path::{Path, PathBuf};

use memmap2::Mmap;

use crate::ingest::dataset::{
    io_err, DatasetError, Header, FORMAT, HEADER_FILE, LABELS_FILE, META_FILE, SAMPLES_FILE,
    VERSION,
};
use crate::ingest::{SampleMeta, Samples, META_LEN};

/// A dataset directory, memory-mapped.
pub struct Dataset {
    dir: PathBuf,
    header: Header,
    samples: Option<Mmap>,
    labels: Option<Mmap>,
    meta: Option<Mmap>,
}

fn map(path: &Path, expected: u64) -> Result<Option<Mmap>, DatasetError> {
    let f = File::open(path).map_err(io_err(path))?;
    let actual = f.metadata().map_err(io_err(path))?.len();
    if actual != expected {
        return Err(DatasetError::Size {
            path: path.display().to_string(),
            expected,
            actual,
        });
    }
    if actual == 0 {
        // mmap of an empty file fails; an empty dataset is still valid.
        return Ok(None);
    }
    // SAFETY: the files are written once and renamed into place; nothing
    // in gpu-nids modifies a finished dataset.
    let m = unsafe { Mmap::map(&f) }.map_err(io_err(path))?;
    Ok(Some(m))
}

impl Dataset {
    pub fn open(dir: &Path) -> Result<Self, DatasetError> {
        let hp = dir.join(HEADER_FILE);
        let text = fs::read(&hp).map_err(io_err(&hp))?;
        let header: Header = serde_json::from_slice(&text).map_err(|e| DatasetError::Header {
            path: hp.display().to_string(),
            msg: e.to_string(),
        })?;
        let bad = |msg: String| DatasetError::Header {
            path: hp.display().to_string(),
            msg,
        };
        if header.format != FORMAT {
            return Err(bad(format!(
                "format `{}`, expected `{FORMAT}`",
                header.format
            )));
        }
        if header.version != VERSION {
            return Err(bad(format!(
                "version {}, this build reads {VERSION}",
                header.version
            )));
        }
        if header.meta_record_len != META_LEN {
            return Err(bad(format!(
                "meta records of {} bytes, expected {META_LEN}",
                header.meta_record_len
            )));
        }
        if header.sample_len == 0
            || header.sample_shape.iter().product::<usize>() != header.sample_len
        {
            return Err(bad("sample_shape does not match sample_len".into()));
        }
        let n = header.count;
        let samples = map(
            &dir.join(SAMPLES_FILE),
            n.saturating_mul(header.sample_len as u64),
        )?;
        let labels = map(&dir.join(LABELS_FILE), n)?;
        let meta = map(&dir.join(META_FILE), n.saturating_mul(META_LEN as u64))?;
        Ok(Dataset {
            dir: dir.to_path_buf(),
            header,
            samples,
            labels,
            meta,
        })
    }

    pub fn header(&self) -> &Header {
        &self.header
    }
    pub fn dir(&self) -> &Path {
        &self.dir
    }
}

fn bytes(m: &Option<Mmap>) -> &[u8] {
    m.as_deref().unwrap_or(&[])
}

impl Samples for Dataset {
    fn len(&self) -> usize {
        self.header.count as usize
    }
    fn sample_len(&self) -> usize {
        self.header.sample_len
    }
    fn sample(&self, i: usize) -> &[u8] {
        let l = self.header.sample_len;
        &bytes(&self.samples)[i * l..(i + 1) * l]
    }
    fn data(&self) -> &[u8] {
        bytes(&self.samples)
    }
    fn labels(&self) -> &[u8] {
        bytes(&self.labels)
    }
    fn meta(&self, i: usize) -> SampleMeta {
        SampleMeta::from_bytes(&bytes(&self.meta)[i * META_LEN..(i + 1) * META_LEN])
    }
    fn class_names(&self) -> &[String] {
        &self.header.class_names
    }
}
