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

    pub fn load(path: &Path) -> Result<Self> {
        let bytes = std::fs::read(path)
            .with_context(|| format!("reading checkpoint {}", path.display()))?;
        Self::from_bytes(&bytes, &path.display().to_string())
    }
}
