//! Checkpoints: named f32 tensors (parameters, optimizer state, batch-norm running
//! statistics) plus JSON metadata, in one safetensors file written atomically.

use std::collections::{BTreeMap, HashMap};
use std::path::Path;

use anyhow::{bail, Context, Result};
use safetensors::tensor::{Dtype, SafeTensors, TensorView};

pub const FORMAT: &str = "gpu-nids/1";

#[derive(Clone, Debug, Default)]
pub struct Checkpoint {
    /// name → (shape, values)
    pub tensors: BTreeMap<String, (Vec<usize>, Vec<f32>)>,
    /// Free-form string metadata; values are usually JSON.
    pub meta: BTreeMap<String, String>,
}

impl Checkpoint {
    pub fn insert(&mut self, name: impl Into<String>, shape: &[usize], values: Vec<f32>) {
        debug_assert_eq!(shape.iter().product::<usize>(), values.len());
        self.tensors.insert(name.into(), (shape.to_vec(), values));
    }

    pub fn tensor(&self, name: &str) -> Result<&(Vec<usize>, Vec<f32>)> {
        self.tensors
            .get(name)
            .with_context(|| format!("checkpoint has no tensor '{name}'"))
    }

    pub fn meta_str(&self, key: &str) -> Result<&str> {
        self.meta
            .get(key)
            .map(|s| s.as_str())
            .with_context(|| format!("checkpoint metadata has no '{key}'"))
    }

    pub fn meta_json<T: serde::de::DeserializeOwned>(&self, key: &str) -> Result<T> {
        serde_json::from_str(self.meta_str(key)?)
            .with_context(|| format!("checkpoint metadata '{key}' is not valid"))
    }

    pub fn set_json<T: serde::Serialize>(&mut self, key: &str, v: &T) {
        self.meta.insert(
            key.to_string(),
            serde_json::to_string(v).expect("metadata serialises"),
        );
    }

    pub fn to_bytes(&self) -> Result<Vec<u8>> {
        let bytes: Vec<(&String, &Vec<usize>, &[u8])> = self
            .tensors
            .iter()
            .map(|(n, (s, v))| (n, s, bytemuck::cast_slice::<f32, u8>(v)))
            .collect();
        let views = bytes
            .iter()
            .map(|(n, s, b)| Ok((n.as_str(), TensorView::new(Dtype::F32, s.to_vec(), b)?)))
            .collect::<Result<Vec<_>, safetensors::SafeTensorError>>()?;
        let mut meta: HashMap<String, String> = self.meta.clone().into_iter().collect();
        meta.insert("format".into(), FORMAT.into());
        Ok(safetensors::serialize(views, Some(meta))?)
    }

    pub fn save(&self, path: &Path) -> Result<()> {
        crate::util::write_atomic(path, &self.to_bytes()?)
    }

    pub fn from_bytes(bytes: &[u8], origin: &str) -> Result<Self> {
        let (_, header) = SafeTensors::read_metadata(bytes)
            .map_err(|e| anyhow::anyhow!("{origin}: not a valid safetensors checkpoint ({e})"))?;
        let meta: BTreeMap<String, String> = header
            .metadata()
            .clone()
            .unwrap_or_default()
            .into_iter()
            .collect();
        match meta.get("format") {
            Some(f) if f == FORMAT => {}
            Some(f) => bail!("{origin}: checkpoint format '{f}', this build reads '{FORMAT}'"),
            None => bail!(
                "{origin}: safetensors file without gpu-nids metadata (not a gpu-nids checkpoint)"
            ),
        }
        let st = SafeTensors::deserialize(bytes)
            .map_err(|e| anyhow::anyhow!("{origin}: corrupt checkpoint ({e})"))?;
        let mut tensors = BTreeMap::new();
        for (name, view) in st.tensors() {
            if view.dtype() != Dtype::F32 {
                bail!(
                    "{origin}: tensor '{name}' has dtype {:?}, expected F32",
                    view.dtype()
                );
            }
            let values: Vec<f32> = bytemuck::pod_collect_to_vec(view.data());
            if let Some(i) = values.iter().position(|v| !v.is_finite()) {
                bail!("{origin}: tensor '{name}' holds a non-finite value at element {i}");
            }
            tensors.insert(name, (view.shape().to_vec(), values));
        }
        Ok(Checkpoint { tensors, meta })
    }

    /// Reads and parses a checkpoint. The header is checked against the
    /// file's size before the tensors are read, so that a wrong or damaged
    /// file fails fast instead of being read whole.
    pub fn load(path: &Path) -> Result<Self> {
        let origin = path.display().to_string();
        let mut f =
            std::fs::File::open(path).with_context(|| format!("reading checkpoint {origin}"))?;
        let size = f
            .metadata()
            .with_context(|| format!("reading checkpoint {origin}"))?
            .len();
        Self::from_reader(&mut f, size, &origin)
    }

