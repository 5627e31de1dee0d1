#!/usr/bin/env bash
# Training throughput of gpu-nids next to PyTorch eager on the same machine.
#
# For each model (vae, doc-ids) and batch (64, 256) it times `gpu-nids bench train`
# and then bench/torch_models.py right after it (interleaved, so both see the same
# load), and prints samples/s of each and their ratio. PyTorch runs on the CPU with
# TORCH_THREADS threads (default 2, the cores llvmpipe gets here).
#
#   scripts/bench-vs-torch.sh                 # release build must exist
#   STEPS=5 ROUNDS=2 scripts/bench-vs-torch.sh
#
# Environment: BIN (default target/release/gpu-nids), PYTHON (python3), STEPS (3),
# WARMUP (1), ROUNDS (1), TORCH_THREADS (2), MODELS ("vae doc-ids"), BATCHES ("64 256").
set -euo pipefail
cd "$(dirname "$0")/.."

BIN=${BIN:-target/release/gpu-nids}
PYTHON=${PYTHON:-python3}
STEPS=${STEPS:-3}
WARMUP=${WARMUP:-1}
ROUNDS=${ROUNDS:-1}
TORCH_THREADS=${TORCH_THREADS:-2}
MODELS=${MODELS:-"vae doc-ids"}
BATCHES=${BATCHES:-"64 256"}

if ! "$PYTHON" -c 'import torch' 2>/dev/null; then
    echo "bench-vs-torch: skipped: PyTorch is not importable by $PYTHON (pip install torch)"
    exit 0
fi
if [ ! -x "$BIN" ]; then
    echo "bench-vs-torch: $BIN not found; build it with: cargo build --release" >&2
    exit 1
fi

ours() { # model batch -> samples/s
    "$BIN" bench train --model "$1" --batch "$2" --steps "$STEPS" --warmup "$WARMUP" |
        awk -v b="$2" '$1 == b && NF == 4 { print $3 }'
}
theirs() { # model batch -> samples/s
    "$PYTHON" bench/torch_models.py --model "$1" --batch "$2" --steps "$STEPS" \
        --warmup "$WARMUP" --threads "$TORCH_THREADS" 2>/dev/null |
        "$PYTHON" -c 'import json,sys; print(round(json.loads(sys.stdin.readline())["samples_per_s"], 1))'
}

adapter=$("$BIN" devices 2>/dev/null | head -n 3 | tr '\n' ' ' || true)
echo "gpu-nids: $adapter"
echo "torch: $("$PYTHON" -c 'import torch; print(torch.__version__)' 2>/dev/null), CPU, $TORCH_THREADS threads; $STEPS timed steps after $WARMUP warm-up"
printf '%-6s %-8s %6s %14s %14s %8s\n' round model batch "gpu-nids s/s" "torch s/s" ratio
for round in $(seq 1 "$ROUNDS"); do
    for model in $MODELS; do
        for batch in $BATCHES; do
            a=$(ours "$model" "$batch")
            b=$(theirs "$model" "$batch")
            r=$(awk -v a="$a" -v b="$b" 'BEGIN { if (b > 0) printf "%.3f", a / b; else print "-" }')
            printf '%-6s %-8s %6s %14s %14s %8s\n' "$round" "$model" "$batch" "$a" "$b" "$r"
        done
    done
done
