//! Arbitrary bytes through gpu_nids::util::fuzz::checkpoint: errors are fine, panics
//! are bugs. Run: `cargo +nightly fuzz run checkpoint` (see fuzz/README.md).
#![no_main]

use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| gpu_nids::util::fuzz::checkpoint(data));
