#!/bin/sh
# Builds the fuzz targets with libFuzzer's coverage instrumentation on a
# stable toolchain (the flags `cargo fuzz build` passes, minus the nightly-only
# AddressSanitizer; the targets are safe Rust). Release, with debug
# assertions and overflow checks on so that arithmetic bugs panic.
set -e
cd "$(dirname "$0")"
export RUSTFLAGS="-Cpasses=sancov-module -Cllvm-args=-sanitizer-coverage-level=4 \
-Cllvm-args=-sanitizer-coverage-inline-8bit-counters -Cllvm-args=-sanitizer-coverage-pc-table \
-Cllvm-args=-sanitizer-coverage-trace-compares --cfg fuzzing -Cdebug-assertions -Coverflow-checks"
# An explicit --target keeps the flags off build scripts and proc macros.
exec cargo build --release --bins --target x86_64-unknown-linux-gnu "$@"
