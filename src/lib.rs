pub mod gpu;
pub mod ingest;
