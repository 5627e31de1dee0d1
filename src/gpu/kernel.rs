//! Shader registry and pipeline cache.
//!
//! Every entry point of a shader file shares one explicit bind-group layout built by
//! reflecting the file with naga: binding 0 of group 0 is the `var<uniform>` params
//! struct (if any), the other group-0 bindings are storage buffers in binding order.
//! An explicit layout (rather than wgpu's auto layout) lets an entry point ignore a
//! buffer its siblings use, and lets the launch helper check the host-side params
//! struct has exactly the size the shader declares.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};

use super::GpuError;

mod registry {
    include!(concat!(env!("OUT_DIR"), "/shaders.rs"));
}

/// (file stem, WGSL source) for every file in shaders/.
pub fn shaders() -> &'static [(&'static str, &'static str)] {
    registry::SHADERS
}

pub fn shader_source(name: &str) -> Option<&'static str> {
    registry::SHADERS
        .iter()
        .find(|(n, _)| *n == name)
        .map(|(_, s)| *s)
}

/// Whether shader modules get wgpu's inserted bounds and loop checks:
/// `GPU_NIDS_SHADER_CHECKS=on` turns them on (for debugging a kernel); off by default
/// because on CPU adapters they cost a compare and select on every storage access.
pub fn runtime_checks() -> bool {
    matches!(
        std::env::var("GPU_NIDS_SHADER_CHECKS").as_deref(),
        Ok("on" | "1")
    )
}

/// One compute entry point: `Kernel::new("matmul", "mm_tiled")`.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub struct Kernel {
    pub shader: &'static str,
    pub entry: &'static str,
}

