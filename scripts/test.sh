#!/usr/bin/env bash
# The whole test suite: installs missing system pieces, then runs every test on
# whichever adapter is present (Mesa's software Vulkan on a machine without a GPU).
set -euo pipefail
cd "$(dirname "$0")/.."
. scripts/setup-system.sh
cargo build --quiet --bin gpu-nids
./target/debug/gpu-nids devices | grep '^using:' | sed 's/^using:/tests run on adapter:/'
# Kernel choices in tests are the first that fits (deterministic, no timing);
# tests/matmul.rs selects every variant explicitly and tests/tune_cache.rs the tuner.
export GPU_NIDS_TUNE=off
cargo test --all-targets "$@"
