//! GPU runtime: adapter choice, buffers, pipeline cache, kernel launch.

pub mod buffer;
pub mod context;
pub mod kernel;
pub mod launch;

pub use buffer::Buf;
pub use context::{AdapterSummary, Gpu, GpuOptions, LimitsMode};
pub use kernel::Kernel;
pub use launch::{grid, Batch, KernelTime};

#[derive(Debug, thiserror::Error)]
pub enum GpuError {
    #[error("no GPU adapter found (Vulkan, Metal, DX12 or GL). For a software adapter on Debian/Ubuntu install Mesa's: `sudo apt-get install mesa-vulkan-drivers libvulkan1`")]
    NoAdapter,
    #[error("no adapter name contains '{wanted}' (available: {available})")]
    AdapterNotFound { wanted: String, available: String },
    #[error("{0}")]
    BadOption(String),
    #[error("could not open the GPU device on {0}")]
    RequestDevice(String),
    #[error("GPU device lost: {0}")]
    DeviceLost(String),
    #[error("GPU out of memory: {0}")]
    OutOfMemory(String),
    #[error("{what} needs {bytes} bytes, over this adapter's storage-binding limit of {limit} bytes (try a smaller --batch)")]
    TooLarge {
        what: String,
        bytes: u64,
        limit: u64,
    },
    #[error("GPU validation error: {0}")]
    Validation(String),
    #[error("shader error: {0}")]
    Shader(String),
    #[error("kernel launch: {0}")]
    Launch(String),
    #[error("reading GPU buffer: {0}")]
    Map(String),
}
