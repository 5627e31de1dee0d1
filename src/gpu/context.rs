//! Adapter choice and device creation.
//!
//! One `Gpu` per process: it owns the wgpu device and queue, remembers which
//! optional features are on, and collects asynchronous device errors (validation,
//! out-of-memory, device lost) so callers get a `GpuError` instead of a panic.

use std::sync::{Arc, Mutex};

use super::kernel::PipelineCache;
use super::GpuError;

/// Which limits to ask the device for.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Default)]
pub enum LimitsMode {
    /// Everything the adapter offers (normal runs: bigger bindings, more workgroup memory).
    #[default]
    Adapter,
    /// `wgpu::Limits::default()`: what every desktop GPU and laptop iGPU supports. Tests use
    /// this so a kernel that would not run on a laptop's Metal or an Intel iGPU fails here.
    Portable,
}

/// How to pick the adapter. Empty fields mean "best available".
#[derive(Clone, Debug, Default)]
pub struct GpuOptions {
    /// Case-insensitive substring of the adapter name.
    pub adapter: Option<String>,
    /// vulkan | metal | dx12 | gl
    pub backend: Option<String>,
    pub limits: LimitsMode,
    /// May kernels with several variants time them once and cache the fastest
    /// (src/nn/tune.rs)? Tests turn this off so every run picks the same kernels.
    pub tune: bool,
}

impl GpuOptions {
    /// Options from the environment (`GPU_NIDS_ADAPTER`, `GPU_NIDS_BACKEND`), as tests and
    /// benchmarks use them.
    pub fn from_env() -> Self {
        let get = |k: &str| std::env::var(k).ok().filter(|s| !s.is_empty());
        GpuOptions {
            adapter: get("GPU_NIDS_ADAPTER"),
            backend: get("GPU_NIDS_BACKEND"),
            limits: LimitsMode::Adapter,
            tune: true,
        }
    }
}

/// The adapter facts `gpu-nids devices` prints and kernels choose variants by.
#[derive(Clone, Debug)]
pub struct AdapterSummary {
    pub name: String,
    pub backend: wgpu::Backend,
    pub device_type: wgpu::DeviceType,
    pub driver: String,
    pub driver_info: String,
    pub limits: wgpu::Limits,
    pub features: wgpu::Features,
    /// Subgroup sizes the adapter may use (4..128 when it does not say).
    pub subgroup_sizes: (u32, u32),
}

impl AdapterSummary {
    pub fn of(adapter: &wgpu::Adapter) -> Self {
        let info = adapter.get_info();
        AdapterSummary {
            name: info.name,
            backend: info.backend,
            device_type: info.device_type,
            driver: info.driver,
            driver_info: info.driver_info,
            limits: adapter.limits(),
            features: adapter.features(),
            subgroup_sizes: (info.subgroup_min_size, info.subgroup_max_size),
        }
    }

    pub fn is_software(&self) -> bool {
        self.device_type == wgpu::DeviceType::Cpu
    }
}

/// Lower is preferred: discrete > integrated > virtual > other > software.
fn type_rank(t: wgpu::DeviceType) -> u8 {
    match t {
        wgpu::DeviceType::DiscreteGpu => 0,
        wgpu::DeviceType::IntegratedGpu => 1,
        wgpu::DeviceType::VirtualGpu => 2,
        wgpu::DeviceType::Other => 3,
        wgpu::DeviceType::Cpu => 4,
    }
}

fn parse_backend(s: &str) -> Result<wgpu::Backends, GpuError> {
    Ok(match s.to_ascii_lowercase().as_str() {
        "vulkan" | "vk" => wgpu::Backends::VULKAN,
        "metal" | "mtl" => wgpu::Backends::METAL,
        "dx12" | "d3d12" => wgpu::Backends::DX12,
        "gl" | "gles" | "opengl" => wgpu::Backends::GL,
        other => {
            return Err(GpuError::BadOption(format!(
                "unknown backend '{other}' (expected vulkan, metal, dx12 or gl)"
            )))
        }
    })
}

fn instance(backends: wgpu::Backends) -> wgpu::Instance {
    let mut desc = wgpu::InstanceDescriptor::new_without_display_handle_from_env();
    desc.backends = backends;
    wgpu::Instance::new(desc)
}

/// Every adapter the backends can see, best first, with the index of the one `opts` selects
/// (None when the filter matches nothing).
pub fn enumerate(opts: &GpuOptions) -> Result<(Vec<wgpu::Adapter>, Option<usize>), GpuError> {
    let backends = match &opts.backend {
        Some(b) => parse_backend(b)?,
        None => wgpu::Backends::all(),
    };
    let inst = instance(backends);
    let mut adapters = pollster::block_on(inst.enumerate_adapters(backends));
    // Stable sort keeps the driver's order among equals; Vulkan before GL among the same
    // device because GL on Linux often goes through the same driver with fewer features.
    adapters.sort_by_key(|a| {
        let i = a.get_info();
        (type_rank(i.device_type), i.backend == wgpu::Backend::Gl)
    });
    let chosen = adapters.iter().position(|a| match &opts.adapter {
        Some(sub) => a
            .get_info()
            .name
            .to_lowercase()
            .contains(&sub.to_lowercase()),
        None => true,
    });
    Ok((adapters, chosen))
}

