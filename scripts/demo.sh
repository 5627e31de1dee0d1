#!/usr/bin/env bash
# The main job on a fresh machine: installs missing system pieces, builds, shows the
# adapter and runs the kernel benchmark.
set -euo pipefail
cd "$(dirname "$0")/.."
. scripts/setup-system.sh
cargo build --release --quiet --bin gpu-nids
./target/release/gpu-nids devices
./target/release/gpu-nids bench matmul --sizes 256,512,1024
