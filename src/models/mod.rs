pub mod vae;
// [doc-ids] DOC-IDS, its baselines, and their shared parameter handling.
pub mod baselines;
pub mod bench_shapes;
pub mod doc_ids;
pub mod params;
