pub mod bench;
pub mod checkpoint;
pub mod commands;
pub mod data;
pub mod eval;
pub mod explain;
pub mod gpu;
pub mod ingest;
pub mod models;
pub mod nn;
pub mod train;
pub mod util;
// [detect]
pub mod detect;
// [doc-ids] flow models: training loops and commands.
pub mod commands_flow;
pub mod train_flow;
