#!/usr/bin/env bash
# The main job on a fresh machine: installs missing system pieces, builds, then trains
# both detectors on the lab's benign capture (assets/demo), each until its validation
# measure stops improving (docs/TRAINING.md): the traffic-image VAE and DOC-IDS (its
# reference set is the shipped assets/reference). It evaluates them side by side on the
# lab's attack capture and runs `gpu-nids detect` with both over that capture in one
# pass, counting each model's alerts per attack. The two see different things (the VAE a
# host pair's packet headers, DOC-IDS each connection's first bytes), so an attack one of
# them misses the other often finds (docs/TRAINING.md, "Two models in one pass").
# EPOCHS=60 trains exactly that many epochs (the paper's length); TIME_BUDGET=5m bounds
# each model's training wall time.
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
$bin train doc-ids --target "$demo/train-benign.pcap" -o "$out/doc-ids.safetensors" "${train[@]}"
trained=$(date +%s)
$bin eval --compare "$out/vae.safetensors" "$out/doc-ids.safetensors" \
  --train "$demo/train-benign.pcap" --test "$demo/test-attacks.pcap" \
  --labels "$demo/labels.csv" -o "$out/report" --quiet
rm -f "$out/eve.json"
$bin detect -m "$out/vae.safetensors" -m "$out/doc-ids.safetensors" \
  -r "$demo/test-attacks.pcap" -o "$out/eve.json" --quiet
# Alerts per attack window and model: an alert belongs to an attack when the attacker's
# address is one of its ends (each attacker address is used in its window only); the rest
# are alerts on benign traffic. awk rather than jq, which a fresh machine may lack.
echo
echo "gpu-nids detect with both models on $demo/test-attacks.pcap ($out/eve.json):"
awk -F, '
  FNR == NR { if (FNR > 1 && $2 != "") { ip[$2] = $(NF-2); order[++n] = $2 } next }
  /"event_type":"alert"/ {
    s = ""; d = ""; m = ""
    if (match($0, /"src_ip":"[^"]*"/)) s = substr($0, RSTART + 10, RLENGTH - 11)
    if (match($0, /"dest_ip":"[^"]*"/)) d = substr($0, RSTART + 11, RLENGTH - 12)
    if (match($0, /"gpu_nids_model":\["[^"]*"/)) m = substr($0, RSTART + 19, RLENGTH - 20)
    k = (s in ip) ? s : ((d in ip) ? d : "-")
    hits[k, m]++; hits[k, "all"]++; hits["total", m]++; hits["total", "all"]++
  }
  END {
    printf "  %-20s %-12s %7s %8s %7s\n", "attack", "attacker", "VAE", "DOC-IDS", "alerts"
    for (i = 1; i <= n; i++) {
      a = order[i]
      printf "  %-20s %-12s %7d %8d %7d\n", ip[a], a, hits[a, "vae"], hits[a, "doc-ids"], hits[a, "all"]
    }
    printf "  %-20s %-12s %7d %8d %7d\n", "(benign traffic)", "-", hits["-", "vae"], hits["-", "doc-ids"], hits["-", "all"]
    printf "  %-20s %-12s %7d %8d %7d\n", "total", "", hits["total", "vae"], hits["total", "doc-ids"], hits["total", "all"]
  }' "$demo/labels.csv" "$out/eve.json"
end=$(date +%s)
echo "demo finished in $(( end - start ))s (training $(( trained - start ))s); reports and pictures in $out/report"
