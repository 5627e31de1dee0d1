#!/usr/bin/env bash
# The main job on a fresh machine: installs missing system pieces, builds, then trains
# the traffic-image VAE on the lab's benign capture (assets/demo) and evaluates it on
# the lab's attack capture, printing the metrics table. EPOCHS=60 for the paper's length.
set -euo pipefail
cd "$(dirname "$0")/.."
. scripts/setup-system.sh
cargo build --release --quiet --bin gpu-nids
bin=./target/release/gpu-nids
out=${OUT:-out/demo}
demo=assets/demo
mkdir -p "$out"
$bin devices | grep '^using:'
start=$(date +%s)
$bin train vae "$demo/train-benign.pcap" -o "$out/vae.safetensors" --epochs "${EPOCHS:-12}" --seed 0
$bin eval "$out/vae.safetensors" --train "$demo/train-benign.pcap" \
  --test "$demo/test-attacks.pcap" --labels "$demo/labels.csv" -o "$out/vae-report" --quiet
echo "demo finished in $(( $(date +%s) - start ))s; report and pictures in $out/vae-report"
