//! Scores → metrics, threshold, report and pictures.

pub mod metrics;
pub mod plots;
pub mod report;
pub mod scored;
pub mod threshold;
pub mod union;
