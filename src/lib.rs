pub mod gpu;
pub mod dataset;
pub mod ingest;
pub mod nn;
pub mod checkpoint;
pub mod eval;
pub mod util;
