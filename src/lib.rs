pub mod gpu;
pub mod ingest;
pub mod nn;
