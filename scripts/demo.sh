#!/usr/bin/env bash
# The main job on a fresh machine: installs missing system pieces, builds, then trains
# the traffic-image VAE on the lab's benign capture (assets/demo) until its validation
# loss stops improving (docs/TRAINING.md), evaluates it on the lab's attack capture,
# and runs `gpu-nids detect` over that capture, counting the alerts of each attack.
# EPOCHS=60 trains exactly that many epochs (the paper's length); TIME_BUDGET=5m bounds
# the training's wall time.
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
train=(--seed 0)
[ -n "${EPOCHS:-}" ] && train+=(--epochs "$EPOCHS")
[ -n "${TIME_BUDGET:-}" ] && train+=(--time-budget "$TIME_BUDGET")
$bin train vae "$demo/train-benign.pcap" -o "$out/vae.safetensors" "${train[@]}"
trained=$(date +%s)
$bin eval "$out/vae.safetensors" --train "$demo/train-benign.pcap" \
  --test "$demo/test-attacks.pcap" --labels "$demo/labels.csv" -o "$out/vae-report" --quiet
rm -f "$out/eve.json"
$bin detect -m "$out/vae.safetensors" -r "$demo/test-attacks.pcap" -o "$out/eve.json" --quiet
# Alerts per attack window: an alert belongs to an attack when the attacker's address is
# one of its ends (each attacker address is used in its window only); the rest are alerts
# on benign traffic. awk rather than jq, which a fresh machine may lack.
echo
echo "gpu-nids detect on $demo/test-attacks.pcap ($out/eve.json):"
awk -F, '
  FNR == NR { if (FNR > 1 && $2 != "") { ip[$2] = $(NF-2); order[++n] = $2 } next }
  /"event_type":"alert"/ {
    s = ""; d = ""
    if (match($0, /"src_ip":"[^"]*"/)) s = substr($0, RSTART + 10, RLENGTH - 11)
    if (match($0, /"dest_ip":"[^"]*"/)) d = substr($0, RSTART + 11, RLENGTH - 12)
    if (s in ip) hits[s]++; else if (d in ip) hits[d]++; else other++
    total++
  }
  END {
    printf "  %-20s %-12s %7s\n", "attack", "attacker", "alerts"
    for (i = 1; i <= n; i++) printf "  %-20s %-12s %7d\n", ip[order[i]], order[i], hits[order[i]]
    printf "  %-20s %-12s %7d\n", "(benign traffic)", "-", other
    printf "  %-20s %-12s %7d\n", "total", "", total
  }' "$demo/labels.csv" "$out/eve.json"
end=$(date +%s)
echo "demo finished in $(( end - start ))s (training $(( trained - start ))s); report and pictures in $out/vae-report"
