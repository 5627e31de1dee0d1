#!/usr/bin/env bash
# The docs/MODELS.md §5 evaluation of the VAE on the public captures (README), found at
# $GPU_NIDS_DATA (default ../shared/data): benign captures split in time at 70 % (whole connections to one
# side), every attack capture labelled by labels.csv. EPOCHS=N trains exactly N epochs (60 is the paper's); by default until the validation loss stops improving.
set -euo pipefail
cd "$(dirname "$0")/.."
. scripts/setup-system.sh
D=${GPU_NIDS_DATA:-../shared/data}
[ -f "$D/labels.csv" ] || { echo "no captures at $D (set GPU_NIDS_DATA)" >&2; exit 1; }
cargo build --release --quiet --bin gpu-nids
bin=./target/release/gpu-nids
out=${OUT:-out/shared}
mkdir -p "$out"
$bin ingest -q --kind images --split train "$D/cicids2017" "$D/benign" -o "$out/train"
$bin ingest -q --kind images --split test "$D/cicids2017" "$D/benign" -o "$out/test-benign"
$bin ingest -q --kind images --labels "$D/labels.csv" "$D/attacks" -o "$out/test-attacks"
train=(--seed "${SEED:-0}")
[ -n "${EPOCHS:-}" ] && train+=(--epochs "$EPOCHS")
$bin train vae "$out/train" -o "$out/vae.safetensors" "${train[@]}"
$bin eval "$out/vae.safetensors" --train "$out/train" --test "$out/test-benign" "$out/test-attacks" -o "$out/vae-report" --quiet
