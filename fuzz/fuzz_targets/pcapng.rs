//! Arbitrary bytes through gpu_nids::util::fuzz::pcapng: errors are fine, panics
//! are bugs. Run: `cargo +nightly fuzz run pcapng` (see fuzz/README.md).
#![no_main]

use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| gpu_nids::util::fuzz::pcapng(data));
