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
# Environment: BIN (default target/release/gpu-nids), BEFORE (a second gpu-nids binary,
# e.g. an older build, timed in the same rounds, with its own kernel-choice cache so the
# two builds do not drop each other's; optional), PYTHON (python3), STEPS (3),
# WARMUP (1, at least 1: the first step may time kernel variants, see src/nn/tune.rs),
# ROUNDS (1), TORCH_THREADS (2), MODELS ("vae doc-ids"), BATCHES ("64 256").
set -euo pipefail
cd "$(dirname "$0")/.."

BIN=${BIN:-target/release/gpu-nids}
BEFORE=${BEFORE:-}
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

before_cache=$(mktemp -d)
trap 'rm -rf "$before_cache"' EXIT
ours() { # binary model batch -> samples/s, from ms/step (the samples/s column is rounded)
    local per=$3 cache=${XDG_CACHE_HOME:-}
    [ "$2" = doc-ids ] && per=$((2 * $3)) # reference + target batch
    [ "$1" = "$BEFORE" ] && cache=$before_cache
    XDG_CACHE_HOME=$cache "$1" bench train --model "$2" --batch "$3" --steps "$STEPS" --warmup "$WARMUP" 2>/dev/null |
        awk -v b="$3" -v per="$per" '$1 == b && NF == 4 { printf "%.2f\n", per * 1000 / $4; ok = 1 }
            END { if (!ok) print "error" }'
}
theirs() { # model batch -> samples/s
    "$PYTHON" bench/torch_models.py --model "$1" --batch "$2" --steps "$STEPS" \
        --warmup "$WARMUP" --threads "$TORCH_THREADS" 2>/dev/null |
        "$PYTHON" -c 'import json,sys; print(round(json.loads(sys.stdin.readline())["samples_per_s"], 2))'
}

adapter=$("$BIN" devices 2>/dev/null | head -n 3 | tr '\n' ' ' || true)
echo "gpu-nids: $adapter"
echo "torch: $("$PYTHON" -c 'import torch; print(torch.__version__)' 2>/dev/null), CPU, $TORCH_THREADS threads; $STEPS timed steps after $WARMUP warm-up"
ratio() { awk -v a="$1" -v b="$2" 'BEGIN { if (a + 0 > 0 && b + 0 > 0) printf "%.3f", a / b; else print "-" }'; }
if [ -n "$BEFORE" ]; then
    printf '%-6s %-8s %6s %12s %12s %12s %8s %8s\n' round model batch "gpu-nids/s" "before/s" \
        "torch/s" ratio "before"
else
    printf '%-6s %-8s %6s %12s %12s %8s\n' round model batch "gpu-nids/s" "torch/s" ratio
fi
for round in $(seq 1 "$ROUNDS"); do
    for model in $MODELS; do
        for batch in $BATCHES; do
            a=$(ours "$BIN" "$model" "$batch")
            b=$(theirs "$model" "$batch")
            if [ -n "$BEFORE" ]; then
                o=$(ours "$BEFORE" "$model" "$batch")
                printf '%-6s %-8s %6s %12s %12s %12s %8s %8s\n' "$round" "$model" "$batch" \
                    "$a" "$o" "$b" "$(ratio "$a" "$b")" "$(ratio "$o" "$b")"
            else
                printf '%-6s %-8s %6s %12s %12s %8s\n' "$round" "$model" "$batch" "$a" "$b" \
                    "$(ratio "$a" "$b")"
            fi
        done
    done
done
echo "(samples/s; ratio = gpu-nids / torch; DOC-IDS counts reference + target samples)"
