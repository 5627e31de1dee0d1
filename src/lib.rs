//! gpu-nids: packet-capture anomaly detectors trained and run on any GPU through
//! wgpu. The modules follow the data:
//!
//! capture → `ingest` (samples, dataset files) → `data` (loading, samplers) →
//! `models` (over `nn` kernels on `gpu`) → `train` → `eval` / `explain` → `detect`;
//! `cli` is the command line over all of them.

pub mod checkpoint;
pub mod cli;
pub mod data;
pub mod detect;
pub mod eval;
pub mod explain;
pub mod gpu;
pub mod ingest;
pub mod models;
pub mod nn;
pub mod train;
pub mod util;
