//! Any bytes as a whole capture file through the reader, parser and both
//! sample builders: errors are fine, panics are bugs.
//! Run: `cargo +nightly fuzz run capture_reader` (see fuzz/README.md).
#![no_main]

use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| gpu_nids::util::fuzz::capture(data));