impl Kernel {
    pub const fn new(shader: &'static str, entry: &'static str) -> Self {
        Kernel { shader, entry }
    }
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum BindingKind {
    Uniform { size: u64 },
    Storage { read_only: bool },
}

#[derive(Clone, Debug)]
pub struct BindingInfo {
    pub binding: u32,
    pub name: String,
    pub kind: BindingKind,
}

/// What naga tells us about a shader file's interface.
#[derive(Clone, Debug)]
pub struct ShaderInterface {
    pub bindings: Vec<BindingInfo>,
    /// Entry point name → workgroup size.
    pub entries: Vec<(String, [u32; 3])>,
}

impl ShaderInterface {
    pub fn uniform_size(&self) -> Option<u64> {
        self.bindings.iter().find_map(|b| match b.kind {
            BindingKind::Uniform { size } => Some(size),
            _ => None,
        })
    }
    pub fn storage_count(&self) -> usize {
        self.bindings
            .iter()
            .filter(|b| matches!(b.kind, BindingKind::Storage { .. }))
            .count()
    }
}

/// Parse a WGSL file and list its group-0 bindings and entry points.
pub fn reflect(name: &str, source: &str) -> Result<ShaderInterface, GpuError> {
    let module = naga::front::wgsl::parse_str(source).map_err(|e| {
        GpuError::Shader(e.emit_to_string_with_path(source, &format!("shaders/{name}.wgsl")))
    })?;
    let mut layouter = naga::proc::Layouter::default();
    layouter
        .update(module.to_ctx())
        .map_err(|e| GpuError::Shader(format!("shaders/{name}.wgsl: layout: {e}")))?;
    let mut bindings = Vec::new();
    for (_, g) in module.global_variables.iter() {
        let Some(rb) = &g.binding else { continue };
        if rb.group != 0 {
            return Err(GpuError::Shader(format!(
                "shaders/{name}.wgsl: only bind group 0 is supported (found group {})",
                rb.group
            )));
        }
        let kind = match g.space {
            naga::AddressSpace::Uniform => BindingKind::Uniform {
                size: layouter[g.ty].size as u64,
            },
            naga::AddressSpace::Storage { access } => BindingKind::Storage {
                read_only: !access.contains(naga::StorageAccess::STORE),
            },
            other => {
                return Err(GpuError::Shader(format!(
                    "shaders/{name}.wgsl: binding {} in unsupported address space {other:?}",
                    rb.binding
                )))
            }
        };
        bindings.push(BindingInfo {
            binding: rb.binding,
            name: g.name.clone().unwrap_or_default(),
            kind,
        });
    }
    bindings.sort_by_key(|b| b.binding);
    let uniforms: Vec<_> = bindings
        .iter()
        .filter(|b| matches!(b.kind, BindingKind::Uniform { .. }))
        .collect();
    if uniforms.len() > 1 || uniforms.first().is_some_and(|b| b.binding != 0) {
        return Err(GpuError::Shader(format!(
            "shaders/{name}.wgsl: the params uniform must be the only uniform, at binding 0"
        )));
    }
    let entries = module
        .entry_points
        .iter()
        .filter(|e| e.stage == naga::ShaderStage::Compute)
        .map(|e| (e.name.clone(), e.workgroup_size))
        .collect();
    Ok(ShaderInterface { bindings, entries })
}

pub(crate) struct ShaderEntry {
    module: wgpu::ShaderModule,
    pub(crate) interface: ShaderInterface,
    pub(crate) bind_layout: wgpu::BindGroupLayout,
    pipeline_layout: wgpu::PipelineLayout,
}

pub(crate) struct Pipeline {
    pub(crate) pipeline: wgpu::ComputePipeline,
    pub(crate) shader: Arc<ShaderEntry>,
    pub(crate) workgroup_size: [u32; 3],
}

/// Compiles each shader module and each entry point once per device.
#[derive(Default)]
pub(crate) struct PipelineCache {
    shaders: Mutex<HashMap<&'static str, Arc<ShaderEntry>>>,
    pipelines: Mutex<HashMap<Kernel, Arc<Pipeline>>>,
}

impl PipelineCache {
    fn shader(
        &self,
        device: &wgpu::Device,
        name: &'static str,
    ) -> Result<Arc<ShaderEntry>, GpuError> {
        let mut map = self.shaders.lock().unwrap_or_else(|p| p.into_inner());
        if let Some(s) = map.get(name) {
            return Ok(s.clone());
        }
        let source = shader_source(name)
            .ok_or_else(|| GpuError::Shader(format!("no shader shaders/{name}.wgsl")))?;
        let interface = reflect(name, source)?;
        let desc = wgpu::ShaderModuleDescriptor {
            label: Some(name),
            source: wgpu::ShaderSource::Wgsl(source.into()),
        };
        let module = if runtime_checks() {
            device.create_shader_module(desc)
        } else {
            // SAFETY: every kernel clamps or guards its indices against the sizes in its
            // params, and the op layer checks each buffer holds what the params address
            // (src/nn/*); the test suite runs every kernel against a CPU reference at
            // shapes that end mid-tile. Vulkan drivers also keep robust buffer access.
            unsafe {
                device.create_shader_module_trusted(desc, wgpu::ShaderRuntimeChecks::unchecked())
            }
        };
        let entries: Vec<_> = interface
            .bindings
            .iter()
            .map(|b| wgpu::BindGroupLayoutEntry {
                binding: b.binding,
                visibility: wgpu::ShaderStages::COMPUTE,
                ty: wgpu::BindingType::Buffer {
                    ty: match b.kind {
                        BindingKind::Uniform { .. } => wgpu::BufferBindingType::Uniform,
                        BindingKind::Storage { read_only } => {
                            wgpu::BufferBindingType::Storage { read_only }
                        }
                    },
                    has_dynamic_offset: false,
                    min_binding_size: None,
                },
                count: None,
            })
            .collect();
        let bind_layout = device.create_bind_group_layout(&wgpu::BindGroupLayoutDescriptor {
            label: Some(name),
            entries: &entries,
        });
        let pipeline_layout = device.create_pipeline_layout(&wgpu::PipelineLayoutDescriptor {
            label: Some(name),
            bind_group_layouts: &[Some(&bind_layout)],
            immediate_size: 0,
        });
        let entry = Arc::new(ShaderEntry {
            module,
            interface,
            bind_layout,
            pipeline_layout,
        });
        map.insert(name, entry.clone());
        Ok(entry)
    }

    pub(crate) fn get(&self, device: &wgpu::Device, k: Kernel) -> Result<Arc<Pipeline>, GpuError> {
        if let Some(p) = self
            .pipelines
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .get(&k)
        {
            return Ok(p.clone());
        }
        let shader = self.shader(device, k.shader)?;
        let workgroup_size = shader
            .interface
            .entries
            .iter()
            .find(|(n, _)| n == k.entry)
            .map(|(_, w)| *w)
            .ok_or_else(|| {
                GpuError::Shader(format!(
                    "shaders/{}.wgsl has no entry point {}",
                    k.shader, k.entry
                ))
            })?;
        let pipeline = device.create_compute_pipeline(&wgpu::ComputePipelineDescriptor {
            label: Some(k.entry),
            layout: Some(&shader.pipeline_layout),
            module: &shader.module,
            entry_point: Some(k.entry),
            compilation_options: Default::default(),
            cache: None,
        });
        let p = Arc::new(Pipeline {
            pipeline,
            shader,
            workgroup_size,
        });
        self.pipelines
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .insert(k, p.clone());
        Ok(p)
    }
}