/// Shared sink for errors wgpu reports asynchronously.
#[derive(Default)]
pub(crate) struct ErrorSink {
    first: Mutex<Option<GpuError>>,
}

impl ErrorSink {
    fn record(&self, e: GpuError) {
        let mut g = self.first.lock().unwrap_or_else(|p| p.into_inner());
        if g.is_none() {
            *g = Some(e);
        }
    }
    pub(crate) fn take(&self) -> Option<GpuError> {
        self.first.lock().unwrap_or_else(|p| p.into_inner()).take()
    }
}

pub struct Gpu {
    pub device: wgpu::Device,
    pub queue: wgpu::Queue,
    pub info: AdapterSummary,
    /// Limits the device was created with (what kernels may rely on).
    pub limits: wgpu::Limits,
    pub has_f16: bool,
    pub has_timestamps: bool,
    /// Subgroup operations are on (wgpu `SUBGROUP`).
    pub has_subgroups: bool,
    /// Copied from `GpuOptions::tune`.
    pub tune: bool,
    /// The vec4 matmul block (`V4Block::name`) to use wherever it fits, as
    /// `GPU_NIDS_MATMUL_V4` forces it process-wide: lets a test run whole layers through
    /// each block on its own device. `None` after `new`.
    pub matmul_v4: Option<String>,
    pub(crate) errors: Arc<ErrorSink>,
    pub(crate) pipelines: PipelineCache,
}

impl Gpu {
    pub fn new(opts: &GpuOptions) -> Result<Gpu, GpuError> {
        let (adapters, chosen) = enumerate(opts)?;
        if adapters.is_empty() {
            return Err(GpuError::NoAdapter);
        }
        let Some(idx) = chosen else {
            let names: Vec<String> = adapters.iter().map(|a| a.get_info().name).collect();
            return Err(GpuError::AdapterNotFound {
                wanted: opts.adapter.clone().unwrap_or_default(),
                available: names.join(", "),
            });
        };
        let adapter = &adapters[idx];
        let info = AdapterSummary::of(adapter);
        let wanted =
            wgpu::Features::SHADER_F16 | wgpu::Features::TIMESTAMP_QUERY | wgpu::Features::SUBGROUP;
        let features = info.features & wanted;
        let limits = match opts.limits {
            LimitsMode::Adapter => info.limits.clone(),
            LimitsMode::Portable => wgpu::Limits::default(),
        };
        let (device, queue) = pollster::block_on(adapter.request_device(&wgpu::DeviceDescriptor {
            label: Some("gpu-nids"),
            required_features: features,
            required_limits: limits.clone(),
            experimental_features: wgpu::ExperimentalFeatures::disabled(),
            memory_hints: wgpu::MemoryHints::Performance,
            trace: wgpu::Trace::Off,
        }))
        .map_err(|e| GpuError::RequestDevice(format!("{}: {e}", info.name)))?;

        let errors = Arc::new(ErrorSink::default());
        let sink = errors.clone();
        device.on_uncaptured_error(Arc::new(move |e: wgpu::Error| {
            sink.record(match e {
                wgpu::Error::OutOfMemory { .. } => GpuError::OutOfMemory(e.to_string()),
                other => GpuError::Validation(other.to_string()),
            })
        }));
        let sink = errors.clone();
        device.set_device_lost_callback(move |reason, msg| {
            if reason != wgpu::DeviceLostReason::Destroyed {
                sink.record(GpuError::DeviceLost(format!("{reason:?}: {msg}")));
            }
        });

        Ok(Gpu {
            has_f16: features.contains(wgpu::Features::SHADER_F16),
            has_timestamps: features.contains(wgpu::Features::TIMESTAMP_QUERY),
            has_subgroups: features.contains(wgpu::Features::SUBGROUP),
            tune: opts.tune,
            matmul_v4: None,
            device,
            queue,
            info,
            limits,
            errors,
            pipelines: PipelineCache::default(),
        })
    }

    /// Wait for all submitted work and surface any error wgpu reported meanwhile.
    pub fn sync(&self) -> Result<(), GpuError> {
        self.device
            .poll(wgpu::PollType::wait_indefinitely())
            .map_err(|e| GpuError::DeviceLost(e.to_string()))?;
        self.check()
    }

    /// Surface an asynchronous error without waiting.
    pub fn check(&self) -> Result<(), GpuError> {
        match self.errors.take() {
            Some(e) => Err(e),
            None => Ok(()),
        }
    }
}
