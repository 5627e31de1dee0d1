pub mod gpu;
pub mod dataset;
pub mod ingest;
pub mod nn;
pub mod eval;
pub mod util;