    /// Parses a checkpoint of `size` bytes from `r`, checking the header
    /// against the size before reading the tensors.
    pub fn from_reader(r: &mut impl std::io::Read, size: u64, origin: &str) -> Result<Self> {
        let bytes = read_checked(r, size, origin)?;
        Self::from_bytes(&bytes, origin)
    }

    /// A metadata field parsed as `T`, the error naming file and field.
    pub fn meta_field<T: serde::de::DeserializeOwned>(&self, origin: &str, key: &str) -> Result<T> {
        let s = self
            .meta
            .get(key)
            .with_context(|| format!("{origin}: checkpoint metadata has no '{key}' field"))?;
        serde_json::from_str(s)
            .map_err(|e| anyhow::anyhow!("{origin}: metadata field '{key}' is invalid ({e})"))
    }
}

/// The end of a divergence message: the checkpoint to go back to, or that
/// there is none (training diverged before its first epoch ended).
pub fn last_good(out: &Path, epochs_done: usize) -> String {
    if epochs_done == 0 {
        "no checkpoint was written (it diverged before the end of the first epoch; try a lower --lr)".into()
    } else {
        format!(
            "the last good checkpoint is {} (epoch {epochs_done})",
            out.display()
        )
    }
}

/// For `--resume`: true (after saying so) when the checkpoint already holds
/// `epochs` or more finished epochs and its alert threshold, so that there
/// is nothing to train and the file is left untouched.
pub fn nothing_to_resume(resume: Option<&Path>, epochs: usize) -> Result<bool> {
    let Some(p) = resume else { return Ok(false) };
    let c = Checkpoint::load(p)?;
    let done = c
        .meta
        .get("train")
        .and_then(|t| serde_json::from_str::<serde_json::Value>(t).ok())
        .and_then(|t| t.get("epoch")?.as_u64())
        .with_context(|| format!("{}: metadata field 'train' has no epoch count", p.display()))?;
    if done as usize >= epochs && c.meta.contains_key("threshold") {
        println!(
            "nothing to do: {} already holds {done} epochs (--epochs {epochs}); raise --epochs to train further",
            p.display()
        );
        return Ok(true);
    }
    Ok(false)
}

/// DOC-IDS reference classes beyond any real label set; a larger count is
/// corruption (it sizes a layer).
pub const MAX_CLASSES: usize = 4096;
/// safetensors' own limit on the JSON header.
const MAX_HEADER: u64 = 100_000_000;

/// The file's bytes, after checking that its header is sane and that the
/// tensors it declares end exactly at the end of the file (`size` bytes).
fn read_checked(f: &mut impl std::io::Read, size: u64, origin: &str) -> Result<Vec<u8>> {
    let mut n8 = [0u8; 8];
    if size < 8 {
        bail!(
            "{origin}: not a gpu-nids checkpoint ({size} bytes, shorter than a safetensors header)"
        );
    }
    f.read_exact(&mut n8)
        .with_context(|| format!("reading checkpoint {origin}"))?;
    let n = u64::from_le_bytes(n8);
    if n > MAX_HEADER || n > size - 8 {
        bail!("{origin}: not a gpu-nids checkpoint (header length {n} for a file of {size} bytes)");
    }
    let mut head = vec![0u8; n as usize];
    f.read_exact(&mut head)
        .with_context(|| format!("reading checkpoint {origin}"))?;
    let json: serde_json::Value = serde_json::from_slice(&head).map_err(|e| {
        anyhow::anyhow!("{origin}: not a valid safetensors checkpoint (header: {e})")
    })?;
    let obj = json.as_object().with_context(|| {
        format!("{origin}: not a valid safetensors checkpoint (header is not an object)")
    })?;
    match obj
        .get("__metadata__")
        .and_then(|m| m.get("format"))
        .and_then(|f| f.as_str())
    {
        Some(f) if f == FORMAT => {}
        Some(f) => bail!("{origin}: checkpoint format '{f}', this build reads '{FORMAT}'"),
        None => bail!(
            "{origin}: safetensors file without gpu-nids metadata (not a gpu-nids checkpoint)"
        ),
    }
    let end = obj
        .iter()
        .filter(|(k, _)| *k != "__metadata__")
        .filter_map(|(_, v)| v.get("data_offsets")?.get(1)?.as_u64())
        .max()
        .unwrap_or(0);
    // n <= size - 8 was checked above; `end` comes from the file.
    let declared = (8 + n).checked_add(end);
    if declared != Some(size) {
        bail!(
            "{origin}: corrupt checkpoint: its header declares {} bytes, the file holds {size} (truncated or padded)",
            declared.map_or("more than 2^64".into(), |d| d.to_string())
        );
    }
    let mut bytes = Vec::with_capacity(size as usize);
    bytes.extend_from_slice(&n8);
    bytes.extend_from_slice(&head);
    f.read_to_end(&mut bytes)
        .with_context(|| format!("reading checkpoint {origin}"))?;
    Ok(bytes)
}
